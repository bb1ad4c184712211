#!/usr/bin/env bash
# tern-sender: a fresh tern:out entry that finds every job slot taken waits
# for one (TN_SENDER_INTAKE_WAIT) instead of going through the schedule at
# once, and the wait is bounded. With 2 slots: 6 messages are all decided
# and recorded 'sending' by intake (as slots free up), each sent once; then,
# with both slots held by two slow sends (6 s), 4 more entries wait 1 s,
# are stored 'queued' and acknowledged (not held until a slot frees), and
# go out through the schedule once the slots are free, each once.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_intake_wait.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"
# the wait is capped at a quarter of the visibility timeout: 8 s allows 1 s;
# the HTTP timeout outlasts the slow sends below
snd_start TN_SENDER_RATE_WHATSAPP=0 TN_SENDER_CONCURRENCY=2 TN_SENDER_INTAKE_WAIT=1s \
    TN_SENDER_VISIBILITY=8s TN_SENDER_HTTP_TIMEOUT=15s

# sent_once ID... - each was sent, and the sandbox saw it once
sent_once() {
    for id in "$@"; do
        snd_wait_state "$id" sent 20
        [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: $(snd_count whatsapp "$id") requests"
    done
}

# from_intake ID... - how many of them intake decided ('sending' in the INSERT)
from_intake() {
    local list
    list=$(printf "'%s'," "$@")
    snd_sql "SELECT count(*) FROM outbound_messages WHERE id IN (${list%,})
             AND sending_at = created_at AND attempts = 1"
}

# resp ARG... - one command in the Redis protocol (ASCII arguments)
resp() {
    printf '*%d\r\n' $#
    for a in "$@"; do printf '$%d\r\n%s\r\n' "${#a}" "$a"; done
}

# burst ID... - one text message each on tern:out, in one write (they arrive
# together, as a burst does: one stream read, more entries than slots)
burst() {
    local id data
    for id in "$@"; do
        data=$(jq -cn --arg t "$T" --arg c "$CH_WA" --arg id "$id" --arg ct "$CT_WA" \
            '{tenant:$t, channel:$c, provider:"whatsapp", outbound_id:$id, contact_id:$ct,
              to:"x", kind:"text", text:"burst", reason:"reply", created_at:(now|todate)}')
        resp XADD tern:out '*' type outbound.message v 1 tenant "$T" \
            trace "00-$(snd_uuid | tr -d -)-$(snd_uuid | tr -d - | cut -c1-16)-01" \
            channel "$CH_WA" provider whatsapp outbound "$id" dedupe "out:$id" data "$data"
    done >"$dir/burst.resp"
    snd_redis --pipe <"$dir/burst.resp" >/dev/null
}

# --- more entries than slots: they wait for slots and intake sends them all
ids=()
for i in 1 2 3 4 5 6; do ids+=("$(snd_uuid)"); done
burst "${ids[@]}"
sent_once "${ids[@]}"
n=$(from_intake "${ids[@]}")
[ "$n" = 6 ] || snd_fail "decided at intake: $n of 6"
echo "slot wait ok: 6 messages on 2 slots, all sent once from intake"

# --- slots held by slow sends: the wait ends, the entries take the schedule
sandbox_script whatsapp '[{"delay_ms":6000},{"delay_ms":6000}]'
slow=("$(snd_uuid)" "$(snd_uuid)")
for id in "${slow[@]}"; do snd_out "$id" "$CH_WA" "$CT_WA" text "slow"; done
snd_wait_state "${slow[0]}" sending 5
snd_wait_state "${slow[1]}" sending 5
more=()
for i in 1 2 3 4; do more+=("$(snd_uuid)"); done
burst "${more[@]}"
sleep 2.5 # the 1 s wait, the INSERT and the acknowledgement; the slow sends still run
[ "$(snd_state "${slow[0]}")" = sending ] || snd_fail "slow send finished early: the check below proves nothing"
pending=$(snd_redis XPENDING tern:out sender | head -1)
[ "$pending" = 0 ] || snd_fail "$pending entries still held after the wait"
for id in "${more[@]}"; do
    [ "$(snd_state "$id")" = queued ] || snd_fail "$id: $(snd_state "$id") while the slots were taken"
done
sent_once "${slow[@]}" "${more[@]}"
n=$(from_intake "${more[@]}")
[ "$n" = 0 ] || snd_fail "overflow decided at intake: $n of 4"
echo "bounded wait ok: 4 entries acknowledged after 1 s, sent through the schedule once each"
