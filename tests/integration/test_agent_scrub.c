/*
 * test_agent_scrub - the agent's pure helpers, table-driven: masking of
 * phone numbers and emails before text reaches the model (dates, times and
 * short numbers stay), opt-out keyword matching, and the tool validation
 * that turns a bad argument into an error for the model.
 * (Filed under integration only because tests/CMakeLists.txt links a
 * service's sources into test_<svc>_*.c there; it needs no server.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <tn/tn_mem.h>

#include "agent.h"

static const struct scrub_case {
    const char *in, *want;
} scrub_cases[] = {
    {"call me on +49 151 2345 6789 please", "call me on [phone] please"},
    {"(030) 1234-5678", "[phone]"},
    {"+4915112345678", "[phone]"},
    {"mail jana.k@example.com.", "mail [email]."},
    {"a@b.c and x@y", "[email] and x@y"},
    {"on 2026-05-08 at 14:30", "on 2026-05-08 at 14:30"},
    {"am 08.05.2026 um 9", "am 08.05.2026 um 9"},
    {"flat 12, 3 rooms, 120 m2", "flat 12, 3 rooms, 120 m2"},
    {"", ""},
};

/* scrub - every case */
static void scrub(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scrub_cases) / sizeof(scrub_cases[0]); i++) {
        char *got = agent_scrub(scrub_cases[i].in);

        assert_string_equal(got, scrub_cases[i].want);
        tn_free(got);
    }
}

/* keywords - whole message, any case, trailing punctuation */
static void keywords(void **state)
{
    char **w = NULL;
    size_t n = agent_keyword_parse(" stop, Unsubscribe ,,ABMELDEN", &w);

    (void)state;
    assert_int_equal(n, 3);
    assert_true(agent_keyword_match("STOP", w, n));
    assert_true(agent_keyword_match("  Stop! ", w, n));
    assert_true(agent_keyword_match("abmelden.", w, n));
    assert_false(agent_keyword_match("please stop", w, n));
    assert_false(agent_keyword_match("stopp", w, n));
    assert_false(agent_keyword_match(NULL, w, n));
    for (size_t i = 0; i < n; i++)
        tn_free(w[i]);
    tn_free(w);
}

static json_t *last_result;

/* capture - a tool's done callback */
static void capture(struct agent_turn *t, json_t *result)
{
    (void)t;
    json_decref(last_result);
    last_result = result;
}

/* tools - validation errors go back as {"error"}, valid fields accumulate */
static void tools(void **state)
{
    static const struct tool_case {
        const char *args;
        bool ok;
    } cases[] = {
        {"{\"email\":\"not-an-email\"}", false},
        {"{\"status\":\"booked\"}", false},
        {"{\"phone\":\"+4915112345678\"}", false},
        {"{}", false},
        {"{\"answers\":{\"q\":1}}", false},
        {"{\"name\":\"Jana\",\"answers\":{\"a\":\"x\"}}", true},
        {"{\"email\":\"jana@example.org\",\"answers\":{\"b\":\"y\"}}", true},
    };
    const struct agent_tool *t = agent_tool_find("update_lead");
    struct agent_turn turn;
    json_t *args0;

    (void)state;
    memset(&turn, 0, sizeof(turn));
    assert_non_null(t);
    assert_null(agent_tool_find("book_everything"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *args = json_loads(cases[i].args, 0, NULL);

        t->run(&turn, args, capture);
        json_decref(args);
        assert_int_equal(json_object_get(last_result, "error") == NULL, cases[i].ok);
    }
    assert_string_equal(json_string_value(json_object_get(turn.lead, "name")), "Jana");
    assert_int_equal(json_object_size(json_object_get(turn.lead, "answers")), 2);
    args0 = json_object();
    agent_tool_find("handoff_to_human")->run(&turn, args0, capture);
    json_decref(args0);
    assert_true(turn.handoff);
    json_decref(turn.lead);
    json_decref(last_result);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scrub),
        cmocka_unit_test(keywords),
        cmocka_unit_test(tools),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
