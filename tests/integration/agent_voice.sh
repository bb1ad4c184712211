#!/usr/bin/env bash
# agent_voice.sh - ACCEPTANCE (issue 4): voice notes are fetched from the
# provider with the channel's sealed credentials, transcribed through the
# OpenAI-compatible /audio/transcriptions, and answered, with real Redis,
# Postgres and the provider sandbox (WhatsApp, Telegram and the LLM).
#
#   whatsapp  a voice note whose media is registered in the sandbox: media id
#             -> URL -> bytes with the channel's access_token as Bearer; the
#             transcription request is multipart with the model and exactly
#             those bytes; the scripted reply arrives; the prompt holds the
#             scrubbed transcript; messages.transcript is stored; the bytes
#             are stored nowhere; no token, key, transcript or bytes in logs
#   telegram  a voice note through getFile and the file URL with the bot token
#   failure   the transcription endpoint answers 500: the lead still gets
#             the scripted reply, the prompt says the note could not be
#             transcribed, nothing is stored as transcript
#   no token  the provider refuses the media (wrong token): same soft failure
set -u
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"

admin_pg="$TN_TEST_PG_ADMIN_DSN"
admin_redis="$TN_TEST_REDIS_URL_ADMIN"
dir=$(mktemp -d "$TN_TEST_TMP/agent_voice.XXXXXX")
. "$TN_SRC_DIR/tests/support/check.sh"
agent=""

check() { # check DESCRIPTION CMD... - count a pass when CMD succeeds
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
sql() { psql "$admin_pg" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
rcli() { redis-cli -u "$admin_redis" --no-auth-warning "$@"; }

cleanup() {
    [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
    sandbox_stop
    if [ "$fail" != 0 ]; then
        echo "--- agent log" >&2
        grep -v '"lvl":"info"' "$dir/agent.log" | tail -20 >&2
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# voice_cmd TENANT CHANNEL PROVIDER PMID SENDER MEDIA_ID - the XADD of one
# inbound voice note, as tern-ingest writes it, as a redis-cli command line
voice_cmd() {
    python3 - "$@" <<'EOF'
import json, os, sys, datetime
tenant, channel, provider, pmid, sender, media = sys.argv[1:7]
transport = {"whatsapp": "whatsapp", "telegram": "telegram"}[provider]
now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
now = now.replace("+00:00", "Z")
data = {"tenant": tenant, "channel": channel, "provider": provider,
        "provider_message_id": pmid, "transport": transport, "sender": sender,
        "sender_name": "Jana", "received_at": now, "ingested_at": now,
        "message_type": "voice", "raw_type": "audio" if provider == "whatsapp" else "voice",
        "media": [{"id": media, "mime_type": "audio/ogg; codecs=opus", "voice": True}],
        "raw": {"id": pmid, "audio": {"id": media, "voice": True}}}
trace = "00-" + os.urandom(16).hex() + "-" + os.urandom(8).hex() + "-01"
args = ["XADD", "tern:in", "*", "type", "inbound.message", "v", "1", "tenant", tenant,
        "trace", trace, "channel", channel, "provider", provider, "pmid", pmid,
        "dedupe", "t:" + pmid, "data", json.dumps(data, separators=(",", ":"))]
def q(a):
    return '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'
print(" ".join(q(a) for a in args))
EOF
}

# conv_of SENDER - the conversation id of a sender
conv_of() {
    sql "SELECT cv.id FROM conversations cv JOIN contacts ct ON ct.tenant_id = cv.tenant_id
          AND ct.id = cv.contact_id WHERE cv.tenant_id = '$tenant' AND ct.address = '$1'"
}

# replies SENDER - the sender's replies on tern:out, "reason|text" per line
replies() {
    rcli -2 --json XRANGE tern:out - + | python3 -c '
import json, sys
conv = sys.argv[1]
for eid, flat in json.load(sys.stdin):
    f = dict(zip(flat[0::2], flat[1::2]))
    d = json.loads(f["data"])
    if d.get("conversation_id") == conv:
        print(d["reason"] + "|" + d["text"])
' "$(conv_of "$1")"
}

# wait_reply SENDER SECONDS - until the sender has a reply
wait_reply() {
    local end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -le "$end" ]; do
        [ -n "$(conv_of "$1")" ] && [ -n "$(replies "$1")" ] && return 0
        sleep 0.2
    done
    return 1
}

# last_prompt - the last chat completions request as JSON
last_prompt() {
    sandbox_requests openai | python3 -c '
import json, sys
rs = [r for r in json.load(sys.stdin) if r["path"].endswith("/chat/completions")]
print(json.dumps(rs[-1]) if rs else "{}")'
}

# ---------------------------------------------------------------- setup

sandbox_start "$dir" --quiet || exit 1
head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$dir/llm.key"
key=$(cat "$dir/llm.key")
master="1:$(head -c 32 /dev/urandom | base64 -w0)"
uniq="av$$-$RANDOM"
wa_token="EAAG$(openssl rand -hex 16)"
tg_token="$((RANDOM + 100000)):AA$(openssl rand -hex 12)"
export TN_PG_DSN="$admin_pg" TN_MASTER_KEY="$master"
tenant=$("$TN_BIN_DIR/ternctl" tenant add --slug "$uniq" --name "Voice $uniq" --tz Europe/Berlin) \
    || { bad "tenant add"; exit 1; }
wa=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tenant" --kind whatsapp --address "pn-$uniq" \
    --secret "access_token=$wa_token" --secret "app_secret=app-$uniq")
tg=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tenant" --kind telegram --address "bot-$uniq" \
    --secret "bot_token=$tg_token" --secret "secret_token=tg-$uniq")
unset TN_PG_DSN TN_MASTER_KEY
sql "INSERT INTO agent_profiles (tenant_id, business_name, offer)
     VALUES ('$tenant', 'Kowalski Plumbing $uniq', 'Boiler service')" >/dev/null
sandbox_config "{\"whatsapp_tokens\":[\"$wa_token\"],\"telegram_tokens\":[\"$tg_token\"],
    \"openai_keys\":[\"$key\"]}"

env TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
    TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_LOG_LEVEL=debug \
    TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
    TN_LLM_MODEL=sandbox-model TN_LLM_TRANSCRIBE_MODEL=sandbox-whisper TN_LLM_TIMEOUT_MS=3000 \
    TN_LLM_RETRIES=0 TN_MASTER_KEY="$master" TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" \
    TN_WHATSAPP_API_VERSION=v21.0 TN_TELEGRAM_API_BASE="$SANDBOX_URL/telegram" \
    TN_AGENT_QUIET_MS=200 TN_AGENT_SCAN_MS=200 TN_AGENT_LEASE_MS=5000 TN_DRAIN_TIMEOUT=2s \
    "$TN_BIN_DIR/tern-agent" >>"$dir/agent.log" 2>&1 &
agent=$!

# ---------------------------------------------------------------- whatsapp
marker="OggS-voice-$uniq-$(openssl rand -hex 8)"
python3 - "$dir/media.bin" "$marker" <<'EOF'
import os, sys
open(sys.argv[1], "wb").write(sys.argv[2].encode() + os.urandom(3000) + b"\x00\xff" * 100)
EOF
size=$(stat -c %s "$dir/media.bin")
sandbox_post media "{\"id\":\"media-$uniq\",\"mime_type\":\"audio/ogg\",
    \"base64\":\"$(base64 -w0 "$dir/media.bin")\"}" >/dev/null
transcript="I would like a boiler service on Friday, call me on +49 151 2345 6789"
sandbox_script openai-transcribe "[{\"text\":\"$transcript\"}]"
sandbox_script openai '[{"reply":"Friday works, which time suits you?"}]'
p1="+4915100000101"
voice_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.v1" "$p1" "media-$uniq" | rcli >/dev/null
check "whatsapp: a reply" wait_reply "$p1" 15
check "whatsapp: the scripted reply" test "$(replies "$p1")" \
    = "reply|Friday works, which time suits you?"
sandbox_requests whatsapp >"$dir/wa.json"
check "whatsapp: media id -> url -> bytes with the channel token" \
    python3 - "$dir/wa.json" "media-$uniq" "$wa_token" <<'EOF'
import json, sys
rs = json.load(open(sys.argv[1]))
media, token = sys.argv[2], sys.argv[3]
look = [r for r in rs if r["method"] == "GET" and r["path"] == "/whatsapp/v21.0/" + media]
get = [r for r in rs if r["method"] == "GET" and r["path"] == "/whatsapp/media/" + media]
assert len(look) == 1 and len(get) == 1, [r["path"] for r in rs]
for r in look + get:
    assert r["headers"]["authorization"] == "Bearer " + token
EOF
sandbox_requests openai-transcribe >"$dir/tr.json"
check "whatsapp: multipart transcription with the model and the bytes" \
    python3 - "$dir/tr.json" "$size" "$marker" "$key" <<'EOF'
import json, sys
rs = json.load(open(sys.argv[1]))
assert len(rs) == 1, len(rs)
r = rs[0]
assert r["path"] == "/openai/v1/audio/transcriptions", r["path"]
assert r["headers"]["content-type"].startswith("multipart/form-data; boundary=")
assert r["headers"]["authorization"] == "Bearer " + sys.argv[4]
j = r["json"]
assert j["model"] == "sandbox-whisper", j
assert j["file"]["size"] == int(sys.argv[2]), (j["file"], sys.argv[2])
assert j["file"]["filename"].endswith(".ogg") and j["file"]["content_type"] == "audio/ogg", j
assert sys.argv[3] in r["body"]
EOF
last_prompt >"$dir/prompt.json"
check "whatsapp: the prompt holds the scrubbed transcript" python3 - "$dir/prompt.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
users = [m["content"] for m in r["json"]["messages"] if m["role"] == "user"]
assert users[-1] == "[voice note] I would like a boiler service on Friday, call me on [phone]", users
assert "2345 6789" not in r["body"]
EOF
check "whatsapp: transcript stored with the message" test "$(sql "SELECT transcript || '|' ||
    agent_outcome FROM messages WHERE tenant_id = '$tenant'
    AND provider_message_id = 'wamid.$uniq.v1'")" = "$transcript|replied"
check "whatsapp: the media bytes are stored nowhere" test "$(sql "SELECT count(*) FROM messages m
    WHERE m.tenant_id = '$tenant' AND m::text LIKE '%$marker%'")" = 0

# ---------------------------------------------------------------- telegram
file_id="AwACAgIAAxkB$uniq"
sandbox_post media "{\"id\":\"$file_id\",\"mime_type\":\"audio/ogg\",\"text\":\"OggS tg $uniq\"}" \
    >/dev/null
sandbox_script openai-transcribe '[{"text":"Do you also repair taps?"}]'
sandbox_script openai '[{"reply":"Yes, we repair taps."}]'
chat="77$RANDOM"
voice_cmd "$tenant" "$tg" telegram "$chat:1" "$chat" "$file_id" | rcli >/dev/null
check "telegram: the scripted reply" wait_reply "$chat" 15
check "telegram: reply text" test "$(replies "$chat")" = "reply|Yes, we repair taps."
sandbox_requests telegram >"$dir/tg.json"
check "telegram: getFile, then the file with the bot token" \
    python3 - "$dir/tg.json" "$file_id" <<'EOF'
import json, sys
rs = json.load(open(sys.argv[1]))
paths = [r["path"] for r in rs]
assert any(p.endswith("/getFile") for p in paths), paths
gf = [r for r in rs if r["path"].endswith("/getFile")][0]
assert gf["query"].get("file_id") == sys.argv[2], gf["query"]
assert any("/telegram/file/bot" in p and p.endswith(".oga") for p in paths), paths
EOF
check "telegram: transcript stored" test "$(sql "SELECT transcript FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = '$chat:1'")" = "Do you also repair taps?"

# ---------------------------------------------------------------- transcription fails
sandbox_fault '{"provider":"openai-transcribe","status":500}'
sandbox_script openai '[{"reply":"Sorry, could you type that?"}]'
p2="+4915100000102"
voice_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.v2" "$p2" "media-$uniq" | rcli >/dev/null
check "failure: the lead still gets the reply" wait_reply "$p2" 15
check "failure: reply text" test "$(replies "$p2")" = "reply|Sorry, could you type that?"
last_prompt >"$dir/prompt.json"
check "failure: the prompt says so" python3 - "$dir/prompt.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
users = [m["content"] for m in r["json"]["messages"] if m["role"] == "user"]
assert users[-1] == "[voice note could not be transcribed]", users
EOF
check "failure: no transcript stored" test "$(sql "SELECT coalesce(transcript, 'none') FROM messages
    WHERE tenant_id = '$tenant' AND provider_message_id = 'wamid.$uniq.v2'")" = none
check "failure: logged" grep -q '"event":"agent.voice_failed".*"step":"transcribe"' "$dir/agent.log"

# ---------------------------------------------------------------- provider refuses the token
sandbox_config '{"whatsapp_tokens":["EAAGsomeoneelse"]}'
sandbox_script openai '[{"reply":"Could you type it?"}]'
p3="+4915100000103"
voice_cmd "$tenant" "$wa" whatsapp "wamid.$uniq.v3" "$p3" "media-$uniq" | rcli >/dev/null
check "no token: the lead still gets the reply" wait_reply "$p3" 15
check "no token: logged as the lookup" \
    grep -q '"event":"agent.voice_failed".*"step":"lookup.status"' "$dir/agent.log"

# ---------------------------------------------------------------- logs
kill -TERM "$agent"
wait "$agent" 2>/dev/null
check "drain exits 0" test $? = 0
agent=""
for secret in "$wa_token" "$tg_token" "$key" "$marker" "boiler service" "repair taps" \
    "2345 6789" "$file_id" "media-$uniq"; do
    if grep -qF -- "$secret" "$dir/agent.log"; then bad "the log holds a secret or content"; else ok; fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
