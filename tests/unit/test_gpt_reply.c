/*
 * gpt/reply: the documented example response, a refusal, content parts,
 * missing usage, truncated and malformed JSON, error and empty bodies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt/reply.h"
#include "testutil.h"

static char *example(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/conformance/examples/%s", PROMPTD_SHARED_DIR, name);
  char *s = tu_read_file(path, len);
  if (!s) fail_msg("cannot read %s", path);
  return s;
}

static void t_example_response(void **st) {
  (void)st;
  size_t len;
  char *body = example("openai-chat-completion-response.json", &len);
  gpt_reply r;
  perr e = {{0}};
  assert_int_equal(gpt_reply_parse(body, len, &r, &e), 0);
  assert_string_equal(r.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
  assert_string_equal(r.model, "gpt-5.4");
  assert_string_equal(r.finish_reason, "stop");
  assert_string_equal(r.content, "Hello! How can I assist you today?");
  assert_null(r.refusal);
  assert_null(r.system_fingerprint);
  assert_int_equal(r.has_usage, 1);
  assert_int_equal(r.prompt_tokens, 19);
  assert_int_equal(r.completion_tokens, 10);
  assert_int_equal(r.cached_tokens, 0);
  gpt_reply_release(&r);
  gpt_reply_release(&r); /* harmless twice */

  /* Every proper prefix of the example is truncated JSON, never a reply. */
  for (size_t cut = 1; cut < len - 1; cut += 7) {
    if (gpt_reply_parse(body, cut, &r, &e) == 0) fail_msg("prefix of %zu bytes parsed", cut);
    assert_null(r.id);
    if (!strstr(e.msg, "truncated")) fail_msg("prefix of %zu bytes: %s", cut, e.msg);
  }
  free(body);
}

static void t_refusal_and_fingerprint(void **st) {
  (void)st;
  const char *body =
      "{\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_2f406b9113\","
      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
      "\"refusal\":\"I'm sorry, I cannot help with that request.\"},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":12,\"total_tokens\":1212,"
      "\"prompt_tokens_details\":{\"cached_tokens\":1024}},\"new_field\":{\"x\":[1,2]}}";
  gpt_reply r;
  assert_int_equal(gpt_reply_parse(body, strlen(body), &r, NULL), 0);
  assert_null(r.content);
  assert_string_equal(r.refusal, "I'm sorry, I cannot help with that request.");
  assert_string_equal(r.system_fingerprint, "fp_2f406b9113");
  assert_int_equal(r.prompt_tokens, 1200);
  assert_int_equal(r.cached_tokens, 1024);
  gpt_reply_release(&r);
}

static void t_missing_usage(void **st) {
  (void)st;
  const char *body = "{\"choices\":[{\"message\":{\"content\":\"{\\\"score\\\": 7}\"},"
                     "\"finish_reason\":\"length\"}]}";
  gpt_reply r;
  assert_int_equal(gpt_reply_parse(body, strlen(body), &r, NULL), 0);
  assert_string_equal(r.content, "{\"score\": 7}");
  assert_string_equal(r.finish_reason, "length");
  assert_null(r.id);
  assert_null(r.model);
  assert_int_equal(r.has_usage, 0);
  assert_int_equal(r.prompt_tokens, 0);
  assert_int_equal(r.completion_tokens, 0);
  assert_int_equal(r.cached_tokens, 0);
  gpt_reply_release(&r);
  /* usage without prompt_tokens_details: cached is 0 */
  const char *b2 = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                   "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}";
  assert_int_equal(gpt_reply_parse(b2, strlen(b2), &r, NULL), 0);
  assert_int_equal(r.has_usage, 1);
  assert_int_equal(r.prompt_tokens, 3);
  assert_int_equal(r.cached_tokens, 0);
  assert_null(r.finish_reason);
  gpt_reply_release(&r);
}

static void t_content_parts(void **st) {
  (void)st;
  const char *body = "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},"
                     "{\"type\":\"text\",\"text\":\"lo\"}]}}]}";
  gpt_reply r;
  assert_int_equal(gpt_reply_parse(body, strlen(body), &r, NULL), 0);
  assert_string_equal(r.content, "Hello");
  gpt_reply_release(&r);
}

static void expect_fail(const char *body, size_t len, const char *msg) {
  gpt_reply r;
  perr e = {{0}};
  assert_int_equal(gpt_reply_parse(body, len, &r, &e), -1);
  assert_string_equal(e.msg, msg);
  assert_null(r.id);
  assert_null(r.content);
}

static void t_refused_bodies(void **st) {
  (void)st;
  const char *t = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"Hel";
  expect_fail(t, strlen(t), "response JSON is truncated: it ends after 56 bytes mid-document");
  expect_fail("{\"id\": x}", 9, "response is not valid JSON (error at byte 7 of 9)");
  expect_fail("", 0, "empty response body");
  expect_fail(NULL, 0, "empty response body");
  expect_fail("[1,2]", 5, "response is not a JSON object");
  expect_fail("{\"id\":\"x\"}", 10, "response has no choices");
  expect_fail("{\"choices\":[]}", 14, "response has no choices");
  expect_fail("{\"choices\":[{\"index\":0}]}", 25, "response has no choices[0].message");
  const char *err = "{\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}";
  expect_fail(err, strlen(err), "response is an error: The server had an error");
  /* The id string of a refused body is not leaked (ASan checks). */
  const char *partial = "{\"id\":\"chatcmpl-9\",\"model\":\"m\",\"choices\":[{}]}";
  expect_fail(partial, strlen(partial), "response has no choices[0].message");
  /* Length is honoured: bytes past len are not read. */
  const char *good = "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}GARBAGE";
  gpt_reply r;
  assert_int_equal(gpt_reply_parse(good, strlen(good) - 7, &r, NULL), 0);
  assert_string_equal(r.content, "ok");
  gpt_reply_release(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_example_response),   cmocka_unit_test(t_refusal_and_fingerprint),
      cmocka_unit_test(t_missing_usage),      cmocka_unit_test(t_content_parts),
      cmocka_unit_test(t_refused_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
