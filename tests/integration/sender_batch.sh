#!/usr/bin/env bash
# tern-sender's batched steps (sender_batch.c): entries already on tern:out
# when it starts arrive in one read and are stored, prepared and recorded as
# batches. Within one batch: every good message is sent exactly once; an
# entry whose bad timestamp makes Postgres refuse the whole batch is redone
# alone and dies "schema.invalid" without taking the others along; an unknown
# contact dies "contact.unknown"; the same outbound id twice is sent once.
# Then a batch without a bad entry, decided and recorded 'sending' by intake
# itself (sender_out.c: the row is inserted already 'sending', 'failed' or
# sent as its template): each message once, duplicates (a uuid id, and an
# outbound_id that is not a uuid) once, consent and the 24-hour window
# applied there, and a redelivery of a sent message not sent again.
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

# --- phase 2: one batch decided at intake
snd_stop
opted=$(snd_contact whatsapp +4915199999999 "$CH_WA" '1 hour')
snd_sql "UPDATE contacts SET opted_out_at = now() WHERE id = '$opted'" >/dev/null
good2=()
for i in $(seq 1 20); do
    id=$(snd_uuid)
    good2+=("$id")
    snd_out "$id" "$CH_WA" "$CT_WA" text "intake $i"
done
twice2=$(snd_uuid) ext="ext-$(snd_uuid)" no=$(snd_uuid) closed=$(snd_uuid) tpl=$(snd_uuid)
snd_out "$twice2" "$CH_WA" "$CT_WA" text "once"
snd_out "$twice2" "$CH_WA" "$CT_WA" text "once"
snd_out "$ext" "$CH_WA" "$CT_WA" text "not a uuid id"
snd_out "$ext" "$CH_WA" "$CT_WA" text "not a uuid id"
snd_out "$no" "$CH_WA" "$opted" text "opted out"
snd_out "$closed" "$CH_WA" "$CT_WA_OLD" text "window closed"
snd_out "$tpl" "$CH_WA" "$CT_WA_OLD" text "window closed" \
    '{"template":{"name":"booking_followup","language":"en_US","variables":["Sam"]}}'
snd_out "${good[0]}" "$CH_WA" "$CT_WA" text "batch 1" # a redelivery: sent already
byaddr=$(snd_uuid) # no contact_id: the channel's contact with that address
snd_out "$byaddr" "$CH_WA" "$CT_WA" text "by address" '{"contact_id":null,"to":"+4915112345678"}'
snd_start
ext_id=$(snd_sql "SELECT id FROM outbound_messages WHERE tenant_id = '$T' AND idempotency_key = '$ext'")
for id in "${good2[@]}" "$twice2" "$tpl" "$byaddr"; do snd_wait_state "$id" sent 15; done
[ "$(snd_row "$byaddr" contact_id)" = "$CT_WA" ] || snd_fail "by address: contact $(snd_row "$byaddr" contact_id)"
snd_wait_state "$ext_id" sent 15
snd_wait_state "$no" failed 15
snd_wait_state "$closed" failed 15
sleep 0.5 # anything sent twice would have arrived by now
for id in "${good2[@]}" "$twice2" "$ext_id" "$tpl" "$byaddr" "${good[0]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
[ "$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id = '$T' AND idempotency_key = '$ext'")" = 1 ] ||
    snd_fail "$ext: more than one row"
for id in "$no" "$closed"; do
    [ "$(snd_count whatsapp "$id")" = 0 ] || snd_fail "$id: sent although refused"
done
[ "$(snd_row "$no" last_error_code)" = opted_out ] || snd_fail "opted out: $(snd_row "$no" last_error_code)"
[ "$(snd_row "$closed" last_error_code)" = window_closed ] || snd_fail "window: $(snd_row "$closed" last_error_code)"
sandbox_requests whatsapp | jq -e --arg o "$tpl" '[.[] | select(.json.biz_opaque_callback_data == $o)]
    | length == 1 and .[0].json.type == "template"' >/dev/null || snd_fail "window closed: not the template"
# they were decided by intake: 'sending' recorded in the INSERT's transaction, one attempt
ids_sql=$(printf "'%s'," "${good2[@]}" "$twice2" "$ext_id" "$tpl" "$byaddr")
n=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id = '$T' AND id IN (${ids_sql%,})
             AND sending_at = created_at AND attempts = 1")
[ "$n" = $((${#good2[@]} + 4)) ] || snd_fail "decided at intake: $n of $((${#good2[@]} + 4))"
echo "intake batch ok: ${#good2[@]} + 4 sent once from intake, duplicates once, consent and window applied"
