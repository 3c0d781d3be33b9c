-- 0005: identity -- users, merchants, their public keys, user-signed bindings of agent keys
-- (agent runtime identity) and their revocations. The sequencer is the only writer; the in-memory
-- registry (keys/registry.c) is loaded from these tables by replaying every row in `seq` order
-- through the same rules that admitted it (ledger/db_identity.c).
--
-- One sequence numbers the rows of all five tables, so that replay order is registration order
-- across tables (a revocation and a later binding of the same agent key, for example).
create sequence if not exists ac_identity_seq;

create table if not exists ac_users (
    seq        bigint not null default nextval('ac_identity_seq') unique,
    id         text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    status     text not null default 'active' check (status in ('active')),
    created_us bigint not null
);

create table if not exists ac_merchants (
    seq        bigint not null default nextval('ac_identity_seq') unique,
    id         text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    name       text not null check (octet_length(name) between 1 and 128 and name !~ '[\x01-\x1f\x7f]'),
    category   text not null check (category ~ '^[A-Za-z0-9._:-]{1,64}$'),
    created_us bigint not null
);

-- User and merchant keys share one table: its primary key makes "one key, one principal" a
-- constraint. (That a principal key is never an agent key is the registry's rule.)
create table if not exists ac_principal_keys (
    seq         bigint not null default nextval('ac_identity_seq') unique,
    kid         text primary key check (kid ~ '^[A-Za-z0-9_-]{43}$'),
    user_id     text references ac_users (id),
    merchant_id text references ac_merchants (id),
    alg         text not null check (alg in ('EdDSA', 'ES256')),
    jwk         text not null check (octet_length(jwk) between 1 and 4096),
    created_us  bigint not null,
    check ((user_id is null) <> (merchant_id is null)),
    unique (kid, user_id)
);
create index if not exists ac_principal_keys_user on ac_principal_keys (user_id);
create index if not exists ac_principal_keys_merchant on ac_principal_keys (merchant_id);

-- A binding as the user signed it (jws, verbatim) and the fields the server read from it.
create table if not exists ac_bindings (
    seq            bigint not null default nextval('ac_identity_seq') unique,
    id             text primary key check (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    user_id        text not null references ac_users (id),
    user_kid       text not null,
    agent_id       text not null check (agent_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    agent_kid      text not null check (agent_kid ~ '^[A-Za-z0-9_-]{43}$'),
    agent_jwk      text not null check (octet_length(agent_jwk) between 1 and 4096),
    software       text not null check (software ~ '^sha-256:[0-9a-f]{64}$'),
    model          text not null check (model ~ '^[ -~]{1,128}$'),
    environment    text not null check (environment ~ '^sha-256:[0-9a-f]{64}$'),
    runtime_digest bytea not null check (octet_length(runtime_digest) = 32),
    max_autonomy   smallint not null check (max_autonomy between 0 and 5),
    iat            bigint not null,
    nbf            bigint not null,
    exp            bigint not null,
    jws            text not null check (octet_length(jws) between 1 and 65536),
    created_us     bigint not null,
    check (iat <= nbf and nbf < exp and exp - iat <= 31622400),
    -- signed by a key of that user
    foreign key (user_kid, user_id) references ac_principal_keys (kid, user_id),
    unique (id, user_id)
);
create index if not exists ac_bindings_agent_kid on ac_bindings (agent_kid);
create index if not exists ac_bindings_user on ac_bindings (user_id);

-- At most one revocation per binding, signed by a key of the binding's user.
create table if not exists ac_binding_revocations (
    seq        bigint not null default nextval('ac_identity_seq') unique,
    binding_id text primary key,
    user_id    text not null,
    user_kid   text not null,
    jws        text not null check (octet_length(jws) between 1 and 65536),
    revoked_us bigint not null,
    foreign key (binding_id, user_id) references ac_bindings (id, user_id),
    foreign key (user_kid, user_id) references ac_principal_keys (kid, user_id)
);

-- Bindings and revocations are signed documents that evidence records refer to: never changed,
-- never deleted.
create or replace function ac_identity_immutable() returns trigger language plpgsql as $$
begin
    raise exception '% rows are immutable', tg_table_name using errcode = 'restrict_violation';
end
$$;

drop trigger if exists ac_bindings_immutable on ac_bindings;
create trigger ac_bindings_immutable before update or delete on ac_bindings
    for each row execute function ac_identity_immutable();
drop trigger if exists ac_binding_revocations_immutable on ac_binding_revocations;
create trigger ac_binding_revocations_immutable before update or delete on ac_binding_revocations
    for each row execute function ac_identity_immutable();
