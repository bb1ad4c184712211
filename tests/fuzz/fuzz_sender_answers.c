/*
 * fuzz_sender_answers - arbitrary provider answers into tern-sender's
 * classifiers (the providers' parse: WhatsApp Cloud, Twilio, Telegram,
 * Gmail), with an arbitrary Retry-After header. Input: byte 0 picks the
 * provider, bytes 1-2 the HTTP status (100-599), byte 3 the length of the
 * Retry-After value that follows (0: none), then the body.
 *
 * Checks what a caller relies on: a verdict of the enum, NUL-terminated
 * provider id and code, an accepted answer with a provider id, and a
 * Retry-After that is never negative.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sender.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct sender_provider *const provs[] = {&sender_whatsapp, &sender_twilio,
                                                      &sender_telegram, &sender_email};

/* LLVMFuzzerTestOneInput - one answer per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct sender_provider *p;
    struct sender_result r;
    char ra[32];
    size_t ralen;
    long status;

    if (size < 4)
        return 0;
    p = provs[data[0] % (sizeof(provs) / sizeof(provs[0]))];
    status = 100 + (long)(((unsigned)data[1] << 8 | data[2]) % 500);
    ralen = data[3] % sizeof(ra);
    if (size < 4 + ralen)
        return 0;
    memcpy(ra, data + 4, ralen);
    ra[ralen] = '\0';
    memset(&r, 0x5a, sizeof(r)); /* parse must set everything it reports */
    p->parse(status, (const char *)data + 4 + ralen, size - 4 - ralen, ralen > 0 ? ra : NULL, &r);
    if (r.v != SENDER_V_OK && r.v != SENDER_V_RETRY && r.v != SENDER_V_FINAL)
        __builtin_trap();
    if (memchr(r.pmid, '\0', sizeof(r.pmid)) == NULL ||
        memchr(r.code, '\0', sizeof(r.code)) == NULL)
        __builtin_trap();
    if (r.v == SENDER_V_OK && r.pmid[0] == '\0')
        __builtin_trap(); /* accepted without an id: statuses could never match */
    if (r.retry_after_ms < 0)
        __builtin_trap();
    return 0;
}
