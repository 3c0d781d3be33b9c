-- 0007: mandates, their cumulative spend, payments and step-up authorizations
-- (docs/mandates.md). The sequencer is the only writer: it decides every payment against the
-- in-memory state (ledger/payments.c) and writes these rows in the same transaction as the
-- ledger's transfers, the mandate's spend and the evidence records, and loads them back on start.
--
-- Wallet convention: a user's wallet is the ledger account `user:<user id>:<asset lowercased>`,
-- a merchant's `merchant:<merchant id>:<asset lowercased>` (created by the operator with the
-- ledger API; docs/operations.md). Payments move money between them and nowhere else.

-- A mandate as the user signed it (jws, verbatim) and what the server read from it. The payload
-- is parsed again from jws on load; the columns serve reads and constraints.
create table if not exists ac_mandates (
    seq            bigint generated always as identity unique,
    id             text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    user_id        text not null references ac_users (id),
    user_kid       text not null,
    asset          text not null references ac_assets (code),
    nbf            bigint not null,
    exp            bigint not null,
    autonomy       smallint not null check (autonomy between 0 and 5),
    jws            text not null check (octet_length(jws) between 1 and 65536),
    created_us     bigint not null,
    status         text not null default 'active' check (status in ('active', 'revoked')),
    revoked_us     bigint,
    revocation_kid text,
    revocation_jws text check (octet_length(revocation_jws) between 1 and 65536),
    check (nbf < exp),
    check ((status = 'revoked') = (revoked_us is not null)),
    check ((revoked_us is null) = (revocation_jws is null)),
    foreign key (user_kid, user_id) references ac_principal_keys (kid, user_id)
);
create index if not exists ac_mandates_user on ac_mandates (user_id);

-- A mandate's cumulative spend, exactly struct ac_spend (risk/spend.h): rewritten by the sequencer
-- at the end of every batch that changed it, in that batch's transaction.
create table if not exists ac_mandate_spend (
    mandate_id  text primary key references ac_mandates (id),
    day_start   bigint not null default 0,
    day_spent   bigint not null default 0 check (day_spent >= 0),
    day_held    bigint not null default 0 check (day_held >= 0),
    week_start  bigint not null default 0,
    week_spent  bigint not null default 0 check (week_spent >= 0),
    week_held   bigint not null default 0 check (week_held >= 0),
    month_start bigint not null default 0,
    month_spent bigint not null default 0 check (month_spent >= 0),
    month_held  bigint not null default 0 check (month_held >= 0),
    spent       bigint not null default 0 check (spent >= 0),
    held        bigint not null default 0 check (held >= 0),
    uses        bigint not null default 0 check (uses >= 0),
    holds       bigint not null default 0 check (holds >= 0),
    updated_us  bigint not null
);

-- Every payment request that was decided (allowed, stepped up, denied or failed in the ledger).
-- request_digest identifies the request for idempotency (same id and digest: the original
-- answer). reasons: the decisive reason codes, comma-separated, in registry order; error: the
-- ledger's code when status is 'failed'.
create table if not exists ac_payments (
    seq              bigint generated always as identity unique,
    id               text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    request_digest   bytea not null check (octet_length(request_digest) = 32),
    mandate_id       text not null references ac_mandates (id),
    binding_id       text not null,
    user_id          text not null,
    agent_id         text not null,
    payee            text not null,
    op               text not null check (op in ('purchase', 'topup', 'micropay')),
    amount           bigint not null check (amount > 0),
    asset            text not null,
    purpose          text,
    order_digest     text,
    status           text not null check (status in ('settled', 'pending_confirmation',
                                                     'declined', 'expired', 'denied', 'failed')),
    verdict          text not null check (verdict in ('allow', 'step_up', 'deny')),
    autonomy         smallint not null check (autonomy between 0 and 5),
    reasons          text not null default '',
    error            text,
    transfer_id      text,
    authorization_id text,
    evidence_seq     bigint,
    evidence_leaf    bytea,
    created_us       bigint not null,
    updated_us       bigint not null
);
create index if not exists ac_payments_mandate on ac_payments (mandate_id, seq);

-- A step-up: the challenge as returned (canonical JSON text), the hold it reserves (the pending
-- transfer and the spend hold, risk/spend.h), and the user's signed answer once decided.
create table if not exists ac_authorizations (
    id               text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    payment_id       text not null unique,
    user_id          text not null,
    challenge        text not null,
    nonce            text not null,
    iat              bigint not null,
    exp              bigint not null,
    hold_amount      bigint not null check (hold_amount > 0),
    hold_at_us       bigint not null,
    status           text not null default 'pending'
                     check (status in ('pending', 'confirmed', 'declined', 'expired', 'denied')),
    confirmation_kid text,
    confirmation_jws text check (octet_length(confirmation_jws) between 1 and 65536),
    decided_us       bigint,
    transfer_id      text,
    evidence_seq     bigint,
    evidence_leaf    bytea,
    created_us       bigint not null,
    check (iat < exp)
);
create index if not exists ac_authorizations_pending on ac_authorizations (status)
    where status = 'pending';
