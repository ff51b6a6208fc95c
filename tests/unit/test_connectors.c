/*
 * connectors: the registry's invariants (unique names, mandatory members,
 * help on every field, exactly-once kinds complete), the generic `event`
 * trigger, and `promptd connectors` output (text, JSON, unknown name).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/connector.h"
#include "cli/cli.h"
#include "testutil.h"

/* ---- table invariants ------------------------------------------------------- */

static void check_fields(const char *kind, const field_spec *f) {
  assert_non_null(f);
  for (const field_spec *a = f; a->name; a++) {
    if (!a->help || !*a->help) fail_msg("%s.%s has no help text", kind, a->name);
    assert_non_null(field_type_name(a->type));
    for (const field_spec *b = a + 1; b->name; b++)
      if (strcmp(a->name, b->name) == 0) fail_msg("%s: field %s twice", kind, a->name);
    if (a->type == FT_OBJECT) {
      if (!a->sub) fail_msg("%s.%s: an object field needs sub fields", kind, a->name);
      check_fields(kind, a->sub);
    }
  }
}

static void test_triggers_table(void **state) {
  (void)state;
  size_t n = 0;
  for (size_t i = 0; connectors_triggers[i]; i++, n++) {
    const trigger_kind *k = connectors_triggers[i];
    assert_non_null(k->name);
    assert_non_null(k->summary);
    assert_non_null(k->source);
    for (size_t j = i + 1; connectors_triggers[j]; j++)
      if (strcmp(k->name, connectors_triggers[j]->name) == 0)
        fail_msg("trigger %s registered twice", k->name);
    assert_ptr_equal(connectors_trigger(k->name), k);
    check_fields(k->name, k->fields);
    if (!(k->flags & TRIGGER_PASSIVE)) {
      /* An active kind owns watchers: it must be able to build, start,
       * stop and tear them down. */
      if (!k->create || !k->start || !k->stop || !k->destroy)
        fail_msg("active trigger %s lacks create/start/stop/destroy", k->name);
    }
  }
  assert_true(n >= 1);
  assert_null(connectors_trigger("no-such-kind"));
}

static void test_actions_table(void **state) {
  (void)state;
  size_t n = 0;
  for (size_t i = 0; connectors_actions[i]; i++, n++) {
    const action_kind *k = connectors_actions[i];
    assert_non_null(k->name);
    if (!k->summary || !k->guarantee || !k->prepare || !k->start)
      fail_msg("action %s lacks summary, guarantee, prepare or start", k->name);
    for (size_t j = i + 1; connectors_actions[j]; j++)
      if (strcmp(k->name, connectors_actions[j]->name) == 0)
        fail_msg("action %s registered twice", k->name);
    assert_ptr_equal(connectors_action(k->name), k);
    check_fields(k->name, k->fields);
    if (k->flags & ACTION_EXACTLY_ONCE) {
      if (!k->begin || !k->recover || !k->resource)
        fail_msg("exactly-once action %s lacks begin/recover/resource", k->name);
    }
    /* Step keys a recipe uses for other things cannot be action names. */
    assert_string_not_equal(k->name, "id");
    assert_string_not_equal(k->name, "if");
    assert_string_not_equal(k->name, "retry");
  }
  assert_true(n >= 2);
  assert_null(connectors_action("no-such-kind"));
  assert_non_null(connectors_action("log"));
  assert_non_null(connectors_action("csvfile"));
  assert_true(connectors_action("csvfile")->flags & ACTION_EXACTLY_ONCE);
}

/* ---- the event trigger ------------------------------------------------------ */

static void test_event_trigger(void **state) {
  (void)state;
  const trigger_kind *k = connectors_trigger("event");
  assert_non_null(k);
  assert_true(k->flags & TRIGGER_PASSIVE);
  assert_string_equal(k->fields[0].name, "source");
  assert_int_equal(k->fields[0].type, FT_STRING);
  assert_true(k->fields[0].flags & FIELD_REQUIRED);

  static const char *const good[] = {"crash", "a", "forms/leads", "imap:inbox", "x.y_z-1",
                                     "0123456789012345678901234567890123456789012345678901234567890123"};
  static const char *const bad[] = {"", "has space", "semi;colon", "é",
                                    "01234567890123456789012345678901234567890123456789012345678901234"};
  perr e = {{0}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "source", good[i]);
    if (k->validate(cfg, &e)) fail_msg("\"%s\" refused: %s", good[i], e.msg);
    char *src = k->source(cfg);
    assert_string_equal(src, good[i]);
    free(src);
    cJSON_Delete(cfg);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "source", bad[i]);
    if (!k->validate(cfg, &e)) fail_msg("\"%s\" accepted", bad[i]);
    assert_non_null(strstr(e.msg, "source"));
    cJSON_Delete(cfg);
  }
  cJSON *cfg = cJSON_CreateObject();
  assert_int_equal(k->validate(cfg, &e), -1);
  assert_null(k->source(cfg));
  cJSON_Delete(cfg);
}

/* ---- promptd connectors ------------------------------------------------------ */

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  return g_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

/* Runs the command with stdout and stderr captured into *out and *err. */
static int run_cmd(char **out, char **err, int argc, const char *const *args) {
  char po[4200], pe[4200];
  snprintf(po, sizeof po, "%s/out", g_dir);
  snprintf(pe, sizeof pe, "%s/err", g_dir);
  fflush(stdout);
  fflush(stderr);
  int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
  int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
  dup2(fo, STDOUT_FILENO);
  dup2(fe, STDERR_FILENO);
  close(fo);
  close(fe);

  char *argv[8];
  assert_true(argc < 8);
  for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
  argv[argc] = NULL;
  cli_globals g = {.db_path = "unused.db"};
  int rc = cmd_connectors(argc, argv, &g);

  fflush(stdout);
  fflush(stderr);
  dup2(so, STDOUT_FILENO);
  dup2(se, STDERR_FILENO);
  close(so);
  close(se);
  *out = tu_read_file(po, NULL);
  *err = tu_read_file(pe, NULL);
  assert_non_null(*out);
  assert_non_null(*err);
  return rc;
}

static void test_cmd_list(void **state) {
  (void)state;
  char *out, *err;
  static const char *const a[] = {"connectors"};
  assert_int_equal(run_cmd(&out, &err, 1, a), 0);
  assert_non_null(strstr(out, "Triggers:"));
  assert_non_null(strstr(out, "Actions:"));
  for (size_t i = 0; connectors_triggers[i]; i++)
    assert_non_null(strstr(out, connectors_triggers[i]->summary));
  for (size_t i = 0; connectors_actions[i]; i++) {
    assert_non_null(strstr(out, connectors_actions[i]->summary));
    assert_non_null(strstr(out, connectors_actions[i]->guarantee));
  }
  assert_string_equal(err, "");
  free(out);
  free(err);
}

static void test_cmd_one(void **state) {
  (void)state;
  char *out, *err;
  static const char *const a[] = {"connectors", "csvfile"};
  assert_int_equal(run_cmd(&out, &err, 2, a), 0);
  assert_non_null(strstr(out, "csvfile (action)"));
  assert_non_null(strstr(out, "exactly-once"));
  const action_kind *k = connectors_action("csvfile");
  for (const field_spec *f = k->fields; f->name; f++) {
    assert_non_null(strstr(out, f->help));
    assert_non_null(strstr(out, field_type_name(f->type)));
  }
  assert_non_null(strstr(out, "required"));
  assert_non_null(strstr(out, "optional"));
  free(out);
  free(err);

  static const char *const b[] = {"connectors", "log"};
  assert_int_equal(run_cmd(&out, &err, 2, b), 0);
  assert_non_null(strstr(out, "one of: info warn error"));
  free(out);
  free(err);
}

static void test_cmd_json(void **state) {
  (void)state;
  char *out, *err;
  static const char *const a[] = {"connectors", "--json"};
  assert_int_equal(run_cmd(&out, &err, 2, a), 0);
  cJSON *j = cJSON_Parse(out);
  assert_non_null(j);
  cJSON *trig = cJSON_GetObjectItem(j, "triggers");
  cJSON *act = cJSON_GetObjectItem(j, "actions");
  size_t nt = 0, na = 0;
  while (connectors_triggers[nt]) nt++;
  while (connectors_actions[na]) na++;
  assert_int_equal(cJSON_GetArraySize(trig), (int)nt);
  assert_int_equal(cJSON_GetArraySize(act), (int)na);
  cJSON_Delete(j);
  free(out);
  free(err);

  static const char *const b[] = {"connectors", "--json", "csvfile"};
  assert_int_equal(run_cmd(&out, &err, 3, b), 0);
  j = cJSON_Parse(out);
  assert_non_null(j);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "triggers")), 0);
  act = cJSON_GetObjectItem(j, "actions");
  assert_int_equal(cJSON_GetArraySize(act), 1);
  cJSON *k = cJSON_GetArrayItem(act, 0);
  assert_string_equal(cJSON_GetObjectItem(k, "name")->valuestring, "csvfile");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(k, "exactly_once")));
  cJSON *fields = cJSON_GetObjectItem(k, "fields");
  cJSON *path = cJSON_GetArrayItem(fields, 0);
  assert_string_equal(cJSON_GetObjectItem(path, "name")->valuestring, "path");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(path, "required")));
  assert_string_equal(cJSON_GetObjectItem(path, "type")->valuestring,
                      field_type_name(FT_STRING));
  cJSON_Delete(j);
  free(out);
  free(err);
}

static void test_cmd_errors(void **state) {
  (void)state;
  char *out, *err;
  static const char *const a[] = {"connectors", "trello"};
  assert_int_equal(run_cmd(&out, &err, 2, a), EXIT_RUNTIME);
  assert_string_equal(err, "promptd: no connector named trello\n");
  assert_string_equal(out, "");
  free(out);
  free(err);

  static const char *const b[] = {"connectors", "--bogus"};
  assert_int_equal(run_cmd(&out, &err, 2, b), EXIT_USAGE);
  assert_non_null(strstr(err, "--bogus"));
  free(out);
  free(err);

  static const char *const c[] = {"connectors", "log", "csvfile"};
  assert_int_equal(run_cmd(&out, &err, 3, c), EXIT_USAGE);
  free(out);
  free(err);

  static const char *const d[] = {"connectors", "--help"};
  assert_int_equal(run_cmd(&out, &err, 2, d), EXIT_OK);
  assert_non_null(strstr(out, "usage: promptd connectors"));
  free(out);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_triggers_table),
      cmocka_unit_test(test_actions_table),
      cmocka_unit_test(test_event_trigger),
      cmocka_unit_test_setup_teardown(test_cmd_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmd_one, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmd_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmd_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
