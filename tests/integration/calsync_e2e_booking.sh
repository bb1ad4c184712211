#!/usr/bin/env bash
# calsync_e2e_booking - ACCEPTANCE (issue 6): a conversation books,
# reschedules and cancels with a Google calendar connected through the real
# path, and the calendar follows both ways. tern-ingest (OAuth routes),
# tern-agent (the sandbox LLM scripted with tool calls), tern-calsync,
# tern-sender (the sandbox's WhatsApp) and tern-sweeper (disconnect), with
# real Redis and Postgres and the sandbox's Google.
#
# The tenant's zone is picked so that its local time is around noon, and
# today's hours open 4 minutes from now (a 10-minute service, grid of 10
# minutes from the opening: O, O+10, ...), with reminders 2 and 1 minutes
# before the start, so that reminders come due while the test runs.
#   foreign   an event of the owner at O+30 blocks that slot (busy time), and
#             is byte for byte the same after every operation
#   book      find_slots -> book A at O+20: confirmation delivered, reminders
#             at O+18 / O+19, the event inserted with Tern's tag
#   move      reschedule A to O: "moved" delivered, reminders replaced by O-2
#             / O-1, the event patched; both reminders are delivered by
#             tern-sender at their not_before (checked on the sandbox's clock)
#   deleted   B (booked outside the conversation): the owner deletes its
#             event in Google -> the periodic import and a GET find it gone ->
#             B cancelled, its reminders canceled, the lead told (WhatsApp)
#   moved     C: the owner moves its event -> the booking takes the new
#             times, tern-agent's scan tells the lead, no calendar write back
#   cancel    cancel A: the event deleted by calsync; A is not "re-cancelled"
#             (no calendar-side notice, no audit row)
#   lifecycle calsync's writes are exactly insert/patch/delete for A and
#             insert for B and C, none to the foreign event
#   disconnect `ternctl privacy disconnect` (tern-sweeper: tokens deleted,
#             revoked): a later booking D makes no calendar call
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
dir=$(mktemp -d "$TN_TEST_TMP/calsync_e2e.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
. "$TN_SRC_DIR/tests/support/google.sh"
declare -A dpid=()
ipid=""
finish() {
    local n rc
    [ -n "$ipid" ] && kill "$ipid" 2>/dev/null && wait "$ipid" 2>/dev/null
    for n in "${!dpid[@]}"; do
        rc=0
        kill -TERM "${dpid[$n]}" 2>/dev/null
        wait "${dpid[$n]}" 2>/dev/null || rc=$?
        want 0 "$rc" "tern-$n exit status after SIGTERM (sanitizers report here)"
        grep -q -e 'AddressSanitizer' -e 'runtime error' "$dir/$n.log" \
            && bad "sanitizer report in the $n log"
    done
    sandbox_stop
    if [ $fail -gt 0 ]; then
        for n in calsync agent; do
            echo "--- $n log" >&2
            grep -v '"lvl":"info"' "$dir/$n.log" | tail -15 >&2
        done
    fi
    echo "calsync_e2e_booking: $pass passed, $fail failed"
    [ $fail -eq 0 ]
}
trap 'finish; exit $?' EXIT

. "$TN_SRC_DIR/tests/support/calsync.sh" # sql, tsql, evid (its own wait_sql below)
# wait_sql WHAT SQL [SECONDS] - until SQL prints t
wait_sql() {
    local end=$(($(date +%s) + ${3:-15}))
    while [ "$(date +%s)" -le "$end" ]; do
        [ "$(sql "$2")" = t ] && return 0
        sleep 0.2
    done
    bad "$1: timed out"
    return 1
}
start() { # NAME VAR=VALUE... (tests/support/ingest.sh), with a longer drain
    local name=$1
    shift
    ingest_daemon "$name" TN_DRAIN_TIMEOUT=3s "$@"
}
# at MIN [z] - the instant O + MIN minutes, RFC 3339 (+00:00, or Z with z)
at() {
    local t=$((oe + $1 * 60))
    if [ "${2:-}" = z ]; then date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ
    else date -u -d "@$t" +%Y-%m-%dT%H:%M:%S+00:00; fi
}

# inbound TEXT - the lead's WhatsApp message on tern:in, as tern-ingest writes it
nin=0
inbound() {
    nin=$((nin + 1))
    python3 - "$tid" "$wa_ch" "$lead" "wamid.$uniq.$nin" "$1" <<'EOF' | admin_redis >/dev/null
import json, os, sys, datetime
tenant, channel, sender, pmid, text = sys.argv[1:6]
now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
now = now.replace("+00:00", "Z")
data = {"tenant": tenant, "channel": channel, "provider": "whatsapp",
        "provider_message_id": pmid, "transport": "whatsapp", "sender": sender,
        "sender_name": "Lead", "received_at": now, "ingested_at": now,
        "message_type": "text", "raw_type": "text", "text": text, "raw": {}}
trace = "00-" + os.urandom(16).hex() + "-" + os.urandom(8).hex() + "-01"
args = ["XADD", "tern:in", "*", "type", "inbound.message", "v", "1", "tenant", tenant,
        "trace", trace, "channel", channel, "provider", "whatsapp", "pmid", pmid,
        "dedupe", "t:" + pmid, "data", json.dumps(data, separators=(",", ":"))]
print(" ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args))
EOF
}
# wa_count JQ_TEST - WhatsApp messages to the lead whose text body passes the test
wa_count() {
    sandbox_requests whatsapp | jq --arg to "${lead#+}" \
        "[.[] | select((.json.to // \"\" | ltrimstr(\"+\")) == \$to) | .json.text.body // \"\" | select($1)] | length"
}
wa_has() { [ "$(wa_count "$1")" -ge "${2:-1}" ]; }
# llm_tool_results NAME - tool messages answering calls of NAME, as JSON lines
llm_tool_results() {
    sandbox_requests openai | python3 -c '
import json, sys
seen = set()
for r in json.load(sys.stdin):
    msgs = (r.get("json") or {}).get("messages") or []
    calls = {c["id"]: c["function"]["name"] for m in msgs if m["role"] == "assistant"
             for c in m.get("tool_calls") or []}
    for m in msgs:
        if m["role"] == "tool" and calls.get(m["tool_call_id"]) == sys.argv[1] \
                and m["tool_call_id"] not in seen:
            seen.add(m["tool_call_id"])
            print(m["content"])' "$1"
}
# writes ID - calsync's writes to event ID, e.g. "insert patch delete"
writes() {
    sandbox_requests google 0 | jq -r --arg id "$1" '[.[] |
        select((.headers["user-agent"] // "") | startswith("tern-calsync")) |
        if .method == "POST" and (.json.id // "") == $id then "insert"
        elif .method == "PATCH" and (.path | endswith("/" + $id)) then "patch"
        elif .method == "DELETE" and (.path | endswith("/" + $id)) then "delete"
        else empty end] | join(" ")'
}
# reminders BOOKING STATE - epochs of the booking's reminder rows in STATE
reminders() {
    sql "SELECT string_agg(extract(epoch FROM not_before)::bigint::text, ' ' ORDER BY not_before)
         FROM outbound_messages WHERE tenant_id = '$tid' AND booking_id = '$1'
         AND reason = 'reminder' AND state = '$2'"
}
foreign_same() {
    gcal GET "/calendars/primary/events/$fid" >"$dir/foreign.now"
    want "$(jq -S . "$dir/foreign.json")" "$(jq -S . "$dir/foreign.now")" "foreign event after $1"
}
synced() { # BOOKING VERSION - calsync recorded the booking's calendar at VERSION
    wait_sql "$1 mirrored at version $2" "SELECT synced_version = $2 AND sync_version = $2
        FROM bookings WHERE id = '$1'"
}

# ---------------------------------------------------------------- stack
sandbox_start "$dir" || exit 1
G="$SANDBOX_URL/google"
ingest_setup_tenant || { bad "tenant setup"; exit 1; }
uniq="e2e$$x$RANDOM"
wa_token="EAAG$(openssl rand -hex 16)"
wa_ch=$(sql "SELECT id FROM channels WHERE tenant_id = '$tid' AND kind = 'whatsapp'")
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master "$TN_BIN_DIR/ternctl" channel remove \
    --tenant "$tid" --id "$wa_ch" >/dev/null
wa_ch=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master "$TN_BIN_DIR/ternctl" channel add \
    --tenant "$tid" --kind whatsapp --address "$wa_pnid" --secret "app_secret=$wa_secret" \
    --secret "verify_token=$wa_verify" --secret "access_token=$wa_token")
ingest_start TN_GOOGLE_CLIENT_ID=tern-e2e.apps.example TN_GOOGLE_AUTH_URL="$G/o/oauth2/v2/auth" \
    || exit 1
printf 'client-secret-%s' "$RANDOM$RANDOM" >"$dir/client_secret"
sandbox_config "{\"google\":{\"clients\":{\"tern-e2e.apps.example\":\"$(cat "$dir/client_secret")\",
    \"other-app\":\"x\"}}}"
head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$dir/llm.key"
mkdir -p "$dir/export"
start calsync TN_REDIS_URL="$TN_TEST_REDIS_URL_CALSYNC" TN_PG_DSN="$TN_TEST_PG_DSN_CALSYNC" \
    TN_CALSYNC_SCAN_INTERVAL=300ms TN_CALSYNC_BUSY_INTERVAL=1s \
    TN_GOOGLE_CLIENT_ID=tern-e2e.apps.example TN_GOOGLE_CLIENT_SECRET_FILE="$dir/client_secret" \
    TN_GOOGLE_TOKEN_URL="$G/token" TN_GOOGLE_USERINFO_URL="$G/v1/userinfo" \
    TN_GOOGLE_CALENDAR_BASE="$G/calendar/v3"
start agent TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
    TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
    TN_LLM_MODEL=sandbox-model TN_LLM_TIMEOUT_MS=3000 TN_LLM_RETRIES=1 \
    TN_AGENT_QUIET_MS=200 TN_AGENT_SCAN_MS=200 TN_AGENT_LEASE_MS=5000 TN_AGENT_REPUBLISH_MS=1000
start sender TN_REDIS_URL="$TN_TEST_REDIS_URL_SENDER" TN_PG_DSN="$TN_TEST_PG_DSN_SENDER" \
    TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" TN_SUPPRESSION_KEY="supp-$uniq"
# one tern-sweeper at a time joins the "sweeper" group (tests/support/sweeper.sh)
exec 9>"$TN_TEST_TMP/sweeper-tests.lock"
flock 9
start sweeper TN_REDIS_URL="$TN_TEST_REDIS_URL_SWEEPER" TN_PG_DSN="$TN_TEST_PG_DSN_SWEEPER" \
    TN_SUPPRESSION_KEY="supp-$uniq" TN_SWEEPER_EXPORT_DIR="$dir/export" \
    TN_SWEEPER_INTERVAL=1h TN_GOOGLE_REVOKE_URL="$G/revoke"

# ---------------------------------------------------------------- connect Google (the real path)
link=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master \
    TN_INGEST_PUBLIC_URL=https://hooks.example.test "$TN_BIN_DIR/ternctl" calendar link \
    --tenant "$tid" --ttl 1h) || bad "calendar link"
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$base${link#https://hooks.example.test}")
cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc")
want 200 "$(curl -s -o "$dir/resp" -w '%{http_code}' "$base/oauth/google/callback?${cb#*\?}")" \
    "OAuth callback"
wait_sql "account stored" "SELECT count(*) = 1 FROM oauth_accounts WHERE tenant_id = '$tid'
                           AND provider = 'google' AND access_token_sealed IS NOT NULL" || exit 1
acct=$(sql "SELECT id FROM oauth_accounts WHERE tenant_id = '$tid' AND provider = 'google'")

# ---------------------------------------------------------------- tenant: zone, hours, service
h=$(date -u +%H)
off=$((12 - 10#$h))
if [ $off -gt 0 ]; then zone="Etc/GMT-$off"; elif [ $off -lt 0 ]; then zone="Etc/GMT+$((-off))"
else zone=UTC; fi
oe=$(sql "SELECT extract(epoch FROM date_trunc('minute', now()) + interval '4 minutes')::bigint")
read -r day opens closes <<<"$(sql "SELECT to_char(t, 'YYYY-MM-DD'), to_char(t, 'HH24:MI'),
    to_char(t + interval '4 hours', 'HH24:MI')
    FROM (SELECT to_timestamp($oe) AT TIME ZONE '$zone' AS t) x" | tr '|' ' ')"
sql "UPDATE tenants SET time_zone = '$zone', calendar_send_updates = 'none' WHERE id = '$tid';
     INSERT INTO hours_exceptions (tenant_id, day, opens, closes)
     VALUES ('$tid', '$day', '$opens', '$closes');
     INSERT INTO services (tenant_id, name, duration_min, slot_step_min, min_notice_min)
     VALUES ('$tid', 'Visit', 10, 10, 0);
     INSERT INTO agent_profiles (tenant_id, business_name, offer, language, reminder_offsets_min)
     VALUES ('$tid', 'Quick Clinic', 'Ten-minute visits', 'en', '{2,1}')" >/dev/null

# ---------------------------------------------------------------- a foreign event blocks O+30
google_owner_token || bad "owner token"
gcal POST /calendars/primary/events -d "{\"summary\":\"Supplier call\",
    \"start\":{\"dateTime\":\"$(at 30 z)\"},\"end\":{\"dateTime\":\"$(at 40 z)\"}}" >"$dir/foreign.json"
want 200 "$gstatus" "foreign event created"
fid=$(jq -r .id "$dir/foreign.json")
wait_sql "foreign busy time imported" "SELECT count(*) = 1 FROM busy_blocks WHERE account_id = '$acct'
    AND during = tstzrange(to_timestamp($oe + 1800), to_timestamp($oe + 2400))"

# ---------------------------------------------------------------- book A at O+20
lead="+1555$((RANDOM % 900 + 100))$((RANDOM % 9000 + 1000))"
sandbox_script openai "[{\"tool_calls\":[{\"name\":\"find_slots\",\"arguments\":
    {\"service\":\"Visit\",\"from\":\"$day\",\"to\":\"$day\"}}]},
  {\"tool_calls\":[{\"name\":\"book\",\"arguments\":{\"service\":\"Visit\",\"start\":\"$(at 20)\"}}]},
  {\"reply\":\"You are booked.\"}]"
inbound "a visit today please"
until_ok 20 wa_has '. == "You are booked."' && ok || bad "book: reply not delivered"
contact=$(sql "SELECT id FROM contacts WHERE tenant_id = '$tid' AND address = '$lead'")
A=$(sql "SELECT id FROM bookings WHERE tenant_id = '$tid' AND contact_id = '$contact'
         AND status = 'confirmed'")
[ -n "$A" ] && ok || { bad "book: no booking"; exit 1; }
want t "$(sql "SELECT lower(during) = to_timestamp($oe + 1200) FROM bookings WHERE id = '$A'")" \
    "book: A at O+20"
llm_tool_results find_slots | head -1 >"$dir/slots.json"
python3 - "$dir/slots.json" "$oe" <<'EOF' && ok || bad "find_slots: the foreign event's slot offered, or free ones missing"
import json, sys, datetime
r = json.load(open(sys.argv[1]))
o = int(sys.argv[2])
got = {int(datetime.datetime.fromisoformat(s["start"]).timestamp()) for s in r["slots"]}
assert o + 1800 not in got and {o, o + 1200, o + 2400} <= got, sorted(got)
EOF
until_ok 10 wa_has 'startswith("Your Visit is booked for ")' && ok || bad "book: confirmation not delivered"
want "$((oe + 1200 - 120)) $((oe + 1200 - 60))" "$(reminders "$A" queued)" "book: reminders at -2 / -1 min"
synced "$A" 1
gcal GET "/calendars/primary/events/$(evid "$A")" >"$dir/a.json"
want "$A|$(at 20 z)" "$(jq -r '"\(.extendedProperties.private.tern_booking)|\(.start.dateTime)"' "$dir/a.json")" \
    "book: the event carries Tern's tag at the booked time"
foreign_same book

# ---------------------------------------------------------------- reschedule A to O
sandbox_script openai "[{\"tool_calls\":[{\"name\":\"reschedule\",\"arguments\":
    {\"booking_id\":\"$A\",\"start\":\"$(at 0)\"}}]}, {\"reply\":\"Moved it.\"}]"
inbound "can we make it earlier?"
until_ok 20 wa_has '. == "Moved it."' && ok || bad "reschedule: reply not delivered"
until_ok 10 wa_has 'startswith("Your Visit has been moved to ")' && ok || bad "reschedule: notice not delivered"
want t "$(sql "SELECT lower(during) = to_timestamp($oe) FROM bookings WHERE id = '$A'")" "reschedule: A at O"
want "$((oe + 1200 - 120)) $((oe + 1200 - 60))" "$(reminders "$A" canceled)" "reschedule: old reminders canceled"
want "$((oe - 120)) $((oe - 60))" "$(reminders "$A" queued)" "reschedule: reminders at O-2 / O-1"
synced "$A" 2
want "$(at 0 z)" "$(gcal GET "/calendars/primary/events/$(evid "$A")" | jq -r .start.dateTime)" \
    "reschedule: the event moved"
foreign_same reschedule

# ---------------------------------------------------------------- B: the owner deletes Tern's event
B=$(tsql "SELECT booking_id FROM tern_book((SELECT id FROM services WHERE tenant_id = '$tid'),
          '$contact', to_timestamp($oe + 3600), NULL, 0, NULL, NULL)")
synced "$B" 1
wait_sql "B's reminders queued" "SELECT count(*) = 2 FROM outbound_messages WHERE booking_id = '$B'
    AND reason = 'reminder' AND state = 'queued'"
gcal DELETE "/calendars/primary/events/$(evid "$B")" >/dev/null
want 204 "$gstatus" "owner deletes B's event"
wait_sql "deleted: B cancelled" "SELECT status = 'cancelled' AND sync_version = synced_version
    AND external_event_id IS NULL FROM bookings WHERE id = '$B'"
until_ok 10 wa_has 'startswith("Your Visit on ") and contains("has been cancelled by the business")' \
    && ok || bad "deleted: the lead was not told"
want "" "$(reminders "$B" queued)" "deleted: no reminder of B left queued"
want 1 "$(sql "SELECT count(*) FROM outbound_messages WHERE booking_id = '$B' AND producer = 'calsync'
    AND reason = 'notice' AND enqueued_at IS NOT NULL")" "deleted: one notice, enqueued by calsync"
want 1 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
    AND action = 'booking.cancelled_in_calendar' AND detail->>'booking_id' = '$B'")" "deleted: audit"
grep -q '"event":"calsync.provider_deleted"' "$dir/calsync.log" && ok || bad "deleted: not logged"

# ---------------------------------------------------------------- C: the owner moves Tern's event
C=$(tsql "SELECT booking_id FROM tern_book((SELECT id FROM services WHERE tenant_id = '$tid'),
          '$contact', to_timestamp($oe + 4800), NULL, 0, NULL, NULL)")
synced "$C" 1
wait_sql "C's reminders queued" "SELECT count(*) = 2 FROM outbound_messages WHERE booking_id = '$C'
    AND reason = 'reminder' AND state = 'queued'"
nmoved=$(wa_count 'startswith("Your Visit has been moved to ")')
gcal PATCH "/calendars/primary/events/$(evid "$C")" -d "{\"start\":{\"dateTime\":\"$(at 100 z)\"},
    \"end\":{\"dateTime\":\"$(at 110 z)\"}}" >/dev/null
want 200 "$gstatus" "owner moves C's event"
wait_sql "moved: C follows" "SELECT lower(during) = to_timestamp($oe + 6000)
    AND upper(during) = to_timestamp($oe + 6600) AND status = 'confirmed'
    AND sync_version = 2 AND synced_version = 2 FROM bookings WHERE id = '$C'"
until_ok 10 wa_has 'startswith("Your Visit has been moved to ")' "$((nmoved + 1))" \
    && ok || bad "moved: the lead was not told"
want "$((oe + 6000 - 120)) $((oe + 6000 - 60))" "$(reminders "$C" queued)" "moved: reminders follow"
foreign_same "the owner's changes"

# ---------------------------------------------------------------- A's reminders, on time
i=0
for off in 120 60; do
    nb=$(((oe - off) * 1000))
    left=$((oe - off - $(date +%s) + 30))
    if until_ok $((left > 5 ? left : 5)) wa_has 'startswith("Reminder: your Visit is on ")' \
        $((i + 1)); then ok; else bad "reminder $off s before: not delivered"; fi
    ts=$(sandbox_requests whatsapp | jq "[.[] | select(.json.text.body // \"\" |
        startswith(\"Reminder: your Visit is on \")) | .ts_ms] | sort | .[$i] // 0")
    [ "$ts" -ge "$nb" ] && [ "$ts" -le $((nb + 15000)) ] && ok \
        || bad "reminder $off s before the start delivered at $ts, due $nb"
    i=$((i + 1))
done
want 2 "$(wa_count 'startswith("Reminder: ")')" "exactly A's two new reminders were sent"

# ---------------------------------------------------------------- cancel A
sandbox_script openai "[{\"tool_calls\":[{\"name\":\"cancel\",\"arguments\":{\"booking_id\":\"$A\"}}]},
  {\"reply\":\"Cancelled.\"}]"
inbound "please cancel"
until_ok 20 wa_has '. == "Cancelled."' && ok || bad "cancel: reply not delivered"
want cancelled "$(sql "SELECT status FROM bookings WHERE id = '$A'")" "cancel: A cancelled"
synced "$A" 3
want cancelled "$(gcal GET "/calendars/primary/events/$(evid "$A")" | jq -r .status)" \
    "cancel: the event deleted"
sleep 2.5 # a few imports and checks more
want 0 "$(sql "SELECT count(*) FROM outbound_messages WHERE booking_id = '$A' AND producer = 'calsync'")" \
    "cancel: a booking Tern cancelled is not cancelled again"
want 0 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
    AND action LIKE 'booking.%_in_calendar' AND detail->>'booking_id' = '$A'")" "cancel: no audit"
want 1 "$(wa_count 'contains("has been cancelled by the business")')" "one calendar-side notice in all"
foreign_same cancel

# ---------------------------------------------------------------- the lifecycle in the calendar
want "insert patch delete" "$(writes "$(evid "$A")")" "A: calsync's writes"
want "insert" "$(writes "$(evid "$B")")" "B: calsync's writes (the owner deleted it)"
want "insert" "$(writes "$(evid "$C")")" "C: calsync's writes (the owner moved it)"
want 0 "$(google_count google 0 "(.method != \"GET\") and (.path | endswith(\"/$fid\"))")" \
    "writes to the foreign event"

# ---------------------------------------------------------------- disconnect
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master TN_REDIS_URL=$TN_TEST_REDIS_URL_CTL \
    "$TN_BIN_DIR/ternctl" privacy disconnect --tenant "$tid" --account "$acct" --wait 10 \
    >/dev/null && ok || bad "disconnect"
want "t" "$(sql "SELECT access_token_sealed IS NULL AND refresh_token_sealed IS NULL
    AND disconnected_at IS NOT NULL FROM oauth_accounts WHERE id = '$acct'")" "disconnect: tokens gone"
until_ok 10 test "$(google_count google-oauth 0 '.path == "/google/revoke"')" -ge 1 \
    && ok || bad "disconnect: no revoke seen"
s=$(google_seq)
sandbox_script openai "[{\"tool_calls\":[{\"name\":\"book\",\"arguments\":{\"service\":\"Visit\",
    \"start\":\"$(at 120)\"}}]}, {\"reply\":\"Booked again.\"}]"
inbound "one more visit please"
until_ok 20 wa_has '. == "Booked again."' && ok || bad "after disconnect: reply not delivered"
D=$(sql "SELECT id FROM bookings WHERE tenant_id = '$tid' AND status = 'confirmed'
         AND lower(during) = to_timestamp($oe + 7200)")
[ -n "$D" ] && ok || bad "after disconnect: no booking"
synced "$D" 1
want "" "$(sql "SELECT calendar_account_id FROM bookings WHERE id = '$D'")" \
    "after disconnect: D recorded without a calendar"
sleep 2.5 # imports would have run by now
want 0 "$(google_count google "$s" '(.headers["user-agent"] // "") | startswith("tern-calsync")')" \
    "calendar calls after the disconnect"
want 0 "$(google_count google-oauth "$s" '(.headers["user-agent"] // "") | startswith("tern-calsync")')" \
    "token calls after the disconnect"

# ---------------------------------------------------------------- entries, logs
dump_entries tern:out >"$dir/out.jsonl"
want 1 "$(grep -c '"reason\\":\\"notice\\"' <(grep -F "has been cancelled by the business" "$dir/out.jsonl"))" \
    "the calendar-side notice on tern:out"
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/out.jsonl" >/dev/null && ok \
    || bad "tern:out entries do not match their schemas"
leak=$(grep -F -e "${lead#+}" -e "Your Visit on" "$dir/calsync.log" | cut -c1-300)
[ -z "$leak" ] && ok || bad "a phone number or a text in the calsync log: $leak"
