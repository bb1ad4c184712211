/*
 * NAME
 *	tn_booking_write - book, reschedule, cancel and confirm
 * SYNOPSIS
 *	#include <tn/tn_booking.h>
 *	err = tn_booking_book(c, &who, args, &out, &change);
 * DESCRIPTION
 *	Every write goes through SQL that re-checks the rules in the same
 *	transaction (tern_book, tern_reschedule: tern_booking_check, then the
 *	insert or update under the exclusion constraint), so what the model
 *	saw in find_slots a minute ago is never trusted. A refused start gets
 *	alternatives near it. Booking the same service at the same start for
 *	the same contact again answers the existing booking (a tool call
 *	repeated after a lost answer books once).
 *
 *	Changes bump bookings.sync_version; tern-calsync mirrors them (see
 *	tn_booking.h, "Calendar").
 * RUNS ON
 *	Runs on: threadpool.
 * DIAGNOSTICS
 *	Query failures are logged by tn_pg.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_booking.h>
#include <tn/tn_pg.h>

#include "tn_booking_int.h"

#define TEXT_MAX 1000

/* one_text - the single value of a one-row query into out ("" for NULL);
 * TN_ENOTFOUND when no row */
static enum tn_err one_text(struct tn_pgconn *c, const char *sql, int n, const char *const *p,
                            char *out, size_t size)
{
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql, n, p, &res);

    if (err == TN_OK && tn_pg_result_rows(res) < 1)
        err = TN_ENOTFOUND;
    if (err == TN_OK) {
        const char *v = tn_pg_result_value(res, 0, 0);

        snprintf(out, size, "%s", v != NULL ? v : "");
    }
    tn_pg_result_free(res);
    return err;
}

/* answer_booking - *out = {"time_zone", "booking"} for id */
static enum tn_err answer_booking(struct tn_pgconn *c, const struct tn_booking_who *who,
                                  const char *id, json_t **out)
{
    enum tn_err err;
    json_t *b = bk_booking_json(c, who->contact_id, id, &err);

    if (b != NULL)
        *out = bk_answer(c, "booking", b);
    return err;
}

/* same_booking - the contact's own live booking of svc at start, if any */
static enum tn_err same_booking(struct tn_pgconn *c, const struct tn_booking_who *who,
                                const char *svc, const char *start, char id[40])
{
    const char *p[3] = {who->contact_id, svc, start};

    return one_text(c,
                    "SELECT id FROM bookings WHERE tenant_id = tern_current_tenant()"
                    " AND contact_id = $1 AND service_id = $2"
                    " AND lower(during) = tern_parse_ts($3) AND (status = 'confirmed' OR"
                    " (status = 'held' AND (hold_expires_at IS NULL OR hold_expires_at > now())))",
                    3, p, id, 40);
}

/* refuse - the answer for a reason from tern_book / tern_reschedule */
static enum tn_err refuse(struct tn_pgconn *c, const char *reason, const char *svc,
                          const char *start, const char *resource, const char *ignore, json_t **out)
{
    if (strcmp(reason, "not_found") == 0) {
        *out = bk_refusal(reason);
        return TN_ENOTFOUND;
    }
    if (strcmp(reason, "unknown_service") == 0 || strcmp(reason, "bad_arguments") == 0) {
        *out = bk_refusal(reason);
        return TN_EINVAL;
    }
    if (strcmp(reason, "unknown_resource") == 0)
        resource = NULL;
    return bk_refuse_with_alternatives(c, reason, svc, start, resource, ignore, out);
}

/* do_book - tern_book and its answer, inside the transaction */
static enum tn_err do_book(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                           json_t **out, struct tn_booking_change *change)
{
    struct bk_service svc;
    const char *start = bk_str(args, "start", 64), *res_id = bk_str(args, "resource", 64);
    char hold[16], id[40], reason[40];
    const char *p[7];
    struct pg_result *res = NULL;
    enum tn_err err = bk_service_find(c, bk_str(args, "service", 200), &svc);

    if (err == TN_ENOTFOUND)
        return refuse(c, "unknown_service", NULL, NULL, NULL, NULL, out);
    if (err != TN_OK)
        return err;
    snprintf(hold, sizeof(hold), "%d", who->hold_minutes > 0 ? who->hold_minutes : 0);
    p[0] = svc.id, p[1] = who->contact_id, p[2] = start, p[3] = res_id, p[4] = hold;
    p[5] = bk_str(args, "address", 500), p[6] = bk_str(args, "notes", TEXT_MAX);
    err = tn_pgconn_query(c,
                          "SELECT booking_id, reason FROM tern_book($1::uuid, $2::uuid,"
                          " tern_parse_ts($3), $4, $5::int, $6, $7)",
                          7, p, &res);
    if (err != TN_OK)
        return err;
    snprintf(id, sizeof(id), "%s",
             tn_pg_result_value(res, 0, 0) ? tn_pg_result_value(res, 0, 0) : "");
    snprintf(reason, sizeof(reason), "%s",
             tn_pg_result_value(res, 0, 1) ? tn_pg_result_value(res, 0, 1) : "");
    tn_pg_result_free(res);
    if (*id == '\0' && strcmp(reason, "taken") == 0 &&
        same_booking(c, who, svc.id, start, id) == TN_OK)
        return answer_booking(c, who, id, out); /* a repeated call: already booked */
    if (*id == '\0')
        return refuse(c, reason, svc.id, start, res_id, NULL, out);
    if (who->hold_minutes <= 0)
        bk_change(change, "book", id);
    return answer_booking(c, who, id, out);
}

/* tn_booking_book - book a slot */
enum tn_err tn_booking_book(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                            json_t **out, struct tn_booking_change *change)
{
    enum tn_err err;

    *out = NULL;
    bk_change(change, "", "");
    if (!bk_is_uuid(who->contact_id))
        return TN_EINVAL;
    if (bk_str(args, "service", 200) == NULL || bk_str(args, "start", 64) == NULL) {
        *out = bk_refusal("bad_arguments");
        return TN_EINVAL;
    }
    err = bk_begin(c, who->tenant_id);
    if (err != TN_OK)
        return err;
    err = do_book(c, who, args, out, change);
    if (err != TN_OK)
        bk_change(change, "", "");
    return bk_end(c, err, out);
}

/* do_reschedule - tern_reschedule and its answer */
static enum tn_err do_reschedule(struct tn_pgconn *c, const struct tn_booking_who *who,
                                 const char *id, const char *start, json_t **out,
                                 struct tn_booking_change *change)
{
    const char *p[3] = {id, who->contact_id, start};
    char reason[40], svc[40];
    enum tn_err err;

    err = one_text(c, "SELECT tern_reschedule($1::uuid, $2::uuid, tern_parse_ts($3))", 3, p, reason,
                   sizeof(reason));
    if (err != TN_OK)
        return err;
    if (*reason == '\0') {
        bk_change(change, "reschedule", id);
        return answer_booking(c, who, id, out);
    }
    err = one_text(
        c, "SELECT service_id FROM bookings WHERE tenant_id = tern_current_tenant() AND id = $1", 1,
        p, svc, sizeof(svc));
    if (err == TN_ENOTFOUND)
        return refuse(c, "not_found", NULL, NULL, NULL, NULL, out);
    if (err != TN_OK)
        return err;
    return refuse(c, reason, svc, start, NULL, id, out);
}

/* tn_booking_reschedule - move a booking */
enum tn_err tn_booking_reschedule(struct tn_pgconn *c, const struct tn_booking_who *who,
                                  json_t *args, json_t **out, struct tn_booking_change *change)
{
    const char *id = bk_str(args, "booking_id", 64), *start = bk_str(args, "start", 64);
    enum tn_err err;

    *out = NULL;
    bk_change(change, "", "");
    if (!bk_is_uuid(who->contact_id))
        return TN_EINVAL;
    if (!bk_is_uuid(id) || start == NULL) {
        *out = bk_refusal("bad_arguments");
        return TN_EINVAL;
    }
    err = bk_begin(c, who->tenant_id);
    if (err != TN_OK)
        return err;
    err = do_reschedule(c, who, id, start, out, change);
    if (err != TN_OK)
        bk_change(change, "", "");
    return bk_end(c, err, out);
}

/* state_change - one guarded UPDATE of the contact's booking, then its answer */
static enum tn_err state_change(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                                json_t **out, struct tn_booking_change *change, const char *sql,
                                const char *op)
{
    const char *id = bk_str(args, "booking_id", 64);
    const char *p[2] = {id, who->contact_id};
    char got[40];
    enum tn_err err;

    *out = NULL;
    bk_change(change, "", "");
    if (!bk_is_uuid(who->contact_id))
        return TN_EINVAL;
    if (!bk_is_uuid(id)) {
        *out = bk_refusal("bad_arguments");
        return TN_EINVAL;
    }
    err = bk_begin(c, who->tenant_id);
    if (err != TN_OK)
        return err;
    err = one_text(c, sql, 2, p, got, sizeof(got));
    if (err == TN_ENOTFOUND)
        *out = bk_refusal("not_found");
    if (err == TN_OK)
        err = answer_booking(c, who, id, out);
    if (err == TN_OK)
        bk_change(change, op, id);
    return bk_end(c, err, out);
}

/* tn_booking_cancel - cancel an upcoming booking */
enum tn_err tn_booking_cancel(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                              json_t **out, struct tn_booking_change *change)
{
    return state_change(c, who, args, out, change,
                        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(),"
                        " sync_version = sync_version + 1, updated_at = now()"
                        " WHERE tenant_id = tern_current_tenant() AND id = $1 AND contact_id = $2"
                        " AND status IN ('held', 'confirmed')"
                        " AND lower(during) > now() RETURNING id",
                        "cancel");
}

/* tn_booking_confirm - confirm an unexpired hold */
enum tn_err tn_booking_confirm(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                               json_t **out, struct tn_booking_change *change)
{
    return state_change(c, who, args, out, change,
                        "UPDATE bookings SET status = 'confirmed', confirmed_at = now(),"
                        " hold_expires_at = NULL, sync_version = sync_version + 1,"
                        " updated_at = now() WHERE tenant_id = tern_current_tenant() AND id = $1"
                        " AND contact_id = $2"
                        " AND status = 'held' AND (hold_expires_at IS NULL OR"
                        " hold_expires_at > now()) AND lower(during) > now() RETURNING id",
                        "book");
}
