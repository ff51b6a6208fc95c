/*
 * oauth2: access tokens from a refresh token (RFC 6749 section 6), for
 * XOAUTH2 logins (IMAP, SMTP) and OAuth2-protected APIs.
 *
 * One oauth2_source per account: it holds the token endpoint, the client
 * id and the secret references (client secret, refresh token), resolved at
 * each refresh so a rotated secret is picked up.  The access token is
 * cached until `margin_s` (default 60) before it expires; callers asking
 * meanwhile get the cached one; callers asking while a refresh is in flight
 * wait for that one refresh (there is never more than one).
 *
 * Async contract (STYLE.md habit 3): oauth2_get_token fails now (-1, e set,
 * cb never called) or calls cb exactly once, later, from the loop -- even
 * when the cached token could be handed over at once.
 *
 * Errors: `permanent` is 1 when retrying cannot help (the server said
 * invalid_grant / invalid_client / unauthorized_client, or a secret
 * reference does not resolve): the account needs a person.  Transport
 * errors, 5xx and malformed answers are transient.  Error text never holds
 * a token or a secret.
 */
#ifndef PROMPTD_NET_OAUTH2_H
#define PROMPTD_NET_OAUTH2_H

#include <stdint.h>

#include "core/err.h"
#include "net/http_client.h"

typedef struct oauth2_opts {
  const char *token_url;         /* https://oauth2.googleapis.com/token, ... */
  const char *client_id;
  const char *client_secret_ref; /* a secret reference, or NULL (public client) */
  const char *refresh_token_ref; /* a secret reference */
  const char *scope;             /* optional */
  long margin_s;                 /* refresh this long before expiry; 0 = 60 */
  long timeout_ms;               /* token request; 0 = 30000 */
} oauth2_opts;

typedef struct oauth2_source oauth2_source;

/* token: valid during the callback only (NULL on error). */
typedef void (*oauth2_token_fn)(void *ud, const char *token, const char *error, int permanent);

/* hc and its loop must outlive the source.  The options are copied. */
oauth2_source *oauth2_source_new(http_client *hc, struct ev_loop *loop, const oauth2_opts *o,
                                 perr *e);
int oauth2_get_token(oauth2_source *s, oauth2_token_fn cb, void *ud, perr *e);
/* Forgets the cached token (after a server refused it), so the next
 * oauth2_get_token refreshes. */
void oauth2_invalidate(oauth2_source *s);
/* Callbacks still waiting are called with error "cancelled" (from inside
 * this call: the owner is tearing down).  A refresh in flight is cancelled
 * and the source is released when the HTTP client reports it (at the
 * latest in http_client_free).  NULL is ignored. */
void oauth2_source_free(oauth2_source *s);

/* The parts of a token endpoint's answer (JSON), for tests: 0 with
 * *token (malloc'd) and *expires_in (s, 3600 when absent); or -1 with why
 * and *permanent. */
int oauth2_parse_token_response(long status, const char *body, char **token, long *expires_in,
                                char *why, size_t why_len, int *permanent);

#endif
