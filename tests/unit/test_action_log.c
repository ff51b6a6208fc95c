/*
 * action `log`: prepare renders the message without escaping; start writes
 * one log line and reports OK with the message as output.
 *
 * As in test_csvfile.c, action_done is replaced by a recorder linked into
 * this program (a unit test has no engine run to hand the call to).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/connector.h"
#include "core/log.h"
#include "testutil.h"

extern const action_kind action_log;
static const action_kind *K = &action_log;

static int g_done_calls;
static outcome_class g_cls;
static cJSON *g_output;

void action_done(action_call *c, outcome_class cls, cJSON *output, const char *detail,
                 long retry_after_ms) {
  (void)c, (void)detail, (void)retry_after_ms;
  g_done_calls++;
  g_cls = cls;
  cJSON_Delete(g_output);
  g_output = output;
}

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  g_done_calls = 0;
  return g_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cJSON_Delete(g_output);
  g_output = NULL;
  log_redact_clear();
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static const char *partial(void *ud, const char *name, size_t *len) {
  (void)ud;
  if (strcmp(name, "sig") != 0) return NULL;
  *len = 6;
  return "-- bot";
}

static void test_prepare(void **state) {
  (void)state;
  cJSON *cfg = cJSON_Parse("{\"message\":\"event {{event.n}} <{{event.s}}> {{> sig}}\"}");
  cJSON *ctx = cJSON_Parse("{\"event\":{\"n\":3,\"s\":\"a&b \\\"q\\\"\"}}");
  render_env env = {.partial = partial};
  cJSON *in = NULL;
  perr e = {{0}};
  assert_int_equal(K->validate(cfg, &e), 0);
  assert_int_equal(K->prepare(cfg, ctx, &env, &in, &e), 0);
  assert_string_equal(cJSON_GetObjectItem(in, "message")->valuestring,
                      "event 3 <a&b \"q\"> -- bot");
  assert_string_equal(cJSON_GetObjectItem(in, "level")->valuestring, "info");
  cJSON_Delete(in);
  cJSON_Delete(cfg);

  cfg = cJSON_Parse("{\"message\":\"x\",\"level\":\"warn\"}");
  assert_int_equal(K->prepare(cfg, ctx, NULL, &in, &e), 0);
  assert_string_equal(cJSON_GetObjectItem(in, "level")->valuestring, "warn");
  cJSON_Delete(in);
  cJSON_Delete(cfg);

  cfg = cJSON_Parse("{\"message\":\"x\",\"level\":\"loud\"}");
  assert_int_equal(K->validate(cfg, &e), -1);
  assert_non_null(strstr(e.msg, "level"));
  cJSON_Delete(cfg);

  cfg = cJSON_Parse("{\"message\":\"{{#open}}\"}");
  assert_int_equal(K->prepare(cfg, ctx, NULL, &in, &e), -1);
  assert_null(in);
  assert_non_null(strstr(e.msg, "message"));
  cJSON_Delete(cfg);
  cJSON_Delete(ctx);
}

static void test_start_logs_and_reports(void **state) {
  (void)state;
  cJSON *in = cJSON_Parse("{\"message\":\"event 7 done\",\"level\":\"warn\"}");
  action_call c = {.input = in, .run_id = 42, .attempt = 1, .recipe = "crash-csv",
                   .step_id = "note"};

  char path[4200];
  snprintf(path, sizeof path, "%s/stderr.txt", g_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  perr e = {{0}};
  int rc = K->start(&c, &e);
  dup2(saved, STDERR_FILENO);
  close(saved);

  assert_int_equal(rc, 0);
  assert_int_equal(g_done_calls, 1);
  assert_int_equal(g_cls, OUTCOME_OK);
  assert_string_equal(cJSON_GetObjectItem(g_output, "message")->valuestring, "event 7 done");

  char *out = tu_read_file(path, NULL);
  assert_non_null(out);
  assert_non_null(strstr(out, " level=warn msg=\"recipe log\" recipe=crash-csv run=42 "
                              "step=note message=\"event 7 done\"\n"));
  free(out);
  cJSON_Delete(in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_prepare, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_logs_and_reports, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
