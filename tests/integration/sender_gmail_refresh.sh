#!/usr/bin/env bash
# tern-sender refreshes a Gmail channel's access token (sender_gmail.c)
# against the sandbox's Google token endpoint, whose issued tokens the
# Gmail fake accepts (gmail_tokens is configured, so the stored tokens are
# refused with 401):
#   (1) a stored token Gmail answers 401, with a valid refresh_token: one
#       refresh grant (our client id, the channel's refresh token), the
#       message sent once with the new token, attempts 1; the new token is
#       sealed into the channel's secrets, and the next message uses it
#       without another refresh;
#   (1b) expires_at in the past: refreshed before the call, Gmail sees one
#       request only;
#   (1c) three messages of one channel at once: one refresh, all sent;
#   (2) a revoked refresh token: failed final "gmail_reauth" (attempts 1,
#       one grant), sender.gmail_reauth logged; a later message fails the
#       same way without asking Google again;
#   (3) no token or secret in tern-sender's log.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_gmail_refresh.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

n=$RANDOM$RANDOM
CID="cid-$n.apps.googleusercontent.com"
CSECRET="GOCSPX-$(snd_uuid | tr -d -)"
sandbox_config "{\"gmail_tokens\":[\"never-$n\"],\"google\":{\"clients\":{\"$CID\":\"$CSECRET\"}}}"

# grant - a fresh refresh token from the sandbox's token endpoint
grant() {
    curl -sS --fail-with-body "$SANDBOX_URL/google/token" --data-urlencode grant_type=authorization_code \
        --data-urlencode "code=4/code-$(snd_uuid)" --data-urlencode redirect_uri=https://x.example/cb \
        --data-urlencode "client_id=$CID" --data-urlencode "client_secret=$CSECRET" | jq -re .refresh_token
}
RT_A=$(grant)
RT_B=$(grant)
RT_C=$(grant)
RT_D=$(grant)
curl -sS --fail-with-body "$SANDBOX_URL/google/revoke" --data-urlencode "token=$RT_B" >/dev/null
STALE_A="ya29.stale-$(snd_uuid | tr -d -)"
STALE_B="ya29.stale-$(snd_uuid | tr -d -)"
STALE_C="ya29.stale-$(snd_uuid | tr -d -)"
STALE_D="ya29.stale-$(snd_uuid | tr -d -)"
CH_A=$(snd_channel email "a$n@gmail.example" --secret access_token="$STALE_A" --secret refresh_token="$RT_A")
CH_B=$(snd_channel email "b$n@gmail.example" --secret access_token="$STALE_B" --secret refresh_token="$RT_B")
CH_C=$(snd_channel email "c$n@gmail.example" --secret access_token="$STALE_C" --secret refresh_token="$RT_C" \
    --secret expires_at=1700000000)
CH_D=$(snd_channel email "d$n@gmail.example" --secret access_token="$STALE_D" --secret refresh_token="$RT_D")
CT_A=$(snd_contact email "lead-a$n@example.org" "$CH_A")
CT_B=$(snd_contact email "lead-b$n@example.org" "$CH_B")
CT_C=$(snd_contact email "lead-c$n@example.org" "$CH_C")
CT_D=$(snd_contact email "lead-d$n@example.org" "$CH_D")

# em_out ID CHANNEL CONTACT TEXT - an email outbound.message on tern:out
em_out() {
    local data
    data=$(jq -cn --arg t "$T" --arg c "$2" --arg id "$1" --arg ct "$3" --arg x "$4" \
        '{tenant:$t, channel:$c, provider:"email", outbound_id:$id, contact_id:$ct, to:"x",
        transport:"email", kind:"text", text:$x, reason:"reply", created_at:(now|todate)}')
    snd_redis XADD tern:out '*' type outbound.message v 1 tenant "$T" \
        trace "00-$(snd_uuid | tr -d -)-0123456789abcdef-01" channel "$2" provider email \
        outbound "$1" dedupe "out:$1" data "$data" >/dev/null
}
# gm_of ID BOX - the Gmail requests of outbound ID (by its Message-ID)
gm_of() {
    sandbox_requests gmail | jq -c --arg m "<tern.$1@gmail.example>" '[.[] | select(.decoded // "" | contains($m))]'
}
# grants RT - the refresh grants the token endpoint got for RT
grants() {
    sandbox_requests google-oauth | jq -c --arg rt "$1" '[.[] | select(.json.grant_type == "refresh_token"
        and .json.refresh_token == $rt)]'
}
sealed() { snd_sql "SELECT encode(secrets_sealed, 'hex') FROM channels WHERE id = '$1'"; }

SEALED_A=$(sealed "$CH_A")
snd_start TN_GMAIL_API_BASE="$SANDBOX_URL/gmail" TN_GOOGLE_CLIENT_ID="$CID" \
    TN_GOOGLE_CLIENT_SECRET="$CSECRET" TN_GOOGLE_TOKEN_URL="$SANDBOX_URL/google/token"

# --- (1) 401, refresh, sent once with the new token
id=$(snd_uuid)
em_out "$id" "$CH_A" "$CT_A" "Hello after an hour"
snd_wait_state "$id" sent 8 || snd_fail "(1) not sent: $(snd_row "$id" "state || ' ' || coalesce(last_error_code, '')")"
[ "$(snd_row "$id" attempts)" = 1 ] || snd_fail "(1) attempts $(snd_row "$id" attempts)"
g=$(grants "$RT_A")
jq -e --arg c "$CID" 'length == 1 and .[0].json.client_id == $c and .[0].method == "POST"
    and (.[0].headers["content-type"] | startswith("application/x-www-form-urlencoded"))' <<<"$g" >/dev/null ||
    snd_fail "(1) grants: $g"
r=$(gm_of "$id")
NEW_A=$(jq -r '.[1].headers.authorization // "" | sub("^Bearer "; "")' <<<"$r")
jq -e --arg s "Bearer $STALE_A" 'length == 2 and .[0].headers.authorization == $s' <<<"$r" >/dev/null &&
    [[ $NEW_A == ya29.* ]] && [ "$NEW_A" != "$STALE_A" ] || snd_fail "(1) gmail requests: $r"
[ -n "$(snd_row "$id" provider_message_id)" ] || snd_fail "(1) no provider id"
[ "$(sealed "$CH_A")" != "$SEALED_A" ] || snd_fail "(1) secrets not updated"
id2=$(snd_uuid)
em_out "$id2" "$CH_A" "$CT_A" "And again"
snd_wait_state "$id2" sent 8 || snd_fail "(1) second not sent"
r=$(gm_of "$id2")
jq -e --arg t "Bearer $NEW_A" 'length == 1 and .[0].headers.authorization == $t' <<<"$r" >/dev/null ||
    snd_fail "(1) second message: $r"
[ "$(grants "$RT_A" | jq length)" = 1 ] || snd_fail "(1) refreshed again"
echo "refresh after 401 ok"

# --- (1b) known expired: refreshed before the call
id=$(snd_uuid)
em_out "$id" "$CH_C" "$CT_C" "Expired before"
snd_wait_state "$id" sent 8 || snd_fail "(1b) not sent: $(snd_row "$id" "state || ' ' || coalesce(last_error_code, '')")"
r=$(gm_of "$id")
jq -e --arg s "Bearer $STALE_C" 'length == 1 and .[0].headers.authorization != $s' <<<"$r" >/dev/null ||
    snd_fail "(1b) gmail requests: $r"
[ "$(grants "$RT_C" | jq length)" = 1 ] && [ "$(snd_row "$id" attempts)" = 1 ] || snd_fail "(1b) grants/attempts"
echo "refresh before the call ok"

# --- (1c) three sends of one channel at once: one refresh
ids=()
for k in 1 2 3; do
    ids+=("$(snd_uuid)")
    em_out "${ids[-1]}" "$CH_D" "$CT_D" "Burst $k"
done
for i in "${ids[@]}"; do
    snd_wait_state "$i" sent 8 || snd_fail "(1c) $i: $(snd_row "$i" "state || ' ' || coalesce(last_error_code, '')")"
    [ "$(gm_of "$i" | jq '[.[] | select(.headers.authorization != "Bearer '"$STALE_D"'")] | length')" = 1 ] ||
        snd_fail "(1c) $i sent $(gm_of "$i" | jq length) times"
done
[ "$(grants "$RT_D" | jq length)" = 1 ] || snd_fail "(1c) $(grants "$RT_D" | jq length) refreshes"
echo "one refresh per channel ok"

# --- (2) revoked refresh token: final gmail_reauth, no refresh loop
id=$(snd_uuid)
em_out "$id" "$CH_B" "$CT_B" "Nobody home"
snd_wait_state "$id" failed 8 || snd_fail "(2) not failed: $(snd_row "$id" "state || ' ' || coalesce(last_error_code, '')")"
[ "$(snd_row "$id" "last_error_code || ' ' || attempts")" = "gmail_reauth 1" ] ||
    snd_fail "(2) row: $(snd_row "$id" "last_error_code || ' ' || attempts")"
[ "$(grants "$RT_B" | jq length)" = 1 ] || snd_fail "(2) grants: $(grants "$RT_B" | jq length)"
[ "$(gm_of "$id" | jq length)" = 1 ] || snd_fail "(2) gmail calls: $(gm_of "$id" | jq length)"
grep -q '"event":"sender.gmail_reauth".*"channel":"'"$CH_B"'"' "$dir/sender.log" || snd_fail "(2) no reauth event"
id=$(snd_uuid)
em_out "$id" "$CH_B" "$CT_B" "Still nobody"
snd_wait_state "$id" failed 8 || snd_fail "(2) second not failed"
[ "$(snd_row "$id" last_error_code)" = gmail_reauth ] && [ "$(grants "$RT_B" | jq length)" = 1 ] ||
    snd_fail "(2) second: $(snd_row "$id" last_error_code), $(grants "$RT_B" | jq length) grants"
echo "revoked refresh token ok"

# --- (3) no token or secret in the log
NEW_D=$(sandbox_requests gmail | jq -r --arg s "Bearer $STALE_D" \
    '[.[] | select(.path | endswith("/send")) | .headers.authorization] | map(select(. != $s)) | .[-1]
     | sub("^Bearer "; "")')
for s in "$CSECRET" "$RT_A" "$RT_B" "$RT_C" "$RT_D" "$STALE_A" "$STALE_B" "$STALE_C" "$STALE_D" \
    "$NEW_A" "$NEW_D"; do
    [ -n "$s" ] || snd_fail "(3) an empty needle"
    grep -qF "$s" "$dir/sender.log" && snd_fail "(3) a token or secret in the log"
done
snd_stop_checked
echo ok
