/*
 * NAME
 *	test_tn_oauth - sealed tokens of the calendar-connect flow
 * DESCRIPTION
 *	Round trips; a changed character, another kind of token, another key,
 *	another tenant or request, or an expired token is refused; PKCE's S256
 *	challenge matches RFC 7636 appendix B.
 * RUNS ON
 *	the test's main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>
#include <tn/tn_oauth.h>

#define TENANT "8a1c1e0e-0b8f-4d3b-9c57-2f4a0f7f0a11"
#define RES "0b7d7c2e-2f55-4c1e-8d8f-3c9a6f2b1e00"
#define KEY1 "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2 "2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

static struct tn_keyring *ring(const char *spec)
{
    struct tn_keyring *k = NULL;
    assert_int_equal(tn_keyring_parse(spec, &k), TN_OK);
    return k;
}

static void test_link(void **state)
{
    struct tn_keyring *k = ring(KEY1), *other = ring(KEY2);
    struct tn_oauth_grant g;
    char *t = tn_oauth_link_seal(k, TENANT, RES, 1000);

    (void)state;
    assert_non_null(t);
    assert_null(strchr(t, '=')); /* base64url, no padding: safe in a query */
    assert_int_equal(tn_oauth_link_open(k, t, 999, &g), TN_OK);
    assert_string_equal(g.tenant, TENANT);
    assert_string_equal(g.resource, RES);
    assert_int_equal(g.exp_s, 1000);
    assert_int_equal(tn_oauth_link_open(k, t, 1001, &g), TN_ETIMEDOUT);
    assert_int_equal(tn_oauth_link_open(other, t, 999, &g), TN_EDENIED);
    t[10] = t[10] == 'A' ? 'B' : 'A';
    assert_int_equal(tn_oauth_link_open(k, t, 999, &g), TN_EDENIED);
    assert_int_equal(tn_oauth_link_open(k, "", 999, &g), TN_EDENIED);
    assert_int_equal(tn_oauth_link_open(k, "!!", 999, &g), TN_EDENIED);
    tn_free(t);
    assert_null(tn_oauth_link_seal(k, "not-a-uuid", NULL, 1000));
    t = tn_oauth_link_seal(k, TENANT, NULL, 1000);
    assert_int_equal(tn_oauth_link_open(k, t, 0, &g), TN_OK);
    assert_string_equal(g.resource, "");
    tn_free(t);
    tn_keyring_free(k);
    tn_keyring_free(other);
}

static void test_state(void **state)
{
    struct tn_keyring *k = ring(KEY1);
    struct tn_oauth_grant g = {.tenant = TENANT}, back, g2 = {.tenant = TENANT};
    char *s = tn_oauth_state_seal(k, &g, 100, 600), *s2 = tn_oauth_state_seal(k, &g2, 100, 600);
    char *link = tn_oauth_link_seal(k, TENANT, NULL, 1000);

    (void)state;
    assert_int_equal(g.exp_s, 700);
    assert_true(strlen(g.verifier) >= 43);
    assert_string_not_equal(g.nonce, g2.nonce); /* fresh per flow */
    assert_string_not_equal(g.verifier, g2.verifier);
    assert_int_equal(tn_oauth_state_open(k, s, 700, &back), TN_OK);
    assert_string_equal(back.tenant, TENANT);
    assert_string_equal(back.nonce, g.nonce);
    assert_string_equal(back.verifier, g.verifier);
    assert_int_equal(tn_oauth_state_open(k, s, 701, &back), TN_ETIMEDOUT);
    /* one kind never stands in for another */
    assert_int_equal(tn_oauth_state_open(k, link, 0, &back), TN_EDENIED);
    assert_int_equal(tn_oauth_link_open(k, s, 0, &back), TN_EDENIED);
    tn_free(s);
    tn_free(s2);
    tn_free(link);
    tn_keyring_free(k);
}

static void test_code(void **state)
{
    struct tn_keyring *k = ring(KEY1);
    char *t = tn_oauth_code_seal(k, TENANT, "req-1", "4/0Abc-code", "verifier-xyz");
    char *code, *ver;

    (void)state;
    assert_int_equal(tn_oauth_code_open(k, TENANT, "req-1", t, &code, &ver), TN_OK);
    assert_string_equal(code, "4/0Abc-code");
    assert_string_equal(ver, "verifier-xyz");
    tn_free(code);
    tn_free(ver);
    assert_int_equal(tn_oauth_code_open(k, TENANT, "req-2", t, &code, &ver), TN_EDENIED);
    assert_null(code);
    assert_int_equal(tn_oauth_code_open(k, RES, "req-1", t, &code, &ver), TN_EDENIED);
    assert_null(strstr(t, "code")); /* opaque */
    tn_free(t);
    tn_keyring_free(k);
}

static void test_challenge(void **state)
{
    char *c = tn_oauth_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

    (void)state;
    assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    tn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_code),
        cmocka_unit_test(test_challenge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
