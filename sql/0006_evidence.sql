-- 0006: the evidence log at rest (docs/evidence.md). The sequencer appends the records in the same
-- transaction as the money and identity rows they describe, and a signed checkpoint every N
-- records or T milliseconds (ledger/evlog.c). Both tables are append-only: the triggers below
-- refuse UPDATE and DELETE (an auditor's replay detects any change made around them).

create table if not exists ac_evidence (
    seq        bigint primary key check (seq >= 0),
    time_us    bigint not null check (time_us >= 0),
    kind       text not null check (kind ~ '^[a-z_]+(\.[a-z_]+)?$'),
    -- body.payment (or body.tab for tab records): a payment's records for its dispute bundle
    payment_id text check (payment_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    -- the exact deterministic CBOR bytes: what is hashed, proven, bundled and exported
    record     bytea not null check (octet_length(record) between 1 and 2097152),
    -- RFC 9162 leaf hash SHA-256(0x00 || record)
    leaf       bytea not null check (octet_length(leaf) = 32)
);
create index if not exists ac_evidence_payment on ac_evidence (payment_id, seq)
    where payment_id is not null;

-- Signed checkpoints (C2SP tlog-checkpoint as a C2SP signed note). log_key is the note verifier
-- key of the signature, key_id the server key's RFC 7638 thumbprint (keys/keyring.h).
create table if not exists ac_checkpoints (
    size       bigint primary key check (size > 0),
    root       bytea not null check (octet_length(root) = 32),
    note       text not null check (octet_length(note) between 1 and 8192),
    log_key    text not null check (octet_length(log_key) between 1 and 512),
    key_id     text not null,
    created_us bigint not null
);

create or replace function ac_evidence_immutable() returns trigger language plpgsql as $$
begin
    raise exception '% rows are append-only', tg_table_name using errcode = 'restrict_violation';
end
$$;

drop trigger if exists ac_evidence_immutable on ac_evidence;
create trigger ac_evidence_immutable before update or delete on ac_evidence
    for each row execute function ac_evidence_immutable();
drop trigger if exists ac_checkpoints_immutable on ac_checkpoints;
create trigger ac_checkpoints_immutable before update or delete on ac_checkpoints
    for each row execute function ac_evidence_immutable();
drop trigger if exists ac_evidence_no_truncate on ac_evidence;
create trigger ac_evidence_no_truncate before truncate on ac_evidence
    for each statement execute function ac_evidence_immutable();
drop trigger if exists ac_checkpoints_no_truncate on ac_checkpoints;
create trigger ac_checkpoints_no_truncate before truncate on ac_checkpoints
    for each statement execute function ac_evidence_immutable();

-- The documents (compact JWS texts) that records may reference by hash, looked up by the ids the
-- records name: bindings and their revocations (0005), and -- when the payments migration has
-- created them -- mandates, their revocations and step-up confirmations. The caller matches
-- each text against the docref's SHA-256, so returning more candidates than needed is harmless.
-- Tables of later migrations are reached through EXECUTE, so this function exists before them.
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
end
$$;

-- Every document records may reference (for `agentclear evidence export`): as above, all of them.
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
end
$$;
