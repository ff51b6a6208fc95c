/*
 * fuzz_mime: arbitrary bytes through the raw message -> event path
 * (mail_parse, then mail_skip_reason as the IMAP trigger calls it), and
 * through the text helpers it is built from, checking after each that the
 * output is what recipes, templates and the JSON printer can take.
 *
 * Input format (deterministic, so every saved input replays the same way):
 *
 *   byte 0   mode: (byte - '0') mod 5
 *              0  mail_parse with the default caps, then the filters
 *              1  mail_parse with max_text = 97 (every cut path), filters
 *              2  html_to_text on the rest (cleaned first, as mime.c does),
 *                 limit 4096
 *              3  the plain-text helpers on the rest: mail_unflow (delsp
 *                 off and on), mail_trim_quoted, mail_snippet
 *              4  mail_to_utf8: the first line is the charset name, the
 *                 rest the body
 *   then     the message or text, every byte (NULs included)
 *
 * Seeds are therefore a digit followed by a message, e.g.
 * "0From: a@b\r\nSubject: x\r\n\r\nhi".  Modes 2-4 reach the helpers with
 * inputs the MIME layer would take many more bytes to build.
 *
 * Invariants (a broken one aborts):
 *   parse    returns 0 with an object holding every field of mime.h with
 *            its type (from.address, subject and text always strings);
 *            every string, key and value, is valid UTF-8 (core/utf8.h);
 *            text and full_text are within max_text bytes; the snippet is
 *            at most MAIL_SNIPPET_CHARS characters plus the ellipsis;
 *            lists are within MAIL_MAX_LIST; header fields within
 *            MAIL_MAX_FIELD; the event prints and parses back.
 *   filter   returns 0 or 1 with the default rules, an own address and
 *            patterns; the reason is empty exactly when 0, and UTF-8.
 *   helpers  output is valid UTF-8, holds no NUL, no CR and no control
 *            character but newline and tab; html_to_text stays within its
 *            limit and returns 1 only at it.
 * Leaks are LeakSanitizer's to find: every path frees what it made.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/utf8.h"
#include "mail/html_text.h"
#include "mail/mail_filter.h"
#include "mail/mail_text.h"
#include "mail/mime.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define HTML_LIMIT 4096
#define SMALL_TEXT 97

static int clean_utf8(const char *s, size_t n) { return utf8_valid(s, n, NULL); }

/* Clean body text: UTF-8, no NUL, no CR, no controls but \n and \t. */
static void check_body_text(const buf *b) {
  if (!b->data) return;
  CHECK(strlen(b->data) == b->len);
  CHECK(clean_utf8(b->data, b->len));
  for (size_t i = 0; i < b->len; i++) {
    unsigned char c = (unsigned char)b->data[i];
    CHECK(c >= 0x20 || c == '\n' || c == '\t');
    CHECK(c != 0x7F);
  }
}

static size_t chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

static void check_strings(const cJSON *j) {
  for (const cJSON *c = j->child; c; c = c->next) {
    if (c->string) CHECK(clean_utf8(c->string, strlen(c->string)));
    if (cJSON_IsString(c)) CHECK(clean_utf8(c->valuestring, strlen(c->valuestring)));
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) check_strings(c);
  }
}

static const cJSON *get(const cJSON *o, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int str_or_null(const cJSON *v) { return cJSON_IsString(v) || cJSON_IsNull(v); }

static void check_field(const cJSON *v) {
  if (cJSON_IsString(v)) CHECK(strlen(v->valuestring) <= MAIL_MAX_FIELD);
}

static void check_person(const cJSON *p) {
  CHECK(cJSON_IsObject(p));
  CHECK(cJSON_IsString(get(p, "name")));
  CHECK(cJSON_IsString(get(p, "address")));
  check_field(get(p, "name"));
  check_field(get(p, "address"));
}

static void check_people(const cJSON *list) {
  CHECK(cJSON_IsArray(list));
  CHECK(cJSON_GetArraySize(list) <= MAIL_MAX_LIST);
  const cJSON *p;
  cJSON_ArrayForEach(p, list) check_person(p);
}

static void check_event(const cJSON *ev, size_t max_text, size_t raw_len) {
  CHECK(cJSON_IsObject(ev));
  check_strings(ev);
  check_person(get(ev, "from"));
  CHECK(cJSON_IsNull(get(ev, "reply_to")) || cJSON_IsObject(get(ev, "reply_to")));
  if (cJSON_IsObject(get(ev, "reply_to"))) check_person(get(ev, "reply_to"));
  check_people(get(ev, "to"));
  check_people(get(ev, "cc"));
  CHECK(cJSON_IsString(get(ev, "subject")));
  check_field(get(ev, "subject"));
  static const char *const nullable[] = {"date", "message_id", "in_reply_to", "body_type"};
  for (size_t i = 0; i < sizeof nullable / sizeof nullable[0]; i++) {
    CHECK(str_or_null(get(ev, nullable[i])));
    check_field(get(ev, nullable[i]));
  }
  const cJSON *refs = get(ev, "references"), *r;
  CHECK(cJSON_IsArray(refs) && cJSON_GetArraySize(refs) <= MAIL_MAX_LIST);
  cJSON_ArrayForEach(r, refs) CHECK(cJSON_IsString(r) && *r->valuestring);

  const cJSON *text = get(ev, "text"), *full = get(ev, "full_text"), *snip = get(ev, "snippet");
  CHECK(cJSON_IsString(text) && cJSON_IsString(full) && cJSON_IsString(snip));
  CHECK(strlen(text->valuestring) <= max_text);
  CHECK(strlen(full->valuestring) <= max_text);
  CHECK(chars(snip->valuestring) <= MAIL_SNIPPET_CHARS + 1);
  CHECK(cJSON_IsBool(get(ev, "text_truncated")));
  CHECK(cJSON_IsBool(get(ev, "full_text_truncated")));

  const cJSON *atts = get(ev, "attachments"), *a;
  CHECK(cJSON_IsArray(atts) && cJSON_GetArraySize(atts) <= MAIL_MAX_LIST);
  cJSON_ArrayForEach(a, atts) {
    CHECK(str_or_null(get(a, "filename")));
    check_field(get(a, "filename"));
    CHECK(cJSON_IsString(get(a, "content_type")));
    CHECK(cJSON_IsNumber(get(a, "size")) && get(a, "size")->valuedouble >= 0);
    CHECK(cJSON_IsBool(get(a, "inline")));
  }
  const cJSON *h = get(ev, "headers");
  CHECK(cJSON_IsObject(h));
  static const char *const hk[] = {"auto_submitted", "precedence", "list_id", "return_path",
                                   "x_autoreply"};
  for (size_t i = 0; i < sizeof hk / sizeof hk[0]; i++) {
    CHECK(str_or_null(get(h, hk[i])));
    check_field(get(h, hk[i]));
  }
  CHECK(cJSON_IsNumber(get(ev, "size")) && get(ev, "size")->valuedouble == (double)raw_len);

  char *printed = cJSON_PrintUnformatted(ev);
  CHECK(printed);
  cJSON *back = cJSON_Parse(printed);
  CHECK(back && cJSON_Compare(ev, back, 1));
  cJSON_Delete(back);
  free(printed);
}

static void check_filter(const cJSON *ev) {
  static const char *const own[] = {"me@example.com"};
  const mail_filter filters[] = {
      {0},
      {.own = own, .n_own = 1, .from = "(?i)@example\\.(com|org)$", .subject = "^(Re|Fwd):"},
      {.keep_automated = 1, .skip_to = "^sales@", .skip_subject = "(?i)unsubscribe"},
  };
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    char why[256];
    memset(why, 'x', sizeof why);
    int r = mail_skip_reason(ev, &filters[i], why, sizeof why);
    CHECK(r == 0 || r == 1);
    CHECK(memchr(why, '\0', sizeof why) != NULL);
    CHECK((r == 0) == (why[0] == '\0'));
    CHECK(clean_utf8(why, strlen(why)));
  }
}

static void run_parse(const char *raw, size_t len, size_t max_text) {
  mail_parse_opts o = {.max_text = max_text};
  cJSON *ev = NULL;
  perr e;
  int rc = mail_parse(raw, len, &o, &ev, &e);
  CHECK(rc == 0 && ev);
  check_event(ev, max_text ? max_text : MAIL_MAX_TEXT, len);
  check_filter(ev);
  cJSON_Delete(ev);
}

static void run_html(const char *s, size_t n) {
  buf in, out;
  buf_init(&in, BUF_UNLIMITED);
  buf_init(&out, BUF_UNLIMITED);
  CHECK(mail_clean(&in, s, n, MAIL_CLEAN_BODY) == 0);
  int r = html_to_text(&out, in.data ? in.data : "", in.len, HTML_LIMIT);
  CHECK(r == 0 || r == 1);
  CHECK(out.len <= HTML_LIMIT);
  if (r == 1) CHECK(out.len + 4 > HTML_LIMIT);
  check_body_text(&out);
  buf_release(&in);
  buf_release(&out);
}

static void run_text(const char *s, size_t n) {
  buf in, out;
  buf_init(&in, BUF_UNLIMITED);
  buf_init(&out, BUF_UNLIMITED);
  CHECK(mail_clean(&in, s, n, MAIL_CLEAN_BODY) == 0);
  check_body_text(&in);
  const char *t = in.data ? in.data : "";
  for (int delsp = 0; delsp < 2; delsp++) {
    CHECK(mail_unflow(&out, t, in.len, delsp) == 0);
    check_body_text(&out);
    buf_reset(&out);
  }
  CHECK(mail_trim_quoted(&out, t, in.len) == 0);
  check_body_text(&out);
  CHECK(out.len <= in.len);
  buf_reset(&out);
  CHECK(mail_snippet(&out, t, in.len, MAIL_SNIPPET_CHARS) == 0);
  check_body_text(&out);
  CHECK(!out.data || (chars(out.data) <= MAIL_SNIPPET_CHARS + 1 && !strchr(out.data, '\n')));
  buf_release(&in);
  buf_release(&out);
}

static void run_charset(const char *s, size_t n) {
  const char *nl = memchr(s, '\n', n);
  size_t cn = nl ? (size_t)(nl - s) : n;
  char *charset = malloc(cn + 1);
  CHECK(charset);
  memcpy(charset, s, cn);
  charset[cn] = '\0';
  const char *body = nl ? nl + 1 : s + n;
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  CHECK(mail_to_utf8(&out, charset, body, (size_t)(s + n - body)) == 0);
  check_body_text(&out);
  buf_release(&out);
  free(charset);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = (unsigned)(uint8_t)(data[0] - '0') % 5;
  const char *rest = (const char *)data + 1;
  size_t n = size - 1;
  switch (mode) {
    case 0: run_parse(rest, n, 0); break;
    case 1: run_parse(rest, n, SMALL_TEXT); break;
    case 2: run_html(rest, n); break;
    case 3: run_text(rest, n); break;
    default: run_charset(rest, n); break;
  }
  return 0;
}
