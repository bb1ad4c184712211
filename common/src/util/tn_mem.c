/*
 * NAME
 *	tn_mem - allocation wrappers that abort on exhaustion
 * DESCRIPTION
 *	The only file allowed to call malloc/calloc/realloc/free directly
 *	(scripts/check-banned.sh). Running out of memory is fatal by design:
 *	it removes a whole class of untested error paths.
 * RUNS ON
 *	any thread.
 * DIAGNOSTICS
 *	Writes one JSON line to stderr, then abort().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <tn/tn_mem.h>

/* oom - report and abort; uses no allocation */
static _Noreturn void oom(size_t n)
{
    char line[128];
    int len = snprintf(line, sizeof(line),
                       "{\"lvl\":\"fatal\",\"event\":\"mem.exhausted\",\"bytes\":%zu}\n", n);

    if (len > 0)
        (void)!write(STDERR_FILENO, line, (size_t)len);
    abort();
}

/* tn_xmalloc - malloc or die */
void *tn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

/* tn_xcalloc - calloc or die */
void *tn_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL)
        oom(nmemb * size);
    return p;
}

/* tn_xrealloc - realloc or die */
void *tn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

/* tn_xstrdup - strdup or die */
char *tn_xstrdup(const char *s)
{
    return tn_xmemdup(s, strlen(s) + 1);
}

/* tn_xstrndup - bounded strdup or die */
char *tn_xstrndup(const char *s, size_t n)
{
    char *p = tn_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* tn_xmemdup - copy n bytes or die */
void *tn_xmemdup(const void *p, size_t n)
{
    void *q = tn_xmalloc(n);

    if (n > 0)
        memcpy(q, p, n);
    return q;
}

/* tn_free - free, NULL-safe */
void tn_free(void *p)
{
    free(p);
}

/* tn_wipe - zeros that stay written: see tn_mem.h */
void tn_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* tn_free_secret - wipe, then free, NULL-safe */
void tn_free_secret(char *s)
{
    if (s != NULL)
        tn_wipe(s, strlen(s));
    free(s);
}
