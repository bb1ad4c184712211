/*
 * NAME
 *	tn_secrets - channel credentials sealed for their channel
 * DESCRIPTION
 *	The one place that knows the associated data of a channel's sealed
 *	credentials ("channel:<tenant>:<channel>"), so that what ternctl seals
 *	every daemon opens the same way.
 * RUNS ON
 *	any thread (pure: no I/O).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_secrets.h>

/* aad_of - "channel:<tenant>:<channel>" into aad; its length */
static size_t aad_of(char aad[160], const char *tenant, const char *channel)
{
    int n = snprintf(aad, 160, "channel:%s:%s", tenant, channel);

    return n < 0 ? 0 : (size_t)n < 160 ? (size_t)n : 159;
}

char *tn_secrets_seal_hex(const struct tn_keyring *k, const char *tenant, const char *channel,
                          const char *json)
{
    char aad[160];
    size_t n = aad_of(aad, tenant, channel), len = 0;
    unsigned char *sealed = NULL;
    char *hex;

    if (tn_seal(k, aad, n, json, strlen(json), &sealed, &len) != TN_OK)
        return NULL;
    hex = tn_hex_encode(sealed, len);
    tn_free(sealed);
    return hex;
}

json_t *tn_secrets_open_object(const struct tn_keyring *k, const char *aad, size_t aad_len,
                               const unsigned char *sealed, size_t slen)
{
    unsigned char *pt = NULL;
    size_t plen = 0;
    json_t *obj = NULL;

    if (tn_open(k, aad, aad_len, sealed, slen, &pt, &plen) != TN_OK)
        return NULL;
    obj = json_loadb((const char *)pt, plen, 0, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    tn_wipe(pt, plen);
    tn_free(pt);
    return obj;
}

json_t *tn_secrets_open(const struct tn_keyring *k, const char *tenant, const char *channel,
                        const char *hex)
{
    char aad[160];
    size_t n = aad_of(aad, tenant, channel), slen = 0;
    unsigned char *sealed = NULL;
    json_t *obj = NULL;

    if (hex != NULL && k != NULL && tn_hex_decode(hex, strlen(hex), &sealed, &slen) == TN_OK)
        obj = tn_secrets_open_object(k, aad, n, sealed, slen);
    tn_free(sealed);
    return obj;
}

/* wipe_strings - zero every string held only by j, at any depth */
static void wipe_strings(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;

    if (j == NULL || j->refcount != 1)
        return; /* shared: another holder still reads it */
    if (json_is_string(j)) {
        tn_wipe((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v) wipe_strings(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) wipe_strings(v);
    }
}

/* tn_secrets_free - see tn_secrets.h */
void tn_secrets_free(json_t *s)
{
    wipe_strings(s);
    json_decref(s);
}
