#ifndef TN_ERR_H
#define TN_ERR_H
/*
 * tn_err - the one error enum (STYLE.md R10). Codes say what the caller
 * should do, not which library failed; the library detail goes to the log.
 */
#include <stdbool.h>

enum tn_err {
    TN_OK = 0,
    TN_EINVAL,    /* bad input or caller bug: never retry */
    TN_ENOTFOUND, /* no such thing */
    TN_ECONFLICT, /* duplicate; an idempotency hit */
    TN_E2BIG,     /* hit a configured bound */
    TN_EPROTO,    /* the peer sent nonsense */
    TN_EDENIED,   /* authentication or permission refused */
    TN_ETIMEDOUT, /* retryable */
    TN_EUNAVAIL,  /* a dependency is down: retryable */
    TN_ECANCELED, /* shutting down */
};

/* tn_strerror - a short stable name for err ("unavailable"). Returns: static. */
const char *tn_strerror(enum tn_err err);

/* tn_err_retryable - true when the same call may succeed later. */
bool tn_err_retryable(enum tn_err err);

#endif
