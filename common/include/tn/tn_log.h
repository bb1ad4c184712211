#ifndef TN_LOG_H
#define TN_LOG_H
/*
 * tn_log - JSON lines on stdout with stable event names (STYLE.md R19).
 *
 *   tn_log_warn(&job->log, "sender.delivery_failed",
 *               TN_KV_INT("http_status", 503), TN_KV_ERR(err));
 *   {"ts":"2026-01-07T10:21:03.114Z","lvl":"warn","svc":"sender",
 *    "event":"sender.delivery_failed","tenant_id":"...","http_status":503,"err":"unavailable"}
 *
 * The level is checked before arguments are evaluated. Warnings and errors
 * of one event are rate-limited (at most TN_LOG_BURST a second; the next line
 * says how many were suppressed). Never log tokens, secrets, message bodies or
 * prompts; phone numbers and emails go through TN_KV_PHONE / TN_KV_EMAIL,
 * which mask them. Logging never allocates and never fails.
 */
#include <stdbool.h>
#include <stddef.h>

#include <tn/tn_err.h>

enum tn_log_level { TN_LOG_DEBUG, TN_LOG_INFO, TN_LOG_WARN, TN_LOG_ERROR, TN_LOG_FATAL };

#define TN_LOG_BURST 20

/* A context that prefixes every line (pgbouncer's db/user@host). All borrowed. */
struct tn_log_ctx {
    const char *tenant_id;
    const char *entry_id;
    const char *stream;
};

enum tn_kv_type {
    TN_KV_T_NONE,
    TN_KV_T_STR,
    TN_KV_T_INT,
    TN_KV_T_BOOL,
    TN_KV_T_DBL,
    TN_KV_T_ERR,
    TN_KV_T_PHONE,
    TN_KV_T_EMAIL,
};

struct tn_kv {
    const char *key;
    enum tn_kv_type type;
    union {
        const char *s;
        long long i;
        double d;
        enum tn_err e;
    } v;
};

#define TN_KV_NONE ((struct tn_kv){.key = NULL, .type = TN_KV_T_NONE})
#define TN_KV_STR(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_STR, .v.s = (x)})
#define TN_KV_INT(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_INT, .v.i = (long long)(x)})
#define TN_KV_BOOL(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_BOOL, .v.i = !!(x)})
#define TN_KV_DBL(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_DBL, .v.d = (double)(x)})
#define TN_KV_ERR(x) ((struct tn_kv){.key = "err", .type = TN_KV_T_ERR, .v.e = (x)})
#define TN_KV_PHONE(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_PHONE, .v.s = (x)})
#define TN_KV_EMAIL(k, x) ((struct tn_kv){.key = (k), .type = TN_KV_T_EMAIL, .v.s = (x)})

/* tn_log_init - set the service name (borrowed, static storage) and the minimum
 * level. Call once before the loop starts. Runs on: main thread. */
void tn_log_init(const char *svc, enum tn_log_level min);
/* tn_log_level_parse - "debug" | "info" | "warn" | "error" into *out. */
enum tn_err tn_log_level_parse(const char *s, enum tn_log_level *out);
/* tn_log_enabled - is lvl at or above the configured minimum? */
bool tn_log_enabled(enum tn_log_level lvl);
/* tn_log_emit - write one line; use the macros instead. kvs is borrowed.
 * Runs on: any thread (one write(2) per line). */
void tn_log_emit(enum tn_log_level lvl, const struct tn_log_ctx *ctx, const char *event,
                 const struct tn_kv *kvs, size_t n);
/* tn_log_flush_suppressed - report events whose lines were dropped by the rate
 * limit. Called by the daemon heartbeat. */
void tn_log_flush_suppressed(void);

/* tn_mask_phone - "+15551234567" -> "+155*****67". Writes a NUL-terminated
 * string of at most size bytes into out; returns out. */
char *tn_mask_phone(const char *in, char *out, size_t size);
/* tn_mask_email - "jane.doe@example.com" -> "j***@example.com". */
char *tn_mask_email(const char *in, char *out, size_t size);

#define TN_LOG_(lvl, ctx, event, ...)                                                              \
    do {                                                                                           \
        if (tn_log_enabled(lvl)) {                                                                 \
            const struct tn_kv tn_kv_[] = {TN_KV_NONE, ##__VA_ARGS__};                             \
            tn_log_emit(lvl, ctx, event, tn_kv_ + 1, sizeof(tn_kv_) / sizeof(tn_kv_[0]) - 1);      \
        }                                                                                          \
    } while (0)

#define tn_log_debug(ctx, event, ...) TN_LOG_(TN_LOG_DEBUG, ctx, event, ##__VA_ARGS__)
#define tn_log_info(ctx, event, ...) TN_LOG_(TN_LOG_INFO, ctx, event, ##__VA_ARGS__)
#define tn_log_warn(ctx, event, ...) TN_LOG_(TN_LOG_WARN, ctx, event, ##__VA_ARGS__)
#define tn_log_error(ctx, event, ...) TN_LOG_(TN_LOG_ERROR, ctx, event, ##__VA_ARGS__)

/* tn_fatal - log at fatal level and exit(78) (EX_CONFIG). Only before the loop
 * runs: bad configuration, cannot bind (STYLE.md R13). */
#define tn_fatal(event, ...)                                                                       \
    do {                                                                                           \
        const struct tn_kv tn_kv_[] = {TN_KV_NONE, ##__VA_ARGS__};                                 \
        tn_log_fatal_exit(event, tn_kv_ + 1, sizeof(tn_kv_) / sizeof(tn_kv_[0]) - 1);              \
    } while (0)
_Noreturn void tn_log_fatal_exit(const char *event, const struct tn_kv *kvs, size_t n);

/* TN_ASSERT - a broken invariant is our bug: log and abort for a core dump. */
#define TN_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tn_panic(__FILE__, __LINE__, #cond);                                                   \
    } while (0)
_Noreturn void tn_panic(const char *file, int line, const char *what);

#endif
