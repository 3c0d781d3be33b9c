-- 0002: the replay cache for signed-request nonces (keys/nonce.c). One row per (signing key,
-- nonce) until expires_at (unix seconds); the primary key makes "first use" atomic across server
-- instances. Expired rows are deleted by ac_nonce_purge.
create table if not exists ac_nonces (
    keyid      text not null check (octet_length(keyid) between 1 and 128),
    nonce      text not null check (octet_length(nonce) between 1 and 128),
    expires_at bigint not null,
    primary key (keyid, nonce)
);

create index if not exists ac_nonces_expires_at on ac_nonces (expires_at);
