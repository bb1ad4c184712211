#!/usr/bin/env bash
# `ternctl streams` as the tern-ctl user: length, dead letters, each group's
# lag, pending count and oldest pending entry, in --json and in the table;
# a missing stream is "absent", not an error; a user without the rights
# gets exit 1; no TN_REDIS_URL gets 78. Streams are created with unique
# names (under tern:, the ctl user's key pattern) by the admin user.
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_REDIS_URL_ADMIN:?}" "${TN_TEST_REDIS_URL_CTL:?}"

fail() { echo "FAIL: $*" >&2; exit 1; }
admin() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }
ctl() { TN_REDIS_URL=$TN_TEST_REDIS_URL_CTL "$TN_BIN_DIR/ternctl" streams "$@"; }

s="tern:test:ctl-$$-$RANDOM"
absent="tern:test:absent-$$-$RANDOM"
trap 'admin DEL "$s" "$s:dead" >/dev/null 2>&1 || true' EXIT

admin XGROUP CREATE "$s" workers 0 MKSTREAM >/dev/null
first=$(admin XADD "$s" '*' n 1)
admin XADD "$s" '*' n 2 >/dev/null
admin XADD "$s" '*' n 3 >/dev/null
admin XREADGROUP GROUP workers w1 COUNT 2 STREAMS "$s" '>' >/dev/null # 2 pending, lag 1
admin XGROUP CREATE "$s" idle '$' >/dev/null                           # nothing pending
admin XADD "$s:dead" '*' n 0 dead_reason test >/dev/null
sleep 0.05

out=$(ctl --json --stream "$s" --stream "$absent") || fail "ternctl streams --json failed"
q() { jq -r "$1" <<<"$out"; }
[ "$(q '.streams | length')" = 2 ] || fail "two streams expected: $out"
[ "$(q '.streams[0].exists')" = true ] || fail "exists"
[ "$(q '.streams[0].length')" = 3 ] || fail "length: $out"
[ "$(q '.streams[0].dead_length')" = 1 ] || fail "dead_length: $out"
[ "$(q '.streams[0].groups | length')" = 2 ] || fail "groups: $out"
w='.streams[0].groups[] | select(.name=="workers")'
[ "$(q "$w | .pending")" = 2 ] || fail "pending: $out"
[ "$(q "$w | .lag")" = 1 ] || fail "lag: $out"
[ "$(q "$w | .consumers")" = 1 ] || fail "consumers: $out"
[ "$(q "$w | .oldest_pending_id")" = "$first" ] || fail "oldest pending id: $out"
[ "$(q "$w | .oldest_pending_age_ms >= 50")" = true ] || fail "oldest pending age: $out"
i='.streams[0].groups[] | select(.name=="idle")'
[ "$(q "$i | .pending")" = 0 ] || fail "idle pending: $out"
[ "$(q "$i | .oldest_pending_id")" = null ] || fail "idle has no oldest pending: $out"
[ "$(q '.streams[1].stream')" = "$absent" ] || fail "absent name"
[ "$(q '.streams[1].exists')" = false ] || fail "absent exists: $out"

table=$(ctl --stream "$s" --stream "$absent") || fail "table failed"
grep -q '^STREAM .*LENGTH .*DEAD .*GROUP .*LAG .*PENDING .*OLDEST_PENDING' <<<"$table" ||
    fail "table header: $table"
grep -Eq "^$s +3 +1 +workers +1 +1 +2 " <<<"$table" || fail "workers row: $table"
grep -Eq "^$absent +absent" <<<"$table" || fail "absent row: $table"

# The default set of streams works whatever other tests put there.
ctl --json | jq -e '.streams | length == 5' >/dev/null || fail "default streams"

# Refused by the ACL (tern-ingest cannot TYPE/XINFO): exit 1, a message.
rc=0
TN_REDIS_URL=$TN_TEST_REDIS_URL_INGEST "$TN_BIN_DIR/ternctl" streams >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "denied user: exit $rc"
rc=0
env -u TN_REDIS_URL "$TN_BIN_DIR/ternctl" streams >/dev/null 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "no TN_REDIS_URL: exit $rc"
rc=0
ctl --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "usage: exit $rc"
echo "ok"
