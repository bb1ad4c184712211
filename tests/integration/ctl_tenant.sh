#!/usr/bin/env bash
# ctl_tenant.sh - ternctl migrate / tenant / channel against the real Postgres.
#
# migrate twice (the second run applies nothing), a changed applied migration
# is refused, tenant add/list (text and JSON, duplicate slug and bad time zone
# refused), channel add with sealed secrets (the stored column holds no
# plaintext and is exactly a tn_seal envelope), list never prints secrets,
# the tern_ctl role (BYPASSRLS) sees the same, remove, and usage errors (64).
set -u
ctl="$TN_BIN_DIR/ternctl"
admin="$TN_TEST_PG_ADMIN_DSN"
export TN_PG_DSN="$admin"
tmp=$(mktemp -d "${TN_TEST_TMP:-/tmp}/ctl_tenant.XXXXXX")
. "$TN_SRC_DIR/tests/support/check.sh"

# expect CODE CMD... - run CMD, compare the exit status, keep stdout in $tmp/out
expect() {
    local want=$1 got
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" = "$want" ]; then ok; else bad "$* -> exit $got, want $want: $(cat "$tmp/err")"; fi
}
sql() { psql "$admin" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

uniq="t$$-$RANDOM$RANDOM"

# --- migrate: idempotent, and an edited applied migration is refused
expect 0 "$ctl" migrate
expect 0 "$ctl" migrate
[ ! -s "$tmp/out" ] && ok || bad "second migrate applied something: $(cat "$tmp/out")"
[ "$(sql "SELECT count(*) FROM tern_migrations WHERE version = 1")" = 1 ] && ok || bad "no migration 1"
real=$(sql "SELECT sha256 FROM tern_migrations WHERE version = 1")
restore() { sql "UPDATE tern_migrations SET sha256 = '$real' WHERE version = 1" >/dev/null; }
trap 'restore; rm -rf "$tmp"' EXIT
sql "UPDATE tern_migrations SET sha256 = 'edited' WHERE version = 1" >/dev/null
expect 1 "$ctl" migrate
grep -q "changed after it was applied" "$tmp/err" && ok || bad "no 'changed' message"
restore
expect 0 "$ctl" migrate

# --- tenant
expect 0 "$ctl" tenant add --slug "$uniq" --name "Acme $uniq" --tz Europe/Berlin
tid=$(cat "$tmp/out")
[[ "$tid" =~ ^[0-9a-f-]{36}$ ]] && ok || bad "tenant add printed '$tid'"
[ "$(sql "SELECT time_zone FROM tenants WHERE id = '$tid'")" = Europe/Berlin ] && ok || bad "tz"
expect 1 "$ctl" tenant add --slug "$uniq" --name dup
expect 1 "$ctl" tenant add --slug "$uniq-tz" --name x --tz Mars/Olympus_Mons
expect 1 "$ctl" tenant add --slug "$uniq-tz2" --name x --tz +05
expect 64 "$ctl" tenant add --slug "$uniq-x"
expect 64 "$ctl" tenant frobnicate
expect 0 "$ctl" tenant list
grep -q "^$tid	$uniq	Acme $uniq	Europe/Berlin" "$tmp/out" && ok || bad "tenant list text"
expect 0 "$ctl" tenant list --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert any(t["id"]==sys.argv[2] and t["slug"]==sys.argv[3] for t in d)' \
    "$tmp/out" "$tid" "$uniq" && ok || bad "tenant list --json"

# --- channel
export TN_MASTER_KEY="7:$(head -c 32 /dev/urandom | base64 -w0)"
secret="appsecret-$uniq-plaintext"
expect 0 "$ctl" channel add --tenant "$uniq" --kind whatsapp --address "pn-$uniq" --name Main \
    --secret "app_secret=$secret" --secret "verify_token=vt-$uniq"
cid=$(cat "$tmp/out")
[[ "$cid" =~ ^[0-9a-f-]{36}$ ]] && ok || bad "channel add printed '$cid'"
row=$(sql "SELECT secrets_key_id, position(convert_to('$secret', 'UTF8') in secrets_sealed),
                  position(convert_to('verify_token', 'UTF8') in secrets_sealed),
                  length(secrets_sealed), get_byte(secrets_sealed, 0)
             FROM channels WHERE id = '$cid' AND tenant_id = '$tid'")
json="{\"app_secret\":\"$secret\",\"verify_token\":\"vt-$uniq\"}"
want="7|0|0|$((${#json} + 33))|1"
[ "$row" = "$want" ] && ok || bad "stored secret: got '$row', want '$want' (key id|plaintext pos|len|version)"
unset TN_MASTER_KEY
keyfile="$tmp/master.key"
echo "3:$(head -c 32 /dev/urandom | base64 -w0)" >"$keyfile"
expect 0 env TN_MASTER_KEY_FILE="$keyfile" "$ctl" channel add --tenant "$tid" --kind telegram \
    --address "bot-$uniq" --secret "secret_token=st-$uniq"
cid2=$(cat "$tmp/out")
[ "$(sql "SELECT secrets_key_id FROM channels WHERE id = '$cid2'")" = 3 ] && ok || bad "key file"
expect 78 "$ctl" channel add --tenant "$tid" --kind email --address "m-$uniq" --secret a=b
expect 0 "$ctl" channel add --tenant "$tid" --kind email --address "mail-$uniq@example.com"
expect 1 "$ctl" channel add --tenant "$tid" --kind whatsapp --address "pn-$uniq"
expect 1 "$ctl" channel add --tenant "nosuch-$uniq" --kind whatsapp --address "x-$uniq"
expect 64 "$ctl" channel add --tenant "$tid" --kind fax --address "x-$uniq"
expect 64 "$ctl" channel add --tenant "$tid" --kind whatsapp
expect 64 "$ctl" channel add --tenant "$tid" --kind whatsapp --address "y-$uniq" --secret novalue

expect 0 "$ctl" channel list --tenant "$uniq"
[ "$(grep -c -- "-$uniq" "$tmp/out")" = 3 ] && ok || bad "channel list rows: $(cat "$tmp/out")"
grep -q -e "$secret" -e "st-$uniq" -e "vt-$uniq" "$tmp/out" && bad "list printed a secret" || ok
grep -q "^$cid	whatsapp	pn-$uniq	Main	yes	sealed:key7$" "$tmp/out" && ok || bad "list text"
expect 0 "$ctl" channel list --tenant "$tid" --json
grep -q -e "$secret" -e "st-$uniq" "$tmp/out" && bad "list --json printed a secret" || ok
python3 -c 'import json,sys; d={c["id"]:c for c in json.load(open(sys.argv[1]))}; c=d[sys.argv[2]]; assert c["kind"]=="whatsapp" and c["has_secrets"] and c["key_id"]==7 and len(d)==3' \
    "$tmp/out" "$cid" && ok || bad "channel list --json"

# the operator role sees across tenants (BYPASSRLS) without the admin DSN
expect 0 env TN_PG_DSN="$TN_TEST_PG_DSN_CTL" "$ctl" channel list --tenant "$tid"
[ "$(grep -c -- "-$uniq" "$tmp/out")" = 3 ] && ok || bad "tern_ctl channel list"
# ingest's routing function sees the channel and its sealed secrets, not the table
[ "$(psql "$TN_TEST_PG_DSN_INGEST" -XAtq -c "SELECT count(*) FROM tern_routing() WHERE tenant_id = '$tid' AND secrets_key_id = 7")" = 1 ] \
    && ok || bad "tern_routing"

expect 0 "$ctl" channel remove --tenant "$uniq" --id "$cid"
expect 1 "$ctl" channel remove --tenant "$uniq" --id "$cid"
expect 64 "$ctl" channel remove --tenant "$uniq"
[ "$(sql "SELECT count(*) FROM channels WHERE id = '$cid'")" = 0 ] && ok || bad "removed row stays"

# --- usage and configuration
expect 64 "$ctl"
expect 64 "$ctl" bogus
expect 78 env -u TN_PG_DSN "$ctl" tenant list

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
