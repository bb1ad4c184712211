#ifndef TN_ID_H
#define TN_ID_H
/*
 * tn_id - identifiers that arrive from outside (stream fields, webhooks,
 * command lines) checked before they reach SQL or a cast.
 */
#include <stdbool.h>

/* tn_uuid_valid - s is 36 characters: hex digits (either case) with dashes at
 * 8, 13, 18 and 23. s may be NULL (false). Runs on: any thread. */
bool tn_uuid_valid(const char *s);

#endif
