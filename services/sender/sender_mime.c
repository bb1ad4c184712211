/*
 * NAME
 *	sender_mime - the RFC 5322 message of one outgoing email
 * SYNOPSIS
 *	sender_mime_build(&in, now_ms, &msg, &msgid, &why);
 * DESCRIPTION
 *	Headers Date, From, To, Subject, Message-ID, In-Reply-To, References,
 *	MIME-Version, Content-Type text/plain; charset=UTF-8 and
 *	Content-Transfer-Encoding base64, then the body (CRLF line ends) in
 *	base64 lines of 76 characters. The same message goes to SMTP and, as
 *	base64url, to Gmail's users.messages.send.
 *
 *	Message-ID is <tern.OUTBOUND_ID@DOMAIN> (DOMAIN: the mailbox's):
 *	fixed by the outbound id, so a resend after a lost answer is the same
 *	message to the recipient's mail system and to a reader.
 *
 *	Everything that reaches a header is hostile input (the lead's
 *	address and earlier Message-IDs come from mail Tern received): an
 *	address must be a plain addr-spec (no spaces, CR, LF, <>, quotes,
 *	commas), message ids are checked the same way and dropped when bad,
 *	and CR/LF in a subject become spaces. A subject that is not short
 *	ASCII is sent as RFC 2047 encoded words ("=?UTF-8?B?...?="), split
 *	between UTF-8 characters, one per folded line.
 * RUNS ON
 *	any thread (pure).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tn/tn_buf.h>
#include <tn/tn_crypto.h>
#include <tn/tn_mem.h>

#include "sender.h"

#define SUBJECT_PLAIN_MAX 200 /* longer ASCII subjects are encoded (and folded) */
#define WORD_BYTES 45         /* input bytes per encoded word: 60 base64 characters */

/* token_ok - s is 1..max printable ASCII characters with none of bad */
static bool token_ok(const char *s, size_t max, const char *bad)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c >= 0x7f || strchr(bad, c) != NULL)
            return false;
    }
    return true;
}

/* addr_ok - a plain addr-spec local@domain, nothing a header could abuse */
static bool addr_ok(const char *a)
{
    const char *at = a != NULL ? strchr(a, '@') : NULL;

    return token_ok(a, 254, "<>()[]\\,;:\"") && at != NULL && at != a && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL;
}

/* add_msgid - append id as "<id>" (with or without its brackets given);
 * false (nothing appended) when it is not a plausible message id */
static bool add_msgid(struct tn_buf *b, const char *id)
{
    char tmp[512];
    size_t n = id != NULL ? strlen(id) : 0;

    if (n >= 2 && id[0] == '<' && id[n - 1] == '>') {
        if (n - 2 >= sizeof(tmp))
            return false;
        memcpy(tmp, id + 1, n - 2);
        tmp[n - 2] = '\0';
        id = tmp;
    }
    if (!token_ok(id, 250, "<>()[]\\,;:\"") || strchr(id, '@') == NULL)
        return false;
    tn_buf_printf(b, "<%s>", id);
    return true;
}

/* add_date - "Date: Mon, 30 Nov 2026 13:24:23 +0000" (C names, not the locale's) */
static void add_date(struct tn_buf *b, int64_t now_ms)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    tn_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", wd[tm.tm_wday], tm.tm_mday,
                  mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* plain_ascii - short printable ASCII that can stand as it is */
static bool plain_ascii(const char *s)
{
    size_t n = strlen(s);

    if (n > SUBJECT_PLAIN_MAX || strstr(s, "=?") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    }
    return true;
}

/* add_subject - "Subject: ..." with CR/LF as spaces, encoded words if needed */
static void add_subject(struct tn_buf *b, const char *subject)
{
    char *s = tn_xstrdup(subject);
    size_t n = strlen(s), i = 0;

    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\r' || s[k] == '\n' || s[k] == '\t')
            s[k] = ' ';
    }
    tn_buf_adds(b, "Subject: ");
    if (plain_ascii(s)) {
        tn_buf_adds(b, s);
        n = 0;
    }
    while (i < n) {
        size_t len = n - i > WORD_BYTES ? WORD_BYTES : n - i;
        char *w;

        while (i + len < n && ((unsigned char)s[i + len] & 0xc0) == 0x80)
            len--; /* never split a UTF-8 character between two words */
        w = tn_base64_encode(s + i, len, false);
        tn_buf_printf(b, "%s=?UTF-8?B?%s?=", i > 0 ? "\r\n " : "", w);
        tn_free(w);
        i += len;
    }
    tn_buf_adds(b, "\r\n");
    tn_free(s);
}

/* add_threading - In-Reply-To and References when answering a known email */
static void add_threading(struct tn_buf *b, const struct sender_mime *in)
{
    struct tn_buf refs;
    char *copy, *save = NULL, *tok;

    if (in->in_reply_to == NULL)
        return;
    tn_buf_init(&refs, 0);
    if (!add_msgid(&refs, in->in_reply_to)) {
        tn_buf_free(&refs);
        return;
    }
    tn_buf_printf(b, "In-Reply-To: %s\r\nReferences:", refs.data);
    copy = tn_xstrdup(in->references != NULL ? in->references : "");
    for (tok = strtok_r(copy, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        struct tn_buf one;

        tn_buf_init(&one, 0);
        if (add_msgid(&one, tok) && strcmp(one.data, refs.data) != 0 && b->len < 8000)
            tn_buf_printf(b, "\r\n %s", one.data); /* one id per folded line */
        tn_buf_free(&one);
    }
    tn_buf_printf(b, "\r\n %s\r\n", refs.data);
    tn_free(copy);
    tn_buf_free(&refs);
}

/* add_body - the text with CRLF line ends, base64 in 76-character lines */
static void add_body(struct tn_buf *b, const char *text)
{
    struct tn_buf crlf;
    char *enc;
    size_t n;

    tn_buf_init(&crlf, 0);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r'))
            tn_buf_add(&crlf, "\r", 1);
        tn_buf_add(&crlf, p, 1);
    }
    enc = tn_base64_encode(crlf.data != NULL ? crlf.data : "", crlf.len, false);
    n = strlen(enc);
    for (size_t i = 0; i < n; i += 76) {
        tn_buf_add(b, enc + i, n - i > 76 ? 76 : n - i);
        tn_buf_adds(b, "\r\n");
    }
    tn_free(enc);
    tn_buf_free(&crlf);
}

/* sender_mime_build - see sender.h */
enum tn_err sender_mime_build(const struct sender_mime *in, int64_t now_ms, char **msg,
                              char **msgid, const char **why)
{
    struct tn_buf b, id;

    *msg = NULL;
    *msgid = NULL;
    if (!addr_ok(in->from) || !addr_ok(in->to) || !token_ok(in->outbound_id, 128, "<>@")) {
        *why = "email.address_invalid";
        return TN_EINVAL;
    }
    if (in->text == NULL || in->text[0] == '\0') {
        *why = "text.missing";
        return TN_EINVAL;
    }
    tn_buf_init(&id, 0);
    tn_buf_printf(&id, "<tern.%s@%s>", in->outbound_id, strchr(in->from, '@') + 1);
    tn_buf_init(&b, 0);
    add_date(&b, now_ms);
    tn_buf_printf(&b, "From: <%s>\r\nTo: <%s>\r\n", in->from, in->to);
    if (in->subject != NULL && in->subject[0] != '\0')
        add_subject(&b, in->subject);
    tn_buf_printf(&b, "Message-ID: %s\r\n", id.data);
    add_threading(&b, in);
    tn_buf_adds(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n");
    add_body(&b, in->text);
    *msg = tn_xstrdup(b.data);
    *msgid = tn_xstrdup(id.data);
    tn_buf_free(&b);
    tn_buf_free(&id);
    return TN_OK;
}
