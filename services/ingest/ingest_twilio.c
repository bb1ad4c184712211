/*
 * NAME
 *	ingest_twilio - Twilio Programmable Messaging webhooks (SMS, WhatsApp)
 * SYNOPSIS
 *	#include "ingest.h"
 *
 *	ingest_twilio_post(req, lookup, arg, &res);   POST /webhooks/twilio/{channel}
 * DESCRIPTION
 *	Checks X-Twilio-Signature exactly as Twilio computes it
 *	(reference/protocols.md 2.2): the public URL as configured in Twilio
 *	(scheme, host, port, path and query), then every POST parameter sorted
 *	by name (byte order; a repeated name contributes each distinct value,
 *	sorted) as name followed by value, HMAC-SHA1 under the channel's Auth
 *	Token, standard base64. For a JSON body the URL carries bodySHA256
 *	(hex SHA-256 of the raw body): the signature is over the URL alone and
 *	the body hash is checked too. Like Twilio's own validators, a URL
 *	that fails is tried once more with its default port added or removed,
 *	since load balancers add or strip :443.
 *
 *	A request with MessageStatus (other than received/receiving) is a
 *	status callback and becomes a delivery.status on tern:status; anything
 *	else is an inbound message (inbound.message on tern:in), with its
 *	media (NumMedia, MediaUrlN, MediaContentTypeN). The Tern outbound id
 *	comes from the "outbound" query parameter that tern-sender puts on the
 *	StatusCallback URL. The answer is always empty TwiML: replies are sent
 *	asynchronously through the REST API.
 * RUNS ON
 *	loop (pure: no I/O).
 * DIAGNOSTICS
 *	res->status and res->reason.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "ingest.h"

#define TW_MAX_MEDIA 10 /* Twilio's own limit per message */
#define TW_WA_PREFIX "whatsapp:"

/* One request being worked on. */
struct tw_req {
    const struct ingest_request *req;
    const struct ingest_route *route;
    struct ingest_form params; /* the POST parameters (form or JSON body) */
    struct ingest_form query;  /* the URL's query parameters */
    bool json;                 /* JSON-body variant (bodySHA256) */
};

/*
 * Signature.
 */

/* param_cmp - qsort order: name, then value, byte-wise */
static int param_cmp(const void *a, const void *b)
{
    const struct ingest_param *x = *(const struct ingest_param *const *)a;
    const struct ingest_param *y = *(const struct ingest_param *const *)b;
    int c = strcmp(x->name, y->name);

    return c != 0 ? c : strcmp(x->value, y->value);
}

/* signed_data - url followed by the sorted, de-duplicated name+value pairs */
static void signed_data(const char *url, const struct ingest_form *f, struct tn_buf *out)
{
    const struct ingest_param **sorted = tn_xcalloc(f->n + 1, sizeof(*sorted));

    for (size_t i = 0; i < f->n; i++)
        sorted[i] = &f->p[i];
    qsort(sorted, f->n, sizeof(*sorted), param_cmp);
    tn_buf_adds(out, url);
    for (size_t i = 0; i < f->n; i++) {
        if (i > 0 && param_cmp(&sorted[i], &sorted[i - 1]) == 0)
            continue; /* repeated name with the same value counts once */
        tn_buf_adds(out, sorted[i]->name);
        tn_buf_adds(out, sorted[i]->value);
    }
    tn_free(sorted);
}

/* ingest_twilio_sign - base64(HMAC-SHA1(token, url + sorted params)) */
char *ingest_twilio_sign(const char *token, const char *url, const struct ingest_form *params)
{
    struct tn_buf data;
    unsigned char mac[TN_SHA1_LEN];

    tn_buf_init(&data, 0);
    signed_data(url, params, &data);
    tn_hmac_sha1(token, strlen(token), data.data != NULL ? data.data : "", data.len, mac);
    tn_buf_free(&data);
    return tn_base64_encode(mac, sizeof(mac), false);
}

/* sig_matches - the expected signature equals sig, compared in constant time */
static bool sig_matches(const char *token, const char *url, const struct ingest_form *f,
                        const char *sig)
{
    char *b64 = ingest_twilio_sign(token, url, f);
    bool ok = strlen(sig) == strlen(b64) && tn_ct_equal(sig, b64, strlen(b64));

    tn_free(b64);
    return ok;
}

/* port_variant - new URL with the scheme's default port added (absent) or
 * removed (present); NULL when neither applies */
static char *port_variant(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *port = NULL, *alt = NULL, *out = NULL;
    const char *def;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto out;
    def = strcmp(scheme, "https") == 0 ? "443" : strcmp(scheme, "http") == 0 ? "80" : NULL;
    if (def == NULL)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_NO_PORT)
        curl_url_set(u, CURLUPART_PORT, def, 0);
    else if (port != NULL && strcmp(port, def) == 0)
        curl_url_set(u, CURLUPART_PORT, NULL, 0);
    else
        goto out;
    if (curl_url_get(u, CURLUPART_URL, &alt, 0) == CURLUE_OK)
        out = tn_xstrdup(alt);
out:
    curl_free(alt);
    curl_free(port);
    curl_free(scheme);
    curl_url_cleanup(u);
    return out;
}

/* body_hash_ok - bodySHA256 query parameter equals hex(SHA-256(body)) */
static bool body_hash_ok(const struct tw_req *t)
{
    const char *want = ingest_form_get(&t->query, "bodySHA256");
    unsigned char h[TN_SHA256_LEN];
    char *hex;
    bool ok;

    if (want == NULL)
        return false;
    tn_sha256(t->req->body != NULL ? t->req->body : "", t->req->body_len, h);
    hex = tn_hex_encode(h, sizeof(h));
    ok = strlen(want) == strlen(hex) && tn_ct_equal(want, hex, strlen(hex));
    tn_free(hex);
    return ok;
}

/* verify - the signature over the URL as given, then its port variant */
static bool verify(const struct tw_req *t)
{
    static const struct ingest_form none = {0};
    const struct ingest_form *f = t->json ? &none : &t->params;
    const char *tok = t->route->secret, *sig = t->req->signature;
    char *alt;
    bool ok;

    if (t->json && !body_hash_ok(t))
        return false;
    if (sig_matches(tok, t->req->url, f, sig))
        return true;
    alt = port_variant(t->req->url);
    ok = alt != NULL && sig_matches(tok, alt, f, sig);
    tn_free(alt);
    return ok;
}

/*
 * Parsing the request.
 */

/* url_query - decode the query of the public URL into t->query */
static enum tn_err url_query(struct tw_req *t)
{
    CURLU *u = curl_url();
    char *q = NULL;
    enum tn_err err = TN_EPROTO;
    CURLUcode rc;

    memset(&t->query, 0, sizeof(t->query));
    if (u == NULL || curl_url_set(u, CURLUPART_URL, t->req->url, 0) != CURLUE_OK)
        goto out;
    rc = curl_url_get(u, CURLUPART_QUERY, &q, 0);
    if (rc == CURLUE_NO_QUERY)
        err = TN_OK;
    else if (rc == CURLUE_OK)
        err = ingest_form_parse(q, strlen(q), &t->query);
out:
    curl_free(q);
    curl_url_cleanup(u);
    return err;
}

/* json_params - the members of a JSON object body as parameters */
static enum tn_err json_params(struct tw_req *t)
{
    json_t *root = json_loadb(t->req->body != NULL ? t->req->body : "", t->req->body_len, 0, NULL);
    const char *key;
    json_t *v;
    struct ingest_form *f = &t->params;
    enum tn_err err = TN_OK;

    memset(f, 0, sizeof(*f));
    if (!json_is_object(root)) {
        err = TN_EPROTO;
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        if (!json_is_string(v) || f->n >= INGEST_FORM_MAX_PARAMS)
            continue; /* only text parameters mean anything to us */
        f->p = tn_xrealloc(f->p, (f->n + 1) * sizeof(*f->p));
        f->p[f->n].name = tn_xstrdup(key);
        f->p[f->n].value = tn_xstrndup(json_string_value(v), json_string_length(v));
        f->n++;
    }
out:
    json_decref(root);
    return err;
}

/*
 * Normalisation.
 */

/* address - borrowed address without the "whatsapp:" prefix */
static const char *address(const char *a)
{
    size_t n = strlen(TW_WA_PREFIX);

    if (a != NULL && strncmp(a, TW_WA_PREFIX, n) == 0)
        return a + n;
    return a;
}

/* raw_params - the parameters as a JSON object (first value of a name) */
static json_t *raw_params(const struct ingest_form *f)
{
    json_t *o = json_object();

    for (size_t i = 0; i < f->n; i++) {
        if (json_object_get(o, f->p[i].name) == NULL)
            json_object_set_new(o, f->p[i].name, json_string(f->p[i].value));
    }
    return o;
}

/* media_type - message_type for a media content type */
static const char *media_type(const char *ctype)
{
    if (ctype == NULL)
        return "document";
    if (strncmp(ctype, "image/", 6) == 0)
        return "image";
    if (strncmp(ctype, "audio/", 6) == 0)
        return "audio";
    if (strncmp(ctype, "video/", 6) == 0)
        return "video";
    return "document";
}

/* set_media - media[] from NumMedia / MediaUrlN / MediaContentTypeN */
static enum tn_err set_media(json_t *d, const struct ingest_form *f, const char **first_ctype)
{
    const char *nm = ingest_form_get(f, "NumMedia");
    char *end = NULL, key[48];
    long n = 0;
    json_t *arr, *m;

    *first_ctype = NULL;
    if (nm != NULL) {
        n = strtol(nm, &end, 10);
        if (*nm == '\0' || *end != '\0' || n < 0 || n > TW_MAX_MEDIA)
            return TN_EPROTO;
    }
    if (n == 0)
        return TN_OK;
    arr = json_array();
    json_object_set_new(d, "media", arr);
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "MediaUrl%ld", i);
        if (ingest_form_get(f, key) == NULL)
            return TN_EPROTO;
        m = json_object();
        json_object_set_new(m, "url", json_string(ingest_form_get(f, key)));
        snprintf(key, sizeof(key), "MediaContentType%ld", i);
        ingest_entry_set_str(m, "mime_type", ingest_form_get(f, key), SIZE_MAX);
        if (i == 0)
            *first_ctype = ingest_form_get(f, key);
        json_array_append_new(arr, m);
    }
    return TN_OK;
}

/* set_location - Latitude/Longitude (+ Address, Label) when both parse */
static void set_location(json_t *d, const struct ingest_form *f)
{
    const char *la = ingest_form_get(f, "Latitude"), *lo = ingest_form_get(f, "Longitude");
    char *e1 = NULL, *e2 = NULL;
    double lat, lon;
    json_t *l;

    if (la == NULL || lo == NULL)
        return;
    lat = strtod(la, &e1);
    lon = strtod(lo, &e2);
    if (e1 == la || *e1 != '\0' || e2 == lo || *e2 != '\0' || lat < -90 || lat > 90 || lon < -180 ||
        lon > 180)
        return;
    l = json_object();
    json_object_set_new(l, "latitude", json_real(lat));
    json_object_set_new(l, "longitude", json_real(lon));
    ingest_entry_set_str(l, "address", ingest_form_get(f, "Address"), SIZE_MAX);
    ingest_entry_set_str(l, "name", ingest_form_get(f, "Label"), SIZE_MAX);
    json_object_set_new(d, "location", l);
}

/* message_type - Twilio's MessageType if it is one of ours, else derived */
static const char *message_type(const struct ingest_form *f, const json_t *d,
                                const char *first_ctype)
{
    static const char *const known[] = {"text",     "image",    "video",      "document",
                                        "audio",    "location", "sticker",    "button",
                                        "contacts", "reaction", "interactive"};
    const char *mt = ingest_form_get(f, "MessageType");

    if (mt != NULL) {
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcmp(mt, known[i]) == 0)
                return known[i];
        }
        return "unknown";
    }
    if (json_object_get(d, "media") != NULL)
        return media_type(first_ctype);
    if (json_object_get(d, "location") != NULL)
        return "location";
    return "text";
}

/* set_extras - button reply, quoted message, opt-out keyword */
static void set_extras(json_t *d, const struct ingest_form *f)
{
    const char *bt = ingest_form_get(f, "ButtonText"), *bp = ingest_form_get(f, "ButtonPayload");
    const char *quoted = ingest_form_get(f, "OriginalRepliedMessageSid");
    json_t *o;

    if (bt != NULL || bp != NULL) {
        o = json_object();
        json_object_set_new(o, "kind", json_string("button"));
        ingest_entry_set_str(o, "title", bt, SIZE_MAX);
        ingest_entry_set_str(o, "payload", bp, SIZE_MAX);
        json_object_set_new(d, "reply", o);
    }
    if (quoted != NULL && *quoted != '\0') {
        o = json_object();
        json_object_set_new(o, "provider_message_id", json_string(quoted));
        json_object_set_new(d, "context", o);
    }
    ingest_entry_set_str(d, "opt_out", ingest_form_get(f, "OptOutType"), SIZE_MAX);
}

/* message_sid - MessageSid or its legacy aliases */
static const char *message_sid(const struct ingest_form *f)
{
    const char *sid = ingest_form_get(f, "MessageSid");

    if (sid == NULL)
        sid = ingest_form_get(f, "SmsMessageSid");
    if (sid == NULL)
        sid = ingest_form_get(f, "SmsSid");
    return sid != NULL && *sid != '\0' ? sid : NULL;
}

/* push_inbound - one inbound message */
static enum tn_err push_inbound(struct ingest_result *res, const struct ingest_meta *m,
                                const struct tw_req *t, const char *sid)
{
    const struct ingest_form *f = &t->params;
    const char *from = ingest_form_get(f, "From"), *body = ingest_form_get(f, "Body");
    const char *ctype = NULL, *mt;
    json_t *d = ingest_entry_data_new(m);
    char dedupe[128];

    if (from == NULL || *address(from) == '\0' || set_media(d, f, &ctype) != TN_OK) {
        json_decref(d);
        return TN_EPROTO;
    }
    json_object_set_new(d, "provider_message_id", json_string(sid));
    json_object_set_new(d, "transport", json_string(address(from) != from ? "whatsapp" : "sms"));
    json_object_set_new(d, "sender", json_string(address(from)));
    ingest_entry_set_str(d, "sender_name", ingest_form_get(f, "ProfileName"), SIZE_MAX);
    ingest_entry_set_str(d, "recipient", address(ingest_form_get(f, "To")), SIZE_MAX);
    ingest_entry_set_time(d, "received_at", t->req->now_ms);
    ingest_entry_set_time(d, "ingested_at", t->req->now_ms);
    if (body != NULL && *body != '\0')
        json_object_set_new(d, "text", json_string(body));
    set_location(d, f);
    set_extras(d, f);
    mt = message_type(f, d, ctype);
    json_object_set_new(d, "message_type", json_string(mt));
    ingest_entry_set_str(d, "raw_type", ingest_form_get(f, "MessageType"), SIZE_MAX);
    if (json_object_get(d, "raw_type") == NULL)
        json_object_set_new(d, "raw_type", json_string(ctype != NULL ? "mms" : "sms"));
    json_object_set_new(d, "raw", raw_params(f));
    snprintf(dedupe, sizeof(dedupe), "tw:%.100s", sid);
    return ingest_entry_push_inbound(res, m, sid, dedupe, d);
}

/* status_errors - ErrorCode/ErrorMessage as [{code, title}] */
static json_t *status_errors(const struct ingest_form *f)
{
    const char *code = ingest_form_get(f, "ErrorCode");
    json_t *arr = json_array(), *e;
    char *end = NULL;
    long long c;

    if (code == NULL || *code == '\0')
        return arr;
    c = strtoll(code, &end, 10);
    e = json_object();
    if (*end == '\0')
        json_object_set_new(e, "code", json_integer(c));
    ingest_entry_set_str(e, "title", ingest_form_get(f, "ErrorMessage"), SIZE_MAX);
    json_array_append_new(arr, e);
    return arr;
}

/* push_status - one status callback */
static enum tn_err push_status(struct ingest_result *res, const struct ingest_meta *m,
                               const struct tw_req *t, const char *sid, const char *raw)
{
    const struct ingest_form *f = &t->params;
    const char *norm = ingest_entry_status_norm(raw);
    json_t *d = ingest_entry_data_new(m);
    char dedupe[192];

    json_object_set_new(d, "provider_message_id", json_string(sid));
    json_object_set_new(d, "status", json_string(norm));
    json_object_set_new(d, "raw_status", json_string(raw));
    ingest_entry_set_time(d, "timestamp", t->req->now_ms);
    ingest_entry_set_time(d, "ingested_at", t->req->now_ms);
    ingest_entry_set_str(d, "recipient", address(ingest_form_get(f, "To")), SIZE_MAX);
    json_object_set_new(d, "errors", status_errors(f));
    ingest_entry_set_str(d, "outbound_id", ingest_form_get(&t->query, "outbound"), SIZE_MAX);
    json_object_set_new(d, "raw", raw_params(f));
    snprintf(dedupe, sizeof(dedupe), "tw:st:%.100s:%.40s", sid, raw);
    return ingest_entry_push_status(res, m, sid, norm, dedupe, d);
}

/* normalise - decide between status callback and inbound message */
static enum tn_err normalise(struct ingest_result *res, const struct tw_req *t)
{
    struct ingest_meta m = {.route = t->route, .provider = TN_PROVIDER_TWILIO};
    const char *sid = message_sid(&t->params);
    const char *st = ingest_form_get(&t->params, "MessageStatus");
    char *trace;
    enum tn_err err;

    if (sid == NULL)
        return TN_EPROTO;
    trace = ingest_entry_trace_new(t->req);
    m.trace = trace;
    if (st != NULL && *st != '\0' && strcmp(st, "received") != 0 && strcmp(st, "receiving") != 0)
        err = push_status(res, &m, t, sid, st);
    else
        err = push_inbound(res, &m, t, sid);
    tn_free(trace);
    return err;
}

/* parse - URL query and parameters; 0 or an HTTP status */
static int parse(struct tw_req *t)
{
    const struct ingest_request *req = t->req;

    if (url_query(t) != TN_OK)
        return 400;
    if (ingest_entry_ctype_is(req->content_type, "application/x-www-form-urlencoded"))
        return ingest_form_parse(req->body != NULL ? req->body : "", req->body_len, &t->params) ==
                       TN_OK
                   ? 0
                   : 400;
    if (ingest_entry_ctype_is(req->content_type, "application/json") &&
        ingest_form_get(&t->query, "bodySHA256") != NULL) {
        t->json = true;
        return json_params(t) == TN_OK ? 0 : 400;
    }
    return 415;
}

/* ingest_twilio_post - route, verify, normalise */
void ingest_twilio_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                        struct ingest_result *res)
{
    struct tw_req t = {.req = req};
    const char *acct;
    int st;

    t.route = req->channel != NULL ? lookup(arg, INGEST_LOOKUP_TWILIO, req->channel) : NULL;
    if (t.route == NULL || t.route->secret == NULL || req->url == NULL) {
        ingest_entry_verdict(res, 404, "channel.unknown");
        goto out;
    }
    if (req->signature == NULL || *req->signature == '\0') {
        ingest_entry_verdict(res, 401, "signature.missing");
        goto out;
    }
    st = parse(&t);
    if (st != 0) {
        ingest_entry_verdict(res, st, st == 415 ? "content_type.unsupported" : "form.malformed");
        goto out;
    }
    if (!verify(&t)) {
        ingest_entry_verdict(res, 401, "signature.mismatch");
        goto out;
    }
    acct = ingest_form_get(&t.params, "AccountSid");
    if (t.route->account != NULL && (acct == NULL || strcmp(acct, t.route->account) != 0)) {
        ingest_entry_verdict(res, 403, "account.mismatch");
        goto out;
    }
    if (normalise(res, &t) != TN_OK) {
        ingest_entry_verdict(res, 400, "form.unexpected");
        goto out;
    }
    ingest_entry_verdict(res, 200, "accepted");
    res->content_type = "text/xml";
    res->body = tn_xstrdup(INGEST_TWIML_EMPTY);
    res->body_len = strlen(INGEST_TWIML_EMPTY);
out:
    ingest_form_free(&t.params);
    ingest_form_free(&t.query);
}
