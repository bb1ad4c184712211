#!/usr/bin/env bash
# tern-sender under provider faults (sandbox fault injection): 500 twice then
# success is delivered once, with backoff between attempts; a 429 with
# Retry-After gets no attempt before it (WhatsApp header, Telegram
# retry_after); a final error fails at once with the provider's code; the
# attempt limit dead-letters the message to tern:out:dead with its reason,
# `ternctl dead list/show` see it and `ternctl dead replay` delivers it.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_faults.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"
snd_start TN_SENDER_MAX_ATTEMPTS=3

# times ID - the sandbox's arrival times (ms) of the attempts for ID
times() {
    sandbox_requests whatsapp | jq -c --arg o "$1" '[.[] | select(.json.biz_opaque_callback_data == $o) | .ts_ms]'
}

# --- 500, 500, then accepted: sent once, attempts spaced by the backoff
id=$(snd_uuid)
sandbox_fault '{"provider":"whatsapp","status":500,"count":2}'
snd_out "$id" "$CH_WA" "$CT_WA" text "retry me"
snd_wait_state "$id" sent 10
t=$(times "$id")
[ "$(jq length <<<"$t")" = 3 ] || snd_fail "500 x2: attempts $t"
jq -e '(.[1] - .[0]) >= 150 and (.[2] - .[1]) >= 300' <<<"$t" >/dev/null || snd_fail "no backoff: $t"
[ "$(snd_row "$id" attempts)" = 3 ] || snd_fail "attempts not counted"
echo "500 then recover ok: $t"

# --- 429 with Retry-After: 2 s
id=$(snd_uuid)
sandbox_fault '{"provider":"whatsapp","status":429,"count":1,"retry_after":2,"code":130429}'
snd_out "$id" "$CH_WA" "$CT_WA" text "slow down"
snd_wait_state "$id" sent 10
t=$(times "$id")
jq -e 'length == 2 and (.[1] - .[0]) >= 2000' <<<"$t" >/dev/null || snd_fail "Retry-After not honoured: $t"
echo "429 Retry-After ok: $t"

# --- Telegram 429 with parameters.retry_after: 1 s
id=$(snd_uuid)
sandbox_fault '{"provider":"telegram","status":429,"count":1,"retry_after":1}'
snd_out "$id" "$CH_TG" "$CT_TG" text "tg-$id"
snd_wait_state "$id" sent 10
t=$(sandbox_requests telegram | jq -c --arg x "tg-$id" '[.[] | select(.json.text == $x) | .ts_ms]')
jq -e 'length == 2 and (.[1] - .[0]) >= 1000' <<<"$t" >/dev/null || snd_fail "retry_after not honoured: $t"
echo "telegram retry_after ok: $t"

# --- final error: failed at once with the code
id=$(snd_uuid)
sandbox_fault '{"provider":"whatsapp","status":400,"count":1,"code":131026}'
snd_out "$id" "$CH_WA" "$CT_WA" text "undeliverable"
snd_wait_state "$id" failed 5
[ "$(snd_row "$id" last_error_code)" = 131026 ] || snd_fail "code not recorded"
sleep 0.5
[ "$(jq length <<<"$(times "$id")")" = 1 ] || snd_fail "a final error was retried"
echo "final error ok"

# --- attempt limit (3): dead letter, then ternctl dead replay delivers
id=$(snd_uuid)
sandbox_fault '{"provider":"whatsapp","status":503,"count":3}'
snd_out "$id" "$CH_WA" "$CT_WA" text "dead then replayed"
snd_wait_state "$id" dead 10
ctl() { TN_REDIS_URL=$TN_TEST_REDIS_URL_CTL TN_PG_DSN=$TN_TEST_PG_DSN_CTL "$TN_BIN_DIR/ternctl" dead "$@"; }
dead=$(ctl list --json | jq -r --arg o "$id" '.[] | select(.outbound == $o) | .id')
[ -n "$dead" ] || snd_fail "no dead letter for $id: $(ctl list --json)"
ctl list --json | jq -e --arg o "$id" '.[] | select(.outbound == $o) |
    (.reason | startswith("attempts.exceeded:")) and .deliveries == "3"' >/dev/null || snd_fail "dead reason"
ctl show "$dead" | jq -e '.fields | .type == "outbound.message" and .dead_from_id != null
    and (.data | fromjson | .text == "dead then replayed" and .kind == "text")' >/dev/null ||
    snd_fail "dead show: $(ctl show "$dead")"
if command -v node >/dev/null && [ -f "$TN_SRC_DIR/tests/tools/validate-entries.mjs" ]; then
    ctl show "$dead" | jq -c '{stream: "tern:out:dead", fields: .fields}' >"$dir/dead.jsonl"
    node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/dead.jsonl" >"$dir/validate.out" 2>&1 ||
        snd_fail "dead entry breaks the contract: $(cat "$dir/validate.out")"
fi
ctl replay "$dead" >/dev/null || snd_fail "replay failed"
snd_wait_state "$id" sent 10
[ "$(jq length <<<"$(times "$id")")" = 4 ] || snd_fail "replay: attempts $(times "$id")"
ctl list --json | jq -e --arg d "$dead" 'all(.[]; .id != $d)' >/dev/null || snd_fail "dead entry kept"
echo "dead letter and replay ok"

snd_stop
echo ok
