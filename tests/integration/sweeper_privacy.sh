#!/usr/bin/env bash
# sweeper_privacy.sh - tern-sweeper's privacy requests against real Redis
# and Postgres, entered through ternctl.
#
# One person (contact A) is seeded across every table that can hold them
# (contact, conversation, messages with raw payloads, lead, outbound
# message, consent event, booking) and across Redis (dedupe keys, dead
# letters on tern:in:dead and tern:out:dead, a pending entry on a stream with
# a group, the send schedule, a hash key named after A), beside contact B of
# the same tenant. Then:
#   export   one JSON document with everything of A and nothing of B
#   restrict / unrestrict  contacts.restricted_at set and cleared, with
#            consent events
#   erase    A's phone, digits, email, name, message text and provider ids
#            appear in no table and no Redis key or entry; the HMAC
#            suppression hashes exist; the receipt has counts and no
#            personal data; everything of B is intact
#   redelivered request  acknowledged again without a second receipt
set -euo pipefail
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"
. "$TN_SRC_DIR/tests/support/sweeper.sh"
sw_setup sweeper_privacy

# --- seed
u="sp$$x$RANDOM$RANDOM"
tid=$("$ctl" tenant add --slug "$u" --name "Privacy $u")
ch=$("$ctl" channel add --tenant "$tid" --kind whatsapp --address "pn$u")
phoneA="+49151$RANDOM$RANDOM$$"
digitsA=${phoneA#+}
nameA="Zelda Quux $u"
emailA="zelda.$u@example.test"
textA="knee pain since tuesday $u"
phoneB="+44770$RANDOM$RANDOM$$"
textB="hello from B $u"
cA=$(sql "INSERT INTO contacts (tenant_id, kind, address, display_name, email)
          VALUES ('$tid', 'whatsapp', '$phoneA', '$nameA', '$emailA') RETURNING id")
cB=$(sql "INSERT INTO contacts (tenant_id, kind, address, display_name)
          VALUES ('$tid', 'whatsapp', '$phoneB', 'Bert $u') RETURNING id")
vA=$(sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$tid', '$cA', '$ch') RETURNING id")
vB=$(sql "INSERT INTO conversations (tenant_id, contact_id, channel_id) VALUES ('$tid', '$cB', '$ch') RETURNING id")
sql "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, provider_message_id, body, raw)
     VALUES ('$tid', '$vA', '$ch', 'in', 'wamid.A1$u', '$textA',
             '{\"from\": \"$digitsA\", \"profile\": {\"name\": \"$nameA\"}, \"text\": {\"body\": \"$textA\"}}'),
            ('$tid', '$vA', '$ch', 'out', 'wamid.A2$u', 'reply about $textA', NULL),
            ('$tid', '$vB', '$ch', 'in', 'wamid.B1$u', '$textB', '{\"from\": \"${phoneB#+}\"}')" >/dev/null
sql "INSERT INTO leads (tenant_id, contact_id, name, email, answers)
     VALUES ('$tid', '$cA', '$nameA', '$emailA', '{\"symptom\": \"$textA\"}')" >/dev/null
oA=$(sql "INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
          idempotency_key, provider_message_id, body)
          VALUES ('$tid', '$vA', '$cA', '$ch', 'out:A$u', 'wamid.OA$u', 'see you, $nameA') RETURNING id")
sql "INSERT INTO consent_events (tenant_id, contact_id, kind, source) VALUES ('$tid', '$cA', 'opt_in', 'test')" >/dev/null
svc=$(sql "INSERT INTO services (tenant_id, name, duration_min) VALUES ('$tid', 'Checkup', 30) RETURNING id")
sql "INSERT INTO bookings (tenant_id, contact_id, service_id, during, status)
     VALUES ('$tid', '$cA', '$svc', tstzrange(now() + interval '1 day', now() + interval '1 day 30 min'), 'confirmed')" >/dev/null

rr SET "tern:dedupe:wa:wamid.A1$u" 1 >/dev/null
rr SET "tern:dedupe:wa:wamid.B1$u" 1 >/dev/null
rr XADD tern:in:dead '*' type inbound.message v 1 tenant "$tid" dedupe "wa:wamid.A1$u" \
    data "{\"sender\":\"$phoneA\",\"sender_name\":\"$nameA\",\"text\":\"$textA\"}" >/dev/null
rr XADD tern:in:dead '*' type inbound.message v 1 tenant "$tid" dedupe "wa:wamid.B1$u" \
    data "{\"sender\":\"$phoneB\",\"text\":\"$textB\"}" >/dev/null
rr XADD tern:out:dead '*' type outbound.message v 1 tenant "$tid" outbound "$oA" \
    data "{\"to\":\"$digitsA\",\"body\":\"see you, $nameA\"}" >/dev/null
live="tern:sweeptest:$u:in"
rr XGROUP CREATE "$live" agent 0 MKSTREAM >/dev/null
rr XADD "$live" '*' type inbound.message tenant "$tid" dedupe "wa:wamid.A1$u" data "{\"text\":\"$textA\"}" >/dev/null
rr XADD "$live" '*' type inbound.message tenant "$tid" dedupe "wa:wamid.B1$u" data "{\"text\":\"$textB\"}" >/dev/null
rr XREADGROUP GROUP agent w1 COUNT 1 STREAMS "$live" '>' >/dev/null # A's entry is pending
rr HSET "tern:sweeptest:$u:contact:$cA" note "$textA" >/dev/null # a key of any type named after A
rr HSET "tern:sweeptest:$u:contact:$cB" note "$textB" >/dev/null
now=$(($(date +%s) * 1000))
rr ZADD "tern:sched:$tid" "$now" "$oA:$ch:$cA:whatsapp" "$now" "ob-b-$u:$ch:$cB:whatsapp" >/dev/null

sw_start

# --- export
rid=$("$ctl" privacy export --tenant "$tid" --phone "$phoneA" --wait 10 | sed -n 1p)
f="$dir/export/export-$rid.json"
[ -f "$f" ] || sw_fail "no export file"
[ "$(stat -c %a "$f")" = 600 ] || sw_fail "export mode $(stat -c %a "$f")"
jq -e --arg p "$phoneA" --arg e "$emailA" --arg t "$textA" --arg r "$rid" '
    .format == "tern.export.v1" and .request_id == $r and .contact.address == $p
    and (.conversations | length) == 1 and (.conversations[0].messages | length) == 2
    and ([.conversations[0].messages[].body] | index($t)) != null
    and ([.conversations[0].messages[].raw.text.body?] | index($t)) != null
    and .lead.email == $e and .lead.answers.symptom == $t
    and (.bookings | length) == 1 and (.consent_events | length) == 1
    and (.outbound_messages | length) == 1' "$f" >/dev/null || sw_fail "export shape: $(cat "$f")"
if grep -q -e "$phoneB" -e "$textB" -e "$cB" "$f"; then sw_fail "export holds contact B"; fi
[ "$(sql "SELECT status || ':' || (receipt->>'file') FROM privacy_requests WHERE id = '$rid'")" = "done:export-$rid.json" ] \
    || sw_fail "export request not recorded"
echo "export ok"

# --- restrict / unrestrict
"$ctl" privacy restrict --tenant "$tid" --contact "$cB" --wait 10 >/dev/null || sw_fail "restrict"
[ "$(sql "SELECT restricted_at IS NOT NULL FROM contacts WHERE id = '$cB'")" = t ] || sw_fail "not restricted"
"$ctl" privacy unrestrict --tenant "$tid" --contact "$cB" --wait 10 >/dev/null || sw_fail "unrestrict"
[ "$(sql "SELECT restricted_at IS NULL FROM contacts WHERE id = '$cB'")" = t ] || sw_fail "still restricted"
[ "$(sql "SELECT string_agg(kind, ',' ORDER BY created_at) FROM consent_events WHERE contact_id = '$cB'")" = restrict,unrestrict ] \
    || sw_fail "consent events for restrict"
set +e
"$ctl" privacy erase --tenant "$tid" --phone "+000$u" >/dev/null 2>&1
[ $? = 1 ] || sw_fail "unknown subject not refused"
"$ctl" privacy erase --tenant "$tid" >/dev/null 2>&1
[ $? = 64 ] || sw_fail "missing subject not a usage error"
set -e
echo "restrict ok"

# --- erase
rid=$("$ctl" privacy erase --tenant "$tid" --email "${emailA^^}" --wait 15 | sed -n 1p)
needles=("$phoneA" "$digitsA" "$emailA" "$nameA" "$textA" "wamid.A1$u" "wamid.A2$u" "wamid.OA$u")
sw_db_scan "${needles[@]}"
[ "$(sql "SELECT (SELECT count(*) FROM contacts WHERE id = '$cA') + (SELECT count(*) FROM conversations WHERE id = '$vA') + (SELECT count(*) FROM outbound_messages WHERE id = '$oA')")" = 0 ] || sw_fail "rows of A left"
sw_redis_scan "${needles[@]}"
rr ZRANGE "tern:sched:$tid" 0 -1 | grep -q "$cA" && sw_fail "schedule member of A left"
[ "$(rr XLEN "$live")" = 1 ] || sw_fail "stream entry of A left on $live"
[ "$(rr EXISTS "tern:dedupe:wa:wamid.A1$u")" = 0 ] || sw_fail "dedupe key of A left"
[ "$(rr EXISTS "tern:sweeptest:$u:contact:$cA"):$(rr EXISTS "tern:sweeptest:$u:contact:$cB")" = 0:1 ] \
    || sw_fail "hash key named after A left, or B's gone"
for a in "$phoneA" "$emailA"; do
    h=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$skey" "$a")
    [ "$(sql "SELECT count(*) FROM suppressions WHERE tenant_id = '$tid' AND address_hash = '$h' AND kind = 'erased'")" = 1 ] \
        || sw_fail "no suppression hash"
done
receipt=$(sql "SELECT detail::text FROM audit_log WHERE tenant_id = '$tid' AND action = 'privacy.erase' AND detail->>'request' = '$rid'")
jq -e '.tables.messages == 2 and .tables.contacts == 1 and .tables.leads == 1 and .tables.bookings == 1
       and .tables.outbound_messages == 1 and .tables.consent_events == 1 and .tables.conversations == 1
       and .redis.stream_entries == 3 and .suppressed == 2' <<<"$receipt" >/dev/null \
    || sw_fail "receipt counts: $receipt"
for n in "${needles[@]}" "$cA"; do
    if grep -qF -- "$n" <<<"$receipt"; then sw_fail "receipt holds personal data"; fi
done
[ "$(sql "SELECT count(*) FROM contacts WHERE id = '$cB'"):$(sql "SELECT count(*) FROM messages WHERE conversation_id = '$vB'")" = 1:1 ] \
    || sw_fail "contact B touched"
[ "$(rr EXISTS "tern:dedupe:wa:wamid.B1$u")" = 1 ] || sw_fail "dedupe key of B gone"
rr XRANGE tern:in:dead - + | grep -qF "$textB" || sw_fail "dead letter of B gone"
rr ZRANGE "tern:sched:$tid" 0 -1 | grep -q "$cB" || sw_fail "schedule member of B gone"
if grep -qF -e "$phoneA" -e "$emailA" -e "$textA" -e "$nameA" "$dir/sweeper.log"; then sw_fail "personal data in the log"; fi
echo "erase ok"

# --- a redelivered request changes nothing
data=$(jq -nc --arg t "$tid" --arg r "$rid" --arg c "$cA" \
    '{tenant:$t, request_id:$r, kind:"erase", subject:{contact_id:$c}, requested_at:"2026-01-01T00:00:00Z", requested_by:"subject"}')
rr XADD tern:privacy '*' type privacy.request v 1 tenant "$tid" request "$rid" dedupe "priv:$rid" data "$data" >/dev/null
for _ in $(seq 1 50); do
    [ "$(grep -c "\"request\":\"$rid\"" "$dir/sweeper.log")" -ge 2 ] && break
    sleep 0.1
done
[ "$(grep -c "sweeper.request_done.*\"request\":\"$rid\"" "$dir/sweeper.log")" = 2 ] || sw_fail "redelivery not acknowledged"
[ "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$tid' AND detail->>'request' = '$rid'")" = 1 ] \
    || sw_fail "redelivery wrote a second receipt"
echo "redelivery ok"
sw_stop
echo "sweeper_privacy: all ok"
