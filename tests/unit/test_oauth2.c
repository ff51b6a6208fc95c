/* oauth2: the refresh-token grant against tests/fake/fake_oauth.py over
 * loopback, on a libev loop; response parsing on the shared examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/fake_server.h"
#include "net/oauth2.h"
#include "testutil.h"

#define FAKE PROMPTD_SOURCE_DIR "/tests/fake/fake_oauth.py"
#define EXAMPLES PROMPTD_SHARED_DIR "/conformance/examples/"

typedef struct got {
  int calls;
  char token[128];
  char error[300];
  int permanent;
} got;

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  got *g = ud;
  g->calls++;
  snprintf(g->token, sizeof g->token, "%s", token ? token : "");
  snprintf(g->error, sizeof g->error, "%s", error ? error : "");
  g->permanent = permanent;
}

typedef struct fixture {
  struct ev_loop *loop;
  http_client *hc;
  pid_t fake;
  int port;
  char url[96];
} fixture;

static void fixture_up(fixture *f, const char *const *args) {
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

static int refreshes(fixture *f) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "python3 -c \"import urllib.request,json;print(json.load("
           "urllib.request.urlopen('http://127.0.0.1:%d/_fake/stats'))['refreshes'])\"",
           f->port);
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p) {
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
  }
  return n;
}

static void test_parse_examples(void **state) {
  (void)state;
  size_t len;
  char *ok = tu_read_file(EXAMPLES "google-oauth-token-response.synthetic.json", &len);
  char *bad = tu_read_file(EXAMPLES "google-oauth-error-invalid-grant.synthetic.json", &len);
  assert_non_null(ok);
  assert_non_null(bad);
  char *token, why[300];
  long exp;
  int permanent;
  assert_int_equal(oauth2_parse_token_response(200, ok, &token, &exp, why, sizeof why, &permanent),
                   0);
  assert_string_equal(token, "ya29.SYNTHETIC-NOT-A-REAL-TOKEN");
  assert_int_equal(exp, 3599);
  free(token);
  assert_int_equal(
      oauth2_parse_token_response(400, bad, &token, &exp, why, sizeof why, &permanent), -1);
  assert_null(token);
  assert_true(permanent);
  assert_non_null(strstr(why, "invalid_grant: Token has been expired or revoked."));
  assert_int_equal(oauth2_parse_token_response(503, "<html>busy</html>", &token, &exp, why,
                                               sizeof why, &permanent),
                   -1);
  assert_false(permanent);
  assert_int_equal(oauth2_parse_token_response(200, "{}", &token, &exp, why, sizeof why,
                                               &permanent),
                   -1);
  free(ok);
  free(bad);
}

static void test_refresh_cache_and_share(void **state) {
  (void)state;
  const char *const args[] = {"--client-secret", "cs", "--refresh-token", "rt-1=ann@example.test",
                              NULL};
  fixture f = {0};
  fixture_up(&f, args);
  setenv("OAUTH_TEST_RT", "rt-1", 1);
  setenv("OAUTH_TEST_CS", "cs", 1);
  oauth2_opts o = {.token_url = f.url, .client_id = "promptd-test",
                   .client_secret_ref = "env:OAUTH_TEST_CS", .refresh_token_ref = "env:OAUTH_TEST_RT"};
  perr e;
  oauth2_source *s = oauth2_source_new(f.hc, f.loop, &o, &e);
  assert_non_null(s);
  /* Three callers at once: one refresh, the same token for all. */
  got g[3] = {0};
  int calls = 0;
  for (int i = 0; i < 3; i++) assert_int_equal(oauth2_get_token(s, on_token, &g[i], &e), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(g[i].calls, 0); /* never from inside */
  for (int i = 0; i < 2000 && g[0].calls + g[1].calls + g[2].calls < 3; i++)
    ev_run(f.loop, EVRUN_ONCE);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].calls, 1);
    assert_string_equal(g[i].error, "");
    assert_string_equal(g[i].token, g[0].token);
  }
  assert_true(strncmp(g[0].token, "at-", 3) == 0);
  assert_int_equal(refreshes(&f), 1);
  /* Cached: answered from the loop, no second refresh. */
  got again = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &again, &e), 0);
  assert_int_equal(again.calls, 0);
  calls = 0;
  for (int i = 0; i < 100 && !again.calls; i++) ev_run(f.loop, EVRUN_ONCE);
  (void)calls;
  assert_string_equal(again.token, g[0].token);
  assert_int_equal(refreshes(&f), 1);
  /* Invalidated (the server refused it): the next ask refreshes. */
  oauth2_invalidate(s);
  got third = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &third, &e), 0);
  run_until(&f, &third.calls, 1);
  assert_string_not_equal(third.token, g[0].token);
  assert_int_equal(refreshes(&f), 2);
  oauth2_source_free(s);
  fixture_down(&f);
}

static void test_expiry_margin(void **state) {
  (void)state;
  const char *const args[] = {"--expires-in", "2", NULL};
  fixture f = {0};
  fixture_up(&f, args);
  setenv("OAUTH_TEST_RT", "rt-test", 1);
  oauth2_opts o = {.token_url = f.url, .client_id = "promptd-test",
                   .refresh_token_ref = "env:OAUTH_TEST_RT", .margin_s = 1};
  perr e;
  oauth2_source *s = oauth2_source_new(f.hc, f.loop, &o, &e);
  got a = {0}, b = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &a, &e), 0);
  run_until(&f, &a.calls, 1);
  usleep(1100 * 1000); /* past expiry minus margin */
  assert_int_equal(oauth2_get_token(s, on_token, &b, &e), 0);
  run_until(&f, &b.calls, 1);
  assert_string_not_equal(a.token, b.token);
  assert_int_equal(refreshes(&f), 2);
  oauth2_source_free(s);
  fixture_down(&f);
}

static void test_errors(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  perr e;
  /* A revoked refresh token: permanent, with the server's words. */
  setenv("OAUTH_TEST_RT", "rt-revoked", 1);
  oauth2_opts o = {.token_url = f.url, .client_id = "promptd-test",
                   .refresh_token_ref = "env:OAUTH_TEST_RT"};
  oauth2_source *s = oauth2_source_new(f.hc, f.loop, &o, &e);
  got g = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &g, &e), 0);
  run_until(&f, &g.calls, 1);
  assert_string_equal(g.token, "");
  assert_true(g.permanent);
  assert_non_null(strstr(g.error, "invalid_grant"));
  assert_null(strstr(g.error, "rt-revoked"));
  oauth2_source_free(s);
  /* A wrong client: permanent too. */
  setenv("OAUTH_TEST_RT", "rt-test", 1);
  oauth2_opts o2 = o;
  o2.client_id = "someone-else";
  s = oauth2_source_new(f.hc, f.loop, &o2, &e);
  got g2 = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &g2, &e), 0);
  run_until(&f, &g2.calls, 1);
  assert_true(g2.permanent);
  assert_non_null(strstr(g2.error, "invalid_client"));
  oauth2_source_free(s);
  /* An unresolvable secret reference fails now. */
  unsetenv("OAUTH_TEST_MISSING");
  oauth2_opts o3 = o;
  o3.refresh_token_ref = "env:OAUTH_TEST_MISSING";
  s = oauth2_source_new(f.hc, f.loop, &o3, &e);
  got g3 = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &g3, &e), -1);
  assert_non_null(strstr(e.msg, "OAUTH_TEST_MISSING"));
  assert_int_equal(g3.calls, 0);
  oauth2_source_free(s);
  /* Nobody listening: transient. */
  char dead[64];
  snprintf(dead, sizeof dead, "http://127.0.0.1:1/token");
  oauth2_opts o4 = o;
  o4.token_url = dead;
  s = oauth2_source_new(f.hc, f.loop, &o4, &e);
  got g4 = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &g4, &e), 0);
  run_until(&f, &g4.calls, 1);
  assert_false(g4.permanent);
  assert_non_null(strstr(g4.error, "token endpoint"));
  oauth2_source_free(s);
  fixture_down(&f);
}

static void test_free_while_refreshing(void **state) {
  (void)state;
  fixture f = {0};
  fixture_up(&f, NULL);
  setenv("OAUTH_TEST_RT", "rt-test", 1);
  oauth2_opts o = {.token_url = f.url, .client_id = "promptd-test",
                   .refresh_token_ref = "env:OAUTH_TEST_RT"};
  perr e;
  oauth2_source *s = oauth2_source_new(f.hc, f.loop, &o, &e);
  got g = {0};
  assert_int_equal(oauth2_get_token(s, on_token, &g, &e), 0);
  oauth2_source_free(s); /* the waiter hears "cancelled" now */
  assert_int_equal(g.calls, 1);
  assert_string_equal(g.error, "cancelled");
  /* The cancelled request completes later; the source goes then. */
  for (int i = 0; i < 50; i++) ev_run(f.loop, EVRUN_NOWAIT);
  assert_int_equal(http_client_in_flight(f.hc), 0);
  fixture_down(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_examples),
      cmocka_unit_test(test_refresh_cache_and_share),
      cmocka_unit_test(test_expiry_margin),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_free_while_refreshing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
