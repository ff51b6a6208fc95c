/*
 * google_probe: a token for the section's default credentials proves the
 * key file, the clock and the token endpoint at once (the same exchange
 * every Google connector starts with).  Recipes naming their own
 * credentials are covered by the secret check, not reached here.
 */
#include "net/google_probe.h"

#include <stdlib.h>

#include "core/probe.h"
#include "core/runtime.h"
#include "net/google_auth.h"

/* Any scope proves the exchange; this one is what sheets_append asks for. */
#define PROBE_SCOPE "https://www.googleapis.com/auth/spreadsheets"

typedef struct google_check {
  probe_ctx *p;
  google_auth *auth;
} google_check;

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  google_check *g = ud;
  (void)permanent;
  probe_ctx *p = g->p;
  probe_report(p, "google.credentials", token != NULL,
               token ? "credentials exchanged for an access token" : error);
  /* Freeing the auth from inside its own callback is safe: it delivers
   * from a detached list and touches nothing of itself afterwards. */
  google_auth_free(g->auth);
  free(g);
  probe_release(p);
}

int google_probe(struct runtime *rt, const cJSON *section, probe_ctx *p, perr *e) {
  const cJSON *cred = cJSON_GetObjectItemCaseSensitive(section, "credentials");
  if (!cJSON_IsString(cred)) return 0;
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(section, "token_uri");
  google_check *g = calloc(1, sizeof *g);
  if (!g) return perr_set(e, "out of memory");
  g->p = p;
  probe_hold(p);
  if (!(g->auth = google_auth_new(rt->http, rt->loop, cred->valuestring, PROBE_SCOPE,
                                  cJSON_IsString(uri) ? uri->valuestring : NULL, NULL, e)) ||
      google_auth_token(g->auth, on_token, g, e)) {
    probe_release(p);
    google_auth_free(g->auth);
    free(g);
    return -1;
  }
  return 0;
}
