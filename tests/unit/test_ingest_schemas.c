/*
 * test_ingest_schemas - every entry the webhook parsers produce for every
 * fixture in tests/fixtures/{whatsapp,twilio,telegram} (files named bad_*
 * excepted) validates against the contracts in proto/streams, checked by
 * tests/tools/validate-entries.mjs (ajv). Also: every schema compiles, the
 * example entries of the other types (tests/fixtures/proto/examples.jsonl)
 * validate, and the validator does reject broken entries, so this test can
 * fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tn/tn_proto.h>

#include "ingest_fixture.h"

/* validator - exit status of node validate-entries.mjs arg [arg2] */
static int validator(const char *arg, const char *arg2)
{
    char script[1024];
    pid_t pid;
    int st = 0;

    snprintf(script, sizeof(script), "%s/tests/tools/validate-entries.mjs",
             tn_test_env("TN_SRC_DIR"));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("node", "node", script, arg, arg2, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* tmpfile_path - a unique file name under TN_TEST_TMP */
static void tmpfile_path(const char *prefix, char *out, size_t size)
{
    char name[128];

    tn_test_unique(prefix, name, sizeof(name));
    snprintf(out, size, "%s/%s.jsonl", tn_test_env("TN_TEST_TMP"), name);
}

/* entry_json - {"stream":..., "fields":{...}} of one entry (new reference) */
static json_t *entry_json(const struct ingest_entry *e)
{
    json_t *o = json_object(), *f = json_object();

    json_object_set_new(o, "stream", json_string(e->stream));
    for (size_t i = 0; i < e->nfields; i++)
        json_object_set_new(f, e->name[i], json_string(e->value[i]));
    json_object_set_new(o, "fields", f);
    return o;
}

/* write_line - one JSON line */
static void write_line(FILE *out, json_t *o)
{
    assert_int_equal(json_dumpf(o, out, JSON_COMPACT), 0);
    fputc('\n', out);
}

/* wanted - does this fixture file belong to the good set of provider? */
static bool wanted(const char *provider, const char *file)
{
    size_t n = strlen(file);
    bool json = n > 5 && strcmp(file + n - 5, ".json") == 0;
    bool txt = n > 4 && strcmp(file + n - 4, ".txt") == 0;

    if (strncmp(file, "bad_", 4) == 0)
        return false;
    return json || (txt && strcmp(provider, "twilio") == 0);
}

/* dump_provider - run every good fixture of provider, write its entries */
static size_t dump_provider(const char *provider, FILE *out)
{
    char dir[1024];
    DIR *d;
    struct dirent *de;
    size_t n = 0;

    snprintf(dir, sizeof(dir), "%s/tests/fixtures/%s", tn_test_env("TN_SRC_DIR"), provider);
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        struct ingest_result res;

        if (!wanted(provider, de->d_name))
            continue;
        fx_run(provider, de->d_name, FX_OK, &res);
        if (res.status != 200 || res.nentries == 0)
            fail_msg("%s/%s: status %d (%s), %zu entries", provider, de->d_name, res.status,
                     res.reason, res.nentries);
        for (size_t i = 0; i < res.nentries; i++, n++) {
            json_t *o = entry_json(&res.entries[i]);

            write_line(out, o);
            json_decref(o);
        }
        ingest_result_free(&res);
    }
    closedir(d);
    return n;
}

/* schemas_compile - every proto/streams schema compiles under ajv */
static void schemas_compile(void **state)
{
    (void)state;
    assert_int_equal(validator("--check-schemas", NULL), 0);
}

/* parser_entries_validate - all parser output matches the contracts */
static void parser_entries_validate(void **state)
{
    static const char *const providers[] = {"whatsapp", "twilio", "telegram"};
    char path[1024];
    FILE *out;
    size_t n = 0;

    (void)state;
    tmpfile_path("ingest-entries", path, sizeof(path));
    out = fopen(path, "w");
    assert_non_null(out);
    for (size_t i = 0; i < 3; i++)
        n += dump_provider(providers[i], out);
    fclose(out);
    assert_true(n >= 30);
    assert_int_equal(validator(path, NULL), 0);
    unlink(path);
}

/* examples_validate - the documented examples of every type validate */
static void examples_validate(void **state)
{
    char path[1024];

    (void)state;
    snprintf(path, sizeof(path), "%s/tests/fixtures/proto/examples.jsonl",
             tn_test_env("TN_SRC_DIR"));
    assert_int_equal(validator(path, NULL), 0);
}

/* broken_copy - first's copy with fields[name] = value (value NULL: removed) */
static json_t *broken_copy(json_t *first, const char *stream, const char *name, const char *value)
{
    json_t *o = json_deep_copy(first), *f = json_object_get(o, "fields");

    if (stream != NULL)
        json_object_set_new(o, "stream", json_string(stream));
    if (value != NULL)
        json_object_set_new(f, name, json_string(value));
    else if (name != NULL)
        json_object_del(f, name);
    return o;
}

struct mutation {
    const char *stream, *name, *value;
    int want; /* validator exit status */
};

/* validator_rejects - broken entries are caught (the test can fail) */
static void validator_rejects(void **state)
{
    static const struct mutation muts[] = {
        {NULL, NULL, NULL, 0}, /* unchanged: valid */
        {NULL, "tenant", "not-a-uuid", 1},
        {NULL, "tenant", "5f0d7a52-3c1b-4e8e-8f43-7a2b9c4d1e20", 1}, /* differs from data */
        {NULL, "trace", "00-xyz", 1},
        {NULL, "dedupe", NULL, 1},
        {NULL, "data", "{\"tenant\":1}", 1},
        {NULL, "data", "not json", 1},
        {NULL, "v", "2", 1},
        {NULL, "secret", "x", 1}, /* no field outside the contract */
        {TN_STREAM_STATUS, NULL, NULL, 1},
        {TN_STREAM_IN_DEAD, NULL, NULL, 1}, /* dead entry without dead_* fields */
    };
    char path[1024];
    FILE *out;
    json_t *first = NULL, *o;
    struct ingest_result res;

    (void)state;
    fx_run("whatsapp", "text.json", FX_OK, &res);
    assert_int_equal(res.nentries, 1);
    first = entry_json(&res.entries[0]);
    ingest_result_free(&res);
    for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
        tmpfile_path("ingest-broken", path, sizeof(path));
        out = fopen(path, "w");
        assert_non_null(out);
        o = broken_copy(first, muts[i].stream, muts[i].name, muts[i].value);
        write_line(out, o);
        json_decref(o);
        fclose(out);
        if (validator(path, NULL) != muts[i].want)
            fail_msg("mutation %zu (%s=%s): validator did not answer %d", i,
                     muts[i].name ? muts[i].name : "-", muts[i].value ? muts[i].value : "-",
                     muts[i].want);
        unlink(path);
    }
    json_decref(first);
}

/* dead_entry_validates - a dead-lettered copy with dead_* fields is valid */
static void dead_entry_validates(void **state)
{
    char path[1024];
    FILE *out;
    json_t *o, *f;
    struct ingest_result res;

    (void)state;
    fx_run("whatsapp", "statuses_failed.json", FX_OK, &res);
    assert_int_equal(res.nentries, 2);
    o = entry_json(&res.entries[0]);
    ingest_result_free(&res);
    json_object_set_new(o, "stream", json_string(TN_STREAM_STATUS_DEAD));
    f = json_object_get(o, "fields");
    json_object_set_new(f, TN_F_DEAD_REASON, json_string("deliveries.exceeded"));
    json_object_set_new(f, TN_F_DEAD_FROM_ID, json_string("1767225600000-0"));
    json_object_set_new(f, TN_F_DEAD_DELIVERIES, json_string("5"));
    json_object_set_new(f, TN_F_DEAD_AT, json_string("2026-01-01T00:10:00.000Z"));
    tmpfile_path("ingest-dead", path, sizeof(path));
    out = fopen(path, "w");
    assert_non_null(out);
    write_line(out, o);
    json_object_set_new(f, TN_F_DEAD_FROM_ID, json_string("yesterday"));
    write_line(out, o);
    fclose(out);
    assert_int_equal(validator(path, NULL), 1); /* the second line is invalid */
    out = fopen(path, "w");
    assert_non_null(out);
    json_object_set_new(f, TN_F_DEAD_FROM_ID, json_string("1767225600000-0"));
    write_line(out, o);
    fclose(out);
    assert_int_equal(validator(path, NULL), 0);
    json_decref(o);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schemas_compile),      cmocka_unit_test(parser_entries_validate),
        cmocka_unit_test(examples_validate),    cmocka_unit_test(validator_rejects),
        cmocka_unit_test(dead_entry_validates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
