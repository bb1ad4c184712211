/*
 * NAME
 *	agent_prompt - the chat messages sent to the model
 * SYNOPSIS
 *	#include "agent.h"
 *	json_t *messages = agent_prompt_build(ctx, &load);
 * DESCRIPTION
 *	One system message built from the tenant's agent profile (business,
 *	offer, hours, service area, qualification questions, tone, language,
 *	extra instructions), the current date and time in the tenant's zone as
 *	Postgres formatted it, what is known about the lead, and the rules of
 *	the tools; then the recent history, newest kept first until
 *	TN_AGENT_HISTORY_CHARS is spent; then every unprocessed message.
 *
 *	Everything the lead wrote (and the lead's name, which providers may
 *	fill with a phone number) goes through agent_scrub(): phone numbers
 *	become "[phone]" and emails "[email]". The contact's address and email
 *	are never put in the prompt. The profile is the business's own text
 *	and is sent as written. A voice note is its transcript, marked
 *	"[voice note]" (scrubbed the same way), or "[voice note could not be
 *	transcribed]" when there is none.
 * RUNS ON
 *	loop (pure).
 * DIAGNOSTICS
 *	None.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <tn/tn_buf.h>
#include <tn/tn_mem.h>

#include "agent.h"

#define FRESH_MAX_CHARS 2000
#define PHONE_MIN_DIGITS 7
#define VOICE_FAILED "[voice note could not be transcribed]"

/* email_char - may appear in the local part */
static bool email_char(char c)
{
    return isalnum((unsigned char)c) || strchr("._%+-", c) != NULL;
}

/* domain_char - may appear in the domain */
static bool domain_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-';
}

/* scrub_emails - local@domain.tld -> [email] */
static void scrub_emails(const char *s, struct tn_buf *out)
{
    size_t n = strlen(s), last = 0;

    for (size_t k = 0; k < n; k++) {
        size_t b = k, e = k + 1;

        if (s[k] != '@')
            continue;
        while (b > last && email_char(s[b - 1]))
            b--;
        while (e < n && domain_char(s[e]))
            e++;
        while (e > k + 1 && (s[e - 1] == '.' || s[e - 1] == '-'))
            e--;
        if (b == k || memchr(s + k + 1, '.', e - k - 1) == NULL)
            continue;
        tn_buf_add(out, s + last, b - last);
        tn_buf_adds(out, "[email]");
        last = e;
        k = e - 1;
    }
    tn_buf_add(out, s + last, n - last);
}

/* date_like - three digit groups shaped like 2026-05-08 or 08.05.2026 */
static bool date_like(const char *s, size_t n)
{
    size_t len[4] = {0}, g = 0;

    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            len[g]++;
        else if (len[g] > 0 && ++g == 4)
            return false;
    }
    if (g != 2)
        return false;
    return (len[0] == 4 && len[1] <= 2 && len[2] <= 2) ||
           (len[0] <= 2 && len[1] <= 2 && (len[2] == 4 || len[2] == 2));
}

/* phone_span - length of a phone-shaped run at s, 0 if none */
static size_t phone_span(const char *s)
{
    size_t j = 0;

    while (s[j] != '\0' && (isdigit((unsigned char)s[j]) || strchr(" +-().", s[j]) != NULL))
        j++;
    while (j > 0 && !isdigit((unsigned char)s[j - 1]))
        j--;
    return j;
}

/* agent_scrub - mask emails, then phone numbers (7 digits or more) */
char *agent_scrub(const char *text)
{
    struct tn_buf mid, out;
    const char *s;
    size_t i = 0;

    tn_buf_init(&mid, 0);
    tn_buf_init(&out, 0);
    scrub_emails(text != NULL ? text : "", &mid);
    s = mid.data != NULL ? mid.data : "";
    while (s[i] != '\0') {
        bool start = isdigit((unsigned char)s[i]) ||
                     ((s[i] == '+' || s[i] == '(') && isdigit((unsigned char)s[i + 1]));
        size_t n = start ? phone_span(s + i) : 0, digits = 0;

        for (size_t k = 0; k < n; k++)
            digits += isdigit((unsigned char)s[i + k]) ? 1 : 0;
        if (n == 0) {
            tn_buf_add(&out, s + i, 1);
            i++;
            continue;
        }
        if (digits >= PHONE_MIN_DIGITS && !date_like(s + i, n))
            tn_buf_adds(&out, "[phone]");
        else
            tn_buf_add(&out, s + i, n);
        i += n;
    }
    tn_buf_free(&mid);
    if (out.data == NULL)
        return tn_xstrdup("");
    return tn_buf_steal(&out, NULL);
}

/* line - "Label: value\n" when value is set */
static void line(struct tn_buf *b, const char *label, const char *value)
{
    if (value != NULL && value[0] != '\0')
        tn_buf_printf(b, "%s: %s\n", label, value);
}

/* questions - the profile's qualification questions as a list */
static void questions(struct tn_buf *b, const char *json_text)
{
    json_t *a = json_text != NULL ? json_loads(json_text, 0, NULL) : NULL;
    size_t i;
    json_t *q;

    if (json_array_size(a) > 0) {
        tn_buf_adds(b, "Qualification questions (ask naturally, one at a time, skip what is "
                       "already known):\n");
        json_array_foreach(a, i, q)
        {
            if (json_is_string(q))
                tn_buf_printf(b, "- %s\n", json_string_value(q));
        }
    }
    json_decref(a);
}

/* lead_facts - what is known about the lead, scrubbed */
static void lead_facts(struct tn_buf *b, const struct agent_load *l)
{
    char *name = l->lead_name != NULL ? agent_scrub(l->lead_name) : NULL;
    char *answers = l->lead_answers != NULL ? agent_scrub(l->lead_answers) : NULL;

    tn_buf_adds(b, "Known about the lead:\n");
    line(b, "- name", name);
    line(b, "- status", l->lead_status);
    if (answers != NULL && strcmp(answers, "{}") != 0)
        line(b, "- answers so far", answers);
    if (l->lead_has_email)
        tn_buf_adds(b, "- email: on file\n");
    tn_free(name);
    tn_free(answers);
}

/* system_text - the system message */
static char *system_text(const struct agent_ctx *ctx, const struct agent_load *l)
{
    struct tn_buf b;
    const char *business = l->business != NULL ? l->business : l->tenant_name;

    tn_buf_init(&b, 0);
    tn_buf_printf(&b,
                  "You are the assistant of %s. You answer leads who write to the business on "
                  "%s, qualify them and help them book.\n",
                  business != NULL ? business : "the business",
                  l->channel_kind != NULL ? l->channel_kind : "chat");
    line(&b, "Current date and time at the business", l->now_text);
    line(&b, "Business time zone", l->tz);
    line(&b, "What the business offers", l->offer);
    line(&b, "Bookable services (exact names for the booking tools)", l->services);
    line(&b, "Opening hours", l->hours);
    line(&b, "Service area", l->area);
    questions(&b, l->questions);
    line(&b, "Tone", l->tone);
    if (l->language != NULL && l->language[0] != '\0')
        tn_buf_printf(&b, "Reply in this language: %s.\n", l->language);
    else
        tn_buf_adds(&b, "Reply in the language the lead writes in.\n");
    line(&b, "Instructions from the business", l->extra);
    lead_facts(&b, l);
    tn_buf_adds(&b,
                "Rules: keep replies short (at most three sentences), plain text for a chat. "
                "Never invent prices, availability or facts not given here. Call update_lead "
                "when you learn the lead's name, email or an answer to a qualification question. "
                "Call handoff_to_human when the lead asks for a person, complains, or you "
                "cannot help. Phone numbers and emails in the chat are masked as [phone] and "
                "[email].\n");
    if (l->services != NULL)
        tn_buf_adds(&b,
                    "Booking: call find_slots before proposing times and offer only the slots it "
                    "returns; book only a slot the lead agreed to, with its start exactly as "
                    "returned. Use list_my_bookings to find a booking to reschedule or cancel. "
                    "Times are in the business time zone. The lead gets a confirmation and "
                    "reminders automatically.\n");
    (void)ctx;
    return tn_buf_steal(&b, NULL);
}

/* add_msg - append one chat message */
static void add_msg(json_t *a, const char *role, const char *text)
{
    json_array_append_new(a, json_pack("{s:s,s:s}", "role", role, "content", text));
}

/* raw_text - what the lead said: a voice note's transcript (with its
 * caption, if any), the body, or NULL */
static char *raw_text(const struct agent_hmsg *m)
{
    struct tn_buf b;

    if (m->transcript == NULL)
        return m->body != NULL && m->body[0] != '\0' ? tn_xstrdup(m->body) : NULL;
    tn_buf_init(&b, 0);
    tn_buf_printf(&b, "[voice note] %s", m->transcript);
    if (m->body != NULL && m->body[0] != '\0')
        tn_buf_printf(&b, "\n%s", m->body);
    return tn_buf_steal(&b, NULL);
}

/* msg_text - scrubbed text, or a marker for media without text */
static char *msg_text(const struct agent_hmsg *m, size_t cap)
{
    char *raw = raw_text(m), *s, *t;

    if (raw == NULL) {
        struct tn_buf b;

        if (agent_voice_is(m->type))
            return tn_xstrdup(VOICE_FAILED);
        tn_buf_init(&b, 0);
        tn_buf_printf(&b, "[%s]", m->type != NULL ? m->type : "message");
        return tn_buf_steal(&b, NULL);
    }
    s = agent_scrub(raw);
    tn_free(raw);
    if (strlen(s) <= cap)
        return s;
    t = tn_xstrndup(s, cap);
    tn_free(s);
    return t;
}

/* agent_prompt_build - system, history within budget, fresh input */
json_t *agent_prompt_build(const struct agent_ctx *ctx, const struct agent_load *l)
{
    json_t *a = json_array();
    char *sys = system_text(ctx, l);
    size_t budget = (size_t)ctx->cfg.history_chars, first = l->nhist;

    add_msg(a, "system", sys);
    tn_free(sys);
    while (first > 0) { /* newest first, until the budget is spent */
        const struct agent_hmsg *h = &l->hist[first - 1];
        const char *b = h->transcript != NULL ? h->transcript : h->body;
        size_t n = b != NULL ? strlen(b) : 16;

        if (n > budget)
            break;
        budget -= n;
        first--;
    }
    for (size_t i = first; i < l->nhist; i++) {
        char *t = msg_text(&l->hist[i], budget + FRESH_MAX_CHARS);

        add_msg(a, l->hist[i].in ? "user" : "assistant", t);
        tn_free(t);
    }
    for (size_t i = 0; i < l->nfresh; i++) {
        char *t = msg_text(&l->fresh[i], FRESH_MAX_CHARS);

        add_msg(a, "user", t);
        tn_free(t);
    }
    return a;
}
