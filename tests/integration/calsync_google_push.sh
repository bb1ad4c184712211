#!/usr/bin/env bash
# calsync_google_push - Google Calendar push channels end to end, with real
# Redis and Postgres, tern-ingest, tern-calsync and the sandbox's Google:
# after connect, calsync opens a channel (events.watch with a fresh id, a
# random token and tern-ingest's address; only the token's SHA-256 is
# stored); the owner deletes Tern's event in the sandbox -> the sandbox
# POSTs the notification to tern-ingest -> op push on tern:cal -> calsync
# imports at once and cancels the booking within seconds, although the
# periodic busy import is 10 minutes away (so only the push explains it). A
# push with a wrong token is refused (401) and enqueues nothing, an unknown
# channel is 404, "sync" is acknowledged. op watch opens a new channel and
# stops the old one (channels.stop), as the scan does for a channel near its
# expiry; op disconnect stops and forgets it.
# The token never appears in the logs or the database.
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
dir=$(mktemp -d "$TN_TEST_TMP/calsync_google_push.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
. "$TN_SRC_DIR/tests/support/google.sh"
cpid="" ipid=""
finish() {
    local rc=0
    [ -n "$ipid" ] && kill "$ipid" 2>/dev/null && wait "$ipid" 2>/dev/null
    if [ -n "$cpid" ]; then
        kill "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null || rc=$?
        want 0 "$rc" "tern-calsync exit status after SIGTERM (sanitizers report here)"
        grep -q -e 'AddressSanitizer' -e 'runtime error' "$dir/calsync.log" "$dir/ingest.log" \
            && bad "sanitizer report in a log"
    fi
    sandbox_stop
    [ $fail -gt 0 ] && tail -30 "$dir/calsync.log" >&2
    echo "calsync_google_push: $pass passed, $fail failed"
    [ $fail -eq 0 ]
}
trap 'finish; exit $?' EXIT

. "$TN_SRC_DIR/tests/support/calsync.sh"
pushes() { admin_redis XRANGE tern:cal - + | grep -c '"op":"push"'; }
book() { tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T$1:00Z', NULL, 0, NULL, NULL)"; }
chan() { sql "SELECT COALESCE(push_channel_id, '') FROM oauth_accounts WHERE id = '$acct'"; }

# ---------------------------------------------------------------- sandbox, ingest, calsync
sandbox_start "$dir" || exit 1
G="$SANDBOX_URL/google"
ingest_setup_tenant || { bad "tenant setup"; exit 1; }
ingest_start TN_GOOGLE_CLIENT_ID=tern-test.apps.example \
    TN_GOOGLE_AUTH_URL="$G/o/oauth2/v2/auth" || exit 1
printf 'client-secret-%s' "$RANDOM" >"$dir/client_secret"
sandbox_config "{\"google\":{\"clients\":{\"tern-test.apps.example\":\"$(cat "$dir/client_secret")\",
    \"other-app\":\"x\"}}}"
aport2=$(tn_free_port)
env TN_REDIS_URL="$TN_TEST_REDIS_URL_CALSYNC" TN_PG_DSN="$TN_TEST_PG_DSN_CALSYNC" \
    TN_MASTER_KEY="$master" TN_ADMIN_LISTEN="127.0.0.1:$aport2" TN_CALSYNC_SCAN_INTERVAL=300ms \
    TN_CALSYNC_BUSY_INTERVAL=10m TN_GOOGLE_PUSH_URL="$base/webhooks/google/calendar" \
    TN_GOOGLE_CLIENT_ID=tern-test.apps.example TN_GOOGLE_CLIENT_SECRET_FILE="$dir/client_secret" \
    TN_GOOGLE_TOKEN_URL="$G/token" TN_GOOGLE_USERINFO_URL="$G/v1/userinfo" \
    TN_GOOGLE_CALENDAR_BASE="$G/calendar/v3" TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=3s \
    "$TN_BIN_DIR/tern-calsync" >>"$dir/calsync.log" 2>&1 &
cpid=$!

# ---------------------------------------------------------------- connect -> watch
google_connect "$G" || { bad "connect"; exit 1; }
wait_sql "channel stored" "SELECT push_channel_id IS NOT NULL FROM oauth_accounts
                           WHERE id = '$acct'" || exit 1
ch1=$(chan)
sandbox_requests google 0 | jq '[.[] | select(.path | endswith("/events/watch"))]' >"$dir/watch.json"
want 1 "$(jq length "$dir/watch.json")" "one events.watch"
want "$ch1|web_hook|$base/webhooks/google/calendar|64" "$(jq -r '.[0].json |
    "\(.id)|\(.type)|\(.address)|\(.token | length)"' "$dir/watch.json")" "watch request"
tok1=$(jq -r '.[0].json.token' "$dir/watch.json")
want "$(printf %s "$tok1" | sha256sum | cut -d' ' -f1)|t|t" "$(sql "SELECT push_token_hash,
    push_resource_id IS NOT NULL, push_expires_at > now() + interval '6 days'
    FROM oauth_accounts WHERE id = '$acct'")" "stored: hash, resource, expiry"
grep -q '"event":"calsync.watch_opened"' "$dir/calsync.log" && ok || bad "watch_opened not logged"

# tern-ingest learns the channel on its next refresh: 404 until then, then 401
for _ in $(seq 1 50); do
    [ "$(goog_push "$ch1" wrong-token exists 900)" = 401 ] && break
    sleep 0.1
done
n0=$(pushes)
want 401 "$(goog_push "$ch1" wrong-token exists 901)" "wrong token refused"
want 401 "$(goog_push "$ch1" "" exists 902)" "no token refused"
want 404 "$(goog_push 11111111-2222-3333-4444-555555555555 "$tok1" exists 903)" "unknown channel"
want 200 "$(goog_push "$ch1" "$tok1" sync 1)" "sync acknowledged"
want 400 "$(goog_push "$ch1" "$tok1" exists x)" "bad message number"
want 405 "$(curl -s -o /dev/null -w '%{http_code}' "$base/webhooks/google/calendar")" "GET"
sleep 0.3
want "$n0" "$(pushes)" "refused or sync notifications enqueued nothing"

# ---------------------------------------------------------------- a booking, mirrored
sql "INSERT INTO business_hours (tenant_id, weekday, opens, closes)
     SELECT '$tid', d, '09:00', '17:00' FROM generate_series(1, 7) d" >/dev/null
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min, min_notice_min)
           VALUES ('$tid', 'Consultation', 60, 0) RETURNING id")
contact=$(sql "INSERT INTO contacts (tenant_id, kind, address)
               VALUES ('$tid', 'telegram', 'c$RANDOM') RETURNING id")
iso=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYY-MM-DD')")
bid=$(book 10)
xadd book booking_id "$bid"
wait_sql "book mirrored" "SELECT synced_version = sync_version AND external_event_id IS NOT NULL
                          FROM bookings WHERE id = '$bid'" || exit 1
# Tern's own insert is a change too: its push arrives and is answered 200
for _ in $(seq 1 50); do
    [ "$(pushes)" -gt "$n0" ] && break
    sleep 0.1
done
[ "$(pushes)" -gt "$n0" ] && ok || bad "Tern's own insert was not pushed"
sleep 1 # let the import that push started finish

# ---------------------------------------------------------------- the owner deletes Tern's event
google_owner_token || bad "owner token"
s0=$(google_seq)
t0=$(date +%s%N)
gcal DELETE "/calendars/primary/events/$(evid "$bid")" >/dev/null
want 204 "$gstatus" "owner's delete"
wait_sql "booking cancelled by the push" "SELECT status = 'cancelled' FROM bookings
                                          WHERE id = '$bid'" 80
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 8000 ] && ok || bad "cancel took ${ms} ms"
echo "calsync_google_push: owner's delete to cancelled booking in ${ms} ms"
want 200 "$(sandbox_requests google-push "$s0" | jq -r '[.[] | select(.headers["x-goog-channel-id"] == "'"$ch1"'")][0].status')" \
    "the delete's push answered 200 by tern-ingest"
grep -q '"event":"calsync.provider_deleted"' "$dir/calsync.log" && ok || bad "provider_deleted"
want 1 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
               AND action = 'booking.cancelled_in_calendar'")" "audit"
admin_redis XRANGE tern:cal - + | grep '"op":"push"' | tail -1 >"$dir/push_entry"
grep -q "\"account_id\":\"$acct\"" "$dir/push_entry" && grep -q '"token_ok":true' "$dir/push_entry" \
    && ok || bad "push entry: $(cat "$dir/push_entry")"

# ---------------------------------------------------------------- op watch: a new channel, the old stopped
s1=$(google_seq)
xadd watch account_id "$acct"
wait_sql "new channel" "SELECT push_channel_id <> '$ch1' FROM oauth_accounts WHERE id = '$acct'"
ch2=$(chan)
for _ in $(seq 1 30); do
    [ "$(google_count google "$s1" '.path | endswith("/channels/stop")')" -ge 1 ] && break
    sleep 0.1
done
want "$ch1" "$(sandbox_requests google "$s1" | jq -r '[.[] | select(.path | endswith("/channels/stop"))][0].json.id')" \
    "the old channel stopped"
tok2=$(sandbox_requests google "$s1" | jq -r '[.[] | select(.path | endswith("/events/watch"))][0].json.token')
[ "$tok2" != "$tok1" ] && ok || bad "a new channel reuses the token"
for _ in $(seq 1 30); do
    [ "$(goog_push "$ch1" "$tok1" exists 50)" = 404 ] && break
    sleep 0.1
done
want 404 "$(goog_push "$ch1" "$tok1" exists 51)" "the old channel is unknown to tern-ingest"

# ---------------------------------------------------------------- renewal: a channel near its expiry
sql "UPDATE oauth_accounts SET push_expires_at = now() + interval '10 minutes',
     push_attempted_at = NULL WHERE id = '$acct'" >/dev/null
wait_sql "renewed before expiry (scan)" "SELECT push_channel_id <> '$ch2'
    AND push_expires_at > now() + interval '6 days' FROM oauth_accounts WHERE id = '$acct'"
for _ in $(seq 1 30); do
    [ "$(google_count google "$s1" '.path | endswith("/channels/stop")')" -ge 2 ] && break
    sleep 0.1
done
want "$ch2" "$(sandbox_requests google "$s1" | jq -r '[.[] | select(.path | endswith("/channels/stop"))][1].json.id')" \
    "the renewed channel stopped"
ch2=$(chan)

# ---------------------------------------------------------------- op disconnect: stopped and forgotten
s2=$(google_seq)
xadd disconnect account_id "$acct"
wait_sql "channel forgotten" "SELECT push_channel_id IS NULL AND push_token_hash IS NULL
                              FROM oauth_accounts WHERE id = '$acct'"
want "$ch2" "$(sandbox_requests google "$s2" | jq -r '[.[] | select(.path | endswith("/channels/stop"))][0].json.id')" \
    "disconnect stopped the channel"

# ---------------------------------------------------------------- no token in clear
leaks=0
tokens=$(sandbox_requests google 0 | jq -r '.[] | select(.path | endswith("/events/watch")) | .json.token')
want 3 "$(wc -w <<<"$tokens")" "channels opened (connect, op watch, renewal)"
for t in $tokens; do
    grep -qF -- "$t" "$dir/calsync.log" "$dir/ingest.log" && leaks=$((leaks + 1))
    [ "$(sql "SELECT count(*) FROM oauth_accounts a WHERE row_to_json(a)::text LIKE '%$t%'")" = 0 ] \
        || leaks=$((leaks + 1))
    admin_redis XRANGE tern:cal - + | grep -qF -- "$t" && leaks=$((leaks + 1))
done
want 0 "$leaks" "channel tokens in clear in the logs, the database or the stream"
