#!/usr/bin/env bash
# ingest_fault.sh - Redis dies under load: no 2xx is ever lost.
#
# Signed WhatsApp webhooks stream in from 8 connections while Redis is
# killed (SIGKILL) and restarted. Every request answered 2xx is on tern:in
# afterwards, exactly once; every other request got 503 (the provider's cue
# to retry), none was dropped without an answer; /readyz said 503 while Redis
# was gone; and the retried 503s are then accepted, each exactly once.
set -u
: "${TN_SRC_DIR:?run through scripts/test}" "${TN_TEST_REDIS_START:?}" "${TN_TEST_REDIS_PIDFILE:?}"
dir=$(mktemp -d "$TN_TEST_TMP/ingest_fault.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
ipid=""
trap 'kill -9 $ipid 2>/dev/null; "$TN_TEST_REDIS_START" 2>/dev/null; rm -rf "$dir"' EXIT

ingest_setup_tenant || { echo "FAIL: setup" >&2; exit 1; }
ingest_start TN_INGEST_REDIS_TIMEOUT=500ms || exit 1
load="$TN_SRC_DIR/tests/tools/webhook-load.mjs"
run=$(openssl rand -hex 4)

node "$load" "$base/webhooks/whatsapp" "$wa_secret" "$wa_pnid" 3000 8 "$run" 5 >"$dir/results" &
lpid=$!
sleep 0.7
kill -9 "$(cat "$TN_TEST_REDIS_PIDFILE")"
sleep 0.4
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz")
[ "$code" = 503 ] && ok || bad "/readyz with Redis down: $code"
sleep 0.5
"$TN_TEST_REDIS_START"
for _ in $(seq 1 50); do
    [ "$(admin_redis PING 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
wait "$lpid"

total=$(wc -l <"$dir/results")
n200=$(grep -c ' 200$' "$dir/results")
n503=$(grep -c ' 503$' "$dir/results")
echo "requests: $total, 200: $n200, 503: $n503"
[ "$total" = 3000 ] && ok || bad "loader finished $total of 3000"
[ $((n200 + n503)) = "$total" ] && ok || bad "answers other than 200/503: $(grep -v -e ' 200$' -e ' 503$' "$dir/results" | head -3)"
[ "$n503" -gt 0 ] && ok || bad "no request saw Redis down (the test did not test anything)"
[ "$n200" -gt 0 ] && ok || bad "no request succeeded"

# wait for the enqueue connection to come back
for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz")" = 200 ] && break
    sleep 0.1
done

# check ACCEPTED_FILE - every id in it is on tern:in exactly once
check() {
    dump_entries tern:in >"$dir/entries.jsonl"
    node -e '
const fs = require("fs");
const [entries, accepted] = process.argv.slice(1);
const seen = new Map();
for (const l of fs.readFileSync(entries, "utf8").split("\n").filter(Boolean)) {
  const id = JSON.parse(l).fields.pmid;
  seen.set(id, (seen.get(id) || 0) + 1);
}
let bad = 0;
for (const id of fs.readFileSync(accepted, "utf8").split("\n").filter(Boolean)) {
  const n = seen.get(id) || 0;
  if (n !== 1) { if (bad++ < 5) console.error(`${id}: ${n} entries`); }
}
process.exit(bad ? 1 : 0);' "$dir/entries.jsonl" "$1"
}
grep ' 200$' "$dir/results" | cut -d' ' -f1 >"$dir/accepted"
check "$dir/accepted" && ok || bad "a 2xx request is missing from tern:in or doubled"

# the provider retries the 503s: all accepted now, still exactly once each
grep ' 503$' "$dir/results" | cut -d' ' -f1 >"$dir/retry"
while read -r id; do
    body="$dir/retry.json"
    node -e '
const [pnid, id] = process.argv.slice(1);
process.stdout.write(JSON.stringify({object: "whatsapp_business_account", entry: [{id: "102290129340398",
  changes: [{field: "messages", value: {messaging_product: "whatsapp",
  metadata: {display_phone_number: "15550783881", phone_number_id: pnid},
  contacts: [{profile: {name: "Load Test"}, wa_id: "16505550000"}],
  messages: [{from: "16505550000", id, timestamp: "1767225600", type: "text", text: {body: "hello " + id}}]}}]}]}));
' "$wa_pnid" "$id" >"$body"
    [ "$(post "$base/webhooks/whatsapp" "$body" application/json "X-Hub-Signature-256: $(wa_sig "$body")")" = 200 ] \
        || { bad "retry of $id not accepted"; break; }
done < <(head -50 "$dir/retry")
head -50 "$dir/retry" | cat "$dir/accepted" - >"$dir/all"
check "$dir/all" && ok || bad "after retries: an entry missing or doubled"

kill -TERM "$ipid"
wait "$ipid" && ok || bad "tern-ingest did not exit 0 after the fault"
echo "ingest_fault: $pass passed, $fail failed"
[ "$fail" = 0 ]
