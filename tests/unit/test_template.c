/*
 * Template engine tests: the official Mustache spec files, read in place
 * from PROMPTD_SHARED_DIR, plus promptd's own additions (escape modes,
 * value formatting, syntax errors, bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/template.h"
#include "testutil.h"

#define SPEC_DIR PROMPTD_SHARED_DIR "/conformance/mustache/"

/* ---- helpers ------------------------------------------------------------ */

static const char *partial_from_json(void *ud, const char *name, size_t *len) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive((const cJSON *)ud, name);
  if (!cJSON_IsString(item)) return NULL;
  *len = strlen(item->valuestring);
  return item->valuestring;
}

/* Renders tpl with the JSON text ctx; returns the output (malloc'd) or NULL
 * with e filled. partials is a JSON object text or NULL. */
static char *render(const char *tpl, const char *ctx, tpl_escape esc, const char *partials,
                    perr *e) {
  cJSON *c = cJSON_Parse(ctx);
  assert_non_null(c);
  cJSON *p = partials ? cJSON_Parse(partials) : NULL;
  tpl_opts o = {.escape = esc, .partial = p ? partial_from_json : NULL, .partial_ud = p};
  char *out = tpl_render_str(tpl, c, &o, e);
  cJSON_Delete(p);
  cJSON_Delete(c);
  return out;
}

static void expect_render(const char *tpl, const char *ctx, tpl_escape esc, const char *want) {
  perr e = {{0}};
  char *got = render(tpl, ctx, esc, NULL, &e);
  if (!got) fail_msg("render of \"%s\" failed: %s", tpl, e.msg);
  if (strcmp(got, want) != 0) {
    print_error("template: \"%s\"\nwant: \"%s\"\ngot:  \"%s\"\n", tpl, want, got);
    free(got);
    fail();
  }
  free(got);
}

static void expect_error(const char *tpl, const char *want_substr) {
  perr e = {{0}};
  if (tpl_check(tpl, strlen(tpl), NULL, NULL, &e) == 0) fail_msg("check of \"%s\" passed", tpl);
  if (!strstr(e.msg, want_substr))
    fail_msg("check of \"%s\": \"%s\" lacks \"%s\"", tpl, e.msg, want_substr);
  /* Rendering reports the same error. */
  perr e2 = {{0}};
  char *got = render(tpl, "{}", TPL_ESCAPE_HTML, NULL, &e2);
  if (got) {
    free(got);
    fail_msg("render of \"%s\" succeeded", tpl);
  }
  assert_string_equal(e.msg, e2.msg);
}

/* ---- the official spec -------------------------------------------------- */

static void run_spec_file(const char *file) {
  char path[4096];
  snprintf(path, sizeof path, "%s%s", SPEC_DIR, file);
  char *text = tu_read_file(path, NULL);
  if (!text) fail_msg("cannot read the Mustache spec file %s (is PROMPTD_SHARED_DIR right?)", path);
  cJSON *doc = cJSON_Parse(text);
  free(text);
  if (!doc) fail_msg("%s is not valid JSON", path);
  const cJSON *tests = cJSON_GetObjectItemCaseSensitive(doc, "tests");
  if (!cJSON_IsArray(tests) || cJSON_GetArraySize(tests) == 0) {
    cJSON_Delete(doc);
    fail_msg("%s holds no tests", path);
  }

  int passed = 0, failed = 0;
  const cJSON *tc;
  cJSON_ArrayForEach(tc, tests) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "name"));
    const char *tpl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "template"));
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "expected"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(tc, "data");
    const cJSON *partials = cJSON_GetObjectItemCaseSensitive(tc, "partials");
    if (!name || !tpl || !want) {
      print_error("%s: malformed test case\n", file);
      failed++;
      continue;
    }
    tpl_opts o = {.escape = TPL_ESCAPE_HTML,
                  .partial = partials ? partial_from_json : NULL,
                  .partial_ud = (void *)partials};
    buf out;
    buf_init(&out, BUF_UNLIMITED);
    perr e = {{0}};
    if (tpl_render(tpl, strlen(tpl), data, &o, &out, &e) != 0) {
      print_error("%s / %s: error: %s\n", file, name, e.msg);
      failed++;
    } else if (strlen(want) != out.len || memcmp(want, out.data ? out.data : "", out.len) != 0) {
      print_error("%s / %s:\n  template: %s\n  want: [%s]\n  got:  [%s]\n", file, name, tpl, want,
                  out.data ? out.data : "");
      failed++;
    } else {
      passed++;
    }
    buf_release(&out);
  }
  cJSON_Delete(doc);
  print_message("%s: %d passed, %d failed\n", file, passed, failed);
  assert_int_equal(failed, 0);
}

static void spec_comments(void **state) { (void)state, run_spec_file("comments.json"); }
static void spec_delimiters(void **state) { (void)state, run_spec_file("delimiters.json"); }
static void spec_interpolation(void **state) { (void)state, run_spec_file("interpolation.json"); }
static void spec_inverted(void **state) { (void)state, run_spec_file("inverted.json"); }
static void spec_sections(void **state) { (void)state, run_spec_file("sections.json"); }
static void spec_partials(void **state) { (void)state, run_spec_file("partials.json"); }

/* ---- escape modes ------------------------------------------------------- */

static void escape_none(void **state) {
  (void)state;
  expect_render("{{s}}", "{\"s\":\"a & b < c > \\\"d\\\" 'e'\\n\"}", TPL_ESCAPE_NONE,
                "a & b < c > \"d\" 'e'\n");
  expect_render("{{{s}}}|{{&s}}", "{\"s\":\"<&>\"}", TPL_ESCAPE_NONE, "<&>|<&>");
}

static void escape_html(void **state) {
  (void)state;
  expect_render("{{s}}", "{\"s\":\"a & b < c > \\\"d\\\"\"}", TPL_ESCAPE_HTML,
                "a &amp; b &lt; c &gt; &quot;d&quot;");
  expect_render("{{{s}}}", "{\"s\":\"<&>\"}", TPL_ESCAPE_HTML, "<&>");
}

static void escape_json(void **state) {
  (void)state;
  expect_render("{\"text\": \"{{s}}\"}", "{\"s\":\"say \\\"hi\\\"\"}", TPL_ESCAPE_JSON,
                "{\"text\": \"say \\\"hi\\\"\"}");
  expect_render("{{s}}", "{\"s\":\"C:\\\\dir\\\\x\"}", TPL_ESCAPE_JSON, "C:\\\\dir\\\\x");
  expect_render("{{s}}", "{\"s\":\"l1\\nl2\\r\\n\\tend\"}", TPL_ESCAPE_JSON,
                "l1\\nl2\\r\\n\\tend");
  expect_render("{{s}}", "{\"s\":\"\\u0001\\u001f\\b\\f\"}", TPL_ESCAPE_JSON,
                "\\u0001\\u001f\\b\\f");
  /* UTF-8 passes through untouched; HTML characters are not special. */
  expect_render("{{s}}", "{\"s\":\"caf\\u00e9 \\u2603 \\ud83d\\ude00 <&>\"}", TPL_ESCAPE_JSON,
                "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 <&>");
  /* Raw tags never escape. */
  expect_render("{{{s}}}", "{\"s\":\"a\\\"b\\n\"}", TPL_ESCAPE_JSON, "a\"b\n");
  /* The result is valid inside a JSON string. */
  perr e = {{0}};
  char *out = render("{\"v\":\"{{s}}\"}", "{\"s\":\"q\\\" b\\\\ n\\n c\\u0002 \\u00fc\"}",
                     TPL_ESCAPE_JSON, NULL, &e);
  assert_non_null(out);
  cJSON *back = cJSON_Parse(out);
  assert_non_null(back);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(back, "v")),
                      "q\" b\\ n\n c\x02 \xc3\xbc");
  cJSON_Delete(back);
  free(out);
}

/* ---- values ------------------------------------------------------------- */

static void numbers(void **state) {
  (void)state;
  expect_render("{{n}}", "{\"n\":85}", TPL_ESCAPE_NONE, "85");
  expect_render("{{n}}", "{\"n\":85.0}", TPL_ESCAPE_NONE, "85");
  expect_render("{{n}}", "{\"n\":-7}", TPL_ESCAPE_NONE, "-7");
  expect_render("{{n}}", "{\"n\":-0.0}", TPL_ESCAPE_NONE, "0");
  expect_render("{{n}}", "{\"n\":1.21}", TPL_ESCAPE_NONE, "1.21");
  expect_render("{{n}}", "{\"n\":0.1}", TPL_ESCAPE_NONE, "0.1");
  expect_render("{{n}}", "{\"n\":3.14159}", TPL_ESCAPE_HTML, "3.14159");
  expect_render("{{n}}", "{\"n\":1e15}", TPL_ESCAPE_NONE, "1000000000000000");
  expect_render("{{n}}", "{\"n\":9007199254740993}", TPL_ESCAPE_NONE, "9007199254740992");
  expect_render("{{n}}", "{\"n\":2.5e-7}", TPL_ESCAPE_NONE, "2.5e-07");
  expect_render("{{#l}}{{.}},{{/l}}", "{\"l\":[1,2.5,-3]}", TPL_ESCAPE_NONE, "1,2.5,-3,");
}

static void scalars_and_missing(void **state) {
  (void)state;
  expect_render("[{{t}}|{{f}}|{{n}}|{{missing}}|{{a.b.c}}|{{{n}}}]",
                "{\"t\":true,\"f\":false,\"n\":null}", TPL_ESCAPE_NONE, "[true|false||||]");
  expect_render("{{#s}}yes{{/s}}{{^s}}no{{/s}}", "{\"s\":\"\"}", TPL_ESCAPE_NONE, "no");
  expect_render("{{#z}}zero is {{z}}{{/z}}", "{\"z\":0}", TPL_ESCAPE_NONE, "zero is 0");
  expect_render("{{items.1.sku}}", "{\"items\":[{\"sku\":\"a\"},{\"sku\":\"b\"}]}",
                TPL_ESCAPE_NONE, "b");
  /* No context at all renders as if every name were missing. */
  perr e = {{0}};
  char *out = tpl_render_str("a{{x}}b", NULL, NULL, &e);
  assert_non_null(out);
  assert_string_equal(out, "ab");
  free(out);
}

static void objects_as_json(void **state) {
  (void)state;
  const char *ctx = "{\"o\":{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{}},\"l\":[1,\"two\"]}";
  expect_render("{{{o}}}", ctx, TPL_ESCAPE_NONE, "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{}}");
  expect_render("{{o}}", ctx, TPL_ESCAPE_NONE, "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{}}");
  expect_render("{{l}}", ctx, TPL_ESCAPE_NONE, "[1,\"two\"]");
  expect_render("{{l}}", ctx, TPL_ESCAPE_HTML, "[1,&quot;two&quot;]");
  expect_render("\"{{l}}\"", ctx, TPL_ESCAPE_JSON, "\"[1,\\\"two\\\"]\"");
  expect_render("{{.}}", "[1,2]", TPL_ESCAPE_NONE, "[1,2]");
}

/* ---- syntax errors ------------------------------------------------------ */

static void error_unclosed_tag(void **state) {
  (void)state;
  expect_error("Hello\n\nab {{name", "line 3, column 4: unclosed tag '{{'");
  expect_error("{{{raw}}", "line 1, column 1: unclosed tag '{{'");
  expect_error("{{=<% %>=}}\n<%x", "line 2, column 1: unclosed tag '<%'");
  /* Columns count characters, not bytes. */
  expect_error("\xc3\xa9\xc3\xa9{{x", "line 1, column 3: unclosed tag");
}

static void error_unclosed_section(void **state) {
  (void)state;
  expect_error("a\n  {{#items}}\n{{name}}\n", "line 2, column 3: unclosed section 'items'");
  expect_error("{{#a}}{{^b}}{{/b}}", "line 1, column 1: unclosed section 'a'");
}

static void error_mismatched_close(void **state) {
  (void)state;
  expect_error("{{#a}}\n{{#b}}\n{{/a}}",
               "line 3, column 1: mismatched section close '/a': the open section is 'b' "
               "(line 2, column 1)");
  expect_error("x {{/a}}", "line 1, column 3: '/a' closes no open section");
}

static void error_other(void **state) {
  (void)state;
  expect_error("{{}}", "line 1, column 1: empty tag name");
  expect_error("{{= <% =}}", "bad delimiter change");
  expect_error("{{=a=b c=}}", "bad delimiter change");
  perr e = {{0}};
  const char *ok = "{{#a}}{{/a}} {{! ok }} {{=| |=}} |x|";
  assert_int_equal(tpl_check(ok, strlen(ok), NULL, NULL, &e), 0);
}

/* ---- partials ----------------------------------------------------------- */

typedef struct names {
  char seen[8][32];
  int n;
  const char *reject;
  perr *e;
} names;

static int collect_name(void *ud, const char *name) {
  names *nm = ud;
  if (nm->n < 8) snprintf(nm->seen[nm->n++], sizeof nm->seen[0], "%s", name);
  if (nm->reject && strcmp(name, nm->reject) == 0) {
    if (nm->e) perr_set(nm->e, "no partial file for '%s'", name);
    return -1;
  }
  return 0;
}

static void partial_names(void **state) {
  (void)state;
  const char *tpl = "{{> header}}\n{{#x}}{{>row }}{{/x}}{{>header}}{{=<% %>=}}<%> sig%>";
  names nm = {0};
  perr e = {{0}};
  assert_int_equal(tpl_check(tpl, strlen(tpl), collect_name, &nm, &e), 0);
  assert_int_equal(nm.n, 3);
  assert_string_equal(nm.seen[0], "header");
  assert_string_equal(nm.seen[1], "row");
  assert_string_equal(nm.seen[2], "sig");

  /* A refusal stops the check; the callback's own message is kept. */
  names rej = {.reject = "row", .e = &e};
  assert_int_equal(tpl_check(tpl, strlen(tpl), collect_name, &rej, &e), -1);
  assert_int_equal(rej.n, 2);
  assert_string_equal(e.msg, "no partial file for 'row'");

  /* Without a message from the callback the check still names the partial. */
  names rej2 = {.reject = "sig"};
  assert_int_equal(tpl_check(tpl, strlen(tpl), collect_name, &rej2, &e), -1);
  assert_non_null(strstr(e.msg, "partial 'sig'"));
}

static void partial_recursion_bounded(void **state) {
  (void)state;
  cJSON *p = cJSON_Parse("{\"self\":\"x{{>self}}\"}");
  cJSON *ctx = cJSON_CreateObject();
  tpl_opts o = {.escape = TPL_ESCAPE_NONE, .partial = partial_from_json, .partial_ud = p,
                .max_depth = 5};
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  assert_int_equal(buf_adds(&out, "keep"), 0);
  perr e = {{0}};
  assert_int_equal(tpl_render("a{{>self}}", 10, ctx, &o, &out, &e), -1);
  assert_non_null(strstr(e.msg, "nested more than 5 deep"));
  assert_non_null(strstr(e.msg, "partial 'self'"));
  /* What was in the buffer before stays; nothing half-rendered is left. */
  assert_string_equal(out.data, "keep");

  /* The default bound applies too, with indentation growing each level. */
  cJSON_Delete(p);
  p = cJSON_Parse("{\"self\":\"x\\n {{>self}}\\n\"}");
  o.partial_ud = p;
  o.max_depth = 0;
  assert_int_equal(tpl_render(" {{>self}}\n", 11, ctx, &o, &out, &e), -1);
  assert_non_null(strstr(e.msg, "nested more than 16 deep"));

  /* Bounded recursion over data terminates normally. */
  cJSON_Delete(p);
  p = cJSON_Parse("{\"node\":\"{{v}}({{#kids}}{{>node}}{{/kids}})\"}");
  cJSON_Delete(ctx);
  /* Leaves need their own empty list: a missing one is found further up. */
  ctx = cJSON_Parse("{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3,\"kids\":[]}]},"
                    "{\"v\":4,\"kids\":[]}]}");
  o.partial_ud = p;
  buf_reset(&out);
  assert_int_equal(tpl_render("{{>node}}", 9, ctx, &o, &out, &e), 0);
  assert_string_equal(out.data, "1(2(3())4())");
  buf_release(&out);
  cJSON_Delete(ctx);
  cJSON_Delete(p);
}

static void partial_errors(void **state) {
  (void)state;
  perr e = {{0}};
  char *out = render("ok\n  {{>bad}}\n", "{}", TPL_ESCAPE_NONE, "{\"bad\":\"line\\n{{#a}}\"}", &e);
  assert_null(out);
  /* Reported against the partial's own text, not its indented copy. */
  assert_string_equal(e.msg, "partial 'bad', line 2, column 1: unclosed section 'a'");
  /* A missing partial renders as nothing. */
  out = render("[{{>nope}}]", "{}", TPL_ESCAPE_NONE, "{}", &e);
  assert_non_null(out);
  assert_string_equal(out, "[]");
  free(out);
}

/* ---- output cap --------------------------------------------------------- */

static void output_cap(void **state) {
  (void)state;
  cJSON *ctx = cJSON_Parse("{\"l\":[1,2,3,4,5,6,7,8,9,10],\"s\":\"<<<<\"}");
  tpl_opts o = {.escape = TPL_ESCAPE_HTML, .max_output = 16};
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  perr e = {{0}};
  assert_int_equal(tpl_render("{{#l}}ab{{/l}}", 14, ctx, &o, &out, &e), -1);
  assert_non_null(strstr(e.msg, "exceeds 16 bytes"));
  assert_non_null(strstr(e.msg, "line 1, column 7"));
  assert_int_equal(out.len, 0);
  /* Exactly at the cap is fine; escaping counts. */
  assert_int_equal(tpl_render("{{s}}", 5, ctx, &o, &out, &e), 0);
  assert_string_equal(out.data, "&lt;&lt;&lt;&lt;");
  buf_release(&out);

  /* The buffer's own cap applies as well; the buffer releases itself. */
  tpl_opts big = {.escape = TPL_ESCAPE_NONE};
  buf small;
  buf_init(&small, 8);
  assert_int_equal(tpl_render("{{#l}}ab{{/l}}", 14, ctx, &big, &small, &e), -1);
  assert_non_null(strstr(e.msg, "buffer's limit"));
  assert_null(small.data);
  buf_release(&small);

  /* tpl_render_str reports the cap and returns NULL. */
  assert_null(tpl_render_str("{{#l}}abcdef{{/l}}", ctx, &o, &e));
  cJSON_Delete(ctx);
}

/* ---- whitespace details beyond the spec files --------------------------- */

static void standalone_details(void **state) {
  (void)state;
  /* A partial's indentation applies to its source lines, not to lines
   * produced by interpolated values or repeated sections. */
  perr e = {{0}};
  char *out = render("<\n  {{>p}}\n>", "{\"v\":\"a\\nb\",\"l\":[1,2]}", TPL_ESCAPE_NONE,
                     "{\"p\":\"{{v}}\\n{{#l}}{{.}}\\n{{/l}}\"}", &e);
  assert_non_null(out);
  assert_string_equal(out, "<\n  a\nb\n  1\n2\n>");
  free(out);
  /* Two tags on one line are never standalone. */
  expect_render("{{#a}}{{/a}}\nx", "{\"a\":true}", TPL_ESCAPE_NONE, "\nx");
  expect_render("x\r\n  {{#a}}  \r\ny\r\n{{/a}}\r\n", "{\"a\":true}", TPL_ESCAPE_NONE,
                "x\r\ny\r\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spec_comments),
      cmocka_unit_test(spec_delimiters),
      cmocka_unit_test(spec_interpolation),
      cmocka_unit_test(spec_inverted),
      cmocka_unit_test(spec_sections),
      cmocka_unit_test(spec_partials),
      cmocka_unit_test(escape_none),
      cmocka_unit_test(escape_html),
      cmocka_unit_test(escape_json),
      cmocka_unit_test(numbers),
      cmocka_unit_test(scalars_and_missing),
      cmocka_unit_test(objects_as_json),
      cmocka_unit_test(error_unclosed_tag),
      cmocka_unit_test(error_unclosed_section),
      cmocka_unit_test(error_mismatched_close),
      cmocka_unit_test(error_other),
      cmocka_unit_test(partial_names),
      cmocka_unit_test(partial_recursion_bounded),
      cmocka_unit_test(partial_errors),
      cmocka_unit_test(output_cap),
      cmocka_unit_test(standalone_details),
  };
  return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
