/*
 * NAME
 *	tn_env - table-driven configuration from the environment
 * DESCRIPTION
 *	Postfix's CONFIG_*_TABLE idea with environment variables as the source.
 *	The whole table is parsed, every error is reported, and only then does
 *	the caller decide to stop. Secrets may be read from a *_FILE variable so
 *	they can come from a mounted file rather than the process environment.
 * RUNS ON
 *	the main thread, before the loop starts.
 * DIAGNOSTICS
 *	"config.invalid" per bad variable; "config.effective" once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tn/tn_env.h>
#include <tn/tn_log.h>
#include <tn/tn_mem.h>

#define SECRET_FILE_MAX 65536

/* field - address of a spec's destination inside cfg */
static void *field(const struct tn_env_spec *s, void *cfg)
{
    return (char *)cfg + s->offset;
}

/* read_secret_file - new string with the file's contents, one trailing
 * newline removed. Errors: TN_ENOTFOUND, TN_E2BIG. */
static enum tn_err read_secret_file(const char *path, char **out)
{
    enum tn_err err = TN_OK;
    FILE *f = NULL;
    char *data = tn_xmalloc(SECRET_FILE_MAX + 1);
    size_t n;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        err = TN_ENOTFOUND;
        goto out;
    }
    n = fread(data, 1, SECRET_FILE_MAX + 1, f);
    if (n > SECRET_FILE_MAX) {
        err = TN_E2BIG;
        goto out;
    }
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
        n--;
    data[n] = '\0';
    *out = data;
    data = NULL;
out:
    if (f != NULL)
        fclose(f);
    tn_free(data);
    return err;
}

/* tn_env_parse_ms - "250ms", "10s", "5m", "2h", "7d", or a plain number of ms */
enum tn_err tn_env_parse_ms(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;
    int64_t mult = 1;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return TN_EINVAL;
    if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return TN_EINVAL;
    if (v > INT64_MAX / mult)
        return TN_EINVAL;
    *out = (int64_t)v * mult;
    return TN_OK;
}

/* parse_int - whole number in [min, max] */
static enum tn_err parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return TN_EINVAL;
    *out = v;
    return TN_OK;
}

/* parse_bool - 1/0, true/false, yes/no, on/off */
static enum tn_err parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return TN_OK;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return TN_OK;
        }
    }
    return TN_EINVAL;
}

/* raw_value - the text for one spec: VAR, else VAR_FILE (secrets), else the
 * default. *owned is set when the text is a new string. */
static enum tn_err raw_value(const struct tn_env_spec *s, const char **val, char **owned)
{
    char fname[256];
    const char *path;
    enum tn_err err;

    *owned = NULL;
    *val = getenv(s->name);
    if (*val != NULL)
        return TN_OK;
    if (s->secret) {
        snprintf(fname, sizeof(fname), "%s_FILE", s->name);
        path = getenv(fname);
        if (path != NULL) {
            err = read_secret_file(path, owned);
            *val = *owned;
            return err;
        }
    }
    *val = s->def;
    return *val != NULL ? TN_OK : TN_ENOTFOUND;
}

/* load_one - parse one variable into cfg; logs what is wrong */
static enum tn_err load_one(const struct tn_env_spec *s, void *cfg)
{
    const char *val = NULL;
    char *owned = NULL;
    enum tn_err err;
    int64_t n = 0;
    const char *why = "malformed";

    err = raw_value(s, &val, &owned);
    if (err != TN_OK) {
        why = err == TN_ENOTFOUND ? "required" : "secret file unreadable or too big";
        goto out;
    }
    switch (s->type) {
    case TN_ENV_T_STR:
        *(char **)field(s, cfg) = tn_xstrdup(val);
        break;
    case TN_ENV_T_INT:
    case TN_ENV_T_MS:
        err = s->type == TN_ENV_T_INT ? parse_int(val, &n) : tn_env_parse_ms(val, &n);
        if (err == TN_OK && (n < s->min || n > s->max)) {
            err = TN_EINVAL;
            why = "out of range";
        }
        if (err == TN_OK)
            *(int64_t *)field(s, cfg) = n;
        break;
    case TN_ENV_T_BOOL:
        err = parse_bool(val, (bool *)field(s, cfg));
        break;
    case TN_ENV_T_END:
        break;
    }
out:
    if (err != TN_OK)
        tn_log_error(NULL, "config.invalid", TN_KV_STR("var", s->name), TN_KV_STR("why", why),
                     TN_KV_INT("min", s->min), TN_KV_INT("max", s->max));
    tn_free(owned);
    return err;
}

/* tn_env_load - parse the whole table, reporting every error */
enum tn_err tn_env_load(const struct tn_env_spec *spec, void *cfg)
{
    enum tn_err result = TN_OK;

    for (const struct tn_env_spec *s = spec; s->name != NULL; s++) {
        if (load_one(s, cfg) != TN_OK)
            result = TN_EINVAL;
    }
    return result;
}

/* tn_env_log - one line with every effective value, secrets redacted */
void tn_env_log(const struct tn_env_spec *spec, const void *cfg)
{
    struct tn_kv kv[64];
    size_t n = 0;

    for (const struct tn_env_spec *s = spec; s->name != NULL && n < 64; s++, n++) {
        const void *p = (const char *)cfg + s->offset;

        if (s->type == TN_ENV_T_STR && s->secret)
            kv[n] = TN_KV_STR(s->name, *(char *const *)p ? "<redacted>" : "<unset>");
        else if (s->type == TN_ENV_T_STR)
            kv[n] = TN_KV_STR(s->name, *(char *const *)p);
        else if (s->type == TN_ENV_T_BOOL)
            kv[n] = TN_KV_BOOL(s->name, *(const bool *)p);
        else
            kv[n] = TN_KV_INT(s->name, *(const int64_t *)p);
    }
    tn_log_emit(TN_LOG_INFO, NULL, "config.effective", kv, n);
}

/* tn_env_free - release owned strings */
void tn_env_free(const struct tn_env_spec *spec, void *cfg)
{
    for (const struct tn_env_spec *s = spec; s->name != NULL; s++) {
        if (s->type == TN_ENV_T_STR) {
            tn_free(*(char **)field(s, cfg));
            *(char **)field(s, cfg) = NULL;
        }
    }
}
