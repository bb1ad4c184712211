#!/usr/bin/env bash
# tests/bench/sender/run.sh [N] - tern-sender throughput through the provider
# sandbox (not a ctest). Starts its own Redis and Postgres (scripts/lib),
# queues N WhatsApp messages (default 50000) on tern:out, starts tern-sender
# with rate limits lifted, and prints messages/s (first entry read to last
# row sent) and tern-sender's CPU time per message.
#   TN_BUILD_DIR  build directory (default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
N=${1:-50000}
. "$root/scripts/lib/stack.sh"
tmp=$(mktemp -d /tmp/tern-bench-sender.XXXXXX)
cleanup() { snd_cleanup 2>/dev/null || true; tn_stack_stop "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT
tn_stack_start "$tmp" "$root" >/dev/null
. "$tmp/env"
export TN_BIN_DIR=${TN_BUILD_DIR:-$root/build}/services TN_SRC_DIR=$root TN_ALLOW_ROOT=1
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$TN_BIN_DIR/ternctl" migrate >/dev/null
. "$root/tests/bench/sender/lib.sh"
snd_setup "$tmp/scratch"

python3 - "$T" "$CH_WA" "$CT_WA" "$N" >"$tmp/burst.resp" <<'EOF'
import json, sys, uuid
t, ch, ct, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
w = sys.stdout.write
for i in range(n):
    oid = str(uuid.uuid4())
    data = json.dumps({"tenant": t, "channel": ch, "provider": "whatsapp", "outbound_id": oid,
                       "contact_id": ct, "to": "x", "kind": "text", "text": "bench %d" % i,
                       "reason": "notice", "created_at": "2026-01-01T00:00:00Z"})
    args = ["XADD", "tern:out", "*", "type", "outbound.message", "v", "1", "tenant", t,
            "trace", "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16]), "channel", ch,
            "provider", "whatsapp", "outbound", oid, "dedupe", "out:" + oid, "data", data]
    w("*%d\r\n" % len(args))
    for a in args:
        w("$%d\r\n%s\r\n" % (len(a.encode()), a))
EOF
snd_redis --pipe <"$tmp/burst.resp" >/dev/null
echo "queued $N messages"

start=$(date +%s%N)
snd_start TN_SENDER_RATE_WHATSAPP=0 TN_SENDER_CONCURRENCY=256 TN_SENDER_PG_POOL=4 \
    TN_SENDER_TENANT_BATCH=256 TN_LOG_LEVEL=warn
while :; do
    n=$(snd_sql "SELECT count(*) FROM outbound_messages WHERE tenant_id = '$T' AND state = 'sent'")
    [ "$n" -ge "$N" ] && break
    sleep 0.5
done
end=$(date +%s%N)
read -r ut st < <(awk '{print $14, $15}' "/proc/$SENDER_PID/stat")
hz=$(getconf CLK_TCK)
ms=$(((end - start) / 1000000))
cpu_ms=$(((ut + st) * 1000 / hz))
got=$(curl -s "$SANDBOX_URL/_sandbox/stats" | jq '.requests.whatsapp')
echo "sent $N in $ms ms: $((N * 1000 / ms)) messages/s; tern-sender CPU ${cpu_ms} ms" \
    "= $((cpu_ms * 1000 / N)) us/message; sandbox saw $got requests"
