#!/usr/bin/env bash
# tests/bench/ingest/run.sh - tern-ingest against nginx, same machine, same run.
#
# Starts its own Redis and Postgres (as scripts/test does), a tenant with a
# WhatsApp channel, tern-ingest, and nginx with one worker answering
# `return 200` (the reference: an HTTP server doing nothing at all). wrk
# drives both with the same pre-signed WhatsApp webhooks, each with its own
# message id, so every request to tern-ingest is verified (HMAC-SHA256),
# parsed, normalised, deduplicated and XADDed to tern:in before its 200.
#
# Prints, for both servers: requests/s and p50/p99 at full load, then p50/p99
# at half of tern-ingest's full-load rate (paced with wrk's delay()), the
# throughput ratio, and tern-ingest's peak resident memory (VmHWM).
# Targets (issue 3): ratio >= 0.6, p99 < 2 ms at half rate, RSS < 30 MB.
#
#   tests/bench/ingest/run.sh            (BENCH_SECONDS=10 BENCH_CONNS=64
#                                         BENCH_FSYNC=always)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/tests/bench/ingest"
. "$root/scripts/lib/deps.sh"
. "$root/scripts/lib/stack.sh"
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNS:-64}
threads=${BENCH_THREADS:-2}

tn_deps_install nginx wrk time
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target tern-ingest ternctl -- --no-print-directory >/dev/null

tmp=$(mktemp -d /tmp/tern-bench.XXXXXX)
npid=""
cleanup() {
    [ -n "${ipid:-}" ] && kill -9 "$ipid" 2>/dev/null
    [ -n "$npid" ] && kill "$npid" 2>/dev/null
    tn_stack_stop "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
tn_stack_start "$tmp" "$root"
. "$tmp/env"
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$build/services/ternctl" migrate >/dev/null

export TN_BIN_DIR="$build/services" TN_TEST_TMP="$tmp" TN_SRC_DIR="$root"
dir="$tmp"
. "$root/tests/support/ingest.sh"
ingest_setup_tenant
ingest_start TN_LOG_LEVEL=warn TN_INGEST_MAX_CONNS=4096

nport=$(tn_free_port)
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx-body;
    server {
        listen 127.0.0.1:$nport;
        location / { return 200 "ok"; }
    }
}
EOF
nginx -c "$tmp/nginx.conf" -p "$tmp" &
npid=$!
sleep 0.5

# bodies: enough unique ids for the full-speed run and, separately, the paced one
per_s=${BENCH_MAX_RPS:-40000}
node "$here/gen.mjs" "$wa_secret" "$wa_pnid" $((per_s * secs)) "full$$" >"$tmp/full.txt"
node "$here/gen.mjs" "$wa_secret" "$wa_pnid" $((per_s * secs / 2)) "paced$$" >"$tmp/paced.txt"
node "$here/gen.mjs" "$wa_secret" "$wa_pnid" $((per_s * secs)) "ref$$" >"$tmp/ref.txt"

# run NAME URL BODIES CONNS DELAY_MS - one wrk run; prints its BENCH line
# (and wrk's own CPU per request, wrk_us=, measured with time(1))
run() {
    BENCH_BODIES=$3 BENCH_THREADS=$threads BENCH_DELAY_MS=$5 \
        /usr/bin/time -f "WRKCPU %U %S" -o "$tmp/wrk.cpu" \
        wrk -t$threads -c"$4" -d"${secs}s" --latency -s "$here/bodies.lua" "$2" >"$tmp/wrk.out" 2>&1
    awk -v name="$1" -v s="$secs" '
        FNR == NR && /^WRKCPU/ { cpu = $2 + $3; next }
        /^BENCH/ { sub(/^BENCH/, name); match($0, /rps=[0-9]+/)
                   rps = substr($0, RSTART + 4, RLENGTH - 4)
                   printf "%s wrk_us=%.1f\n", $0, (rps > 0 ? 1e6 * cpu / (rps * s) : 0) }' \
        "$tmp/wrk.cpu" "$tmp/wrk.out"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Redis fsyncs its AOF as deployed (deploy/compose.yaml: appendfsync always,
# so a 2xx survives a power loss); BENCH_FSYNC=everysec measures the relaxed
# setting (DESIGN.md, invariant 1), which risks the last second
fsync=${BENCH_FSYNC:-always}
admin_redis CONFIG SET appendfsync "$fsync" >/dev/null
xlen0=$(admin_redis XLEN tern:in)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
nwpid=$(pgrep -P "$npid" | head -1) # nginx's one worker
cn0=$(cpu "$nwpid")
full_n=$(run nginx "http://127.0.0.1:$nport/webhooks/whatsapp" "$tmp/ref.txt" "$conns" 0)
cn1=$(cpu "$nwpid")
rpid=$(cat "$TN_TEST_REDIS_PIDFILE")
ci0=$(cpu "$ipid") cr0=$(cpu "$rpid")
# BENCH_PROFILE=FILE: sample tern-ingest during the full-load run (perf report -i FILE)
[ -n "${BENCH_PROFILE:-}" ] && perf record -q -e cpu-clock -F 999 --call-graph "${BENCH_PROFILE_CG:-fp}" -p "$ipid" -o "$BENCH_PROFILE" \
    -- sleep "$secs" >/dev/null 2>&1 &
full_t=$(run ingest "$base/webhooks/whatsapp" "$tmp/full.txt" "$conns" 0)
ci1=$(cpu "$ipid") cr1=$(cpu "$rpid")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ipid/status")
rt=$(field rps "$full_t")
rn=$(field rps "$full_n")
half=$((rt / 2))
pconns=${BENCH_PACED_CONNS:-32}
pdelay=$(( pconns * 1000 / (half > 0 ? half : 1) ))
paced_n=$(run nginx-half "http://127.0.0.1:$nport/webhooks/whatsapp" "$tmp/ref.txt" $pconns $pdelay)
paced_t=$(run ingest-half "$base/webhooks/whatsapp" "$tmp/paced.txt" $pconns $pdelay)
xlen1=$(admin_redis XLEN tern:in)

echo "== tern-ingest vs nginx (return 200), ${secs}s each, $conns connections, $threads wrk threads," \
    "Redis appendfsync $fsync"
echo "$full_n"
echo "$full_t"
echo "$paced_n   (paced: $pconns conns, ${pdelay} ms between requests = ~$half req/s)"
echo "$paced_t"
awk -v t="$rt" -v n="$rn" 'BEGIN { printf "throughput ratio ingest/nginx: %.2f (target >= 0.60)\n", t / n }'
echo "ingest p99 at half rate: $(field p99_us "$paced_t") us (target < 2000)"
echo "ingest peak RSS (VmHWM): $((hwm / 1024)) MB (target < 30)"
echo "entries added to tern:in: $((xlen1 - xlen0))"
hz=$(getconf CLK_TCK)
awk -v i=$((ci1 - ci0)) -v r=$((cr1 - cr0)) -v hz="$hz" -v n="$rt" -v s="$secs" 'BEGIN {
    printf "CPU at full load: tern-ingest %.0f%%, redis %.0f%% of one core; %.1f us of tern-ingest CPU per request\n",
        100 * i / hz / s, 100 * r / hz / s, 1e6 * i / hz / (n * s) }'
# where the two cores went, per request (wrk is the client, on the same cores)
awk -v ng=$((cn1 - cn0)) -v i=$((ci1 - ci0)) -v r=$((cr1 - cr0)) -v hz="$hz" -v s="$secs" \
    -v rn="$rn" -v rt="$rt" -v wn="$(field wrk_us "$full_n")" -v wt="$(field wrk_us "$full_t")" 'BEGIN {
    printf "CPU per request: nginx run: wrk %s us + nginx %.1f us; ingest run: wrk %s us + tern-ingest %.1f us + redis %.1f us\n",
        wn, 1e6 * ng / hz / (rn * s), wt, 1e6 * i / hz / (rt * s), 1e6 * r / hz / (rt * s) }'
# BENCH_REDIS_STATS=1: Redis's own count of calls and microseconds per call
[ -n "${BENCH_REDIS_STATS:-}" ] && admin_redis INFO commandstats | grep -E 'evalsha|eval:|xadd|set:'
true
