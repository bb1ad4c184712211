/*
 * NAME
 *	tn_crypto - HMAC, digests, random ids, encodings and sealed secrets
 * SYNOPSIS
 *	#include <tn/tn_crypto.h>
 * DESCRIPTION
 *	Every cryptographic primitive the project uses goes through this file,
 *	and every one of them is OpenSSL libcrypto: HMAC(), EVP_Digest(),
 *	CRYPTO_memcmp(), RAND_bytes(), EVP_EncodeBlock()/EVP_DecodeBlock() and
 *	AES-256-GCM through EVP_CIPHER_CTX. Nothing here is hand-rolled crypto.
 *
 *	Base64 input is validated here before EVP_DecodeBlock() sees it,
 *	because EVP_DecodeBlock() skips surrounding whitespace, decodes the
 *	padding as zero bytes and does not insist on a multiple of four. We
 *	accept exactly one spelling of every byte string (canonical: the
 *	unused low bits of the last character must be zero), so a signature
 *	or key cannot be written two ways.
 *
 *	Sealed secrets carry the id of the key that sealed them, so the key
 *	ring can rotate: put a new key first, keep the old ones listed until
 *	every row has been resealed (tn_sealed_key_id() finds the stragglers),
 *	then drop them. The layout is in tn_crypto.h.
 * RUNS ON
 *	any thread. A key ring is immutable after tn_keyring_parse() and may be
 *	shared between threads.
 * DIAGNOSTICS
 *	Returns enum tn_err; logs nothing, so key material and plaintext can
 *	never reach a log line from here. A failure of OpenSSL where it cannot
 *	fail on valid input (HMAC, digest, RNG) is a broken invariant and aborts
 *	through TN_ASSERT.
 */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <tn/tn_crypto.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>

#define SEAL_VERSION 0x01
#define SEAL_HDR_LEN 5 /* version + key id */
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define KEY_LEN 32
#define RANDOM_ID_BYTES 16 /* 128 bits -> 22 base64url characters */

static_assert(TN_SEAL_OVERHEAD == SEAL_HDR_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN,
              "sealed layout and TN_SEAL_OVERHEAD disagree");

struct tn_ring_key {
    uint32_t id;
    unsigned char key[KEY_LEN];
};

struct tn_keyring {
    size_t n;
    struct tn_ring_key *keys; /* keys[0] is the current key */
};

/* nonnull - OpenSSL may reject a NULL pointer even with length 0 */
static const void *nonnull(const void *p)
{
    return p != NULL ? p : "";
}

/* tn_hmac_sha256 - HMAC-SHA256 */
void tn_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                    unsigned char out[TN_SHA256_LEN])
{
    unsigned int len = 0;

    TN_ASSERT(klen <= INT_MAX);
    TN_ASSERT(HMAC(EVP_sha256(), nonnull(key), (int)klen, nonnull(msg), mlen, out, &len) != NULL);
    TN_ASSERT(len == TN_SHA256_LEN);
}

/* tn_hmac_sha1 - HMAC-SHA1 */
void tn_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
                  unsigned char out[TN_SHA1_LEN])
{
    unsigned int len = 0;

    TN_ASSERT(klen <= INT_MAX);
    TN_ASSERT(HMAC(EVP_sha1(), nonnull(key), (int)klen, nonnull(msg), mlen, out, &len) != NULL);
    TN_ASSERT(len == TN_SHA1_LEN);
}

/* tn_sha256 - SHA-256 */
void tn_sha256(const void *msg, size_t len, unsigned char out[TN_SHA256_LEN])
{
    unsigned int olen = 0;

    TN_ASSERT(EVP_Digest(nonnull(msg), len, out, &olen, EVP_sha256(), NULL) == 1);
    TN_ASSERT(olen == TN_SHA256_LEN);
}

/* tn_ct_equal - constant-time equality */
bool tn_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(nonnull(a), nonnull(b), n) == 0;
}

/* tn_random_bytes - CSPRNG or abort */
void tn_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;

    /* RAND_bytes takes an int; chunk so huge requests still work. */
    while (n > 0) {
        size_t chunk = n > (size_t)INT_MAX ? (size_t)INT_MAX : n;

        TN_ASSERT(RAND_bytes(p, (int)chunk) == 1);
        p += chunk;
        n -= chunk;
    }
}

/* tn_random_id - prefix + 22 base64url characters */
char *tn_random_id(const char *prefix)
{
    unsigned char raw[RANDOM_ID_BYTES];
    char *b64;
    char *id;
    size_t plen = strlen(prefix);
    size_t blen;

    tn_random_bytes(raw, sizeof(raw));
    b64 = tn_base64_encode(raw, sizeof(raw), true);
    blen = strlen(b64);
    id = tn_xmalloc(plen + blen + 1);
    memcpy(id, prefix, plen);
    memcpy(id + plen, b64, blen + 1);
    tn_free(b64);
    return id;
}

/* tn_hex_encode - lowercase hex */
char *tn_hex_encode(const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *in = p;
    char *s;

    TN_ASSERT(n < SIZE_MAX / 2);
    s = tn_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[in[i] >> 4];
        s[2 * i + 1] = digits[in[i] & 0x0f];
    }
    s[2 * n] = '\0';
    return s;
}

/* tn_hex_decode - strict hex: even length, [0-9a-fA-F] only */
enum tn_err tn_hex_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    enum tn_err err = TN_OK;
    unsigned char *buf = NULL;

    *out = NULL;
    *outlen = 0;
    if (len % 2 != 0 || (s == NULL && len != 0))
        return TN_EINVAL;
    buf = tn_xmalloc(len / 2 + 1);
    for (size_t i = 0; i < len; i += 2) {
        int hi = OPENSSL_hexchar2int((unsigned char)s[i]);
        int lo = OPENSSL_hexchar2int((unsigned char)s[i + 1]);

        if (hi < 0 || lo < 0) {
            err = TN_EINVAL;
            goto out;
        }
        buf[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    buf[len / 2] = '\0';
    *out = buf;
    *outlen = len / 2;
    buf = NULL;
out:
    tn_free(buf);
    return err;
}

/* tn_base64_encode - standard (padded) or base64url (unpadded) */
char *tn_base64_encode(const void *p, size_t n, bool url)
{
    size_t cap;
    char *s;
    int len;

    TN_ASSERT(n <= (size_t)INT_MAX / 4 * 3 - 3);
    cap = (n + 2) / 3 * 4 + 1;
    s = tn_xmalloc(cap);
    len = EVP_EncodeBlock((unsigned char *)s, nonnull(p), (int)n);
    TN_ASSERT(len >= 0 && (size_t)len == cap - 1);
    if (!url)
        return s;
    for (int i = 0; i < len; i++) {
        if (s[i] == '+')
            s[i] = '-';
        else if (s[i] == '/')
            s[i] = '_';
        else if (s[i] == '=')
            s[i] = '\0'; /* padding only ever trails */
    }
    return s;
}

/* b64_value - value of one alphabet character, or -1 */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* b64_check - validate s strictly; *body gets the length without padding */
static enum tn_err b64_check(const char *s, size_t len, bool url, size_t *body)
{
    size_t pad = 0;
    size_t rem;
    int last;

    while (pad < len && pad < 3 && s[len - 1 - pad] == '=')
        pad++;
    *body = len - pad;
    rem = *body % 4;
    if (pad > 2 || rem == 1)
        return TN_EINVAL;
    if (pad > 0 && rem + pad != 4)
        return TN_EINVAL; /* padding must complete the last quantum exactly */
    if (pad == 0 && rem != 0 && !url)
        return TN_EINVAL; /* standard base64 requires the padding */
    for (size_t i = 0; i < *body; i++) {
        if (b64_value((unsigned char)s[i], url) < 0)
            return TN_EINVAL;
    }
    if (rem == 0)
        return TN_OK;
    /* Canonical form: the bits past the last whole byte must be zero. */
    last = b64_value((unsigned char)s[*body - 1], url);
    if ((rem == 2 && (last & 0x0f) != 0) || (rem == 3 && (last & 0x03) != 0))
        return TN_EINVAL;
    return TN_OK;
}

/* tn_base64_decode - validate strictly, then EVP_DecodeBlock */
enum tn_err tn_base64_decode(const char *s, size_t len, bool url, unsigned char **out,
                             size_t *outlen)
{
    enum tn_err err;
    unsigned char *norm = NULL;
    unsigned char *buf = NULL;
    size_t body, normlen;
    int n;

    *out = NULL;
    *outlen = 0;
    if (s == NULL && len != 0)
        return TN_EINVAL;
    if (len > (size_t)INT_MAX - 4)
        return TN_EINVAL;
    err = b64_check(nonnull(s), len, url, &body);
    if (err != TN_OK)
        goto out;
    /* Rewrite as padded standard base64, the only form EVP_DecodeBlock reads. */
    normlen = (body + 3) / 4 * 4;
    norm = tn_xmalloc(normlen + 1);
    for (size_t i = 0; i < normlen; i++) {
        char c = i < body ? s[i] : '=';

        if (url && c == '-')
            c = '+';
        else if (url && c == '_')
            c = '/';
        norm[i] = (unsigned char)c;
    }
    buf = tn_xmalloc(normlen / 4 * 3 + 1);
    n = EVP_DecodeBlock(buf, norm, (int)normlen);
    if (n < 0 || (size_t)n != normlen / 4 * 3) {
        err = TN_EINVAL; /* cannot happen after b64_check; be safe anyway */
        goto out;
    }
    *outlen = body / 4 * 3 + (body % 4 == 0 ? 0 : body % 4 - 1);
    buf[*outlen] = '\0';
    *out = buf;
    buf = NULL;
out:
    tn_free(norm);
    tn_free(buf);
    return err;
}

/* trim - strip ASCII whitespace from both ends of [*p, *p + *len) */
static void trim(const char **p, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*p)[*len - 1]))
        (*len)--;
}

/* parse_id - decimal key id in 1..2^32-1 */
static enum tn_err parse_id(const char *p, size_t len, uint32_t *id)
{
    uint64_t v = 0;

    if (len == 0 || len > 10)
        return TN_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return TN_EINVAL;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX)
        return TN_EINVAL;
    *id = (uint32_t)v;
    return TN_OK;
}

/* parse_entry - one "ID:BASE64KEY" into *k; the decoded key is wiped */
static enum tn_err parse_entry(const char *p, size_t len, struct tn_ring_key *k)
{
    enum tn_err err;
    const char *colon;
    const char *kp;
    size_t idlen, klen;
    unsigned char *key = NULL;
    size_t keylen = 0;

    trim(&p, &len);
    colon = memchr(p, ':', len);
    if (colon == NULL)
        return TN_EINVAL;
    idlen = (size_t)(colon - p);
    kp = colon + 1;
    klen = len - idlen - 1;
    trim(&p, &idlen);
    trim(&kp, &klen);
    err = parse_id(p, idlen, &k->id);
    if (err != TN_OK)
        goto out;
    err = tn_base64_decode(kp, klen, false, &key, &keylen);
    if (err != TN_OK)
        goto out;
    if (keylen != KEY_LEN) {
        err = TN_EINVAL;
        goto out;
    }
    memcpy(k->key, key, KEY_LEN);
out:
    if (key != NULL)
        OPENSSL_cleanse(key, keylen);
    tn_free(key);
    return err;
}

/* tn_keyring_parse - "ID:KEY[,ID:KEY...]", first entry current */
enum tn_err tn_keyring_parse(const char *spec, struct tn_keyring **out)
{
    enum tn_err err = TN_OK;
    struct tn_keyring *k = NULL;
    const char *p = spec;
    size_t n = 1;

    *out = NULL;
    if (spec == NULL)
        return TN_EINVAL;
    /* Count first so the keys are allocated once: a realloc would leave
     * copies of key material in freed memory. */
    for (const char *c = spec; *c != '\0'; c++)
        n += *c == ',';
    k = tn_xcalloc(1, sizeof(*k));
    k->keys = tn_xcalloc(n, sizeof(*k->keys));
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        err = parse_entry(p, len, &k->keys[i]);
        if (err != TN_OK)
            goto out;
        k->n = i + 1;
        for (size_t j = 0; j < i; j++) {
            if (k->keys[j].id == k->keys[i].id) {
                err = TN_EINVAL; /* duplicate id */
                goto out;
            }
        }
        p += len + 1;
    }
    *out = k;
    k = NULL;
out:
    if (k != NULL)
        k->n = n; /* wipe every slot, even a half-parsed one */
    tn_keyring_free(k);
    return err;
}

/* tn_keyring_current - id of the sealing key */
uint32_t tn_keyring_current(const struct tn_keyring *k)
{
    return k->keys[0].id;
}

/* tn_keyring_free - wipe and release */
void tn_keyring_free(struct tn_keyring *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k->keys, k->n * sizeof(*k->keys));
    tn_free(k->keys);
    tn_free(k);
}

/* keyring_find - key with this id, or NULL */
static const struct tn_ring_key *keyring_find(const struct tn_keyring *k, uint32_t id)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->keys[i].id == id)
            return &k->keys[i];
    }
    return NULL;
}

/* tn_keyring_has - see tn_crypto.h */
bool tn_keyring_has(const struct tn_keyring *k, uint32_t id)
{
    return keyring_find(k, id) != NULL;
}

/* gcm_start - a context set up for AES-256-GCM with a 12-byte nonce and aad */
static EVP_CIPHER_CTX *gcm_start(bool enc, const unsigned char *key, const unsigned char *iv,
                                 const void *aad, size_t aadlen)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;

    TN_ASSERT(ctx != NULL);
    /* 12 bytes is GCM's default IV length; no EVP_CTRL_GCM_SET_IVLEN needed. */
    TN_ASSERT(EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, enc ? 1 : 0) == 1);
    if (aadlen > 0)
        TN_ASSERT(EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) == 1);
    return ctx;
}

/* tn__crypto_gcm_encrypt - raw AES-256-GCM (tests call it with NIST vectors) */
enum tn_err tn__crypto_gcm_encrypt(const unsigned char key[32], const unsigned char iv[12],
                                   const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                                   unsigned char *ct, unsigned char tag[16])
{
    EVP_CIPHER_CTX *ctx;
    int n = 0;

    if (aadlen > INT_MAX || ptlen > INT_MAX)
        return TN_EINVAL;
    ctx = gcm_start(true, key, iv, aad, aadlen);
    if (ptlen > 0)
        TN_ASSERT(EVP_EncryptUpdate(ctx, ct, &n, pt, (int)ptlen) == 1 && (size_t)n == ptlen);
    TN_ASSERT(EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 && n == 0);
    TN_ASSERT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return TN_OK;
}

/* tn__crypto_gcm_decrypt - raw AES-256-GCM open; TN_EDENIED on a bad tag */
enum tn_err tn__crypto_gcm_decrypt(const unsigned char key[32], const unsigned char iv[12],
                                   const void *aad, size_t aadlen, const void *ct, size_t ctlen,
                                   const unsigned char tag[16], unsigned char *pt)
{
    enum tn_err err = TN_OK;
    EVP_CIPHER_CTX *ctx;
    int n = 0;

    if (aadlen > INT_MAX || ctlen > INT_MAX)
        return TN_EINVAL;
    ctx = gcm_start(false, key, iv, aad, aadlen);
    if (ctlen > 0)
        TN_ASSERT(EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ctlen) == 1 && (size_t)n == ctlen);
    TN_ASSERT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, (void *)tag) == 1);
    if (EVP_DecryptFinal_ex(ctx, pt + n, &n) != 1) {
        OPENSSL_cleanse(pt, ctlen); /* never hand out unauthenticated plaintext */
        err = TN_EDENIED;
    }
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* full_aad - new buffer: sealed header followed by the caller's aad */
static unsigned char *full_aad(const unsigned char *hdr, const void *aad, size_t aadlen)
{
    unsigned char *buf = tn_xmalloc(SEAL_HDR_LEN + aadlen);

    memcpy(buf, hdr, SEAL_HDR_LEN);
    if (aadlen > 0)
        memcpy(buf + SEAL_HDR_LEN, aad, aadlen);
    return buf;
}

/* tn_seal - version | key id | nonce | ciphertext | tag */
enum tn_err tn_seal(const struct tn_keyring *k, const void *aad, size_t aadlen, const void *pt,
                    size_t ptlen, unsigned char **out, size_t *outlen)
{
    enum tn_err err;
    const struct tn_ring_key *key = &k->keys[0];
    unsigned char *buf = NULL;
    unsigned char *a = NULL;
    unsigned char *nonce, *ct;

    *out = NULL;
    *outlen = 0;
    if (ptlen > INT_MAX || aadlen > INT_MAX - SEAL_HDR_LEN)
        return TN_EINVAL;
    buf = tn_xmalloc(ptlen + TN_SEAL_OVERHEAD);
    buf[0] = SEAL_VERSION;
    buf[1] = (unsigned char)(key->id >> 24);
    buf[2] = (unsigned char)(key->id >> 16);
    buf[3] = (unsigned char)(key->id >> 8);
    buf[4] = (unsigned char)key->id;
    nonce = buf + SEAL_HDR_LEN;
    ct = nonce + SEAL_NONCE_LEN;
    tn_random_bytes(nonce, SEAL_NONCE_LEN);
    a = full_aad(buf, aad, aadlen);
    err = tn__crypto_gcm_encrypt(key->key, nonce, a, SEAL_HDR_LEN + aadlen, pt, ptlen, ct,
                                 ct + ptlen);
    if (err != TN_OK)
        goto out;
    *out = buf;
    *outlen = ptlen + TN_SEAL_OVERHEAD;
    buf = NULL;
out:
    tn_free(a);
    tn_free(buf);
    return err;
}

/* tn_sealed_key_id - read the header */
enum tn_err tn_sealed_key_id(const void *sealed, size_t len, uint32_t *id)
{
    const unsigned char *p = sealed;

    if (sealed == NULL || len < TN_SEAL_OVERHEAD || p[0] != SEAL_VERSION)
        return TN_EINVAL;
    *id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | (uint32_t)p[4];
    return TN_OK;
}

/* tn_open - find the key by id, authenticate and decrypt */
enum tn_err tn_open(const struct tn_keyring *k, const void *aad, size_t aadlen, const void *sealed,
                    size_t len, unsigned char **out, size_t *outlen)
{
    enum tn_err err;
    const unsigned char *p = sealed;
    const struct tn_ring_key *key;
    unsigned char *a = NULL;
    unsigned char *pt = NULL;
    size_t ctlen;
    uint32_t id;

    *out = NULL;
    *outlen = 0;
    err = tn_sealed_key_id(sealed, len, &id);
    if (err != TN_OK)
        goto out;
    if (aadlen > INT_MAX - SEAL_HDR_LEN) {
        err = TN_EINVAL;
        goto out;
    }
    key = keyring_find(k, id);
    if (key == NULL) {
        err = TN_ENOTFOUND;
        goto out;
    }
    ctlen = len - TN_SEAL_OVERHEAD;
    pt = tn_xmalloc(ctlen + 1);
    a = full_aad(p, aad, aadlen);
    err = tn__crypto_gcm_decrypt(key->key, p + SEAL_HDR_LEN, a, SEAL_HDR_LEN + aadlen,
                                 p + SEAL_HDR_LEN + SEAL_NONCE_LEN, ctlen, p + len - SEAL_TAG_LEN,
                                 pt);
    if (err != TN_OK)
        goto out;
    pt[ctlen] = '\0';
    *out = pt;
    *outlen = ctlen;
    pt = NULL;
out:
    tn_free(a);
    tn_free(pt);
    return err;
}
