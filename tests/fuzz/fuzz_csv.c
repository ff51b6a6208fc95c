/*
 * fuzz_csv: arbitrary bytes as a CSV export through the csv_export
 * trigger's pure path (csv_rows: header, records, keys, events), checking
 * what comes out is something intake accepts, and that reading a file in
 * two goes (as the trigger does when a file grows) gives the same rows as
 * reading it whole.
 *
 * Input format (deterministic, so every saved input replays the same way):
 *
 *   byte 0   key column: (byte - '0') mod 4: 0 none (row hash), 1 the
 *            first header name, 2 "Email", 3 the last header name
 *   byte 1   where the file is cut for the two-step read: byte * len / 256
 *   then     the file's bytes, NULs included
 *
 * Seeds are therefore CSV text starting with two characters, e.g.
 * "0\x80Name,Email\r\nAda,ada@example.com\r\n".
 *
 * Invariants (a broken one aborts):
 *   parse      0, or -1 with a non-empty message; end <= len; rows numbered
 *              1..n in order, lines increasing; header names unique,
 *              non-empty UTF-8; not incomplete means nothing but line
 *              breaks follows end; final=1 gives the same first rows as
 *              final=0 (it may add the trailing one, never change others).
 *   events     every row's key is non-empty UTF-8 (the key column's cell,
 *              or 64 hex digits); its event prints as UTF-8 without NUL,
 *              passes intake_check_payload, parses back to the same text,
 *              holds every header name in fields and every cell in row,
 *              and every string in it is valid UTF-8.
 *   two steps  the rows of the cut file, then csv_rows_records from its end
 *              over the whole file, are exactly the rows of the whole file.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/intake.h"
#include "core/utf8.h"
#include "triggers/csv_rows.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t pick(uint8_t b, size_t n) {
  int d = (int)b - '0';
  return (size_t)(((d % (int)n) + (int)n) % (int)n);
}

static int utf8_str(const char *s) { return s && utf8_valid(s, strlen(s), NULL); }

static void check_strings(const cJSON *j) {
  for (const cJSON *c = j; c; c = c->next) {
    if (c->string) CHECK(utf8_str(c->string));
    if (cJSON_IsString(c)) CHECK(utf8_str(c->valuestring));
    if (c->child) check_strings(c->child);
  }
}

static int only_breaks(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != '\r' && s[i] != '\n') return 0;
  return 1;
}

static void check_rows(const csv_rows *r, size_t len) {
  CHECK(r->end <= len);
  for (size_t i = 0; i < r->nheader; i++) {
    CHECK(r->header[i][0] && utf8_str(r->header[i]));
    for (size_t j = i + 1; j < r->nheader; j++) CHECK(strcmp(r->header[i], r->header[j]) != 0);
  }
  for (size_t i = 0; i < r->nrows; i++) {
    CHECK(r->rows[i].number == i + 1);
    CHECK(r->rows[i].line >= 2);
    if (i) CHECK(r->rows[i].line > r->rows[i - 1].line);
    CHECK(r->rows[i].ncells >= 1);
  }
  if (r->header_end) CHECK(r->end_number == r->nrows);
}

static int same_row(const csv_row *a, const csv_row *b) {
  if (a->ncells != b->ncells || a->line != b->line || a->number != b->number) return 0;
  for (size_t i = 0; i < a->ncells; i++)
    if (strcmp(a->cells[i], b->cells[i]) != 0) return 0;
  return 1;
}

static void check_events(const csv_rows *r, size_t keysel) {
  int key_col = -1;
  if (r->nheader && keysel == 1) key_col = 0;
  if (keysel == 2) key_col = csv_rows_column(r, "Email");
  if (r->nheader && keysel == 3) key_col = (int)r->nheader - 1;
  for (size_t i = 0; i < r->nrows; i++) {
    const csv_row *row = &r->rows[i];
    char *key = csv_row_key(row, key_col);
    CHECK(key && key[0] && utf8_str(key));
    if (key_col >= 0 && (size_t)key_col < row->ncells && row->cells[key_col][0])
      CHECK(strcmp(key, row->cells[key_col]) == 0);
    else
      CHECK(strlen(key) == 64 && strspn(key, "0123456789abcdef") == 64);
    cJSON *ev = csv_event(r, row, "/in/export.csv", key);
    CHECK(ev && cJSON_IsObject(ev));
    char *text = cJSON_PrintUnformatted(ev);
    CHECK(text);
    size_t tl = strlen(text);
    CHECK(utf8_valid(text, tl, NULL));
    perr e;
    CHECK(intake_check_payload(text, tl, 64u * 1024 * 1024, &e) == 0);
    cJSON *back = cJSON_ParseWithLength(text, tl);
    char *again = back ? cJSON_PrintUnformatted(back) : NULL;
    CHECK(again && strcmp(again, text) == 0);
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(ev, "fields");
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(ev, "row");
    CHECK(cJSON_IsObject(fields) && cJSON_IsArray(cells));
    CHECK((size_t)cJSON_GetArraySize(cells) == row->ncells);
    for (size_t k = 0; k < r->nheader; k++) {
      const cJSON *f = cJSON_GetObjectItemCaseSensitive(fields, r->header[k]);
      CHECK(cJSON_IsString(f));
      CHECK(strcmp(f->valuestring, k < row->ncells ? row->cells[k] : "") == 0);
    }
    check_strings(ev);
    free(again);
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(ev);
    free(key);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t keysel = pick(data[0], 4);
  const char *csv = (const char *)data + 2;
  size_t len = size - 2;
  size_t cut = (size_t)data[1] * len / 256;

  csv_rows whole, fin;
  csv_rows_init(&whole);
  csv_rows_init(&fin);
  perr e;
  e.msg[0] = '\0';
  int rc = csv_rows_parse(&whole, csv, len, 0, &e);
  if (rc) {
    CHECK(rc == -1 && e.msg[0]);
    csv_rows_release(&whole);
    return 0;
  }
  check_rows(&whole, len);
  if (!whole.incomplete && whole.header_end)
    CHECK(only_breaks(csv + whole.end, len - whole.end));
  check_events(&whole, keysel);

  CHECK(csv_rows_parse(&fin, csv, len, 1, &e) == 0);
  check_rows(&fin, len);
  if (whole.header_end) {
    CHECK(fin.nrows >= whole.nrows && fin.nrows <= whole.nrows + 1);
    for (size_t i = 0; i < whole.nrows; i++) CHECK(same_row(&whole.rows[i], &fin.rows[i]));
  }
  check_events(&fin, keysel);

  /* Two steps: the cut file first, then the rest from where it ended. */
  csv_rows part, rest;
  csv_rows_init(&part);
  csv_rows_init(&rest);
  CHECK(csv_rows_parse(&part, csv, cut, 0, &e) == 0);
  if (part.header_end && whole.header_end) {
    CHECK(part.header_end == whole.header_end);
    CHECK(part.end >= part.header_end && part.end <= whole.end);
    CHECK(csv_rows_header(&rest, csv, part.header_end, 1, &e) == 0);
    CHECK(rest.header_end == part.header_end);
    CHECK(csv_rows_records(&rest, csv + part.end, len - part.end, part.end, part.end_line,
                           part.end_number, 0, &e) == 0);
    CHECK(part.nrows + rest.nrows == whole.nrows);
    for (size_t i = 0; i < part.nrows; i++) CHECK(same_row(&part.rows[i], &whole.rows[i]));
    for (size_t i = 0; i < rest.nrows; i++)
      CHECK(same_row(&rest.rows[i], &whole.rows[part.nrows + i]));
    CHECK(rest.end == whole.end && rest.end_line == whole.end_line);
    CHECK(rest.incomplete == whole.incomplete && rest.open_quote == whole.open_quote);
  }
  csv_rows_release(&part);
  csv_rows_release(&rest);
  csv_rows_release(&fin);
  csv_rows_release(&whole);
  return 0;
}
