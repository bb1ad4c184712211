#!/usr/bin/env bash
# tern-sender's schedule with two tenants in the same batches
# (sender_sched.c): the script calls carry one ZADD or ZREM per run of one
# tenant's members, so interleaved tenants make many runs in one call.
# Later sends of both tenants wait on the schedule, and the index
# (tern:sched) holds each tenant at its earliest due time; once everything
# is sent, every message went out once and the schedule is empty: no member
# left, no tenant left in the index.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_sched_tenants.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

snd_second_tenant

now_ms=$(date +%s%3N)
due_a=$((now_ms + 6000)) due_b=$((now_ms + 5000))
iso() { date -u -d "@$(($1 / 1000)).$(printf %03d $(($1 % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ; }
ids_a=() ids_b=() later=()
for i in $(seq 1 20); do # interleaved: A, B, A, B, ...
    a=$(snd_uuid) b=$(snd_uuid)
    ids_a+=("$a") ids_b+=("$b")
    snd_out_as "$A" "$a" "$CH_A" "$CT_A" "a $i"
    snd_out_as "$B" "$b" "$CH_B" "$CT_B" "b $i"
done
for i in 1 2 3; do # later: each tenant's earliest due time is its index score
    a=$(snd_uuid) b=$(snd_uuid)
    later+=("$a" "$b")
    snd_out_as "$A" "$a" "$CH_A" "$CT_A" "later a $i" "{\"not_before\":\"$(iso $((due_a + i * 1000)))\"}"
    snd_out_as "$B" "$b" "$CH_B" "$CT_B" "later b $i" "{\"not_before\":\"$(iso $((due_b + i * 1000)))\"}"
done

snd_start
for id in "${ids_a[@]}"; do T=$A snd_wait_state "$id" sent 15; done
for id in "${ids_b[@]}"; do T=$B snd_wait_state "$id" sent 15; done

# the later ones wait on the schedule; the index holds each tenant at its
# earliest member's due time
score() { snd_redis ZSCORE "$1" "$2"; }
first() { snd_redis ZRANGE "tern:sched:$1" 0 0 WITHSCORES | sed -n 2p; }
# zcard_is TENANT N - within 2 s (a sent member leaves at the next flush)
zcard_is() {
    for _ in $(seq 1 20); do
        [ "$(snd_redis ZCARD "tern:sched:$1")" = "$2" ] && return 0
        sleep 0.1
    done
    snd_fail "$1: $(snd_redis ZCARD "tern:sched:$1") members on the schedule, want $2"
}
zcard_is "$A" 3
zcard_is "$B" 3
[ "$(date +%s%3N)" -lt $((due_b + 1000)) ] || snd_fail "too slow: the first later send is due"
for t in "$A" "$B"; do
    [ "$(score tern:sched "$t")" = "$(first "$t")" ] ||
        snd_fail "index: tenant at $(score tern:sched "$t"), its first member at $(first "$t")"
done
[ "$(first "$A")" = $((due_a + 1000)) ] || snd_fail "A's first member due at $(first "$A"), not $((due_a + 1000))"
[ "$(first "$B")" = $((due_b + 1000)) ] || snd_fail "B's first member due at $(first "$B"), not $((due_b + 1000))"

for i in 0 2 4; do [ "$(T=$A snd_state "${later[$i]}")" = queued ] || snd_fail "A: sent before its time"; done
for i in 1 3 5; do [ "$(T=$B snd_state "${later[$i]}")" = queued ] || snd_fail "B: sent before its time"; done
for i in 0 2 4; do T=$A snd_wait_state "${later[$i]}" sent 15; done
for i in 1 3 5; do T=$B snd_wait_state "${later[$i]}" sent 15; done
sleep 0.5 # the last removals go with the next flush; anything sent twice arrives
for id in "${ids_a[@]}" "${ids_b[@]}" "${later[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
for t in "$A" "$B"; do
    [ "$(snd_redis ZCARD "tern:sched:$t")" = 0 ] || snd_fail "members left: $(snd_redis ZRANGE "tern:sched:$t" 0 -1)"
    [ -z "$(score tern:sched "$t")" ] || snd_fail "tenant left in the index at $(score tern:sched "$t")"
done
snd_stop_checked
echo "schedule ok: two tenants interleaved, 46 sent once each, index at each tenant's first due time, empty after"
