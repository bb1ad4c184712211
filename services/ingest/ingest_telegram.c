/*
 * NAME
 *	ingest_telegram - Telegram Bot API webhooks
 * SYNOPSIS
 *	#include "ingest.h"
 *
 *	ingest_telegram_post(req, lookup, arg, &res);  POST /webhooks/telegram/{channel}
 * DESCRIPTION
 *	Checks X-Telegram-Bot-Api-Secret-Token (the secret_token given to
 *	setWebhook) in constant time, then turns the Update into one
 *	inbound.message on tern:in. Messages (and their edited, channel-post
 *	and business variants) are normalised: text, voice, audio, photo,
 *	video, document, sticker, location/venue, contact; a callback_query
 *	(inline keyboard tap) becomes an interactive reply; any other update
 *	or content kind is kept as message_type "unknown" with its raw_type.
 *
 *	Telegram has no global message id: provider_message_id is
 *	"<chat id>:<message_id>", and the dedupe key is the bot's update_id,
 *	"tg:<channel>:<update_id>" (a channel is one bot). Ids may exceed 32
 *	bits; jansson keeps them as long long.
 * RUNS ON
 *	loop (pure: no I/O).
 * DIAGNOSTICS
 *	res->status and res->reason.
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

/* Update members that carry a Message. */
static const char *const msg_kinds[] = {
    "message",          "edited_message",          "channel_post", "edited_channel_post",
    "business_message", "edited_business_message",
};

/* Message members that name a content kind we do not normalise. */
static const char *const other_content[] = {
    "animation",        "video_note",     "poll",     "dice",       "game",
    "invoice",          "story",          "giveaway", "paid_media", "new_chat_members",
    "left_chat_member", "pinned_message",
};

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

/* set_id - obj[key] = decimal text of an integer member, if any */
static void set_id(json_t *obj, const char *key, const json_t *v)
{
    char buf[32];

    if (!json_is_integer(v))
        return;
    snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
    json_object_set_new(obj, key, json_string(buf));
}

/* file_media - media[] with one Telegram file object */
static void file_media(json_t *d, const json_t *file, bool voice, const json_t *msg)
{
    json_t *arr = json_array(), *m = json_object();

    copy_str(m, "id", file, "file_id");
    copy_str(m, "mime_type", file, "mime_type");
    copy_str(m, "filename", file, "file_name");
    copy_num(m, "duration", file, "duration");
    copy_num(m, "size", file, "file_size");
    copy_str(m, "caption", msg, "caption");
    if (voice)
        json_object_set_new(m, "voice", json_true());
    json_array_append_new(arr, m);
    json_object_set_new(d, "media", arr);
}

/* set_contact - contact{phone_number, first_name, last_name} */
static void set_contact(json_t *d, const json_t *c)
{
    json_t *arr = json_array(), *o = json_object(), *phones = json_array();
    const char *first = json_string_value(json_object_get(c, "first_name"));
    const char *last = json_string_value(json_object_get(c, "last_name"));
    char *name;
    size_t n;

    if (first != NULL) {
        n = strlen(first) + (last != NULL ? strlen(last) + 1 : 0) + 1;
        name = tn_xmalloc(n);
        snprintf(name, n, "%s%s%s", first, last != NULL ? " " : "", last != NULL ? last : "");
        json_object_set_new(o, "name", json_string(name));
        tn_free(name);
    }
    if (json_is_string(json_object_get(c, "phone_number")))
        json_array_append(phones, json_object_get(c, "phone_number"));
    json_object_set_new(o, "phones", phones);
    set_id(o, "user_id", json_object_get(c, "user_id"));
    json_array_append_new(arr, o);
    json_object_set_new(d, "contacts", arr);
}

/* set_location - location or venue */
static void set_location(json_t *d, const json_t *msg)
{
    const json_t *venue = json_object_get(msg, "venue");
    const json_t *loc =
        venue != NULL ? json_object_get(venue, "location") : json_object_get(msg, "location");
    json_t *l = json_object();

    copy_num(l, "latitude", loc, "latitude");
    copy_num(l, "longitude", loc, "longitude");
    copy_str(l, "name", venue, "title");
    copy_str(l, "address", venue, "address");
    json_object_set_new(d, "location", l);
}

/* raw_kind - the content kind of a message we do not normalise */
static const char *raw_kind(const json_t *msg)
{
    for (size_t i = 0; i < sizeof(other_content) / sizeof(other_content[0]); i++) {
        if (json_object_get(msg, other_content[i]) != NULL)
            return other_content[i];
    }
    return "message";
}

/* set_content - message_type, raw_type and the content of a Message */
static void set_content(json_t *d, const json_t *msg)
{
    const json_t *photo = json_object_get(msg, "photo");
    const char *mt = "unknown", *raw;

    if (json_is_string(json_object_get(msg, "text"))) {
        mt = "text";
        copy_str(d, "text", msg, "text");
    } else if (json_object_get(msg, "voice") != NULL) {
        mt = "voice";
        file_media(d, json_object_get(msg, "voice"), true, msg);
    } else if (json_object_get(msg, "audio") != NULL) {
        mt = "audio";
        file_media(d, json_object_get(msg, "audio"), false, msg);
    } else if (json_array_size(photo) > 0) {
        mt = "image"; /* sizes ascend: the last one is the largest */
        file_media(d, json_array_get(photo, json_array_size(photo) - 1), false, msg);
    } else if (json_object_get(msg, "video") != NULL) {
        mt = "video";
        file_media(d, json_object_get(msg, "video"), false, msg);
    } else if (json_object_get(msg, "sticker") != NULL) {
        mt = "sticker";
        file_media(d, json_object_get(msg, "sticker"), false, msg);
    } else if (json_object_get(msg, "document") != NULL) {
        mt = "document";
        file_media(d, json_object_get(msg, "document"), false, msg);
    } else if (json_object_get(msg, "location") != NULL || json_object_get(msg, "venue") != NULL) {
        mt = "location";
        set_location(d, msg);
    } else if (json_object_get(msg, "contact") != NULL) {
        mt = "contacts";
        set_contact(d, json_object_get(msg, "contact"));
    }
    raw = strcmp(mt, "unknown") == 0 ? raw_kind(msg) : mt;
    if (strcmp(mt, "image") == 0)
        raw = "photo";
    if (strcmp(mt, "contacts") == 0)
        raw = "contact";
    json_object_set_new(d, "message_type", json_string(mt));
    json_object_set_new(d, "raw_type", json_string(raw));
}

/* set_sender_name - "First Last", else @username, else the chat title */
static void set_sender_name(json_t *d, const json_t *from, const json_t *chat)
{
    const char *first = json_string_value(json_object_get(from, "first_name"));
    const char *last = json_string_value(json_object_get(from, "last_name"));
    char *name;
    size_t n;

    if (first == NULL) {
        copy_str(d, "sender_name", from, "username");
        if (json_object_get(d, "sender_name") == NULL)
            copy_str(d, "sender_name", chat, "title");
        return;
    }
    n = strlen(first) + (last != NULL ? strlen(last) + 1 : 0) + 1;
    name = tn_xmalloc(n);
    snprintf(name, n, "%s%s%s", first, last != NULL ? " " : "", last != NULL ? last : "");
    json_object_set_new(d, "sender_name", json_string(name));
    tn_free(name);
}

/* message_data - fill d from a Message; *pmid new "<chat>:<message_id>" */
static enum tn_err message_data(json_t *d, const json_t *msg, bool edited, int64_t now, char **pmid)
{
    const json_t *chat = json_object_get(msg, "chat"), *from = json_object_get(msg, "from");
    const json_t *reply = json_object_get(msg, "reply_to_message");
    long long chat_id, mid;
    char buf[64];
    json_t *c;

    if (!json_is_integer(json_object_get(chat, "id")) ||
        !json_is_integer(json_object_get(msg, "message_id")))
        return TN_EPROTO;
    chat_id = json_integer_value(json_object_get(chat, "id"));
    mid = json_integer_value(json_object_get(msg, "message_id"));
    snprintf(buf, sizeof(buf), "%lld:%lld", chat_id, mid);
    *pmid = tn_xstrdup(buf);
    json_object_set_new(d, "provider_message_id", json_string(buf));
    set_id(d, "sender", json_object_get(chat, "id"));
    set_id(d, "sender_user_id", json_object_get(from, "id"));
    set_sender_name(d, from, chat);
    ingest_entry_set_time(d, "received_at",
                          ingest_entry_epoch_ms(json_object_get(msg, "date"), now));
    if (edited)
        json_object_set_new(d, "edited", json_true());
    set_content(d, msg);
    if (json_is_integer(json_object_get(reply, "message_id"))) {
        snprintf(buf, sizeof(buf), "%lld:%lld", chat_id,
                 (long long)json_integer_value(json_object_get(reply, "message_id")));
        c = json_object();
        json_object_set_new(c, "provider_message_id", json_string(buf));
        json_object_set_new(d, "context", c);
    }
    return TN_OK;
}

/* callback_data - an inline keyboard tap as an interactive reply */
static enum tn_err callback_data(json_t *d, const json_t *cq, int64_t now, char **pmid)
{
    const json_t *msg = json_object_get(cq, "message"), *from = json_object_get(cq, "from");
    const char *id = json_string_value(json_object_get(cq, "id"));
    json_t *reply = json_object();
    char buf[160];

    if (id == NULL) {
        json_decref(reply);
        return TN_EPROTO;
    }
    snprintf(buf, sizeof(buf), "cq:%.150s", id);
    *pmid = tn_xstrdup(buf);
    json_object_set_new(d, "provider_message_id", json_string(buf));
    set_id(d, "sender", json_object_get(json_object_get(msg, "chat"), "id"));
    if (json_object_get(d, "sender") == NULL)
        set_id(d, "sender", json_object_get(from, "id"));
    set_id(d, "sender_user_id", json_object_get(from, "id"));
    set_sender_name(d, from, NULL);
    ingest_entry_set_time(d, "received_at", now);
    json_object_set_new(reply, "kind", json_string("callback_query"));
    copy_str(reply, "id", cq, "data");
    json_object_set_new(d, "reply", reply);
    json_object_set_new(d, "message_type", json_string("interactive"));
    json_object_set_new(d, "raw_type", json_string("callback_query"));
    return TN_OK;
}

/* other_data - an update kind we do not normalise, kept as unknown */
static void other_data(json_t *d, const json_t *update, long long uid, int64_t now, char **pmid)
{
    const char *kind = "update", *key;
    json_t *v;
    char buf[64], raw[96];

    json_object_foreach((json_t *)update, key, v)
    {
        if (strcmp(key, "update_id") != 0) {
            kind = key;
            break;
        }
    }
    snprintf(buf, sizeof(buf), "update:%lld", uid);
    *pmid = tn_xstrdup(buf);
    json_object_set_new(d, "provider_message_id", json_string(buf));
    ingest_entry_set_time(d, "received_at", now);
    json_object_set_new(d, "message_type", json_string("unknown"));
    snprintf(raw, sizeof(raw), "update:%.80s", kind);
    json_object_set_new(d, "raw_type", json_string(raw));
}

/* update_data - dispatch on the update's kind */
static enum tn_err update_data(json_t *d, const json_t *update, long long uid, int64_t now,
                               char **pmid)
{
    for (size_t i = 0; i < sizeof(msg_kinds) / sizeof(msg_kinds[0]); i++) {
        const json_t *msg = json_object_get(update, msg_kinds[i]);

        if (msg != NULL)
            return message_data(d, msg, strncmp(msg_kinds[i], "edited_", 7) == 0, now, pmid);
    }
    if (json_object_get(update, "callback_query") != NULL)
        return callback_data(d, json_object_get(update, "callback_query"), now, pmid);
    other_data(d, update, uid, now, pmid);
    return TN_OK;
}

/* normalise - one Update to one entry */
static enum tn_err normalise(struct ingest_result *res, const struct ingest_request *req,
                             const struct ingest_route *route, const json_t *update)
{
    struct ingest_meta m = {.route = route, .provider = TN_PROVIDER_TELEGRAM};
    const json_t *uidv = json_object_get(update, "update_id");
    json_t *d;
    char *pmid = NULL, *trace = NULL, dedupe[192];
    long long uid;
    enum tn_err err;

    if (!json_is_object(update) || !json_is_integer(uidv) || json_integer_value(uidv) < 0)
        return TN_EPROTO;
    uid = json_integer_value(uidv);
    d = ingest_entry_data_new(&m);
    json_object_set_new(d, "transport", json_string("telegram"));
    ingest_entry_set_time(d, "ingested_at", req->now_ms);
    err = update_data(d, update, uid, req->now_ms, &pmid);
    if (err != TN_OK) {
        json_decref(d);
        goto out;
    }
    json_object_set(d, "raw", (json_t *)update);
    trace = ingest_entry_trace_new(req);
    m.trace = trace;
    snprintf(dedupe, sizeof(dedupe), "tg:%.150s:%lld", route->channel, uid);
    err = ingest_entry_push_inbound(res, &m, pmid, dedupe, d);
out:
    tn_free(pmid);
    tn_free(trace);
    return err;
}

/* secret_ok - constant-time compare of the secret token header */
static bool secret_ok(const char *hdr, const char *secret)
{
    size_t n = strlen(secret);

    return hdr != NULL && n > 0 && strlen(hdr) == n && tn_ct_equal(hdr, secret, n);
}

/* ingest_telegram_post - route, check the secret, normalise */
void ingest_telegram_post(const struct ingest_request *req, ingest_lookup_fn *lookup, void *arg,
                          struct ingest_result *res)
{
    const struct ingest_route *route;
    json_t *root = NULL;

    route = req->channel != NULL ? lookup(arg, INGEST_LOOKUP_TELEGRAM, req->channel) : NULL;
    if (route == NULL || route->secret == NULL) {
        ingest_entry_verdict(res, 404, "channel.unknown");
        goto out;
    }
    if (req->signature == NULL || *req->signature == '\0') {
        ingest_entry_verdict(res, 401, "signature.missing");
        goto out;
    }
    if (!secret_ok(req->signature, route->secret)) {
        ingest_entry_verdict(res, 401, "signature.mismatch");
        goto out;
    }
    if (!ingest_entry_ctype_is(req->content_type, "application/json")) {
        ingest_entry_verdict(res, 415, "content_type.unsupported");
        goto out;
    }
    root = json_loadb(req->body != NULL ? req->body : "", req->body_len, 0, NULL);
    if (root == NULL) {
        ingest_entry_verdict(res, 400, "json.malformed");
        goto out;
    }
    if (normalise(res, req, route, root) != TN_OK) {
        ingest_entry_verdict(res, 400, "json.unexpected");
        goto out;
    }
    ingest_entry_verdict(res, 200, "accepted");
out:
    json_decref(root);
}
