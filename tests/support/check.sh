# shellcheck shell=bash
# tests/support/check.sh - the integration scripts' assertions, sourced
# before any check: ok (one more passed), bad MESSAGE (one more failed,
# MESSAGE on stderr), want EXPECTED GOT WHAT (ok when they are equal). A
# script ends with its counts and [ "$fail" = 0 ] as its status.
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
want() { if [ "$2" = "$1" ]; then ok; else bad "$3: got '$2', want '$1'"; fi; }
