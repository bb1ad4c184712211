#!/usr/bin/env bash
# agent_mark_read.sh - TN_AGENT_MARK_READ: a lead's inbound WhatsApp message
# is marked read at WhatsApp (blue ticks) once Tern has stored it.
#
# tern-ingest, tern-agent and tern-sender against the provider sandbox (Meta
# and the LLM). With the switch on, the stored message yields one
# outbound.read entry on tern:out (valid against its schema) and exactly one
# read marker at the sandbox's WhatsApp Cloud API, with the channel's token,
# and the reply still goes out; a redelivered webhook and a redelivered
# tern:in entry mark nothing again. With the switch off (the default), a new
# message is answered and no read marker is made.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/agent_mark_read.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
declare -A dpid=()
ipid=""
trap ingest_cleanup EXIT
sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
rcli() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }

# --- a tenant whose WhatsApp number can receive (app secret) and send (token)
ingest_setup_wa_sender || { echo "FAIL: setup" >&2; exit 1; }

ingest_start || exit 1
sandbox_start "$dir" --quiet --ingest-url "$base"
echo sk-e2e >"$dir/llm.key"
start() { ingest_daemon "$@"; } # NAME VAR=VALUE... (tests/support/ingest.sh)
start_agent() { # VAR=VALUE...
    start agent TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
        TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
        TN_LLM_MODEL=e2e-model TN_AGENT_QUIET_MS=300 TN_AGENT_SCAN_MS=200 "$@"
}
start_agent TN_AGENT_MARK_READ=1
start sender TN_REDIS_URL="$TN_TEST_REDIS_URL_SENDER" TN_PG_DSN="$TN_TEST_PG_DSN_SENDER" \
    TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" TN_SUPPRESSION_KEY=e2e-key

emit() { # FILE - the sandbox signs and posts it to tern-ingest; prints the status
    sandbox_emit "$(jq -n --arg s "$wa_secret" --slurpfile p "$1" \
        '{provider: "whatsapp", path: "/webhooks/whatsapp", secret: $s, payload: $p[0]}')" | jq -r .status
}
inbound() { # FILE - a lead's text message with a fresh wamid; prints the wamid
    sed -e "s/106540352242922/$wa_pnid/" -e "s/wamid\.HBgL/wamid.mr$(openssl rand -hex 4)/" \
        "$TN_SRC_DIR/tests/fixtures/whatsapp/text.json" >"$1"
    jq -r '.entry[0].changes[0].value.messages[0].id' "$1"
}
replies() { # TEXT - how many sends of TEXT reached the sandbox
    sandbox_requests whatsapp | jq --arg r "$1" '[.[] | select(.json.text.body == $r)] | length'
}
markers() { # WAMID - how many read markers for WAMID reached the sandbox
    sandbox_requests whatsapp |
        jq --arg w "$1" '[.[] | select(.json.status == "read" and .json.message_id == $w)] | length'
}
read_entries() { # WAMID - the outbound.read entries for WAMID on tern:out, as JSON lines
    rcli --json XREVRANGE tern:out + - COUNT 2000 | python3 -c '
import json, sys
w = sys.argv[1]
for _id, kv in json.load(sys.stdin):
    f = dict(zip(kv[0::2], kv[1::2]))
    if f.get("type") == "outbound.read" and f.get("pmid") == w:
        print(json.dumps({"stream": "tern:out", "fields": f}))' "$1"
}

# --- switch on: the lead writes; one read marker, and the reply
reply1="Hi Ana! We can send a plumber on Friday at 9:00. Shall I book it?"
sandbox_script openai "$(jq -n --arg r "$reply1" '[{reply: $r}]')" >/dev/null
wamid1=$(inbound "$dir/in1.json")
want 200 "$(emit "$dir/in1.json")" "webhook accepted"
marked() { [ "$(markers "$1")" -ge 1 ]; }
answered() { [ "$(replies "$1")" -ge 1 ]; }
until_ok 20 marked "$wamid1" && ok || bad "no read marker reached the WhatsApp API"
req=$(sandbox_requests whatsapp | jq -c --arg w "$wamid1" \
    '[.[] | select(.json.status == "read" and .json.message_id == $w)][0]')
[ "$(jq -r '.headers.authorization' <<<"$req")" = "Bearer $wa_token" ] && ok ||
    bad "read marker not sent with the channel's token"
[[ "$(jq -r '.path' <<<"$req")" == /whatsapp/v*/"$wa_pnid"/messages ]] && ok ||
    bad "read marker sent to $(jq -r .path <<<"$req")"
[ "$(jq -c '.json | keys' <<<"$req")" = '["message_id","messaging_product","status"]' ] && ok ||
    bad "read marker body $(jq -c .json <<<"$req")"
until_ok 20 answered "$reply1" && ok || bad "no reply reached the WhatsApp API"
read_entries "$wamid1" >"$dir/read1.jsonl"
[ "$(wc -l <"$dir/read1.jsonl")" = 1 ] && ok || bad "want one outbound.read entry, got $(wc -l <"$dir/read1.jsonl")"
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/read1.jsonl" >/dev/null && ok ||
    bad "outbound.read entry does not match its schema"
[ "$(jq -r '.fields.dedupe' "$dir/read1.jsonl")" = "read:$wamid1" ] && ok || bad "dedupe is not read:<wamid>"
grep -q -e 16505551234 -e '"text' "$dir/read1.jsonl" && bad "outbound.read entry carries a phone number or text" || ok

# --- redeliveries mark nothing again: the webhook (deduped by tern-ingest)
# and the tern:in entry itself (the agent finds the message stored)
want 200 "$(emit "$dir/in1.json")" "redelivery accepted"
rcli --json XREVRANGE tern:in + - COUNT 2000 | python3 -c '
import json, sys
w = sys.argv[1]
for _id, kv in json.load(sys.stdin):
    f = dict(zip(kv[0::2], kv[1::2]))
    if f.get("pmid") == w:
        sys.stdout.write("\0".join(["XADD", "tern:in", "*"] + kv) + "\0")
        break' "$wamid1" >"$dir/xadd.args"
[ -s "$dir/xadd.args" ] && ok || bad "the inbound entry is not on tern:in"
xargs -0 redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning <"$dir/xadd.args" >/dev/null
sleep 1
settled() { [ "$(rcli XPENDING tern:in agent | head -1)" = 0 ]; }
until_ok 10 settled || true
sleep 1
[ "$(markers "$wamid1")" = 1 ] && ok || bad "$(markers "$wamid1") read markers for one message, want 1"
[ "$(read_entries "$wamid1" | wc -l)" = 1 ] && ok || bad "a redelivery wrote a second outbound.read entry"
[ "$(replies "$reply1")" = 1 ] && ok || bad "a redelivery produced a second reply"

# --- switch off (the default): answered, not marked
kill -TERM "${dpid[agent]}"
wait "${dpid[agent]}" 2>/dev/null
start_agent
reply2="Friday at 9:00 it is, see you then."
sandbox_script openai "$(jq -n --arg r "$reply2" '[{reply: $r}]')" >/dev/null
wamid2=$(inbound "$dir/in2.json")
want 200 "$(emit "$dir/in2.json")" "second webhook accepted"
until_ok 20 answered "$reply2" && ok || bad "switch off: no reply reached the WhatsApp API"
sleep 1
[ "$(markers "$wamid2")" = 0 ] && ok || bad "switch off: a read marker was made"
[ "$(read_entries "$wamid2" | wc -l)" = 0 ] && ok || bad "switch off: an outbound.read entry was written"
[ "$(sandbox_requests whatsapp | jq '[.[] | select(.json.status == "read")] | length')" = 1 ] && ok ||
    bad "read markers other than the first message's"

for f in "$dir"/agent.log "$dir"/sender.log; do
    grep -q -e 16505551234 -e "$wa_token" "$f" && bad "$(basename "$f") leaks a phone number or secret"
done
ok
echo "agent_mark_read: $pass passed, $fail failed"
[ "$fail" = 0 ]
