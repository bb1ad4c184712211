# shellcheck shell=bash
# tests/support/pipeline.sh SCRIPT - run one test that starts daemons on the
# shared streams from a clean slate. Those tests take one lock (see
# tests/CMakeLists.txt) so they never overlap; what an earlier one left behind
# (stream entries and consumer groups, pending entries a dead consumer would
# hand over, the sender's schedule and rate buckets) would otherwise reach
# this test's daemons, which hold other master keys. Dedupe keys stay: every
# test uses its own message ids. tern:test:* keys belong to library tests
# that may be running beside this one: never touched.
set -u
: "${TN_TEST_REDIS_URL_ADMIN:?run through scripts/test}"
rc() { redis-cli -u "$TN_TEST_REDIS_URL_ADMIN" --no-auth-warning "$@"; }
rc --scan --pattern 'tern:*' | grep -v -e '^tern:dedupe:' -e '^tern:test:' | while read -r k; do
    rc UNLINK "$k" >/dev/null
done
exec bash "$1"
