#ifndef INGEST_FIXTURE_H
#define INGEST_FIXTURE_H
/*
 * ingest_fixture - shared by test_ingest_*.c: the channels the tests
 * configure, and running one fixture from tests/fixtures/<provider>/ through
 * its parser, signed the way the provider signs it. WhatsApp and Telegram
 * signatures are computed here over the exact fixture bytes; Twilio's come
 * from the fixture's .sig file, computed by an independent implementation of
 * Twilio's algorithm when the fixture was written (with the URL in .url).
 * Include after cmocka.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>

#include "ingest.h"
#include "tn_test.h"

#define FX_TENANT "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11"
#define FX_TENANT2 "5f0d7a52-3c1b-4e8e-8f43-7a2b9c4d1e20"
#define FX_TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define FX_NOW_MS 1767225600000LL /* 2026-01-01T00:00:00.000Z */
#define FX_WA_SECRET "wa-app-secret"
#define FX_WA_VERIFY "verify-me"
#define FX_TW_TOKEN "12345"
#define FX_TW_ACCOUNT "AC00000000000000000000000000000000"
#define FX_TG_SECRET "tg-secret_TOKEN-1"

/* What a test does to an otherwise valid request. */
enum fx_mut {
    FX_OK,
    FX_TAMPER_SIG,   /* one signature character changed */
    FX_NO_SIG,       /* header absent */
    FX_WRONG_SECRET, /* signed with another secret */
    FX_TRUNCATE,     /* body cut in half (WhatsApp: re-signed, so only the JSON is bad) */
    FX_TAMPER_BODY,  /* body changed after signing */
    FX_CTYPE,        /* Content-Type text/plain */
    FX_CHANNEL,      /* unknown {channel} */
    FX_PORT,         /* Twilio: URL with :443 added (signature computed without) */
};

struct fx_channel {
    const char *key; /* phone_number_id or {channel} */
    const char *provider;
    struct ingest_route route;
};

static const struct fx_channel fx_channels[] = {
    {"106540352242922",
     INGEST_LOOKUP_WHATSAPP,
     {.tenant = FX_TENANT,
      .channel = "wa-main",
      .secret = FX_WA_SECRET,
      .verify_token = FX_WA_VERIFY}},
    {"106540352242923",
     INGEST_LOOKUP_WHATSAPP,
     {.tenant = FX_TENANT2,
      .channel = "wa-second",
      .secret = FX_WA_SECRET,
      .verify_token = FX_WA_VERIFY}},
    {"106540352242924",
     INGEST_LOOKUP_WHATSAPP,
     {.tenant = FX_TENANT,
      .channel = "wa-other-app",
      .secret = "other-app-secret",
      .verify_token = "other-verify"}},
    {"sms",
     INGEST_LOOKUP_TWILIO,
     {.tenant = FX_TENANT, .channel = "sms", .secret = FX_TW_TOKEN, .account = FX_TW_ACCOUNT}},
    {"tg-bot",
     INGEST_LOOKUP_TELEGRAM,
     {.tenant = FX_TENANT, .channel = "tg-bot", .secret = FX_TG_SECRET}},
};

/* fx_lookup - the test's routing cache */
static inline const struct ingest_route *fx_lookup(void *arg, const char *provider, const char *key)
{
    unsigned char h[TN_SHA256_LEN];

    (void)arg;
    for (size_t i = 0; i < sizeof(fx_channels) / sizeof(fx_channels[0]); i++) {
        const struct fx_channel *c = &fx_channels[i];

        if (strcmp(provider, INGEST_LOOKUP_WHATSAPP_VERIFY) == 0 && c->route.verify_token != NULL) {
            char *hex;
            bool hit;

            tn_sha256(c->route.verify_token, strlen(c->route.verify_token), h);
            hex = tn_hex_encode(h, sizeof(h));
            hit = strcmp(hex, key) == 0;
            tn_free(hex);
            if (hit)
                return &c->route;
        } else if (strcmp(provider, c->provider) == 0 && strcmp(key, c->key) == 0) {
            return &c->route;
        }
    }
    return NULL;
}

/* fx_read - new NUL-terminated contents of tests/fixtures/<dir>/<file>, or NULL */
static inline char *fx_read(const char *dir, const char *file, size_t *len)
{
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/tests/fixtures/%s/%s", tn_test_env("TN_SRC_DIR"), dir, file);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = tn_xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* fx_chomp - drop trailing newlines */
static inline char *fx_chomp(char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* fx_wa_sig - "sha256=<hex>" of body under secret */
static inline char *fx_wa_sig(const char *secret, const char *body, size_t len)
{
    unsigned char mac[TN_SHA256_LEN];
    char *hex, *out = tn_xmalloc(8 + 2 * TN_SHA256_LEN);

    tn_hmac_sha256(secret, strlen(secret), body, len, mac);
    hex = tn_hex_encode(mac, sizeof(mac));
    snprintf(out, 8 + 2 * TN_SHA256_LEN, "sha256=%s", hex);
    tn_free(hex);
    return out;
}

/* fx_tamper - change one character of s in place (stays printable) */
static inline void fx_tamper(char *s)
{
    size_t n = strlen(s);

    if (n > 0)
        s[n - 1] = s[n - 1] == 'a' ? 'b' : 'a';
}

/* fx_run - run fixture <provider>/<name> (file name with extension) */
static inline void fx_run(const char *provider, const char *name, enum fx_mut mut,
                          struct ingest_result *res)
{
    struct ingest_request req = {.method = "POST", .now_ms = FX_NOW_MS, .trace = FX_TRACE};
    char *body, *sig = NULL, *url = NULL, side[256], *urlport = NULL;
    size_t len = 0, stem = strcspn(name, ".");
    bool json = strstr(name, ".json") != NULL;

    memset(res, 0, sizeof(*res));
    body = fx_read(provider, name, &len);
    assert_non_null(body);
    if (mut == FX_TRUNCATE)
        len /= 2;
    if (strcmp(provider, "whatsapp") == 0) {
        sig = fx_wa_sig(mut == FX_WRONG_SECRET ? "not-the-secret" : FX_WA_SECRET, body, len);
        req.content_type = "application/json";
    } else if (strcmp(provider, "twilio") == 0) {
        snprintf(side, sizeof(side), "%.*s.sig", (int)stem, name);
        sig = fx_chomp(fx_read("twilio", side, NULL));
        snprintf(side, sizeof(side), "%.*s.url", (int)stem, name);
        url = fx_chomp(fx_read("twilio", side, NULL));
        assert_non_null(sig);
        assert_non_null(url);
        req.content_type = json ? "application/json" : "application/x-www-form-urlencoded";
        req.channel = "sms";
        if (mut == FX_WRONG_SECRET) {
            unsigned char mac[TN_SHA1_LEN];

            tn_hmac_sha1("54321", 5, url, strlen(url), mac);
            tn_free(sig);
            sig = tn_base64_encode(mac, sizeof(mac), false);
        }
    } else {
        sig = tn_xstrdup(mut == FX_WRONG_SECRET ? "tg-secret_TOKEN-2" : FX_TG_SECRET);
        req.content_type = "application/json";
        req.channel = "tg-bot";
    }
    if (mut == FX_TAMPER_SIG)
        fx_tamper(sig);
    if (mut == FX_TAMPER_BODY) { /* flip the case of a letter: still well-formed */
        size_t i = len / 2;

        while (i < len &&
               !((body[i] >= 'a' && body[i] <= 'z') || (body[i] >= 'A' && body[i] <= 'Z')))
            i++;
        assert_true(i < len);
        body[i] ^= 0x20;
    }
    if (mut == FX_CTYPE)
        req.content_type = "text/plain";
    if (mut == FX_CHANNEL)
        req.channel = "no-such-channel";
    if (mut == FX_PORT && url != NULL) {
        const char *p = strstr(url, "/webhooks");

        urlport = tn_xmalloc(strlen(url) + 8);
        snprintf(urlport, strlen(url) + 8, "%.*s:443%s", (int)(p - url), url, p);
    }
    req.signature = mut == FX_NO_SIG ? NULL : sig;
    req.url = urlport != NULL ? urlport : url;
    req.body = body;
    req.body_len = len;
    if (strcmp(provider, "whatsapp") == 0)
        ingest_whatsapp_post(&req, fx_lookup, NULL, res);
    else if (strcmp(provider, "twilio") == 0)
        ingest_twilio_post(&req, fx_lookup, NULL, res);
    else
        ingest_telegram_post(&req, fx_lookup, NULL, res);
    tn_free(urlport);
    tn_free(url);
    tn_free(sig);
    tn_free(body);
}

#endif
