/*
 * NAME
 *	agent_tools - the tools the model may call, validated by the server
 * SYNOPSIS
 *	#include "agent.h"
 *	const struct agent_tool *t = agent_tool_find("update_lead");
 *	t->run(turn, args, done);
 * DESCRIPTION
 *	One table: each entry is the OpenAI function definition the model sees
 *	and the runner that checks the arguments and records the effect on the
 *	turn. Effects are applied by the turn's commit, in the same transaction
 *	as the reply, so a turn that fails leaves no half-done tool effects.
 *	A runner reports with done(turn, result) exactly once; a bad argument
 *	becomes {"error": "..."} for the model to correct, never a failure of
 *	the turn. Runners may finish later: the booking tools (agent_booking.c)
 *	ask Postgres, and their effects are committed by tn_booking at once
 *	(a slot must be held the moment the model hears "booked").
 * RUNS ON
 *	loop.
 * DIAGNOSTICS
 *	None (results go back to the model).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_log.h>
#include <tn/tn_mem.h>

#include "agent.h"

#define NAME_MAX_LEN 200
#define EMAIL_MAX_LEN 254
#define ANSWER_MAX_LEN 500
#define ANSWERS_MAX 20

/* err_result - {"error": why} */
static json_t *err_result(const char *why)
{
    return json_pack("{s:s}", "error", why);
}

/* valid_email - one '@', a dot in the domain, no spaces */
static bool valid_email(const char *s)
{
    const char *at = strchr(s, '@');

    if (at == NULL || at == s || strchr(at + 1, '@') != NULL || strlen(s) > EMAIL_MAX_LEN)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return false;
    }
    return strchr(at + 1, '.') != NULL && at[1] != '.' && s[strlen(s) - 1] != '.';
}

/* check_answers - object of at most ANSWERS_MAX short strings */
static const char *check_answers(json_t *a)
{
    const char *k;
    json_t *v;

    if (!json_is_object(a))
        return "answers must be an object of question -> answer strings";
    if (json_object_size(a) > ANSWERS_MAX)
        return "too many answers";
    json_object_foreach(a, k, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) > ANSWER_MAX_LEN ||
            strlen(k) > NAME_MAX_LEN)
            return "each answer must be a string of at most 500 characters";
    }
    return NULL;
}

/* check_lead - validate update_lead's arguments; NULL when fine */
static const char *check_lead(json_t *args)
{
    const char *k, *s;
    json_t *v;

    if (json_object_size(args) == 0)
        return "give at least one of name, email, status, answers";
    json_object_foreach(args, k, v)
    {
        s = json_string_value(v);
        if (strcmp(k, "name") == 0) {
            if (s == NULL || s[0] == '\0' || strlen(s) > NAME_MAX_LEN)
                return "name must be a non-empty string of at most 200 characters";
        } else if (strcmp(k, "email") == 0) {
            if (s == NULL || !valid_email(s))
                return "email is not a valid address";
        } else if (strcmp(k, "status") == 0) {
            if (s == NULL ||
                (strcmp(s, "new") != 0 && strcmp(s, "qualified") != 0 && strcmp(s, "lost") != 0))
                return "status must be one of new, qualified, lost";
        } else if (strcmp(k, "answers") == 0) {
            const char *why = check_answers(v);

            if (why != NULL)
                return why;
        } else {
            return "unknown field; allowed: name, email, status, answers";
        }
    }
    return NULL;
}

/* update_lead - merge validated fields into the turn's pending lead update
 * (answers accumulate over calls; a later name, email or status wins) */
static void update_lead(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    const char *why = check_lead(args), *k;
    json_t *v, *have;

    if (why != NULL) {
        done(t, err_result(why));
        return;
    }
    if (t->lead == NULL)
        t->lead = json_object();
    json_object_foreach(args, k, v)
    {
        have = json_object_get(t->lead, k);
        if (strcmp(k, "answers") == 0 && have != NULL)
            json_object_update(have, v);
        else
            json_object_set_new(t->lead, k, json_deep_copy(v));
    }
    done(t, json_pack("{s:b}", "ok", 1));
}

/* handoff_to_human - flag the conversation; the model still answers */
static void handoff_to_human(struct agent_turn *t, json_t *args, agent_tool_done_fn *done)
{
    json_t *reason = json_object_get(args, "reason");

    if (reason != NULL && (!json_is_string(reason) || strlen(json_string_value(reason)) > 500)) {
        done(t, err_result("reason must be a string of at most 500 characters"));
        return;
    }
    t->handoff = true;
    done(t, json_pack("{s:b,s:s}", "ok", 1, "note",
                      "A team member will take over. Tell the lead so, briefly."));
}

static const struct agent_tool tools[] = {
    {
        .name = "update_lead",
        .definition =
            "{\"name\":\"update_lead\",\"description\":\"Record what you learned about the lead: "
            "name, email, qualification answers, or status (qualified when the questions are "
            "answered and the lead fits, lost when the lead is not interested).\","
            "\"parameters\":{\"type\":\"object\",\"properties\":{"
            "\"name\":{\"type\":\"string\",\"maxLength\":200},"
            "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
            "\"status\":{\"type\":\"string\",\"enum\":[\"new\",\"qualified\",\"lost\"]},"
            "\"answers\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}},"
            "\"additionalProperties\":false}}",
        .run = update_lead,
    },
    {
        .name = "handoff_to_human",
        .definition = "{\"name\":\"handoff_to_human\",\"description\":\"Hand the conversation to "
                      "a person at the business. Use when the lead asks for a human, complains, "
                      "or you cannot help.\",\"parameters\":{\"type\":\"object\",\"properties\":"
                      "{\"reason\":{\"type\":\"string\",\"maxLength\":500}},"
                      "\"additionalProperties\":false}}",
        .run = handoff_to_human,
    },
    {
        .name = "find_slots",
        .definition =
            "{\"name\":\"find_slots\",\"description\":\"Free appointment slots of a service "
            "between two local dates of the business. Offer the lead a few of them; only a "
            "start returned here can be booked.\",\"parameters\":{\"type\":\"object\","
            "\"properties\":{"
            "\"service\":{\"type\":\"string\",\"description\":\"the service's exact name\"},"
            "\"from\":{\"type\":\"string\",\"format\":\"date\",\"description\":\"YYYY-MM-DD\"},"
            "\"to\":{\"type\":\"string\",\"format\":\"date\",\"description\":\"YYYY-MM-DD, "
            "at most 31 days after from (default from + 6 days)\"},"
            "\"preferences\":{\"type\":\"object\",\"properties\":{"
            "\"part_of_day\":{\"type\":\"string\",\"enum\":[\"morning\",\"afternoon\","
            "\"evening\"]},"
            "\"after\":{\"type\":\"string\",\"description\":\"HH:MM\"},"
            "\"before\":{\"type\":\"string\",\"description\":\"HH:MM\"},"
            "\"weekdays\":{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":1,"
            "\"maximum\":7},\"description\":\"ISO weekdays, 1 = Monday\"}},"
            "\"additionalProperties\":false},"
            "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50}},"
            "\"required\":[\"service\",\"from\"],\"additionalProperties\":false}}",
        .run = agent_booking_find_slots,
    },
    {
        .name = "book",
        .definition =
            "{\"name\":\"book\",\"description\":\"Book a slot from find_slots for the lead "
            "you are talking to, once the lead has agreed to it. The lead then gets a "
            "confirmation and reminders automatically. If the slot was taken meanwhile, "
            "offer the alternatives returned.\",\"parameters\":{\"type\":\"object\","
            "\"properties\":{"
            "\"service\":{\"type\":\"string\",\"description\":\"the service's exact name\"},"
            "\"start\":{\"type\":\"string\",\"format\":\"date-time\",\"description\":\"a "
            "slot's start exactly as find_slots returned it\"},"
            "\"address\":{\"type\":\"string\",\"maxLength\":500,\"description\":\"where, for "
            "on-site jobs\"},"
            "\"notes\":{\"type\":\"string\",\"maxLength\":1000}},"
            "\"required\":[\"service\",\"start\"],\"additionalProperties\":false}}",
        .run = agent_booking_book,
    },
    {
        .name = "reschedule",
        .definition =
            "{\"name\":\"reschedule\",\"description\":\"Move one of the lead's upcoming "
            "bookings (ids from list_my_bookings) to another free slot of the same service. "
            "Reminders move with it.\",\"parameters\":{\"type\":\"object\",\"properties\":{"
            "\"booking_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
            "\"start\":{\"type\":\"string\",\"format\":\"date-time\"}},"
            "\"required\":[\"booking_id\",\"start\"],\"additionalProperties\":false}}",
        .run = agent_booking_reschedule,
    },
    {
        .name = "cancel",
        .definition =
            "{\"name\":\"cancel\",\"description\":\"Cancel one of the lead's upcoming bookings "
            "(ids from list_my_bookings) when the lead asks for it.\",\"parameters\":{"
            "\"type\":\"object\",\"properties\":{"
            "\"booking_id\":{\"type\":\"string\",\"format\":\"uuid\"}},"
            "\"required\":[\"booking_id\"],\"additionalProperties\":false}}",
        .run = agent_booking_cancel,
    },
    {
        .name = "list_my_bookings",
        .definition = "{\"name\":\"list_my_bookings\",\"description\":\"The lead's upcoming "
                      "bookings with their ids, dates and times.\",\"parameters\":{\"type\":"
                      "\"object\",\"properties\":{},\"additionalProperties\":false}}",
        .run = agent_booking_list,
    },
};

/* agent_tool_find - by name */
const struct agent_tool *agent_tool_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(tools) / sizeof(tools[0]); i++) {
        if (strcmp(tools[i].name, name) == 0)
            return &tools[i];
    }
    return NULL;
}

/* tool_args - the call's arguments: a JSON string (OpenAI) or an object */
static json_t *tool_args(json_t *fn)
{
    json_t *a = json_object_get(fn, "arguments");
    const char *s = json_string_value(a);

    if (json_is_object(a))
        return json_incref(a);
    if (s == NULL)
        return NULL;
    a = json_loads(s, 0, NULL);
    if (!json_is_object(a)) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* agent_tool_call_parse - the tool and the arguments of one call, or why not */
const char *agent_tool_call_parse(json_t *call, size_t i, const struct agent_tool **tool,
                                  json_t **args)
{
    json_t *fn = json_object_get(call, "function");

    *tool = NULL;
    *args = NULL;
    if (i >= AGENT_MAX_TOOL_CALLS)
        return "too many tool calls in one answer";
    *tool = agent_tool_find(json_string_value(json_object_get(fn, "name")));
    if (*tool == NULL)
        return "unknown tool";
    *args = tool_args(fn);
    if (*args == NULL) {
        *tool = NULL;
        return "arguments must be a JSON object";
    }
    return NULL;
}

/* agent_tool_calls_name - see agent.h */
void agent_tool_calls_name(json_t *calls, int round)
{
    char id[48];

    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *c = json_array_get(calls, i);

        if (json_is_object(c) && !json_is_string(json_object_get(c, "id"))) {
            snprintf(id, sizeof(id), "call_tern_%d_%zu", round, i);
            json_object_set_new(c, "id", json_string(id));
        }
    }
}

/* agent_tool_message - see agent.h */
json_t *agent_tool_message(const json_t *call, const json_t *result)
{
    json_t *msg = json_object();
    char *text = agent_json_dump(result);

    json_object_set_new(msg, "role", json_string("tool"));
    json_object_set(msg, "tool_call_id", json_object_get(call, "id"));
    json_object_set_new(msg, "content", json_string(text));
    tn_free(text);
    return msg;
}

/* agent_tools_definitions - [{"type":"function","function":{...}}, ...] */
json_t *agent_tools_definitions(void)
{
    json_t *a = json_array();

    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        json_t *fn = json_loads(tools[i].definition, 0, NULL);

        TN_ASSERT(fn != NULL);
        json_array_append_new(a, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    return a;
}
