-- 0008: refunds of settled payments, and the indexes of the paginated reads (docs/merchant-api.md).
-- The sequencer is the only writer: a refund's row, its ledger transfer (merchant wallet -> user
-- wallet), the payment's refunded total and the evidence record are written in one transaction.

-- What a payment has been refunded so far (sum of its refunds; never more than amount).
alter table ac_payments add column if not exists refunded bigint not null default 0
    check (refunded >= 0 and refunded <= amount);

-- A refund as the payee merchant asked for it. id: chosen by the merchant, global (idempotency:
-- same id and request_digest -> the original answer).
create table if not exists ac_refunds (
    seq            bigint generated always as identity unique,
    id             text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    request_digest bytea not null check (octet_length(request_digest) = 32),
    payment_id     text not null references ac_payments (id),
    merchant_id    text not null,
    user_id        text not null,
    amount         bigint not null check (amount > 0),
    asset          text not null references ac_assets (code),
    reason         text check (octet_length(reason) between 1 and 255),
    transfer_id    text not null,
    keyid          text not null,
    evidence_seq   bigint,
    evidence_leaf  bytea,
    created_us     bigint not null
);
create index if not exists ac_refunds_payment on ac_refunds (payment_id, seq);

-- Cursor pagination of a principal's payments, newest first (seq descending).
create index if not exists ac_payments_user_seq on ac_payments (user_id, seq);
create index if not exists ac_payments_payee_seq on ac_payments (payee, seq);
