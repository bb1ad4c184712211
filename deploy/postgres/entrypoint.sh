#!/bin/sh
# tern-postgres - PostgreSQL 15 for deploy/compose.yaml (runs as postgres).
#   tern-postgres                  make the cluster on first start (superuser
#                                  password from POSTGRES_PASSWORD_FILE, database
#                                  tern, scram-sha-256 on every TCP connection),
#                                  then run the server in the foreground
#   tern-postgres set-role-passwords
#                                  after `ternctl migrate`: give each daemon role
#                                  tern_<svc> the password in
#                                  /run/secrets/pg-password-<svc> (PGHOST etc. and
#                                  PGPASSFILE point at the server)
set -eu
bin=/usr/lib/postgresql/15/bin
data=${PGDATA:-/var/lib/postgresql/data}

if [ "${1:-}" = set-role-passwords ]; then
    for svc in ingest agent calsync sender sweeper ctl; do
        f=/run/secrets/pg-password-$svc
        [ -f "$f" ] || continue
        # psql's :'pw' quotes the value as a literal; the password never
        # appears on a command line.
        printf '%s\n' "\\set pw \`cat $f\`" "ALTER ROLE tern_$svc PASSWORD :'pw';" \
            | psql -v ON_ERROR_STOP=1 -q -d tern
    done
    echo "role passwords set"
    exit 0
fi

if [ ! -s "$data/PG_VERSION" ]; then
    pwfile=${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is required}
    "$bin/initdb" -D "$data" -U postgres -E UTF8 --auth-local=peer \
        --auth-host=scram-sha-256 --pwfile="$pwfile" >/dev/null
    echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
    "$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses=''" start >/dev/null
    createdb tern
    "$bin/pg_ctl" -D "$data" -w stop >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses="${PG_LISTEN:-*}" -c port="${PG_PORT:-5432}" \
    -c unix_socket_directories=/run/postgresql
