#!/usr/bin/env bash
# agent_intake_batch.sh - tern_agent_intake_batch() (proto/sql/0015) as the
# tern_agent role against the real Postgres: what tern-agent's batched intake
# relies on, one case per step of the set-based function.
#
# A burst of one lead in one batch (both stored, in order, one conversation
# flagged once), a repeated provider message id inside the batch (the first
# in arrival order is stored, the repeat gets no message), an element on a
# channel that is not the tenant's (no row), a whole batch of repeats
# (nothing changes, a processed conversation stays unflagged), an opted-out
# contact (stored already processed as opted_out, no flag), a closed
# conversation (reopened and flagged), a new contact whose only message
# repeats another's id (its new conversation is not left flagged), the lead
# and display name rules, and different array lengths (refused, 22023).
set -u
admin="$TN_TEST_PG_ADMIN_DSN"
agent="${TN_TEST_PG_DSN_AGENT:-}"
[ -n "$agent" ] || { echo "no TN_TEST_PG_DSN_AGENT" >&2; exit 77; }
. "$TN_SRC_DIR/tests/support/check.sh"
sql() { psql "$admin" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# check WHAT GOT WANT
check() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi; }

u="ib$$-$RANDOM"
tenant=$(sql "INSERT INTO tenants (slug, name, time_zone) VALUES ('$u', 'IB', 'UTC') RETURNING id")
other=$(sql "INSERT INTO tenants (slug, name, time_zone) VALUES ('$u-o', 'IBO', 'UTC') RETURNING id")
ch=$(sql "INSERT INTO channels (tenant_id, kind, external_address) VALUES ('$tenant', 'whatsapp', '$u') RETURNING id")
foreign=$(sql "INSERT INTO channels (tenant_id, kind, external_address) VALUES ('$other', 'whatsapp', '$u-o') RETURNING id")

# batch POS0 CH,SENDER,NAME,PMID ... - one call as tern_agent; prints
# "ord|message?|silent" rows in ord order
batch() {
    local pos=$1 chs="" snd="" nms="" pm="" n=0 e c s nm p
    shift
    for e in "$@"; do
        IFS=, read -r c s nm p <<<"$e"
        n=$((n + 1))
        chs+="${chs:+,}$c"
        snd+="${snd:+,}\"$s\""
        nms+="${nms:+,}${nm:-NULL}"
        pm+="${pm:+,}\"$p\""
    done
    local fill="array_fill"
    psql "$agent" -XAtq -v ON_ERROR_STOP=1 -c "SELECT ord, message IS NOT NULL, coalesce(silent, '')
        FROM tern_agent_intake_batch('$tenant', '{$chs}', '{$snd}', '{$nms}',
            $fill('whatsapp'::text, ARRAY[$n]), '{$pm}', $fill('text'::text, ARRAY[$n]),
            $fill('hello'::text, ARRAY[$n]), $fill(NULL::text, ARRAY[$n]),
            $fill('{}'::jsonb, ARRAY[$n]),
            (SELECT array_agg($pos + g)::bigint[] FROM generate_series(1, $n) g)) ORDER BY ord"
}
conv_of() {
    sql "SELECT c.has_unprocessed || '|' || (c.last_inbound_at IS NOT NULL) || '|' || c.status
           FROM conversations c JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
          WHERE c.tenant_id = '$tenant' AND ct.address = '$1'"
}

# 1: burst of A, repeat inside the batch, B, a foreign channel
got=$(batch 100 "$ch,+1a,Ann,p1" "$ch,+1b,,p2" "$ch,+1a,,p3" "$ch,+1a,Zed,p1" "$foreign,+1c,,p4" | tr '\n' ' ')
check "first batch" "$got" "1|t| 2|t| 3|t| 4|f| "
check "A flagged" "$(conv_of +1a)" "true|true|open"
check "A messages in order" "$(sql "SELECT string_agg(m.provider_message_id, ',' ORDER BY m.stream_pos)
    FROM messages m WHERE m.tenant_id = '$tenant' AND m.direction = 'in'
     AND m.conversation_id = (SELECT c.id FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
                               WHERE ct.tenant_id = '$tenant' AND ct.address = '+1a')")" "p1,p3"
check "repeat kept the first" "$(sql "SELECT stream_pos FROM messages WHERE tenant_id = '$tenant' AND provider_message_id = 'p1'")" "101"
check "contacts" "$(sql "SELECT string_agg(address || '=' || coalesce(display_name, '-'), ',' ORDER BY address) FROM contacts WHERE tenant_id = '$tenant'")" "+1a=Zed,+1b=-"
check "leads" "$(sql "SELECT string_agg(ct.address || '=' || coalesce(l.name, '-'), ',' ORDER BY ct.address) FROM leads l JOIN contacts ct ON ct.tenant_id = l.tenant_id AND ct.id = l.contact_id WHERE l.tenant_id = '$tenant'")" "+1a=Ann,+1b=-"
check "nothing in the other tenant" "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$other'")" "0"

# 2: a turn processed everything; a batch of repeats changes nothing
sql "UPDATE messages SET processed_at = now(), agent_outcome = 'replied' WHERE tenant_id = '$tenant';
     UPDATE conversations SET has_unprocessed = false WHERE tenant_id = '$tenant'" >/dev/null
got=$(batch 200 "$ch,+1a,,p1" "$ch,+1b,,p2" | tr '\n' ' ')
check "repeats" "$got" "1|f| 2|f| "
check "A not flagged by repeats" "$(conv_of +1a)" "false|true|open"
check "message count" "$(sql "SELECT count(*) FROM messages WHERE tenant_id = '$tenant'")" "3"

# 3: an opted-out contact; a closed conversation; a new contact repeating p3
sql "UPDATE contacts SET opted_out_at = now() WHERE tenant_id = '$tenant' AND address = '+1a';
     UPDATE conversations c SET status = 'closed' FROM contacts ct
      WHERE ct.tenant_id = c.tenant_id AND ct.id = c.contact_id AND c.tenant_id = '$tenant'
        AND ct.address = '+1b'" >/dev/null
got=$(batch 300 "$ch,+1a,,p5" "$ch,+1b,,p6" "$ch,+1d,,p3" | tr '\n' ' ')
check "third batch" "$got" "1|t|opted_out 2|t| 3|f| "
check "opted out: stored processed" "$(sql "SELECT (processed_at IS NOT NULL) || '|' || agent_outcome FROM messages WHERE tenant_id = '$tenant' AND provider_message_id = 'p5'")" "true|opted_out"
check "opted out: not flagged" "$(conv_of +1a)" "false|true|open"
check "closed: reopened and flagged" "$(conv_of +1b)" "true|true|open"
check "repeat only: not flagged" "$(conv_of +1d)" "false|false|open"

# 4: arrays of different lengths are refused
err=$(psql "$agent" -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SELECT * FROM tern_agent_intake_batch('$tenant',
    '{$ch}', '{a,b}', '{NULL}', '{whatsapp}', '{x}', '{text}', '{hi}', '{NULL}', '{\"{}\"}', '{1}')" 2>&1)
case "$err" in *22023*) ok ;; *) bad "array lengths: $err" ;; esac

sql "DELETE FROM messages WHERE tenant_id IN ('$tenant', '$other');
     DELETE FROM conversations WHERE tenant_id IN ('$tenant', '$other');
     DELETE FROM leads WHERE tenant_id IN ('$tenant', '$other');
     DELETE FROM contacts WHERE tenant_id IN ('$tenant', '$other');
     DELETE FROM channels WHERE tenant_id IN ('$tenant', '$other');
     DELETE FROM tenants WHERE id IN ('$tenant', '$other')" >/dev/null 2>&1 || true
echo "agent_intake_batch: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
