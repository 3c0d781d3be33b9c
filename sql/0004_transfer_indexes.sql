-- Drop the per-account indexes on ac_transfers.
--
-- Every transfer the sequencer commits pays for each index on ac_transfers, and no query reads
-- transfers by account: the API reads a transfer by id, `ledger check` aggregates over the whole
-- table, and per-user/per-merchant history is served from the payment tables (which carry their
-- own cursor indexes). In the hot-merchant benchmark these two indexes cost 18-23% of the
-- throughput, all of it on the single writer's backend. An operator who wants ad-hoc account
-- history can create an index concurrently without blocking the writer.
drop index if exists ac_transfers_debit;
drop index if exists ac_transfers_credit;
