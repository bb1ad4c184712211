/*
 * test_booking - the booking tools (tn_booking) against real Postgres as
 * tern_agent: the exclusion constraint under concurrency, availability
 * across DST changes, and the server-side rules.
 *
 * Each test makes its own tenant (admin DSN) with weekly hours on every
 * day, a service, and contacts; tools then run as tern_agent. Dates are
 * computed from the database's clock and zone rules (the next DST change of
 * a zone is found by SQL), so the tests hold whatever day they run on.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_booking.h>
#include <tn/tn_log.h>
#include <tn/tn_pg.h>

#include "tn_test.h"

#define RACERS 50

/* One tenant's fixture. */
struct fx {
    char tenant[40], service[40], contact[RACERS][40];
};

/* q1 - the single value of an admin query into out */
static void q1(struct tn_pgconn *c, const char *sql, int n, const char *const *p, char *out,
               size_t size)
{
    struct pg_result *res = NULL;

    assert_int_equal(tn_pgconn_query(c, sql, n, p, &res), TN_OK);
    assert_int_equal(tn_pg_result_rows(res), 1);
    snprintf(out, size, "%s", tn_pg_result_value(res, 0, 0) ? tn_pg_result_value(res, 0, 0) : "");
    tn_pg_result_free(res);
}

/* admin - a connection with the admin DSN */
static struct tn_pgconn *admin(void)
{
    struct tn_pgconn *c = NULL;

    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_ADMIN_DSN"), &c), TN_OK);
    return c;
}

/* agent - a connection as tern_agent */
static struct tn_pgconn *agent(void)
{
    struct tn_pgconn *c = NULL;

    assert_int_equal(tn_pgconn_open(tn_test_env("TN_TEST_PG_DSN_AGENT"), &c), TN_OK);
    return c;
}

/* mk_tenant - tenant in zone, hours opens..closes every day, one service
 * (duration, buffer after, notice minutes), ncontacts contacts */
static void mk_tenant(struct fx *f, const char *zone, const char *opens, const char *closes,
                      const char *duration, const char *buffer, const char *notice, int ncontacts)
{
    struct tn_pgconn *c = admin();
    char slug[96], addr[96];
    const char *p[5];

    memset(f, 0, sizeof(*f));
    p[0] = tn_test_unique("bk", slug, sizeof(slug));
    p[1] = zone;
    q1(c,
       "INSERT INTO tenants (slug, name, time_zone) VALUES ($1, 'booking test', $2) RETURNING id",
       2, p, f->tenant, sizeof(f->tenant));
    p[0] = f->tenant, p[1] = opens, p[2] = closes;
    assert_int_equal(
        tn_pgconn_query(c,
                        "INSERT INTO business_hours (tenant_id, weekday, opens, closes)"
                        " SELECT $1, d, $2::time, $3::time FROM generate_series(1, 7) d",
                        3, p, NULL),
        TN_OK);
    p[1] = duration, p[2] = buffer, p[3] = notice;
    q1(c,
       "INSERT INTO services (tenant_id, name, duration_min, buffer_min, min_notice_min,"
       " horizon_days) VALUES ($1, 'Haircut', $2::int, $3::int, $4::int, 400) RETURNING id",
       4, p, f->service, sizeof(f->service));
    for (int i = 0; i < ncontacts; i++) {
        p[1] = tn_test_unique("+49", addr, sizeof(addr));
        q1(c,
           "INSERT INTO contacts (tenant_id, kind, address) VALUES ($1, 'whatsapp', $2)"
           " RETURNING id",
           2, p, f->contact[i], sizeof(f->contact[i]));
    }
    tn_pgconn_close(c);
}

/* local_date - the tenant's local date today + days, "YYYY-MM-DD" */
static void local_date(const struct fx *f, int days, char out[16])
{
    struct tn_pgconn *c = admin();
    char d[16];
    const char *p[2] = {f->tenant, d};

    snprintf(d, sizeof(d), "%d", days);
    q1(c,
       "SELECT to_char((now() AT TIME ZONE (SELECT time_zone FROM tenants WHERE id = $1))::date"
       " + $2::int, 'YYYY-MM-DD')",
       2, p, out, 16);
    tn_pgconn_close(c);
}

/* nth_dst_change - the nth (0: next) local date after today whose
 * noon-to-noon span is not 24 h in zone, "YYYY-MM-DD" */
static void nth_dst_change(const char *zone, int nth, char out[16])
{
    struct tn_pgconn *c = admin();
    char off[8];
    const char *p[2] = {zone, off};

    snprintf(off, sizeof(off), "%d", nth);
    q1(c,
       "SELECT to_char(d, 'YYYY-MM-DD') FROM (SELECT g::date AS d FROM generate_series("
       "current_date + 2, current_date + 390, interval '1 day') g) x"
       " WHERE (d + time '12:00') AT TIME ZONE $1 - (d - 1 + time '12:00') AT TIME ZONE $1"
       " <> interval '24 hours' ORDER BY d LIMIT 1 OFFSET $2::int",
       2, p, out, 16);
    tn_pgconn_close(c);
}

/* next_dst_change - the next one */
static void next_dst_change(const char *zone, char out[16])
{
    nth_dst_change(zone, 0, out);
}

/* call - run a tool from JSON text; returns its error, *out new */
static enum tn_err call(struct tn_pgconn *c, const char *tool, const struct fx *f, int contact,
                        const char *json, json_t **out, struct tn_booking_change *chg)
{
    struct tn_booking_who who = {.tenant_id = f->tenant, .contact_id = f->contact[contact]};
    json_t *args = json_loads(json, 0, NULL);
    enum tn_err err = TN_EINVAL;

    assert_non_null(args);
    if (strcmp(tool, "find_slots") == 0)
        err = tn_booking_find_slots(c, &who, args, out);
    else if (strcmp(tool, "book") == 0)
        err = tn_booking_book(c, &who, args, out, chg);
    else if (strcmp(tool, "reschedule") == 0)
        err = tn_booking_reschedule(c, &who, args, out, chg);
    else if (strcmp(tool, "cancel") == 0)
        err = tn_booking_cancel(c, &who, args, out, chg);
    else if (strcmp(tool, "list") == 0)
        err = tn_booking_list(c, &who, args, out);
    json_decref(args);
    return err;
}

/* slot_starts - the "start" strings of find_slots' answer joined by ' ' */
static void slot_starts(json_t *ans, char *out, size_t size)
{
    json_t *slots = json_object_get(ans, "slots"), *s;
    size_t i, off = 0;

    out[0] = '\0';
    assert_true(json_is_array(slots));
    json_array_foreach(slots, i, s)
    {
        off += (size_t)snprintf(out + off, size - off, "%s%s", i ? " " : "",
                                json_string_value(json_object_get(s, "start")));
        assert_true(off < size);
    }
}

/* find - find_slots for from..to (extra: more members), starts into out */
static void find(struct tn_pgconn *c, const struct fx *f, const char *from, const char *to,
                 const char *extra, char *out, size_t size)
{
    char args[512];
    json_t *ans = NULL;

    snprintf(args, sizeof(args), "{\"service\": \"haircut\", \"from\": \"%s\", \"to\": \"%s\"%s%s}",
             from, to, extra ? ", " : "", extra ? extra : "");
    assert_int_equal(call(c, "find_slots", f, 0, args, &ans, NULL), TN_OK);
    slot_starts(ans, out, size);
    json_decref(ans);
}

/* ---------------------------------------------------------------- race */

struct racer {
    const struct fx *f;
    int i;
    const char *start;
    pthread_barrier_t *go;
    enum tn_err err;
    size_t alternatives;
};

/* race_one - one connection books the contested slot */
static void *race_one(void *arg)
{
    struct racer *r = arg;
    struct tn_pgconn *c = NULL;
    char args[256];
    json_t *ans = NULL;

    r->err = tn_pgconn_open(tn_test_env("TN_TEST_PG_DSN_AGENT"), &c);
    pthread_barrier_wait(r->go);
    if (r->err != TN_OK)
        return NULL;
    snprintf(args, sizeof(args), "{\"service\": \"Haircut\", \"start\": \"%s\"}", r->start);
    r->err = call(c, "book", r->f, r->i, args, &ans, NULL);
    r->alternatives = json_array_size(json_object_get(ans, "alternatives"));
    json_decref(ans);
    tn_pgconn_close(c);
    return NULL;
}

/* twenty_racers_one_booking - RACERS (50) connections book one slot: exactly one wins */
static void twenty_racers_one_booking(void **state)
{
    static struct fx f;
    struct racer r[RACERS];
    pthread_t th[RACERS];
    pthread_barrier_t go;
    char day[16], start[40], n[16];
    int won = 0, taken = 0;
    struct tn_pgconn *c;
    const char *p[1];

    (void)state;
    mk_tenant(&f, "Europe/Berlin", "09:00", "17:00", "60", "0", "0", RACERS);
    local_date(&f, 3, day);
    snprintf(start, sizeof(start), "%sT10:00", day);
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (struct racer){.f = &f, .i = i, .start = start, .go = &go};
        assert_int_equal(pthread_create(&th[i], NULL, race_one, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        won += r[i].err == TN_OK;
        taken += r[i].err == TN_ECONFLICT && r[i].alternatives > 0;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(won, 1);
    assert_int_equal(taken, RACERS - 1);
    c = admin();
    p[0] = f.tenant;
    q1(c, "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND status = 'confirmed'", 1, p, n,
       sizeof(n));
    assert_string_equal(n, "1");
    tn_pgconn_close(c);
}

/* ---------------------------------------------------------------- DST */

/* check_dst_change - 09:00 local on the day before and the day of the nth
 * change from now, with different offsets, and 23 or 25 h apart */
static void check_dst_change(const char *zone, const char *off_a, const char *off_b, int nth)
{
    static struct fx f;
    struct tn_pgconn *c = agent(), *a;
    char d[16], prev[16], got[512], want[256], hours[16];
    const char *p[2];

    mk_tenant(&f, zone, "09:00", "10:00", "60", "0", "0", 1);
    nth_dst_change(zone, nth, d);
    a = admin();
    p[0] = d;
    q1(a, "SELECT to_char($1::date - 1, 'YYYY-MM-DD')", 1, p, prev, sizeof(prev));
    p[0] = d, p[1] = zone;
    q1(a,
       "SELECT extract(epoch FROM ($1::date + time '09:00') AT TIME ZONE $2"
       " - ($1::date - 1 + time '09:00') AT TIME ZONE $2)::int / 3600",
       2, p, hours, sizeof(hours));
    tn_pgconn_close(a);
    find(c, &f, prev, d, NULL, got, sizeof(got));
    /* spring forward: the day before has the standard offset (23 h apart) */
    if (strcmp(hours, "23") == 0)
        snprintf(want, sizeof(want), "%sT09:00:00%s %sT09:00:00%s", prev, off_a, d, off_b);
    else {
        assert_string_equal(hours, "25");
        snprintf(want, sizeof(want), "%sT09:00:00%s %sT09:00:00%s", prev, off_b, d, off_a);
    }
    assert_string_equal(got, want);
    tn_pgconn_close(c);
}

/* check_dst_zone - across the next two changes: one spring, one autumn */
static void check_dst_zone(const char *zone, const char *off_a, const char *off_b)
{
    check_dst_change(zone, off_a, off_b, 0);
    check_dst_change(zone, off_a, off_b, 1);
}

/* dst_berlin - Europe/Berlin across its next spring and autumn changes */
static void dst_berlin(void **state)
{
    (void)state;
    check_dst_zone("Europe/Berlin", "+01:00", "+02:00");
}

/* dst_london - Europe/London (GMT/BST) across its next spring and autumn changes */
static void dst_london(void **state)
{
    (void)state;
    check_dst_zone("Europe/London", "+00:00", "+01:00");
}

/* dst_new_york - America/New_York across its next spring and autumn changes */
static void dst_new_york(void **state)
{
    (void)state;
    check_dst_zone("America/New_York", "-05:00", "-04:00");
}

/* dst_night_window - hours 01:00-04:00 on Berlin's next change day: the
 * missing or repeated hour is real time, so hourly slots follow it */
static void dst_night_window(void **state)
{
    static struct fx f;
    struct tn_pgconn *c = agent();
    char d[16], got[512], want[512];

    (void)state;
    mk_tenant(&f, "Europe/Berlin", "01:00", "04:00", "60", "0", "0", 1);
    next_dst_change("Europe/Berlin", d);
    find(c, &f, d, d, NULL, got, sizeof(got));
    if (strstr(got, "T01:00:00+01:00") != NULL) /* spring: 02:00 does not exist */
        snprintf(want, sizeof(want), "%sT01:00:00+01:00 %sT03:00:00+02:00", d, d);
    else /* autumn: 02:00 happens twice */
        snprintf(want, sizeof(want),
                 "%sT01:00:00+02:00 %sT02:00:00+02:00 %sT02:00:00+01:00 %sT03:00:00+01:00", d, d, d,
                 d);
    assert_string_equal(got, want);
    tn_pgconn_close(c);
}

/* half_hour_zone - Asia/Kolkata's +05:30 */
static void half_hour_zone(void **state)
{
    static struct fx f;
    struct tn_pgconn *c = agent();
    char d[16], got[256], want[256];

    (void)state;
    mk_tenant(&f, "Asia/Kolkata", "09:00", "10:00", "30", "0", "0", 1);
    local_date(&f, 2, d);
    find(c, &f, d, d, NULL, got, sizeof(got));
    snprintf(want, sizeof(want), "%sT09:00:00+05:30 %sT09:30:00+05:30", d, d);
    assert_string_equal(got, want);
    tn_pgconn_close(c);
}

/* ---------------------------------------------------------------- rules */

/* refused - run tool, expect want and error code; returns the answer (new) */
static json_t *refused(struct tn_pgconn *c, const struct fx *f, int contact, const char *tool,
                       const char *args, enum tn_err want, const char *code)
{
    json_t *ans = NULL;

    assert_int_equal(call(c, tool, f, contact, args, &ans, NULL), want);
    assert_non_null(ans);
    assert_string_equal(json_string_value(json_object_get(ans, "error")), code);
    return ans;
}

/* book_at - book day at hh:mm for contact; returns the error, id into id */
static enum tn_err book_at(struct tn_pgconn *c, const struct fx *f, int contact, const char *day,
                           const char *hhmm, char id[40], struct tn_booking_change *chg)
{
    char args[256];
    json_t *ans = NULL;
    enum tn_err err;

    snprintf(args, sizeof(args), "{\"service\": \"Haircut\", \"start\": \"%sT%s\"}", day, hhmm);
    err = call(c, "book", f, contact, args, &ans, chg);
    if (err == TN_OK && id != NULL)
        snprintf(id, 40, "%s",
                 json_string_value(json_object_get(json_object_get(ans, "booking"), "id")));
    json_decref(ans);
    return err;
}

/* admin_exec - one admin statement with the tenant as $1 and up to 3 more */
static void admin_exec(const struct fx *f, const char *sql, const char *a, const char *b,
                       const char *d)
{
    struct tn_pgconn *c = admin();
    const char *p[4] = {f->tenant, a, b, d};
    int n = d != NULL ? 4 : b != NULL ? 3 : 2;

    assert_int_equal(tn_pgconn_query(c, sql, n, p, NULL), TN_OK);
    tn_pgconn_close(c);
}

/* rules_notice_horizon_past - the start must be bookable now */
static void rules_notice_horizon_past(void **state)
{
    static struct fx f;
    struct tn_pgconn *c = agent();
    char d1[16], d5[16], far[16], args[256], got[512];
    json_t *ans;

    (void)state;
    mk_tenant(&f, "UTC", "09:00", "17:00", "60", "0", "4320", 1); /* 3 days notice */
    local_date(&f, 1, d1);
    local_date(&f, 5, d5);
    local_date(&f, 500, far);
    ans = refused(c, &f, 0, "book", "{\"service\":\"Haircut\",\"start\":\"2020-01-06T09:00\"}",
                  TN_EINVAL, "past");
    json_decref(ans);
    snprintf(args, sizeof(args), "{\"service\":\"Haircut\",\"start\":\"%sT09:00\"}", d1);
    ans = refused(c, &f, 0, "book", args, TN_EINVAL, "too_soon");
    assert_true(json_array_size(json_object_get(ans, "alternatives")) > 0);
    json_decref(ans);
    snprintf(args, sizeof(args), "{\"service\":\"Haircut\",\"start\":\"%sT09:00\"}", far);
    json_decref(refused(c, &f, 0, "book", args, TN_EINVAL, "too_far"));
    snprintf(args, sizeof(args), "{\"service\":\"Haircut\",\"start\":\"%sT09:20\"}", d5);
    json_decref(refused(c, &f, 0, "book", args, TN_EINVAL, "not_a_slot"));
    snprintf(args, sizeof(args), "{\"service\":\"Haircut\",\"start\":\"%sT18:00\"}", d5);
    json_decref(refused(c, &f, 0, "book", args, TN_EINVAL, "closed"));
    snprintf(args, sizeof(args), "{\"service\":\"Massage\",\"start\":\"%sT10:00\"}", d5);
    json_decref(refused(c, &f, 0, "book", args, TN_EINVAL, "unknown_service"));
    json_decref(refused(c, &f, 0, "find_slots", "{\"service\":\"Haircut\",\"from\":\"2027-02-30\"}",
                        TN_EINVAL, "bad_arguments"));
    json_decref(refused(c, &f, 0, "book", "{\"service\":\"Haircut\",\"start\":\"tomorrow\"}",
                        TN_EINVAL, "bad_arguments"));
    find(c, &f, d1, d1, NULL, got, sizeof(got));
    assert_string_equal(got, ""); /* inside the notice */
    find(c, &f, d5, d5, "\"preferences\": {\"after\": \"15:00\"}", got, sizeof(got));
    snprintf(args, sizeof(args), "%sT15:00:00+00:00 %sT16:00:00+00:00", d5, d5);
    assert_string_equal(got, args);
    tn_pgconn_close(c);
}

/* rules_holiday_and_special_hours - exceptions replace the weekly hours */
static void rules_holiday_and_special_hours(void **state)
{
    static struct fx f;
    struct tn_pgconn *c = agent();
    char d4[16], d5[16], d6[16], args[256], got[512], want[512];

    (void)state;
    mk_tenant(&f, "UTC", "09:00", "17:00", "60", "0", "0", 1);
    local_date(&f, 4, d4);
    local_date(&f, 5, d5);
    local_date(&f, 6, d6);
    admin_exec(&f, "INSERT INTO hours_exceptions (tenant_id, day, note) VALUES ($1, $2::date, $3)",
               d4, "holiday", NULL);
    admin_exec(&f,
               "INSERT INTO hours_exceptions (tenant_id, day, opens, closes)"
               " VALUES ($1, $2::date, $3::time, $4::time)",
               d5, "13:00", "15:00");
    find(c, &f, d4, d4, NULL, got, sizeof(got));
    assert_string_equal(got, "");
    snprintf(args, sizeof(args), "{\"service\":\"Haircut\",\"start\":\"%sT10:00\"}", d4);
    json_decref(refused(c, &f, 0, "book", args, TN_EINVAL, "closed"));
    find(c, &f, d5, d5, NULL, got, sizeof(got));
    snprintf(want, sizeof(want), "%sT13:00:00+00:00 %sT14:00:00+00:00", d5, d5);
    assert_string_equal(got, want);
    find(c, &f, d6, d6, "\"preferences\": {\"part_of_day\": \"afternoon\"}, \"limit\": 2", got,
         sizeof(got));
    snprintf(want, sizeof(want), "%sT12:00:00+00:00 %sT13:00:00+00:00", d6, d6);
    assert_string_equal(got, want);
    tn_pgconn_close(c);
}

/* rules_buffers_busy_holds - buffers, busy time and holds take slots away */
static void rules_buffers_busy_holds(void **state)
{
    static struct fx f;
    struct tn_pgconn *c = agent();
    struct tn_booking_who who;
    struct tn_booking_change chg;
    char d[16], got[512], want[512], id[40], t1[40], t2[40];
    json_t *args, *ans = NULL;

    (void)state;
    mk_tenant(&f, "UTC", "09:00", "17:00", "60", "30", "0", 2); /* 30 min buffer after */
    local_date(&f, 4, d);
    assert_int_equal(book_at(c, &f, 0, d, "10:00", id, NULL), TN_OK);
    find(c, &f, d, d, NULL, got, sizeof(got));
    snprintf(want, sizeof(want),
             "%sT12:00:00+00:00 %sT13:00:00+00:00 %sT14:00:00+00:00"
             " %sT15:00:00+00:00 %sT16:00:00+00:00",
             d, d, d, d, d);
    assert_string_equal(got, want);
    snprintf(t1, sizeof(t1), "%sT14:00Z", d);
    snprintf(t2, sizeof(t2), "%sT14:30Z", d);
    admin_exec(&f,
               "INSERT INTO busy_blocks (tenant_id, during, source)"
               " VALUES ($1, tstzrange($2::timestamptz, $3::timestamptz), 'manual')",
               t1, t2, NULL);
    find(c, &f, d, d, NULL, got, sizeof(got));
    snprintf(want, sizeof(want), "%sT12:00:00+00:00 %sT15:00:00+00:00 %sT16:00:00+00:00", d, d, d);
    assert_string_equal(got, want);
    /* an expired hold at 15:00 frees its time; a live one at 12:00 does not */
    snprintf(t1, sizeof(t1), "%sT15:00Z", d);
    admin_exec(&f,
               "INSERT INTO bookings (tenant_id, contact_id, service_id, during, status,"
               " hold_expires_at) SELECT $1, $2::uuid, id, tstzrange($3::timestamptz,"
               " $3::timestamptz + interval '1 hour'), 'held', now() - interval '1 minute'"
               " FROM services WHERE tenant_id = $1",
               f.contact[1], t1, NULL);
    assert_int_equal(book_at(c, &f, 0, d, "15:00", NULL, NULL), TN_OK);
    who = (struct tn_booking_who){
        .tenant_id = f.tenant, .contact_id = f.contact[1], .hold_minutes = 10};
    snprintf(want, sizeof(want), "{\"service\": \"Haircut\", \"start\": \"%sT12:00\"}", d);
    args = json_loads(want, 0, NULL);
    assert_int_equal(tn_booking_book(c, &who, args, &ans, &chg), TN_OK);
    json_decref(args);
    assert_string_equal(chg.op, ""); /* a hold is not mirrored yet */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ans, "booking"), "status")), "held");
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_object_get(ans, "booking"), "id")));
    json_decref(ans);
    assert_int_equal(book_at(c, &f, 0, d, "12:00", NULL, NULL), TN_ECONFLICT);
    snprintf(want, sizeof(want), "{\"booking_id\": \"%s\"}", id);
    args = json_loads(want, 0, NULL);
    assert_int_equal(tn_booking_confirm(c, &who, args, &ans, &chg), TN_OK);
    json_decref(args);
    json_decref(ans);
    assert_string_equal(chg.op, "book");
    tn_pgconn_close(c);
}

/* lifecycle_reschedule_cancel_list - a contact's booking through its life */
static void lifecycle_reschedule_cancel_list(void **state)
{
    static struct fx f, other;
    struct tn_pgconn *c = agent(), *a;
    struct tn_booking_change chg;
    char d[16], id[40], id2[40], args[256], got[512], want[512], v[16];
    json_t *ans = NULL;
    const char *p[1];

    (void)state;
    mk_tenant(&f, "UTC", "09:00", "12:00", "60", "0", "0", 2);
    mk_tenant(&other, "UTC", "09:00", "12:00", "60", "0", "0", 1);
    local_date(&f, 4, d);
    assert_int_equal(book_at(c, &f, 0, d, "09:00", id, &chg), TN_OK);
    assert_string_equal(chg.op, "book");
    assert_string_equal(chg.booking_id, id);
    assert_int_equal(book_at(c, &f, 0, d, "09:00", id2, &chg), TN_OK); /* repeated call */
    assert_string_equal(id2, id);
    assert_int_equal(book_at(c, &f, 1, d, "09:00", NULL, NULL), TN_ECONFLICT);
    assert_int_equal(call(c, "list", &f, 0, "{}", &ans, NULL), TN_OK);
    assert_int_equal(json_array_size(json_object_get(ans, "bookings")), 1);
    snprintf(want, sizeof(want), "%sT09:00:00+00:00", d);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(ans, "bookings"), 0), "start")),
                        want);
    json_decref(ans);
    snprintf(args, sizeof(args), "{\"booking_id\": \"%s\", \"start\": \"%sT11:00\"}", id, d);
    json_decref(refused(c, &f, 1, "reschedule", args, TN_ENOTFOUND, "not_found"));
    assert_int_equal(call(c, "reschedule", &f, 0, args, &ans, &chg), TN_OK);
    json_decref(ans);
    assert_string_equal(chg.op, "reschedule");
    find(c, &f, d, d, NULL, got, sizeof(got));
    snprintf(want, sizeof(want), "%sT09:00:00+00:00 %sT10:00:00+00:00", d, d);
    assert_string_equal(got, want);
    assert_int_equal(book_at(c, &f, 1, d, "10:00", NULL, NULL), TN_OK);
    snprintf(args, sizeof(args), "{\"booking_id\": \"%s\", \"start\": \"%sT10:00\"}", id, d);
    json_decref(refused(c, &f, 0, "reschedule", args, TN_ECONFLICT, "slot_taken"));
    snprintf(args, sizeof(args), "{\"booking_id\": \"%s\"}", id);
    json_decref(refused(c, &f, 1, "cancel", args, TN_ENOTFOUND, "not_found"));
    json_decref(refused(c, &other, 0, "cancel", args, TN_ENOTFOUND, "not_found")); /* RLS */
    assert_int_equal(call(c, "cancel", &f, 0, args, &ans, &chg), TN_OK);
    assert_string_equal(chg.op, "cancel");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ans, "booking"), "status")), "cancelled");
    json_decref(ans);
    find(c, &f, d, d, NULL, got, sizeof(got));
    snprintf(want, sizeof(want), "%sT09:00:00+00:00 %sT11:00:00+00:00", d, d);
    assert_string_equal(got, want);
    a = admin();
    p[0] = id;
    q1(a, "SELECT sync_version FROM bookings WHERE id = $1", 1, p, v, sizeof(v));
    assert_string_equal(v, "3"); /* book, reschedule, cancel */
    tn_pgconn_close(a);
    tn_pgconn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(twenty_racers_one_booking),
        cmocka_unit_test(dst_berlin),
        cmocka_unit_test(dst_london),
        cmocka_unit_test(dst_new_york),
        cmocka_unit_test(dst_night_window),
        cmocka_unit_test(half_hour_zone),
        cmocka_unit_test(rules_notice_horizon_past),
        cmocka_unit_test(rules_holiday_and_special_hours),
        cmocka_unit_test(rules_buffers_busy_holds),
        cmocka_unit_test(lifecycle_reschedule_cancel_list),
    };

    tn_log_init("test", TN_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
