# shellcheck shell=bash
# tests/support/caldav.sh - real CalDAV servers for the calsync tests, from
# Debian's packages (scripts/lib/deps.sh installs them): Radicale with
# htpasswd authentication (it has no free-busy-query, so calsync reads busy
# time with calendar-query, which every server has). Source it; servers run
# in the background of the test's shell and are stopped by PID.
. "$TN_SRC_DIR/scripts/lib/stack.sh"

# caldav_wait PORT - until something answers HTTP on PORT (10 s)
caldav_wait() {
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "CalDAV server on port $1 did not start" >&2
    return 1
}

# caldav_radicale_start DIR - Radicale with user "tern" and a fresh password;
# sets rad_port, rad_pid, rad_user, rad_pass, rad_base (http://127.0.0.1:port)
caldav_radicale_start() {
    local d="$1/radicale"
    mkdir -p "$d/collections"
    rad_port=$(tn_free_port)
    rad_user=tern
    rad_pass=$(tn_secret)
    printf '%s:%s\n' "$rad_user" "$rad_pass" >"$d/users"
    cat >"$d/config" <<EOF
[server]
hosts = 127.0.0.1:$rad_port
[auth]
type = htpasswd
htpasswd_filename = $d/users
htpasswd_encryption = plain
delay = 0
[storage]
filesystem_folder = $d/collections
[rights]
type = owner_only
[logging]
level = warning
EOF
    radicale --config "$d/config" >>"$d/log" 2>&1 &
    rad_pid=$!
    rad_base="http://127.0.0.1:$rad_port"
    caldav_wait "$rad_port"
}

# caldav_mkcalendar URL [USER:PASS] - create a calendar collection
caldav_mkcalendar() {
    curl -s -o /dev/null -w '%{http_code}' -X MKCALENDAR ${2:+-u "$2"} "$1"
}

# caldav_put URL FILE [USER:PASS] - create a resource (If-None-Match: *);
# prints the status
caldav_put() {
    curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' \
        -H 'Content-Type: text/calendar; charset=utf-8' --data-binary "@$2" ${3:+-u "$3"} "$1"
}

# caldav_get URL OUT [USER:PASS] - GET into OUT (headers in OUT.h); prints the status
caldav_get() {
    curl -s -D "$2.h" -o "$2" -w '%{http_code}' ${3:+-u "$3"} "$1"
}

# caldav_stop PID... - stop servers started above (quietly)
caldav_stop() {
    local p
    for p in "$@"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
