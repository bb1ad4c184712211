#ifndef CTL_H
#define CTL_H
/*
 * ctl.h - ternctl's private header: one entry point per command group, the
 * embedded migrations, and small shared CLI helpers (ctl_util.c).
 *
 * Exit codes: 0 success, 1 the operation failed (the server said no, or it
 * is down), 64 usage error (EX_USAGE), 78 missing configuration (EX_CONFIG).
 */
#include <stdbool.h>
#include <stddef.h>

#include <tn/tn_err.h>

struct tn_pgconn;

#define CTL_EX_OK 0
#define CTL_EX_FAIL 1
#define CTL_EX_USAGE 64
#define CTL_EX_CONFIG 78

/* One migration embedded in the binary (generated ctl_sql_embedded.c). */
struct ctl_sql_file {
    const char *name;          /* "0001_schema.sql" */
    const unsigned char *text; /* NUL-terminated */
    size_t len;
};

/* Defined in the generated file that only the ternctl program links. */
extern const struct ctl_sql_file ctl_sql_files[];
extern const size_t ctl_sql_nfiles;

/* ctl_migrate_main - `ternctl migrate`: apply files[0..n) in order.
 * files are borrowed (static). Returns an exit code. */
int ctl_migrate_main(int argc, char **argv, const struct ctl_sql_file *files, size_t n);

/* ctl_tenant_main - `ternctl tenant add|list`. Returns an exit code. */
int ctl_tenant_main(int argc, char **argv);

/* ctl_calendar_main - `ternctl calendar link` (ctl_calendar.c). Returns an exit code. */
int ctl_calendar_main(int argc, char **argv);

struct tn_keyring;

/* ctl_load_keyring - the master key ring (TN_MASTER_KEY / _FILE) into *out
 * (new; tn_keyring_free). Prints the reason to stderr. Returns an exit code. */
int ctl_load_keyring(struct tn_keyring **out);

/* ctl_channel_main - `ternctl channel add|list|secrets|disconnect|enable|remove`.
 * Returns an exit code. */
int ctl_channel_main(int argc, char **argv);

/* The --secret key=value options a channel command takes at most. */
#define CTL_CHANNEL_MAX_SECRETS 16

/* ctl_secrets_json - "k=v" strings (n of them, borrowed) into new compact
 * JSON text with sorted keys (the caller wipes and frees it), or NULL when
 * one is malformed or a key repeats (ctl_channel.c). */
char *ctl_secrets_json(const char **kv, size_t n);

/* ctl_seal_hex - json sealed with k's current key for (tenant, channel),
 * as new "\\x..." bytea text, and that key's id as text into keyid; NULL
 * when sealing fails (ctl_channel.c). */
char *ctl_seal_hex(const struct tn_keyring *k, const char *tenant, const char *channel,
                   const char *json, char keyid[16]);

/* A channel named on the command line: --tenant T (an id or a slug),
 * --id ID and the optional --wait SECONDS (borrowed from argv; NULL when
 * absent), and T's id. */
struct ctl_channel_ref {
    const char *tenant, *id, *wait;
    char tid[37];
};

/* ctl_channel_target - parse --tenant T --id ID [--wait S] from argv (usage
 * text for a mistake), connect (*c: new, tn_pgconn_close it whatever the
 * result) and resolve T into t->tid (ctl_channel.c). Returns an exit code. */
int ctl_channel_target(int argc, char **argv, const char *usage, struct ctl_channel_ref *t,
                       struct tn_pgconn **c);

/* ctl_channel_secrets, ctl_channel_disconnect, ctl_channel_enable - `ternctl
 * channel secrets|disconnect|enable` with the arguments after the verb
 * (ctl_channel_state.c). Return an exit code. */
int ctl_channel_secrets(int argc, char **argv);
int ctl_channel_disconnect(int argc, char **argv);
int ctl_channel_enable(int argc, char **argv);

/* ctl_keys_main - `ternctl keys status|reseal` (ctl_keys.c). Returns an
 * exit code. */
int ctl_keys_main(int argc, char **argv);

/* ctl_dead_main - `ternctl dead list|show|replay` (ctl_dead.c). Returns an exit code. */
int ctl_dead_main(int argc, char **argv);

/* ctl_privacy_main - `ternctl privacy erase|export|restrict|unrestrict`
 * (ctl_privacy.c). Returns an exit code. */
int ctl_privacy_main(int argc, char **argv);

/* ctl_calendar_disconnect - `ternctl calendar disconnect` (ctl_privacy.c);
 * argv[0] is "disconnect". Also reachable as `ternctl privacy disconnect`.
 * Returns an exit code. */
int ctl_calendar_disconnect(int argc, char **argv);

/* ctl_privacy_channel_disconnect - record and enqueue a privacy disconnect
 * of the tenant's channel (tenant: id or slug; wait: seconds or NULL) for
 * tern-sweeper, which revokes a mailbox's Gmail grant (ctl_privacy.c).
 * Prints the request id. Returns an exit code. */
int ctl_privacy_channel_disconnect(const char *tenant, const char *channel, const char *wait);

/* ctl_connect - open TN_PG_DSN (the admin / tern_ctl DSN) into *out (new).
 * Prints the reason to stderr. Returns an exit code (CTL_EX_OK on success). */
int ctl_connect(struct tn_pgconn **out);

/* ctl_tenant_resolve - the id of the tenant named by ref (an id or a slug)
 * into out (37 bytes). Prints the reason on failure. Returns an exit code. */
int ctl_tenant_resolve(struct tn_pgconn *c, const char *ref, char out[37]);

/* ctl_usage - print "usage: ternctl <text>" to stderr; returns CTL_EX_USAGE. */
int ctl_usage(const char *text);

/* ctl_fail - print "ternctl: <what>: <tn_strerror(err)>" to stderr; returns
 * CTL_EX_FAIL. */
int ctl_fail(const char *what, enum tn_err err);

/* One command-line option for ctl_parse_opts. */
struct ctl_opt {
    const char *name;   /* "--slug" */
    bool flag;          /* true: no value (sets *value to "1") */
    const char **value; /* borrowed from argv; NULL when absent */
};

/* ctl_parse_opts - match argv[0..argc) against opts (terminated by a NULL
 * name). An option named in repeat (may be NULL) may occur many times: each
 * occurrence's value is appended to repeat_vals (caller array of repeat_max).
 * Returns false on an unknown option, a missing value or too many repeats
 * (a message is printed). */
bool ctl_parse_opts(int argc, char **argv, const struct ctl_opt *opts, const char *repeat,
                    const char **repeat_vals, size_t repeat_max, size_t *nrepeat);

#endif
