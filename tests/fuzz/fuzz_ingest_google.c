/*
 * fuzz_ingest_google - arbitrary X-Goog-* header values into the Google
 * Calendar push parser with a fixed channel. The input is split on NUL
 * bytes into channel id, token, resource id, state and message number (a
 * missing part is an absent header). The first byte picks the mode: bit 0
 * sends the right channel id, bit 1 the right token (reaching the entry).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tn/tn_mem.h>
#include <tn/tn_proto.h>

#include "ingest.h"

#define CHANNEL "0f6c1d2e-9a8b-4c7d-8e6f-5a4b3c2d1e0f"
#define TOKEN "fuzz-channel-token"

static struct ingest_route route = {
    .tenant = "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11",
    .channel = CHANNEL,
    .account = "3b9d2c41-7e0f-4a55-9d1e-0c2f6a8b7d10",
};

/* lookup - the one channel */
static const struct ingest_route *lookup(void *arg, const char *provider, const char *key)
{
    (void)arg;
    if (strcmp(provider, INGEST_LOOKUP_GOOGLE_CALENDAR) != 0 || strcmp(key, CHANNEL) != 0)
        return NULL;
    return &route;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one notification per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_request req = {.method = "POST", .now_ms = 1767225600000LL};
    struct ingest_result res = {0};
    struct ingest_goog g = {0};
    const char **slot[] = {&g.channel_id, &g.token, &g.resource_id, &g.resource_state,
                           &g.message_number};
    char *copy;
    size_t part = 0, start = 0;

    if (size == 0)
        return 0;
    if (route.secret == NULL)
        route.secret = ingest_google_token_hash(TOKEN); /* kept for the process's life */
    copy = tn_xmalloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    for (size_t i = 0; i < size && part < 5; i++) {
        if (copy[i] == '\0') {
            *slot[part++] = copy + start;
            start = i + 1;
        }
    }
    if (data[0] & 1)
        g.channel_id = CHANNEL;
    if (data[0] & 2)
        g.token = TOKEN;
    req.goog = &g;
    ingest_google_push(&req, lookup, NULL, &res);
    if (res.status != 200 && res.nentries != 0)
        __builtin_trap(); /* all-or-nothing broken */
    if (res.nentries > 1 || (res.nentries == 1 && strcmp(res.entries[0].stream, TN_STREAM_CAL)))
        __builtin_trap();
    ingest_result_free(&res);
    tn_free(copy);
    return 0;
}
