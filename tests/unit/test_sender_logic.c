/*
 * test_sender_logic - tern-sender's pure parts: the delivery state order,
 * each provider's answer classification and request shape, token buckets,
 * Retry-After and uuids; the email message (sender_mime.c), its transports'
 * requests and answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_mem.h>

#include "sender.h"

/* status_order - furthest state wins; duplicates and late statuses change nothing */
static void status_order(void **state)
{
    static const struct {
        const char *cur, *st, *want;
    } cases[] = {
        {"sending", "sent", "sent"},       {"sent", "delivered", "delivered"},
        {"sent", "read", "read"},          {"delivered", "read", "read"},
        {"read", "delivered", NULL},       {"read", "sent", NULL},
        {"delivered", "delivered", NULL},  {"sent", "failed", "failed"},
        {"delivered", "failed", NULL},     {"failed", "delivered", "delivered"},
        {"failed", "sent", NULL},          {"dead", "read", "read"},
        {"sent", "undelivered", "failed"}, {"sent", "played", "read"},
        {"sent", "queued", NULL},          {"canceled", "delivered", NULL},
        {"queued", "accepted", NULL},      {"sending", "unknown", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = sender_status_next(cases[i].cur, cases[i].st);

        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
    }
}

struct parse_case {
    const struct sender_provider *p;
    long status;
    const char *body, *retry_after;
    enum sender_verdict v;
    const char *code_or_pmid;
    int64_t retry_ms;
};

/* parse_answers - every provider's success and error shapes */
static void parse_answers(void **state)
{
    const struct parse_case cases[] = {
        {&sender_whatsapp, 200, "{\"messages\":[{\"id\":\"wamid.X\"}]}", NULL, SENDER_V_OK,
         "wamid.X", 0},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131026}}", NULL, SENDER_V_FINAL, "131026", 0},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131047}}", NULL, SENDER_V_FINAL, "131047", 0},
        {&sender_whatsapp, 429, "{\"error\":{\"code\":130429}}", "7", SENDER_V_RETRY, "130429",
         7000},
        {&sender_whatsapp, 400, "{\"error\":{\"code\":131056}}", NULL, SENDER_V_RETRY, "131056", 0},
        {&sender_whatsapp, 502, "<html>", NULL, SENDER_V_RETRY, "http_502", 0},
        {&sender_twilio, 201, "{\"sid\":\"SM1\",\"status\":\"queued\"}", NULL, SENDER_V_OK, "SM1",
         0},
        {&sender_twilio, 400, "{\"code\":21610,\"status\":400}", NULL, SENDER_V_FINAL, "21610", 0},
        {&sender_twilio, 429, "{\"code\":20429}", "3", SENDER_V_RETRY, "20429", 3000},
        {&sender_twilio, 503, "", NULL, SENDER_V_RETRY, "http_503", 0},
        {&sender_telegram, 200, "{\"ok\":true,\"result\":{\"message_id\":5,\"chat\":{\"id\":42}}}",
         NULL, SENDER_V_OK, "42:5", 0},
        {&sender_telegram, 429,
         "{\"ok\":false,\"error_code\":429,\"parameters\":{\"retry_after\":35}}", NULL,
         SENDER_V_RETRY, "429", 35000},
        {&sender_telegram, 403, "{\"ok\":false,\"error_code\":403}", NULL, SENDER_V_FINAL, "403",
         0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sender_result r;

        cases[i].p->parse(cases[i].status, cases[i].body, strlen(cases[i].body),
                          cases[i].retry_after, &r);
        assert_int_equal(r.v, cases[i].v);
        assert_string_equal(r.v == SENDER_V_OK ? r.pmid : r.code, cases[i].code_or_pmid);
        assert_int_equal(r.retry_after_ms, cases[i].retry_ms);
        assert_false(r.ambiguous);
    }
    /* accepted without a usable id: a retry that may hide a send (the row
     * stays 'sending' and waits for the echo); a huge wait is a day */
    const struct sender_provider *noid[] = {&sender_whatsapp, &sender_twilio, &sender_email};
    const char *noid_body[] = {"{\"messages\":[{\"id\":\"\"}]}", "{\"status\":\"queued\"}",
                               "{\"id\":\"\"}"};
    for (size_t i = 0; i < 3; i++) {
        struct sender_result r;

        noid[i]->parse(200, noid_body[i], strlen(noid_body[i]), "9223372036854775807", &r);
        assert_int_equal(r.v, SENDER_V_RETRY);
        assert_true(r.ambiguous);
        assert_int_equal(r.retry_after_ms, SENDER_RETRY_AFTER_MAX_S * 1000);
    }
}

static const struct sender_cfg cfg = {
    .whatsapp_base = "http://h/wa",
    .whatsapp_version = "v21.0",
    .twilio_base = "http://h/tw",
    .telegram_base = "http://h/tg",
    .twilio_status_url = "https://tern.example/webhooks/twilio",
};

/* build_requests - URLs, auth and bodies as the providers document them */
static void build_requests(void **state)
{
    json_t *wa = json_pack("{ss}", "access_token", "T0K");
    json_t *tw = json_pack("{ssss}", "account_sid", "AC1", "auth_token", "s3");
    json_t *tg = json_pack("{ss}", "bot_token", "1:abc");
    json_t *tpl = json_loads("{\"name\":\"n\",\"language\":\"en\",\"variables\":[\"Sam\"],"
                             "\"content_sid\":\"HX1\"}",
                             0, NULL);
    struct sender_msg m = {.outbound_id = "o-1",
                           .channel_kind = "whatsapp",
                           .from = "123",
                           .to = "+4915",
                           .text = "hi & bye",
                           .secrets = wa};
    struct sender_req rq;
    const char *why = NULL;

    (void)state;
    assert_int_equal(sender_whatsapp.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/wa/v21.0/123/messages");
    assert_string_equal(rq.headers[0], "Authorization: Bearer T0K");
    assert_non_null(strstr(rq.body.data, "\"to\":\"4915\""));
    assert_non_null(strstr(rq.body.data, "\"biz_opaque_callback_data\":\"o-1\""));
    sender_req_free(&rq);
    m.text = NULL;
    m.template = tpl;
    assert_int_equal(sender_whatsapp.build(&cfg, &m, &rq, &why), TN_OK);
    assert_non_null(strstr(rq.body.data, "\"type\":\"template\""));
    assert_non_null(strstr(rq.body.data, "\"parameters\":[{\"type\":\"text\",\"text\":\"Sam\"}]"));
    sender_req_free(&rq);

    m = (struct sender_msg){.outbound_id = "o-2",
                            .channel_kind = "twilio_whatsapp",
                            .from = "+1415",
                            .to = "+4915",
                            .text = "hi & bye",
                            .secrets = tw};
    assert_int_equal(sender_twilio.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/tw/2010-04-01/Accounts/AC1/Messages.json");
    assert_string_equal(rq.userpwd, "AC1:s3");
    assert_string_equal(rq.body.data,
                        "To=whatsapp%3A%2B4915&From=whatsapp%3A%2B1415&Body=hi%20%26%20bye"
                        "&StatusCallback=https%3A%2F%2Ftern.example%2Fwebhooks%2Ftwilio%3F"
                        "outbound%3Do-2");
    sender_req_free(&rq);
    m.text = NULL;
    m.template = tpl;
    assert_int_equal(sender_twilio.build(&cfg, &m, &rq, &why), TN_OK);
    assert_non_null(
        strstr(rq.body.data, "ContentSid=HX1&ContentVariables=%7B%221%22%3A%22Sam%22%7D"));
    sender_req_free(&rq);

    m = (struct sender_msg){.outbound_id = "o-3",
                            .channel_kind = "telegram",
                            .from = "bot",
                            .to = "42",
                            .text = "hi",
                            .reply_to = "42:7",
                            .secrets = tg};
    assert_int_equal(sender_telegram.build(&cfg, &m, &rq, &why), TN_OK);
    assert_string_equal(rq.url, "http://h/tg/bot1:abc/sendMessage");
    assert_string_equal(
        rq.body.data,
        "{\"chat_id\":\"42\",\"text\":\"hi\",\"reply_parameters\":{\"message_id\":7}}");
    sender_req_free(&rq);
    m.secrets = wa; /* no bot_token */
    assert_int_equal(sender_telegram.build(&cfg, &m, &rq, &why), TN_EINVAL);
    assert_string_equal(why, "credentials.missing");
    sender_req_free(&rq);
    json_decref(wa);
    json_decref(tw);
    json_decref(tg);
    json_decref(tpl);
}

/* buckets - a burst, then one token per 1/rate, queued waits spaced out */
static void buckets(void **state)
{
    struct sender_rate *r = sender_rate_new();

    (void)state;
    for (int i = 0; i < 10; i++)
        assert_int_equal(sender_rate_take(r, "ch", 10, 10, 1000), 0);
    assert_in_range(sender_rate_take(r, "ch", 10, 10, 1000), 100, 101);
    assert_in_range(sender_rate_take(r, "ch", 10, 10, 1000), 200, 201);
    assert_int_equal(sender_rate_take(r, "other", 10, 10, 1000), 0); /* another identity */
    assert_int_equal(sender_rate_take(r, "ch", 10, 10, 1300), 0);    /* refilled */
    assert_int_equal(sender_rate_take(r, "free", 0, 0, 1000), 0);    /* 0: unlimited */
    sender_rate_free(r);
}

/* a reserved token is spent once, by its member, at its time; unredeemed
 * ones expire */
static void bucket_holds(void **state)
{
    struct sender_rate *r = sender_rate_new();
    char m[32];

    (void)state;
    assert_int_equal(sender_rate_redeem(r, "m1", 1000), -1);
    assert_true(sender_rate_hold(r, "m1", 1100, 1000));
    assert_true(sender_rate_hold(r, "m1", 1200, 1000));      /* the same member again: one hold */
    assert_int_equal(sender_rate_redeem(r, "m1", 1150), 50); /* early: kept */
    assert_int_equal(sender_rate_redeem(r, "m1", 1200), 0);
    assert_int_equal(sender_rate_redeem(r, "m1", 1300), -1);
    /* many members: the old ones go when the table prunes itself */
    assert_true(sender_rate_hold(r, "old", 1000, 1000));
    for (int i = 0; i < 3000; i++) {
        snprintf(m, sizeof(m), "m-%d", i);
        assert_true(sender_rate_hold(r, m, 200000, 200000));
    }
    assert_int_equal(sender_rate_redeem(r, "old", 200000), -1); /* its time + a minute passed */
    assert_int_equal(sender_rate_redeem(r, "m-0", 200000), 0);  /* recent: kept */
    assert_int_equal(sender_rate_redeem(r, "m-2999", 200000), 0);
    /* bounded: past 65536 live holds, no more, until old ones can go */
    for (int i = 0; i <= 65536; i++) {
        snprintf(m, sizeof(m), "n-%d", i);
        assert_true(sender_rate_hold(r, m, 300000, 300000) == (i < 65536));
    }
    assert_false(sender_rate_hold(r, "late", 360000, 360000)); /* n-*: not a minute past */
    assert_true(sender_rate_hold(r, "later", 361001, 361001)); /* now they are */
    assert_int_equal(sender_rate_redeem(r, "n-0", 361001), -1);
    sender_rate_free(r);
}

/* schedule script arguments: runs of one tenant, split at SENDER_GROUP_MAX */
static void grouped_runs(void **state)
{
    static const size_t pick[] = {2, 1}; /* score, member */
    enum { N = 2 * SENDER_GROUP_MAX + 79 };
    const char **in = calloc(3 * N, sizeof(*in));
    struct sender_grouped g;
    size_t at = 0;

    (void)state;
    for (size_t i = 0; i < N; i++) { /* A x (N - 3), B, B, A */
        in[3 * i] = i == N - 3 || i == N - 2 ? "B" : "A";
        in[3 * i + 1] = "m";
        in[3 * i + 2] = "5";
    }
    sender_grouped_init(&g, 1, N, 2);
    g.argv[g.n++] = "1";
    sender_grouped_add(&g, in, N, 3, pick, 2);
    assert_string_equal(g.argv[at++], "1");
    const struct {
        const char *t, *n;
    } runs[] = {{"A", "512"}, {"A", "512"}, {"A", "76"}, {"B", "2"}, {"A", "1"}};
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        assert_string_equal(g.argv[at++], runs[r].t);
        assert_string_equal(g.argv[at++], runs[r].n);
        for (int k = 0; k < atoi(runs[r].n); k++) {
            assert_string_equal(g.argv[at++], "5");
            assert_string_equal(g.argv[at++], "m");
        }
    }
    assert_int_equal(at, g.n);
    sender_grouped_close(&g);
    free(in);
}

static void small_parsers(void **state)
{
    (void)state;
    assert_int_equal(sender_retry_after_ms("12"), 12000);
    assert_int_equal(sender_retry_after_ms(""), 0);
    assert_int_equal(sender_retry_after_ms("soon"), 0);
    assert_int_equal(sender_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
    assert_true(tn_uuid_valid("0b7e6a1c-4b7e-4c41-9d38-2f0d1f2a3b4c"));
    assert_false(tn_uuid_valid("0b7e6a1c-4b7e-4c41-9d38-2f0d1f2a3b4"));
    assert_false(tn_uuid_valid("0b7e6a1cx4b7e-4c41-9d38-2f0d1f2a3b4c"));
    assert_ptr_equal(sender_provider_of("twilio_sms"), &sender_twilio);
    assert_ptr_equal(sender_provider_of("twilio_whatsapp"), &sender_twilio);
    assert_ptr_equal(sender_provider_of("email"), &sender_email);
    assert_null(sender_provider_of("sms"));
}

/* pg_arrays - the array literals of the batched statements: NULL stays SQL
 * NULL, quotes and backslashes are escaped, "NULL" as text is quoted */
static void pg_arrays(void **state)
{
    static const struct {
        const char *in[3];
        size_t n;
        const char *want;
    } cases[] = {
        {{NULL}, 0, "{}"},
        {{"a"}, 1, "{\"a\"}"},
        {{"a", NULL, "NULL"}, 3, "{\"a\",NULL,\"NULL\"}"},
        {{"say \"hi\"", "back\\slash", ""}, 3, "{\"say \\\"hi\\\"\",\"back\\\\slash\",\"\"}"},
        {{"", "{x,y}"}, 2, "{\"\",\"{x,y}\"}"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tn_buf b;

        tn_buf_init(&b, 0);
        tn_buf_adds(&b, "{");
        for (size_t k = 0; k < cases[i].n; k++)
            sender_pg_array_add(&b, cases[i].in[k]);
        assert_string_equal(sender_pg_array_end(&b), cases[i].want);
        tn_buf_free(&b);
    }
}

/* header - the value of header name in msg (first one, unfolded only), new or NULL */
static char *header(const char *msg, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = msg; p != NULL && *p != '\r';
         p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ') {
            const char *end = strstr(p, "\r\n");

            return tn_xstrndup(p + n + 2, (size_t)(end - p - n - 2));
        }
    }
    return NULL;
}

/* expect_header - msg has header name with value want (NULL: absent) */
static void expect_header(const char *msg, const char *name, const char *want)
{
    char *got = header(msg, name);

    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
    tn_free(got);
}

/* mime_messages - headers, threading, encoded subject, body, hostile input */
static void mime_messages(void **state)
{
    struct sender_mime in = {.from = "desk@clinic.example",
                             .to = "sam@example.org",
                             .subject = "Re: Friday",
                             .in_reply_to = "abc@mail.example.org",
                             .references = "<r1@x.example> <abc@mail.example.org> bad<id",
                             .outbound_id = "0b6c1f6e-0000-4000-8000-000000000001",
                             .text = "Hi\nbye"};
    char *msg, *id, *body;
    const char *why = NULL;
    unsigned char *dec;
    size_t len;

    (void)state;
    assert_int_equal(sender_mime_build(&in, 1796045063000LL, &msg, &id, &why), TN_OK);
    assert_string_equal(id, "<tern.0b6c1f6e-0000-4000-8000-000000000001@clinic.example>");
    expect_header(msg, "Date", "Mon, 30 Nov 2026 13:24:23 +0000");
    expect_header(msg, "From", "<desk@clinic.example>");
    expect_header(msg, "To", "<sam@example.org>");
    expect_header(msg, "Subject", "Re: Friday");
    expect_header(msg, "Message-ID", id);
    expect_header(msg, "In-Reply-To", "<abc@mail.example.org>");
    assert_non_null(strstr(msg, "References:\r\n <r1@x.example>\r\n <abc@mail.example.org>\r\n"
                                "MIME-Version: 1.0\r\n"));
    expect_header(msg, "Content-Type", "text/plain; charset=UTF-8");
    body = strstr(msg, "\r\n\r\n") + 4;
    assert_int_equal(tn_base64_decode(body, strcspn(body, "\r"), false, &dec, &len), TN_OK);
    assert_string_equal((char *)dec, "Hi\r\nbye");
    tn_free(dec);
    tn_free(msg);
    tn_free(id);

    /* the same outbound id gives the same Message-ID at another time */
    in.subject = "Grüße\r\nBcc: x@evil.example, aus München, zu Ihrem Termin am Freitag";
    in.in_reply_to = "no id here";
    assert_int_equal(sender_mime_build(&in, 0, &msg, &id, &why), TN_OK);
    assert_string_equal(id, "<tern.0b6c1f6e-0000-4000-8000-000000000001@clinic.example>");
    assert_null(strstr(msg, "\r\nBcc:"));
    assert_null(strstr(msg, "In-Reply-To"));
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(msg, "?=\r\n =?UTF-8?B?")); /* folded: one encoded word a line */
    tn_free(msg);
    tn_free(id);

    static const char *const bad[] = {"a@b\r\nBcc: c@d", "a b@c", "<a@b>", "ab",
                                      "a@b,c@d",         "@b",    "a@"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.to = bad[i];
        assert_int_equal(sender_mime_build(&in, 0, &msg, &id, &why), TN_EINVAL);
        assert_string_equal(why, "email.address_invalid");
        assert_null(msg);
    }
    in.to = "sam@example.org";
    in.text = "";
    assert_int_equal(sender_mime_build(&in, 0, &msg, &id, &why), TN_EINVAL);
    assert_string_equal(why, "text.missing");
}

/* email_requests - the secrets pick SMTP or Gmail; Gmail's raw and threadId */
static void email_requests(void **state)
{
    struct sender_cfg c = cfg;
    json_t *smtp = json_pack("{ssssss}", "smtp_url", "smtp://mx.example:587", "smtp_user", "desk",
                             "smtp_password", "pw");
    json_t *gm = json_pack("{ss}", "access_token", "ya29.T");
    json_t *last = json_pack("{ssssss}", "message_id", "<m1@mail.gmail.com>", "subject", "Price?",
                             "thread_id", "18f");
    struct sender_msg m = {.outbound_id = "o-4",
                           .channel_kind = "email",
                           .from = "desk@c.example",
                           .to = "sam@example.org",
                           .text = "40 EUR",
                           .secrets = smtp,
                           .last_in = last};
    struct sender_req rq;
    const char *why = NULL;
    unsigned char *raw;
    size_t len;
    json_t *body;

    (void)state;
    c.gmail_base = "http://h/gm";
    assert_int_equal(sender_email.build(&c, &m, &rq, &why), TN_OK);
    assert_true(rq.smtp);
    assert_string_equal(rq.url, "smtp://mx.example:587");
    assert_string_equal(rq.userpwd, "desk:pw");
    assert_string_equal(rq.mail_from, "desk@c.example");
    assert_string_equal(rq.rcpt_to, "sam@example.org");
    assert_string_equal(rq.message_id, "<tern.o-4@c.example>");
    assert_non_null(strstr(rq.body.data, "\r\nSubject: Re: Price?\r\n"));
    assert_non_null(strstr(rq.body.data, "\r\nIn-Reply-To: <m1@mail.gmail.com>\r\n"));
    sender_req_free(&rq);

    m.secrets = gm;
    m.subject = "Your booking";
    assert_int_equal(sender_email.build(&c, &m, &rq, &why), TN_OK);
    assert_false(rq.smtp);
    assert_string_equal(rq.url, "http://h/gm/gmail/v1/users/me/messages/send");
    assert_string_equal(rq.headers[0], "Authorization: Bearer ya29.T");
    body = json_loads(rq.body.data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "threadId")), "18f");
    assert_int_equal(tn_base64_decode(json_string_value(json_object_get(body, "raw")),
                                      json_string_length(json_object_get(body, "raw")), true, &raw,
                                      &len),
                     TN_OK);
    assert_non_null(strstr((char *)raw, "\r\nSubject: Your booking\r\n"));
    assert_non_null(strstr((char *)raw, "\r\nTo: <sam@example.org>\r\n"));
    tn_free(raw);
    json_decref(body);
    sender_req_free(&rq);

    static const struct {
        json_t *secrets;
        bool tpl;
        const char *why;
    } refused[] = {{NULL, false, "credentials.missing"}, {NULL, true, "email.no_templates"}};
    json_t *none = json_object(), *bad_url = json_pack("{ss}", "smtp_url", "file:///etc/passwd");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        m.secrets = none;
        m.template = refused[i].tpl ? last : NULL;
        assert_int_equal(sender_email.build(&c, &m, &rq, &why), TN_EINVAL);
        assert_string_equal(why, refused[i].why);
    }
    m.template = NULL;
    m.secrets = bad_url;
    assert_int_equal(sender_email.build(&c, &m, &rq, &why), TN_EINVAL);
    assert_string_equal(why, "smtp.url_invalid");
    json_decref(none);
    json_decref(bad_url);
    json_decref(smtp);
    json_decref(gm);
    json_decref(last);
}

/* email_answers - Gmail's answers and SMTP's reply codes */
static void email_answers(void **state)
{
    static const struct {
        long status;
        const char *body;
        enum sender_verdict v;
        const char *want;
    } gmail[] = {
        {200, "{\"id\":\"18f2\",\"threadId\":\"18f2\",\"labelIds\":[\"SENT\"]}", SENDER_V_OK,
         "18f2"},
        {429, "{\"error\":{\"code\":429}}", SENDER_V_RETRY, "http_429"},
        {503, "", SENDER_V_RETRY, "http_503"},
        {401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", SENDER_V_FINAL,
         "http_401"},
        {400, "{\"error\":{\"code\":400}}", SENDER_V_FINAL, "http_400"},
    };
    static const struct {
        int rc;
        long code;
        enum sender_verdict v;
        const char *want;
        bool ambiguous;
    } smtp[] = {
        {0, 250, SENDER_V_OK, "<m@x>", false},
        {55 /* CURLE_SEND_ERROR */, 554, SENDER_V_FINAL, "smtp_554", false},
        {67 /* CURLE_LOGIN_DENIED */, 535, SENDER_V_FINAL, "smtp_535", false},
        {55, 451, SENDER_V_RETRY, "smtp_451", false},
        {7 /* CURLE_COULDNT_CONNECT */, 0, SENDER_V_RETRY, "network", false},
        {28 /* CURLE_OPERATION_TIMEDOUT */, 0, SENDER_V_RETRY, "timeout", true},
    };
    struct sender_result r;

    (void)state;
    for (size_t i = 0; i < sizeof(gmail) / sizeof(gmail[0]); i++) {
        sender_email.parse(gmail[i].status, gmail[i].body, strlen(gmail[i].body), NULL, &r);
        assert_int_equal(r.v, gmail[i].v);
        assert_string_equal(r.v == SENDER_V_OK ? r.pmid : r.code, gmail[i].want);
    }
    for (size_t i = 0; i < sizeof(smtp) / sizeof(smtp[0]); i++) {
        sender_smtp_result(smtp[i].rc, smtp[i].code, "<m@x>", &r);
        assert_int_equal(r.v, smtp[i].v);
        assert_string_equal(r.v == SENDER_V_OK ? r.pmid : r.code, smtp[i].want);
        assert_int_equal(r.ambiguous, smtp[i].ambiguous);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_order),   cmocka_unit_test(parse_answers),
        cmocka_unit_test(build_requests), cmocka_unit_test(buckets),
        cmocka_unit_test(bucket_holds),   cmocka_unit_test(grouped_runs),
        cmocka_unit_test(small_parsers),  cmocka_unit_test(pg_arrays),
        cmocka_unit_test(mime_messages),  cmocka_unit_test(email_requests),
        cmocka_unit_test(email_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
