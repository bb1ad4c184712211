-- 0018_agent_commit_lean.sql - tern-agent's claim and commit with fewer
-- statements per turn.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- Measured with 10,000 turns at once (tests/bench/agent/run.sh),
-- tern_agent_commit() of 0011 was the largest Postgres cost per turn (5.4 ms
-- of statement time per call under load) and tern_agent_claim() ran for
-- every turn while the burst was still being stored. Both keep their
-- signatures, results, locks and order of effects; what changes is the
-- number of statements and rows they touch:
--
-- tern_agent_commit (0011: 8-9 statements for a reply, now 5-6)
--   lease check    the row lock also reads the channel kind and the
--                  contact's address (one join more), so the tern:out entry
--                  is built from what the function already holds: the
--                  SELECT of the stored row with its two joins is gone
--                  (INSERT ... RETURNING gives id, created_at, not_before)
--   lead           the update_lead fields and first_response_ms are one
--                  UPDATE, written only when something changes (a lead with
--                  first_response_ms set and no update_lead is not touched);
--                  the first inbound message is read from the
--                  (tenant_id, conversation_id, created_at) index, in the
--                  SET list, so only for a lead that has no figure yet
--   conversation   release, human flag and "input left?" are one UPDATE
--                  (0011: one for the flag, one in tern_agent_settle)
--   unchanged      the transcripts, the reply's INSERT ... ON CONFLICT on
--                  the idempotency key (a repeated turn reuses its row and
--                  stores no second message), the processed marks before
--                  the "input left?" test, the release only while the token
--                  holds the lease
--
-- tern_agent_claim (0011: 3 statements before the input, now 2)
--   the lease UPDATE joins contacts and channels and returns the state the
--   second SELECT used to read again (same row, same transaction).
--
-- Every statement is planned for the call (plan_cache_mode), as in 0015:
-- a generic plan cached while the tables were small would go on scanning.

-- ------------------------------------------------------------------ claim

CREATE OR REPLACE FUNCTION tern_agent_claim(p_tenant uuid, p_conv uuid, p_token text,
        p_lease_ms bigint, p_quiet_ms bigint, p_fresh int, p_hist int)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan
    AS $$
DECLARE
    v_st record;
    v_out jsonb;
    v_tz text;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    UPDATE conversations c SET lease_owner = p_token,
           lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
      FROM contacts ct, channels ch
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.has_unprocessed
       AND (c.lease_owner IS NULL OR c.lease_until < now() OR c.lease_owner = p_token)
       AND ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
       AND ch.tenant_id = c.tenant_id AND ch.id = c.channel_id
    RETURNING GREATEST(0, p_quiet_ms - extract(epoch FROM clock_timestamp() -
        COALESCE(c.last_inbound_at, '-infinity')) * 1000)::bigint AS wait_ms,
        c.contact_id, c.channel_id, ch.kind, c.human_takeover,
        ct.opted_out_at IS NOT NULL AS opted_out, ct.restricted_at IS NOT NULL AS restricted
    INTO v_st;
    IF NOT FOUND THEN
        RETURN '{"claimed": false}';
    END IF;
    IF v_st.wait_ms > 0 THEN
        RETURN jsonb_build_object('claimed', true, 'wait_ms', v_st.wait_ms);
    END IF;
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

CREATE OR REPLACE FUNCTION tern_agent_commit(p_tenant uuid, p_conv uuid, p_token text, p_key text,
        p_reply text, p_reason text, p_handoff boolean, p_lead jsonb, p_fresh uuid[],
        p_transcripts jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan
    AS $$
DECLARE
    v_st record;
    v_outcome text;
    v_out uuid;
    v_created timestamptz;
    v_not_before timestamptz;
    v_reason text;
    v_more boolean;
    v_row jsonb;
    v_reply boolean;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    SELECT c.contact_id, c.channel_id, ct.opted_out_at IS NOT NULL AS opted_out,
           c.human_takeover, ct.restricted_at IS NOT NULL AS restricted, ct.address, ch.kind
      INTO v_st FROM conversations c
      JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
      JOIN channels ch ON ch.tenant_id = c.tenant_id AND ch.id = c.channel_id
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.lease_owner = p_token
       FOR UPDATE OF c;
    IF NOT FOUND THEN
        RETURN '{"conflict": true}';
    END IF;
    v_outcome := CASE WHEN v_st.restricted THEN 'restricted' WHEN v_st.opted_out THEN 'opted_out'
                      WHEN v_st.human_takeover THEN 'human'
                      WHEN p_reason = 'holding' THEN 'holding' ELSE 'replied' END;
    v_reply := v_outcome IN ('replied', 'holding');
    IF p_transcripts IS NOT NULL THEN
        UPDATE messages m SET transcript = t.value
          FROM jsonb_each_text(p_transcripts) t
         WHERE m.tenant_id = p_tenant AND m.id = t.key::uuid;
    END IF;
    IF v_reply THEN
        INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
                idempotency_key, body, producer, reason)
            VALUES (p_tenant, p_conv, v_st.contact_id, v_st.channel_id, p_key, p_reply, 'agent',
                p_reason)
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
            RETURNING id, created_at, not_before, body, reason
            INTO v_out, v_created, v_not_before, p_reply, v_reason;
        IF v_out IS NULL THEN -- the same turn ran before: reuse its row
            SELECT o.id, o.created_at, o.not_before, o.body, o.reason
              INTO v_out, v_created, v_not_before, p_reply, v_reason
              FROM outbound_messages o
             WHERE o.tenant_id = p_tenant AND o.idempotency_key = p_key;
        ELSE
            INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body,
                    outbound_id, processed_at)
                VALUES (p_tenant, p_conv, v_st.channel_id, 'out', p_reply, v_out, now());
        END IF;
        -- update_lead and the first response time, one row version, none
        -- when neither changes anything
        UPDATE leads l SET name = COALESCE(p_lead ->> 'name', l.name),
               email = COALESCE(p_lead ->> 'email', l.email),
               status = COALESCE(p_lead ->> 'status', l.status),
               answers = l.answers || CASE WHEN jsonb_typeof(p_lead -> 'answers') = 'object'
                                           THEN p_lead -> 'answers' ELSE '{}' END,
               updated_at = CASE WHEN p_lead IS NOT NULL THEN now() ELSE l.updated_at END,
               first_response_ms = COALESCE(l.first_response_ms,
                   (SELECT LEAST(2147483647, extract(epoch FROM clock_timestamp() - x.created_at)
                               * 1000)::int
                      FROM messages x WHERE x.tenant_id = p_tenant AND x.conversation_id = p_conv
                       AND x.direction = 'in' ORDER BY x.created_at LIMIT 1))
         WHERE l.tenant_id = p_tenant AND l.contact_id = v_st.contact_id
           AND (p_lead IS NOT NULL OR l.first_response_ms IS NULL);
        v_row := jsonb_build_object('id', v_out, 'channel', v_st.channel_id, 'kind', v_st.kind,
                   'to', v_st.address, 'conversation', p_conv, 'contact', v_st.contact_id,
                   'text', p_reply, 'reason', COALESCE(v_reason, 'reply'),
                   'created_at', to_char(v_created AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'not_before', CASE WHEN v_not_before > now() THEN
                       to_char(v_not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END);
    END IF;
    -- tern_agent_settle, with the human flag in the same row version
    UPDATE messages m SET processed_at = now(), agent_outcome = v_outcome
     WHERE m.tenant_id = p_tenant AND m.id = ANY (p_fresh) AND m.processed_at IS NULL;
    UPDATE conversations c SET lease_owner = NULL, lease_until = NULL,
           human_takeover = c.human_takeover OR (v_reply AND (p_handoff OR p_reason = 'holding')),
           has_unprocessed = EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = p_tenant
               AND m.conversation_id = p_conv AND m.direction = 'in' AND m.processed_at IS NULL)
     WHERE c.tenant_id = p_tenant AND c.id = p_conv AND c.lease_owner = p_token
    RETURNING c.has_unprocessed INTO v_more;
    RETURN jsonb_build_object('outcome', v_outcome, 'has_more', v_more, 'out', v_row);
END
$$;
