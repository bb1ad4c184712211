#!/usr/bin/env bash
# The provider sandbox (tests/sandbox) keeps its contract, driven with curl:
# each provider's auth failure has that provider's status and error body;
# scripted LLM replies and tool calls come back in OpenAI's shape; faults
# fire exactly `count` times and 429 carries Retry-After; records are
# complete; delayed answers stay in flight; the SMTP sink records a message
# sent by curl; emit signs webhooks so that openssl recomputes the same
# signatures. Needs node, curl, jq, openssl; no Redis or Postgres.
set -euo pipefail
: "${TN_SRC_DIR:?run through scripts/test}"

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d /tmp/tern-sandbox.XXXXXX)
ingest_pid=
# shellcheck source=/dev/null
. "$TN_SRC_DIR/tests/sandbox/client.sh"
cleanup() {
    sandbox_stop
    [ -n "$ingest_pid" ] && kill "$ingest_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# A stand-in for tern-ingest: answers 200 with what it received.
cat >"$tmp/ingest.mjs" <<'EOF'
import http from 'node:http';
import { writeFileSync, renameSync } from 'node:fs';
const s = http.createServer((req, res) => {
    const c = [];
    req.on('data', (d) => c.push(d));
    req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(c).toString() }));
    });
});
s.listen(0, '127.0.0.1', () => {
    writeFileSync(process.argv[2] + '.tmp', String(s.address().port));
    renameSync(process.argv[2] + '.tmp', process.argv[2]);
});
process.on('SIGTERM', () => process.exit(0));
EOF
node "$tmp/ingest.mjs" "$tmp/ingest.port" &
ingest_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/ingest.port" ] && break; sleep 0.05; done
ingest="http://127.0.0.1:$(cat "$tmp/ingest.port")"

sandbox_start "$tmp" --smtp --ingest-url "$ingest" || fail "sandbox did not start"
U=$SANDBOX_URL
grep -q "\"event\":\"sandbox.listening\",\"port\":$SANDBOX_PORT" "$tmp/sandbox.log" || fail "listening line"
[ -n "${SANDBOX_SMTP_PORT:-}" ] || fail "no SMTP port"

# call METHOD URL [curl args...] - sets $code, $out (body) and $hdr (headers file)
hdr="$tmp/headers"
call() {
    local m="$1" url="$2"
    shift 2
    out=$(curl -sS -X "$m" -D "$hdr" -o - -w '\n%{http_code}' "$url" "$@")
    code=${out##*$'\n'}
    out=${out%$'\n'*}
}
expect() { [ "$code" = "$1" ] || fail "$2: HTTP $code, want $1: $out"; }
jqe() { jq -e "$1" >/dev/null <<<"$out" || fail "$2: $out"; }
J=(-H 'Content-Type: application/json')

## OpenAI-compatible
OA="$U/openai/v1/chat/completions"
msgs='"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Hello, I would like to book a haircut on Friday afternoon, is there any slot?"}]'
call POST "$OA" "${J[@]}" -d "{\"model\":\"m\",$msgs}"
expect 401 "openai without key"
jqe '.error.type == "invalid_request_error" and (.error.message|length) > 0 and has("error") and (.error|has("param") and has("code"))' "openai 401 shape"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{$msgs}"
expect 400 "openai without model"
jqe '.error.type == "invalid_request_error"' "openai 400 shape"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d '{"model":"m"}'
expect 400 "openai without messages"
jqe '.error.param == "messages"' "missing messages param"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' \
    -d '{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"{}"}]}'
expect 400 "orphan tool message"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
expect 200 "openai default reply"
jqe '.object == "chat.completion" and (.id|startswith("chatcmpl-")) and (.created|type) == "number" and .model == "m"
     and .choices[0].index == 0 and .choices[0].message.role == "assistant" and .choices[0].finish_reason == "stop"
     and .choices[0].message.content == "Sandbox reply: Hello, I would like to book a haircut on Friday afternoon, i"
     and (.usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens)' "openai default shape"

sandbox_script openai '[{"reply":"Tuesday 10:00 works."},
  {"tool_calls":[{"name":"update_lead","arguments":{"name":"Ana","service":"haircut"}},{"name":"find_slots","arguments":{"day":"2026-05-08"}}]},
  {"status":503}]'
tooldefs='"tools":[{"type":"function","function":{"name":"update_lead","parameters":{"type":"object"}}},{"type":"function","function":{"name":"find_slots"}}]'
tools="$tooldefs"',"tool_choice":"auto"'
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs,$tools}"
expect 200 "scripted reply"
jqe '.choices[0].message.content == "Tuesday 10:00 works." and .choices[0].finish_reason == "stop"' "scripted reply"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs,$tools}"
expect 200 "scripted tool calls"
jqe '.choices[0].finish_reason == "tool_calls" and .choices[0].message.content == null
     and (.choices[0].message.tool_calls|length) == 2
     and (.choices[0].message.tool_calls[0]|.type == "function" and (.id|startswith("call_")) and .function.name == "update_lead")
     and (.choices[0].message.tool_calls[0].function.arguments|type) == "string"
     and (.choices[0].message.tool_calls[0].function.arguments|fromjson) == {"name":"Ana","service":"haircut"}
     and (.choices[0].message.tool_calls[1].function.arguments|fromjson).day == "2026-05-08"' "tool call shape"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
expect 503 "scripted 503"
jqe '.error.type == "server_error"' "scripted 503 body"
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}},$tooldefs}"
expect 400 "tool_choice naming an unknown function"

# Faults fire exactly `count` times; 429 carries Retry-After.
sandbox_fault '{"provider":"openai","status":500,"count":2}'
for i in 1 2; do
    call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
    expect 500 "openai fault $i"
done
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
expect 200 "openai after the fault"
sandbox_fault '{"provider":"openai","status":429,"retry_after":7}'
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
expect 429 "openai 429"
grep -qi '^retry-after: 7' "$hdr" || fail "openai 429 without Retry-After: $(cat "$hdr")"
jqe '.error.code == "rate_limit_exceeded"' "openai 429 body"

# Transcriptions: multipart with file and model.
head -c 300 /dev/urandom >"$tmp/voice.ogg"
TR="$U/openai/v1/audio/transcriptions"
call POST "$TR" -H 'Authorization: Bearer sk-test' -F "file=@$tmp/voice.ogg" -F model=whisper-1
expect 200 "transcription"
jqe '. == {"text":"sandbox transcript"}' "default transcript"
sandbox_script openai-transcribe '[{"text":"quero marcar sexta"}]'
call POST "$TR" -H 'Authorization: Bearer sk-test' -F "file=@$tmp/voice.ogg" -F model=whisper-1
jqe '.text == "quero marcar sexta"' "scripted transcript"
call POST "$TR" -H 'Authorization: Bearer sk-test' -F model=whisper-1
expect 400 "transcription without file"
out=$(sandbox_requests openai-transcribe)
jqe 'length == 3 and .[0].json.model == "whisper-1" and .[0].json.file.size == 300 and .[0].json.file.filename == "voice.ogg"' "transcription record"

## WhatsApp Cloud
WA="$U/whatsapp/v21.0/106540352242922/messages"
text='{"messaging_product":"whatsapp","recipient_type":"individual","to":"+16505551234","type":"text","text":{"preview_url":false,"body":"Hi! Tue 10:00?"}}'
call POST "$WA" "${J[@]}" -d "$text"
expect 401 "whatsapp without token"
jqe '.error.code == 190 and .error.type == "OAuthException" and (.error.message|length) > 0 and (.error.fbtrace_id|length) > 0' "graph 401 shape"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
expect 200 "whatsapp text"
jqe '.messaging_product == "whatsapp" and .contacts == [{"input":"+16505551234","wa_id":"16505551234"}]
     and (.messages|length) == 1 and (.messages[0].id|startswith("wamid."))' "whatsapp send shape"
wamid1=$(jq -r '.messages[0].id' <<<"$out")
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
[ "$(jq -r '.messages[0].id' <<<"$out")" != "$wamid1" ] || fail "wamid not unique"
call POST "$U/whatsapp/v23.0/1/messages" "${J[@]}" -H 'Authorization: Bearer wa-token' \
    -d '{"messaging_product":"whatsapp","status":"read","message_id":"wamid.in1","typing_indicator":{"type":"text"}}'
expect 200 "mark as read"
jqe '. == {"success":true}' "mark as read answer"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d '{"to":"1","type":"text","text":{"body":"x"}}'
expect 400 "no messaging_product"
jqe '.error.code == 100 and .error.type == "OAuthException"' "graph 400 shape"
four='{"type":"reply","reply":{"id":"a","title":"A"}}'
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' \
    -d "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"Pick\"},\"action\":{\"buttons\":[$four,$four,$four,$four]}}}"
expect 400 "four buttons"
jqe '.error.code == 131009' "four buttons code"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' \
    -d '{"messaging_product":"whatsapp","to":"16505551234","type":"template","template":{"name":"booking_followup","language":{"code":"en_US"}}}'
expect 200 "template"
sandbox_fault '{"provider":"whatsapp","code":131047}'
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
expect 400 "re-engagement fault"
jqe '.error.code == 131047 and .error.error_data.messaging_product == "whatsapp" and (.error.error_data.details|length) > 0' "131047 body"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
expect 200 "after the 131047 fault"
sandbox_config '{"whatsapp_tokens":["good-token"]}'
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
expect 401 "unregistered whatsapp token"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer good-token' -d "$text"
expect 200 "registered whatsapp token"
# Media: the default payload, then a registered one; sha256 and size match.
call GET "$U/whatsapp/v21.0/777" -H 'Authorization: Bearer good-token'
expect 200 "media url"
jqe '.id == "777" and .messaging_product == "whatsapp" and .mime_type == "audio/ogg" and (.file_size|type) == "string"' "media shape"
murl=$(jq -r .url <<<"$out")
sha=$(jq -r .sha256 <<<"$out")
size=$(jq -r .file_size <<<"$out")
curl -sS -o "$tmp/m1" -H 'Authorization: Bearer good-token' "$murl"
[ "$(sha256sum <"$tmp/m1" | cut -d' ' -f1)" = "$sha" ] || fail "media sha256"
[ "$(stat -c %s "$tmp/m1")" = "$size" ] || fail "media size"
head -c 4 "$tmp/m1" | grep -q OggS || fail "default media is not OGG-like"
sandbox_post media '{"id":"img1","mime_type":"image/jpeg","text":"JPEGDATA"}' >/dev/null
call GET "$U/whatsapp/v21.0/img1" -H 'Authorization: Bearer good-token'
jqe '.mime_type == "image/jpeg" and .file_size == "8"' "registered media"
[ "$(curl -sS -H 'Authorization: Bearer good-token' "$(jq -r .url <<<"$out")")" = JPEGDATA ] || fail "registered media bytes"

## Twilio
AC=AC0123456789abcdef0123456789abcdef
TW="$U/twilio/2010-04-01/Accounts/$AC/Messages.json"
form=(--data-urlencode 'To=+15557654321' --data-urlencode 'From=+15551234567' --data-urlencode 'Body=Your slot is Tue 10:00'
    --data-urlencode 'StatusCallback=http://127.0.0.1:9/status')
call POST "$TW" "${form[@]}"
expect 401 "twilio without auth"
jqe '.code == 20003 and .message == "Authenticate" and .status == 401 and (.more_info|length) > 0' "twilio 401 shape"
call POST "$TW" -u "$AC:tok" "${form[@]}"
expect 201 "twilio create"
# shellcheck disable=SC2016 # jq text, not shell
jqe '(.sid|test("^SM[0-9a-f]{32}$")) and .status == "queued" and .account_sid == "'"$AC"'" and .to == "+15557654321"
     and .from == "+15551234567" and .body == "Your slot is Tue 10:00" and .direction == "outbound-api"
     and .api_version == "2010-04-01" and .num_segments == "1" and .error_code == null
     and (.sid as $s | .uri|endswith($s + ".json")) and (.date_created|test("^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "))' "twilio message shape"
sid=$(jq -r .sid <<<"$out")
call GET "$U/twilio/2010-04-01/Accounts/$AC/Messages/$sid.json" -u "$AC:tok"
expect 200 "twilio fetch"
call POST "$TW" -u "$AC:tok" -d To=12 -d From=+15551234567 -d Body=x
expect 400 "twilio invalid To"
jqe '.code == 21211 and .status == 400' "21211 body"
call POST "$TW" -u "$AC:tok" --data-urlencode To=+15557654321 --data-urlencode MessagingServiceSid=MG0123456789abcdef0123456789abcdef \
    -d ContentSid=HX0123456789abcdef0123456789abcdef --data-urlencode 'ContentVariables={"1":"Ana"}'
expect 201 "twilio content template"
jqe '.status == "accepted" and .messaging_service_sid == "MG0123456789abcdef0123456789abcdef"' "messaging service answer"
sandbox_fault '{"provider":"twilio","code":21610,"count":1}'
call POST "$TW" -u "$AC:tok" "${form[@]}"
expect 400 "21610 fault"
jqe '.code == 21610 and (.more_info|endswith("21610"))' "21610 body"
sandbox_fault '{"provider":"twilio","status":429,"retry_after":3}'
call POST "$TW" -u "$AC:tok" "${form[@]}"
expect 429 "twilio 429"
grep -qi '^retry-after: 3' "$hdr" || fail "twilio 429 without Retry-After"
jqe '.code == 20429' "20429 body"
sandbox_config "{\"twilio_accounts\":{\"$AC\":\"right\"}}"
call POST "$TW" -u "$AC:wrong" "${form[@]}"
expect 401 "twilio wrong token"
call POST "$TW" -u "$AC:right" "${form[@]}"
expect 201 "twilio right token"
out=$(sandbox_requests twilio)
jqe '.[-1].json.To == "+15557654321" and .[-1].json.StatusCallback == "http://127.0.0.1:9/status"
     and .[-1].method == "POST" and (.[-1].headers.authorization|startswith("Basic "))' "twilio record"

## Telegram
TG="$U/telegram/bot123456:ABC-def_ghi"
call POST "$TG/sendMessage" "${J[@]}" -d '{"chat_id":987654321012,"text":"Hi Ana","reply_parameters":{"message_id":42}}'
expect 200 "telegram sendMessage"
jqe '.ok == true and .result.chat.id == 987654321012 and .result.text == "Hi Ana" and (.result.message_id|type) == "number"
     and .result.from.is_bot == true and (.result.date|type) == "number"' "telegram message"
call POST "$TG/sendMessage" -d chat_id=5 --data-urlencode 'text=form works'
jqe '.ok and .result.text == "form works" and .result.chat.id == 5' "telegram form"
call POST "$TG/sendMessage" "${J[@]}" -d '{"chat_id":5}'
expect 400 "telegram without text"
jqe '.ok == false and .error_code == 400 and (.description|startswith("Bad Request"))' "telegram 400 shape"
sandbox_fault '{"provider":"telegram","status":429,"retry_after":3,"count":1}'
call POST "$TG/sendMessage" "${J[@]}" -d '{"chat_id":5,"text":"x"}'
expect 429 "telegram 429"
jqe '. == {"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}' "telegram 429 body"
call POST "$TG/sendMessage" "${J[@]}" -d '{"chat_id":5,"text":"x"}'
expect 200 "telegram after the fault"
call GET "$TG/getFile?file_id=VOICE1"
jqe '.ok and .result.file_id == "VOICE1" and (.result.file_path|length) > 0' "getFile"
curl -sS -o "$tmp/tgf" "$U/telegram/file/bot123456:ABC-def_ghi/$(jq -r .result.file_path <<<"$out")"
head -c 4 "$tmp/tgf" | grep -q OggS || fail "telegram file download"
sandbox_config '{"telegram_tokens":["1:good"]}'
call POST "$TG/sendMessage" "${J[@]}" -d '{"chat_id":5,"text":"x"}'
expect 401 "unregistered telegram token"
jqe '. == {"ok":false,"error_code":401,"description":"Unauthorized"}' "telegram 401 body"

## Gmail
GM="$U/gmail/gmail/v1/users/me/messages/send"
raw=$(printf 'From: shop@example.com\r\nTo: lead@example.org\r\nSubject: Your booking\r\nMessage-ID: <b1@tern>\r\n\r\nSee you Tuesday.\r\n' |
    base64 -w0 | tr '+/' '-_' | tr -d '=')
call POST "$GM" "${J[@]}" -d "{\"raw\":\"$raw\"}"
expect 401 "gmail without token"
jqe '.error.code == 401 and .error.status == "UNAUTHENTICATED" and (.error.errors|length) == 1' "google 401 shape"
call POST "$GM" "${J[@]}" -H 'Authorization: Bearer ya29.x' -d "{\"raw\":\"$raw\",\"threadId\":\"t1\"}"
expect 200 "gmail send"
jqe '(.id|length) > 0 and .threadId == "t1" and .labelIds == ["SENT"]' "gmail answer"
call POST "$GM" "${J[@]}" -H 'Authorization: Bearer ya29.x' -d '{}'
expect 400 "gmail without raw"
out=$(sandbox_requests gmail)
jqe '.[1].decoded | contains("Subject: Your booking") and contains("See you Tuesday.")' "gmail decoded record"

## Records
out=$(sandbox_requests "")
jqe 'length > 40 and ([.[].seq] == ([.[].seq]|sort)) and .[0].seq == 1
     and all(.[]; has("seq") and has("provider") and has("method") and has("path") and has("query")
                  and has("headers") and has("body") and has("json") and has("ts_ms"))
     and all(.[]; .headers|keys|all(. == ascii_downcase))' "record fields"
last=$(jq '.[-1].seq' <<<"$out")
out=$(sandbox_requests "" "$((last - 2))")
jqe 'length == 2' "since filter"
out=$(sandbox_requests whatsapp)
jqe '.[1].json.text.body == "Hi! Tue 10:00?" and .[1].path == "/whatsapp/v21.0/106540352242922/messages"
     and .[1].headers.authorization == "Bearer wa-token"' "whatsapp record"
out=$(sandbox_requests telegram)
jqe 'any(.[]; .method == "GET" and .query.file_id == "VOICE1")' "query recorded"
! grep -q 'ABC-def_ghi\|sk-test\|wa-token' "$tmp/sandbox.log" || fail "a secret reached the log"

## In flight, latency, hang, stats, reset
sandbox_config '{"provider":"openai","latency_ms":1500}'
pids=()
for _ in 1 2 3; do
    curl -sS -o /dev/null "$OA" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}" &
    pids+=($!)
done
for _ in $(seq 1 12); do # the three answers are due 1.5 s after they arrived
    out=$(curl -sS "$U/_sandbox/stats")
    jq -e '.in_flight == 3' >/dev/null <<<"$out" && break
    sleep 0.1
done
jqe '.in_flight == 3 and .in_flight_by_provider.openai == 3 and .requests.whatsapp > 5' "stats while in flight"
wait "${pids[@]}"
out=$(curl -sS "$U/_sandbox/stats")
jqe '.in_flight == 0' "stats after"
sandbox_config '{"provider":"openai","latency_ms":0}'
sandbox_script openai '[{"hang":true},{"reply":"late","delay_ms":300}]'
rc=0
curl -sS -o /dev/null --max-time 1 "$OA" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}" 2>/dev/null || rc=$?
[ "$rc" = 28 ] || fail "hang: curl exit $rc"
start=$(date +%s%N)
call POST "$OA" "${J[@]}" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}"
[ $(( ($(date +%s%N) - start) / 1000000 )) -ge 290 ] || fail "delay_ms not applied"
jqe '.choices[0].message.content == "late"' "delayed reply"
# Many delayed answers at once: 400 concurrent requests held 0.5 s each.
sandbox_config '{"provider":"openai","latency_ms":500}'
node --input-type=module - "$OA" <<'EOF' || fail "concurrent requests"
import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
const one = () => new Promise((ok, ko) => {
    const r = http.request(process.argv[2], { method: 'POST', agent, headers: { authorization: 'Bearer k',
        'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => ok(res.statusCode)); });
    r.on('error', ko);
    r.end(body);
});
const t = Date.now();
const codes = await Promise.all(Array.from({ length: 400 }, one));
const ms = Date.now() - t;
if (codes.some((c) => c !== 200) || ms < 500 || ms > 8000) { console.error('codes/ms', ms); process.exit(1); }
agent.destroy();
EOF
sandbox_config '{"provider":"openai","latency_ms":0}'
sandbox_reset
out=$(sandbox_requests "")
jqe 'length == 0' "reset clears records"
call POST "$WA" "${J[@]}" -H 'Authorization: Bearer wa-token' -d "$text"
expect 200 "reset clears whatsapp_tokens"

## SMTP sink
printf 'From: shop@example.com\r\nTo: lead@example.org\r\nSubject: Reminder\r\n\r\nTomorrow 10:00.\r\n.leading dot\r\n' >"$tmp/mail.txt"
curl -sS --url "smtp://127.0.0.1:$SANDBOX_SMTP_PORT" --user 'shop:pw' --mail-from shop@example.com \
    --mail-rcpt lead@example.org --mail-rcpt cc@example.org --upload-file "$tmp/mail.txt" || fail "curl smtp"
out=$(sandbox_requests smtp)
jqe 'length == 1 and .[0].json.mail_from == "shop@example.com" and .[0].json.rcpt_to == ["lead@example.org","cc@example.org"]
     and .[0].json.auth_user == "shop" and .[0].headers.subject == "Reminder"
     and (.[0].body|contains("Tomorrow 10:00.\r\n.leading dot"))' "smtp record"
sandbox_fault '{"provider":"smtp","code":550}'
rc=0
curl -sS --url "smtp://127.0.0.1:$SANDBOX_SMTP_PORT" --mail-from a@x --mail-rcpt b@y --upload-file "$tmp/mail.txt" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "smtp fault not reported"

## emit: signed webhooks reach ingest; openssl recomputes the signatures.
payload='{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"16505551234","id":"wamid.X","timestamp":"1749416383","type":"text","text":{"body":"Olá 👋"}}]}}]}]}'
out=$(sandbox_emit "{\"provider\":\"whatsapp\",\"path\":\"/webhooks/whatsapp\",\"secret\":\"app-secret\",\"payload\":$payload}")
jqe '.status == 200' "whatsapp emit status"
got=$(jq -r .body <<<"$out")
[ "$(jq -r .url <<<"$got")" = /webhooks/whatsapp ] || fail "emit path: $got"
wbody=$(jq -j .body <<<"$got")
want="sha256=$(printf '%s' "$wbody" | openssl dgst -sha256 -hmac app-secret -r | cut -d' ' -f1)"
[ "$(jq -r '.headers["x-hub-signature-256"]' <<<"$got")" = "$want" ] || fail "whatsapp signature: $got"
jq -e '.entry[0].changes[0].value.messages[0].text.body == "Olá 👋"' <<<"$wbody" >/dev/null || fail "whatsapp emit body"

public="https://mycompany.example/webhooks/twilio/sms?tenant=7"
out=$(sandbox_emit "{\"provider\":\"twilio\",\"path\":\"/webhooks/twilio/sms?tenant=7\",\"secret\":\"12345\",\"url\":\"$public\",
  \"form\":{\"AccountSid\":\"AC00000000000000000000000000000000\",\"Body\":\"Hi there\",\"From\":\"+15551234567\",
  \"MessageSid\":\"SM0123456789abcdef0123456789abcdef\",\"NumMedia\":\"0\",\"To\":\"+15557654321\"}}")
jqe '.status == 200' "twilio emit status"
got=$(jq -r .body <<<"$out")
# The known-answer vector from Twilio's SDK (see the README).
[ "$(jq -r '.headers["x-twilio-signature"]' <<<"$got")" = 'ILvKC3e8/IckH4v434XbFVUrGiE=' ] || fail "twilio signature: $got"
sig=$(printf '%s' "${public}AccountSidAC00000000000000000000000000000000BodyHi thereFrom+15551234567MessageSidSM0123456789abcdef0123456789abcdefNumMedia0To+15557654321" |
    openssl dgst -sha1 -hmac 12345 -binary | base64)
[ "$sig" = 'ILvKC3e8/IckH4v434XbFVUrGiE=' ] || fail "openssl twilio recomputation"
[ "$(jq -r .url <<<"$got")" = "/webhooks/twilio/sms?tenant=7" ] || fail "twilio emit url"
[ "$(jq -r '.headers["content-type"]' <<<"$got")" = application/x-www-form-urlencoded ] || fail "twilio content type"
jq -r .body <<<"$got" | grep -q '^AccountSid=AC0*&Body=Hi+there&' || fail "twilio form body: $got"

out=$(sandbox_emit '{"provider":"telegram","path":"/webhooks/telegram/x","secret":"s3cr3t_-","payload":{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":5,"type":"private"},"text":"hi"}}}')
got=$(jq -r .body <<<"$out")
[ "$(jq -r '.headers["x-telegram-bot-api-secret-token"]' <<<"$got")" = s3cr3t_- ] || fail "telegram secret header"
jq -e '.update_id == 1' <<<"$(jq -r .body <<<"$got")" >/dev/null || fail "telegram emit body"

## Shutdown: SIGTERM ends it cleanly even with a hanging request open.
sandbox_script openai '[{"hang":true}]'
curl -sS -o /dev/null "$OA" -H 'Authorization: Bearer sk-test' -d "{\"model\":\"m\",$msgs}" 2>/dev/null &
curl_pid=$!
sleep 0.3
pid=$SANDBOX_PID
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
unset SANDBOX_PID
[ "$rc" = 0 ] || fail "sandbox exit status $rc after SIGTERM"
wait "$curl_pid" 2>/dev/null || true
echo "ok"
