#!/usr/bin/env bash
# deploy/test-images.sh - build Tern's container images and run the compose
# stack's "sandbox" profile end to end, on this machine only (not part of
# scripts/test or CI: it needs a Docker engine).
#
# Needs root and Debian's docker.io (dockerd 20.10+) and docker-compose
# packages (installed when missing; the compose v2 plugin is used instead
# when `docker compose` works). Starts its own dockerd with data, exec root
# and socket in a temporary directory (no bridge, no iptables: every
# container uses host networking on loopback), makes the base image with
# debootstrap + docker import (public registries are unreachable), builds
# every target of deploy/Dockerfile, prints the image sizes and fails when a
# daemon image is 60 MB or more, checks that each daemon image runs as
# non-root without a shell, then brings up deploy/compose.yaml's sandbox
# profile (turned into its host-network variant) and checks:
#   - Redis (AOF on), Postgres, the migration and demo-seed jobs, the five
#     daemons and the provider sandbox are up, healthy and ready (time to
#     ready and idle memory per container are printed);
#   - a WhatsApp webhook signed by the sandbox (POST /_sandbox/emit, the demo
#     channel's app secret) is answered 200 by tern-ingest and its entry is
#     on tern:in (XRANGE as tern-admin);
#   - the reply comes back: tern-agent asked the sandbox's LLM and tern-sender
#     posted the answer to the sandbox's WhatsApp send endpoint with the demo
#     channel's access token (skipped, and said so, when the tern-agent image
#     has no reply path yet);
# then `compose down -v`.
#   deploy/test-images.sh            working tree
#   TN_IMAGE_REF=HEAD deploy/test-images.sh   a commit (git archive)
#   TN_KEEP=1 ...                    leave dockerd, the stack and the directory for a look
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/stack.sh"
[ "$(id -u)" -eq 0 ] || { echo "test-images.sh: needs root (dockerd, debootstrap)" >&2; exit 1; }
need=()
for p in docker.io docker-compose debootstrap bc jq curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
(cd "$root/tests/tools/k8s" && npm ci --no-audit --no-fund --silent >/dev/null)

work=$(mktemp -d /tmp/tern-images.XXXXXX)
mkdir -p "$work/data" "$work/exec" "$work/run"
export DOCKER_HOST=unix://$work/run/docker.sock
docker=/usr/bin/docker
compose=""
stop() {
    if [ "${TN_KEEP:-0}" = 1 ]; then echo "kept: DOCKER_HOST=$DOCKER_HOST ($work)"; return; fi
    if [ -n "$compose" ]; then $compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
    [ -f "$work/run/docker.pid" ] && kill "$(cat "$work/run/docker.pid")" 2>/dev/null
    for _ in $(seq 1 50); do [ -f "$work/run/docker.pid" ] || break; sleep 0.2; done
    awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

/usr/sbin/dockerd --data-root "$work/data" --exec-root "$work/exec" -H "$DOCKER_HOST" \
    --pidfile "$work/run/docker.pid" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
for _ in $(seq 1 100); do $docker info >/dev/null 2>&1 && break; sleep 0.2; done
$docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; fail "dockerd did not start"; }

echo "== base image: debootstrap bookworm (minbase) + docker import"
debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail debootstrap; }
tar -C "$work/rootfs" -c . | $docker import - tern-base:bookworm >/dev/null
rm -rf "$work/rootfs"

echo "== build context"
mkdir -p "$work/ctx"
if [ -n "${TN_IMAGE_REF:-}" ]; then
    git -C "$root" archive "$TN_IMAGE_REF" | tar -x -C "$work/ctx"
    cp -r "$root/deploy/." "$work/ctx/deploy/" # this deploy/, whatever the commit
else
    (cd "$root" && git ls-files -co --exclude-standard -z -- CMakeLists.txt cmake common services \
        proto tests/CMakeLists.txt tests/support tests/sandbox deploy | xargs -0 tar -c) | tar -x -C "$work/ctx"
fi

declare -A size
targets="ingest agent calsync sender sweeper ternctl redis postgres sandbox demo"
for t in $targets; do
    img=tern/tern-$t:test
    [ "$t" = ternctl ] && img=tern/ternctl:test
    echo "== docker build --target $t"
    $docker build -q --network host --build-arg BASE=tern-base:bookworm -f deploy/Dockerfile \
        --target "$t" -t "$img" "$work/ctx" >"$work/build-$t.log" 2>&1 \
        || { tail -40 "$work/build-$t.log"; fail "build $t"; }
    size[$t]=$($docker image inspect -f '{{.Size}}' "$img")
done
echo "== image sizes"
status=0
for t in $targets; do
    mb=$(( size[$t] / 1000000 ))
    shown=$(printf '%.1f' "$(echo "${size[$t]} / 1000000" | bc -l 2>/dev/null || echo "$mb")")
    printf '%-8s %6s MB\n' "$t" "$shown"
    case $t in redis|postgres|sandbox|demo) ;; *) [ "$mb" -lt 60 ] || { echo "FAIL: $t is $shown MB (>= 60)"; status=1; } ;; esac
done
# A size over the target fails the test at the end; the rest still runs.
[ $status = 0 ] && ok "every daemon image is under 60 MB"

echo "== runtime images: non-root, no shell, HEALTHCHECK"
for t in ingest agent calsync sender sweeper; do
    img=tern/tern-$t:test
    [ "$($docker image inspect -f '{{.Config.User}}' "$img")" = 10001:10001 ] || fail "$t user"
    $docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$img" | grep -q healthz || fail "$t HEALTHCHECK"
    if $docker run --rm --network host --entrypoint /bin/sh "$img" -c true >/dev/null 2>&1; then
        fail "$t has a shell"
    fi
done
ok "daemon images: user 10001, HEALTHCHECK on /healthz, no shell"

echo "== compose --profile sandbox (host network, loopback ports)"
export TN_COMPOSE_DIR="$work/compose" TN_SECRETS_DIR="$work/compose/secrets"
export TN_IMAGE_TAG=test TN_BASE=tern-base:bookworm
mkdir -p "$TN_COMPOSE_DIR"
ports="REDIS PG INGEST SANDBOX ADMIN_INGEST ADMIN_AGENT ADMIN_CALSYNC ADMIN_SENDER ADMIN_SWEEPER"
for p in $ports; do export "TN_E2E_PORT_$p=$(tn_free_port)"; done
export TN_SANDBOX_PUBLISH=127.0.0.1:$TN_E2E_PORT_SANDBOX # the browser-facing Google auth URL
TN_REDIS_HOST=127.0.0.1 TN_REDIS_PORT=$TN_E2E_PORT_REDIS TN_PG_HOST=127.0.0.1 \
    TN_PG_PORT=$TN_E2E_PORT_PG "$root/deploy/compose-secrets.sh" >/dev/null
node "$root/tests/tools/k8s/compose-hostnet.mjs" "$root/deploy/compose.yaml" >"$TN_COMPOSE_DIR/compose.yaml"
if $docker compose version >/dev/null 2>&1; then c="$docker compose"; else c=docker-compose; fi
compose="$c -p terne2e -f $TN_COMPOSE_DIR/compose.yaml --profile sandbox"
echo "compose: $($c version 2>/dev/null | head -1)"
# state SERVICE - "status exit-code health" of the service's (first) container
state() {
    local id
    id=$($compose ps -a -q "$1" 2>/dev/null | head -1)
    [ -n "$id" ] || { echo "missing"; return; }
    $docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id"
}
t0=$(date +%s%N)
$compose up -d --no-build >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; $compose ps; $compose logs --tail 30; fail "compose up"; }
up_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "compose up -d returned after $up_ms ms (it waits for redis, postgres, migrate, pg-roles, sandbox, sandbox-demo)"
for d in ingest agent calsync sender sweeper; do
    var=TN_E2E_PORT_ADMIN_$(echo "$d" | tr '[:lower:]' '[:upper:]')
    ready=""
    for _ in $(seq 1 240); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!var}/readyz" || true)
        [ "$code" = 200 ] && { ready=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
        sleep 0.25
    done
    [ -n "$ready" ] || { $compose ps; $compose logs --tail 30 "sandbox-$d" migrate pg-roles sandbox-demo; fail "sandbox-$d not ready"; }
    echo "sandbox-$d ready on 127.0.0.1:${!var} ($ready ms after compose up started)"
done
ok "five daemons ready"
for _ in $(seq 1 60); do
    unhealthy=0
    for s in redis postgres sandbox sandbox-ingest sandbox-agent sandbox-calsync sandbox-sender sandbox-sweeper; do
        [ "$(state "$s")" = "running 0 healthy" ] || unhealthy=$((unhealthy + 1))
    done
    [ "$unhealthy" = 0 ] && break
    sleep 1
done
$compose ps
[ "$unhealthy" = 0 ] || fail "some containers are not running and healthy"
for j in migrate pg-roles sandbox-demo; do
    [ "$(state "$j")" = "exited 0 " ] || { $compose logs "$j"; fail "job $j: $(state "$j")"; }
done
ok "redis, postgres, sandbox and daemons healthy; migrate, pg-roles and sandbox-demo exited 0"
$compose logs --no-color sandbox-demo | grep -q 'demo whatsapp channel 109000000000001 added' || fail "demo channel not added"
rcli() {
    $compose exec -T redis redis-cli -p "$TN_E2E_PORT_REDIS" --user tern-admin \
        --pass "$(cat "$TN_SECRETS_DIR/redis-password-admin")" --no-auth-warning "$@"
}
rcli CONFIG GET appendonly | grep -q yes || fail "redis AOF is off"
ok "redis AOF on, ACL user tern-admin"
echo "== idle memory"
for id in $($compose ps -q); do
    $docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "$id"
done | sed 's/^terne2e[_-]//; s/[_-]1 / /' | sort | awk '{ printf "%-16s %s\n", $1, $2 }'

echo "== signed WhatsApp webhook -> tern-ingest -> tern:in -> tern-agent -> tern-sender -> sandbox"
sandbox=http://127.0.0.1:$TN_E2E_PORT_SANDBOX
pnid=109000000000001
lead=4915112345678
wamid="wamid.e2e$(date +%s%N)"
payload=$(jq -cn --arg pnid "$pnid" --arg from "$lead" --arg id "$wamid" --arg ts "$(date +%s)" '{
    object: "whatsapp_business_account",
    entry: [{id: "102290129340398", changes: [{field: "messages", value: {messaging_product: "whatsapp",
      metadata: {display_phone_number: "15550783881", phone_number_id: $pnid},
      contacts: [{profile: {name: "Demo Lead"}, wa_id: $from}],
      messages: [{from: $from, id: $id, timestamp: $ts, type: "text",
                  text: {body: "Hi, can you fix a leaking tap on Tuesday?"}}]}}]}]}')
emit=$(curl -fsS -X POST "$sandbox/_sandbox/emit" -H 'content-type: application/json' \
    -d "{\"provider\":\"whatsapp\",\"path\":\"/webhooks/whatsapp\",\"secret\":\"sandbox-demo-app-secret\",\"payload\":$payload}") \
    || fail "POST /_sandbox/emit"
echo "emit: $(jq -c '{status, body, url: .sent.url, signature: .sent.headers["x-hub-signature-256"][0:20]}' <<<"$emit")"
[ "$(jq .status <<<"$emit")" = 200 ] || fail "tern-ingest answered $(jq -c . <<<"$emit")"
ok "tern-ingest answered 200 to the signed webhook"
bad=$(jq -cn --arg p "$payload" '{provider: "whatsapp", path: "/webhooks/whatsapp", secret: "wrong", payload: ($p | fromjson)}')
[ "$(curl -fsS -X POST "$sandbox/_sandbox/emit" -H 'content-type: application/json' -d "$bad" | jq .status)" = 401 ] \
    || fail "a webhook signed with the wrong secret was not refused"
ok "a wrongly signed webhook is refused with 401"
len=$(rcli XLEN tern:in)
rcli XRANGE tern:in - + | grep -qF "$wamid" || fail "$wamid is not on tern:in (XLEN $len)"
ok "the entry is on tern:in (XLEN tern:in = $len, XRANGE shows $wamid)"

agent_metrics=$(curl -fsS "http://127.0.0.1:$TN_E2E_PORT_ADMIN_AGENT/metrics" || true)
if ! grep -q '^tern_agent_inbound_total' <<<"$agent_metrics"; then
    echo "skipped: the reply (this tern-agent image exports no tern_agent_* metrics: no reply path yet)"
    skipped=1
else
    skipped=0
    reply=""
    for _ in $(seq 1 120); do
        reply=$(curl -fsS "$sandbox/_sandbox/requests?provider=whatsapp" | jq -c --arg pnid "$pnid" --arg to "$lead" \
            '[.[] | select(.method == "POST" and (.path | test("^/whatsapp/v[0-9.]+/\($pnid)/messages$"))
                         and .json.to == $to and .json.type == "text")] | first // empty' || true)
        [ -n "$reply" ] && break
        sleep 0.25
    done
    [ -n "$reply" ] || {
        curl -fsS "$sandbox/_sandbox/requests" | jq -c '.[] | {provider, method, path}' | tail -10
        $compose logs --tail 20 sandbox-agent sandbox-sender
        fail "no reply reached the sandbox's WhatsApp send endpoint"
    }
    echo "reply: $(jq -c '{path, to: .json.to, text: .json.text.body, context: .json.context}' <<<"$reply")"
    jq -e '.headers.authorization == "Bearer sandbox-demo-access-token"
        and (.json.text.body | startswith("Sandbox reply: "))' <<<"$reply" >/dev/null \
        || fail "reply shape or credentials: $reply"
    curl -fsS "$sandbox/_sandbox/requests?provider=openai" | jq -e '[.[] | select(.path == "/openai/v1/chat/completions"
        and .headers.authorization == "Bearer sandbox-llm-key" and .json.model == "sandbox-model")] | length >= 1' \
        >/dev/null || fail "tern-agent did not ask the sandbox's LLM"
    ok "the reply reached the sandbox's WhatsApp endpoint (LLM and WhatsApp calls with the demo credentials)"
fi

[ "${TN_KEEP:-0}" = 1 ] || { $compose down -v --remove-orphans >"$work/compose-down.log" 2>&1 || fail "compose down"; }
[ "${TN_KEEP:-0}" = 1 ] || { [ -z "$($compose ps -a -q)" ] || fail "containers left after compose down"; ok "compose down -v"; }
compose=""
echo "compose sandbox profile: end to end ok"
echo "$pass passed, $status failed, $skipped skipped"
[ "$status" = 0 ] || { echo "FAIL: a daemon image is 60 MB or more (see the sizes above)" >&2; exit 1; }
