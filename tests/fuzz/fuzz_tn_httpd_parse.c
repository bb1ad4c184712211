/*
 * NAME
 *	fuzz_tn_httpd_parse - libFuzzer target for tn_httpd's request framing
 * DESCRIPTION
 *	Feeds arbitrary bytes to tn__httpd_frame_feed the way a connection
 *	does: in pieces (the first input byte picks the piece size), consuming
 *	each framed request and going on with the bytes after it, as with
 *	pipelining. Checks the invariants the server relies on: a framed request
 *	lies inside the buffer, spans lie inside the head, limits hold, and a
 *	failure carries a 4xx/5xx status.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_mem.h>

#include "../../common/src/io/tn_httpd_parse.h"

#define MAX_HEADER 2048
#define MAX_BODY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const struct tn__httpd_frame *f, struct tn__httpd_span s)
{
    if ((size_t)s.off + s.len > f->head_len)
        abort();
}

static void check_done(const struct tn__httpd_frame *f, size_t len)
{
    if (tn__httpd_frame_size(f) > len || f->head_len > MAX_HEADER || f->body_len > MAX_BODY)
        abort();
    if (f->num_headers > TN__HTTPD_MAX_HEADERS)
        abort();
    check_span(f, f->method);
    check_span(f, f->path);
    for (size_t i = 0; i < f->num_headers; i++) {
        check_span(f, f->hname[i]);
        check_span(f, f->hvalue[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn__httpd_frame f;
    size_t piece, pos = 1, len = 0;
    char *buf;

    if (size < 1)
        return 0;
    piece = (size_t)data[0] % 64 + 1;
    buf = tn_xmalloc(size + 1);
    tn__httpd_frame_init(&f, MAX_HEADER, MAX_BODY);
    while (pos < size || len > 0) {
        size_t n = size - pos < piece ? size - pos : piece;
        enum tn__httpd_step st;
        size_t sz;

        memcpy(buf + len, data + pos, n);
        len += n;
        pos += n;
        st = tn__httpd_frame_feed(&f, buf, &len);
        if (len > size)
            abort();
        if (st == TN__HTTPD_FRAME_FAIL) {
            if (f.status < 400 || f.status > 505)
                abort();
            break;
        }
        if (st == TN__HTTPD_FRAME_MORE) {
            if (n == 0)
                break; /* input exhausted mid-request */
            continue;
        }
        check_done(&f, len);
        sz = tn__httpd_frame_size(&f);
        memmove(buf, buf + sz, len - sz);
        len -= sz;
        tn__httpd_frame_init(&f, MAX_HEADER, MAX_BODY);
    }
    tn_free(buf);
    return 0;
}
