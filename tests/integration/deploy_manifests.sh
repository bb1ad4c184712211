#!/usr/bin/env bash
# The deployment files are valid: every Kubernetes manifest of deploy/k8s (the
# base, the monitoring component, and each overlay as `kubectl kustomize`
# renders it) against the Kubernetes and KEDA schemas, Tern's rules on them
# (probes, resources, drain vs grace period, secrets as files, PDBs, KEDA
# triggers on the streams and groups of common/include/tn/tn_proto.h,
# NetworkPolicies), deploy/compose.yaml with its prod and sandbox profiles
# (the provider sandbox and demo seed only under "sandbox", every provider
# and LLM base URL the daemons read pointing at the sandbox there), the alert
# rules, and the RUNBOOK (its metrics marked "exists" are registered by the C
# sources). When docker-compose or the compose plugin is installed, it must
# parse the compose file and list the sandbox only under its profile.
# Offline: the schemas come from npm packages installed by `npm ci` in
# tests/tools/k8s. Then broken copies must fail, so the checks can fail at
# all.
set -euo pipefail
: "${TN_SRC_DIR:?run through scripts/test}"
tools=$TN_SRC_DIR/tests/tools/k8s
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ ! -d "$tools/node_modules" ] || [ "$tools/package-lock.json" -nt "$tools/node_modules" ]; then
    (cd "$tools" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) || fail "npm ci in tests/tools/k8s"
    touch "$tools/node_modules"
fi

tmp=$(mktemp -d "${TN_TEST_TMP:-/tmp}/deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rendered=()
if kubectl kustomize --help >/dev/null 2>&1; then
    for o in "$TN_SRC_DIR"/deploy/k8s/overlays/*/; do
        name=$(basename "$o")
        kubectl kustomize "$o" >"$tmp/$name.yaml" 2>"$tmp/$name.err" \
            || { cat "$tmp/$name.err" >&2; fail "kustomize overlay $name"; }
        rendered+=("$tmp/$name.yaml")
    done
else
    echo "note: kubectl (with kustomize) not found: overlays are not rendered; base and components only"
fi
node "$tools/validate.mjs" "$TN_SRC_DIR" "${rendered[@]}"

# The compose file as compose itself reads it (optional: CI has no Docker).
compose=""
if docker compose version >/dev/null 2>&1; then compose="docker compose"
elif docker-compose version >/dev/null 2>&1; then compose=docker-compose; fi
if [ -n "$compose" ]; then
    cf=$TN_SRC_DIR/deploy/compose.yaml
    $compose -f "$cf" config -q 2>"$tmp/compose.err" || { cat "$tmp/compose.err" >&2; fail "$compose config"; }
    # `config --services` lists every service in compose v1, the enabled ones in v2.
    $compose -f "$cf" --profile sandbox config --services >"$tmp/sandbox.services"
    grep -qx sandbox "$tmp/sandbox.services" && grep -qx sandbox-agent "$tmp/sandbox.services" \
        || fail "$compose: no sandbox services under --profile sandbox"
    $compose -f "$cf" --profile sandbox config >"$tmp/sandbox.yaml" || fail "$compose --profile sandbox config"
    grep -q 'TN_LLM_BASE_URL: http://sandbox:' "$tmp/sandbox.yaml" || fail "$compose: the sandbox profile's LLM base URL"
    echo "$compose parses deploy/compose.yaml and its sandbox profile"
else
    echo "note: no docker compose / docker-compose: compose's own parse skipped"
fi

# The check must be able to fail: a copy with a broken Deployment, a
# ScaledObject on a stream proto/ does not define, and an open NetworkPolicy.
bad=$tmp/bad
mkdir -p "$bad/deploy" "$bad/common"
cp -r "$TN_SRC_DIR/deploy/." "$bad/deploy/"
cp -r "$TN_SRC_DIR/common/include" "$TN_SRC_DIR/common/src" "$bad/common/"
cp -r "$TN_SRC_DIR/services" "$TN_SRC_DIR/proto" "$bad/"
node "$tools/validate.mjs" "$bad" >/dev/null || fail "the unbroken copy is refused"
check_broken_file() { # WHAT FILE-UNDER-deploy/ SED-EXPR EXPECTED-MESSAGE
    cp "$TN_SRC_DIR/deploy/$2" "$bad/deploy/$2"
    sed -i "$3" "$bad/deploy/$2"
    cmp -s "$TN_SRC_DIR/deploy/$2" "$bad/deploy/$2" && fail "$1: sed changed nothing"
    out=$(node "$tools/validate.mjs" "$bad" 2>&1) && fail "$1: accepted"
    grep -q -- "$4" <<<"$out" || { echo "$out" >&2; fail "$1: no '$4'"; }
    cp "$TN_SRC_DIR/deploy/$2" "$bad/deploy/$2"
    echo "rejected: $1"
}
check_broken() { check_broken_file "$1" "k8s/base/$2" "$3" "$4"; } # WHAT FILE SED-EXPR EXPECTED-MESSAGE
check_broken "a memory request that is no quantity" agent.yaml 's/memory: 64Mi/memory: lots/' "must match format"
check_broken "a misspelt liveness probe" sender.yaml 's/livenessProbe:/livenesProbe:/' "liveness is GET /healthz"
check_broken "a trigger on a stream proto/ lacks" calsync.yaml 's/stream: "tern:cal"/stream: "tern:calendar"/' "is a stream and group in proto"
check_broken "a grace period shorter than the drain" ingest.yaml 's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 15/' "terminationGracePeriodSeconds 15 > drain"
check_broken "an open NetworkPolicy for every pod" networkpolicy.yaml '0,/app.kubernetes.io\/name: tern-ingest/s//app.kubernetes.io\/part-of: tern/' "opens only tern-ingest"
check_broken "a Deployment kind that does not exist" sweeper.yaml '0,/^kind: Deployment/s//kind: Deploymnt/' "no schema for"
check_broken_file "the provider sandbox outside its profile" compose.yaml \
    '/^  sandbox:$/,/^  [a-z-]*:$/{/^    profiles: \[sandbox\]$/d}' "the provider sandbox exists only under profile sandbox"
check_broken_file "a sandbox-profile sender still on WhatsApp's API" compose.yaml \
    's|TN_WHATSAPP_API_BASE: http://sandbox:8090/whatsapp|TN_WHATSAPP_API_BASE: https://graph.facebook.com|' \
    "sandbox-sender TN_WHATSAPP_API_BASE points at the sandbox"
check_broken_file "a prod daemon on the sandbox's LLM" compose.yaml \
    '0,/TN_ADMIN_LISTEN: 0.0.0.0:9102/s||TN_ADMIN_LISTEN: 0.0.0.0:9102\n      TN_LLM_BASE_URL: http://sandbox:8090/openai/v1|' \
    "agent (prod) refers to nothing of the sandbox"
check_broken_file "a planned metric marked exists" RUNBOOK.md \
    's/^| `tern_ingest_connections`, `tern_ingest_channels` | gauge | | exists/| `tern_ingest_connections`, `tern_ingest_channels`, `tern_ingest_sockets` | gauge | | exists/' \
    "metric tern_ingest_sockets is marked exists: a C source registers it"
echo "deploy manifests valid; broken copies rejected"
