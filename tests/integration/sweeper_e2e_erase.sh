#!/usr/bin/env bash
# sweeper_e2e_erase.sh - erasure and export of a person whom the real daemons
# stored, proven by scanning everything.
#
# The provider sandbox plays Meta and the LLM. Person A writes twice on
# WhatsApp (webhooks signed by the sandbox into tern-ingest); tern-agent
# answers through the sandbox LLM and stores the lead's name and email with
# its update_lead tool; tern-sender delivers the first reply, and Meta's
# delivered/read statuses come back through tern-ingest; the second reply
# fails at the provider until the attempt limit and becomes a dead letter on
# tern:out:dead; a malformed inbound entry for A is dead-lettered by
# tern-agent on tern:in:dead; a reminder due in an hour waits on the
# sender's schedule (tern:sched:<tenant>); ingest's dedupe keys name A's
# message ids; A has a booking with personal notes. Person B of the same
# tenant writes once and gets a reply, and has a booking too.
#
#   export   the JSON document holds every message row and booking of A
#            (ids compared with the database) and no id, address, name or
#            text of B
#   erase    `ternctl privacy erase --phone`: every text, varchar, json,
#            jsonb and bytea column of every table in the public schema, and
#            every Redis key name, string, hash, set, list, sorted set and
#            stream entry, holds none of A's phone (with and without '+'),
#            email, name, message texts or provider message ids (the same
#            scans find them before the erasure, so they can see); A's dedupe
#            keys, schedule member and dead letters are gone; the audit
#            receipt exists and holds none of it; B's rows, stream entries
#            and dedupe keys are untouched; no daemon's log holds A's data
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/support/sweeper.sh"
sw_setup sweeper_e2e_erase
. "$TN_SRC_DIR/tests/support/ingest.sh"
. "$TN_SRC_DIR/tests/sandbox/client.sh"
declare -A dpid=()
ipid=""
e2e_cleanup() {
    ingest_stop_daemons
    sandbox_stop
    sw_cleanup
}
trap e2e_cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
fail_logs() {
    local f
    for f in "$dir"/*.log; do echo "--- $(basename "$f")" >&2; { grep -v '"lvl":"info"' "$f" || true; } | tail -6 >&2; done
    sw_fail "$@"
}

# --- a tenant whose WhatsApp number can receive and send
ingest_setup_wa_sender "Harbour Physio" Physiotherapy || sw_fail "tenant setup"
export TN_PG_DSN="$TN_TEST_PG_ADMIN_DSN" TN_MASTER_KEY="$master" TN_REDIS_URL="$TN_TEST_REDIS_URL_CTL"

ingest_start || sw_fail "tern-ingest did not start"
sandbox_start "$dir" --quiet --ingest-url "$base" || sw_fail "sandbox did not start"
echo sk-erase >"$dir/llm.key"
start() { ingest_daemon "$@"; } # NAME VAR=VALUE... (tests/support/ingest.sh)
start agent TN_REDIS_URL="$TN_TEST_REDIS_URL_AGENT" TN_PG_DSN="$TN_TEST_PG_DSN_AGENT" \
    TN_LLM_BASE_URL="$SANDBOX_URL/openai/v1" TN_LLM_API_KEY_FILE="$dir/llm.key" \
    TN_LLM_MODEL=erase-model TN_AGENT_QUIET_MS=200 TN_AGENT_SCAN_MS=200
start sender TN_REDIS_URL="$TN_TEST_REDIS_URL_SENDER" TN_PG_DSN="$TN_TEST_PG_DSN_SENDER" \
    TN_WHATSAPP_API_BASE="$SANDBOX_URL/whatsapp" TN_SUPPRESSION_KEY="$skey" \
    TN_SENDER_MAX_ATTEMPTS=2 TN_SENDER_RETRY_BASE=100ms TN_SENDER_RETRY_CAP=200ms
sw_start

# --- the people (ASCII texts, so JSON escaping cannot hide a hit)
run=$(openssl rand -hex 4)
digitsA="49151$RANDOM$RANDOM${run:0:2}" phoneA="+$digitsA"
digitsB="44770$RANDOM$RANDOM${run:2:2}" phoneB="+$digitsB"
nameA="Ottilie Brennecke $run" emailA="ottilie.$run@example.test" nameB="Barnaby Quist $run"
textA1="my left knee hurts since the ski trip $run"
textA2="can you also check my shoulder $run"
textA3="this entry is malformed but mine $run"
replyA1="Thanks Ottilie, we have Friday at nine for the knee $run"
replyA2="Shoulder noted, Ottilie, see you Friday $run"
remindA="Reminder Ottilie: Friday 9:00, bring the knee scan $run"
notesA="door code 4711 for Ottilie $run"
textB="hello, do you treat back pain $run"
replyB="Yes Barnaby, we treat back pain $run"
notesB="parking behind for Barnaby $run"

# wa_in FROM NAME WAMID TEXT - a signed WhatsApp message webhook through the sandbox
wa_in() {
    jq -n --arg pn "$wa_pnid" --arg from "$1" --arg name "$2" --arg id "$3" --arg text "$4" \
        --arg ts "$(date +%s)" '{object: "whatsapp_business_account", entry: [{id: "1", changes: [{
          field: "messages", value: {messaging_product: "whatsapp",
          metadata: {display_phone_number: "15550783881", phone_number_id: $pn},
          contacts: [{profile: {name: $name}, wa_id: $from}],
          messages: [{from: $from, id: $id, timestamp: $ts, type: "text", text: {body: $text}}]}}]}]}' \
        >"$dir/in.json"
    emit "$dir/in.json"
}
# wa_status WAMID STATUS OUTBOUND RECIPIENT - a signed status webhook
wa_status() {
    jq -n --arg pn "$wa_pnid" --arg id "$1" --arg st "$2" --arg ob "$3" --arg to "$4" \
        --arg ts "$(date +%s)" '{object: "whatsapp_business_account", entry: [{id: "1", changes: [{
          field: "messages", value: {messaging_product: "whatsapp",
          metadata: {display_phone_number: "15550783881", phone_number_id: $pn},
          statuses: [{id: $id, status: $st, timestamp: $ts, recipient_id: $to,
                      biz_opaque_callback_data: $ob}]}}]}]}' >"$dir/st.json"
    emit "$dir/st.json"
}
emit() { # FILE - the sandbox signs it as Meta does and posts it to tern-ingest
    local st
    st=$(sandbox_emit "$(jq -n --arg s "$wa_secret" --slurpfile p "$1" \
        '{provider: "whatsapp", path: "/webhooks/whatsapp", secret: $s, payload: $p[0]}')" | jq -r .status)
    [ "$st" = 200 ] || fail_logs "webhook answered $st"
}
sent() { sandbox_requests whatsapp | jq -e --arg r "$1" '[.[] | select(.json.text.body == $r)] | length >= 1' >/dev/null; }
ob_state() { sql "SELECT string_agg(state, ',') FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$1'"; }
ob_is() { [ "$(ob_state "$2")" = "$1" ]; } # STATE TEXT

# --- A's first message: the agent stores name and email, answers, it is delivered and read
sandbox_script openai "$(jq -n --arg n "$nameA" --arg e "$emailA" --arg r "$replyA1" \
    '[{tool_calls: [{name: "update_lead", arguments: {name: $n, email: $e}}]}, {reply: $r}]')"
wa_in "$digitsA" "$nameA" "wamid.A1$run" "$textA1"
until_ok 20 sent "$replyA1" || fail_logs "A's first reply never reached the WhatsApp API"
until_ok 5 ob_is sent "$replyA1" || fail_logs "A's reply is $(ob_state "$replyA1")"
obA1=$(sql "SELECT id FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$replyA1'")
wamidA1=$(sql "SELECT provider_message_id FROM outbound_messages WHERE id = '$obA1'")
wa_status "$wamidA1" delivered "$obA1" "$digitsA"
wa_status "$wamidA1" read "$obA1" "$digitsA"
until_ok 5 ob_is read "$replyA1" || fail_logs "A's reply is $(ob_state "$replyA1") after read"
cA=$(sql "SELECT contact_id FROM outbound_messages WHERE id = '$obA1'")
vA=$(sql "SELECT conversation_id FROM outbound_messages WHERE id = '$obA1'")
[ "$(sql "SELECT email FROM leads WHERE contact_id = '$cA'")" = "$emailA" ] || fail_logs "lead email not stored"

# --- B writes and is answered
sandbox_script openai "$(jq -n --arg r "$replyB" '[{reply: $r}]')"
wa_in "$digitsB" "$nameB" "wamid.B1$run" "$textB"
until_ok 20 sent "$replyB" || fail_logs "B's reply never reached the WhatsApp API"
until_ok 5 ob_is sent "$replyB" || fail_logs "B's reply is $(ob_state "$replyB")"
cB=$(sql "SELECT contact_id FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$replyB'")
vB=$(sql "SELECT conversation_id FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$replyB'")

# --- A's second message: the provider fails until the attempt limit -> tern:out:dead
sandbox_fault '{"provider":"whatsapp","status":500,"count":2}'
sandbox_script openai "$(jq -n --arg r "$replyA2" '[{reply: $r}]')"
wa_in "$digitsA" "$nameA" "wamid.A2$run" "$textA2"
until_ok 20 ob_is dead "$replyA2" || fail_logs "A's second reply is '$(ob_state "$replyA2")', want dead"
until_ok 5 bash -c "redis-cli -u '$TN_TEST_REDIS_URL_ADMIN' --no-auth-warning XRANGE tern:out:dead - + | grep -qF -- '$replyA2'" \
    || fail_logs "no dead letter on tern:out:dead"

# --- a malformed inbound entry of A (no channel) -> tern-agent dead-letters it on tern:in:dead
bad=$(jq -cn --arg t "$tid" --arg s "$phoneA" --arg n "$nameA" --arg x "$textA3" \
    '{tenant: $t, provider: "whatsapp", sender: $s, sender_name: $n, text: $x}')
rr XADD tern:in '*' type inbound.message v 1 tenant "$tid" dedupe "wa:wamid.A3$run" data "$bad" >/dev/null
until_ok 10 bash -c "redis-cli -u '$TN_TEST_REDIS_URL_ADMIN' --no-auth-warning XRANGE tern:in:dead - + | grep -qF -- '$textA3'" \
    || fail_logs "the malformed entry was not dead-lettered"

# --- a reminder for A due in an hour: on tern:out, then on the sender's schedule
obR=$(sql "SELECT gen_random_uuid()")
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
data=$(jq -cn --arg t "$tid" --arg c "$wa_ch" --arg id "$obR" --arg ct "$cA" --arg v "$vA" --arg to "$phoneA" \
    --arg x "$remindA" --arg nb "$at" '{tenant: $t, channel: $c, provider: "whatsapp", outbound_id: $id,
      conversation_id: $v, contact_id: $ct, to: $to, transport: "whatsapp", kind: "text", text: $x,
      reason: "reminder", not_before: $nb, created_at: (now | todate)}')
rr XADD tern:out '*' type outbound.message v 1 tenant "$tid" channel "$wa_ch" provider whatsapp \
    outbound "$obR" dedupe "out:$obR" data "$data" >/dev/null
until_ok 10 ob_is queued "$remindA" \
    || fail_logs "the reminder was not stored"
until_ok 5 bash -c "redis-cli -u '$TN_TEST_REDIS_URL_ADMIN' --no-auth-warning ZRANGE 'tern:sched:$tid' 0 -1 | grep -q '$obR'" \
    || fail_logs "the reminder is not on the schedule"

# --- bookings with personal notes (tern-agent's booking tools are not wired yet: SQL)
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min) VALUES ('$tid', 'Assessment', 45) RETURNING id")
bkA=$(sql "INSERT INTO bookings (tenant_id, contact_id, service_id, during, status, address, notes)
           VALUES ('$tid', '$cA', '$svc', tstzrange(now() + interval '2 days', now() + interval '2 days 45 min'),
                   'confirmed', '12 Elm Road, $nameA', '$notesA') RETURNING id")
sql "INSERT INTO bookings (tenant_id, contact_id, service_id, during, status, notes)
     VALUES ('$tid', '$cB', '$svc', tstzrange(now() + interval '3 days', now() + interval '3 days 45 min'),
             'confirmed', '$notesB')" >/dev/null
echo "seeded through the daemons"

# --- export: every message and booking of A, nothing of B
rid=$("$ctl" privacy export --tenant "$tid" --phone "$phoneA" --wait 15 | sed -n 1p)
f="$dir/export/export-$rid.json"
[ -f "$f" ] || fail_logs "no export file"
want_msgs=$(sql "SELECT string_agg(m.id::text, ',' ORDER BY m.id) FROM messages m
                 JOIN conversations v ON v.tenant_id = m.tenant_id AND v.id = m.conversation_id
                 WHERE v.contact_id = '$cA'")
got_msgs=$(jq -r '[.conversations[].messages[].id] | sort | join(",")' "$f")
[ -n "$want_msgs" ] && [ "$got_msgs" = "$want_msgs" ] || sw_fail "export messages: got $got_msgs, want $want_msgs"
want_out=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM outbound_messages WHERE contact_id = '$cA'")
[ "$(jq -r '[.outbound_messages[].id] | sort | join(",")' "$f")" = "$want_out" ] || sw_fail "export outbound messages"
[ "$(jq -r '[.bookings[].id] | join(",")' "$f")" = "$bkA" ] || sw_fail "export bookings"
jq -e --arg t1 "$textA1" --arg t2 "$textA2" --arg r "$replyA1" --arg n "$notesA" --arg e "$emailA" --arg rm "$remindA" '
    ([.conversations[].messages[].body] | index($t1) != null and index($t2) != null and index($r) != null)
    and .bookings[0].notes == $n and .lead.email == $e
    and ([.outbound_messages[].body] | index($rm) != null)' "$f" >/dev/null || sw_fail "export content"
others=$(sql "SELECT string_agg(x, ' ') FROM (
                SELECT id::text x FROM contacts WHERE tenant_id = '$tid' AND id <> '$cA'
                UNION ALL SELECT id::text FROM conversations WHERE tenant_id = '$tid' AND contact_id <> '$cA'
                UNION ALL SELECT m.id::text FROM messages m JOIN conversations v ON v.id = m.conversation_id
                          WHERE m.tenant_id = '$tid' AND v.contact_id <> '$cA'
                UNION ALL SELECT id::text FROM outbound_messages WHERE tenant_id = '$tid' AND contact_id <> '$cA'
                UNION ALL SELECT id::text FROM bookings WHERE tenant_id = '$tid' AND contact_id <> '$cA') s")
for n in $others "$phoneB" "$digitsB" "$nameB" "$textB" "$replyB" "$notesB"; do
    if grep -qF -- "$n" "$f"; then sw_fail "the export holds another person's data"; fi
done
echo "export ok"

# --- scans: every text-like column of every table, every Redis key
# db_hits NEEDLE... - "table.column" of each column holding a needle
db_hits() {
    psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 \
        -v needles="$(printf '%s\n' "$@" | jq -R . | jq -sc .)" <<'SQL'
SELECT set_config('tern.needles', :'needles', false) AS needles \gset
CREATE TEMP TABLE hits (col text);
DO $$
DECLARE r record; k bigint;
    ns text[] := ARRAY(SELECT jsonb_array_elements_text(current_setting('tern.needles')::jsonb));
BEGIN
  FOR r IN SELECT c.table_name, c.column_name, c.data_type
             FROM information_schema.columns c JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea',
                                  'ARRAY', 'USER-DEFINED')
  LOOP
    IF r.data_type = 'bytea' THEN
      EXECUTE format('SELECT count(*) FROM %I WHERE EXISTS (SELECT 1 FROM unnest($1) n'
                     ' WHERE position(convert_to(n, ''UTF8'') IN %I) > 0)', r.table_name, r.column_name)
        INTO k USING ns;
    ELSE
      EXECUTE format('SELECT count(*) FROM %I WHERE EXISTS (SELECT 1 FROM unnest($1) n'
                     ' WHERE position(n IN %I::text) > 0)', r.table_name, r.column_name)
        INTO k USING ns;
    END IF;
    IF k > 0 THEN INSERT INTO hits VALUES (r.table_name || '.' || r.column_name); END IF;
  END LOOP;
END $$;
SELECT col FROM hits ORDER BY 1;
SQL
}
# redis_hits NEEDLE... - each key whose name or content holds a needle. One
# script walks every key (SCAN, TYPE) and prints it as one line: the name, then
# its value, members, fields or stream entries (XRANGE), separated by 0x1f.
redis_dump='local out, cur = {}, "0"
repeat
  local r = redis.call("SCAN", cur, "COUNT", 1000)
  cur = r[1]
  for _, k in ipairs(r[2]) do
    local t, p = redis.call("TYPE", k).ok, {k}
    local function add(v) p[#p + 1] = (string.gsub(v, "\n", " ")) end
    if t == "string" then add(redis.call("GET", k))
    elseif t == "stream" then
      for _, e in ipairs(redis.call("XRANGE", k, "-", "+")) do
        add(e[1]); for _, v in ipairs(e[2]) do add(v) end
      end
    elseif t == "zset" then for _, v in ipairs(redis.call("ZRANGE", k, 0, -1)) do add(v) end
    elseif t == "hash" then for _, v in ipairs(redis.call("HGETALL", k)) do add(v) end
    elseif t == "list" then for _, v in ipairs(redis.call("LRANGE", k, 0, -1)) do add(v) end
    elseif t == "set" then for _, v in ipairs(redis.call("SMEMBERS", k)) do add(v) end
    else add("<" .. t .. ">") end
    out[#out + 1] = table.concat(p, "\31")
  end
until cur == "0"
return out'
redis_hits() {
    local n
    rr EVAL "$redis_dump" 0 >"$dir/redis.dump"
    [ -s "$dir/redis.dump" ] || sw_fail "the Redis dump is empty"
    for n in "$@"; do { grep -aF -- "$n" "$dir/redis.dump" || true; } | cut -d $'\x1f' -f1; done | sort -u
}
needles=("$phoneA" "$digitsA" "$emailA" "$nameA" "$textA1" "$textA2" "$textA3" "$replyA1" "$replyA2"
    "$remindA" "$notesA" "wamid.A1$run" "wamid.A2$run" "wamid.A3$run" "$wamidA1")
bneedles=("$phoneB" "$digitsB" "$nameB" "$textB" "$replyB" "$notesB" "wamid.B1$run")

before=$(db_hits "${needles[@]}" | tr '\n' ' ')
for c in contacts.address contacts.display_name leads.email leads.name messages.body messages.raw \
    outbound_messages.body bookings.notes; do
    [[ " $before" == *" $c "* ]] || sw_fail "the database scan does not see $c before the erasure ($before)"
done
rbefore=$(redis_hits "${needles[@]}" | tr '\n' ' ')
for k in tern:in tern:out tern:status tern:in:dead tern:out:dead "tern:dedupe:wa:wamid.A1$run" \
    "tern:dedupe:wa:wamid.A2$run" "tern:dedupe:wa:st:$wamidA1:read"; do
    [[ " $rbefore" == *" $k "* ]] || sw_fail "the Redis scan does not see $k before the erasure ($rbefore)"
done
# A's ids (no personal data themselves, but they tie entries to A): the
# schedule member "<outbound>:<channel>:<contact>:<provider>" names only ids
obA2=$(sql "SELECT id FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$replyA2'")
ids=("$cA" "$vA" "$obA1" "$obA2" "$obR")
[[ " $(redis_hits "${ids[@]}" | tr '\n' ' ')" == *" tern:sched:$tid "* ]] || sw_fail "the scan does not see the schedule"
bdb_before=$(db_hits "${bneedles[@]}" | tr '\n' ' ')
rb_before=$(redis_hits "${bneedles[@]}" | tr '\n' ' ')
b_rows() {
    sql "SELECT (SELECT count(*) FROM contacts WHERE id = '$cB') || ':' ||
                (SELECT count(*) FROM messages WHERE conversation_id = '$vB') || ':' ||
                (SELECT count(*) FROM outbound_messages WHERE contact_id = '$cB') || ':' ||
                (SELECT count(*) FROM leads WHERE contact_id = '$cB') || ':' ||
                (SELECT count(*) FROM bookings WHERE contact_id = '$cB') || ':' ||
                (SELECT md5(string_agg(m::text, '' ORDER BY m.id)) FROM messages m WHERE conversation_id = '$vB')"
}
b_before=$(b_rows)

# --- erase, while every daemon runs
rid=$("$ctl" privacy erase --tenant "$tid" --phone "$phoneA" --wait 20 | sed -n 1p) || fail_logs "erase"
after=$(db_hits "${needles[@]}")
[ -z "$after" ] || sw_fail "the database still holds A's data in: ${after//$'\n'/ }"
rafter=$(redis_hits "${needles[@]}")
[ -z "$rafter" ] || sw_fail "Redis still holds A's data in: ${rafter//$'\n'/ }"
# ids: only the request records name the erased contact id (subject_ref
# "contact:<id>", on purpose: it is the request), nothing else
[ "$(db_hits "${ids[@]}" | tr '\n' ' ')" = "privacy_requests.subject_ref " ] \
    || sw_fail "A's ids left in: $(db_hits "${ids[@]}" | tr '\n' ' ')"
ridk=$(redis_hits "${ids[@]}" | grep -v '^tern:privacy' || true)
[ -z "$ridk" ] || sw_fail "A's ids left in Redis: ${ridk//$'\n'/ }"
if rr ZRANGE "tern:sched:$tid" 0 -1 | grep -qF -- "$obR"; then sw_fail "reminder left on the schedule"; fi
echo "erase: no trace of A in $(sql "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
    AND table_type = 'BASE TABLE'") tables and $(rr DBSIZE) Redis keys"

# the receipt: counts only
receipt=$(sql "SELECT detail::text FROM audit_log WHERE tenant_id = '$tid' AND action = 'privacy.erase'
               AND detail->>'request' = '$rid'")
[ -n "$receipt" ] || sw_fail "no audit receipt"
jq -e '.tables.messages >= 2 and .tables.contacts == 1 and .tables.leads == 1 and .tables.bookings == 1
       and .tables.outbound_messages == 3 and .tables.conversations == 1 and .redis.stream_entries >= 6
       and .redis.keys >= 3 and .redis.members >= 1 and .suppressed == 2' <<<"$receipt" >/dev/null \
    || sw_fail "receipt counts: $receipt"
[ "$(sql "SELECT status FROM privacy_requests WHERE id = '$rid'")" = "done" ] || sw_fail "request not done"
for n in "${needles[@]}" "$cA" "$vA"; do
    if grep -qF -- "$n" <<<"$receipt"; then sw_fail "the receipt holds personal data"; fi
done

# B untouched: rows, scans, stream entries and dedupe keys as before
[ "$(b_rows)" = "$b_before" ] || sw_fail "contact B's rows changed: $(b_rows), were $b_before"
[ "$(db_hits "${bneedles[@]}" | tr '\n' ' ')" = "$bdb_before" ] || sw_fail "B's columns changed"
[ "$(redis_hits "${bneedles[@]}" | tr '\n' ' ')" = "$rb_before" ] || sw_fail "B's Redis keys changed"
[ "$(rr EXISTS "tern:dedupe:wa:wamid.B1$run")" = 1 ] || sw_fail "B's dedupe key gone"
rr XRANGE tern:in - + | grep -qF -- "$textB" || sw_fail "B's inbound entry gone"

# no daemon logged A's data
for lf in "$dir"/ingest.log "$dir"/agent.log "$dir"/sender.log "$dir"/sweeper.log; do
    for n in "$digitsA" "$emailA" "$nameA" "$textA1" "$replyA1" "$notesA"; do
        if grep -qF -- "$n" "$lf"; then sw_fail "$(basename "$lf") holds A's data"; fi
    done
done
echo "erase ok: receipt $receipt"

# --- A writes again after the erasure: a new contact, but the suppression
# list (the sweeper's keyed hash, checked by the sender) stops any reply
replyA9="Welcome back, we hold nothing of yours $run"
sandbox_script openai "$(jq -n --arg r "$replyA9" '[{reply: $r}]')"
wa_in "$digitsA" "$nameA" "wamid.A9$run" "it is me again $run"
until_ok 20 ob_is failed "$replyA9" || fail_logs "the reply to an erased address is '$(ob_state "$replyA9")', want failed"
[ "$(sql "SELECT last_error_code FROM outbound_messages WHERE tenant_id = '$tid' AND body = '$replyA9'")" = suppressed ] \
    || sw_fail "not failed as suppressed"
if sent "$replyA9"; then sw_fail "an erased, suppressed address was contacted"; fi
echo "suppressed after erasure ok"
sw_stop
echo "sweeper_e2e_erase: all ok"
