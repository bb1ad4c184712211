/*
 * fuzz_ingest_telegram - arbitrary bodies and secret-token headers into the
 * Telegram webhook parser with a fixed route. The first byte picks the
 * mode: bit 0 sends the right secret (reaching normalisation).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tn/tn_mem.h>

#include "ingest.h"

static const struct ingest_route route = {
    .tenant = "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11",
    .channel = "tg-bot",
    .secret = "tg-secret_TOKEN-1",
};

/* lookup - the one channel */
static const struct ingest_route *lookup(void *arg, const char *provider, const char *key)
{
    (void)arg;
    (void)provider;
    (void)key;
    return &route;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one request per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_request req = {.method = "POST",
                                 .channel = "tg-bot",
                                 .content_type = "application/json",
                                 .now_ms = 1767225600000LL};
    struct ingest_result res = {0};
    char *sig;

    if (size == 0)
        return 0;
    req.body = (const char *)data + 1;
    req.body_len = size - 1;
    sig = (data[0] & 1) ? tn_xstrdup(route.secret)
                        : tn_xstrndup(req.body, req.body_len < 24 ? req.body_len : 24);
    req.signature = sig;
    ingest_telegram_post(&req, lookup, NULL, &res);
    if (res.status != 200 && res.nentries != 0)
        __builtin_trap(); /* all-or-nothing broken */
    ingest_result_free(&res);
    tn_free(sig);
    return 0;
}
