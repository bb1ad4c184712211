#ifndef TN_OAUTH_H
#define TN_OAUTH_H
/*
 * tn_oauth - the sealed tokens of Tern's calendar-connect flow. Every token
 * is tn_seal (AES-256-GCM under the master key ring) over a small JSON
 * object, base64url without padding, so it is both tamper-proof and opaque,
 * and needs no key besides TN_MASTER_KEY:
 *
 *   link   ternctl -> the business owner's browser -> tern-ingest
 *          GET /oauth/google/start?link=<link>   {tenant, resource, exp}
 *   state  tern-ingest -> Google -> tern-ingest  (the OAuth state parameter)
 *          {tenant, resource, exp, nonce, PKCE verifier}
 *   code   tern-ingest -> tern:cal -> tern-calsync (no secret in a stream)
 *          {code, PKCE verifier}
 *
 * Each kind has its own AAD ("tern-oauth-link", "tern-oauth-state",
 * "tern-oauth-code:<tenant>:<request id>"), so one cannot stand in for
 * another, and a code is bound to its tenant and request.
 */
#include <stdint.h>

#include <tn/tn_err.h>

struct tn_keyring;

#define TN_OAUTH_ID_LEN 64 /* room for a uuid or nonce, NUL included */

/* What a link or state carries. Strings NUL-terminated; resource "" if none. */
struct tn_oauth_grant {
    char tenant[TN_OAUTH_ID_LEN];
    char resource[TN_OAUTH_ID_LEN];
    int64_t exp_s;                      /* epoch seconds */
    char nonce[TN_OAUTH_ID_LEN];        /* state only */
    char verifier[TN_OAUTH_ID_LEN * 2]; /* state only: PKCE code_verifier */
};

/* tn_oauth_link_seal - a connect link token for tenant (and resource, may be
 * NULL) valid until exp_s. Returns: new string (tn_free); NULL on bad input
 * (tenant not a uuid). Runs on: any thread. */
char *tn_oauth_link_seal(const struct tn_keyring *k, const char *tenant, const char *resource,
                         int64_t exp_s);

/* tn_oauth_state_seal - a fresh state for g's tenant and resource: draws a
 * new nonce and PKCE verifier into g, sets g->exp_s = now_s + ttl_s.
 * Returns: new string (tn_free). Runs on: any thread. */
char *tn_oauth_state_seal(const struct tn_keyring *k, struct tn_oauth_grant *g, int64_t now_s,
                          int64_t ttl_s);

/* tn_oauth_link_open, tn_oauth_state_open - check and read a token into *g.
 * Errors: TN_EDENIED tampered, foreign or malformed; TN_ETIMEDOUT expired
 * (now_s > exp). Runs on: any thread. */
enum tn_err tn_oauth_link_open(const struct tn_keyring *k, const char *token, int64_t now_s,
                               struct tn_oauth_grant *g);
enum tn_err tn_oauth_state_open(const struct tn_keyring *k, const char *token, int64_t now_s,
                                struct tn_oauth_grant *g);

/* tn_oauth_code_seal - the authorization code and PKCE verifier sealed for
 * tern-calsync, bound to tenant and request_id. Returns: new string. */
char *tn_oauth_code_seal(const struct tn_keyring *k, const char *tenant, const char *request_id,
                         const char *code, const char *verifier);

/* tn_oauth_code_open - the inverse: *code and *verifier new strings (wipe and
 * tn_free after use). Errors: TN_EDENIED. */
enum tn_err tn_oauth_code_open(const struct tn_keyring *k, const char *tenant,
                               const char *request_id, const char *token, char **code,
                               char **verifier);

/* tn_oauth_challenge - the S256 code_challenge of a verifier. Returns: new. */
char *tn_oauth_challenge(const char *verifier);

#endif
