-- 0014_sender_indexes.sql - fewer index entries per outbound message.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- Every outbound message is written two or three times (tern-sender's
-- intake INSERT, 'sending' unless intake recorded it in the INSERT, 'sent')
-- and none of these writes can be a HOT update (state is in the predicate
-- of several partial indexes, updated_at is indexed), so each write adds an
-- entry to every index whose predicate the new row version matches. With
-- tern-sender at thousands of messages a second that index upkeep is about
-- a quarter of Postgres' CPU (issue 5). Two indexes carried entries that no
-- query reads:
--
--   outbound_due (tenant_id, not_before) WHERE state IN ('queued',
--   'sending'): made for a Postgres scheduler; the schedule is Redis'
--   (tern:sched, services/sender/sender_sched.c) and no statement filters
--   or sorts outbound_messages by not_before. Each message added two
--   entries (queued, then sending). Dropped. A future rescan of live rows
--   from Postgres (after Redis data loss) would want an index on them again.
--
--   outbound_provider_id (tenant_id, channel_id, provider_message_id) held
--   every row version, also the queued and sending ones that have no
--   provider id yet. Its readers (tern-sender's status lookup by provider
--   message id; the planner proves `provider_message_id = $x` implies
--   IS NOT NULL) only look for rows that have one: it is now partial.

DROP INDEX IF EXISTS outbound_due;

CREATE INDEX outbound_provider_id_set ON outbound_messages
    (tenant_id, channel_id, provider_message_id) WHERE provider_message_id IS NOT NULL;
DROP INDEX IF EXISTS outbound_provider_id;
ALTER INDEX outbound_provider_id_set RENAME TO outbound_provider_id;
