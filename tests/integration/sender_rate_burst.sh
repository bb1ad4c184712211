#!/usr/bin/env bash
# A burst larger than a sending identity's token bucket (sender_rate.c):
# 30 WhatsApp messages on one phone number at 10 a second (burst 10). The
# first ten go at once, the rest wait on the schedule for their tokens and
# go out spaced at the rate: all 30 sent, each once, within a few seconds,
# and never faster than the bucket allows. Telegram has two buckets, the
# bot's and the chat's: 6 messages to one chat with the bot at 2 a second
# (burst 2) and the chat at 1 a second (burst 3). Those the bot's bucket
# holds back must still wait for the chat's.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_rate_burst.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

ids=() tg=()
for i in $(seq 1 30); do
    id=$(snd_uuid)
    ids+=("$id")
    snd_out "$id" "$CH_WA" "$CT_WA" text "burst $i"
done
for i in $(seq 1 6); do
    id=$(snd_uuid)
    tg+=("$id")
    snd_out "$id" "$CH_TG" "$CT_TG" text "chat $i"
done
snd_start TN_SENDER_RATE_WHATSAPP=10 TN_SENDER_RATE_TELEGRAM=2 TN_SENDER_RATE_TELEGRAM_CHAT=1
for id in "${ids[@]}" "${tg[@]}"; do snd_wait_state "$id" sent 10; done
for id in "${ids[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
for i in $(seq 1 6); do # Telegram's body does not carry the outbound id: its text
    [ "$(snd_count telegram "chat $i\"")" = 1 ] || snd_fail "chat $i: sent $(snd_count telegram "chat $i\"") times"
done
# rate_kept TIMES FROM PERIOD_MS - the sends from index FROM on (when the
# sandbox received them) came no faster than one a PERIOD_MS, allowing
# 150 ms for the schedule's poll and the call
rate_kept() {
    jq -e --argjson f "$2" --argjson p "$3" '. as $t | [range($f; length) | . as $i
        | select(($i - $f) > (($t[$i] - $t[$f] + 150) / $p | floor))] | length == 0' <<<"$1" >/dev/null
}
ts=$(sandbox_requests whatsapp | jq '[.[] | select(.body | contains("burst ")) | .ts_ms] | sort')
span=$(jq '.[-1] - .[0]' <<<"$ts")
# the first 10 at once, the 11th on at 10 a second
rate_kept "$ts" 10 100 || snd_fail "faster than 10 a second after the burst: $ts"
tts=$(sandbox_requests telegram | jq '[.[] | select(.body | contains("chat ")) | .ts_ms] | sort')
tspan=$(jq '.[-1] - .[0]' <<<"$tts")
# the chat's 3 at once (the bot's 2, then its next token), the 4th on at 1 a second
rate_kept "$tts" 3 1000 || snd_fail "faster than 1 a second to one chat: $tts"
echo "rate ok: 30 sent once each over $span ms at 10 a second; 6 to one chat over $tspan ms at 1 a second"
snd_stop_checked
