#!/usr/bin/env bash
# One tenant's burst cannot starve another (sender_sched.c): with 4 job
# slots and a provider that takes 200 ms a call, tenant A's 100 messages
# need 5 s. Tenant B writes 4 messages while A's burst is going out; every
# claim gives each tenant with something due its share of the free slots,
# so B's 4 go out within about a second, long before A's last, and
# everything is sent once.
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
t0=$(date +%s%3N)
for i in 1 2 3 4; do
    id=$(snd_uuid)
    ids_b+=("$id")
    snd_out_as "$B" "$id" "$CH_B" "$CT_B" "b $i"
done
for id in "${ids_b[@]}"; do T=$B snd_wait_state "$id" sent 10; done
t_b=$(date +%s%3N)
left=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id = '$A' AND state <> 'sent'")
[ "$left" -gt 30 ] || snd_fail "B waited for A's burst: only $left of A's left when B's were sent"
[ $((t_b - t0)) -lt 1500 ] || snd_fail "B's 4 messages took $((t_b - t0)) ms behind A's burst"
for id in "${ids_a[@]}"; do T=$A snd_wait_state "$id" sent 20; done
for id in "${ids_a[@]}" "${ids_b[@]}"; do
    [ "$(snd_count whatsapp "$id")" = 1 ] || snd_fail "$id: sent $(snd_count whatsapp "$id") times"
done
snd_stop_checked
echo "fairness ok: B's 4 sent $((t_b - t0)) ms after they were written, with $left of A's 100 still waiting"
