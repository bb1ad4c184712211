#!/usr/bin/env bash
# e2e_whatsapp.sh - a lead's WhatsApp message through the whole of Tern.
#
# The provider sandbox plays Meta and the LLM. A signed webhook (signed by
# the sandbox exactly as Meta signs) goes to tern-ingest; tern-agent answers
# with the scripted model text; tern-sender delivers it to the sandbox's
# WhatsApp Cloud API with the channel's token; Meta's "delivered" and "read"
# status webhooks come back through tern-ingest, and the outbound row ends
# "read". The conversation is in Postgres with both messages, and a
# redelivered webhook produces no second reply.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/e2e_whatsapp.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
declare -A dpid=()
ipid=""
trap ingest_cleanup EXIT
sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# row_is STATE - the outbound row is in STATE now (read again on every call)
row_is() { [ "$(row)" = "$1" ]; }

# --- a tenant whose WhatsApp number can receive (app secret) and send (token)
ingest_setup_wa_sender || { echo "FAIL: setup" >&2; exit 1; }

ingest_start || exit 1
sandbox_start "$dir" --quiet --ingest-url "$base"
echo sk-e2e >"$dir/llm.key"
start() { ingest_daemon "$@"; } # NAME VAR=VALUE... (tests/support/ingest.sh)
start agent TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
    TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
    TN_LLM_MODEL=e2e-model TN_AGENT_QUIET_MS=300 TN_AGENT_SCAN_MS=200
start sender TN_REDIS_URL="$TN_TEST_REDIS_URL_SENDER" TN_PG_DSN="$TN_TEST_PG_DSN_SENDER" \
    TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" TN_SUPPRESSION_KEY=e2e-key

reply="Hi Ana! We can send a plumber on Friday at 9:00. Shall I book it?"
sandbox_script openai "$(jq -n --arg r "$reply" '[{reply: $r}]')" >/dev/null

# --- the lead writes
run=$(openssl rand -hex 4)
sed -e "s/106540352242922/$wa_pnid/" -e "s/wamid\.HBgL/wamid.e2e$run/" \
    "$TN_SRC_DIR/tests/fixtures/whatsapp/text.json" >"$dir/in.json"
emit() { # FILE - the sandbox signs and posts it to tern-ingest; prints the status
    sandbox_emit "$(jq -n --arg s "$wa_secret" --slurpfile p "$1" \
        '{provider: "whatsapp", path: "/webhooks/whatsapp", secret: $s, payload: $p[0]}')" | jq -r .status
}
want 200 "$(emit "$dir/in.json")" "webhook accepted"

sent() { sandbox_requests whatsapp | jq -e --arg r "$reply" '[.[] | select(.json.text.body == $r)] | length >= 1' >/dev/null; }
until_ok 20 sent && ok || bad "no reply reached the WhatsApp API"
req=$(sandbox_requests whatsapp | jq -c --arg r "$reply" '[.[] | select(.json.text.body == $r)][0]')
[ "$(jq -r '.headers.authorization' <<<"$req")" = "Bearer $wa_token" ] && ok || bad "reply not sent with the channel's token"
[ "$(jq -r '.path' <<<"$req")" = "/whatsapp/v21.0/$wa_pnid/messages" ] || [[ "$(jq -r '.path' <<<"$req")" == /whatsapp/v*/"$wa_pnid"/messages ]] \
    && ok || bad "reply sent to $(jq -r .path <<<"$req")"
[[ "$(jq -r '.json.to' <<<"$req")" == *16505551234 ]] && ok || bad "reply to $(jq -r .json.to <<<"$req")"
prompt=$(sandbox_requests openai | jq -c '.[-1].json.messages')
grep -q "Lisbon Plumbing" <<<"$prompt" && ok || bad "prompt lacks the tenant's profile"
grep -q "16505551234" <<<"$prompt" && bad "raw phone number sent to the model" || ok

# --- a redelivered webhook: no second reply
want 200 "$(emit "$dir/in.json")" "redelivery accepted"
sleep 2
[ "$(sandbox_requests whatsapp | jq --arg r "$reply" '[.[] | select(.json.text.body == $r)] | length')" = 1 ] \
    && ok || bad "a redelivery produced a second reply"

# --- Meta reports delivered, then read, through tern-ingest
obid=$(jq -r '.json.biz_opaque_callback_data' <<<"$req")
row() { sql "SELECT state FROM outbound_messages WHERE tenant_id = '$tid' AND id::text = '$obid'"; }
until_ok 5 row_is sent && ok || bad "outbound row is '$(row)', want sent"
wamid=$(sql "SELECT provider_message_id FROM outbound_messages WHERE tenant_id = '$tid' AND id::text = '$obid'")
status_json() { # STATUS
    jq -n --arg pn "$wa_pnid" --arg id "$wamid" --arg st "$1" --arg ob "$obid" --arg ts "$(date +%s)" '{
      object: "whatsapp_business_account", entry: [{id: "1", changes: [{field: "messages", value: {
        messaging_product: "whatsapp",
        metadata: {display_phone_number: "15550783881", phone_number_id: $pn},
        statuses: [{id: $id, status: $st, timestamp: $ts, recipient_id: "16505551234",
                    biz_opaque_callback_data: $ob}]}}]}]}' >"$dir/st.json"
}
status_json delivered
want 200 "$(emit "$dir/st.json")" "delivered status accepted"
until_ok 5 row_is delivered && ok || bad "row is '$(row)' after delivered"
status_json read
want 200 "$(emit "$dir/st.json")" "read status accepted"
until_ok 5 row_is read && ok || bad "row is '$(row)' after read"

# --- the conversation is stored: the lead's message and our reply
n=$(sql "SELECT count(*) FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id
         AND c.id = m.conversation_id WHERE m.tenant_id = '$tid'")
[ "$n" -ge 2 ] && ok || bad "conversation holds $n messages, want the inbound and the reply"
for f in "$dir"/ingest.log "$dir"/agent.log "$dir"/sender.log; do
    grep -q -e 16505551234 -e "$wa_token" -e "$wa_secret" "$f" && bad "$(basename "$f") leaks a phone number or secret"
done
ok
echo "e2e_whatsapp: $pass passed, $fail failed"
[ "$fail" = 0 ]
