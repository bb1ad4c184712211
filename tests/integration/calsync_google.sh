#!/usr/bin/env bash
# calsync_google - tern-calsync against the sandbox's Google (OAuth and
# Calendar v3), with real Redis and Postgres and tern-ingest's real OAuth
# routes: `ternctl calendar link` -> /oauth/google/start -> the sandbox's
# authorization endpoint (PKCE challenge registered) -> /oauth/google/callback
# -> a sealed connect entry; calsync exchanges the code (PKCE verifier
# checked), stores the account (email, sub) with sealed tokens (no plaintext
# in the database or the logs) and does it once for a redelivered entry. A
# booking becomes an event with the deterministic id and Tern's private tag
# (sendUpdates per tenant; a 503 first is retried), reschedule patches it
# (If-Match), cancel deletes it; a foreign event, and one squatting on
# Tern's id, are never touched; busy time from events.list removes slots
# (an all-day event for its day in the calendar's zone, events.list's
# timeZone);
# erasing a lead (a real tern-sweeper) deletes that lead's event and no
# other;
# an access token the provider no longer accepts is refreshed exactly once
# while several jobs need it; invalid_grant flags the account (column and
# audit row) and stops calls.
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
dir=$(mktemp -d "$TN_TEST_TMP/calsync_google.XXXXXX")
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
        grep -q -e 'AddressSanitizer' -e 'runtime error' "$dir/calsync.log" \
            && bad "sanitizer report in the log"
    fi
    sandbox_stop
    [ $fail -gt 0 ] && tail -30 "$dir/calsync.log" >&2
    echo "calsync_google: $pass passed, $fail failed"
    [ $fail -eq 0 ]
}
trap 'finish; exit $?' EXIT

. "$TN_SRC_DIR/tests/support/calsync.sh"
book() { tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T$1:00Z', NULL, 0, NULL, NULL)"; }

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
    TN_GOOGLE_CLIENT_ID=tern-test.apps.example TN_GOOGLE_CLIENT_SECRET_FILE="$dir/client_secret" \
    TN_GOOGLE_TOKEN_URL="$G/token" TN_GOOGLE_USERINFO_URL="$G/v1/userinfo" \
    TN_GOOGLE_CALENDAR_BASE="$G/calendar/v3" TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=3s \
    "$TN_BIN_DIR/tern-calsync" >>"$dir/calsync.log" 2>&1 &
cpid=$!

# ---------------------------------------------------------------- connect
link=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master \
    TN_INGEST_PUBLIC_URL=https://hooks.example.test "$TN_BIN_DIR/ternctl" calendar link \
    --tenant "$tid" --ttl 1h) || bad "calendar link"
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$base${link#https://hooks.example.test}")
case "$loc" in "$G/o/oauth2/v2/auth?"*) ok ;; *) bad "start redirect: $loc" ;; esac
cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc")
case "$cb" in https://hooks.example.test/oauth/google/callback\?*) ok ;; *) bad "consent: $cb" ;; esac
want 200 "$(curl -s -o "$dir/resp" -w '%{http_code}' "$base/oauth/google/callback?${cb#*\?}")" \
    "callback"
code=$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$cb")
wait_sql "account stored" "SELECT count(*) = 1 FROM oauth_accounts WHERE tenant_id = '$tid'
                           AND provider = 'google' AND access_token_sealed IS NOT NULL"
acct=$(sql "SELECT id FROM oauth_accounts WHERE tenant_id = '$tid' AND provider = 'google'")
want "owner@example.com|t|t|primary|f" "$(sql "SELECT account_email, provider_subject ~ '^[0-9]{21}$',
    refresh_token_sealed IS NOT NULL AND expires_at > now() + interval '50 minutes', calendar_id,
    needs_reconnect FROM oauth_accounts WHERE id = '$acct'")" "account row"
want "Owner Example" "$(sql "SELECT display_name FROM oauth_accounts WHERE id = '$acct'")" "name"
want 1 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
               AND action = 'calendar.connected' AND detail->>'account_id' = '$acct'")" "audit"
sandbox_requests google-oauth >"$dir/oauth.json"
want 1 "$(jq '[.[] | select(.path == "/google/token" and .json.grant_type == "authorization_code")] | length' "$dir/oauth.json")" \
    "one code exchange"
want "true|true" "$(jq -r '[.[] | select(.json.grant_type == "authorization_code")][0] |
    "\(.json.code_verifier | length >= 43)|\(.json.redirect_uri == "https://hooks.example.test/oauth/google/callback")"' \
    "$dir/oauth.json")" "exchange carried the PKCE verifier and redirect_uri"

# a redelivered connect entry: acknowledged, not exchanged again
mapfile -t f < <(admin_redis XREVRANGE tern:cal + - COUNT 1 | tail -n +2)
admin_redis XADD tern:cal '*' "${f[@]}" >/dev/null
sleep 1.5
want 1 "$(google_count google-oauth 0 '.json.grant_type == "authorization_code"')" \
    "redelivery exchanged the code again"
want 1 "$(sql "SELECT count(*) FROM oauth_accounts WHERE tenant_id = '$tid'")" "one account"

# ---------------------------------------------------------------- tenant data, foreign events
sql "UPDATE tenants SET calendar_send_updates = 'all' WHERE id = '$tid'" >/dev/null
sql "INSERT INTO business_hours (tenant_id, weekday, opens, closes)
     SELECT '$tid', d, '09:00', '17:00' FROM generate_series(1, 7) d" >/dev/null
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min, min_notice_min)
           VALUES ('$tid', 'Consultation', 60, 0) RETURNING id")
contact=$(sql "INSERT INTO contacts (tenant_id, kind, address)
               VALUES ('$tid', 'telegram', 'c$RANDOM') RETURNING id")
iso=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYY-MM-DD')")
google_owner_token || bad "owner token"
gcal POST /calendars/primary/events -d "{\"summary\":\"Dentist\",
    \"start\":{\"dateTime\":\"${iso}T13:00:00Z\"},\"end\":{\"dateTime\":\"${iso}T14:00:00Z\"}}" \
    >"$dir/foreign.json"
want 200 "$gstatus" "foreign event"
fid=$(jq -r .id "$dir/foreign.json")
gcal POST /calendars/primary/events -d "{\"summary\":\"Lunch\",\"transparency\":\"transparent\",
    \"start\":{\"dateTime\":\"${iso}T15:00:00Z\"},\"end\":{\"dateTime\":\"${iso}T16:00:00Z\"}}" >/dev/null

# ---------------------------------------------------------------- book, reschedule, cancel
sandbox_fault '{"provider":"google","status":503,"count":1}'
s0=$(google_seq)
bid=$(book 10)
xadd book booking_id "$bid"
wait_sql "book mirrored" "SELECT synced_version = sync_version AND external_etag IS NOT NULL
                          FROM bookings WHERE id = '$bid'"
gcal GET "/calendars/primary/events/$(evid "$bid")" >"$dir/ev.json"
want 200 "$gstatus" "GET Tern's event"
want "$bid" "$(jq -r .extendedProperties.private.tern_booking "$dir/ev.json")" "private tag"
want "${iso}T10:00:00Z" "$(jq -r .start.dateTime "$dir/ev.json")" "start"
want "$(evid "$bid")" "$(sql "SELECT external_event_id FROM bookings WHERE id = '$bid'")" "event id"
want all "$(sandbox_requests google "$s0" | jq -r '[.[] | select(.method == "POST")][-1].query.sendUpdates')" \
    "sendUpdates from the tenant"
[ "$(google_count google "$s0" ".method == \"GET\" and (.path | endswith(\"/$(evid "$bid")\"))")" -ge 2 ] \
    && ok || bad "the 503 was not retried"
grep -q '"why":"google_unavailable"' "$dir/calsync.log" && ok || bad "503 not seen as unavailable"

s1=$(google_seq)
want "" "$(tsql "SELECT tern_reschedule('$bid', '$contact', '${iso}T12:00Z')")" "reschedule"
wait_sql "reschedule mirrored (scan)" "SELECT synced_version = 2 FROM bookings WHERE id = '$bid'"
want "${iso}T12:00:00Z" "$(gcal GET "/calendars/primary/events/$(evid "$bid")" | jq -r .start.dateTime)" \
    "moved"
want 1 "$(google_count google "$s1" '.method == "PATCH" and .headers["if-match"] != null')" \
    "one conditional PATCH"

tsql "UPDATE bookings SET status = 'cancelled', cancelled_at = now(),
      sync_version = sync_version + 1, updated_at = now() WHERE id = '$bid'" >/dev/null
xadd cancel booking_id "$bid"
wait_sql "cancel mirrored" "SELECT synced_version = 3 FROM bookings WHERE id = '$bid'"
want cancelled "$(gcal GET "/calendars/primary/events/$(evid "$bid")" | jq -r .status)" "deleted"

# ---------------------------------------------------------------- an event squatting on Tern's id
bid2=$(book 11)
gcal POST /calendars/primary/events -d "{\"id\":\"$(evid "$bid2")\",\"summary\":\"Mine\",
    \"start\":{\"dateTime\":\"${iso}T11:00:00Z\"},\"end\":{\"dateTime\":\"${iso}T12:00:00Z\"}}" \
    >"$dir/squat.before"
xadd book booking_id "$bid2"
wait_sql "refusal recorded" "SELECT sync_error = 'foreign_event' FROM bookings WHERE id = '$bid2'"
gcal GET "/calendars/primary/events/$(evid "$bid2")" >"$dir/squat.after"
want "$(jq -S . "$dir/squat.before")" "$(jq -S . "$dir/squat.after")" "squatter untouched"

# ---------------------------------------------------------------- busy time
# The calendar is in Sydney (the tenant in UTC): an all-day "Closed" day is
# busy from its local midnight to the next, as Postgres's zone rules say
# (before: UTC midnights, so that morning stayed bookable).
sandbox_config '{"google":{"time_zones":{"owner@example.com":"Australia/Sydney"}}}'
read -r closed closed_end < <(sql "SELECT to_char(d, 'YYYY-MM-DD'), to_char(d + 1, 'YYYY-MM-DD')
    FROM (SELECT (now() AT TIME ZONE 'UTC')::date + 6 AS d) x" | tr '|' ' ')
gcal POST /calendars/primary/events -d "{\"summary\":\"Closed\",
    \"start\":{\"date\":\"$closed\"},\"end\":{\"date\":\"$closed_end\"}}" >/dev/null
want 200 "$gstatus" "all-day event"
since=$(sql "SELECT now()")
xadd sync account_id "$acct"
wait_sql "busy imported" "SELECT busy_synced_at > '$since' FROM oauth_accounts WHERE id = '$acct'"
slots=$(tsql "SELECT string_agg(to_char(slot_start AT TIME ZONE 'UTC', 'HH24'), ' ')
              FROM tern_available_slots('$svc', '$iso', '$iso')")
# 11: bid2 (and the squatter), 13: the foreign event; 15 is transparent
want "09 10 12 14 15 16" "$slots" "slots after busy import"
want 3 "$(sql "SELECT count(*) FROM busy_blocks WHERE account_id = '$acct'")" "busy ranges"
want 1 "$(sql "SELECT count(*) FROM busy_blocks WHERE account_id = '$acct' AND during = tstzrange(
    '$closed'::timestamp AT TIME ZONE 'Australia/Sydney',
    '$closed_end'::timestamp AT TIME ZONE 'Australia/Sydney')")" \
    "all-day busy in the calendar's zone"
# the sandbox lists that day as Google does, from Sydney's midnight (13:00
# or 14:00 UTC the day before): a window ending before UTC midnight has it
prev=$(sql "SELECT to_char('$closed'::date - 1, 'YYYY-MM-DD')")
want 1 "$(gcal GET "/calendars/primary/events?timeMin=${prev}T13:30:00Z&timeMax=${prev}T14:30:00Z" |
    jq '[.items[] | select(.summary == "Closed")] | length')" "sandbox: the day from the zone's midnight"
grep -q '"calsync.zone_unknown"' "$dir/calsync.log" && bad "zone_unknown logged" || ok

# ---------------------------------------------------------------- refresh, once, with several jobs
s2=$(google_seq)
sandbox_config '{"google":{"clock_offset_s":7200}}' # every token issued so far has expired
google_owner_token
bids=()
for h in 09 14 15 16; do bids+=("$(book "$h")"); done
for b in "${bids[@]}"; do xadd book booking_id "$b"; done
for b in "${bids[@]}"; do
    wait_sql "mirrored after refresh" "SELECT synced_version = sync_version AND sync_error IS NULL
                                       FROM bookings WHERE id = '$b'"
done
want 1 "$(google_count google-oauth "$s2" '.json.grant_type == "refresh_token"')" "exactly one refresh"
[ "$(google_count google "$s2" '.headers.authorization != null')" -ge 5 ] && ok || bad "calls"
want "$(evid "${bids[0]}")" "$(gcal GET "/calendars/primary/events/$(evid "${bids[0]}")" | jq -r .id)" \
    "event after refresh"

# ---------------------------------------------------------------- erasure: the erased lead's event goes
# Two new leads book 10:00 and 12:00 a day later; `ternctl privacy erase` of the first
# (a real tern-sweeper: calendar_deletions row, cal.request delete_event)
# makes calsync delete that event (events.delete, If-Match) and nothing
# else: the other lead's event, the squatter and the foreign event stay.
gone=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$tid', 'telegram', 'g$RANDOM')
            RETURNING id")
keep=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$tid', 'telegram', 'k$RANDOM')
            RETURNING id")
iso2=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 4, 'YYYY-MM-DD')") # leaves $iso's slots
bg=$(tsql "SELECT booking_id FROM tern_book('$svc', '$gone', '${iso2}T10:00Z', NULL, 0, NULL, NULL)")
bk=$(tsql "SELECT booking_id FROM tern_book('$svc', '$keep', '${iso2}T12:00Z', NULL, 0, NULL, NULL)")
xadd book booking_id "$bg"
xadd book booking_id "$bk"
for b in "$bg" "$bk"; do
    wait_sql "erasure: $b mirrored" "SELECT synced_version = sync_version AND external_etag IS NOT NULL
                                     FROM bookings WHERE id = '$b'"
done
gcal GET "/calendars/primary/events/$(evid "$bk")" >"$dir/keep.before"
want confirmed "$(gcal GET "/calendars/primary/events/$(evid "$bg")" | jq -r .status)" "erased lead's event"
s4=$(google_seq)
calsync_erase "$gone" && ok || bad "erase: $(tail -3 "$dir/sweeper.log")"
want 0 "$(sql "SELECT count(*) FROM bookings WHERE id = '$bg'")" "erased booking"
dels() { google_count google "$s4" ".method == \"DELETE\" and (.path | endswith(\"/$(evid "$bg")\"))"; }
for _ in $(seq 1 100); do [ "$(dels)" -ge 1 ] && break; sleep 0.1; done
want 1 "$(dels)" "events.delete of the erased lead's event"
want "true" "$(sandbox_requests google "$s4" | jq -r "[.[] | select(.method == \"DELETE\")][0] |
    .headers[\"if-match\"] != null and (.headers.authorization | startswith(\"Bearer \"))")" \
    "the delete is conditional and authorised"
want cancelled "$(gcal GET "/calendars/primary/events/$(evid "$bg")" | jq -r .status)" \
    "the erased lead's event is deleted"
want 0 "$(google_count google "$s4" "(.method == \"DELETE\" or .method == \"PATCH\" or .method == \"PUT\"
    or .method == \"POST\") and (.path | endswith(\"/$(evid "$bg")\") | not)")" "other writes"
gcal GET "/calendars/primary/events/$(evid "$bk")" >"$dir/keep.after"
want "$(jq -S . "$dir/keep.before")" "$(jq -S . "$dir/keep.after")" "the other lead's event"
wait_sql "erasure: calendar_deletions done" "SELECT count(*) = 0 FROM calendar_deletions
                                             WHERE tenant_id = '$tid'"
want 1 "$(sql "SELECT (receipt->>'calendar_events')::int FROM privacy_requests
               WHERE tenant_id = '$tid' AND subject_ref = 'contact:$gone'")" "receipt counts the event"
grep -q '"event":"calsync.event_deleted"' "$dir/calsync.log" && ok || bad "event_deleted not logged"
dump_entries tern:cal | grep -F '\"op\":\"delete_event\"' >"$dir/delete_event.jsonl"
want 1 "$(grep -cF "\\\"account_id\\\":\\\"$acct\\\"" "$dir/delete_event.jsonl")" \
    "the sweeper's delete_event entry on tern:cal"
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/delete_event.jsonl" >/dev/null && ok \
    || bad "the delete_event entry does not match cal.request v1"

# ---------------------------------------------------------------- the foreign event, untouched
gcal GET "/calendars/primary/events/$fid" >"$dir/foreign.after"
want "$(jq -S . "$dir/foreign.json")" "$(jq -S . "$dir/foreign.after")" "foreign event unchanged"
want 0 "$(google_count google 0 "(.method == \"PATCH\" or .method == \"DELETE\") and
    (.path | endswith(\"/$fid\") or endswith(\"/$(evid "$bid2")\"))")" "writes to foreign events"

# ---------------------------------------------------------------- invalid_grant
at=$(sandbox_requests google "$s2" | jq -r '[.[] | select(.headers["user-agent"] // "" |
    startswith("tern-calsync"))][-1].headers.authorization')
[ "$(curl -s -o /dev/null -w '%{http_code}' "$G/revoke" -d "token=${at#Bearer }")" = 200 ] \
    && ok || bad "revoke"
sandbox_config '{"google":{"clock_offset_s":20000}}'
bid3=$(book 12)
xadd book booking_id "$bid3"
wait_sql "flagged" "SELECT needs_reconnect AND reconnect_reason = 'invalid_grant'
                    FROM oauth_accounts WHERE id = '$acct'"
wait_sql "booking records it" "SELECT sync_error = 'reconnect_needed' FROM bookings WHERE id = '$bid3'"
want 1 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
               AND action = 'calendar.reconnect_needed'")" "tenant flagged once"
s3=$(google_seq)
xadd sync account_id "$acct"
xadd book booking_id "$bid3"
sleep 1.5
want 0 "$(google_count google "$s3" 'true')" "calendar calls after invalid_grant"
want 0 "$(google_count google-oauth "$s3" 'true')" "token calls after invalid_grant"
# the operator sees both on /metrics (the alert TernTokenRefreshFailing reads this)
m=$(curl -s "http://127.0.0.1:$aport2/metrics")
grep -q '^tern_calsync_oauth_refresh_total{provider="google",result="ok"} [1-9]' <<<"$m" && ok \
    || bad "refreshes not counted on /metrics"
grep -q '^tern_calsync_oauth_refresh_total{provider="google",result="error"} [1-9]' <<<"$m" && ok \
    || bad "failed refresh not counted on /metrics"

# ---------------------------------------------------------------- no plaintext secrets
all=$(sandbox_requests "" 0)
tokens=$(jq -r '.[] | (.headers.authorization // empty | sub("^Bearer "; "")), (.json.refresh_token // empty)' <<<"$all" | sort -u)
[ -n "$tokens" ] && ok || bad "no tokens seen"
sql "SELECT row_to_json(a)::text FROM oauth_accounts a WHERE tenant_id = '$tid'" >"$dir/db.txt"
sql "SELECT encode(access_token_sealed, 'escape') || encode(refresh_token_sealed, 'escape')
     FROM oauth_accounts WHERE tenant_id = '$tid'" >>"$dir/db.txt"
leaks=0
while read -r t; do
    [ -z "$t" ] && continue
    grep -qF -- "$t" "$dir/db.txt" "$dir/calsync.log" "$dir/ingest.log" && leaks=$((leaks + 1))
done <<<"$tokens"
want 0 "$leaks" "tokens in clear in the database or the logs"
grep -qF -- "$code" "$dir/calsync.log" && bad "authorization code in the log" || ok
grep -qF -- "$(cat "$dir/client_secret")" "$dir/calsync.log" && bad "client secret in the log" || ok
