/*
 * typeform_map: the documented example payload
 * (https://www.typeform.com/developers/webhooks/example-payload/, read in
 * place from conformance/examples/typeform-webhook-form-response.json)
 * mapped exactly, key order included; the answer types that example lacks
 * (url, phone_number, file_url, payment, `other` choices, unknown types);
 * the key rules (title first, ref second, collisions); malformed bodies.
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
#include "triggers/typeform_map.h"

#define EXAMPLE PROMPTD_SHARED_DIR "/conformance/examples/typeform-webhook-form-response.json"

typedef struct want {
  const char *key;
  const char *json; /* the value, as JSON text */
} want;

/* out must hold exactly these members, in this order. */
static void check_exact(const cJSON *out, const want *w, size_t n) {
  assert_true(cJSON_IsObject(out));
  size_t i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, out) {
    if (i == n) fail_msg("unexpected extra key '%s'", c->string);
    if (strcmp(c->string, w[i].key))
      fail_msg("key %zu: got '%s', want '%s'", i, c->string, w[i].key);
    cJSON *v = cJSON_Parse(w[i].json);
    assert_non_null(v);
    if (!cJSON_Compare(c, v, 1)) {
      char *got = cJSON_PrintUnformatted(c);
      fail_msg("'%s': got %s, want %s", w[i].key, got, w[i].json);
    }
    cJSON_Delete(v);
    i++;
  }
  assert_int_equal(i, n);
}

static cJSON *map_text(const char *text) {
  cJSON *body = cJSON_Parse(text);
  assert_non_null(body);
  perr e = {{0}};
  cJSON *out = typeform_fields(body, &e);
  cJSON_Delete(body);
  if (!out) fail_msg("%s", e.msg);
  return out;
}

static void test_example_payload(void **state) {
  (void)state;
  char *text = tu_read_file(EXAMPLE, NULL);
  assert_non_null(text);
  cJSON *out = map_text(text);
  free(text);
  static const want w[] = {
      /* Titles first, in answer order (recall placeholders left as defined). */
      {"Thanks, {{answer_60906475}}! What's it like where you live? Tell us in a few sentences.",
       "\"It's cold right now! I live in an older medium-sized city with a university. "
       "Geographically, the area is hilly.\""},
      {"If you're OK with our city management following up if they have further questions, "
       "please give us your email address.",
       "\"laura@example.com\""},
      {"What is your first name?", "\"Laura\""},
      {"When did you move to the place where you live?", "\"2005-10-15\""},
      {"Which pictures do you like? You can choose as many as you like.",
       "[\"London\",\"Sydney\"]"},
      {"On a scale of 1 to 5, what rating would you give the weather in Sydney? 1 is poor "
       "weather, 5 is excellent weather",
       "5"},
      {"By submitting this form, you understand and accept that we will share your answers with "
       "city management. Your answers will be anonymous will not be shared.",
       "true"},
      {"Which of these cities is your favorite?", "\"London\""},
      {"Do you have a favorite city we haven't listed?", "false"},
      {"How important is the weather to your opinion about a city? 1 is not important, 5 is very "
       "important.",
       "2"},
      {"How would you rate the weather where you currently live? 1 is poor weather, 5 is "
       "excellent weather.",
       "3"},
      {"On a scale of 1 to 5, what rating would you give the general quality of life in Sydney? 1 "
       "is poor, 5 is excellent",
       "4"},
      /* Then the refs (from the definition: these answers carry none). */
      {"readable_ref_long_text",
       "\"It's cold right now! I live in an older medium-sized city with a university. "
       "Geographically, the area is hilly.\""},
      {"readable_ref_email", "\"laura@example.com\""},
      {"readable_ref_short_text", "\"Laura\""},
      {"readable_ref_date", "\"2005-10-15\""},
      {"readable_ref_picture_choice", "[\"London\",\"Sydney\"]"},
      {"readable_ref_number1", "5"},
      {"readable_ref_legal", "true"},
      {"readable_ref_multiple_choice", "\"London\""},
      {"readable_ref_yes_no", "false"},
      {"readable_ref_opinion_scale", "2"},
      {"readable_ref_rating", "3"},
      {"readable_ref_number2", "4"},
  };
  check_exact(out, w, sizeof w / sizeof w[0]);
  cJSON_Delete(out);
}

/* Answer types the example lacks, shaped as on Typeform's payload page. */
static void test_other_types(void **state) {
  (void)state;
  cJSON *out = map_text(
      "{\"event_type\":\"form_response\",\"form_response\":{"
      "\"definition\":{\"fields\":["
      "{\"id\":\"u\",\"title\":\"Website\"},{\"id\":\"p\",\"title\":\"Phone\"},"
      "{\"id\":\"f\",\"title\":\"CV\"},{\"id\":\"pay\",\"title\":\"Deposit\"},"
      "{\"id\":\"c\",\"title\":\"City\"},{\"id\":\"cs\",\"title\":\"Cities\"},"
      "{\"id\":\"cl\",\"title\":\"Labels only\"},"
      "{\"id\":\"x\",\"title\":\"New kind\"},{\"id\":\"y\",\"title\":\"Bare\"}]},"
      "\"answers\":["
      "{\"type\":\"url\",\"url\":\"https://example.com\","
      "\"field\":{\"id\":\"u\",\"type\":\"website\"}},"
      "{\"type\":\"phone_number\",\"phone_number\":\"+15555550100\","
      "\"field\":{\"id\":\"p\",\"type\":\"phone_number\"}},"
      "{\"type\":\"file_url\",\"file_url\":\"https://files.example/cv.pdf\","
      "\"field\":{\"id\":\"f\",\"type\":\"file_upload\"}},"
      "{\"type\":\"payment\",\"payment\":{\"amount\":\"4.50\",\"last4\":\"4242\","
      "\"name\":\"Jo\",\"success\":true},\"field\":{\"id\":\"pay\",\"type\":\"payment\"}},"
      "{\"type\":\"choice\",\"choice\":{\"other\":\"Lisbon\"},"
      "\"field\":{\"id\":\"c\",\"type\":\"multiple_choice\"}},"
      "{\"type\":\"choices\",\"choices\":{\"labels\":[\"Oslo\"],\"other\":\"Porto\"},"
      "\"field\":{\"id\":\"cs\",\"type\":\"multiple_choice\"}},"
      "{\"type\":\"choices\",\"choices\":{\"labels\":[]},"
      "\"field\":{\"id\":\"cl\",\"type\":\"multiple_choice\"}},"
      "{\"type\":\"multi_format\",\"multi_format\":{\"audio\":\"a.mp3\"},"
      "\"field\":{\"id\":\"x\",\"type\":\"multi_format\"}},"
      "{\"type\":\"signal\",\"field\":{\"id\":\"y\",\"type\":\"signal\"}}]}}");
  static const want w[] = {
      {"Website", "\"https://example.com\""},
      {"Phone", "\"+15555550100\""},
      {"CV", "\"https://files.example/cv.pdf\""},
      {"Deposit", "{\"amount\":\"4.50\",\"last4\":\"4242\",\"name\":\"Jo\",\"success\":true}"},
      {"City", "\"Lisbon\""},
      {"Cities", "[\"Oslo\",\"Porto\"]"},
      {"Labels only", "[]"},
      {"New kind", "{\"audio\":\"a.mp3\"}"},
      {"Bare", "{\"type\":\"signal\",\"field\":{\"id\":\"y\",\"type\":\"signal\"}}"},
  };
  check_exact(out, w, sizeof w / sizeof w[0]);
  cJSON_Delete(out);
}

static void test_key_rules(void **state) {
  (void)state;
  cJSON *out = map_text(
      "{\"form_response\":{\"definition\":{\"fields\":["
      "{\"id\":\"a\",\"title\":\"Name\",\"ref\":\"first\"},"
      "{\"id\":\"b\",\"title\":\"Name\",\"ref\":\"second\"},"
      "{\"id\":\"c\",\"title\":\"Name\"},"
      "{\"id\":\"d\",\"title\":\"email\",\"ref\":\"Name\"},"
      "{\"id\":\"e\",\"title\":\"Email\",\"ref\":\"email\"},"
      "{\"id\":\"g\",\"title\":\"\",\"ref\":\"old_ref\"}]},"
      "\"answers\":["
      "{\"type\":\"text\",\"text\":\"A\",\"field\":{\"id\":\"a\"}},"
      "{\"type\":\"text\",\"text\":\"B\",\"field\":{\"id\":\"b\"}},"
      "{\"type\":\"text\",\"text\":\"C\",\"field\":{\"id\":\"c\"}},"
      "{\"type\":\"text\",\"text\":\"D\",\"field\":{\"id\":\"d\"}},"
      "{\"type\":\"text\",\"text\":\"E\",\"field\":{\"id\":\"e\"}},"
      "{\"type\":\"text\",\"text\":\"F\",\"field\":{\"id\":\"f\",\"ref\":\"lost_question\"}},"
      "{\"type\":\"text\",\"text\":\"G\",\"field\":{\"id\":\"g\",\"ref\":\"new_ref\"}},"
      "{\"type\":\"number\",\"number\":7,\"field\":{\"id\":\"h\"}}]}}");
  static const want w[] = {
      {"Name", "\"A\""},          /* first of three "Name" questions */
      {"second", "\"B\""},        /* second falls back to its ref */
      {"c", "\"C\""},             /* third has no ref: its field id */
      {"email", "\"D\""},         /* a title, kept although another answer's ref reads so */
      {"Email", "\"E\""},         /* keys differ by case */
      {"lost_question", "\"F\""}, /* not in the definition: the answer's ref */
      {"new_ref", "\"G\""},       /* empty title; the answer's ref wins over the definition's */
      {"h", "7"},                 /* neither title nor ref */
      {"first", "\"A\""},         /* refs after all primaries */
  };
  check_exact(out, w, sizeof w / sizeof w[0]);
  cJSON_Delete(out);

  /* Nothing answered: an empty object. */
  out = map_text("{\"event_type\":\"form_response\",\"form_response\":{\"form_id\":\"x\"}}");
  check_exact(out, NULL, 0);
  cJSON_Delete(out);
}

static void bad(const char *text, const char *msg) {
  cJSON *body = cJSON_Parse(text);
  assert_non_null(body);
  perr e = {{0}};
  assert_null(typeform_fields(body, &e));
  if (!strstr(e.msg, msg)) fail_msg("%s: message '%s' lacks '%s'", text, e.msg, msg);
  cJSON_Delete(body);
}

static void test_malformed(void **state) {
  (void)state;
  bad("[]", "expected a JSON object with a form_response mapping");
  bad("{\"event_type\":\"form_response\"}", "with a form_response mapping");
  bad("{\"form_response\":\"x\"}", "with a form_response mapping");
  bad("{\"form_response\":{\"answers\":{}}}", "form_response.answers: expected a list");
  bad("{\"form_response\":{\"definition\":{\"fields\":{}},\"answers\":[]}}",
      "form_response.definition: expected a mapping with a fields list");
  bad("{\"form_response\":{\"answers\":[7]}}",
      "form_response.answers[0]: expected a mapping with type and field.id");
  bad("{\"form_response\":{\"answers\":["
      "{\"type\":\"text\",\"text\":\"a\",\"field\":{\"id\":\"a\"}},"
      "{\"type\":\"text\",\"text\":\"b\",\"field\":{}}]}}",
      "form_response.answers[1]: expected a mapping with type and field.id");
  bad("{\"form_response\":{\"answers\":[{\"text\":\"a\",\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0]: expected a mapping with type and field.id");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"number\",\"number\":\"5\","
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].number: expected a number");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"email\",\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].email: expected a string");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"boolean\",\"boolean\":1,"
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].boolean: expected true or false");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"choice\",\"choice\":{\"id\":\"x\"},"
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].choice: expected a mapping with a label or other text");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"choices\",\"choices\":{\"labels\":[1]},"
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].choices.labels: expected strings only");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"choices\",\"choices\":{},"
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].choices: expected a mapping with a labels list or other text");
  bad("{\"form_response\":{\"answers\":[{\"type\":\"payment\",\"payment\":\"4.50\","
      "\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[0].payment: expected a mapping");
  bad("{\"form_response\":{\"answers\":["
      "{\"type\":\"text\",\"text\":\"a\",\"field\":{\"id\":\"a\"}},"
      "{\"type\":\"text\",\"text\":\"b\",\"field\":{\"id\":\"a\"}}]}}",
      "form_response.answers[1]: field id 'a' is answered twice");

  perr e = {{0}};
  assert_null(typeform_fields(NULL, &e));
  assert_null(typeform_fields(NULL, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example_payload),
      cmocka_unit_test(test_other_types),
      cmocka_unit_test(test_key_rules),
      cmocka_unit_test(test_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
