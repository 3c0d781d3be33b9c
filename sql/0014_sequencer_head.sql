-- 0014: the sequencer's batch counter, the guard that lets it pipeline its batches.
--
-- The sequencer sends a batch's transaction and, while PostgreSQL executes and commits it, applies
-- and sends the next one on the same connection (ledger/sequencer.c). The next batch was applied
-- on top of the first's effects, so it must not commit unless the first did. Every pipelined
-- batch therefore starts with ac_seq_advance(partition, prev, next): it moves the partition's
-- counter from the number the previous batch set to its own, and raises when the counter is not
-- there -- when the batch before it rolled back (an error, or a failed COMMIT such as a deferred
-- constraint). One single-row update per batch, not per payment. One row per writer partition
-- (the writer lease's key), created by the sequencer when it becomes leader.
create table if not exists ac_seq_head (
    partition int primary key,
    batch     bigint not null check (batch >= 0)
);

create or replace function ac_seq_advance(part int, prev bigint, next bigint) returns void
language plpgsql as $$
begin
    update ac_seq_head set batch = next where partition = part and batch = prev;
    if not found then
        raise exception 'sequencer: the batch before this one did not commit (partition %, batch counter is not %)',
            part, prev using errcode = 'P0001';
    end if;
end
$$;
