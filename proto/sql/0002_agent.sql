-- 0002_agent.sql - what tern-agent needs beyond the base schema.
--
-- Applied by `ternctl migrate` after 0001 (same rules: one transaction, never
-- edited once applied).
--
-- agent_profiles: one row per tenant, the business facts the agent's prompt
-- is built from (business name, offer, hours, service area, qualification
-- questions, tone, language) plus the tenant's own texts for the holding
-- message and the opt-out/opt-in confirmations (NULL: the daemon's default).
-- Tenant-owned: tenant_id is the key, row-level security is forced like
-- every table of 0001. The operator (tern_ctl) writes it; tern_agent only
-- reads it; tern_sweeper deletes it at offboarding.
--
-- Conversation bookkeeping (columns, see DESIGN.md "One turn at a time per
-- conversation"): conversations already carry the lease (lease_owner,
-- lease_until) and has_unprocessed from 0001. Added here:
--   messages.stream_pos    the tern:in entry id as one number (ms * 1e6 +
--                          seq): the order the lead's messages arrived in,
--                          whatever replica stored them first
--   messages.agent_outcome why an inbound message got no reply of its own:
--                          replied | holding | opt_out | opt_in | opted_out |
--                          human (DESIGN.md invariant 3: a reply, a holding
--                          message or a recorded reason)
--   messages.outbound_id   for an outbound row in messages: the
--                          outbound_messages row that carries it
--   outbound_messages.producer / reason / enqueued_at: who made the row, why
--                          (the outbound.message "reason"), and when it was
--                          XADDed to tern:out. A row the agent committed but
--                          never enqueued (kill -9 between COMMIT and XADD)
--                          is found by tern_agent_unpublished() and XADDed
--                          again. IF NOT EXISTS: tern-sender's migration may
--                          add the same columns.
--
-- Cross-tenant scans: tern_agent_due() and tern_agent_unpublished() are the
-- only cross-tenant reads tern-agent makes. They return ids only, and are
-- SECURITY DEFINER (like tern_routing) instead of giving tern_agent
-- BYPASSRLS: every read of content still happens in a transaction bound to
-- the tenant.

-- ------------------------------------------------------------------ agent_profiles

CREATE TABLE agent_profiles (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    business_name text NOT NULL CHECK (business_name <> ''),
    offer text,
    hours_text text,
    service_area text,
    -- JSON array of strings, asked one at a time
    qualification_questions jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(qualification_questions) = 'array'),
    tone text,
    language text, -- BCP 47, e.g. 'en', 'de'; NULL: answer in the lead's language
    extra_instructions text,
    holding_message text,
    optout_confirmation text,
    optin_confirmation text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);

ALTER TABLE agent_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_profiles
    USING (tenant_id = tern_current_tenant())
    WITH CHECK (tenant_id = tern_current_tenant());

-- ------------------------------------------------------------------ columns

ALTER TABLE messages
    ADD COLUMN stream_pos bigint,
    ADD COLUMN agent_outcome text
        CHECK (agent_outcome IN ('replied', 'holding', 'opt_out', 'opt_in', 'opted_out', 'human')),
    ADD COLUMN outbound_id uuid;
CREATE INDEX messages_unprocessed ON messages (tenant_id, conversation_id, stream_pos)
    WHERE direction = 'in' AND processed_at IS NULL;

ALTER TABLE outbound_messages
    ADD COLUMN IF NOT EXISTS producer text,
    ADD COLUMN IF NOT EXISTS reason text,
    ADD COLUMN IF NOT EXISTS enqueued_at timestamptz;
CREATE INDEX outbound_agent_unpublished ON outbound_messages (created_at)
    WHERE producer = 'agent' AND enqueued_at IS NULL AND state = 'queued';

-- ------------------------------------------------------------------ scans

-- tern_agent_due - conversations with unprocessed input whose lease is free
-- or expired (a holder died mid-turn), oldest input first.
CREATE FUNCTION tern_agent_due(lim int)
    RETURNS TABLE (tenant_id uuid, conversation_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT c.tenant_id, c.id
          FROM public.conversations c JOIN public.tenants t ON t.id = c.tenant_id
         WHERE c.has_unprocessed AND (c.lease_until IS NULL OR c.lease_until < now())
           AND t.deleted_at IS NULL
         ORDER BY c.last_inbound_at
         LIMIT lim
    $$;

-- tern_agent_unpublished - agent outbound rows committed at least older_ms
-- ago and never confirmed as XADDed.
CREATE FUNCTION tern_agent_unpublished(older_ms int, lim int)
    RETURNS TABLE (tenant_id uuid, outbound_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT o.tenant_id, o.id
          FROM public.outbound_messages o
         WHERE o.producer = 'agent' AND o.enqueued_at IS NULL AND o.state = 'queued'
           AND o.created_at < now() - make_interval(secs => older_ms / 1000.0)
         ORDER BY o.created_at
         LIMIT lim
    $$;

REVOKE ALL ON FUNCTION tern_agent_due(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_agent_unpublished(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_agent_due(int), tern_agent_unpublished(int, int) TO tern_agent;

-- ------------------------------------------------------------------ grants

GRANT SELECT ON agent_profiles TO tern_agent;
GRANT SELECT, INSERT, UPDATE ON agent_profiles TO tern_ctl;
GRANT SELECT, DELETE ON agent_profiles TO tern_sweeper;
