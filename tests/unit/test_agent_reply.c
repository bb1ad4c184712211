/*
 * test_agent_reply - what tern-agent makes of a model's answer before it
 * acts on it (the pure helpers fuzz_agent_llm drives): the message of a
 * chat completion, the reply text and the transcript. A reply or
 * transcript that starts with more white space than the cap still says
 * something: the white space goes first, then the cap. A tool call without
 * an id gets one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <tn/tn_mem.h>

#include "agent.h"

/* padded - '{"<key>":"' + n spaces + "Hello" + '"}' wrapped by pre/post */
static char *padded(const char *pre, size_t n, const char *post)
{
    size_t lp = strlen(pre), lq = strlen(post);
    char *s = tn_xmalloc(lp + n + 5 + lq + 1);

    memcpy(s, pre, lp);
    memset(s + lp, ' ', n);
    memcpy(s + lp + n, "Hello", 5);
    memcpy(s + lp + n + 5, post, lq + 1);
    return s;
}

static void answers(void **state)
{
    const char *ok = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}";
    json_t *m = agent_llm_parse_answer(ok, strlen(ok));
    char *text;

    (void)state;
    assert_non_null(m);
    text = agent_turn_reply_text(m);
    assert_string_equal(text, "Hi");
    tn_free(text);
    json_decref(m);
    assert_null(agent_llm_parse_answer("{\"error\":{\"message\":\"x\"}}", 25));
    assert_null(agent_llm_parse_answer("not json", 8));
    ok = "{\"choices\":[{\"message\":{\"content\":\"  \\n\"}}]}";
    m = agent_llm_parse_answer(ok, strlen(ok));
    assert_non_null(m);
    assert_null(agent_turn_reply_text(m)); /* blank: nothing to say */
    json_decref(m);
}

static void leading_white_space(void **state)
{
    char *body = padded("{\"choices\":[{\"message\":{\"content\":\"", 5000, "\"}}]}");
    json_t *m = agent_llm_parse_answer(body, strlen(body));
    char *text = agent_turn_reply_text(m);

    (void)state;
    assert_string_equal(text, "Hello");
    tn_free(text);
    json_decref(m);
    tn_free(body);
    body = padded("{\"text\":\"", 5000, "\"}");
    text = agent_voice_transcript(body, strlen(body));
    assert_string_equal(text, "Hello");
    tn_free(text);
    tn_free(body);
}

/* a tool call without an id gets one, so its tool message can name it */
static void tool_call_ids(void **state)
{
    json_t *calls = json_loads("[{\"id\":\"call_1\",\"function\":{}},{\"function\":{}},"
                               "{\"id\":7,\"function\":{}}]",
                               0, NULL);

    (void)state;
    agent_tool_calls_name(calls, 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                        "call_1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 1), "id")),
                        "call_tern_2_1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 2), "id")),
                        "call_tern_2_2");
    json_decref(calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers),
        cmocka_unit_test(leading_white_space),
        cmocka_unit_test(tool_call_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
