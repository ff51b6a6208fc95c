/*
 * recipe: every kind of bad recipe gives one message naming FILE:LINE:COL,
 * the field and what was expected; a good one normalises, compiles,
 * digests stably and carries its partials.  The example recipes shipped
 * in recipes/ must load.
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
#include <sys/stat.h>

#include "core/recipe.h"
#include "core/template.h"
#include "testutil.h"

static char *g_dir;       /* temp dir per test */
static char g_pdir[4200]; /* its partials/ folder */

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  if (!g_dir) return -1;
  snprintf(g_pdir, sizeof g_pdir, "%s/partials", g_dir);
  return mkdir(g_pdir, 0700);
}

static int teardown(void **state) {
  (void)state;
  tu_rmtree(g_dir);
  free(g_dir);
  g_dir = NULL;
  return 0;
}

static void write_partial(const char *name, const char *text) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s.mustache", g_pdir, name);
  assert_int_equal(tu_write_file(path, text), 0);
}

static cJSON *load_ok(const char *text) {
  cJSON *def = NULL;
  perr e = {{0}};
  if (recipe_load_string(text, strlen(text), "r.yaml", g_pdir, &def, &e))
    fail_msg("unexpected error: %s", e.msg);
  assert_non_null(def);
  return def;
}

/* The load must fail, and the message start with `prefix` (file, line,
 * column and field) and contain `needle`. */
static void load_err(const char *text, const char *prefix, const char *needle) {
  cJSON *def = (cJSON *)1;
  perr e = {{0}};
  if (!recipe_load_string(text, strlen(text), "r.yaml", g_pdir, &def, &e))
    fail_msg("expected an error for:\n%s", text);
  assert_null(def);
  if (getenv("PROMPTD_TEST_VERBOSE")) print_message("%s\n", e.msg);
  if (strncmp(e.msg, prefix, strlen(prefix))) fail_msg("want prefix '%s', got: %s", prefix, e.msg);
  if (needle && !strstr(e.msg, needle)) fail_msg("'%s' not in: %s", needle, e.msg);
}

#define CRASH_CSV                                 \
  "name: crash-csv\n"                             \
  "trigger: { event: { source: crash } }\n"       \
  "steps:\n"                                      \
  "  - id: note\n"                                \
  "    log: { message: \"event {{event.n}}\" }\n" \
  "  - id: row\n"                                 \
  "    if: { path: event.n, gte: 0 }\n"           \
  "    csvfile: { path: /var/lib/promptd/out.csv, row: [\"{{event.n}}\", \"{{event.text}}\"] }\n"

/* A recipe with one log step whose YAML is given, for step-level cases. */
#define ONE_STEP(step) "name: t\ntrigger: { event: { source: s } }\nsteps:\n" step

static void test_invalid_yaml(void **state) {
  (void)state;
  load_err("name: x\ntrigger: event: y\n", "r.yaml:2:15: mapping values are not allowed", NULL);
  load_err("name: x\nsteps: [\n", "r.yaml:3:1: did not find expected node content",
           "while parsing");
  load_err("name: a\nname: b\n", "r.yaml:2:1: duplicate key 'name' (first at 1:1)", NULL);
  load_err("x: &a 1\n", "r.yaml:1:4: anchor '&a'", "not supported");
  load_err("", "r.yaml:1:1: expected a recipe (a mapping with name, trigger and steps), got null",
           NULL);
  load_err("- a\n- b\n", "r.yaml:1:1: expected a recipe", "got a list");
}

static void test_unknown_keys(void **state) {
  (void)state;
  /* top level, with a suggestion */
  load_err("nmae: x\n" CRASH_CSV, "r.yaml:1:1: nmae: unknown field 'nmae'",
           "did you mean 'name'? allowed here: name, description, enabled, trigger, when, "
           "concurrency, retry, steps");
  load_err(CRASH_CSV "color: blue\n",
           "r.yaml:9:1: color: unknown field 'color' (allowed here:", NULL);
  /* in a step */
  load_err(ONE_STEP("  - id: a\n    log: { message: x }\n    tries: 3\n"),
           "r.yaml:6:5: steps[0].tries: unknown field or action 'tries'",
           "fields: id, if, retry; actions: log, csvfile");
  load_err(ONE_STEP("  - id: a\n    lgo: { message: x }\n"),
           "r.yaml:5:5: steps[0].lgo: unknown field or action 'lgo'", "did you mean 'log'?");
  /* in an action config */
  load_err(ONE_STEP("  - id: a\n    log: { mesage: x }\n"),
           "r.yaml:5:12: steps[0].log.mesage: unknown field 'mesage'",
           "did you mean 'message'? allowed here: message, level");
  /* in the trigger config */
  load_err("name: t\ntrigger: { event: { source: s, port: 80 } }\nsteps: []\n",
           "r.yaml:2:32: trigger.event.port: unknown field 'port' (allowed here: source)", NULL);
  /* in retry */
  load_err(CRASH_CSV "retry: { attempts: 3 }\n", "r.yaml:9:10: retry.attempts: unknown field",
           "allowed here: max_attempts, base_ms, cap_ms");
}

static void test_wrong_types(void **state) {
  (void)state;
  load_err(CRASH_CSV "concurrency: high\n",
           "r.yaml:9:14: concurrency: expected an integer from 1 to 1000, got \"high\"", NULL);
  load_err(CRASH_CSV "concurrency: 5000\n",
           "r.yaml:9:14: concurrency: expected an integer from 1 to 1000, got 5000", NULL);
  load_err(CRASH_CSV "concurrency: 2.5\n", "r.yaml:9:14: concurrency: expected an integer", NULL);
  load_err(CRASH_CSV "enabled: yes\n", "r.yaml:9:10: enabled: expected true or false, got \"yes\"",
           NULL);
  load_err(CRASH_CSV "description: [a]\n",
           "r.yaml:9:14: description: expected a string, got a list", NULL);
  load_err(CRASH_CSV "retry: { max_attempts: 0 }\n",
           "r.yaml:9:24: retry.max_attempts: expected an integer from 1 to 100, got 0", NULL);
  load_err(CRASH_CSV "retry: { base_ms: 5000, cap_ms: 1000 }\n",
           "r.yaml:9:8: retry: base_ms (5000) is larger than cap_ms (1000)", NULL);
  load_err("name: t\ntrigger: { event: { source: s } }\nsteps: { a: 1 }\n",
           "r.yaml:3:8: steps: expected a non-empty list of steps, got a mapping", NULL);
  load_err("name: t\ntrigger: { event: { source: s } }\nsteps: []\n",
           "r.yaml:3:8: steps: expected a non-empty list of steps, got an empty list", NULL);
  load_err("name: t\ntrigger: event\nsteps: []\n",
           "r.yaml:2:10: trigger: expected a mapping with one trigger kind (available: event, webhook, schedule, imap, csv_export, google_forms, sheet_rows), "
           "got \"event\"",
           NULL);
  load_err(ONE_STEP("  - id: a\n    csvfile: { path: o.csv, row: \"{{event.n}}\" }\n"),
           "r.yaml:5:34: steps[0].csvfile.row: expected a list of template strings, got "
           "\"{{event.n}}\"",
           NULL);
  load_err(ONE_STEP("  - id: a\n    log: { message: x, level: debug }\n"),
           "r.yaml:5:31: steps[0].log.level: expected one of info, warn, error, got \"debug\"",
           NULL);
  load_err(ONE_STEP("  - log: { message: x }\n    id: [a]\n"),
           "r.yaml:5:9: steps[0].id: expected a string, got a list", NULL);
  load_err(ONE_STEP("  - just a string\n"),
           "r.yaml:4:5: steps[0]: expected a step (a mapping with an id and one action), got "
           "\"just a string\"",
           NULL);
  load_err(ONE_STEP("  - id: a\n    log: [x]\n"),
           "r.yaml:5:10: steps[0].log: expected a mapping, got a list", NULL);
  /* names and ids have their own alphabet */
  load_err("name: Crash CSV\ntrigger: { event: { source: s } }\nsteps: []\n",
           "r.yaml:1:7: name: expected a name of lowercase letters, digits, '-' and '_'",
           "got \"Crash CSV\"");
  load_err(ONE_STEP("  - id: Note-1\n    log: { message: x }\n"),
           "r.yaml:4:9: steps[0].id: expected a step id: a lowercase letter, then lowercase "
           "letters, digits or '_' (at most 64), got \"Note-1\"",
           NULL);
  load_err(ONE_STEP("  - id: 1st\n    log: { message: x }\n"),
           "r.yaml:4:9: steps[0].id:", "got \"1st\"");
}

static void test_missing_fields(void **state) {
  (void)state;
  load_err("trigger: { event: { source: s } }\nsteps:\n  - id: a\n    log: { message: x }\n",
           "r.yaml:1:1: name: required field is missing", NULL);
  load_err("name: t\nsteps:\n  - id: a\n    log: { message: x }\n",
           "r.yaml:1:1: trigger: required field is missing", NULL);
  load_err("name: t\ntrigger: { event: { source: s } }\n",
           "r.yaml:1:1: steps: required field is missing", NULL);
  load_err(ONE_STEP("  - log: { message: x }\n"),
           "r.yaml:4:5: steps[0].id: required field is missing", NULL);
  load_err(ONE_STEP("  - id: a\n    log: { level: warn }\n"),
           "r.yaml:5:10: steps[0].log.message: required field is missing",
           "text to log, a template");
  load_err(ONE_STEP("  - id: a\n    log:\n"),
           "r.yaml:5:9: steps[0].log.message: required field is missing", NULL);
  load_err(ONE_STEP("  - id: a\n    if: { path: event.n, eq: 1 }\n"),
           "r.yaml:4:5: steps[0]: missing the action: a step needs one key naming an action "
           "(log, csvfile",
           NULL);
  load_err("name: t\ntrigger: { event: {} }\nsteps: []\n",
           "r.yaml:2:19: trigger.event.source: required field is missing", NULL);
  load_err(ONE_STEP("  - id: a\n    csvfile: { path: o.csv }\n"),
           "r.yaml:5:14: steps[0].csvfile.row: required field is missing", NULL);
}

static void test_if_unknown_step(void **state) {
  (void)state;
  const char *base =
      "name: t\ntrigger: { event: { source: s } }\nsteps:\n"
      "  - id: note\n    log: { message: x }\n"
      "  - id: qualify\n    log: { message: x }\n"
      "  - id: notify\n    if: { path: steps.qualfy.score, gte: 7 }\n    log: { message: x }\n";
  load_err(base,
           "r.yaml:9:17: steps[2].if: refers to unknown step 'qualfy' (steps before this one: "
           "note, qualify)",
           NULL);
  /* a later step */
  load_err(
      "name: t\ntrigger: { event: { source: s } }\nsteps:\n"
      "  - id: first\n    if: { all: [ { path: event.n, eq: 1 }, { path: steps.second.ok, "
      "exists: true } ] }\n    log: { message: x }\n"
      "  - id: second\n    log: { message: x }\n",
      "r.yaml:5:52: steps[0].if: refers to step 'second', which runs after this one (no "
      "steps run before this one)",
      NULL);
  /* its own step */
  load_err(ONE_STEP("  - id: a\n    if: { not: { path: steps.a.x, exists: true } }\n    log: { "
                    "message: x }\n"),
           "r.yaml:5:24: steps[0].if: refers to its own step 'a'", NULL);
  load_err(ONE_STEP("  - id: a\n    if: { path: steps, exists: true }\n    log: { message: x }\n"),
           "r.yaml:5:17: steps[0].if: reads 'steps' without naming a step", NULL);
  /* `when` runs before every step */
  load_err(
      "name: t\ntrigger: { event: { source: s } }\nwhen: { path: steps.a.x, eq: 1 }\nsteps:\n"
      "  - id: a\n    log: { message: x }\n",
      "r.yaml:3:15: when: reads 'steps.a.x', but `when` is checked before any step runs", NULL);
  /* an earlier step is fine; templates may name any step */
  cJSON *def =
      load_ok(ONE_STEP("  - id: a\n    log: { message: \"{{steps.b.x}}\" }\n"
                       "  - id: b\n    if: { path: steps.a.message, exists: true }\n"
                       "    log: { message: x }\n"));
  cJSON_Delete(def);
}

static void test_template_unclosed(void **state) {
  (void)state;
  load_err(ONE_STEP("  - id: a\n    log: { message: \"event {{event.n\" }\n"),
           "r.yaml:5:21: steps[0].log.message: invalid template: line 1, column 7:", "unclosed");
  load_err(ONE_STEP("  - id: a\n    csvfile: { path: o.csv, row: [ok, \"{{#a}}x\"] }\n"),
           "r.yaml:5:39: steps[0].csvfile.row[1]: invalid template:", "unclosed section");
}

static void test_duplicate_step_ids(void **state) {
  (void)state;
  load_err(ONE_STEP("  - id: note\n    log: { message: x }\n  - id: other\n    log: { message: "
                    "x }\n  - id: note\n    log: { message: y }\n"),
           "r.yaml:8:9: steps[2].id: duplicate step id 'note' (already used by steps[0] at 4:9)",
           NULL);
}

static void test_unknown_kinds(void **state) {
  (void)state;
  load_err("name: t\ntrigger: { webhok: { path: /x } }\nsteps: []\n",
           "r.yaml:2:12: trigger.webhok: unknown trigger kind 'webhok' (did you mean 'webhook'? available: event, webhook, schedule, imap, csv_export, google_forms, sheet_rows)", NULL);
  load_err("name: t\ntrigger: { evnt: { source: s } }\nsteps: []\n",
           "r.yaml:2:12: trigger.evnt: unknown trigger kind 'evnt' (did you mean 'event'?", NULL);
  load_err("name: t\ntrigger: {}\nsteps: []\n",
           "r.yaml:2:10: trigger: expected a mapping with one trigger kind", "an empty mapping");
  load_err("name: t\ntrigger: { event: { source: s }, cron: {} }\nsteps: []\n",
           "r.yaml:2:34: trigger.cron: a recipe has exactly one trigger; this one already has "
           "'event'",
           NULL);
  load_err(ONE_STEP("  - id: a\n    trello: { card: hi }\n"),
           "r.yaml:5:5: steps[0].trello: unknown field or action 'trello'", "actions: log, csvfile");
}

static void test_two_actions(void **state) {
  (void)state;
  load_err(ONE_STEP("  - id: a\n    log: { message: x }\n    csvfile: { path: o.csv, row: [x] }\n"),
           "r.yaml:6:5: steps[0].csvfile: a step has exactly one action; this one already has "
           "'log' (at 5:5)",
           NULL);
}

static void test_bad_regex(void **state) {
  (void)state;
  load_err(ONE_STEP("  - id: a\n    if: { path: event.s, regex: \"(?i)(unclosed\" }\n    log: { "
                    "message: x }\n"),
           "r.yaml:5:33: steps[0].if.regex: invalid regular expression \"(?i)(unclosed\"", NULL);
  load_err(
      "name: t\ntrigger: { event: { source: s } }\nwhen: { path: event.s, regex: \"a{2,1}\" "
      "}\nsteps:\n  - id: a\n    log: { message: x }\n",
      "r.yaml:3:31: when.regex: invalid regular expression", NULL);
}

static void test_kind_validate(void **state) {
  (void)state;
  /* cross-field checks by the kind, reported at its config */
  load_err("name: t\ntrigger: { event: { source: \"a b\" } }\nsteps: []\n",
           "r.yaml:2:19: trigger.event: source:", NULL);
  load_err(ONE_STEP("  - id: a\n    csvfile: { path: o.csv, row: [x, y], header: [h] }\n"),
           "r.yaml:5:14: steps[0].csvfile: header: expected 2 column names", NULL);
}

static void test_missing_partial(void **state) {
  (void)state;
  char want[4600];
  snprintf(want, sizeof want,
           "r.yaml:5:21: steps[0].log.message: partial 'signature' not found: expected the file "
           "%s/signature.mustache",
           g_pdir);
  load_err(ONE_STEP("  - id: a\n    log: { message: \"hi {{> signature}}\" }\n"), want, NULL);
  /* nested: the message names the chain, and points at the template */
  write_partial("outer", "before {{> inner}} after");
  snprintf(want, sizeof want,
           "r.yaml:5:38: steps[0].csvfile.row[1]: partial 'inner' (included by 'outer') not "
           "found: expected the file %s/inner.mustache",
           g_pdir);
  load_err(ONE_STEP("  - id: a\n    csvfile: { path: o.csv, row: [x, \"{{> outer}}\"] }\n"), want,
           NULL);
  /* a syntax error inside a partial file */
  write_partial("broken", "{{#open}} never closed");
  load_err(ONE_STEP("  - id: a\n    log: { message: \"{{> broken}}\" }\n"),
           "r.yaml:5:21: steps[0].log.message: partial 'broken' (", "is not a valid template");
  /* names that cannot be files */
  load_err(ONE_STEP("  - id: a\n    log: { message: \"{{> ../etc/passwd}}\" }\n"),
           "r.yaml:5:21: steps[0].log.message: partial '../etc/passwd' cannot name a file", NULL);
  /* no partials folder at all */
  cJSON *def = NULL;
  perr e = {{0}};
  const char *t = ONE_STEP("  - id: a\n    log: { message: \"{{> outer}}\" }\n");
  assert_int_equal(recipe_load_string(t, strlen(t), "r.yaml", NULL, &def, &e), -1);
  assert_non_null(strstr(e.msg,
                         "r.yaml:5:21: steps[0].log.message: partial 'outer' is used, "
                         "but no partials folder is set"));
}

static void test_partial_depth(void **state) {
  (void)state;
  /* p0 -> p1 -> ... -> p19: deeper than 16 */
  for (int i = 0; i < 20; i++) {
    char name[16], text[64];
    snprintf(name, sizeof name, "p%d", i);
    snprintf(text, sizeof text, "level %d {{> p%d}}", i, i + 1);
    write_partial(name, text);
  }
  load_err(ONE_STEP("  - id: a\n    log: { message: \"{{> p0}}\" }\n"),
           "r.yaml:5:21: steps[0].log.message: partial 'p15' (included by 'p14' <- ",
           "includes 'p16', nesting partials deeper than 16 levels");
}

static void test_valid_crash_csv(void **state) {
  (void)state;
  cJSON *def = load_ok(CRASH_CSV);
  char *json = cJSON_PrintUnformatted(def);
  assert_string_equal(json,
                      "{\"name\":\"crash-csv\",\"trigger\":{\"event\":{\"source\":\"crash\"}},"
                      "\"steps\":[{\"id\":\"note\",\"log\":{\"message\":\"event {{event.n}}\"}},"
                      "{\"id\":\"row\",\"if\":{\"path\":\"event.n\",\"gte\":0},\"csvfile\":"
                      "{\"path\":\"/var/lib/promptd/out.csv\",\"row\":[\"{{event.n}}\","
                      "\"{{event.text}}\"]}}]}");
  free(json);
  assert_int_equal(recipe_def_enabled(def), 1);

  /* round trip: stored JSON text back to a definition, compiled */
  json = cJSON_PrintUnformatted(def);
  cJSON *stored = cJSON_Parse(json);
  free(json);
  char *d1 = recipe_digest(def), *d2 = recipe_digest(stored);
  assert_string_equal(d1, d2);
  assert_int_equal(strlen(d1), 64);
  free(d1);
  free(d2);
  cJSON_Delete(def);

  recipe *r = NULL;
  perr e = {{0}};
  if (recipe_compile(stored, 3, 1, &r, &e)) fail_msg("compile: %s", e.msg);
  assert_string_equal(r->name, "crash-csv");
  assert_int_equal(r->version, 3);
  assert_int_equal(r->enabled, 1);
  assert_string_equal(r->trigger->name, "event");
  assert_string_equal(r->source, "crash");
  assert_null(r->when);
  assert_int_equal(r->concurrency, 0);
  assert_int_equal(r->nsteps, 2);
  assert_string_equal(r->steps[0].id, "note");
  assert_ptr_equal(r->steps[0].kind, connectors_action("log"));
  assert_null(r->steps[0].cond);
  assert_string_equal(r->steps[1].id, "row");
  assert_ptr_equal(r->steps[1].kind, connectors_action("csvfile"));
  assert_non_null(r->steps[1].cond);
  assert_string_equal(cJSON_GetObjectItem(r->steps[1].cfg, "path")->valuestring,
                      "/var/lib/promptd/out.csv");
  assert_int_equal(recipe_step_index(r, "row"), 1);
  assert_int_equal(recipe_step_index(r, "nope"), -1);
  assert_null(r->partials);
  assert_null(recipe_partial(r, "x", NULL));
  recipe_free(r);
}

static void test_normalised_and_digest(void **state) {
  (void)state;
  const char *full =
      "name: full\n"
      "description: every optional field\n"
      "enabled: false\n"
      "trigger:\n  event:\n    source: orders\n"
      "when: { path: event.total, exists: true }\n"
      "concurrency: 4\n"
      "retry: { max_attempts: 5, base_ms: 100, cap_ms: 60000 }\n"
      "steps:\n"
      "  - id: a\n    retry: { max_attempts: 2 }\n    log: { message: x, level: warn }\n";
  /* the same recipe, keys in another order */
  const char *shuffled =
      "steps:\n"
      "  - log: { level: warn, message: x }\n    retry: { max_attempts: 2 }\n    id: a\n"
      "retry: { cap_ms: 60000, max_attempts: 5, base_ms: 100 }\n"
      "concurrency: 4\n"
      "when: { exists: true, path: event.total }\n"
      "trigger: { event: { source: orders } }\n"
      "enabled: false\n"
      "description: every optional field\n"
      "name: full\n";
  cJSON *a = load_ok(full), *b = load_ok(shuffled), *c = load_ok(full);
  char *ja = cJSON_PrintUnformatted(a), *jb = cJSON_PrintUnformatted(b);
  assert_string_equal(ja, jb);
  assert_string_equal(ja,
                      "{\"name\":\"full\",\"description\":\"every optional field\",\"enabled\":"
                      "false,\"trigger\":{\"event\":{\"source\":\"orders\"}},\"when\":{\"path\":"
                      "\"event.total\",\"exists\":true},\"concurrency\":4,\"retry\":{"
                      "\"max_attempts\":5,\"base_ms\":100,\"cap_ms\":60000},\"steps\":[{\"id\":"
                      "\"a\",\"retry\":{\"max_attempts\":2},\"log\":{\"message\":\"x\",\"level\":"
                      "\"warn\"}}]}");
  free(ja);
  free(jb);
  char *da = recipe_digest(a), *db = recipe_digest(b), *dc = recipe_digest(c);
  assert_string_equal(da, db);
  assert_string_equal(da, dc);
  assert_int_equal(recipe_def_enabled(a), 0);
  cJSON *d = load_ok(
      "name: full\ndescription: changed\ntrigger: { event: { source: orders } }\n"
      "steps:\n  - id: a\n    log: { message: x }\n");
  char *dd = recipe_digest(d);
  assert_string_not_equal(da, dd);
  free(da);
  free(db);
  free(dc);
  free(dd);
  cJSON_Delete(b);
  cJSON_Delete(c);
  cJSON_Delete(d);

  recipe *r = NULL;
  perr e = {{0}};
  if (recipe_compile(a, 1, 0, &r, &e)) fail_msg("compile: %s", e.msg);
  assert_int_equal(r->enabled, 0);
  assert_int_equal(r->concurrency, 4);
  assert_non_null(r->when);
  assert_int_equal(r->retry.max_attempts, 5);
  assert_int_equal(r->retry.base_ms, 100);
  assert_int_equal(r->retry.cap_ms, 60000);
  /* a step's retry overrides field by field */
  assert_int_equal(r->steps[0].retry.max_attempts, 2);
  assert_int_equal(r->steps[0].retry.base_ms, 100);
  assert_int_equal(r->steps[0].retry.cap_ms, 60000);
  recipe_free(r);
}

static void test_partials_embedded(void **state) {
  (void)state;
  write_partial("sig", "-- {{> name}}\n");
  write_partial("name", "The {{team}} team{{#loop}}{{> sig}}{{/loop}}"); /* a cycle, bounded */
  write_partial("tone", "Be brief.");
  write_partial("unused", "never read");
  cJSON *def =
      load_ok(ONE_STEP("  - id: a\n    log: { message: \"{{> tone}} Hello\\n{{> sig}}\" }\n"
                       "  - id: b\n    csvfile: { path: o.csv, row: [\"{{> tone}}\"] }\n"));
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(def, "partials");
  assert_non_null(p);
  char *js = cJSON_PrintUnformatted(p);
  /* sorted by name, each once, nested ones included, unused ones not */
  assert_string_equal(js,
                      "{\"name\":\"The {{team}} team{{#loop}}{{> sig}}{{/loop}}\","
                      "\"sig\":\"-- {{> name}}\\n\",\"tone\":\"Be brief.\"}");
  free(js);
  /* partials is the last key */
  const cJSON *last = def->child;
  while (last->next) last = last->next;
  assert_string_equal(last->string, "partials");
  char *d1 = recipe_digest(def);

  /* the stored version does not change when the files do */
  write_partial("tone", "Be verbose.");
  recipe *r = NULL;
  perr e = {{0}};
  if (recipe_compile(def, 1, 1, &r, &e)) fail_msg("compile: %s", e.msg);
  size_t len = 0;
  const char *t = recipe_partial(r, "tone", &len);
  assert_string_equal(t, "Be brief.");
  assert_int_equal(len, 9);
  assert_null(recipe_partial(r, "unused", &len));
  /* rendering through the recipe's partials */
  cJSON *ctx = cJSON_Parse("{\"team\":\"Ops\"}");
  tpl_opts o = {.escape = TPL_ESCAPE_NONE, .partial = recipe_partial, .partial_ud = r};
  char *out = tpl_render_str("{{> tone}} {{> sig}}", ctx, &o, &e);
  assert_non_null(out);
  assert_string_equal(out, "Be brief. -- The Ops team\n");
  free(out);
  cJSON_Delete(ctx);
  recipe_free(r);

  /* a new import picks up the changed file: a new digest */
  cJSON *def2 =
      load_ok(ONE_STEP("  - id: a\n    log: { message: \"{{> tone}} Hello\\n{{> sig}}\" }\n"
                       "  - id: b\n    csvfile: { path: o.csv, row: [\"{{> tone}}\"] }\n"));
  char *d2 = recipe_digest(def2);
  assert_string_not_equal(d1, d2);
  free(d1);
  free(d2);
  cJSON_Delete(def2);
}

/* `recipe export` prints the stored definition, partials inline; importing
 * that text again gives the same definition even where the partials folder
 * differs, because inline partials win over files. */
static void test_export_roundtrip(void **state) {
  (void)state;
  write_partial("tone", "Be brief.");
  cJSON *def = load_ok(ONE_STEP("  - id: a\n    log: { message: \"{{> tone}} Hi\" }\n"));
  char *exported = cJSON_Print(def);
  write_partial("tone", "Something else entirely.");
  cJSON *again = load_ok(exported);
  char *d1 = recipe_digest(def), *d2 = recipe_digest(again);
  assert_string_equal(d1, d2);
  free(d1);
  free(d2);
  free(exported);
  cJSON_Delete(def);
  cJSON_Delete(again);
  /* an inline partial that is not a valid template is refused at import */
  load_err("name: r\ntrigger: { event: { source: s } }\n"
           "steps:\n  - id: a\n    log: { message: \"{{> x}}\" }\npartials: { x: \"{{#open\" }\n",
           "r.yaml:", "partials");
}

static void test_load_file(void **state) {
  (void)state;
  char path[4400];
  snprintf(path, sizeof path, "%s/crash.yaml", g_dir);
  assert_int_equal(tu_write_file(path, CRASH_CSV), 0);
  cJSON *def = NULL;
  perr e = {{0}};
  if (recipe_load_file(path, g_pdir, &def, &e)) fail_msg("%s", e.msg);
  cJSON *def2 = load_ok(CRASH_CSV);
  char *d1 = recipe_digest(def), *d2 = recipe_digest(def2);
  assert_string_equal(d1, d2);
  free(d1);
  free(d2);
  cJSON_Delete(def);
  cJSON_Delete(def2);

  snprintf(path, sizeof path, "%s/bad.yaml", g_dir);
  assert_int_equal(tu_write_file(path,
                                 "name: t\ntrigger: { event: { source: s } }\nsteps:\n  - id: "
                                 "a\n    log: { message: 5, extra: 1 }\n"),
                   0);
  def = NULL;
  assert_int_equal(recipe_load_file(path, g_pdir, &def, &e), -1);
  assert_null(def);
  char want[4600];
  snprintf(want, sizeof want, "%s:5:24: steps[0].log.extra: unknown field 'extra'", path);
  if (strncmp(e.msg, want, strlen(want))) fail_msg("want '%s', got: %s", want, e.msg);

  snprintf(path, sizeof path, "%s/none.yaml", g_dir);
  assert_int_equal(recipe_load_file(path, g_pdir, &def, &e), -1);
  assert_non_null(strstr(e.msg, "none.yaml: No such file"));
}

static void test_compile_rejects(void **state) {
  (void)state;
  const char *bad[][2] = {
      {"{}", "no name"},
      {"{\"name\":\"x\",\"trigger\":{\"cron\":{}},\"steps\":[]}", "unknown trigger kind 'cron'"},
      {"{\"name\":\"x\",\"trigger\":{\"event\":{\"source\":\"s\"}},\"steps\":[]}", "no steps"},
      {"{\"name\":\"x\",\"trigger\":{\"event\":{\"source\":\"s\"}},\"steps\":[{\"id\":\"a\","
       "\"fax\":{}}]}",
       "unknown action kind 'fax'"},
      {"{\"name\":\"x\",\"trigger\":{\"event\":{\"source\":\"s\"}},\"steps\":[{\"id\":\"a\","
       "\"log\":{\"message\":\"m\"}},{\"id\":\"a\",\"log\":{\"message\":\"m\"}}]}",
       "step id 'a' is used twice"},
      {"{\"name\":\"x\",\"trigger\":{\"event\":{\"source\":\"s\"}},\"steps\":[{\"id\":\"a\"}]}",
       "no action"},
      {"{\"name\":\"x\",\"trigger\":{\"event\":{}},\"steps\":[{\"id\":\"a\",\"log\":{}}]}",
       "trigger 'event'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    recipe *r = (recipe *)1;
    perr e = {{0}};
    cJSON *def = cJSON_Parse(bad[i][0]);
    assert_non_null(def);
    assert_int_equal(recipe_compile(def, 1, 1, &r, &e), -1); /* takes def either way */
    assert_null(r);
    if (!strstr(e.msg, bad[i][1])) fail_msg("'%s' not in: %s", bad[i][1], e.msg);
  }
}

/* Every example recipe shipped in recipes/ loads and compiles. */
static void test_shipped_recipes(void **state) {
  (void)state;
  char dir[4096], pdir[4200];
  snprintf(dir, sizeof dir, "%s/recipes", PROMPTD_SOURCE_DIR);
  snprintf(pdir, sizeof pdir, "%s/partials", dir);
  DIR *d = opendir(dir);
  if (!d) skip();
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 6 || (strcmp(de->d_name + len - 5, ".yaml") && strcmp(de->d_name + len - 4, ".yml")))
      continue;
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    cJSON *def = NULL;
    perr e = {{0}};
    if (recipe_load_file(path, pdir, &def, &e)) fail_msg("%s", e.msg);
    recipe *r = NULL;
    if (recipe_compile(def, 1, 1, &r, &e)) fail_msg("%s: compile: %s", path, e.msg);
    recipe_free(r);
    n++;
  }
  closedir(d);
  print_message("%d shipped recipe(s) loaded\n", n);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_invalid_yaml),       T(test_unknown_keys),    T(test_wrong_types),
      T(test_missing_fields),     T(test_if_unknown_step), T(test_template_unclosed),
      T(test_duplicate_step_ids), T(test_unknown_kinds),   T(test_two_actions),
      T(test_bad_regex),          T(test_kind_validate),   T(test_missing_partial),
      T(test_partial_depth),      T(test_valid_crash_csv), T(test_normalised_and_digest),
      T(test_partials_embedded),  T(test_load_file),       T(test_compile_rejects),
      T(test_shipped_recipes),    T(test_export_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
