#!/usr/bin/env bash
# calsync_caldav - tern-calsync against a real CalDAV server (Radicale, with
# authentication): a booking becomes an event with the deterministic UID and
# Tern's marker, reschedule moves it, cancel deletes it; an event that is not
# Tern's (beside them, or squatting on Tern's own href) is never touched,
# byte for byte; busy time read back with a calendar-query REPORT (including
# a recurring event) removes slots. Two-way: the owner deleting Tern's event
# cancels the booking, moving it moves the booking, and nothing is written
# back. Erasing a lead (a real tern-sweeper) deletes that lead's event and
# no other, also when the erasure's cal.request was lost (the scan), and
# never a foreign event. All-day (VALUE=DATE) and floating events are busy
# in the tenant's time zone, not UTC. Bookings are written with the SQL the
# booking tools use (tern_book, tern_reschedule); one change is announced on
# tern:cal, the others only by sync_version, which the scan must find.
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/tests/support/caldav.sh"
dir=$(mktemp -d "$TN_TEST_TMP/calsync.XXXXXX")
. "$TN_SRC_DIR/tests/support/check.sh"
cpid="" rad_pid=""
finish() {
    local rc=0
    if [ -n "$cpid" ]; then
        kill "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null || rc=$?
        want 0 "$rc" "tern-calsync exit status after SIGTERM (sanitizers report here)"
        grep -q -e 'AddressSanitizer' -e 'runtime error' "$dir/calsync.log" \
            && bad "sanitizer report in the log"
    fi
    caldav_stop "$rad_pid"
    [ $fail -gt 0 ] && tail -20 "$dir/calsync.log" >&2
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}
trap 'finish; exit $?' EXIT

wait_tenths=100 # 10 s per wait
. "$TN_SRC_DIR/tests/support/calsync.sh"
# ics UID START END - a foreign VCALENDAR (UTC basic times) on stdout
ics() {
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Someone Else//EN\r\nBEGIN:VEVENT\r\n'
    printf 'UID:%s\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:%s\r\nDTEND:%s\r\n' "$1" "$2" "$3"
    [ -n "${4:-}" ] && printf '%s\r\n' "$4"
    printf 'SUMMARY:Private\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n'
}
. "$TN_SRC_DIR/tests/support/sealed.sh" # tn_seal_hex: the account's sealed password

# ---------------------------------------------------------------- servers and tenant
caldav_radicale_start "$dir" || exit 1
cal="$rad_base/$rad_user/tern-$RANDOM/"
want 201 "$(caldav_mkcalendar "$cal" "$rad_user:$rad_pass")" "MKCALENDAR"

day=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYYMMDD')")
iso=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYY-MM-DD')")
week_ago=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 4, 'YYYYMMDD')")
ics foreign-1 "${day}T130000Z" "${day}T140000Z" >"$dir/foreign.ics"
want 201 "$(caldav_put "${cal}foreign-1.ics" "$dir/foreign.ics" "$rad_user:$rad_pass")" "PUT foreign"
ics foreign-weekly "${week_ago}T150000Z" "${week_ago}T160000Z" "RRULE:FREQ=WEEKLY;COUNT=4" \
    >"$dir/weekly.ics"
want 201 "$(caldav_put "${cal}foreign-weekly.ics" "$dir/weekly.ics" "$rad_user:$rad_pass")" \
    "PUT weekly"
caldav_get "${cal}foreign-1.ics" "$dir/foreign.before" "$rad_user:$rad_pass" >/dev/null
etag_before=$(grep -i '^etag:' "$dir/foreign.before.h" | tr -d '\r')

key=$(head -c 32 /dev/urandom | base64 -w0)
tid=$(sql "INSERT INTO tenants (slug, name) VALUES ('cs$RANDOM$RANDOM', 'calsync test') RETURNING id")
sql "INSERT INTO business_hours (tenant_id, weekday, opens, closes)
     SELECT '$tid', d, '09:00', '17:00' FROM generate_series(1, 7) d" >/dev/null
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min, min_notice_min)
           VALUES ('$tid', 'Consultation', 60, 0) RETURNING id")
contact=$(sql "INSERT INTO contacts (tenant_id, kind, address)
               VALUES ('$tid', 'telegram', 'c$RANDOM') RETURNING id")
acct=$(sql "SELECT gen_random_uuid()")
sealed=$(tn_seal_hex "$key" 7 "oauth:$tid:$acct:access" "$rad_pass")
sql "INSERT INTO oauth_accounts (tenant_id, id, provider, calendar_id, username,
     access_token_sealed, key_id) VALUES ('$tid', '$acct', 'caldav', '$cal', '$rad_user',
     decode('$sealed', 'hex'), 7)" >/dev/null

aport=$(tn_free_port)
env TN_REDIS_URL="$TN_TEST_REDIS_URL_CALSYNC" TN_PG_DSN="$TN_TEST_PG_DSN_CALSYNC" \
    TN_MASTER_KEY="7:$key" TN_ADMIN_LISTEN="127.0.0.1:$aport" TN_CALSYNC_SCAN_INTERVAL=300ms \
    TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=3s "$TN_BIN_DIR/tern-calsync" >>"$dir/calsync.log" 2>&1 &
cpid=$!

# ---------------------------------------------------------------- book, reschedule, cancel
bid=$(tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T10:00Z', NULL, 0, NULL, NULL)")
hex=$(echo "$bid" | tr -d -)
href="${cal}tern$hex.ics"
xadd book booking_id "$bid"
wait_sql "book mirrored" "SELECT synced_version = sync_version AND external_etag IS NOT NULL
                          FROM bookings WHERE id = '$bid'"
want 200 "$(caldav_get "$href" "$dir/ev" "$rad_user:$rad_pass")" "GET Tern's event"
grep -q "^UID:tern$hex" "$dir/ev" && ok || bad "deterministic UID missing"
grep -q "^X-TERN-BOOKING:$bid" "$dir/ev" && ok || bad "marker missing"
grep -q "^DTSTART:${day}T100000Z" "$dir/ev" && ok || bad "DTSTART: $(grep DTSTART "$dir/ev")"
want "tern$hex" "$(sql "SELECT external_event_id FROM bookings WHERE id = '$bid'")" "event id"

want "" "$(tsql "SELECT tern_reschedule('$bid', '$contact', '${iso}T12:00Z')")" "reschedule"
wait_sql "reschedule mirrored (scan)" "SELECT synced_version = 2 FROM bookings WHERE id = '$bid'"
caldav_get "$href" "$dir/ev2" "$rad_user:$rad_pass" >/dev/null
grep -q "^DTSTART:${day}T120000Z" "$dir/ev2" && ok || bad "moved: $(grep DTSTART "$dir/ev2")"
want 1 "$(grep -c '^BEGIN:VEVENT' "$dir/ev2")" "one event after reschedule"

tsql "UPDATE bookings SET status = 'cancelled', cancelled_at = now(),
      sync_version = sync_version + 1, updated_at = now() WHERE id = '$bid'" >/dev/null
xadd cancel booking_id "$bid"
wait_sql "cancel mirrored" "SELECT synced_version = 3 FROM bookings WHERE id = '$bid'"
want 404 "$(caldav_get "$href" "$dir/ev3" "$rad_user:$rad_pass")" "event deleted"

# ---------------------------------------------------------------- a foreign event on Tern's href
bid2=$(tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T11:00Z', NULL, 0, NULL, NULL)")
href2="${cal}tern$(echo "$bid2" | tr -d -).ics"
ics squatter "${day}T110000Z" "${day}T120000Z" >"$dir/squat.ics"
want 201 "$(caldav_put "$href2" "$dir/squat.ics" "$rad_user:$rad_pass")" "PUT squatter"
caldav_get "$href2" "$dir/squat.before" "$rad_user:$rad_pass" >/dev/null
xadd book booking_id "$bid2"
wait_sql "refusal recorded" "SELECT sync_error = 'foreign_event' FROM bookings WHERE id = '$bid2'"
caldav_get "$href2" "$dir/squat.after" "$rad_user:$rad_pass" >/dev/null
cmp -s "$dir/squat.before" "$dir/squat.after" && ok || bad "squatting event was modified"

# ---------------------------------------------------------------- busy time
# (the scan may already have imported once: wait for an import after the squatter)
since=$(sql "SELECT now()")
xadd sync account_id "$acct"
wait_sql "busy imported" "SELECT busy_synced_at > '$since' FROM oauth_accounts WHERE id = '$acct'"
slots=$(tsql "SELECT string_agg(to_char(slot_start AT TIME ZONE 'UTC', 'HH24'), ' ')
              FROM tern_available_slots('$svc', '$iso', '$iso')")
# 11: the booking (and the squatter's busy time), 13: foreign-1, 15: the weekly event
want "09 10 12 14 16" "$slots" "slots after busy import"
# foreign-1, the squatter, and the weekly event's 3 instances from today on
want 5 "$(sql "SELECT count(*) FROM busy_blocks WHERE account_id = '$acct'")" "busy ranges"

# ---------------------------------------------------------------- two-way: the owner deletes or moves
# Tern's event in the calendar; the next import notices, a GET confirms, and
# the booking follows (cancelled / moved); nothing is written back.
bid3=$(tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T14:00Z', NULL, 0, NULL, NULL)")
bid4=$(tsql "SELECT booking_id FROM tern_book('$svc', '$contact', '${iso}T16:00Z', NULL, 0, NULL, NULL)")
xadd book booking_id "$bid3"
xadd book booking_id "$bid4"
for b in "$bid3" "$bid4"; do
    wait_sql "two-way: $b mirrored" "SELECT synced_version = 1 AND external_etag IS NOT NULL
                                     FROM bookings WHERE id = '$b'"
done
href3="${cal}tern$(echo "$bid3" | tr -d -).ics"
href4="${cal}tern$(echo "$bid4" | tr -d -).ics"
st=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u "$rad_user:$rad_pass" "$href3")
[[ "$st" == 2?? ]] && ok || bad "owner deletes Tern's event: $st"
caldav_get "$href4" "$dir/ev4" "$rad_user:$rad_pass" >/dev/null
sed -e "s/^DTSTART:${day}T160000Z/DTSTART:${day}T090000Z/" \
    -e "s/^DTEND:${day}T170000Z/DTEND:${day}T100000Z/" "$dir/ev4" >"$dir/ev4.moved"
st=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -u "$rad_user:$rad_pass" \
    -H "If-Match: $(grep -i '^etag:' "$dir/ev4.h" | cut -d' ' -f2- | tr -d '\r')" \
    -H 'Content-Type: text/calendar; charset=utf-8' --data-binary "@$dir/ev4.moved" "$href4")
[[ "$st" == 2?? ]] && ok || bad "owner moves Tern's event: $st"
xadd sync account_id "$acct"
wait_sql "two-way: deleted -> cancelled" "SELECT status = 'cancelled' AND sync_version = 2
    AND synced_version = 2 AND external_event_id IS NULL FROM bookings WHERE id = '$bid3'"
wait_sql "two-way: moved -> moved" "SELECT lower(during) = '${iso}T09:00Z'
    AND upper(during) = '${iso}T10:00Z' AND status = 'confirmed' AND synced_version = 2
    AND sync_version = 2 FROM bookings WHERE id = '$bid4'"
want 2 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
    AND action IN ('booking.cancelled_in_calendar', 'booking.moved_in_calendar')")" "two-way audit"
want 404 "$(caldav_get "$href3" "$dir/ev3b" "$rad_user:$rad_pass")" "deleted event not recreated"
caldav_get "$href4" "$dir/ev4.after" "$rad_user:$rad_pass" >/dev/null
cmp -s "$dir/ev4.after" "$dir/ev4.moved" && ok || bad "moved event was written back"
# bid (cancelled by Tern, its event deleted by Tern) is not cancelled again
want 0 "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid'
    AND detail->>'booking_id' = '$bid'")" "Tern's own cancel seen as the owner's"

# ---------------------------------------------------------------- erasure: the erased lead's event goes
# `ternctl privacy erase` of a lead (a real tern-sweeper: calendar_deletions
# row, cal.request delete_event) makes calsync delete that lead's event
# (DELETE If-Match) and no other. A row whose entry was lost (a crash
# between the erasure's COMMIT and its XADD) is found by the scan. A row
# naming an href that holds a foreign event deletes nothing.
. "$TN_SRC_DIR/tests/support/google.sh" # calsync_erase
gone=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$tid', 'telegram', 'g$RANDOM')
            RETURNING id")
keep=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$tid', 'telegram', 'k$RANDOM')
            RETURNING id")
bg=$(tsql "SELECT booking_id FROM tern_book('$svc', '$gone', '${iso}T10:00Z', NULL, 0, NULL, NULL)")
bk=$(tsql "SELECT booking_id FROM tern_book('$svc', '$keep', '${iso}T12:00Z', NULL, 0, NULL, NULL)")
hrefg="${cal}tern$(echo "$bg" | tr -d -).ics"
hrefk="${cal}tern$(echo "$bk" | tr -d -).ics"
xadd book booking_id "$bg"
xadd book booking_id "$bk"
for b in "$bg" "$bk"; do
    wait_sql "erasure: $b mirrored" "SELECT synced_version = sync_version AND external_etag IS NOT NULL
                                     FROM bookings WHERE id = '$b'"
done
want 200 "$(caldav_get "$hrefg" "$dir/gone.before" "$rad_user:$rad_pass")" "the erased lead's event"
caldav_get "$hrefk" "$dir/keep.before" "$rad_user:$rad_pass" >/dev/null
calsync_erase "$gone" && ok || bad "erase: $(tail -3 "$dir/sweeper.log")"
want 0 "$(sql "SELECT count(*) FROM bookings WHERE id = '$bg'")" "erased booking"
for _ in $(seq 1 100); do
    [ "$(caldav_get "$hrefg" "$dir/gone.after" "$rad_user:$rad_pass")" = 404 ] && break
    sleep 0.1
done
want 404 "$(caldav_get "$hrefg" "$dir/gone.after" "$rad_user:$rad_pass")" \
    "the erased lead's event is gone from the server"
wait_sql "erasure: calendar_deletions done" "SELECT count(*) = 0 FROM calendar_deletions
                                             WHERE tenant_id = '$tid'"
caldav_get "$hrefk" "$dir/keep.after" "$rad_user:$rad_pass" >/dev/null
cmp -s "$dir/keep.before" "$dir/keep.after" && ok || bad "the other lead's event changed"
grep -q '"event":"calsync.event_deleted"' "$dir/calsync.log" && ok || bad "event_deleted not logged"
# the scan: a row without its entry (its booking gone as the erasure left it)
g2=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$tid', 'telegram', 'h$RANDOM')
          RETURNING id")
b2=$(tsql "SELECT booking_id FROM tern_book('$svc', '$g2', '${iso}T14:00Z', NULL, 0, NULL, NULL)")
href5="${cal}tern$(echo "$b2" | tr -d -).ics"
xadd book booking_id "$b2"
wait_sql "erasure: $b2 mirrored" "SELECT synced_version = sync_version AND external_etag IS NOT NULL
                                  FROM bookings WHERE id = '$b2'"
sql "BEGIN; INSERT INTO calendar_deletions (tenant_id, booking_id, account_id, calendar_id, next_at)
     VALUES ('$tid', '$b2', '$acct', '$cal', now()); DELETE FROM bookings WHERE id = '$b2'; COMMIT" \
    >/dev/null
wait_sql "scan: calendar_deletions done" "SELECT count(*) = 0 FROM calendar_deletions
                                          WHERE tenant_id = '$tid'"
want 404 "$(caldav_get "$href5" "$dir/ev5" "$rad_user:$rad_pass")" "the scan deleted the event"
# never a foreign event: a row naming the squatter's href
sql "INSERT INTO calendar_deletions (tenant_id, booking_id, account_id, calendar_id, next_at)
     VALUES ('$tid', '$bid2', '$acct', '$cal', now())" >/dev/null
wait_sql "foreign: calendar_deletions dropped" "SELECT count(*) = 0 FROM calendar_deletions
                                                WHERE tenant_id = '$tid'"
caldav_get "$href2" "$dir/squat.after2" "$rad_user:$rad_pass" >/dev/null
cmp -s "$dir/squat.before" "$dir/squat.after2" && ok || bad "a deletion touched the squatting event"

# ---------------------------------------------------------------- all-day and floating: the tenant's zone
# A tenant in Los Angeles: an all-day "Closed" day is busy from its local
# midnight to the next (before: UTC midnights, and two days less a second),
# a floating 09:00-10:00 at 09:00 local. Postgres's own zone rules say
# where those are.
sql "UPDATE tenants SET time_zone = 'America/Los_Angeles' WHERE id = '$tid'" >/dev/null
read -r d5 d5iso d6 d6iso < <(sql "SELECT to_char(d, 'YYYYMMDD'), to_char(d, 'YYYY-MM-DD'),
    to_char(d + 1, 'YYYYMMDD'), to_char(d + 1, 'YYYY-MM-DD')
    FROM (SELECT (now() AT TIME ZONE 'UTC')::date + 5 AS d) x" | tr '|' ' ')
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Someone Else//EN\r\nBEGIN:VEVENT\r\nUID:closed\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\nSUMMARY:Closed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' \
    "$d5" "$d6" >"$dir/closed.ics"
want 201 "$(caldav_put "${cal}closed.ics" "$dir/closed.ics" "$rad_user:$rad_pass")" "PUT all-day"
ics floating "${d5}T090000" "${d5}T100000" >"$dir/floating.ics"
want 201 "$(caldav_put "${cal}floating.ics" "$dir/floating.ics" "$rad_user:$rad_pass")" \
    "PUT floating"
since=$(sql "SELECT now()")
xadd sync account_id "$acct"
wait_sql "busy imported in the tenant's zone" "SELECT busy_synced_at > '$since'
                                                FROM oauth_accounts WHERE id = '$acct'"
la() { echo "('$1'::timestamp AT TIME ZONE 'America/Los_Angeles')"; }
want 1 "$(sql "SELECT count(*) FROM busy_blocks WHERE account_id = '$acct'
               AND during = tstzrange($(la "$d5iso"), $(la "$d6iso"))")" \
    "all-day busy from local midnight to local midnight"
want 1 "$(sql "SELECT count(*) FROM busy_blocks WHERE account_id = '$acct'
               AND during = tstzrange($(la "$d5iso 09:00"), $(la "$d5iso 10:00"))")" \
    "floating 09:00-10:00 busy at 09:00 local"
grep -q '"calsync.zone_unknown"' "$dir/calsync.log" && bad "zone_unknown logged" || ok

# ---------------------------------------------------------------- the foreign event, untouched
caldav_get "${cal}foreign-1.ics" "$dir/foreign.after" "$rad_user:$rad_pass" >/dev/null
cmp -s "$dir/foreign.before" "$dir/foreign.after" && ok || bad "foreign event changed"
want "$etag_before" "$(grep -i '^etag:' "$dir/foreign.after.h" | tr -d '\r')" "foreign ETag"
grep -q '"calsync.job_failed".*foreign_event' "$dir/calsync.log" && ok || bad "refusal not logged"
grep -q "$rad_pass" "$dir/calsync.log" && bad "password in the log" || ok
