#!/usr/bin/env bash
# ctl_channel_secrets.sh - an operator rotates a channel's secrets in place,
# disconnects it and turns it on again.
#
# The channel has history (a conversation), so it can be neither removed
# (refused, with a message that names `channel secrets`) nor added again
# beside itself (its kind and address are unique). `ternctl channel secrets`
# replaces the app secret and keeps the verify token: tern-ingest, after its
# routing refresh, accepts a webhook signed with the new secret and refuses
# the old one with 401, and the verification challenge still answers the
# kept token. Then the master key is rotated (a new key put first): without
# --secret the command seals the same secrets again under the new key; a
# ring without that key can no longer open them, a tern-ingest given the new
# ring accepts the webhook. Disconnected, the channel is no longer routed
# (404) and its secrets are gone while its history stays; with new secrets
# and enabled it is routed again. Each change leaves an audit row. No
# secret reaches ternctl's output.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/ctl_channel_secrets.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
ipid=""
trap 'kill -9 $ipid 2>/dev/null; rm -rf "$dir"' EXIT
ctl="$TN_BIN_DIR/ternctl"
sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# as_ctl RING CMD... - ternctl with the admin DSN and master key RING; its
# exit code, with stdout and stderr in $dir/out
as_ctl() {
    local ring=$1
    shift
    TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$ring "$ctl" "$@" >"$dir/out" 2>&1
}

ingest_setup_tenant || { echo "FAIL: setup" >&2; exit 1; }
ingest_start || exit 1
wa_ch=$(sql "SELECT id FROM channels WHERE tenant_id = '$tid' AND kind = 'whatsapp'")
old_secret=$wa_secret
sed -e "s/106540352242922/$wa_pnid/" -e "s/wamid\.HBgL/wamid.$(openssl rand -hex 4)/" \
    "$TN_SRC_DIR/tests/fixtures/whatsapp/text.json" >"$dir/wa.json"
wa="$base/webhooks/whatsapp"
# signed_with SECRET - the webhook's status when signed with SECRET
signed_with() {
    local wa_secret=$1
    post "$wa" "$dir/wa.json" application/json "X-Hub-Signature-256: $(wa_sig "$dir/wa.json")"
}
want 200 "$(signed_with "$old_secret")" "webhook before the rotation"

# --- the channel has history: remove is refused and says what to do instead
# (the conversation's own id is checked later: a tern-agent of a test running
# beside this one may take the webhooks from tern:in and add conversations)
conv=$(sql "INSERT INTO contacts (tenant_id, id, kind, address) VALUES ('$tid', gen_random_uuid(), 'whatsapp', '351910000001');
     INSERT INTO conversations (tenant_id, contact_id, channel_id)
     SELECT '$tid', id, '$wa_ch' FROM contacts WHERE tenant_id = '$tid' RETURNING id")
as_ctl "$master" channel remove --tenant "$tid" --id "$wa_ch"
want 1 $? "remove of a channel with history"
grep -q "channel secrets" "$dir/out" && ok || bad "remove refusal does not name channel secrets: $(cat "$dir/out")"
as_ctl "$master" channel add --tenant "$tid" --kind whatsapp --address "$wa_pnid" --secret app_secret=x
want 1 $? "a second channel with the same address"

# --- a new app secret, the verify token kept
new_secret="app-new-$RANDOM$RANDOM"
as_ctl "$master" channel secrets --tenant "$tid" --id "$wa_ch" --secret "app_secret=$new_secret"
want 0 $? "channel secrets"
want "sealed:key1" "$(cat "$dir/out")" "channel secrets output"
accepts_new() { [ "$(signed_with "$new_secret")" = 200 ]; }
until_ok 10 accepts_new && ok || bad "the new app secret is not accepted after the routing refresh"
want 401 "$(signed_with "$old_secret")" "webhook signed with the old app secret"
code=$(curl -s -o "$dir/resp" -w '%{http_code}' "$wa?hub.mode=subscribe&hub.verify_token=$wa_verify&hub.challenge=42")
want 200 "$code" "challenge with the kept verify token"
[ "$(sql "SELECT count(*) FROM conversations WHERE id = '$conv' AND channel_id = '$wa_ch'")" = 1 ] && ok \
    || bad "the channel's history is gone"

# --- a new master key first: the same secrets sealed again under it
master2="2:$(head -c 32 /dev/urandom | base64 -w0),$master"
as_ctl "$master2" channel secrets --tenant "$tid" --id "$wa_ch"
want 0 $? "re-seal under the new key"
want "sealed:key2" "$(cat "$dir/out")" "re-seal output"
want 2 "$(sql "SELECT secrets_key_id FROM channels WHERE id = '$wa_ch'")" "stored key id"
as_ctl "$master" channel secrets --tenant "$tid" --id "$wa_ch"
want 1 $? "a ring without the sealing key"
grep -q "no key of the master key ring opens" "$dir/out" && ok || bad "old-ring refusal: $(cat "$dir/out")"
kill -9 "$ipid"
wait "$ipid" 2>/dev/null
master=$master2 ingest_start || exit 1
wa="$base/webhooks/whatsapp" # a new port
want 200 "$(signed_with "$new_secret")" "webhook, tern-ingest on the new ring"

# --- refusals
as_ctl "$master2" channel secrets --tenant "$tid" --id 00000000-0000-0000-0000-000000000000
want 1 $? "unknown channel"
as_ctl "$master2" channel secrets --tenant "$tid"
want 64 $? "no --id"
as_ctl "$master2" channel secrets --tenant "$tid" --id "$wa_ch" --secret "=x"
want 64 $? "malformed --secret"
bare=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN "$ctl" channel add --tenant "$tid" --kind telegram \
    --address "bare$RANDOM$RANDOM")
as_ctl "$master2" channel secrets --tenant "$tid" --id "$bare"
want 1 $? "re-seal of a channel without secrets"
as_ctl "$master2" channel secrets --tenant "$tid" --id "$bare" --secret "secret_token=tg-$RANDOM"
want 0 $? "first secrets of a channel without any"
mailbox=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master2 "$ctl" channel add --tenant "$tid" \
    --kind email --address "box$RANDOM@example.test" --secret "refresh_token=rt-$RANDOM")
# a mailbox's disconnect is tern-sweeper's (its Gmail grant is revoked there:
# sweeper_mailbox.sh); without Redis ternctl can queue nothing and changes nothing
TN_REDIS_URL="" as_ctl "$master2" channel disconnect --tenant "$tid" --id "$mailbox"
want 1 $? "disconnect of a mailbox without Redis"
grep -q "TN_REDIS_URL" "$dir/out" && ok || bad "mailbox disconnect without Redis: $(cat "$dir/out")"
want "true true" "$(sql "SELECT enabled::text || ' ' || (secrets_sealed IS NOT NULL)::text FROM channels
                        WHERE id = '$mailbox'")" "the mailbox after a refused disconnect"
want 0 "$(sql "SELECT count(*) FROM privacy_requests WHERE subject_ref = 'channel:$mailbox'")" \
    "no request recorded without Redis"
# the operator's own role (tern_ctl), not the admin: each command's grants
for verb in "secrets --secret secret_token=tg2-$RANDOM" disconnect enable; do
    # shellcheck disable=SC2086
    TN_PG_DSN=$TN_TEST_PG_DSN_CTL TN_MASTER_KEY=$master2 "$ctl" channel $verb --tenant "$tid" \
        --id "$bare" >"$dir/out" 2>&1
    want 0 $? "channel $verb as tern_ctl ($(head -c 200 "$dir/out"))"
done
as_ctl "" channel secrets --tenant "$tid" --id "$wa_ch"
want 78 $? "no master key"

# --- disconnect: not routed, secrets deleted, history kept; back on with new secrets
as_ctl "$master2" channel disconnect --tenant "$tid" --id "$wa_ch"
want 0 $? "disconnect"
want "f|t|" "$(sql "SELECT enabled, secrets_sealed IS NULL, secrets_key_id FROM channels WHERE id = '$wa_ch'")" \
    "disconnected channel row"
not_routed() { [ "$(signed_with "$new_secret")" = 404 ]; }
until_ok 10 not_routed && ok || bad "a disconnected channel's webhook is still routed"
[ "$(sql "SELECT count(*) FROM conversations WHERE id = '$conv' AND channel_id = '$wa_ch'")" = 1 ] && ok \
    || bad "disconnect lost the channel's history"
as_ctl "$master2" channel disconnect --tenant "$tid" --id 00000000-0000-0000-0000-000000000000
want 1 $? "disconnect of an unknown channel"
third="app-third-$RANDOM$RANDOM"
as_ctl "$master2" channel secrets --tenant "$tid" --id "$wa_ch" --secret "app_secret=$third" \
    --secret "verify_token=$wa_verify"
want 0 $? "new secrets for the disconnected channel"
as_ctl "$master2" channel enable --tenant "$tid" --id "$wa_ch"
want 0 $? "enable"
accepts_third() { [ "$(signed_with "$third")" = 200 ]; }
until_ok 10 accepts_third && ok || bad "the re-enabled channel does not accept its new secret"
want "channel.secrets,channel.secrets,channel.disconnect,channel.secrets,channel.enable" \
    "$(sql "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log
            WHERE tenant_id = '$tid' AND actor = 'ternctl' AND detail ->> 'channel_id' = '$wa_ch'")" \
    "audit rows of the channel"

# nothing secret in what ternctl printed
as_ctl "$master2" channel list --tenant "$tid"
grep -q -e "$new_secret" -e "$old_secret" -e "$wa_verify" "$dir/out" && bad "list shows a secret" || ok
echo "ctl_channel_secrets: $pass passed, $fail failed"
[ "$fail" = 0 ]
