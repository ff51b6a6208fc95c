/* email_reply: the reply's headers and body, checked by parsing the built
 * message back with the same MIME parser the IMAP trigger uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "actions/email_reply.h"
#include "mail/mime.h"

static void check_subject(const char *in, const char *want) {
  char *got = email_reply_subject(in);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_subject(void **state) {
  (void)state;
  check_subject("Hello", "Re: Hello");
  check_subject("Re: Hello", "Re: Hello");
  check_subject("RE: re: Aw: Hi there", "Re: Hi there");
  check_subject("Re[2]: Quote", "Re: Quote");
  check_subject("SV: Antw: Tilbud", "Re: Tilbud");
  check_subject("Reunion dinner", "Re: Reunion dinner");
  check_subject("Re[x]: odd", "Re: Re[x]: odd");
  check_subject("", "Re: ");
  check_subject(NULL, "Re: ");
}

static void test_message_id(void **state) {
  (void)state;
  char *a = email_reply_message_id(12, "draft", "orig@x.example", "support@shop.example");
  char *b = email_reply_message_id(12, "draft", "orig@x.example", "support@shop.example");
  char *c = email_reply_message_id(13, "draft", "orig@x.example", "support@shop.example");
  assert_string_equal(a, b);
  assert_string_not_equal(a, c);
  assert_true(strncmp(a, "promptd.12.draft.", 17) == 0);
  assert_non_null(strstr(a, "@shop.example"));
  free(a);
  free(b);
  free(c);
}

static cJSON *original(void) {
  return cJSON_Parse(
      "{\"from\": {\"name\": \"Jörg Müller\", \"address\": \"joerg@kunde.example\"},"
      " \"reply_to\": null,"
      " \"subject\": \"RE: Lieferung für Bestellung 4711\","
      " \"date\": \"2026-11-20T08:15:00Z\","
      " \"message_id\": \"abc.123@kunde.example\","
      " \"references\": [\"root.1@shop.example\"],"
      " \"text\": \"Wo bleibt meine Lieferung?\\nGrüße\","
      " \"full_text\": \"Wo bleibt meine Lieferung?\\nGrüße\"}");
}

static void test_build_and_parse_back(void **state) {
  (void)state;
  cJSON *orig = original();
  assert_non_null(orig);
  email_reply_opts o = {.original = orig,
                        .from_name = "Shop Support",
                        .from_address = "support@shop.example",
                        .body = "Hallo Jörg,\nIhre Bestellung ist unterwegs.",
                        .message_id = "promptd.1.draft.0a0b0c0d@shop.example",
                        .quote = 1,
                        .now_ms = 1795000000000LL};
  size_t len = 0;
  perr e;
  char *raw = email_reply_build(&o, &len, &e);
  assert_non_null(raw);
  assert_int_equal(len, strlen(raw));
  /* CRLF throughout: IMAP APPEND and SMTP want it. */
  for (size_t i = 0; i < len; i++)
    if (raw[i] == '\n') assert_true(i > 0 && raw[i - 1] == '\r');
  assert_non_null(strstr(raw, "In-Reply-To: <abc.123@kunde.example>"));
  assert_non_null(strstr(raw, "References: <root.1@shop.example> <abc.123@kunde.example>"));
  assert_null(strstr(raw, "Auto-Submitted"));
  cJSON *back = NULL;
  assert_int_equal(mail_parse(raw, len, NULL, &back, &e), 0);
  const cJSON *to = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(back, "to"), 0);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(to, "address")->valuestring,
                      "joerg@kunde.example");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(to, "name")->valuestring, "Jörg Müller");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "subject")->valuestring,
                      "Re: Lieferung für Bestellung 4711");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "message_id")->valuestring,
                      "promptd.1.draft.0a0b0c0d@shop.example");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(back, "in_reply_to")->valuestring,
                      "abc.123@kunde.example");
  const cJSON *refs = cJSON_GetObjectItemCaseSensitive(back, "references");
  assert_int_equal(cJSON_GetArraySize(refs), 2);
  assert_string_equal(cJSON_GetArrayItem(refs, 1)->valuestring, "abc.123@kunde.example");
  const char *full = cJSON_GetObjectItemCaseSensitive(back, "full_text")->valuestring;
  assert_non_null(strstr(full, "Hallo Jörg,\nIhre Bestellung ist unterwegs."));
  assert_non_null(strstr(full, "On 2026-11-20T08:15:00Z, Jörg Müller wrote:\n> Wo bleibt meine "
                               "Lieferung?\n> Grüße"));
  const cJSON *from = cJSON_GetObjectItemCaseSensitive(back, "from");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(from, "address")->valuestring,
                      "support@shop.example");
  cJSON_Delete(back);
  free(raw);
  cJSON_Delete(orig);
}

static void test_reply_to_and_auto(void **state) {
  (void)state;
  cJSON *orig = original();
  cJSON_ReplaceItemInObjectCaseSensitive(
      orig, "reply_to", cJSON_Parse("{\"name\": \"\", \"address\": \"orders@kunde.example\"}"));
  cJSON_DeleteItemFromObjectCaseSensitive(orig, "references");
  email_reply_opts o = {.original = orig, .from_address = "support@shop.example",
                        .body = "Thanks", .message_id = "m1@shop.example", .auto_reply = 1,
                        .now_ms = 1795000000000LL};
  size_t len;
  perr e;
  char *raw = email_reply_build(&o, &len, &e);
  assert_non_null(raw);
  assert_non_null(strstr(raw, "To: orders@kunde.example"));
  assert_non_null(strstr(raw, "Auto-Submitted: auto-replied"));
  assert_non_null(strstr(raw, "References: <abc.123@kunde.example>"));
  assert_null(strstr(raw, "wrote:"));
  free(raw);
  /* Nobody to answer. */
  cJSON_ReplaceItemInObjectCaseSensitive(orig, "reply_to", cJSON_CreateNull());
  cJSON_ReplaceItemInObjectCaseSensitive(orig, "from",
                                         cJSON_Parse("{\"name\": \"\", \"address\": \"\"}"));
  assert_null(email_reply_build(&o, &len, &e));
  assert_non_null(strstr(e.msg, "no From or Reply-To"));
  cJSON_Delete(orig);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_subject),
      cmocka_unit_test(test_message_id),
      cmocka_unit_test(test_build_and_parse_back),
      cmocka_unit_test(test_reply_to_and_auto),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
