/*
 * imap_parse: transcripts as libcurl hands them to the header callback
 * (greeting, CAPABILITY, LOGIN, curl's own SELECT, then our command),
 * cut to the last command and parsed.  Response texts follow RFC 3501 /
 * RFC 9051 examples and what Dovecot 2.3 and Gmail send; literals and
 * quoted names with escapes, modified UTF-7 kept as sent; malformed input
 * fails without reading past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/imap_parse.h"

#define LEN(s) (sizeof(s) - 1)

/* A whole transfer on a new connection: everything before A004 belongs to
 * login and curl's SELECT. */
static const char examine_transcript[] =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] "
    "Dovecot ready.\r\n"
    "A001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"
    "* CAPABILITY IMAP4rev1 SASL-IR UIDPLUS SPECIAL-USE\r\n"
    "A002 OK Logged in\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* 9 EXISTS\r\n"
    "* OK [UIDVALIDITY 1111] UIDs valid\r\n"
    "* OK [UIDNEXT 10] Predicted next UID\r\n"
    "A003 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
    "* 3 EXISTS\r\n"
    "* 0 RECENT\r\n"
    "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
    "* OK [UIDNEXT 4] Predicted next UID\r\n"
    "* OK [HIGHESTMODSEQ 5] Highest\r\n"
    "A004 OK [READ-ONLY] Examine completed (0.001 + 0.000 secs).\r\n";

static void test_last_command_and_examine(void **state) {
  (void)state;
  size_t n = LEN(examine_transcript);
  size_t off = imap_last_command(examine_transcript, n);
  assert_true(off > 0);
  assert_memory_equal(examine_transcript + off, "* FLAGS", 7);
  imap_mailbox_info info;
  perr e;
  assert_int_equal(imap_parse_select(examine_transcript + off, n - off, &info, &e), 0);
  assert_true(info.has_uidvalidity && info.has_uidnext && info.has_exists);
  assert_int_equal(info.uidvalidity, 1700000000u);
  assert_int_equal(info.uidnext, 4);
  assert_int_equal(info.exists, 3);

  size_t len;
  const char *t = imap_last_tagged(examine_transcript, n, &len);
  assert_non_null(t);
  assert_int_equal(len, strlen("OK [READ-ONLY] Examine completed (0.001 + 0.000 secs)."));
  assert_memory_equal(t, "OK [READ-ONLY]", 14);

  assert_null(imap_last_refusal(examine_transcript, n, &len));
  const char refused[] =
      "A3 NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n"
      "* BYE Logging out\r\nA4 OK Logout completed.\r\n";
  t = imap_last_refusal(refused, LEN(refused), &len);
  assert_non_null(t);
  assert_int_equal(len, strlen("NO [NONEXISTENT] Mailbox doesn't exist: Nope"));
  t = imap_last_tagged(refused, LEN(refused), &len);
  assert_memory_equal(t, "OK Logout", 9);

  /* No tagged line at all: the whole input is "the last command". */
  assert_int_equal(imap_last_command("* 1 EXISTS\r\n", 12), 0);
  assert_null(imap_last_tagged("* 1 EXISTS\r\n", 12, &len));
}

static void test_select_missing_and_malformed(void **state) {
  (void)state;
  imap_mailbox_info info;
  perr e;
  const char none[] = "* 2 EXISTS\r\nA1 OK done\r\n";
  assert_int_equal(imap_parse_select(none, LEN(none), &info, &e), 0);
  assert_false(info.has_uidvalidity);
  assert_true(info.has_exists);
  const char bad[] = "* OK [UIDVALIDITY 99999999999] x\r\nA1 OK done\r\n";
  assert_int_equal(imap_parse_select(bad, LEN(bad), &info, &e), -1);
  const char bad2[] = "* OK [UIDNEXT abc] x\r\n";
  assert_int_equal(imap_parse_select(bad2, LEN(bad2), &info, &e), -1);
  /* Cut off mid-line: no crash, nothing found. */
  const char cut[] = "* OK [UIDVALIDITY 12";
  assert_int_equal(imap_parse_select(cut, LEN(cut), &info, &e), -1);
}

static void test_status(void **state) {
  (void)state;
  imap_mailbox_info info;
  perr e;
  const char s[] =
      "* STATUS \"INBOX\" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 3)\r\n"
      "A9 OK Status completed.\r\n";
  assert_int_equal(imap_parse_status(s, LEN(s), &info, &e), 0);
  assert_int_equal(info.exists, 231);
  assert_int_equal(info.uidnext, 44292);
  assert_int_equal(info.uidvalidity, 3);
  /* A literal name, unknown items skipped. */
  const char lit[] = "* STATUS {5}\r\nA b c (UNSEEN 2 UIDVALIDITY 7)\r\nA9 OK x\r\n";
  assert_int_equal(imap_parse_status(lit, LEN(lit), &info, &e), 0);
  assert_int_equal(info.uidvalidity, 7);
  assert_false(info.has_uidnext);
  const char bad[] = "* STATUS INBOX (MESSAGES x)\r\n";
  assert_int_equal(imap_parse_status(bad, LEN(bad), &info, &e), -1);
}

static void test_search(void **state) {
  (void)state;
  uint32_t *u;
  size_t n;
  perr e;
  const char s[] = "* SEARCH 9 2 4 2\r\n* 5 EXISTS\r\n* SEARCH 4294967295\r\nA5 OK Search done\r\n";
  assert_int_equal(imap_parse_search(s, LEN(s), &u, &n, &e), 0);
  assert_int_equal(n, 4);
  assert_int_equal(u[0], 2);
  assert_int_equal(u[1], 4);
  assert_int_equal(u[2], 9);
  assert_int_equal(u[3], 4294967295u);
  free(u);

  const char empty[] = "* SEARCH\r\nA5 OK Search done\r\n";
  assert_int_equal(imap_parse_search(empty, LEN(empty), &u, &n, &e), 0);
  assert_int_equal(n, 0);
  assert_null(u);

  const char modseq[] = "* SEARCH 2 5 (MODSEQ 917162500)\r\n";
  assert_int_equal(imap_parse_search(modseq, LEN(modseq), &u, &n, &e), 0);
  assert_int_equal(n, 2);
  free(u);

  const char over[] = "* SEARCH 1 4294967296\r\n";
  assert_int_equal(imap_parse_search(over, LEN(over), &u, &n, &e), -1);
  const char word[] = "* SEARCH 1 x\r\n";
  assert_int_equal(imap_parse_search(word, LEN(word), &u, &n, &e), -1);
  const char zero[] = "* SEARCH 0\r\n";
  assert_int_equal(imap_parse_search(zero, LEN(zero), &u, &n, &e), -1);
}

static void test_list_special_use(void **state) {
  (void)state;
  /* Gmail-style names, a quoted name with escapes, a literal holding a
   * quote and a space, modified UTF-7, NIL delimiter, extended data. */
  const char s[] =
      "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
      "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n"
      "* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n"
      "* LIST (\\Drafts \\HasNoChildren) \"/\" \"[Gmail]/Drafts\"\r\n"
      "* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n"
      "* LIST (\\HasNoChildren) \".\" \"Say \\\"hi\\\" \\\\ now\"\r\n"
      "* LIST (\\HasNoChildren) \"/\" {9}\r\nodd \"name\r\n"
      "* LIST (\\HasNoChildren) \"/\" &AMk-t&AOk-\r\n"
      "* LIST (\\Noselect) NIL Flat\r\n"
      "* LIST (\\Subscribed) \"\\\\\" Back (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
      "A7 OK List completed.\r\n";
  imap_folder *f;
  size_t n;
  perr e;
  assert_int_equal(imap_parse_list(s, LEN(s), &f, &n, &e), 0);
  assert_int_equal(n, 10);
  assert_string_equal(f[0].name, "INBOX");
  assert_int_equal(f[0].delim, '/');
  assert_true(f[1].attrs & IMAP_ATTR_NOSELECT);
  assert_true(f[1].attrs & IMAP_ATTR_HASCHILDREN);
  assert_string_equal(f[2].name, "[Gmail]/All Mail");
  assert_true(f[2].attrs & IMAP_ATTR_ALL);
  assert_string_equal(f[3].name, "[Gmail]/Drafts");
  assert_int_equal(f[3].attrs, IMAP_ATTR_DRAFTS);
  assert_true(f[4].attrs & IMAP_ATTR_SENT);
  assert_string_equal(f[5].name, "Say \"hi\" \\ now");
  assert_int_equal(f[5].delim, '.');
  assert_string_equal(f[6].name, "odd \"name");
  assert_string_equal(f[7].name, "&AMk-t&AOk-");
  assert_int_equal(f[8].delim, 0);
  assert_string_equal(f[9].name, "Back");
  assert_int_equal(f[9].delim, '\\');

  const imap_folder *d = imap_folder_find(f, n, IMAP_ATTR_DRAFTS);
  assert_non_null(d);
  assert_string_equal(d->name, "[Gmail]/Drafts");
  assert_null(imap_folder_find(f, n, IMAP_ATTR_TRASH));
  imap_folders_free(f, n);

  /* A \Drafts folder marked \Noselect is not a place to append to. */
  const char nosel[] = "* LIST (\\Drafts \\Noselect) \"/\" D\r\n";
  assert_int_equal(imap_parse_list(nosel, LEN(nosel), &f, &n, &e), 0);
  assert_null(imap_folder_find(f, n, IMAP_ATTR_DRAFTS));
  imap_folders_free(f, n);

  const char bad[] = "* LIST \\Drafts \"/\" D\r\n";
  assert_int_equal(imap_parse_list(bad, LEN(bad), &f, &n, &e), -1);
  const char unterminated[] = "* LIST () \"/\" \"Drafts\r\n";
  assert_int_equal(imap_parse_list(unterminated, LEN(unterminated), &f, &n, &e), -1);
  /* A literal announcing more than was sent. */
  const char short_lit[] = "* LIST () \"/\" {50}\r\nabc\r\n";
  assert_int_equal(imap_parse_list(short_lit, LEN(short_lit), &f, &n, &e), -1);
}

/* A literal whose bytes look like responses must not end the response or
 * be taken for a tagged line. */
static void test_literal_with_fake_lines(void **state) {
  (void)state;
  const char s[] =
      "* LIST () \"/\" {21}\r\nA9 OK x\r\n* SEARCH 1 2\r\n"
      "A10 OK List completed.\r\n";
  imap_folder *f;
  size_t n;
  perr e;
  assert_int_equal(imap_parse_list(s, LEN(s), &f, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(f[0].name, "A9 OK x\r\n* SEARCH 1 2");
  imap_folders_free(f, n);
  uint32_t *u;
  assert_int_equal(imap_parse_search(s, LEN(s), &u, &n, &e), 0);
  assert_int_equal(n, 0);
  assert_int_equal(imap_last_command(s, LEN(s)), 0);
}

static void test_fetch_flags(void **state) {
  (void)state;
  unsigned fl;
  perr e;
  const char s[] =
      "* 1 FETCH (UID 3 FLAGS (\\Seen))\r\n"
      "* 2 FETCH (FLAGS (\\Draft \\Recent $Label) UID 7)\r\n"
      "A8 OK Store completed.\r\n";
  assert_int_equal(imap_parse_fetch_flags(s, LEN(s), 7, &fl, &e), 1);
  assert_int_equal(fl, IMAP_FLAG_DRAFT | IMAP_FLAG_RECENT);
  assert_int_equal(imap_parse_fetch_flags(s, LEN(s), 3, &fl, &e), 1);
  assert_int_equal(fl, IMAP_FLAG_SEEN);
  assert_int_equal(imap_parse_fetch_flags(s, LEN(s), 9, &fl, &e), 0);
  /* No UID item, a single FETCH: it is the one. Other items skipped. */
  const char one[] = "* 4 FETCH (MODSEQ (12) BODY[HEADER] {5}\r\nab)\r\n FLAGS (\\Flagged))\r\n";
  assert_int_equal(imap_parse_fetch_flags(one, LEN(one), 5, &fl, &e), 1);
  assert_int_equal(fl, IMAP_FLAG_FLAGGED);
  const char bad[] = "* 4 FETCH (UID x)\r\n";
  assert_int_equal(imap_parse_fetch_flags(bad, LEN(bad), 5, &fl, &e), -1);
}

static void test_appenduid(void **state) {
  (void)state;
  uint32_t v, u;
  const char s[] = "+ OK\r\nA6 OK [APPENDUID 1700000001 12] Append completed.\r\n";
  assert_int_equal(imap_parse_appenduid(s, LEN(s), &v, &u), 1);
  assert_int_equal(v, 1700000001u);
  assert_int_equal(u, 12);
  const char none[] = "A6 OK Append completed.\r\n";
  assert_int_equal(imap_parse_appenduid(none, LEN(none), &v, &u), 0);
  const char no[] = "A6 NO [APPENDUID 1 2] odd\r\n";
  assert_int_equal(imap_parse_appenduid(no, LEN(no), &v, &u), 0);
}

static void test_writers(void **state) {
  (void)state;
  buf b;
  buf_init(&b, 4096);
  assert_int_equal(imap_put_quoted(&b, "a \"b\" \\c"), 0);
  assert_string_equal(b.data, "\"a \\\"b\\\" \\\\c\"");
  buf_reset(&b);
  assert_int_equal(imap_put_quoted(&b, "x\r\ny"), -1);
  buf_release(&b);
  buf_init(&b, 4096);

  assert_int_equal(imap_put_flags(&b, IMAP_FLAG_DRAFT | IMAP_FLAG_SEEN | IMAP_FLAG_RECENT), 0);
  assert_string_equal(b.data, "(\\Seen \\Draft)");
  buf_reset(&b);
  assert_int_equal(imap_put_flags(&b, 0), 0);
  assert_string_equal(b.data, "()");
  buf_reset(&b);

  assert_int_equal(imap_put_since(&b, 2024, 2, 9), 0);
  assert_string_equal(b.data, "SINCE 9-Feb-2024");
  assert_int_equal(imap_put_since(&b, 2024, 13, 1), -1);
  buf_release(&b);
  buf_init(&b, 4096);

  assert_int_equal(imap_put_url_mailbox(&b, "[Gmail]/Drafts & 100%.x"), 0);
  assert_string_equal(b.data, "%5BGmail%5D%2FDrafts%20%26%20100%25%2Ex");
  buf_reset(&b);
  assert_int_equal(imap_put_custom(&b, "UID SEARCH HEADER \"Message-ID\" \"<a%b@x>\""), 0);
  assert_string_equal(b.data, "UID SEARCH HEADER \"Message-ID\" \"<a%25b@x>\"");
  buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_last_command_and_examine),
      cmocka_unit_test(test_select_missing_and_malformed),
      cmocka_unit_test(test_status),
      cmocka_unit_test(test_search),
      cmocka_unit_test(test_list_special_use),
      cmocka_unit_test(test_literal_with_fake_lines),
      cmocka_unit_test(test_fetch_flags),
      cmocka_unit_test(test_appenduid),
      cmocka_unit_test(test_writers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
