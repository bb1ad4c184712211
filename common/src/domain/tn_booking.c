/*
 * NAME
 *	tn_booking - shared helpers of the booking tools, list, cal.request
 * SYNOPSIS
 *	#include <tn/tn_booking.h>
 *	err = tn_booking_list(c, &who, args, &out);
 * DESCRIPTION
 *	The transaction shape every tool uses (bk_begin, bk_end), refusals and
 *	their texts for the model, the BOOKING object, and the cal.request
 *	payload a caller XADDs after a change. Times are formatted by SQL
 *	(tern_booking_local) with Postgres's zone rules.
 * RUNS ON
 *	Runs on: threadpool (blocking libpq on the caller's connection).
 * DIAGNOSTICS
 *	Query failures are logged by tn_pg ("pg.query_failed").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_booking.h>
#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_time.h>

#include "tn_booking_int.h"

/* The texts the model reads for each refusal code. */
static const struct {
    const char *code, *message;
} reasons[] = {
    {"bad_arguments", "the arguments are missing or malformed"},
    {"unknown_service", "no such service: use one of the business's services by name"},
    {"unknown_resource", "no such staff member or room for this service"},
    {"past", "that time is in the past"},
    {"too_soon", "that time is too soon: the business needs more notice"},
    {"too_far", "that time is beyond how far ahead the business takes bookings"},
    {"closed", "the business is closed at that time"},
    {"not_a_slot", "appointments start only at the times find_slots returns"},
    {"taken", "slot taken: choose one of the alternatives"},
    {"not_found", "no such upcoming booking for this contact"},
};

/* bk_refusal - {"error", "message"} */
json_t *bk_refusal(const char *code)
{
    const char *msg = "refused";

    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(reasons[i].code, code) == 0)
            msg = reasons[i].message;
    }
    if (strcmp(code, "taken") == 0)
        code = "slot_taken";
    return json_pack("{s:s, s:s}", "error", code, "message", msg);
}

/* bk_str - a bounded non-empty string member */
const char *bk_str(json_t *args, const char *key, size_t max)
{
    json_t *v = json_is_object(args) ? json_object_get(args, key) : NULL;
    const char *s = json_string_value(v);

    if (s == NULL || *s == '\0' || strlen(s) > max)
        return NULL;
    return s;
}

/* bk_is_uuid - 8-4-4-4-12 hex */
bool bk_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != BK_UUID_LEN)
        return false;
    for (int i = 0; i < BK_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* bk_begin - tenant transaction with the tenant's TimeZone */
enum tn_err bk_begin(struct tn_pgconn *c, const char *tenant_id)
{
    enum tn_err err;

    if (!bk_is_uuid(tenant_id))
        return TN_EINVAL;
    err = tn_pgconn_begin_tenant(c, tenant_id);
    if (err != TN_OK)
        return err;
    err = tn_pgconn_query(c, "SELECT set_config('TimeZone', tern_tenant_zone(), true)", 0, NULL,
                          NULL);
    if (err != TN_OK)
        tn_pgconn_rollback(c);
    return err;
}

/* bk_end - commit or roll back */
enum tn_err bk_end(struct tn_pgconn *c, enum tn_err err, json_t **out)
{
    if (err == TN_OK) {
        err = tn_pgconn_commit(c);
        if (err == TN_OK)
            return TN_OK;
    } else {
        tn_pgconn_rollback(c);
    }
    if (*out != NULL && json_object_get(*out, "error") == NULL) {
        json_decref(*out); /* a commit failure: the answer is void */
        *out = NULL;
    }
    return err;
}

/* bk_service_find - by id or name */
enum tn_err bk_service_find(struct tn_pgconn *c, const char *ref, struct bk_service *out)
{
    const char *p[1] = {ref};
    struct pg_result *res = NULL;
    enum tn_err err;

    err = tn_pgconn_query(c,
                          "SELECT id, name, duration_min FROM services WHERE active"
                          " AND tenant_id = tern_current_tenant()"
                          " AND (id::text = lower($1) OR lower(name) = lower($1))"
                          " ORDER BY id::text = lower($1) DESC LIMIT 1",
                          1, p, &res);
    if (err == TN_OK && tn_pg_result_rows(res) != 1)
        err = TN_ENOTFOUND;
    if (err == TN_OK) {
        snprintf(out->id, sizeof(out->id), "%s", tn_pg_result_value(res, 0, 0));
        snprintf(out->name, sizeof(out->name), "%s", tn_pg_result_value(res, 0, 1));
        out->duration_min = (int)strtol(tn_pg_result_value(res, 0, 2), NULL, 10);
    }
    tn_pg_result_free(res);
    return err;
}

static const char sql_booking[] =
    "SELECT b.id, s.name, tern_booking_local(lower(b.during)), tern_booking_local(upper(b.during)),"
    " CASE WHEN b.status = 'held' AND b.hold_expires_at <= now() THEN 'expired' ELSE b.status END,"
    " b.resource_id, tern_booking_local(b.hold_expires_at)"
    " FROM bookings b JOIN services s ON s.tenant_id = b.tenant_id AND s.id = b.service_id"
    " AND b.tenant_id = tern_current_tenant()";

/* booking_row - BOOKING from one row of sql_booking */
static json_t *booking_row(struct pg_result *res, int i)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", tn_pg_result_value(res, i, 0), "service",
                  tn_pg_result_value(res, i, 1), "start", tn_pg_result_value(res, i, 2), "end",
                  tn_pg_result_value(res, i, 3), "status", tn_pg_result_value(res, i, 4));

    if (tn_pg_result_value(res, i, 5) != NULL)
        json_object_set_new(o, "resource", json_string(tn_pg_result_value(res, i, 5)));
    if (strcmp(tn_pg_result_value(res, i, 4), "held") == 0 && tn_pg_result_value(res, i, 6))
        json_object_set_new(o, "hold_expires_at", json_string(tn_pg_result_value(res, i, 6)));
    return o;
}

/* bk_booking_json - one booking of the contact */
json_t *bk_booking_json(struct tn_pgconn *c, const char *contact_id, const char *booking_id,
                        enum tn_err *err)
{
    char sql[sizeof(sql_booking) + 64];
    const char *p[2] = {booking_id, contact_id};
    struct pg_result *res = NULL;
    json_t *o = NULL;

    snprintf(sql, sizeof(sql), "%s WHERE b.id = $1 AND b.contact_id = $2", sql_booking);
    *err = tn_pgconn_query(c, sql, 2, p, &res);
    if (*err == TN_OK && tn_pg_result_rows(res) != 1)
        *err = TN_ENOTFOUND;
    if (*err == TN_OK)
        o = booking_row(res, 0);
    tn_pg_result_free(res);
    return o;
}

/* bk_answer - {"time_zone", key: v} */
json_t *bk_answer(struct tn_pgconn *c, const char *key, json_t *v)
{
    struct pg_result *res = NULL;
    json_t *o = json_object();

    if (tn_pgconn_query(c, "SELECT tern_tenant_zone()", 0, NULL, &res) == TN_OK &&
        tn_pg_result_value(res, 0, 0) != NULL)
        json_object_set_new(o, "time_zone", json_string(tn_pg_result_value(res, 0, 0)));
    tn_pg_result_free(res);
    json_object_set_new(o, key, v);
    return o;
}

/* bk_change - remember what changed */
void bk_change(struct tn_booking_change *change, const char *op, const char *booking_id)
{
    if (change == NULL)
        return;
    snprintf(change->op, sizeof(change->op), "%s", op);
    snprintf(change->booking_id, sizeof(change->booking_id), "%s", booking_id);
}

/* tn_booking_list - upcoming bookings of the contact */
enum tn_err tn_booking_list(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                            json_t **out)
{
    char sql[sizeof(sql_booking) + 256];
    const char *p[1] = {who->contact_id};
    struct pg_result *res = NULL;
    json_t *arr;
    enum tn_err err;

    (void)args;
    *out = NULL;
    if (!bk_is_uuid(who->contact_id))
        return TN_EINVAL;
    err = bk_begin(c, who->tenant_id);
    if (err != TN_OK)
        return err;
    snprintf(sql, sizeof(sql),
             "%s WHERE b.contact_id = $1 AND upper(b.during) > now()"
             " AND (b.status = 'confirmed' OR (b.status = 'held' AND"
             " (b.hold_expires_at IS NULL OR b.hold_expires_at > now())))"
             " ORDER BY lower(b.during) LIMIT 50",
             sql_booking);
    err = tn_pgconn_query(c, sql, 1, p, &res);
    if (err == TN_OK) {
        arr = json_array();
        for (int i = 0; i < tn_pg_result_rows(res); i++)
            json_array_append_new(arr, booking_row(res, i));
        *out = bk_answer(c, "bookings", arr);
    }
    tn_pg_result_free(res);
    return bk_end(c, err, out);
}

/* tn_booking_cal_request_new - cal.request v1 data for a change */
json_t *tn_booking_cal_request_new(const char *tenant_id, const struct tn_booking_change *change)
{
    char *rnd = tn_random_id("");
    char rid[128], now[40];
    json_t *o;

    snprintf(rid, sizeof(rid), "bk:%s:%s:%.12s", change->booking_id, change->op, rnd);
    tn_free(rnd);
    tn_time_rfc3339(tn_now_ms(), now, sizeof(now));
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenant", tenant_id, "request_id", rid, "op",
                  change->op, "booking_id", change->booking_id, "requested_at", now);
    return o;
}
