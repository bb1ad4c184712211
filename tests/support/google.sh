# shellcheck shell=bash
# tests/support/google.sh - the sandbox's Google for the calsync tests:
# calendar calls with a token of the calendar's owner (obtained the way
# another app would, through the sandbox's token endpoint), and readers of
# the sandbox's records. Source it after tests/sandbox/client.sh and
# sandbox_start; needs jq.

# google_owner_token - an access token for the sandbox's default user (the
# one tern-calsync connects), from a code the sandbox did not issue; sets gtok
google_owner_token() {
    gtok=$(curl -s "$SANDBOX_URL/google/token" -d grant_type=authorization_code \
        -d "code=other-app-$RANDOM$RANDOM" -d client_id=other-app -d client_secret=x \
        -d redirect_uri=http://127.0.0.1/cb | jq -r .access_token)
    [ -n "$gtok" ] && [ "$gtok" != null ]
}

# gcal METHOD PATH [curl args...] - a Calendar call as the owner; body on
# stdout, status in $gstatus
gcal() {
    local m="$1" p="$2" out
    shift 2
    out=$(curl -s -X "$m" -w '\n%{http_code}' -H "Authorization: Bearer $gtok" \
        -H 'Content-Type: application/json' "$SANDBOX_URL/google/calendar/v3$p" "$@")
    gstatus=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
}

# google_count PROVIDER SINCE JQ_FILTER - how many records since SINCE match
google_count() {
    sandbox_requests "$1" "$2" | jq "[.[] | select($3)] | length"
}

# google_seq - the sandbox's current request counter
google_seq() {
    curl -s "$SANDBOX_URL/_sandbox/stats" | jq .total
}
