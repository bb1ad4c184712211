-- 0015_agent_intake_set.sql - tern-agent's batched intake, set-based.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- tern_agent_intake_batch() of 0013 ran tern_agent_intake() once per
-- element: about seven statements per inbound message (channel, contact,
-- lead, conversation, message, flag), each with its executor start-up, its
-- row-security check and its plpgsql overhead. Measured with 10,000
-- messages queued at once (tests/bench/agent/run.sh), Postgres spent about
-- 0.2 ms of CPU per message there, and storing the burst took ~7 s.
--
-- This version keeps the signature, the result and every guarantee of 0013
-- and does the same steps once per batch instead of once per element:
--
--   channels       one lookup for all elements
--   contacts       one INSERT ... ON CONFLICT DO UPDATE of the distinct
--                  (kind, address) pairs, in address order
--   leads          one INSERT ... ON CONFLICT of the distinct contacts
--   conversations  one INSERT ... ON CONFLICT DO NOTHING of the distinct
--                  (contact, channel) pairs; a conversation created here is
--                  created flagged (has_unprocessed, last_inbound_at), which
--                  saves the second row version the flag UPDATE used to write
--                  for every first message of a lead
--   messages       one INSERT ... ON CONFLICT DO NOTHING, in arrival order;
--                  a message of an opted-out or restricted contact is
--                  inserted already processed with its outcome, instead of
--                  being inserted and then updated
--   flag           one UPDATE of the already existing conversations that got
--                  a new message needing a turn
--
-- Unchanged: the transaction is bound to p_tenant; a repeated provider
-- message id (also twice in one batch: the first in arrival order wins)
-- changes nothing; an element whose channel is not the tenant's (or is
-- disabled) gets no row; a conversation inserted concurrently but not yet
-- visible raises 40001 (tern-agent then stores the entries one by one);
-- a closed conversation is reopened. Rows are locked in one order per
-- statement (contacts by address, leads by contact, conversations by
-- contact and channel), so two concurrent batches of one tenant do not
-- deadlock on them.
--
-- Every statement is planned for the call at hand (plan_cache_mode): a
-- plan costs well under a millisecond, a batch carries hundreds of
-- messages, and a generic plan cached while the tables were small (a fresh
-- database, before autovacuum's first ANALYZE) would go on scanning them
-- whole once they are not.
--
-- Element-wise values travel between the statements as arrays aligned with
-- the parameters and are read back with multi-argument unnest(), which is
-- linear (subscripting a text array in a loop is not).

CREATE OR REPLACE FUNCTION tern_agent_intake_batch(p_tenant uuid, p_channels uuid[],
        p_senders text[], p_names text[], p_transports text[], p_pmids text[], p_types text[],
        p_bodies text[], p_media_refs text[], p_raws jsonb[], p_stream_pos bigint[])
    RETURNS TABLE (ord int, contact uuid, conversation uuid, message uuid, silent text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan
    AS $$
DECLARE
    v_n int := COALESCE(cardinality(p_channels), 0);
    v_kinds text[];   -- element i: its channel's kind, NULL when not the tenant's
    v_ct uuid[];      -- element i: its contact
    v_why text[];     -- element i: why its contact gets no turn, or NULL
    v_conv uuid[];    -- element i: its conversation
    v_ids uuid[];     -- element i: the id its message gets when it is new
    v_new uuid[];     -- the ids of the messages inserted
    v_flagged uuid[]; -- conversations created here, already flagged
    v_reopen boolean;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    IF COALESCE(cardinality(p_senders), 0) <> v_n OR COALESCE(cardinality(p_names), 0) <> v_n
       OR COALESCE(cardinality(p_transports), 0) <> v_n
       OR COALESCE(cardinality(p_pmids), 0) <> v_n OR COALESCE(cardinality(p_types), 0) <> v_n
       OR COALESCE(cardinality(p_bodies), 0) <> v_n
       OR COALESCE(cardinality(p_media_refs), 0) <> v_n
       OR COALESCE(cardinality(p_raws), 0) <> v_n
       OR COALESCE(cardinality(p_stream_pos), 0) <> v_n THEN
        RAISE EXCEPTION 'array lengths differ' USING ERRCODE = '22023';
    END IF;
    IF v_n = 0 THEN
        RETURN;
    END IF;

    SELECT array_agg(ch.kind ORDER BY u.i), array_agg(gen_random_uuid())
      INTO v_kinds, v_ids
      FROM unnest(p_channels) WITH ORDINALITY AS u(ch_id, i)
      LEFT JOIN channels ch ON ch.tenant_id = p_tenant AND ch.id = u.ch_id AND ch.enabled;

    -- contacts: the last name given wins, as when the messages were stored
    -- one after the other
    WITH want AS (
        SELECT DISTINCT ON (u.kind, u.addr) u.kind, u.addr, u.nm
          FROM unnest(v_kinds, p_senders, p_names) WITH ORDINALITY AS u(kind, addr, nm, i)
         WHERE u.kind IS NOT NULL
         ORDER BY u.kind, u.addr, u.nm IS NULL, u.i DESC),
    up AS (
        INSERT INTO contacts AS ct (tenant_id, kind, address, display_name)
        SELECT p_tenant, w.kind, w.addr, w.nm FROM want w ORDER BY w.addr, w.kind
        ON CONFLICT (tenant_id, kind, address) DO UPDATE
            SET display_name = COALESCE(EXCLUDED.display_name, ct.display_name)
        RETURNING ct.id, ct.kind, ct.address,
            CASE WHEN ct.restricted_at IS NOT NULL THEN 'restricted'
                 WHEN ct.opted_out_at IS NOT NULL THEN 'opted_out' END AS why)
    SELECT array_agg(up.id ORDER BY u.i), array_agg(up.why ORDER BY u.i) INTO v_ct, v_why
      FROM unnest(v_kinds, p_senders) WITH ORDINALITY AS u(kind, addr, i)
      LEFT JOIN up ON up.kind = u.kind AND up.address = u.addr;

    -- leads on first contact: the first name given, else a later one
    INSERT INTO leads AS l (tenant_id, contact_id, name, source_channel)
    SELECT p_tenant, x.ct, x.nm, x.tr FROM (
        SELECT DISTINCT ON (u.ct) u.ct, u.nm, u.tr
          FROM unnest(v_ct, p_names, p_transports) WITH ORDINALITY AS u(ct, nm, tr, i)
         WHERE u.ct IS NOT NULL
         ORDER BY u.ct, u.nm IS NULL, u.i) x
     ORDER BY x.ct
    ON CONFLICT (tenant_id, contact_id) DO UPDATE
        SET name = EXCLUDED.name, updated_at = now()
        WHERE l.name IS NULL AND EXCLUDED.name IS NOT NULL;

    -- conversations: a new one is flagged at once when one of its messages
    -- needs a turn (corrected below if every such message was a repeat)
    WITH pairs AS (
        SELECT u.ct, u.ch, bool_or(u.why IS NULL) AS wants
          FROM unnest(v_ct, p_channels, v_why) AS u(ct, ch, why)
         WHERE u.ct IS NOT NULL
         GROUP BY u.ct, u.ch),
    ins AS (
        INSERT INTO conversations AS c (tenant_id, contact_id, channel_id, has_unprocessed,
                last_inbound_at)
        SELECT p_tenant, p.ct, p.ch, p.wants, CASE WHEN p.wants THEN now() END
          FROM pairs p ORDER BY p.ct, p.ch
        ON CONFLICT DO NOTHING
        RETURNING c.id, c.has_unprocessed)
    SELECT array_agg(ins.id) FILTER (WHERE ins.has_unprocessed) INTO v_flagged FROM ins;

    -- a new statement: sees the rows inserted above and those that
    -- concurrent transactions committed while we waited on a conflict
    SELECT array_agg(c.id ORDER BY u.i), COALESCE(bool_or(c.status <> 'open'), false)
      INTO v_conv, v_reopen
      FROM unnest(v_ct, p_channels) WITH ORDINALITY AS u(ct, ch, i)
      LEFT JOIN conversations c ON c.tenant_id = p_tenant AND c.contact_id = u.ct
                               AND c.channel_id = u.ch;
    IF EXISTS (SELECT 1 FROM unnest(v_ct, v_conv) AS u(ct, cv)
                WHERE u.ct IS NOT NULL AND u.cv IS NULL) THEN
        RAISE EXCEPTION 'conversation not visible yet' USING ERRCODE = '40001';
    END IF;
    IF v_reopen THEN
        UPDATE conversations c SET status = 'open'
         WHERE c.tenant_id = p_tenant AND c.id = ANY (v_conv) AND c.status <> 'open';
    END IF;

    -- messages, in arrival order; silent ones are stored already processed
    WITH ins AS (
        INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction,
                provider_message_id, type, body, media_ref, raw, stream_pos, processed_at,
                agent_outcome)
        SELECT u.id, p_tenant, u.cv, u.ch, 'in', u.pmid, u.ty, u.body, u.media, u.raw, u.pos,
               CASE WHEN u.why IS NOT NULL THEN now() END, u.why
          FROM unnest(v_ids, v_conv, p_channels, p_pmids, p_types, p_bodies, p_media_refs,
                      p_raws, p_stream_pos, v_why)
               WITH ORDINALITY AS u(id, cv, ch, pmid, ty, body, media, raw, pos, why, i)
         WHERE u.cv IS NOT NULL
         ORDER BY u.i
        ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING
        RETURNING id)
    SELECT array_agg(ins.id) INTO v_new FROM ins;

    -- flag the conversations that existed before and got input for a turn
    UPDATE conversations c SET has_unprocessed = true, last_inbound_at = now()
      FROM (SELECT DISTINCT u.cv FROM unnest(v_ids, v_conv, v_why) AS u(id, cv, why)
             WHERE u.why IS NULL AND u.id IN (SELECT unnest(v_new))
               AND u.cv NOT IN (SELECT unnest(COALESCE(v_flagged, '{}')))
             ORDER BY u.cv) x
     WHERE c.tenant_id = p_tenant AND c.id = x.cv;
    -- a conversation created flagged whose every message was a repeat
    IF EXISTS (SELECT 1 FROM unnest(v_flagged) AS f(cv)
                WHERE f.cv NOT IN (SELECT u.cv FROM unnest(v_ids, v_conv, v_why) AS u(id, cv, why)
                                    WHERE u.why IS NULL AND u.id IN (SELECT unnest(v_new)))) THEN
        UPDATE conversations c SET has_unprocessed = false, last_inbound_at = NULL
         WHERE c.tenant_id = p_tenant AND c.id = ANY (v_flagged)
           AND c.id NOT IN (SELECT u.cv FROM unnest(v_ids, v_conv, v_why) AS u(id, cv, why)
                             WHERE u.why IS NULL AND u.id IN (SELECT unnest(v_new)));
    END IF;

    RETURN QUERY
        SELECT u.i::int, u.ct, u.cv, CASE WHEN u.id IN (SELECT unnest(v_new)) THEN u.id END, u.why
          FROM unnest(v_kinds, v_ct, v_conv, v_ids, v_why)
               WITH ORDINALITY AS u(kind, ct, cv, id, why, i)
         WHERE u.kind IS NOT NULL;
END
$$;
