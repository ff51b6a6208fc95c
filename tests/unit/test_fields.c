/*
 * fields: each field type against a declared table, the message format
 * (FILE:LINE:COL: WHERE.FIELD: expected X, got Y), table-order output,
 * partial names reported to the context, and secrets never echoed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"

static const char *const modes[] = {"fast", "safe", NULL};

static const field_spec inner_tbl[] = {
    {.name = "depth", .type = FT_INT, .flags = FIELD_REQUIRED, .help = "h", .min = 1, .max = 3},
    {.name = NULL},
};

static const field_spec tbl[] = {
    {.name = "title", .type = FT_STRING, .help = "h"},
    {.name = "mode", .type = FT_STRING, .choices = modes, .help = "h"},
    {.name = "body", .type = FT_TEMPLATE, .help = "h"},
    {.name = "token", .type = FT_SECRET, .help = "h"},
    {.name = "count", .type = FT_INT, .help = "h", .min = 1, .max = 10},
    {.name = "any_int", .type = FT_INT, .help = "h"},
    {.name = "ratio", .type = FT_NUMBER, .help = "h", .min = 0, .max = 2},
    {.name = "on", .type = FT_BOOL, .help = "h"},
    {.name = "tags", .type = FT_STRING_LIST, .help = "h"},
    {.name = "cells", .type = FT_TEMPLATE_LIST, .help = "h"},
    {.name = "headers", .type = FT_TEMPLATE_MAP, .help = "h"},
    {.name = "schema", .type = FT_JSON, .help = "h"},
    {.name = "only_if", .type = FT_COND, .help = "h"},
    {.name = "inner", .type = FT_OBJECT, .sub = inner_tbl, .help = "h"},
    {.name = "named", .type = FT_OBJECT_MAP, .sub = inner_tbl, .help = "h"},
    {.name = "listed", .type = FT_OBJECT_LIST, .sub = inner_tbl, .help = "h"},
    {.name = "must", .type = FT_STRING, .flags = FIELD_REQUIRED, .help = "the must field"},
    {.name = NULL},
};

typedef struct seen {
  char names[256];
} seen;

static int on_partial(void *ud, const char *name) {
  seen *s = ud;
  size_t n = strlen(s->names);
  snprintf(s->names + n, sizeof s->names - n, "%s;", name);
  return 0;
}

static int check(const char *yaml, cJSON **out, perr *e, seen *s) {
  ynode *n = NULL;
  if (ydoc_load_string(yaml, strlen(yaml), "f.yaml", &n, e)) fail_msg("yaml: %s", e->msg);
  fields_ctx cx = {.file = "f.yaml", .on_partial = s ? on_partial : NULL, .partial_ud = s};
  int rc = fields_check(tbl, n, &cx, "cfg", out, e);
  ynode_free(n);
  return rc;
}

static void err(const char *yaml, const char *prefix, const char *needle) {
  cJSON *out = (cJSON *)1;
  perr e = {{0}};
  if (!check(yaml, &out, &e, NULL)) fail_msg("expected an error for: %s", yaml);
  assert_null(out);
  if (strncmp(e.msg, prefix, strlen(prefix))) fail_msg("want prefix '%s', got: %s", prefix, e.msg);
  if (needle && !strstr(e.msg, needle)) fail_msg("'%s' not in: %s", needle, e.msg);
}

static void test_all_types_ok(void **state) {
  (void)state;
  const char *y =
      "must: 7\n"
      "inner: { depth: 2 }\n"
      "only_if: { path: event.x, exists: true }\n"
      "schema: { type: object, n: 1, list: [true, ~] }\n"
      "headers: { X-A: \"{{a}}\", X-B: plain }\n"
      "cells: [\"{{> p1}}\", \"{{x}}{{> p2}}{{> p1}}\"]\n"
      "tags: [a, 2]\n"
      "on: false\n"
      "ratio: 1.5\n"
      "any_int: -123456\n"
      "count: 10\n"
      "token: env:API_TOKEN\n"
      "body: \"hi {{name}} {{> sig}}\"\n"
      "mode: safe\n"
      "title: \"A title\"\n";
  cJSON *out = NULL;
  perr e = {{0}};
  seen s = {{0}};
  if (check(y, &out, &e, &s)) fail_msg("%s", e.msg);
  char *j = cJSON_PrintUnformatted(out);
  /* table order, typed values */
  assert_string_equal(j,
                      "{\"title\":\"A title\",\"mode\":\"safe\",\"body\":\"hi {{name}} {{> sig}}\","
                      "\"token\":\"env:API_TOKEN\",\"count\":10,\"any_int\":-123456,\"ratio\":1.5,"
                      "\"on\":false,\"tags\":[\"a\",\"2\"],\"cells\":[\"{{> p1}}\",\"{{x}}{{> "
                      "p2}}{{> p1}}\"],\"headers\":{\"X-A\":\"{{a}}\",\"X-B\":\"plain\"},"
                      "\"schema\":{\"type\":\"object\",\"n\":1,\"list\":[true,null]},\"only_if\":"
                      "{\"path\":\"event.x\",\"exists\":true},\"inner\":{\"depth\":2},\"must\":"
                      "\"7\"}");
  free(j);
  cJSON_Delete(out);
  /* every template field reports its partials, in document order */
  assert_string_equal(s.names, "p1;p2;p1;sig;");
}

static void test_messages(void **state) {
  (void)state;
  err("must: x\ncount: high\n",
      "f.yaml:2:8: cfg.count: expected an integer from 1 to 10, got \"high\"", NULL);
  err("must: x\ncount: 11\n", "f.yaml:2:8: cfg.count: expected an integer from 1 to 10, got 11",
      NULL);
  err("must: x\ncount: \"5\"\n",
      "f.yaml:2:8: cfg.count: expected an integer from 1 to 10, got \"5\"", NULL);
  err("must: x\nany_int: 1e3\n", "f.yaml:2:10: cfg.any_int: expected an integer, got 1e3", NULL);
  err("must: x\nany_int: 123456789012345678901\n", "f.yaml:2:10: cfg.any_int: expected an integer",
      "too large");
  err("must: x\nratio: 2.5\n", "f.yaml:2:8: cfg.ratio: expected a number from 0 to 2, got 2.5",
      NULL);
  err("must: x\nratio: .nan\n", "f.yaml:2:8: cfg.ratio: expected a number from 0 to 2", NULL);
  err("must: x\non: yes\n", "f.yaml:2:5: cfg.on: expected true or false, got \"yes\"", NULL);
  err("must: x\nmode: saf\n", "f.yaml:2:7: cfg.mode: expected one of fast, safe, got \"saf\"",
      "did you mean 'safe'?");
  err("must: x\ntitle: ~\n", "f.yaml:2:8: cfg.title: expected a string, got null", NULL);
  err("must: x\ntitle: {a: 1}\n", "f.yaml:2:8: cfg.title: expected a string, got a mapping", NULL);
  err("must: x\ntitle: \"a\\0b\"\n", "f.yaml:2:8: cfg.title: expected a string without NUL", NULL);
  err("must: x\ntags: a\n", "f.yaml:2:7: cfg.tags: expected a list of strings, got \"a\"", NULL);
  err("must: x\ntags: [a, [b]]\n", "f.yaml:2:11: cfg.tags[1]: expected a string, got a list", NULL);
  err("must: x\ncells: [\"{{a}}\", \"{{/b}}\"]\n",
      "f.yaml:2:18: cfg.cells[1]: invalid template:", NULL);
  err("must: x\nheaders: { X-A: \"{{#a}}\" }\n",
      "f.yaml:2:17: cfg.headers.X-A: invalid template:", "unclosed section");
  err("must: x\nheaders: [a]\n",
      "f.yaml:2:10: cfg.headers: expected a mapping of names to template", NULL);
  err("must: x\nbody: \"{{oops\"\n",
      "f.yaml:2:7: cfg.body: invalid template: line 1, column 1:", "unclosed tag");
  err("must: x\nschema: \"\\0\"\n", "f.yaml:2:9: cfg.schema: text may not contain NUL", NULL);
  err("must: x\nonly_if: { path: event.x }\n", "f.yaml:2:10: cfg.only_if: missing an operator",
      NULL);
  err("must: x\ninner: { depth: 4 }\n",
      "f.yaml:2:17: cfg.inner.depth: expected an integer from 1 to 3, got 4", NULL);
  err("must: x\ninner: {}\n", "f.yaml:2:8: cfg.inner.depth: required field is missing (h)", NULL);
  err("must: x\ninner: { dept: 1 }\n", "f.yaml:2:10: cfg.inner.dept: unknown field 'dept'",
      "did you mean 'depth'? allowed here: depth");
  err("title: x\n", "f.yaml:1:1: cfg.must: required field is missing (the must field)", NULL);
  err("- a\n", "f.yaml:1:1: cfg: expected a mapping, got a list", NULL);
}

static void test_secret_never_echoed(void **state) {
  (void)state;
  const char *y = "must: x\ntoken: sk-live-1234567890\n";
  cJSON *out = NULL;
  perr e = {{0}};
  assert_int_equal(check(y, &out, &e, NULL), -1);
  assert_non_null(strstr(e.msg,
                         "f.yaml:2:8: cfg.token: expected a secret reference (env:NAME, "
                         "file:/path or cred:NAME), got a literal value (not shown)"));
  assert_null(strstr(e.msg, "sk-live"));
  /* a malformed reference is shown: it is a name, not a secret */
  err("must: x\ntoken: \"file:relative/path\"\n", "f.yaml:2:8: cfg.token: expected a secret",
      "got \"file:relative/path\"");
  err("must: x\ntoken: \"env:BAD-NAME\"\n", "f.yaml:2:8: cfg.token:", "env:BAD-NAME");
  /* the three reference forms */
  const char *ok[] = {"must: x\ntoken: env:A_B\n", "must: x\ntoken: file:/etc/key\n",
                      "must: x\ntoken: cred:slack\n"};
  for (size_t i = 0; i < 3; i++) {
    if (check(ok[i], &out, &e, NULL)) fail_msg("%s", e.msg);
    cJSON_Delete(out);
  }
}

static void test_null_means_empty_mapping(void **state) {
  (void)state;
  /* `cfg:` with nothing after it: the missing required field is named */
  ynode *n = NULL;
  perr e = {{0}};
  assert_int_equal(ydoc_load_string("a:\n", 3, "f.yaml", &n, &e), 0);
  fields_ctx cx = {.file = "f.yaml"};
  cJSON *out = NULL;
  assert_int_equal(fields_check(inner_tbl, ynode_get(n, "a"), &cx, "a", &out, &e), -1);
  assert_non_null(strstr(e.msg, "a.depth: required field is missing"));
  static const field_spec none[] = {{.name = NULL}};
  assert_int_equal(fields_check(none, ynode_get(n, "a"), &cx, "a", &out, &e), 0);
  char *j = cJSON_PrintUnformatted(out);
  assert_string_equal(j, "{}");
  free(j);
  cJSON_Delete(out);
  ynode_free(n);
}

static int refuse(void *ud, const char *name) {
  (void)name;
  ++*(int *)ud;
  return -1;
}

static void test_partial_callback_refusal(void **state) {
  (void)state;
  /* a callback that refuses stops the check with an error at the field */
  ynode *n = NULL;
  perr e = {{0}};
  const char *y = "must: m\nbody: \"a {{> x}}\"\n";
  assert_int_equal(ydoc_load_string(y, strlen(y), "f.yaml", &n, &e), 0);
  int calls = 0;
  fields_ctx cx = {.file = "f.yaml", .on_partial = refuse, .partial_ud = &calls};
  cJSON *out = (cJSON *)1;
  assert_int_equal(fields_check(tbl, n, &cx, "", &out, &e), -1);
  assert_null(out);
  assert_int_equal(calls, 1);
  if (strncmp(e.msg, "f.yaml:2:7: body: invalid template:", 35)) fail_msg("%s", e.msg);
  assert_non_null(strstr(e.msg, "'x'"));
  /* without a callback partials are not looked at */
  cx.on_partial = NULL;
  assert_int_equal(fields_check(tbl, n, &cx, "", &out, &e), 0);
  cJSON_Delete(out);
  ynode_free(n);
}

/* Mappings of one shape, by name or in order: each checked, paths named. */
static void test_object_map_and_list(void **state) {
  (void)state;
  cJSON *out = NULL;
  perr e = {{0}};
  if (check("must: x\nnamed: { a: { depth: 1 }, b: { depth: 3 } }\n"
            "listed: [ { depth: 2 }, { depth: 1 } ]\n",
            &out, &e, NULL))
    fail_msg("unexpected error: %s", e.msg);
  char *js = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(out, "named"));
  assert_string_equal(js, "{\"a\":{\"depth\":1},\"b\":{\"depth\":3}}");
  free(js);
  js = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(out, "listed"));
  assert_string_equal(js, "[{\"depth\":2},{\"depth\":1}]");
  free(js);
  cJSON_Delete(out);
  err("must: x\nnamed: { a: { depth: 9 } }\n", "f.yaml:2:", "cfg.named.a.depth");
  err("must: x\nlisted: [ { depth: 1 }, { deep: 1 } ]\n", "f.yaml:2:", "cfg.listed[1]");
  err("must: x\nnamed: [ 1 ]\n", "f.yaml:2:", "a mapping of names to mappings");
  err("must: x\nlisted: { a: 1 }\n", "f.yaml:2:", "a list of mappings");
}

static void test_helpers(void **state) {
  (void)state;
  const char *names[] = {"message", "level", "id", NULL};
  assert_string_equal(fields_did_you_mean("mesage", names), "message");
  assert_string_equal(fields_did_you_mean("levle", names), "level");
  assert_null(fields_did_you_mean("colour", names));
  assert_null(fields_did_you_mean("x", names)); /* "id" is 2 away but as long as itself */
  assert_string_equal(field_type_name(FT_INT), "an integer");
  assert_string_equal(field_type_name(FT_TEMPLATE_LIST), "a list of template strings");
  ynode *n = NULL;
  perr e = {{0}};
  const char *y = "a: \"q\\\"uote\\nline\"\nb: 12\nc: [1]\nd:\n";
  assert_int_equal(ydoc_load_string(y, strlen(y), "f.yaml", &n, &e), 0);
  char out[96];
  fields_describe_value(ynode_get(n, "a"), out, sizeof out);
  assert_string_equal(out, "\"q\\\"uote\\nline\"");
  fields_describe_value(ynode_get(n, "b"), out, sizeof out);
  assert_string_equal(out, "12");
  fields_describe_value(ynode_get(n, "c"), out, sizeof out);
  assert_string_equal(out, "a list");
  fields_describe_value(ynode_get(n, "d"), out, sizeof out);
  assert_string_equal(out, "null");
  ynode_free(n);
  /* long values are shortened */
  char longv[300];
  memset(longv, 'x', sizeof longv);
  memcpy(longv, "a: \"", 4);
  longv[sizeof longv - 2] = '"';
  longv[sizeof longv - 1] = '\0';
  assert_int_equal(ydoc_load_string(longv, strlen(longv), "f.yaml", &n, &e), 0);
  fields_describe_value(ynode_get(n, "a"), out, sizeof out);
  assert_true(strlen(out) < 60);
  assert_non_null(strstr(out, "...\""));
  ynode_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_types_ok),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_secret_never_echoed),
      cmocka_unit_test(test_null_means_empty_mapping),
      cmocka_unit_test(test_partial_callback_refusal),
      cmocka_unit_test(test_helpers),
      cmocka_unit_test(test_object_map_and_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
