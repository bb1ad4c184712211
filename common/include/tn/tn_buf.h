#ifndef TN_BUF_H
#define TN_BUF_H
/*
 * tn_buf - a growable byte buffer with a hard cap (STYLE.md R16). Appending
 * past the cap returns TN_E2BIG and leaves the buffer unchanged. The data is
 * always NUL-terminated (the NUL is not counted in len).
 */
#include <stdarg.h>
#include <stddef.h>

#include <tn/tn_err.h>

#if defined(__GNUC__)
#define TN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TN_PRINTF(f, a)
#endif

struct tn_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;   /* hard limit on len; 0 means unlimited */
    size_t _size; /* private: allocated bytes */
};

/* tn_buf_init - empty buffer that may hold up to cap bytes (0: no cap). */
void tn_buf_init(struct tn_buf *b, size_t cap);
/* tn_buf_add - append n bytes. Errors: TN_E2BIG past the cap (nothing added). */
enum tn_err tn_buf_add(struct tn_buf *b, const void *p, size_t n);
/* tn_buf_adds - append a C string. */
enum tn_err tn_buf_adds(struct tn_buf *b, const char *s);
/* tn_buf_printf - append formatted text. */
enum tn_err tn_buf_printf(struct tn_buf *b, const char *fmt, ...) TN_PRINTF(2, 3);
/* tn_buf_reset - forget the contents, keep the memory. */
void tn_buf_reset(struct tn_buf *b);
/* tn_buf_steal - take the data (new, NUL-terminated; caller frees with tn_free). */
char *tn_buf_steal(struct tn_buf *b, size_t *len);
/* tn_buf_free - release the memory (NULL-safe on an empty buffer). */
void tn_buf_free(struct tn_buf *b);

#endif
