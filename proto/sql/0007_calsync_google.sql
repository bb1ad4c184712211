-- 0007_calsync_google.sql - what tern-calsync needs for Google Calendar.
--
-- Applied by `ternctl migrate` after 0006 (one transaction, never edited once
-- applied).
--   oauth_accounts  + provider_subject: Google's `sub`, the stable account id
--                     (email can change); one live account per tenant,
--                     provider, subject and resource, so a reconnect updates
--                     the row instead of adding one
--                   + connect_request: the cal.request id that last stored
--                     the tokens; a redelivered connect entry is recognised
--                     by it and not exchanged twice
--                   + reconnect_reason, reconnect_flagged_at: why and since
--                     when needs_reconnect (0001) is set (invalid_grant:
--                     the refresh token is dead and retrying never helps)
--   tenants         + calendar_send_updates: the sendUpdates parameter of
--                     Google event writes (all | externalOnly | none)
-- Tokens stay sealed as in 0001 (aad "oauth:<tenant>:<account>:access" and
-- ":refresh"). tern_calsync already has SELECT/INSERT/UPDATE on
-- oauth_accounts and INSERT on audit_log (the reconnect flag for the tenant).

ALTER TABLE oauth_accounts
    ADD COLUMN provider_subject text CHECK (length(provider_subject) <= 255),
    ADD COLUMN connect_request text CHECK (length(connect_request) <= 128),
    ADD COLUMN reconnect_reason text CHECK (length(reconnect_reason) <= 200),
    ADD COLUMN reconnect_flagged_at timestamptz;

CREATE UNIQUE INDEX oauth_accounts_subject
    ON oauth_accounts (tenant_id, provider, provider_subject, COALESCE(resource_id, ''))
    WHERE provider_subject IS NOT NULL AND disconnected_at IS NULL;
CREATE INDEX oauth_accounts_connect_request
    ON oauth_accounts (tenant_id, connect_request) WHERE connect_request IS NOT NULL;

ALTER TABLE tenants
    ADD COLUMN calendar_send_updates text NOT NULL DEFAULT 'none'
        CHECK (calendar_send_updates IN ('all', 'externalOnly', 'none'));
GRANT SELECT (calendar_send_updates) ON tenants TO tern_daemon;
