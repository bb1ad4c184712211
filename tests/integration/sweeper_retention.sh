#!/usr/bin/env bash
# sweeper_retention.sh - tern-sweeper's timer work and disconnect against
# real Redis and Postgres:
#   retention   20,000 messages past retain_messages_days go in batches of
#               TN_SWEEPER_BATCH, fresh ones stay, raw payloads past
#               retain_raw_days are cleared, old audit rows go; a concurrent
#               writer's inserts never wait more than 200 ms
#   trimming    XTRIM MINID stops at the oldest pending entry and never
#               touches unread ones; a stream without groups is left alone
#   offboarding ternctl tenant delete: no row of the tenant is left, and its
#               Google token was revoked at the provider
#   disconnect  the tokens and the push channel are deleted at once even
#               though the provider fails: channels.stop (503) is retried
#               TN_SWEEPER_REVOKE_ATTEMPTS times with the access token, then
#               given up, and only then the revoke is tried (and retried);
#               an account whose access token has expired gets no
#               channels.stop (logged), its channel is forgotten all the
#               same and its grant revoked
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/support/sweeper.sh"
. "$TN_SRC_DIR/tests/support/sealed.sh"
sw_setup sweeper_retention

# seal PLAINTEXT AAD - a tn_seal envelope (hex) under key 1 of $master
seal() { tn_seal_hex "$mkey" 1 "$2" "$1"; }

# the provider's revoke endpoint: records each body; 503 for tokens with "fail".
# Its channels.stop (any path ending so): records "stop <bearer> <body>";
# 503 for bearers with "fail", else 204
python3 - "$dir/revoke.port" "$dir/revoke.log" <<'PY' &
import http.server, sys, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if self.path.endswith("/channels/stop"):
            auth = self.headers.get("Authorization", "")
            with open(sys.argv[2], "a") as f:
                f.write("stop " + auth + " " + body + "\n")
            self.send_response(503 if "fail" in auth else 204)
            self.end_headers()
            return
        tok = urllib.parse.parse_qs(body).get("token", [""])[0]
        with open(sys.argv[2], "a") as f:
            f.write(self.headers.get("Content-Type", "") + " " + tok + "\n")
        self.send_response(503 if "fail" in tok else 200)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
hpid=$!
for _ in $(seq 1 50); do [ -f "$dir/revoke.port" ] && break; sleep 0.1; done
hport=$(cat "$dir/revoke.port")
: >"$dir/revoke.log"

# --- seed: tenant 1 (retention, disconnect), tenant 2 (offboarding)
u="sr$$x$RANDOM$RANDOM"
t1=$("$ctl" tenant add --slug "$u" --name "Retention $u")
ch1=$("$ctl" channel add --tenant "$t1" --kind whatsapp --address "pn$u")
c1=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$t1', 'whatsapp', '+1555$RANDOM') RETURNING id")
v1=$(sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$t1', '$c1', '$ch1') RETURNING id")
sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body, created_at)
     SELECT '$t1', '$v1', '$ch1', 'in', 'old ' || i, now() - interval '400 days' FROM generate_series(1, 20000) i" >/dev/null
sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body, raw, created_at)
     SELECT '$t1', '$v1', '$ch1', 'in', 'fresh ' || i, '{\"k\": 1}', now() FROM generate_series(1, 5) i" >/dev/null
sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body, raw, created_at)
     SELECT '$t1', '$v1', '$ch1', 'in', 'raw ' || i, '{\"k\": 1}', now() - interval '40 days' FROM generate_series(1, 3) i" >/dev/null
sql "INSERT INTO audit_log (tenant_id, actor, action, created_at) VALUES
     ('$t1', 'test', 'old', now() - interval '2000 days'), ('$t1', 'test', 'fresh', now())" >/dev/null
a1=$(sql "INSERT INTO oauth_accounts (tenant_id, provider) VALUES ('$t1', 'google') RETURNING id")
sql "UPDATE oauth_accounts SET key_id = 1,
       refresh_token_sealed = '\\x$(seal "1//fail-refresh-$u" "oauth:$t1:$a1:refresh")'::bytea,
       access_token_sealed = '\\x$(seal "ya29.fail-access-$u" "oauth:$t1:$a1:access")'::bytea,
       expires_at = now() + interval '1 hour', push_channel_id = 'chan1-$u',
       push_resource_id = 'res1-$u', push_token_hash = repeat('a', 64),
       push_expires_at = now() + interval '6 days'
     WHERE id = '$a1'" >/dev/null
a3=$(sql "INSERT INTO oauth_accounts (tenant_id, provider) VALUES ('$t1', 'google') RETURNING id")
sql "UPDATE oauth_accounts SET key_id = 1,
       refresh_token_sealed = '\\x$(seal "1//ok3-refresh-$u" "oauth:$t1:$a3:refresh")'::bytea,
       access_token_sealed = '\\x$(seal "ya29.expired-$u" "oauth:$t1:$a3:access")'::bytea,
       expires_at = now() - interval '1 minute', push_channel_id = 'chan3-$u',
       push_resource_id = 'res3-$u', push_token_hash = repeat('b', 64),
       push_expires_at = now() + interval '6 days'
     WHERE id = '$a3'" >/dev/null

t2=$("$ctl" tenant add --slug "o$u" --name "Offboard $u")
ch2=$("$ctl" channel add --tenant "$t2" --kind telegram --address "bot$u")
c2=$(sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$t2', 'telegram', '77$RANDOM') RETURNING id")
v2=$(sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$t2', '$c2', '$ch2') RETURNING id")
sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body)
     SELECT '$t2', '$v2', '$ch2', 'in', 'm' || i FROM generate_series(1, 1200) i" >/dev/null
sql "INSERT INTO leads (tenant_id, contact_id, name) VALUES ('$t2', '$c2', 'Lead')" >/dev/null
sql "INSERT INTO audit_log (tenant_id, actor, action) VALUES ('$t2', 'test', 'x')" >/dev/null
a2=$(sql "INSERT INTO oauth_accounts (tenant_id, provider) VALUES ('$t2', 'google') RETURNING id")
sql "UPDATE oauth_accounts SET key_id = 1,
       refresh_token_sealed = '\\x$(seal "1//offboard-$u" "oauth:$t2:$a2:refresh")'::bytea WHERE id = '$a2'" >/dev/null

# streams: 10 entries; the group read 6 (entries 4-6 still pending), 7-10 unread
st="tern:sweeptest:$u:trim"
for i in $(seq 1 10); do rr XADD "$st" "1-$i" n "$i" >/dev/null; done
rr XGROUP CREATE "$st" g 0 >/dev/null
rr XREADGROUP GROUP g c1 COUNT 6 STREAMS "$st" '>' >/dev/null
rr XACK "$st" g 1-1 1-2 1-3 >/dev/null
for i in 1 2 3; do rr XADD "$st:dead" "1-$i" n "$i" >/dev/null; done
for i in 1 2 3; do rr XADD "$st:nogroup" "1-$i" n "$i" >/dev/null; done

# --- a concurrent writer, then the sweeper
psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "DO \$\$
DECLARE t0 timestamptz; mx float8 := 0;
BEGIN
  FOR i IN 1..150 LOOP
    t0 := clock_timestamp();
    INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body)
      VALUES ('$t1', '$v1', '$ch1', 'in', 'writer ' || i);
    COMMIT;
    mx := greatest(mx, extract(epoch FROM clock_timestamp() - t0) * 1000);
    PERFORM pg_sleep(0.02);
  END LOOP;
  RAISE NOTICE 'max_ms=%', round(mx::numeric, 1);
END \$\$" 2>"$dir/writer.out" &
wpid=$!
sleep 0.3
sw_start TN_SWEEPER_INTERVAL=300ms TN_SWEEPER_BATCH=500 TN_SWEEPER_STREAM_MAX_AGE=0 \
    TN_SWEEPER_STREAMS="$st,$st:dead,$st:nogroup" TN_GOOGLE_REVOKE_URL="http://127.0.0.1:$hport/revoke" \
    TN_GOOGLE_CALENDAR_BASE="http://127.0.0.1:$hport/calendar/v3" TN_SWEEPER_REVOKE_ATTEMPTS=3
"$ctl" tenant delete --tenant "o$u" || sw_fail "tenant delete"

# --- disconnect: tokens gone at once, although the provider answers 503
"$ctl" privacy disconnect --tenant "$t1" --account "$a1" --wait 10 >/dev/null || sw_fail "disconnect"
[ "$(sql "SELECT (refresh_token_sealed IS NULL AND access_token_sealed IS NULL AND needs_reconnect
          AND disconnected_at IS NOT NULL)::text FROM oauth_accounts WHERE id = '$a1'")" = true ] \
    || sw_fail "tokens not deleted"
for _ in $(seq 1 100); do [ "$(grep -c "fail-refresh-$u" "$dir/revoke.log")" -ge 3 ] && break; sleep 0.1; done
[ "$(grep -c "fail-refresh-$u" "$dir/revoke.log")" = 3 ] || sw_fail "revoke not retried 3 times: $(cat "$dir/revoke.log")"
grep -q "^application/x-www-form-urlencoded 1//fail-refresh-$u$" "$dir/revoke.log" || sw_fail "revoke request shape"
grep -q sweeper.revoke_gave_up "$dir/sweeper.log" || sw_fail "no revoke_gave_up"
[ "$(sql "SELECT (push_channel_id IS NULL AND push_resource_id IS NULL AND push_token_hash IS NULL
          AND push_expires_at IS NULL)::text FROM oauth_accounts WHERE id = '$a1'")" = true ] \
    || sw_fail "the push channel is still in the row"
stop_line="stop Bearer ya29.fail-access-$u {\"id\":\"chan1-$u\",\"resourceId\":\"res1-$u\"}"
[ "$(grep -cxF "$stop_line" "$dir/revoke.log")" = 3 ] \
    || sw_fail "channels.stop not tried 3 times with the access token: $(cat "$dir/revoke.log")"
[ "$(grep -n "" "$dir/revoke.log" | grep -F "$stop_line" | tail -1 | cut -d: -f1)" -lt \
  "$(grep -n "fail-refresh-$u" "$dir/revoke.log" | head -1 | cut -d: -f1)" ] \
    || sw_fail "the revoke did not wait for channels.stop: $(cat "$dir/revoke.log")"
grep -q '"event":"sweeper.channel_stop_failed"' "$dir/sweeper.log" || sw_fail "no channel_stop_failed"
# an expired access token: no channels.stop, the channel forgotten, the grant revoked
"$ctl" privacy disconnect --tenant "$t1" --account "$a3" --wait 10 >/dev/null || sw_fail "disconnect a3"
[ "$(sql "SELECT (push_channel_id IS NULL AND push_token_hash IS NULL AND refresh_token_sealed IS NULL)::text
          FROM oauth_accounts WHERE id = '$a3'")" = true ] || sw_fail "a3: channel or token still in the row"
for _ in $(seq 1 50); do grep -q "ok3-refresh-$u" "$dir/revoke.log" && break; sleep 0.1; done
grep -q "ok3-refresh-$u" "$dir/revoke.log" || sw_fail "a3: grant not revoked"
if grep -q "chan3-$u" "$dir/revoke.log"; then sw_fail "a3: channels.stop with an expired token"; fi
grep '"event":"sweeper.channel_stop_skipped"' "$dir/sweeper.log" | grep -q '"reason":"access_token_expired"' \
    || sw_fail "a3: the skipped channels.stop is not logged"
if grep -qF -e "ya29.fail-access-$u" -e "ya29.expired-$u" "$dir/sweeper.log"; then
    sw_fail "an access token in the sweeper's log"
fi
echo "disconnect ok"

# --- retention
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$t1' AND body LIKE 'old %'")" = 0 ] && break
    sleep 0.1
done
[ "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$t1' AND body LIKE 'old %'")" = 0 ] || sw_fail "expired messages left"
[ "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$t1' AND body LIKE 'fresh %' AND raw IS NOT NULL")" = 5 ] \
    || sw_fail "fresh messages touched"
[ "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$t1' AND body LIKE 'raw %' AND raw IS NULL")" = 3 ] \
    || sw_fail "raw payloads not cleared"
[ "$(sql "SELECT string_agg(action, ',') FROM audit_log WHERE tenant_id = '$t1' AND actor = 'test'")" = fresh ] \
    || sw_fail "audit retention"
grep -q '"event":"sweeper.retention".*"rule":"messages","rows":20000,"batches":4[01]' "$dir/sweeper.log" \
    || sw_fail "not purged in batches of 500: $(grep sweeper.retention "$dir/sweeper.log")"
wait "$wpid" || sw_fail "writer failed: $(cat "$dir/writer.out")"
max=$(sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p' "$dir/writer.out")
[ "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$t1' AND body LIKE 'writer %'")" = 150 ] || sw_fail "writer rows"
python3 -c "import sys; sys.exit(0 if float('$max') < 200 else 1)" || sw_fail "a writer waited $max ms"
echo "retention ok (writer max $max ms)"

# --- trimming
[ "$(rr XLEN "$st")" = 7 ] || sw_fail "trim: XLEN $(rr XLEN "$st"), want 7"
[ "$(rr XRANGE "$st" - + COUNT 1 | head -1)" = 1-4 ] || sw_fail "trim went past the oldest pending entry"
[ "$(rr XLEN "$st:dead")" = 0 ] || sw_fail "dead-letter stream not trimmed by age"
[ "$(rr XLEN "$st:nogroup")" = 3 ] || sw_fail "a stream nobody has read was trimmed"
echo "trim ok"

# --- offboarding
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM tenants WHERE id = '$t2'")" = 0 ] && break
    sleep 0.1
done
for t in $(sql "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'
                AND column_name = 'tenant_id'"); do
    [ "$(sql "SELECT count(*) FROM $t WHERE tenant_id = '$t2'")" = 0 ] || sw_fail "offboarding left rows in $t"
done
[ "$(sql "SELECT count(*) FROM tenants WHERE id = '$t2'")" = 0 ] || sw_fail "tenant row left"
for _ in $(seq 1 50); do grep -q "1//offboard-$u" "$dir/revoke.log" && break; sleep 0.1; done
grep -q "1//offboard-$u" "$dir/revoke.log" || sw_fail "offboarded tenant's token not revoked"
[ "$(sql "SELECT count(*) FROM tenants WHERE id = '$t1'")" = 1 ] || sw_fail "the other tenant was offboarded"
echo "offboarding ok"
sw_stop
echo "sweeper_retention: all ok"
