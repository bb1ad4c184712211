#!/usr/bin/env bash
# ctl_keys.sh - a master-key rotation finished with `ternctl keys`: after a
# new key is put first, `keys status` shows what the old key still seals,
# `keys reseal` seals channel secrets and calendar tokens again under the new
# key (per tenant, then everywhere, also as the operator's own role), and
# then the old key can leave the ring:
#   - the stored calendar tokens open with the new key and their row's aad
#     (checked outside Tern, with Node's crypto) to the same plaintext, and
#     no longer name the old key; key_id follows;
#   - a ring holding only the new key opens the channel secrets (`channel
#     secrets` seals them again without complaint);
#   - a value sealed under a key the ring lacks is left as it is, reported
#     (status "missing", reseal exit 1), and does not stop the others;
#   - each sealed-again row has an audit row; a second reseal changes nothing;
#   - no secret appears in any output.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/ctl_keys.XXXXXX")
trap 'rm -rf "$dir"' EXIT
. "$TN_SRC_DIR/tests/support/check.sh"
. "$TN_SRC_DIR/tests/support/sealed.sh"
ctl="$TN_BIN_DIR/ternctl"
sql() { psql "$TN_TEST_PG_ADMIN_DSN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# keys RING DSN CMD... - ternctl with the key ring RING and DSN; its exit
# code, stdout in $dir/out, stderr in $dir/err, both kept in $dir/all
keys() {
    local ring=$1 dsn=$2 rc=0
    shift 2
    TN_PG_DSN=$dsn TN_MASTER_KEY=$ring "$ctl" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    cat "$dir/out" "$dir/err" >>"$dir/all"
    return $rc
}
# status_lines - keys status' header, then its lines sorted by key id
status_lines() { { head -1 && sort -n; } <"$dir/out"; }
admin=$TN_TEST_PG_ADMIN_DSN
k1=$(head -c 32 /dev/urandom | base64 -w0) k2=$(head -c 32 /dev/urandom | base64 -w0)
k9=$(head -c 32 /dev/urandom | base64 -w0)
r1="1:$k1" r21="2:$k2,1:$k1" r2="2:$k2"
u=k$RANDOM$RANDOM

# --- tenant A: a WhatsApp channel, two calendar accounts; tenant B: a bot
ta=$(TN_PG_DSN=$admin TN_MASTER_KEY=$r1 "$ctl" tenant add --slug "a$u" --name "Keys A $u")
tb=$(TN_PG_DSN=$admin TN_MASTER_KEY=$r1 "$ctl" tenant add --slug "b$u" --name "Keys B $u")
wa=$(TN_PG_DSN=$admin TN_MASTER_KEY=$r1 "$ctl" channel add --tenant "$ta" --kind whatsapp \
    --address "9$RANDOM$RANDOM" --secret "app_secret=app-$u" --secret "verify_token=vt-$u")
tg=$(TN_PG_DSN=$admin TN_MASTER_KEY=$r1 "$ctl" channel add --tenant "$tb" --kind telegram \
    --address "bot$u" --secret "secret_token=tg-$u")
# account ID PROVIDER TENANT KID KEY ACCESS [REFRESH] - a calendar account
# whose tokens are sealed under key KID (base64 KEY)
account() {
    local ref="NULL"
    [ -n "${7:-}" ] && ref="decode('$(tn_seal_hex "$5" "$4" "oauth:$3:$1:refresh" "$7")', 'hex')"
    sql "INSERT INTO oauth_accounts (tenant_id, id, provider, calendar_id, access_token_sealed,
         refresh_token_sealed, key_id) VALUES ('$3', '$1', '$2', 'primary',
         decode('$(tn_seal_hex "$5" "$4" "oauth:$3:$1:access" "$6")', 'hex'), $ref, $4)" >/dev/null
}
g1=$(sql "SELECT gen_random_uuid()") c1=$(sql "SELECT gen_random_uuid()")
account "$g1" google "$ta" 1 "$k1" "ya29.acc-$u" "1//ref-$u"
account "$c1" caldav "$ta" 1 "$k1" "dav-pass-$u"
secrets=("app-$u" "vt-$u" "tg-$u" "ya29.acc-$u" "1//ref-$u" "dav-pass-$u")

# --- status before the rotation, then with the new key first (per tenant:
# other tests' rows, under their own keys, share the database)
keys "$r1" "$admin" keys status --tenant "a$u"
want 0 $? "keys status"
want "key	channels	calendar_tokens	ring
1	1	3	current" "$(cat "$dir/out")" "status under key 1"
keys "$r21" "$admin" keys status --tenant "$ta"
want "key	channels	calendar_tokens	ring
1	1	3	yes" "$(cat "$dir/out")" "status with key 2 put first"

# --- reseal tenant A, then everything (as the operator's role)
keys "$r21" "$admin" keys reseal --tenant "a$u"
want 0 $? "reseal tenant A ($(cat "$dir/err"))"
want "channels	resealed 1	current 0	unopened 0
calendar_tokens	resealed 2	current 0	unopened 0" "$(cat "$dir/out")" "reseal tenant A output"
keys "$r21" "$admin" keys status --tenant "a$u"
want "key	channels	calendar_tokens	ring
2	1	3	current" "$(cat "$dir/out")" "status of tenant A after its reseal"
keys "$r21" "$admin" keys status --tenant "b$u"
want "key	channels	calendar_tokens	ring
1	1	0	yes" "$(cat "$dir/out")" "status of tenant B before its reseal"
# every tenant, as the operator's role: the rows of other tests (under keys
# this ring lacks) are reported unopened and left, ours are sealed again
keys "$r21" "$TN_TEST_PG_DSN_CTL" keys reseal
grep -qE "^channels	resealed [1-9]" "$dir/out" && ok || bad "reseal everything as tern_ctl: $(cat "$dir/out" "$dir/err")"
keys "$r2" "$admin" keys status --tenant "b$u"
want "key	channels	calendar_tokens	ring
2	1	0	current" "$(cat "$dir/out")" "status of tenant B once key 1 can go"

# --- the stored bytes themselves, opened outside Tern
raw() { sql "SELECT encode($1, 'hex') FROM oauth_accounts WHERE id = '$2'"; }
want "ya29.acc-$u" "$(tn_open_hex "$(raw access_token_sealed "$g1")" "oauth:$ta:$g1:access" "$k2")" \
    "the Google access token under key 2"
want "1//ref-$u" "$(tn_open_hex "$(raw refresh_token_sealed "$g1")" "oauth:$ta:$g1:refresh" "$k2")" \
    "the Google refresh token under key 2"
want "dav-pass-$u" "$(tn_open_hex "$(raw access_token_sealed "$c1")" "oauth:$ta:$c1:access" "$k2")" \
    "the CalDAV password under key 2"
want 2 "$(tn_sealed_kid "$(raw refresh_token_sealed "$g1")")" "the refresh token's envelope names key 2"
want "2 2" "$(sql "SELECT string_agg(key_id::text, ' ') FROM oauth_accounts WHERE tenant_id = '$ta'")" \
    "key_id of the accounts"
want "2 2" "$(sql "SELECT string_agg(secrets_key_id::text, ' ') FROM channels WHERE id IN ('$wa', '$tg')")" \
    "secrets_key_id of the channels"
for ch in "$ta $wa" "$tb $tg"; do
    # shellcheck disable=SC2086
    set -- $ch
    keys "$r2" "$admin" channel secrets --tenant "$1" --id "$2"
    want "0 sealed:key2" "$? $(cat "$dir/out")" "channel $2 opens with key 2 alone"
done
want 4 "$(sql "SELECT count(*) FROM audit_log WHERE action = 'keys.reseal' AND tenant_id IN ('$ta', '$tb')")" \
    "one audit row per sealed-again row"

# --- a second reseal changes nothing
before=$(sql "SELECT md5(string_agg(encode(secrets_sealed, 'hex'), ',' ORDER BY id)) FROM channels
              WHERE id IN ('$wa', '$tg')")
keys "$r2" "$admin" keys reseal --tenant "a$u"
want "0 channels	resealed 0	current 1	unopened 0
calendar_tokens	resealed 0	current 2	unopened 0" "$? $(cat "$dir/out")" "a second reseal"
want "$before" "$(sql "SELECT md5(string_agg(encode(secrets_sealed, 'hex'), ',' ORDER BY id)) FROM channels
                       WHERE id IN ('$wa', '$tg')")" "channel bytes after a second reseal"

# --- a value under a key the ring lacks: reported, left, the rest goes on
x9=$(sql "SELECT gen_random_uuid()") g2=$(sql "SELECT gen_random_uuid()")
account "$x9" google "$tb" 9 "$k9" "ya29.lost-$u" "1//lost-$u"
account "$g2" google "$tb" 1 "$k1" "ya29.late-$u"
secrets+=("ya29.lost-$u" "1//lost-$u" "ya29.late-$u")
lost=$(raw refresh_token_sealed "$x9")
keys "$r21" "$admin" keys status --tenant "b$u"
want 1 $? "status with a key the ring lacks"
want "key	channels	calendar_tokens	ring
1	0	1	yes
2	1	0	current
9	0	2	missing" "$(status_lines)" "status lines with a key the ring lacks"
grep -q "2 values are sealed under keys the ring lacks" "$dir/err" && ok || bad "status: $(cat "$dir/err")"
keys "$r21" "$admin" keys reseal --tenant "b$u"
want 1 $? "reseal with a value no key opens"
want "channels	resealed 0	current 1	unopened 0
calendar_tokens	resealed 1	current 0	unopened 1" "$(cat "$dir/out")" "reseal output with a lost key"
grep -q "no key of the ring opens" "$dir/err" && ok || bad "no explanation: $(cat "$dir/err")"
want "$lost" "$(raw refresh_token_sealed "$x9")" "the unopened row is left as it was"
want "ya29.late-$u" "$(tn_open_hex "$(raw access_token_sealed "$g2")" "oauth:$tb:$g2:access" "$k2")" \
    "the other account of the tenant was sealed again"

# --- refusals, and no secret anywhere in what ternctl printed
keys "$r2" "$admin" keys rotate
want 64 $? "unknown keys verb"
keys "" "$admin" keys status
want 78 $? "no key ring"
keys "$r2" "$admin" keys status --tenant "nope$u"
want 1 $? "unknown tenant"
for s in "${secrets[@]}"; do
    grep -qF -- "$s" "$dir/all" && bad "ternctl printed a secret"
done
ok

echo "ctl_keys: $pass passed, $fail failed"
[ "$fail" = 0 ]
