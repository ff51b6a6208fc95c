/*
 * google_auth: access tokens for Google APIs (Forms, Sheets, Business
 * Profile) from a credentials file, as Google's client libraries read it.
 *
 *   "type": "service_account"   client_email, private_key (PEM), token_uri:
 *       a JWT (iss = client_email, scope, aud = token_uri, iat, exp = iat +
 *       3600, sub = the impersonated user for domain-wide delegation)
 *       signed RS256 and exchanged with the JWT bearer grant (RFC 7523).
 *   "type": "authorized_user"   client_id, client_secret, refresh_token:
 *       the refresh-token grant (RFC 6749 section 6), answers read by
 *       oauth2_parse_token_response so both grants classify errors alike.
 *
 * One google_auth per credentials file and scope, shared by every step that
 * uses them: the access token is cached until `margin` (60 s) before it
 * expires, and callers asking while an exchange is in flight wait for that
 * one exchange.  The credentials reference is resolved at each exchange, so
 * a rotated key or a new refresh token is picked up without a restart.
 *
 * Endpoints: token_uri_override (tests, private proxies) is where the
 * request is posted; a service account's JWT audience stays the key's
 * token_uri, because that is what Google checks behind a proxy.
 *
 * Async contract and errors as oauth2.h: google_auth_token fails now (-1, e
 * set, cb never called: the reference does not resolve, the file is not a
 * key promptd can use) or calls cb exactly once, later, from the loop.
 * `permanent` is 1 for invalid_grant / invalid_client / unauthorized_client
 * (a person must act: re-authorize, replace the key, fix the clock), with
 * Google's error_description and a hint.  Messages never hold the private
 * key, the assertion or a token.
 */
#ifndef PROMPTD_NET_GOOGLE_AUTH_H
#define PROMPTD_NET_GOOGLE_AUTH_H

#include <stdint.h>

#include "core/err.h"
#include "net/http_client.h"

#define GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"

typedef struct google_auth google_auth;

/* credentials_ref: a secret reference (file:/..., env:..., cred:...) to a
 * service_account or authorized_user JSON.  scope: space-separated scopes
 * (required for a service account).  token_uri_override: NULL or a URL.
 * subject: NULL or the user a service account impersonates (domain-wide
 * delegation).  hc and loop must outlive the object; strings are copied.
 * Nothing is resolved here: a recipe can be loaded where the key is not. */
google_auth *google_auth_new(http_client *hc, struct ev_loop *loop, const char *credentials_ref,
                             const char *scope, const char *token_uri_override, const char *subject,
                             perr *e);

/* token: valid during the callback only (NULL on error). */
typedef void (*google_token_fn)(void *ud, const char *token, const char *error, int permanent);

int google_auth_token(google_auth *a, google_token_fn cb, void *ud, perr *e);
/* Forgets the cached token (after an API answered 401). */
void google_auth_invalidate(google_auth *a);
/* Waiting callbacks hear "cancelled" from inside this call; an exchange in
 * flight is cancelled and the object released when the HTTP client reports
 * it (at the latest in http_client_free).  NULL is ignored. */
void google_auth_free(google_auth *a);

/* The signed JWT assertion a service account presents at time now_s (Unix
 * seconds): iss, scope, aud, exp = now_s + 3600, iat = now_s, and sub when
 * subject is not NULL.  malloc'd, or NULL with e set.  For tests and the
 * exchange itself. */
char *google_jwt_assertion(const char *client_email, const char *private_key_pem, const char *scope,
                           const char *aud, const char *subject, int64_t now_s, perr *e);

#endif
