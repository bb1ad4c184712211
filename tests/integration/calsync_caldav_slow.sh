#!/usr/bin/env bash
# calsync_caldav_slow - a calendar server whose REPORT answer is costly to
# read must not stall tern-calsync. The server (a stand-in: Radicale itself
# spends over a second on each such event and then leaves it out) answers
# an import with 60 events whose rule never matches
# (FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30: libical 3.0.16 searches up to the
# year 20000, 40-180 ms each, 2.4 s or more in all). While the answer is
# read, the daemon's admin port answers /healthz promptly (the answer is
# read on the threadpool, not on the loop); the import completes within
# its CPU bound (CALSYNC_IMPORT_MAX_CPU_MS), and past it the calendar is
# busy for the whole window (no free slot: never a double booking), with
# calsync.import_capped logged and counted on /metrics. A SIGTERM while an
# answer is being read (drain timeout 0: the daemon stops at once) ends
# that import as retryable once the read is over, and the daemon exits 0.
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
dir=$(mktemp -d "$TN_TEST_TMP/calsync_slow.XXXXXX")
. "$TN_SRC_DIR/tests/support/check.sh"
cpid="" fpid=""
finish() {
    local rc=0
    if [ -n "$cpid" ]; then
        kill "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null || rc=$?
        want 0 "$rc" "tern-calsync exit status after SIGTERM (sanitizers report here)"
        grep -q -e 'AddressSanitizer' -e 'runtime error' "$dir/calsync.log" \
            && bad "sanitizer report in the log"
    fi
    [ -n "$fpid" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
    [ $fail -gt 0 ] && tail -20 "$dir/calsync.log" >&2
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}
trap 'finish; exit $?' EXIT
. "$TN_SRC_DIR/tests/support/calsync.sh"

# ---------------------------------------------------------------- the calendar server
# Every REPORT gets the same 207: N events from tomorrow on, each with the
# rule that never matches. It writes report.sent once an answer is out.
fport=$(tn_free_port)
cat >"$dir/server.js" <<'EOF'
const http = require("http"), fs = require("fs");
const [port, n, mark] = process.argv.slice(2);
const utc = (d) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
const start = new Date(Date.now() + 86400000);
start.setUTCHours(9, 0, 0, 0);
let body = '<?xml version="1.0" encoding="utf-8"?>\n' +
    '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">';
for (let i = 0; i < Number(n); i++) {
    body += `<d:response><d:href>/cal/slow${i}.ics</d:href><d:propstat><d:prop>` +
        "<c:calendar-data>BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Broken//EN\r\n" +
        `BEGIN:VEVENT\r\nUID:slow${i}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:${utc(start)}\r\n` +
        "DURATION:PT1H\r\nRRULE:FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30\r\nEND:VEVENT\r\n" +
        "END:VCALENDAR\r\n</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status>" +
        "</d:propstat></d:response>";
}
body += "</d:multistatus>";
http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
        if (req.method !== "REPORT") {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(207, {"Content-Type": "application/xml; charset=utf-8"});
        res.end(body, () => fs.appendFileSync(mark, "sent\n"));
    });
}).listen(Number(port), "127.0.0.1", () => fs.writeFileSync(mark + ".up", ""));
EOF
node "$dir/server.js" "$fport" 60 "$dir/report.sent" >"$dir/server.log" 2>&1 &
fpid=$!
for _ in $(seq 1 100); do [ -e "$dir/report.sent.up" ] && break; sleep 0.1; done
[ -e "$dir/report.sent.up" ] || { bad "the calendar server did not start"; exit 1; }

# ---------------------------------------------------------------- tenant, account, daemon
tid=$(sql "INSERT INTO tenants (slug, name) VALUES ('cw$RANDOM$RANDOM', 'calsync slow') RETURNING id")
sql "INSERT INTO business_hours (tenant_id, weekday, opens, closes)
     SELECT '$tid', d, '09:00', '17:00' FROM generate_series(1, 7) d" >/dev/null
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min, min_notice_min)
           VALUES ('$tid', 'Consultation', 60, 0) RETURNING id")
acct=$(sql "SELECT gen_random_uuid()")
sql "INSERT INTO oauth_accounts (tenant_id, id, provider, calendar_id)
     VALUES ('$tid', '$acct', 'caldav', 'http://127.0.0.1:$fport/cal/')" >/dev/null
iso=$(sql "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 3, 'YYYY-MM-DD')")
want 8 "$(tsql "SELECT count(*) FROM tern_available_slots('$svc', '$iso', '$iso')")" \
    "slots before the import"

aport=$(tn_free_port)
env TN_REDIS_URL="$TN_TEST_REDIS_URL_CALSYNC" TN_PG_DSN="$TN_TEST_PG_DSN_CALSYNC" \
    TN_ADMIN_LISTEN="127.0.0.1:$aport" TN_CALSYNC_SCAN_INTERVAL=60s TN_ALLOW_ROOT=1 \
    TN_DRAIN_TIMEOUT=0 "$TN_BIN_DIR/tern-calsync" >>"$dir/calsync.log" 2>&1 &
cpid=$!
up=""
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$aport/healthz" && up=1 && break
    sleep 0.1
done
[ -n "$up" ] && ok || bad "admin port did not come up"

# ---------------------------------------------------------------- the import, and /healthz meanwhile
# (the scan's first turn is a minute away: this entry starts the only import)
since=$(sql "SELECT now()")
xadd sync account_id "$acct"
for _ in $(seq 1 100); do [ -s "$dir/report.sent" ] && break; sleep 0.05; done
[ -s "$dir/report.sent" ] && ok || bad "no REPORT reached the calendar server"
# Probe until the import is saved (at most 15 s). Each probe may take 1 s;
# the loop answers in milliseconds unless something holds it.
probes=0 slow=0 worst=0 done_=""
for _ in $(seq 1 150); do
    t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 1 "http://127.0.0.1:$aport/healthz") \
        || t=timeout
    probes=$((probes + 1))
    if [ "$t" = timeout ] || awk -v t="$t" 'BEGIN { exit !(t > 0.5) }'; then
        slow=$((slow + 1))
    fi
    [ "$t" != timeout ] && awk -v t="$t" -v w="$worst" 'BEGIN { exit !(t > w) }' && worst=$t
    if [ "$(sql "SELECT busy_synced_at > '$since' FROM oauth_accounts WHERE id = '$acct'")" = t ]
    then
        done_=1
        break
    fi
    sleep 0.1
done
echo "healthz during the import: $probes probes, $slow over 0.5 s, slowest ${worst}s"
[ -n "$done_" ] && ok || bad "the import did not complete within 15 s"
want 0 "$slow" "/healthz answers over 0.5 s (or none) while the answer was read"
[ "$probes" -ge 5 ] && ok || bad "the import was too quick to watch: $probes probes"

# ---------------------------------------------------------------- past the bound: the whole window busy
want t "$(sql "SELECT bool_or(during @> tstzrange(now() + interval '1 hour', now() + interval '59 days'))
               FROM busy_blocks WHERE account_id = '$acct'")" "the whole window busy"
want 0 "$(tsql "SELECT count(*) FROM tern_available_slots('$svc', '$iso', '$iso')")" \
    "slots after the capped import"
grep -q '"event":"calsync.import_capped".*"reason":"cpu"' "$dir/calsync.log" && ok \
    || bad "calsync.import_capped not logged"
grep -q 'BYMONTHDAY\|slow[0-9]' "$dir/calsync.log" && bad "event content in the log" || ok
curl -s "http://127.0.0.1:$aport/metrics" >"$dir/metrics"
grep -Eq '^tern_calsync_import_capped_total\{reason="cpu"\} [1-9]' "$dir/metrics" && ok \
    || bad "tern_calsync_import_capped_total: $(grep import_capped "$dir/metrics")"

# ---------------------------------------------------------------- stopped while an answer is read
xadd sync account_id "$acct"
for _ in $(seq 1 100); do [ "$(wc -l <"$dir/report.sent")" -ge 2 ] && break; sleep 0.05; done
want 2 "$(wc -l <"$dir/report.sent")" "the second REPORT answered"
kill "$cpid"
rc=0
wait "$cpid" || rc=$?
cpid=""
want 0 "$rc" "exit status after SIGTERM during a read"
grep -q '"event":"daemon.drain_timeout"' "$dir/calsync.log" && ok \
    || bad "the stop did not happen during the read"
grep -q '"event":"calsync.job_failed".*"why":"caldav_unavailable"' "$dir/calsync.log" && ok \
    || bad "the import cut by the stop was not ended as retryable"
grep -q -e 'AddressSanitizer' -e 'runtime error' -e 'loop_not_closed' "$dir/calsync.log" \
    && bad "sanitizer report or unclosed loop after the stop"
