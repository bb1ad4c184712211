/*
 * NAME
 *	fuzz_oauth_answer - arbitrary token endpoint answers into
 *	tn_oauth_token_read
 * DESCRIPTION
 *	Input: bytes 0-1 the HTTP status (100-599), byte 2 a transport error
 *	(bits 0-6 pick TN_OK or a tn_http error; bit 7 passes the response
 *	along with an error anyway), then the body. Checks what the callers
 *	(sender_gmail.c, calsync_gtoken.c, calsync_gconnect.c) rely on: an
 *	outcome of the enum; a token exactly when the outcome is OK, non-empty
 *	and within its limit; an expiry after now; a NUL-terminated printable
 *	error code; status 0 on a transport error; and a clear that leaves all
 *	zero.
 * RUNS ON
 *	libFuzzer's thread.
 * DIAGNOSTICS
 *	__builtin_trap on a broken promise; ASan and UBSan on the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tn/tn_http.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth_token.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600

/* token_ok - NULL, or a non-empty string shorter than max */
static int token_ok(const char *s, size_t max)
{
    return s == NULL || (s[0] != '\0' && strlen(s) < max);
}

/* check - the promises of tn_oauth_token.h */
static void check(const struct tn_oauth_token *t, long status, enum tn_err err)
{
    size_t i;

    if (t->outcome != TN_OAUTH_TOKEN_OK && t->outcome != TN_OAUTH_TOKEN_DEAD_GRANT &&
        t->outcome != TN_OAUTH_TOKEN_UNAVAILABLE && t->outcome != TN_OAUTH_TOKEN_REFUSED)
        __builtin_trap();
    if ((t->outcome == TN_OAUTH_TOKEN_OK) != (t->access != NULL))
        __builtin_trap();
    if (t->outcome != TN_OAUTH_TOKEN_OK &&
        (t->refresh != NULL || t->id_token != NULL || t->expires_s != 0))
        __builtin_trap();
    if (!token_ok(t->access, TN_OAUTH_TOKEN_MAX) || !token_ok(t->refresh, TN_OAUTH_TOKEN_MAX) ||
        !token_ok(t->id_token, TN_OAUTH_ID_TOKEN_MAX))
        __builtin_trap();
    if (t->outcome == TN_OAUTH_TOKEN_OK &&
        (t->expires_s <= NOW || t->expires_s > NOW + TN_OAUTH_TOKEN_TTL_MAX_S || status != 200))
        __builtin_trap();
    if (err != TN_OK && (t->outcome != TN_OAUTH_TOKEN_UNAVAILABLE || t->status != 0))
        __builtin_trap();
    if (err == TN_OK && t->status != status)
        __builtin_trap();
    if (memchr(t->error, '\0', sizeof(t->error)) == NULL)
        __builtin_trap();
    for (i = 0; t->error[i] != '\0'; i++) {
        if (t->error[i] < 0x20 || t->error[i] >= 0x7f)
            __builtin_trap();
    }
}

/* what byte 2 picks (bit 7: a stray response next to an error); mostly TN_OK */
static const enum tn_err errs[] = {TN_OK,       TN_OK,     TN_OK,     TN_OK,        TN_OK,
                                   TN_OK,       TN_OK,     TN_OK,     TN_ETIMEDOUT, TN_E2BIG,
                                   TN_EUNAVAIL, TN_EPROTO, TN_EINVAL, TN_ECANCELED};

/* LLVMFuzzerTestOneInput - one answer per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn_http_response r;
    struct tn_oauth_token t;
    enum tn_err err;
    char *body;
    size_t i;

    if (size < 3)
        return 0;
    memset(&r, 0, sizeof(r));
    r.status = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 500);
    err = errs[(data[2] & 0x7f) % (sizeof(errs) / sizeof(errs[0]))];
    body = tn_xmalloc(size - 3 + 1); /* NUL-terminated, as tn_http hands it */
    memcpy(body, data + 3, size - 3);
    body[size - 3] = '\0';
    r.body = body;
    r.body_len = size - 3;
    memset(&t, 0x5a, sizeof(t)); /* read must set everything */
    tn_oauth_token_read(err == TN_OK || data[2] & 0x80 ? &r : NULL, err, NOW, &t);
    check(&t, r.status, err);
    tn_oauth_token_clear(&t);
    for (i = 0; i < sizeof(t); i++) {
        if (((const unsigned char *)&t)[i] != 0)
            __builtin_trap();
    }
    tn_free(body);
    return 0;
}
