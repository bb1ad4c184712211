-- 0011_agent_perf.sql - tern-agent's per-turn transactions as one statement
-- each.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- A turn used to cost about 35 round trips to Postgres (intake, claim/load,
-- commit, enqueued mark, each a BEGIN, a tenant binding, many small
-- statements and a COMMIT). With thousands of turns in flight the pool's
-- connections, not the model, were the limit. These functions do the same
-- steps, in the same order and with the same locks, inside one call:
--
--   tern_agent_intake   contact, lead, conversation, message, flag (the
--                       keyword path still adds its own steps in C, in the
--                       same transaction)
--   tern_agent_claim    lease, and everything the prompt needs, as jsonb
--   tern_agent_commit   lease check (row lock first), reply, lead changes,
--                       transcripts, human flag, processed marks, release
--   tern_agent_enqueued enqueued_at for many published replies at once
--
-- They are SECURITY INVOKER: row-level security applies exactly as before.
-- Each binds its transaction to p_tenant first (the same set_config that
-- tn_pgconn_begin_tenant makes), so a call in autocommit mode is a whole
-- tenant transaction: one round trip. In READ COMMITTED every statement of a
-- plpgsql function takes a new snapshot, so the commit's "input left?" still
-- sees every intake that committed while it waited for the row lock.

-- ------------------------------------------------------------------ intake

-- tern_agent_intake - store one inbound message. p_keyword: 'none',
-- 'opt_out' or 'opt_in' (an opt-in from a subscribed contact is plain text).
-- Returns no row when the channel is not the tenant's (or disabled); else
-- the ids (message NULL: a repeat), whether the contact had opted out, why
-- the contact gets no turn (NULL, 'opted_out', 'restricted'), and the keyword
-- still to record (the caller records it in the same transaction).
CREATE FUNCTION tern_agent_intake(p_tenant uuid, p_channel uuid, p_sender text, p_name text,
        p_transport text, p_pmid text, p_type text, p_body text, p_media_ref text,
        p_raw jsonb, p_stream_pos bigint, p_keyword text)
    RETURNS TABLE (contact uuid, conversation uuid, message uuid, opted_out boolean,
        silent text, keyword text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_kind text;
    v_restricted boolean;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    SELECT ch.kind INTO v_kind FROM channels ch
     WHERE ch.tenant_id = p_tenant AND ch.id = p_channel AND ch.enabled;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO contacts AS ct (tenant_id, kind, address, display_name)
        VALUES (p_tenant, v_kind, p_sender, p_name)
        ON CONFLICT (tenant_id, kind, address) DO UPDATE
        SET display_name = COALESCE(EXCLUDED.display_name, ct.display_name)
        RETURNING ct.id, ct.opted_out_at IS NOT NULL, ct.restricted_at IS NOT NULL
        INTO contact, opted_out, v_restricted;
    silent := CASE WHEN v_restricted THEN 'restricted' WHEN opted_out THEN 'opted_out' END;
    INSERT INTO leads AS l (tenant_id, contact_id, name, source_channel)
        VALUES (p_tenant, contact, p_name, p_transport)
        ON CONFLICT (tenant_id, contact_id) DO UPDATE
        SET name = EXCLUDED.name, updated_at = now()
        WHERE l.name IS NULL AND EXCLUDED.name IS NOT NULL;
    INSERT INTO conversations (tenant_id, contact_id, channel_id)
        VALUES (p_tenant, contact, p_channel) ON CONFLICT DO NOTHING
        RETURNING id INTO conversation;
    IF conversation IS NULL THEN
        UPDATE conversations c SET status = 'open'
         WHERE c.tenant_id = p_tenant AND c.contact_id = contact AND c.channel_id = p_channel
           AND c.status <> 'open' RETURNING c.id INTO conversation;
    END IF;
    IF conversation IS NULL THEN
        SELECT c.id INTO conversation FROM conversations c
         WHERE c.tenant_id = p_tenant AND c.contact_id = contact AND c.channel_id = p_channel;
    END IF;
    IF conversation IS NULL THEN -- a concurrent insert we cannot see yet: retry
        RAISE EXCEPTION 'conversation not visible yet' USING ERRCODE = '40001';
    END IF;
    INSERT INTO messages (tenant_id, conversation_id, channel_id, direction,
            provider_message_id, type, body, media_ref, raw, stream_pos)
        VALUES (p_tenant, conversation, p_channel, 'in', p_pmid, p_type, p_body, p_media_ref,
            p_raw, p_stream_pos)
        ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING
        RETURNING id INTO message;
    keyword := CASE WHEN p_keyword = 'opt_in' AND NOT opted_out THEN 'none' ELSE p_keyword END;
    IF message IS NOT NULL AND keyword = 'none' THEN
        IF silent IS NOT NULL THEN
            UPDATE messages m SET processed_at = now(), agent_outcome = silent
             WHERE m.tenant_id = p_tenant AND m.id = message;
        ELSE
            UPDATE conversations c SET has_unprocessed = true, last_inbound_at = now()
             WHERE c.tenant_id = p_tenant AND c.id = conversation;
        END IF;
    END IF;
    RETURN NEXT;
END
$$;

-- ------------------------------------------------------------------ claim

-- tern_agent_claim - take or keep the lease with p_token and load the turn's
-- input: {"claimed", "wait_ms"} while the quiet window lasts, else also
-- "fresh" (unprocessed inbound messages in arrival order, at most p_fresh),
-- the conversation's state, and - when there is input and no reason for
-- silence - "lead", "history" (the last p_hist processed messages, oldest
-- first), "profile", "services" and "now_text" (in the tenant's zone).
CREATE FUNCTION tern_agent_claim(p_tenant uuid, p_conv uuid, p_token text, p_lease_ms bigint,
        p_quiet_ms bigint, p_fresh int, p_hist int)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_wait bigint;
    v_out jsonb;
    v_st record;
    v_tz text;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    UPDATE conversations c SET lease_owner = p_token,
           lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.has_unprocessed
       AND (c.lease_owner IS NULL OR c.lease_until < now() OR c.lease_owner = p_token)
    RETURNING GREATEST(0, p_quiet_ms - extract(epoch FROM clock_timestamp() -
        COALESCE(c.last_inbound_at, '-infinity')) * 1000)::bigint INTO v_wait;
    IF NOT FOUND THEN
        RETURN '{"claimed": false}';
    END IF;
    IF v_wait > 0 THEN
        RETURN jsonb_build_object('claimed', true, 'wait_ms', v_wait);
    END IF;
    SELECT c.contact_id, c.channel_id, ch.kind, c.human_takeover,
           ct.opted_out_at IS NOT NULL AS opted_out, ct.restricted_at IS NOT NULL AS restricted
      INTO v_st FROM conversations c
      JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
      JOIN channels ch ON ch.tenant_id = c.tenant_id AND ch.id = c.channel_id
     WHERE c.tenant_id = p_tenant AND c.id = p_conv;
    v_out := jsonb_build_object('claimed', true, 'wait_ms', 0,
        'contact', v_st.contact_id, 'channel', v_st.channel_id, 'kind', v_st.kind,
        'silent', CASE WHEN v_st.restricted THEN 'restricted' WHEN v_st.opted_out THEN 'opted_out'
                       WHEN v_st.human_takeover THEN 'human' END,
        'fresh', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', f.id, 'type', f.type,
                'body', f.body, 'pos', f.stream_pos, 'media_ref', f.media_ref,
                'transcript', f.transcript) ORDER BY f.ord)
            FROM (SELECT m.*, row_number() OVER (ORDER BY m.stream_pos NULLS LAST, m.created_at) AS ord
                    FROM messages m WHERE m.tenant_id = p_tenant AND m.conversation_id = p_conv
                     AND m.direction = 'in' AND m.processed_at IS NULL
                   ORDER BY m.stream_pos NULLS LAST, m.created_at LIMIT p_fresh) f), '[]'));
    IF jsonb_array_length(v_out -> 'fresh') = 0 OR v_out ->> 'silent' IS NOT NULL THEN
        RETURN v_out;
    END IF;
    SELECT t.time_zone INTO v_tz FROM tenants t WHERE t.id = p_tenant;
    PERFORM set_config('TimeZone', v_tz, true);
    RETURN v_out || jsonb_build_object(
        'lead', (SELECT jsonb_build_object('name', l.name, 'status', l.status,
                    'answers', l.answers::text, 'has_email', l.email IS NOT NULL)
                   FROM leads l WHERE l.tenant_id = p_tenant AND l.contact_id = v_st.contact_id),
        'history', COALESCE((SELECT jsonb_agg(jsonb_build_object('in', h.direction = 'in',
                    'id', h.id, 'type', h.type, 'body', h.body, 'transcript', h.transcript)
                    ORDER BY h.created_at)
            FROM (SELECT m.* FROM messages m WHERE m.tenant_id = p_tenant
                     AND m.conversation_id = p_conv
                     AND (m.direction = 'out' OR m.processed_at IS NOT NULL)
                   ORDER BY m.created_at DESC LIMIT p_hist) h), '[]'),
        'profile', (SELECT jsonb_build_object('tenant_name', t.name, 'tz', t.time_zone,
                    'business', p.business_name, 'offer', p.offer, 'hours', p.hours_text,
                    'area', p.service_area, 'questions', p.qualification_questions::text,
                    'tone', p.tone, 'language', p.language, 'extra', p.extra_instructions,
                    'holding', p.holding_message)
                   FROM tenants t LEFT JOIN agent_profiles p ON p.tenant_id = t.id
                  WHERE t.id = p_tenant),
        'services', (SELECT string_agg(s.name || ' (' || s.duration_min || ' min)', ', '
                    ORDER BY s.name) FROM services s WHERE s.tenant_id = p_tenant AND s.active),
        'now_text', to_char(now(), 'FMDay, YYYY-MM-DD HH24:MI "(UTC"TZH:TZM")"'));
END
$$;

-- ------------------------------------------------------------------ commit

-- tern_agent_settle - mark the batch processed with p_outcome, release the
-- lease, say whether input is left; NULL when the lease is not p_token's.
CREATE FUNCTION tern_agent_settle(p_tenant uuid, p_conv uuid, p_token text, p_fresh uuid[],
        p_outcome text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_more boolean;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    UPDATE messages m SET processed_at = now(), agent_outcome = p_outcome
     WHERE m.tenant_id = p_tenant AND m.id = ANY (p_fresh) AND m.processed_at IS NULL;
    UPDATE conversations c SET lease_owner = NULL, lease_until = NULL,
           has_unprocessed = EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = p_tenant
               AND m.conversation_id = p_conv AND m.direction = 'in' AND m.processed_at IS NULL)
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.lease_owner = p_token
    RETURNING c.has_unprocessed INTO v_more;
    RETURN v_more;
END
$$;

-- tern_agent_commit - the turn's result, only while p_token holds the lease:
-- {"conflict": true} when it does not; else {"outcome", "has_more", "out"}
-- with "out" the reply as a tern:out entry (absent when no reply is due:
-- opted out, restricted or taken over during the turn). p_lead holds the
-- validated update_lead fields (or NULL), p_transcripts {message id: text}.
CREATE FUNCTION tern_agent_commit(p_tenant uuid, p_conv uuid, p_token text, p_key text,
        p_reply text, p_reason text, p_handoff boolean, p_lead jsonb, p_fresh uuid[],
        p_transcripts jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_st record;
    v_outcome text;
    v_out uuid;
    v_more boolean;
    v_row jsonb;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    SELECT c.contact_id, c.channel_id, ct.opted_out_at IS NOT NULL AS opted_out,
           c.human_takeover, ct.restricted_at IS NOT NULL AS restricted
      INTO v_st FROM conversations c
      JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.lease_owner = p_token
       FOR UPDATE OF c;
    IF NOT FOUND THEN
        RETURN '{"conflict": true}';
    END IF;
    v_outcome := CASE WHEN v_st.restricted THEN 'restricted' WHEN v_st.opted_out THEN 'opted_out'
                      WHEN v_st.human_takeover THEN 'human'
                      WHEN p_reason = 'holding' THEN 'holding' ELSE 'replied' END;
    IF p_transcripts IS NOT NULL THEN
        UPDATE messages m SET transcript = t.value
          FROM jsonb_each_text(p_transcripts) t
         WHERE m.tenant_id = p_tenant AND m.id = t.key::uuid;
    END IF;
    IF v_outcome IN ('replied', 'holding') THEN
        INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
                idempotency_key, body, producer, reason)
            VALUES (p_tenant, p_conv, v_st.contact_id, v_st.channel_id, p_key, p_reply, 'agent',
                p_reason)
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id INTO v_out;
        IF v_out IS NULL THEN -- the same turn ran before: reuse its row
            SELECT o.id INTO v_out FROM outbound_messages o
             WHERE o.tenant_id = p_tenant AND o.idempotency_key = p_key;
        ELSE
            INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body,
                    outbound_id, processed_at)
                VALUES (p_tenant, p_conv, v_st.channel_id, 'out', p_reply, v_out, now());
        END IF;
        IF p_lead IS NOT NULL THEN
            UPDATE leads l SET name = COALESCE(p_lead ->> 'name', l.name),
                   email = COALESCE(p_lead ->> 'email', l.email),
                   status = COALESCE(p_lead ->> 'status', l.status),
                   answers = l.answers || CASE WHEN jsonb_typeof(p_lead -> 'answers') = 'object'
                                               THEN p_lead -> 'answers' ELSE '{}' END,
                   updated_at = now()
             WHERE l.tenant_id = p_tenant AND l.contact_id = v_st.contact_id;
        END IF;
        UPDATE leads l SET first_response_ms = LEAST(2147483647, extract(epoch FROM
               clock_timestamp() - m.first) * 1000)::int
          FROM (SELECT min(x.created_at) AS first FROM messages x WHERE x.tenant_id = p_tenant
                   AND x.conversation_id = p_conv AND x.direction = 'in') m
         WHERE l.tenant_id = p_tenant AND l.contact_id = v_st.contact_id
           AND l.first_response_ms IS NULL;
        IF p_handoff OR p_reason = 'holding' THEN
            UPDATE conversations c SET human_takeover = true
             WHERE c.tenant_id = p_tenant AND c.id = p_conv;
        END IF;
        SELECT jsonb_build_object('id', o.id, 'channel', o.channel_id, 'kind', ch.kind,
                   'to', ct.address, 'conversation', o.conversation_id, 'contact', o.contact_id,
                   'text', o.body, 'reason', COALESCE(o.reason, 'reply'),
                   'created_at', to_char(o.created_at AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'not_before', CASE WHEN o.not_before > now() THEN
                       to_char(o.not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END)
          INTO v_row FROM outbound_messages o
          JOIN channels ch ON ch.tenant_id = o.tenant_id AND ch.id = o.channel_id
          JOIN contacts ct ON ct.tenant_id = o.tenant_id AND ct.id = o.contact_id
         WHERE o.tenant_id = p_tenant AND o.id = v_out;
    END IF;
    v_more := tern_agent_settle(p_tenant, p_conv, p_token, p_fresh, v_outcome);
    RETURN jsonb_build_object('outcome', v_outcome, 'has_more', v_more, 'out', v_row);
END
$$;

-- ------------------------------------------------------------------ enqueued

-- tern_agent_enqueued - enqueued_at = now() for the tenant's replies p_ids
-- (XADDed to tern:out); a row marked before keeps its time.
CREATE FUNCTION tern_agent_enqueued(p_tenant uuid, p_ids uuid[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    UPDATE outbound_messages o SET enqueued_at = now()
     WHERE o.tenant_id = p_tenant AND o.id = ANY (p_ids) AND o.enqueued_at IS NULL;
END
$$;

REVOKE ALL ON FUNCTION tern_agent_intake(uuid, uuid, text, text, text, text, text, text, text,
    jsonb, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_agent_claim(uuid, uuid, text, bigint, bigint, int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_agent_settle(uuid, uuid, text, uuid[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_agent_commit(uuid, uuid, text, text, text, text, boolean, jsonb,
    uuid[], jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_agent_enqueued(uuid, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_agent_intake(uuid, uuid, text, text, text, text, text, text, text,
    jsonb, bigint, text), tern_agent_claim(uuid, uuid, text, bigint, bigint, int, int),
    tern_agent_settle(uuid, uuid, text, uuid[], text),
    tern_agent_commit(uuid, uuid, text, text, text, text, boolean, jsonb, uuid[], jsonb),
    tern_agent_enqueued(uuid, uuid[]) TO tern_agent;
