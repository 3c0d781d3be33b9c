-- 0001: the double-entry ledger (TigerBeetle semantics; the sequencer is the only writer).
-- Balances are written as absolute values by the sequencer, which owns them in memory.

create table if not exists ac_assets (
    code       text primary key check (code ~ '^[A-Z0-9_]{1,16}$'),
    scale      smallint not null check (scale between 0 and 18),
    created_at timestamptz not null default now()
);

create table if not exists ac_accounts (
    id              text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    asset           text not null references ac_assets (code),
    owner           text not null default '',
    flags           integer not null default 0,
    debits_pending  bigint not null default 0 check (debits_pending >= 0),
    debits_posted   bigint not null default 0 check (debits_posted >= 0),
    credits_pending bigint not null default 0 check (credits_pending >= 0),
    credits_posted  bigint not null default 0 check (credits_posted >= 0),
    created_at      timestamptz not null default now()
);

-- Immutable transfers. pstate is the only column that changes, and only for pending transfers
-- (1 pending -> 2 posted | 3 voided | 4 expired). seq is the commit order (cursor pagination).
create table if not exists ac_transfers (
    seq            bigint generated always as identity unique,
    id             text primary key,
    debit_account  text not null,
    credit_account text not null,
    asset          text not null,
    amount         bigint not null check (amount > 0),
    flags          integer not null,
    pending_id     text,
    timeout_s      integer not null default 0,
    code           integer not null default 0,
    pstate         smallint not null default 0,
    digest         bytea not null,
    created_us     bigint not null
);
create index if not exists ac_transfers_debit on ac_transfers (debit_account, seq);
create index if not exists ac_transfers_credit on ac_transfers (credit_account, seq);

-- Transfer ids whose attempt failed for a balance-dependent reason: they stay failed.
create table if not exists ac_transfer_failures (
    id         text primary key,
    digest     bytea not null,
    result     text not null,
    created_us bigint not null
);
