/*
 * fuzz_ingest_twilio - arbitrary form (or JSON) bodies into the Twilio
 * webhook parser with a fixed route. The first byte picks the mode: bit 0
 * signs the request correctly (reaching normalisation), bit 1 sends the body
 * as JSON with a matching bodySHA256 in the URL, bit 2 omits the AccountSid
 * check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>

#include "ingest.h"

static const struct ingest_route route = {
    .tenant = "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11",
    .channel = "sms",
    .secret = "12345",
    .account = "AC00000000000000000000000000000000",
};

static const struct ingest_route route_any = {
    .tenant = "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11",
    .channel = "sms",
    .secret = "12345",
};

/* lookup - the one channel; arg selects whether AccountSid is checked */
static const struct ingest_route *lookup(void *arg, const char *provider, const char *key)
{
    (void)provider;
    (void)key;
    return arg != NULL ? &route_any : &route;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one request per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char base[] = "https://mycompany.example/webhooks/twilio/sms?outbound=o1";
    struct ingest_request req = {.method = "POST", .channel = "sms", .now_ms = 1767225600000LL};
    struct ingest_result res = {0};
    struct ingest_form f = {0};
    unsigned char h[TN_SHA256_LEN];
    char url[256], *hex, *sig = NULL;
    uint8_t mode;

    if (size == 0)
        return 0;
    mode = data[0];
    req.body = (const char *)data + 1;
    req.body_len = size - 1;
    snprintf(url, sizeof(url), "%s", base);
    req.content_type = "application/x-www-form-urlencoded";
    if (mode & 2) {
        tn_sha256(req.body, req.body_len, h);
        hex = tn_hex_encode(h, sizeof(h));
        snprintf(url, sizeof(url), "%s&bodySHA256=%s", base, hex);
        tn_free(hex);
        req.content_type = "application/json";
    }
    req.url = url;
    if ((mode & 1) && (mode & 2)) {
        sig = ingest_twilio_sign(route.secret, url, &f);
    } else if ((mode & 1) && ingest_form_parse(req.body, req.body_len, &f) == TN_OK) {
        sig = ingest_twilio_sign(route.secret, url, &f);
    } else {
        sig = tn_xstrndup(req.body, req.body_len < 28 ? req.body_len : 28);
    }
    ingest_form_free(&f);
    req.signature = sig;
    ingest_twilio_post(&req, lookup, (mode & 4) ? (void *)1 : NULL, &res);
    if (res.status != 200 && res.nentries != 0)
        __builtin_trap(); /* all-or-nothing broken */
    ingest_result_free(&res);
    tn_free(sig);
    return 0;
}
