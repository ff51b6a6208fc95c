/*
 * mime: every message of tests/mail/corpus gives the event that
 * tests/mail/expected.json describes (subject, sender, text, skip decision,
 * attachments, ids), with clean UTF-8 throughout; the caps (text, message
 * size); HTML to text, quote trimming, charset fallbacks, format=flowed,
 * snippets; and each skip rule and pattern of mail_filter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
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
#include "testutil.h"

#define CORPUS PROMPTD_SOURCE_DIR "/tests/mail/corpus"
#define EXPECTED PROMPTD_SOURCE_DIR "/tests/mail/expected.json"

static cJSON *parse_ok(const char *raw, size_t len, const mail_parse_opts *o) {
  cJSON *ev = NULL;
  perr e = {{0}};
  if (mail_parse(raw, len, o, &ev, &e)) fail_msg("mail_parse: %s", e.msg);
  assert_non_null(ev);
  return ev;
}

static cJSON *parse_str(const char *raw) { return parse_ok(raw, strlen(raw), NULL); }

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsString(v)) fail_msg("%s is not a string", key);
  return v->valuestring;
}

/* Every string in j (keys included) is valid UTF-8 without NUL. */
static void assert_clean(const cJSON *j, const char *name) {
  for (const cJSON *c = j->child; c; c = c->next) {
    if (c->string && !utf8_valid(c->string, strlen(c->string), NULL))
      fail_msg("%s: key not UTF-8", name);
    if (cJSON_IsString(c) && !utf8_valid(c->valuestring, strlen(c->valuestring), NULL))
      fail_msg("%s: %s not UTF-8", name, c->string ? c->string : "[]");
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) assert_clean(c, name);
  }
}

static void check_text(const cJSON *ev, const cJSON *exp, const char *name) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(exp, "text");
  if (cJSON_IsString(t) && strcmp(str(ev, "text"), t->valuestring) != 0)
    fail_msg("%s: text\n got: [%s]\nwant: [%s]", name, str(ev, "text"), t->valuestring);
  static const struct {
    const char *key, *field;
    int want;
  } subs[] = {{"text_contains", "text", 1},
              {"text_excludes", "text", 0},
              {"full_text_contains", "full_text", 1}};
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(exp, subs[i].key)) {
      int has = strstr(str(ev, subs[i].field), s->valuestring) != NULL;
      if (has != subs[i].want)
        fail_msg("%s: %s %s [%s]: [%s]", name, subs[i].field, subs[i].want ? "lacks" : "holds",
                 s->valuestring, str(ev, subs[i].field));
    }
  }
}

static void check_message(const char *name, const cJSON *exp, const char *account) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", CORPUS, name);
  size_t len = 0;
  char *raw = tu_read_file(path, &len);
  if (!raw) fail_msg("cannot read %s", path);
  cJSON *ev = parse_ok(raw, len, NULL);
  free(raw);
  assert_clean(ev, name);

  const cJSON *subject = cJSON_GetObjectItemCaseSensitive(exp, "subject");
  if (subject && strcmp(str(ev, "subject"), subject->valuestring) != 0)
    fail_msg("%s: subject [%s], want [%s]", name, str(ev, "subject"), subject->valuestring);
  const cJSON *subj_has = cJSON_GetObjectItemCaseSensitive(exp, "subject_contains");
  if (subj_has && !strstr(str(ev, "subject"), subj_has->valuestring))
    fail_msg("%s: subject [%s] lacks [%s]", name, str(ev, "subject"), subj_has->valuestring);
  const cJSON *from = cJSON_GetObjectItemCaseSensitive(ev, "from");
  const cJSON *f;
  cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(exp, "from")) {
    if (strcmp(str(from, f->string), f->valuestring) != 0)
      fail_msg("%s: from.%s [%s], want [%s]", name, f->string, str(from, f->string),
               f->valuestring);
  }
  check_text(ev, exp, name);

  const cJSON *mid = cJSON_GetObjectItemCaseSensitive(exp, "message_id");
  const cJSON *got_mid = cJSON_GetObjectItemCaseSensitive(ev, "message_id");
  if (cJSON_IsNull(mid)
          ? !cJSON_IsNull(got_mid)
          : !cJSON_IsString(got_mid) || strcmp(got_mid->valuestring, mid->valuestring))
    fail_msg("%s: message_id [%s]", name, cJSON_IsString(got_mid) ? got_mid->valuestring : "null");
  int want_atts = cJSON_GetObjectItemCaseSensitive(exp, "attachments")->valueint;
  if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "attachments")) != want_atts)
    fail_msg("%s: %d attachments, want %d", name,
             cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ev, "attachments")), want_atts);
  /* Exact fields compared as JSON. */
  static const char *const exact[] = {"date", "in_reply_to", "references", "reply_to",
                                      "to",   "cc",          "body_type"};
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(exp, exact[i]);
    if (want && !cJSON_Compare(want, cJSON_GetObjectItemCaseSensitive(ev, exact[i]), 1))
      fail_msg("%s: %s differs", name, exact[i]);
  }

  const char *own[] = {account};
  mail_filter filter = {.own = own, .n_own = 1};
  char why[256];
  int skip = mail_skip_reason(ev, &filter, why, sizeof why);
  int want_skip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "skip"));
  if (skip != want_skip) fail_msg("%s: skip %d (%s), want %d", name, skip, why, want_skip);
  const cJSON *reason = cJSON_GetObjectItemCaseSensitive(exp, "skip_reason");
  if (cJSON_IsString(reason) && !strstr(why, reason->valuestring))
    fail_msg("%s: skip reason [%s] lacks [%s]", name, why, reason->valuestring);
  if (!skip) assert_string_equal(why, "");
  cJSON_Delete(ev);
}

static void corpus_matches_expectations(void **state) {
  (void)state;
  size_t len = 0;
  char *text = tu_read_file(EXPECTED, &len);
  assert_non_null(text);
  cJSON *doc = cJSON_ParseWithLength(text, len);
  free(text);
  assert_non_null(doc);
  const char *account = str(doc, "account");
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(doc, "messages");

  /* Every file has an expectation and every expectation a file. */
  DIR *d = opendir(CORPUS);
  assert_non_null(d);
  int files = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (n < 4 || strcmp(de->d_name + n - 4, ".eml") != 0) continue;
    if (!cJSON_GetObjectItemCaseSensitive(msgs, de->d_name))
      fail_msg("%s has no expectation", de->d_name);
    files++;
  }
  closedir(d);
  assert_true(files >= 30);
  assert_int_equal(files, cJSON_GetArraySize(msgs));

  const cJSON *m;
  cJSON_ArrayForEach(m, msgs) check_message(m->string, m, account);
  cJSON_Delete(doc);
}

static void event_has_fixed_fields(void **state) {
  (void)state;
  static const char *const keys[] = {"from",
                                     "reply_to",
                                     "to",
                                     "cc",
                                     "subject",
                                     "date",
                                     "message_id",
                                     "in_reply_to",
                                     "references",
                                     "text",
                                     "full_text",
                                     "text_truncated",
                                     "snippet",
                                     "attachments",
                                     "headers",
                                     "size",
                                     "full_text_truncated",
                                     "body_type"};
  /* Even no input at all gives the whole shape. */
  const char *inputs[] = {"", "\r\n\r\n", "garbage without headers", "Subject: x\r\n"};
  for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
    cJSON *ev = parse_str(inputs[k]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (!cJSON_HasObjectItem(ev, keys[i])) fail_msg("input %zu lacks %s", k, keys[i]);
    assert_true(cJSON_IsString(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "from"), "address")));
    cJSON_Delete(ev);
  }
  cJSON *ev = NULL;
  perr e = {{0}};
  assert_int_equal(mail_parse(NULL, 0, NULL, &ev, &e), 0);
  cJSON_Delete(ev);
}

static void text_is_capped(void **state) {
  (void)state;
  buf raw;
  buf_init(&raw, BUF_UNLIMITED);
  assert_int_equal(buf_adds(&raw,
                            "From: a@example.com\r\nSubject: long\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n\r\n"),
                   0);
  for (int i = 0; i < 400; i++) assert_int_equal(buf_adds(&raw, "h\xC3\xA9llo w\xC3\xB6rld. "), 0);
  mail_parse_opts o = {.max_text = 1001}; /* falls inside a two-byte character */
  cJSON *ev = parse_ok(raw.data, raw.len, &o);
  assert_true(strlen(str(ev, "text")) <= 1001);
  assert_true(strlen(str(ev, "full_text")) <= 1001);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "text_truncated")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "full_text_truncated")));
  assert_clean(ev, "capped");
  /* The snippet stops at 200 characters and says so. */
  const char *snip = str(ev, "snippet");
  size_t len = strlen(snip);
  assert_true(len > 3 && !strcmp(snip + len - 3, "\xE2\x80\xA6"));
  cJSON_Delete(ev);

  /* A message over the size limit is refused, not parsed. */
  mail_parse_opts small = {.max_message = 100};
  perr e = {{0}};
  ev = NULL;
  assert_int_equal(mail_parse(raw.data, raw.len, &small, &ev, &e), -1);
  assert_null(ev);
  assert_non_null(strstr(e.msg, "100-byte limit"));
  buf_release(&raw);
}

static void html_body_is_capped(void **state) {
  (void)state;
  buf raw;
  buf_init(&raw, BUF_UNLIMITED);
  assert_int_equal(buf_adds(&raw,
                            "From: a@example.com\r\nSubject: html\r\n"
                            "Content-Type: text/html; charset=utf-8\r\n\r\n"),
                   0);
  for (int i = 0; i < 300; i++) assert_int_equal(buf_adds(&raw, "<p>paragraph &eacute;</p>"), 0);
  mail_parse_opts o = {.max_text = 200};
  cJSON *ev = parse_ok(raw.data, raw.len, &o);
  assert_true(strlen(str(ev, "text")) <= 200);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "text_truncated")));
  assert_string_equal(str(ev, "body_type"), "text/html");
  cJSON_Delete(ev);
  buf_release(&raw);
}

/* Hundreds of nested multiparts: GMime would take quadratic time, so only
 * the headers are read and the text says it was cut. */
static void overnested_message_gives_headers_only(void **state) {
  (void)state;
  buf raw;
  buf_init(&raw, BUF_UNLIMITED);
  assert_int_equal(buf_adds(&raw,
                            "From: Deep <deep@example.com>\r\nSubject: deep\r\n"
                            "Content-Type: multipart/mixed; boundary=b0\r\n\r\n"),
                   0);
  for (int i = 1; i < 400; i++)
    assert_int_equal(
        buf_printf(&raw, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i - 1, i),
        0);
  assert_int_equal(buf_adds(&raw, "--b399\r\nContent-Type: text/plain\r\n\r\nhidden\r\n"), 0);
  cJSON *ev = parse_ok(raw.data, raw.len, NULL);
  assert_string_equal(str(ev, "subject"), "deep");
  assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(ev, "from"), "address"),
                      "deep@example.com");
  assert_string_equal(str(ev, "text"), "");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "text_truncated")));
  cJSON_Delete(ev);
  buf_release(&raw);
}

static void html(const char *in, const char *want) {
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  assert_int_equal(html_to_text(&out, in, strlen(in), 1 << 20), 0);
  if (strcmp(out.data ? out.data : "", want) != 0)
    fail_msg("html [%s]\n got: [%s]\nwant: [%s]", in, out.data ? out.data : "", want);
  buf_release(&out);
}

static void html_to_readable_text(void **state) {
  (void)state;
  html("<p>a</p><p>b</p>", "a\n\nb");
  html("  one\n  two   three ", "one two three");
  html("x<br>y<br><br>z", "x\ny\n\nz");
  html("<script>alert('<p>no</p>')</script>ok<style>p{}</style>", "ok");
  html("<head><title>T</title></head><body>B</body>", "B");
  html("<head><title>T</title>no end of head<body>B</body>", "B");
  html("<a href=\"https://x.example/a?b=1&amp;c=2\">here</a>",
       "here (https://x.example/a?b=1&c=2)");
  html("<a href=\"https://x.example/\">x.example</a>", "x.example");
  html("<a href=\"mailto:a@b.example\">a@b.example</a>", "a@b.example");
  html("<a href=\"#top\">top</a> <a href=\"javascript:void(0)\">js</a>", "top js");
  html("<a href=\"https://x.example/img\"><img src=\"cid:1\"></a>", "");
  html("&lt;&gt;&amp;&quot;&#39;&#x41;&#66;&eacute;&nbsp;&unknown; & &#0; &#146;",
       "<>&\"'AB\xC3\xA9 &unknown; & \xEF\xBF\xBD \xE2\x80\x99");
  html("<ul><li>one<li>two</ul>after", "- one\n- two\nafter");
  html("<pre>  a\n    b</pre>c", "  a\n    b\nc");
  html("<blockquote>q1<br>q2<blockquote>deep</blockquote></blockquote>me",
       "> q1\n> q2\n>> deep\nme");
  html("<!-- hidden --><!DOCTYPE html><?xml x?>shown", "shown");
  html("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc");
  html("broken < tag and <unclosed", "broken < tag and");
  html("<div", "");
  html("<h1>Title</h1>text", "Title\n\ntext");

  /* The limit cuts at a character boundary and says so. */
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  assert_int_equal(html_to_text(&out, "\xC3\xA9\xC3\xA9\xC3\xA9", 6, 3), 1);
  assert_string_equal(out.data, "\xC3\xA9");
  buf_release(&out);
}

static void trim(const char *in, const char *want) {
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  assert_int_equal(mail_trim_quoted(&out, in, strlen(in)), 0);
  if (strcmp(out.data ? out.data : "", want) != 0)
    fail_msg("trim [%s]\n got: [%s]\nwant: [%s]", in, out.data ? out.data : "", want);
  buf_release(&out);
}

static void quotes_and_signatures_trimmed(void **state) {
  (void)state;
  trim("Yes.\n\nOn Mon, 1 Jan 2024, Bob <b@x> wrote:\n> Question?\n", "Yes.");
  trim("Yes.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <b@x>\nwrote:\n\n> Question?\n", "Yes.");
  trim("Oui.\n\nLe lun. 1 janv. 2024, Bob a écrit :\n> Question ?\n", "Oui.");
  trim("Ja.\n\nAm 01.01.2024 schrieb Bob:\n> Frage?\n", "Ja.");
  trim("Answer\n-- \nBob\nCEO\n", "Answer");
  trim("Answer\n\n-----Original Message-----\nFrom: x\nold text\n", "Answer");
  trim("Answer\n________________________________\nFrom: x\n", "Answer");
  trim("Answer\n\nFrom: Sales <s@x>\nSent: Monday\nTo: me\n\nold\n", "Answer");
  trim("> a\nreply a\n> b\nreply b\n", "reply a\nreply b");
  /* A line that merely ends with a colon is kept. */
  trim("Here is what I think:\nit is fine\n", "Here is what I think:\nit is fine");
  trim("Please note what you wrote:\n> x\nmy answer\n", "my answer");
  /* Only a quote: kept whole rather than sending nothing. */
  trim("> only quoted\n> text\n", "> only quoted\n> text");
  trim("\n\n  \nA\n\n\n\nB  \n\n", "A\n\nB");
  trim("", "");
}

static void charsets_and_flowed(void **state) {
  (void)state;
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  /* Undeclared: UTF-8 when valid, otherwise Windows-1252. */
  assert_int_equal(mail_to_utf8(&out, NULL, "caf\xC3\xA9", 5), 0);
  assert_string_equal(out.data, "caf\xC3\xA9");
  buf_reset(&out);
  assert_int_equal(mail_to_utf8(&out, NULL, "caf\xE9 \x80", 6), 0);
  assert_string_equal(out.data, "caf\xC3\xA9 \xE2\x82\xAC");
  buf_reset(&out);
  /* ISO-8859-1 read as Windows-1252, as senders mean it. */
  assert_int_equal(mail_to_utf8(&out, "ISO-8859-1", "\x93hi\x94", 4), 0);
  assert_string_equal(out.data, "\xE2\x80\x9Chi\xE2\x80\x9D");
  buf_reset(&out);
  /* Unknown or hostile charset names fall back instead of failing. */
  assert_int_equal(mail_to_utf8(&out, "x-no-such-charset", "ok\xE9", 3), 0);
  assert_string_equal(out.data, "ok\xC3\xA9");
  buf_reset(&out);
  assert_int_equal(mail_to_utf8(&out, "UTF-8//IGNORE", "ok", 2), 0);
  assert_string_equal(out.data, "ok");
  buf_reset(&out);
  /* A truncated multibyte sequence at the end becomes one U+FFFD. */
  assert_int_equal(mail_to_utf8(&out, "Shift_JIS", "a\x82", 2), 0);
  assert_string_equal(out.data, "a\xEF\xBF\xBD");
  buf_reset(&out);
  /* CRLF and lone CR end lines; controls go. */
  assert_int_equal(mail_clean(&out, "a\r\nb\rc\x01\x7f", 8, MAIL_CLEAN_BODY), 0);
  assert_string_equal(out.data, "a\nb\nc");
  buf_reset(&out);
  assert_int_equal(mail_clean(&out, "  a \r\n\t b  ", 11, MAIL_CLEAN_LINE), 0);
  assert_string_equal(out.data, "a b");
  buf_reset(&out);
  const char *flowed = "one \ntwo \nthree\n> q1 \n> q2\n-- \nsig";
  assert_int_equal(mail_unflow(&out, flowed, strlen(flowed), 0), 0);
  assert_string_equal(out.data, "one two three\n> q1 q2\n-- \nsig");
  buf_reset(&out);
  assert_int_equal(mail_unflow(&out, "ab \ncd", 6, 1), 0);
  assert_string_equal(out.data, "abcd");
  buf_reset(&out);
  assert_int_equal(mail_snippet(&out, " a\n\n b\tc ", 9, 200), 0);
  assert_string_equal(out.data, "a b c");
  buf_release(&out);
}

static cJSON *event_with(const char *from, const char *headers) {
  char raw[1024];
  snprintf(raw, sizeof raw,
           "From: %s\r\nTo: Team <team@example.com>\r\nSubject: Hello there\r\n%s\r\nbody\r\n",
           from, headers);
  return parse_str(raw);
}

static int skips(const char *from, const char *headers, const mail_filter *f, const char *reason) {
  cJSON *ev = event_with(from, headers);
  char why[256];
  int r = mail_skip_reason(ev, f, why, sizeof why);
  cJSON_Delete(ev);
  if (r == 1 && reason && !strstr(why, reason)) fail_msg("reason [%s] lacks [%s]", why, reason);
  return r;
}

static void default_filters(void **state) {
  (void)state;
  assert_int_equal(skips("Ann <ann@example.org>", "", NULL, NULL), 0);
  assert_int_equal(skips("ann@example.org", "Auto-Submitted: no\r\n", NULL, NULL), 0);
  assert_int_equal(
      skips("ann@example.org", "Auto-Submitted: auto-generated\r\n", NULL, "Auto-Submitted"), 1);
  assert_int_equal(skips("ann@example.org", "Precedence: JUNK\r\n", NULL, "Precedence"), 1);
  assert_int_equal(skips("ann@example.org", "Precedence: first-class\r\n", NULL, NULL), 0);
  assert_int_equal(skips("ann@example.org", "List-Id: <x.example.org>\r\n", NULL, "List-Id"), 1);
  assert_int_equal(skips("ann@example.org", "Return-Path: <>\r\n", NULL, "Return-Path"), 1);
  assert_int_equal(skips("ann@example.org", "Return-Path: <ann@example.org>\r\n", NULL, NULL), 0);
  assert_int_equal(skips("postmaster@example.org", "", NULL, "system sender"), 1);
  assert_int_equal(skips("owner-list@example.org", "", NULL, "system sender"), 1);
  assert_int_equal(skips("list-request@example.org", "", NULL, "system sender"), 1);
  static const char *const noreply[] = {"noreply@x.example",    "no-reply@x.example",
                                        "No_Reply@x.example",   "do-not-reply@x.example",
                                        "DoNotReply@x.example", "noreply-billing@x.example"};
  for (size_t i = 0; i < sizeof noreply / sizeof noreply[0]; i++)
    assert_int_equal(skips(noreply[i], "", NULL, "no-reply"), 1);
  assert_int_equal(skips("reply@x.example", "", NULL, NULL), 0);
  assert_int_equal(skips("norea@x.example", "", NULL, NULL), 0);

  mail_filter keep = {.keep_automated = 1};
  assert_int_equal(skips("noreply@x.example", "Precedence: bulk\r\n", &keep, NULL), 0);

  const char *own[] = {"other@example.com", "Me@Example.com"};
  mail_filter mine = {.own = own, .n_own = 2, .keep_automated = 1};
  assert_int_equal(skips("me@example.COM", "", &mine, "account itself"), 1);
  /* Without any sender address there is no one to answer. */
  assert_int_equal(skips("undisclosed:;", "", NULL, "no sender"), 1);
}

static void pattern_filters(void **state) {
  (void)state;
  mail_filter f = {.from = "@example\\.org$"};
  assert_int_equal(skips("ann@example.org", "", &f, NULL), 0);
  assert_int_equal(skips("ann@example.net", "", &f, "from does not match"), 1);
  mail_filter byname = {.from = "^Ann"};
  assert_int_equal(skips("Ann Lee <a@example.net>", "", &byname, NULL), 0);
  mail_filter to = {.to = "^team@"};
  assert_int_equal(skips("ann@example.org", "", &to, NULL), 0);
  mail_filter to2 = {.to = "^sales@"};
  assert_int_equal(skips("ann@example.org", "", &to2, "to does not match"), 1);
  mail_filter subj = {.subject = "(?i)^hello"};
  assert_int_equal(skips("ann@example.org", "", &subj, NULL), 0);
  mail_filter subj_cs = {.subject = "^hello"};
  assert_int_equal(skips("ann@example.org", "", &subj_cs, "subject does not match"), 1);
  mail_filter skip_subj = {.skip_subject = "there$"};
  assert_int_equal(skips("ann@example.org", "", &skip_subj, "subject matches"), 1);
  mail_filter skip_from = {.skip_from = "example\\.org"};
  assert_int_equal(skips("ann@example.org", "", &skip_from, "from matches"), 1);

  mail_filter bad = {.subject = "(["};
  perr e = {{0}};
  assert_int_equal(mail_filter_check(&bad, &e), -1);
  assert_non_null(strstr(e.msg, "subject"));
  assert_int_equal(mail_filter_check(&f, &e), 0);
  assert_int_equal(mail_filter_check(NULL, &e), 0);
  cJSON *ev = event_with("ann@example.org", "");
  char why[256];
  assert_int_equal(mail_skip_reason(ev, &bad, why, sizeof why), -1);
  assert_non_null(strstr(why, "bad pattern"));
  assert_int_equal(mail_skip_reason(ev, NULL, NULL, 0), 0);
  cJSON_Delete(ev);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(corpus_matches_expectations),
      cmocka_unit_test(event_has_fixed_fields),
      cmocka_unit_test(text_is_capped),
      cmocka_unit_test(html_body_is_capped),
      cmocka_unit_test(overnested_message_gives_headers_only),
      cmocka_unit_test(html_to_readable_text),
      cmocka_unit_test(quotes_and_signatures_trimmed),
      cmocka_unit_test(charsets_and_flowed),
      cmocka_unit_test(default_filters),
      cmocka_unit_test(pattern_filters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
