/*
 * NAME
 *	tn_httpd_parse - request framing for tn_httpd (no sockets)
 * DESCRIPTION
 *	Turns the bytes at the start of a connection buffer into one framed
 *	request: head by phr_parse_request, body by Content-Length or by
 *	phr_decode_chunked (in place, incrementally). Applies the header and body
 *	limits and the RFC 7230 framing rules that matter for request smuggling:
 *	Content-Length together with Transfer-Encoding is 400, differing
 *	repeated Content-Length is 400, an unknown transfer coding is 501.
 *	Kept pure so that tests/fuzz/fuzz_tn_httpd_parse.c can drive it.
 * RUNS ON
 *	Any thread; no global state.
 * DIAGNOSTICS
 *	None: the caller logs. Failures leave the status in f->status.
 */
#include "tn_httpd_parse.h"

#include <string.h>
#include <strings.h>

static bool span_ieq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    return n == l && strncasecmp(p, lit, l) == 0;
}

/* trim - drop optional whitespace around a header value or list token. */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* has_token - does the comma-separated list v contain token (any case)? */
static bool has_token(const char *v, size_t n, const char *token)
{
    while (n > 0) {
        const char *comma = memchr(v, ',', n);
        size_t tl = comma != NULL ? (size_t)(comma - v) : n;
        const char *t = v;
        size_t tn = tl;

        trim(&t, &tn);
        if (span_ieq(t, tn, token))
            return true;
        if (comma == NULL)
            break;
        v += tl + 1;
        n -= tl + 1;
    }
    return false;
}

/* parse_size - a Content-Length value: digits only, no overflow. */
static bool parse_size(const char *v, size_t n, size_t *out)
{
    size_t x = 0;

    trim(&v, &n);
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (size_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

static enum tn__httpd_step fail(struct tn__httpd_frame *f, int status, enum tn__httpd_limit lim)
{
    f->status = status;
    f->limit = lim;
    return TN__HTTPD_FRAME_FAIL;
}

void tn__httpd_frame_init(struct tn__httpd_frame *f, size_t max_header, size_t max_body)
{
    memset(f, 0, sizeof(*f));
    f->max_header = max_header;
    f->max_body = max_body;
    f->_dec.consume_trailer = 1;
}

size_t tn__httpd_frame_size(const struct tn__httpd_frame *f)
{
    return f->head_len + f->body_len;
}

/* body_headers - framing, persistence and expectation from the header list. */
static enum tn__httpd_step body_headers(struct tn__httpd_frame *f, const struct phr_header *hs,
                                        size_t nh)
{
    bool have_cl = false, conn_close = false, conn_keep = false, expect = false;

    for (size_t i = 0; i < nh; i++) {
        const char *v = hs[i].value;
        size_t vn = hs[i].value_len;
        size_t cl;

        if (span_ieq(hs[i].name, hs[i].name_len, "content-length")) {
            if (!parse_size(v, vn, &cl) || (have_cl && cl != f->content_length))
                return fail(f, 400, TN__HTTPD_LIMIT_NONE);
            have_cl = true;
            f->content_length = cl;
        } else if (span_ieq(hs[i].name, hs[i].name_len, "transfer-encoding")) {
            trim(&v, &vn);
            if (f->chunked || !span_ieq(v, vn, "chunked"))
                return fail(f, f->chunked ? 400 : 501, TN__HTTPD_LIMIT_NONE);
            f->chunked = true;
        } else if (span_ieq(hs[i].name, hs[i].name_len, "connection")) {
            conn_close = conn_close || has_token(v, vn, "close");
            conn_keep = conn_keep || has_token(v, vn, "keep-alive");
        } else if (span_ieq(hs[i].name, hs[i].name_len, "expect")) {
            trim(&v, &vn);
            if (!span_ieq(v, vn, "100-continue"))
                return fail(f, 417, TN__HTTPD_LIMIT_NONE);
            expect = true;
        }
    }
    if (have_cl && f->chunked)
        return fail(f, 400, TN__HTTPD_LIMIT_NONE);
    if (f->chunked && f->minor_version == 0)
        return fail(f, 400, TN__HTTPD_LIMIT_NONE);
    if (have_cl && f->content_length > f->max_body)
        return fail(f, 413, TN__HTTPD_LIMIT_BODY);
    f->keep_alive = f->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
    f->expect_continue = expect && f->minor_version == 1 && (f->chunked || f->content_length > 0);
    return TN__HTTPD_FRAME_DONE;
}

static enum tn__httpd_step parse_head(struct tn__httpd_frame *f, const char *buf, size_t len)
{
    struct phr_header hs[TN__HTTPD_MAX_HEADERS];
    size_t nh = TN__HTTPD_MAX_HEADERS;
    const char *m = NULL, *p = NULL;
    size_t ml = 0, pl = 0;
    int minor = -1;
    int rc;

    rc = phr_parse_request(buf, len, &m, &ml, &p, &pl, &minor, hs, &nh, f->_last_len);
    if (rc == -2) {
        if (len > f->max_header)
            return fail(f, 431, TN__HTTPD_LIMIT_HEADER);
        f->_last_len = len;
        return TN__HTTPD_FRAME_MORE;
    }
    if (rc < 0)
        return fail(f, 400, TN__HTTPD_LIMIT_NONE);
    if ((size_t)rc > f->max_header)
        return fail(f, 431, TN__HTTPD_LIMIT_HEADER);
    if (minor != 0 && minor != 1)
        return fail(f, 505, TN__HTTPD_LIMIT_NONE);
    f->minor_version = minor;
    f->head_len = (size_t)rc;
    f->method = (struct tn__httpd_span){(uint32_t)(m - buf), (uint32_t)ml};
    f->path = (struct tn__httpd_span){(uint32_t)(p - buf), (uint32_t)pl};
    for (size_t i = 0; i < nh; i++) {
        if (hs[i].name == NULL) /* obsolete line folding (RFC 7230 3.2.4) */
            return fail(f, 400, TN__HTTPD_LIMIT_NONE);
        f->hname[i] =
            (struct tn__httpd_span){(uint32_t)(hs[i].name - buf), (uint32_t)hs[i].name_len};
        f->hvalue[i] =
            (struct tn__httpd_span){(uint32_t)(hs[i].value - buf), (uint32_t)hs[i].value_len};
    }
    f->num_headers = nh;
    if (body_headers(f, hs, nh) != TN__HTTPD_FRAME_DONE)
        return TN__HTTPD_FRAME_FAIL;
    f->head_done = true;
    return TN__HTTPD_FRAME_DONE;
}

/* feed_chunked - de-chunk what arrived after the decoded part, in place. */
static enum tn__httpd_step feed_chunked(struct tn__httpd_frame *f, char *buf, size_t *len)
{
    size_t start = f->head_len + f->body_len;
    size_t n = *len - start;
    ssize_t r;

    if (n == 0)
        return TN__HTTPD_FRAME_MORE;
    r = phr_decode_chunked(&f->_dec, buf + start, &n);
    if (r == -1)
        return fail(f, 400, TN__HTTPD_LIMIT_NONE);
    f->body_len += n;
    if (f->body_len > f->max_body)
        return fail(f, 413, TN__HTTPD_LIMIT_BODY);
    if (r == -2) {
        *len = start + n; /* everything was consumed into the decoder state */
        return TN__HTTPD_FRAME_MORE;
    }
    /* r bytes of the next request were moved to just after the decoded data */
    *len = start + n + (size_t)r;
    return TN__HTTPD_FRAME_DONE;
}

enum tn__httpd_step tn__httpd_frame_feed(struct tn__httpd_frame *f, char *buf, size_t *len)
{
    enum tn__httpd_step st;

    if (!f->head_done) {
        st = parse_head(f, buf, *len);
        if (st != TN__HTTPD_FRAME_DONE)
            return st;
    }
    if (f->chunked)
        return feed_chunked(f, buf, len);
    if (*len - f->head_len < f->content_length)
        return TN__HTTPD_FRAME_MORE;
    f->body_len = f->content_length;
    return TN__HTTPD_FRAME_DONE;
}
