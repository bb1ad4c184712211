#!/usr/bin/env bash
# tern-sender email end to end against the sandbox: an email channel with
# an smtp_url goes through the sandbox's SMTP sink (AUTH, MAIL FROM the
# mailbox, RCPT TO the lead; From/To/Subject/Message-ID/In-Reply-To/
# References and the UTF-8 body right; the Message-ID is the provider id),
# one with an access_token through the sandbox's Gmail users.messages.send
# (Bearer token, raw decodes to the message, threadId of the lead's email,
# the Gmail id stored). Faults: an SMTP 5xx fails at once with its code, a
# 4xx is retried and then delivered once; Gmail 503 retries, 400 is final.
# No address, token or password reaches the log.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_email.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"
sandbox_stop # snd_setup's sandbox has no SMTP sink: the same one with it
sandbox_start "$dir" --smtp --quiet

n=$RANDOM$RANDOM
BOX="desk$n@clinic.example"
GBOX="owner$n@gmail.example"
SMTP_PW="pw-$(snd_uuid | tr -d -)"
GM_TOKEN="ya29.$(snd_uuid | tr -d -)"
LEAD="lead$n@example.org"
LEAD2="other$n@example.net"
GLEAD="glead$n@example.com"
sandbox_config "{\"gmail_tokens\":[\"$GM_TOKEN\"]}"
CH_SMTP=$(snd_channel email "$BOX" --secret smtp_url="smtp://127.0.0.1:$SANDBOX_SMTP_PORT" \
    --secret smtp_user="desk$n" --secret smtp_password="$SMTP_PW")
CH_GM=$(snd_channel email "$GBOX" --secret access_token="$GM_TOKEN")
CT_LEAD=$(snd_contact email "$LEAD" "$CH_SMTP")
CT_LEAD2=$(snd_contact email "$LEAD2" "$CH_SMTP")
CT_GLEAD=$(snd_contact email "$GLEAD" "$CH_GM")

# em_inbound CHANNEL CONTACT MESSAGE_ID RAW_JSON - the lead's email, stored as
# an email ingest would store it (provider_message_id = its Message-ID)
em_inbound() {
    local conv
    conv=$(snd_sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$T', '$2', '$1')
                    ON CONFLICT (tenant_id, channel_id, contact_id) DO UPDATE SET status = 'open' RETURNING id")
    snd_sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, provider_message_id, body, raw)
             VALUES ('$T', '$conv', '$1', 'in', '$3', 'hi', '$4'::jsonb)" >/dev/null
}

# em_out ID CHANNEL CONTACT TEXT [EXTRA_JSON] - an email outbound.message on tern:out
em_out() {
    local data
    data=$(jq -cn --arg t "$T" --arg c "$2" --arg id "$1" --arg ct "$3" --arg x "$4" \
        --argjson e "${5:-"{}"}" '{tenant:$t, channel:$c, provider:"email", outbound_id:$id,
        contact_id:$ct, to:"x", transport:"email", kind:"text", text:$x, reason:"reply",
        created_at:(now|todate)} + $e')
    snd_redis XADD tern:out '*' type outbound.message v 1 tenant "$T" \
        trace "00-$(snd_uuid | tr -d -)-0123456789abcdef-01" channel "$2" provider email \
        outbound "$1" dedupe "out:$1" data "$data" >/dev/null
}

# em_smtp ID - the sink's records of outbound ID (by its Message-ID)
em_smtp() {
    sandbox_requests smtp | jq -c --arg m "<tern.$1@$2>" '[.[] | select(.headers["message-id"] == $m)]'
}

# body_of TEXT - the decoded body of a base64 text/plain message
body_of() { printf '%s' "$1" | awk 'b {print} /^\r?$/ {b=1}' | tr -d '\r\n' | base64 -d; }

snd_start TN_GMAIL_API_BASE="$SANDBOX_URL/gmail"

# --- SMTP: a reply to the lead's last email, threaded
em_inbound "$CH_SMTP" "$CT_LEAD" "<abc.$n@mail.example.org>" \
    '{"subject":"Booking Friday?","references":"<first.'$n'@mail.example.org>"}'
id=$(snd_uuid)
em_out "$id" "$CH_SMTP" "$CT_LEAD" $'Hallo Sam,\nFreitag 10:00 passt. Grüße'
snd_wait_state "$id" sent 5
r=$(em_smtp "$id" clinic.example)
jq -e --arg box "$BOX" --arg lead "$LEAD" --arg u "desk$n" --arg n "$n" 'length == 1 and (.[0] |
    .json.auth_user == $u and .json.mail_from == $box and .json.rcpt_to == [$lead]
    and .json.rejected == null
    and .headers.from == "<\($box)>" and .headers.to == "<\($lead)>"
    and .headers.subject == "Re: Booking Friday?"
    and .headers["in-reply-to"] == "<abc.\($n)@mail.example.org>"
    and .headers.references == "<first.\($n)@mail.example.org> <abc.\($n)@mail.example.org>"
    and .headers["content-type"] == "text/plain; charset=UTF-8"
    and .headers["content-transfer-encoding"] == "base64" and .headers["mime-version"] == "1.0"
    and (.headers.date | test("^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} \\+0000$")))' \
    <<<"$r" >/dev/null || snd_fail "smtp shape: $r"
got=$(body_of "$(jq -r '.[0].body' <<<"$r")")
[ "$got" = $'Hallo Sam,\r\nFreitag 10:00 passt. Grüße' ] || snd_fail "smtp body: $got"
[ "$(snd_row "$id" provider_message_id)" = "<tern.$id@clinic.example>" ] ||
    snd_fail "smtp provider id: $(snd_row "$id" provider_message_id)"
echo "smtp reply ok"

# --- SMTP: the producer's subject (not ASCII: an encoded word) and in_reply_to
id=$(snd_uuid)
em_out "$id" "$CH_SMTP" "$CT_LEAD2" "Bis bald" \
    '{"subject":"Ihr Termin – Freitag","in_reply_to":"given.'$n'@mail.example.net"}'
snd_wait_state "$id" sent 5
r=$(em_smtp "$id" clinic.example)
jq -e --arg n "$n" 'length == 1 and (.[0].headers | .["in-reply-to"] == "<given.\($n)@mail.example.net>"
    and .references == "<given.\($n)@mail.example.net>" and (.subject | startswith("=?UTF-8?B?")))' \
    <<<"$r" >/dev/null || snd_fail "smtp subject/in_reply_to: $r"
subj=$(jq -r '.[0].headers.subject' <<<"$r" | sed -e 's/=?UTF-8?B?//g' -e 's/?=//g' | tr -d ' ')
[ "$(printf '%s' "$subj" | base64 -d)" = "Ihr Termin – Freitag" ] || snd_fail "subject: $subj"
echo "smtp subject ok"

# --- Gmail users.messages.send: Bearer, raw = the message, threadId of the lead's email
em_inbound "$CH_GM" "$CT_GLEAD" "<CAF$n@mail.gmail.com>" '{"subject":"Price?","thread_id":"18f2c0aa'$n'"}'
sandbox_script gmail "[{\"id\":\"gm-$n\"}]"
id=$(snd_uuid)
em_out "$id" "$CH_GM" "$CT_GLEAD" "It is 40 EUR."
snd_wait_state "$id" sent 5
r=$(sandbox_requests gmail | jq -c --arg m "<tern.$id@gmail.example>" '[.[] | select(.decoded // "" | contains($m))]')
jq -e --arg tok "Bearer $GM_TOKEN" --arg n "$n" 'length == 1 and (.[0] |
    .method == "POST" and .path == "/gmail/gmail/v1/users/me/messages/send"
    and .headers.authorization == $tok and .json.threadId == "18f2c0aa\($n)"
    and (.json.raw | test("^[A-Za-z0-9_-]+$")))' <<<"$r" >/dev/null || snd_fail "gmail shape: $r"
dec=$(jq -r '.[0].decoded' <<<"$r")
grep -q $'^From: <'"$GBOX"$'>\r$' <<<"$dec" && grep -q $'^To: <'"$GLEAD"$'>\r$' <<<"$dec" &&
    grep -q $'^Subject: Re: Price?\r$' <<<"$dec" && grep -q $'^In-Reply-To: <CAF'"$n"$'@mail.gmail.com>\r$' <<<"$dec" ||
    snd_fail "gmail raw: $dec"
[ "$(body_of "$dec")" = "It is 40 EUR." ] || snd_fail "gmail body"
[ "$(snd_row "$id" provider_message_id)" = "gm-$n" ] || snd_fail "gmail id not stored"
echo "gmail ok"

# --- faults: SMTP 5xx final at once, 4xx retried once; Gmail 503 retried, 400 final
sandbox_fault '{"provider":"smtp","code":554,"message":"5.7.1 Rejected"}'
id=$(snd_uuid)
em_out "$id" "$CH_SMTP" "$CT_LEAD" "no"
snd_wait_state "$id" failed 5
[ "$(snd_row "$id" "last_error_code || ' ' || attempts")" = "smtp_554 1" ] ||
    snd_fail "5xx: $(snd_row "$id" "last_error_code || ' ' || attempts")"
[ "$(em_smtp "$id" clinic.example | jq length)" = 1 ] || snd_fail "5xx retried"
sandbox_fault '{"provider":"smtp","code":451}'
id=$(snd_uuid)
em_out "$id" "$CH_SMTP" "$CT_LEAD" "later"
snd_wait_state "$id" sent 8
[ "$(snd_row "$id" attempts)" = 2 ] || snd_fail "4xx: attempts $(snd_row "$id" attempts)"
em_smtp "$id" clinic.example | jq -e 'length == 2 and .[0].json.rejected == 451 and .[1].json.rejected == null
    and .[0].headers["message-id"] == .[1].headers["message-id"]' >/dev/null || snd_fail "4xx records"
echo "smtp faults ok"
sandbox_fault '{"provider":"gmail","status":503}'
id=$(snd_uuid)
em_out "$id" "$CH_GM" "$CT_GLEAD" "retry me"
snd_wait_state "$id" sent 8
[ "$(snd_row "$id" attempts)" = 2 ] || snd_fail "gmail 503: attempts $(snd_row "$id" attempts)"
sandbox_fault '{"provider":"gmail","status":400}'
id=$(snd_uuid)
em_out "$id" "$CH_GM" "$CT_GLEAD" "refused"
snd_wait_state "$id" failed 5
[ "$(snd_row "$id" "last_error_code || ' ' || attempts")" = "http_400 1" ] || snd_fail "gmail 400"
echo "gmail faults ok"

for s in "$LEAD" "$LEAD2" "$GLEAD" "$SMTP_PW" "$GM_TOKEN"; do
    grep -qF "$s" "$dir/sender.log" && snd_fail "an address or a secret in the log"
done
snd_stop_checked
echo ok
