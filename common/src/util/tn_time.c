/*
 * NAME
 *	tn_time - clocks and backoff
 * DESCRIPTION
 *	Backoff uses "equal jitter" (half fixed, half random) so that the
 *	delays grow visibly, which the tests assert, yet replicas that failed
 *	together do not retry together. The random draw comes from OpenSSL's
 *	RAND_bytes; rand(3) is banned.
 * RUNS ON
 *	any thread.
 */
#include <stdio.h>
#include <time.h>

#include <openssl/rand.h>

#include <tn/tn_time.h>

/* tn_now_ms - wall clock */
int64_t tn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tn_mono_ms - monotonic clock */
int64_t tn_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tn_time_rfc3339 - UTC timestamp with milliseconds */
char *tn_time_rfc3339(int64_t ms, char *out, size_t size)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return out;
}

/* tn_backoff_delay - capped exponential delay with equal jitter */
uint32_t tn_backoff_delay(uint32_t base_ms, uint32_t cap_ms, uint32_t attempt)
{
    uint64_t d = base_ms;
    uint32_t r = 0;

    for (uint32_t i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (d < 2)
        return (uint32_t)d;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = 0;
    return (uint32_t)(d / 2 + r % (d / 2 + 1));
}

/* tn_backoff_next - next delay */
uint32_t tn_backoff_next(struct tn_backoff *b)
{
    uint32_t d = tn_backoff_delay(b->base_ms, b->cap_ms, b->_attempt);

    if (b->_attempt < 32)
        b->_attempt++;
    return d;
}

/* tn_backoff_reset - start over */
void tn_backoff_reset(struct tn_backoff *b)
{
    b->_attempt = 0;
}
