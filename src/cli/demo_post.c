/*
 * demo_post: the demo's webhook client.  Sample files of the form
 *
 *   {"webhook": "/hooks/leads",
 *    "sign": {"header": "X-Signature-256", "prefix": "sha256=", "secret_env": "LEADS_SECRET"},
 *    "events": [ {...}, ... ]}
 *
 * are posted to promptd's own webhook server over loopback, each body
 * signed with HMAC-SHA256 (hex) under the secret in that environment
 * variable, exactly as a sender outside would.  The posts run on the loop
 * through the same HTTP client the actions use.
 */
#include "cli/demo_post.h"

#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_client.h"

struct demo_posts {
  http_client *hc;
  int pending, accepted, refused;
};

static void on_answer(void *ud, const http_response *r) {
  demo_posts *p = ud;
  p->pending--;
  if (!r->transport_error && r->status == 202) {
    p->accepted++;
  } else {
    p->refused++;
    printf("webhook post refused: %s%ld %.200s\n", r->transport_error ? r->error : "HTTP ",
           r->status, r->body ? r->body : "");
  }
}

/* "sha256=" + hex(HMAC-SHA256(secret, body)) into out. */
static int sign(const char *secret, const char *prefix, const char *body, char *out, size_t len) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
            mac, &n))
    return -1;
  size_t at = (size_t)snprintf(out, len, "%s", prefix);
  for (unsigned i = 0; i < n && at + 3 <= len; i++, at += 2)
    snprintf(out + at, len - at, "%02x", mac[i]);
  return 0;
}

int demo_posts_secret_env(const cJSON *doc, const char *fallback) {
  const cJSON *env = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(doc, "sign"), "secret_env");
  if (!cJSON_IsString(env) || getenv(env->valuestring)) return 0;
  setenv(env->valuestring, fallback, 1);
  return 1;
}

demo_posts *demo_posts_start(struct ev_loop *loop, int port, const cJSON *docs, perr *e) {
  demo_posts *p = calloc(1, sizeof *p);
  if (!p || !(p->hc = http_client_new(loop, e))) {
    free(p);
    if (!p) perr_set(e, "out of memory");
    return NULL;
  }
  const cJSON *doc;
  cJSON_ArrayForEach(doc, docs) {
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(doc, "webhook");
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(doc, "sign");
    const cJSON *hdr = cJSON_GetObjectItemCaseSensitive(sg, "header");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(sg, "prefix");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(sg, "secret_env");
    const char *secret = cJSON_IsString(env) ? getenv(env->valuestring) : NULL;
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port,
             cJSON_IsString(path) ? path->valuestring : "/");
    const cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(doc, "events")) {
      char *body = cJSON_PrintUnformatted(ev);
      char sig[256] = "", sighdr[400] = "";
      if (body && cJSON_IsString(hdr) && secret &&
          !sign(secret, cJSON_IsString(prefix) ? prefix->valuestring : "", body, sig, sizeof sig))
        snprintf(sighdr, sizeof sighdr, "%s: %s", hdr->valuestring, sig);
      const char *const headers[] = {"Content-Type: application/json",
                                     sighdr[0] ? sighdr : NULL, NULL};
      http_request rq = {.method = "POST", .url = url, .headers = headers, .body = body,
                         .body_len = body ? strlen(body) : 0};
      int rc = body ? http_client_start(p->hc, &rq, on_answer, p, NULL, e) : -1;
      free(body);
      if (rc) {
        demo_posts_free(p);
        return NULL;
      }
      p->pending++;
    }
  }
  return p;
}

int demo_posts_done(const demo_posts *p) { return !p || p->pending == 0; }
int demo_posts_accepted(const demo_posts *p) { return p ? p->accepted : 0; }
int demo_posts_refused(const demo_posts *p) { return p ? p->refused : 0; }

void demo_posts_free(demo_posts *p) {
  if (!p) return;
  http_client_free(p->hc);
  free(p);
}
