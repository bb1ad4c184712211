#ifndef TN_CRYPTO_H
#define TN_CRYPTO_H
/*
 * tn_crypto - everything cryptographic, through OpenSSL's libcrypto: HMAC,
 * SHA-256, constant-time compare, random ids, hex/base64/base64url, and
 * AES-256-GCM sealing of secrets with a key id so keys can rotate.
 *
 * Sealed format (stored as bytea): version byte 0x01 | key id (4 bytes, big
 * endian) | nonce (12 bytes, random) | ciphertext | tag (16 bytes). The key id
 * and version are also authenticated (they are part of the AAD), followed by
 * the caller's AAD, which should name the row the secret belongs to, e.g.
 * "channel:<tenant_id>:<channel_id>", so a ciphertext moved to another row
 * does not open.
 *
 * Key ring (TN_MASTER_KEY / TN_MASTER_KEY_FILE): "ID:BASE64KEY[,ID:BASE64KEY...]",
 * each key exactly 32 bytes, ids 1..2^32-1 and unique; the FIRST entry is the
 * current key used for sealing; every listed key can open.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>

#define TN_SHA256_LEN 32
#define TN_SHA1_LEN 20
#define TN_SEAL_OVERHEAD (1 + 4 + 12 + 16)

struct tn_keyring;

/* tn_hmac_sha256 - HMAC-SHA256 of msg under key into out. Runs on: any thread. */
void tn_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                    unsigned char out[TN_SHA256_LEN]);
/* tn_hmac_sha1 - HMAC-SHA1 (Twilio signatures). */
void tn_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
                  unsigned char out[TN_SHA1_LEN]);
/* tn_sha256 - SHA-256 digest. */
void tn_sha256(const void *msg, size_t len, unsigned char out[TN_SHA256_LEN]);
/* tn_ct_equal - constant-time comparison of n bytes (CRYPTO_memcmp). */
bool tn_ct_equal(const void *a, const void *b, size_t n);

/* tn_random_bytes - n bytes from the CSPRNG; aborts if it fails. */
void tn_random_bytes(void *out, size_t n);
/* tn_random_id - new string: prefix followed by 22 base64url characters
 * (128 random bits). prefix borrowed (may be ""). */
char *tn_random_id(const char *prefix);

/* tn_hex_encode - new lowercase hex string of n bytes. */
char *tn_hex_encode(const void *p, size_t n);
/* tn_hex_decode - decode hex (either case, even length, nothing else) into new
 * *out, NUL-terminated (not counted in *outlen). Errors: TN_EINVAL. */
enum tn_err tn_hex_decode(const char *s, size_t len, unsigned char **out, size_t *outlen);
/* tn_base64_encode - new string; url selects base64url without padding. */
char *tn_base64_encode(const void *p, size_t n, bool url);
/* tn_base64_decode - decode into new *out, NUL-terminated (not counted in
 * *outlen). Standard base64 requires its padding; url (base64url, '-' '_')
 * takes it optionally. No whitespace, and only the canonical spelling (unused
 * low bits zero). Errors: TN_EINVAL on any invalid character or length. */
enum tn_err tn_base64_decode(const char *s, size_t len, bool url, unsigned char **out,
                             size_t *outlen);

/* tn_keyring_parse - parse a key ring spec (borrowed). Returns new *out.
 * Errors: TN_EINVAL (malformed, wrong key length, duplicate id). The spec's
 * key material is never logged. */
enum tn_err tn_keyring_parse(const char *spec, struct tn_keyring **out);
/* tn_keyring_current - the id that tn_seal uses. */
uint32_t tn_keyring_current(const struct tn_keyring *k);
/* tn_keyring_has - whether the ring holds a key with this id (reports of
 * what a rotation still needs). */
bool tn_keyring_has(const struct tn_keyring *k, uint32_t id);
/* tn_keyring_free - wipe and release (NULL-safe). */
void tn_keyring_free(struct tn_keyring *k);

/* tn_seal - encrypt pt with the current key. aad/pt borrowed; *out new
 * (tn_free), *outlen == ptlen + TN_SEAL_OVERHEAD. Runs on: any thread. */
enum tn_err tn_seal(const struct tn_keyring *k, const void *aad, size_t aadlen, const void *pt,
                    size_t ptlen, unsigned char **out, size_t *outlen);
/* tn_open - decrypt a sealed value with whichever listed key its id names.
 * *out is new and NUL-terminated (not counted in *outlen).
 * Errors: TN_EINVAL malformed, TN_ENOTFOUND key id not in the ring,
 * TN_EDENIED authentication failed (tampered, or wrong aad). */
enum tn_err tn_open(const struct tn_keyring *k, const void *aad, size_t aadlen, const void *sealed,
                    size_t len, unsigned char **out, size_t *outlen);
/* tn_sealed_key_id - the key id of a sealed value (for rotation reports).
 * Errors: TN_EINVAL (too short or unknown version byte). */
enum tn_err tn_sealed_key_id(const void *sealed, size_t len, uint32_t *id);

/* tn__crypto_gcm_encrypt - TESTS ONLY (known-answer vectors): raw AES-256-GCM
 * with a caller-chosen iv; never reuse an iv with a key. ct has room for ptlen
 * bytes. Errors: TN_EINVAL (a length over INT_MAX). Use tn_seal instead. */
enum tn_err tn__crypto_gcm_encrypt(const unsigned char key[32], const unsigned char iv[12],
                                   const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                                   unsigned char *ct, unsigned char tag[16]);
/* tn__crypto_gcm_decrypt - TESTS ONLY: the inverse; pt has room for ctlen
 * bytes and is wiped on failure. Errors: TN_EINVAL, TN_EDENIED (bad tag). */
enum tn_err tn__crypto_gcm_decrypt(const unsigned char key[32], const unsigned char iv[12],
                                   const void *aad, size_t aadlen, const void *ct, size_t ctlen,
                                   const unsigned char tag[16], unsigned char *pt);

#endif
