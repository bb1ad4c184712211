#!/usr/bin/env bash
# tests/bench/sender/run.sh [N] - tern-sender throughput through the provider
# sandbox (not a ctest). Starts its own Redis and Postgres (scripts/lib),
# queues N WhatsApp messages (default 50000) on tern:out for a running
# tern-sender with rate limits lifted, and prints messages/s (first entry
# read to last row sent, on the database's clock), tern-sender's CPU time per
# message, how many messages intake sent itself (services/sender/README.md,
# "Sent at intake"), and the CPU per message of Postgres, Redis and the
# sandbox in the same run (who limits the rate). The sandbox runs with
# --no-record (counters only).
#
# Warm-up: a provider is a server that has been running, and so is a
# deployed tern-sender. First BENCH_WARMUP messages (default 5000) go
# through the same path, unmeasured: Node compiles the sandbox's request
# path (its first thousands of requests cost it twice as much CPU), the
# table has rows and statistics, the connections are open. Then the N
# measured messages are queued at once. BENCH_WARMUP=0 measures the cold
# start instead: tern-sender started on a full stream, the sandbox fresh.
#   TN_BENCH_CONCURRENCY  TN_SENDER_CONCURRENCY for the run (default 1024)
#   TN_BENCH_ANALYZE      1 (default): ANALYZE the table once; poll: every poll; 0: never
#   BENCH_PG_STATS=1      Postgres' execution time per statement and message
#   BENCH_REDIS_STATS=1   Redis' calls and microseconds per command (INFO commandstats),
#                         and its stalls of 20 ms or more (LATENCY LATEST: event,
#                         last time, last and longest ms)
#   BENCH_TIMELINE=1      messages sent (and created) per 250 ms of the window
#   TN_BUILD_DIR  build directory (default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
N=${1:-50000}
. "$root/scripts/lib/stack.sh"
tmp=$(mktemp -d /tmp/tern-bench-sender.XXXXXX)
cleanup() { snd_cleanup 2>/dev/null || true; tn_stack_stop "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT
# BENCH_PG_STATS=1: Postgres' execution time per statement, printed at the end
[ -n "${BENCH_PG_STATS:-}" ] && export TN_STACK_PG_OPTS="-c shared_preload_libraries=pg_stat_statements"
tn_stack_start "$tmp" "$root" >/dev/null
. "$tmp/env"
export TN_BIN_DIR=${TN_BUILD_DIR:-$root/build}/services TN_SRC_DIR=$root TN_ALLOW_ROOT=1
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$TN_BIN_DIR/ternctl" migrate >/dev/null
. "$root/tests/bench/sender/lib.sh"
# The sandbox counts the requests instead of keeping each one (tests keep
# them to look at; here they would only cost memory and copies).
SND_SANDBOX_ARGS=--no-record snd_setup "$tmp/scratch"

# gen COUNT FILE - COUNT WhatsApp messages for tern:out as Redis commands
gen() {
    python3 - "$T" "$CH_WA" "$CT_WA" "$1" >"$2" <<'PY'
import json, sys, uuid
t, ch, ct, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
w = sys.stdout.write
for i in range(n):
    oid = str(uuid.uuid4())
    data = json.dumps({"tenant": t, "channel": ch, "provider": "whatsapp", "outbound_id": oid,
                       "contact_id": ct, "to": "x", "kind": "text", "text": "bench %d" % i,
                       "reason": "notice", "created_at": "2026-01-01T00:00:00Z"})
    args = ["XADD", "tern:out", "*", "type", "outbound.message", "v", "1", "tenant", t,
            "trace", "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16]), "channel", ch,
            "provider", "whatsapp", "outbound", oid, "dedupe", "out:" + oid, "data", data]
    w("*%d\r\n" % len(args))
    for a in args:
        w("$%d\r\n%s\r\n" % (len(a.encode()), a))
PY
}

# The tests' 3 s HTTP timeout would turn a sandbox stall on this shared
# machine into ambiguous answers, each resent only after the echo wait (5 min):
# the benchmark uses the production default.
start_sender() {
    snd_start TN_SENDER_RATE_WHATSAPP=0 TN_SENDER_CONCURRENCY=${TN_BENCH_CONCURRENCY:-1024} \
        TN_SENDER_PG_POOL=4 TN_SENDER_TENANT_BATCH=${TN_BENCH_CONCURRENCY:-1024} TN_LOG_LEVEL=warn \
        TN_SENDER_HTTP_TIMEOUT=10s
}

# progress from tern-sender's own counter (a psql and a count(*) at every
# poll would take CPU from the run and add to Postgres' figure)
sent_total() {
    curl -s "http://$SND_ADMIN/metrics" | awk '/^tern_sender_sent_total/ { s += $NF } END { print s + 0 }'
}
# wait_sent TOTAL - until tern-sender has sent TOTAL messages since it started
analyzed=0
wait_sent() {
    local n
    while :; do
        n=$(sent_total)
        [ "$n" -ge "$1" ] && break
        # The table grows from empty to N rows within seconds, faster than
        # autovacuum (1-minute naptime) re-analyzes it; with the empty
        # table's statistics the planner scans all of the tenant's rows
        # (through an index led by tenant_id) per batch. A long-running system has statistics for a table
        # that is not empty: stand in for autovacuum once, when the table
        # holds a first few thousand rows (the planner scales the row count
        # by the table's current size, so later growth does not need a new
        # ANALYZE). With the warm-up, the warm-up's end does it.
        # TN_BENCH_ANALYZE=poll analyzes at every poll, 0 never.
        case ${TN_BENCH_ANALYZE:-1} in
        poll) snd_sql "ANALYZE outbound_messages" >/dev/null ;;
        1) if [ $analyzed = 0 ] && [ "$n" -ge 2000 ]; then
            snd_sql "ANALYZE outbound_messages" >/dev/null
            analyzed=1
        fi ;;
        esac
        sleep 0.2
    done
}

. "$root/tests/bench/cpu.sh"
W=${BENCH_WARMUP:-5000}
if [ "$W" -gt 0 ]; then
    gen "$W" "$tmp/warm.resp"
    snd_redis --pipe <"$tmp/warm.resp" >/dev/null
    start_sender
    wait_sent "$W"
    # what autovacuum does on a running system (here it would start during
    # the measured run and hold off the ANALYZE above: a cold plan for it all)
    snd_sql "VACUUM ANALYZE outbound_messages" >/dev/null
    analyzed=1
    echo "warm-up: $W messages sent"
fi
gen "$N" "$tmp/burst.resp"
# One transaction (MULTI ... EXEC): no entry is visible to tern-sender
# before all are on the stream, so the producer's XADDs (not the sender's
# work) fall before the measured window and out of Redis' figure.
{ printf '*1\r\n$5\r\nMULTI\r\n'; cat "$tmp/burst.resp"; printf '*1\r\n$4\r\nEXEC\r\n'; } >"$tmp/burst.tx"
[ -n "${BENCH_PG_STATS:-}" ] && psql "$TN_TEST_PG_ADMIN_DSN" -XAtq \
    -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
[ -n "${BENCH_REDIS_STATS:-}" ] && snd_redis CONFIG SET latency-monitor-threshold 20 >/dev/null
upd0=$(snd_sql "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables
                WHERE relname = 'outbound_messages'")
# the measured rows: inserted after this point (the warm-up's are all in)
t0=$(snd_sql "SELECT clock_timestamp()")
redis_pid=$(cat "$TN_TEST_REDIS_PIDFILE")
base_pg=$(cpu_ms $(pg_pids "$tmp/pg/data")) base_sbx=$(cpu_ms "$SANDBOX_PID")
base_snd=0
[ "$W" -gt 0 ] && base_snd=$(cpu_ms "$SENDER_PID")
snd_redis --pipe <"$tmp/burst.tx" >/dev/null
base_redis=$(cpu_ms "$redis_pid")
echo "queued $N messages"
[ "$W" -gt 0 ] || start_sender
wait_sent $((W + N))
# the counter moves when the provider accepted; the row's 'sent' follows
measured="tenant_id = '$T' AND created_at > '$t0'"
for _ in $(seq 1 100); do
    n=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE $measured AND state = 'sent'")
    [ "$n" -ge "$N" ] && break
    sleep 0.1
done
[ "$n" -eq "$N" ] || { echo "only $n of $N rows are 'sent'" >&2; exit 1; }
# The rate is measured on the database's clock, from the first intake
# transaction (the first entry read) to the last 'sent' update, not from
# this loop's polls.
ms=$(snd_sql "SELECT ceil(extract(epoch FROM max(sent_at) - min(created_at)) * 1000)::bigint
              FROM outbound_messages WHERE $measured")
cpu=$(($(cpu_ms "$SENDER_PID") - base_snd))
# postgres backends that exited (a reconnect) are not counted: a lower bound
pg=$(($(cpu_ms $(pg_pids "$tmp/pg/data")) - base_pg)) rd=$(($(cpu_ms "$redis_pid") - base_redis))
sbx=$(($(cpu_ms "$SANDBOX_PID") - base_sbx))
got=$(($(curl -s "$SANDBOX_URL/_sandbox/stats" | jq '.requests.whatsapp') - W))
# decided and recorded 'sending' by intake itself (sender_out.c): the row's
# first 'sending' is its INSERT's transaction; the rest went through the
# schedule's claim and prepare
direct=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE $measured AND sending_at = created_at")
echo "sent $N in $ms ms: $((N * 1000 / ms)) messages/s; tern-sender CPU ${cpu} ms" \
    "= $((cpu * 1000 / N)) us/message; sandbox saw $got requests; $direct sent from intake"
echo "CPU per message: tern-sender $((cpu * 1000 / N)) us, postgres $((pg * 1000 / N)) us," \
    "redis $((rd * 1000 / N)) us, sandbox (node) $((sbx * 1000 / N)) us;" \
    "all $(((cpu + pg + rd + sbx) * 1000 / N)) us on $(nproc) cores"
# how busy those four kept the cores over the window (the rest: idle, the
# kernel's own threads, this script)
awk -v c=$((cpu + pg + rd + sbx)) -v ms="$ms" -v n="$(nproc)" \
    'BEGIN { printf "cores busy with them: %.2f of %d\n", c / ms, n }'
echo "tern-sender peak RSS: $(($(awk '/VmHWM/ {print $2}' "/proc/$SENDER_PID/status") / 1024)) MB"
# updates that stayed on their page without new index entries
# (0022_outbound_hot.sql); the statistics arrive within a second
sleep 1
read -r u0 h0 <<<"$upd0"
snd_sql "SELECT 'outbound_messages updates: ' || n_tup_upd - $u0 || ', HOT: ' || n_tup_hot_upd - $h0
         FROM pg_stat_user_tables WHERE relname = 'outbound_messages'"
if [ -n "${BENCH_PG_STATS:-}" ]; then
    psql "$TN_TEST_PG_ADMIN_DSN" -XAq -F ' | ' -c "SELECT round((total_exec_time * 1000 / $N)::numeric, 1)
        AS us_per_message, calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10"
fi
if [ -n "${BENCH_TIMELINE:-}" ]; then
    psql "$TN_TEST_PG_ADMIN_DSN" -XAq -F ' | ' -c "WITH m AS (SELECT min(created_at) AS t0
        FROM outbound_messages WHERE $measured) SELECT b * 250 AS ms, count(*) FILTER (WHERE k = 's')
        AS sent, count(*) FILTER (WHERE k = 'c') AS created FROM (SELECT 's' AS k, floor(extract(epoch
        FROM sent_at - m.t0) * 4)::int AS b FROM outbound_messages, m WHERE $measured UNION ALL
        SELECT 'c', floor(extract(epoch FROM created_at - m.t0) * 4)::int FROM outbound_messages, m
        WHERE $measured) x GROUP BY b ORDER BY b"
fi
if [ -n "${BENCH_REDIS_STATS:-}" ]; then
    snd_redis INFO commandstats | grep -v "^#"
    snd_redis LATENCY LATEST | paste -sd' ' | sed 's/ \([a-z]\)/\n\1/g'
fi
true
