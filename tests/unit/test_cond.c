/*
 * cond: parse errors name FILE:LINE:COL and the field; evaluation follows
 * the header's semantics (typed eq, ordered lt..gte, contains on strings
 * and arrays, ERE regex with (?i), exists, missing paths, all/any/not).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cond.h"
#include "core/yaml_doc.h"

/* Parses the YAML text of one condition; NULL with e on error. */
static cJSON *parse(const char *text, perr *e) {
  ynode *n = NULL;
  if (ydoc_load_string(text, strlen(text), "c.yaml", &n, e)) fail_msg("yaml: %s", e->msg);
  cJSON *c = NULL;
  int rc = cond_parse(n, "c.yaml", "when", &c, e);
  ynode_free(n);
  if (rc) {
    assert_null(c);
    return NULL;
  }
  assert_non_null(c);
  return c;
}

static cJSON *parse_ok(const char *text) {
  perr e = {{0}};
  cJSON *c = parse(text, &e);
  if (!c) fail_msg("unexpected error: %s", e.msg);
  return c;
}

static void parse_err(const char *text, const char *n1, const char *n2) {
  perr e = {{0}};
  cJSON *c = parse(text, &e);
  if (c) fail_msg("expected an error for: %s", text);
  if (n1 && !strstr(e.msg, n1)) fail_msg("'%s' not in: %s", n1, e.msg);
  if (n2 && !strstr(e.msg, n2)) fail_msg("'%s' not in: %s", n2, e.msg);
}

static const char *CTX =
    "{\"event\":{\"n\":5,\"s\":\"Invoice 42\",\"tags\":[\"a\",\"b\",3],\"nul\":null,"
    "\"body\":{\"email\":\"x@example.com\"},\"items\":[{\"sku\":\"A1\"}]},"
    "\"steps\":{\"qualify\":{\"score\":8,\"summary\":\"hot\"}}}";

/* Evaluates a YAML condition against CTX. */
static int ev(const char *text) {
  cJSON *ctx = cJSON_Parse(CTX);
  assert_non_null(ctx);
  cJSON *c = parse_ok(text);
  int r = cond_eval(c, ctx);
  cJSON_Delete(c);
  cJSON_Delete(ctx);
  return r;
}

static void test_eq_ne(void **state) {
  (void)state;
  assert_true(ev("{ path: event.n, eq: 5 }"));
  assert_false(ev("{ path: event.n, eq: \"5\" }")); /* a number never equals a string */
  assert_true(ev("{ path: event.body.email, eq: x@example.com }"));
  assert_true(ev("{ path: event.nul, eq: null }"));
  assert_true(ev("{ path: event.tags, eq: [a, b, 3] }"));
  assert_true(ev("{ path: event.items.0.sku, eq: A1 }"));
  assert_false(ev("{ path: event.missing, eq: 5 }"));
  assert_true(ev("{ path: event.n, ne: 6 }"));
  assert_false(ev("{ path: event.n, ne: 5 }"));
  assert_true(ev("{ path: event.missing, ne: 5 }")); /* missing: ne holds */
}

static void test_order(void **state) {
  (void)state;
  assert_true(ev("{ path: steps.qualify.score, gte: 7 }"));
  assert_true(ev("{ path: steps.qualify.score, gte: 8 }"));
  assert_false(ev("{ path: steps.qualify.score, gt: 8 }"));
  assert_true(ev("{ path: steps.qualify.score, lt: 8.5 }"));
  assert_true(ev("{ path: steps.qualify.score, lte: 8 }"));
  assert_true(ev("{ path: event.s, gt: Inv }")); /* strings bytewise */
  assert_true(ev("{ path: event.s, lt: invoice }"));
  assert_false(ev("{ path: event.s, lt: 5 }")); /* string vs number: false */
  assert_false(ev("{ path: event.n, gt: \"1\" }"));
  assert_false(ev("{ path: event.missing, lt: 5 }"));
}

static void test_contains(void **state) {
  (void)state;
  assert_true(ev("{ path: event.s, contains: \"ice 4\" }"));
  assert_false(ev("{ path: event.s, contains: invoice }"));
  assert_true(ev("{ path: event.tags, contains: b }"));
  assert_true(ev("{ path: event.tags, contains: 3 }"));
  assert_false(ev("{ path: event.tags, contains: \"3\" }"));
  assert_false(ev("{ path: event.n, contains: 5 }"));
  assert_false(ev("{ path: event.missing, contains: a }"));
}

static void test_regex(void **state) {
  (void)state;
  assert_true(ev("{ path: event.s, regex: \"^Invoice [0-9]+$\" }"));
  assert_false(ev("{ path: event.s, regex: \"^invoice\" }"));
  assert_true(ev("{ path: event.s, regex: \"(?i)^invoice\" }"));
  assert_true(ev("{ path: event.body.email, regex: \"@example\\\\.com$\" }"));
  assert_false(ev("{ path: event.n, regex: \"5\" }")); /* only strings match */
  assert_false(ev("{ path: event.missing, regex: \".*\" }"));
}

static void test_exists(void **state) {
  (void)state;
  assert_true(ev("{ path: event.body.email, exists: true }"));
  assert_false(ev("{ path: event.body.phone, exists: true }"));
  assert_true(ev("{ path: event.body.phone, exists: false }"));
  assert_true(ev("{ path: event.nul, exists: true }")); /* present, even if null */
  assert_false(ev("{ path: steps.notyet.x, exists: true }"));
}

static void test_combinators(void **state) {
  (void)state;
  assert_true(ev("all: [ { path: event.n, eq: 5 }, { path: event.s, contains: Inv } ]"));
  assert_false(ev("all: [ { path: event.n, eq: 5 }, { path: event.s, contains: xyz } ]"));
  assert_true(ev("any: [ { path: event.n, eq: 6 }, { path: event.s, contains: Inv } ]"));
  assert_false(ev("any: [ { path: event.n, eq: 6 }, { path: event.missing, exists: true } ]"));
  assert_true(ev("not: { path: event.n, eq: 6 }"));
  assert_false(ev("not: { path: event.n, eq: 5 }"));
  assert_true(ev("not: { path: event.missing, eq: 5 }"));
  assert_true(
      ev("all:\n  - any: [ { path: event.n, gt: 100 }, { path: event.n, lt: 10 } ]\n"
         "  - not: { all: [ { path: event.s, eq: x } ] }\n"));
}

static void test_json_shape(void **state) {
  (void)state;
  cJSON *c = parse_ok(
      "all:\n  - { path: event.n, gte: 7 }\n  - not: { path: event.s, regex: "
      "\"(?i)x\" }\n");
  char *s = cJSON_PrintUnformatted(c);
  assert_string_equal(s,
                      "{\"all\":[{\"path\":\"event.n\",\"gte\":7},"
                      "{\"not\":{\"path\":\"event.s\",\"regex\":\"(?i)x\"}}]}");
  free(s);
  cJSON_Delete(c);
}

static void test_parse_errors(void **state) {
  (void)state;
  parse_err("{ path: event.s, regex: \"(unclosed\" }",
            "c.yaml:1:25: when.regex: ", "invalid regular expression \"(unclosed\"");
  parse_err("{ path: event.s, regex: \"(?i)[z-a]\" }", "when.regex: invalid regular expression",
            NULL);
  parse_err("{ path: event.n, gte: 7, lt: 9 }", "c.yaml:1:26: when.lt: one operator per condition",
            "already has 'gte'");
  parse_err("{ path: event.n }", "c.yaml:1:1: when: missing an operator", NULL);
  parse_err("{ eq: 5 }", "c.yaml:1:1: when.path: required field is missing", NULL);
  parse_err("{ path: event.n, equals: 5 }", "c.yaml:1:18: when.equals: unknown condition key",
            "allowed: path, eq");
  parse_err("all: []", "c.yaml:1:6: when.all: expected a non-empty list of conditions",
            "an empty list");
  parse_err("any: { path: event.n, eq: 1 }", "when.any: expected a non-empty list", "a mapping");
  parse_err("{ all: [ { path: event.n, eq: 1 } ], path: event.x }",
            "when: 'all' cannot be combined with 'path'", NULL);
  parse_err("{ all: [ { path: event.n, eq: 1 } ], not: { path: event.n, eq: 1 } }",
            "'not' cannot be combined with 'all'", NULL);
  parse_err("{ path: body.email, exists: true }",
            "c.yaml:1:9: when.path: ", "a path starts with event, steps or run");
  parse_err("{ path: event..x, exists: true }", "when.path: expected a dotted path", NULL);
  parse_err("{ path: [a], exists: true }", "when.path: expected a dotted path", "a list");
  parse_err("{ path: event.n, gte: [1] }", "when.gte: expected a number or a string", "a list");
  parse_err("{ path: event.n, gte: true }", "when.gte: expected a number or a string", NULL);
  parse_err("{ path: event.n, exists: yes }", "when.exists: expected true or false", NULL);
  parse_err("{ path: event.n, contains: { a: 1 } }", "when.contains: expected a string", NULL);
  parse_err("all:\n  - { path: event.n, eq: 1 }\n  - { path: event.n, regex: \"[\" }\n",
            "c.yaml:3:29: when.all[1].regex: invalid regular expression", NULL);
  parse_err("not: 5", "when.not: expected a condition", NULL);
  parse_err("{ path: event.s, eq: \"a\\0b\" }",
            "c.yaml:1:22: when.eq: a value may not contain a NUL", NULL);
  parse_err("just text", "c.yaml:1:1: when: expected a condition", "a string");
}

static int collect(void *ud, const char *path) {
  buf *b = ud;
  return buf_printf(b, "%s;", path);
}

static int stop_at_second(void *ud, const char *path) {
  (void)path;
  return ++*(int *)ud == 2 ? 42 : 0;
}

static void test_paths(void **state) {
  (void)state;
  cJSON *c = parse_ok(
      "all:\n  - { path: event.a, eq: 1 }\n  - not: { path: steps.x.y, exists: "
      "true }\n  - any: [ { path: run.id, gt: 0 } ]\n");
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  assert_int_equal(cond_paths(c, collect, &b), 0);
  assert_string_equal(b.data, "event.a;steps.x.y;run.id;");
  buf_release(&b);
  int n = 0;
  assert_int_equal(cond_paths(c, stop_at_second, &n), 42);
  cJSON_Delete(c);
}

static void test_describe(void **state) {
  (void)state;
  cJSON *c = parse_ok(
      "all:\n  - { path: steps.qualify.score, gte: 7 }\n  - any: [ { path: "
      "event.s, regex: \"(?i)x\" }, { path: event.t, exists: false } ]\n  - not: "
      "{ path: event.u, eq: \"a\" }\n");
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  assert_int_equal(cond_describe(c, &b), 0);
  assert_string_equal(b.data,
                      "steps.qualify.score >= 7 and (event.s =~ /(?i)x/ or event.t does "
                      "not exist) and not (event.u == \"a\")");
  buf_release(&b);
  cJSON_Delete(c);
}

static void test_malformed_stored(void **state) {
  (void)state;
  cJSON *ctx = cJSON_Parse(CTX);
  const char *bad[] = {
      "{}",
      "{\"path\":\"event.n\"}",
      "{\"path\":\"event.n\",\"eq\":5,\"ne\":4}",
      "{\"path\":\"event.n\",\"bogus\":5}",
      "{\"all\":[]}",
      "{\"any\":{}}",
      "{\"not\":5}",
      "{\"path\":5,\"eq\":5}",
      "{\"path\":\"event.s\",\"regex\":\"(\"}",
      "[1]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cJSON *c = cJSON_Parse(bad[i]);
    assert_non_null(c);
    if (cond_eval(c, ctx)) fail_msg("malformed condition evaluated true: %s", bad[i]);
    cJSON_Delete(c);
  }
  assert_false(cond_eval(NULL, ctx));
  cJSON_Delete(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eq_ne),
      cmocka_unit_test(test_order),
      cmocka_unit_test(test_contains),
      cmocka_unit_test(test_regex),
      cmocka_unit_test(test_exists),
      cmocka_unit_test(test_combinators),
      cmocka_unit_test(test_json_shape),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_malformed_stored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
