-- 0016: a payment's mandate is guarded on the mandate's side, not checked again on every insert.
--
-- The foreign key ac_payments.mandate_id -> ac_mandates(id) ran a referential check for every
-- payment row: a query on ac_mandates and a FOR KEY SHARE lock on the mandate's row, which also
-- writes a WAL record and dirties the mandate's page: 3 to 4 microseconds of the one writer
-- backend a payment (docs/operations.md), on the path every payment waits for. The sequencer,
-- the only writer of ac_payments, decides a payment only against a mandate it holds, and it
-- holds only mandates loaded from ac_mandates or written earlier in the same transaction, so the
-- check never found anything to refuse.
--
-- What the key also did was keep a referenced mandate from disappearing. Mandates are never
-- deleted (revocation sets a status), and now the table refuses it outright: no DELETE, no
-- TRUNCATE, no change of a mandate's id, whether payments refer to it or not. A payment's
-- mandate_id therefore keeps naming a mandate that exists, as before, and `agentclear ledger
-- check` verifies that every one does.
alter table ac_payments drop constraint if exists ac_payments_mandate_id_fkey;

create or replace function ac_mandates_kept() returns trigger language plpgsql as $$
begin
    raise exception 'ac_mandates rows are never deleted and keep their id (revocation sets a status)'
        using errcode = 'restrict_violation';
end
$$;

drop trigger if exists ac_mandates_kept on ac_mandates;
create trigger ac_mandates_kept before delete or update of id on ac_mandates
    for each row execute function ac_mandates_kept();
drop trigger if exists ac_mandates_no_truncate on ac_mandates;
create trigger ac_mandates_no_truncate before truncate on ac_mandates
    for each statement execute function ac_mandates_kept();
