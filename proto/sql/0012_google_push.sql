-- 0012_google_push.sql - Google Calendar push channels (events.watch), so
-- that an owner's change reaches Tern in seconds instead of at the next
-- busy-time import.
--
-- Applied by `ternctl migrate` after the earlier files (one transaction,
-- never edited once applied).
--
--   oauth_accounts + push_channel_id: the id of the account's live channel
--                    (a UUID tern-calsync chose; Google echoes it in
--                    X-Goog-Channel-ID)
--                  + push_resource_id: Google's resourceId of the watched
--                    calendar, needed by channels.stop
--                  + push_token_hash: hex SHA-256 of the channel's random
--                    token (X-Goog-Channel-Token); the token itself is kept
--                    nowhere, so a database read cannot forge a push
--                  + push_expires_at: when Google ends the channel; calsync
--                    opens a new one before that and stops the old one
--                  + push_attempted_at: the last watch attempt, so that a
--                    failing watch is retried at a slow pace
-- tern_calsync already has SELECT/INSERT/UPDATE on oauth_accounts.
--
--   tern_calendar_channels()  every live channel for tern-ingest's routing
--       cache (tern_ingest has no table access, as for tern_routing):
--       tenant, account, channel id, resource id, token hash.
--   tern_calsync_watch_due()  Google accounts whose channel is missing or
--       expires within ahead_ms, not attempted within retry_ms; marks them
--       attempted (ids only, like tern_calsync_accounts_due).

ALTER TABLE oauth_accounts
    ADD COLUMN push_channel_id text CHECK (length(push_channel_id) <= 64),
    ADD COLUMN push_resource_id text CHECK (length(push_resource_id) <= 256),
    ADD COLUMN push_token_hash text CHECK (push_token_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN push_expires_at timestamptz,
    ADD COLUMN push_attempted_at timestamptz;

CREATE UNIQUE INDEX oauth_accounts_push_channel ON oauth_accounts (push_channel_id)
    WHERE push_channel_id IS NOT NULL;

-- tern_calendar_channels - see above
CREATE FUNCTION tern_calendar_channels()
    RETURNS TABLE (tenant_id uuid, account_id uuid, channel_id text, resource_id text,
                   token_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT a.tenant_id, a.id, a.push_channel_id, a.push_resource_id, a.push_token_hash
          FROM public.oauth_accounts a JOIN public.tenants t ON t.id = a.tenant_id
         WHERE a.provider = 'google' AND a.push_channel_id IS NOT NULL
           AND a.push_token_hash IS NOT NULL AND a.disconnected_at IS NULL
           AND t.deleted_at IS NULL
           AND (a.push_expires_at IS NULL OR a.push_expires_at > now())
    $$;

-- tern_calsync_watch_due - see above
CREATE FUNCTION tern_calsync_watch_due(ahead_ms bigint, retry_ms bigint, lim int)
    RETURNS TABLE (tenant_id uuid, account_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        UPDATE public.oauth_accounts a SET push_attempted_at = now()
          FROM (SELECT x.tenant_id, x.id FROM public.oauth_accounts x
                  JOIN public.tenants t ON t.id = x.tenant_id
                 WHERE x.provider = 'google' AND x.disconnected_at IS NULL
                   AND NOT x.needs_reconnect AND t.deleted_at IS NULL
                   AND x.calendar_id IS NOT NULL AND x.refresh_token_sealed IS NOT NULL
                   AND (x.push_expires_at IS NULL
                        OR x.push_expires_at < now() + make_interval(secs => ahead_ms / 1000.0))
                   AND (x.push_attempted_at IS NULL
                        OR x.push_attempted_at < now() - make_interval(secs => retry_ms / 1000.0))
                 ORDER BY x.push_expires_at NULLS FIRST
                 LIMIT lim
                   FOR UPDATE OF x SKIP LOCKED) due
         WHERE a.tenant_id = due.tenant_id AND a.id = due.id
        RETURNING a.tenant_id, a.id
    $$;

REVOKE ALL ON FUNCTION tern_calendar_channels() FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_calsync_watch_due(bigint, bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_calendar_channels() TO tern_ingest;
GRANT EXECUTE ON FUNCTION tern_calsync_watch_due(bigint, bigint, int) TO tern_calsync;
