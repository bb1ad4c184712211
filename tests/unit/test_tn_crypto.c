/*
 * NAME
 *	test_tn_crypto - known-answer and behaviour tests for tn_crypto
 * DESCRIPTION
 *	HMAC against RFC 4231 (SHA-256) and RFC 2202 (SHA-1), SHA-256 of "abc",
 *	the Twilio signature vector from the reference notes, AES-256-GCM against
 *	the GCM specification's test cases 13-16, the sealed layout checked by an
 *	independent EVP decryption, tampering, wrong AAD, key rotation, key ring
 *	parsing, and strict hex/base64/base64url decoding. Table-driven (R23).
 * RUNS ON
 *	the test's main thread; needs no servers.
 * DIAGNOSTICS
 *	cmocka output; a failing table row names itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_secrets.h>

#include "tn_test.h"

/* hexbin - decode a hex literal of the tables or fail the test */
static unsigned char *hexbin(const char *hex, size_t *len)
{
    unsigned char *out = NULL;

    assert_int_equal(tn_hex_decode(hex, strlen(hex), &out, len), TN_OK);
    return out;
}

/* assert_hex - bytes p[0..n) spell hex */
static void assert_hex(const unsigned char *p, size_t n, const char *hex, const char *name)
{
    char *got = tn_hex_encode(p, n);

    if (strcmp(got, hex) != 0)
        fail_msg("%s: got %s want %s", name, got, hex);
    tn_free(got);
}

/* repeat - hex string of n copies of byte b, in a static buffer */
static const char *repeat(unsigned char b, size_t n)
{
    static char buf[2 * 256 + 1];
    char *hex;
    unsigned char raw[256];

    assert_true(n <= sizeof(raw));
    memset(raw, b, n);
    hex = tn_hex_encode(raw, n);
    snprintf(buf, sizeof(buf), "%s", hex);
    tn_free(hex);
    return buf;
}

#define LARGE_KEY_MSG "Test Using Larger Than Block-Size Key - Hash Key First"
#define RFC4231_7_MSG                                                                              \
    "This is a test using a larger than block-size key and a larger than block-size data. The "    \
    "key needs to be hashed before being used by the HMAC algorithm."

struct hmac_case {
    const char *name;
    unsigned char key_byte; /* key is key_len copies of it, unless key is set */
    size_t key_len;
    const char *key;        /* literal key */
    const char *key_hex;    /* hex key (RFC case 4) */
    unsigned char msg_byte; /* msg is msg_len copies of it, unless msg is set */
    size_t msg_len;
    const char *msg;
    const char *want;
};

static const char rfc_key4[] = "0102030405060708090a0b0c0d0e0f10111213141516171819";

/* clang-format off */
static const struct hmac_case sha256_cases[] = {
    {.name = "rfc4231 1", .key_byte = 0x0b, .key_len = 20, .msg = "Hi There",
     .want = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {.name = "rfc4231 2", .key = "Jefe", .msg = "what do ya want for nothing?",
     .want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {.name = "rfc4231 3", .key_byte = 0xaa, .key_len = 20, .msg_byte = 0xdd, .msg_len = 50,
     .want = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {.name = "rfc4231 4", .key_hex = rfc_key4, .msg_byte = 0xcd, .msg_len = 50,
     .want = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {.name = "rfc4231 6", .key_byte = 0xaa, .key_len = 131, .msg = LARGE_KEY_MSG,
     .want = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {.name = "rfc4231 7", .key_byte = 0xaa, .key_len = 131, .msg = RFC4231_7_MSG,
     .want = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

static const struct hmac_case sha1_cases[] = {
    {.name = "rfc2202 1", .key_byte = 0x0b, .key_len = 20, .msg = "Hi There",
     .want = "b617318655057264e28bc0b6fb378c8ef146be00"},
    {.name = "rfc2202 2", .key = "Jefe", .msg = "what do ya want for nothing?",
     .want = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
    {.name = "rfc2202 3", .key_byte = 0xaa, .key_len = 20, .msg_byte = 0xdd, .msg_len = 50,
     .want = "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
    {.name = "rfc2202 4", .key_hex = rfc_key4, .msg_byte = 0xcd, .msg_len = 50,
     .want = "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
    {.name = "rfc2202 5", .key_byte = 0x0c, .key_len = 20, .msg = "Test With Truncation",
     .want = "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
    {.name = "rfc2202 6", .key_byte = 0xaa, .key_len = 80, .msg = LARGE_KEY_MSG,
     .want = "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
    {.name = "rfc2202 7", .key_byte = 0xaa, .key_len = 80,
     .msg = "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
     .want = "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
};
/* clang-format on */

/* hmac_inputs - materialise a case's key and message (both new) */
static void hmac_inputs(const struct hmac_case *c, unsigned char **key, size_t *klen,
                        unsigned char **msg, size_t *mlen)
{
    if (c->key != NULL) {
        *klen = strlen(c->key);
        *key = tn_xmemdup(c->key, *klen);
    } else if (c->key_hex != NULL) {
        *key = hexbin(c->key_hex, klen);
    } else {
        *key = hexbin(repeat(c->key_byte, c->key_len), klen);
    }
    if (c->msg != NULL) {
        *mlen = strlen(c->msg);
        *msg = tn_xmemdup(c->msg, *mlen);
    } else {
        *msg = hexbin(repeat(c->msg_byte, c->msg_len), mlen);
    }
}

/* test_hmac_sha256 - RFC 4231 cases 1-4, 6, 7 */
static void test_hmac_sha256(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sha256_cases) / sizeof(sha256_cases[0]); i++) {
        const struct hmac_case *c = &sha256_cases[i];
        unsigned char *key, *msg;
        size_t klen, mlen;
        unsigned char mac[TN_SHA256_LEN];

        hmac_inputs(c, &key, &klen, &msg, &mlen);
        tn_hmac_sha256(key, klen, msg, mlen, mac);
        assert_hex(mac, sizeof(mac), c->want, c->name);
        tn_free(key);
        tn_free(msg);
    }
}

/* test_hmac_sha1 - RFC 2202 cases 1-7 */
static void test_hmac_sha1(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sha1_cases) / sizeof(sha1_cases[0]); i++) {
        const struct hmac_case *c = &sha1_cases[i];
        unsigned char *key, *msg;
        size_t klen, mlen;
        unsigned char mac[TN_SHA1_LEN];

        hmac_inputs(c, &key, &klen, &msg, &mlen);
        tn_hmac_sha1(key, klen, msg, mlen, mac);
        assert_hex(mac, sizeof(mac), c->want, c->name);
        tn_free(key);
        tn_free(msg);
    }
}

/* test_sha256 - FIPS 180-2 "abc" and the empty string */
static void test_sha256(void **state)
{
    unsigned char d[TN_SHA256_LEN];

    (void)state;
    tn_sha256("abc", 3, d);
    assert_hex(d, sizeof(d), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
               "abc");
    tn_sha256(NULL, 0, d);
    assert_hex(d, sizeof(d), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "empty");
}

struct param {
    const char *k, *v;
};

/* param_cmp - qsort by key, byte order (what Twilio's helpers do) */
static int param_cmp(const void *a, const void *b)
{
    return strcmp(((const struct param *)a)->k, ((const struct param *)b)->k);
}

/* test_twilio_signature - URL + sorted key/value pairs, HMAC-SHA1, base64 */
static void test_twilio_signature(void **state)
{
    struct param params[] = {
        {"To", "+15557654321"}, {"MessageSid", "SM0123456789abcdef0123456789abcdef"},
        {"Body", "Hi there"},   {"AccountSid", "AC00000000000000000000000000000000"},
        {"NumMedia", "0"},      {"From", "+15551234567"},
    };
    const size_t n = sizeof(params) / sizeof(params[0]);
    char s[1024];
    size_t len;
    unsigned char mac[TN_SHA1_LEN];
    char *sig;

    (void)state;
    qsort(params, n, sizeof(params[0]), param_cmp);
    len = (size_t)snprintf(s, sizeof(s), "%s",
                           "https://mycompany.example/webhooks/twilio/sms?tenant=7");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%s", params[i].k, params[i].v);
    assert_true(len < sizeof(s));
    tn_hmac_sha1("12345", 5, s, len, mac);
    sig = tn_base64_encode(mac, sizeof(mac), false);
    assert_string_equal(sig, "ILvKC3e8/IckH4v434XbFVUrGiE=");
    tn_free(sig);
}

/* test_ct_equal - equal, differing last byte, differing first byte, empty */
static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(tn_ct_equal("abcdef", "abcdef", 6));
    assert_false(tn_ct_equal("abcdef", "abcdeg", 6));
    assert_false(tn_ct_equal("xbcdef", "abcdef", 6));
    assert_true(tn_ct_equal("abc", "abd", 2));
    assert_true(tn_ct_equal("a", "b", 0));
}

/* str_cmp - qsort helper for char * */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* test_random_id - prefix + 22 base64url characters, no repeats in 2000 */
static void test_random_id(void **state)
{
    enum { N = 2000 };
    char **ids = tn_xcalloc(N, sizeof(*ids));
    unsigned char *raw = NULL;
    size_t rawlen = 0;

    (void)state;
    for (size_t i = 0; i < N; i++) {
        ids[i] = tn_random_id("ch_");
        assert_int_equal(strlen(ids[i]), 3 + 22);
        assert_memory_equal(ids[i], "ch_", 3);
        assert_int_equal(strspn(ids[i] + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789-_"),
                         22);
        /* the 22 characters are exactly 16 bytes of base64url */
        assert_int_equal(tn_base64_decode(ids[i] + 3, 22, true, &raw, &rawlen), TN_OK);
        assert_int_equal(rawlen, 16);
        tn_free(raw);
    }
    qsort(ids, N, sizeof(*ids), str_cmp);
    for (size_t i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    for (size_t i = 0; i < N; i++)
        tn_free(ids[i]);
    tn_free(ids);

    char *bare = tn_random_id("");
    assert_int_equal(strlen(bare), 22);
    tn_free(bare);
}

/* test_random_bytes - not all zero, and two draws differ */
static void test_random_bytes(void **state)
{
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};

    (void)state;
    tn_random_bytes(a, sizeof(a));
    tn_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    tn_random_bytes(a, 0);
}

struct b64_case {
    const char *name;
    const char *in;  /* raw bytes (as a string) */
    const char *std; /* standard, padded */
    const char *url; /* base64url, unpadded */
};

/* RFC 4648 section 10, plus bytes that differ between the alphabets. */
/* clang-format off */
static const struct b64_case b64_cases[] = {
    {.name = "empty", .in = "", .std = "", .url = ""},
    {.name = "f", .in = "f", .std = "Zg==", .url = "Zg"},
    {.name = "fo", .in = "fo", .std = "Zm8=", .url = "Zm8"},
    {.name = "foo", .in = "foo", .std = "Zm9v", .url = "Zm9v"},
    {.name = "foob", .in = "foob", .std = "Zm9vYg==", .url = "Zm9vYg"},
    {.name = "fooba", .in = "fooba", .std = "Zm9vYmE=", .url = "Zm9vYmE"},
    {.name = "foobar", .in = "foobar", .std = "Zm9vYmFy", .url = "Zm9vYmFy"},
    {.name = "alphabet", .in = "\xfb\xff\xbf", .std = "+/+/", .url = "-_-_"},
    {.name = "alphabet pad", .in = "\xfb\xff", .std = "+/8=", .url = "-_8"},
};
/* clang-format on */

/* test_base64_roundtrip - encode matches, decode gives the bytes back */
static void test_base64_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        const struct b64_case *c = &b64_cases[i];
        size_t n = strlen(c->in);
        unsigned char *out = NULL;
        size_t outlen = 0;
        char *s;

        s = tn_base64_encode(c->in, n, false);
        assert_string_equal(s, c->std);
        tn_free(s);
        s = tn_base64_encode(c->in, n, true);
        assert_string_equal(s, c->url);
        tn_free(s);
        assert_int_equal(tn_base64_decode(c->std, strlen(c->std), false, &out, &outlen), TN_OK);
        assert_int_equal(outlen, n);
        assert_memory_equal(out, c->in, n);
        assert_int_equal(out[n], '\0');
        tn_free(out);
        assert_int_equal(tn_base64_decode(c->url, strlen(c->url), true, &out, &outlen), TN_OK);
        assert_int_equal(outlen, n);
        assert_memory_equal(out, c->in, n);
        tn_free(out);
    }
    /* base64url with the optional padding is accepted too */
    unsigned char *out = NULL;
    size_t outlen = 0;
    assert_int_equal(tn_base64_decode("-_8=", 4, true, &out, &outlen), TN_OK);
    assert_int_equal(outlen, 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    tn_free(out);

    /* every byte value and length survives both alphabets */
    unsigned char all[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof(all); n += 37) {
        for (int url = 0; url <= 1; url++) {
            char *s = tn_base64_encode(all, n, url);
            assert_int_equal(tn_base64_decode(s, strlen(s), url, &out, &outlen), TN_OK);
            assert_int_equal(outlen, n);
            assert_memory_equal(out, all, n);
            tn_free(out);
            tn_free(s);
        }
    }
}

struct bad_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    bool url;
};

/* clang-format off */
static const struct bad_case b64_bad[] = {
    {.name = "std missing padding", .in = "Zg"},
    {.name = "std short padding", .in = "Zg="},
    {.name = "url short padding", .in = "Zg=", .url = true},
    {.name = "one char", .in = "Z"},
    {.name = "one char url", .in = "Z", .url = true},
    {.name = "five chars url", .in = "Zm9vY", .url = true},
    {.name = "three pads", .in = "Z==="},
    {.name = "only pad", .in = "===="},
    {.name = "single pad", .in = "="},
    {.name = "pad on full quantum", .in = "Zm9v="},
    {.name = "pad on full quantum url", .in = "Zm9v=", .url = true},
    {.name = "too much pad", .in = "Zg===="},
    {.name = "pad in middle", .in = "Zg==Zg=="},
    {.name = "char after pad", .in = "Zg=a"},
    {.name = "newline", .in = "Zm9v\n"},
    {.name = "leading space", .in = " Zm9v"},
    {.name = "inner space", .in = "Zm 9v"},
    {.name = "bad char", .in = "Z*9v"},
    {.name = "embedded NUL", .in = "Zm\0v", .len = 4},
    {.name = "non-canonical 1 pad", .in = "Zm9="},
    {.name = "non-canonical 2 pad", .in = "Zh=="},
    {.name = "non-canonical url", .in = "Zh", .url = true},
    {.name = "url alphabet in std", .in = "-_8="},
    {.name = "std alphabet in url", .in = "+/8", .url = true},
    {.name = "high byte", .in = "Zm9\xc3"},
};
/* clang-format on */

/* test_base64_invalid - every malformed input is TN_EINVAL with no output */
static void test_base64_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_bad) / sizeof(b64_bad[0]); i++) {
        const struct bad_case *c = &b64_bad[i];
        unsigned char *out = (unsigned char *)"sentinel";
        size_t outlen = 99;
        enum tn_err err;

        err = tn_base64_decode(c->in, c->len ? c->len : strlen(c->in), c->url, &out, &outlen);
        if (err != TN_EINVAL)
            fail_msg("%s: got %s want invalid", c->name, tn_strerror(err));
        assert_null(out);
        assert_int_equal(outlen, 0);
    }
}

/* test_hex - round trip, either case in, lowercase out, invalid inputs */
static void test_hex(void **state)
{
    /* clang-format off */
    static const struct bad_case bad[] = {
        {.name = "odd", .in = "abc"}, {.name = "not hex", .in = "zz"},
        {.name = "0x", .in = "0x12"}, {.name = "space", .in = "12 "},
        {.name = "g", .in = "1g"},    {.name = "NUL", .in = "1\0", .len = 2},
    };
    /* clang-format on */
    unsigned char *out = NULL;
    size_t outlen = 0;
    char *s;

    (void)state;
    assert_int_equal(tn_hex_decode("00ff10Ab", 8, &out, &outlen), TN_OK);
    assert_int_equal(outlen, 4);
    assert_memory_equal(out, "\x00\xff\x10\xab", 4);
    s = tn_hex_encode(out, outlen);
    assert_string_equal(s, "00ff10ab");
    tn_free(s);
    tn_free(out);
    assert_int_equal(tn_hex_decode("", 0, &out, &outlen), TN_OK);
    assert_int_equal(outlen, 0);
    tn_free(out);
    s = tn_hex_encode("", 0);
    assert_string_equal(s, "");
    tn_free(s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].in);

        if (tn_hex_decode(bad[i].in, len, &out, &outlen) != TN_EINVAL)
            fail_msg("%s: accepted", bad[i].name);
        assert_null(out);
    }
}

struct gcm_case {
    const char *name, *key, *iv, *pt, *aad, *ct, *tag;
};

#define GCM_K16 "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define GCM_P15                                                                                    \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"                             \
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define GCM_C15                                                                                    \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"                             \
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
#define ZERO32 "0000000000000000000000000000000000000000000000000000000000000000"

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16. */
/* clang-format off */
static const struct gcm_case gcm_cases[] = {
    {.name = "gcm 13",
     .key = ZERO32,
     .iv = "000000000000000000000000",
     .pt = "",
     .aad = "",
     .ct = "",
     .tag = "530f8afbc74536b9a963b4f1c4cb738b"},
    {.name = "gcm 14",
     .key = ZERO32,
     .iv = "000000000000000000000000",
     .pt = "00000000000000000000000000000000",
     .aad = "",
     .ct = "cea7403d4d606b6e074ec5d3baf39d18",
     .tag = "d0d1c8a799996bf0265b98b5d48ab919"},
    {.name = "gcm 15",
     .key = GCM_K16,
     .iv = "cafebabefacedbaddecaf888",
     .pt = GCM_P15,
     .aad = "",
     .ct = GCM_C15,
     .tag = "b094dac5d93471bdec1a502270e3cc6c"},
    {.name = "gcm 16",
     .key = GCM_K16,
     .iv = "cafebabefacedbaddecaf888",
     .pt = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
           "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     .aad = "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     .ct = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
           "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     .tag = "76fc6ece0f4e1768cddf8853bb2d551b"},
};
/* clang-format on */

/* test_gcm_vectors - the raw AES-256-GCM path against the spec's vectors */
static void test_gcm_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(gcm_cases) / sizeof(gcm_cases[0]); i++) {
        const struct gcm_case *c = &gcm_cases[i];
        size_t klen, ivlen, ptlen, aadlen, ctlen;
        unsigned char *key = hexbin(c->key, &klen), *iv = hexbin(c->iv, &ivlen);
        unsigned char *pt = hexbin(c->pt, &ptlen), *aad = hexbin(c->aad, &aadlen);
        unsigned char *want = hexbin(c->ct, &ctlen);
        unsigned char *ct = tn_xmalloc(ptlen + 1), *back = tn_xmalloc(ptlen + 1);
        unsigned char tag[16];

        assert_int_equal(klen, 32);
        assert_int_equal(ivlen, 12);
        assert_int_equal(tn__crypto_gcm_encrypt(key, iv, aad, aadlen, pt, ptlen, ct, tag), TN_OK);
        assert_hex(ct, ptlen, c->ct, c->name);
        assert_hex(tag, sizeof(tag), c->tag, c->name);
        assert_int_equal(tn__crypto_gcm_decrypt(key, iv, aad, aadlen, want, ctlen, tag, back),
                         TN_OK);
        assert_memory_equal(back, pt, ptlen);
        tag[15] ^= 0x01;
        assert_int_equal(tn__crypto_gcm_decrypt(key, iv, aad, aadlen, want, ctlen, tag, back),
                         TN_EDENIED);
        tn_free(key);
        tn_free(iv);
        tn_free(pt);
        tn_free(aad);
        tn_free(want);
        tn_free(ct);
        tn_free(back);
    }
}

/* ring_spec - "id:base64(32 bytes of fill)" appended to buf */
static void ring_add(char *buf, size_t size, uint32_t id, unsigned char fill, size_t keylen)
{
    unsigned char key[64];
    char *b64;
    size_t len = strlen(buf);

    assert_true(keylen <= sizeof(key));
    memset(key, fill, keylen);
    b64 = tn_base64_encode(key, keylen, false);
    snprintf(buf + len, size - len, "%s%u:%s", len ? "," : "", (unsigned)id, b64);
    tn_free(b64);
}

/* ring - parse a spec that must be valid */
static struct tn_keyring *ring(const char *spec)
{
    struct tn_keyring *k = NULL;

    assert_int_equal(tn_keyring_parse(spec, &k), TN_OK);
    assert_non_null(k);
    return k;
}

/* seal - seal pt under aad, returning the new sealed bytes */
static unsigned char *seal(const struct tn_keyring *k, const char *aad, const char *pt, size_t *len)
{
    unsigned char *out = NULL;

    assert_int_equal(tn_seal(k, aad, strlen(aad), pt, strlen(pt), &out, len), TN_OK);
    assert_int_equal(*len, strlen(pt) + TN_SEAL_OVERHEAD);
    return out;
}

/* open_is - tn_open gives want, and on success the plaintext pt */
static void open_is(const struct tn_keyring *k, const char *aad, const unsigned char *s, size_t len,
                    enum tn_err want, const char *pt)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    enum tn_err err = tn_open(k, aad, strlen(aad), s, len, &out, &outlen);

    if (err != want)
        fail_msg("open: got %s want %s", tn_strerror(err), tn_strerror(want));
    if (want != TN_OK) {
        assert_null(out);
        return;
    }
    assert_int_equal(outlen, strlen(pt));
    assert_string_equal((const char *)out, pt); /* NUL-terminated */
    tn_free(out);
}

/* test_seal_roundtrip - open gives the plaintext; nonces are fresh */
static void test_seal_roundtrip(void **state)
{
    char spec[256] = "";
    struct tn_keyring *k;
    unsigned char *a, *b;
    size_t alen, blen;
    uint32_t id = 0;

    (void)state;
    ring_add(spec, sizeof(spec), 7, 0x11, 32);
    k = ring(spec);
    assert_int_equal(tn_keyring_current(k), 7);
    a = seal(k, "channel:t1:c1", "sk_live_secret", &alen);
    b = seal(k, "channel:t1:c1", "sk_live_secret", &blen);
    assert_int_equal(a[0], 0x01);
    assert_int_equal(tn_sealed_key_id(a, alen, &id), TN_OK);
    assert_int_equal(id, 7);
    assert_memory_not_equal(a, b, alen); /* random nonce: same input, new output */
    assert_null(memmem(a, alen, "sk_live", 7));
    open_is(k, "channel:t1:c1", a, alen, TN_OK, "sk_live_secret");
    open_is(k, "channel:t1:c1", b, blen, TN_OK, "sk_live_secret");
    tn_free(a);
    tn_free(b);
    a = seal(k, "", "", &alen); /* empty secret, empty aad */
    open_is(k, "", a, alen, TN_OK, "");
    tn_free(a);
    tn_keyring_free(k);
}

/* evp_open - decrypt a sealed value with raw EVP calls, following the
 * layout documented in tn_crypto.h rather than the module's code */
static void evp_open(const unsigned char key[32], const char *aad, const unsigned char *s,
                     size_t len, const char *want)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t ctlen = len - TN_SEAL_OVERHEAD;
    unsigned char *pt = tn_xmalloc(ctlen + 1);
    int n = 0, m = 0;

    assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, s + 5), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, s, 5), 1); /* version + key id */
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)),
                     1);
    assert_int_equal(EVP_DecryptUpdate(ctx, pt, &n, s + 17, (int)ctlen), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(s + len - 16)), 1);
    assert_int_equal(EVP_DecryptFinal_ex(ctx, pt + n, &m), 1);
    assert_int_equal((size_t)(n + m), strlen(want));
    assert_memory_equal(pt, want, strlen(want));
    EVP_CIPHER_CTX_free(ctx);
    tn_free(pt);
}

/* test_secrets - a channel's credentials open only for that channel, intact,
 * with the ring, and only as a JSON object */
static void test_secrets(void **state)
{
    char spec[256] = "";
    struct tn_keyring *k;
    char *hex, *bad;
    json_t *o;

    (void)state;
    ring_add(spec, sizeof(spec), 3, 0x22, 32);
    k = ring(spec);
    hex = tn_secrets_seal_hex(k, "t1", "c1", "{\"app_secret\":\"s3cr3t\"}");
    assert_non_null(hex);
    assert_null(strstr(hex, "s3cr3t"));
    o = tn_secrets_open(k, "t1", "c1", hex);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "app_secret")), "s3cr3t");
    json_decref(o);
    assert_null(tn_secrets_open(k, "t1", "c2", hex)); /* another channel */
    assert_null(tn_secrets_open(k, "t2", "c1", hex)); /* another tenant */
    assert_null(tn_secrets_open(NULL, "t1", "c1", hex));
    assert_null(tn_secrets_open(k, "t1", "c1", NULL));
    assert_null(tn_secrets_open(k, "t1", "c1", "zz"));
    bad = tn_xstrdup(hex);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0'; /* tampered */
    assert_null(tn_secrets_open(k, "t1", "c1", bad));
    tn_free(bad);
    tn_free(hex);
    hex = tn_secrets_seal_hex(k, "t1", "c1", "[\"not\", \"an object\"]");
    assert_null(tn_secrets_open(k, "t1", "c1", hex));
    tn_free(hex);
    tn_keyring_free(k);
}

/* test_seal_layout - an independent decryption confirms the documented format */
static void test_seal_layout(void **state)
{
    char spec[256] = "";
    unsigned char key[32];
    struct tn_keyring *k;
    unsigned char *s;
    size_t len;

    (void)state;
    memset(key, 0x5a, sizeof(key));
    ring_add(spec, sizeof(spec), 0x01020304, 0x5a, 32);
    k = ring(spec);
    s = seal(k, "channel:t9:c3", "a secret of some length", &len);
    assert_memory_equal(s, "\x01\x01\x02\x03\x04", 5);
    evp_open(key, "channel:t9:c3", s, len, "a secret of some length");
    tn_free(s);
    tn_keyring_free(k);
}

/* test_seal_tamper - every byte flipped fails; header flips fail by kind */
static void test_seal_tamper(void **state)
{
    char spec[256] = "";
    struct tn_keyring *k;
    unsigned char *s;
    size_t len;

    (void)state;
    ring_add(spec, sizeof(spec), 1, 0x22, 32);
    k = ring(spec);
    s = seal(k, "channel:t1:c1", "token-abc", &len);
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            enum tn_err want = i == 0 ? TN_EINVAL : i < 5 ? TN_ENOTFOUND : TN_EDENIED;

            s[i] ^= (unsigned char)(1u << bit);
            open_is(k, "channel:t1:c1", s, len, want, NULL);
            s[i] ^= (unsigned char)(1u << bit);
        }
    }
    open_is(k, "channel:t1:c1", s, len, TN_OK, "token-abc");
    /* wrong aad: the ciphertext was moved to another row */
    open_is(k, "channel:t1:c2", s, len, TN_EDENIED, NULL);
    open_is(k, "channel:t2:c1", s, len, TN_EDENIED, NULL);
    open_is(k, "", s, len, TN_EDENIED, NULL);
    /* truncation: short of the fixed overhead is malformed, else denied */
    for (size_t l = 0; l < TN_SEAL_OVERHEAD; l++)
        open_is(k, "channel:t1:c1", s, l, TN_EINVAL, NULL);
    for (size_t l = TN_SEAL_OVERHEAD; l < len; l++)
        open_is(k, "channel:t1:c1", s, l, TN_EDENIED, NULL);
    uint32_t id;
    assert_int_equal(tn_sealed_key_id(s, TN_SEAL_OVERHEAD - 1, &id), TN_EINVAL);
    s[0] = 0x02;
    assert_int_equal(tn_sealed_key_id(s, len, &id), TN_EINVAL);
    tn_free(s);
    tn_keyring_free(k);
}

/* test_seal_key_id_authenticated - relabelling the key id fails even when
 * the other id holds the very same key: the header is part of the AAD */
static void test_seal_key_id_authenticated(void **state)
{
    char spec[256] = "";
    struct tn_keyring *k;
    unsigned char *s;
    size_t len;

    (void)state;
    ring_add(spec, sizeof(spec), 1, 0x33, 32);
    ring_add(spec, sizeof(spec), 3, 0x33, 32);
    k = ring(spec);
    s = seal(k, "row", "pw", &len);
    open_is(k, "row", s, len, TN_OK, "pw");
    s[4] = 3;
    open_is(k, "row", s, len, TN_EDENIED, NULL);
    tn_free(s);
    tn_keyring_free(k);
}

/* test_rotation - old secrets open after a new key is put first */
static void test_rotation(void **state)
{
    char k1[128] = "", k2[128] = "", both[256] = "";
    struct tn_keyring *r1, *r21, *r2;
    unsigned char *old, *fresh;
    size_t oldlen, freshlen;
    uint32_t id = 0;

    (void)state;
    ring_add(k1, sizeof(k1), 1, 0x01, 32);
    ring_add(k2, sizeof(k2), 2, 0x02, 32);
    snprintf(both, sizeof(both), "%s,%s", k2, k1);
    r1 = ring(k1);
    r21 = ring(both);
    r2 = ring(k2);
    assert_int_equal(tn_keyring_current(r21), 2);
    assert_true(tn_keyring_has(r21, 1) && tn_keyring_has(r21, 2));
    assert_false(tn_keyring_has(r2, 1) || tn_keyring_has(r21, 3));

    old = seal(r1, "channel:t1:c1", "old-secret", &oldlen);
    assert_int_equal(tn_sealed_key_id(old, oldlen, &id), TN_OK);
    assert_int_equal(id, 1);
    open_is(r21, "channel:t1:c1", old, oldlen, TN_OK, "old-secret");

    fresh = seal(r21, "channel:t1:c1", "new-secret", &freshlen);
    assert_int_equal(tn_sealed_key_id(fresh, freshlen, &id), TN_OK);
    assert_int_equal(id, 2);
    open_is(r21, "channel:t1:c1", fresh, freshlen, TN_OK, "new-secret");
    open_is(r2, "channel:t1:c1", fresh, freshlen, TN_OK, "new-secret");

    /* once key 1 is dropped, what it sealed no longer opens */
    open_is(r2, "channel:t1:c1", old, oldlen, TN_ENOTFOUND, NULL);
    open_is(r1, "channel:t1:c1", fresh, freshlen, TN_ENOTFOUND, NULL);
    tn_free(old);
    tn_free(fresh);
    tn_keyring_free(r1);
    tn_keyring_free(r21);
    tn_keyring_free(r2);
}

struct ring_case {
    const char *name;
    const char *spec; /* "%s" is replaced by a valid 32-byte key */
    enum tn_err want;
    uint32_t current;
};

#define K32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */

/* clang-format off */
static const struct ring_case ring_cases[] = {
    {.name = "one", .spec = "1:" K32, .want = TN_OK, .current = 1},
    {.name = "two, first current", .spec = "9:" K32 ",4:" K32, .want = TN_OK, .current = 9},
    {.name = "max id", .spec = "4294967295:" K32, .want = TN_OK, .current = 4294967295u},
    {.name = "file whitespace", .spec = " 5 : " K32 " ,\t6:" K32 "\n", .want = TN_OK, .current = 5},
    {.name = "empty", .spec = "", .want = TN_EINVAL},
    {.name = "blank", .spec = " \n", .want = TN_EINVAL},
    {.name = "garbage", .spec = "not a key ring", .want = TN_EINVAL},
    {.name = "no id", .spec = ":" K32, .want = TN_EINVAL},
    {.name = "no key", .spec = "1:", .want = TN_EINVAL},
    {.name = "no colon", .spec = "1" K32, .want = TN_EINVAL},
    {.name = "id 0", .spec = "0:" K32, .want = TN_EINVAL},
    {.name = "id negative", .spec = "-1:" K32, .want = TN_EINVAL},
    {.name = "id plus", .spec = "+1:" K32, .want = TN_EINVAL},
    {.name = "id hex", .spec = "0x1:" K32, .want = TN_EINVAL},
    {.name = "id too big", .spec = "4294967296:" K32, .want = TN_EINVAL},
    {.name = "id huge", .spec = "99999999999999999999:" K32, .want = TN_EINVAL},
    {.name = "duplicate id", .spec = "1:" K32 ",1:" K32, .want = TN_EINVAL},
    {.name = "duplicate later", .spec = "1:" K32 ",2:" K32 ",2:" K32, .want = TN_EINVAL},
    {.name = "31-byte key",
     .spec = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",
     .want = TN_EINVAL},
    {.name = "33-byte key",
     .spec = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",
     .want = TN_EINVAL},
    {.name = "hex key", .spec = "1:" ZERO32, .want = TN_EINVAL},
    {.name = "bad base64",
     .spec = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
     .want = TN_EINVAL},
    {.name = "trailing comma", .spec = "1:" K32 ",", .want = TN_EINVAL},
    {.name = "leading comma", .spec = ",1:" K32, .want = TN_EINVAL},
    {.name = "double comma", .spec = "1:" K32 ",,2:" K32, .want = TN_EINVAL},
    {.name = "two colons", .spec = "1:2:" K32, .want = TN_EINVAL},
    {.name = "semicolon list", .spec = "1:" K32 ";2:" K32, .want = TN_EINVAL},
};
/* clang-format on */

/* test_keyring_parse - valid rings name their current key; the rest fail */
static void test_keyring_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ring_cases) / sizeof(ring_cases[0]); i++) {
        const struct ring_case *c = &ring_cases[i];
        struct tn_keyring *k = (struct tn_keyring *)(uintptr_t)1; /* must be reset */
        enum tn_err err = tn_keyring_parse(c->spec, &k);

        if (err != c->want)
            fail_msg("%s: got %s want %s", c->name, tn_strerror(err), tn_strerror(c->want));
        if (err != TN_OK) {
            assert_null(k);
            continue;
        }
        assert_int_equal(tn_keyring_current(k), c->current);
        tn_keyring_free(k);
    }
    tn_keyring_free(NULL);
}

/* main - run the table tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_hmac_sha256),
        cmocka_unit_test(test_hmac_sha1),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_twilio_signature),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_random_id),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_invalid),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_gcm_vectors),
        cmocka_unit_test(test_seal_roundtrip),
        cmocka_unit_test(test_seal_layout),
        cmocka_unit_test(test_seal_tamper),
        cmocka_unit_test(test_seal_key_id_authenticated),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_keyring_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
