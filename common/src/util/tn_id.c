/*
 * NAME
 *	tn_id - checks of identifiers from outside
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_id.h>
#include <tn/tn_mem.h>

void tn_traceparent_new(char out[TN_TRACEPARENT_SIZE])
{
    unsigned char rnd[24];
    char *hex;

    tn_random_bytes(rnd, sizeof(rnd));
    hex = tn_hex_encode(rnd, sizeof(rnd));
    snprintf(out, TN_TRACEPARENT_SIZE, "00-%.32s-%.16s-01", hex, hex + 32);
    tn_free(hex);
}

bool tn_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
