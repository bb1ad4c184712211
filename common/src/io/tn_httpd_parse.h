#ifndef TN_HTTPD_PARSE_H
#define TN_HTTPD_PARSE_H
/*
 * tn_httpd_parse - request framing for tn_httpd, without sockets (private to
 * common/src/io and the fuzzer). The caller keeps one request's bytes at the
 * start of a buffer and calls tn__httpd_frame_feed() each time bytes arrive.
 * picohttpparser does the parsing: phr_parse_request for the head and
 * phr_decode_chunked for chunked bodies, which are de-chunked in place.
 *
 * After TN__HTTPD_FRAME_DONE the buffer holds
 *   [head: head_len bytes][body: body_len bytes][bytes of later requests]
 * so the next request starts at head_len + body_len.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* picohttpparser, as compiled into libh2o 2.2.5 (header not shipped). The
 * layouts below were checked against h2o 2.2.5's deps/picohttpparser and
 * against the machine code of libh2o.so.0.13 (phr_decode_chunked touches
 * offsets 0, 8, 9 and 10 only: no _total_read/_total_overhead fields). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);

#define TN__HTTPD_MAX_HEADERS 64

enum tn__httpd_step {
    TN__HTTPD_FRAME_MORE, /* incomplete: feed again when more bytes arrive */
    TN__HTTPD_FRAME_DONE, /* one whole request framed */
    TN__HTTPD_FRAME_FAIL, /* answer f->status and close */
};

enum tn__httpd_limit {
    TN__HTTPD_LIMIT_NONE,
    TN__HTTPD_LIMIT_BODY,   /* 413 */
    TN__HTTPD_LIMIT_HEADER, /* 431 */
};

/* Offsets into the buffer: they survive a realloc of the buffer. */
struct tn__httpd_span {
    uint32_t off, len;
};

struct tn__httpd_frame {
    /* set by the caller before the first feed (tn__httpd_frame_init) */
    size_t max_header, max_body;

    /* results; valid once head_done */
    bool head_done;
    bool chunked;
    bool keep_alive;
    bool expect_continue; /* "Expect: 100-continue" and a body still to come */
    int minor_version;
    size_t head_len;
    size_t content_length;
    struct tn__httpd_span method, path;
    struct tn__httpd_span hname[TN__HTTPD_MAX_HEADERS], hvalue[TN__HTTPD_MAX_HEADERS];
    size_t num_headers;
    size_t body_len; /* decoded body bytes so far, at buf + head_len */

    /* on TN__HTTPD_FRAME_FAIL */
    int status;
    enum tn__httpd_limit limit;

    /* private */
    size_t _last_len;
    struct phr_chunked_decoder _dec;
};

/* tn__httpd_frame_init - reset f for a new request with these limits. */
void tn__httpd_frame_init(struct tn__httpd_frame *f, size_t max_header, size_t max_body);

/* tn__httpd_frame_feed - advance framing over buf[0 .. *len), which holds this
 * request from its first byte (plus whatever followed). May rewrite the
 * buffer past head_len (chunked decoding) and lower *len accordingly. */
enum tn__httpd_step tn__httpd_frame_feed(struct tn__httpd_frame *f, char *buf, size_t *len);

/* tn__httpd_frame_size - bytes this request occupies once DONE. */
size_t tn__httpd_frame_size(const struct tn__httpd_frame *f);

#endif
