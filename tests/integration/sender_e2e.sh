#!/usr/bin/env bash
# tern-sender end to end against the provider sandbox, per channel: a message
# on tern:out reaches the sandbox with the provider's shape and credentials
# (WhatsApp Cloud text and template, Twilio SMS and WhatsApp, Telegram); its
# statuses move the row to delivered then read (duplicates and late statuses
# never move it back); a redelivered entry sends nothing; a WhatsApp reply
# after the 24-hour window goes out as its template, never as free text, and
# fails "window_closed" without one; consent is checked at send time; a
# scheduled message is held until its time and a canceled one never leaves.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_e2e.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"
snd_start

# --- WhatsApp Cloud, text inside the window
id=$(snd_uuid)
snd_out "$id" "$CH_WA" "$CT_WA" text "Tue 10:00 or 14:00?" '{"reply_to":"wamid.IN1"}'
snd_wait_state "$id" sent 5
r=$(sandbox_requests whatsapp | jq -c --arg o "$id" '[.[] | select(.json.biz_opaque_callback_data == $o)]')
[ "$(jq length <<<"$r")" = 1 ] || snd_fail "whatsapp: $(jq length <<<"$r") requests"
jq -e --arg tok "Bearer $SND_WA_TOKEN" '.[0] | .method == "POST" and (.path | test("^/whatsapp/v21.0/[0-9]+/messages$"))
    and .headers.authorization == $tok and .json.messaging_product == "whatsapp"
    and .json.to == "4915112345678" and .json.type == "text" and .json.text.body == "Tue 10:00 or 14:00?"
    and .json.context.message_id == "wamid.IN1"' <<<"$r" >/dev/null || snd_fail "whatsapp shape: $r"
pmid=$(snd_row "$id" provider_message_id)
[[ "$pmid" == wamid.* ]] || snd_fail "provider id not stored: $pmid"
echo "whatsapp text ok"

# statuses (named by the outbound id WhatsApp echoes): delivered, read; then
# a late 'sent' and a duplicate 'delivered' change nothing
snd_status "$pmid" delivered "$id"
snd_wait_state "$id" delivered 5
snd_status "$pmid" read "$id"
snd_wait_state "$id" read 5
snd_status "$pmid" sent "$id"
snd_status "$pmid" delivered "$id"
snd_status "$pmid" failed "$id" "$CH_WA" 131026
sleep 0.5
[ "$(snd_state "$id")" = read ] || snd_fail "status went backwards: $(snd_state "$id")"
echo "statuses ok"

# A WhatsApp status without our id is another sender's on the same number
# (Tern names every message it sends): acknowledged and logged, never applied,
# even when the provider id is one of ours.
id2=$(snd_uuid)
snd_out "$id2" "$CH_WA" "$CT_WA" text "second"
snd_wait_state "$id2" sent 10
pmid2=$(snd_row "$id2" provider_message_id)
snd_status "$pmid2" read
for _ in $(seq 1 50); do
    grep -q '"sender.status_foreign"' "$dir/sender.log" && break
    sleep 0.1
done
grep -q '"sender.status_foreign"' "$dir/sender.log" || snd_fail "foreign status not logged"
sleep 1 # a retry would come after 0.5 s and log it again
[ "$(grep -c '"sender.status_foreign"' "$dir/sender.log")" = 1 ] || snd_fail "foreign status retried"
[ "$(snd_state "$id2")" = sent ] || snd_fail "a status without our id moved the row: $(snd_state "$id2")"
echo "foreign status ok"

# a redelivered entry for a sent message sends nothing
snd_out "$id" "$CH_WA" "$CT_WA" text "Tue 10:00 or 14:00?"
sleep 0.7
[ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "redelivery sent again"
echo "redelivery ok"

# --- WhatsApp after the window: the template, never free text
id=$(snd_uuid)
snd_out "$id" "$CH_WA" "$CT_WA_OLD" text "free text" \
    '{"template":{"name":"booking_followup","language":"en_US","variables":["Sam"],"buttons":[{"payload":"SLOT_A"}]}}'
snd_wait_state "$id" sent 5
r=$(sandbox_requests whatsapp | jq -c --arg o "$id" '[.[] | select(.json.biz_opaque_callback_data == $o)]')
jq -e 'length == 1 and (.[0].json | .type == "template" and .text == null
    and .template.name == "booking_followup" and .template.language.code == "en_US"
    and .template.components[0].parameters[0].text == "Sam"
    and .template.components[1].sub_type == "quick_reply"
    and .template.components[1].parameters[0].payload == "SLOT_A")' <<<"$r" >/dev/null ||
    snd_fail "window closed: not the template: $r"
id=$(snd_uuid)
snd_out "$id" "$CH_WA" "$CT_WA_OLD" text "free text"
snd_wait_state "$id" failed 5
[ "$(snd_row "$id" last_error_code)" = window_closed ] || snd_fail "window_closed not recorded"
[ "$(snd_count whatsapp "$id")" = 0 ] || snd_fail "free text sent outside the window"
echo "whatsapp window ok"

# --- Twilio SMS and WhatsApp: form, Basic auth, StatusCallback with our id
id=$(snd_uuid)
snd_out "$id" "$CH_SMS" "$CT_SMS" text "See you at 10"
snd_wait_state "$id" sent 5
r=$(sandbox_requests twilio | jq -c --arg o "$id" '[.[] | select(.body | contains($o))]')
auth="Basic $(printf '%s:%s' "$SND_TW_SID" "$SND_TW_TOKEN" | base64 -w0)"
jq -e --arg a "$auth" --arg sid "$SND_TW_SID" --arg o "$id" 'length == 1 and (.[0] |
    .path == "/twilio/2010-04-01/Accounts/\($sid)/Messages.json" and .headers.authorization == $a
    and (.headers["content-type"] | startswith("application/x-www-form-urlencoded"))
    and .json.To == "+4915111111111" and (.json.From | startswith("+1415555")) and .json.Body == "See you at 10"
    and .json.StatusCallback == "http://127.0.0.1:9/webhooks/twilio?outbound=\($o)")' <<<"$r" >/dev/null ||
    snd_fail "twilio sms shape: $r"
[[ "$(snd_row "$id" provider_message_id)" == SM* ]] || snd_fail "twilio sid not stored"
id=$(snd_uuid)
snd_out "$id" "$CH_TWA" "$CT_TWA" text "Hola"
snd_wait_state "$id" sent 5
sandbox_requests twilio | jq -e --arg o "$id" '[.[] | select(.body | contains($o))] | length == 1 and
    (.[0].json | .To == "whatsapp:+4915122222222" and (.From | startswith("whatsapp:+1415666")))' >/dev/null ||
    snd_fail "twilio whatsapp prefix"
echo "twilio ok"

# --- Telegram sendMessage
id=$(snd_uuid)
snd_out "$id" "$CH_TG" "$CT_TG" text "tg-$id"
snd_wait_state "$id" sent 5
sandbox_requests telegram | jq -e --arg tok "$SND_TG_TOKEN" --arg x "tg-$id" '[.[] | select(.json.text == $x)] |
    length == 1 and .[0].path == "/telegram/bot\($tok)/sendMessage" and (.[0].json.chat_id | tostring) == "987654321"' \
    >/dev/null || snd_fail "telegram shape: $(sandbox_requests telegram | jq -c '.[-1]')"
[[ "$(snd_row "$id" provider_message_id)" == 987654321:* ]] || snd_fail "telegram id not stored"
echo "telegram ok"

# --- consent at send time: opted out, restricted, erased, suppressed: failed with the reason, nothing sent
snd_sql "UPDATE contacts SET opted_out_at = now() WHERE id = '$CT_SMS'" >/dev/null
id=$(snd_uuid)
snd_out "$id" "$CH_SMS" "$CT_SMS" text "nope"
snd_wait_state "$id" failed 5
[ "$(snd_row "$id" last_error_code)" = opted_out ] || snd_fail "opt-out reason"
# restricted (GDPR art. 18: processing restricted on the person's request)
snd_sql "UPDATE contacts SET opted_out_at = NULL, restricted_at = now() WHERE id = '$CT_SMS'" >/dev/null
idr=$(snd_uuid)
snd_out "$idr" "$CH_SMS" "$CT_SMS" text "nope"
snd_wait_state "$idr" failed 5
[ "$(snd_row "$idr" last_error_code)" = restricted ] ||
    snd_fail "restriction reason: $(snd_row "$idr" last_error_code)"
snd_sql "UPDATE contacts SET restricted_at = NULL WHERE id = '$CT_SMS';
         INSERT INTO suppressions (tenant_id, address_hash, kind)
         VALUES ('$T', encode(hmac(convert_to('+4915111111111', 'UTF8'),
                 convert_to('$SND_SUPPRESSION_KEY', 'UTF8'), 'sha256'), 'hex'), 'erased')" >/dev/null
id2=$(snd_uuid)
snd_out "$id2" "$CH_SMS" "$CT_SMS" text "nope"
snd_wait_state "$id2" failed 5
[ "$(snd_row "$id2" last_error_code)" = suppressed ] || snd_fail "suppression reason"
[ "$(snd_count twilio "$id")$(snd_count twilio "$idr")$(snd_count twilio "$id2")" = 000 ] ||
    snd_fail "sent despite consent"
echo "consent ok"

# --- scheduled: held until not_before, then released within a second; canceled: never sent
id=$(snd_uuid)
id2=$(snd_uuid)
at=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%S.%3NZ)
due_ms=$(date -d "$at" +%s%3N)
snd_out "$id" "$CH_WA" "$CT_WA" text "reminder" "{\"not_before\":\"$at\",\"reason\":\"reminder\"}"
snd_out "$id2" "$CH_WA" "$CT_WA" text "canceled reminder" "{\"not_before\":\"$at\",\"reason\":\"reminder\"}"
sleep 0.5
[ "$(snd_state "$id")" = queued ] || snd_fail "scheduled message not held: $(snd_state "$id")"
snd_sql "UPDATE outbound_messages SET state = 'canceled' WHERE id = '$id2'" >/dev/null
snd_wait_state "$id" sent 5
ts=$(sandbox_requests whatsapp | jq --arg o "$id" '[.[] | select(.json.biz_opaque_callback_data == $o)][0].ts_ms')
[ "$ts" -ge "$due_ms" ] || snd_fail "sent $((due_ms - ts)) ms early"
[ "$ts" -le $((due_ms + 1000)) ] || snd_fail "released $((ts - due_ms)) ms late"
sleep 0.3
[ "$(snd_count whatsapp "$id2")" = 0 ] && [ "$(snd_state "$id2")" = canceled ] || snd_fail "canceled sent"
echo "scheduled ok (released $((ts - due_ms)) ms after its time)"

grep -q "$SND_WA_TOKEN\|$SND_TW_TOKEN\|$SND_TG_TOKEN\|4915112345678" "$dir/sender.log" &&
    snd_fail "a secret or a raw phone number in the log"
snd_stop
echo ok
