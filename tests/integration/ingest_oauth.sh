#!/usr/bin/env bash
# ingest_oauth.sh - connecting a Google Calendar, the browser half.
#
# `ternctl calendar link` prints a sealed link; tern-ingest's start page
# answers it with a redirect to Google carrying everything a refresh token
# needs (offline access, forced consent, PKCE S256, the calendar scopes) and
# a sealed state; the callback with that state and a code puts exactly one
# cal.request {op: connect} on tern:cal whose code is sealed, not readable;
# a replayed callback adds nothing; a forged link or state is refused; a
# declined consent enqueues nothing.
set -u
: "${TN_SRC_DIR:?run through scripts/test}"
dir=$(mktemp -d "$TN_TEST_TMP/ingest_oauth.XXXXXX")
. "$TN_SRC_DIR/tests/support/ingest.sh"
ipid=""
trap 'kill -9 $ipid 2>/dev/null; rm -rf "$dir"' EXIT
get() { curl -s -o "$dir/resp" -D "$dir/hdr" -w '%{http_code}' "$@"; }

ingest_setup_tenant || { echo "FAIL: setup" >&2; exit 1; }
ingest_start TN_GOOGLE_CLIENT_ID=tern-test.apps.example TN_GOOGLE_AUTH_URL=https://accounts.example.test/o/oauth2/v2/auth || exit 1
pub=https://hooks.example.test

link=$(TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master TN_INGEST_PUBLIC_URL=$pub/ \
    "$TN_BIN_DIR/ternctl" calendar link --tenant "$tid" --ttl 1h) || bad "calendar link failed"
case "$link" in "$pub/oauth/google/start?link="*) ok ;; *) bad "link: $link" ;; esac
TN_PG_DSN=$TN_TEST_PG_ADMIN_DSN TN_MASTER_KEY=$master TN_INGEST_PUBLIC_URL=$pub \
    "$TN_BIN_DIR/ternctl" calendar link --tenant no-such-tenant >/dev/null 2>&1
[ $? = 1 ] && ok || bad "link for an unknown tenant not refused"
local_link="$base${link#"$pub"}"

# --- start: redirect to Google with a sealed state
want 302 "$(get "$local_link")" "start"
loc=$(grep -i '^Location:' "$dir/hdr" | cut -d' ' -f2- | tr -d '\r')
case "$loc" in https://accounts.example.test/o/oauth2/v2/auth\?*) ok ;; *) bad "Location: $loc" ;; esac
for p in client_id=tern-test.apps.example response_type=code access_type=offline prompt=consent \
    code_challenge_method=S256 "redirect_uri=https%3A%2F%2Fhooks.example.test%2Foauth%2Fgoogle%2Fcallback" \
    "calendar.events" "calendar.readonly" "openid"; do
    case "$loc" in *"$p"*) ok ;; *) bad "authorization request lacks $p" ;; esac
done
state=$(sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' <<<"$loc")
[ -n "$state" ] && ok || bad "no state"
grep -qi '^Cache-Control: no-store' "$dir/hdr" && ok || bad "start page cacheable"

# forged and missing links
want 403 "$(get "${local_link%?????}AAAAA")" "tampered link"
want 403 "$(get "$base/oauth/google/start")" "no link"
want 405 "$(curl -s -o "$dir/resp" -w '%{http_code}' -X POST "$local_link")" "POST start"

# --- callback: one sealed connect request on tern:cal
cal0=$(tenant_entries tern:cal)
code="4/0AeaYSHtest-$RANDOM"
want 200 "$(get "$base/oauth/google/callback?state=$state&code=$code&scope=openid")" "callback"
grep -q "being connected" "$dir/resp" && ok || bad "callback page: $(cat "$dir/resp")"
want 200 "$(get "$base/oauth/google/callback?state=$state&code=$code&scope=openid")" "replayed callback"
[ "$(tenant_entries tern:cal)" = $((cal0 + 1)) ] && ok || bad "want exactly one tern:cal entry"
dump_entries tern:cal >"$dir/cal.jsonl"
grep -q '"op\\":\\"connect\\"' "$dir/cal.jsonl" && ok || bad "no connect op: $(head -c 300 "$dir/cal.jsonl")"
grep -q -- "$code" "$dir/cal.jsonl" && bad "authorization code in clear on the stream" || ok
node "$TN_SRC_DIR/tests/tools/validate-entries.mjs" "$dir/cal.jsonl" >"$dir/validate.out" 2>&1 \
    && ok || bad "cal.request fails its schema: $(head -5 "$dir/validate.out")"

# forged state, declined consent
want 400 "$(get "$base/oauth/google/callback?state=${state%?????}AAAAA&code=x")" "forged state"
want 400 "$(get "$base/oauth/google/callback?code=x")" "no state"
get "$local_link" >/dev/null
state2=$(grep -i '^Location:' "$dir/hdr" | sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' | tr -d '\r')
want 200 "$(get "$base/oauth/google/callback?state=$state2&error=access_denied")" "declined"
grep -q "not connected" "$dir/resp" && ok || bad "declined page"
[ "$(tenant_entries tern:cal)" = $((cal0 + 1)) ] && ok || bad "declined consent enqueued something"
grep -q -e "$code" -e "$state" "$dir/ingest.log" && bad "log leaks the code or state" || ok

kill -TERM "$ipid"
wait "$ipid" && ok || bad "tern-ingest did not exit 0"
echo "ingest_oauth: $pass passed, $fail failed"
[ "$fail" = 0 ]
