/*
 * NAME
 *	tn_err - error names and retry classes
 * DESCRIPTION
 *	Maps enum tn_err to the stable names used in logs and metrics.
 * RUNS ON
 *	any thread; pure functions.
 */
#include <tn/tn_err.h>

/* tn_strerror - stable short name */
const char *tn_strerror(enum tn_err err)
{
    switch (err) {
    case TN_OK:
        return "ok";
    case TN_EINVAL:
        return "invalid";
    case TN_ENOTFOUND:
        return "not_found";
    case TN_ECONFLICT:
        return "conflict";
    case TN_E2BIG:
        return "too_big";
    case TN_EPROTO:
        return "protocol";
    case TN_EDENIED:
        return "denied";
    case TN_ETIMEDOUT:
        return "timed_out";
    case TN_EUNAVAIL:
        return "unavailable";
    case TN_ECANCELED:
        return "canceled";
    }
    return "unknown";
}

/* tn_err_retryable - timeouts and unavailable dependencies are worth a retry */
bool tn_err_retryable(enum tn_err err)
{
    return err == TN_ETIMEDOUT || err == TN_EUNAVAIL;
}
