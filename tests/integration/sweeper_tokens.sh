#!/usr/bin/env bash
# sweeper_tokens.sh - OAuth tokens at rest and on disconnect, against the
# sandbox's Google and the real writer of the tokens.
#
# A Google calendar is connected the way an owner connects one: `ternctl
# calendar link` -> tern-ingest's /oauth/google/start -> the sandbox's
# consent -> /oauth/google/callback -> tern-calsync exchanges the code and
# stores the tokens. Then:
#   at rest     the raw columns (read as bytes) are tn_seal envelopes: version
#               byte 1, the key id, 12-byte nonce, ciphertext, 16-byte tag;
#               they open only with the master key and the account's AAD
#               "oauth:<tenant>:<account>:access|refresh"; the plaintext
#               tokens (which the sandbox accepts) appear in no column of any
#               table (text, json, bytea alike) and in no daemon's log
#   disconnect  `ternctl privacy disconnect`: at once no row holds the tokens,
#               neither sealed (the envelopes' bytes appear in no bytea
#               column) nor plaintext; the sandbox saw POST /google/revoke
#               with the refresh token, and from then on refuses that
#               refresh token (invalid_grant): the grant is really gone
#   channel     tern-calsync opened a push channel after the connect
#               (events.watch); the disconnect forgot it (push_* columns
#               NULL, tern-ingest answers 404 to its pushes) and the sandbox
#               saw exactly one POST .../channels/stop with that channel's id
#               and resourceId, the account's access token as bearer,
#               answered 204 (the sweeper's log), and before the revoke; the
#               sandbox no longer pushes on that channel
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/support/sweeper.sh"
. "$TN_SRC_DIR/tests/support/sealed.sh"
sw_setup sweeper_tokens
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
. "$TN_SRC_DIR/tests/support/google.sh"
ipid="" cpid=""
tok_cleanup() {
    [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
    [ -n "$ipid" ] && kill -9 "$ipid" 2>/dev/null
    sandbox_stop
    sw_cleanup
}
trap tok_cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

sandbox_start "$dir" --quiet || sw_fail "sandbox did not start"
G="$SANDBOX_URL/google"
ingest_setup_tenant || sw_fail "tenant setup"
export TN_PG_DSN="$TN_TEST_PG_ADMIN_DSN" TN_MASTER_KEY="$master" TN_REDIS_URL="$TN_TEST_REDIS_URL_CTL"
mkey=${master#1:}
client=tern-test.apps.example
printf 'client-secret-%s' "$RANDOM$RANDOM" >"$dir/client_secret"
sandbox_config "{\"google\":{\"clients\":{\"$client\":\"$(cat "$dir/client_secret")\",\"other-app\":\"x\"}}}"
ingest_start TN_GOOGLE_CLIENT_ID="$client" TN_GOOGLE_AUTH_URL="$G/o/oauth2/v2/auth" || sw_fail "tern-ingest"
env TN_REDIS_URL="$TN_TEST_REDIS_URL_CALSYNC" TN_PG_DSN="$TN_TEST_PG_DSN_CALSYNC" \
    TN_MASTER_KEY="$master" TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_CALSYNC_SCAN_INTERVAL=300ms \
    TN_GOOGLE_CLIENT_ID="$client" TN_GOOGLE_CLIENT_SECRET_FILE="$dir/client_secret" \
    TN_GOOGLE_TOKEN_URL="$G/token" TN_GOOGLE_USERINFO_URL="$G/v1/userinfo" \
    TN_GOOGLE_CALENDAR_BASE="$G/calendar/v3" TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=2s \
    TN_GOOGLE_PUSH_URL="$base/webhooks/google/calendar" \
    "$TN_BIN_DIR/tern-calsync" >>"$dir/calsync.log" 2>&1 &
cpid=$!
sw_start TN_GOOGLE_REVOKE_URL="$G/revoke" TN_GOOGLE_CALENDAR_BASE="$G/calendar/v3"

# --- connect, as the owner would
link=$(TN_INGEST_PUBLIC_URL=https://hooks.example.test "$ctl" calendar link --tenant "$tid" --ttl 1h)
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$base${link#https://hooks.example.test}")
[[ "$loc" == "$G/o/oauth2/v2/auth?"* ]] || sw_fail "start did not redirect to the consent page"
cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc")
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/oauth/google/callback?${cb#*\?}")" = 200 ] \
    || sw_fail "callback refused"
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM oauth_accounts WHERE tenant_id = '$tid' AND refresh_token_sealed IS NOT NULL
              AND access_token_sealed IS NOT NULL")" = 1 ] && break
    sleep 0.1
done
acct=$(sql "SELECT id FROM oauth_accounts WHERE tenant_id = '$tid' AND refresh_token_sealed IS NOT NULL")
[ -n "$acct" ] || sw_fail "tern-calsync stored no tokens: $(tail -3 "$dir/calsync.log")"

# --- at rest: the raw bytes are envelopes that open only with key and AAD
raw() { sql "SELECT encode($1, 'hex') FROM oauth_accounts WHERE id = '$acct'"; }
racc=$(raw access_token_sealed) rref=$(raw refresh_token_sealed)
acc=$(tn_open_hex "$racc" "oauth:$tid:$acct:access" "$mkey") || sw_fail "the access token is not a sealed envelope"
ref=$(tn_open_hex "$rref" "oauth:$tid:$acct:refresh" "$mkey") || sw_fail "the refresh token is not a sealed envelope"
[ "$(sql "SELECT key_id FROM oauth_accounts WHERE id = '$acct'")" = 1 ] || sw_fail "key_id"
if tn_open_hex "$rref" "oauth:$tid:$acct:access" "$mkey" >/dev/null; then sw_fail "opens with another AAD"; fi
if tn_open_hex "$rref" "oauth:$tid:$acct:refresh" "$(head -c 32 /dev/urandom | base64 -w0)" >/dev/null; then
    sw_fail "opens with another key"
fi
[ "$(curl -s "$G/token" -d grant_type=refresh_token -d "refresh_token=$ref" -d "client_id=$client" \
    -d "client_secret=$(cat "$dir/client_secret")" | jq -r '.access_token | length > 0')" = true ] \
    || sw_fail "the stored refresh token is not the grant the provider issued"

# any_column NEEDLE... - "table.column" of every column (any type, bytea as
# bytes and as hex) holding a needle, in every table
any_column() {
    psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 \
        -v needles="$(printf '%s\n' "$@" | jq -R . | jq -sc .)" <<'SQL'
SELECT set_config('tern.needles', :'needles', false) AS needles \gset
CREATE TEMP TABLE hits (col text);
DO $$
DECLARE r record; k bigint;
    ns text[] := ARRAY(SELECT jsonb_array_elements_text(current_setting('tern.needles')::jsonb));
BEGIN
  FOR r IN SELECT c.table_name, c.column_name, c.data_type
             FROM information_schema.columns c JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
  LOOP
    IF r.data_type = 'bytea' THEN
      EXECUTE format('SELECT count(*) FROM %I WHERE EXISTS (SELECT 1 FROM unnest($1) n'
                     ' WHERE position(convert_to(n, ''UTF8'') IN %I) > 0'
                     ' OR position(n IN encode(%I, ''hex'')) > 0)', r.table_name, r.column_name, r.column_name)
        INTO k USING ns;
    ELSE
      EXECUTE format('SELECT count(*) FROM %I WHERE EXISTS (SELECT 1 FROM unnest($1) n'
                     ' WHERE position(n IN %I::text) > 0)', r.table_name, r.column_name)
        INTO k USING ns;
    END IF;
    IF k > 0 THEN INSERT INTO hits VALUES (r.table_name || '.' || r.column_name); END IF;
  END LOOP;
END $$;
SELECT col FROM hits ORDER BY 1;
SQL
}
hits=$(any_column "$acc" "$ref")
[ -z "$hits" ] || sw_fail "a plaintext token is stored in: ${hits//$'\n'/ }"
[ "$(any_column "$rref" | tr '\n' ' ')" = "oauth_accounts.refresh_token_sealed " ] \
    || sw_fail "the scan does not see the sealed refresh token"
for f in "$dir"/calsync.log "$dir"/ingest.log "$dir"/sweeper.log; do
    if grep -qF -e "$acc" -e "$ref" "$f"; then sw_fail "$(basename "$f") holds a token"; fi
done
echo "at rest ok: both tokens sealed, no plaintext anywhere"

# --- the push channel tern-calsync opened after the connect
for _ in $(seq 1 150); do
    [ "$(sql "SELECT push_resource_id IS NOT NULL FROM oauth_accounts WHERE id = '$acct'")" = t ] && break
    sleep 0.1
done
chan=$(sql "SELECT push_channel_id FROM oauth_accounts WHERE id = '$acct'")
chres=$(sql "SELECT push_resource_id FROM oauth_accounts WHERE id = '$acct'")
[ -n "$chan" ] && [ -n "$chres" ] || sw_fail "tern-calsync opened no push channel: $(tail -3 "$dir/calsync.log")"
chtok=$(sandbox_requests google 0 | jq -r --arg c "$chan" \
    '[.[] | select((.path | endswith("/events/watch")) and .json.id == $c)][0].json.token')
for _ in $(seq 1 50); do
    [ "$(goog_push "$chan" "$chtok" exists 900)" = 200 ] && break
    sleep 0.1
done
[ "$(goog_push "$chan" "$chtok" exists 901)" = 200 ] || sw_fail "tern-ingest does not route the channel"

# --- disconnect: gone at once, revoked at the provider
acc=$(tn_open_hex "$(raw access_token_sealed)" "oauth:$tid:$acct:access" "$mkey") \
    || sw_fail "the access token does not open" # the one in the row now (a refresh may have replaced it)
[ "$(sql "SELECT expires_at > now() + interval '5 minutes' FROM oauth_accounts WHERE id = '$acct'")" = t ] \
    || sw_fail "the access token is about to expire: the channel would not be stopped"
since=$(curl -s "$SANDBOX_URL/_sandbox/stats" | jq .total)
"$ctl" privacy disconnect --tenant "$tid" --account "$acct" --wait 10 >/dev/null || sw_fail "disconnect"
[ "$(sql "SELECT (access_token_sealed IS NULL AND refresh_token_sealed IS NULL AND disconnected_at IS NOT NULL)::text
          FROM oauth_accounts WHERE id = '$acct'")" = true ] || sw_fail "the tokens are still in the row"
hits=$(any_column "$acc" "$ref" "$racc" "$rref" "${racc:34:32}" "${rref:34:32}")
[ -z "$hits" ] || sw_fail "a token, sealed or not, is still stored in: ${hits//$'\n'/ }"
revoked() {
    sandbox_requests google-oauth "$since" | jq -e --arg t "$ref" \
        '[.[] | select(.method == "POST" and .path == "/google/revoke" and .json.token == $t)] | length == 1' >/dev/null
}
for _ in $(seq 1 50); do revoked && break; sleep 0.1; done
revoked || sw_fail "the sandbox saw no revoke call with the refresh token"
grep -q '"event":"sweeper.revoked"' "$dir/sweeper.log" || sw_fail "no sweeper.revoked"
[ "$(curl -s "$G/token" -d grant_type=refresh_token -d "refresh_token=$ref" -d "client_id=$client" \
    -d "client_secret=$(cat "$dir/client_secret")" | jq -r .error)" = invalid_grant ] \
    || sw_fail "the provider still honours the refresh token"
for f in "$dir"/calsync.log "$dir"/ingest.log "$dir"/sweeper.log; do
    if grep -qF -e "$acc" -e "$ref" "$f"; then sw_fail "$(basename "$f") holds a token"; fi
done
echo "disconnect ok: no token in any row, revoked at the provider"

# --- the channel: forgotten with the tokens, stopped at Google before the revoke
[ "$(sql "SELECT (push_channel_id IS NULL AND push_resource_id IS NULL AND push_token_hash IS NULL
                  AND push_expires_at IS NULL)::text FROM oauth_accounts WHERE id = '$acct'")" = true ] \
    || sw_fail "the push channel is still in the row"
sandbox_requests "" "$since" >"$dir/after.json"
stops=$(jq '[.[] | select(.path == "/google/calendar/v3/channels/stop")]' "$dir/after.json")
[ "$(jq length <<<"$stops")" = 1 ] || sw_fail "want one channels.stop, got: $(jq -c '[.[] | .json]' <<<"$stops")"
[ "$(jq -r --arg c "$chan" --arg r "$chres" --arg a "Bearer $acc" '.[0] |
    .method == "POST" and .json.id == $c and .json.resourceId == $r
    and .headers.authorization == $a' <<<"$stops")" = true ] \
    || sw_fail "channels.stop: $(jq -c '.[0] | {json, bearer_ok: (.headers.authorization == "Bearer '"$acc"'")}' <<<"$stops")"
stop_seq=$(jq '.[0].seq' <<<"$stops")
revoke_seq=$(jq '[.[] | select(.path == "/google/revoke")][0].seq' "$dir/after.json")
[ "$stop_seq" -lt "$revoke_seq" ] || sw_fail "channels.stop (#$stop_seq) came after the revoke (#$revoke_seq)"
grep '"event":"sweeper.channel_stopped"' "$dir/sweeper.log" | grep -qF "\"channel\":\"$chan\"" \
    || sw_fail "no sweeper.channel_stopped for the channel"
grep '"event":"sweeper.channel_stopped"' "$dir/sweeper.log" | grep -q '"http_status":204' \
    || sw_fail "channels.stop was not answered 204"
for _ in $(seq 1 50); do
    [ "$(goog_push "$chan" "$chtok" exists 902)" = 404 ] && break
    sleep 0.1
done
[ "$(goog_push "$chan" "$chtok" exists 903)" = 404 ] || sw_fail "tern-ingest still routes the channel"
pushed=$(google_seq)
google_owner_token || sw_fail "owner token"
gcal POST /calendars/primary/events -d '{"summary":"After","start":{"dateTime":"2030-01-01T10:00:00Z"},
    "end":{"dateTime":"2030-01-01T11:00:00Z"}}' >/dev/null
[ "$gstatus" = 200 ] || sw_fail "owner's insert: $gstatus"
sleep 0.5
[ "$(google_count google-push "$pushed" '.headers["x-goog-channel-id"] == "'"$chan"'"')" = 0 ] \
    || sw_fail "the sandbox still pushes on the stopped channel"
for f in "$dir"/calsync.log "$dir"/ingest.log "$dir"/sweeper.log; do
    if grep -qF -e "$acc" "$f"; then sw_fail "$(basename "$f") holds the access token"; fi
done
echo "channel ok: forgotten, stopped with the account's token before the revoke"
sw_stop
echo "sweeper_tokens: all ok"
