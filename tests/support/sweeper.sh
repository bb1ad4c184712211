# shellcheck shell=bash
# tests/support/sweeper.sh - shared by the tern-sweeper tests: scratch
# directory, keys, a tern-sweeper started and stopped with the test's
# settings, SQL and Redis helpers, and the scans that prove a person is gone.
# Source it, then call sw_setup NAME.
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"

ctl="$TN_BIN_DIR/ternctl"
spid=""

# sw_setup NAME - scratch dir, keys, ternctl's environment, cleanup trap.
# The sweeper tests run one at a time (a lock in the stack's scratch dir):
# every tern-sweeper with privacy enabled joins the one "sweeper" group of
# tern:privacy, so two tests' sweepers would take each other's requests.
sw_setup() {
    exec 9>"$TN_TEST_TMP/sweeper-tests.lock"
    flock 9
    dir=$(mktemp -d "$TN_TEST_TMP/$1.XXXXXX")
    mkdir -p "$dir/export"
    skey="supp-$RANDOM$RANDOM$RANDOM"
    mkey=$(head -c 32 /dev/urandom | base64 -w0)
    master="1:$mkey"
    export TN_PG_DSN="$TN_TEST_PG_ADMIN_DSN" TN_MASTER_KEY="$master" TN_REDIS_URL="$TN_TEST_REDIS_URL_CTL"
    trap sw_cleanup EXIT
}

# sw_cleanup - stop what the test started
sw_cleanup() {
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
    [ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null
    return 0
}

sw_fail() {
    echo "FAIL: $*" >&2
    [ -f "$dir/sweeper.log" ] && tail -20 "$dir/sweeper.log" >&2
    exit 1
}

sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
rr() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }

# sw_start [VAR=VALUE...] - tern-sweeper as its own Postgres role and Redis user
sw_start() {
    env TN_REDIS_URL="$TN_TEST_REDIS_URL_SWEEPER" TN_PG_DSN="$TN_TEST_PG_DSN_SWEEPER" \
        TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_SUPPRESSION_KEY="$skey" \
        TN_SWEEPER_EXPORT_DIR="$dir/export" TN_MASTER_KEY="$master" TN_SWEEPER_INTERVAL=1h \
        TN_DRAIN_TIMEOUT=3s TN_ALLOW_ROOT=1 "$@" "$TN_BIN_DIR/tern-sweeper" >>"$dir/sweeper.log" 2>&1 &
    spid=$!
}

# sw_stop - SIGTERM; the sweeper must exit 0
sw_stop() {
    local rc=0
    kill -TERM "$spid"
    wait "$spid" || rc=$?
    spid=""
    [ "$rc" = 0 ] || sw_fail "tern-sweeper exited $rc"
}

# sw_db_scan NEEDLE... - no row of any table, as text, contains a needle
sw_db_scan() {
    local t n hits
    for t in $(sql "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'
                    AND table_type = 'BASE TABLE'"); do
        for n in "$@"; do
            hits=$(sql "SELECT count(*) FROM $t x WHERE position('$n' in x::text) > 0")
            [ "$hits" = 0 ] || sw_fail "table $t still holds personal data ($hits rows)"
        done
    done
}

# sw_redis_scan NEEDLE... - no key name, value, member or stream entry holds one
sw_redis_scan() {
    local k out="$dir/redis.dump" n
    : >"$out"
    while read -r k; do
        echo "$k" >>"$out"
        case $(rr TYPE "$k") in
        string) rr GET "$k" >>"$out" ;;
        stream) rr XRANGE "$k" - + >>"$out" ;;
        zset) rr ZRANGE "$k" 0 -1 >>"$out" ;;
        hash) rr HGETALL "$k" >>"$out" ;;
        list) rr LRANGE "$k" 0 -1 >>"$out" ;;
        set) rr SMEMBERS "$k" >>"$out" ;;
        esac
    done < <(rr --scan --pattern '*')
    for n in "$@"; do
        if grep -qF -- "$n" "$out"; then sw_fail "Redis still holds personal data"; fi
    done
}
