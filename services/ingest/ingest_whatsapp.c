/*
 * NAME
 *	ingest_whatsapp - WhatsApp Cloud API webhooks
 * SYNOPSIS
 *	#include "ingest.h"
 *
 *	ingest_whatsapp_challenge(req, lookup, arg, &res);  GET
 *	ingest_whatsapp_post(req, lookup, arg, &res);       POST
 * DESCRIPTION
 *	GET answers Meta's verification challenge. POST verifies
 *	X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret,
 *	compared in constant time) and fans out every entry[].changes[].value:
 *	messages[] become inbound.message entries on tern:in, statuses[]
 *	delivery.status entries on tern:status (proto/streams).
 *
 *	Routing and the signature. One Meta app has one callback URL and one
 *	app secret, and a POST may carry changes for several of its phone
 *	numbers. The secret is stored per channel (a tenant may bring its own
 *	app), so the body must be parsed to find the phone_number_ids before
 *	the signature can be checked: jansson parses it (size-capped by the
 *	HTTP layer, fuzzed), every phone_number_id of a "messages" change is
 *	looked up (one unknown id: 404 for the whole batch), and the signature
 *	must verify under the secret of EVERY channel the batch routes to
 *	(in practice: they share the app's secret). Only then is anything
 *	normalised. Changes of other fields (account_update, template status)
 *	carry no phone_number_id and are acknowledged and ignored.
 *
 *	Unknown message types are kept: message_type "unknown" with the
 *	provider's raw_type and the raw item.
 * RUNS ON
 *	loop (pure: no I/O).
 * DIAGNOSTICS
 *	res->status and res->reason; nothing is logged here, and nothing a
 *	sender wrote (text, phone numbers) is ever put in a reason.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "ingest.h"

#define WA_SIG_PREFIX "sha256="
#define WA_CHALLENGE_MAX 256

/* The routes one POST resolves to, one per "messages" change. */
struct wa_batch {
    json_t *root;
    const json_t **values; /* borrowed change values, parallel to routes */
    const struct ingest_route **routes;
    size_t n;
};

/* jstr - string member or NULL */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* phone - new "+<digits>" for a WhatsApp id of digits, else a copy */
static char *phone(const char *wa_id)
{
    size_t n = strlen(wa_id);
    char *out;

    if (n == 0 || strspn(wa_id, "0123456789") != n)
        return tn_xstrdup(wa_id); /* a business-scoped id: keep it as sent */
    out = tn_xmalloc(n + 2);
    out[0] = '+';
    memcpy(out + 1, wa_id, n + 1);
    return out;
}

/* set_phone - obj[key] = phone(wa_id) when wa_id is a string */
static void set_phone(json_t *obj, const char *key, const char *wa_id)
{
    char *p;

    if (wa_id == NULL)
        return;
    p = phone(wa_id);
    json_object_set_new(obj, key, json_string(p));
    tn_free(p);
}

/* copy_str - dst[dkey] = src[skey] when it is a string */
static void copy_str(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
    json_t *v = json_object_get(src, skey);

    if (json_is_string(v))
        json_object_set(dst, dkey, v);
}

/* copy_num - dst[dkey] = src[skey] when it is a number */
static void copy_num(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
    json_t *v = json_object_get(src, skey);

    if (json_is_number(v))
        json_object_set(dst, dkey, v);
}

/*
 * GET: the verification challenge.
 */

/* challenge_ok - Meta's challenge is a short token; refuse anything that
 * could turn our echo into a reflected page */
static bool challenge_ok(const char *c)
{
    size_t n = strlen(c);

    return n > 0 && n <= WA_CHALLENGE_MAX &&
           strspn(c, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") == n;
}

/* token_matches - constant-time check of the presented verify token */
static bool token_matches(const char *token, ingest_lookup_fn *lookup, void *arg)
{
    unsigned char h[TN_SHA256_LEN];
    const struct ingest_route *r;
    char *hex;
    size_t n = strlen(token);

    tn_sha256(token, n, h);
    hex = tn_hex_encode(h, sizeof(h));
    r = lookup(arg, INGEST_LOOKUP_WHATSAPP_VERIFY, hex);
    tn_free(hex);
    return r != NULL && r->verify_token != NULL && strlen(r->verify_token) == n &&
           tn_ct_equal(r->verify_token, token, n);
}

/* ingest_whatsapp_challenge - hub.mode / hub.verify_token / hub.challenge */
void ingest_whatsapp_challenge(const struct ingest_request *req, ingest_lookup_fn *lookup,
                               void *arg, struct ingest_result *res)
{
    struct ingest_form q;
    const char *mode, *token, *challenge;
    enum tn_err err;

    err = ingest_form_parse(req->query != NULL ? req->query : "",
                            req->query != NULL ? strlen(req->query) : 0, &q);
    if (err != TN_OK) {
        ingest_entry_verdict(res, 400, "query.malformed");
        goto out;
    }
    mode = ingest_form_get(&q, "hub.mode");
    token = ingest_form_get(&q, "hub.verify_token");
    challenge = ingest_form_get(&q, "hub.challenge");
    if (mode == NULL || strcmp(mode, "subscribe") != 0 || token == NULL ||
        !token_matches(token, lookup, arg)) {
        ingest_entry_verdict(res, 403, "challenge.refused");
        goto out;
    }
    if (challenge == NULL || !challenge_ok(challenge)) {
        ingest_entry_verdict(res, 400, "challenge.malformed");
        goto out;
    }
    ingest_entry_verdict(res, 200, "challenge.ok");
    res->content_type = "text/plain";
    res->body = tn_xstrdup(challenge);
    res->body_len = strlen(challenge);
out:
    ingest_form_free(&q);
}

/*
 * POST: routing and signature.
 */

/* batch_add - remember one routed change value */
static void batch_add(struct wa_batch *b, const json_t *value, const struct ingest_route *r)
{
    b->values = tn_xrealloc(b->values, (b->n + 1) * sizeof(*b->values));
    b->routes = tn_xrealloc(b->routes, (b->n + 1) * sizeof(*b->routes));
    b->values[b->n] = value;
    b->routes[b->n] = r;
    b->n++;
}

/* route_change - look up one change; 0 ok (or ignored), else HTTP status */
static int route_change(struct wa_batch *b, const json_t *change, ingest_lookup_fn *lookup,
                        void *arg)
{
    const json_t *value = json_object_get(change, "value");
    const char *field = jstr(change, "field");
    const char *pnid;
    const struct ingest_route *r;

    if (!json_is_object(change) || field == NULL)
        return 400;
    if (strcmp(field, "messages") != 0)
        return 0; /* other subscriptions: acknowledged, not ours to route */
    pnid = jstr(json_object_get(value, "metadata"), "phone_number_id");
    if (!json_is_object(value) || pnid == NULL)
        return 400;
    r = lookup(arg, INGEST_LOOKUP_WHATSAPP, pnid);
    if (r == NULL || r->secret == NULL)
        return 404;
    batch_add(b, value, r);
    return 0;
}

/* route_all - resolve every change of every entry; 0 or an HTTP status */
static int route_all(struct wa_batch *b, ingest_lookup_fn *lookup, void *arg)
{
    const json_t *entries = json_object_get(b->root, "entry");
    const json_t *entry, *changes, *change;
    size_t i, j;
    int st;

    if (!json_is_object(b->root) || !json_is_array(entries))
        return 400;
    json_array_foreach(entries, i, entry)
    {
        changes = json_object_get(entry, "changes");
        if (!json_is_array(changes))
            return 400;
        json_array_foreach(changes, j, change)
        {
            st = route_change(b, change, lookup, arg);
            if (st != 0)
                return st;
        }
    }
    return 0;
}

/* parse_sig - the 32 bytes of "sha256=<64 hex>"; new *mac */
static bool parse_sig(const char *hdr, unsigned char **mac)
{
    size_t plen = strlen(WA_SIG_PREFIX), len;

    *mac = NULL;
    if (hdr == NULL || strncmp(hdr, WA_SIG_PREFIX, plen) != 0)
        return false;
    if (tn_hex_decode(hdr + plen, strlen(hdr + plen), mac, &len) != TN_OK)
        return false;
    if (len != TN_SHA256_LEN) {
        tn_free(*mac);
        *mac = NULL;
        return false;
    }
    return true;
}

/* sig_verifies - HMAC under every routed channel's secret must match */
static bool sig_verifies(const struct wa_batch *b, const struct ingest_request *req,
                         const unsigned char *mac)
{
    unsigned char want[TN_SHA256_LEN];
    bool ok = true;

    for (size_t i = 0; i < b->n; i++) {
        if (i > 0 && strcmp(b->routes[i]->secret, b->routes[i - 1]->secret) == 0)
            continue;
        tn_hmac_sha256(b->routes[i]->secret, strlen(b->routes[i]->secret), req->body, req->body_len,
                       want);
        ok = tn_ct_equal(want, mac, TN_SHA256_LEN) && ok;
    }
    return ok;
}

/*
 * POST: normalisation.
 */

/* media_of - the media object of a message whose payload object is p */
static json_t *media_of(const json_t *p)
{
    json_t *m = json_object();

    copy_str(m, "id", p, "id");
    copy_str(m, "url", p, "url");
    copy_str(m, "mime_type", p, "mime_type");
    copy_str(m, "sha256", p, "sha256");
    copy_str(m, "caption", p, "caption");
    copy_str(m, "filename", p, "filename");
    if (json_is_boolean(json_object_get(p, "voice")))
        json_object_set(m, "voice", json_object_get(p, "voice"));
    return m;
}

/* set_media - data.media = [media of payload] */
static void set_media(json_t *d, const json_t *payload)
{
    json_t *arr = json_array();

    json_array_append_new(arr, media_of(payload));
    json_object_set_new(d, "media", arr);
}

/* set_location - data.location */
static void set_location(json_t *d, const json_t *loc)
{
    json_t *l = json_object();

    copy_num(l, "latitude", loc, "latitude");
    copy_num(l, "longitude", loc, "longitude");
    copy_str(l, "name", loc, "name");
    copy_str(l, "address", loc, "address");
    copy_str(l, "url", loc, "url");
    json_object_set_new(d, "location", l);
}

/* set_contacts - data.contacts = [{name, phones[]}] */
static void set_contacts(json_t *d, const json_t *contacts)
{
    json_t *out = json_array(), *c, *phones, *ph;
    const json_t *item, *p;
    size_t i, j;

    json_array_foreach(contacts, i, item)
    {
        c = json_object();
        copy_str(c, "name", json_object_get(item, "name"), "formatted_name");
        phones = json_array();
        json_array_foreach(json_object_get(item, "phones"), j, p)
        {
            ph = json_object_get(p, "phone");
            if (json_is_string(ph))
                json_array_append(phones, ph);
        }
        json_object_set_new(c, "phones", phones);
        json_array_append_new(out, c);
    }
    json_object_set_new(d, "contacts", out);
}

/* set_interactive - interactive button_reply / list_reply */
static void set_interactive(json_t *d, const json_t *ia)
{
    const char *kind = jstr(ia, "type");
    json_t *reply = json_object();
    const json_t *src = kind != NULL ? json_object_get(ia, kind) : NULL;

    json_object_set_new(reply, "kind", json_string(kind != NULL ? kind : "unknown"));
    copy_str(reply, "id", src, "id");
    copy_str(reply, "title", src, "title");
    copy_str(reply, "description", src, "description");
    copy_str(d, "text", src, "title");
    json_object_set_new(d, "reply", reply);
}

/* set_button - a template quick-reply button */
static void set_button(json_t *d, const json_t *btn)
{
    json_t *reply = json_object();

    json_object_set_new(reply, "kind", json_string("button"));
    copy_str(reply, "payload", btn, "payload");
    copy_str(reply, "title", btn, "text");
    copy_str(d, "text", btn, "text");
    json_object_set_new(d, "reply", reply);
}

/* set_reaction - reaction{message_id, emoji}; no emoji: reaction removed */
static void set_reaction(json_t *d, const json_t *re)
{
    json_t *r = json_object();

    copy_str(r, "message_id", re, "message_id");
    copy_str(r, "emoji", re, "emoji");
    json_object_set_new(d, "reaction", r);
}

/* set_content - message_type plus its content; unknown types kept */
static void set_content(json_t *d, const json_t *msg, const char *type)
{
    const json_t *p = json_object_get(msg, type);
    const char *mt = "unknown";

    if (strcmp(type, "text") == 0) {
        mt = "text";
        copy_str(d, "text", p, "body");
    } else if (strcmp(type, "audio") == 0) {
        mt = json_is_true(json_object_get(p, "voice")) ? "voice" : "audio";
        set_media(d, p);
    } else if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
               strcmp(type, "document") == 0 || strcmp(type, "sticker") == 0) {
        mt = type;
        set_media(d, p);
    } else if (strcmp(type, "location") == 0) {
        mt = "location";
        set_location(d, p);
    } else if (strcmp(type, "contacts") == 0) {
        mt = "contacts";
        set_contacts(d, p);
    } else if (strcmp(type, "interactive") == 0) {
        mt = "interactive";
        set_interactive(d, p);
    } else if (strcmp(type, "button") == 0) {
        mt = "button";
        set_button(d, p);
    } else if (strcmp(type, "reaction") == 0) {
        mt = "reaction";
        set_reaction(d, p);
    }
    json_object_set_new(d, "message_type", json_string(mt));
    json_object_set_new(d, "raw_type", json_string(type));
}

/* sender_name - profile name of the contact whose wa_id is from */
static const char *sender_name(const json_t *value, const char *from)
{
    const json_t *c;
    size_t i;

    json_array_foreach(json_object_get(value, "contacts"), i, c)
    {
        const char *id = jstr(c, "wa_id");

        if (id != NULL && strcmp(id, from) == 0)
            return jstr(json_object_get(c, "profile"), "name");
    }
    return NULL;
}

/* set_context - reply-to: the quoted (usually our outbound) message */
static void set_context(json_t *d, const json_t *msg)
{
    const json_t *ctx = json_object_get(msg, "context");
    json_t *c;

    if (jstr(ctx, "id") == NULL)
        return;
    c = json_object();
    copy_str(c, "provider_message_id", ctx, "id");
    set_phone(c, "from", jstr(ctx, "from"));
    json_object_set_new(d, "context", c);
}

/* push_message - one messages[] item to tern:in */
static enum tn_err push_message(struct ingest_result *res, const struct ingest_meta *m,
                                const struct ingest_request *req, const json_t *value,
                                const json_t *msg)
{
    const char *id = jstr(msg, "id"), *from = jstr(msg, "from"), *type = jstr(msg, "type");
    const char *bizphone = jstr(json_object_get(value, "metadata"), "display_phone_number");
    json_t *d;
    char *dedupe;
    enum tn_err err;

    if (id == NULL || *id == '\0' || from == NULL || *from == '\0' || type == NULL)
        return TN_EPROTO;
    d = ingest_entry_data_new(m);
    json_object_set_new(d, "provider_message_id", json_string(id));
    json_object_set_new(d, "transport", json_string("whatsapp"));
    set_phone(d, "sender", from);
    if (sender_name(value, from) != NULL)
        json_object_set_new(d, "sender_name", json_string(sender_name(value, from)));
    set_phone(d, "recipient", bizphone);
    ingest_entry_set_time(d, "received_at",
                          ingest_entry_epoch_ms(json_object_get(msg, "timestamp"), req->now_ms));
    ingest_entry_set_time(d, "ingested_at", req->now_ms);
    set_content(d, msg, type);
    set_context(d, msg);
    json_object_set(d, "raw", (json_t *)msg);
    dedupe = tn_xmalloc(strlen(id) + 4);
    snprintf(dedupe, strlen(id) + 4, "wa:%s", id);
    err = ingest_entry_push_inbound(res, m, id, dedupe, d);
    tn_free(dedupe);
    return err;
}

/* status_errors - errors[] as [{code, title, detail}] */
static json_t *status_errors(const json_t *errs)
{
    json_t *out = json_array(), *e;
    const json_t *item;
    size_t i;

    json_array_foreach(errs, i, item)
    {
        e = json_object();
        copy_num(e, "code", item, "code");
        copy_str(e, "title", item, "title");
        copy_str(e, "message", item, "message");
        copy_str(e, "detail", json_object_get(item, "error_data"), "details");
        json_array_append_new(out, e);
    }
    return out;
}

/* push_status - one statuses[] item to tern:status */
static enum tn_err push_status(struct ingest_result *res, const struct ingest_meta *m,
                               const struct ingest_request *req, const json_t *st)
{
    const char *id = jstr(st, "id"), *raw = jstr(st, "status");
    const char *norm;
    json_t *d;
    char *dedupe;
    size_t n;
    enum tn_err err;

    if (id == NULL || *id == '\0' || raw == NULL || *raw == '\0')
        return TN_EPROTO;
    norm = ingest_entry_status_norm(raw);
    d = ingest_entry_data_new(m);
    json_object_set_new(d, "provider_message_id", json_string(id));
    json_object_set_new(d, "status", json_string(norm));
    json_object_set_new(d, "raw_status", json_string(raw));
    ingest_entry_set_time(d, "timestamp",
                          ingest_entry_epoch_ms(json_object_get(st, "timestamp"), req->now_ms));
    ingest_entry_set_time(d, "ingested_at", req->now_ms);
    set_phone(d, "recipient", jstr(st, "recipient_id"));
    json_object_set_new(d, "errors", status_errors(json_object_get(st, "errors")));
    copy_str(d, "outbound_id", st, "biz_opaque_callback_data");
    json_object_set(d, "raw", (json_t *)st);
    n = strlen(id) + strlen(raw) + 8;
    dedupe = tn_xmalloc(n);
    snprintf(dedupe, n, "wa:st:%s:%s", id, raw);
    err = ingest_entry_push_status(res, m, id, norm, dedupe, d);
    tn_free(dedupe);
    return err;
}

/* fan_out_value - every message and status of one change value */
static enum tn_err fan_out_value(struct ingest_result *res, const struct ingest_meta *m,
                                 const struct ingest_request *req, const json_t *value)
{
    const json_t *msgs = json_object_get(value, "messages");
    const json_t *sts = json_object_get(value, "statuses");
    const json_t *item;
    enum tn_err err = TN_OK;
    size_t i;

    if ((msgs != NULL && !json_is_array(msgs)) || (sts != NULL && !json_is_array(sts)))
        return TN_EPROTO;
    json_array_foreach(msgs, i, item)
    {
        err = push_message(res, m, req, value, item);
        if (err != TN_OK)
            return err;
    }
    json_array_foreach(sts, i, item)
    {
        err = push_status(res, m, req, item);
        if (err != TN_OK)
            return err;
    }
    return TN_OK;
}

/* ingest_whatsapp_post - verify, route, fan out */
void ingest_whatsapp_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                          struct ingest_result *res)
{
    struct wa_batch b = {0};
    unsigned char *mac = NULL;
    char *trace = NULL;
    struct ingest_meta m = {.provider = TN_PROVIDER_WHATSAPP};
    int st;

    if (!parse_sig(req->signature, &mac)) {
        ingest_entry_verdict(res, 401, "signature.missing");
        goto out;
    }
    if (!ingest_entry_ctype_is(req->content_type, "application/json")) {
        ingest_entry_verdict(res, 415, "content_type.unsupported");
        goto out;
    }
    b.root = json_loadb(req->body != NULL ? req->body : "", req->body_len, 0, NULL);
    if (b.root == NULL) {
        ingest_entry_verdict(res, 400, "json.malformed");
        goto out;
    }
    st = route_all(&b, lookup, arg);
    if (st != 0) {
        ingest_entry_verdict(res, st, st == 404 ? "channel.unknown" : "json.unexpected");
        goto out;
    }
    if (b.n > 0 && !sig_verifies(&b, req, mac)) {
        ingest_entry_verdict(res, 401, "signature.mismatch");
        goto out;
    }
    trace = ingest_entry_trace_new(req);
    m.trace = trace;
    for (size_t i = 0; i < b.n; i++) {
        m.route = b.routes[i];
        if (fan_out_value(res, &m, req, b.values[i]) != TN_OK) {
            ingest_entry_verdict(res, 400, "json.unexpected");
            goto out;
        }
    }
    ingest_entry_verdict(res, 200, b.n > 0 ? "accepted" : "ignored");
out:
    tn_free(trace);
    tn_free(mac);
    tn_free(b.values);
    tn_free(b.routes);
    json_decref(b.root);
}
