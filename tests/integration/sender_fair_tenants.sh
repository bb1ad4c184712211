#!/usr/bin/env bash
# One tenant's burst cannot starve another (sender_sched.c): with 4 job
# slots and a provider that takes 200 ms a call, tenant A's 100 messages
# need 5 s. Tenant B writes 4 messages while A's burst is going out; every
# claim gives each tenant with something due its share of the free slots,
# so B's 4 go out within about a second, seconds before A's last (the
# sandbox's receive times), and everything is sent once.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_fair_tenants.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"

snd_second_tenant

sandbox_config '{"provider":"whatsapp","latency_ms":200}'
ids_a=() ids_b=()
for i in $(seq 1 100); do
    id=$(snd_uuid)
    ids_a+=("$id")
    snd_out_as "$A" "$id" "$CH_A" "$CT_A" "burst a $i"
done
snd_start TN_SENDER_CONCURRENCY=4 TN_SENDER_RATE_WHATSAPP=0
sleep 0.5 # A's burst is going out
for i in 1 2 3 4; do
    id=$(snd_uuid)
    ids_b+=("$id")
    snd_out_as "$B" "$id" "$CH_B" "$CT_B" "b $i"
done
for id in "${ids_b[@]}"; do T=$B snd_wait_state "$id" sent 10; done
for id in "${ids_a[@]}"; do T=$A snd_wait_state "$id" sent 20; done
for id in "${ids_a[@]}" "${ids_b[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
# when the sandbox received each tenant's last: B's well before A's
last() { sandbox_requests whatsapp | jq --arg p "$1" '[.[] | select(.body | contains($p)) | .ts_ms] | max'; }
la=$(last "burst a ") lb=$(last '"b ')
[ $((la - lb)) -ge 2000 ] || snd_fail "B's last went $((la - lb)) ms before A's last: it waited for A's burst"
snd_stop_checked
echo "fairness ok: B's 4 out $((la - lb)) ms before the last of A's 100"
