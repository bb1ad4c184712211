#!/usr/bin/env bash
# sweeper_mailbox.sh - disconnecting a mailbox ends its Gmail grant at
# Google, not only in Tern's database (sweeper_mailbox.c), against the
# sandbox's Google token and revoke endpoints:
#   gmail       `ternctl channel disconnect --wait` of a Gmail mailbox (access
#               and refresh token): the request is done, the channel is
#               disabled and holds no secrets (sealed or plain, anywhere),
#               the sandbox saw one POST /google/revoke with the refresh
#               token and refuses it from then on (invalid_grant); the
#               privacy_requests row and the audit row name the channel;
#               no token in tern-sweeper's log
#   access      a mailbox with an access token only (`ternctl privacy
#               disconnect --channel`): the access token is revoked, and
#               with it the grant (its refresh token is refused too)
#   smtp        an SMTP mailbox: disabled, password deleted, nothing sent
#               to Google, and ternctl says the password is not revoked
#   whatsapp    a WhatsApp channel is disconnected by ternctl at once (no
#               privacy request, no revoke); through tern-sweeper (`privacy
#               disconnect --channel`) it is cleared, and its access token
#               (Meta's) is not sent to Google; nor is an SMTP mailbox's
#               access_token
#   replay      the request's entry matches privacy.request v1 and carries
#               ids only; the same entry again is acknowledged, not revoked
#               a second time
#   refused     an unknown channel (exit 1, nothing queued); an entry naming
#               both an account and a channel is dead-lettered
#   offboarding `ternctl tenant delete` of a tenant with 70 CalDAV accounts
#               (more than a sweep's room of 64), a Google account and a
#               Gmail mailbox: both grants are revoked (the sweep clears what
#               its room holds and leaves the tenant for the next one), then
#               the tenant is gone
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/support/sweeper.sh"
sw_setup sweeper_mailbox
. "$TN_SRC_DIR/tests/sandbox/client.sh"
. "$TN_SRC_DIR/tests/support/sealed.sh"
mb_cleanup() {
    sandbox_stop
    sw_cleanup
}
trap mb_cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

sandbox_start "$dir" --quiet || sw_fail "sandbox did not start"
G="$SANDBOX_URL/google"
u=mb$RANDOM$RANDOM
CID="cid-$u.apps.googleusercontent.com" CSECRET="GOCSPX-$u"
sandbox_config "{\"google\":{\"clients\":{\"$CID\":\"$CSECRET\"}}}"

# grant - "ACCESS REFRESH" of a fresh grant from the sandbox's token endpoint
grant() {
    curl -sS --fail-with-body "$G/token" --data-urlencode grant_type=authorization_code \
        --data-urlencode "code=4/code-$RANDOM$RANDOM" --data-urlencode redirect_uri=https://x.example/cb \
        --data-urlencode "client_id=$CID" --data-urlencode "client_secret=$CSECRET" |
        jq -re '.access_token + " " + .refresh_token'
}
# refused REFRESH - the sandbox's Google no longer honours the refresh token
refused() {
    [ "$(curl -sS "$G/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$1" \
        -d "client_id=$CID" -d "client_secret=$CSECRET" | jq -r .error)" = invalid_grant ]
}
# revokes TOKEN - how many POST /google/revoke the sandbox saw with TOKEN
revokes() {
    sandbox_requests google-oauth 0 | jq --arg t "$1" \
        '[.[] | select(.method == "POST" and .path == "/google/revoke" and .json.token == $t)] | length'
}
# wait_revokes TOKEN N - until the sandbox saw N revokes of TOKEN (5 s)
wait_revokes() {
    for _ in $(seq 1 50); do [ "$(revokes "$1")" -ge "$2" ] && break; sleep 0.1; done
    [ "$(revokes "$1")" = "$2" ]
}
chan_state() {
    sql "SELECT enabled::text || ' ' || (secrets_sealed IS NULL AND secrets_key_id IS NULL)::text
         FROM channels WHERE id = '$1'"
}

tid=$("$ctl" tenant add --slug "$u" --name "Mailbox $u" --tz Europe/Lisbon)
read -r acc1 ref1 <<<"$(grant)"
read -r acc2 ref2 <<<"$(grant)"
gm=$("$ctl" channel add --tenant "$tid" --kind email --address "desk-$u@example.test" \
    --secret "access_token=$acc1" --secret "refresh_token=$ref1")
gm2=$("$ctl" channel add --tenant "$tid" --kind email --address "front-$u@example.test" \
    --secret "access_token=$acc2")
sm=$("$ctl" channel add --tenant "$tid" --kind email --address "smtp-$u@example.test" \
    --secret smtp_url=smtp://127.0.0.1:2525 --secret smtp_user=desk --secret "smtp_password=pw-$u")
wa=$("$ctl" channel add --tenant "$tid" --kind whatsapp --address "9$RANDOM$RANDOM" \
    --secret "app_secret=app-$u" --secret "verify_token=v-$u")
raw1=$(sql "SELECT encode(secrets_sealed, 'hex') FROM channels WHERE id = '$gm'")
sw_start TN_GOOGLE_REVOKE_URL="$G/revoke"

# --- gmail: disabled, secrets gone, grant revoked at Google
out=$("$ctl" channel disconnect --tenant "$tid" --id "$gm" --wait 10 2>"$dir/ctl.err") \
    || sw_fail "channel disconnect: $(cat "$dir/ctl.err")"
req=$(head -1 <<<"$out")
[ "$(tail -1 <<<"$out")" = "$req	done" ] || sw_fail "disconnect not done: $out"
grep -q "revokes its Gmail grant" "$dir/ctl.err" || sw_fail "ternctl did not say what happens"
[ "$(chan_state "$gm")" = "false true" ] || sw_fail "the mailbox is not disabled and cleared"
wait_revokes "$ref1" 1 || sw_fail "want one revoke of the refresh token, saw $(revokes "$ref1")"
[ "$(revokes "$acc1")" = 0 ] || sw_fail "the access token was revoked besides the refresh token"
refused "$ref1" || sw_fail "Google still honours the mailbox's refresh token"
[ "$(sql "SELECT subject_ref || ' ' || status || ' ' || (receipt->>'to_revoke')
          FROM privacy_requests WHERE id = '$req'")" = "channel:$gm done 1" ] || sw_fail "request row"
[ "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid' AND actor = 'sweeper'
          AND action = 'privacy.disconnect' AND detail->>'channel' = '$gm'")" = 1 ] || sw_fail "audit row"
[ "$(sql "SELECT count(*) FROM channels c WHERE position('$acc1' in c::text) > 0
          OR position('$ref1' in c::text) > 0 OR position('${raw1:0:64}' in encode(c.secrets_sealed, 'hex')) > 0")" = 0 ] \
    || sw_fail "a token, sealed or not, is still in channels"
grep -q '"event":"sweeper.revoked"' "$dir/sweeper.log" || sw_fail "no sweeper.revoked"
echo "gmail ok: disabled, no secrets, refresh token revoked and refused"

# --- access only, through `ternctl privacy disconnect --channel`
"$ctl" privacy disconnect --tenant "$tid" --channel "$gm2" --wait 10 >/dev/null || sw_fail "privacy disconnect"
[ "$(chan_state "$gm2")" = "false true" ] || sw_fail "the access-only mailbox is not cleared"
wait_revokes "$acc2" 1 || sw_fail "want one revoke of the access token, saw $(revokes "$acc2")"
refused "$ref2" || sw_fail "the grant of a revoked access token still refreshes"
echo "access ok: the access token revoked, and with it the grant"

# --- smtp: cleared, nothing sent to Google, the operator is told
before=$(sandbox_requests google-oauth 0 | jq length)
"$ctl" channel disconnect --tenant "$tid" --id "$sm" --wait 10 >/dev/null 2>"$dir/ctl.err" \
    || sw_fail "smtp disconnect: $(cat "$dir/ctl.err")"
grep -q "SMTP password is not revoked" "$dir/ctl.err" || sw_fail "no SMTP note"
[ "$(chan_state "$sm")" = "false true" ] || sw_fail "the SMTP mailbox is not cleared"
[ "$(sql "SELECT receipt->>'to_revoke' FROM privacy_requests WHERE subject_ref = 'channel:$sm'")" = 0 ] \
    || sw_fail "smtp receipt"
echo "smtp ok: password deleted, nothing to revoke"

# --- whatsapp: ternctl at once, no privacy request
TN_REDIS_URL=redis://127.0.0.1:1 "$ctl" channel disconnect --tenant "$tid" --id "$wa" >/dev/null \
    || sw_fail "whatsapp disconnect needs Redis"
[ "$(chan_state "$wa")" = "false true" ] || sw_fail "the WhatsApp channel is not cleared"
[ "$(sql "SELECT count(*) FROM privacy_requests WHERE subject_ref = 'channel:$wa'")" = 0 ] \
    || sw_fail "a WhatsApp disconnect went through tern-sweeper"
echo "whatsapp ok: disconnected by ternctl"

# --- through tern-sweeper: a WhatsApp access token and an SMTP mailbox's
# access_token are not Google grants
wa2=$("$ctl" channel add --tenant "$tid" --kind whatsapp --address "8$RANDOM$RANDOM" \
    --secret "app_secret=app2-$u" --secret "access_token=EAAG-meta-$u")
sm2=$("$ctl" channel add --tenant "$tid" --kind email --address "smtp2-$u@example.test" \
    --secret smtp_url=smtp://127.0.0.1:2525 --secret "access_token=ya29.smtp-$u")
"$ctl" privacy disconnect --tenant "$tid" --channel "$wa2" --wait 10 >/dev/null || sw_fail "privacy disconnect of WhatsApp"
"$ctl" privacy disconnect --tenant "$tid" --channel "$sm2" --wait 10 >/dev/null || sw_fail "privacy disconnect of SMTP"
[ "$(chan_state "$wa2") $(chan_state "$sm2")" = "false true false true" ] || sw_fail "not cleared by tern-sweeper"
sleep 0.3
[ "$(revokes "EAAG-meta-$u") $(revokes "ya29.smtp-$u")" = "0 0" ] || sw_fail "a non-Google token was sent to Google"
[ "$(sql "SELECT string_agg(receipt->>'to_revoke', ' ') FROM privacy_requests
          WHERE subject_ref IN ('channel:$wa2', 'channel:$sm2')")" = "0 0" ] || sw_fail "receipts of non-Google channels"
echo "non-google ok: cleared, nothing sent to Google"

# --- replay: the Gmail request's entry again
mapfile -t fields < <(rr XRANGE tern:privacy - + | awk -v r="$req" '
    /^[0-9]+-[0-9]+$/ { if (hit) exit; n = 0; delete f; next }
    { f[++n] = $0; if ($0 == r) hit = 1 }
    END { if (hit) for (i = 1; i <= n; i++) print f[i] }')
[ "${#fields[@]}" -ge 10 ] || sw_fail "the request's entry is not on tern:privacy"
jq -cn '{stream: "tern:privacy", fields: ([$ARGS.positional | _nwise(2) | {(.[0]): .[1]}] | add)}' \
    --args "${fields[@]}" >"$dir/entry.jsonl"
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/entry.jsonl" >"$dir/validate.out" 2>&1 \
    || sw_fail "the channel disconnect entry does not match privacy.request v1: $(cat "$dir/validate.out")"
[ "$(jq -r '.fields.data | fromjson | .channel_id' "$dir/entry.jsonl")" = "$gm" ] \
    || sw_fail "the entry does not name the channel: $(cat "$dir/entry.jsonl")"
done_before=$(grep -c '"event":"sweeper.request_done"' "$dir/sweeper.log")
rr XADD tern:privacy '*' "${fields[@]}" >/dev/null
for _ in $(seq 1 50); do
    [ "$(grep -c '"event":"sweeper.request_done"' "$dir/sweeper.log")" -gt "$done_before" ] && break
    sleep 0.1
done
[ "$(grep -c '"event":"sweeper.request_done"' "$dir/sweeper.log")" -gt "$done_before" ] \
    || sw_fail "the replayed entry was not acknowledged"
sleep 0.3
[ "$(revokes "$ref1")" = 1 ] || sw_fail "a replay revoked again"
[ "$(sandbox_requests google-oauth 0 | jq length)" = "$before" ] || sw_fail "the SMTP, WhatsApp or replayed disconnect called Google"
echo "replay ok: acknowledged, nothing sent twice"

# --- refused: an unknown channel, an entry naming both
rc=0
"$ctl" privacy disconnect --tenant "$tid" --channel "$(cat /proc/sys/kernel/random/uuid)" 2>"$dir/ctl.err" || rc=$?
[ "$rc" = 1 ] && grep -q "no such channel" "$dir/ctl.err" || sw_fail "unknown channel: exit $rc $(cat "$dir/ctl.err")"
rc=0
"$ctl" channel disconnect --tenant "$tid" --id "$(cat /proc/sys/kernel/random/uuid)" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || sw_fail "channel disconnect of an unknown channel: exit $rc"
bad_req=$(cat /proc/sys/kernel/random/uuid)
rr XADD tern:privacy '*' type privacy.request v 1 tenant "$tid" trace "00-$(openssl rand -hex 16)-$(openssl rand -hex 8)-01" \
    request "$bad_req" dedupe "priv:$bad_req" data "{\"tenant\":\"$tid\",\"request_id\":\"$bad_req\",\"kind\":\"disconnect\",\"account_id\":\"$gm\",\"channel_id\":\"$gm\"}" >/dev/null
invalid() { grep '"event":"sweeper.request_invalid"' "$dir/sweeper.log" | grep -q '"reason":"bad_target"'; }
for _ in $(seq 1 50); do invalid && break; sleep 0.1; done
invalid || sw_fail "an entry naming both an account and a channel was not refused"
echo "refused ok"

# --- offboarding: the mailbox's grant is revoked before the rows go
sw_stop
u2=${u}o
t2=$("$ctl" tenant add --slug "$u2" --name "Offboard $u2" --tz Europe/Lisbon)
read -r acc3 ref3 <<<"$(grant)"
read -r _ ref4 <<<"$(grant)"
# the CalDAV accounts first, so that a sweep's first 64 rows are theirs
sql "INSERT INTO oauth_accounts (tenant_id, provider, calendar_id, access_token_sealed)
     SELECT '$t2', 'caldav', 'https://dav.example/' || g, '\\x00'::bytea FROM generate_series(1, 70) g" >/dev/null
g4=$(sql "SELECT gen_random_uuid()")
sql "INSERT INTO oauth_accounts (tenant_id, id, provider, calendar_id, refresh_token_sealed)
     VALUES ('$t2', '$g4', 'google', 'primary',
             decode('$(tn_seal_hex "$mkey" 1 "oauth:$t2:$g4:refresh" "$ref4")', 'hex'))" >/dev/null
"$ctl" channel add --tenant "$t2" --kind email --address "desk-$u2@example.test" \
    --secret "access_token=$acc3" --secret "refresh_token=$ref3" >/dev/null
sw_start TN_GOOGLE_REVOKE_URL="$G/revoke" TN_SWEEPER_INTERVAL=300ms
"$ctl" tenant delete --tenant "$t2" >/dev/null || sw_fail "tenant delete"
for _ in $(seq 1 150); do [ "$(sql "SELECT count(*) FROM tenants WHERE id = '$t2'")" = 0 ] && break; sleep 0.1; done
[ "$(sql "SELECT count(*) FROM tenants WHERE id = '$t2'")" = 0 ] || sw_fail "the tenant was not offboarded"
wait_revokes "$ref3" 1 || sw_fail "offboarding did not revoke the mailbox's grant"
wait_revokes "$ref4" 1 || sw_fail "offboarding did not revoke the Google account behind 70 CalDAV accounts"
refused "$ref3" || sw_fail "Google still honours the offboarded mailbox's refresh token"
grep -q '"event":"sweeper.offboard_continues"' "$dir/sweeper.log" || sw_fail "the sweep did not leave the rest for the next"
echo "offboarding ok: every grant revoked, also past a sweep's room"

rr XRANGE tern:privacy - + >"$dir/privacy.stream"
for t in "$acc1" "$ref1" "$acc2" "$ref2" "$acc3" "$ref3" "pw-$u"; do
    if grep -qF -- "$t" "$dir/sweeper.log"; then sw_fail "tern-sweeper's log holds a secret"; fi
    if grep -qF -- "$t" "$dir/privacy.stream"; then sw_fail "tern:privacy holds a secret"; fi
done
sw_stop
echo "sweeper_mailbox: all ok"
