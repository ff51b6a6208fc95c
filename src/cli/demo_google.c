/*
 * demo_google: the demo's Google side.  recipes/forms-to-sheet.yaml needs
 * a form, a sheet and a service account; the demo makes a fresh RSA key,
 * starts promptd's fake Google server (which checks the JWT signed with
 * that key), seeds a form with two responses and a sheet with its header,
 * and writes a copy of the recipe with the ids and the key filled in.  The
 * HTTP here happens before and after the demo's loop runs, never on it.
 */
#include "cli/demo_google.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/fake_server.h"
#include "core/buf.h"
#include "core/clock.h"

#define FORM_ID "1FAIpQLSdemoContactForm"
#define SHEET_ID "1DemoResponsesSheet"
#define EMAIL "promptd-demo@example-project.iam.gserviceaccount.com"

struct demo_google {
  pid_t fake;
  char url[64];
  char recipe[4200];
};

static size_t collect(char *p, size_t size, size_t n, void *ud) {
  return buf_add(ud, p, size * n) ? 0 : size * n;
}

/* One admin call to the fake (loopback, before or after the loop). */
static char *admin(const demo_google *g, const char *method, const char *path, const char *body) {
  CURL *h = curl_easy_init();
  buf out;
  buf_init(&out, 4u << 20);
  char url[300];
  snprintf(url, sizeof url, "%s%s", g->url, path);
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  long status = 0;
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK || status < 200 || status >= 300) {
    buf_release(&out);
    return NULL;
  }
  return buf_detach(&out, NULL);
}

/* A fresh RSA key as PEM, and its modulus in hex. */
static int make_key(char **pem, char **modulus) {
  *pem = *modulus = NULL;
  EVP_PKEY *k = EVP_RSA_gen(2048);
  BIO *bio = BIO_new(BIO_s_mem());
  BIGNUM *n = NULL;
  int ok = k && bio && PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) &&
           EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
  if (ok) {
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    *pem = len > 0 ? mem_dup_str(data, (size_t)len) : NULL;
    char *hex = BN_bn2hex(n);
    *modulus = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
  }
  BN_free(n);
  BIO_free(bio);
  EVP_PKEY_free(k);
  if (!*pem || !*modulus) {
    free(*pem);
    free(*modulus);
    *pem = *modulus = NULL;
    return -1;
  }
  return 0;
}

static char *read_text(const char *path) {
  perr e;
  size_t len;
  return cli_read_file(path, 1u << 20, &len, &e);
}

/* text with every `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *text, const char *from, const char *to) {
  buf b;
  buf_init(&b, 1u << 20);
  size_t fl = strlen(from);
  for (const char *p = text, *hit; p && *p; p = hit ? hit + fl : NULL) {
    hit = strstr(p, from);
    if (buf_add(&b, p, hit ? (size_t)(hit - p) : strlen(p)) || (hit && buf_adds(&b, to))) {
      buf_release(&b);
      return NULL;
    }
  }
  return buf_detach(&b, NULL);
}

demo_google *demo_google_start(const char *rdir, const char *dir, perr *e) {
  char src[4200];
  snprintf(src, sizeof src, "%s/forms-to-sheet.yaml", rdir);
  char *recipe = read_text(src);
  if (!recipe) return NULL; /* no such recipe: nothing to show */
  demo_google *g = calloc(1, sizeof *g);
  char *pem = NULL, *mod = NULL, *filled = NULL, *t1 = NULL, *t2 = NULL;
  if (!g || make_key(&pem, &mod)) {
    perr_set(e, "demo: cannot make a key for the fake Google service account");
    goto fail;
  }
  const char *const args[] = {"--client-email", EMAIL, "--public-key-n", mod, NULL};
  int port;
  if ((g->fake = fake_server_start_args(fake_google_script(), args, &port, e)) < 0) goto fail;
  snprintf(g->url, sizeof g->url, "http://127.0.0.1:%d", port);
  /* The service account's key file, its token_uri the fake's. */
  cJSON *sa = cJSON_CreateObject();
  cJSON_AddStringToObject(sa, "type", "service_account");
  cJSON_AddStringToObject(sa, "client_email", EMAIL);
  cJSON_AddStringToObject(sa, "private_key", pem);
  char tok[128];
  snprintf(tok, sizeof tok, "%s/token", g->url);
  cJSON_AddStringToObject(sa, "token_uri", tok);
  char *sa_text = cJSON_Print(sa);
  cJSON_Delete(sa);
  char sa_path[4200];
  snprintf(sa_path, sizeof sa_path, "%s/google-sa.json", dir);
  FILE *f = sa_text ? fopen(sa_path, "w") : NULL;
  int wrote = f && fputs(sa_text, f) >= 0;
  if (f) fclose(f);
  free(sa_text);
  if (!wrote) {
    perr_set(e, "demo: cannot write %s", sa_path);
    goto fail;
  }
  /* A form with two responses, a sheet with its header. */
  char when[40], resp[2000];
  clock_format_ms(clock_now_ms() - 60000, when, sizeof when);
  snprintf(resp, sizeof resp,
           "{\"responses\":["
           "{\"responseId\":\"demo-1\",\"lastSubmittedTime\":\"%s\",\"answers\":{"
           "\"qa\":{\"questionId\":\"qa\",\"textAnswers\":{\"answers\":[{\"value\":\"Ana Lima\"}]}},"
           "\"qb\":{\"questionId\":\"qb\",\"textAnswers\":{\"answers\":[{\"value\":"
           "\"Do you ship to Portugal?\"}]}}}},"
           "{\"responseId\":\"demo-2\",\"lastSubmittedTime\":\"%s\",\"answers\":{"
           "\"qa\":{\"questionId\":\"qa\",\"textAnswers\":{\"answers\":[{\"value\":\"Tom Becker\"}]}},"
           "\"qb\":{\"questionId\":\"qb\",\"textAnswers\":{\"answers\":[{\"value\":"
           "\"Can I pay by invoice?\"}]}}}}]}",
           when, when);
  char *r1 = admin(g, "POST", "/_fake/forms",
                   "{\"formId\":\"" FORM_ID "\",\"info\":{\"title\":\"Contact\"},\"items\":["
                   "{\"itemId\":\"a\",\"title\":\"Your name\",\"questionItem\":{\"question\":"
                   "{\"questionId\":\"qa\"}}},"
                   "{\"itemId\":\"b\",\"title\":\"Your question\",\"questionItem\":{\"question\":"
                   "{\"questionId\":\"qb\"}}}]}");
  char *r2 = r1 ? admin(g, "POST", "/_fake/forms/" FORM_ID "/responses", resp) : NULL;
  char *r3 = r2 ? admin(g, "POST", "/_fake/sheets/" SHEET_ID,
                        "{\"sheets\":{\"Responses\":[[\"submitted\",\"name\",\"question\","
                        "\"topic\",\"answer\",\"key\"]]}}")
                : NULL;
  int seeded = r3 != NULL;
  free(r1);
  free(r2);
  free(r3);
  if (!seeded) {
    perr_set(e, "demo: cannot seed the fake Google server");
    goto fail;
  }
  /* The recipe, with the ids, the key and a quick poll filled in. */
  char cred[4300];
  snprintf(cred, sizeof cred, "\"file:%s\"", sa_path);
  t1 = replace_all(recipe, "FORM_ID, credentials: file:/etc/promptd/google-sa.json, poll_s: 60",
                   FORM_ID ", credentials: CRED, poll_s: 1, since: \"2000-01-01T00:00:00Z\"");
  t2 = t1 ? replace_all(t1, "file:/etc/promptd/google-sa.json", "CRED") : NULL;
  char *t3 = t2 ? replace_all(t2, "SHEET_ID", SHEET_ID) : NULL;
  filled = t3 ? replace_all(t3, "CRED", cred) : NULL;
  free(t3);
  snprintf(g->recipe, sizeof g->recipe, "%s/forms-to-sheet.yaml", dir);
  f = filled ? fopen(g->recipe, "w") : NULL;
  wrote = f && fputs(filled, f) >= 0;
  if (f) fclose(f);
  if (!wrote) {
    perr_set(e, "demo: cannot write %s", g->recipe);
    goto fail;
  }
  goto done;
fail:
  demo_google_stop(g);
  g = NULL;
done:
  free(recipe);
  free(pem);
  free(mod);
  free(filled);
  free(t1);
  free(t2);
  return g;
}

const char *demo_google_recipe(const demo_google *g) { return g->recipe; }
const char *demo_google_url(const demo_google *g) { return g->url; }
int demo_google_expected(const demo_google *g) { return g ? 2 : 0; }

void demo_google_show(const demo_google *g) {
  char *text = admin(g, "GET", "/_fake/sheets/" SHEET_ID, NULL);
  cJSON *doc = text ? cJSON_Parse(text) : NULL;
  free(text);
  const cJSON *rows = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(doc, "sheets"), "Responses");
  printf("\n== Google Sheet (fake) " SHEET_ID " ==\n");
  const cJSON *row;
  cJSON_ArrayForEach(row, rows) {
    const cJSON *c;
    int first = 1;
    cJSON_ArrayForEach(c, row) {
      printf("%s%s", first ? "" : " | ", cJSON_IsString(c) ? c->valuestring : "");
      first = 0;
    }
    putchar('\n');
  }
  cJSON_Delete(doc);
}

void demo_google_stop(demo_google *g) {
  if (!g) return;
  if (g->fake > 0) fake_server_stop(g->fake);
  free(g);
}
