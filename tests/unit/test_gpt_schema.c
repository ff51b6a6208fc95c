/*
 * gpt/schema: strict normalisation (nested objects, arrays, $defs, nullable
 * optional properties), every refusal with its exact message, the limits,
 * the wire copy, and run-time validation passes and failures with the exact
 * messages a repair turn would carry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "gpt/schema.h"

static cJSON *parse(const char *text) {
  cJSON *j = cJSON_Parse(text);
  if (!j) fail_msg("test JSON does not parse: %s", text);
  return j;
}

/* strict(in) must succeed and print exactly as want. */
static void strict_ok(const char *in, const char *want) {
  cJSON *s = parse(in), *out = NULL;
  char *before = cJSON_PrintUnformatted(s);
  perr e = {{0}};
  if (gpt_schema_strict(s, &out, &e)) fail_msg("refused: %s", e.msg);
  char *got = cJSON_PrintUnformatted(out);
  assert_string_equal(got, want);
  /* Idempotent: the normalised schema is itself accepted unchanged. */
  cJSON *again = NULL;
  if (gpt_schema_strict(out, &again, &e)) fail_msg("normalised schema refused: %s", e.msg);
  char *got2 = cJSON_PrintUnformatted(again);
  assert_string_equal(got2, want);
  /* The input is left alone. */
  char *after = cJSON_PrintUnformatted(s);
  assert_string_equal(before, after);
  free(before), free(after), free(got), free(got2);
  cJSON_Delete(again);
  cJSON_Delete(out);
  cJSON_Delete(s);
}

static void strict_refused(const char *in, const char *msg) {
  cJSON *s = parse(in), *out = (cJSON *)1;
  perr e = {{0}};
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_null(out);
  assert_string_equal(e.msg, msg);
  cJSON_Delete(s);
}

static void t_strict_adds_additional_properties(void **st) {
  (void)st;
  strict_ok("{\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\",\"minimum\":1,"
            "\"maximum\":10},\"summary\":{\"type\":\"string\"}},\"required\":[\"score\","
            "\"summary\"]}",
            "{\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\",\"minimum\":1,"
            "\"maximum\":10},\"summary\":{\"type\":\"string\"}},\"required\":[\"score\","
            "\"summary\"],\"additionalProperties\":false}");
  /* Already strict: unchanged. */
  strict_ok("{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false,"
            "\"required\":[]}",
            "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false,"
            "\"required\":[]}");
}

static void t_strict_nested_arrays_defs(void **st) {
  (void)st;
  strict_ok(
      "{\"type\":\"object\",\"description\":\"a lead\",\"properties\":{"
      "\"contact\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
      "\"nick\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"name\"]},"
      "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
      "\"t\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}},\"required\":[\"t\"]},\"maxItems\":5},"
      "\"boss\":{\"anyOf\":[{\"$ref\":\"#/$defs/person\"},{\"type\":\"null\"}]},"
      "\"kind\":{\"type\":\"string\",\"const\":\"lead\"}},"
      "\"required\":[\"contact\",\"tags\",\"kind\"],"
      "\"$defs\":{\"person\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
      "\"reports\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/person\"}}},"
      "\"required\":[\"name\",\"reports\"]}}}",
      "{\"type\":\"object\",\"description\":\"a lead\",\"properties\":{"
      "\"contact\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
      "\"nick\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"name\",\"nick\"],"
      "\"additionalProperties\":false},"
      "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
      "\"t\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}},\"required\":[\"t\"],"
      "\"additionalProperties\":false},\"maxItems\":5},"
      "\"boss\":{\"anyOf\":[{\"$ref\":\"#/$defs/person\"},{\"type\":\"null\"}]},"
      "\"kind\":{\"type\":\"string\",\"const\":\"lead\"}},"
      "\"required\":[\"contact\",\"tags\",\"kind\",\"boss\"],"
      "\"$defs\":{\"person\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
      "\"reports\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/person\"}}},"
      "\"required\":[\"name\",\"reports\"],\"additionalProperties\":false}},"
      "\"additionalProperties\":false}");
  /* Root recursion with "#", and optional-by-$ref-to-nullable. */
  strict_ok("{\"type\":\"object\",\"properties\":{\"child\":{\"$ref\":\"#/$defs/maybe\"}},"
            "\"definitions\":{},\"$defs\":{\"maybe\":{\"anyOf\":[{\"$ref\":\"#\"},"
            "{\"type\":\"null\"}]}}}",
            "{\"type\":\"object\",\"properties\":{\"child\":{\"$ref\":\"#/$defs/maybe\"}},"
            "\"definitions\":{},\"$defs\":{\"maybe\":{\"anyOf\":[{\"$ref\":\"#\"},"
            "{\"type\":\"null\"}]}},\"additionalProperties\":false,\"required\":[\"child\"]}");
}

static void t_strict_refusals(void **st) {
  (void)st;
  strict_refused("[1]", "output_schema: expected a JSON Schema object, got an array");
  strict_refused("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}",
                 "output_schema: the root must be a schema with type: object (strict mode "
                 "allows no other type, union or anyOf at the root)");
  strict_refused("{\"anyOf\":[{\"type\":\"object\",\"properties\":{}}]}",
                 "output_schema: the root must be a schema with type: object (strict mode "
                 "allows no other type, union or anyOf at the root)");
  strict_refused("{\"type\":[\"object\",\"null\"],\"properties\":{}}",
                 "output_schema: the root must be a schema with type: object (strict mode "
                 "allows no other type, union or anyOf at the root)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\"},"
                 "\"summary\":{\"type\":\"string\"}},\"required\":[\"summary\"]}",
                 "output_schema.properties.score: not in required, and strict mode requires "
                 "every property; add \"score\" to required (with type [\"integer\", \"null\"] "
                 "if it may be absent)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":[\"string\",\"number\"]}}}",
                 "output_schema.properties.n: not in required, and strict mode requires every "
                 "property; add \"n\" to required (with type [\"string\", \"number\", \"null\"] "
                 "if it may be absent)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},"
                 "{\"type\":\"integer\"}]}}}",
                 "output_schema.properties.a: not in required, and strict mode requires every "
                 "property; add \"a\" to required (with {\"type\": \"null\"} added to its anyOf if "
                 "it may be absent)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"a\":{\"allOf\":[{\"type\":\"string\"}]}},"
                 "\"required\":[\"a\"]}",
                 "output_schema.properties.a: \"allOf\" is not supported in strict mode; merge "
                 "the subschemas into one object");
  strict_refused("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"nullable\":true}},"
                 "\"required\":[\"a\"]}",
                 "output_schema.properties.a: \"nullable\" is not supported in strict mode; use a "
                 "type union such as [\"string\", \"null\"]");
  strict_refused("{\"type\":\"object\",\"proprties\":{}}",
                 "output_schema: unknown keyword \"proprties\" (strict mode supports type, "
                 "properties, required, items, enum, const, anyOf, $ref, $defs and the "
                 "type-specific limits)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"d\":{\"type\":\"date\"}},"
                 "\"required\":[\"d\"]}",
                 "output_schema.properties.d: type \"date\" is not supported (expected string, "
                 "number, integer, boolean, object, array, null, or a list of them)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"meta\":{\"type\":\"object\","
                 "\"properties\":{},\"additionalProperties\":true}},\"required\":[\"meta\"]}",
                 "output_schema.properties.meta: additionalProperties must be false in strict "
                 "mode; list every property instead");
  strict_refused("{\"type\":\"object\",\"properties\":{\"meta\":{\"type\":\"object\","
                 "\"properties\":{},\"additionalProperties\":{\"type\":\"string\"}}},"
                 "\"required\":[\"meta\"]}",
                 "output_schema.properties.meta: additionalProperties must be false in strict "
                 "mode; list every property instead");
  strict_refused("{\"type\":\"object\",\"properties\":{\"meta\":{\"type\":\"object\"}},"
                 "\"required\":[\"meta\"]}",
                 "output_schema.properties.meta: an object needs properties in strict mode (a "
                 "free-form object cannot be expressed); list its properties");
  strict_refused("{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\"}},"
                 "\"required\":[\"tags\"]}",
                 "output_schema.properties.tags: an array needs items (the schema of its "
                 "elements)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"array\",\"items\":"
                 "[{\"type\":\"string\"}]}},\"required\":[\"t\"]}",
                 "output_schema.properties.t.items: expected a schema (an object with a type), "
                 "got an array");
  strict_refused("{\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\"}},"
                 "\"required\":[\"score\",\"scroe\"]}",
                 "output_schema.required[1]: \"scroe\" is not among the properties");
  strict_refused("{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":"
                 "\"https://example.com/s.json\"}},\"required\":[\"x\"]}",
                 "output_schema.properties.x: $ref \"https://example.com/s.json\": only local "
                 "references (\"#\", \"#/$defs/NAME\") are supported");
  strict_refused("{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/nope\"}},"
                 "\"required\":[\"x\"]}",
                 "output_schema.properties.x: $ref \"#/$defs/nope\" does not resolve");
  strict_refused("{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#\",\"type\":\"object\"}},"
                 "\"required\":[\"x\"]}",
                 "output_schema.properties.x: $ref cannot be combined with \"type\" in strict "
                 "mode");
  strict_refused("{\"type\":\"object\",\"properties\":{\"u\":{\"type\":\"string\",\"format\":"
                 "\"uri\"}},\"required\":[\"u\"]}",
                 "output_schema.properties.u: format \"uri\" is not supported in strict mode "
                 "(supported: date-time, time, date, duration, email, hostname, ipv4, ipv6, "
                 "uuid)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\",\"properties\":"
                 "{},\"$defs\":{}}},\"required\":[\"o\"]}",
                 "output_schema.properties.o: $defs is only supported at the root of the schema");
  strict_refused("{\"type\":\"object\",\"properties\":{\"e\":{\"type\":\"string\",\"enum\":"
                 "[\"a\",5]}},\"required\":[\"e\"]}",
                 "output_schema.properties.e.enum[1]: 5 does not match the type (string)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"e\":{\"enum\":[]}},\"required\":[\"e\"]}",
                 "output_schema.properties.e: enum must be a non-empty list");
  strict_refused("{\"type\":\"object\",\"properties\":{\"e\":{\"description\":\"x\"}},"
                 "\"required\":[\"e\"]}",
                 "output_schema.properties.e: missing type (strict mode needs a type, enum, "
                 "const, anyOf or $ref)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"maxLength\":"
                 "-1}},\"required\":[\"s\"]}",
                 "output_schema.properties.s: maxLength must be a non-negative integer");
  strict_refused("{\"type\":\"object\",\"properties\":{\"odd key\":{\"type\":\"string\","
                 "\"default\":\"x\"}},\"required\":[\"odd key\"]}",
                 "output_schema.properties[\"odd key\"]: \"default\" is not supported in strict "
                 "mode; describe the default in description");
  strict_refused("{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},"
                 "{\"type\":\"object\"}]}},\"required\":[\"a\"]}",
                 "output_schema.properties.a.anyOf[1]: an object needs properties in strict mode "
                 "(a free-form object cannot be expressed); list its properties");
  strict_refused("{\"type\":\"object\",\"properties\":{},\"$defs\":{\"p\":{\"type\":\"object\","
                 "\"properties\":{\"q\":{\"type\":\"string\"}}}}}",
                 "output_schema.$defs.p.properties.q: not in required, and strict mode requires "
                 "every property; add \"q\" to required (with type [\"string\", \"null\"] if it "
                 "may be absent)");
  strict_refused("{\"type\":\"string\",\"properties\":{}}",
                 "output_schema: the root must be a schema with type: object (strict mode "
                 "allows no other type, union or anyOf at the root)");
  strict_refused("{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"items\":"
                 "{\"type\":\"string\"}}},\"required\":[\"s\"]}",
                 "output_schema.properties.s: items needs type: array");

  /* Every composition and object/array keyword strict mode lacks. */
  const char *kws[] = {"oneOf", "not", "if", "then", "else", "dependentRequired",
                       "dependentSchemas", "patternProperties", "propertyNames",
                       "minProperties", "unevaluatedProperties", "prefixItems", "uniqueItems",
                       "contains", "$schema"};
  for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
    char in[256], want[128];
    snprintf(in, sizeof in, "{\"type\":\"object\",\"properties\":{},\"%s\":{}}", kws[i]);
    snprintf(want, sizeof want, "output_schema: \"%s\" is not supported in strict mode; ", kws[i]);
    cJSON *s = parse(in), *out = NULL;
    perr e = {{0}};
    assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
    if (strncmp(e.msg, want, strlen(want)) != 0) fail_msg("%s: %s", kws[i], e.msg);
    cJSON_Delete(s);
  }
}

/* {"type":"object","properties":{"a":{...depth more...}},"required":["a"]} */
static char *nested(int depth) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  for (int i = 0; i < depth; i++) buf_adds(&b, "{\"type\":\"object\",\"properties\":{\"a\":");
  buf_adds(&b, "{\"type\":\"string\"}");
  for (int i = 0; i < depth; i++) buf_adds(&b, "},\"required\":[\"a\"]}");
  return buf_detach(&b, NULL);
}

static void t_strict_limits(void **st) {
  (void)st;
  cJSON *s, *out;
  perr e = {{0}};
  char *ten = nested(10), *eleven = nested(11);
  s = parse(ten);
  assert_int_equal(gpt_schema_strict(s, &out, &e), 0);
  cJSON_Delete(out);
  cJSON_Delete(s);
  s = parse(eleven);
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_string_equal(e.msg,
                      "output_schema.properties.a.properties.a.properties.a.properties.a."
                      "properties.a.properties.a.properties.a.properties.a.properties.a."
                      "properties.a: objects nested more than 10 levels deep; strict mode allows "
                      "10");
  cJSON_Delete(s);
  free(ten), free(eleven);

  /* 5,001 properties. */
  s = parse("{\"type\":\"object\",\"properties\":{}}");
  cJSON *props = cJSON_GetObjectItem(s, "properties"), *req = cJSON_AddArrayToObject(s, "required");
  for (int i = 0; i < 5001; i++) {
    char k[16];
    snprintf(k, sizeof k, "p%d", i);
    cJSON_AddItemToObject(props, k, parse("{\"type\":\"boolean\"}"));
    cJSON_AddItemToArray(req, cJSON_CreateString(k));
  }
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_string_equal(e.msg,
                      "output_schema: 5001 object properties in total; strict mode allows at most "
                      "5000");
  cJSON_Delete(s);

  /* 1,001 enum values over two properties. */
  s = parse("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"enum\":[]},"
            "\"b\":{\"type\":\"integer\",\"enum\":[]}},\"required\":[\"a\",\"b\"]}");
  for (int i = 0; i < 1001; i++)
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(props = cJSON_GetObjectItem(s,
                                                                      "properties"),
                                                                  i % 2 ? "a" : "b"),
                                             "enum"),
                         cJSON_CreateNumber(i));
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_string_equal(e.msg,
                      "output_schema: 1001 enum values in total; strict mode allows at most 1000");
  cJSON_Delete(s);

  /* 251 string values of 60 characters: 15,060 characters. */
  s = parse("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"enum\":[]}},"
            "\"required\":[\"a\"]}");
  cJSON *en = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "properties"), "a"),
                                  "enum");
  for (int i = 0; i < 251; i++) {
    char v[61];
    snprintf(v, sizeof v, "%060d", i);
    cJSON_AddItemToArray(en, cJSON_CreateString(v));
  }
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_string_equal(e.msg,
                      "output_schema.properties.a: an enum of 251 values totals 15060 characters; "
                      "strict mode allows 15000 when an enum has more than 250 values");
  cJSON_Delete(s);

  /* 120,001 characters of names and values. */
  s = parse("{\"type\":\"object\",\"properties\":{},\"required\":[]}");
  char *name = malloc(120002);
  memset(name, 'n', 120001);
  name[120001] = '\0';
  cJSON_AddItemToObject(cJSON_GetObjectItem(s, "properties"), name,
                        parse("{\"type\":\"boolean\"}"));
  cJSON_AddItemToArray(cJSON_GetObjectItem(s, "required"), cJSON_CreateString(name));
  free(name);
  assert_int_equal(gpt_schema_strict(s, &out, &e), -1);
  assert_string_equal(e.msg,
                      "output_schema: property names, definition names, enum and const values "
                      "total 120001 characters; strict mode allows at most 120000");
  cJSON_Delete(s);
}

static void t_wire_copy(void **st) {
  (void)st;
  cJSON *s = parse("{\"type\":\"object\",\"properties\":{\"minLength\":{\"type\":\"string\","
                   "\"minLength\":2,\"maxLength\":9,\"pattern\":\"^a\"},\"l\":{\"type\":\"array\","
                   "\"items\":{\"type\":\"string\",\"maxLength\":3}}},\"required\":[\"minLength\","
                   "\"l\"],\"$defs\":{\"d\":{\"type\":\"string\",\"minLength\":1}}}");
  cJSON *strict = NULL;
  perr e = {{0}};
  assert_int_equal(gpt_schema_strict(s, &strict, &e), 0);
  cJSON *w = gpt_schema_wire(strict);
  char *got = cJSON_PrintUnformatted(w);
  assert_string_equal(got,
                      "{\"type\":\"object\",\"properties\":{\"minLength\":{\"type\":\"string\","
                      "\"pattern\":\"^a\"},\"l\":{\"type\":\"array\",\"items\":{\"type\":"
                      "\"string\"}}},\"required\":[\"minLength\",\"l\"],\"$defs\":{\"d\":{\"type\":"
                      "\"string\"}},\"additionalProperties\":false}");
  free(got);
  /* The stored copy keeps them, for the run-time check. */
  assert_non_null(strstr(got = cJSON_PrintUnformatted(strict), "\"maxLength\":9"));
  free(got);
  cJSON_Delete(w);
  cJSON_Delete(strict);
  cJSON_Delete(s);
}

/* ---- validation --------------------------------------------------------- */

static const char *LEAD =
    "{\"type\":\"object\",\"properties\":{"
    "\"score\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
    "\"summary\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":20},"
    "\"tier\":{\"type\":\"string\",\"enum\":[\"hot\",\"warm\",\"cold\"]},"
    "\"kind\":{\"type\":\"string\",\"const\":\"lead\"},"
    "\"zip\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^\\\\d{5}$\"},"
    "\"ratio\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1},"
    "\"step\":{\"type\":\"number\",\"multipleOf\":0.1},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"items\":{\"$ref\":"
    "\"#/$defs/item\"}},"
    "\"value\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\",\"minimum\":0}]},"
    "\"odd key\":{\"type\":\"boolean\"}},"
    "\"required\":[\"score\",\"summary\",\"tier\",\"kind\",\"zip\",\"ratio\",\"step\",\"items\","
    "\"value\",\"odd key\"],"
    "\"$defs\":{\"item\":{\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\"},"
    "\"child\":{\"anyOf\":[{\"$ref\":\"#/$defs/item\"},{\"type\":\"null\"}]}},"
    "\"required\":[\"score\",\"child\"]}}}";

static const char *GOOD =
    "{\"score\":7,\"summary\":\"h\xc3\xa9llo\",\"tier\":\"hot\",\"kind\":\"lead\",\"zip\":\"12345\","
    "\"ratio\":0.5,\"step\":0.3,\"items\":[{\"score\":1,\"child\":{\"score\":2,\"child\":null}},"
    "{\"score\":3.0,\"child\":null},{\"score\":4,\"child\":null}],\"value\":\"x\",\"odd key\":true}";

static cJSON *g_schema;

static int setup(void **st) {
  (void)st;
  cJSON *raw = parse(LEAD);
  perr e = {{0}};
  int rc = gpt_schema_strict(raw, &g_schema, &e);
  cJSON_Delete(raw);
  if (rc) fprintf(stderr, "LEAD refused: %s\n", e.msg);
  return rc;
}

static int teardown(void **st) {
  (void)st;
  cJSON_Delete(g_schema);
  return 0;
}

/* GOOD with one member replaced (path into the top-level object, or the
 * whole value when key is NULL), validated; returns the message or "". */
static void expect(const char *key, const char *json, const char *msg) {
  cJSON *v = parse(GOOD);
  if (key) {
    if (json)
      cJSON_ReplaceItemInObjectCaseSensitive(v, key, parse(json));
    else
      cJSON_DeleteItemFromObjectCaseSensitive(v, key);
  }
  perr e = {{0}};
  int rc = gpt_schema_validate(g_schema, v, &e);
  if (!msg[0] && rc) fail_msg("%s=%s: unexpected failure: %s", key, json, e.msg);
  if (msg[0]) {
    if (!rc) fail_msg("%s=%s: passed, expected %s", key, json, msg);
    assert_string_equal(e.msg, msg);
  }
  cJSON_Delete(v);
}

static void t_validate_passes(void **st) {
  (void)st;
  expect(NULL, NULL, "");
  expect("zip", "null", "");
  expect("value", "0", "");
  expect("score", "10", "");
  expect("score", "1.0", ""); /* an integral number is an integer */
  expect("summary", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"", ""); /* 3 characters, 9 bytes */
}

static void t_validate_failures(void **st) {
  (void)st;
  expect("score", "7.5", "$.score: expected integer, got 7.5");
  expect("score", "\"seven\"", "$.score: expected integer, got \"seven\"");
  expect("score", "0", "$.score: expected >= 1, got 0");
  expect("score", "11", "$.score: expected <= 10, got 11");
  expect("summary", "\"ab\"", "$.summary: expected at least 3 characters, got 2");
  expect("summary", "\"abcdefghijklmnopqrstuvwxyz\"",
         "$.summary: expected at most 20 characters, got 26");
  expect("summary", "null", "$.summary: expected string, got null");
  expect("tier", "\"lukewarm\"", "$.tier: expected one of \"hot\", \"warm\", \"cold\", got "
                                 "\"lukewarm\"");
  expect("kind", "\"deal\"", "$.kind: expected \"lead\", got \"deal\"");
  expect("zip", "\"abc\"", "$.zip: expected a string matching /^\\d{5}$/, got \"abc\"");
  expect("zip", "5", "$.zip: expected string or null, got 5");
  expect("ratio", "1", "$.ratio: expected < 1, got 1");
  expect("ratio", "0", "$.ratio: expected > 0, got 0");
  expect("step", "0.35", "$.step: expected a multiple of 0.1, got 0.35");
  expect("items", "[]", "$.items: expected at least 1 item, got 0");
  expect("items",
         "[{\"score\":1,\"child\":null},{\"score\":1,\"child\":null},{\"score\":1,\"child\":null},"
         "{\"score\":1,\"child\":null}]",
         "$.items: expected at most 3 items, got 4");
  expect("items",
         "[{\"score\":1,\"child\":null},{\"score\":1,\"child\":null},{\"score\":7.5,"
         "\"child\":null}]",
         "$.items[2].score: expected integer, got 7.5");
  expect("items", "[{\"score\":1,\"child\":{\"score\":2,\"child\":{\"score\":\"x\",\"child\":null}}}]",
         "$.items[0].child.child.score: expected integer, got \"x\"");
  expect("items", "[{\"score\":1}]", "$.items[0]: missing required property \"child\"");
  expect("items", "[{\"score\":1,\"child\":null,\"extra\":[1]}]",
         "$.items[0]: unexpected property \"extra\"");
  expect("items", "[{\"score\":1,\"child\":5}]",
         "$.items[0].child: expected object or null, got 5");
  expect("value", "true", "$.value: expected string or number, got true");
  expect("value", "-1", "$.value: expected >= 0, got -1");
  expect("odd key", "1", "$[\"odd key\"]: expected boolean, got 1");
  expect("summary", NULL, "$: missing required property \"summary\"");

  cJSON *v = parse(GOOD);
  cJSON_AddItemToObject(v, "confidence", cJSON_CreateNumber(0.9));
  perr e = {{0}};
  assert_int_equal(gpt_schema_validate(g_schema, v, &e), -1);
  assert_string_equal(e.msg, "$: unexpected property \"confidence\"");
  cJSON_Delete(v);
  v = parse("[1]");
  assert_int_equal(gpt_schema_validate(g_schema, v, &e), -1);
  assert_string_equal(e.msg, "$: expected object, got an array");
  cJSON_Delete(v);
  /* Long strings are cut in the message; quotes are escaped. */
  expect("tier", "\"a \\\"quoted\\\" value that goes on and on and on and on\"",
         "$.tier: expected one of \"hot\", \"warm\", \"cold\", got \"a \\\"quoted\\\" value that "
         "goes on and on and...\"");
}

static void t_validate_edges(void **st) {
  (void)st;
  perr e = {{0}};
  /* A reference loop that never describes a value ends with a message. */
  cJSON *s = parse("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
                   "\"$ref\":\"#/$defs/a\"}");
  cJSON *v = parse("1");
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  assert_string_equal(e.msg, "$: schema references loop without describing a value (#/$defs/a)");
  cJSON_Delete(s);
  cJSON_Delete(v);
  /* A pattern POSIX ERE cannot compile (lookahead) is not checked. */
  s = parse("{\"type\":\"string\",\"pattern\":\"^(?=a)a\"}");
  v = parse("\"zzz\"");
  assert_int_equal(gpt_schema_validate(s, v, &e), 0);
  cJSON_Delete(s);
  cJSON_Delete(v);
  /* \w and \s inside and outside classes. */
  s = parse("{\"type\":\"string\",\"pattern\":\"^\\\\w+\\\\s[\\\\d-]+$\"}");
  v = parse("\"ab_1 12-3\"");
  assert_int_equal(gpt_schema_validate(s, v, &e), 0);
  cJSON_Delete(v);
  v = parse("\"ab 1x\"");
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  cJSON_Delete(v);
  cJSON_Delete(s);
  /* Cut messages stay valid UTF-8: 50 three-byte characters. */
  s = parse("{\"type\":\"integer\"}");
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  buf_adds(&b, "\"");
  for (int i = 0; i < 50; i++) buf_adds(&b, "\xe6\x97\xa5");
  buf_adds(&b, "\"");
  char *txt = buf_detach(&b, NULL);
  v = parse(txt);
  free(txt);
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  size_t n = strlen(e.msg);
  assert_string_equal(e.msg + n - 4, "...\"");
  assert_int_equal((n - strlen("$: expected integer, got \"") - 4) % 3, 0);
  cJSON_Delete(v);
  cJSON_Delete(s);
  /* Invalid UTF-8 (stray continuation bytes) cannot overrun the message. */
  s = parse("{\"type\":\"integer\"}");
  v = cJSON_CreateString("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
                         "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
                         "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
                         "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80");
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  assert_non_null(strstr(e.msg, "...\""));
  cJSON_Delete(v);
  cJSON_Delete(s);
  /* anyOf whose alternatives do not all name a type. */
  s = parse("{\"anyOf\":[{\"enum\":[\"a\"]},{\"type\":\"integer\"}]}");
  v = parse("\"b\"");
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  assert_string_equal(e.msg, "$: matches none of the 2 anyOf alternatives, got \"b\"");
  cJSON_Delete(v);
  v = parse("3");
  assert_int_equal(gpt_schema_validate(s, v, &e), 0);
  cJSON_Delete(v);
  cJSON_Delete(s);
  /* An unresolvable reference says so rather than passing. */
  s = parse("{\"$ref\":\"#/$defs/missing\"}");
  v = parse("{}");
  assert_int_equal(gpt_schema_validate(s, v, &e), -1);
  assert_string_equal(e.msg, "$: schema reference #/$defs/missing does not resolve");
  cJSON_Delete(s);
  cJSON_Delete(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_strict_adds_additional_properties),
      cmocka_unit_test(t_strict_nested_arrays_defs),
      cmocka_unit_test(t_strict_refusals),
      cmocka_unit_test(t_strict_limits),
      cmocka_unit_test(t_wire_copy),
      cmocka_unit_test(t_validate_passes),
      cmocka_unit_test(t_validate_failures),
      cmocka_unit_test(t_validate_edges),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
