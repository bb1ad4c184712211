/*
 * NAME
 *	tn_buf - capped growable buffer
 * DESCRIPTION
 *	Every buffer filled from outside input has a cap; tn_buf enforces it
 *	in one place (curl's dynbuf "toobig" idea).
 * RUNS ON
 *	any thread; a buffer belongs to one thread at a time.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_mem.h>

/* tn_buf_init - empty buffer with a cap */
void tn_buf_init(struct tn_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->cap = cap;
    b->_size = 0;
}

/* reserve - make room for n more bytes plus the NUL */
static enum tn_err reserve(struct tn_buf *b, size_t n)
{
    size_t need = b->len + n + 1;
    size_t size;

    if (b->cap != 0 && b->len + n > b->cap)
        return TN_E2BIG;
    if (need <= b->_size)
        return TN_OK;
    size = b->_size ? b->_size : 64;
    while (size < need)
        size *= 2;
    b->data = tn_xrealloc(b->data, size);
    b->_size = size;
    return TN_OK;
}

/* tn_buf_add - append bytes */
enum tn_err tn_buf_add(struct tn_buf *b, const void *p, size_t n)
{
    enum tn_err err = reserve(b, n);

    if (err != TN_OK)
        return err;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TN_OK;
}

/* tn_buf_adds - append a string */
enum tn_err tn_buf_adds(struct tn_buf *b, const char *s)
{
    return tn_buf_add(b, s, strlen(s));
}

/* tn_buf_printf - append formatted text */
enum tn_err tn_buf_printf(struct tn_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    enum tn_err err;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TN_EINVAL;
    err = reserve(b, (size_t)n);
    if (err != TN_OK)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TN_OK;
}

/* tn_buf_reset - empty, keep memory */
void tn_buf_reset(struct tn_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* tn_buf_steal - hand the data to the caller */
char *tn_buf_steal(struct tn_buf *b, size_t *len)
{
    char *p;

    if (b->data == NULL)
        (void)reserve(b, 0);
    if (b->data == NULL) {
        b->data = tn_xmalloc(1);
        b->data[0] = '\0';
    }
    p = b->data;
    if (len != NULL)
        *len = b->len;
    tn_buf_init(b, b->cap);
    return p;
}

/* tn_buf_free - release */
void tn_buf_free(struct tn_buf *b)
{
    tn_free(b->data);
    tn_buf_init(b, b->cap);
}
