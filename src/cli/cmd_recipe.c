/* promptd recipe: import, list, show, enable, disable, rm, export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/recipe_import.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd recipe import FILE|DIR [--json]\n"
    "       promptd recipe list [--json]\n"
    "       promptd recipe show NAME [--version N] [--json]\n"
    "       promptd recipe enable|disable|rm NAME\n"
    "       promptd recipe export NAME [--version N]\n"
    "\n"
    "import   validates YAML recipes and stores them: an unchanged file is a no-op,\n"
    "         a changed one becomes a new version (runs keep the version they\n"
    "         started with). A directory import is all or nothing. Partials come\n"
    "         from the partials/ folder beside the files.\n"
    "list     current versions: name, version, enabled, trigger source, steps\n"
    "show     one recipe's stored definition and metadata\n"
    "enable   match new events again / disable: stop matching new events\n"
    "rm       remove the recipe; stored versions stay for the runs that used them\n"
    "export   print the stored definition: JSON, which is also YAML, with its\n"
    "         partials inline, so `recipe import` takes it back unchanged\n";

static int do_import(const char *path, int json, store *s) {
  import_item *items = NULL;
  size_t n = 0;
  perr e;
  if (recipe_import_path(s, path, &items, &n, &e))
    return cli_fail(EXIT_RUNTIME, "nothing imported: %s", e.msg);
  if (json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", items[i].name);
      cJSON_AddNumberToObject(o, "version", items[i].version);
      cJSON_AddBoolToObject(o, "changed", items[i].changed);
      cJSON_AddStringToObject(o, "file", items[i].file);
      cJSON_AddItemToArray(arr, o);
    }
    cli_print_json(arr);
  } else {
    for (size_t i = 0; i < n; i++)
      printf("%s %s version %d (%s)\n", items[i].changed ? "imported" : "unchanged",
             items[i].name, items[i].version, items[i].file);
  }
  import_items_free(items, n);
  return EXIT_OK;
}

static int step_count(const char *definition) {
  cJSON *d = cJSON_Parse(definition);
  int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "steps"));
  cJSON_Delete(d);
  return n;
}

static int do_list(int json, store *s) {
  store_recipe *v = NULL;
  size_t n = 0;
  perr e;
  if (store_recipe_list(s, 0, &v, &n, &e)) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  if (json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", v[i].name);
      cJSON_AddNumberToObject(o, "version", v[i].version);
      cJSON_AddBoolToObject(o, "enabled", v[i].enabled);
      cJSON_AddStringToObject(o, "source", v[i].source);
      cJSON_AddNumberToObject(o, "steps", step_count(v[i].definition));
      if (v[i].file)
        cJSON_AddStringToObject(o, "file", v[i].file);
      else
        cJSON_AddNullToObject(o, "file");
      cJSON_AddItemToArray(arr, o);
    }
    cli_print_json(arr);
  } else if (!n) {
    puts("no recipes (import some with: promptd recipe import DIR)");
  } else {
    printf("%-28s %-7s %-8s %-5s %s\n", "NAME", "VERSION", "ENABLED", "STEPS", "SOURCE");
    for (size_t i = 0; i < n; i++)
      printf("%-28s %-7d %-8s %-5d %s\n", v[i].name, v[i].version, v[i].enabled ? "yes" : "no",
             step_count(v[i].definition), v[i].source);
  }
  store_recipes_free(v, n);
  return EXIT_OK;
}

static int do_show(const char *name, int version, int json, int export_only, store *s) {
  store_recipe r;
  perr e;
  int rc = store_recipe_get(s, name, version, &r, &e);
  if (rc == 1) {
    if (version) return cli_fail(EXIT_RUNTIME, "recipe %s has no version %d", name, version);
    return cli_fail(EXIT_RUNTIME, "no recipe named %s", name);
  }
  if (rc) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  cJSON *def = cJSON_Parse(r.definition);
  if (export_only) {
    cli_print_json(def);
  } else if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r.name);
    cJSON_AddNumberToObject(o, "version", r.version);
    cJSON_AddNumberToObject(o, "current_version", r.current);
    cJSON_AddBoolToObject(o, "enabled", r.enabled);
    cJSON_AddStringToObject(o, "source", r.source);
    cJSON_AddStringToObject(o, "digest", r.digest);
    if (r.file)
      cJSON_AddStringToObject(o, "file", r.file);
    else
      cJSON_AddNullToObject(o, "file");
    cJSON_AddStringToObject(o, "created_at", cli_time(r.created_at));
    cJSON_AddItemToObject(o, "definition", def);
    cli_print_json(o);
  } else {
    printf("recipe %s version %d (current %d), %s\n", r.name, r.version, r.current,
           r.enabled ? "enabled" : "disabled");
    printf("source: %s\nfile: %s\nimported: %s\ndigest: %s\ndefinition:\n", r.source,
           r.file ? r.file : "-", cli_time(r.created_at), r.digest);
    cli_print_json(def);
  }
  store_recipe_release(&r);
  return EXIT_OK;
}

int cmd_recipe(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv) || argc < 2) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  const char *sub = argv[1];
  static const char *const subs[] = {"import", "list", "show", "enable", "disable", "rm", "export", NULL};
  int known = 0;
  for (size_t i = 0; subs[i]; i++) known |= strcmp(subs[i], sub) == 0;
  if (!known)
    return cli_fail(EXIT_USAGE, "recipe: unknown subcommand '%s' (import, list, show, enable, disable, rm, export)", sub);
  int json = 0, version = 0;
  const char *arg = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0 && strcmp(sub, "export") != 0) {
      json = 1;
    } else if (strcmp(argv[i], "--version") == 0 &&
               (strcmp(sub, "show") == 0 || strcmp(sub, "export") == 0)) {
      if (i + 1 >= argc || !(version = (int)cli_parse_id(argv[i + 1])))
        return cli_fail(EXIT_USAGE, "recipe %s: --version takes a positive number", sub);
      i++;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      return cli_fail(EXIT_USAGE, "recipe %s: unknown option '%s'", sub, argv[i]);
    } else if (arg) {
      return cli_fail(EXIT_USAGE, "recipe %s: unexpected argument '%s'", sub, argv[i]);
    } else {
      arg = argv[i];
    }
  }
  int needs_arg = strcmp(sub, "list") != 0;
  if (needs_arg && !arg)
    return cli_fail(EXIT_USAGE, "recipe %s needs %s", sub, strcmp(sub, "import") == 0 ? "FILE or DIR" : "a recipe NAME");
  if (!needs_arg && arg) return cli_fail(EXIT_USAGE, "recipe list: unexpected argument '%s'", arg);
  store *s = cli_open_store(g, 0);
  if (!s) return EXIT_RUNTIME;
  int rc;
  perr e;
  if (strcmp(sub, "import") == 0) {
    rc = do_import(arg, json, s);
  } else if (strcmp(sub, "list") == 0) {
    rc = do_list(json, s);
  } else if (strcmp(sub, "show") == 0 || strcmp(sub, "export") == 0) {
    rc = do_show(arg, version, json, strcmp(sub, "export") == 0, s);
  } else {
    int r = strcmp(sub, "rm") == 0 ? store_recipe_remove(s, arg, &e)
                                   : store_recipe_set_enabled(s, arg, strcmp(sub, "enable") == 0, &e);
    if (r == 1)
      rc = cli_fail(EXIT_RUNTIME, "no recipe named %s", arg);
    else if (r)
      rc = cli_fail(EXIT_RUNTIME, "%s", e.msg);
    else {
      printf("recipe %s %s\n", arg, strcmp(sub, "rm") == 0 ? "removed" : strcmp(sub, "enable") == 0 ? "enabled" : "disabled");
      rc = EXIT_OK;
    }
  }
  store_close(s);
  return rc;
}
