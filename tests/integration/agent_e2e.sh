#!/usr/bin/env bash
# agent_e2e.sh - ACCEPTANCE (issue 4): tern-agent end to end with real Redis,
# Postgres and the provider sandbox as the LLM.
#
# Entries are XADDed to tern:in exactly as tern-ingest writes them; replies
# are read back from tern:out (XRANGE, filtered by this test's tenant) and
# from Postgres. In order:
#   reply     one message -> one reply with the scripted text, stored in
#             Postgres; the prompt holds the tenant profile and the time in
#             the tenant's zone, the API key only in the Authorization
#             header, and no raw phone number or email
#   redeliver the same entry again -> no second reply, no second message row
#   batch     three entries in one read: a foreign channel's is dead-lettered
#             alone, a repeat changes nothing, a new message is answered
#   tools     update_lead (a bad email comes back as a tool error, then valid
#             fields are stored) and handoff_to_human (human flag)
#   burst     three quick messages -> one reply covering all three
#   opt-out   SMS: STOP -> confirmation, then silence; START -> confirmation,
#             then replies again
#   failure   LLM 500s, then LLM timeouts -> the holding message and the
#             human flag; a later message stays silent (recorded as human)
#   kill -9   the agent dies while the sandbox holds the answer; after a
#             restart exactly one reply arrives
#   replicas  two agents, 200 interleaved messages over 20 conversations:
#             per conversation the replies answer strictly increasing
#             messages, end with the last one, and none is duplicated
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"

admin_pg="$TN_TEST_PG_ADMIN_DSN"
admin_redis="$TN_TEST_REDIS_URL_ADMIN"
dir=$(mktemp -d "$TN_TEST_TMP/agent_e2e.XXXXXX")
. "$TN_SRC_DIR/tests/support/check.sh"
declare -A agent_pid=()

check() { # check DESCRIPTION CMD... - count a pass when CMD succeeds
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
sql() { psql "$admin_pg" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
rcli() { redis-cli -u "$admin_redis" --no-auth-warning "$@"; }

cleanup() {
    local n
    for n in "${!agent_pid[@]}"; do kill -9 "${agent_pid[$n]}" 2>/dev/null; done
    sandbox_stop
    if [ "$fail" != 0 ]; then
        for f in "$dir"/agent-*.log; do
            echo "--- $f" >&2
            grep -v '"lvl":"info"' "$f" | tail -20 >&2
        done
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers

# start_agent NAME [VAR=VALUE...] - run tern-agent against the sandbox
start_agent() {
    local name=$1
    shift
    env TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
        TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_LOG_LEVEL=info \
        TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
        TN_LLM_MODEL=sandbox-model TN_LLM_TIMEOUT_MS=1200 TN_LLM_RETRIES=1 \
        TN_AGENT_QUIET_MS=400 TN_AGENT_SCAN_MS=200 TN_AGENT_LEASE_MS=2000 \
        TN_AGENT_VISIBILITY_MS=2000 TN_DRAIN_TIMEOUT=2s "$@" \
        "$TN_BIN_DIR/tern-agent" >>"$dir/agent-$name.log" 2>&1 &
    agent_pid[$name]=$!
}

# inbound_cmd TENANT CHANNEL KIND PMID SENDER TEXT - the XADD of one
# inbound.message as a redis-cli command line
inbound_cmd() {
    python3 - "$@" <<'EOF'
import json, os, sys, datetime
tenant, channel, kind, pmid, sender, text = sys.argv[1:7]
provider, transport = {"whatsapp": ("whatsapp", "whatsapp"),
                       "twilio_sms": ("twilio", "sms")}[kind]
now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
now = now.replace("+00:00", "Z")
data = {"tenant": tenant, "channel": channel, "provider": provider,
        "provider_message_id": pmid, "transport": transport, "sender": sender,
        "sender_name": "Jana", "received_at": now, "ingested_at": now,
        "message_type": "text", "raw_type": "text", "text": text,
        "raw": {"id": pmid, "text": {"body": text}}}
trace = "00-" + os.urandom(16).hex() + "-" + os.urandom(8).hex() + "-01"
args = ["XADD", "tern:in", "*", "type", "inbound.message", "v", "1", "tenant", tenant,
        "trace", trace, "channel", channel, "provider", provider, "pmid", pmid,
        "dedupe", "t:" + pmid, "data", json.dumps(data, separators=(",", ":"))]
def q(a):
    return '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'
print(" ".join(q(a) for a in args))
EOF
}

# inbound TENANT CHANNEL KIND PMID SENDER TEXT - XADD one inbound.message
inbound() {
    inbound_cmd "$@" | rcli >/dev/null
}

# outs TENANT - the tenant's tern:out entries as JSON lines (data + id fields)
outs() {
    rcli -2 --json XRANGE tern:out - + | python3 -c '
import json, sys
tenant = sys.argv[1]
for eid, flat in json.load(sys.stdin):
    f = dict(zip(flat[0::2], flat[1::2]))
    if f.get("tenant") != tenant:
        continue
    d = json.loads(f["data"])
    d["_entry"] = eid
    d["_fields"] = f
    print(json.dumps(d))
' "$1"
}

# nout TENANT [CONVERSATION] - how many tern:out entries
nout() {
    outs "$1" | python3 -c '
import json, sys
c = sys.argv[1] if len(sys.argv) > 1 else None
print(sum(1 for l in sys.stdin if not c or json.loads(l).get("conversation_id") == c))
' "${@:2}"
}

# conv_of TENANT SENDER - the conversation id of a sender
conv_of() {
    sql "SELECT cv.id FROM conversations cv JOIN contacts ct ON ct.tenant_id = cv.tenant_id
          AND ct.id = cv.contact_id WHERE cv.tenant_id = '$1' AND ct.address = '$2'"
}

# wait_nout TENANT SENDER N SECONDS - until the sender's conversation has N replies
wait_nout() {
    local end=$(($(date +%s%N) / 1000000 + $4 * 1000)) c
    while [ $(($(date +%s%N) / 1000000)) -lt "$end" ]; do
        c=$(conv_of "$1" "$2")
        [ -n "$c" ] && [ "$(nout "$1" "$c")" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# last_text TENANT SENDER - text and reason of the sender's last reply
last_text() {
    outs "$1" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
rows = [r for r in rows if r["conversation_id"] == sys.argv[1]]
print(rows[-1]["reason"] + "|" + rows[-1]["text"] if rows else "")
' "$(conv_of "$1" "$2")"
}

# llm_requests - the sandbox's recorded chat completions as JSON lines
llm_requests() {
    sandbox_requests openai | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["path"].endswith("/chat/completions"):
        print(json.dumps(r))
'
}

# llm_request_of TEXT [N] - the Nth (1-based; default the last) recorded
# chat completion whose user messages contain TEXT: one conversation's
# requests, whatever other conversations asked meanwhile
llm_request_of() {
    llm_requests | python3 -c '
import json, sys
text, n = sys.argv[1], int(sys.argv[2])
mine = [l for l in sys.stdin if any(m.get("role") == "user" and text in (m.get("content") or "")
                                    for m in json.loads(l)["json"]["messages"])]
if mine and abs(n) <= len(mine):
    sys.stdout.write(mine[n - 1 if n > 0 else n])
' "$1" "${2:--1}"
}

# ---------------------------------------------------------------- setup

sandbox_start "$dir" || exit 1
head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$dir/llm.key"
key=$(cat "$dir/llm.key")
export TN_PG_DSN="$admin_pg"
uniq="ag$$-$RANDOM"
tenant=$("$TN_BIN_DIR/ternctl" tenant add --slug "$uniq" --name "Acme $uniq" --tz Europe/Berlin) \
    || { bad "tenant add"; exit 1; }
wa=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tenant" --kind whatsapp --address "pn-$uniq")
sms=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tenant" --kind twilio_sms --address "+1555$RANDOM$$")
unset TN_PG_DSN
sql "INSERT INTO agent_profiles (tenant_id, business_name, offer, hours_text, service_area,
       qualification_questions, tone, language)
     VALUES ('$tenant', 'Kowalski Plumbing $uniq', 'Emergency plumbing and boiler repair',
       'Mon-Fri 08:00-18:00', 'Berlin Mitte and Prenzlauer Berg',
       '[\"What needs fixing?\", \"Which district are you in?\"]', 'warm and brief', 'en')" \
    >/dev/null
start_agent a

# ---------------------------------------------------------------- reply
phone="+4915112345678"
sandbox_script openai '[{"reply":"Hello from Kowalski, we can help today."}]'
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.1" "$phone" \
    "Hi, my sink leaks. Call me on +49 151 2345 6789 or mail jana.k@example.com"
check "one reply" wait_nout "$tenant" "$phone" 1 10
check "reply text" test "$(last_text "$tenant" "$phone")" = "reply|Hello from Kowalski, we can help today."
conv=$(conv_of "$tenant" "$phone")
outs "$tenant" >"$dir/outs.jsonl"
check "outbound entry fields" python3 - "$dir/outs.jsonl" "$tenant" "$wa" "$phone" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[0]; f = r["_fields"]
assert len(rows) == 1, rows
assert f["type"] == "outbound.message" and f["v"] == "1" and f["channel"] == sys.argv[3]
assert f["provider"] == "whatsapp" and f["outbound"] == r["outbound_id"]
assert f["dedupe"] == "out:" + r["outbound_id"] and f["trace"].startswith("00-")
assert r["to"] == sys.argv[4] and r["transport"] == "whatsapp" and r["kind"] == "text"
assert r["tenant"] == sys.argv[2] and r["reason"] == "reply"
EOF
echo "$(head -1 "$dir/outs.jsonl")" | python3 -c '
import json, sys; e = json.loads(sys.stdin.read()); f = e.pop("_fields"); e.pop("_entry")
print(json.dumps({"stream": "tern:out", "fields": f}))' >"$dir/validate.jsonl"
check "outbound entry matches the schema" \
    node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/validate.jsonl" >/dev/null
check "reply stored" test "$(sql "SELECT count(*) FROM outbound_messages o JOIN messages m
    ON m.tenant_id = o.tenant_id AND m.outbound_id = o.id AND m.direction = 'out'
    WHERE o.tenant_id = '$tenant' AND o.conversation_id = '$conv' AND o.state = 'queued'
    AND o.body = 'Hello from Kowalski, we can help today.' AND o.enqueued_at IS NOT NULL")" = 1
check "inbound processed" test "$(sql "SELECT agent_outcome FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'wamid.$uniq.1'")" = replied
check "lead first contact" test "$(sql "SELECT name || '|' || source_channel || '|' ||
    (first_response_ms >= 0) FROM leads l JOIN contacts c ON c.tenant_id = l.tenant_id
    AND c.id = l.contact_id WHERE l.tenant_id = '$tenant' AND c.address = '$phone'")" \
    = "Jana|whatsapp|true"
llm_request_of "Hi, my sink leaks" >"$dir/req.json"
today=$(sql "SELECT to_char(now() AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD')")
check "prompt: profile, time in zone, no phone, no email, key only in header" \
    python3 - "$dir/req.json" "$uniq" "$today" "$key" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read())
body = r["body"]
msgs = r["json"]["messages"]
system = msgs[0]["content"]
assert msgs[0]["role"] == "system"
for want in ["Kowalski Plumbing " + sys.argv[2], "Emergency plumbing", "Mon-Fri 08:00-18:00",
             "Berlin Mitte", "What needs fixing?", "warm and brief", "Europe/Berlin",
             sys.argv[3]]:
    assert want in system, want
assert "[phone]" in body and "[email]" in body
for raw in ["4915112345678", "2345 6789", "jana.k@example.com", "+49 151"]:
    assert raw not in body, raw
assert r["headers"]["authorization"] == "Bearer " + sys.argv[4]
assert sys.argv[4] not in body
names = [t["function"]["name"] for t in r["json"]["tools"]]
assert "update_lead" in names and "handoff_to_human" in names
EOF
if grep -q -e "$key" -e "4915112345678" -e "sink leaks" "$dir"/agent-a.log; then
    bad "the log holds the key, a raw phone number or a message body"
else ok; fi

# ---------------------------------------------------------------- redeliver
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.1" "$phone" \
    "Hi, my sink leaks. Call me on +49 151 2345 6789 or mail jana.k@example.com"
sleep 1.5
check "redelivered entry: no second reply" test "$(nout "$tenant" "$conv")" = 1
check "redelivered entry: one message row" test "$(sql "SELECT count(*) FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'wamid.$uniq.1'")" = 1

# ---------------------------------------------------------------- batch
# One XREADGROUP reply, stored by one statement: an entry naming a channel
# that is not the tenant's is dead-lettered alone, a repeat changes nothing,
# a new message is stored and answered.
pb="+4915200000009"
{
    inbound_cmd "$tenant" "$(python3 -c 'import uuid; print(uuid.uuid4())')" whatsapp \
        "wamid.$uniq.batch.x" "$pb" "Wrong channel"
    inbound_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.1" "$phone" "repeat"
    inbound_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.batch.ok" "$pb" "Do you fix taps?"
} | rcli >/dev/null
check "batch: the new message is answered" wait_nout "$tenant" "$pb" 1 8
check "batch: the repeat adds no message row" test "$(sql "SELECT count(*) FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'wamid.$uniq.1'")" = 1
check "batch: the foreign channel's entry is dead (channel.unknown)" test "$(rcli -2 --json \
    XRANGE tern:in:dead - + | python3 -c '
import json, sys
n = 0
for eid, flat in json.load(sys.stdin):
    f = dict(zip(flat[0::2], flat[1::2]))
    if f.get("pmid") == sys.argv[1] and f.get("dead_reason") == "channel.unknown":
        n += 1
print(n)
' "wamid.$uniq.batch.x")" = 1

# ---------------------------------------------------------------- tools
p2="+4915200000002"
sandbox_script openai '[{"tool_calls":[{"name":"update_lead","arguments":{"email":"not-an-email"}}]},
  {"tool_calls":[{"name":"update_lead","arguments":{"name":"Jana K","email":"jana@example.org",
     "status":"qualified","answers":{"What needs fixing?":"a leak"}}},
   {"name":"handoff_to_human","arguments":{"reason":"wants a call"}}]},
  {"reply":"Thanks Jana, a colleague will call you."}]'
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.t1" "$p2" "I am Jana, leak in the kitchen"
check "tools: one reply" wait_nout "$tenant" "$p2" 1 10
check "tools: reply text" test "$(last_text "$tenant" "$p2")" \
    = "reply|Thanks Jana, a colleague will call you."
check "tools: lead stored" test "$(sql "SELECT l.name || '|' || l.email || '|' || l.status || '|' ||
    (l.answers ->> 'What needs fixing?') FROM leads l JOIN contacts c ON c.tenant_id = l.tenant_id
    AND c.id = l.contact_id WHERE l.tenant_id = '$tenant' AND c.address = '$p2'")" \
    = "Jana K|jana@example.org|qualified|a leak"
check "tools: human flag" test "$(sql "SELECT human_takeover FROM conversations
    WHERE tenant_id = '$tenant' AND id = '$(conv_of "$tenant" "$p2")'")" = t
llm_request_of "leak in the kitchen" 2 >"$dir/req.json" # after the first tool round
check "tools: validation error went back to the model" python3 - "$dir/req.json" <<'EOF'
import json, sys
msgs = json.loads(open(sys.argv[1]).read())["json"]["messages"]
tool = [m for m in msgs if m["role"] == "tool"]
assert len(tool) == 1 and "email is not a valid address" in tool[0]["content"], tool
EOF

# ---------------------------------------------------------------- burst
p3="+4915200000003"
for i in one two three; do # prepared first, then XADDed back to back
    inbound_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.b$i" "$p3" "burst $i"
done >"$dir/burst.cmds"
rcli <"$dir/burst.cmds" >/dev/null
check "burst: a reply" wait_nout "$tenant" "$p3" 1 10
sleep 1
check "burst: exactly one reply" test "$(nout "$tenant" "$(conv_of "$tenant" "$p3")")" = 1
check "burst: reply to the last" test "$(last_text "$tenant" "$p3")" = "reply|Sandbox reply: burst three"
llm_request_of "burst three" >"$dir/req.json"
check "burst: one request with all three" python3 - "$dir/req.json" <<'EOF'
import json, sys
msgs = json.loads(open(sys.argv[1]).read())["json"]["messages"]
users = [m["content"] for m in msgs if m["role"] == "user"]
assert users[-3:] == ["burst one", "burst two", "burst three"], users
EOF

# ---------------------------------------------------------------- opt-out (SMS)
p4="+15550000004"
inbound "$tenant" "$sms" twilio_sms "SM$uniq.1" "$p4" "hello"
check "sms: reply" wait_nout "$tenant" "$p4" 1 10
inbound "$tenant" "$sms" twilio_sms "SM$uniq.2" "$p4" "Stop"
check "sms: STOP confirmation" wait_nout "$tenant" "$p4" 2 10
check "sms: confirmation text" test "$(last_text "$tenant" "$p4")" \
    = "notice|You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
inbound "$tenant" "$sms" twilio_sms "SM$uniq.3" "$p4" "are you there?"
sleep 1.5
check "sms: silence after STOP" test "$(nout "$tenant" "$(conv_of "$tenant" "$p4")")" = 2
check "sms: opt-out recorded" test "$(sql "SELECT string_agg(e.kind, ',') FROM consent_events e
    JOIN contacts c ON c.tenant_id = e.tenant_id AND c.id = e.contact_id
    WHERE e.tenant_id = '$tenant' AND c.address = '$p4'")" = opt_out
check "sms: silent message recorded" test "$(sql "SELECT agent_outcome FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'SM$uniq.3'")" = opted_out
inbound "$tenant" "$sms" twilio_sms "SM$uniq.4" "$p4" "START"
check "sms: START confirmation" wait_nout "$tenant" "$p4" 3 10
inbound "$tenant" "$sms" twilio_sms "SM$uniq.5" "$p4" "back again"
check "sms: replies again" wait_nout "$tenant" "$p4" 4 10
check "sms: reply after START" test "$(last_text "$tenant" "$p4")" = "reply|Sandbox reply: back again"

# ---------------------------------------------------------------- LLM failure
p5="+4915200000005"
sandbox_script openai '[{"status":500},{"status":503}]'
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.f1" "$p5" "anyone?"
check "500: holding message" wait_nout "$tenant" "$p5" 1 10
check "500: holding text" test "$(last_text "$tenant" "$p5")" \
    = "holding|Thanks, a team member will get back to you shortly."
check "500: human flag" test "$(sql "SELECT human_takeover FROM conversations
    WHERE tenant_id = '$tenant' AND id = '$(conv_of "$tenant" "$p5")'")" = t
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.f2" "$p5" "hello??"
sleep 1.2
check "human takeover: no reply" test "$(nout "$tenant" "$(conv_of "$tenant" "$p5")")" = 1
check "human takeover: recorded" test "$(sql "SELECT agent_outcome FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'wamid.$uniq.f2'")" = human
p6="+4915200000006"
sandbox_script openai '[{"hang":true},{"hang":true}]'
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.h1" "$p6" "hello, slow model"
check "timeout: holding message" wait_nout "$tenant" "$p6" 1 10
check "timeout: holding text" test "$(last_text "$tenant" "$p6")" \
    = "holding|Thanks, a team member will get back to you shortly."
check "timeout: human flag" test "$(sql "SELECT human_takeover FROM conversations
    WHERE tenant_id = '$tenant' AND id = '$(conv_of "$tenant" "$p6")'")" = t

# ---------------------------------------------------------------- kill -9 mid-turn
p7="+4915200000007"
sandbox_script openai '[{"delay_ms":4000,"reply":"from the dead agent"},{"reply":"after restart"}]'
before=$(llm_requests | wc -l)
inbound "$tenant" "$wa" whatsapp "wamid.$uniq.k1" "$p7" "please answer once"
for _ in $(seq 1 50); do
    [ "$(llm_requests | wc -l)" -gt "$before" ] && break
    sleep 0.1
done
kill -9 "${agent_pid[a]}"
wait "${agent_pid[a]}" 2>/dev/null
unset "agent_pid[a]"
start_agent a2
check "kill -9: one reply after restart" wait_nout "$tenant" "$p7" 1 12
sleep 2.5 # the dead agent's delayed answer has come and gone
check "kill -9: exactly one reply" test "$(nout "$tenant" "$(conv_of "$tenant" "$p7")")" = 1
check "kill -9: the restarted turn's text" test "$(last_text "$tenant" "$p7")" = "reply|after restart"

# ---------------------------------------------------------------- replicas
kill -TERM "${agent_pid[a2]}"
wait "${agent_pid[a2]}" 2>/dev/null
check "drain exits 0" test $? = 0
unset "agent_pid[a2]"
sandbox_reset
sandbox_config '{"provider":"openai","latency_ms":60}'
start_agent r1 TN_AGENT_QUIET_MS=100
start_agent r2 TN_AGENT_QUIET_MS=100
sleep 0.3
python3 - "$tenant" "$wa" "$uniq" <<'EOF' >"$dir/replicas.cmds"
import json, os, sys, datetime, random
tenant, channel, uniq = sys.argv[1:4]
now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
now = now.replace("+00:00", "Z")
def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
for r in range(1, 11):
    for c in range(1, 21):
        pmid = "wamid.%s.r%02d.%02d" % (uniq, c, r)
        data = {"tenant": tenant, "channel": channel, "provider": "whatsapp",
                "provider_message_id": pmid, "transport": "whatsapp",
                "sender": "+49160%07d" % c, "received_at": now, "ingested_at": now,
                "message_type": "text", "raw_type": "text", "text": "c%02d m%02d" % (c, r),
                "raw": {}}
        trace = "00-" + os.urandom(16).hex() + "-" + os.urandom(8).hex() + "-01"
        args = ["XADD", "tern:in", "*", "type", "inbound.message", "v", "1", "tenant", tenant,
                "trace", trace, "channel", channel, "provider", "whatsapp", "pmid", pmid,
                "dedupe", "t:" + pmid, "data", json.dumps(data, separators=(",", ":"))]
        print(" ".join(q(a) for a in args))
    print("#round")
EOF
csplit -s -z -f "$dir/round." "$dir/replicas.cmds" '/^#round$/+1' '{*}'
for f in "$dir"/round.*; do
    grep -v '^#' "$f" | rcli >/dev/null
    sleep "0.$((RANDOM % 20 + 5))"
done
end=$(($(date +%s) + 25))
while [ "$(date +%s)" -lt "$end" ]; do
    done_n=$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$tenant'
        AND provider_message_id LIKE 'wamid.$uniq.r%' AND processed_at IS NOT NULL")
    [ "$done_n" = 200 ] && break
    sleep 0.2
done
check "replicas: all 200 processed" test "$done_n" = 200
sleep 0.5
outs "$tenant" >"$dir/outs.jsonl"
sql "SELECT conversation_id, count(*) FROM outbound_messages WHERE tenant_id = '$tenant'
     GROUP BY 1" >"$dir/db_counts"
check "replicas: in order, never twice, last message answered" \
    python3 - "$dir/outs.jsonl" "$dir/db_counts" <<'EOF'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
db = dict(l.strip().split("|") for l in open(sys.argv[2]) if l.strip())
by = {}
for r in rows:
    m = re.fullmatch(r"Sandbox reply: c(\d\d) m(\d\d)", r["text"])
    if m:
        by.setdefault(m.group(1), []).append((int(m.group(2)), r))
assert len(by) == 20, sorted(by)
turns = 0
for c, seq in by.items():
    nums = [n for n, _ in seq]
    assert nums == sorted(set(nums)), (c, nums)      # strictly increasing, no repeats
    assert nums[-1] == 10, (c, nums)                 # the last message was answered
    ids = {r["outbound_id"] for _, r in seq}
    assert len(ids) == len(seq), c                   # no entry published twice
    conv = seq[0][1]["conversation_id"]
    assert int(db[conv]) == len(seq), (c, db[conv], len(seq))
    turns += len(seq)
print("replicas: %d replies for 200 messages" % turns)
EOF
for n in r1 r2; do
    grep -q '"event":"agent.turn_done"' "$dir/agent-$n.log" && ok || bad "replica $n did no turn"
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
