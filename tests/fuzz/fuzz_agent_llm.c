/*
 * fuzz_agent_llm - arbitrary model and provider answers into tern-agent's
 * parsers. Byte 0 picks the mode, the rest is the body:
 *
 *   0  a chat completion answer: agent_llm_parse_answer, then, as
 *      llm_done does, every tool call (agent_tool_call_parse, and the
 *      runners that need no Postgres: update_lead, handoff_to_human) and
 *      the reply text (agent_turn_reply_text)
 *   1  a transcription answer (agent_voice_transcript)
 *   2  a Telegram getFile answer (agent_media_lookup_url)
 *   3  a WhatsApp media lookup answer (agent_media_lookup_url)
 *   4  byte 1 picks a tool name, the rest is that call's "arguments"
 *      string (the model's output: any text), as one tool call
 *
 * Checks what the callers rely on: a message is an object; a call that may
 * run has a known tool and an object of arguments, at most
 * AGENT_MAX_TOOL_CALLS of them; a runner calls done exactly once with an
 * {"ok"} or {"error"} object and an accepted update_lead leaves only valid
 * fields in the turn's lead (what tern_agent_commit writes to leads); the
 * reply and the transcript are non-blank, valid UTF-8 prefixes within their
 * caps; a media URL stays under the provider's base; the next request's
 * body (the message and the tool results echoed back) is valid JSON.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_mem.h>

#include "agent.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_agent_llm: %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define TRANSCRIPT_MAX 4000 /* agent_voice.c */
#define TG_BASE "https://api.telegram.org/"
#define TG_TOKEN "123456:ABC-def_ghi"
#define TG_PREFIX "https://api.telegram.org/file/bot" TG_TOKEN "/"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A turn as the runners see it, plus what their done callback got. */
struct fz_turn {
    struct agent_turn t; /* first: done gets &t */
    json_t *result;
    int ndone;
};

static const char *const tool_names[] = {
    "update_lead", "handoff_to_human", "find_slots", "book", "reschedule",
    "cancel",      "list_my_bookings", "nope",       "",
};

/* capture - the runners' done callback */
static void capture(struct agent_turn *t, json_t *result)
{
    struct fz_turn *f = (struct fz_turn *)t;

    f->ndone++;
    json_decref(f->result);
    f->result = result;
}

/* utf8_ok - valid UTF-8 of n bytes (jansson's own check) */
static bool utf8_ok(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    bool ok = j != NULL;

    json_decref(j);
    return ok;
}

/* blank - NULL or only white space (the C locale's isspace set) */
static bool blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\n\v\f\r")] == '\0';
}

/* dump_ok - agent_json_dump gives NUL-terminated text that parses back to j */
static void dump_ok(const json_t *j)
{
    char *text = agent_json_dump(j);
    json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);

    CHECK(back != NULL && json_equal(back, j));
    json_decref(back);
    tn_free(text);
}

/* email_ok - what the leads.email column may hold: one '@' not first, a dot
 * after it but not right after it nor last, no space or control, <= 254 */
static bool email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    size_t n = strlen(s);

    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || n > 254 || at[1] == '.' ||
        s[n - 1] == '.' || strchr(at + 1, '.') == NULL)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return false;
    }
    return true;
}

/* lead_ok - the pending lead update holds only validated fields */
static void lead_ok(const json_t *lead)
{
    const char *k, *s, *ak;
    json_t *v, *av;

    if (lead == NULL)
        return;
    CHECK(json_is_object(lead) && json_object_size(lead) > 0);
    json_object_foreach((json_t *)lead, k, v)
    {
        s = json_string_value(v);
        if (strcmp(k, "name") == 0) {
            CHECK(s != NULL && s[0] != '\0' && strlen(s) <= 200);
        } else if (strcmp(k, "email") == 0) {
            CHECK(s != NULL && email_ok(s));
        } else if (strcmp(k, "status") == 0) {
            CHECK(s != NULL && (strcmp(s, "new") == 0 || strcmp(s, "qualified") == 0 ||
                                strcmp(s, "lost") == 0)); /* leads.status CHECK */
        } else {
            CHECK(strcmp(k, "answers") == 0 && json_is_object(v));
            json_object_foreach(v, ak, av)
            {
                CHECK(json_is_string(av) && strlen(json_string_value(av)) <= 500);
                CHECK(strlen(ak) <= 200);
            }
        }
    }
}

/* run_tool - a runner that needs no Postgres, with its contract checked */
static void run_tool(struct fz_turn *f, const struct agent_tool *tool, json_t *args)
{
    char *before = agent_json_dump(f->t.lead);
    bool handoff = f->t.handoff, ok;
    char *after;

    f->ndone = 0;
    tool->run(&f->t, args, capture);
    CHECK(f->ndone == 1);
    CHECK(json_is_object(f->result));
    ok = json_is_true(json_object_get(f->result, "ok"));
    CHECK(ok != json_is_string(json_object_get(f->result, "error")));
    lead_ok(f->t.lead);
    after = agent_json_dump(f->t.lead);
    if (!ok) { /* a refused call changes nothing */
        CHECK(strcmp(before, after) == 0);
        CHECK(f->t.handoff == handoff);
    } else if (strcmp(tool->name, "handoff_to_human") == 0) {
        CHECK(f->t.handoff);
    } else {
        CHECK(f->t.lead != NULL);
    }
    tn_free(before);
    tn_free(after);
}

/* run_calls - every call of the message, as run_next_tool does; appends
 * the tool messages to messages */
static void run_calls(struct fz_turn *f, json_t *calls, json_t *messages)
{
    const struct agent_tool *tool;
    json_t *call, *args, *result;
    const char *why, *name;
    size_t i;

    json_array_foreach(calls, i, call)
    {
        why = agent_tool_call_parse(call, i, &tool, &args);
        if (why != NULL) {
            CHECK(tool == NULL && args == NULL && why[0] != '\0');
            result = json_pack("{s:s}", "error", why);
        } else {
            name = json_string_value(json_object_get(json_object_get(call, "function"), "name"));
            CHECK(i < AGENT_MAX_TOOL_CALLS);
            CHECK(tool != NULL && name != NULL && strcmp(tool->name, name) == 0);
            CHECK(json_is_object(args));
            if (strcmp(name, "update_lead") == 0 || strcmp(name, "handoff_to_human") == 0) {
                run_tool(f, tool, args);
                result = f->result;
                f->result = NULL;
            } else {
                result = json_pack("{s:s}", "error", "unavailable"); /* a booking tool: Postgres */
            }
            json_decref(args);
        }
        if (i >= AGENT_MAX_TOOL_CALLS)
            CHECK(why != NULL);
        json_array_append_new(messages, agent_tool_message(call, result));
        json_decref(result);
    }
}

/* next_request - agent_llm_send's body: the dump without its closing brace,
 * the tools spliced in, must still be JSON */
static void next_request(json_t *messages)
{
    json_t *rq =
        json_pack("{s:s,s:O,s:s}", "model", "m", "messages", messages, "tool_choice", "auto");
    char *head = agent_json_dump(rq), *text;
    size_t n = strlen(head);
    json_t *back;

    CHECK(n >= 2 && head[n - 1] == '}');
    text = tn_xmalloc(n + 32);
    memcpy(text, head, n - 1);
    memcpy(text + n - 1, ",\"tools\":[]}", sizeof(",\"tools\":[]}"));
    back = json_loads(text, 0, NULL);
    CHECK(json_is_object(back) && json_equal(json_object_get(back, "messages"), messages));
    json_decref(back);
    tn_free(text);
    tn_free(head);
    json_decref(rq);
}

/* check_reply - the reply llm_done would commit */
static void check_reply(const json_t *msg)
{
    const char *content = json_string_value(json_object_get(msg, "content"));
    char *text = agent_turn_reply_text(msg);
    size_t n, cn;

    if (blank(content)) {
        CHECK(text == NULL);
        return;
    }
    CHECK(text != NULL);
    while (isspace((unsigned char)*content)) /* leading white space is dropped */
        content++;
    n = strlen(text);
    cn = strlen(content);
    CHECK(n <= AGENT_TEXT_MAX && n <= cn && memcmp(text, content, n) == 0);
    CHECK(cn <= AGENT_TEXT_MAX ? n == cn : n + 4 > AGENT_TEXT_MAX);
    CHECK(utf8_ok(text, n));
    CHECK(!blank(text)); /* the lead gets something to read */
    tn_free(text);
}

/* check_message - one assistant message through llm_done's paths */
static void check_message(json_t *msg)
{
    struct fz_turn f;
    json_t *calls = json_object_get(msg, "tool_calls");
    json_t *messages = json_array();

    CHECK(json_is_object(msg));
    memset(&f, 0, sizeof(f));
    json_array_append(messages, msg);
    if (json_array_size(calls) > 0)
        run_calls(&f, calls, messages);
    check_reply(msg);
    next_request(messages);
    dump_ok(messages);
    json_decref(messages);
    json_decref(f.t.lead);
    json_decref(f.result);
}

/* chat - mode 0 */
static void chat(const char *body, size_t len)
{
    json_t *msg = agent_llm_parse_answer(body, len);
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *want = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");

    if (!json_is_object(root) || json_object_get(root, "error") != NULL || !json_is_object(want))
        CHECK(msg == NULL);
    else
        CHECK(msg != NULL && json_equal(msg, want));
    if (msg != NULL)
        check_message(msg);
    json_decref(msg);
    json_decref(root);
}

/* one_call - mode 4: the model's arguments text for a named tool */
static void one_call(const uint8_t *data, size_t size)
{
    const char *name;
    json_t *args, *msg;

    if (size < 1)
        return;
    name = tool_names[data[0] % (sizeof(tool_names) / sizeof(tool_names[0]))];
    /* as a string, the way the answer's parse (no JSON_ALLOW_NUL) could give it */
    args = memchr(data + 1, '\0', size - 1) == NULL ? json_stringn((const char *)data + 1, size - 1)
                                                    : NULL;
    if (args == NULL) /* else the object form, when it is JSON */
        args = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (args == NULL)
        return;
    msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:o}}]}", "role", "assistant", "content",
                    "tool_calls", "id", "call_fz", "type", "function", "function", "name", name,
                    "arguments", args);
    CHECK(msg != NULL);
    check_message(msg);
    json_decref(msg);
}

/* transcript - mode 1 */
static void transcript(const char *body, size_t len)
{
    char *text = agent_voice_transcript(body, len);
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *want = json_string_value(json_object_get(root, "text"));
    size_t n;

    if (want == NULL || want[strspn(want, " \t\r\n")] == '\0') {
        CHECK(text == NULL);
    } else {
        CHECK(text != NULL);
        want += strspn(want, " \t\r\n"); /* leading white space is dropped */
        n = strlen(text);
        CHECK(n <= TRANSCRIPT_MAX && n <= strlen(want) && memcmp(text, want, n) == 0);
        CHECK(strlen(want) <= TRANSCRIPT_MAX ? n == strlen(want) : n + 4 > TRANSCRIPT_MAX);
        CHECK(utf8_ok(text, n));
        CHECK(text[strspn(text, " \t\r\n")] != '\0'); /* the prompt shows something */
    }
    tn_free(text);
    json_decref(root);
}

/* media - modes 2 (Telegram) and 3 (WhatsApp) */
static void media(bool telegram, const char *body, size_t len)
{
    char *url =
        agent_media_lookup_url(telegram ? "telegram" : "whatsapp", body, len, TG_BASE, TG_TOKEN);
    const char *rest;

    if (url == NULL)
        return;
    if (telegram) {
        CHECK(strncmp(url, TG_PREFIX, strlen(TG_PREFIX)) == 0);
        rest = url + strlen(TG_PREFIX);
        CHECK(strstr(rest, "..") == NULL);
        CHECK(strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                           "-._~/%") == strlen(rest));
    } else {
        CHECK(strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
    }
    tn_free(url);
}

/* LLVMFuzzerTestOneInput - one answer per input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data + 1;

    if (size == 0)
        return 0;
    switch (data[0] % 5) {
    case 0:
        chat(body, size - 1);
        break;
    case 1:
        transcript(body, size - 1);
        break;
    case 2:
    case 3:
        media(data[0] % 5 == 2, body, size - 1);
        break;
    default:
        one_call(data + 1, size - 1);
        break;
    }
    return 0;
}
