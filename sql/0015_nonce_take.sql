-- 0015: the sequencer records the nonces of the signed requests in a batch (keys/nonce.h,
-- ledger/sequencer.c), instead of a separate writer deciding each request's nonce first.
--
-- Exactly the semantics of the nonce writer's statement: a (keyid, nonce) is taken when it is not
-- there, or when its row has expired (the clock check already refuses a request that old). The
-- rows returned are those taken; a nonce not returned was used before: that request is refused
-- as a replay and not applied.
--
-- Committed asynchronously, and durable all the same before anything depends on it: the
-- sequencer's next statement on the same connection is the batch these nonces authorise, whose
-- COMMIT is synchronous, and flushing a commit record flushes all WAL before it. So a request is
-- never acknowledged while its nonce could still be lost; the batch costs no second WAL flush.
create or replace function ac_nonce_take(keyids text[], nonces text[], exps bigint[], now_s bigint)
returns table (taken_keyid text, taken_nonce text)
language plpgsql as $$
begin
    perform set_config('synchronous_commit', 'off', true);
    return query
        insert into ac_nonces as n (keyid, nonce, expires_at)
        select k, v, e from unnest(keyids, nonces, exps) as t(k, v, e)
        on conflict (keyid, nonce) do update set expires_at = excluded.expires_at
            where n.expires_at <= now_s
        returning n.keyid, n.nonce;
end
$$;
