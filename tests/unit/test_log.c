/*
 * log: line format (logfmt and JSON), quoting, level filter, redaction.
 * stderr is redirected to a temporary file with dup2 for each capture, so
 * the test sees exactly the bytes the journal would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "testutil.h"

static char *g_dir;
static int g_saved = -1;
static char g_path[4096];

static void capture_begin(void) {
  snprintf(g_path, sizeof g_path, "%s/stderr.txt", g_dir);
  int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  g_saved = dup(STDERR_FILENO);
  assert_true(g_saved >= 0);
  assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
}

/* Restores stderr and returns what was written (malloc'd). */
static char *capture_end(void) {
  dup2(g_saved, STDERR_FILENO);
  close(g_saved);
  g_saved = -1;
  char *s = tu_read_file(g_path, NULL);
  assert_non_null(s);
  return s;
}

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  return g_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  log_set_json(0);
  log_set_level(LOG_INFO);
  log_redact_clear();
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static void assert_matches(const char *s, const char *re) {
  regex_t rx;
  assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
  int r = regexec(&rx, s, 0, NULL, 0);
  regfree(&rx);
  if (r != 0) fail_msg("\"%s\" does not match /%s/", s, re);
}

static void test_logfmt_line(void **state) {
  (void)state;
  capture_begin();
  log_info("run succeeded", "run=%d recipe=%s", 12, log_q("crash-csv"));
  char *out = capture_end();
  assert_matches(out,
                 "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                 "level=info msg=\"run succeeded\" run=12 recipe=crash-csv\n$");
  free(out);
}

static void test_levels(void **state) {
  (void)state;
  capture_begin();
  log_debug("hidden", "a=%d", 1);
  log_set_level(LOG_WARN);
  log_info("hidden too", "a=%d", 2);
  log_warn("shown", "a=%d", 3);
  log_error("also shown", "a=%d", 4);
  log_set_level(LOG_DEBUG);
  log_debug("debug now", "a=%d", 5);
  char *out = capture_end();
  assert_null(strstr(out, "hidden"));
  assert_non_null(strstr(out, "level=warn msg=\"shown\" a=3\n"));
  assert_non_null(strstr(out, "level=error msg=\"also shown\" a=4\n"));
  assert_non_null(strstr(out, "level=debug msg=\"debug now\" a=5\n"));
  free(out);

  log_level l;
  assert_int_equal(log_level_parse("debug", &l), 0);
  assert_int_equal(l, LOG_DEBUG);
  assert_int_equal(log_level_parse("warn", &l), 0);
  assert_int_equal(l, LOG_WARN);
  assert_int_equal(log_level_parse("error", &l), 0);
  assert_int_equal(l, LOG_ERROR);
  assert_int_equal(log_level_parse("loud", &l), -1);
  assert_int_equal(log_level_parse(NULL, &l), -1);
}

static void test_quoting(void **state) {
  (void)state;
  assert_string_equal(log_q("plain"), "plain");
  assert_string_equal(log_q(""), "\"\"");
  assert_string_equal(log_q(NULL), "\"\"");
  assert_string_equal(log_q("a b"), "\"a b\"");
  assert_string_equal(log_q("k=v"), "\"k=v\"");
  assert_string_equal(log_q("say \"hi\""), "\"say \\\"hi\\\"\"");
  assert_string_equal(log_q("C:\\dir"), "C:\\dir"); /* bare values are literal */
  assert_string_equal(log_q("a \\ b"), "\"a \\\\ b\"");
  assert_string_equal(log_q("two\nlines"), "\"two\\nlines\"");
  assert_string_equal(log_q("cr\rtab\t"), "\"cr\\rtab\\t\"");
  assert_string_equal(log_q("bell\a"), "\"bell\\u0007\"");
  assert_string_equal(log_q("caf\xc3\xa9"), "caf\xc3\xa9");

  /* Eight slots: eight values in one call stay distinct. */
  const char *q[8];
  char in[8][16];
  for (int i = 0; i < 8; i++) {
    snprintf(in[i], sizeof in[i], "v%d", i);
    q[i] = log_q(in[i]);
  }
  for (int i = 0; i < 8; i++) assert_string_equal(q[i], in[i]);
}

static void test_quoting_cut(void **state) {
  (void)state;
  char big[1001];
  memset(big, 'x', 1000);
  big[1000] = '\0';
  const char *q = log_q(big);
  assert_int_equal(strlen(q), 303);
  assert_string_equal(q + 300, "...");

  /* A cut never splits a UTF-8 character: 299 bytes + a 2-byte é. */
  char u[400];
  memset(u, 'a', 299);
  memcpy(u + 299, "\xc3\xa9tail", 7);
  q = log_q(u);
  assert_int_equal(strlen(q), 302);
  assert_string_equal(q + 299, "...");

  /* Escapes may grow a quoted value: 300 newlines become 600 bytes. */
  char nl[301];
  memset(nl, '\n', 300);
  nl[300] = '\0';
  q = log_q(nl);
  assert_int_equal(strlen(q), 602);
}

static void test_redaction(void **state) {
  (void)state;
  log_redact("s3cr3t-token");
  log_redact("s3cr3t-token"); /* registered once */
  log_redact("");             /* ignored */
  char near_cut[400];
  memset(near_cut, 'y', 295);
  memcpy(near_cut + 295, "s3cr3t-token and more", 22);

  capture_begin();
  log_info("got s3cr3t-token in msg", "raw=%s quoted=%s cut=%s", "s3cr3t-token",
           log_q("Bearer s3cr3t-token"), log_q(near_cut));
  char *out = capture_end();
  assert_null(strstr(out, "s3cr3t"));
  assert_non_null(strstr(out, "msg=\"got [redacted] in msg\""));
  assert_non_null(strstr(out, "raw=[redacted] "));
  assert_non_null(strstr(out, "quoted=\"Bearer [redacted]\""));
  free(out);

  /* A secret that contains another is replaced whole. */
  log_redact("s3cr3t");
  capture_begin();
  log_warn("x", "v=%s w=%s", "s3cr3t-token", "s3cr3t");
  out = capture_end();
  assert_non_null(strstr(out, "v=[redacted] w=[redacted]\n"));
  free(out);

  log_redact_clear();
  capture_begin();
  log_info("after clear", "v=%s", "s3cr3t");
  out = capture_end();
  assert_non_null(strstr(out, "v=s3cr3t\n"));
  free(out);
}

static void test_json_mode(void **state) {
  (void)state;
  log_redact("hunter2");
  log_set_json(1);
  capture_begin();
  log_error("run failed", "run=%d error=%s flag empty=%s pw=%s", 12,
            log_q("disk \"full\"\nnow \\ then"), log_q(""), log_q("is hunter2"));
  log_info("no tail", "%s", "");
  char *out = capture_end();

  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  *nl = '\0';
  assert_null(strstr(out, "hunter2"));
  cJSON *o = cJSON_Parse(out);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "error");
  assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "run failed");
  const char *ts = cJSON_GetObjectItem(o, "ts")->valuestring;
  assert_matches(ts, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
  assert_string_equal(cJSON_GetObjectItem(o, "run")->valuestring, "12");
  assert_string_equal(cJSON_GetObjectItem(o, "error")->valuestring, "disk \"full\"\nnow \\ then");
  assert_string_equal(cJSON_GetObjectItem(o, "flag")->valuestring, "true");
  assert_string_equal(cJSON_GetObjectItem(o, "empty")->valuestring, "");
  assert_string_equal(cJSON_GetObjectItem(o, "pw")->valuestring, "is [redacted]");
  cJSON_Delete(o);

  o = cJSON_Parse(nl + 1);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "no tail");
  assert_int_equal(cJSON_GetArraySize(o), 3);
  cJSON_Delete(o);
  free(out);
}

static void test_long_tail(void **state) {
  (void)state;
  size_t n = 40000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'z', n);
  big[n] = '\0';
  capture_begin();
  log_info("big", "a=1 b=%s c=2", big);
  char *out = capture_end();
  /* Cut at the last pair boundary and marked. */
  assert_matches(out, "msg=\"big\" a=1 truncated=true\n$");
  free(out);
  free(big);
}

static void test_one_line_per_call(void **state) {
  (void)state;
  capture_begin();
  for (int i = 0; i < 50; i++) log_info("n", "i=%d v=%s", i, log_q("multi\nline"));
  char *out = capture_end();
  int lines = 0;
  for (char *p = out; *p; p++)
    if (*p == '\n') lines++;
  assert_int_equal(lines, 50);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_logfmt_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quoting_cut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_line_per_call, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
