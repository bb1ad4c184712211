/*
 * NAME
 *	ctl_keys - `ternctl keys status|reseal`: what the master key ring
 *	sealed, and sealing it again under the ring's current key
 * SYNOPSIS
 *	ternctl keys status [--tenant T]
 *	ternctl keys reseal [--tenant T]
 * DESCRIPTION
 *	Two kinds of rows hold values sealed with the ring (tn_seal):
 *	  channels        secrets_sealed, aad "channel:<tenant>:<id>": a
 *	                  channel's provider secrets, a mailbox's Gmail tokens
 *	  calendar        oauth_accounts' access_token_sealed and
 *	                  refresh_token_sealed, aad "oauth:<tenant>:<id>:access"
 *	                  and ":refresh": a connected calendar's tokens
 *	Each sealed value names the key that sealed it (tn_sealed_key_id).
 *
 *	status prints one line per key id found, with how many channel secret
 *	sets and calendar tokens it sealed and whether the ring holds it:
 *	  key<TAB>channels<TAB>calendar_tokens<TAB>ring
 *	  2<TAB>5<TAB>3<TAB>current
 *	  1<TAB>1<TAB>2<TAB>yes
 *	A key may leave the ring once its line is gone. The exit status is 1
 *	when a value is sealed under a key the ring lacks (or is no sealed
 *	value at all).
 *
 *	reseal opens every row holding a value sealed under another key than
 *	the current one and seals it again under the current key, one row per
 *	transaction, the row locked while it is read and written (tern-sender's
 *	Gmail refresh and tern-calsync's token refresh write the same columns:
 *	a value they wrote first is the one read, and one they write later
 *	waits for the commit), with an audit_log row (actor ternctl, action
 *	keys.reseal, the channel or account id). It prints, per kind, how many
 *	rows were sealed again, were already current, and could not be opened
 *	(their key is not in the ring, or they were tampered with): those stay
 *	as they are, and the exit status is 1.
 * RUNS ON
 *	CLI (blocking libpq).
 * DIAGNOSTICS
 *	Exit 0 ok; 1 a value no key of the ring opens (status: a line
 *	"missing"; reseal: rows left unopened), unknown tenant or server down;
 *	64 usage; 78 missing TN_PG_DSN or key ring. No secret is printed.
 */
#include <stdio.h>
#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_pg.h>

#include "ctl.h"

#define KEYS_USAGE "keys status|reseal [--tenant T]"
#define MAX_KEY_IDS 64

/* One kind of row with sealed columns (at most 2). The list query returns
 * tenant_id, id, then the hex of each column; lock the same for one row
 * ($1 tenant, $2 id); update takes $1, $2, each column's new bytea, and
 * the key id. */
struct sealed_kind {
    const char *name; /* as printed */
    const char *list, *lock, *update;
    const char *aad; /* the aad: "<aad>:<tenant>:<id><aad_tail[column]>" */
    const char *aad_tail[2];
    int ncols;
    const char *audit_key; /* the id's name in the audit detail */
};

static const struct sealed_kind kinds[] = {
    {"channels",
     "SELECT tenant_id, id, encode(secrets_sealed, 'hex') FROM channels"
     " WHERE secrets_sealed IS NOT NULL AND ($1::uuid IS NULL OR tenant_id = $1::uuid)"
     " ORDER BY tenant_id, id",
     "SELECT encode(secrets_sealed, 'hex') FROM channels"
     " WHERE tenant_id = $1::uuid AND id = $2::uuid FOR UPDATE",
     "UPDATE channels SET secrets_sealed = $3::bytea, secrets_key_id = $4::int"
     " WHERE tenant_id = $1::uuid AND id = $2::uuid",
     "channel",
     {"", NULL},
     1,
     "channel_id"},
    {"calendar_tokens",
     "SELECT tenant_id, id, encode(access_token_sealed, 'hex'), encode(refresh_token_sealed, 'hex')"
     " FROM oauth_accounts WHERE (access_token_sealed IS NOT NULL OR refresh_token_sealed IS NOT"
     " NULL) AND ($1::uuid IS NULL OR tenant_id = $1::uuid) ORDER BY tenant_id, id",
     "SELECT encode(access_token_sealed, 'hex'), encode(refresh_token_sealed, 'hex')"
     " FROM oauth_accounts WHERE tenant_id = $1::uuid AND id = $2::uuid FOR UPDATE",
     "UPDATE oauth_accounts SET access_token_sealed = $3::bytea, refresh_token_sealed = $4::bytea,"
     " key_id = $5::int WHERE tenant_id = $1::uuid AND id = $2::uuid",
     "oauth",
     {":access", ":refresh"},
     2,
     "account_id"},
};

static const char sql_audit[] =
    "INSERT INTO audit_log (tenant_id, actor, action, detail)"
    " VALUES ($1::uuid, 'ternctl', 'keys.reseal', jsonb_build_object($2::text, $3::text))";

/* key_of - the key id that sealed hex (a sealed value's hex); false if it
 * is not a sealed value */
static bool key_of(const char *hex, uint32_t *id)
{
    unsigned char *b = NULL;
    size_t n = 0;
    bool ok =
        tn_hex_decode(hex, strlen(hex), &b, &n) == TN_OK && tn_sealed_key_id(b, n, id) == TN_OK;

    tn_free(b);
    return ok;
}

/* Per key id: how many values of each kind it sealed. */
struct tally {
    size_t n;
    uint32_t id[MAX_KEY_IDS];
    long count[MAX_KEY_IDS][2];
    long uncounted; /* values under ids past the MAX_KEY_IDS first */
};

/* count - one value of kind k sealed under id */
static void count(struct tally *t, uint32_t id, size_t k)
{
    size_t i = 0;

    while (i < t->n && t->id[i] != id)
        i++;
    if (i == MAX_KEY_IDS) {
        t->uncounted++; /* more ids than any ring has: reported, not listed */
        return;
    }
    if (i == t->n) {
        t->id[t->n++] = id;
        t->count[i][0] = t->count[i][1] = 0;
    }
    t->count[i][k]++;
}

/* status - the tally of every sealed value, printed */
static int status(struct tn_pgconn *c, const char *tid, const struct tn_keyring *ring)
{
    struct tally t = {0};
    long bad = 0, missing = 0;

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct pg_result *res = NULL;
        enum tn_err err = tn_pgconn_query(c, kinds[k].list, 1, (const char *[]){tid}, &res);

        if (err != TN_OK)
            return ctl_fail("reading the sealed values", err);
        for (int r = 0; r < tn_pg_result_rows(res); r++) {
            for (int col = 0; col < kinds[k].ncols; col++) {
                const char *hex = tn_pg_result_value(res, r, 2 + col);
                uint32_t id;

                if (hex != NULL && key_of(hex, &id))
                    count(&t, id, k);
                else if (hex != NULL)
                    bad++;
            }
        }
        tn_pg_result_free(res);
    }
    printf("key\tchannels\tcalendar_tokens\tring\n");
    for (size_t i = 0; i < t.n; i++) {
        bool held = tn_keyring_has(ring, t.id[i]);

        printf("%u\t%ld\t%ld\t%s\n", (unsigned)t.id[i], t.count[i][0], t.count[i][1],
               t.id[i] == tn_keyring_current(ring) ? "current"
               : held                              ? "yes"
                                                   : "missing");
        missing += held ? 0 : t.count[i][0] + t.count[i][1];
    }
    if (bad + t.uncounted > 0)
        fprintf(stderr,
                "ternctl: %ld stored values are not sealed values, %ld are under key ids"
                " past the first %d listed\n",
                bad, t.uncounted, MAX_KEY_IDS);
    if (missing > 0)
        fprintf(stderr, "ternctl: %ld values are sealed under keys the ring lacks\n", missing);
    return bad + t.uncounted + missing > 0 ? CTL_EX_FAIL : CTL_EX_OK;
}

/* reseal_hex - hex (a sealed value, borrowed) sealed again under ring's
 * current key as new "\\x..." bytea text into *out: a copy when it already
 * is; NULL hex gives NULL. Returns TN_OK, or tn_open's error. */
static enum tn_err reseal_hex(const struct tn_keyring *ring, const char *aad, const char *hex,
                              char **out)
{
    unsigned char *b = NULL, *pt = NULL, *sealed = NULL;
    size_t n = 0, ptlen = 0, slen = 0;
    uint32_t id = 0;
    char *h = NULL;
    enum tn_err err = TN_OK;

    *out = NULL;
    if (hex == NULL)
        return TN_OK;
    err = tn_hex_decode(hex, strlen(hex), &b, &n);
    if (err == TN_OK)
        err = tn_sealed_key_id(b, n, &id);
    if (err == TN_OK && id != tn_keyring_current(ring))
        err = tn_open(ring, aad, strlen(aad), b, n, &pt, &ptlen);
    if (err == TN_OK && pt != NULL)
        err = tn_seal(ring, aad, strlen(aad), pt, ptlen, &sealed, &slen);
    if (err == TN_OK) {
        const char *use;

        h = sealed != NULL ? tn_hex_encode(sealed, slen) : NULL;
        use = h != NULL ? h : hex;
        *out = tn_xmalloc(strlen(use) + 3);
        snprintf(*out, strlen(use) + 3, "\\x%s", use);
    }
    if (pt != NULL)
        tn_wipe(pt, ptlen);
    tn_free(pt);
    tn_free(b);
    tn_free(sealed);
    tn_free(h);
    return err;
}

/* Outcome of one row. */
enum row_result { ROW_CURRENT, ROW_RESEALED, ROW_UNOPENED };

/* reseal_row - one row of kind k in its own transaction */
static enum tn_err reseal_row(struct tn_pgconn *c, const struct sealed_kind *k,
                              const struct tn_keyring *ring, const char *tid, const char *id,
                              enum row_result *result)
{
    struct pg_result *res = NULL;
    char *vals[2] = {NULL, NULL}, keyid[16], aad[160];
    const char *p[5] = {tid, id};
    bool changed = false;
    enum tn_err err = tn_pgconn_begin(c);

    *result = ROW_CURRENT;
    if (err == TN_OK)
        err = tn_pgconn_query(c, k->lock, 2, p, &res);
    for (int col = 0; err == TN_OK && tn_pg_result_rows(res) == 1 && col < k->ncols; col++) {
        const char *hex = tn_pg_result_value(res, 0, col);

        snprintf(aad, sizeof(aad), "%s:%s:%s%s", k->aad, tid, id, k->aad_tail[col]);
        if (reseal_hex(ring, aad, hex, &vals[col]) != TN_OK) {
            *result = ROW_UNOPENED;
            goto out;
        }
        changed |= vals[col] != NULL && strcmp(vals[col] + 2, hex) != 0;
    }
    if (err != TN_OK || !changed)
        goto out;
    snprintf(keyid, sizeof(keyid), "%u", (unsigned)tn_keyring_current(ring));
    for (int col = 0; col < k->ncols; col++)
        p[2 + col] = vals[col];
    p[2 + k->ncols] = keyid;
    err = tn_pgconn_query(c, k->update, 3 + k->ncols, p, NULL);
    if (err == TN_OK)
        err = tn_pgconn_query(c, sql_audit, 3, (const char *[]){tid, k->audit_key, id}, NULL);
    if (err == TN_OK)
        err = tn_pgconn_commit(c);
    if (err == TN_OK)
        *result = ROW_RESEALED;
out:
    tn_pg_result_free(res);
    tn_pgconn_rollback(c); /* nothing open after a commit */
    for (int col = 0; col < 2; col++)
        tn_free(vals[col]);
    return err;
}

/* reseal_kind - every row of kind k (of tenant tid, or all); adds the
 * rows no key opens to *unopened */
static int reseal_kind(struct tn_pgconn *c, const struct sealed_kind *k,
                       const struct tn_keyring *ring, const char *tid, long *unopened)
{
    struct pg_result *res = NULL;
    long n[3] = {0, 0, 0};
    enum tn_err err = tn_pgconn_query(c, k->list, 1, (const char *[]){tid}, &res);

    for (int r = 0; err == TN_OK && r < tn_pg_result_rows(res); r++) {
        enum row_result what;

        err = reseal_row(c, k, ring, tn_pg_result_value(res, r, 0), tn_pg_result_value(res, r, 1),
                         &what);
        if (err == TN_OK)
            n[what]++;
    }
    tn_pg_result_free(res);
    if (err != TN_OK)
        return ctl_fail(k->name, err);
    printf("%s\tresealed %ld\tcurrent %ld\tunopened %ld\n", k->name, n[ROW_RESEALED],
           n[ROW_CURRENT], n[ROW_UNOPENED]);
    *unopened += n[ROW_UNOPENED];
    return CTL_EX_OK;
}

/* reseal - every kind */
static int reseal(struct tn_pgconn *c, const char *tid, const struct tn_keyring *ring)
{
    long unopened = 0;
    int rc = CTL_EX_OK;

    for (size_t k = 0; rc == CTL_EX_OK && k < sizeof(kinds) / sizeof(kinds[0]); k++)
        rc = reseal_kind(c, &kinds[k], ring, tid, &unopened);
    if (rc == CTL_EX_OK && unopened > 0) {
        fprintf(stderr,
                "ternctl: %ld rows stay sealed as they were: no key of the ring opens"
                " them (see ternctl keys status)\n",
                unopened);
        rc = CTL_EX_FAIL;
    }
    return rc;
}

/* ctl_keys_main - see ctl.h */
int ctl_keys_main(int argc, char **argv)
{
    const char *tenant = NULL;
    const struct ctl_opt opts[] = {{"--tenant", false, &tenant}, {NULL}};
    bool do_status = argc >= 1 && strcmp(argv[0], "status") == 0;
    struct tn_keyring *ring = NULL;
    struct tn_pgconn *c = NULL;
    char tid[37];
    int rc;

    if (argc < 1 || (!do_status && strcmp(argv[0], "reseal") != 0) ||
        !ctl_parse_opts(argc - 1, argv + 1, opts, NULL, NULL, 0, NULL))
        return ctl_usage(KEYS_USAGE);
    rc = ctl_load_keyring(&ring);
    if (rc == CTL_EX_OK)
        rc = ctl_connect(&c);
    if (rc == CTL_EX_OK && tenant != NULL)
        rc = ctl_tenant_resolve(c, tenant, tid);
    if (rc == CTL_EX_OK)
        rc = do_status ? status(c, tenant != NULL ? tid : NULL, ring)
                       : reseal(c, tenant != NULL ? tid : NULL, ring);
    tn_keyring_free(ring);
    tn_pgconn_close(c);
    return rc;
}
