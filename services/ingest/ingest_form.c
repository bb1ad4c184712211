/*
 * NAME
 *	ingest_form - application/x-www-form-urlencoded decoding
 * SYNOPSIS
 *	#include "ingest.h"
 * DESCRIPTION
 *	Splits a form body or query string into name/value pairs. The
 *	percent-decoding is libcurl's (curl_easy_unescape); the only rule we
 *	apply ourselves is the form encoding's '+' for space, which must be
 *	replaced before unescaping so that "%2B" still decodes to '+'.
 *	Decoded text must be UTF-8 without NUL bytes: Twilio's signature is
 *	over UTF-8 text and the values end up in JSON.
 * RUNS ON
 *	any thread (pure).
 * DIAGNOSTICS
 *	TN_EPROTO, TN_E2BIG; callers turn them into HTTP 400.
 */
#include <stdbool.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include <tn/tn_mem.h>

#include "ingest.h"

/* utf8_ok - is p[0..n) valid UTF-8? (jansson's checker, via json_stringn) */
static bool utf8_ok(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);

    if (s == NULL)
        return false;
    json_decref(s);
    return true;
}

/* decode - new decoded copy of the n bytes at p, or NULL if unacceptable */
static char *decode(const char *p, size_t n)
{
    char *plus = tn_xstrndup(p, n);
    char *dec, *out = NULL;
    int outlen = 0;

    for (size_t i = 0; i < n; i++) {
        if (plus[i] == '+')
            plus[i] = ' ';
    }
    dec = curl_easy_unescape(NULL, plus, (int)n, &outlen);
    tn_free(plus);
    if (dec == NULL)
        return NULL;
    if (memchr(dec, '\0', (size_t)outlen) == NULL && utf8_ok(dec, (size_t)outlen))
        out = tn_xstrndup(dec, (size_t)outlen);
    curl_free(dec);
    return out;
}

/* add_pair - decode one "name=value" segment into f */
static enum tn_err add_pair(struct ingest_form *f, const char *seg, size_t n)
{
    const char *eq = memchr(seg, '=', n);
    size_t nlen = eq != NULL ? (size_t)(eq - seg) : n;
    struct ingest_param *p;

    if (f->n >= INGEST_FORM_MAX_PARAMS)
        return TN_E2BIG;
    f->p = tn_xrealloc(f->p, (f->n + 1) * sizeof(*f->p));
    p = &f->p[f->n];
    p->name = decode(seg, nlen);
    p->value = eq != NULL ? decode(eq + 1, n - nlen - 1) : tn_xstrdup("");
    f->n++;
    if (p->name == NULL || p->value == NULL)
        return TN_EPROTO;
    return TN_OK;
}

/* ingest_form_parse - split and decode */
enum tn_err ingest_form_parse(const char *s, size_t n, struct ingest_form *out)
{
    enum tn_err err = TN_OK;
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    if (n > (size_t)0x7fffffff)
        return TN_E2BIG; /* curl_easy_unescape takes an int length */
    while (i < n && err == TN_OK) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t seg = amp != NULL ? (size_t)(amp - (s + i)) : n - i;

        if (seg > 0) /* "a=1&&b=2": empty segments carry nothing */
            err = add_pair(out, s + i, seg);
        i += seg + 1;
    }
    return err;
}

/* ingest_form_get - first value */
const char *ingest_form_get(const struct ingest_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->p[i].name != NULL && strcmp(f->p[i].name, name) == 0)
            return f->p[i].value;
    }
    return NULL;
}

/* ingest_form_free - release */
void ingest_form_free(struct ingest_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        tn_free(f->p[i].name);
        tn_free(f->p[i].value);
    }
    tn_free(f->p);
    f->p = NULL;
    f->n = 0;
}
