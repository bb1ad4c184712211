#ifndef TN_ID_H
#define TN_ID_H
/*
 * tn_id - identifiers that arrive from outside (stream fields, webhooks,
 * command lines) checked before they reach SQL or a cast.
 */
#include <stdbool.h>

/* Bytes of a W3C traceparent "00-<32 hex>-<16 hex>-01" with its NUL. */
#define TN_TRACEPARENT_SIZE 56

/* tn_traceparent_new - a fresh, sampled W3C traceparent (random trace and
 * span ids) into out, for work that no request started. Runs on: any
 * thread. */
void tn_traceparent_new(char out[TN_TRACEPARENT_SIZE]);

/* tn_uuid_valid - s is 36 characters: hex digits (either case) with dashes at
 * 8, 13, 18 and 23. s may be NULL (false). Runs on: any thread. */
bool tn_uuid_valid(const char *s);

#endif
