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
 *	libical 3.0.16 looks a name up in its shared list of zones and, for a
 *	name missing from zone.tab (a link such as US/Pacific or Etc/UTC),
 *	appends the zone to that list without a lock; libical itself does
 *	the same for a TZID whose VTIMEZONE a CalDAV text lacks, on the
 *	threadpool thread that parses it (calsync_ical.c). So at start, on
 *	the main thread before the threadpool is used, calsync_zone_init
 *	looks up every zone file of the tz database directory whose name
 *	passes the filter above (not its right/ and posix/ copies; some 600
 *	names, 20-30 ms and 10 MB): from then on a lookup of any such name,
 *	on the loop or on the threadpool, only reads the list. A name that
 *	is not a file there is not added. The names preloaded are kept, in
 *	order, in a list of Tern's own that nothing changes after init
 *	(calsync_zone_known, safe on any thread): once init has run, a name
 *	outside it is not passed to libical, neither here nor as a TZID
 *	(calsync_ical.c rewrites a TZID that is neither a VTIMEZONE of the
 *	text nor a preloaded name to the preloaded name it ends with, or
 *	drops it: the time is read as floating), so nothing adds to libical's
 *	list after start. A zone found is kept by
 *	libical for the life of the process and converting a time in it is
 *	thread-safe (the zone's expanded changes are guarded by libical's own
 *	mutex), so the pointer is handed to the threadpool (calsync_report.c)
 *	with the job.
 * RUNS ON
 *	loop; calsync_zone_init at start, before the threadpool is used;
 *	calsync_zone_known on any thread.
 * DIAGNOSTICS
 *	calsync.zone_unknown (warn: account_id, source tenant | calendar,
 *	zone when well-formed, fallback tenant | utc); calsync.no_zone_data
 *	(warn, at start: libical finds no tz database); calsync.zones (info,
 *	at start: named, the zone names looked up; held, libical's list).
 */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libical/ical.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>
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

/* The names calsync_zone_init looked up, sorted; written by init only. */
static struct {
    char **names;
    size_t n, cap;
    bool ready;
} preloaded;

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* calsync_zone_known - name is one calsync_zone_init preloaded */
bool calsync_zone_known(const char *name)
{
    if (!preloaded.ready || name == NULL)
        return false;
    return bsearch(&name, preloaded.names, preloaded.n, sizeof(char *), by_name) != NULL;
}

/* calsync_zone_find - libical's zone of a tz database name, or NULL */
const struct _icaltimezone *calsync_zone_find(const char *name)
{
    if (!name_ok(name) || (preloaded.ready && !calsync_zone_known(name)))
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

/* A walk of the tz database directory: path is the directory, '/', then
 * the name of the file being looked at (from path + root). */
struct walk {
    char path[PATH_MAX];
    size_t root; /* the directory's length, with the '/' */
};

/* is_tzif - the file at path is a compiled zone (TZif), not zone.tab,
 * tzdata.zi, leapseconds, SECURITY and the like */
static bool is_tzif(const char *path)
{
    char magic[4];
    FILE *f = fopen(path, "rb");
    bool ok;

    if (f == NULL)
        return false;
    ok = fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

/* keep - name (copied) on the preloaded list */
static void keep(const char *name)
{
    if (preloaded.n == preloaded.cap) {
        preloaded.cap = preloaded.cap ? preloaded.cap * 2 : 1024;
        preloaded.names = tn_xrealloc(preloaded.names, preloaded.cap * sizeof(char *));
    }
    preloaded.names[preloaded.n++] = tn_xstrdup(name);
}

/* preload_dir - look up every zone file below w->path (of length len, at
 * depth 0 the tz database directory itself, whose right/ and posix/ copies
 * are left out), once */
static void preload_dir(struct walk *w, size_t len, int depth)
{
    DIR *d = opendir(w->path);
    struct dirent *de;
    struct stat st;
    size_t n;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        n = strlen(de->d_name);
        if (de->d_name[0] == '.' || len + 1 + n >= sizeof(w->path))
            continue;
        w->path[len] = '/';
        memcpy(w->path + len + 1, de->d_name, n + 1);
        if (stat(w->path, &st) != 0) /* follows links: US/Eastern is one */
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 3 && (depth > 0 || (strcmp(de->d_name, "right") != 0 &&
                                            strcmp(de->d_name, "posix") != 0)))
                preload_dir(w, len + 1 + n, depth + 1);
        } else if (S_ISREG(st.st_mode) && name_ok(w->path + w->root) && is_tzif(w->path)) {
            if (icaltimezone_get_builtin_timezone(w->path + w->root) != NULL)
                keep(w->path + w->root);
        }
    }
    closedir(d);
    w->path[len] = '\0';
}

/* calsync_zone_init - load libical's zone list now, at start, with every
 * zone of the tz database (the file's DESCRIPTION says why), and say so
 * when there is no tz database: every calendar would be read in UTC */
void calsync_zone_init(void)
{
    icalarray *zones = icaltimezone_get_builtin_timezones();
    const char *dir = icaltzutil_get_zone_directory();
    struct walk w = {.root = 0};
    int n;

    if (preloaded.ready)
        return; /* once: the list is read by other threads from here on */
    if (zones == NULL || zones->num_elements == 0 || dir == NULL) {
        tn_log_warn(NULL, "calsync.no_zone_data",
                    TN_KV_STR("hint", "install the tz database (tzdata) in /usr/share/zoneinfo"));
        return;
    }
    n = snprintf(w.path, sizeof(w.path), "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof(w.path))
        return;
    w.root = (size_t)n + 1;
    preload_dir(&w, (size_t)n, 0);
    qsort(preloaded.names, preloaded.n, sizeof(char *), by_name);
    preloaded.ready = true;
    tn_log_info(NULL, "calsync.zones", TN_KV_INT("named", preloaded.n),
                TN_KV_INT("held", zones->num_elements));
}
