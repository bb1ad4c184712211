#!/usr/bin/env bash
# tern-sender's provider requests checked against the providers' official
# OpenAPI descriptions (tests/specs/README.md): a Prism proxy per provider
# (--errors) sits between tern-sender and the sandbox, so a request the spec
# refuses (path, method, auth, headers, content type, body) gets 422 and never
# reaches the sandbox, and the message fails instead of being sent. Covered:
# WhatsApp Cloud text and template (window closed), the read marker of an
# inbound message (outbound.read), Twilio SMS text and
# WhatsApp ContentSid template, Telegram sendMessage, a Gmail
# users.messages.send. One deliberately
# malformed request per provider proves the proxies do refuse.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_openapi.XXXXXX")
prism_pids=()
cleanup() {
    snd_cleanup
    for p in "${prism_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${prism_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
prism="$TN_SRC_DIR/tests/tools/node_modules/.bin/prism"
[ -x "$prism" ] || snd_fail "prism missing: run npm ci in tests/tools (scripts/test does)"
snd_setup "$dir"
GM_TOKEN="ya29.$(snd_uuid | tr -d -)"
sandbox_config "{\"gmail_tokens\":[\"$GM_TOKEN\"]}"
CH_GM=$(snd_channel email "owner$RANDOM@gmail.example" --secret access_token="$GM_TOKEN")
CT_GM=$(snd_contact email "lead$RANDOM@example.org" "$CH_GM")
node "$TN_SRC_DIR/tests/specs/prepare.mjs" "$dir/specs" || {
    rc=$?
    # the official descriptions may only live beside the repository (../shared/specs)
    [ "$rc" = 77 ] && { echo "SKIPPED: official OpenAPI descriptions not found"; exit 77; }
    snd_fail "preparing the specs failed ($rc)"
}

# proxy NAME UPSTREAM - a validating Prism proxy; sets PROXY_URL
proxy() {
    local port log=$dir/prism.$1.log
    port=$(tn_free_port)
    "$prism" proxy -h 127.0.0.1 -p "$port" --errors "$dir/specs/$1.json" "$2" >"$log" 2>&1 &
    prism_pids+=($!)
    eval "PROXY_$1=http://127.0.0.1:$port"
}
proxy whatsapp "$SANDBOX_URL/whatsapp"
proxy twilio "$SANDBOX_URL/twilio"
proxy telegram "$SANDBOX_URL/telegram"
proxy gmail "$SANDBOX_URL/gmail"
for name in whatsapp twilio telegram gmail; do
    for _ in $(seq 1 240); do
        grep -q "Prism is listening" "$dir/prism.$name.log" && break
        sleep 0.25
    done
    grep -q "Prism is listening" "$dir/prism.$name.log" ||
        snd_fail "prism $name did not start: $(tail -3 "$dir/prism.$name.log")"
done
echo "proxies up: $PROXY_whatsapp $PROXY_twilio $PROXY_telegram $PROXY_gmail"

# refused NAME - the spec violations Prism logged for provider NAME
refused() { grep -iE "violation|invalid request|✖" "$dir/prism.$1.log" || true; }

# --- tern-sender's sends pass the descriptions and reach the sandbox
snd_start TN_WHATSAPP_API_BASE="$PROXY_whatsapp" TN_TWILIO_API_BASE="$PROXY_twilio" \
    TN_TELEGRAM_API_BASE="$PROXY_telegram" TN_GMAIL_API_BASE="$PROXY_gmail" \
    TN_WHATSAPP_API_VERSION=v23.0 TN_SENDER_RATE_TELEGRAM_CHAT=100
wa_text=$(snd_uuid) wa_tpl=$(snd_uuid) sms=$(snd_uuid) twa_tpl=$(snd_uuid) tg=$(snd_uuid) gm=$(snd_uuid)
snd_out "$wa_text" "$CH_WA" "$CT_WA" text "Your appointment is confirmed"
snd_out "$wa_tpl" "$CH_WA" "$CT_WA_OLD" text "free text never goes out" \
    '{"template":{"name":"booking_followup","language":"en_US","variables":["Sam"],"buttons":[{"payload":"SLOT_A"}]}}'
snd_out "$sms" "$CH_SMS" "$CT_SMS" text "See you at 10:00"
snd_out "$twa_tpl" "$CH_TWA" "$CT_TWA" template "" \
    '{"template":{"content_sid":"HX0123456789abcdef0123456789abcdef","variables":["Sam","10:00"]}}'
snd_out "$tg" "$CH_TG" "$CT_TG" text "Telegram reply"
snd_redis XADD tern:out '*' type outbound.message v 1 tenant "$T" \
    trace "00-$(snd_uuid | tr -d -)-0123456789abcdef-01" channel "$CH_GM" provider email \
    outbound "$gm" dedupe "out:$gm" data "$(jq -cn --arg t "$T" --arg c "$CH_GM" --arg id "$gm" \
        --arg ct "$CT_GM" '{tenant:$t, channel:$c, provider:"email", outbound_id:$id,
        contact_id:$ct, to:"x", transport:"email", kind:"text", text:"Your booking is confirmed",
        subject:"Your booking", reason:"reply", created_at:(now|todate)}')" >/dev/null
wa_read="wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdE$(snd_uuid | tr -d - | cut -c1-12)"
snd_redis XADD tern:out '*' type outbound.read v 1 tenant "$T" \
    trace "00-$(snd_uuid | tr -d -)-$(snd_uuid | tr -d - | cut -c1-16)-01" channel "$CH_WA" \
    provider whatsapp pmid "$wa_read" dedupe "read:$wa_read" \
    data "$(jq -cn --arg t "$T" --arg c "$CH_WA" --arg w "$wa_read" \
        '{tenant:$t, channel:$c, provider:"whatsapp", provider_message_id:$w}')" >/dev/null
for id in "$wa_text" "$wa_tpl" "$sms" "$twa_tpl" "$tg" "$gm"; do
    end=$((SECONDS + 20))
    while [ "$(snd_state "$id")" != sent ] && [ $SECONDS -le $end ]; do sleep 0.2; done
    st=$(snd_state "$id")
    [ "$st" = sent ] || {
        for n in whatsapp twilio telegram gmail; do refused "$n" | tail -5 >&2; done
        snd_fail "$id: $st ($(snd_row "$id" last_error_code)), want sent through the validating proxy"
    }
done
[ "$(snd_count whatsapp "$wa_text")" = 1 ] || snd_fail "WhatsApp text did not reach the sandbox once"
[ "$(snd_count whatsapp "$wa_tpl")" = 1 ] || snd_fail "WhatsApp template did not reach the sandbox once"
sandbox_requests whatsapp | jq -e --arg o "$wa_tpl" \
    '[.[] | select(.json.biz_opaque_callback_data == $o)][0].json.type == "template"' >/dev/null ||
    snd_fail "window closed: not sent as the template"
end=$((SECONDS + 20))
while [ "$(snd_count whatsapp "$wa_read")" = 0 ] && [ $SECONDS -le $end ]; do sleep 0.2; done
[ "$(snd_count whatsapp "$wa_read")" = 1 ] || {
    refused whatsapp | tail -5 >&2
    snd_fail "WhatsApp read marker did not reach the sandbox once through the validating proxy"
}
[ "$(snd_count twilio "$sms")" = 1 ] || snd_fail "Twilio SMS did not reach the sandbox once"
[ "$(snd_count twilio "$twa_tpl")" = 1 ] || snd_fail "Twilio ContentSid did not reach the sandbox once"
[ "$(sandbox_requests telegram | jq '[.[] | select(.path | endswith("/sendMessage"))] | length')" = 1 ] ||
    snd_fail "Telegram sendMessage did not reach the sandbox once"
[ "$(sandbox_requests gmail | jq --arg m "<tern.$gm@gmail.example>" \
    '[.[] | select(.path | endswith("/messages/send")) | select(.decoded // "" | contains($m))] | length')" = 1 ] ||
    snd_fail "Gmail users.messages.send did not reach the sandbox once"
for n in whatsapp twilio telegram gmail; do
    [ -z "$(refused "$n")" ] || snd_fail "prism $n refused a tern-sender request: $(refused "$n" | head -3)"
done
echo "tern-sender requests valid: WhatsApp text + template + read marker, Twilio SMS + ContentSid, Telegram, Gmail"

# --- a malformed request is refused (422) and never reaches the sandbox
before=$(sandbox_requests "" | jq length)
# bad NAME URL CURL_ARGS... - expect 422 from the proxy
bad() {
    local name=$1 url=$2 code
    shift 2
    code=$(curl -s -o "$dir/bad.$name.json" -w '%{http_code}' -X POST "$url" "$@")
    [ "$code" = 422 ] || snd_fail "malformed $name request: got $code, want 422"
    jq -e '.validation | length > 0' "$dir/bad.$name.json" >/dev/null ||
        snd_fail "malformed $name request: no violations listed"
}
# WhatsApp: no messaging_product, an unknown type
bad whatsapp "$PROXY_whatsapp/v23.0/1015550000/messages" -H "Authorization: Bearer $SND_WA_TOKEN" \
    -H 'Content-Type: application/json' -H 'User-Agent: tern-sender/1.0.0' \
    -d '{"recipient_type":"individual","to":"4915112345678","type":"texty","text":{"body":"x"}}'
# Twilio: no To
bad twilio "$PROXY_twilio/2010-04-01/Accounts/$SND_TW_SID/Messages.json" \
    -u "$SND_TW_SID:$SND_TW_TOKEN" --data-urlencode 'From=+14155550000' --data-urlencode 'Body=x'
# Telegram: sendMessage without text
bad telegram "$PROXY_telegram/bot$SND_TG_TOKEN/sendMessage" -H 'Content-Type: application/json' \
    -d '{"chat_id":987654321}'
# Gmail: raw not a string
bad gmail "$PROXY_gmail/gmail/v1/users/me/messages/send" -H "Authorization: Bearer $GM_TOKEN" \
    -H 'Content-Type: application/json' -d '{"raw":5}'
[ "$(sandbox_requests "" | jq length)" = "$before" ] || snd_fail "a malformed request reached the sandbox"
echo "malformed requests refused by every proxy"
