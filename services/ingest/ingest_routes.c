/*
 * NAME
 *	ingest_routes - tern-ingest's routing cache
 * DESCRIPTION
 *	A snapshot of every enabled channel, keyed "<provider>:<key>" and
 *	sorted for bsearch, so that a webhook is routed without touching
 *	Postgres in the request path. The snapshot is rebuilt on the
 *	threadpool every refresh period from tern_routing() (a SECURITY
 *	DEFINER function: tern_ingest has no table access), with each
 *	channel's sealed secrets opened there; the loop swaps it in. A failed
 *	refresh keeps the previous snapshot.
 *
 *	Keys: whatsapp:<phone_number_id>, whatsapp-verify:<hex sha256 of the
 *	verify token>, twilio:<channel id>, telegram:<channel id>, and
 *	google-calendar:<push channel id> for each live Google Calendar push
 *	channel (tern_calendar_channels(), 0012: the account, and the hash of
 *	the channel's token, which is all a push needs to be checked).
 *	A channel whose secrets do not open (wrong or missing master key)
 *	stays routable but has no secret, so every signed request to it is
 *	refused with 401; the count is logged with "ingest.routes_loaded".
 * SECURITY
 *	Plaintext secrets live only in this process's memory and are wiped
 *	when a snapshot is released.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_loop.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>
#include <tn/tn_secrets.h>

#include "ingest_srv.h"

#define ROUTES_SQL                                                                                 \
    "SELECT tenant_id, channel_id, kind, external_address, secrets_sealed, enabled"                \
    " FROM tern_routing()"
#define CHANNELS_SQL                                                                               \
    "SELECT tenant_id, account_id, channel_id, token_hash FROM tern_calendar_channels()"

struct route_row {
    char *key; /* "<provider>:<key>" */
    struct ingest_route r;
};

struct snapshot {
    struct route_row *rows; /* sorted by key */
    size_t n;
    size_t channels;
    size_t unreadable; /* channels whose sealed secrets did not open */
    char **strings;    /* every owned string, wiped on release */
    size_t nstrings, capstrings;
};

struct ingest_routes {
    uv_loop_t *loop;
    struct tn_pg *pg;
    const struct tn_keyring *keys;
    uv_timer_t timer;
    int64_t refresh_ms;
    struct snapshot *cur;
    struct snapshot *next; /* being built on the threadpool */
    bool running;
    bool stopped;
    bool loaded;
    bool timer_open;
};

/* snap_str - a copy of s owned by the snapshot */
static char *snap_str(struct snapshot *s, const char *v)
{
    if (v == NULL)
        return NULL;
    if (s->nstrings == s->capstrings) {
        s->capstrings = s->capstrings ? s->capstrings * 2 : 64;
        s->strings = tn_xrealloc(s->strings, s->capstrings * sizeof(*s->strings));
    }
    return s->strings[s->nstrings++] = tn_xstrdup(v);
}

/* snap_free - wipe every string and release */
static void snap_free(struct snapshot *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nstrings; i++) {
        tn_wipe(s->strings[i], strlen(s->strings[i]));
        tn_free(s->strings[i]);
    }
    tn_free(s->strings);
    tn_free(s->rows);
    tn_free(s);
}

/* snap_add - append one key for a channel; route strings already owned */
static void snap_add(struct snapshot *s, size_t *cap, const char *provider, const char *key,
                     const struct ingest_route *r)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s:%s", provider, key);
    if (s->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        s->rows = tn_xrealloc(s->rows, *cap * sizeof(*s->rows));
    }
    s->rows[s->n].key = snap_str(s, buf);
    s->rows[s->n].r = *r;
    s->n++;
}

/* open_secrets - the channel's secrets from their bytea text ("\\x" + hex) */
static json_t *open_secrets(const struct tn_keyring *keys, const char *tenant, const char *channel,
                            const char *bytea)
{
    if (bytea == NULL || strncmp(bytea, "\\x", 2) != 0)
        return NULL;
    return tn_secrets_open(keys, tenant, channel, bytea + 2);
}

/* secret_get - obj[name] as a snapshot string, or NULL */
static const char *secret_get(struct snapshot *s, json_t *obj, const char *name)
{
    return snap_str(s, json_string_value(json_object_get(obj, name)));
}

/* snap_add_channel - the keys of one routing row */
static void snap_add_channel(struct snapshot *s, size_t *cap, const struct tn_keyring *keys,
                             const struct pg_result *res, int i)
{
    const char *tenant = tn_pg_result_value(res, i, 0);
    const char *channel = tn_pg_result_value(res, i, 1);
    const char *kind = tn_pg_result_value(res, i, 2);
    const char *addr = tn_pg_result_value(res, i, 3);
    const char *sealed = tn_pg_result_value(res, i, 4);
    json_t *sec = open_secrets(keys, tenant, channel, sealed);
    struct ingest_route r = {.tenant = snap_str(s, tenant), .channel = snap_str(s, channel)};

    s->channels++;
    if (sealed != NULL && sec == NULL)
        s->unreadable++; /* the channel then refuses every signed webhook */
    if (strcmp(kind, "whatsapp") == 0) {
        r.secret = secret_get(s, sec, "app_secret");
        r.verify_token = secret_get(s, sec, "verify_token");
        snap_add(s, cap, INGEST_LOOKUP_WHATSAPP, addr, &r);
        if (r.verify_token != NULL) {
            unsigned char h[TN_SHA256_LEN];
            tn_sha256(r.verify_token, strlen(r.verify_token), h);
            char *hex = tn_hex_encode(h, sizeof(h));
            snap_add(s, cap, INGEST_LOOKUP_WHATSAPP_VERIFY, hex, &r);
            tn_free(hex);
        }
    } else if (strncmp(kind, "twilio_", 7) == 0) {
        r.secret = secret_get(s, sec, "auth_token");
        r.account = secret_get(s, sec, "account_sid");
        snap_add(s, cap, INGEST_LOOKUP_TWILIO, channel, &r);
    } else if (strcmp(kind, "telegram") == 0) {
        r.secret = secret_get(s, sec, "secret_token");
        snap_add(s, cap, INGEST_LOOKUP_TELEGRAM, channel, &r);
    }
    json_decref(sec);
}

/* snap_add_push - the key of one Google push channel row */
static void snap_add_push(struct snapshot *s, size_t *cap, const struct pg_result *res, int i)
{
    struct ingest_route r = {
        .tenant = snap_str(s, tn_pg_result_value(res, i, 0)),
        .account = snap_str(s, tn_pg_result_value(res, i, 1)),
        .channel = snap_str(s, tn_pg_result_value(res, i, 2)),
        .secret = snap_str(s, tn_pg_result_value(res, i, 3)),
    };

    if (r.channel != NULL)
        snap_add(s, cap, INGEST_LOOKUP_GOOGLE_CALENDAR, r.channel, &r);
}

/* row_cmp - qsort/bsearch order of route rows */
static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct route_row *)a)->key, ((const struct route_row *)b)->key);
}

/* load_work - read tern_routing() into r->next. Runs on: threadpool. */
static enum tn_err load_work(struct tn_pgconn *c, void *arg)
{
    struct ingest_routes *r = arg;
    struct pg_result *res = NULL;
    size_t cap = 0;
    enum tn_err err = tn_pgconn_query(c, ROUTES_SQL, 0, NULL, &res);

    if (err != TN_OK)
        return err;
    r->next = tn_xcalloc(1, sizeof(*r->next));
    for (int i = 0; i < tn_pg_result_rows(res); i++) {
        const char *enabled = tn_pg_result_value(res, i, 5);
        if (enabled != NULL && strcmp(enabled, "t") == 0)
            snap_add_channel(r->next, &cap, r->keys, res, i);
    }
    tn_pg_result_free(res);
    res = NULL;
    err = tn_pgconn_query(c, CHANNELS_SQL, 0, NULL, &res);
    if (err != TN_OK)
        return err; /* load_done releases r->next */
    for (int i = 0; i < tn_pg_result_rows(res); i++)
        snap_add_push(r->next, &cap, res, i);
    tn_pg_result_free(res);
    qsort(r->next->rows, r->next->n, sizeof(*r->next->rows), row_cmp);
    return TN_OK;
}

/* load_done - swap in the new snapshot. Runs on: loop. */
static void load_done(enum tn_err err, void *arg)
{
    struct ingest_routes *r = arg;

    r->running = false;
    if (err != TN_OK) {
        snap_free(r->next);
        r->next = NULL;
        tn_log_warn(NULL, "ingest.routes_failed", TN_KV_ERR(err));
        return;
    }
    if (!r->loaded || (r->cur != NULL && r->cur->channels != r->next->channels))
        tn_log_info(NULL, "ingest.routes_loaded", TN_KV_INT("channels", r->next->channels),
                    TN_KV_INT("unreadable", r->next->unreadable));
    snap_free(r->cur);
    r->cur = r->next;
    r->next = NULL;
    r->loaded = true;
}

/* refresh - start one load unless one runs. Runs on: loop. */
static void refresh(uv_timer_t *t)
{
    struct ingest_routes *r = t->data;

    if (r->running || r->stopped)
        return;
    if (tn_pg_submit(r->pg, load_work, load_done, r) == TN_OK)
        r->running = true;
}

struct ingest_routes *ingest_routes_new(uv_loop_t *loop, const char *pg_dsn,
                                        const struct tn_keyring *keys, int64_t refresh_ms)
{
    struct ingest_routes *r = tn_xcalloc(1, sizeof(*r));

    r->loop = loop;
    r->keys = keys;
    r->refresh_ms = refresh_ms;
    r->pg = tn_pg_new(loop, pg_dsn, 1);
    tn_pg_set_timeouts(r->pg, 5, 10000);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    uv_timer_start(&r->timer, refresh, 0, (uint64_t)refresh_ms);
    return r;
}

const struct ingest_route *ingest_routes_lookup(void *arg, const char *provider, const char *key)
{
    struct ingest_routes *r = arg;
    char buf[512];

    if (r->cur == NULL || key == NULL)
        return NULL;
    if ((size_t)snprintf(buf, sizeof(buf), "%s:%s", provider, key) >= sizeof(buf))
        return NULL;
    struct route_row probe = {.key = buf};
    const struct route_row *hit = bsearch(&probe, r->cur->rows, r->cur->n, sizeof(probe), row_cmp);
    return hit ? &hit->r : NULL;
}

bool ingest_routes_loaded(const struct ingest_routes *r)
{
    return r->loaded;
}

size_t ingest_routes_count(const struct ingest_routes *r)
{
    return r->cur ? r->cur->channels : 0;
}

void ingest_routes_stop(struct ingest_routes *r)
{
    r->stopped = true;
    uv_timer_stop(&r->timer);
    tn_pg_cancel(r->pg);
}

bool ingest_routes_busy(const struct ingest_routes *r)
{
    return tn_pg_busy(r->pg) > 0;
}

/* timer_closed - the last step of ingest_routes_free. Runs on: loop. */
static void timer_closed(uv_handle_t *h)
{
    tn_free(h->data);
}

void ingest_routes_free(struct ingest_routes *r)
{
    if (r == NULL)
        return;
    snap_free(r->cur);
    snap_free(r->next);
    r->cur = r->next = NULL;
    tn_pg_free(r->pg);
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}
