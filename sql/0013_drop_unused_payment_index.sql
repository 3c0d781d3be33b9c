-- 0013: stop maintaining an index no query reads.
--
-- ac_payments_mandate (mandate_id, seq) serves no statement: payments are read by id, by user or
-- payee and seq (ac_payments_user_seq, ac_payments_payee_seq, the topup partial indexes), and the
-- foreign key to ac_mandates would need an index on this side only when a mandate id is deleted or
-- changed, which never happens (revocation sets a status). Every index costs each payment's insert
-- on the sequencer's serial path.
drop index if exists ac_payments_mandate;
