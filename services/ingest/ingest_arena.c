/*
 * NAME
 *	ingest_arena - jansson's memory during one webhook's parse
 * SYNOPSIS
 *	ingest_arena_init();                     once, before any JSON
 *	ingest_arena_begin(); parse...; ingest_arena_end();
 * DESCRIPTION
 *	Parsing a webhook and building its entries makes jansson allocate a
 *	hundred or so small blocks, every one freed before the parser
 *	returns. Between begin and end, on the thread that called begin,
 *	jansson's blocks come from a fixed region by bumping a pointer and
 *	are "freed" by forgetting them all at end. A block that does not fit
 *	(a huge body), and every block on any other thread or outside a
 *	begin/end pair, comes from malloc as usual; free tells the two apart
 *	by address.
 *
 *	The rule that makes it safe: no JSON value made between begin and
 *	end may outlive end (the parsers dump what they keep into strings).
 *	ingest_arena_end checks that every block handed out was given back.
 *	Under AddressSanitizer the arena is off (every block from malloc), so
 *	that the sanitizer build still sees each block's life.
 * RUNS ON
 *	loop (begin/end); the allocator hooks on any thread.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>

#include "ingest_srv.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_OFF 1
#endif
#endif

#define ARENA_SIZE (256u << 10)
#define ARENA_ALIGN 16u

static _Alignas(16) unsigned char arena[ARENA_SIZE];
static size_t used, live;         /* bytes handed out; blocks not given back */
static _Thread_local bool inside; /* between begin and end, this thread */

/* arena_malloc - jansson's malloc. Runs on: any thread. */
static void *arena_malloc(size_t n)
{
    size_t a = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

    if (inside && a >= n && a <= ARENA_SIZE - used) {
        void *p = arena + used;
        used += a;
        live++;
        return p;
    }
    return tn_xmalloc(n);
}

/* arena_free - jansson's free. Runs on: any thread. */
static void arena_free(void *p)
{
    if ((unsigned char *)p >= arena && (unsigned char *)p < arena + ARENA_SIZE) {
        live--;
        return;
    }
    tn_free(p);
}

void ingest_arena_init(void)
{
#ifndef ARENA_OFF
    json_set_alloc_funcs(arena_malloc, arena_free);
#else
    (void)arena_malloc; /* AddressSanitizer sees every block */
    (void)arena_free;
#endif
}

void ingest_arena_begin(void)
{
    TN_ASSERT(!inside && live == 0);
    used = 0;
    inside = true;
}

void ingest_arena_end(void)
{
    TN_ASSERT(inside);
    TN_ASSERT(live == 0); /* a JSON value outlived its request */
    inside = false;
    used = 0;
}
