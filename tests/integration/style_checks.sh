#!/usr/bin/env bash
# The house-style checks that a compiler does not make: banned functions and
# self-contained public headers.
set -u
rc=0
bash "$TN_SRC_DIR/scripts/check-banned.sh" || rc=1
bash "$TN_SRC_DIR/scripts/check-headers.sh" || rc=1
[ $rc = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $rc
