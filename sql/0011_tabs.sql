-- 0011: micropayment tabs and their settlements (docs/merchant-api.md, "Tabs"). The sequencer is
-- the only writer: a tab's row, its ledger transfers (the hold user wallet -> merchant wallet, the
-- partial posts that settle vouchers, the void that ends it), the mandate's spend and the evidence
-- record are written in one transaction.

-- A tab as the agent opened it. id: chosen by the agent, global (idempotency: same id and
-- request_digest -> the original answer). hold: the most the tab can settle (base units of
-- asset). settled: the cumulative amount of the last settled voucher; last_seq its sequence.
-- hold_transfer_id: the pending transfer that holds hold - settled now (NULL once none is left);
-- holds: how many hold transfers the tab has taken (names the next one).
create table if not exists ac_tabs (
    seq              bigint generated always as identity unique,
    id               text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    request_digest   bytea not null check (octet_length(request_digest) = 32),
    mandate_id       text not null,
    binding_id       text not null,
    user_id          text not null,
    agent_id         text not null,
    payee            text not null,
    asset            text not null references ac_assets (code),
    hold             bigint not null check (hold > 0),
    ttl_s            bigint not null check (ttl_s > 0),
    expires_us       bigint not null,
    status           text not null check (status in ('open', 'closed', 'expired', 'denied',
                                                     'failed')),
    verdict          text not null,
    autonomy         smallint not null,
    reasons          text not null default '',
    error            text,
    settled          bigint not null default 0 check (settled >= 0 and settled <= hold),
    last_seq         bigint not null default 0 check (last_seq >= 0),
    hold_transfer_id text,
    holds            integer not null default 0,
    evidence_seq     bigint,
    evidence_leaf    bytea,
    created_us       bigint not null,
    updated_us       bigint not null,
    ended_us         bigint
);
create index if not exists ac_tabs_user_seq on ac_tabs (user_id, seq);
create index if not exists ac_tabs_payee_seq on ac_tabs (payee, seq);

-- Every settlement, close and expiry of a tab, in order. amount: what this step posted (the
-- voucher's cumulative minus what was settled before); released: what it voided. The voucher JWS
-- is kept verbatim (the merchant's proof, referenced by hash from the evidence record).
create table if not exists ac_tab_settlements (
    seq            bigint generated always as identity unique,
    tab_id         text not null references ac_tabs (id),
    kind           text not null check (kind in ('settle', 'close', 'expire')),
    voucher_seq    bigint,
    cumulative     bigint not null check (cumulative >= 0),
    amount         bigint not null check (amount >= 0),
    released       bigint not null check (released >= 0),
    voucher_jws    text,
    voucher_hash   bytea check (octet_length(voucher_hash) = 32),
    keyid          text,
    post_id        text,
    hold_id        text,
    void_id        text,
    evidence_seq   bigint,
    evidence_leaf  bytea,
    created_us     bigint not null
);
create index if not exists ac_tab_settlements_tab on ac_tab_settlements (tab_id, seq);

-- The documents evidence records reference (0006), now with the tabs' vouchers: a tab.settle or
-- tab.close record names its voucher by hash and the tab id.
create or replace function ac_evidence_documents(ids text[]) returns setof text
language plpgsql stable as $$
begin
    return query select b.jws from ac_bindings b where b.id = any(ids);
    return query select r.jws from ac_binding_revocations r where r.binding_id = any(ids);
    if to_regclass('ac_mandates') is not null then
        begin
            return query execute
                'select jws from ac_mandates where id = any($1) union all '
                'select revocation_jws from ac_mandates where id = any($1) '
                'and revocation_jws is not null' using ids;
        exception when undefined_column then null;
        end;
    end if;
    if to_regclass('ac_authorizations') is not null then
        begin
            return query execute
                'select confirmation_jws from ac_authorizations where (id = any($1) or '
                'payment_id = any($1)) and confirmation_jws is not null' using ids;
        exception when undefined_column then null;
        end;
    end if;
    return query select s.voucher_jws from ac_tab_settlements s
        where s.tab_id = any(ids) and s.voucher_jws is not null;
end
$$;

create or replace function ac_evidence_all_documents() returns setof text
language plpgsql stable as $$
begin
    return query select b.jws from ac_bindings b order by b.seq;
    return query select r.jws from ac_binding_revocations r order by r.seq;
    if to_regclass('ac_mandates') is not null then
        begin
            return query execute
                'select jws from ac_mandates union all '
                'select revocation_jws from ac_mandates where revocation_jws is not null';
        exception when undefined_column then null;
        end;
    end if;
    if to_regclass('ac_authorizations') is not null then
        begin
            return query execute
                'select confirmation_jws from ac_authorizations '
                'where confirmation_jws is not null';
        exception when undefined_column then null;
        end;
    end if;
    return query select s.voucher_jws from ac_tab_settlements s
        where s.voucher_jws is not null order by s.seq;
end
$$;
