# shellcheck shell=bash
# Helpers for tests that use the provider sandbox; `source` this file.
#
#   sandbox_start DIR [ARGS...]  start it in the background (extra ARGS go to
#                                sandbox.mjs, e.g. --ingest-url URL); writes
#                                DIR/sandbox.port (DIR/sandbox.smtp.port with
#                                --smtp) and DIR/sandbox.log; exports
#                                SANDBOX_PORT, SANDBOX_PID, SANDBOX_URL
#                                (and SANDBOX_SMTP_PORT)
#   sandbox_stop                 SIGTERM it and wait
#   sandbox_requests PROVIDER [SINCE]   the JSON array of its records
#   sandbox_script PROVIDER JSON        append JSON (an array of responses)
#   sandbox_fault JSON                  POST /_sandbox/fault
#   sandbox_config JSON                 POST /_sandbox/config
#   sandbox_reset                       POST /_sandbox/reset
#   sandbox_emit JSON                   POST /_sandbox/emit, prints {status, body}

SANDBOX_DIR_SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sandbox_start() {
    local dir="$1" smtp=()
    shift
    if [ "${1:-}" = --smtp ]; then
        smtp=(--smtp-port-file "$dir/sandbox.smtp.port")
        shift
    fi
    rm -f "$dir/sandbox.port" "$dir/sandbox.smtp.port"
    node "$SANDBOX_DIR_SELF/sandbox.mjs" --port 0 --port-file "$dir/sandbox.port" "${smtp[@]}" "$@" \
        >>"$dir/sandbox.log" 2>&1 &
    SANDBOX_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$dir/sandbox.port" ] && break
        kill -0 "$SANDBOX_PID" 2>/dev/null || { echo "sandbox died: $(tail -5 "$dir/sandbox.log")" >&2; return 1; }
        sleep 0.05
    done
    [ -s "$dir/sandbox.port" ] || { echo "sandbox did not start" >&2; return 1; }
    SANDBOX_PORT=$(cat "$dir/sandbox.port")
    SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
    export SANDBOX_PORT SANDBOX_PID SANDBOX_URL
    if [ ${#smtp[@]} -gt 0 ]; then
        SANDBOX_SMTP_PORT=$(cat "$dir/sandbox.smtp.port")
        export SANDBOX_SMTP_PORT
    fi
}

sandbox_stop() {
    [ -n "${SANDBOX_PID:-}" ] || return 0
    kill -TERM "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    unset SANDBOX_PID
}

sandbox_post() {
    curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary "$2" "$SANDBOX_URL/_sandbox/$1"
}

sandbox_requests() {
    curl -sS --fail-with-body "$SANDBOX_URL/_sandbox/requests?provider=${1:-}&since=${2:-0}"
}

sandbox_script() {
    sandbox_post script "{\"provider\":\"$1\",\"responses\":$2}" >/dev/null
}

sandbox_fault() { sandbox_post fault "$1" >/dev/null; }
sandbox_config() { sandbox_post config "$1" >/dev/null; }
sandbox_reset() { sandbox_post reset '{}' >/dev/null; }
sandbox_emit() { sandbox_post emit "$1"; }
