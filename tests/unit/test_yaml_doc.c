/*
 * yaml_doc: positions, the refusals (aliases, anchors, tags, duplicate
 * keys, several documents, deep nesting), libyaml's own errors with
 * FILE:LINE:COL, and the core-schema conversion to JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/yaml_doc.h"
#include "testutil.h"

static ynode *load_ok(const char *text) {
  ynode *root = NULL;
  perr e = {{0}};
  int rc = ydoc_load_string(text, strlen(text), "t.yaml", &root, &e);
  if (rc) fail_msg("unexpected error: %s", e.msg);
  assert_non_null(root);
  return root;
}

/* Loads text expecting failure; the message must contain every needle. */
static void load_err(const char *text, size_t len, const char *n1, const char *n2) {
  ynode *root = (ynode *)1;
  perr e = {{0}};
  int rc = ydoc_load_string(text, len, "t.yaml", &root, &e);
  if (rc == 0) fail_msg("expected an error for: %s", text);
  assert_null(root);
  if (n1 && !strstr(e.msg, n1)) fail_msg("'%s' not in: %s", n1, e.msg);
  if (n2 && !strstr(e.msg, n2)) fail_msg("'%s' not in: %s", n2, e.msg);
}

static void test_positions(void **state) {
  (void)state;
  ynode *r = load_ok("name: x\nsteps:\n  - id: a\n    log: { message: hi }\n");
  assert_int_equal(r->kind, YN_MAP);
  assert_int_equal(r->line, 1);
  assert_int_equal(r->col, 1);
  assert_int_equal(r->n, 2);
  assert_int_equal(r->keys[1]->line, 2);
  assert_int_equal(r->keys[1]->col, 1);
  const ynode *name = ynode_get(r, "name");
  assert_int_equal(name->line, 1);
  assert_int_equal(name->col, 7);
  const ynode *steps = ynode_get(r, "steps");
  assert_int_equal(steps->kind, YN_SEQ);
  assert_int_equal(steps->n, 1);
  const ynode *step = steps->items[0];
  assert_int_equal(step->line, 3);
  assert_int_equal(step->col, 5);
  const ynode *log = ynode_get(step, "log");
  assert_int_equal(log->kind, YN_MAP);
  assert_int_equal(log->line, 4);
  assert_int_equal(log->col, 10);
  const ynode *msg = ynode_get(log, "message");
  assert_string_equal(msg->text, "hi");
  assert_int_equal(msg->line, 4);
  assert_int_equal(msg->col, 21);
  assert_null(ynode_get(r, "missing"));
  assert_null(ynode_get(name, "x"));
  ynode_free(r);
}

static void test_scalars(void **state) {
  (void)state;
  ynode *r = load_ok("a: 7\nb: \"7\"\nc: '7'\nd: !!str 7\ne: |\n  two\n  lines\nf: \"nul\\0in\"\n");
  assert_true(ynode_get(r, "a")->plain);
  assert_false(ynode_get(r, "b")->plain);
  assert_false(ynode_get(r, "c")->plain);
  assert_false(ynode_get(r, "d")->plain);
  assert_false(ynode_get(r, "e")->plain);
  assert_string_equal(ynode_get(r, "e")->text, "two\nlines\n");
  const ynode *f = ynode_get(r, "f");
  assert_int_equal(f->len, 6);
  assert_memory_equal(f->text, "nul\0in", 6);
  ynode_free(r);
}

static void test_kind_names(void **state) {
  (void)state;
  ynode *r = load_ok("a: {}\nb: []\nc: x\nd: 3\ne: 2.5\nf: true\ng: ~\nh: \"3\"\ni:\n");
  assert_string_equal(ynode_kind_name(ynode_get(r, "a")), "a mapping");
  assert_string_equal(ynode_kind_name(ynode_get(r, "b")), "a list");
  assert_string_equal(ynode_kind_name(ynode_get(r, "c")), "a string");
  assert_string_equal(ynode_kind_name(ynode_get(r, "d")), "an integer");
  assert_string_equal(ynode_kind_name(ynode_get(r, "e")), "a number");
  assert_string_equal(ynode_kind_name(ynode_get(r, "f")), "a boolean");
  assert_string_equal(ynode_kind_name(ynode_get(r, "g")), "null");
  assert_string_equal(ynode_kind_name(ynode_get(r, "h")), "a string");
  assert_string_equal(ynode_kind_name(ynode_get(r, "i")), "null");
  ynode_free(r);
}

static void test_invalid_yaml(void **state) {
  (void)state;
  const char *bad = "name: x\ntrigger: a: b\n";
  load_err(bad, strlen(bad), "t.yaml:2:11: ", "mapping values are not allowed");
  const char *unclosed = "a: [1, 2\nb: c\n";
  load_err(unclosed, strlen(unclosed), "t.yaml:", "flow sequence");
  const char *tab = "a:\n\tb: 1\n";
  load_err(tab, strlen(tab), "t.yaml:2:", NULL);
  const char *quote = "a: \"open\n";
  load_err(quote, strlen(quote), "t.yaml:", "quoted scalar");
}

static void test_invalid_utf8(void **state) {
  (void)state;
  const char bad[] = "a: ok\nb: x\xff\n";
  load_err(bad, sizeof bad - 1, "t.yaml:2:5: ", "UTF-8");
}

static void test_aliases_refused(void **state) {
  (void)state;
  const char *anchor = "base: &b { x: 1 }\nother: *b\n";
  load_err(anchor, strlen(anchor), "t.yaml:1:7: anchor '&b'", "not supported");
  const char *alias = "other: *b\n";
  /* libyaml itself rejects an undefined alias only when composing; the
   * event stream hands it to us, and we refuse it. */
  load_err(alias, strlen(alias), "t.yaml:1:8: alias '*b'", "not supported");
  const char *key_alias = "a: &k x\n*k : 1\n";
  load_err(key_alias, strlen(key_alias), "t.yaml:1:4: anchor", NULL);
}

static void test_tags(void **state) {
  (void)state;
  const char *t = "a: !custom x\n";
  load_err(t, strlen(t), "t.yaml:1:4: tag '!custom' is not supported", NULL);
  const char *i = "a: !!int 7\n";
  load_err(i, strlen(i), "t.yaml:1:4: tag 'tag:yaml.org,2002:int'", NULL);
  ynode *r = load_ok("a: !!map { b: !!seq [1] }\n");
  ynode_free(r);
}

static void test_duplicate_keys(void **state) {
  (void)state;
  const char *d = "name: a\nsteps: []\nname: b\n";
  load_err(d, strlen(d), "t.yaml:3:1: duplicate key 'name' (first at 1:1)", NULL);
  const char *nested = "a:\n  x: 1\n  y: 2\n  x: 3\n";
  load_err(nested, strlen(nested), "t.yaml:4:3: duplicate key 'x'", NULL);
  /* The same key in different mappings is fine. */
  ynode *r = load_ok("a: { x: 1 }\nb: { x: 2 }\n");
  ynode_free(r);
}

static void test_complex_keys(void **state) {
  (void)state;
  const char *k = "? [a, b]\n: 1\n";
  load_err(k, strlen(k), "t.yaml:1:3: a mapping key must be a plain string", NULL);
  const char *tpl = "log:\n  message: {{event.n}}\n";
  load_err(tpl, strlen(tpl), "t.yaml:2:13: a mapping key must be a plain string",
           "a value that starts with '{{' must be quoted");
  const char *nul = "\"a\\0b\": 1\n";
  load_err(nul, strlen(nul), "t.yaml:1:1: a mapping key may not contain a NUL", NULL);
}

static void test_documents(void **state) {
  (void)state;
  const char *two = "a: 1\n---\nb: 2\n";
  load_err(two, strlen(two), "t.yaml:2:1: only one YAML document per file", NULL);
  ynode *r = load_ok("--- \na: 1\n...\n");
  assert_int_equal(r->kind, YN_MAP);
  ynode_free(r);
  r = load_ok("");
  assert_int_equal(r->kind, YN_SCALAR);
  assert_true(ynode_is_null(r));
  assert_int_equal(r->line, 1);
  ynode_free(r);
  r = load_ok("# only a comment\n");
  assert_true(ynode_is_null(r));
  ynode_free(r);
}

static void test_depth_limit(void **state) {
  (void)state;
  char deep[400];
  size_t n = 0;
  for (int i = 0; i < 100; i++) deep[n++] = '[';
  for (int i = 0; i < 100; i++) deep[n++] = ']';
  deep[n] = '\0';
  load_err(deep, n, "nested deeper than 64 levels", NULL);
  /* 60 levels are fine. */
  n = 0;
  for (int i = 0; i < 60; i++) deep[n++] = '[';
  for (int i = 0; i < 60; i++) deep[n++] = ']';
  deep[n] = '\0';
  ynode *r = load_ok(deep);
  ynode_free(r);
}

static void test_to_json(void **state) {
  (void)state;
  ynode *r = load_ok(
      "n1: ~\nn2: null\nn3:\nt: true\nf: False\ni: -42\nh: 0x1F\no: 0o17\nx: 1.5e3\n"
      "q: \"7\"\ns: hello\ninf: .inf\nnan: .nan\nbig: 123456789012345678901234\n"
      "yes: yes\nlist: [1, a, {k: v}]\n");
  cJSON *j = ynode_to_json(r);
  assert_non_null(j);
  char *s = cJSON_PrintUnformatted(j);
  assert_string_equal(s,
                      "{\"n1\":null,\"n2\":null,\"n3\":null,\"t\":true,\"f\":false,\"i\":-42,"
                      "\"h\":31,\"o\":15,\"x\":1500,\"q\":\"7\",\"s\":\"hello\",\"inf\":\".inf\","
                      "\"nan\":\".nan\",\"big\":\"123456789012345678901234\",\"yes\":\"yes\","
                      "\"list\":[1,\"a\",{\"k\":\"v\"}]}");
  free(s);
  cJSON_Delete(j);
  ynode_free(r);
}

static void test_scalar_readers(void **state) {
  (void)state;
  ynode *r = load_ok("a: 12\nb: \"12\"\nc: 1.25\nd: TRUE\ne: maybe\n");
  double v;
  int is_int;
  assert_true(ynode_number(ynode_get(r, "a"), &v, &is_int));
  assert_true(is_int);
  assert_true(v == 12.0);
  assert_false(ynode_number(ynode_get(r, "b"), &v, &is_int));
  assert_true(ynode_number(ynode_get(r, "c"), &v, &is_int));
  assert_false(is_int);
  assert_int_equal(ynode_bool(ynode_get(r, "d")), 1);
  assert_int_equal(ynode_bool(ynode_get(r, "e")), -1);
  assert_false(ynode_is_null(ynode_get(r, "e")));
  ynode_free(r);
}

static void test_load_file(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4096];
  snprintf(path, sizeof path, "%s/r.yaml", dir);
  assert_int_equal(tu_write_file(path, "a: 1\nb:\n  - x\n  - y: [1, 2]\n"), 0);
  ynode *r = NULL;
  perr e = {{0}};
  assert_int_equal(ydoc_load_file(path, &r, &e), 0);
  assert_int_equal(ynode_get(r, "b")->items[1]->line, 4);
  ynode_free(r);

  snprintf(path, sizeof path, "%s/bad.yaml", dir);
  assert_int_equal(tu_write_file(path, "a: 1\n  b: 2\n"), 0);
  r = NULL;
  assert_int_equal(ydoc_load_file(path, &r, &e), -1);
  assert_null(r);
  char want[4200];
  snprintf(want, sizeof want, "%s:2:4: ", path);
  if (!strstr(e.msg, want)) fail_msg("'%s' not in: %s", want, e.msg);

  snprintf(path, sizeof path, "%s/missing.yaml", dir);
  assert_int_equal(ydoc_load_file(path, &r, &e), -1);
  assert_non_null(strstr(e.msg, "No such file"));
  assert_int_equal(ydoc_load_file(dir, &r, &e), -1);
  assert_non_null(strstr(e.msg, dir));
  tu_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_positions),      cmocka_unit_test(test_scalars),
      cmocka_unit_test(test_kind_names),     cmocka_unit_test(test_invalid_yaml),
      cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_aliases_refused),
      cmocka_unit_test(test_tags),           cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_complex_keys),   cmocka_unit_test(test_documents),
      cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_to_json),
      cmocka_unit_test(test_scalar_readers), cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
