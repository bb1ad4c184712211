# shellcheck shell=bash
# tests/support/calsync.sh - what the calsync tests do to Postgres and
# tern:cal: admin SQL, SQL bound to the test's tenant ($tid), waiting for a
# condition, announcing a cal.request the way the booking path does, and
# Tern's event id of a booking. Source it after the test has defined bad
# (its failure counter); tsql and cal_xadd read $tid when called.

# sql SQL - one statement as the admin; prints its rows
sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# tsql SQL - one statement in a transaction bound to the tenant; prints its rows
tsql() {
    psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 <<EOS
\o /dev/null
BEGIN;
SELECT set_config('tern.tenant_id', '$tid', true);
\o
$1;
COMMIT;
EOS
}

# wait_sql WHAT SQL [TENTHS] - until SQL prints t, polling every 0.1 s at
# most TENTHS times (default $wait_tenths, else 150); bad WHAT otherwise
wait_sql() {
    local i
    for i in $(seq 1 "${3:-${wait_tenths:-150}}"); do
        [ "$(sql "$2")" = t ] && return 0
        sleep 0.1
    done
    bad "$1: timed out"
    return 1
}

# xadd OP FIELD ID - a cal.request {op: OP, FIELD: ID} for $tid on tern:cal
xadd() {
    local rid="t-$RANDOM$RANDOM" data
    data=$(printf '{"tenant":"%s","request_id":"%s","op":"%s","%s":"%s","requested_at":"%s"}' \
        "$tid" "$rid" "$1" "$2" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
    redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning XADD tern:cal '*' type cal.request \
        v 1 tenant "$tid" trace "00-$(openssl rand -hex 16)-$(openssl rand -hex 8)-01" \
        request "$rid" dedupe "cal:$rid" data "$data" >/dev/null
}

# evid BOOKING - the id of Tern's event for a booking ("tern" + hex, no dashes)
evid() { echo "tern$(echo "$1" | tr -d -)"; }
