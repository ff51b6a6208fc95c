/*
 * csv_rows: every export of tests/csv/corpus read exactly as
 * tests/csv/expected.json says (header names, each event whole, keys,
 * whether a record is still being written, what a settled read adds); each
 * of them also read in two goes cut at every byte, as the trigger reads a
 * file that grows, giving the same rows; the re-downloaded export keeping
 * its old keys; and the shared Google Forms example read in place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "triggers/csv_rows.h"

#define CSV_DIR PROMPTD_SOURCE_DIR "/tests/csv"
#define GOOGLE_FORMS PROMPTD_SHARED_DIR "/conformance/examples/google-forms-responses.synthetic.csv"

static char *read_corpus(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/corpus/%s", CSV_DIR, name);
  char *d = tu_read_file(path, len);
  if (!d) fail_msg("cannot read %s", path);
  return d;
}

static void check_event(const csv_rows *r, const csv_row *row, int key_col, const char *name,
                        const cJSON *want, const char *what) {
  char *key = csv_row_key(row, key_col);
  assert_non_null(key);
  cJSON *ev = csv_event(r, row, name, key);
  assert_non_null(ev);
  if (!cJSON_Compare(ev, want, 1)) {
    char *got = cJSON_Print(ev), *exp = cJSON_Print(want);
    fail_msg("%s %s line %zu:\ngot  %s\nwant %s", name, what, row->line, got, exp);
  }
  /* Same order too: fields print in column order. */
  char *a = cJSON_PrintUnformatted(ev), *b = cJSON_PrintUnformatted(want);
  if (strcmp(a, b) != 0) fail_msg("%s %s: order differs:\n%s\n%s", name, what, a, b);
  free(a);
  free(b);
  cJSON_Delete(ev);
  free(key);
}

static int same_row(const csv_row *a, const csv_row *b) {
  if (a->ncells != b->ncells || a->line != b->line || a->number != b->number) return 0;
  for (size_t i = 0; i < a->ncells; i++)
    if (strcmp(a->cells[i], b->cells[i]) != 0) return 0;
  return 1;
}

/* Reading the first `cut` bytes, then the rest from where that stopped,
 * gives exactly the rows of one whole read. */
static void check_two_steps(const char *name, const char *d, size_t len, const csv_rows *whole) {
  for (size_t cut = 0; cut <= len; cut++) {
    csv_rows part, rest;
    csv_rows_init(&part);
    csv_rows_init(&rest);
    perr e;
    assert_int_equal(csv_rows_parse(&part, d, cut, 0, &e), 0);
    if (part.header_end) {
      assert_int_equal(csv_rows_header(&rest, d, part.header_end, 1, &e), 0);
      assert_int_equal(rest.header_end, part.header_end);
      assert_int_equal(csv_rows_records(&rest, d + part.end, len - part.end, part.end,
                                        part.end_line, part.end_number, 0, &e),
                       0);
      if (part.nrows + rest.nrows != whole->nrows)
        fail_msg("%s cut at %zu: %zu + %zu rows, want %zu", name, cut, part.nrows, rest.nrows,
                 whole->nrows);
      for (size_t i = 0; i < part.nrows; i++) assert_true(same_row(&part.rows[i], &whole->rows[i]));
      for (size_t i = 0; i < rest.nrows; i++)
        if (!same_row(&rest.rows[i], &whole->rows[part.nrows + i]))
          fail_msg("%s cut at %zu: row %zu differs", name, cut, part.nrows + i + 1);
      assert_int_equal(rest.end, whole->end);
      assert_int_equal(rest.incomplete, whole->incomplete);
    } else {
      /* No complete header yet: nothing was taken. */
      assert_int_equal(part.nrows, 0);
      assert_int_equal(part.end, 0);
    }
    csv_rows_release(&part);
    csv_rows_release(&rest);
  }
}

static void check_file(const char *name, const cJSON *want) {
  size_t len;
  char *d = read_corpus(name, &len);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(want, "error");
  csv_rows r;
  csv_rows_init(&r);
  perr e;
  e.msg[0] = '\0';
  int rc = csv_rows_parse(&r, d, len, 0, &e);
  if (cJSON_IsString(err)) {
    if (rc != -1 || !strstr(e.msg, err->valuestring))
      fail_msg("%s: want an error naming %s, got rc %d \"%s\"", name, err->valuestring, rc, e.msg);
    csv_rows_release(&r);
    free(d);
    return;
  }
  if (rc) fail_msg("%s: %s", name, e.msg);
  const cJSON *header = cJSON_GetObjectItemCaseSensitive(want, "header");
  assert_int_equal(r.nheader, (size_t)cJSON_GetArraySize(header));
  for (size_t i = 0; i < r.nheader; i++)
    assert_string_equal(r.header[i], cJSON_GetArrayItem(header, (int)i)->valuestring);
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(want, "key");
  int key_col = cJSON_IsString(key) ? csv_rows_column(&r, key->valuestring) : -1;
  if (cJSON_IsString(key)) assert_true(key_col >= 0);
  if (r.incomplete != cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, "incomplete")))
    fail_msg("%s: incomplete %d", name, r.incomplete);
  if (r.open_quote != cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(want, "open_quote")))
    fail_msg("%s: open_quote %d", name, r.open_quote);

  const cJSON *events = cJSON_GetObjectItemCaseSensitive(want, "events");
  if (r.nrows != (size_t)cJSON_GetArraySize(events))
    fail_msg("%s: %zu rows, want %d", name, r.nrows, cJSON_GetArraySize(events));
  for (size_t i = 0; i < r.nrows; i++)
    check_event(&r, &r.rows[i], key_col, name, cJSON_GetArrayItem(events, (int)i), "event");

  /* A settled read takes a trailing record outside quotes, and only it. */
  csv_rows f;
  csv_rows_init(&f);
  assert_int_equal(csv_rows_parse(&f, d, len, 1, &e), 0);
  const cJSON *settled = cJSON_GetObjectItemCaseSensitive(want, "settled");
  size_t extra = (size_t)cJSON_GetArraySize(settled);
  if (f.nrows != r.nrows + extra)
    fail_msg("%s: a settled read gives %zu rows, want %zu", name, f.nrows, r.nrows + extra);
  for (size_t i = 0; i < r.nrows; i++) assert_true(same_row(&f.rows[i], &r.rows[i]));
  for (size_t i = 0; i < extra; i++)
    check_event(&f, &f.rows[r.nrows + i], key_col, name, cJSON_GetArrayItem(settled, (int)i),
                "settled event");
  if (extra) assert_int_equal(f.end, len);
  csv_rows_release(&f);

  check_two_steps(name, d, len, &r);
  csv_rows_release(&r);
  free(d);
}

static void test_corpus(void **state) {
  (void)state;
  size_t len;
  char *text = tu_read_file(CSV_DIR "/expected.json", &len);
  assert_non_null(text);
  cJSON *all = cJSON_Parse(text);
  assert_non_null(all);
  int n = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, all) {
    check_file(c->string, c);
    n++;
  }
  /* Acceptance asks for at least ten real-shaped exports. */
  assert_true(n >= 10);
  cJSON_Delete(all);
  free(text);
}

/* The export downloaded again with more rows: the old rows keep their
 * keys (so intake's dedupe drops them), and reading on from where the
 * first download ended finds exactly the new ones. */
static void test_rewritten(void **state) {
  (void)state;
  size_t l1, l2;
  char *v1 = read_corpus("rewritten-v1.csv", &l1), *v2 = read_corpus("rewritten-v2.csv", &l2);
  csv_rows a, b, rest;
  csv_rows_init(&a);
  csv_rows_init(&b);
  csv_rows_init(&rest);
  perr e;
  assert_int_equal(csv_rows_parse(&a, v1, l1, 0, &e), 0);
  assert_int_equal(csv_rows_parse(&b, v2, l2, 0, &e), 0);
  assert_int_equal(a.nrows, 2);
  assert_int_equal(b.nrows, 4);
  for (size_t i = 0; i < b.nrows; i++) {
    char *kb = csv_row_key(&b.rows[i], -1);
    int seen = 0;
    for (size_t j = 0; j < a.nrows; j++) {
      char *ka = csv_row_key(&a.rows[j], -1);
      seen |= strcmp(ka, kb) == 0;
      free(ka);
    }
    assert_int_equal(seen, i < 2);
    free(kb);
  }
  assert_int_equal(csv_rows_header(&rest, v2, a.header_end, 1, &e), 0);
  assert_int_equal(csv_rows_records(&rest, v2 + a.end, l2 - a.end, a.end, a.end_line,
                                    a.end_number, 0, &e),
                   0);
  assert_int_equal(rest.nrows, 2);
  assert_string_equal(rest.rows[0].cells[1], "r@example.com");
  assert_int_equal(rest.rows[0].number, 3);
  assert_int_equal(rest.rows[1].line, 5);
  csv_rows_release(&a);
  csv_rows_release(&b);
  csv_rows_release(&rest);
  free(v1);
  free(v2);
}

/* The shared Google Forms example, read in place. */
static void test_google_forms_example(void **state) {
  (void)state;
  size_t len;
  char *d = tu_read_file(GOOGLE_FORMS, &len);
  if (!d) fail_msg("cannot read %s", GOOGLE_FORMS);
  csv_rows r;
  csv_rows_init(&r);
  perr e;
  assert_int_equal(csv_rows_parse(&r, d, len, 0, &e), 0);
  static const char *const names[] = {"Timestamp", "Email address", "Full name", "Company",
                                      "Which products interest you?", "Budget (EUR)",
                                      "Anything else?"};
  assert_int_equal(r.nheader, 7);
  for (size_t i = 0; i < 7; i++) assert_string_equal(r.header[i], names[i]);
  assert_int_equal(r.nrows, 2);
  assert_false(r.incomplete);
  assert_int_equal(r.end, len);
  assert_string_equal(r.rows[0].cells[4], "Widgets, Gadgets");
  assert_string_equal(r.rows[1].cells[2], "Bob \"The Builder\" Jones");
  assert_string_equal(r.rows[1].cells[3], "");
  assert_string_equal(r.rows[1].cells[6], "Line one\nline two");
  assert_int_equal(r.rows[1].line, 3);
  char *key = csv_row_key(&r.rows[0], csv_rows_column(&r, "Email address"));
  cJSON *ev = csv_event(&r, &r.rows[0], "responses.csv", key);
  const cJSON *fields = cJSON_GetObjectItemCaseSensitive(ev, "fields");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(fields, "Email address")->valuestring,
                      "laura@example.com");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(ev, "key")->valuestring,
                      "laura@example.com");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "row")), 7);
  cJSON_Delete(ev);
  free(key);
  csv_rows_release(&r);
  free(d);
}

/* A key column whose cell is empty falls back to the row hash. */
static void test_empty_key_cell(void **state) {
  (void)state;
  static const char csv[] = "id,v\n,1\n7,2\n";
  csv_rows r;
  csv_rows_init(&r);
  perr e;
  assert_int_equal(csv_rows_parse(&r, csv, sizeof csv - 1, 0, &e), 0);
  int col = csv_rows_column(&r, "id");
  char *k0 = csv_row_key(&r.rows[0], col), *k1 = csv_row_key(&r.rows[1], col);
  assert_int_equal(strlen(k0), 64);
  assert_string_equal(k1, "7");
  assert_int_equal(csv_rows_column(&r, "missing"), -1);
  free(k0);
  free(k1);
  csv_rows_release(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_corpus),
      cmocka_unit_test(test_rewritten),
      cmocka_unit_test(test_google_forms_example),
      cmocka_unit_test(test_empty_key_cell),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
