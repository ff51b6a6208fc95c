/*
 * csv_rows: the bytes of a CSV export -> its header and complete records,
 * and a record -> the event the csv_export trigger ingests.  Pure: no I/O,
 * so the unit tests and the fuzz target see exactly what the trigger sees.
 *
 * Parsing is libcsv's (RFC 4180, lenient): quoted commas, quotes ("") and
 * line breaks inside quotes; records end at LF, CRLF or a lone CR.  Cells
 * are kept as written: libcsv's default trimming of spaces around unquoted
 * cells is switched off.  A UTF-8 byte order mark at the start of the file
 * is dropped.  Exports in UTF-16 (a UTF-16 BOM) are refused.
 *
 * Completeness.  A file being written may end in the middle of a record:
 * in a quoted cell, or simply without the record's line ending.  Such a
 * trailing record is not returned; `end` is the offset just past the last
 * complete record, and `incomplete` says something follows it.  A lone CR
 * as the very last byte counts as incomplete too (it may be half a CRLF).
 * With `final` set a trailing record outside quotes is taken as complete
 * (the trigger does so once the file has stayed unchanged for its settle
 * time: some exporters end the last record without a line break).  A record
 * inside an open quote is never taken.
 *
 * Records are found by feeding libcsv one line at a time (a chunk ends at
 * each CR, LF or CRLF), so a record can only end at a chunk's end and the
 * byte offset of every record boundary is known without a parser of our own.
 *
 * Text.  Every cell and header name is UTF-8 without NUL: an invalid byte
 * or a NUL becomes U+FFFD (one per byte), and `replaced` counts the cells
 * so changed, for a log line.  Other encodings (Windows-1252 from old
 * Excel) therefore come out with U+FFFD instead of their accents.
 *
 * The header is the first record.  Names, in column order:
 *   - an empty name becomes "Column N" (N is the 1-based column);
 *   - a repeated name gets " 2", " 3", ... (the first "Email" stays
 *     "Email", the second becomes "Email 2", unless a column is already
 *     called that, in which case the next free number is taken).
 * Rows whose cells are all empty (Google Sheets writes ",,,," for blank
 * rows) are skipped and not numbered.
 *
 * The event (csv_event):
 *   {"fields": {NAME: cell, ...},  every header name; "" when the row is
 *                                  shorter than the header
 *    "row": [cell, ...],           the record's cells as read (cells past
 *                                  the header's width appear only here)
 *    "file": PATH, "line": N (1-based line the record starts on),
 *    "record": N (1-based, header and blank rows not counted),
 *    "key": KEY}
 * Mustache splits names at dots, so a header such as "Q1. Name" is also
 * reachable as written ({{event.fields.Q1. Name}}) through nested objects
 * built from its dot-separated parts: fields["Q1"][" Name"].  Such an
 * alias is left out when a part it needs is already a column name or
 * another alias's cell (the real column wins), and for names with more
 * than 16 dots.
 *
 * The key (csv_row_key): the key column's cell when a key column is named
 * and the cell is not empty; otherwise the row hash, the SHA-256 (hex) of
 * the cells without their trailing empty ones, each cell preceded by its
 * length, so ["a,b"] and ["a", "b"] differ and a column added at the end of
 * a form does not change the keys of older rows.
 */
#ifndef PROMPTD_CSV_ROWS_H
#define PROMPTD_CSV_ROWS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/err.h"

#define CSV_ROWS_MAX_COLUMNS 4096

typedef struct csv_row {
  char **cells;   /* ncells NUL-terminated UTF-8 strings */
  size_t ncells;
  size_t line;    /* 1-based line the record starts on */
  size_t number;  /* 1-based record number (header, blank rows not counted) */
} csv_row;

typedef struct csv_rows {
  char **header;       /* names as used in fields (renamed, see above) */
  size_t nheader;
  size_t header_end;   /* offset past the header record; 0: no complete header yet */
  csv_row *rows;
  size_t nrows, rows_cap;
  size_t end;          /* offset past the last complete record taken */
  size_t end_line;     /* 1-based line number at `end` */
  size_t end_number;   /* records numbered so far (the last row's number) */
  int incomplete;      /* bytes after `end` hold a record still being written */
  int open_quote;      /* ... which is inside a quoted cell */
  size_t replaced;     /* cells (and names) with invalid UTF-8 or NUL replaced */
} csv_rows;

void csv_rows_init(csv_rows *r);
void csv_rows_release(csv_rows *r);

/* Reads the header from the start of a file (data holds its first len
 * bytes).  0 with header_end 0 when the header is not complete yet; -1 (e
 * says why) for a UTF-16 file, too many columns or no memory. */
int csv_rows_header(csv_rows *r, const char *data, size_t len, int final, perr *e);

/* Appends to r->rows the complete records in data, which holds the file's
 * bytes from offset `at` (at least r->header_end) on; `line` is the line
 * number at `at` and `number` the records numbered before it.  Sets end,
 * end_line, end_number, incomplete and open_quote. */
int csv_rows_records(csv_rows *r, const char *data, size_t len, size_t at, size_t line,
                     size_t number, int final, perr *e);

/* Both, over a whole file. */
int csv_rows_parse(csv_rows *r, const char *data, size_t len, int final, perr *e);

/* The header column named key (as renamed), or -1. */
int csv_rows_column(const csv_rows *r, const char *key);

/* The row's dedupe key (malloc'd, never empty), or NULL when out of memory.
 * key_col: csv_rows_column's answer, or -1 for the row hash. */
char *csv_row_key(const csv_row *row, int key_col);

/* The event for row (see above), or NULL when out of memory.  key is the
 * row's key (csv_row_key). */
cJSON *csv_event(const csv_rows *r, const csv_row *row, const char *file, const char *key);

#endif
