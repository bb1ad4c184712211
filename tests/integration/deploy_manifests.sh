#!/usr/bin/env bash
# The deployment files are valid: every Kubernetes manifest of deploy/k8s (the
# base, the monitoring component, and each overlay as `kubectl kustomize`
# renders it) against the Kubernetes and KEDA schemas, Tern's rules on them
# (probes, resources, drain vs grace period, secrets as files, PDBs, KEDA
# triggers on the streams and groups of common/include/tn/tn_proto.h,
# NetworkPolicies), deploy/compose.yaml, the alert rules and the RUNBOOK.
# Offline: the schemas come from npm packages installed by `npm ci` in
# tests/tools/k8s. Then a broken copy of the base must fail, so the check
# can fail at all.
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

# The check must be able to fail: a copy with a broken Deployment, a
# ScaledObject on a stream proto/ does not define, and an open NetworkPolicy.
bad=$tmp/bad
mkdir -p "$bad/deploy" "$bad/common/include/tn" "$bad/services/ctl"
cp -r "$TN_SRC_DIR/deploy/." "$bad/deploy/"
cp "$TN_SRC_DIR/common/include/tn/tn_proto.h" "$bad/common/include/tn/"
cp "$TN_SRC_DIR/services/ctl/main.c" "$bad/services/ctl/"
check_broken() { # WHAT FILE SED-EXPR EXPECTED-MESSAGE
    cp "$TN_SRC_DIR/deploy/k8s/base/$2" "$bad/deploy/k8s/base/$2"
    sed -i "$3" "$bad/deploy/k8s/base/$2"
    cmp -s "$TN_SRC_DIR/deploy/k8s/base/$2" "$bad/deploy/k8s/base/$2" && fail "$1: sed changed nothing"
    out=$(node "$tools/validate.mjs" "$bad" 2>&1) && fail "$1: accepted"
    grep -q -- "$4" <<<"$out" || { echo "$out" >&2; fail "$1: no '$4'"; }
    cp "$TN_SRC_DIR/deploy/k8s/base/$2" "$bad/deploy/k8s/base/$2"
    echo "rejected: $1"
}
check_broken "a memory request that is no quantity" agent.yaml 's/memory: 64Mi/memory: lots/' "must match format"
check_broken "a misspelt liveness probe" sender.yaml 's/livenessProbe:/livenesProbe:/' "liveness is GET /healthz"
check_broken "a trigger on a stream proto/ lacks" calsync.yaml 's/stream: "tern:cal"/stream: "tern:calendar"/' "is a stream and group in proto"
check_broken "a grace period shorter than the drain" ingest.yaml 's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 15/' "terminationGracePeriodSeconds 15 > drain"
check_broken "an open NetworkPolicy for every pod" networkpolicy.yaml '0,/app.kubernetes.io\/name: tern-ingest/s//app.kubernetes.io\/part-of: tern/' "opens only tern-ingest"
check_broken "a Deployment kind that does not exist" sweeper.yaml '0,/^kind: Deployment/s//kind: Deploymnt/' "no schema for"
echo "deploy manifests valid; broken copies rejected"
