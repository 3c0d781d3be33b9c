-- 0009: Idempotency-Key records (docs/merchant-api.md, "Idempotency").
-- One row per (caller, method, path, key): the request's fingerprint and the answer that was
-- given. The sequencer writes a row in the same transaction as the effect it answers for, so a
-- committed effect always has its key, and a failed batch leaves neither. Rows are kept at least
-- the configured retention (>= 24 h) and then deleted by the sequencer's sweep, a bounded number
-- per tick, oldest first.
create table if not exists ac_idempotency (
    caller       text not null check (octet_length(caller) between 1 and 200),
    method       text not null check (octet_length(method) between 1 and 16),
    path         text not null check (octet_length(path) between 1 and 512),
    key          text not null check (key ~ '^[\x21-\x7e]{1,255}$'),
    fingerprint  bytea not null check (octet_length(fingerprint) = 32),
    status       integer not null check (status between 200 and 499),
    content_type text not null,
    location     text,
    body         text not null,
    created_us   bigint not null,
    primary key (caller, method, path, key)
);
create index if not exists ac_idempotency_created on ac_idempotency (created_us);
