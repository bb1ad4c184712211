#ifndef TN_BOOKING_H
#define TN_BOOKING_H
/*
 * tn_booking - the agent's booking tools over Postgres, the source of truth
 * (DESIGN.md "Data", proto/sql/0004_bookings.sql).
 *
 * Each tool takes the model's arguments as a JSON object and answers with a
 * JSON object to hand back to the model. Every rule is checked by the server
 * (in SQL, in the tenant's IANA zone): the service exists, the start is a
 * slot of the service's grid inside business hours (exceptions and holidays
 * included), in the future, past the minimum notice, inside the booking
 * horizon, and free of bookings, holds, buffers and imported busy time. The
 * exclusion constraint on bookings is the last word: a booking that lost a
 * race answers TN_ECONFLICT "slot_taken" with fresh alternatives.
 *
 * Times in answers are RFC 3339 with the tenant's offset
 * ("2027-03-28T09:00:00+02:00"); "time_zone" names the zone. Times in
 * arguments may carry an offset or not; without one they are read in the
 * tenant's zone.
 *
 * Tools and their arguments (unknown members are ignored):
 *   find_slots   {"service": uuid or exact name, "from": "YYYY-MM-DD",
 *                 "to": "YYYY-MM-DD" (default from + 6 days, at most 31
 *                 days), "preferences": {"part_of_day": "morning" |
 *                 "afternoon" | "evening", "after": "HH:MM", "before":
 *                 "HH:MM", "weekdays": [1..7] (ISO, 1 = Monday),
 *                 "resource": id}, "limit": 1..50 (default 10)}
 *                -> {"time_zone", "service": {"id","name","duration_min"},
 *                    "slots": [{"start","end","resource"?}]}
 *   book         {"service", "start", "resource"?, "address"?, "notes"?}
 *                -> {"time_zone", "booking": BOOKING}
 *   reschedule   {"booking_id", "start"} -> {"time_zone", "booking": BOOKING}
 *   cancel       {"booking_id"} -> {"time_zone", "booking": BOOKING}
 *   confirm      {"booking_id"} (a hold) -> {"time_zone", "booking": BOOKING}
 *   list         {} -> {"time_zone", "bookings": [BOOKING...]}: the
 *                contact's upcoming held and confirmed bookings
 * BOOKING = {"id", "service", "start", "end", "status" ("held" |
 * "confirmed" | "cancelled"), "resource"?, "hold_expires_at"?}.
 *
 * Return values (every tool):
 *   TN_OK         *out new: the answer above
 *   TN_EINVAL     *out new: {"error": code, "message": text} and, for a
 *                 refused start, "alternatives": [slots]. Codes:
 *                 bad_arguments, unknown_service, unknown_resource, past,
 *                 too_soon, too_far, closed, not_a_slot, not_found
 *   TN_ECONFLICT  *out new: {"error": "slot_taken", "message",
 *                 "alternatives": [up to 5 free slots near the one asked for]}
 *   TN_ENOTFOUND  *out new: {"error": "not_found", ...}: no such booking of
 *                 this contact that may still be changed
 *   other         *out NULL: Postgres failed (TN_EUNAVAIL, TN_ETIMEDOUT:
 *                 retry the tool call; anything else: a bug, log it)
 * A refusal is an answer for the model, not a failure of the turn.
 *
 * Transactions: each call opens its own transaction bound to who->tenant_id,
 * and commits only on TN_OK: call it with no transaction open on c.
 *
 * Calendar: a call that changed a booking (book, reschedule, cancel, confirm)
 * fills *change (when not NULL) with the cal.request op and booking id. The
 * caller, after it is done, SHOULD XADD a cal.request to tern:cal
 * (tn_booking_cal_request_new builds its data) so tern-calsync mirrors the
 * change within a second. The XADD is not required for correctness: the row
 * carries sync_version > synced_version, and tern-calsync's periodic scan
 * (tern_calsync_pending) mirrors every booking whose calendar is behind.
 *
 * Runs on: threadpool (inside a tn_pg work function), a CLI or a test: every
 * function here blocks on c. Thread-safe for distinct connections.
 */
#include <stddef.h>

#include <jansson.h>

#include <tn/tn_err.h>

struct tn_pgconn;

/* Who is asking; every pointer borrowed for the call. The contact is the
 * conversation's, decided by the server, never by the model. */
struct tn_booking_who {
    const char *tenant_id;  /* uuid text */
    const char *contact_id; /* uuid text */
    int hold_minutes;       /* book: > 0 holds for that long (confirm later); 0 confirms */
};

/* What changed, for the cal.request (op is "" when nothing did). */
struct tn_booking_change {
    char op[16];         /* "book" | "reschedule" | "cancel" */
    char booking_id[40]; /* uuid text */
};

/* tn_booking_find_slots - free slots of a service. args borrowed; *out new
 * (see above). */
enum tn_err tn_booking_find_slots(struct tn_pgconn *c, const struct tn_booking_who *who,
                                  json_t *args, json_t **out);

/* tn_booking_book - book a slot for who->contact_id (held when
 * who->hold_minutes > 0). args borrowed; *out new; change may be NULL. */
enum tn_err tn_booking_book(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                            json_t **out, struct tn_booking_change *change);

/* tn_booking_reschedule - move one of the contact's upcoming bookings to a new
 * start (same service; the same booking id, so its calendar event moves). */
enum tn_err tn_booking_reschedule(struct tn_pgconn *c, const struct tn_booking_who *who,
                                  json_t *args, json_t **out, struct tn_booking_change *change);

/* tn_booking_cancel - cancel one of the contact's upcoming bookings. */
enum tn_err tn_booking_cancel(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                              json_t **out, struct tn_booking_change *change);

/* tn_booking_confirm - confirm one of the contact's unexpired holds
 * (change->op "book": the calendar gets the event only once confirmed). */
enum tn_err tn_booking_confirm(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                               json_t **out, struct tn_booking_change *change);

/* tn_booking_list - the contact's upcoming held and confirmed bookings. */
enum tn_err tn_booking_list(struct tn_pgconn *c, const struct tn_booking_who *who, json_t *args,
                            json_t **out);

/* tn_booking_cal_request_new - the data object of a cal.request v1 entry
 * (proto/streams/cal.request.v1.json) for a change: {"tenant", "request_id",
 * "op", "booking_id", "requested_at"}. request_id is "bk:<booking id>:<op>:
 * <random>"; the envelope's dedupe is "cal:<request_id>". All arguments
 * borrowed. Returns: new. Runs on: any thread. */
json_t *tn_booking_cal_request_new(const char *tenant_id, const struct tn_booking_change *change);

#endif
