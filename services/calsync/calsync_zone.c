/*
 * NAME
 *	calsync_zone - the time zone a calendar's local times are read in
 * SYNOPSIS
 *	#include "calsync.h"
 *	calsync_zone_init();
 *	j->zone = calsync_zone_pick(j, j->acct.time_zone, "tenant", NULL);
 * DESCRIPTION
 *	An all-day event (a Google date, a CalDAV VALUE=DATE) and a floating
 *	CalDAV time have no zone of their own: they are the calendar's local
 *	days and times. Read as UTC, a business in Sydney that marks a day
 *	closed would be bookable that morning and blocked the next one. So
 *	they are read in a zone: Google's calendar timeZone, else the
 *	tenant's (tenants.time_zone, which Postgres checked); UTC only when
 *	neither is known.
 *
 *	The zone rules are libical's (its builtin zones, read from the
 *	system's tz database, /usr/share/zoneinfo); Tern has none of its own.
 *	A name goes to libical only when it is shaped like a tz database name
 *	(a capital letter first; letters, digits, '/', '_', '+', '-'; no
 *	".."; shorter than CALSYNC_ZONE_MAX), since libical opens the file of
 *	that name under the zoneinfo directory and a Google answer is
 *	untrusted.
 *
 *	Lookups stay on the loop: libical 3.0.16 looks a name up in its
 *	shared list of zones and, for a name missing from zone.tab (a link
 *	such as US/Pacific or Etc/UTC), appends the zone to that list without
 *	a lock. A zone found is kept by libical for the life of the process
 *	and converting a time in it is thread-safe (the zone's expanded
 *	changes are guarded by libical's own mutex), so the pointer is handed
 *	to the threadpool (calsync_report.c) with the job.
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	calsync.zone_unknown (warn: account_id, source tenant | calendar,
 *	zone when well-formed, fallback tenant | utc); calsync.no_zone_data
 *	(warn, at start: libical finds no tz database).
 */
#include <string.h>

#include <libical/ical.h>

#include <tn/tn_log.h>
#include <tn/tn_proto.h>

#include "calsync.h"

/* name_ok - shaped like a tz database name: what may go to libical */
static bool name_ok(const char *s)
{
    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789/_+-";
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n >= CALSYNC_ZONE_MAX || s[0] < 'A' || s[0] > 'Z')
        return false;
    return strspn(s, allowed) == n && strstr(s, "..") == NULL;
}

/* calsync_zone_find - libical's zone of a tz database name, or NULL */
const struct _icaltimezone *calsync_zone_find(const char *name)
{
    if (!name_ok(name))
        return NULL;
    return icaltimezone_get_builtin_timezone(name);
}

/* calsync_zone_pick - name's zone, else fallback (logged unless name is absent) */
const struct _icaltimezone *calsync_zone_pick(const struct calsync_job *j, const char *name,
                                              const char *source,
                                              const struct _icaltimezone *fallback)
{
    struct tn_log_ctx lc = {.tenant_id = j->tenant, .stream = TN_STREAM_CAL};
    const struct _icaltimezone *z;

    if (name == NULL || name[0] == '\0')
        return fallback;
    z = calsync_zone_find(name);
    if (z != NULL)
        return z;
    tn_log_warn(&lc, "calsync.zone_unknown", TN_KV_STR("account_id", j->acct.id),
                TN_KV_STR("source", source),
                TN_KV_STR("zone", name_ok(name) ? name : "(malformed)"),
                TN_KV_STR("fallback", fallback != NULL ? "tenant" : "utc"));
    return fallback;
}

/* calsync_zone_init - load libical's zone list now, at start, and say so
 * when there is no tz database: every calendar would be read in UTC */
void calsync_zone_init(void)
{
    icalarray *zones = icaltimezone_get_builtin_timezones();

    if (zones == NULL || zones->num_elements == 0)
        tn_log_warn(NULL, "calsync.no_zone_data",
                    TN_KV_STR("hint", "install the tz database (tzdata) in /usr/share/zoneinfo"));
}
