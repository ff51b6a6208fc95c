/*
 * promptd demo: the example recipes end to end in a temporary directory.
 * It is the real path: recipes imported through the store, sample events
 * through intake, runs executed by the engine on a libev loop.  Recipes'
 * relative output paths land in the temporary directory (the demo runs
 * there, as the service runs in its state directory).
 */
#include <dirent.h>
#include <ev.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/demo_google.h"
#include "cli/demo_post.h"
#include "cli/fake_server.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/connector.h"
#include "core/engine.h"
#include "core/intake.h"
#include "core/log.h"
#include "core/recipe_import.h"
#include "core/recipe_set.h"
#include "triggers/webhook_router.h"

static const char usage_text[] =
    "usage: promptd demo [--recipes DIR] [--keep] [--verbose]\n"
    "\n"
    "Imports the example recipes (default: the recipes/ folder promptd was built\n"
    "from, else " PROMPTD_DATA_RECIPES "), feeds the sample events in\n"
    "DIR/samples/*.json to them, runs everything in a temporary database and shows\n"
    "each run, the files the recipes wrote and the Slack messages sent.  Samples of\n"
    "the form {\"source\": NAME, \"events\": [...]} go through intake as `emit`\n"
    "would; {\"webhook\": PATH, \"sign\": {...}, \"events\": [...]} are posted, signed,\n"
    "to promptd's webhook server on a free loopback port.\n"
    "\n"
    "GPT steps call the real API when OPENAI_API_KEY is set, else promptd's fake\n"
    "OpenAI server; Slack steps post to SLACK_SALES_URL when it is set, else to\n"
    "promptd's fake Slack, whose messages the demo prints.  forms-to-sheet runs\n"
    "against promptd's fake Google server (a form, a sheet and a service account\n"
    "made for the demo) and the demo prints the sheet.  Recipes that need a real\n"
    "account (a mailbox, a sheet) are imported but not run, and the demo says so.\n"
    "\n"
    "  --recipes DIR  the recipes to run\n"
    "  --keep         keep the temporary directory and print its path\n"
    "  --verbose      show the daemon's log lines\n";

typedef struct demo_wait {
  engine *en;
  demo_posts *posts;
  store *st;
  int google_runs; /* forms-to-sheet runs to wait for */
  ev_timer check, limit;
  int timed_out;
} demo_wait;

/* The form responses have all become finished runs. */
static int google_done(demo_wait *dw) {
  if (!dw->google_runs) return 1;
  store_run *runs = NULL;
  size_t n = 0, done = 0;
  perr e;
  if (store_runs_list(dw->st, NULL, "forms-to-sheet", 100, &runs, &n, &e)) return 0;
  for (size_t i = 0; i < n; i++)
    done += strcmp(runs[i].status, "succeeded") == 0 || strcmp(runs[i].status, "failed") == 0;
  store_runs_free(runs, n);
  return done >= (size_t)dw->google_runs;
}

static void on_check(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  demo_wait *dw = w->data;
  if (demo_posts_done(dw->posts) && engine_idle(dw->en) && google_done(dw))
    ev_break(loop, EVBREAK_ALL);
}

static void on_limit(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  demo_wait *dw = w->data;
  dw->timed_out = 1;
  ev_break(loop, EVBREAK_ALL);
}

/* dir/name into out; 0 when it fit. */
#define SLACK_RECORD "slack-received.jsonl"

static int join_path(char *out, size_t size, const char *dir, const char *name) {
  int n = snprintf(out, size, "%s/%s", dir, name);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int emit_samples(store *s, const char *dir, int *count, int *runs, cJSON *webhooks,
                        perr *e) {
  char path[PATH_MAX];
  char sdir[PATH_MAX];
  if (join_path(sdir, sizeof sdir, dir, "samples")) return perr_set(e, "path too long: %s", dir);
  DIR *d = opendir(sdir);
  if (!d) return perr_set(e, "no sample events: cannot open %s", sdir);
  recipe_set *rs = NULL;
  int rc = -1;
  if (recipe_set_load(s, &rs, e) || store_begin(s, e)) goto out;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    if (join_path(path, sizeof path, sdir, de->d_name)) continue;
    size_t len;
    char *text = cli_read_file(path, 16u << 20, &len, e);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(doc, "source");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "events");
    const cJSON *hook = cJSON_GetObjectItemCaseSensitive(doc, "webhook");
    if (cJSON_IsString(hook) && cJSON_IsArray(events)) {
      if (demo_posts_secret_env(doc, "promptd-demo-secret"))
        printf("%s: signing with a demo secret (its secret variable is not set)\n", de->d_name);
      cJSON_AddItemToArray(webhooks, doc);
      continue;
    }
    if (!cJSON_IsString(src) || !cJSON_IsArray(events)) {
      cJSON_Delete(doc);
      perr_set(e, "%s: expected {\"source\": NAME, \"events\": [...]} or {\"webhook\": PATH, "
                  "\"events\": [...]}", path);
      store_rollback(s);
      goto out;
    }
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events) {
      char *payload = cJSON_PrintUnformatted(ev);
      intake_result r;
      int bad = !payload || intake_event(s, rs, src->valuestring, NULL, payload, strlen(payload),
                                         0, clock_now_ms(), &r, e);
      free(payload);
      if (bad) {
        cJSON_Delete(doc);
        perr_prefix(e, "%s", path);
        store_rollback(s);
        goto out;
      }
      (*count)++;
      *runs += r.runs;
    }
    cJSON_Delete(doc);
  }
  rc = store_commit(s, e);
out:
  closedir(d);
  recipe_set_free(rs);
  return rc;
}

static void show_runs(store *s) {
  store_run *runs = NULL;
  size_t n = 0;
  perr e;
  if (store_runs_list(s, NULL, NULL, 1000, &runs, &n, &e)) {
    printf("cannot list runs: %s\n", e.msg);
    return;
  }
  printf("\n== runs ==\n");
  for (size_t i = n; i-- > 0;) {
    store_run *r = &runs[i];
    printf("run %lld  %s  %s%s%s\n", (long long)r->id, r->recipe, r->status,
           r->last_error ? ": " : "", r->last_error ? r->last_error : "");
    store_step *st = NULL;
    size_t ns = 0;
    if (store_steps_of_run(s, r->id, &st, &ns, &e)) continue;
    for (size_t k = 0; k < ns; k++)
      printf("  %-12s %-9s %s\n", st[k].step_id, st[k].status, st[k].output ? st[k].output : "");
    store_steps_free(st, ns);
  }
  store_runs_free(runs, n);
}

static void show_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    /* What the recipes wrote: CSV files (not the demo's own key, recipe
     * copy, database or Slack record). */
    size_t nlen = strlen(de->d_name);
    if (de->d_name[0] == '.' || nlen < 5 || strcmp(de->d_name + nlen - 4, ".csv") != 0) continue;
    char path[PATH_MAX];
    struct stat sb;
    if (join_path(path, sizeof path, dir, de->d_name)) continue;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
    printf("\n== %s ==\n", de->d_name);
    perr e;
    size_t len;
    char *text = cli_read_file(path, 1u << 20, &len, &e);
    if (text) fwrite(text, 1, len, stdout);
    free(text);
  }
  closedir(d);
}

/* What the fake Slack received, one message a line. */
static void show_slack(const char *dir) {
  char path[PATH_MAX];
  if (join_path(path, sizeof path, dir, SLACK_RECORD)) return;
  perr e;
  size_t len;
  char *text = cli_read_file(path, 4u << 20, &len, &e);
  if (!text) return;
  printf("\n== Slack (fake) received ==\n");
  int n = 0;
  for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
    nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    cJSON *rec = cJSON_Parse(line);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec, "body"), "text");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "status");
    if (cJSON_IsString(msg))
      printf("%s  [%d]\n", msg->valuestring, cJSON_IsNumber(st) ? st->valueint : 0), n++;
    cJSON_Delete(rec);
  }
  if (!n) printf("(no messages)\n");
  free(text);
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char path[PATH_MAX];
    if (!join_path(path, sizeof path, dir, de->d_name)) unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Recipes whose trigger or steps use an outside account (a mailbox, a
 * form, a sheet) need what the demo does not have: left disabled, and
 * said so. */
static int disable_pollers(store *s, const char *except, perr *e) {
  recipe_set *rs;
  if (recipe_set_load(s, &rs, e)) return -1;
  int rc = 0;
  for (size_t i = 0; i < recipe_set_count(rs) && !rc; i++) {
    const recipe *r = recipe_set_at(rs, i);
    const char *needs = (r->trigger->flags & TRIGGER_ACCOUNT) ? r->trigger->name : NULL;
    for (int k = 0; !needs && k < r->nsteps; k++)
      if (r->steps[k].kind->flags & ACTION_ACCOUNT) needs = r->steps[k].kind->name;
    if (!needs || (except && strcmp(r->name, except) == 0)) continue;
    rc = store_recipe_set_enabled(s, r->name, 0, e);
    if (!rc)
      printf("recipe %s not run: its %s needs an account (see the recipe's comments)\n", r->name,
             needs);
  }
  recipe_set_free(rs);
  return rc;
}

/* The configuration's google: section, pointing at the fake. */
static int google_config(config *cfg, const demo_google *gg, perr *e) {
  cJSON *sec = cJSON_CreateObject();
  if (!sec || !cJSON_AddStringToObject(sec, "forms_url", demo_google_url(gg)) ||
      !cJSON_AddStringToObject(sec, "sheets_url", demo_google_url(gg))) {
    cJSON_Delete(sec);
    return perr_set(e, "out of memory");
  }
  cJSON_AddItemToObject(cfg->sections, "google", sec);
  return 0;
}

static pid_t start_fake_slack(const char *tmp) {
  const char *url = getenv("SLACK_SALES_URL");
  if (url && *url) {
    printf("Slack steps post to SLACK_SALES_URL (set in the environment).\n\n");
    return 0;
  }
  char record[PATH_MAX];
  if (join_path(record, sizeof record, tmp, SLACK_RECORD)) return -1;
  const char *const args[] = {"--quiet", "--record", record, NULL};
  int port;
  perr e;
  pid_t pid = fake_server_start_args(fake_slack_script(), args, &port, &e);
  if (pid < 0) {
    fprintf(stderr, "promptd: SLACK_SALES_URL is not set and %s\n", e.msg);
    return -1;
  }
  char hook[128];
  snprintf(hook, sizeof hook, "http://127.0.0.1:%d/services/T0DEMO/B0DEMO/demo", port);
  setenv("SLACK_SALES_URL", hook, 1);
  printf("SLACK_SALES_URL is not set: Slack steps post to promptd's fake Slack at\n%s\n"
         "(it answers like Slack; the demo prints what it received).\n\n", hook);
  return pid;
}

static const char *default_recipes(void) {
  struct stat sb;
  if (stat(PROMPTD_RECIPES_DIR "/samples", &sb) == 0) return PROMPTD_RECIPES_DIR;
  return PROMPTD_DATA_RECIPES;
}

int cmd_demo(int argc, char **argv, const cli_globals *g) {
  (void)g; /* the demo never touches the configured database */
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {{"recipes", required_argument, 0, 'r'},
                                       {"keep", no_argument, 0, 'k'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {0, 0, 0, 0}};
  const char *recipes = NULL;
  int keep = 0, verbose = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'r': recipes = optarg; break;
      case 'k': keep = 1; break;
      case 'v': verbose = 1; break;
      default: return cli_fail(EXIT_USAGE, "demo: unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "demo: unexpected argument '%s'", argv[optind]);
  /* Without a key the GPT steps talk to promptd's fake OpenAI server: same
   * API, deterministic answers, no cost.  With one, to the real API. */
  pid_t fake = 0;
  const char *key = getenv("OPENAI_API_KEY");
  if (!key || !*key) {
    int port;
    perr fe;
    if ((fake = fake_server_start(fake_server_script(), 300, &port, &fe)) < 0) {
      return cli_fail(EXIT_RUNTIME, "OPENAI_API_KEY is not set and %s", fe.msg);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    setenv("OPENAI_BASE_URL", url, 1);
    setenv("OPENAI_API_KEY", "sk-promptd-demo", 1);
    printf("OPENAI_API_KEY is not set: GPT steps use promptd's fake OpenAI server at %s\n"
           "(same API, made-up answers, no cost). Set OPENAI_API_KEY to use the real API.\n\n",
           url);
  } else {
    printf("GPT steps call the real OpenAI API (OPENAI_API_KEY is set; this costs money).\n\n");
  }
  char rdir[PATH_MAX], tmp[PATH_MAX], cwd[PATH_MAX];
  if (!realpath(recipes ? recipes : default_recipes(), rdir)) {
    fake_server_stop(fake);
    return cli_fail(EXIT_RUNTIME, "cannot find the example recipes at %s",
                    recipes ? recipes : default_recipes());
  }
  const char *t = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/promptd-demo-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmp)) {
    fake_server_stop(fake);
    return cli_fail(EXIT_RUNTIME, "cannot create a temporary directory");
  }
  if (!getcwd(cwd, sizeof cwd) || chdir(tmp)) {
    fake_server_stop(fake);
    rmdir(tmp);
    return cli_fail(EXIT_RUNTIME, "cannot enter %s", tmp);
  }
  if (!verbose) log_set_level(LOG_WARN);

  int rc = EXIT_RUNTIME, emitted = 0, queued = 0;
  pid_t slack = start_fake_slack(tmp);
  cJSON *webhooks = cJSON_CreateArray();
  webhook_router *router = NULL;
  demo_posts *posts = NULL;
  demo_google *gg = NULL;
  import_item *gitems = NULL;
  size_t ngitems = 0;
  config cfg;
  config_init(&cfg);
  perr e;
  store *s = NULL;
  engine *en = NULL;
  import_item *items = NULL;
  size_t nitems = 0;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  char db[PATH_MAX + 16];
  snprintf(db, sizeof db, "%s/promptd.db", tmp);
  printf("promptd demo in %s\nrecipes from %s\n\n", tmp, rdir);
  if (slack < 0 || !webhooks) goto out;
  e.msg[0] = '\0';
  if (!(gg = demo_google_start(rdir, tmp, &e)) && e.msg[0]) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    goto out;
  }
  if (gg)
    printf("Google connectors use promptd's fake Google server at %s (a form with two\n"
           "responses, a sheet, a service account made for the demo).\n\n",
           demo_google_url(gg));
  if (!loop || config_load(&cfg, NULL, &e) || (gg && google_config(&cfg, gg, &e)) ||
      store_open(&s, db, 0, &e) || recipe_import_path(s, rdir, &items, &nitems, &e) ||
      (gg && recipe_import_path(s, demo_google_recipe(gg), &gitems, &ngitems, &e)) ||
      emit_samples(s, rdir, &emitted, &queued, webhooks, &e)) {
    cli_fail(EXIT_RUNTIME, "%s", loop ? e.msg : "cannot create the event loop");
    goto out;
  }
  for (size_t i = 0; i < nitems; i++) printf("imported recipe %s\n", items[i].name);
  if (disable_pollers(s, gg ? "forms-to-sheet" : NULL, &e)) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    goto out;
  }
  printf("emitted %d sample events: %d runs queued (an event that no recipe's trigger and\n"
         "`when:` filter match starts none)\n", emitted, queued);
  cfg.engine.retry.base_ms = 200; /* a demo should not sit in long backoffs */
  if (!(en = engine_new(loop, s, &cfg, &e)) || engine_start(en, &e)) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    goto out;
  }
  if (cJSON_GetArraySize(webhooks) > 0) {
    if (!(router = webhook_router_new(en, &cfg, "127.0.0.1:0", &e)) ||
        !(posts = demo_posts_start(loop, webhook_router_port(router), webhooks, &e))) {
      cli_fail(EXIT_RUNTIME, "%s", e.msg);
      goto out;
    }
    printf("posting the webhook samples, signed, to http://127.0.0.1:%d\n",
           webhook_router_port(router));
  }
  demo_wait dw = {.en = en, .posts = posts, .st = s, .google_runs = demo_google_expected(gg)};
  ev_timer_init(&dw.check, on_check, 0.05, 0.05);
  ev_timer_init(&dw.limit, on_limit, 60., 0.);
  dw.check.data = dw.limit.data = &dw;
  ev_timer_start(loop, &dw.check);
  ev_timer_start(loop, &dw.limit);
  ev_run(loop, 0);
  ev_timer_stop(loop, &dw.check);
  ev_timer_stop(loop, &dw.limit);
  if (engine_failed(en)) {
    cli_fail(EXIT_RUNTIME, "%s", engine_failed(en));
    goto out;
  }
  if (posts)
    printf("webhooks: %d accepted (202), %d refused\n", demo_posts_accepted(posts),
           demo_posts_refused(posts));
  show_runs(s);
  show_files(tmp);
  show_slack(tmp);
  if (gg) demo_google_show(gg);
  if (posts && demo_posts_refused(posts)) {
    cli_fail(EXIT_RUNTIME, "demo: %d webhook posts were refused", demo_posts_refused(posts));
    goto out;
  }
  if (dw.timed_out) {
    cli_fail(EXIT_RUNTIME, "demo: runs were still unfinished after 60 s");
    goto out;
  }
  rc = EXIT_OK;
out:
  demo_posts_free(posts);
  engine_free(en);
  demo_google_stop(gg);
  import_items_free(gitems, ngitems);
  webhook_router_free(router);
  cJSON_Delete(webhooks);
  fake_server_stop(slack);
  store_close(s);
  import_items_free(items, nitems);
  config_release(&cfg);
  if (loop) ev_loop_destroy(loop);
  fake_server_stop(fake);
  if (chdir(cwd)) rc = EXIT_RUNTIME;
  if (keep)
    printf("\nkept %s\n", tmp);
  else
    remove_dir(tmp);
  return rc;
}
