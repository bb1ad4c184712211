#!/usr/bin/env bash
# tern-sender's batched steps (sender_batch.c): entries already on tern:out
# when it starts arrive in one read and are stored, prepared and recorded as
# batches. Within one batch: every good message is sent exactly once; an
# entry whose bad timestamp makes Postgres refuse the whole batch is redone
# alone and dies "schema.invalid" without taking the others along; an unknown
# contact dies "contact.unknown"; the same outbound id twice is sent once.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_batch.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

good=()
for i in $(seq 1 30); do
    id=$(snd_uuid)
    good+=("$id")
    snd_out "$id" "$CH_WA" "$CT_WA" text "batch $i"
done
bad_time=$(snd_uuid) unknown=$(snd_uuid) twice=$(snd_uuid)
snd_out "$bad_time" "$CH_WA" "$CT_WA" text "bad time" '{"not_before":"not a time"}'
snd_out "$unknown" "$CH_WA" "$(snd_uuid)" text "nobody"
snd_out "$twice" "$CH_WA" "$CT_WA" text "once"
snd_out "$twice" "$CH_WA" "$CT_WA" text "once"
snd_out "$(snd_uuid)" "$CH_TG" "$CT_TG" text "another channel in the same batch"

snd_start
for id in "${good[@]}" "$twice"; do snd_wait_state "$id" sent 15; done
for id in "${good[@]}" "$twice"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done

# dead_reason ID - the dead letter's reason for outbound ID
dead_reason() {
    snd_redis --json XRANGE tern:out:dead - + 2>/dev/null | jq -r --arg o "$1" \
        '.[] | .[1] | if type == "array" then [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add else . end
         | select(.outbound == $o) | .dead_reason' | head -1
}
end=$((SECONDS + 10))
while [ $SECONDS -le $end ]; do
    [ -n "$(dead_reason "$bad_time")" ] && [ -n "$(dead_reason "$unknown")" ] && break
    sleep 0.2
done
[ "$(dead_reason "$bad_time")" = schema.invalid ] || snd_fail "bad timestamp: '$(dead_reason "$bad_time")'"
[ "$(dead_reason "$unknown")" = contact.unknown ] || snd_fail "unknown contact: '$(dead_reason "$unknown")'"
[ -z "$(snd_row "$bad_time" id)" ] || snd_fail "bad timestamp: a row was stored"
[ -z "$(snd_row "$unknown" id)" ] || snd_fail "unknown contact: a row was stored"
echo "batch ok: ${#good[@]} sent once, bad timestamp and unknown contact dead alone, duplicate sent once"
