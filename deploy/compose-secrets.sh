#!/usr/bin/env bash
# deploy/compose-secrets.sh - make the secret files deploy/compose.yaml mounts:
# fresh random passwords for every Redis user and Postgres role, the Redis
# ACL file (deploy/redis/users.acl with the passwords filled in), each
# daemon's TN_REDIS_URL and TN_PG_DSN, a pgpass file for ternctl, and a
# master key ring. Refuses to overwrite an existing directory (rotating is
# deliberate: see deploy/RUNBOOK.md).
#   deploy/compose-secrets.sh               into deploy/.secrets (git-ignored)
#   TN_SECRETS_DIR=DIR deploy/compose-secrets.sh
# TN_REDIS_HOST/PORT and TN_PG_HOST/PORT (default redis:6379, postgres:5432)
# are the addresses written into the URLs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${TN_SECRETS_DIR:-$here/.secrets}
rhost=${TN_REDIS_HOST:-redis} rport=${TN_REDIS_PORT:-6379}
phost=${TN_PG_HOST:-postgres} pport=${TN_PG_PORT:-5432}
[ -e "$dir" ] && { echo "compose-secrets.sh: $dir exists; move it away to make new secrets" >&2; exit 1; }
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
secret() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }
# put NAME VALUE MODE: files the daemons and ternctl read belong to uid 10001
# (the images' user) when we can chown; server-side files are world-readable
# inside the 0700 directory (the servers run as their own users).
put() {
    printf '%s' "$2" >"$dir/$1"
    chmod "$3" "$dir/$1"
    if [ "$3" = 600 ] && [ "$(id -u)" -eq 0 ]; then chown 10001:10001 "$dir/$1"; fi
    if [ "$3" = 600 ] && [ "$(id -u)" -ne 0 ]; then chmod 644 "$dir/$1"; fi
}
# Redis refuses comments and blank lines in an ACL file.
grep -Ev '^[[:space:]]*(#|$)' "$here/redis/users.acl" >"$dir/redis-acl"
for u in ingest agent calsync sender sweeper ctl admin keda; do
    grep -q "@PASSWORD_$(echo "$u" | tr '[:lower:]' '[:upper:]')@" "$dir/redis-acl" || continue # no such user yet
    up=$(echo "$u" | tr '[:lower:]' '[:upper:]')
    pw=$(secret)
    sed -i "s|@PASSWORD_${up}@|$pw|" "$dir/redis-acl"
    put "redis-password-$u" "$pw" 644
    put "redis-url-$u" "redis://tern-$u:$pw@$rhost:$rport" 600
done
chmod 644 "$dir/redis-acl"
admin=$(secret)
put pg-password-admin "$admin" 644
put pgpass-admin "$phost:$pport:*:postgres:$admin" 600
for r in ingest agent calsync sender sweeper ctl; do
    pw=$(secret)
    put "pg-password-$r" "$pw" 644
    put "pg-dsn-$r" "postgresql://tern_$r:$pw@$phost:$pport/tern" 600
done
put master-key "1:$(head -c 32 /dev/urandom | base64 -w0)" 600
# the HMAC key of the suppression list (tern-sweeper writes, tern-sender checks)
put suppression-key "$(head -c 32 /dev/urandom | base64 -w0)" 600
echo "secrets written to $dir"
