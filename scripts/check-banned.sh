#!/usr/bin/env bash
# check-banned.sh - fail on functions the house style bans (STYLE.md R22):
# unsafe string functions, non-reentrant time functions, rand, system, raw
# allocation outside tn_mem.c, and PQexec outside files that run on a thread.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
bad=0
banned='strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atof|strtok|localtime|gmtime|ctime|asctime|rand|system'
alloc='malloc|calloc|realloc|free'
files=$(git ls-files -co --exclude-standard -- 'common/*.c' 'services/*.c' 'common/*.h' 'services/*.h')
for f in $files; do
    [ -f "$f" ] || continue
    # strip comments and string literals before matching
    code=$(sed -e 's://.*$::' -e 's:"[^"]*"::g' "$f" | perl -0pe 's{/\*.*?\*/}{}gs')
    hits=$(printf '%s\n' "$code" | grep -nE "(^|[^_a-zA-Z0-9.>])($banned)[[:space:]]*\(" || true)
    if [ -n "$hits" ]; then echo "$f: banned call: $hits"; bad=1; fi
    if [ "$(basename "$f")" != tn_mem.c ]; then
        hits=$(printf '%s\n' "$code" | grep -nE "(^|[^_a-zA-Z0-9.>])($alloc)[[:space:]]*\(" || true)
        if [ -n "$hits" ]; then echo "$f: raw allocation: $hits"; bad=1; fi
    fi
    if printf '%s\n' "$code" | grep -qE '(^|[^_a-zA-Z0-9])PQexec[[:space:]]*\(' \
        && ! grep -qE 'Runs on: (threadpool|CLI)|RUNS ON[^\n]*' "$f"; then
        echo "$f: PQexec in a file not marked as running on the threadpool or a CLI"; bad=1
    fi
done
exit $bad
