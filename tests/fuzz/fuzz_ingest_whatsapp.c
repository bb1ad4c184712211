/*
 * fuzz_ingest_whatsapp - arbitrary bodies and signature headers into the
 * WhatsApp webhook parser (POST and the GET challenge) with a fixed route.
 * The first byte picks the mode: bit 0 signs the body correctly (so the
 * fuzzer reaches normalisation), bit 1 feeds the rest as a GET query.
 * Build: CC=clang cmake -S . -B build-fuzz -DTN_FUZZ=ON; target fuzz_ingest_whatsapp.
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
    .channel = "wa-main",
    .secret = "wa-app-secret",
    .verify_token = "verify-me",
};

/* lookup - every phone_number_id and token hash routes to the one channel,
 * except "404" (so the unknown-channel path runs too) */
static const struct ingest_route *lookup(void *arg, const char *provider, const char *key)
{
    (void)arg;
    (void)provider;
    return strcmp(key, "404") == 0 ? NULL : &route;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one request per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_request req = {
        .method = "POST", .content_type = "application/json", .now_ms = 1767225600000LL};
    struct ingest_result res = {0};
    unsigned char mac[TN_SHA256_LEN];
    char sig[8 + 2 * TN_SHA256_LEN], *hex, *text;
    uint8_t mode;

    if (size == 0)
        return 0;
    mode = data[0];
    req.body = (const char *)data + 1;
    req.body_len = size - 1;
    if (mode & 2) {
        text = tn_xstrndup(req.body, req.body_len);
        req.query = text;
        ingest_whatsapp_challenge(&req, lookup, NULL, &res);
        ingest_result_free(&res);
        tn_free(text);
        return 0;
    }
    if (mode & 1) {
        tn_hmac_sha256(route.secret, strlen(route.secret), req.body, req.body_len, mac);
        hex = tn_hex_encode(mac, sizeof(mac));
        snprintf(sig, sizeof(sig), "sha256=%s", hex);
        tn_free(hex);
    } else {
        snprintf(sig, sizeof(sig), "sha256=%.*s", (int)(req.body_len < 64 ? req.body_len : 64),
                 req.body);
    }
    req.signature = sig;
    ingest_whatsapp_post(&req, lookup, NULL, &res);
    if (res.status != 200 && res.nentries != 0)
        __builtin_trap(); /* all-or-nothing broken */
    ingest_result_free(&res);
    return 0;
}
