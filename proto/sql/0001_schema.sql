-- 0001_schema.sql - Tern's base schema, row-level security and per-daemon roles.
--
-- Applied by `ternctl migrate` (TN_PG_DSN = the admin DSN, a superuser) in one
-- transaction together with its tern_migrations row. Never edit this file
-- once applied anywhere: add 0002_*.sql instead.
--
-- Tenancy. Every tenant-owned table has tenant_id in its primary key and in
-- every foreign key, so the schema can later be distributed by tenant. Row-
-- level security is enabled and FORCED on each of them with one policy:
--     tenant_id = tern_current_tenant()
-- where tern_current_tenant() is the transaction setting tern.tenant_id
-- (tn_pgconn_begin_tenant). A session without the setting sees no rows and
-- can write none. `tenants` itself is the directory of tenants (no personal
-- data); every daemon may read it, only the operator (tern_ctl) and the
-- sweeper (offboarding) may change it.
--
-- Roles (cluster-wide, created here when missing; LOGIN without a password:
-- operators set one, or use peer/cert auth):
--   tern_daemon   NOLOGIN group: schema USAGE, SELECT on tenants
--   tern_ingest   no table access; EXECUTE tern_routing() (SECURITY DEFINER)
--   tern_agent    S/I/U contacts, conversations, messages, leads, bookings,
--                 services, consent_events, outbound_messages; channels
--                 without the secrets column; INSERT audit_log
--   tern_calsync  S/I/U oauth_accounts, S/U bookings, S services; INSERT audit_log
--   tern_sender   S/I/U outbound_messages; S contacts, consent_events,
--                 suppressions, channels (with secrets: it sends), messages;
--                 INSERT audit_log
--   tern_sweeper  S/D on every tenant-owned table, U where erasure redacts,
--                 I audit_log, privacy_requests, suppressions; S/U/D tenants
--   tern_ctl      the operator's role: BYPASSRLS, SELECT everywhere,
--                 writes tenants, channels, services, privacy_requests,
--                 audit_log, outbound_messages (dead-letter replay). ternctl
--                 usually runs with the admin DSN; migrate requires it.
-- Only tern_sweeper (and the operator) may DELETE.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ------------------------------------------------------------------ roles

DO $$
DECLARE
    r text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tern_daemon') THEN
        CREATE ROLE tern_daemon NOLOGIN;
    END IF;
    FOREACH r IN ARRAY ARRAY['tern_ingest', 'tern_agent', 'tern_calsync', 'tern_sender',
                             'tern_sweeper', 'tern_ctl'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END
$$;

ALTER ROLE tern_ctl BYPASSRLS;
GRANT tern_daemon TO tern_ingest, tern_agent, tern_calsync, tern_sender, tern_sweeper;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO tern_daemon, tern_ctl;

-- ------------------------------------------------------------------ helpers

-- tern_current_tenant - the tenant this transaction is bound to, or NULL.
-- NULLIF: after a transaction-local set_config the setting exists as ''.
CREATE FUNCTION tern_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('tern.tenant_id', true), '')::uuid $$;

-- tern_valid_time_zone - is tz an IANA zone name the server knows?
-- (Not `now() AT TIME ZONE tz` alone: that also accepts POSIX offsets.)
CREATE FUNCTION tern_valid_time_zone(tz text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
    AS $$ SELECT tz IS NOT NULL AND tz NOT LIKE 'posix/%'
             AND EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz) $$;

-- ------------------------------------------------------------------ tenants

CREATE TABLE tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name text NOT NULL,
    time_zone text NOT NULL DEFAULT 'UTC' CHECK (tern_valid_time_zone(time_zone)),
    retain_messages_days int NOT NULL DEFAULT 365 CHECK (retain_messages_days > 0),
    retain_raw_days int NOT NULL DEFAULT 30 CHECK (retain_raw_days > 0),
    retain_metadata_days int NOT NULL DEFAULT 730 CHECK (retain_metadata_days > 0),
    retain_status_days int NOT NULL DEFAULT 90 CHECK (retain_status_days > 0),
    retain_audit_days int NOT NULL DEFAULT 1095 CHECK (retain_audit_days > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

-- ------------------------------------------------------------------ channels

CREATE TABLE channels (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL
        CHECK (kind IN ('whatsapp', 'twilio_sms', 'twilio_whatsapp', 'telegram', 'email')),
    -- phone_number_id / Twilio number / bot id / mailbox: what a webhook names
    external_address text NOT NULL CHECK (external_address <> ''),
    display_name text,
    -- tn_seal(JSON of app secret, verify token, auth token, bot secret token),
    -- aad "channel:<tenant_id>:<id>"
    secrets_sealed bytea,
    secrets_key_id int,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- XXX: global, not per tenant: a webhook must route to exactly one tenant.
    -- Distributed, this becomes a routing (reference) table.
    UNIQUE (kind, external_address)
);

-- ------------------------------------------------------------------ contacts

CREATE TABLE contacts (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL
        CHECK (kind IN ('whatsapp', 'twilio_sms', 'twilio_whatsapp', 'telegram', 'email')),
    address text NOT NULL, -- the lead's phone / chat id / email
    display_name text,
    email text,
    opted_out_at timestamptz,
    restricted_at timestamptz,
    erased_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, kind, address)
);

-- ------------------------------------------------------------------ conversations

CREATE TABLE conversations (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    human_takeover boolean NOT NULL DEFAULT false,
    last_inbound_at timestamptz,
    lease_owner text,
    lease_until timestamptz,
    has_unprocessed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, contact_id), -- one thread per contact and channel
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id)
);
CREATE INDEX conversations_unprocessed ON conversations (tenant_id, last_inbound_at)
    WHERE has_unprocessed;

-- ------------------------------------------------------------------ messages

CREATE TABLE messages (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    provider_message_id text,
    type text NOT NULL DEFAULT 'text',
    body text,
    media_ref text,
    raw jsonb,
    processed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_message_id), -- a redelivered webhook is a no-op
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id)
);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, created_at);
CREATE INDEX messages_created ON messages (tenant_id, created_at);

-- ------------------------------------------------------------------ leads

CREATE TABLE leads (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL,
    name text,
    email text,
    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'qualified', 'booked', 'lost')),
    answers jsonb NOT NULL DEFAULT '{}',
    source_channel text,
    first_response_ms int,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, contact_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);

-- ------------------------------------------------------------------ oauth_accounts

CREATE TABLE oauth_accounts (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider text NOT NULL CHECK (provider IN ('google', 'caldav')),
    resource_id text, -- the bookable resource (staff member, room) this calendar mirrors
    account_email text,
    display_name text,
    picture_url text,
    calendar_id text,  -- provider calendar id / CalDAV collection URL
    sync_cursor text,  -- provider sync token / ctag
    access_token_sealed bytea,  -- aad "oauth:<tenant_id>:<id>:access"
    refresh_token_sealed bytea, -- aad "oauth:<tenant_id>:<id>:refresh"
    key_id int,
    expires_at timestamptz,
    needs_reconnect boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- ------------------------------------------------------------------ services, bookings

CREATE TABLE services (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    duration_min int NOT NULL CHECK (duration_min > 0),
    buffer_min int NOT NULL DEFAULT 0 CHECK (buffer_min >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE bookings (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL,
    service_id uuid NOT NULL,
    resource_id text, -- NULL: the tenant's single default resource
    resource_key text GENERATED ALWAYS AS (COALESCE(resource_id, '')) STORED,
    during tstzrange NOT NULL
        CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    status text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'confirmed', 'cancelled')),
    hold_expires_at timestamptz,
    external_event_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    -- No double booking, whatever the concurrency (SQLSTATE 23P01 -> TN_ECONFLICT).
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist
        (tenant_id WITH =, resource_key WITH =, during WITH &&) WHERE (status <> 'cancelled')
);

-- ------------------------------------------------------------------ outbound_messages

CREATE TABLE outbound_messages (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    conversation_id uuid,
    contact_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    idempotency_key text NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'dead')),
    provider_message_id text,
    not_before timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    last_error_code text,
    last_error text,
    body text,
    template jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id)
);
CREATE INDEX outbound_due ON outbound_messages (tenant_id, not_before)
    WHERE state IN ('queued', 'sending');
CREATE INDEX outbound_provider_id ON outbound_messages (tenant_id, channel_id, provider_message_id);

-- ------------------------------------------------------------------ consent, suppressions

CREATE TABLE consent_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('opt_out', 'opt_in', 'restrict', 'unrestrict')),
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);

-- An erased or opted-out address, kept only as a hash, so it is never
-- contacted again after its contact row is gone.
CREATE TABLE suppressions (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    address_hash text NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address_hash, kind)
);

-- ------------------------------------------------------------------ privacy, audit

CREATE TABLE privacy_requests (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('erase', 'export', 'restrict')),
    subject_ref text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    receipt jsonb,
    PRIMARY KEY (tenant_id, id)
);

-- detail never carries personal data: ids and counts only.
CREATE TABLE audit_log (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigserial NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_created ON audit_log (tenant_id, created_at);

-- ------------------------------------------------------------------ row-level security

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['channels', 'contacts', 'conversations', 'messages', 'leads',
                             'oauth_accounts', 'services', 'bookings', 'outbound_messages',
                             'consent_events', 'suppressions', 'privacy_requests',
                             'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (tenant_id = tern_current_tenant())'
                       ' WITH CHECK (tenant_id = tern_current_tenant())', t);
    END LOOP;
END
$$;

-- ------------------------------------------------------------------ routing for ingest

-- tern_routing - every channel's routing row, across tenants, for
-- tern-ingest's cache. The one cross-tenant read a daemon needs; SECURITY
-- DEFINER (owned by the migrating superuser, which bypasses row security)
-- instead of giving tern_ingest the table.
CREATE FUNCTION tern_routing()
    RETURNS TABLE (tenant_id uuid, channel_id uuid, kind text, external_address text,
                   secrets_sealed bytea, secrets_key_id int, enabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT c.tenant_id, c.id, c.kind, c.external_address, c.secrets_sealed,
               c.secrets_key_id, c.enabled AND t.deleted_at IS NULL
          FROM public.channels c JOIN public.tenants t ON t.id = c.tenant_id
    $$;
REVOKE ALL ON FUNCTION tern_routing() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_routing() TO tern_ingest, tern_ctl;

-- ------------------------------------------------------------------ grants

GRANT SELECT (id, slug, name, time_zone, retain_messages_days, retain_raw_days,
              retain_metadata_days, retain_status_days, retain_audit_days, created_at,
              deleted_at)
    ON tenants TO tern_daemon;

GRANT SELECT, INSERT, UPDATE ON contacts, conversations, messages, leads, bookings, services,
    consent_events, outbound_messages TO tern_agent;
GRANT SELECT (tenant_id, id, kind, external_address, display_name, enabled, created_at)
    ON channels TO tern_agent;

GRANT SELECT, INSERT, UPDATE ON oauth_accounts TO tern_calsync;
GRANT SELECT, UPDATE ON bookings TO tern_calsync;
GRANT SELECT ON services TO tern_calsync;

GRANT SELECT, INSERT, UPDATE ON outbound_messages TO tern_sender;
GRANT SELECT ON contacts, consent_events, suppressions, channels, messages TO tern_sender;

GRANT SELECT, DELETE ON channels, contacts, conversations, messages, leads, oauth_accounts,
    services, bookings, outbound_messages, consent_events, suppressions, privacy_requests,
    audit_log TO tern_sweeper;
GRANT UPDATE ON channels, contacts, conversations, messages, leads, oauth_accounts, bookings,
    outbound_messages, privacy_requests TO tern_sweeper;
GRANT INSERT ON privacy_requests, suppressions TO tern_sweeper;
GRANT UPDATE (deleted_at), DELETE ON tenants TO tern_sweeper;

GRANT INSERT ON audit_log TO tern_agent, tern_calsync, tern_sender, tern_sweeper, tern_ctl;
GRANT USAGE ON SEQUENCE audit_log_id_seq
    TO tern_agent, tern_calsync, tern_sender, tern_sweeper, tern_ctl;

GRANT SELECT ON ALL TABLES IN SCHEMA public TO tern_ctl;
GRANT INSERT, UPDATE ON tenants, channels, services, privacy_requests, outbound_messages
    TO tern_ctl;
GRANT DELETE ON channels TO tern_ctl;
