/*
 * test_ingest_parse - the webhook parsers of tern-ingest against provider-shaped
 * fixtures: the verdict, the entries (stream, envelope fields) and the data
 * JSON each fixture must produce, and the bad-input matrix where every refusal
 * has its status and produces no entry at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_proto.h>

#include "ingest_fixture.h"

#define MAX_WANT 3

struct want_entry {
    const char *stream;
    const char *tenant; /* NULL: FX_TENANT */
    const char *channel;
    const char *pmid;
    const char *dedupe;
    const char *status;   /* delivery.status field */
    const char *outbound; /* delivery.status field, NULL: absent */
    const char *data;     /* JSON object: every member must equal data's */
};

struct good_case {
    const char *provider, *file;
    size_t n;
    struct want_entry e[MAX_WANT];
};

#define WA_ID "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
#define WA_CTX "wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
#define WA_IN(data_)                                                                               \
    {                                                                                              \
        .stream = TN_STREAM_IN, .channel = "wa-main", .pmid = WA_ID, .dedupe = "wa:" WA_ID,        \
        .data = data_                                                                              \
    }
#define WA_COMMON                                                                                  \
    "\"provider\":\"whatsapp\",\"transport\":\"whatsapp\",\"sender\":\"+16505551234\","            \
    "\"sender_name\":\"Sheena Nelson\",\"recipient\":\"+15550783881\","                            \
    "\"received_at\":\"2025-06-08T20:59:43.000Z\",\"ingested_at\":\"2026-01-01T00:00:00.000Z\","
#define WA_CONTEXT "\"context\":{\"provider_message_id\":\"" WA_CTX "\",\"from\":\"+15550783881\"}"

static const struct good_case good[] = {
    {"whatsapp",
     "text.json",
     1,
     {WA_IN("{" WA_COMMON "\"message_type\":\"text\",\"raw_type\":\"text\","
            "\"text\":\"Does it come in another color? \\ud83d\\ude00 \\u00c7a va\"}")}},
    {"whatsapp",
     "image.json",
     1,
     {WA_IN(
         "{" WA_COMMON "\"message_type\":\"image\",\"raw_type\":\"image\",\"media\":[{"
         "\"id\":\"1003383421387256\",\"mime_type\":\"image/jpeg\",\"sha256\":"
         "\"K0Vdg1mTlmkP2o2BdIyEiX8BMCfW3r5tA9a0pXo0VEQ=\",\"caption\":\"This one, in blue\"}]}")}},
    {"whatsapp",
     "audio_voice.json",
     1,
     {WA_IN("{\"message_type\":\"voice\",\"raw_type\":\"audio\",\"media\":[{"
            "\"id\":\"1297413531516468\",\"mime_type\":\"audio/ogg; codecs=opus\",\"sha256\":"
            "\"Pb1FvD6mQj2N0q0dPqK0Qf5m8xHh7P8J8m8QJXk1k0A=\",\"voice\":true}]}")}},
    {"whatsapp", "audio.json", 1, {WA_IN("{\"message_type\":\"audio\",\"raw_type\":\"audio\"}")}},
    {"whatsapp",
     "document.json",
     1,
     {WA_IN("{\"message_type\":\"document\",\"media\":[{\"id\":\"1176431747104442\","
            "\"mime_type\":\"application/pdf\",\"sha256\":"
            "\"dGhpcyBpcyBub3QgYSByZWFsIGhhc2ggYnV0IG9rYXk=\",\"caption\":\"Floor plan\","
            "\"filename\":\"plan.pdf\"}]}")}},
    {"whatsapp",
     "location.json",
     1,
     {WA_IN(
         "{\"message_type\":\"location\",\"location\":{\"latitude\":37.483307,"
         "\"longitude\":-122.148981,\"name\":\"Meta Headquarters\","
         "\"address\":\"1 Hacker Way, Menlo Park, CA 94025\",\"url\":\"https://www.meta.com\"}}")}},
    {"whatsapp",
     "interactive_button_reply.json",
     1,
     {WA_IN("{\"message_type\":\"interactive\",\"raw_type\":\"interactive\",\"text\":\"Tue 10:00\","
            "\"reply\":{\"kind\":\"button_reply\",\"id\":\"slot:2026-05-05T10:00\","
            "\"title\":\"Tue 10:00\"}," WA_CONTEXT "}")}},
    {"whatsapp",
     "interactive_list_reply.json",
     1,
     {WA_IN("{\"message_type\":\"interactive\",\"text\":\"Haircut\",\"reply\":{\"kind\":"
            "\"list_reply\",\"id\":\"svc:haircut\",\"title\":\"Haircut\","
            "\"description\":\"30 min, with wash\"}}")}},
    {"whatsapp",
     "button.json",
     1,
     {WA_IN("{\"message_type\":\"button\",\"text\":\"Yes, book it\",\"reply\":{\"kind\":\"button\","
            "\"payload\":\"SLOT_A\",\"title\":\"Yes, book it\"}," WA_CONTEXT "}")}},
    {"whatsapp",
     "reaction.json",
     1,
     {WA_IN("{\"message_type\":\"reaction\",\"reaction\":{\"message_id\":\"" WA_CTX "\","
            "\"emoji\":\"\\ud83d\\udc4d\"}}")}},
    {"whatsapp",
     "contacts.json",
     1,
     {WA_IN("{\"message_type\":\"contacts\",\"contacts\":[{\"name\":\"Ana Souza\","
            "\"phones\":[\"+55 11 91234-5678\"]}]}")}},
    {"whatsapp",
     "unknown_order.json",
     1,
     {WA_IN("{\"message_type\":\"unknown\",\"raw_type\":\"order\",\"sender\":\"+16505551234\"}")}},
    {"whatsapp",
     "text_reply_context.json",
     1,
     {WA_IN("{\"message_type\":\"text\",\"text\":\"Yes please\"," WA_CONTEXT "}")}},
    {"whatsapp",
     "multi_entry.json",
     3,
     {{.stream = TN_STREAM_IN,
       .channel = "wa-main",
       .pmid = "wamid.AAA1",
       .dedupe = "wa:wamid.AAA1",
       .data = "{\"text\":\"First\",\"channel\":\"wa-main\"}"},
      {.stream = TN_STREAM_IN,
       .channel = "wa-main",
       .pmid = "wamid.AAA2",
       .dedupe = "wa:wamid.AAA2",
       .data = "{\"text\":\"Second\"}"},
      {.stream = TN_STREAM_IN,
       .tenant = FX_TENANT2,
       .channel = "wa-second",
       .pmid = "wamid.BBB1",
       .dedupe = "wa:wamid.BBB1",
       .data = "{\"text\":\"Hola\",\"sender\":\"+5511912345678\",\"sender_name\":\"Ana\","
               "\"tenant\":\"" FX_TENANT2 "\"}"}}},
    {"whatsapp",
     "statuses_failed.json",
     2,
     {{.stream = TN_STREAM_STATUS,
       .channel = "wa-main",
       .pmid = "wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjdCRjA2NEYxQ0ZGRTY0QzlFMgA=",
       .dedupe = "wa:st:wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjdCRjA2NEYxQ0ZGRTY0QzlFMgA=:failed",
       .status = "failed",
       .data = "{\"status\":\"failed\",\"raw_status\":\"failed\",\"recipient\":\"+5516992318222\","
               "\"timestamp\":\"2025-06-25T13:16:24.000Z\",\"errors\":[{\"code\":131047,"
               "\"title\":\"Re-engagement message\",\"message\":\"Re-engagement message\","
               "\"detail\":\"Message failed to send because more than 24 hours have passed "
               "since the customer last replied to this number.\"}]}"},
      {.stream = TN_STREAM_STATUS,
       .channel = "wa-main",
       .pmid = "wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjdCRjA2NEYxQ0ZGRTY0QzlFMwA=",
       .dedupe = "wa:st:wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjdCRjA2NEYxQ0ZGRTY0QzlFMwA=:delivered",
       .status = "delivered",
       .outbound = "out_7Yk2mQ",
       .data = "{\"status\":\"delivered\",\"errors\":[],\"outbound_id\":\"out_7Yk2mQ\"}"}}},
    {"twilio",
     "known_vector.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "SM0123456789abcdef0123456789abcdef",
       .dedupe = "tw:SM0123456789abcdef0123456789abcdef",
       .data = "{\"provider\":\"twilio\",\"transport\":\"sms\",\"sender\":\"+15551234567\","
               "\"recipient\":\"+15557654321\",\"text\":\"Hi there\",\"message_type\":\"text\","
               "\"raw_type\":\"sms\",\"received_at\":\"2026-01-01T00:00:00.000Z\"}"}}},
    {"twilio",
     "sms_inbound.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "SM11111111111111111111111111111111",
       .dedupe = "tw:SM11111111111111111111111111111111",
       .data = "{\"text\":\"Can I book a cut on Friday? 100% ok & fine + more\"}"}}},
    {"twilio",
     "mms_two_media.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "MM22222222222222222222222222222222",
       .dedupe = "tw:MM22222222222222222222222222222222",
       .data = "{\"message_type\":\"image\",\"raw_type\":\"mms\",\"text\":\"Here are the photos\","
               "\"media\":[{\"url\":\"https://api.twilio.com/2010-04-01/Accounts/"
               "AC00000000000000000000000000000000/Messages/MM22222222222222222222222222222222/"
               "Media/ME00000000000000000000000000000001\",\"mime_type\":\"image/jpeg\"},"
               "{\"url\":\"https://api.twilio.com/2010-04-01/Accounts/"
               "AC00000000000000000000000000000000/Messages/MM22222222222222222222222222222222/"
               "Media/ME00000000000000000000000000000002\",\"mime_type\":\"image/png\"}]}"}}},
    {"twilio",
     "whatsapp_button.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "SM33333333333333333333333333333333",
       .dedupe = "tw:SM33333333333333333333333333333333",
       .data = "{\"transport\":\"whatsapp\",\"sender\":\"+5511912345678\",\"sender_name\":"
               "\"Ana Souza\",\"message_type\":\"button\",\"reply\":{\"kind\":\"button\","
               "\"title\":\"Tue 10:00\",\"payload\":\"SLOT_A\"},\"context\":{"
               "\"provider_message_id\":\"SM44444444444444444444444444444444\"}}"}}},
    {"twilio",
     "whatsapp_location.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "SM55555555555555555555555555555555",
       .dedupe = "tw:SM55555555555555555555555555555555",
       .data = "{\"message_type\":\"location\",\"location\":{\"latitude\":-23.5613,"
               "\"longitude\":-46.6565,\"address\":\"Av. Paulista, 1578\",\"name\":\"MASP\"}}"}}},
    {"twilio",
     "sms_stop.txt",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "sms",
       .pmid = "SM66666666666666666666666666666666",
       .dedupe = "tw:SM66666666666666666666666666666666",
       .data = "{\"text\":\"STOP\",\"opt_out\":\"STOP\"}"}}},
    {"twilio",
     "status_delivered.txt",
     1,
     {{.stream = TN_STREAM_STATUS,
       .channel = "sms",
       .pmid = "SM77777777777777777777777777777777",
       .dedupe = "tw:st:SM77777777777777777777777777777777:delivered",
       .status = "delivered",
       .outbound = "out_7Yk2mQ",
       .data = "{\"status\":\"delivered\",\"recipient\":\"+15551234567\",\"errors\":[],"
               "\"outbound_id\":\"out_7Yk2mQ\"}"}}},
    {"twilio",
     "status_undelivered.txt",
     1,
     {{.stream = TN_STREAM_STATUS,
       .channel = "sms",
       .pmid = "SM88888888888888888888888888888888",
       .dedupe = "tw:st:SM88888888888888888888888888888888:undelivered",
       .status = "undelivered",
       .data = "{\"status\":\"undelivered\",\"errors\":[{\"code\":30003,"
               "\"title\":\"Unreachable destination handset\"}]}"}}},
    {"twilio",
     "json_status_read.json",
     1,
     {{.stream = TN_STREAM_STATUS,
       .channel = "sms",
       .pmid = "SMBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
       .dedupe = "tw:st:SMBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB:read",
       .status = "read",
       .data = "{\"status\":\"read\",\"recipient\":\"+5511912345678\"}"}}},
    {"telegram",
     "text.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "123456789:42",
       .dedupe = "tg:tg-bot:812345678",
       .data = "{\"provider\":\"telegram\",\"transport\":\"telegram\",\"sender\":\"123456789\","
               "\"sender_user_id\":\"123456789\",\"sender_name\":\"Ana Souza\","
               "\"message_type\":\"text\",\"raw_type\":\"text\","
               "\"text\":\"Can I book Friday? \\u00e0 bient\\u00f4t\","
               "\"received_at\":\"2026-01-01T00:00:00.000Z\"}"}}},
    {"telegram",
     "voice.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "123456789:43",
       .dedupe = "tg:tg-bot:812345679",
       .data = "{\"message_type\":\"voice\",\"media\":[{\"id\":"
               "\"AwACAgQAAxkBAAIBQ2VoiceFileId0123456789\",\"mime_type\":\"audio/ogg\","
               "\"duration\":4,\"size\":12345,\"voice\":true}],"
               "\"received_at\":\"2026-01-01T00:01:00.000Z\"}"}}},
    {"telegram",
     "contact.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "123456789:44",
       .dedupe = "tg:tg-bot:812345680",
       .data = "{\"message_type\":\"contacts\",\"raw_type\":\"contact\",\"contacts\":[{\"name\":"
               "\"Ana Souza\",\"phones\":[\"+5511912345678\"],\"user_id\":\"123456789\"}]}"}}},
    {"telegram",
     "edited.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "123456789:42",
       .dedupe = "tg:tg-bot:812345681",
       .data = "{\"edited\":true,\"text\":\"Can I book Saturday?\"}"}}},
    {"telegram",
     "reply_photo.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "-1001234567890123:45",
       .dedupe = "tg:tg-bot:812345682",
       .data =
           "{\"sender\":\"-1001234567890123\",\"message_type\":\"image\",\"raw_type\":\"photo\","
           "\"media\":[{\"id\":\"large\",\"size\":99000,\"caption\":\"like this\"}],"
           "\"context\":{\"provider_message_id\":\"-1001234567890123:40\"}}"}}},
    {"telegram",
     "callback_query.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "cq:4382bfdwdsb323b2d9",
       .dedupe = "tg:tg-bot:812345683",
       .data = "{\"message_type\":\"interactive\",\"sender\":\"123456789\",\"reply\":"
               "{\"kind\":\"callback_query\",\"id\":\"slot:2026-05-05T10:00\"}}"}}},
    {"telegram",
     "unknown_poll.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "123456789:47",
       .dedupe = "tg:tg-bot:812345684",
       .data = "{\"message_type\":\"unknown\",\"raw_type\":\"poll\",\"sender\":\"123456789\"}"}}},
    {"telegram",
     "unknown_update.json",
     1,
     {{.stream = TN_STREAM_IN,
       .channel = "tg-bot",
       .pmid = "update:812345685",
       .dedupe = "tg:tg-bot:812345685",
       .data = "{\"message_type\":\"unknown\",\"raw_type\":\"update:my_chat_member\"}"}}},
};

/* check_data - every member of want equals the same member of the data JSON */
static void check_data(const char *what, const char *data, const char *want)
{
    json_error_t jerr;
    json_t *got = json_loads(data, 0, &jerr), *w = json_loads(want, 0, &jerr);
    const char *key;
    json_t *v;

    assert_non_null(got);
    if (w == NULL)
        fail_msg("%s: bad expectation JSON: %s", what, jerr.text);
    json_object_foreach(w, key, v)
    {
        if (!json_equal(v, json_object_get(got, key)))
            fail_msg("%s: data.%s differs\n  got:  %s", what, key, data);
    }
    assert_true(json_is_object(json_object_get(got, "raw")));
    json_decref(w);
    json_decref(got);
}

/* check_entry - envelope and data of one produced entry */
static void check_entry(const char *file, const struct ingest_entry *e, const struct want_entry *w)
{
    const char *tenant = w->tenant != NULL ? w->tenant : FX_TENANT;
    bool is_status = strcmp(w->stream, TN_STREAM_STATUS) == 0;

    assert_string_equal(e->stream, w->stream);
    assert_string_equal(ingest_entry_get(e, TN_F_TYPE),
                        is_status ? TN_TYPE_DELIVERY_STATUS : TN_TYPE_INBOUND_MESSAGE);
    assert_string_equal(ingest_entry_get(e, TN_F_V), "1");
    assert_string_equal(ingest_entry_get(e, TN_F_TENANT), tenant);
    assert_string_equal(ingest_entry_get(e, TN_F_TRACE), FX_TRACE);
    assert_string_equal(ingest_entry_get(e, TN_F_CHANNEL), w->channel);
    assert_string_equal(ingest_entry_get(e, TN_F_PMID), w->pmid);
    assert_string_equal(ingest_entry_get(e, TN_F_DEDUPE), w->dedupe);
    if (is_status)
        assert_string_equal(ingest_entry_get(e, TN_F_STATUS), w->status);
    if (w->outbound != NULL)
        assert_string_equal(ingest_entry_get(e, TN_F_OUTBOUND), w->outbound);
    else
        assert_null(ingest_entry_get(e, TN_F_OUTBOUND));
    check_data(file, ingest_entry_get(e, TN_F_DATA), w->data);
    /* no secret of the channel ever reaches a stream */
    for (size_t i = 0; i < e->nfields; i++) {
        assert_null(strstr(e->value[i], FX_WA_SECRET));
        assert_null(strstr(e->value[i], FX_TG_SECRET));
    }
}

/* good_fixtures - every documented payload parses into its entries */
static void good_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const struct good_case *c = &good[i];
        struct ingest_result res;

        fx_run(c->provider, c->file, FX_OK, &res);
        if (res.status != 200 || res.nentries != c->n)
            fail_msg("%s/%s: status %d (%s), %zu entries; want 200, %zu", c->provider, c->file,
                     res.status, res.reason, res.nentries, c->n);
        for (size_t j = 0; j < c->n; j++)
            check_entry(c->file, &res.entries[j], &c->e[j]);
        if (strcmp(c->provider, "twilio") == 0) {
            assert_string_equal(res.body, INGEST_TWIML_EMPTY);
            assert_string_equal(res.content_type, "text/xml");
        }
        ingest_result_free(&res);
    }
}

struct bad_case {
    const char *provider, *file;
    enum fx_mut mut;
    int status;
    const char *reason;
};

static const struct bad_case bad[] = {
    {"whatsapp", "text.json", FX_TAMPER_SIG, 401, "signature.mismatch"},
    {"whatsapp", "text.json", FX_NO_SIG, 401, "signature.missing"},
    {"whatsapp", "text.json", FX_WRONG_SECRET, 401, "signature.mismatch"},
    {"whatsapp", "text.json", FX_TAMPER_BODY, 401, "signature.mismatch"},
    {"whatsapp", "text.json", FX_TRUNCATE, 400, "json.malformed"},
    {"whatsapp", "text.json", FX_CTYPE, 415, "content_type.unsupported"},
    {"whatsapp", "bad_unknown_phone.json", FX_OK, 404, "channel.unknown"},
    {"whatsapp", "bad_mixed_apps.json", FX_OK, 401, "signature.mismatch"},
    {"whatsapp", "bad_message_without_id.json", FX_OK, 400, "json.unexpected"},
    {"whatsapp", "multi_entry.json", FX_TAMPER_SIG, 401, "signature.mismatch"},
    {"twilio", "known_vector.txt", FX_TAMPER_SIG, 401, "signature.mismatch"},
    {"twilio", "known_vector.txt", FX_NO_SIG, 401, "signature.missing"},
    {"twilio", "known_vector.txt", FX_WRONG_SECRET, 401, "signature.mismatch"},
    {"twilio", "known_vector.txt", FX_TAMPER_BODY, 401, "signature.mismatch"},
    {"twilio", "known_vector.txt", FX_TRUNCATE, 401, "signature.mismatch"},
    {"twilio", "known_vector.txt", FX_CTYPE, 415, "content_type.unsupported"},
    {"twilio", "known_vector.txt", FX_CHANNEL, 404, "channel.unknown"},
    {"twilio", "bad_account.txt", FX_OK, 403, "account.mismatch"},
    {"twilio", "bad_media_missing.txt", FX_OK, 400, "form.unexpected"},
    {"twilio", "json_status_read.json", FX_TAMPER_BODY, 401, "signature.mismatch"},
    {"twilio", "json_status_read.json", FX_WRONG_SECRET, 401, "signature.mismatch"},
    {"telegram", "text.json", FX_TAMPER_SIG, 401, "signature.mismatch"},
    {"telegram", "text.json", FX_NO_SIG, 401, "signature.missing"},
    {"telegram", "text.json", FX_WRONG_SECRET, 401, "signature.mismatch"},
    {"telegram", "text.json", FX_TRUNCATE, 400, "json.malformed"},
    {"telegram", "text.json", FX_CTYPE, 415, "content_type.unsupported"},
    {"telegram", "text.json", FX_CHANNEL, 404, "channel.unknown"},
    {"telegram", "bad_no_update_id.json", FX_OK, 400, "json.unexpected"},
};

/* bad_matrix - each refusal has its status and enqueues nothing */
static void bad_matrix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const struct bad_case *c = &bad[i];
        struct ingest_result res;

        fx_run(c->provider, c->file, c->mut, &res);
        if (res.status != c->status || res.nentries != 0 || res.entries != NULL ||
            strcmp(res.reason, c->reason) != 0)
            fail_msg("case %zu %s/%s mutation %d: status %d (%s), %zu entries; want %d (%s), 0", i,
                     c->provider, c->file, (int)c->mut, res.status, res.reason, res.nentries,
                     c->status, c->reason);
        ingest_result_free(&res);
    }
}

/* twilio_port_variant - a :443 added by a load balancer still verifies */
static void twilio_port_variant(void **state)
{
    struct ingest_result res;

    (void)state;
    fx_run("twilio", "known_vector.txt", FX_PORT, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.nentries, 1);
    ingest_result_free(&res);
}

/* twilio_known_vector - the documented vector, spelled out here */
static void twilio_known_vector(void **state)
{
    static const char body[] = "AccountSid=AC00000000000000000000000000000000&Body=Hi+there"
                               "&From=%2B15551234567&MessageSid=SM0123456789abcdef0123456789abcdef"
                               "&NumMedia=0&To=%2B15557654321";
    struct ingest_request req = {
        .method = "POST",
        .url = "https://mycompany.example/webhooks/twilio/sms?tenant=7",
        .channel = "sms",
        .content_type = "application/x-www-form-urlencoded; charset=utf-8",
        .signature = "ILvKC3e8/IckH4v434XbFVUrGiE=",
        .body = body,
        .body_len = sizeof(body) - 1,
        .now_ms = FX_NOW_MS,
    };
    struct ingest_result res = {0};

    (void)state;
    ingest_twilio_post(&req, fx_lookup, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.nentries, 1);
    /* a generated traceparent has the W3C shape */
    assert_int_equal(strlen(ingest_entry_get(&res.entries[0], TN_F_TRACE)), 55);
    assert_memory_equal(ingest_entry_get(&res.entries[0], TN_F_TRACE), "00-", 3);
    ingest_result_free(&res);

    req.url = "https://mycompany.example/webhooks/twilio/sms?tenant=8"; /* other URL */
    ingest_twilio_post(&req, fx_lookup, NULL, &res);
    assert_int_equal(res.status, 401);
    assert_int_equal(res.nentries, 0);
    ingest_result_free(&res);
}

struct challenge_case {
    const char *query;
    int status;
    const char *body;
};

static const struct challenge_case challenges[] = {
    {"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me", 200, "1158201444"},
    {"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=other-verify", 200,
     "1158201444"},
    {"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-mf", 403, NULL},
    {"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me2", 403, NULL},
    {"hub.mode=subscribe&hub.challenge=1158201444", 403, NULL},
    {"hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=verify-me", 403, NULL},
    {"hub.mode=subscribe&hub.verify_token=verify-me", 400, NULL},
    {"hub.mode=subscribe&hub.challenge=%3Cscript%3E&hub.verify_token=verify-me", 400, NULL},
    {"", 403, NULL},
};

/* whatsapp_challenge - GET verification: echo only for a configured token */
static void whatsapp_challenge(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(challenges) / sizeof(challenges[0]); i++) {
        struct ingest_request req = {.method = "GET", .query = challenges[i].query};
        struct ingest_result res = {0};

        ingest_whatsapp_challenge(&req, fx_lookup, NULL, &res);
        if (res.status != challenges[i].status)
            fail_msg("challenge %zu: status %d, want %d", i, res.status, challenges[i].status);
        if (challenges[i].body != NULL) {
            assert_string_equal(res.body, challenges[i].body);
            assert_string_equal(res.content_type, "text/plain");
        } else {
            assert_null(res.body);
        }
        assert_int_equal(res.nentries, 0);
        ingest_result_free(&res);
    }
}

/* form_decoding - '+' is a space, %2B a plus, and NUL or bad UTF-8 refused */
static void form_decoding(void **state)
{
    static const char ok[] = "a=1+2%2B3&b&&c=%C3%A7a&a=x";
    struct ingest_form f;

    (void)state;
    assert_int_equal(ingest_form_parse(ok, sizeof(ok) - 1, &f), TN_OK);
    assert_int_equal(f.n, 4);
    assert_string_equal(ingest_form_get(&f, "a"), "1 2+3");
    assert_string_equal(ingest_form_get(&f, "b"), "");
    assert_string_equal(ingest_form_get(&f, "c"), "\xc3\xa7"
                                                  "a");
    assert_null(ingest_form_get(&f, "d"));
    ingest_form_free(&f);
    assert_int_equal(ingest_form_parse("a=%00", 5, &f), TN_EPROTO);
    ingest_form_free(&f);
    assert_int_equal(ingest_form_parse("a=%FF", 5, &f), TN_EPROTO);
    ingest_form_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_fixtures),       cmocka_unit_test(bad_matrix),
        cmocka_unit_test(twilio_port_variant), cmocka_unit_test(twilio_known_vector),
        cmocka_unit_test(whatsapp_challenge),  cmocka_unit_test(form_decoding),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
