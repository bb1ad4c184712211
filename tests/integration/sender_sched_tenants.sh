#!/usr/bin/env bash
# tern-sender's schedule with two tenants (sender_sched.c): the script calls
# carry one ZADD or ZREM per run of one tenant's members and update the
# index (tern:sched) once per tenant. Interleaved writes of two tenants,
# all sent once, leave the schedule empty: no member left, no tenant in the
# index. Later sends of both wait on the schedule, with each tenant in the
# index at its earliest due time, and leave it empty again once sent.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_sched_tenants.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

snd_second_tenant

score() { snd_redis ZSCORE "$1" "$2"; }
first() { snd_redis ZRANGE "tern:sched:$1" 0 0 WITHSCORES | sed -n 2p; }
# zcard_is TENANT N - within 3 s (a sent member leaves at the next flush)
zcard_is() {
    for _ in $(seq 1 30); do
        [ "$(snd_redis ZCARD "tern:sched:$1")" = "$2" ] && return 0
        sleep 0.1
    done
    snd_fail "$1: $(snd_redis ZCARD "tern:sched:$1") members on the schedule, want $2"
}
# sent_is N - N rows of both tenants 'sent' within 20 s
sent_is() {
    local n
    for _ in $(seq 1 200); do
        n=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id IN ('$A', '$B') AND state = 'sent'")
        [ "$n" = "$1" ] && return 0
        sleep 0.1
    done
    snd_fail "$n of $1 sent"
}
# empty - neither tenant has a member left or a place in the index
empty() {
    for t in "$A" "$B"; do
        zcard_is "$t" 0
        [ -z "$(score tern:sched "$t")" ] || snd_fail "tenant left in the index at $(score tern:sched "$t")"
    done
}

ids=()
for i in $(seq 1 20); do # interleaved: A, B, A, B, ...
    a=$(snd_uuid) b=$(snd_uuid)
    ids+=("$a" "$b")
    snd_out_as "$A" "$a" "$CH_A" "$CT_A" "a $i"
    snd_out_as "$B" "$b" "$CH_B" "$CT_B" "b $i"
done
snd_start
sent_is 40
empty

# later sends: they wait on the schedule, and the index holds each tenant
# at its earliest member's due time (written before the sends are due:
# the first is 3 s away)
now_ms=$(date +%s%3N)
due_a=$((now_ms + 3000)) due_b=$((now_ms + 2000))
iso() { date -u -d "@$(($1 / 1000)).$(printf %03d $(($1 % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ; }
later=()
for i in 1 2 3; do
    a=$(snd_uuid) b=$(snd_uuid)
    later+=("$a" "$b")
    snd_out_as "$A" "$a" "$CH_A" "$CT_A" "later a $i" "{\"not_before\":\"$(iso $((due_a + i * 1000)))\"}"
    snd_out_as "$B" "$b" "$CH_B" "$CT_B" "later b $i" "{\"not_before\":\"$(iso $((due_b + i * 1000)))\"}"
done
zcard_is "$A" 3
zcard_is "$B" 3
[ "$(date +%s%3N)" -lt $((due_b + 1000)) ] || snd_fail "too slow: the first later send is due"
for t in "$A" "$B"; do
    [ "$(score tern:sched "$t")" = "$(first "$t")" ] ||
        snd_fail "index: tenant at $(score tern:sched "$t"), its first member at $(first "$t")"
done
[ "$(first "$A")" = $((due_a + 1000)) ] || snd_fail "A's first member due at $(first "$A"), not $((due_a + 1000))"
[ "$(first "$B")" = $((due_b + 1000)) ] || snd_fail "B's first member due at $(first "$B"), not $((due_b + 1000))"
[ "$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id IN ('$A', '$B') AND state = 'queued'")" = 6 ] ||
    snd_fail "a later message went before its time"
sent_is 46
sleep 0.5 # anything sent twice has arrived
for id in "${ids[@]}" "${later[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
empty
snd_stop_checked
echo "schedule ok: two tenants, 46 sent once each, the index at each tenant's first due time, empty after"
