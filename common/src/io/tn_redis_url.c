/*
 * NAME
 *	tn_redis_url - parse TN_REDIS_URL; classify error replies
 * DESCRIPTION
 *	tn_redis_url_parse is shared with the blocking users (ternctl, the
 *	tests), so that they read TN_REDIS_URL exactly as the daemons do.
 *	Nothing here touches a connection or the loop.
 * RUNS ON
 *	any thread (pure functions).
 * DIAGNOSTICS
 *	none; a bad URL is TN_EINVAL, and passwords are never logged.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tn/tn_mem.h>
#include <tn/tn_redis.h>

#define SCHEME "redis://"

/* hexval - value of one hex digit, -1 if not one */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* pct_decode - new NUL-terminated, percent-decoded copy of s[0..n); NULL if a
 * %xx escape is malformed or decodes to NUL */
static char *pct_decode(const char *s, size_t n)
{
    char *out = tn_xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            tn_free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* parse_num - s[0..n) as a decimal in [min, max] */
static bool parse_num(const char *s, size_t n, long min, long max, int *out)
{
    char buf[16];
    char *end = NULL;
    long v;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] < '0' || buf[0] > '9')
        return false;
    v = strtol(buf, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* parse_userinfo - "user:password" or "password" into u */
static bool parse_userinfo(const char *s, size_t n, struct tn_redis_url *u)
{
    const char *colon = memchr(s, ':', n);

    if (colon == NULL) {
        u->password = pct_decode(s, n);
        return u->password != NULL;
    }
    if (colon > s) {
        u->user = pct_decode(s, (size_t)(colon - s));
        if (u->user == NULL)
            return false;
    }
    u->password = pct_decode(colon + 1, (size_t)(s + n - colon - 1));
    return u->password != NULL;
}

/* parse_hostport - "host", "host:port", "[v6]" or "[v6]:port" into u */
static bool parse_hostport(const char *s, size_t n, struct tn_redis_url *u)
{
    const char *end = s + n;
    const char *h = s, *he, *rest;

    if (n > 0 && *s == '[') {
        h = s + 1;
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL)
            return false;
        rest = he + 1;
    } else {
        he = memchr(s, ':', n);
        if (he == NULL)
            he = end;
        rest = he;
    }
    if (he == h)
        return false;
    u->host = tn_xstrndup(h, (size_t)(he - h));
    u->port = 6379;
    if (rest == end)
        return true;
    if (*rest != ':')
        return false;
    return parse_num(rest + 1, (size_t)(end - rest - 1), 1, 65535, &u->port);
}

/* tn_redis_url_parse - see tn_redis.h */
enum tn_err tn_redis_url_parse(const char *url, struct tn_redis_url *out)
{
    const char *p, *auth_end, *slash, *at = NULL;

    memset(out, 0, sizeof(*out));
    if (url == NULL || strncmp(url, SCHEME, strlen(SCHEME)) != 0)
        goto bad;
    p = url + strlen(SCHEME);
    slash = strchr(p, '/');
    auth_end = slash != NULL ? slash : p + strlen(p);
    for (const char *q = p; q < auth_end; q++) {
        if (*q == '@')
            at = q;
    }
    if (at != NULL) {
        if (!parse_userinfo(p, (size_t)(at - p), out))
            goto bad;
        p = at + 1;
    }
    if (!parse_hostport(p, (size_t)(auth_end - p), out))
        goto bad;
    if (slash != NULL && slash[1] != '\0' &&
        !parse_num(slash + 1, strlen(slash + 1), 0, 1 << 20, &out->db))
        goto bad;
    return TN_OK;
bad:
    tn_redis_url_free(out);
    return TN_EINVAL;
}

/* tn_redis_url_free - see tn_redis.h */
void tn_redis_url_free(struct tn_redis_url *u)
{
    if (u == NULL)
        return;
    tn_free(u->user);
    tn_free(u->password);
    tn_free(u->host);
    memset(u, 0, sizeof(*u));
}

/* prefix - does the error string s start with word followed by a space/end */
static bool prefix(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n >= w && memcmp(s, word, w) == 0 && (n == w || s[w] == ' ');
}

/* tn_redis_reply_is_denied - see tn_redis.h */
bool tn_redis_reply_is_denied(const struct redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
        return false;
    return prefix(reply->str, reply->len, "NOPERM") || prefix(reply->str, reply->len, "NOAUTH") ||
           prefix(reply->str, reply->len, "WRONGPASS");
}
