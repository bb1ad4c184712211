#ifndef TN_BOOKING_INT_H
#define TN_BOOKING_INT_H
/*
 * tn_booking_int - what the tn_booking*.c files share (not public).
 * Runs on: the caller's thread (threadpool); every function blocks on c.
 */
#include <stdbool.h>

#include <jansson.h>

#include <tn/tn_booking.h>
#include <tn/tn_err.h>

struct tn_pgconn;

#define BK_UUID_LEN 36

/* A resolved service. */
struct bk_service {
    char id[BK_UUID_LEN + 1];
    char name[201];
    int duration_min;
};

/* bk_begin - BEGIN bound to the tenant, with the session TimeZone set to the
 * tenant's zone (times without an offset are local). */
enum tn_err bk_begin(struct tn_pgconn *c, const char *tenant_id);

/* bk_end - COMMIT when err is TN_OK (a failed commit becomes err), else
 * ROLLBACK; on a failure that is not an answer (*out NULL) nothing leaks.
 * Returns the final error. */
enum tn_err bk_end(struct tn_pgconn *c, enum tn_err err, json_t **out);

/* bk_refusal - new {"error": code, "message": the code's text}. */
json_t *bk_refusal(const char *code);

/* bk_str - args[key] when it is a non-empty string of at most max bytes, else
 * NULL. Borrowed from args. */
const char *bk_str(json_t *args, const char *key, size_t max);

/* bk_is_uuid - canonical 8-4-4-4-12 hex text */
bool bk_is_uuid(const char *s);

/* bk_service_find - an active service by uuid or exact name (any case).
 * Errors: TN_ENOTFOUND, or the query's. */
enum tn_err bk_service_find(struct tn_pgconn *c, const char *ref, struct bk_service *out);

/* bk_booking_json - new BOOKING object of the contact's booking id, or NULL
 * with *err set (TN_ENOTFOUND when it is not the contact's). */
json_t *bk_booking_json(struct tn_pgconn *c, const char *contact_id, const char *booking_id,
                        enum tn_err *err);

/* bk_answer - new {"time_zone": zone, key: v (stolen)}; NULL v is a bug. */
json_t *bk_answer(struct tn_pgconn *c, const char *key, json_t *v);

/* bk_alternatives - new array of up to 5 free slots of the service near
 * start (text, may be NULL: from now), on resource (may be NULL), ignoring
 * booking ignore (may be NULL). NULL with *err on a query failure. */
json_t *bk_alternatives(struct tn_pgconn *c, const char *service_id, const char *start,
                        const char *resource, const char *ignore, enum tn_err *err);

/* bk_refuse_with_alternatives - *out = refusal for code plus alternatives;
 * returns TN_ECONFLICT for "taken", TN_EINVAL otherwise, or a query error. */
enum tn_err bk_refuse_with_alternatives(struct tn_pgconn *c, const char *code,
                                        const char *service_id, const char *start,
                                        const char *resource, const char *ignore, json_t **out);

/* bk_change - record op and booking id in change (NULL-safe). */
void bk_change(struct tn_booking_change *change, const char *op, const char *booking_id);

#endif
