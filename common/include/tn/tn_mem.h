#ifndef TN_MEM_H
#define TN_MEM_H
/*
 * tn_mem - allocation that cannot fail (STYLE.md R12). On exhaustion the
 * process logs "mem.exhausted" and aborts; the supervisor restarts it.
 */
#include <stddef.h>

/* tn_xmalloc - new memory of n bytes (n == 0 gives a valid 1-byte block). */
void *tn_xmalloc(size_t n);
/* tn_xcalloc - new zeroed memory for nmemb * size bytes; overflow aborts. */
void *tn_xcalloc(size_t nmemb, size_t size);
/* tn_xrealloc - resize p (may be NULL); returns the new block, p is consumed. */
void *tn_xrealloc(void *p, size_t n);
/* tn_xstrdup - new copy of s (s must not be NULL). */
char *tn_xstrdup(const char *s);
/* tn_xstrndup - new NUL-terminated copy of the first n bytes of s. */
char *tn_xstrndup(const char *s, size_t n);
/* tn_xmemdup - new copy of n bytes at p. */
void *tn_xmemdup(const void *p, size_t n);
/* tn_free - release p (NULL-safe). */
void tn_free(void *p);
/* tn_wipe - overwrite n bytes at p with zeros, a store the compiler may
 * not drop as dead (OPENSSL_cleanse) even when p is freed next. */
void tn_wipe(void *p, size_t n);
/* tn_free_secret - wipe the NUL-terminated string s (a token, a password,
 * a URL that carries one), then release it (NULL-safe). */
void tn_free_secret(char *s);

#endif
