/*
 * NAME
 *	tn_booking_find - find_slots and the alternatives offered on a refusal
 * SYNOPSIS
 *	#include <tn/tn_booking.h>
 *	err = tn_booking_find_slots(c, &who, args, &out);
 * DESCRIPTION
 *	Slots come from tern_available_slots() (proto/sql/0004_bookings.sql):
 *	business hours in the tenant's zone, minus notice, horizon, bookings,
 *	holds, buffers and busy time. This file only narrows them by the
 *	lead's preferences (part of day, earliest and latest local time,
 *	weekdays, resource), which SQL also evaluates in the tenant's zone.
 *	One slot per start time: which resource serves it is decided at
 *	booking time, unless the lead asked for one.
 * RUNS ON
 *	Runs on: threadpool.
 * DIAGNOSTICS
 *	Query failures are logged by tn_pg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_booking.h>
#include <tn/tn_pg.h>

#include "tn_booking_int.h"

#define FIND_MAX_DAYS 31
#define FIND_DEFAULT_LIMIT 10
#define FIND_MAX_LIMIT 50

/* Preferences and range, as SQL parameters (NULL: no constraint). */
struct find_q {
    const char *from, *to, *after, *before, *resource;
    char weekdays[32]; /* "{1,2}" */
    char limit[8];
};

static const char sql_range[] =
    "SELECT to_char(f, 'YYYY-MM-DD'), to_char(t, 'YYYY-MM-DD'), t - f FROM"
    " (SELECT f, CASE WHEN $2::text IS NULL THEN f + 6"
    "  ELSE tern_parse_ts($2 || 'T00:00')::date END AS t FROM"
    " (SELECT CASE WHEN $1::text IS NULL THEN (now() AT TIME ZONE tern_tenant_zone())::date"
    "  ELSE tern_parse_ts($1 || 'T00:00')::date END AS f) x) y";

static const char sql_find[] =
    "SELECT DISTINCT ON (a.slot_start) tern_booking_local(a.slot_start),"
    " tern_booking_local(a.slot_end), a.resource_key"
    " FROM tern_available_slots($1::uuid, $2::date, $3::date, $4) a"
    " WHERE ($5::time IS NULL OR (a.slot_start AT TIME ZONE tern_tenant_zone())::time >= $5::time)"
    " AND ($6::time IS NULL OR (a.slot_end AT TIME ZONE tern_tenant_zone())::time <= $6::time)"
    " AND ($7::int[] IS NULL OR extract(isodow FROM a.slot_start AT TIME ZONE"
    " tern_tenant_zone())::int = ANY($7::int[]))"
    " ORDER BY a.slot_start, a.resource_key LIMIT $8::int";

static const char sql_alt[] =
    "SELECT tern_booking_local(a.slot_start), tern_booking_local(a.slot_end), a.resource_key"
    " FROM (SELECT GREATEST(COALESCE(tern_parse_ts($2), now()), now()) AS anchor) n"
    " CROSS JOIN LATERAL (SELECT DISTINCT ON (x.slot_start) x.* FROM tern_available_slots($1::uuid,"
    "  (n.anchor AT TIME ZONE tern_tenant_zone())::date,"
    "  (n.anchor AT TIME ZONE tern_tenant_zone())::date + 7, $3, $4::uuid) x"
    "  ORDER BY x.slot_start, x.resource_key) a"
    " ORDER BY abs(extract(epoch FROM a.slot_start - n.anchor)), a.slot_start LIMIT 5";

/* slots_json - [{"start","end","resource"?}] from rows; with_resource adds it */
static json_t *slots_json(struct pg_result *res, bool with_resource)
{
    json_t *arr = json_array();

    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        json_t *s = json_pack("{s:s, s:s}", "start", tn_pg_result_value(res, i, 0), "end",
                              tn_pg_result_value(res, i, 1));
        const char *rk = tn_pg_result_value(res, i, 2);

        if (with_resource && rk != NULL && *rk != '\0')
            json_object_set_new(s, "resource", json_string(rk));
        json_array_append_new(arr, s);
    }
    return arr;
}

/* by_start - qsort order of slot objects by their start text (same zone) */
static int by_start(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "start"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "start"));

    return strcmp(x, y);
}

/* bk_alternatives - up to 5 free slots near start, in time order */
json_t *bk_alternatives(struct tn_pgconn *c, const char *service_id, const char *start,
                        const char *resource, const char *ignore, enum tn_err *err)
{
    const char *p[4] = {service_id, start, resource, ignore};
    struct pg_result *res = NULL;
    json_t *arr = NULL, *items[5];
    size_t n;

    *err = tn_pgconn_query(c, sql_alt, 4, p, &res);
    if (*err == TN_OK) {
        arr = slots_json(res, resource != NULL);
        n = json_array_size(arr);
        for (size_t i = 0; i < n && i < 5; i++)
            items[i] = json_incref(json_array_get(arr, i));
        qsort(items, n < 5 ? n : 5, sizeof(items[0]), by_start);
        json_array_clear(arr);
        for (size_t i = 0; i < n && i < 5; i++)
            json_array_append_new(arr, items[i]);
    }
    tn_pg_result_free(res);
    return arr;
}

/* bk_refuse_with_alternatives - a refusal the model can act on */
enum tn_err bk_refuse_with_alternatives(struct tn_pgconn *c, const char *code,
                                        const char *service_id, const char *start,
                                        const char *resource, const char *ignore, json_t **out)
{
    enum tn_err err;
    json_t *alt = bk_alternatives(c, service_id, start, resource, ignore, &err);

    if (alt == NULL)
        return err;
    *out = bk_refusal(code);
    json_object_set_new(*out, "alternatives", alt);
    return strcmp(code, "taken") == 0 ? TN_ECONFLICT : TN_EINVAL;
}

/* valid_hhmm - "HH:MM" with HH 00..24 and MM 00..59 (24:00 only) */
static bool valid_hhmm(const char *s)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    }
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    return m < 60 && (h < 24 || (h == 24 && m == 0));
}

/* prefs_parse - preferences into q; false when malformed */
static bool prefs_parse(json_t *prefs, struct find_q *q)
{
    const char *part = bk_str(prefs, "part_of_day", 16);
    json_t *wd = json_object_get(prefs, "weekdays"), *v;
    size_t i, off = 0;

    if (prefs != NULL && !json_is_object(prefs))
        return false;
    if (part != NULL) {
        q->after = strcmp(part, "morning") == 0     ? "00:00"
                   : strcmp(part, "afternoon") == 0 ? "12:00"
                                                    : "17:00";
        q->before = strcmp(part, "morning") == 0     ? "12:00"
                    : strcmp(part, "afternoon") == 0 ? "17:00"
                                                     : "24:00";
        if (strcmp(part, "morning") != 0 && strcmp(part, "afternoon") != 0 &&
            strcmp(part, "evening") != 0)
            return false;
    }
    if (bk_str(prefs, "after", 5) != NULL)
        q->after = bk_str(prefs, "after", 5);
    if (bk_str(prefs, "before", 5) != NULL)
        q->before = bk_str(prefs, "before", 5);
    if ((q->after != NULL && !valid_hhmm(q->after)) ||
        (q->before != NULL && !valid_hhmm(q->before)))
        return false;
    q->resource = bk_str(prefs, "resource", 64);
    if (wd == NULL)
        return true;
    if (!json_is_array(wd) || json_array_size(wd) == 0 || json_array_size(wd) > 7)
        return false;
    json_array_foreach(wd, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 7)
            return false;
        off += (size_t)snprintf(q->weekdays + off, sizeof(q->weekdays) - off, "%c%d",
                                i == 0 ? '{' : ',', (int)json_integer_value(v));
    }
    snprintf(q->weekdays + off, sizeof(q->weekdays) - off, "}");
    return true;
}

/* args_parse - the whole argument object into q; false when malformed */
static bool args_parse(json_t *args, struct find_q *q)
{
    json_t *lim = json_object_get(args, "limit");
    long long n = FIND_DEFAULT_LIMIT;

    memset(q, 0, sizeof(*q));
    q->from = bk_str(args, "from", 10);
    q->to = bk_str(args, "to", 10);
    if ((json_object_get(args, "from") != NULL && q->from == NULL) ||
        (json_object_get(args, "to") != NULL && q->to == NULL))
        return false;
    if (lim != NULL) {
        if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
            json_integer_value(lim) > FIND_MAX_LIMIT)
            return false;
        n = json_integer_value(lim);
    }
    snprintf(q->limit, sizeof(q->limit), "%lld", n);
    return prefs_parse(json_object_get(args, "preferences"), q);
}

/* resolve_range - the local dates from .. to, defaults applied and checked */
static enum tn_err resolve_range(struct tn_pgconn *c, const struct find_q *q, char from[11],
                                 char to[11], bool *ok)
{
    const char *p[2] = {q->from, q->to};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_range, 2, p, &res);

    *ok = false;
    if (err == TN_OK && tn_pg_result_value(res, 0, 0) != NULL &&
        tn_pg_result_value(res, 0, 1) != NULL) {
        long days = strtol(tn_pg_result_value(res, 0, 2), NULL, 10);

        *ok = days >= 0 && days <= FIND_MAX_DAYS;
        snprintf(from, 11, "%s", tn_pg_result_value(res, 0, 0));
        snprintf(to, 11, "%s", tn_pg_result_value(res, 0, 1));
    }
    tn_pg_result_free(res);
    return err;
}

/* find - the query proper, after the service and range are known */
static enum tn_err find(struct tn_pgconn *c, const struct bk_service *svc, const struct find_q *q,
                        const char *from, const char *to, json_t **out)
{
    const char *p[8] = {
        svc->id, from, to, q->resource, q->after, q->before, q->weekdays[0] ? q->weekdays : NULL,
        q->limit};
    struct pg_result *res = NULL;
    enum tn_err err = tn_pgconn_query(c, sql_find, 8, p, &res);

    if (err == TN_OK) {
        json_t *o = bk_answer(c, "slots", slots_json(res, q->resource != NULL));

        json_object_set_new(o, "service",
                            json_pack("{s:s, s:s, s:i}", "id", svc->id, "name", svc->name,
                                      "duration_min", svc->duration_min));
        *out = o;
    }
    tn_pg_result_free(res);
    return err;
}

/* tn_booking_find_slots - free slots of a service */
enum tn_err tn_booking_find_slots(struct tn_pgconn *c, const struct tn_booking_who *who,
                                  json_t *args, json_t **out)
{
    struct find_q q;
    struct bk_service svc;
    const char *ref = bk_str(args, "service", 200);
    char from[11], to[11];
    bool ok;
    enum tn_err err;

    *out = NULL;
    if (ref == NULL || !args_parse(args, &q)) {
        *out = bk_refusal("bad_arguments");
        return TN_EINVAL;
    }
    err = bk_begin(c, who->tenant_id);
    if (err != TN_OK)
        return err;
    err = bk_service_find(c, ref, &svc);
    if (err == TN_ENOTFOUND) {
        *out = bk_refusal("unknown_service");
        err = TN_EINVAL;
        goto out;
    }
    if (err == TN_OK)
        err = resolve_range(c, &q, from, to, &ok);
    if (err == TN_OK && !ok) {
        *out = bk_refusal("bad_arguments");
        err = TN_EINVAL;
    }
    if (err == TN_OK)
        err = find(c, &svc, &q, from, to, out);
out:
    return bk_end(c, err, out);
}
