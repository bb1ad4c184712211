# shellcheck shell=bash
# tests/support/google.sh - the sandbox's Google for the calsync tests:
# calendar calls with a token of the calendar's owner (obtained the way
# another app would, through the sandbox's token endpoint), and readers of
# the sandbox's records. Source it after tests/sandbox/client.sh and
# sandbox_start; needs jq.

# google_owner_token - an access token for the sandbox's default user (the
# one tern-calsync connects), from a code the sandbox did not issue; sets gtok
google_owner_token() {
    gtok=$(curl -s "$SANDBOX_URL/google/token" -d grant_type=authorization_code \
        -d "code=other-app-$RANDOM$RANDOM" -d client_id=other-app -d client_secret=x \
        -d redirect_uri=http://127.0.0.1/cb | jq -r .access_token)
    [ -n "$gtok" ] && [ "$gtok" != null ]
}

# gcal METHOD PATH [curl args...] - a Calendar call as the owner; body on
# stdout, status in $gstatus
gcal() {
    local m="$1" p="$2" out
    shift 2
    out=$(curl -s -X "$m" -w '\n%{http_code}' -H "Authorization: Bearer $gtok" \
        -H 'Content-Type: application/json' "$SANDBOX_URL/google/calendar/v3$p" "$@")
    gstatus=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
}

# google_count PROVIDER SINCE JQ_FILTER - how many records since SINCE match
google_count() {
    sandbox_requests "$1" "$2" | jq "[.[] | select($3)] | length"
}

# google_seq - the sandbox's current request counter
google_seq() {
    curl -s "$SANDBOX_URL/_sandbox/stats" | jq .total
}

# google_connect G - connect the sandbox's default user's calendar to $tid
# through tern-ingest's OAuth routes (ternctl calendar link -> start ->
# the sandbox's consent -> callback) and wait for tern-calsync to store the
# account; sets acct. Needs $base (ingest_start), $master, wait_sql and sql.
google_connect() {
    local G="$1" link loc cb
    link=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master \
        TN_INGEST_PUBLIC_URL=https://hooks.example.test "$TN_BIN_DIR/ternctl" calendar link \
        --tenant "$tid" --ttl 1h) || return 1
    loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$base${link#https://hooks.example.test}")
    cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc")
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/oauth/google/callback?${cb#*\?}")" = 200 ] \
        || return 1
    wait_sql "account stored" "SELECT count(*) = 1 FROM oauth_accounts WHERE tenant_id = '$tid'
                               AND provider = 'google' AND access_token_sealed IS NOT NULL" \
        || return 1
    acct=$(sql "SELECT id FROM oauth_accounts WHERE tenant_id = '$tid' AND provider = 'google'")
}

# goog_push CHANNEL TOKEN STATE NUMBER - a push notification as Google sends
# it (empty body, X-Goog-* headers) to tern-ingest; prints the status
goog_push() {
    curl -s -o /dev/null -w '%{http_code}' -X POST "$base/webhooks/google/calendar" \
        -H "X-Goog-Channel-ID: $1" -H "X-Goog-Channel-Token: $2" \
        -H "X-Goog-Resource-ID: res-test" -H "X-Goog-Resource-State: $3" \
        -H "X-Goog-Message-Number: $4" -H 'Content-Length: 0'
}

# calsync_erase CONTACT - `ternctl privacy erase --contact`, done by a real
# tern-sweeper (its own Postgres role and Redis user) that is stopped
# afterwards; returns non-zero when the request did not finish. Runs under
# the sweeper tests' lock: every tern-sweeper joins the one "sweeper" group
# of tern:privacy (tests/support/sweeper.sh). Needs $tid, $dir. Also used by
# calsync_caldav.sh.
calsync_erase() {
    local spid rc=0
    mkdir -p "$dir/export"
    exec 9>"$TN_TEST_TMP/sweeper-tests.lock"
    flock 9
    env TN_REDIS_URL="$TN_TEST_REDIS_URL_SWEEPER" TN_PG_DSN="$TN_TEST_PG_DSN_SWEEPER" \
        TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_SUPPRESSION_KEY="supp-$RANDOM$RANDOM" \
        TN_SWEEPER_EXPORT_DIR="$dir/export" TN_SWEEPER_INTERVAL=1h TN_DRAIN_TIMEOUT=3s \
        TN_ALLOW_ROOT=1 "$TN_BIN_DIR/tern-sweeper" >>"$dir/sweeper.log" 2>&1 &
    spid=$!
    TN_PG_DSN="$TN_TEST_PG_ADMIN_DSN" TN_REDIS_URL="$TN_TEST_REDIS_URL_CTL" "$TN_BIN_DIR/ternctl" \
        privacy erase --tenant "$tid" --contact "$1" --wait 20 >/dev/null || rc=1
    kill -TERM "$spid" 2>/dev/null
    wait "$spid" || rc=1
    exec 9>&-
    return $rc
}
