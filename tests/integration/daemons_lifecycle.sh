#!/usr/bin/env bash
# Every daemon starts, answers /healthz, reports /readyz false while Redis is
# stopped and true again after it restarts, and exits 0 within the drain
# deadline on SIGTERM. As root without TN_ALLOW_ROOT it refuses to start.
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_REDIS_START:?}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }
wait_status() { # URL WANT SECONDS
    local end=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -le "$end" ]; do
        [ "$(status_of "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

declare -A pid port
dir=$(mktemp -d "$TN_TEST_TMP/lifecycle.XXXXXX")
cleanup() { for d in "${!pid[@]}"; do kill -9 "${pid[$d]}" 2>/dev/null || true; done; }
trap cleanup EXIT

for d in ingest agent calsync sender sweeper; do
    up=$(echo "$d" | tr a-z A-Z)
    url_var="TN_TEST_REDIS_URL_$up"
    port[$d]=$(tn_free_port)
    dsn_var="TN_TEST_PG_DSN_$up"
    TN_REDIS_URL=${!url_var} TN_PG_DSN=${!dsn_var} TN_ADMIN_LISTEN=127.0.0.1:${port[$d]} \
        TN_INGEST_LISTEN=127.0.0.1:$(tn_free_port) TN_DRAIN_TIMEOUT=3s \
        TN_HEARTBEAT_FILE=$dir/$d.beat "$TN_BIN_DIR/tern-$d" >"$dir/$d.log" 2>&1 &
    pid[$d]=$!
done
for d in "${!pid[@]}"; do
    wait_status "http://127.0.0.1:${port[$d]}/healthz" 200 5 || fail "$d /healthz"
    wait_status "http://127.0.0.1:${port[$d]}/readyz" 200 5 || fail "$d not ready with Redis up"
    [ -s "$dir/$d.beat" ] || fail "$d heartbeat file not written"
    curl -s "http://127.0.0.1:${port[$d]}/metrics" | grep -q '^tern_heartbeats_total ' \
        || fail "$d /metrics lacks tern_heartbeats_total"
    [ "$(status_of "http://127.0.0.1:${port[$d]}/nope")" = 404 ] || fail "$d unknown path not 404"
done
echo "all daemons healthy and ready"

kill "$(cat "$TN_TEST_REDIS_PIDFILE")"
for d in "${!pid[@]}"; do
    wait_status "http://127.0.0.1:${port[$d]}/readyz" 503 6 || fail "$d still ready without Redis"
    [ "$(status_of "http://127.0.0.1:${port[$d]}/healthz")" = 200 ] || fail "$d unhealthy"
done
echo "all daemons report not ready while Redis is down"

for _ in $(seq 1 50); do [ -f "$TN_TEST_REDIS_PIDFILE" ] || break; sleep 0.1; done
"$TN_TEST_REDIS_START"
tn_redis_wait "$TN_TEST_REDIS_PORT"
for d in "${!pid[@]}"; do
    wait_status "http://127.0.0.1:${port[$d]}/readyz" 200 20 || {
        curl -s "http://127.0.0.1:${port[$d]}/readyz" >&2
        tail -12 "$dir/$d.log" | cut -c1-220 >&2
        fail "$d not ready after Redis restart"
    }
done
echo "all daemons ready again after Redis restarted"

for d in "${!pid[@]}"; do
    start=$(date +%s%N)
    kill -TERM "${pid[$d]}"
    rc=0
    wait "${pid[$d]}" || rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    unset "pid[$d]"
    [ "$rc" = 0 ] || { cat "$dir/$d.log" >&2; fail "$d exited $rc on SIGTERM"; }
    [ "$ms" -lt 3500 ] || fail "$d took ${ms} ms to exit (deadline 3 s)"
    grep -q '"event":"daemon.stop"' "$dir/$d.log" || fail "$d did not log daemon.stop"
    grep -q '"TN_REDIS_URL":"<redacted>"' "$dir/$d.log" || fail "$d logged its Redis URL"
    echo "$d exited 0 in ${ms} ms"
done

if [ "$(id -u)" -eq 0 ]; then
    rc=0
    TN_ALLOW_ROOT=0 TN_ADMIN_LISTEN=127.0.0.1:$(tn_free_port) "$TN_BIN_DIR/tern-agent" \
        >"$dir/root.log" 2>&1 || rc=$?
    [ "$rc" = 78 ] || fail "as root without TN_ALLOW_ROOT: exit $rc, want 78"
    grep -q security.root "$dir/root.log" || fail "no security.root event"
    echo "refuses root"
fi
rc=0
TN_DRAIN_TIMEOUT=banana TN_LOG_LEVEL=loud "$TN_BIN_DIR/tern-sender" >"$dir/bad.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "bad config: exit $rc, want 78"
[ "$(grep -c config.invalid "$dir/bad.log")" -ge 2 ] || fail "not every bad variable reported"
echo "1 passed, 0 failed"
