#!/usr/bin/env bash
# check-headers.sh - every public header compiles on its own, has its include
# guard, and only tn_loop.h includes <uv.h> (STYLE.md R3).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
bad=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in "$root"/common/include/tn/*.h; do
    name=$(basename "$h")
    guard=$(echo "${name%.h}" | tr a-z A-Z)_H
    grep -q "#ifndef $guard" "$h" || { echo "$name: include guard $guard missing"; bad=1; }
    if [ "$name" != tn_loop.h ] && grep -q '#include <uv.h>' "$h"; then
        echo "$name: only tn_loop.h may include <uv.h>"; bad=1
    fi
    printf '#include <tn/%s>\n' "$name" >"$tmp/t.c"
    $cc -std=gnu11 -Wall -Wextra -Werror -fsyntax-only -I"$root/common/include" \
        $(pkg-config --cflags libuv) "$tmp/t.c" 2>"$tmp/err" \
        || { echo "$name does not compile alone:"; cat "$tmp/err"; bad=1; }
done
exit $bad
