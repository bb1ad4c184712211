#ifndef TN_OAUTH_TOKEN_H
#define TN_OAUTH_TOKEN_H
/*
 * tn_oauth_token - Google's OAuth token endpoint (protocols.md 4.3, 4.4):
 * its answer read one way for every caller (a refresh in tern-sender and
 * tern-calsync, the authorization-code exchange of a calendar connect), and
 * the refresh request itself. The reader is pure: no I/O, no logging, no
 * clock (the caller passes now_s). Tokens are secrets: the reader keeps them
 * only in the strings it returns, and callers never log them; the error
 * code is not a secret.
 */
#include <stddef.h>
#include <stdint.h>

#include <tn/tn_err.h>
#include <tn/tn_http.h>

#define TN_OAUTH_TOKEN_MAX 4096                     /* access and refresh tokens are shorter */
#define TN_OAUTH_ID_TOKEN_MAX 16384                 /* id_token is shorter */
#define TN_OAUTH_TOKEN_ERROR_LEN 64                 /* the error code kept, NUL included */
#define TN_OAUTH_TOKEN_MAX_RESPONSE (64u << 10)     /* a token endpoint answer read, at most */
#define TN_OAUTH_TOKEN_TTL_DEFAULT_S 3600           /* expires_in absent, 0 or negative */
#define TN_OAUTH_TOKEN_TTL_MAX_S (365 * 24 * 3600L) /* expires_in is capped at a year */

enum tn_oauth_token_outcome {
    TN_OAUTH_TOKEN_OK,          /* 200 with a usable access_token */
    TN_OAUTH_TOKEN_DEAD_GRANT,  /* 400 "invalid_grant": only a new consent helps */
    TN_OAUTH_TOKEN_UNAVAILABLE, /* transport error, 429 or 5xx: may work later */
    TN_OAUTH_TOKEN_REFUSED,     /* anything else: invalid_client, a 200 without a token, ... */
};

/* One answer, read. A token string is kept only when it is a non-empty JSON
 * string shorter than its limit (TN_OAUTH_TOKEN_MAX, TN_OAUTH_ID_TOKEN_MAX);
 * otherwise it counts as absent. The strings are new (release them with
 * tn_oauth_token_clear); a caller may take one by NULLing the field. */
struct tn_oauth_token {
    enum tn_oauth_token_outcome outcome;
    long status;       /* the HTTP status; 0 on a transport error */
    char *access;      /* OK: never NULL; else NULL */
    char *refresh;     /* OK: the refresh_token sent, or NULL */
    char *id_token;    /* OK: the id_token sent, or NULL */
    int64_t expires_s; /* OK: now_s + expires_in (capped at TN_OAUTH_TOKEN_TTL_MAX_S), or
                        * now_s + TN_OAUTH_TOKEN_TTL_DEFAULT_S without a positive one */
    char error[TN_OAUTH_TOKEN_ERROR_LEN]; /* the answer's "error" string, truncated, bytes
                                           * outside printable ASCII as '?'; "" if none */
};

/* tn_oauth_token_read - classify the token endpoint's answer into *out
 * (overwritten; call tn_oauth_token_clear when done). resp is borrowed (the
 * tn_http_done_fn's) and may be NULL when err != TN_OK; any err other than
 * TN_OK reads as TN_OAUTH_TOKEN_UNAVAILABLE (the caller still has err, for
 * TN_ECANCELED). A body that is not a JSON object has no tokens and no
 * error. Runs on: any thread. */
void tn_oauth_token_read(const struct tn_http_response *resp, enum tn_err err, int64_t now_s,
                         struct tn_oauth_token *out);

/* tn_oauth_token_clear - wipe and free t's strings, then zero *t
 * (NULL-safe; t may be cleared twice). Runs on: any thread. */
void tn_oauth_token_clear(struct tn_oauth_token *t);

/* tn_oauth_token_refresh - POST grant_type=refresh_token with client_id,
 * client_secret and refresh_token to url (tn_http_form_post: the body is
 * wiped once sent). All strings are borrowed for the call. timeout_ms as
 * in tn_http_request (0: the client's default); the answer is read up to
 * TN_OAUTH_TOKEN_MAX_RESPONSE. Returns and
 * calls done as tn_http_send (R9: on an error return done never runs).
 * Runs on: loop. */
enum tn_err tn_oauth_token_refresh(struct tn_http *h, const char *url, const char *client_id,
                                   const char *client_secret, const char *refresh_token,
                                   uint32_t timeout_ms, tn_http_done_fn *done, void *arg);

#endif
