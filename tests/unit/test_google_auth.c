/* google_auth: the service-account JWT grant and the authorized_user
 * refresh against tests/fake/fake_google.py over loopback, on a libev loop.
 * The RSA keys are made by `openssl genrsa` at test time; the fake checks
 * the RS256 signature with the public modulus it is started with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ev.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/fake_server.h"
#include "core/buf.h"
#include "net/google_auth.h"
#include "net/jwt.h"
#include "testutil.h"

#define FAKE PROMPTD_SOURCE_DIR "/tests/fake/fake_google.py"
#define EXAMPLES PROMPTD_SHARED_DIR "/conformance/examples/"
#define EMAIL "promptd-test@promptd-test.iam.gserviceaccount.com"
#define SCOPES                                    \
  "https://www.googleapis.com/auth/spreadsheets " \
  "https://www.googleapis.com/auth/forms.responses.readonly"

/* Made once for the group: key A is the service account's, key B a stranger. */
static char *dir, *pem_a, *pem_b, *modulus_a;

typedef struct got {
  int calls;
  char token[128];
  char error[700];
  int permanent;
} got;

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  got *g = ud;
  g->calls++;
  snprintf(g->token, sizeof g->token, "%s", token ? token : "");
  snprintf(g->error, sizeof g->error, "%s", error ? error : "");
  g->permanent = permanent;
}

/* argv's standard output (trimmed), or NULL when it failed. */
static char *capture(const char *const argv[]) {
  int fd[2];
  if (pipe(fd)) return NULL;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(fd[1]);
  buf b;
  buf_init(&b, 1 << 20);
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd[0], chunk, sizeof chunk)) > 0) buf_add(&b, chunk, (size_t)n);
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  char *out = buf_detach(&b, NULL);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(out);
    return NULL;
  }
  size_t len = out ? strlen(out) : 0;
  while (len && (out[len - 1] == '\n' || out[len - 1] == '\r')) out[--len] = '\0';
  return out;
}

static char *make_key(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  const char *const gen[] = {"openssl", "genrsa", "-out", path, "2048", NULL};
  char *quiet = capture(gen);
  free(quiet);
  size_t len;
  return tu_read_file(path, &len);
}

static int group_up(void **state) {
  (void)state;
  dir = tu_tempdir();
  pem_a = make_key("a.pem");
  pem_b = make_key("b.pem");
  char path[512];
  snprintf(path, sizeof path, "%s/a.pem", dir);
  const char *const mod[] = {"openssl", "rsa", "-in", path, "-noout", "-modulus", NULL};
  modulus_a = capture(mod);
  return pem_a && pem_b && modulus_a && strncmp(modulus_a, "Modulus=", 8) == 0 ? 0 : -1;
}

static int group_down(void **state) {
  (void)state;
  free(pem_a);
  free(pem_b);
  free(modulus_a);
  tu_rmtree(dir);
  free(dir);
  return 0;
}

/* A credentials file; returns its file: reference (static storage). */
static const char *write_service_account(const char *name, const char *pem, const char *token_uri) {
  static char ref[600];
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "type", "service_account");
  cJSON_AddStringToObject(j, "project_id", "promptd-test");
  cJSON_AddStringToObject(j, "private_key_id", "0123456789abcdef");
  cJSON_AddStringToObject(j, "private_key", pem);
  cJSON_AddStringToObject(j, "client_email", EMAIL);
  cJSON_AddStringToObject(j, "client_id", "100000000000000000001");
  if (token_uri) cJSON_AddStringToObject(j, "token_uri", token_uri);
  char *text = cJSON_Print(j);
  cJSON_Delete(j);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  assert_int_equal(tu_write_file(path, text), 0);
  free(text);
  snprintf(ref, sizeof ref, "file:%s", path);
  return ref;
}

static const char *write_user(const char *name, const char *refresh_token) {
  static char ref[600];
  char text[512], path[512];
  snprintf(text, sizeof text,
           "{\"type\": \"authorized_user\", \"client_id\": \"user-client.apps.example\", "
           "\"client_secret\": \"cs-42\", \"refresh_token\": \"%s\"}\n",
           refresh_token);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  assert_int_equal(tu_write_file(path, text), 0);
  snprintf(ref, sizeof ref, "file:%s", path);
  return ref;
}

typedef struct fixture {
  struct ev_loop *loop;
  http_client *hc;
  pid_t fake;
  int port;
  char url[96];
} fixture;

static void fixture_up(fixture *f, const char *const *extra) {
  const char *args[24] = {"--client-email",  EMAIL,
                          "--public-key-n",  modulus_a,
                          "--delegate",      "boss@example.test",
                          "--client-id",     "user-client.apps.example",
                          "--client-secret", "cs-42",
                          "--refresh-token", "rt-good"};
  size_t n = 12;
  for (; extra && *extra && n < 23; extra++) args[n++] = *extra;
  args[n] = NULL;
  perr e;
  f->loop = ev_loop_new(EVFLAG_AUTO);
  f->fake = fake_server_start_args(FAKE, args, &f->port, &e);
  assert_true(f->fake > 0);
  f->hc = http_client_new(f->loop, &e);
  assert_non_null(f->hc);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/token", f->port);
}

static void fixture_down(fixture *f) {
  http_client_free(f->hc);
  /* The loop closed clean: nothing of ours is left on it. */
  assert_int_equal(ev_run(f->loop, EVRUN_NOWAIT), 0);
  ev_loop_destroy(f->loop);
  fake_server_stop(f->fake);
}

static void run_until(fixture *f, const int *calls, int want) {
  for (int i = 0; i < 2000 && *calls < want; i++) ev_run(f->loop, EVRUN_ONCE);
  assert_int_equal(*calls, want);
}

static size_t collect(char *p, size_t size, size_t n, void *ud) {
  return buf_add(ud, p, size * n) ? 0 : size * n;
}

/* A blocking call to the fake (admin endpoints, API checks): the status,
 * and the parsed answer in *out when out is not NULL. */
static long call_fake(fixture *f, const char *method, const char *path, const char *json,
                      const char *bearer, cJSON **out) {
  char url[512], auth[300];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (bearer) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
    h = curl_slist_append(h, auth);
  }
  buf b;
  buf_init(&b, 1 << 20);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (json) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (out) *out = b.data ? cJSON_Parse(b.data) : NULL;
  buf_release(&b);
  return status;
}

static int stat_int(fixture *f, const char *name) {
  cJSON *j;
  assert_int_equal(call_fake(f, "GET", "/_fake/stats", NULL, NULL, &j), 200);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
  int n = cJSON_IsNumber(v) ? v->valueint : -1;
  cJSON_Delete(j);
  return n;
}

/* The claims the fake last saw, as a string field. */
static void last_claim(fixture *f, const char *name, char *out, size_t len) {
  cJSON *j;
  assert_int_equal(call_fake(f, "GET", "/_fake/stats", NULL, NULL, &j), 200);
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "last_claims");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, name);
  snprintf(out, len, "%s", cJSON_IsString(v) ? v->valuestring : "");
  cJSON_Delete(j);
}

/* One token request, start to callback. */
static got ask(fixture *f, google_auth *a) {
  got g = {0};
  perr e;
  assert_int_equal(google_auth_token(a, on_token, &g, &e), 0);
  assert_int_equal(g.calls, 0); /* never from inside */
  run_until(f, &g.calls, 1);
  return g;
}

/* Nothing secret in a message: no key, no assertion, no refresh token. */
static void assert_clean(const char *msg) {
  assert_null(strstr(msg, "PRIVATE KEY"));
  assert_null(strstr(msg, "eyJ")); /* base64url of '{"' starts every JWT part */
  assert_null(strstr(msg, "rt-good"));
  assert_null(strstr(msg, "rt-revoked"));
  assert_null(strstr(msg, "cs-42"));
}

static void test_claims_match_example(void **state) {
  (void)state;
  size_t len;
  char *text = tu_read_file(EXAMPLES "google-service-account-jwt-claims.json", &len);
  assert_non_null(text);
  cJSON *want = cJSON_Parse(text);
  free(text);
  const char *iss = cJSON_GetObjectItem(want, "iss")->valuestring;
  const char *scope = cJSON_GetObjectItem(want, "scope")->valuestring;
  const char *aud = cJSON_GetObjectItem(want, "aud")->valuestring;
  int64_t iat = (int64_t)cJSON_GetObjectItem(want, "iat")->valuedouble;
  perr e;
  char *jwt = google_jwt_assertion(iss, pem_a, scope, aud, NULL, iat, &e);
  assert_non_null(jwt);
  char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  assert_non_null(dot2);
  assert_null(strchr(dot2 + 1, '.'));
  assert_null(strchr(jwt, '=')); /* base64url without padding */
  char *header = jwt_b64url_decode(jwt, (size_t)(dot1 - jwt), NULL);
  assert_string_equal(header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
  free(header);
  char *payload = jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL);
  cJSON *got_claims = cJSON_Parse(payload);
  free(payload);
  /* Exactly the example's claims, no more (no sub without a subject). */
  assert_true(cJSON_Compare(got_claims, want, 1));
  cJSON_Delete(got_claims);
  /* The signature verifies with key A's public half over header.payload. */
  size_t siglen;
  char *sig = jwt_b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen);
  assert_int_equal(siglen, 256);
  BIO *bio = BIO_new_mem_buf(pem_a, -1);
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(EVP_DigestVerify(ctx, (unsigned char *)sig, siglen, (unsigned char *)jwt,
                                    (size_t)(dot2 - jwt)),
                   1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  free(sig);
  free(jwt);
  /* With a subject (domain-wide delegation): sub joins the claims. */
  jwt = google_jwt_assertion(iss, pem_a, scope, aud, "boss@example.test", iat, &e);
  dot1 = strchr(jwt, '.');
  dot2 = strchr(dot1 + 1, '.');
  payload = jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), NULL);
  got_claims = cJSON_Parse(payload);
  assert_string_equal(cJSON_GetObjectItem(got_claims, "sub")->valuestring, "boss@example.test");
  assert_int_equal((int64_t)cJSON_GetObjectItem(got_claims, "exp")->valuedouble, iat + 3600);
  cJSON_Delete(got_claims);
  free(payload);
  free(jwt);
  /* A key that is not a PEM key: said plainly, without echoing it. */
  assert_null(google_jwt_assertion(iss, "-----BEGIN PRIVATE KEY-----\nnot a key\n", scope, aud,
                                   NULL, iat, &e));
  assert_non_null(strstr(e.msg, "not a readable PEM private key"));
  assert_null(strstr(e.msg, "not a key"));
  cJSON_Delete(want);
}

static void test_service_account_token_cached(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  assert_non_null(a);
  /* Two steps ask at once: one exchange, one token for both. */
  got g1 = {0}, g2 = {0};
  assert_int_equal(google_auth_token(a, on_token, &g1, &e), 0);
  assert_int_equal(google_auth_token(a, on_token, &g2, &e), 0);
  assert_int_equal(g1.calls + g2.calls, 0);
  for (int i = 0; i < 2000 && g1.calls + g2.calls < 2; i++) ev_run(f.loop, EVRUN_ONCE);
  assert_int_equal(g1.calls, 1);
  assert_int_equal(g2.calls, 1);
  assert_string_equal(g1.error, "");
  assert_true(strncmp(g1.token, "ya29.", 5) == 0);
  assert_string_equal(g1.token, g2.token);
  assert_int_equal(stat_int(&f, "jwt_grants"), 1);
  /* Later asks get the cached token, still from the loop. */
  got g3 = ask(&f, a);
  assert_string_equal(g3.token, g1.token);
  assert_int_equal(stat_int(&f, "token_requests"), 1);
  /* The claims the server saw. */
  char claim[300];
  last_claim(&f, "iss", claim, sizeof claim);
  assert_string_equal(claim, EMAIL);
  last_claim(&f, "scope", claim, sizeof claim);
  assert_string_equal(claim, SCOPES);
  last_claim(&f, "aud", claim, sizeof claim);
  assert_string_equal(claim, f.url);
  last_claim(&f, "sub", claim, sizeof claim);
  assert_string_equal(claim, "");
  /* The token opens the APIs. */
  assert_int_equal(call_fake(&f, "POST", "/_fake/forms", "{\"formId\": \"F1\"}", NULL, NULL), 200);
  assert_int_equal(call_fake(&f, "GET", "/v1/forms/F1", NULL, g1.token, NULL), 200);
  /* An API refused it (expired early): invalidate, a new exchange. */
  assert_int_equal(call_fake(&f, "POST", "/_fake/expire_tokens", "{}", NULL, NULL), 200);
  assert_int_equal(call_fake(&f, "GET", "/v1/forms/F1", NULL, g1.token, NULL), 401);
  google_auth_invalidate(a);
  got g4 = ask(&f, a);
  assert_string_not_equal(g4.token, g1.token);
  assert_int_equal(stat_int(&f, "jwt_grants"), 2);
  assert_int_equal(call_fake(&f, "GET", "/v1/forms/F1", NULL, g4.token, NULL), 200);
  google_auth_free(a);
  fixture_down(&f);
}

static void test_wrong_key_refused(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  /* Key B signs, the server knows A's public key. */
  const char *ref = write_service_account("sa-b.json", pem_b, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  got g = ask(&f, a);
  assert_string_equal(g.token, "");
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, EMAIL));
  assert_non_null(strstr(g.error, "invalid_grant: Invalid JWT Signature."));
  assert_non_null(strstr(g.error, "does not match the service account"));
  assert_clean(g.error);
  assert_int_equal(stat_int(&f, "issued"), 0);
  /* A failed exchange caches nothing: the next ask tries again. */
  got g2 = ask(&f, a);
  assert_true(g2.permanent);
  assert_int_equal(stat_int(&f, "jwt_grants"), 2);
  google_auth_free(a);
  fixture_down(&f);
}

static void test_clock_skew_refused(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  /* The server's clock two hours ahead: our exp is in its past. */
  assert_int_equal(call_fake(&f, "POST", "/_fake/clock", "{\"skew_s\": 7200}", NULL, NULL), 200);
  got g = ask(&f, a);
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, "short-lived token"));
  assert_non_null(strstr(g.error, "check this machine's clock"));
  assert_clean(g.error);
  /* Two hours behind: our iat is in its future. */
  assert_int_equal(call_fake(&f, "POST", "/_fake/clock", "{\"skew_s\": -7200}", NULL, NULL), 200);
  g = ask(&f, a);
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, "check this machine's clock"));
  /* Within the tolerated skew: accepted. */
  assert_int_equal(call_fake(&f, "POST", "/_fake/clock", "{\"skew_s\": 30}", NULL, NULL), 200);
  g = ask(&f, a);
  assert_string_equal(g.error, "");
  assert_true(strncmp(g.token, "ya29.", 5) == 0);
  google_auth_free(a);
  fixture_down(&f);
}

static void test_override_and_delegation(void **state) {
  (void)state;
  /* A proxy in front of Google: requests go to the override, the JWT's
   * audience stays Google's token URI. */
  const char *const extra[] = {"--audience", GOOGLE_TOKEN_URI, NULL};
  fixture f = {0};
  fixture_up(&f, extra);
  const char *ref = write_service_account("sa-google.json", pem_a, GOOGLE_TOKEN_URI);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, f.url, "boss@example.test", &e);
  got g = ask(&f, a);
  assert_string_equal(g.error, "");
  char claim[300];
  last_claim(&f, "aud", claim, sizeof claim);
  assert_string_equal(claim, GOOGLE_TOKEN_URI);
  last_claim(&f, "sub", claim, sizeof claim);
  assert_string_equal(claim, "boss@example.test");
  google_auth_free(a);
  /* A user the account may not impersonate. */
  a = google_auth_new(f.hc, f.loop, ref, SCOPES, f.url, "intern@example.test", &e);
  g = ask(&f, a);
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, "unauthorized_client"));
  assert_non_null(strstr(g.error, "domain-wide delegation"));
  google_auth_free(a);
  fixture_down(&f);
}

static void test_authorized_user(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  perr e;
  const char *ref = write_user("user.json", "rt-good");
  google_auth *a = google_auth_new(f.hc, f.loop, ref, NULL, f.url, NULL, &e);
  assert_non_null(a);
  got g = ask(&f, a);
  assert_string_equal(g.error, "");
  assert_true(strncmp(g.token, "ya29.", 5) == 0);
  got again = ask(&f, a);
  assert_string_equal(again.token, g.token);
  assert_int_equal(stat_int(&f, "refresh_grants"), 1);
  assert_int_equal(
      call_fake(&f, "POST", "/_fake/sheets/S1", "{\"sheets\": {\"Leads\": []}}", NULL, NULL), 200);
  assert_int_equal(call_fake(&f, "GET", "/v4/spreadsheets/S1/values/Leads", NULL, g.token, NULL),
                   200);
  google_auth_free(a);
  /* Revoked: permanent, and the user is told to re-authorize. */
  ref = write_user("user-revoked.json", "rt-revoked");
  a = google_auth_new(f.hc, f.loop, ref, NULL, f.url, NULL, &e);
  g = ask(&f, a);
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, "invalid_grant: Token has been expired or revoked."));
  assert_non_null(strstr(g.error, "must re-authorize"));
  assert_non_null(strstr(g.error, "user-client.apps.example"));
  assert_clean(g.error);
  google_auth_free(a);
  fixture_down(&f);
}

static void test_transient_errors(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  assert_int_equal(call_fake(&f, "POST", "/_fake/fault",
                             "{\"kind\": \"503\", \"target\": \"token\"}", NULL, NULL),
                   200);
  got g = ask(&f, a);
  assert_false(g.permanent);
  assert_non_null(strstr(g.error, "HTTP 503"));
  assert_int_equal(call_fake(&f, "POST", "/_fake/fault",
                             "{\"kind\": \"429\", \"target\": \"token\"}", NULL, NULL),
                   200);
  g = ask(&f, a);
  assert_false(g.permanent);
  assert_non_null(strstr(g.error, "HTTP 429"));
  g = ask(&f, a); /* the faults are spent */
  assert_string_equal(g.error, "");
  google_auth_free(a);
  /* Nobody listening: transient, and says where. */
  a = google_auth_new(f.hc, f.loop, ref, SCOPES, "http://127.0.0.1:1/token", NULL, &e);
  g = ask(&f, a);
  assert_false(g.permanent);
  assert_non_null(strstr(g.error, "token endpoint"));
  google_auth_free(a);
  fixture_down(&f);
}

static void test_refresh_before_expiry(void **state) {
  (void)state;
  /* 61 s tokens and a 60 s margin: stale after one second. */
  const char *const extra[] = {"--expires-in", "61", NULL};
  fixture f = {0};
  fixture_up(&f, extra);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  got g1 = ask(&f, a);
  got g2 = ask(&f, a);
  assert_string_equal(g1.token, g2.token);
  usleep(1100 * 1000);
  got g3 = ask(&f, a);
  assert_string_equal(g3.error, "");
  assert_string_not_equal(g3.token, g1.token);
  assert_int_equal(stat_int(&f, "jwt_grants"), 2);
  google_auth_free(a);
  fixture_down(&f);
}

static void test_scope_refused(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, "   ", NULL, NULL, &e);
  got g = {0};
  /* Blank is no scope: caught before any request. */
  assert_int_equal(google_auth_token(a, on_token, &g, &e), -1);
  assert_non_null(strstr(e.msg, "needs a scope"));
  google_auth_free(a);
  fixture_down(&f);
}

static void test_bad_credentials_fail_now(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  perr e;
  got g = {0};
  /* Not a reference at all. */
  assert_null(google_auth_new(f.hc, f.loop, "/etc/key.json", SCOPES, NULL, NULL, &e));
  assert_non_null(strstr(e.msg, "not a secret reference"));
  /* A reference that does not resolve: fails now, never calls back. */
  unsetenv("GOOGLE_TEST_MISSING");
  google_auth *a = google_auth_new(f.hc, f.loop, "env:GOOGLE_TEST_MISSING", SCOPES, NULL, NULL, &e);
  assert_int_equal(google_auth_token(a, on_token, &g, &e), -1);
  assert_non_null(strstr(e.msg, "GOOGLE_TEST_MISSING"));
  google_auth_free(a);
  /* Credentials of a kind promptd does not read. */
  setenv("GOOGLE_TEST_CREDS", "{\"type\": \"external_account\"}", 1);
  a = google_auth_new(f.hc, f.loop, "env:GOOGLE_TEST_CREDS", SCOPES, NULL, NULL, &e);
  assert_int_equal(google_auth_token(a, on_token, &g, &e), -1);
  assert_non_null(strstr(e.msg, "\"external_account\""));
  google_auth_free(a);
  /* A service account without a scope. */
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  a = google_auth_new(f.hc, f.loop, ref, NULL, NULL, NULL, &e);
  assert_int_equal(google_auth_token(a, on_token, &g, &e), -1);
  assert_non_null(strstr(e.msg, "needs a scope"));
  google_auth_free(a);
  /* A broken private key: named, not shown. */
  ref = write_service_account("sa-broken.json", "-----BEGIN PRIVATE KEY-----\nAAAA\n", f.url);
  a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  assert_int_equal(google_auth_token(a, on_token, &g, &e), -1);
  assert_non_null(strstr(e.msg, EMAIL));
  assert_non_null(strstr(e.msg, "not a readable PEM private key"));
  assert_clean(e.msg);
  google_auth_free(a);
  assert_int_equal(g.calls, 0);
  assert_int_equal(stat_int(&f, "token_requests"), 0);
  fixture_down(&f);
}

static void test_free_while_exchanging(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  const char *ref = write_service_account("sa.json", pem_a, f.url);
  perr e;
  google_auth *a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  got g = {0};
  assert_int_equal(google_auth_token(a, on_token, &g, &e), 0);
  google_auth_free(a); /* the waiter hears "cancelled" now */
  assert_int_equal(g.calls, 1);
  assert_string_equal(g.error, "cancelled");
  assert_false(g.permanent);
  /* The cancelled exchange completes later; the object goes then. */
  for (int i = 0; i < 50 && http_client_in_flight(f.hc); i++) ev_run(f.loop, EVRUN_NOWAIT);
  assert_int_equal(http_client_in_flight(f.hc), 0);
  assert_int_equal(g.calls, 1);
  /* Freed, and the client right after: http_client_free completes the
   * cancelled exchange, and the object is released there. */
  a = google_auth_new(f.hc, f.loop, ref, SCOPES, NULL, NULL, &e);
  got g2 = {0};
  assert_int_equal(google_auth_token(a, on_token, &g2, &e), 0);
  google_auth_free(a);
  assert_string_equal(g2.error, "cancelled");
  fixture_down(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_claims_match_example),
      cmocka_unit_test(test_service_account_token_cached),
      cmocka_unit_test(test_wrong_key_refused),
      cmocka_unit_test(test_clock_skew_refused),
      cmocka_unit_test(test_override_and_delegation),
      cmocka_unit_test(test_authorized_user),
      cmocka_unit_test(test_transient_errors),
      cmocka_unit_test(test_refresh_before_expiry),
      cmocka_unit_test(test_scope_refused),
      cmocka_unit_test(test_bad_credentials_fail_now),
      cmocka_unit_test(test_free_while_exchanging),
  };
  return cmocka_run_group_tests(tests, group_up, group_down);
}
