-- 0010: versioned merchant prices and token top-ups (docs/merchant-api.md, "Token top-ups").
-- The sequencer is the only writer: a price version's rows and its `price.publish` evidence
-- record are written in one transaction; a top-up's payment row (ac_payments, op 'topup'), its
-- ac_topups row, the linked pair of ledger transfers and its evidence record likewise.

-- A published price list version of a merchant. version: chosen by the merchant, strictly
-- increasing per merchant, never changed; every version stays readable. request_digest: SHA-256
-- over the canonical prices (same version and digest -> the original answer). body: the signed
-- request body, verbatim (also in the evidence record).
create table if not exists ac_price_versions (
    merchant_id    text not null,
    version        bigint not null check (version > 0),
    request_digest bytea not null check (octet_length(request_digest) = 32),
    body           text not null check (octet_length(body) between 2 and 65536),
    keyid          text not null,
    evidence_seq   bigint,
    evidence_leaf  bytea,
    created_us     bigint not null,
    primary key (merchant_id, version)
);

-- One price of a version: `token_amount` base units of token_asset for every `fiat_amount` base
-- units of fiat_asset (both > 0). A top-up of a fiat amount A buys floor(A * token_amount /
-- fiat_amount) token base units.
create table if not exists ac_prices (
    merchant_id  text not null,
    version      bigint not null,
    fiat_asset   text not null,
    token_asset  text not null,
    fiat_amount  bigint not null check (fiat_amount > 0),
    token_amount bigint not null check (token_amount > 0),
    primary key (merchant_id, version, fiat_asset, token_asset),
    foreign key (merchant_id, version) references ac_price_versions (merchant_id, version)
        deferrable initially deferred
);

-- The token leg of a top-up; the fiat leg, the decision, the status and the evidence are the
-- payment's (ac_payments row with the same id, op 'topup'). The foreign key is deferred: the
-- sequencer queues the payment rows of a batch after the top-up rows.
create table if not exists ac_topups (
    id                text primary key references ac_payments (id) deferrable initially deferred,
    provider          text not null,
    user_id           text not null,
    token_asset       text not null,
    token_amount      bigint not null check (token_amount > 0),
    token_debit       text not null,
    token_credit      text not null,
    token_transfer_id text not null,
    price_version     bigint not null,
    price_fiat        bigint not null check (price_fiat > 0),
    price_tokens      bigint not null check (price_tokens > 0),
    created_us        bigint not null
);

-- Cursor pagination of a principal's top-ups, newest first (the payment's seq).
create index if not exists ac_payments_topup_user on ac_payments (user_id, seq)
    where op = 'topup';
create index if not exists ac_payments_topup_payee on ac_payments (payee, seq)
    where op = 'topup';
