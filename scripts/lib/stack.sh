# shellcheck shell=bash
# The local stack: a real redis-server and PostgreSQL on free loopback ports,
# kept in one directory. Used by scripts/test (a temporary directory) and
# scripts/up (.run/). PostgreSQL's initdb refuses root, so as root the cluster
# runs as the `postgres` user in a directory that user owns.

TN_SERVICES="ingest agent calsync sender sweeper ctl"

# tn_free_port - a free TCP port on 127.0.0.1
tn_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# tn_pg_bin - directory of PostgreSQL's server programs
tn_pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    echo "${d:-/usr/lib/postgresql/15/bin}"
}

# tn_as_pg CMD... - run a command as the postgres user when we are root
tn_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

# tn_secret - a random password
tn_secret() {
    head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

# tn_stack_start DIR - start redis and postgres under DIR and write DIR/env,
# which exports every TN_TEST_* and TN_STACK_* variable.
tn_stack_start() {
    local dir="$1" root="$2" rport pport bin svc pw
    mkdir -p "$dir/redis" "$dir/pg"
    rport=$(tn_free_port)
    pport=$(tn_free_port)
    bin=$(tn_pg_bin)
    : >"$dir/env"

    # Redis: the ACL file from deploy/redis with fresh passwords per user.
    # redis-server refuses comment lines in an ACL file: keep only the users.
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$root/deploy/redis/users.acl" \
        >"$dir/redis/users.acl"
    for svc in $TN_SERVICES admin keda; do
        pw=$(tn_secret)
        sed -i "s|@PASSWORD_$(echo "$svc" | tr a-z A-Z)@|$pw|" "$dir/redis/users.acl"
        echo "export TN_TEST_REDIS_URL_$(echo "$svc" | tr a-z A-Z)=redis://tern-$svc:$pw@127.0.0.1:$rport" >>"$dir/env"
    done
    cat >"$dir/redis/start.sh" <<EOS
#!/bin/sh
# the daemon outlives its caller: it must not hold the caller's descriptors
# (a lock or a pipe would stay held until Redis stops)
exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
exec redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
  --dir "$dir/redis" --aclfile "$dir/redis/users.acl" --daemonize yes \
  --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log"
EOS
    chmod +x "$dir/redis/start.sh"
    "$dir/redis/start.sh"

    # PostgreSQL as the postgres user.
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir/pg" && chmod 755 "$dir"
    tn_as_pg "$bin/initdb" -D "$dir/pg/data" -A trust -U postgres -E UTF8 >/dev/null
    tn_as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
        -o "-p $pport -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off ${TN_STACK_PG_OPTS:-}" start >/dev/null \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- # as Redis: none of our descriptors
    tn_as_pg "$bin/createdb" -h 127.0.0.1 -p "$pport" -U postgres tern

    for svc in $TN_SERVICES; do
        echo "export TN_TEST_PG_DSN_$(echo "$svc" | tr a-z A-Z)=postgresql://tern_$svc@127.0.0.1:$pport/tern" >>"$dir/env"
    done
    cat >>"$dir/env" <<EOS
export TN_TEST_REDIS_PORT=$rport
export TN_TEST_REDIS_START=$dir/redis/start.sh
export TN_TEST_REDIS_PIDFILE=$dir/redis/redis.pid
export TN_TEST_PG_PORT=$pport
export TN_TEST_PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:$pport/tern
export TN_TEST_TMP=$dir/scratch
export TN_STACK_DIR=$dir
EOS
    mkdir -p "$dir/scratch"
    tn_redis_wait "$rport"
}

# tn_redis_wait PORT - until redis answers
tn_redis_wait() {
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping 2>/dev/null | grep -q -e PONG -e NOAUTH && return 0
        sleep 0.05
    done
    echo "redis did not start" >&2
    return 1
}

# tn_stack_stop DIR - stop both servers (quietly; safe to call twice)
tn_stack_stop() {
    local dir="$1"
    [ -f "$dir/redis/redis.pid" ] && kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null
    [ -d "$dir/pg/data" ] && tn_as_pg "$(tn_pg_bin)/pg_ctl" -D "$dir/pg/data" -m immediate stop \
        >/dev/null 2>&1
    return 0
}

# tn_stack_resume DIR - start a stack made earlier by tn_stack_start in DIR
# (same ports, same data, same passwords). Fails if DIR holds none.
tn_stack_resume() {
    local dir="$1"
    [ -f "$dir/env" ] && [ -d "$dir/pg/data" ] || return 1
    # shellcheck disable=SC1091
    . "$dir/env"
    rm -f "$dir/pg/data/postmaster.pid" 2>/dev/null || true
    "$dir/redis/start.sh"
    tn_as_pg "$(tn_pg_bin)/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
        -o "-p $TN_TEST_PG_PORT -k $dir/pg -c listen_addresses=127.0.0.1" start >/dev/null
    tn_redis_wait "$TN_TEST_REDIS_PORT"
}
