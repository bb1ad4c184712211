/*
 * NAME
 *	test_tn_oauth_token - the token endpoint's answers, read
 * DESCRIPTION
 *	Each outcome (a token, a dead grant, unavailable, refused) from a table
 *	of statuses and bodies; non-JSON and non-object bodies; tokens at and
 *	past their length limits; expires_in missing, zero, negative, not an
 *	integer, huge, and near the end of int64; the error code truncated and
 *	made printable; clearing twice.
 * RUNS ON
 *	the test's main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <tn/tn_http.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth_token.h>

#define NOW 1767225600 /* 2026-01-01 */

/* read_body - tn_oauth_token_read of status and body (NULL: no body) */
static void read_body(long status, const char *body, struct tn_oauth_token *t)
{
    struct tn_http_response r = {
        .status = status, .body = body, .body_len = body != NULL ? strlen(body) : 0};

    tn_oauth_token_read(&r, TN_OK, NOW, t);
}

static const struct case_ {
    const char *name;
    long status;
    const char *body;
    enum tn_oauth_token_outcome want;
    const char *access, *refresh, *id_token, *error;
    int64_t expires_s;
} cases[] = {
    {.name = "refresh answer",
     .status = 200,
     .body = "{\"access_token\":\"ya29.a\",\"expires_in\":3599,\"scope\":\"s\","
             "\"token_type\":\"Bearer\"}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "ya29.a",
     .expires_s = NOW + 3599},
    {.name = "code answer",
     .status = 200,
     .body = "{\"access_token\":\"ya29.b\",\"refresh_token\":\"1//r\",\"id_token\":\"h.p.s\","
             "\"expires_in\":3600}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "ya29.b",
     .refresh = "1//r",
     .id_token = "h.p.s",
     .expires_s = NOW + 3600},
    {.name = "empty refresh and id_token are absent",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"refresh_token\":\"\",\"id_token\":\"\",\"expires_in\":60}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 60},
    {.name = "refresh not a string",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"refresh_token\":7}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in missing",
     .status = 200,
     .body = "{\"access_token\":\"a\"}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in zero",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":0}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in negative",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":-5}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in a string",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":\"120\"}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in a real",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":120.5}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + 3600},
    {.name = "expires_in huge",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":9223372036854775807}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + TN_OAUTH_TOKEN_TTL_MAX_S},
    {.name = "expires_in a year and a second",
     .status = 200,
     .body = "{\"access_token\":\"a\",\"expires_in\":31536001}",
     .want = TN_OAUTH_TOKEN_OK,
     .access = "a",
     .expires_s = NOW + TN_OAUTH_TOKEN_TTL_MAX_S},
    {.name = "empty access_token",
     .status = 200,
     .body = "{\"access_token\":\"\",\"expires_in\":3600}",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "access_token not a string",
     .status = 200,
     .body = "{\"access_token\":12345}",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "200 without a token",
     .status = 200,
     .body = "{\"token_type\":\"Bearer\"}",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "200 HTML", .status = 200, .body = "<html>hi</html>", .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "200 array",
     .status = 200,
     .body = "[{\"access_token\":\"a\"}]",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "200 empty body", .status = 200, .body = "", .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "200 no body", .status = 200, .body = NULL, .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "201 with a token",
     .status = 201,
     .body = "{\"access_token\":\"a\"}",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "invalid_grant",
     .status = 400,
     .body = "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or "
             "revoked.\"}",
     .want = TN_OAUTH_TOKEN_DEAD_GRANT,
     .error = "invalid_grant"},
    {.name = "invalid_grant with a token is still dead",
     .status = 400,
     .body = "{\"error\":\"invalid_grant\",\"access_token\":\"a\"}",
     .want = TN_OAUTH_TOKEN_DEAD_GRANT,
     .error = "invalid_grant"},
    {.name = "invalid_grant on a 401",
     .status = 401,
     .body = "{\"error\":\"invalid_grant\"}",
     .want = TN_OAUTH_TOKEN_REFUSED,
     .error = "invalid_grant"},
    {.name = "invalid_grant prefix",
     .status = 400,
     .body = "{\"error\":\"invalid_grantx\"}",
     .want = TN_OAUTH_TOKEN_REFUSED,
     .error = "invalid_grantx"},
    {.name = "invalid_client",
     .status = 401,
     .body = "{\"error\":\"invalid_client\",\"error_description\":\"Unauthorized\"}",
     .want = TN_OAUTH_TOKEN_REFUSED,
     .error = "invalid_client"},
    {.name = "400 not JSON", .status = 400, .body = "Bad Request", .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "error not a string",
     .status = 400,
     .body = "{\"error\":{\"code\":400}}",
     .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "302", .status = 302, .body = "", .want = TN_OAUTH_TOKEN_REFUSED},
    {.name = "429",
     .status = 429,
     .body = "{\"error\":\"rate_limit_exceeded\"}",
     .want = TN_OAUTH_TOKEN_UNAVAILABLE,
     .error = "rate_limit_exceeded"},
    {.name = "500 HTML", .status = 500, .body = "<html>", .want = TN_OAUTH_TOKEN_UNAVAILABLE},
    {.name = "503 with a token",
     .status = 503,
     .body = "{\"access_token\":\"a\"}",
     .want = TN_OAUTH_TOKEN_UNAVAILABLE},
};

/* check - t against c, naming the case on failure */
static void check(const struct case_ *c, const struct tn_oauth_token *t)
{
    print_message("case: %s\n", c->name);
    assert_int_equal(t->outcome, c->want);
    assert_int_equal(t->status, c->status);
    if (c->access != NULL)
        assert_string_equal(t->access, c->access);
    else
        assert_null(t->access);
    if (c->refresh != NULL)
        assert_string_equal(t->refresh, c->refresh);
    else
        assert_null(t->refresh);
    if (c->id_token != NULL)
        assert_string_equal(t->id_token, c->id_token);
    else
        assert_null(t->id_token);
    assert_string_equal(t->error, c->error != NULL ? c->error : "");
    assert_int_equal(t->expires_s, c->want == TN_OAUTH_TOKEN_OK ? c->expires_s : 0);
}

static void test_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tn_oauth_token t;

        read_body(cases[i].status, cases[i].body, &t);
        check(&cases[i], &t);
        tn_oauth_token_clear(&t);
    }
}

/* test_transport - any tn_http error, with or without a response, is unavailable */
static void test_transport(void **state)
{
    static const enum tn_err errs[] = {TN_ETIMEDOUT, TN_E2BIG,  TN_EUNAVAIL,
                                       TN_EPROTO,    TN_EINVAL, TN_ECANCELED};
    struct tn_http_response r = {.status = 200, .body = "{\"access_token\":\"a\"}"};
    struct tn_oauth_token t;
    size_t i;

    (void)state;
    r.body_len = strlen(r.body);
    for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        tn_oauth_token_read(NULL, errs[i], NOW, &t);
        assert_int_equal(t.outcome, TN_OAUTH_TOKEN_UNAVAILABLE);
        assert_int_equal(t.status, 0);
        assert_null(t.access);
        tn_oauth_token_clear(&t);
        tn_oauth_token_read(&r, errs[i], NOW, &t); /* a stray resp is not read */
        assert_int_equal(t.outcome, TN_OAUTH_TOKEN_UNAVAILABLE);
        assert_null(t.access);
        tn_oauth_token_clear(&t);
    }
    tn_oauth_token_read(NULL, TN_OK, NOW, &t); /* no response: nothing to read */
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_UNAVAILABLE);
    tn_oauth_token_clear(&t);
}

/* answer - a 200 body with the given members' values (each n x 'x', 0: absent) */
static char *answer(size_t access_n, size_t refresh_n, size_t id_n)
{
    size_t cap = access_n + refresh_n + id_n + 128, len = 0;
    char *b = tn_xmalloc(cap);

    len += (size_t)snprintf(b + len, cap - len, "{\"access_token\":\"");
    memset(b + len, 'a', access_n);
    len += access_n;
    len += (size_t)snprintf(b + len, cap - len, "\",\"refresh_token\":\"");
    memset(b + len, 'r', refresh_n);
    len += refresh_n;
    len += (size_t)snprintf(b + len, cap - len, "\",\"id_token\":\"");
    memset(b + len, 'i', id_n);
    len += id_n;
    snprintf(b + len, cap - len, "\"}");
    return b;
}

/* test_lengths - each token at its limit minus one is kept, at its limit dropped */
static void test_lengths(void **state)
{
    const size_t tmax = TN_OAUTH_TOKEN_MAX, imax = TN_OAUTH_ID_TOKEN_MAX;
    struct tn_oauth_token t;
    char *b;

    (void)state;
    b = answer(tmax - 1, tmax - 1, imax - 1);
    read_body(200, b, &t);
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_OK);
    assert_int_equal(strlen(t.access), tmax - 1);
    assert_int_equal(strlen(t.refresh), tmax - 1);
    assert_int_equal(strlen(t.id_token), imax - 1);
    tn_oauth_token_clear(&t);
    tn_free(b);

    b = answer(1, tmax, imax);
    read_body(200, b, &t);
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_OK);
    assert_string_equal(t.access, "a");
    assert_null(t.refresh);
    assert_null(t.id_token);
    tn_oauth_token_clear(&t);
    tn_free(b);

    b = answer(tmax, 1, 1); /* an overlong access token is no token */
    read_body(200, b, &t);
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_REFUSED);
    assert_null(t.access);
    assert_null(t.refresh);
    assert_null(t.id_token);
    tn_oauth_token_clear(&t);
    tn_free(b);
}

/* test_error_string - capped, printable, never more than the buffer */
static void test_error_string(void **state)
{
    char body[512], want[TN_OAUTH_TOKEN_ERROR_LEN];
    struct tn_oauth_token t;

    (void)state;
    memset(want, 'e', sizeof(want) - 1);
    want[sizeof(want) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"error\":\"%s%s\"}", want, "tail-that-is-cut");
    read_body(400, body, &t);
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_REFUSED);
    assert_string_equal(t.error, want);
    tn_oauth_token_clear(&t);

    read_body(400, "{\"error\":\"bad\\n\\u00e9\\u0007x\"}", &t);
    assert_string_equal(t.error, "bad????x"); /* newline, é (two UTF-8 bytes), BEL */
    tn_oauth_token_clear(&t);
}

/* test_expiry_saturates - now_s near the end of int64 does not overflow */
static void test_expiry_saturates(void **state)
{
    struct tn_http_response r = {.status = 200,
                                 .body = "{\"access_token\":\"a\",\"expires_in\":99999999999}"};
    struct tn_oauth_token t;

    (void)state;
    r.body_len = strlen(r.body);
    tn_oauth_token_read(&r, TN_OK, INT64_MAX - 10, &t);
    assert_int_equal(t.outcome, TN_OAUTH_TOKEN_OK);
    assert_true(t.expires_s == INT64_MAX);
    tn_oauth_token_clear(&t);
}

/* test_clear - wipes and zeroes; twice and NULL are fine */
static void test_clear(void **state)
{
    struct tn_oauth_token t;

    (void)state;
    read_body(200, "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"id_token\":\"i\"}", &t);
    assert_non_null(t.refresh);
    tn_oauth_token_clear(&t);
    assert_null(t.access);
    assert_null(t.refresh);
    assert_null(t.id_token);
    assert_int_equal(t.expires_s, 0);
    tn_oauth_token_clear(&t);
    tn_oauth_token_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_error_string),
        cmocka_unit_test(test_expiry_saturates),
        cmocka_unit_test(test_clear),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
