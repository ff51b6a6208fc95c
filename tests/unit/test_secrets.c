/*
 * secrets: reference syntax, the three resolvers, their limits, that every
 * resolved value is redacted from the log, and that no error message ever
 * carries a value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/secrets.h"
#include "testutil.h"

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  unsetenv("CREDENTIALS_DIRECTORY");
  return g_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  log_redact_clear();
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static char *path_in(const char *name) {
  size_t n = strlen(g_dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", g_dir, name);
  return p;
}

static char *ref_for(const char *prefix, const char *rest) {
  size_t n = strlen(prefix) + strlen(rest) + 1;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s%s", prefix, rest);
  return p;
}

static void test_is_ref(void **state) {
  (void)state;
  assert_true(secret_is_ref("env:SLACK_URL"));
  assert_true(secret_is_ref("env:_x1"));
  assert_true(secret_is_ref("file:/etc/promptd/key"));
  assert_true(secret_is_ref("cred:openai.key"));
  assert_false(secret_is_ref(NULL));
  assert_false(secret_is_ref(""));
  assert_false(secret_is_ref("env:"));
  assert_false(secret_is_ref("env:1ABC"));
  assert_false(secret_is_ref("env:A-B"));
  assert_false(secret_is_ref("file:"));
  assert_false(secret_is_ref("file:/"));
  assert_false(secret_is_ref("file:relative/path"));
  assert_false(secret_is_ref("cred:"));
  assert_false(secret_is_ref("cred:a/b"));
  assert_false(secret_is_ref("cred:.."));
  assert_false(secret_is_ref("https://hooks.slack.com/x"));
  assert_false(secret_is_ref("ENV:X"));
}

static void test_env(void **state) {
  (void)state;
  perr e = {{0}};
  setenv("PROMPTD_TEST_SECRET", "tok-123", 1);
  char *v = secret_resolve("env:PROMPTD_TEST_SECRET", &e);
  assert_non_null(v);
  assert_string_equal(v, "tok-123");
  free(v);

  unsetenv("PROMPTD_TEST_SECRET");
  assert_null(secret_resolve("env:PROMPTD_TEST_SECRET", &e));
  assert_non_null(strstr(e.msg, "env:PROMPTD_TEST_SECRET"));
  assert_non_null(strstr(e.msg, "not set"));

  setenv("PROMPTD_TEST_SECRET", "", 1);
  assert_null(secret_resolve("env:PROMPTD_TEST_SECRET", &e));
  assert_non_null(strstr(e.msg, "empty"));
  unsetenv("PROMPTD_TEST_SECRET");

  assert_null(secret_resolve("plain-text", &e));
  assert_non_null(strstr(e.msg, "not a secret reference"));
  assert_null(secret_resolve(NULL, NULL)); /* no perr: still fails cleanly */
}

static void check_file(const char *content, const char *want) {
  perr e = {{0}};
  char *p = path_in("secret");
  assert_int_equal(tu_write_file(p, content), 0);
  char *ref = ref_for("file:", p);
  char *v = secret_resolve(ref, &e);
  if (!v) fail_msg("%s", e.msg);
  assert_string_equal(v, want);
  free(v);
  free(ref);
  free(p);
}

static void test_file(void **state) {
  (void)state;
  check_file("abc", "abc");
  check_file("abc\n", "abc");
  check_file("abc\n\n", "abc\n"); /* one newline only */
  check_file("abc\r\n", "abc");
  check_file("-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n",
             "-----BEGIN KEY-----\nAAAA\n-----END KEY-----");
}

static void test_file_errors(void **state) {
  (void)state;
  perr e = {{0}};
  char *p = path_in("missing");
  char *ref = ref_for("file:", p);
  assert_null(secret_resolve(ref, &e));
  assert_non_null(strstr(e.msg, ref));
  assert_non_null(strstr(e.msg, "No such file"));
  free(ref);
  free(p);

  /* A directory is not a secret. */
  ref = ref_for("file:", g_dir);
  assert_null(secret_resolve(ref, &e));
  assert_non_null(strstr(e.msg, "not a regular file"));
  free(ref);

  /* Over 64 KiB: refused, and the message holds none of the content. */
  p = path_in("big");
  char *big = malloc(70000);
  assert_non_null(big);
  memset(big, 'Q', 69999);
  big[69999] = '\0';
  assert_int_equal(tu_write_file(p, big), 0);
  free(big);
  ref = ref_for("file:", p);
  assert_null(secret_resolve(ref, &e));
  assert_non_null(strstr(e.msg, "larger than 65536"));
  assert_null(strstr(e.msg, "QQQ"));
  free(ref);

  /* Exactly 64 KiB is fine. */
  big = malloc(65537);
  assert_non_null(big);
  memset(big, 'R', 65536);
  big[65536] = '\0';
  assert_int_equal(tu_write_file(p, big), 0);
  free(big);
  ref = ref_for("file:", p);
  char *v = secret_resolve(ref, &e);
  assert_non_null(v);
  assert_int_equal(strlen(v), 65536);
  free(v);
  free(ref);
  free(p);

  /* A NUL inside would cut the value silently: refused. */
  p = path_in("nul");
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "ab\0cd", 5), 5);
  close(fd);
  ref = ref_for("file:", p);
  assert_null(secret_resolve(ref, &e));
  assert_non_null(strstr(e.msg, "NUL"));
  free(ref);
  free(p);

  /* Empty, or only a newline: refused. */
  p = path_in("empty");
  assert_int_equal(tu_write_file(p, "\n"), 0);
  ref = ref_for("file:", p);
  assert_null(secret_resolve(ref, &e));
  assert_non_null(strstr(e.msg, "empty"));
  assert_non_null(strstr(e.msg, ref));
  free(ref);
  free(p);
}

static void test_cred(void **state) {
  (void)state;
  perr e = {{0}};
  assert_null(secret_resolve("cred:api", &e));
  assert_non_null(strstr(e.msg, "cred:api"));
  assert_non_null(strstr(e.msg, "CREDENTIALS_DIRECTORY"));

  char *p = path_in("api");
  assert_int_equal(tu_write_file(p, "cred-value\n"), 0);
  free(p);
  setenv("CREDENTIALS_DIRECTORY", g_dir, 1);
  char *v = secret_resolve("cred:api", &e);
  assert_non_null(v);
  assert_string_equal(v, "cred-value");
  free(v);

  assert_null(secret_resolve("cred:other", &e));
  assert_non_null(strstr(e.msg, "cred:other"));
  unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_resolved_values_are_redacted(void **state) {
  (void)state;
  perr e = {{0}};
  setenv("PROMPTD_TEST_SECRET", "very-secret-value", 1);
  char *v = secret_resolve("env:PROMPTD_TEST_SECRET", &e);
  assert_non_null(v);
  unsetenv("PROMPTD_TEST_SECRET");

  char *p = path_in("stderr.txt");
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  log_info("calling", "url=%s", log_q(v));
  dup2(saved, STDERR_FILENO);
  close(saved);
  char *out = tu_read_file(p, NULL);
  assert_non_null(out);
  assert_null(strstr(out, "very-secret-value"));
  assert_non_null(strstr(out, "url=[redacted]"));
  free(out);
  free(p);
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_is_ref, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cred, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resolved_values_are_redacted, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
