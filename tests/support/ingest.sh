# shellcheck shell=bash
# tests/support/ingest.sh - shared by the tern-ingest tests: a tenant with
# one WhatsApp, one Twilio SMS and one Telegram channel (secrets sealed by
# ternctl), a running tern-ingest on free ports, signing helpers and stream
# readers. Source it after setting $dir (a scratch directory).
: "${TN_BIN_DIR:?run through scripts/test}" "${TN_TEST_TMP:?}"
. "$TN_SRC_DIR/scripts/lib/stack.sh"

# assertions (tests/support/check.sh); want also shows the body in $dir/resp
. "$TN_SRC_DIR/tests/support/check.sh"
want() { if [ "$2" = "$1" ]; then ok; else bad "$3: got $2, want $1 ($(head -c 200 "$dir/resp" 2>/dev/null))"; fi; }

admin_redis() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }

# ingest_setup_tenant - create the tenant and channels; sets tid, wa_pnid,
# wa_secret, wa_verify, tw_ch, tw_token, tw_sid, tg_ch, tg_secret, master.
ingest_setup_tenant() {
    local u="i$$x$RANDOM$RANDOM"
    master="1:$(head -c 32 /dev/urandom | base64 -w0)"
    wa_pnid="9$RANDOM$RANDOM$$"
    wa_secret="app-$u" wa_verify="verify-$u" tw_token="tok$u" tg_secret="tg-$u"
    tw_sid="AC$(printf '%032x' $((RANDOM * RANDOM)))"
    export TN_PG_DSN="$TN_TEST_PG_ADMIN_DSN" TN_MASTER_KEY="$master"
    tid=$("$TN_BIN_DIR/ternctl" tenant add --slug "$u" --name "Ingest $u" --tz Europe/Lisbon) || return 1
    "$TN_BIN_DIR/ternctl" channel add --tenant "$tid" --kind whatsapp --address "$wa_pnid" \
        --secret "app_secret=$wa_secret" --secret "verify_token=$wa_verify" >/dev/null || return 1
    tw_ch=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tid" --kind twilio_sms \
        --address "+1555$RANDOM$RANDOM" --secret "auth_token=$tw_token" \
        --secret "account_sid=$tw_sid") || return 1
    tg_ch=$("$TN_BIN_DIR/ternctl" channel add --tenant "$tid" --kind telegram \
        --address "bot$u" --secret "secret_token=$tg_secret") || return 1
    unset TN_PG_DSN TN_MASTER_KEY
}

# ingest_setup_wa_sender [BUSINESS OFFER] - ingest_setup_tenant, then the
# WhatsApp number can also send (its channel re-added with an access token)
# and the tenant has an agent profile (default: Lisbon Plumbing); sets
# wa_token and wa_ch besides ingest_setup_tenant's.
ingest_setup_wa_sender() {
    local q="psql $TN_TEST_PG_ADMIN_DSN -XAtq -v ON_ERROR_STOP=1 -c"
    local business=${1:-Lisbon Plumbing} offer=${2:-Emergency and planned plumbing}
    ingest_setup_tenant || return 1
    wa_token="EAAG$(openssl rand -hex 16)"
    wa_ch=$($q "SELECT id FROM channels WHERE tenant_id = '$tid' AND kind = 'whatsapp'") || return 1
    TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master "$TN_BIN_DIR/ternctl" channel remove \
        --tenant "$tid" --id "$wa_ch" >/dev/null || return 1
    wa_ch=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master "$TN_BIN_DIR/ternctl" channel add \
        --tenant "$tid" --kind whatsapp --address "$wa_pnid" --secret "app_secret=$wa_secret" \
        --secret "verify_token=$wa_verify" --secret "access_token=$wa_token") || return 1
    $q "INSERT INTO agent_profiles (tenant_id, business_name, offer, hours_text)
        VALUES ('$tid', '$business', '$offer', 'Mon-Fri 8-18')" >/dev/null
}

# until_ok SECONDS CMD... - retry CMD every 0.2 s until it succeeds
until_ok() {
    local end=$(($(date +%s) + $1))
    shift
    while [ "$(date +%s)" -le "$end" ]; do "$@" && return 0; sleep 0.2; done
    return 1
}

# ingest_daemon NAME [VAR=VALUE...] - start tern-NAME on its own admin port
# with the tenant's master key, logging to $dir/NAME.log; its pid goes to
# dpid[NAME] (the caller declares: declare -A dpid=()). VAR=VALUE may
# override the defaults (TN_DRAIN_TIMEOUT=2s).
ingest_daemon() {
    local name=$1
    shift
    env TN_ADMIN_LISTEN="127.0.0.1:$(tn_free_port)" TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=2s \
        TN_MASTER_KEY="$master" "$@" "$TN_BIN_DIR/tern-$name" >>"$dir/$name.log" 2>&1 &
    dpid[$name]=$!
}

# ingest_stop_daemons - kill -9 what ingest_daemon and ingest_start started
ingest_stop_daemons() {
    local p
    for p in "${dpid[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${ipid:-}" ] && kill -9 "$ipid" 2>/dev/null
    return 0
}

# ingest_cleanup - an EXIT trap for a test with daemons and the sandbox
# (tests/sandbox/client.sh): stop them, show the logs' last non-info lines
# when a check failed, remove $dir
ingest_cleanup() {
    local f
    ingest_stop_daemons
    sandbox_stop
    if [ "$fail" != 0 ]; then
        for f in "$dir"/*.log; do echo "--- $f" >&2; grep -v '"lvl":"info"' "$f" | tail -8 >&2; done
    fi
    rm -rf "$dir"
}

# ingest_start [VAR=VALUE...] - start tern-ingest; sets ipid, iport, aport, base.
ingest_start() {
    iport=$(tn_free_port)
    aport=$(tn_free_port)
    base="http://127.0.0.1:$iport"
    env TN_REDIS_URL="$TN_TEST_REDIS_URL_INGEST" TN_PG_DSN="$TN_TEST_PG_DSN_INGEST" \
        TN_MASTER_KEY="$master" TN_INGEST_LISTEN="127.0.0.1:$iport" \
        TN_ADMIN_LISTEN="127.0.0.1:$aport" TN_INGEST_PUBLIC_URL="https://hooks.example.test" \
        TN_INGEST_ROUTES_REFRESH=200ms TN_ALLOW_ROOT=1 TN_DRAIN_TIMEOUT=3s "$@" \
        "$TN_BIN_DIR/tern-ingest" >>"$dir/ingest.log" 2>&1 &
    ipid=$!
    local i
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz")" = 200 ] \
            && return 0
        sleep 0.1
    done
    echo "tern-ingest not ready: $(tail -5 "$dir/ingest.log")" >&2
    return 1
}

# wa_sig FILE - X-Hub-Signature-256 of FILE's bytes
wa_sig() { echo "sha256=$(openssl dgst -sha256 -hmac "$wa_secret" -r <"$1" | cut -d' ' -f1)"; }

# tw_sig URL FORMFILE - X-Twilio-Signature: base64 HMAC-SHA1 of the URL and
# the sorted, decoded form parameters concatenated (Twilio's algorithm).
tw_sig() {
    node -e '
const [tok, url, file] = process.argv.slice(1);
const p = new URLSearchParams(require("fs").readFileSync(file, "utf8"));
const keys = [...new Set(p.keys())].sort();
let s = url;
for (const k of keys) for (const v of p.getAll(k).sort()) s += k + v;
process.stdout.write(require("crypto").createHmac("sha1", tok).update(s).digest("base64"));
' "$tw_token" "$1" "$2"
}

# post URL FILE CTYPE [HEADER...] - POST FILE; prints the status code,
# the body goes to $dir/resp
post() {
    local url=$1 file=$2 ctype=$3
    shift 3
    local hs=() h
    for h in "$@"; do hs+=(-H "$h"); done
    curl -s -o "$dir/resp" -w '%{http_code}' --max-time 10 -X POST -H "Content-Type: $ctype" \
        "${hs[@]}" --data-binary "@$file" "$url"
}

# tenant_entries STREAM - entries on STREAM whose tenant field is $tid
tenant_entries() {
    admin_redis XRANGE "$1" - + | grep -cx "$tid" || true
}

# dump_entries STREAM - this tenant's entries as JSON lines for validate-entries.mjs
dump_entries() {
    node -e '
const { execFileSync } = require("child_process");
const [url, stream, tid] = process.argv.slice(1);
const out = execFileSync("redis-cli", ["-u", url, "--no-auth-warning", "--json", "XRANGE", stream, "-", "+"], { maxBuffer: 1 << 30 });
for (const [, kv] of JSON.parse(out)) {
  const f = {};
  for (let i = 0; i < kv.length; i += 2) f[kv[i]] = kv[i + 1];
  if (f.tenant === tid) console.log(JSON.stringify({ stream, fields: f }));
}' "$TN_TEST_REDIS_URL_ADMIN" "$1" "$tid"
}
