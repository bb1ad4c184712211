#!/usr/bin/env bash
# tests/bench/agent/run.sh - tern-agent under 10,000 concurrent turns (issue 4).
#
# Not a ctest. Builds (unless TN_BUILD_DIR points at a build), starts its own
# Redis and Postgres in a temporary directory, the provider sandbox with the
# LLM answering after 2 s, one tenant with one WhatsApp channel, and ONE
# tern-agent. It XADDs N (default 10000) inbound messages from N different
# leads (so N conversations, each needing one turn) and waits for N replies
# on tern:out. Printed figures:
#   peak turns in flight   max of the agent's tern_agent_turns_inflight gauge
#   peak LLM requests      max concurrent requests the sandbox held
#   peak RSS               the agent's VmHWM
#   CPU per turn           the agent's user+system CPU time / N (Tern's own
#                          code plus libcurl, hiredis, libpq, jansson in-process;
#                          Postgres, Redis and the sandbox are other processes)
#   all stored after       first XADD until the agent counts N inbound messages
#                          stored (tern_agent_inbound_total)
#   wall time              first XADD to last reply
# Usage: tests/bench/agent/run.sh [N]
# TN_BENCH_LOG=FILE keeps a copy of the agent's log (warnings and errors);
# TN_BENCH_TRACE=FILE appends one line per sample: ms since the first XADD,
# messages stored, turns in flight, LLM requests held, replies on tern:out;
# BENCH_LLM_MS sets the sandbox's answer time (default 2000: the issue's
# figure; a longer one shows the agent holding every turn at the LLM at once);
# BENCH_PG_STATS=1 prints the time Postgres spent in each SQL function;
# TN_BENCH_BATCH sets TN_AGENT_BATCH (default 1000, the most it allows: the
# tern:in entries the agent holds while storing them).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
. "$root/scripts/lib/deps.sh"
. "$root/scripts/lib/stack.sh"
. "$root/tests/sandbox/client.sh"
. "$root/tests/bench/cpu.sh"
n=${1:-10000}
build=${TN_BUILD_DIR:-$root/build}
tn_deps_install
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j "$(nproc)" --target tern-agent ternctl -- --no-print-directory >/dev/null

tmp=$(mktemp -d /tmp/tern-bench.XXXXXX)
agent=""
cleanup() {
    [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
    [ -n "${TN_BENCH_LOG:-}" ] && cp "$tmp/agent.log" "$TN_BENCH_LOG" 2>/dev/null
    sandbox_stop
    tn_stack_stop "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
tn_stack_start "$tmp" "$root"
. "$tmp/env"
export TN_ALLOW_ROOT=1
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$build/services/ternctl" migrate >/dev/null
# the bench pushes thousands of concurrent transactions through few connections
psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -c "ALTER SYSTEM SET max_connections = 200" >/dev/null || true
if [ -n "${BENCH_PG_STATS:-}" ]; then # time spent in each SQL function, printed at the end
    psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -c "ALTER SYSTEM SET track_functions = 'pl'" \
        -c "SELECT pg_reload_conf()" >/dev/null
fi

sandbox_start "$tmp" --quiet # per-request lines would cost the sandbox more than the agent
llm_ms=${BENCH_LLM_MS:-2000}
sandbox_config "{\"provider\":\"openai\",\"latency_ms\":$llm_ms}"
export TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN
tenant=$("$build/services/ternctl" tenant add --slug bench --name Bench --tz Europe/Berlin)
channel=$("$build/services/ternctl" channel add --tenant "$tenant" --kind whatsapp --address pn-bench)
unset TN_PG_DSN
psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -c "INSERT INTO agent_profiles (tenant_id, business_name,
    offer, hours_text) VALUES ('$tenant', 'Bench Plumbing', 'Plumbing', 'Mon-Fri 8-18')" >/dev/null

echo "queueing $n inbound messages" >&2
python3 - "$tenant" "$channel" "$n" <<'PY' >"$tmp/cmds"
import json, os, sys
tenant, channel, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
for i in range(n):
    pmid = "wamid.bench.%d" % i
    data = {"tenant": tenant, "channel": channel, "provider": "whatsapp",
            "provider_message_id": pmid, "transport": "whatsapp", "sender": "+4917%09d" % i,
            "received_at": "2026-01-01T00:00:00.000Z", "ingested_at": "2026-01-01T00:00:00.000Z",
            "message_type": "text", "raw_type": "text", "text": "Do you fix boilers? (%d)" % i,
            "raw": {}}
    args = ["XADD", "tern:in", "*", "type", "inbound.message", "v", "1", "tenant", tenant,
            "trace", "00-" + os.urandom(16).hex() + "-" + os.urandom(8).hex() + "-01",
            "channel", channel, "provider", "whatsapp", "pmid", pmid, "dedupe", "b:" + pmid,
            "data", json.dumps(data, separators=(",", ":"))]
    print(" ".join(q(a) for a in args))
PY
admin_port=$(tn_free_port)
redis_pid=$(cat "$TN_TEST_REDIS_PIDFILE")
base_pg=$(cpu_ms $(pg_pids "$tmp/pg/data")) base_sbx=$(cpu_ms "$SANDBOX_PID")
base_redis=$(cpu_ms "$redis_pid")
start_ms=$(($(date +%s%N) / 1000000))
redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning <"$tmp/cmds" >/dev/null
UV_THREADPOOL_SIZE=16 TN_REDIS_URL=$TN_TEST_REDIS_URL_AGENT TN_PG_DSN=$TN_TEST_PG_DSN_AGENT \
    TN_ADMIN_LISTEN=127.0.0.1:$admin_port TN_LOG_LEVEL=warn TN_LLM_API_KEY=bench \
    TN_LLM_BASE_URL=$SANDBOX_URL/openai/v1 TN_LLM_TIMEOUT_MS=60s TN_AGENT_PG_POOL=16 \
    TN_AGENT_BATCH=${TN_BENCH_BATCH:-1000} TN_AGENT_QUIET_MS=0 TN_AGENT_LEASE_MS=5m \
    "$build/services/tern-agent" >"$tmp/agent.log" 2>&1 &
agent=$!

peak_turns=0
peak_llm=0
replies=0
stored_ms=0
deadline=$(( $(date +%s) + 600 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    # one awk per tool, no interpreter start-up: the probe shares the two
    # cores with what it measures
    read -r t s < <(curl -s "http://127.0.0.1:$admin_port/metrics" | awk '
        /^tern_agent_turns_inflight /{t=int($2)} /^tern_agent_inbound_total /{s=int($2)}
        END {print t+0, s+0}' || echo "0 0")
    if [ "$stored_ms" -eq 0 ] && [ "${s:-0}" -ge "$n" ]; then
        stored_ms=$(($(date +%s%N) / 1000000 - start_ms))
    fi
    l=$(curl -s "$SANDBOX_URL/_sandbox/stats" |
        sed -n 's/.*"in_flight_by_provider":{[^}]*"openai":\([0-9]*\).*/\1/p')
    [ "${t:-0}" -gt "$peak_turns" ] && peak_turns=$t
    [ "${l:-0}" -gt "$peak_llm" ] && peak_llm=$l
    replies=$(redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning XLEN tern:out || echo 0)
    [ -n "${TN_BENCH_TRACE:-}" ] && echo "$(($(date +%s%N) / 1000000 - start_ms)) ${s:-0}" \
        "${t:-0} ${l:-0} $replies" >>"$TN_BENCH_TRACE"
    [ "$replies" -ge "$n" ] && break
    sleep 0.2
done
end_ms=$(($(date +%s%N) / 1000000))
pg=$(($(cpu_ms $(pg_pids "$tmp/pg/data")) - base_pg)) sbx=$(($(cpu_ms "$SANDBOX_PID") - base_sbx))
rd=$(($(cpu_ms "$redis_pid") - base_redis))
hwm_kb=$(awk '/^VmHWM/{print $2}' "/proc/$agent/status")
read -r ut st < <(awk '{print $14, $15}' "/proc/$agent/stat")
tck=$(getconf CLK_TCK)
python3 - "$n" "$replies" "$peak_turns" "$peak_llm" "$hwm_kb" "$ut" "$st" "$tck" \
    "$((end_ms - start_ms))" "$stored_ms" "$pg" "$sbx" "$rd" "$llm_ms" <<'PY'
import sys
n, replies, turns, llm, hwm, ut, st, tck, wall, stored, pg, sbx, rd, llm_ms = map(int, sys.argv[1:])
cpu_s = (ut + st) / tck
print("turns requested        %d" % n)
print("replies on tern:out    %d" % replies)
print("peak turns in flight   %d" % turns)
print("peak LLM requests      %d  (sandbox answering after %g s)" % (llm, llm_ms / 1000))
print("peak RSS               %.1f MB" % (hwm / 1024))
print("agent CPU              %.2f s user+system" % cpu_s)
print("CPU per turn           %.3f ms" % (cpu_s * 1000 / max(replies, 1)))
print("other CPU per turn     postgres %.3f ms, sandbox %.3f ms, redis %.3f ms"
      % (pg / max(replies, 1), sbx / max(replies, 1), rd / max(replies, 1)))
print("all stored after       %s" % ("%.1f s" % (stored / 1000) if stored else "not seen"))
print("wall time              %.1f s" % (wall / 1000))
PY
if [ -n "${BENCH_PG_STATS:-}" ]; then
    psql "$TN_TEST_PG_ADMIN_DSN" -XAq -c "SELECT funcname, calls, round(total_time) AS total_ms,
        round(self_time) AS self_ms, round((total_time / calls)::numeric, 3) AS ms_per_call
        FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 12"
fi
