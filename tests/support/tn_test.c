/*
 * NAME
 *	tn_test - shared test helpers
 * DESCRIPTION
 *	A missing TN_TEST_* variable is a failure, not a skip: a suite that
 *	silently skips its integration tests would pass without testing.
 * RUNS ON
 *	the test's main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "tn_test.h"

/* tn_test_env - required test variable */
const char *tn_test_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || *v == '\0')
        fail_msg("%s is not set: run the tests through scripts/test", name);
    return v;
}

/* tn_test_unique - collision-free name */
char *tn_test_unique(const char *prefix, char *out, size_t size)
{
    static unsigned counter;
    unsigned r = 0;

    RAND_bytes((unsigned char *)&r, sizeof(r));
    snprintf(out, size, "%s-%d-%u-%08x", prefix, (int)getpid(), ++counter, r);
    return out;
}

/* tn_test_bin - path of a built program */
char *tn_test_bin(const char *name, char *out, size_t size)
{
    const char *dir = tn_test_env("TN_BIN_DIR");

    snprintf(out, size, "%s/%s", dir, name);
    return out;
}
