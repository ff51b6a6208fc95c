/* promptd test: dry-run a recipe against an event, calling nothing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/cond.h"
#include "core/config.h"
#include "core/intake.h"
#include "core/recipe.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd test RECIPE --event FILE|- [--json]\n"
    "\n"
    "Renders what the recipe would do with the event: whether its `when:` filter\n"
    "matches, each step's `if:`, and each step's input exactly as the action would\n"
    "receive it (prompts, rows, messages). Calls nothing and stores nothing.\n"
    "RECIPE is a YAML file, or the name of a stored recipe. Earlier steps' outputs\n"
    "do not exist in a dry run: conditions on them are shown as assumed true, and\n"
    "templates that use them render those names empty.\n";

static int names_steps(void *ud, const char *path) {
  (void)ud;
  return strncmp(path, "steps.", 6) == 0 || strcmp(path, "steps") == 0;
}

static cJSON *load_definition(const char *arg, const cli_globals *g, perr *e) {
  struct stat sb;
  cJSON *def = NULL;
  if (stat(arg, &sb) == 0) {
    char *copy = strdup(arg);
    if (!copy) return NULL;
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (*slash = '\0', copy) : ".";
    size_t n = strlen(dir) + sizeof "/partials";
    char *pdir = malloc(n);
    if (pdir) snprintf(pdir, n, "%s/partials", dir);
    int rc = !pdir || recipe_load_file(arg, pdir, &def, e);
    free(pdir);
    free(copy);
    return rc ? NULL : def;
  }
  store *s = cli_open_store(g, 0);
  if (!s) {
    perr_set(e, "cannot open the database to look up recipe %s", arg);
    return NULL;
  }
  store_recipe r;
  int rc = store_recipe_get(s, arg, 0, &r, e);
  if (rc == 1) perr_set(e, "%s is neither a file nor a stored recipe", arg);
  if (!rc) {
    def = cJSON_Parse(r.definition);
    store_recipe_release(&r);
  }
  store_close(s);
  return def;
}

int cmd_test(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {
      {"event", required_argument, 0, 'e'}, {"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
  const char *file = NULL;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'e')
      file = optarg;
    else if (c == 'j')
      json = 1;
    else
      return cli_fail(EXIT_USAGE, "test: unknown option or missing value: %s", argv[optind - 1]);
  }
  if (optind + 1 != argc || !file) return cli_fail(EXIT_USAGE, "test needs RECIPE and --event FILE");
  perr e;
  cJSON *def = load_definition(argv[optind], g, &e);
  if (!def) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  recipe *r;
  if (recipe_compile(def, 0, 1, &r, &e)) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  config cfg;
  config_init(&cfg);
  if (config_load(&cfg, g->config_path, &e)) {
    recipe_free(r);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  size_t len, max = cfg.engine.max_event_bytes;
  config_release(&cfg);
  char *payload = cli_read_file(file, max, &len, &e);
  int checked = payload && !intake_check_payload(payload, len, max, &e);
  cJSON *event = checked ? cJSON_Parse(payload) : NULL;
  free(payload);
  if (!cJSON_IsObject(event)) {
    cJSON_Delete(event);
    recipe_free(r);
    return cli_fail(EXIT_RUNTIME, "event: %s", checked ? "must be a JSON object" : e.msg);
  }
  cJSON *ctx = cJSON_CreateObject();
  cJSON_AddItemToObject(ctx, "event", event);
  cJSON_AddObjectToObject(ctx, "steps");
  cJSON *runj = cJSON_AddObjectToObject(ctx, "run");
  cJSON_AddNumberToObject(runj, "id", 0);
  cJSON_AddStringToObject(runj, "recipe", r->name);
  cJSON_AddStringToObject(runj, "source", r->source);

  int rc = EXIT_OK;
  int matches = !r->when || cond_eval(r->when, ctx);
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "recipe", r->name);
  cJSON_AddStringToObject(out, "source", r->source);
  cJSON_AddBoolToObject(out, "matches", matches);
  cJSON *steps = cJSON_AddArrayToObject(out, "steps");
  if (!json) {
    printf("recipe %s, trigger %s (source %s)\n", r->name, r->trigger->name, r->source);
    if (r->when) {
      buf d;
      buf_init(&d, 4096);
      cond_describe(r->when, &d);
      printf("when %s: %s\n", d.data ? d.data : "?", matches ? "matches" : "does not match: no run would start");
      buf_release(&d);
    }
  }
  for (int i = 0; i < r->nsteps && matches; i++) {
    const recipe_step *st = &r->steps[i];
    cJSON *sj = cJSON_CreateObject();
    cJSON_AddItemToArray(steps, sj);
    cJSON_AddStringToObject(sj, "id", st->id);
    cJSON_AddStringToObject(sj, "kind", st->kind->name);
    const char *verdict = "runs";
    buf d;
    buf_init(&d, 4096);
    if (st->cond) {
      cond_describe(st->cond, &d);
      if (cond_paths(st->cond, names_steps, NULL))
        verdict = "assumed true (depends on earlier step output)";
      else if (!cond_eval(st->cond, ctx))
        verdict = "skipped";
    }
    cJSON_AddStringToObject(sj, "if", d.data ? d.data : "");
    cJSON_AddStringToObject(sj, "verdict", verdict);
    if (!json) {
      printf("\nstep %d %s (%s)", i + 1, st->id, st->kind->name);
      if (st->cond) printf(", if %s: %s", d.data ? d.data : "?", verdict);
      putchar('\n');
    }
    buf_release(&d);
    if (strcmp(verdict, "skipped") == 0) continue;
    render_env env = {recipe_partial, r};
    cJSON *input = NULL;
    if (st->kind->prepare(st->cfg, ctx, &env, &input, &e)) {
      cJSON_AddStringToObject(sj, "error", e.msg);
      if (!json) printf("  cannot render: %s\n", e.msg);
      rc = EXIT_RUNTIME;
      continue;
    }
    if (!json) {
      char *text = cJSON_Print(input);
      for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        printf("  %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
      }
      free(text);
    }
    cJSON_AddItemToObject(sj, "input", input);
  }
  if (json)
    cli_print_json(out);
  else
    cJSON_Delete(out);
  cJSON_Delete(ctx);
  recipe_free(r);
  return rc;
}
