# shellcheck shell=bash
# Helpers for the tern-sender tests (tests/integration/sender_*.sh) and the
# benchmark (tests/bench/sender/run.sh); `source` after scripts/test's env.
#
#   snd_setup DIR      sandbox + tenant + one channel per kind (sealed
#                      credentials) + contacts; exports T, CH_*, CT_*, KEY
#   snd_start [ENV=V ...]  start tern-sender on the sandbox (SENDER_PID)
#   snd_kill9 / snd_stop   kill -9 / SIGTERM it; snd_stop_checked: and no sanitizer report
#   snd_out ID CHANNEL CONTACT KIND TEXT [EXTRA_JSON]  XADD an outbound.message
#   snd_status PMID STATUS [OUTBOUND] [CHANNEL] [CODE]  XADD a delivery.status
#   snd_state ID / snd_row ID COLS / snd_wait_state ID STATE SECONDS
#   snd_count PROVIDER OUTBOUND   requests the sandbox got for it
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_REDIS_URL_ADMIN:?}" "${TN_TEST_PG_ADMIN_DSN:?}"
SND_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$TN_SRC_DIR/tests/sandbox/client.sh"
. "$TN_SRC_DIR/scripts/lib/stack.sh"

snd_fail() {
    echo "FAIL: $*" >&2
    [ -n "${SND_DIR:-}" ] && tail -5 "$SND_DIR/sender.log" >&2
    [ -n "${SANDBOX_URL:-}" ] && sandbox_requests "" | jq -c ".[-1]" >&2
    exit 1
}
snd_sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
snd_redis() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }
snd_uuid() { cat /proc/sys/kernel/random/uuid; }

SND_WA_TOKEN="EAAG$(snd_uuid | tr -d -)"
SND_TW_SID="AC$(snd_uuid | tr -d -)"
SND_TW_TOKEN="$(snd_uuid | tr -d -)"
SND_TG_TOKEN="$((RANDOM + 100000)):AAH$(snd_uuid | tr -d -)"

# snd_channel KIND ADDRESS SECRETS... - a channel id
snd_channel() {
    local kind=$1 addr=$2
    shift 2
    TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$KEY "$TN_BIN_DIR/ternctl" channel add \
        --tenant "$T" --kind "$kind" --address "$addr" "$@"
}

# snd_contact KIND ADDRESS CHANNEL [INBOUND_AGO] - a contact (and a conversation
# with an inbound message INBOUND_AGO ago, e.g. '1 hour', when given)
snd_contact() {
    local id conv
    id=$(snd_sql "INSERT INTO contacts (tenant_id, kind, address) VALUES ('$T', '$1', '$2') RETURNING id")
    if [ -n "${4:-}" ]; then
        conv=$(snd_sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$T', '$id', '$3') RETURNING id")
        snd_sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body, created_at)
                 VALUES ('$T', '$conv', '$3', 'in', 'hi', now() - interval '$4')" >/dev/null
    fi
    echo "$id"
}

snd_setup() {
    SND_DIR=$1
    KEY="1:$(head -c 32 /dev/urandom | base64 -w0)"
    SND_SUPPRESSION_KEY="supp-$(head -c 16 /dev/urandom | base64 -w0)"
    export KEY SND_DIR
    # SND_SANDBOX_ARGS: more sandbox.mjs flags (the benchmark: --no-record)
    # shellcheck disable=SC2086
    sandbox_start "$SND_DIR" --quiet ${SND_SANDBOX_ARGS:-}
    sandbox_config "{\"whatsapp_tokens\":[\"$SND_WA_TOKEN\"],\"telegram_tokens\":[\"$SND_TG_TOKEN\"],\"twilio_accounts\":{\"$SND_TW_SID\":\"$SND_TW_TOKEN\"}}"
    T=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$TN_BIN_DIR/ternctl" tenant add --slug "snd-$$-$RANDOM" --name Sender)
    local n=$RANDOM$RANDOM
    CH_WA=$(snd_channel whatsapp "10$n" --secret access_token="$SND_WA_TOKEN" --secret app_secret=x)
    CH_SMS=$(snd_channel twilio_sms "+1415555$((n % 10000 + 10000))" --secret account_sid="$SND_TW_SID" --secret auth_token="$SND_TW_TOKEN")
    CH_TWA=$(snd_channel twilio_whatsapp "+1415666$((n % 10000 + 10000))" --secret account_sid="$SND_TW_SID" --secret auth_token="$SND_TW_TOKEN")
    CH_TG=$(snd_channel telegram "bot$n" --secret bot_token="$SND_TG_TOKEN" --secret secret_token=x)
    CT_WA=$(snd_contact whatsapp +4915112345678 "$CH_WA" '1 hour')       # window open
    CT_WA_OLD=$(snd_contact whatsapp +4915187654321 "$CH_WA" '30 hours') # window closed
    CT_SMS=$(snd_contact twilio_sms +4915111111111 "$CH_SMS")
    CT_TWA=$(snd_contact twilio_whatsapp +4915122222222 "$CH_TWA" '2 hours')
    CT_TG=$(snd_contact telegram 987654321 "$CH_TG")
    export T CH_WA CH_SMS CH_TWA CH_TG CT_WA CT_WA_OLD CT_SMS CT_TWA CT_TG
}

# snd_second_tenant - after snd_setup: A, CH_A, CT_A name snd_setup's tenant,
# its WhatsApp channel and contact; B, CH_B, CT_B a second tenant with its
# own WhatsApp channel (same token) and a contact whose window is open. T is
# B afterwards.
snd_second_tenant() {
    A=$T CH_A=$CH_WA CT_A=$CT_WA
    T=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$TN_BIN_DIR/ternctl" tenant add --slug "snd2-$$-$RANDOM" --name Second)
    B=$T
    CH_B=$(snd_channel whatsapp "20$RANDOM$RANDOM" --secret access_token="$SND_WA_TOKEN" --secret app_secret=x)
    CT_B=$(snd_contact whatsapp +4915133333333 "$CH_B" '1 hour')
    export A CH_A CT_A B CH_B CT_B
}

# snd_out_as TENANT ID CHANNEL CONTACT TEXT [EXTRA_JSON] - a text snd_out as
# TENANT on its WhatsApp CHANNEL
snd_out_as() { T=$1 CH_WA=$3 snd_out "$2" "$3" "$4" text "$5" "${6:-"{}"}"; }

# snd_start [VAR=VALUE ...] - tern-sender on the sandbox, ready
snd_start() {
    local port
    port=$(tn_free_port)
    SND_ADMIN=127.0.0.1:$port
    env TN_REDIS_URL="$TN_TEST_REDIS_URL_SENDER" TN_PG_DSN="$TN_TEST_PG_DSN_SENDER" \
        TN_MASTER_KEY="$KEY" TN_ADMIN_LISTEN="$SND_ADMIN" TN_DRAIN_TIMEOUT=3s \
        TN_SUPPRESSION_KEY="$SND_SUPPRESSION_KEY" \
        TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" TN_TWILIO_API_BASE="$SANDBOX_URL/twilio" \
        TN_TELEGRAM_API_BASE="$SANDBOX_URL/telegram" TN_SENDER_POLL=50ms \
        TN_SENDER_TWILIO_STATUS_URL="http://127.0.0.1:9/webhooks/twilio" \
        TN_SENDER_VISIBILITY=2s TN_SENDER_LEASE=3s TN_SENDER_RETRY_BASE=300ms \
        TN_SENDER_RETRY_CAP=2s TN_SENDER_HTTP_TIMEOUT=3s "$@" \
        "$TN_BIN_DIR/tern-sender" >>"$SND_DIR/sender.log" 2>&1 &
    SENDER_PID=$!
    for _ in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$SND_ADMIN/readyz" || true)" = 200 ] && return 0
        kill -0 "$SENDER_PID" 2>/dev/null || snd_fail "tern-sender exited"
        sleep 0.05
    done
    snd_fail "tern-sender not ready"
}

snd_kill9() { kill -9 "$SENDER_PID" 2>/dev/null || true; wait "$SENDER_PID" 2>/dev/null || true; }
snd_stop() {
    [ -n "${SENDER_PID:-}" ] || return 0
    kill -TERM "$SENDER_PID" 2>/dev/null || true
    wait "$SENDER_PID" 2>/dev/null || true
    SENDER_PID=
}

# snd_stop_checked - snd_stop, then fail if the log holds a sanitizer
# report (ASan and UBSan print theirs at exit)
snd_stop_checked() {
    snd_stop
    grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$SND_DIR/sender.log" &&
        snd_fail "sanitizer report: $(grep -m3 -E "Sanitizer|runtime error" "$SND_DIR/sender.log")"
    return 0
}

snd_provider() {
    case $1 in "$CH_WA") echo whatsapp ;; "$CH_TG") echo telegram ;; *) echo twilio ;; esac
}

# snd_out ID CHANNEL CONTACT KIND TEXT [EXTRA_JSON] - an outbound.message on tern:out
snd_out() {
    local id=$1 ch=$2 ct=$3 kind=$4 text=$5 extra=${6:-"{}"} prov data
    prov=$(snd_provider "$ch")
    data=$(jq -cn --arg t "$T" --arg c "$ch" --arg p "$prov" --arg id "$id" --arg ct "$ct" \
        --arg k "$kind" --arg x "$text" --argjson e "$extra" \
        '{tenant:$t, channel:$c, provider:$p, outbound_id:$id, contact_id:$ct, to:"x", kind:$k,
          reason:"reply", created_at:(now|todate)} + (if $x == "" then {} else {text:$x} end) + $e')
    snd_redis XADD tern:out '*' type outbound.message v 1 tenant "$T" \
        trace "00-$(snd_uuid | tr -d -)-$(snd_uuid | tr -d - | cut -c1-16)-01" channel "$ch" \
        provider "$prov" outbound "$id" dedupe "out:$id" data "$data" >/dev/null
}

# snd_status PMID STATUS [OUTBOUND] [CHANNEL] [CODE] - a delivery.status on tern:status
snd_status() {
    local pmid=$1 st=$2 out=${3:-} ch=${4:-$CH_WA} code=${5:-} data args
    data=$(jq -cn --arg t "$T" --arg c "$ch" --arg p "$pmid" --arg s "$st" --arg o "$out" \
        --arg code "$code" \
        '{tenant:$t, channel:$c, provider:"whatsapp", provider_message_id:$p, status:$s,
          raw_status:$s, timestamp:(now|todate), ingested_at:(now|todate),
          errors:(if $code == "" then [] else [{code:($code|tonumber)}] end), raw:{}}
         + (if $o == "" then {} else {outbound_id:$o} end)')
    args=(type delivery.status v 1 tenant "$T" trace "00-$(snd_uuid | tr -d -)-0123456789abcdef-01"
        channel "$ch" provider whatsapp pmid "$pmid" status "$st" dedupe "st:$pmid:$st" data "$data")
    [ -n "$out" ] && args+=(outbound "$out")
    snd_redis XADD tern:status '*' "${args[@]}" >/dev/null
}

snd_row() { snd_sql "SELECT $2 FROM outbound_messages WHERE tenant_id = '$T' AND id = '$1'"; }
snd_state() { snd_row "$1" state; }

# snd_wait_state ID STATE SECONDS
snd_wait_state() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -le $end ]; do
        [ "$(snd_state "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    snd_fail "$1: state $(snd_state "$1"), want $2"
}

# snd_count PROVIDER OUTBOUND - how many requests carried that outbound id
snd_count() {
    sandbox_requests "$1" | jq --arg o "$2" '[.[] | select(.body | contains($o))] | length'
}

snd_cleanup() {
    snd_stop
    sandbox_stop
}
