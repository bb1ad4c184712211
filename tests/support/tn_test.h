#ifndef TN_TEST_H
#define TN_TEST_H
/*
 * tn_test - helpers shared by the tests: the servers scripts/test started,
 * unique names, and small waits. Include after cmocka's prerequisites.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tn_test_env - value of a TN_TEST_* variable; fails the test (never skips)
 * when scripts/test did not set it. Returns: borrowed (environment). */
const char *tn_test_env(const char *name);

/* tn_test_unique - "prefix-<pid>-<counter>-<random>" into out: names that do
 * not collide when tests run in parallel against one Redis/Postgres. */
char *tn_test_unique(const char *prefix, char *out, size_t size);

/* tn_test_bin - path of a built program ("tern-ingest") into out. */
char *tn_test_bin(const char *name, char *out, size_t size);

#endif
