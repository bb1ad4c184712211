# shellcheck shell=bash
# tn_deps_install - install the Debian packages Tern needs, quietly and only
# those missing. Idempotent: prints nothing when everything is present.
TN_DEPS_BUILD="cmake make gcc clang pkg-config libuv1-dev libhiredis-dev libpq-dev
 libcurl4-openssl-dev libjansson-dev libssl-dev libcmocka-dev libh2o-dev libical-dev libxml2-dev
 libjemalloc-dev"
TN_DEPS_RUN="redis-server redis-tools postgresql curl jq openssl radicale tzdata"
# Tools a machine may already have from elsewhere (a newer Node.js, say):
# installed from Debian only when the command is missing, never over it.
TN_DEPS_CMDS="node:nodejs npm:npm psql:postgresql-client wrk:wrk"

tn_deps_install() {
    local missing=() p
    for p in $TN_DEPS_BUILD $TN_DEPS_RUN "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    for p in $TN_DEPS_CMDS; do
        command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# tn_node_tools - npm packages the tests use (ajv for JSON Schema checks),
# installed from the committed lockfile into tests/tools/node_modules.
tn_node_tools() {
    local dir="$1/tests/tools"
    [ -f "$dir/package.json" ] || return 0
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --silent >/dev/null) || return 1
        touch "$dir/node_modules"
    fi
}
