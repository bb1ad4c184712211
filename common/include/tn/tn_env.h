#ifndef TN_ENV_H
#define TN_ENV_H
/*
 * tn_env - typed configuration from environment variables (STYLE.md R18).
 *
 * A daemon declares one table; tn_env_load() parses all of it before any
 * connection opens, reports every bad variable at once, and fills a config
 * struct through offsetof(). Secrets (TN_ENV_SECRET) may come from NAME_FILE
 * (the file's contents, one trailing newline removed) and are redacted by
 * tn_env_log(). Durations accept "250ms", "10s", "5m", "2h", "7d" or plain ms.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

/* Shared names, defined once (Postfix VAR_). */
#define TN_ENV_REDIS_URL "TN_REDIS_URL"
#define TN_ENV_PG_DSN "TN_PG_DSN"
#define TN_ENV_MASTER_KEY "TN_MASTER_KEY"

enum tn_env_type { TN_ENV_T_END, TN_ENV_T_STR, TN_ENV_T_INT, TN_ENV_T_MS, TN_ENV_T_BOOL };

struct tn_env_spec {
    const char *name;
    enum tn_env_type type;
    const char *def; /* NULL: required */
    int64_t min, max;
    bool secret;
    size_t offset; /* of the destination: char * (STR), int64_t (INT, MS), bool (BOOL) */
};

/* initializers laid out by hand (the formatter wraps them in braces) */
/* clang-format off */
#define TN_ENV_STR(n, d, T, f)                                                                     \
    {.name = (n), .type = TN_ENV_T_STR, .def = (d), .offset = offsetof(T, f)}
#define TN_ENV_SECRET(n, d, T, f)                                                                  \
    {.name = (n), .type = TN_ENV_T_STR, .def = (d), .secret = true, .offset = offsetof(T, f)}
#define TN_ENV_INT(n, d, lo, hi, T, f)                                                             \
    {.name = (n), .type = TN_ENV_T_INT, .def = (d), .min = (lo), .max = (hi),                      \
     .offset = offsetof(T, f)}
#define TN_ENV_MS(n, d, lo, hi, T, f)                                                              \
    {.name = (n), .type = TN_ENV_T_MS, .def = (d), .min = (lo), .max = (hi),                       \
     .offset = offsetof(T, f)}
#define TN_ENV_BOOL(n, d, T, f)                                                                    \
    {.name = (n), .type = TN_ENV_T_BOOL, .def = (d), .offset = offsetof(T, f)}
#define TN_ENV_END {.name = NULL, .type = TN_ENV_T_END}
/* clang-format on */

/* tn_env_load - parse every variable of spec into cfg. String fields become
 * new strings owned by cfg (release with tn_env_free). Every problem is logged
 * as "config.invalid" with the variable's name (never a secret's value).
 * Errors: TN_EINVAL if any variable was bad (fields already parsed stay set). */
enum tn_err tn_env_load(const struct tn_env_spec *spec, void *cfg);

/* tn_env_log - log the effective configuration once ("config.effective"),
 * secrets shown as "<redacted>" (or "<unset>"). */
void tn_env_log(const struct tn_env_spec *spec, const void *cfg);

/* tn_env_free - release the strings tn_env_load stored in cfg. */
void tn_env_free(const struct tn_env_spec *spec, void *cfg);

/* tn_env_parse_ms - parse a duration into milliseconds. */
enum tn_err tn_env_parse_ms(const char *s, int64_t *out);

#endif
