/*
 * `promptd connectors [NAME] [--json]`: what the connector table holds.
 *
 * Without NAME: every trigger kind and action kind with its summary (and,
 * for actions, the delivery guarantee).  With NAME: that kind's fields,
 * printed from the same field tables the recipe checker uses, so the help
 * can never drift from what import accepts.  A name may be both a trigger
 * and an action kind (a service that is read from and written to); both
 * are shown then.
 *
 * --json prints one object {"triggers": [...], "actions": [...]} in both
 * forms (filtered to NAME when given), each kind with its fields (and
 * "passive" for triggers, "guarantee" and "exactly_once" for actions), so
 * a script has one shape to read.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/connector.h" /* before cli.h, which uses struct perr */
#include "cli/cli.h"

static const char usage[] =
    "usage: promptd connectors [NAME] [--json]\n"
    "\n"
    "Lists every trigger and action kind; with NAME, the fields that kind takes.\n"
    "\n"
    "  --json   print one JSON object {\"triggers\": [...], \"actions\": [...]}\n"
    "  --help   show this help\n";

/* ---- JSON ---------------------------------------------------------------- */

static cJSON *fields_json(const field_spec *f) {
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return NULL;
  for (; f && f->name; f++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) goto fail;
    cJSON_AddItemToArray(arr, o);
    if (!cJSON_AddStringToObject(o, "name", f->name) ||
        !cJSON_AddStringToObject(o, "type", field_type_name(f->type)) ||
        !cJSON_AddBoolToObject(o, "required", (f->flags & FIELD_REQUIRED) != 0) ||
        !cJSON_AddStringToObject(o, "help", f->help ? f->help : ""))
      goto fail;
    if ((f->type == FT_INT || f->type == FT_NUMBER) && f->min < f->max) {
      if (!cJSON_AddNumberToObject(o, "min", f->min) ||
          !cJSON_AddNumberToObject(o, "max", f->max))
        goto fail;
    }
    if (f->choices) {
      cJSON *c = cJSON_AddArrayToObject(o, "choices");
      if (!c) goto fail;
      for (const char *const *ch = f->choices; *ch; ch++) {
        cJSON *s = cJSON_CreateString(*ch);
        if (!s) goto fail;
        cJSON_AddItemToArray(c, s);
      }
    }
    if (f->sub) {
      cJSON *sub = fields_json(f->sub);
      if (!sub) goto fail;
      cJSON_AddItemToObject(o, "fields", sub);
    }
  }
  return arr;
fail:
  cJSON_Delete(arr);
  return NULL;
}

static int add_kind_json(cJSON *arr, const char *name, const char *summary,
                         const char *guarantee, const field_spec *fields, const char *flag_key,
                         int flag) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return -1;
  cJSON_AddItemToArray(arr, o);
  if (!cJSON_AddStringToObject(o, "name", name) ||
      !cJSON_AddStringToObject(o, "summary", summary ? summary : ""))
    return -1;
  if (guarantee && !cJSON_AddStringToObject(o, "guarantee", guarantee)) return -1;
  if (!cJSON_AddBoolToObject(o, flag_key, flag)) return -1;
  cJSON *f = fields_json(fields);
  if (!f) return -1;
  cJSON_AddItemToObject(o, "fields", f);
  return 0;
}

static int print_json(const char *only) {
  cJSON *root = cJSON_CreateObject();
  cJSON *trig = root ? cJSON_AddArrayToObject(root, "triggers") : NULL;
  cJSON *act = root ? cJSON_AddArrayToObject(root, "actions") : NULL;
  if (!trig || !act) goto oom;
  for (size_t i = 0; connectors_triggers[i]; i++) {
    const trigger_kind *k = connectors_triggers[i];
    if (only && strcmp(only, k->name) != 0) continue;
    if (add_kind_json(trig, k->name, k->summary, NULL, k->fields, "passive",
                      (k->flags & TRIGGER_PASSIVE) != 0))
      goto oom;
  }
  for (size_t i = 0; connectors_actions[i]; i++) {
    const action_kind *k = connectors_actions[i];
    if (only && strcmp(only, k->name) != 0) continue;
    if (add_kind_json(act, k->name, k->summary, k->guarantee ? k->guarantee : "", k->fields,
                      "exactly_once", (k->flags & ACTION_EXACTLY_ONCE) != 0))
      goto oom;
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s) return cli_fail(EXIT_RUNTIME, "out of memory");
  puts(s);
  cJSON_free(s);
  return EXIT_OK;
oom:
  cJSON_Delete(root);
  return cli_fail(EXIT_RUNTIME, "out of memory");
}

/* ---- text ---------------------------------------------------------------- */

static int name_width(const field_spec *f, int indent) {
  int w = 0;
  for (; f && f->name; f++) {
    int n = indent + (int)strlen(f->name);
    if (n > w) w = n;
    if (f->sub) {
      int s = name_width(f->sub, indent + 2);
      if (s > w) w = s;
    }
  }
  return w;
}

static int type_width(const field_spec *f) {
  int w = 0;
  for (; f && f->name; f++) {
    int n = (int)strlen(field_type_name(f->type));
    if (n > w) w = n;
    if (f->sub) {
      int s = type_width(f->sub);
      if (s > w) w = s;
    }
  }
  return w;
}

static void print_fields(const field_spec *f, int indent, int nw, int tw) {
  for (; f && f->name; f++) {
    printf("  %*s%-*s  %-*s  %-8s  %s", indent, "", nw - indent, f->name, tw,
           field_type_name(f->type), (f->flags & FIELD_REQUIRED) ? "required" : "optional",
           f->help ? f->help : "");
    if (f->choices) {
      fputs(" [one of:", stdout);
      for (const char *const *c = f->choices; *c; c++) printf(" %s", *c);
      fputs("]", stdout);
    }
    if ((f->type == FT_INT || f->type == FT_NUMBER) && f->min < f->max)
      printf(" [%g to %g]", f->min, f->max);
    putchar('\n');
    if (f->sub) print_fields(f->sub, indent + 2, nw, tw);
  }
}

static void print_kind_fields(const field_spec *fields) {
  if (!fields || !fields->name) {
    puts("fields: none");
    return;
  }
  puts("fields:");
  print_fields(fields, 0, name_width(fields, 0), type_width(fields));
}

static void print_one(const char *name) {
  int first = 1;
  const trigger_kind *t = connectors_trigger(name);
  if (t) {
    printf("%s (trigger, %s): %s\n", t->name, (t->flags & TRIGGER_PASSIVE) ? "passive" : "active",
           t->summary ? t->summary : "");
    print_kind_fields(t->fields);
    first = 0;
  }
  const action_kind *a = connectors_action(name);
  if (a) {
    if (!first) putchar('\n');
    printf("%s (action): %s\n", a->name, a->summary ? a->summary : "");
    printf("guarantee: %s\n", a->guarantee ? a->guarantee : "not stated");
    print_kind_fields(a->fields);
  }
}

static void print_list(void) {
  int w = 0;
  for (size_t i = 0; connectors_triggers[i]; i++) {
    int n = (int)strlen(connectors_triggers[i]->name);
    if (n > w) w = n;
  }
  for (size_t i = 0; connectors_actions[i]; i++) {
    int n = (int)strlen(connectors_actions[i]->name);
    if (n > w) w = n;
  }
  puts("Triggers:");
  for (size_t i = 0; connectors_triggers[i]; i++) {
    const trigger_kind *k = connectors_triggers[i];
    printf("  %-*s  %s\n", w, k->name, k->summary ? k->summary : "");
  }
  puts("\nActions:");
  for (size_t i = 0; connectors_actions[i]; i++) {
    const action_kind *k = connectors_actions[i];
    printf("  %-*s  %s\n", w, k->name, k->summary ? k->summary : "");
    printf("  %-*s  guarantee: %s\n", w, "", k->guarantee ? k->guarantee : "not stated");
  }
  puts("\n`promptd connectors NAME` shows the fields a kind takes.");
}

int cmd_connectors(int argc, char **argv, const cli_globals *g) {
  (void)g;
  if (cli_wants_help(argc, argv)) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  int json = 0;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      return cli_fail(EXIT_USAGE, "connectors: unknown option %s (see --help)", argv[i]);
    } else if (name) {
      return cli_fail(EXIT_USAGE, "connectors: one NAME at most, got %s and %s", name, argv[i]);
    } else {
      name = argv[i];
    }
  }
  if (name && !connectors_trigger(name) && !connectors_action(name))
    return cli_fail(EXIT_RUNTIME, "no connector named %s", name);
  if (json) return print_json(name);
  if (name) print_one(name);
  else print_list();
  return fflush(stdout) == 0 ? EXIT_OK : cli_fail(EXIT_RUNTIME, "cannot write the output");
}
