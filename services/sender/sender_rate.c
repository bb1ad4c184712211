/*
 * NAME
 *	sender_rate - token buckets per sending identity
 * SYNOPSIS
 *	r = sender_rate_new(); wait = sender_rate_take(r, key, per_s, burst, now);
 * DESCRIPTION
 *	One bucket per key (a WhatsApp phone number, a Twilio number, a
 *	Telegram bot, a Telegram chat), refilled continuously at per_s tokens
 *	a second up to burst. A take that finds no token reserves the next one
 *	(the bucket goes negative) and says how long to wait, so that messages
 *	held back keep their order and come back spaced at the rate.
 *
 *	The caller records the reservation under the message's schedule
 *	member (sender_rate_hold), and the member's next claim spends it
 *	(sender_rate_redeem) instead of taking again; a member back before
 *	its reserved time (its re-score was lost and its lease ended) waits
 *	for that time again, still holding. Without that, every message
 *	waiting on a bucket took a second token when it came back, the bucket
 *	stayed as far below zero as messages waited, and a burst larger than
 *	the bucket was pushed back again and again and never went out.
 *	A reservation nobody redeems (the member went to another replica, or
 *	was canceled) is dropped a minute after its time. At most HOLD_MAX
 *	are kept (about 180 bytes each); past that a held-back member takes a
 *	token again when it comes back, as before.
 *
 *	Identities belong to one tenant, so one tenant's burst only waits on
 *	its own buckets; fairness between tenants at the schedule is
 *	sender_sched.c's claim.
 *
 *	XXX: buckets are per process: N replicas send up to N times the rate
 *	(the providers' own 429s then slow them down, with backoff). Idle
 *	buckets are never dropped (a few dozen bytes per identity).
 * RUNS ON
 *	loop.
 */
#include <string.h>

#include <tn/tn_mem.h>

#include "sender.h"

#define RATE_SLOTS 1024
#define HOLD_TTL_MS 60000 /* an unredeemed reservation lasts this long after its time */
#define HOLD_MAX 65536    /* reservations kept at most */

/* A reserved token, by schedule member. */
struct hold {
    char *member;
    int64_t due_ms;
    struct hold *next;
};

struct bucket {
    char *key;
    double tokens;
    int64_t at_ms;
    struct bucket *next;
};

struct sender_rate {
    struct bucket *slots[RATE_SLOTS];
    struct hold *holds[RATE_SLOTS];
    size_t nholds;
    size_t prune_at;   /* prune the holds when there are this many */
    int64_t pruned_ms; /* when they were pruned last */
};

/* hash - FNV-1a */
static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s != '\0') {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h;
}

/* sender_rate_new - empty buckets */
struct sender_rate *sender_rate_new(void)
{
    struct sender_rate *r = tn_xcalloc(1, sizeof(*r));

    r->prune_at = RATE_SLOTS;
    return r;
}

/* sender_rate_free - release every bucket */
void sender_rate_free(struct sender_rate *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < RATE_SLOTS; i++) {
        struct bucket *b = r->slots[i], *next;

        while (b != NULL) {
            next = b->next;
            tn_free(b->key);
            tn_free(b);
            b = next;
        }
        for (struct hold *h = r->holds[i], *hn; h != NULL; h = hn) {
            hn = h->next;
            tn_free(h->member);
            tn_free(h);
        }
    }
    tn_free(r);
}

/* find - the bucket of key, made full on first use */
static struct bucket *find(struct sender_rate *r, const char *key, double burst, int64_t now)
{
    uint32_t i = hash(key) % RATE_SLOTS;
    struct bucket *b;

    for (b = r->slots[i]; b != NULL; b = b->next) {
        if (strcmp(b->key, key) == 0)
            return b;
    }
    b = tn_xcalloc(1, sizeof(*b));
    b->key = tn_xstrdup(key);
    b->tokens = burst;
    b->at_ms = now;
    b->next = r->slots[i];
    r->slots[i] = b;
    return b;
}

/* sender_rate_take - one token, or the wait for a reserved one */
int64_t sender_rate_take(struct sender_rate *r, const char *key, double per_s, double burst,
                         int64_t now_ms)
{
    struct bucket *b = find(r, key, burst, now_ms);

    if (per_s <= 0)
        return 0;
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->at_ms = now_ms;
    }
    b->tokens -= 1.0;
    if (b->tokens >= 0)
        return 0;
    return (int64_t)(-b->tokens * 1000.0 / per_s) + 1;
}

/* sender_rate_try - one token if one is free now; nothing reserved otherwise */
bool sender_rate_try(struct sender_rate *r, const char *key, double per_s, double burst,
                     int64_t now_ms)
{
    struct bucket *b;

    if (per_s <= 0)
        return true;
    b = find(r, key, burst, now_ms);
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->at_ms = now_ms;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* prune - drop the holds whose time passed HOLD_TTL_MS ago */
static void prune(struct sender_rate *r, int64_t now_ms)
{
    for (size_t i = 0; i < RATE_SLOTS; i++) {
        for (struct hold **hp = &r->holds[i]; *hp != NULL;) {
            struct hold *h = *hp;

            if (h->due_ms + HOLD_TTL_MS >= now_ms) {
                hp = &h->next;
                continue;
            }
            *hp = h->next;
            tn_free(h->member);
            tn_free(h);
            r->nholds--;
        }
    }
    r->pruned_ms = now_ms;
    r->prune_at = r->nholds * 2 > RATE_SLOTS ? r->nholds * 2 : RATE_SLOTS;
    if (r->prune_at > HOLD_MAX)
        r->prune_at = HOLD_MAX;
}

/* sender_rate_hold - see sender.h */
bool sender_rate_hold(struct sender_rate *r, const char *member, int64_t due_ms, int64_t now_ms)
{
    uint32_t i = hash(member) % RATE_SLOTS;
    struct hold *h;

    for (h = r->holds[i]; h != NULL; h = h->next) {
        if (strcmp(h->member, member) == 0) {
            h->due_ms = due_ms;
            return true;
        }
    }
    /* full: prune again at most once a second (a walk of every hold) */
    if (r->nholds >= r->prune_at && (r->nholds < HOLD_MAX || now_ms - r->pruned_ms >= 1000))
        prune(r, now_ms);
    if (r->nholds >= HOLD_MAX)
        return false;
    h = tn_xcalloc(1, sizeof(*h));
    h->member = tn_xstrdup(member);
    h->due_ms = due_ms;
    h->next = r->holds[i];
    r->holds[i] = h;
    r->nholds++;
    return true;
}

/* sender_rate_redeem - see sender.h */
int64_t sender_rate_redeem(struct sender_rate *r, const char *member, int64_t now_ms)
{
    struct hold **hp = &r->holds[hash(member) % RATE_SLOTS];

    for (; *hp != NULL; hp = &(*hp)->next) {
        struct hold *h = *hp;

        if (strcmp(h->member, member) != 0)
            continue;
        if (h->due_ms > now_ms)
            return h->due_ms - now_ms; /* early: kept for its time */
        *hp = h->next;
        tn_free(h->member);
        tn_free(h);
        r->nholds--;
        return 0;
    }
    return -1;
}
