-- 0022_outbound_hot.sql - outbound_messages updates become HOT updates.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- An outbound message is written two to five times: tern-sender's intake
-- INSERT ('sending' or 'queued'), 'sending' when it took the schedule,
-- 'sent' with the provider's id, then one UPDATE per delivery status
-- (delivered, read). None of those updates could be HOT (heap-only: the
-- new row version on the same page, no new index entries), because each
-- changed a column that some index reads:
--
--   state                 in the predicates of outbound_updated,
--                         outbound_agent_unpublished, outbound_unpublished_calsync
--   updated_at            outbound_updated's key
--   provider_message_id   outbound_provider_id's key
--
-- so every update added an entry to each of the table's five indexes. The
-- 'sent' UPDATE cost as much Postgres time as the INSERT (issue 5:
-- tests/bench/sender, BENCH_PG_STATS=1: 33-35 us against 10-11 us a
-- message once HOT, Postgres 75-79 us a message against 56-59 in all).
--
-- Changes:
--
--   outbound_updated (tenant_id, updated_at) WHERE state NOT IN (queued,
--   sending), the sweeper's retention index, becomes outbound_created
--   (tenant_id, created_at): created_at never changes. The retention query
--   keeps its condition (finished, updated_at older than the cutoff) and
--   adds created_at < cutoff, which updated_at >= created_at implies, so it
--   deletes the same rows and reaches them through the index.
--
--   The two "unpublished" indexes of tern-agent and tern-calsync lose
--   `state = 'queued'` from their predicates. Their scans still say
--   state = 'queued' (0002, 0010); the index now also holds the rare row
--   that was sent before its producer marked it enqueued, which the scan's
--   condition skips.
--
--   outbound_provider_id (tenant_id, channel_id, provider_message_id) is
--   dropped. tern-sender matches a delivery status by the outbound id the
--   provider echoes (WhatsApp biz_opaque_callback_data, Twilio's
--   StatusCallback ?outbound=; every message Tern sends carries it), by
--   primary key. A status without it is matched by provider id among the
--   channel's messages of the last 30 days, through outbound_created
--   (services/sender/sender_status.c).
--
--   fillfactor 50: an INSERT leaves half of each page free, so the updates
--   of a row find room on its own page (a HOT update needs that). The table
--   takes up to twice the pages; retention bounds it. Pages written before
--   this migration keep their old fill until retention deletes their rows.
--
-- Deploying: the migration runs in one transaction, so building
-- outbound_created holds writes to outbound_messages for as long as the
-- build takes (seconds per million rows). On a large table, apply it while
-- tern-sender is scaled to zero (tern:out waits in Redis meanwhile).

DROP INDEX IF EXISTS outbound_updated;
CREATE INDEX IF NOT EXISTS outbound_created ON outbound_messages (tenant_id, created_at);

DROP INDEX IF EXISTS outbound_agent_unpublished;
CREATE INDEX outbound_agent_unpublished ON outbound_messages (created_at)
    WHERE producer = 'agent' AND enqueued_at IS NULL;

DROP INDEX IF EXISTS outbound_unpublished_calsync;
CREATE INDEX outbound_unpublished_calsync ON outbound_messages (created_at)
    WHERE producer = 'calsync' AND enqueued_at IS NULL;

DROP INDEX IF EXISTS outbound_provider_id;

ALTER TABLE outbound_messages SET (fillfactor = 50);
