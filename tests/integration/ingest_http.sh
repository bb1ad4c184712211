#!/usr/bin/env bash
# ingest_http.sh - tern-ingest over HTTP against real Redis and Postgres.
#
# Signed WhatsApp, Twilio and Telegram webhooks become schema-valid entries
# on tern:in / tern:status exactly once (a redelivery adds nothing); the
# WhatsApp challenge answers only its verify token; and every bad input
# gets its documented status and enqueues nothing: tampered or missing
# signatures 401, malformed bodies 400, wrong content types 415, unknown
# channels and paths 404, wrong methods 405, oversized bodies 413 and
# headers 431, a slow client 408.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/ingest_http.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
fx="$TN_SRC_DIR/tests/fixtures"
ipid=""
trap 'kill -9 $ipid 2>/dev/null; rm -rf "$dir"' EXIT

ingest_setup_tenant || { echo "FAIL: setup" >&2; exit 1; }
ingest_start TN_INGEST_MAX_BODY=65536 TN_INGEST_MAX_HEADER=8192 TN_INGEST_READ_TIMEOUT=1s || exit 1

# every message id is unique to this run: the dedupe keys are global
run=$(openssl rand -hex 4)
sed -e "s/106540352242922/$wa_pnid/" -e "s/wamid\.HBgL/wamid.$run/" "$fx/whatsapp/text.json" >"$dir/wa_text.json"
sed -e "s/106540352242922/$wa_pnid/" -e "s/\"id\": \"wamid\./\"id\": \"wamid.$run/" \
    "$fx/whatsapp/statuses_failed.json" >"$dir/wa_status.json"
wa="$base/webhooks/whatsapp"
in0=$(tenant_entries tern:in) st0=$(tenant_entries tern:status)

# --- WhatsApp verification challenge
code=$(curl -s -o "$dir/resp" -w '%{http_code}' "$wa?hub.mode=subscribe&hub.verify_token=$wa_verify&hub.challenge=1158201444")
want 200 "$code" "challenge with the right token"
[ "$(cat "$dir/resp")" = 1158201444 ] && ok || bad "challenge body: $(cat "$dir/resp")"
code=$(curl -s -o "$dir/resp" -w '%{http_code}' "$wa?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
want 403 "$code" "challenge with a wrong token"

# --- WhatsApp messages: accepted once, redelivery deduplicated
want 200 "$(post "$wa" "$dir/wa_text.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa_text.json")")" "whatsapp text"
want 200 "$(post "$wa" "$dir/wa_text.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa_text.json")")" "whatsapp redelivery"
[ "$(tenant_entries tern:in)" = $((in0 + 1)) ] && ok || bad "whatsapp: want exactly one tern:in entry, have $(( $(tenant_entries tern:in) - in0 ))"
want 200 "$(post "$wa" "$dir/wa_status.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa_status.json")")" "whatsapp status"
[ "$(tenant_entries tern:status)" -gt "$st0" ] && ok || bad "whatsapp status not on tern:status"

# --- bad input: documented status, nothing enqueued
in1=$(tenant_entries tern:in) st1=$(tenant_entries tern:status)
sed -e "s/wamid\.$run/wamid.x$run/" "$dir/wa_text.json" >"$dir/wa_new.json"
sig=$(wa_sig "$dir/wa_new.json")
tampered="sha256=$(printf '%064d' 0)"
want 401 "$(post "$wa" "$dir/wa_new.json" application/json "X-Hub-Signature-256: $tampered")" "tampered signature"
want 401 "$(post "$wa" "$dir/wa_new.json" application/json)" "missing signature"
sed -e 's/Does it come/Does it kome/' "$dir/wa_new.json" >"$dir/wa_edit.json"
want 401 "$(post "$wa" "$dir/wa_edit.json" application/json "X-Hub-Signature-256: $sig")" "body changed after signing"
head -c 300 "$dir/wa_new.json" >"$dir/wa_trunc.json"
want 400 "$(post "$wa" "$dir/wa_trunc.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa_trunc.json")")" "truncated (signed) body"
want 415 "$(post "$wa" "$dir/wa_new.json" text/plain "X-Hub-Signature-256: $sig")" "wrong content type"
sed -e "s/$wa_pnid/1$wa_pnid/" "$dir/wa_new.json" >"$dir/wa_unknown.json"
want 404 "$(post "$wa" "$dir/wa_unknown.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa_unknown.json")")" "unknown phone_number_id"
head -c 70000 /dev/zero | tr '\0' 'a' >"$dir/big"
want 413 "$(post "$wa" "$dir/big" application/json "X-Hub-Signature-256: $sig")" "body over the limit"
want 431 "$(post "$wa" "$dir/wa_new.json" application/json "X-Hub-Signature-256: $sig" "X-Pad: $(head -c 9000 /dev/zero | tr '\0' 'p')")" "headers over the limit"
want 404 "$(post "$base/webhooks/nope" "$dir/wa_new.json" application/json)" "unknown path"
want 404 "$(post "$base/webhooks/twilio/" "$dir/wa_new.json" application/json)" "empty channel"
code=$(curl -s -o "$dir/resp" -D "$dir/hdr" -w '%{http_code}' -X PUT --data x "$wa")
want 405 "$code" "PUT on whatsapp"
grep -qi '^Allow: GET, POST' "$dir/hdr" && ok || bad "405 without Allow"
code=$(curl -s -o "$dir/resp" -w '%{http_code}' "$base/webhooks/telegram/$tg_ch")
want 405 "$code" "GET on telegram"
# slow client: half a request, then silence past the read timeout
start=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/$iport"
printf 'POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"obj' >&3
IFS= read -r -t 5 resp <&3
exec 3<&-
resp=${resp%$'\r'}
ms=$(( ($(date +%s%N) - start) / 1000000 ))
case "$resp" in *" 408 "*) ok ;; *) bad "slow client: '$resp'" ;; esac
[ "$ms" -lt 4500 ] && ok || bad "slow client held ${ms} ms"
[ "$(tenant_entries tern:in)" = "$in1" ] && ok || bad "bad input enqueued on tern:in"
[ "$(tenant_entries tern:status)" = "$st1" ] && ok || bad "bad input enqueued on tern:status"

# --- Twilio: inbound SMS, status callback, tampering
tw="$base/webhooks/twilio/$tw_ch"
sed -e "s/AC00000000000000000000000000000000/$tw_sid/" -e "s/SM11111111/SM$run/g" \
    "$fx/twilio/sms_inbound.txt" >"$dir/tw_in.txt"
sed -e "s/AC00000000000000000000000000000000/$tw_sid/" -e "s/SM77777777/SM$run/g" \
    "$fx/twilio/status_delivered.txt" >"$dir/tw_st.txt"
form=application/x-www-form-urlencoded
pub="https://hooks.example.test/webhooks/twilio/$tw_ch"
want 200 "$(post "$tw" "$dir/tw_in.txt" $form "X-Twilio-Signature: $(tw_sig "$pub" "$dir/tw_in.txt")")" "twilio inbound"
grep -q '<Response' "$dir/resp" && ok || bad "twilio answer is not TwiML: $(cat "$dir/resp")"
want 200 "$(post "$tw" "$dir/tw_in.txt" $form "X-Twilio-Signature: $(tw_sig "$pub" "$dir/tw_in.txt")")" "twilio redelivery"
[ "$(tenant_entries tern:in)" = $((in1 + 1)) ] && ok || bad "twilio: want one new entry"
want 200 "$(post "$tw" "$dir/tw_st.txt" $form "X-Twilio-Signature: $(tw_sig "$pub" "$dir/tw_st.txt")")" "twilio status"
[ "$(tenant_entries tern:status)" = $((st1 + 1)) ] && ok || bad "twilio status not on tern:status"
want 401 "$(post "$tw" "$dir/tw_in.txt" $form "X-Twilio-Signature: $(tw_sig "$pub?x=1" "$dir/tw_in.txt")")" "twilio signature over another URL"
want 404 "$(post "$base/webhooks/twilio/00000000-0000-4000-8000-000000000000" "$dir/tw_in.txt" $form "X-Twilio-Signature: x")" "twilio unknown channel"

# --- Telegram: secret token, update_id dedupe
tg="$base/webhooks/telegram/$tg_ch"
sed -e "s/812345678/8$RANDOM$RANDOM/" "$fx/telegram/text.json" >"$dir/tg.json"
want 200 "$(post "$tg" "$dir/tg.json" application/json "X-Telegram-Bot-Api-Secret-Token: $tg_secret")" "telegram text"
want 200 "$(post "$tg" "$dir/tg.json" application/json "X-Telegram-Bot-Api-Secret-Token: $tg_secret")" "telegram redelivery"
want 401 "$(post "$tg" "$dir/tg.json" application/json "X-Telegram-Bot-Api-Secret-Token: wrong")" "telegram wrong secret"
want 401 "$(post "$tg" "$dir/tg.json" application/json)" "telegram no secret"
[ "$(tenant_entries tern:in)" = $((in1 + 2)) ] && ok || bad "telegram: want one new entry"

# --- every entry this tenant produced matches its schema in proto/streams
{ dump_entries tern:in; dump_entries tern:status; } >"$dir/entries.jsonl"
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/entries.jsonl" >"$dir/validate.out" 2>&1 \
    && ok || bad "entries fail their schemas: $(head -5 "$dir/validate.out")"
# no phone numbers or secrets in the daemon's log
grep -q -e 16505551234 -e "$wa_secret" -e "$tw_token" -e "$tg_secret" "$dir/ingest.log" \
    && bad "log leaks a phone number or secret" || ok
# metrics name the rejections
curl -s "http://127.0.0.1:$aport/metrics" >"$dir/metrics"
grep -q '^tern_ingest_rejected_total{provider="whatsapp",reason="signature' "$dir/metrics" && ok \
    || bad "no signature rejections in /metrics"
grep -q '^tern_ingest_requests_total{provider="telegram",code="200"} 2' "$dir/metrics" && ok \
    || bad "telegram 200 count in /metrics"

kill -TERM "$ipid"
wait "$ipid"
[ $? = 0 ] && ok || bad "tern-ingest did not exit 0 on SIGTERM"
echo "ingest_http: $pass passed, $fail failed"
[ "$fail" = 0 ]
