/*
 * NAME
 *	ingest_entry - normalised stream entries and verdicts
 * SYNOPSIS
 *	#include "ingest.h"
 * DESCRIPTION
 *	Builds the flat field/value entries that the provider parsers hand to
 *	the HTTP layer: the envelope (type, v, tenant, trace, channel,
 *	provider, pmid, dedupe) and the data field, the compact JSON text of a
 *	payload that proto/streams/<type>.v1.json describes. Owns the result
 *	struct's memory rules: a failed batch leaves no entry behind.
 * RUNS ON
 *	loop (pure functions; no I/O).
 * DIAGNOSTICS
 *	None here: callers log the verdict's reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>
#include <tn/tn_time.h>

#include "ingest.h"

/* ingest_entry_clear - drop all entries */
void ingest_entry_clear(struct ingest_result *res)
{
    for (size_t i = 0; i < res->nentries; i++) {
        for (size_t j = 0; j < res->entries[i].nfields; j++)
            tn_free(res->entries[i].value[j]);
    }
    tn_free(res->entries);
    res->entries = NULL;
    res->nentries = 0;
}

/* ingest_result_free - release everything and zero the struct */
void ingest_result_free(struct ingest_result *res)
{
    if (res == NULL)
        return;
    ingest_entry_clear(res);
    tn_free(res->body);
    tn_free(res->headers);
    memset(res, 0, sizeof(*res));
}

/* ingest_entry_get - field lookup */
const char *ingest_entry_get(const struct ingest_entry *e, const char *name)
{
    for (size_t i = 0; i < e->nfields; i++) {
        if (strcmp(e->name[i], name) == 0)
            return e->value[i];
    }
    return NULL;
}

/* ingest_entry_verdict - set the status; a refusal carries no entries */
void ingest_entry_verdict(struct ingest_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
    if (status != 200)
        ingest_entry_clear(res);
}

/* trace_ok - "00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>" */
static bool trace_ok(const char *t)
{
    if (strlen(t) != 55 || strncmp(t, "00-", 3) != 0 || t[35] != '-' || t[52] != '-')
        return false;
    for (size_t i = 3; i < 55; i++) {
        if (i == 35 || i == 52)
            continue;
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    }
    return true;
}

/* ingest_entry_trace_new - the caller's W3C traceparent when well-formed
 * (version 00), else a new one, sampled */
char *ingest_entry_trace_new(const struct ingest_request *req)
{
    char *out;

    if (req->trace != NULL && trace_ok(req->trace))
        return tn_xstrdup(req->trace);
    out = tn_xmalloc(TN_TRACEPARENT_SIZE);
    tn_traceparent_new(out);
    return out;
}

/* dump - new compact JSON text of data (jansson's buffer API: no libc
 * free). One pass into a stack buffer and an exact copy; a second, sized
 * pass only when the text did not fit. (A fixed 4 KB heap buffer per entry
 * cost more: a request that large makes glibc consolidate its fast bins.) */
static char *dump(const json_t *data)
{
    char tmp[2048], *out;
    size_t n = json_dumpb(data, tmp, sizeof(tmp), JSON_COMPACT);

    if (n == 0)
        return NULL;
    out = tn_xmalloc(n + 1);
    if (n <= sizeof(tmp))
        memcpy(out, tmp, n);
    else if (json_dumpb(data, out, n, JSON_COMPACT) != n)
        goto fail;
    out[n] = '\0';
    return out;
fail:
    tn_free(out);
    return NULL;
}

/* entry_add - append a new, empty entry for stream */
static struct ingest_entry *entry_add(struct ingest_result *res, const char *stream)
{
    struct ingest_entry *e;

    res->entries = tn_xrealloc(res->entries, (res->nentries + 1) * sizeof(*res->entries));
    e = &res->entries[res->nentries++];
    memset(e, 0, sizeof(*e));
    e->stream = stream;
    return e;
}

/* field - append name=copy of value */
static void field(struct ingest_entry *e, const char *name, const char *value)
{
    TN_ASSERT(e->nfields < INGEST_MAX_FIELDS);
    e->name[e->nfields] = name;
    e->value[e->nfields] = tn_xstrdup(value);
    e->nfields++;
}

/* envelope - the fields every entry of ingest carries, up to pmid */
static void envelope(struct ingest_entry *e, const char *type, const char *v,
                     const struct ingest_meta *m, const char *pmid)
{
    field(e, TN_F_TYPE, type);
    field(e, TN_F_V, v);
    field(e, TN_F_TENANT, m->route->tenant);
    field(e, TN_F_TRACE, m->trace);
    field(e, TN_F_CHANNEL, m->route->channel);
    field(e, TN_F_PROVIDER, m->provider);
    field(e, TN_F_PMID, pmid);
}

/* ingest_entry_push_inbound - one inbound.message on tern:in */
enum tn_err ingest_entry_push_inbound(struct ingest_result *res, const struct ingest_meta *m,
                                      const char *pmid, const char *dedupe, json_t *data)
{
    struct ingest_entry *e;
    char *text = dump(data);

    json_decref(data);
    if (text == NULL)
        return TN_EPROTO;
    e = entry_add(res, TN_STREAM_IN);
    envelope(e, TN_TYPE_INBOUND_MESSAGE, TN_V_INBOUND_MESSAGE, m, pmid);
    field(e, TN_F_DEDUPE, dedupe);
    e->name[e->nfields] = TN_F_DATA;
    e->value[e->nfields++] = text;
    return TN_OK;
}

/* ingest_entry_push_status - one delivery.status on tern:status */
enum tn_err ingest_entry_push_status(struct ingest_result *res, const struct ingest_meta *m,
                                     const char *pmid, const char *status, const char *dedupe,
                                     json_t *data)
{
    struct ingest_entry *e;
    const char *outbound = json_string_value(json_object_get(data, "outbound_id"));
    char *text = dump(data);
    char *outcopy = outbound != NULL ? tn_xstrdup(outbound) : NULL;

    json_decref(data);
    if (text == NULL) {
        tn_free(outcopy);
        return TN_EPROTO;
    }
    e = entry_add(res, TN_STREAM_STATUS);
    envelope(e, TN_TYPE_DELIVERY_STATUS, TN_V_DELIVERY_STATUS, m, pmid);
    field(e, TN_F_STATUS, status);
    if (outcopy != NULL)
        field(e, TN_F_OUTBOUND, outcopy);
    field(e, TN_F_DEDUPE, dedupe);
    e->name[e->nfields] = TN_F_DATA;
    e->value[e->nfields++] = text;
    tn_free(outcopy);
    return TN_OK;
}

/* ingest_entry_push_cal - one cal.request on tern:cal */
enum tn_err ingest_entry_push_cal(struct ingest_result *res, const char *tenant, const char *trace,
                                  const char *request_id, const char *dedupe, json_t *data)
{
    struct ingest_entry *e;
    char *text = dump(data);

    json_decref(data);
    if (text == NULL)
        return TN_EPROTO;
    e = entry_add(res, TN_STREAM_CAL);
    field(e, TN_F_TYPE, TN_TYPE_CAL_REQUEST);
    field(e, TN_F_V, TN_V_CAL_REQUEST);
    field(e, TN_F_TENANT, tenant);
    field(e, TN_F_TRACE, trace);
    field(e, TN_F_REQUEST, request_id);
    field(e, TN_F_DEDUPE, dedupe);
    e->name[e->nfields] = TN_F_DATA;
    e->value[e->nfields++] = text;
    return TN_OK;
}

/* ingest_entry_data_new - the identity every payload repeats */
json_t *ingest_entry_data_new(const struct ingest_meta *m)
{
    json_t *d = json_object();

    TN_ASSERT(d != NULL);
    json_object_set_new(d, "tenant", json_string(m->route->tenant));
    json_object_set_new(d, "channel", json_string(m->route->channel));
    json_object_set_new(d, "provider", json_string(m->provider));
    return d;
}

/* ingest_entry_set_str - checked string member */
enum tn_err ingest_entry_set_str(json_t *obj, const char *key, const char *s, size_t n)
{
    json_t *v;

    if (s == NULL)
        return TN_OK;
    if (n == SIZE_MAX)
        n = strlen(s);
    if (memchr(s, '\0', n) != NULL)
        return TN_EPROTO;
    v = json_stringn(s, n); /* NULL: not UTF-8 */
    if (v == NULL)
        return TN_EPROTO;
    json_object_set_new(obj, key, v);
    return TN_OK;
}

/* ingest_entry_set_time - RFC 3339 member */
void ingest_entry_set_time(json_t *obj, const char *key, int64_t ms)
{
    char buf[40];

    json_object_set_new(obj, key, json_string(tn_time_rfc3339(ms, buf, sizeof(buf))));
}

/* ingest_entry_status_norm - the schema's status enum */
const char *ingest_entry_status_norm(const char *s)
{
    static const char *const known[] = {
        "accepted",    "scheduled",
        "canceled",    "queued",
        "sending",     "sent",
        "delivered",   "read",
        "played",      "failed",
        "undelivered", "receiving",
        "received",    "partially_delivered",
        "deleted",
    };

    for (size_t i = 0; s != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(s, known[i]) == 0)
            return known[i];
    }
    return "unknown";
}

/* ingest_entry_ctype_is - media type match, parameters ignored */
bool ingest_entry_ctype_is(const char *header, const char *type)
{
    size_t n = strlen(type);

    if (header == NULL)
        return false;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, type, n) != 0)
        return false;
    header += n;
    while (*header == ' ' || *header == '\t')
        header++;
    return *header == '\0' || *header == ';';
}

/* ingest_entry_epoch_ms - seconds (string or integer) to ms */
int64_t ingest_entry_epoch_ms(const json_t *v, int64_t fallback)
{
    long long secs = -1;
    const char *s;
    char *end = NULL;

    if (json_is_integer(v)) {
        secs = json_integer_value(v);
    } else if (json_is_string(v)) {
        s = json_string_value(v);
        if (*s >= '0' && *s <= '9') {
            secs = strtoll(s, &end, 10);
            if (*end != '\0')
                secs = -1;
        }
    }
    if (secs <= 0 || secs > 100000000000LL)
        return fallback;
    return (int64_t)secs * 1000;
}
