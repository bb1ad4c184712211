#ifndef TN_TIME_H
#define TN_TIME_H
/*
 * tn_time - clocks and the capped exponential backoff with jitter that every
 * retry loop uses (STYLE.md R16).
 */
#include <stddef.h>
#include <stdint.h>

/* tn_now_ms - wall clock, milliseconds since the epoch. */
int64_t tn_now_ms(void);
/* tn_mono_ms - monotonic clock in milliseconds (for durations). */
int64_t tn_mono_ms(void);
/* tn_time_rfc3339 - format epoch ms as "2026-01-07T10:21:03.114Z" into out. */
char *tn_time_rfc3339(int64_t ms, char *out, size_t size);

struct tn_backoff {
    uint32_t base_ms, cap_ms; /* public: set before the first tn_backoff_next() */
    uint32_t _attempt;        /* private */
};

/* tn_backoff_delay - full-jitter delay for attempt n (0-based): a random value
 * in [d/2, d] where d = min(cap, base * 2^n). Pure except for the random draw. */
uint32_t tn_backoff_delay(uint32_t base_ms, uint32_t cap_ms, uint32_t attempt);
/* tn_backoff_next - the next delay, counting attempts. */
uint32_t tn_backoff_next(struct tn_backoff *b);
/* tn_backoff_reset - back to the first attempt (after a success). */
void tn_backoff_reset(struct tn_backoff *b);

#endif
