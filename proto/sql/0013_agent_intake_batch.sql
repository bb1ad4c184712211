-- 0013_agent_intake_batch.sql - tern-agent stores many inbound messages of
-- one tenant with one statement.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- One tern_agent_intake() call per tern:in entry made intake, not the model,
-- the limit of a busy tern-agent: every entry paid a round trip, a commit
-- and a place in the connection pool's queue. tern-agent now collects the
-- plain messages (no opt-out/opt-in keyword) delivered in one loop turn and
-- stores each tenant's share with one call of tern_agent_intake_batch(),
-- which runs tern_agent_intake() for every element in one transaction, so
-- each message gets exactly the steps, locks and idempotency of 0011 (a
-- repeated provider message id changes nothing). tern-agent acknowledges
-- the entries only after this statement has committed; when it fails, it
-- stores the entries one by one the old way, so one bad entry cannot hold
-- up the others.
--
-- SECURITY INVOKER: row-level security applies as before. The transaction
-- is bound to p_tenant first (tern_agent_intake binds it again, to the same
-- tenant). Elements are stored ordered by sender and channel, so two
-- concurrent batches lock contacts and conversations in the same order.

-- tern_agent_intake_batch - store the i-th message of the arrays for every i
-- (all arrays have the same length; p_keyword of tern_agent_intake is
-- 'none'). Returns one row per stored element, ord its 1-based index;
-- an element without a row names a channel that is not the tenant's (or is
-- disabled). message NULL: a repeat.
CREATE FUNCTION tern_agent_intake_batch(p_tenant uuid, p_channels uuid[], p_senders text[],
        p_names text[], p_transports text[], p_pmids text[], p_types text[], p_bodies text[],
        p_media_refs text[], p_raws jsonb[], p_stream_pos bigint[])
    RETURNS TABLE (ord int, contact uuid, conversation uuid, message uuid, silent text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_i int;
    v_r record;
BEGIN
    PERFORM set_config('tern.tenant_id', p_tenant::text, true);
    IF cardinality(p_channels) IS DISTINCT FROM cardinality(p_senders)
       OR cardinality(p_channels) IS DISTINCT FROM cardinality(p_pmids)
       OR cardinality(p_channels) IS DISTINCT FROM cardinality(p_stream_pos)
       OR cardinality(p_channels) IS DISTINCT FROM cardinality(p_raws) THEN
        RAISE EXCEPTION 'array lengths differ' USING ERRCODE = '22023';
    END IF;
    FOR v_i IN SELECT s.i FROM generate_subscripts(p_channels, 1) AS s(i)
                ORDER BY p_senders[s.i], p_channels[s.i], s.i LOOP
        SELECT * INTO v_r FROM tern_agent_intake(p_tenant, p_channels[v_i], p_senders[v_i],
            p_names[v_i], p_transports[v_i], p_pmids[v_i], p_types[v_i], p_bodies[v_i],
            p_media_refs[v_i], p_raws[v_i], p_stream_pos[v_i], 'none');
        IF FOUND THEN
            ord := v_i;
            contact := v_r.contact;
            conversation := v_r.conversation;
            message := v_r.message;
            silent := v_r.silent;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION tern_agent_intake_batch(uuid, uuid[], text[], text[], text[], text[],
    text[], text[], text[], jsonb[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_agent_intake_batch(uuid, uuid[], text[], text[], text[], text[],
    text[], text[], text[], jsonb[], bigint[]) TO tern_agent;
