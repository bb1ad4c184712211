#!/usr/bin/env bash
# deploy/test-images.sh - build Tern's container images and run the compose
# stack end to end, on this machine only (not part of scripts/test).
#
# Needs root and Debian's docker.io (dockerd 20.10+) and docker-compose
# packages (installed when missing). Starts its own dockerd with data, exec
# root and socket in a temporary directory (no bridge, no iptables: every
# container uses host networking on loopback), makes the base image with
# debootstrap + docker import (public registries are unreachable), builds
# every target of deploy/Dockerfile, prints the image sizes and fails when a
# daemon image is 60 MB or more, checks that each image runs as non-root
# without a shell, then brings up deploy/compose.yaml (turned into its
# host-network variant) and checks every daemon becomes healthy and ready.
#   deploy/test-images.sh            working tree
#   TN_IMAGE_REF=HEAD deploy/test-images.sh   a commit (git archive)
#   TN_KEEP=1 ...                    leave dockerd and the directory for a look
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/stack.sh"
[ "$(id -u)" -eq 0 ] || { echo "test-images.sh: needs root (dockerd, debootstrap)" >&2; exit 1; }
need=()
for p in docker.io docker-compose debootstrap bc; do
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
    if [ -n "$compose" ]; then $compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
    if [ "${TN_KEEP:-0}" = 1 ]; then echo "kept: DOCKER_HOST=$DOCKER_HOST ($work)"; return; fi
    [ -f "$work/run/docker.pid" ] && kill "$(cat "$work/run/docker.pid")" 2>/dev/null
    for _ in $(seq 1 50); do [ -f "$work/run/docker.pid" ] || break; sleep 0.2; done
    awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

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
        proto tests/CMakeLists.txt tests/support deploy | xargs -0 tar -c) | tar -x -C "$work/ctx"
fi

declare -A size
for t in ingest agent calsync sender sweeper ternctl redis postgres; do
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
for t in ingest agent calsync sender sweeper ternctl redis postgres; do
    mb=$(( size[$t] / 1000000 ))
    printf '%-8s %6.1f MB\n' "$t" "$(echo "${size[$t]} / 1000000" | bc -l 2>/dev/null || echo "$mb")"
    case $t in redis|postgres) ;; *) [ "$mb" -lt 60 ] || { echo "FAIL: $t is ${mb} MB (>= 60)"; status=1; } ;; esac
done
[ $status = 0 ] || exit 1

echo "== runtime images: non-root, no shell, HEALTHCHECK"
for t in ingest agent calsync sender sweeper; do
    img=tern/tern-$t:test
    [ "$($docker image inspect -f '{{.Config.User}}' "$img")" = 10001:10001 ] || fail "$t user"
    $docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$img" | grep -q healthz || fail "$t HEALTHCHECK"
    if $docker run --rm --network host --entrypoint /bin/sh "$img" -c true >/dev/null 2>&1; then
        fail "$t has a shell"
    fi
done
echo "ok"

echo "== compose stack (host network, loopback ports)"
export TN_COMPOSE_DIR="$work/compose" TN_SECRETS_DIR="$work/compose/secrets"
export TN_IMAGE_TAG=test TN_BASE=tern-base:bookworm
mkdir -p "$TN_COMPOSE_DIR"
ports="REDIS PG INGEST ADMIN_INGEST ADMIN_AGENT ADMIN_CALSYNC ADMIN_SENDER ADMIN_SWEEPER"
for p in $ports; do export "TN_E2E_PORT_$p=$(tn_free_port)"; done
TN_REDIS_HOST=127.0.0.1 TN_REDIS_PORT=$TN_E2E_PORT_REDIS TN_PG_HOST=127.0.0.1 \
    TN_PG_PORT=$TN_E2E_PORT_PG "$root/deploy/compose-secrets.sh" >/dev/null
node "$root/tests/tools/k8s/compose-hostnet.mjs" "$root/deploy/compose.yaml" >"$TN_COMPOSE_DIR/compose.yaml"
compose="docker-compose -p terne2e -f $TN_COMPOSE_DIR/compose.yaml"
$compose up -d --no-build >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; $compose logs --tail 30; fail "compose up"; }
for d in ingest agent calsync sender sweeper; do
    var=TN_E2E_PORT_ADMIN_$(echo "$d" | tr '[:lower:]' '[:upper:]')
    ok=0
    for _ in $(seq 1 120); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!var}/readyz" || true)
        [ "$code" = 200 ] && { ok=1; break; }
        sleep 0.5
    done
    [ $ok = 1 ] || { $compose ps; $compose logs --tail 30 "$d" migrate pg-roles; fail "$d not ready"; }
    echo "$d ready on 127.0.0.1:${!var}"
done
for _ in $(seq 1 60); do
    unhealthy=$($compose ps | grep -Ec 'starting|unhealthy' || true)
    [ "$unhealthy" = 0 ] && break
    sleep 1
done
$compose ps
[ "$unhealthy" = 0 ] || fail "some containers are not healthy"
$compose ps | grep -E 'migrate' | grep -q 'Exit 0' || fail "migration job did not exit 0"
$docker exec terne2e_redis_1 redis-cli -p "$TN_E2E_PORT_REDIS" --user tern-admin \
    --pass "$(cat "$TN_SECRETS_DIR/redis-password-admin")" --no-auth-warning CONFIG GET appendonly \
    | grep -q yes || fail "redis AOF is off"
echo "compose stack: all daemons healthy and ready"
echo "1 passed, 0 failed"
