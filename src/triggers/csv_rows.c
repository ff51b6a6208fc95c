/*
 * csv_rows: CSV bytes -> header and complete records -> events.  The design
 * (completeness, names, keys, the event) is at the top of csv_rows.h.
 *
 * The parser state during one call lives in a `feeder`: libcsv hands over
 * cells (on_cell) and record ends (on_record); the feeder owns the cells of
 * the record in progress until on_record moves them into a row (or frees
 * them for a blank row, or turns them into the header).  Any failure sets
 * `failed` with the message, and later callbacks do nothing, so the caller
 * has one error path.
 */
#include "triggers/csv_rows.h"

#include <csv.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

static void cells_free(char **cells, size_t n) {
  for (size_t i = 0; i < n; i++) free(cells[i]);
  free(cells);
}

void csv_rows_init(csv_rows *r) { memset(r, 0, sizeof *r); }

void csv_rows_release(csv_rows *r) {
  cells_free(r->header, r->nheader);
  for (size_t i = 0; i < r->nrows; i++) cells_free(r->rows[i].cells, r->rows[i].ncells);
  free(r->rows);
  csv_rows_init(r);
}

/* s[0..n) as UTF-8 without NUL; *changed set when a byte was replaced. */
static char *clean_text(const char *s, size_t n, int *changed) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  size_t i = 0;
  while (i < n) {
    const char *nul = memchr(s + i, '\0', n - i);
    size_t seg = nul ? (size_t)(nul - (s + i)) : n - i, bad;
    if (utf8_valid(s + i, seg, &bad)) {
      if (buf_add(&b, s + i, seg)) return NULL;
      i += seg;
      if (!nul) break;
      bad = 0; /* the NUL itself */
    } else {
      if (buf_add(&b, s + i, bad)) return NULL;
      i += bad;
    }
    if (buf_adds(&b, REPLACEMENT)) return NULL;
    i++;
    *changed = 1;
  }
  return buf_detach(&b, NULL);
}

typedef struct feeder {
  csv_rows *r;
  char **cells; /* the record in progress */
  size_t n, cap;
  int cell_changed;   /* a cell of this record had bytes replaced */
  int want_header;    /* the next record is the header */
  int discard;        /* parse only to learn the state: keep nothing */
  size_t ended;       /* records libcsv ended (blank ones included) */
  size_t rec_line;    /* line the record in progress started on */
  size_t number;      /* the last data row's number */
  int failed;
  perr *e;
} feeder;

static void fail(feeder *f, const char *msg) {
  if (!f->failed) perr_set(f->e, "%s", msg);
  f->failed = 1;
}

static void drop_record(feeder *f) {
  cells_free(f->cells, f->n);
  f->cells = NULL;
  f->n = f->cap = 0;
  f->cell_changed = 0;
}

static void on_cell(void *s, size_t len, void *ud) {
  feeder *f = ud;
  if (f->failed || f->discard) return;
  if (f->n == CSV_ROWS_MAX_COLUMNS) return fail(f, "a record has more than 4096 cells");
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    char **p = realloc(f->cells, cap * sizeof *p);
    if (!p) return fail(f, "out of memory");
    f->cells = p;
    f->cap = cap;
  }
  int changed = 0;
  /* libcsv passes NULL for an empty cell under CSV_EMPTY_IS_NULL only,
   * which is not set; len 0 with a NULL pointer is still handled. */
  char *c = clean_text(s ? s : "", s ? len : 0, &changed);
  if (!c) return fail(f, "out of memory");
  if (changed) f->cell_changed = 1;
  f->cells[f->n++] = c;
}

static int name_taken(char **names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return 1;
  return 0;
}

/* Renames in place: empty -> "Column N", repeats -> "NAME 2", "NAME 3"...
 * A name is checked against every other column's name as written too, so
 * a renamed column never takes the name a later column has. */
static int rename_header(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!names[i][0]) {
      char col[32];
      snprintf(col, sizeof col, "Column %zu", i + 1);
      char *c = strdup(col);
      if (!c) return -1;
      free(names[i]);
      names[i] = c;
    }
  }
  for (size_t i = 1; i < n; i++) {
    if (!name_taken(names, i, names[i])) continue;
    buf b;
    for (size_t k = 2;; k++) {
      buf_init(&b, BUF_UNLIMITED);
      if (buf_printf(&b, "%s %zu", names[i], k)) return -1;
      if (!name_taken(names, n, b.data)) break;
      buf_release(&b);
    }
    free(names[i]);
    names[i] = buf_detach(&b, NULL);
    if (!names[i]) return -1;
  }
  return 0;
}

static void on_record(int c, void *ud) {
  (void)c;
  feeder *f = ud;
  f->ended++;
  if (f->failed || f->discard) return drop_record(f);
  csv_rows *r = f->r;
  if (f->want_header) {
    f->want_header = 0;
    if (f->cell_changed) r->replaced++;
    if (rename_header(f->cells, f->n)) return fail(f, "out of memory");
    r->header = f->cells;
    r->nheader = f->n;
    f->cells = NULL;
    f->n = f->cap = 0;
    f->cell_changed = 0;
    return;
  }
  int blank = 1;
  for (size_t i = 0; i < f->n && blank; i++) blank = f->cells[i][0] == '\0';
  if (blank) return drop_record(f);
  if (r->nrows == r->rows_cap) {
    size_t cap = r->rows_cap ? r->rows_cap * 2 : 16;
    csv_row *p = realloc(r->rows, cap * sizeof *p);
    if (!p) return fail(f, "out of memory");
    r->rows = p;
    r->rows_cap = cap;
  }
  if (f->cell_changed) r->replaced++;
  r->rows[r->nrows++] =
      (csv_row){.cells = f->cells, .ncells = f->n, .line = f->rec_line, .number = ++f->number};
  f->cells = NULL;
  f->n = f->cap = 0;
  f->cell_changed = 0;
}

/* Cells are kept as written: libcsv would trim spaces around unquoted ones. */
static int no_space(unsigned char c) {
  (void)c;
  return 0;
}

static int has_content(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != '\r' && s[i] != '\n') return 1;
  return 0;
}

/* Feeds data (the file from offset `at`, line `line`) one line at a time.
 * one_record: stop after the first record (the header).  Sets r's end,
 * end_line, incomplete and open_quote. */
static int feed(feeder *f, const char *data, size_t len, size_t at, size_t line, int final,
                int one_record) {
  csv_rows *r = f->r;
  struct csv_parser p;
  if (csv_init(&p, 0)) return perr_set(f->e, "out of memory");
  csv_set_space_func(&p, no_space);
  r->end = at;
  r->end_line = line;
  r->incomplete = r->open_quote = 0;
  size_t pos = 0;
  int in_record = 0;
  while (pos < len && !f->failed) {
    size_t i = pos;
    while (i < len && data[i] != '\r' && data[i] != '\n') i++;
    if (i == len) break;
    size_t stop = i + 1;
    if (data[i] == '\r') {
      if (stop == len) break; /* maybe the first half of a CRLF */
      if (data[stop] == '\n') stop++;
    }
    if (!in_record) f->rec_line = line;
    size_t before = f->ended;
    if (csv_parse(&p, data + pos, stop - pos, on_cell, on_record, f) != stop - pos)
      fail(f, "out of memory");
    line++;
    int content = i > pos;
    pos = stop;
    if (f->ended != before || (!in_record && !content)) {
      /* A record ended with this line, or the line was blank between
       * records: either way the next record starts after it. */
      in_record = 0;
      r->end = at + pos;
      r->end_line = line;
      if (f->ended != before && one_record) break;
    } else {
      in_record = 1; /* started here, or goes on inside quotes */
    }
  }
  int header_done = one_record && !f->want_header;
  if (!f->failed && !header_done && (in_record || has_content(data + pos, len - pos))) {
    /* What follows the last boundary: taken only when final and it ends
     * outside quotes; otherwise just looked at, to say whether a quote is
     * open. */
    if (!in_record) f->rec_line = line;
    f->discard = !final;
    size_t before = f->ended;
    if (pos < len && csv_parse(&p, data + pos, len - pos, on_cell, on_record, f) != len - pos)
      fail(f, "out of memory");
    csv_set_opts(&p, CSV_STRICT | CSV_STRICT_FINI);
    if (csv_fini(&p, on_cell, on_record, f) != 0) {
      r->incomplete = r->open_quote = 1;
    } else if (final && f->ended != before) {
      r->end = at + len;
      r->end_line = line;
    } else {
      r->incomplete = 1;
    }
    f->discard = 0;
  }
  csv_free(&p);
  drop_record(f);
  return f->failed ? -1 : 0;
}

static int utf16_bom(const char *d, size_t n) {
  return n >= 2 && ((d[0] == '\xFF' && d[1] == '\xFE') || (d[0] == '\xFE' && d[1] == '\xFF'));
}

int csv_rows_header(csv_rows *r, const char *data, size_t len, int final, perr *e) {
  if (utf16_bom(data, len))
    return perr_set(e, "a UTF-16 file: export or save it as CSV in UTF-8");
  size_t skip = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  feeder f = {.r = r, .want_header = 1, .e = e};
  if (feed(&f, data + skip, len - skip, skip, 1, final, 1)) return -1;
  if (f.want_header) {
    /* Not complete yet: nothing is taken. */
    r->header_end = 0;
    r->end = 0;
    r->end_line = 1;
    return 0;
  }
  r->header_end = r->end;
  r->incomplete = r->open_quote = 0;
  return 0;
}

int csv_rows_records(csv_rows *r, const char *data, size_t len, size_t at, size_t line,
                     size_t number, int final, perr *e) {
  feeder f = {.r = r, .number = number, .e = e};
  int rc = feed(&f, data, len, at, line, final, 0);
  r->end_number = f.number;
  return rc;
}

int csv_rows_parse(csv_rows *r, const char *data, size_t len, int final, perr *e) {
  if (csv_rows_header(r, data, len, final, e)) return -1;
  if (!r->header_end) return 0;
  return csv_rows_records(r, data + r->header_end, len - r->header_end, r->header_end,
                          r->end_line, 0, final, e);
}

int csv_rows_column(const csv_rows *r, const char *key) {
  for (size_t i = 0; i < r->nheader; i++)
    if (strcmp(r->header[i], key) == 0) return (int)i;
  return -1;
}

static char *row_hash(const csv_row *row) {
  size_t n = row->ncells;
  while (n && !row->cells[n - 1][0]) n--;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  for (size_t i = 0; ok && i < n; i++) {
    uint64_t cl = strlen(row->cells[i]);
    unsigned char pre[8];
    for (int k = 0; k < 8; k++) pre[k] = (unsigned char)(cl >> (56 - 8 * k));
    ok = EVP_DigestUpdate(ctx, pre, sizeof pre) == 1 &&
         EVP_DigestUpdate(ctx, row->cells[i], (size_t)cl) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return NULL;
  char *hex = malloc(2 * mdlen + 1);
  if (!hex) return NULL;
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < mdlen; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[2 * mdlen] = '\0';
  return hex;
}

char *csv_row_key(const csv_row *row, int key_col) {
  if (key_col >= 0 && (size_t)key_col < row->ncells && row->cells[key_col][0])
    return strdup(row->cells[key_col]);
  return row_hash(row);
}

/* Deeper aliases would not parse back: cJSON refuses deep nesting. */
#define MAX_ALIAS_DOTS 16

static size_t dots(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '.';
  return n;
}

/* fields[part1][part2]... = value for a dotted name, when every part on
 * the way is free or an alias object (see csv_rows.h). */
static int add_alias(cJSON *fields, const char *name, const char *value, const csv_rows *r) {
  cJSON *at = fields;
  const char *s = name;
  for (;;) {
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    char *part = malloc(n + 1);
    if (!part) return -1;
    memcpy(part, s, n);
    part[n] = '\0';
    /* A real column of that name at the top keeps its place. */
    if (at == fields && csv_rows_column(r, part) >= 0) {
      free(part);
      return 0;
    }
    cJSON *next = cJSON_GetObjectItemCaseSensitive(at, part);
    if (!dot) {
      int rc = 0;
      if (!next && !cJSON_AddStringToObject(at, part, value)) rc = -1;
      free(part);
      return rc;
    }
    if (next && !cJSON_IsObject(next)) {
      free(part);
      return 0;
    }
    if (!next && !(next = cJSON_AddObjectToObject(at, part))) {
      free(part);
      return -1;
    }
    free(part);
    at = next;
    s = dot + 1;
  }
}

cJSON *csv_event(const csv_rows *r, const csv_row *row, const char *file, const char *key) {
  cJSON *ev = cJSON_CreateObject();
  cJSON *fields = ev ? cJSON_AddObjectToObject(ev, "fields") : NULL;
  cJSON *cells = ev ? cJSON_AddArrayToObject(ev, "row") : NULL;
  if (!fields || !cells) goto oom;
  for (size_t i = 0; i < r->nheader; i++)
    if (!cJSON_AddStringToObject(fields, r->header[i], i < row->ncells ? row->cells[i] : ""))
      goto oom;
  for (size_t i = 0; i < r->nheader; i++)
    if (strchr(r->header[i], '.') && dots(r->header[i]) <= MAX_ALIAS_DOTS &&
        add_alias(fields, r->header[i], i < row->ncells ? row->cells[i] : "", r))
      goto oom;
  for (size_t i = 0; i < row->ncells; i++) {
    cJSON *s = cJSON_CreateString(row->cells[i]);
    if (!s || !cJSON_AddItemToArray(cells, s)) {
      cJSON_Delete(s);
      goto oom;
    }
  }
  if (!cJSON_AddStringToObject(ev, "file", file) ||
      !cJSON_AddNumberToObject(ev, "line", (double)row->line) ||
      !cJSON_AddNumberToObject(ev, "record", (double)row->number) ||
      !cJSON_AddStringToObject(ev, "key", key))
    goto oom;
  return ev;
oom:
  cJSON_Delete(ev);
  return NULL;
}
