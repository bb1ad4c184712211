-- 0021_agent_commit_lock_order.sql - tern_agent_commit() locks the lead
-- before the conversation.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- A lead who writes while the previous turn's reply is being committed
-- deadlocked the two transactions: tern_agent_intake_batch() (0015) locks
-- the lead (INSERT ... ON CONFLICT DO UPDATE locks the existing row) and
-- then, inserting the message, takes a key-share lock on the conversation
-- (the foreign key) and flags it; tern_agent_commit() (0018) locked the
-- conversation FOR UPDATE first and then updated the lead. Postgres broke
-- the cycle by failing one of them: the commit was retried, but the
-- message went back to tern:in and could be stored after a later message
-- of the same conversation had been answered (agent_e2e's replicas test
-- caught a reply to message 5 after the reply to message 8).
--
-- The commit now takes the lead's row lock first, the order intake takes
-- them in, so one waits for the other instead. Everything else is 0018's
-- function as 0019 left it (enable_seqscan = off, plans kept).

CREATE OR REPLACE FUNCTION tern_agent_commit(p_tenant uuid, p_conv uuid, p_token text, p_key text,
        p_reply text, p_reason text, p_handoff boolean, p_lead jsonb, p_fresh uuid[],
        p_transcripts jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    SET enable_seqscan = off
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
    -- the lead before the conversation, the order intake takes them in
    PERFORM 1 FROM leads l
     WHERE l.tenant_id = p_tenant AND l.contact_id = (SELECT c.contact_id FROM conversations c
                                                       WHERE c.tenant_id = p_tenant AND c.id = p_conv)
       FOR UPDATE OF l;
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
