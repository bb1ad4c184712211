# shellcheck shell=bash
# CPU accounting shared by the benchmarks; `source` it.
#
#   cpu_ms PID...      user+system CPU ms these processes have used so far
#   pg_pids DATADIR    the postmaster of DATADIR and its backends

cpu_ms() {
    local hz t=0 f
    hz=$(getconf CLK_TCK)
    for p in "$@"; do
        f=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + f))
    done
    echo $((t * 1000 / hz))
}

pg_pids() {
    local pm
    pm=$(head -1 "$1/postmaster.pid")
    echo "$pm" $(pgrep -P "$pm")
}
