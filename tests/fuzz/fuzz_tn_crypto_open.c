/*
 * NAME
 *	fuzz_tn_crypto_open - libFuzzer target for tn_crypto's parsers
 * DESCRIPTION
 *	Feeds arbitrary bytes to tn_open (as a sealed value, and with part of
 *	the input as AAD), tn_sealed_key_id, tn_base64_decode (both alphabets),
 *	tn_hex_decode and tn_keyring_parse. None may crash or leak. Besides
 *	crashes it checks properties: a decoded string re-encodes to exactly
 *	the input (the decoders accept only canonical spellings), and sealing
 *	the input then opening it gives the input back.
 * RUNS ON
 *	libFuzzer's thread.
 * DIAGNOSTICS
 *	abort() on a broken property, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two keys (ids 1 and 2): bytes 0..31 and 32 bytes of 0x01. */
#define RING                                                                                       \
    "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,2:"                                            \
    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

/* check - abort when a property does not hold */
static void check(int ok)
{
    if (!ok)
        abort();
}

/* fuzz_base64 - decode; on success the canonical re-encoding is the input */
static void fuzz_base64(const char *s, size_t len, bool url)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    size_t body = len;
    char *again;

    if (tn_base64_decode(s, len, url, &out, &outlen) != TN_OK) {
        check(out == NULL);
        return;
    }
    again = tn_base64_encode(out, outlen, url);
    if (url) {
        while (body > 0 && s[body - 1] == '=')
            body--; /* base64url padding is optional on input, never emitted */
    }
    check(strlen(again) == body && memcmp(again, s, body) == 0);
    tn_free(again);
    tn_free(out);
}

/* fuzz_hex - decode; on success the lowercase re-encoding matches */
static void fuzz_hex(const char *s, size_t len)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    char *again;

    if (tn_hex_decode(s, len, &out, &outlen) != TN_OK)
        return;
    check(outlen * 2 == len);
    again = tn_hex_encode(out, outlen);
    for (size_t i = 0; i < len; i++)
        check(again[i] == (s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]));
    tn_free(again);
    tn_free(out);
}

/* fuzz_open - the input as a sealed value, with and without a split-off AAD */
static void fuzz_open(const struct tn_keyring *k, const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    size_t split = size > 0 ? data[0] % 16 : 0;
    uint32_t id;

    (void)tn_sealed_key_id(data, size, &id);
    if (tn_open(k, NULL, 0, data, size, &out, &outlen) == TN_OK)
        tn_free(out);
    if (split < size && tn_open(k, data, split, data + split, size - split, &out, &outlen) == TN_OK)
        tn_free(out);
}

/* fuzz_roundtrip - sealing the input and opening it gives the input back */
static void fuzz_roundtrip(const struct tn_keyring *k, const uint8_t *data, size_t size)
{
    unsigned char *sealed = NULL, *out = NULL;
    size_t slen = 0, outlen = 0;

    check(tn_seal(k, "aad", 3, data, size, &sealed, &slen) == TN_OK);
    check(tn_open(k, "aad", 3, sealed, slen, &out, &outlen) == TN_OK);
    check(outlen == size && memcmp(out, data, size) == 0);
    tn_free(out);
    check(tn_open(k, "aae", 3, sealed, slen, &out, &outlen) == TN_EDENIED);
    tn_free(sealed);
}

/* fuzz_keyring - the input as a key ring spec */
static void fuzz_keyring(const uint8_t *data, size_t size)
{
    char *spec = tn_xstrndup((const char *)data, size);
    struct tn_keyring *k = NULL;

    if (tn_keyring_parse(spec, &k) == TN_OK) {
        check(tn_keyring_current(k) != 0);
        tn_keyring_free(k);
    } else {
        check(k == NULL);
    }
    tn_free(spec);
}

/* LLVMFuzzerTestOneInput - every parser sees every input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tn_keyring *ring;

    if (ring == NULL)
        check(tn_keyring_parse(RING, &ring) == TN_OK); /* lives for the process */
    fuzz_open(ring, data, size);
    fuzz_roundtrip(ring, data, size);
    fuzz_base64((const char *)data, size, false);
    fuzz_base64((const char *)data, size, true);
    fuzz_hex((const char *)data, size);
    fuzz_keyring(data, size);
    return 0;
}
