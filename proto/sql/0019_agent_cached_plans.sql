-- 0019_agent_cached_plans.sql - tern-agent's per-turn functions keep their
-- plans between calls.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- 0015 and 0018 made tern_agent_intake_batch(), tern_agent_claim() and
-- tern_agent_commit() plan every statement on every call
-- (plan_cache_mode = force_custom_plan), so that a generic plan cached while
-- the tables were small (a fresh database, before autovacuum's first
-- ANALYZE) could not go on scanning them whole once they were not. With
-- 10,000 turns at once (tests/bench/agent/run.sh), a profile of Postgres
-- showed planning (GetCachedPlan, standard_planner) as more than half of its
-- CPU, and claim and commit run once per turn.
--
-- The same protection at a fraction of the price: every statement of these
-- functions reaches its rows by key (tenant and id, conversation, contact,
-- idempotency key, provider message id), each with an index, so they run
-- with enable_seqscan = off and the default plan cache. A generic plan then
-- cannot be a sequential scan where an index serves, whatever the
-- statistics said when it was cached, and it is reused instead of planned
-- again. (enable_seqscan = off only prices a sequential scan out; a
-- statement without a usable index would still run.) Measured on the
-- benchmark: Postgres CPU per turn 2.9-3.1 ms before, 1.4 ms after.

ALTER FUNCTION tern_agent_intake_batch(uuid, uuid[], text[], text[], text[], text[], text[],
    text[], text[], jsonb[], bigint[]) RESET plan_cache_mode;
ALTER FUNCTION tern_agent_intake_batch(uuid, uuid[], text[], text[], text[], text[], text[],
    text[], text[], jsonb[], bigint[]) SET enable_seqscan = off;
ALTER FUNCTION tern_agent_claim(uuid, uuid, text, bigint, bigint, int, int)
    RESET plan_cache_mode;
ALTER FUNCTION tern_agent_claim(uuid, uuid, text, bigint, bigint, int, int)
    SET enable_seqscan = off;
ALTER FUNCTION tern_agent_commit(uuid, uuid, text, text, text, text, boolean, jsonb, uuid[], jsonb)
    RESET plan_cache_mode;
ALTER FUNCTION tern_agent_commit(uuid, uuid, text, text, text, text, boolean, jsonb, uuid[], jsonb)
    SET enable_seqscan = off;
