#!/usr/bin/env bash
# kill -9 of tern-sender in the middle of a burst of 1,000 WhatsApp sends:
# after a restart every message is delivered and none reaches the sandbox
# twice. Between the kill and the restart the test plays the provider's
# status webhooks (a 'sent' echo carrying our outbound id in
# biz_opaque_callback_data) for every request the sandbox accepted, as
# tern-ingest would publish them: a row left in 'sending' whose send was
# accepted is closed by its echo; one whose request never arrived is sent
# again after TN_SENDER_ECHO_WAIT.
set -euo pipefail
. "$TN_SRC_DIR/tests/bench/sender/lib.sh"
dir=$(mktemp -d "$TN_TEST_TMP/sender_kill.XXXXXX")
trap snd_cleanup EXIT
snd_setup "$dir"
N=${SENDER_KILL_N:-1000}
sandbox_config '{"provider":"whatsapp","latency_ms":15}'
opts=(TN_SENDER_RATE_WHATSAPP=0 TN_SENDER_ECHO_WAIT=4s TN_SENDER_CONCURRENCY=32)
snd_start "${opts[@]}"

# The burst: N outbound.message entries in one redis-cli --pipe.
python3 - "$T" "$CH_WA" "$CT_WA" "$N" >"$dir/ids" 3>"$dir/burst.resp" <<'EOF'
import json, os, sys, uuid
t, ch, ct, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = os.fdopen(3, "w")
for i in range(n):
    oid = str(uuid.uuid4())
    print(oid)
    data = json.dumps({"tenant": t, "channel": ch, "provider": "whatsapp", "outbound_id": oid,
                       "contact_id": ct, "to": "x", "kind": "text", "text": "burst %d" % i,
                       "reason": "notice", "created_at": "2026-01-01T00:00:00Z"})
    args = ["XADD", "tern:out", "*", "type", "outbound.message", "v", "1", "tenant", t,
            "trace", "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16]), "channel", ch,
            "provider", "whatsapp", "outbound", oid, "dedupe", "out:" + oid, "data", data]
    out.write("*%d\r\n" % len(args))
    for a in args:
        out.write("$%d\r\n%s\r\n" % (len(a.encode()), a))
EOF
snd_redis --pipe <"$dir/burst.resp" >/dev/null

# kill -9 once a third has reached the sandbox
stats() { curl -s "$SANDBOX_URL/_sandbox/stats" | jq '.requests.whatsapp // 0'; }
end=$((SECONDS + 20))
while [ "$(stats)" -lt $((N / 3)) ]; do
    [ $SECONDS -le $end ] || snd_fail "burst too slow: $(stats)"
    sleep 0.05
done
snd_kill9
before=$(stats)
echo "killed after $before accepted sends"

# the provider's echoes of everything it accepted
sandbox_requests whatsapp | jq -r '.[].json.biz_opaque_callback_data' >"$dir/accepted"
python3 - "$T" "$CH_WA" "$dir/accepted" >"$dir/echo.resp" <<'EOF'
import json, sys, uuid
t, ch = sys.argv[1], sys.argv[2]
for line in open(sys.argv[3]):
    o = line.strip()
    pmid = "wamid.echo." + o
    data = json.dumps({"tenant": t, "channel": ch, "provider": "whatsapp",
                       "provider_message_id": pmid, "status": "sent", "raw_status": "sent",
                       "timestamp": "2026-01-01T00:00:00Z", "ingested_at": "2026-01-01T00:00:00Z",
                       "errors": [], "outbound_id": o, "raw": {}})
    args = ["XADD", "tern:status", "*", "type", "delivery.status", "v", "1", "tenant", t,
            "trace", "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16]), "channel", ch,
            "provider", "whatsapp", "pmid", pmid, "status", "sent", "outbound", o,
            "dedupe", "wa:st:%s:sent" % pmid, "data", data]
    sys.stdout.write("*%d\r\n" % len(args))
    for a in args:
        sys.stdout.write("$%d\r\n%s\r\n" % (len(a.encode()), a))
EOF
snd_redis --pipe <"$dir/echo.resp" >/dev/null
[ -s "$dir/echo.resp" ] || snd_fail "no echoes written"

snd_start "${opts[@]}"
ids_sql=$(sed "s/.*/'&'/" "$dir/ids" | paste -sd,)
end=$((SECONDS + 40))
while :; do
    done_n=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id = '$T' AND state = 'sent' AND id IN ($ids_sql)")
    [ "$done_n" = "$N" ] && break
    [ $SECONDS -le $end ] || snd_fail "only $done_n of $N sent: $(snd_sql "SELECT state, count(*) FROM outbound_messages WHERE tenant_id = '$T' GROUP BY 1")"
    sleep 0.2
done
sandbox_requests whatsapp | jq -r '.[].json.biz_opaque_callback_data' | sort >"$dir/got"
dups=$(uniq -d "$dir/got" | wc -l)
total=$(wc -l <"$dir/got")
[ "$dups" = 0 ] || snd_fail "$dups messages reached the sandbox twice"
[ "$total" = "$N" ] || snd_fail "$total requests for $N messages"
sort "$dir/ids" | cmp -s - "$dir/got" || snd_fail "the sandbox did not get exactly our messages"
snd_stop
echo "ok: $N delivered exactly once across a kill -9 ($before before it)"
