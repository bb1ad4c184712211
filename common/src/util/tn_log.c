/*
 * NAME
 *	tn_log - JSON-lines logger
 * DESCRIPTION
 *	Formats one event into a fixed stack buffer and writes it with a single
 *	write(2), so lines from threads never interleave and logging never
 *	allocates. String values are escaped for JSON here rather than through
 *	jansson because jansson allocates, and logging must work when memory
 *	is short; this escapes output only and parses nothing.
 *
 *	Warnings and errors are rate-limited per event name: a small table of
 *	slots keyed by the event pointer counts lines in the current second.
 * RUNS ON
 *	any thread. The rate-limit table is guarded by a mutex.
 * DIAGNOSTICS
 *	Lines longer than the buffer are cut and end with "truncated":true.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tn/tn_log.h>

#define LINE_MAX_ 4096
#define SLOTS 64

struct line {
    char buf[LINE_MAX_];
    size_t len;
    bool cut;
};

struct slot {
    const char *event;
    time_t sec;
    unsigned count;
    unsigned suppressed;
};

static const char *log_svc = "tern"; /* written once before the loop starts */
static enum tn_log_level log_min = TN_LOG_INFO;
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS];

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

/* tn_log_init - set service name and level */
void tn_log_init(const char *svc, enum tn_log_level min)
{
    log_svc = svc;
    log_min = min;
}

/* tn_log_level_parse - parse a level name */
enum tn_err tn_log_level_parse(const char *s, enum tn_log_level *out)
{
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tn_log_level)i;
            return TN_OK;
        }
    }
    return TN_EINVAL;
}

/* tn_log_enabled - level check */
bool tn_log_enabled(enum tn_log_level lvl)
{
    return lvl >= log_min;
}

/* put - append raw bytes, marking the line cut when full */
static void put(struct line *l, const char *s, size_t n)
{
    if (l->len + n > LINE_MAX_ - 32) {
        l->cut = true;
        n = l->len < LINE_MAX_ - 32 ? LINE_MAX_ - 32 - l->len : 0;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* puts_ - append a C string */
static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* put_json_str - append s as a quoted JSON string */
static void put_json_str(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6];

    put(l, "\"", 1);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

/* put_key - append ,"key": */
static void put_key(struct line *l, const char *key)
{
    put(l, ",", 1);
    put_json_str(l, key);
    put(l, ":", 1);
}

/* put_kv - append one typed field */
static void put_kv(struct line *l, const struct tn_kv *kv)
{
    char num[64];
    char masked[128];

    if (kv->type == TN_KV_T_NONE || kv->key == NULL)
        return;
    put_key(l, kv->key);
    switch (kv->type) {
    case TN_KV_T_STR:
        put_json_str(l, kv->v.s);
        break;
    case TN_KV_T_INT:
        snprintf(num, sizeof(num), "%lld", kv->v.i);
        puts_(l, num);
        break;
    case TN_KV_T_DBL:
        snprintf(num, sizeof(num), "%.6g", kv->v.d);
        puts_(l, num);
        break;
    case TN_KV_T_BOOL:
        puts_(l, kv->v.i ? "true" : "false");
        break;
    case TN_KV_T_ERR:
        put_json_str(l, tn_strerror(kv->v.e));
        break;
    case TN_KV_T_PHONE:
        put_json_str(l, tn_mask_phone(kv->v.s, masked, sizeof(masked)));
        break;
    case TN_KV_T_EMAIL:
        put_json_str(l, tn_mask_email(kv->v.s, masked, sizeof(masked)));
        break;
    case TN_KV_T_NONE:
        break;
    }
}

/* put_ts - append the RFC 3339 UTC timestamp with milliseconds */
static void put_ts(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char out[96];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, sizeof(out), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000000) % 1000);
    puts_(l, out);
}

/* rate_ok - may this warn/error line go out? counts suppressed ones */
static bool rate_ok(const char *event, unsigned *suppressed)
{
    size_t h = ((size_t)event >> 4) % SLOTS;
    time_t now = time(NULL);
    bool ok;

    pthread_mutex_lock(&slot_lock);
    if (slots[h].event != event || slots[h].sec != now) {
        *suppressed = slots[h].event == event ? slots[h].suppressed : 0;
        slots[h].event = event;
        slots[h].sec = now;
        slots[h].count = 0;
        slots[h].suppressed = 0;
    } else {
        *suppressed = 0;
    }
    ok = ++slots[h].count <= TN_LOG_BURST;
    if (!ok)
        slots[h].suppressed++;
    pthread_mutex_unlock(&slot_lock);
    return ok;
}

/* write_line - format and write one event */
static void write_line(enum tn_log_level lvl, const struct tn_log_ctx *ctx, const char *event,
                       const struct tn_kv *kvs, size_t n, unsigned suppressed)
{
    struct line l = {.len = 0, .cut = false};
    char num[32];

    puts_(&l, "{\"ts\":");
    put_ts(&l);
    puts_(&l, ",\"lvl\":\"");
    puts_(&l, level_names[lvl]);
    puts_(&l, "\",\"svc\":");
    put_json_str(&l, log_svc);
    puts_(&l, ",\"event\":");
    put_json_str(&l, event);
    if (ctx != NULL) {
        put_kv(&l, &TN_KV_STR(ctx->tenant_id ? "tenant_id" : NULL, ctx->tenant_id));
        put_kv(&l, &TN_KV_STR(ctx->stream ? "stream" : NULL, ctx->stream));
        put_kv(&l, &TN_KV_STR(ctx->entry_id ? "entry_id" : NULL, ctx->entry_id));
    }
    for (size_t i = 0; i < n; i++)
        put_kv(&l, &kvs[i]);
    if (suppressed > 0) {
        snprintf(num, sizeof(num), "%u", suppressed);
        puts_(&l, ",\"suppressed\":");
        puts_(&l, num);
    }
    if (l.cut)
        memcpy(l.buf + l.len, ",\"truncated\":true", 17), l.len += 17;
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    (void)!write(STDOUT_FILENO, l.buf, l.len);
}

/* tn_log_emit - one event line, rate-limited for warn and error */
void tn_log_emit(enum tn_log_level lvl, const struct tn_log_ctx *ctx, const char *event,
                 const struct tn_kv *kvs, size_t n)
{
    unsigned suppressed = 0;

    if (lvl >= TN_LOG_WARN && lvl < TN_LOG_FATAL && !rate_ok(event, &suppressed))
        return;
    write_line(lvl, ctx, event, kvs, n, suppressed);
}

/* tn_log_flush_suppressed - say how many lines the rate limit dropped */
void tn_log_flush_suppressed(void)
{
    time_t now = time(NULL);

    pthread_mutex_lock(&slot_lock);
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i].suppressed > 0 && slots[i].sec != now) {
            const struct tn_kv kv[] = {TN_KV_STR("of_event", slots[i].event),
                                       TN_KV_INT("count", slots[i].suppressed)};
            slots[i].suppressed = 0;
            write_line(TN_LOG_WARN, NULL, "log.suppressed", kv, 2, 0);
        }
    }
    pthread_mutex_unlock(&slot_lock);
}

/* tn_log_fatal_exit - log and exit with EX_CONFIG */
void tn_log_fatal_exit(const char *event, const struct tn_kv *kvs, size_t n)
{
    write_line(TN_LOG_FATAL, NULL, event, kvs, n, 0);
    exit(78);
}

/* tn_panic - broken invariant: log and abort */
void tn_panic(const char *file, int line, const char *what)
{
    const struct tn_kv kv[] = {TN_KV_STR("file", file), TN_KV_INT("line", line),
                               TN_KV_STR("cond", what)};

    write_line(TN_LOG_FATAL, NULL, "panic", kv, 3, 0);
    abort();
}

/* tn_mask_phone - keep the first 4 and last 2 characters, star the rest */
char *tn_mask_phone(const char *in, char *out, size_t size)
{
    size_t n = in != NULL ? strlen(in) : 0;
    size_t j = 0;

    if (size == 0)
        return out;
    for (size_t i = 0; i < n && j + 1 < size; i++)
        out[j++] = (i < 4 || i + 2 >= n) && n > 6 ? in[i] : '*';
    out[j] = '\0';
    return out;
}

/* tn_mask_email - keep the first character of the local part and the domain */
char *tn_mask_email(const char *in, char *out, size_t size)
{
    const char *at = in != NULL ? strchr(in, '@') : NULL;

    if (size == 0)
        return out;
    if (at == NULL || at == in) {
        snprintf(out, size, "***");
        return out;
    }
    snprintf(out, size, "%c***%s", in[0], at);
    return out;
}
