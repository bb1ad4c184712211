#!/usr/bin/env bash
# A burst larger than a sending identity's token bucket (sender_rate.c):
# 30 WhatsApp messages on one phone number at 10 a second (burst 10). The
# first ten go at once, the rest wait on the schedule for their tokens and
# go out spaced at the rate: all 30 sent, each once, within a few seconds,
# and never faster than the bucket allows. The same for Telegram's second
# bucket, per chat: 6 messages to one chat at 1 a second (burst 3).
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
snd_start TN_SENDER_RATE_WHATSAPP=10 TN_SENDER_RATE_TELEGRAM_CHAT=1
for id in "${ids[@]}" "${tg[@]}"; do snd_wait_state "$id" sent 10; done
for id in "${ids[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
for i in $(seq 1 6); do # Telegram's body does not carry the outbound id: its text
    [ "$(snd_count telegram "chat $i\"")" = 1 ] || snd_fail "chat $i: sent $(snd_count telegram "chat $i\"") times"
done
# when the sandbox received them: the bucket allows 10 at once and 10 a
# second after, so the 30th came no sooner than 2 s after the first
ts=$(sandbox_requests whatsapp | jq '[.[] | select(.body | contains("burst ")) | .ts_ms] | sort')
span=$(jq '.[-1] - .[0]' <<<"$ts")
[ "$span" -ge 1900 ] || snd_fail "30 sends within $span ms: faster than 10 a second"
# at most 10 + 10 a second from the first on (the bucket fills from when
# intake first used it, a few tens of ms before the sandbox saw the first:
# 60 ms of slack)
jq -e '. as $t | [range(0; length) | . as $i | ($t[$i] - $t[0]) as $d
        | select($i + 1 > 10 + (($d + 60) / 100 | floor))] | length == 0' <<<"$ts" >/dev/null ||
    snd_fail "a send came before its token: $ts"
tts=$(sandbox_requests telegram | jq '[.[] | select(.body | contains("chat ")) | .ts_ms] | sort')
tspan=$(jq '.[-1] - .[0]' <<<"$tts")
[ "$tspan" -ge 2900 ] || snd_fail "6 sends to one chat within $tspan ms: faster than 1 a second"
echo "rate ok: 30 sent once each over $span ms at 10 a second; 6 to one chat over $tspan ms at 1 a second"
snd_stop_checked
