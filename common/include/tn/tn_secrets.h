#ifndef TN_SECRETS_H
#define TN_SECRETS_H
/*
 * tn_secrets - a channel's provider credentials (a JSON object such as
 * {"app_secret": ..., "access_token": ...}), sealed at rest in
 * channels.secrets_sealed with the master key ring and bound to the channel
 * by the associated data "channel:<tenant>:<channel>". ternctl seals; the
 * daemons that need a credential open.
 */
#include <stddef.h>

struct json_t;
struct tn_keyring;

/* tn_secrets_seal_hex - seal json (text, borrowed) for (tenant, channel)
 * with the ring's current key. Returns: new lowercase hex of the sealed bytes
 * (tn_free), or NULL when sealing failed. Runs on: any thread. */
char *tn_secrets_seal_hex(const struct tn_keyring *k, const char *tenant, const char *channel,
                          const char *json);

/* tn_secrets_open - the credentials sealed for (tenant, channel), given as
 * the hex of the sealed bytes. Returns: a new JSON object (json_decref), or
 * NULL when hex or k is NULL, the hex is malformed, no key of the ring opens
 * it (wrong key, other channel, tampered) or it holds no JSON object. The
 * plaintext is wiped before return. Runs on: any thread. */
struct json_t *tn_secrets_open(const struct tn_keyring *k, const char *tenant, const char *channel,
                               const char *hex);

/* tn_secrets_free - release an opened credentials object (NULL-safe):
 * when this is its last reference, every string in it is wiped first
 * (jansson frees without wiping). Strings borrowed from it die with it, as
 * with json_decref. Runs on: any thread. */
void tn_secrets_free(struct json_t *s);

/* tn_secrets_open_object - open sealed (slen bytes, borrowed) under the
 * associated data aad (aad_len bytes) and parse the plaintext as a JSON
 * object: the step tn_secrets_open and tn_oauth's tokens share. Returns: a
 * new JSON object (json_decref), or NULL when no key opens it or it holds
 * no JSON object. The plaintext is wiped before return. Runs on: any
 * thread. */
struct json_t *tn_secrets_open_object(const struct tn_keyring *k, const char *aad, size_t aad_len,
                                      const unsigned char *sealed, size_t slen);

#endif
