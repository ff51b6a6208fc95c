/*
 * promptd doctor: is this installation able to run?  Every check is
 * read-only: the database is opened read-only (a doctor run as root must
 * not leave root-owned WAL files behind the service's back) and secrets
 * are resolved and dropped, never printed.
 */
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/probe.h"
#include "core/recipe_set.h"
#include "core/runtime.h"
#include "core/secrets.h"
#include "net/http_client.h"

static const char usage_text[] =
    "usage: promptd doctor [--network] [--timeout SECONDS] [--json]\n"
    "\n"
    "Checks that this installation can run, without changing anything:\n"
    "  config    the configuration file (--config) loads and validates\n"
    "  secret    every secret reference (env:, file:, cred:) in the configuration and\n"
    "            in the enabled recipes resolves; values are never printed\n"
    "  store     the database (--db) opens read-only, its schema is current and\n"
    "            SQLite's integrity_check passes\n"
    "  recipes   every enabled recipe compiles\n"
    "  network   with --network: each configured GPT provider, Google credential\n"
    "            and mail account is reached with its credentials (nothing is sent\n"
    "            or posted; Slack and HTTP destinations are not reached)\n"
    "\n"
    "Each finding is ok, warn (works, but look) or fail.\n"
    "  --timeout SECONDS  how long the network checks may take (default 20)\n"
    "  --json             {\"ok\": bool, \"checks\": [{check, name, status, detail}]}\n"
    "\n"
    "Exit status: 0 when nothing failed, 1 when a check failed, 2 usage error.\n";

typedef enum { ST_OK, ST_WARN, ST_FAIL } status;
static const char *const status_names[] = {"ok", "warn", "fail"};

typedef struct report {
  cJSON *checks; /* array */
  int failed;
  int json;
} report;

static void add(report *r, const char *check, const char *name, status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add(report *r, const char *check, const char *name, status st, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (st == ST_FAIL) r->failed = 1;
  if (!r->json) {
    printf("%-5s %-8s %s%s%s\n", status_names[st], check, name, *detail ? ": " : "", detail);
    fflush(stdout);
  }
  cJSON *c = cJSON_CreateObject();
  if (!c) return;
  cJSON_AddStringToObject(c, "check", check);
  cJSON_AddStringToObject(c, "name", name);
  cJSON_AddStringToObject(c, "status", status_names[st]);
  cJSON_AddStringToObject(c, "detail", detail);
  cJSON_AddItemToArray(r->checks, c);
}

/* ---- secrets ---- */

typedef struct secret_walk {
  report *r;
  const char *owner; /* "config" or "recipe NAME" */
  int n;
} secret_walk;

static void check_secret(void *ud, const char *path, const char *ref) {
  secret_walk *w = ud;
  char name[768];
  snprintf(name, sizeof name, "%s: %s (%s)", w->owner, path, ref);
  perr e;
  char *v = secret_resolve(ref, &e);
  w->n++;
  if (!v) {
    add(w->r, "secret", name, ST_FAIL, "%s", e.msg);
    return;
  }
  memset(v, 0, strlen(v));
  free(v);
  add(w->r, "secret", name, ST_OK, "resolves");
}

static void config_secrets(report *r, const config *cfg) {
  secret_walk w = {.r = r, .owner = "config"};
  for (const config_section *cs = connectors_config_sections; cs->name; cs++) {
    const field_spec one[] = {{.name = cs->name, .type = cs->type, .sub = cs->fields}, {0}};
    fields_each_secret(one, cfg->sections, "", check_secret, &w);
  }
}

static void recipe_secrets(report *r, const recipe *rc) {
  char owner[256];
  snprintf(owner, sizeof owner, "recipe %s", rc->name);
  secret_walk w = {.r = r, .owner = owner};
  char where[128];
  snprintf(where, sizeof where, "trigger.%s", rc->trigger->name);
  fields_each_secret(rc->trigger->fields, rc->trigger_cfg, where, check_secret, &w);
  for (int i = 0; i < rc->nsteps; i++) {
    snprintf(where, sizeof where, "steps[%d].%s", i, rc->steps[i].kind->name);
    fields_each_secret(rc->steps[i].kind->fields, rc->steps[i].cfg, where, check_secret, &w);
  }
}

/* ---- store and recipes ---- */

static void check_store(report *r, const cli_globals *g) {
  const char *path = g->db_path;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    add(r, "store", path, ST_WARN, "no database yet (promptd serve creates it)");
    return;
  }
  store *s = NULL;
  perr e;
  if (store_open(&s, path, STORE_READONLY, &e)) {
    /* An older schema is not a fault: the daemon migrates at start. */
    int older = strstr(e.msg, "older than this promptd") != NULL;
    add(r, "store", path, older ? ST_WARN : ST_FAIL, "%s", e.msg);
    return;
  }
  int version = 0;
  if (store_schema_version(s, &version, &e) || store_integrity_check(s, &e))
    add(r, "store", path, ST_FAIL, "%s", e.msg);
  else
    add(r, "store", path, ST_OK, "schema version %d (current), integrity_check ok, %lld bytes",
        version, (long long)sb.st_size);

  recipe_set *rs = NULL;
  if (recipe_set_load(s, &rs, &e)) {
    add(r, "recipes", path, ST_FAIL, "%s", e.msg);
  } else {
    size_t n = recipe_set_count(rs);
    if (n == 0)
      add(r, "recipes", path, ST_WARN, "no enabled recipe (promptd recipe import FILE)");
    else
      add(r, "recipes", path, ST_OK, "%zu enabled recipe%s", n,
          n == 1 ? " compiles" : "s compile");
    for (size_t i = 0; i < n; i++) recipe_secrets(r, recipe_set_at(rs, i));
    recipe_set_free(rs);
  }
  store_close(s);
}

/* ---- network ---- */

struct probe_ctx {
  report *r;
  const char *section;
  int held;     /* things of this section still being reached */
  int *pending; /* held, over all sections */
  double timeout;
};

double probe_timeout(const probe_ctx *p) { return p->timeout; }

void probe_report(probe_ctx *p, const char *what, int ok, const char *detail) {
  add(p->r, "network", what, ok ? ST_OK : ST_FAIL, "%s", detail ? detail : "");
}

void probe_hold(probe_ctx *p) {
  p->held++;
  ++*p->pending;
}

void probe_release(probe_ctx *p) {
  p->held--;
  --*p->pending;
}

typedef struct net_wait {
  const int *pending;
  ev_timer deadline;
  ev_check check;
  int timed_out;
} net_wait;

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  net_wait *nw = w->data;
  nw->timed_out = 1;
  ev_break(loop, EVBREAK_ALL);
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents) {
  (void)revents;
  net_wait *nw = w->data;
  if (*nw->pending == 0) ev_break(loop, EVBREAK_ALL);
}

static void check_network(report *r, const config *cfg, double timeout) {
  perr e;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  http_client *hc = loop ? http_client_new(loop, &e) : NULL;
  if (!hc) {
    add(r, "network", "-", ST_FAIL, "%s", loop ? e.msg : "cannot create an event loop");
    if (loop) ev_loop_destroy(loop);
    return;
  }
  struct runtime rt = {.loop = loop, .http = hc, .cfg = cfg};
  size_t nsec = 0;
  while (connectors_config_sections[nsec].name) nsec++;
  probe_ctx *ctx = calloc(nsec, sizeof *ctx);
  int pending = 0, before = cJSON_GetArraySize(r->checks);
  for (size_t i = 0; ctx && i < nsec; i++) {
    const config_section *cs = &connectors_config_sections[i];
    ctx[i] = (probe_ctx){.r = r, .section = cs->name, .pending = &pending, .timeout = timeout};
    if (cs->probe && cs->probe(&rt, config_get_section(cfg, cs->name), &ctx[i], &e))
      add(r, "network", cs->name, ST_FAIL, "%s", e.msg);
  }
  if (!ctx) add(r, "network", "-", ST_FAIL, "out of memory");
  net_wait nw = {.pending = &pending};
  /* A safety net only: every probe's requests time out by themselves. */
  ev_timer_init(&nw.deadline, on_deadline, timeout + 10, 0.);
  ev_check_init(&nw.check, on_check);
  nw.deadline.data = nw.check.data = &nw;
  if (pending) {
    ev_timer_start(loop, &nw.deadline);
    ev_check_start(loop, &nw.check);
    ev_run(loop, 0);
    ev_timer_stop(loop, &nw.deadline);
    ev_check_stop(loop, &nw.check);
  }
  for (size_t i = 0; ctx && i < nsec; i++)
    if (ctx[i].held)
      add(r, "network", ctx[i].section, ST_FAIL, "no answer within %.0f s", timeout + 10);
  if (cJSON_GetArraySize(r->checks) == before)
    add(r, "network", "-", ST_WARN, "nothing configured to reach");
  /* Freeing the client cancels what is still in flight; the probes hear
   * it while ctx is still alive. */
  http_client_free(hc);
  ev_loop_destroy(loop);
  free(ctx);
}

int cmd_doctor(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {{"network", no_argument, 0, 'n'},
                                      {"timeout", required_argument, 0, 't'},
                                      {"json", no_argument, 0, 'j'},
                                      {0, 0, 0, 0}};
  int network = 0, json = 0, c;
  double timeout = 20;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'n') {
      network = 1;
    } else if (c == 'j') {
      json = 1;
    } else if (c == 't') {
      char *end;
      timeout = strtod(optarg, &end);
      if (*end || !(timeout > 0 && timeout <= 3600))
        return cli_fail(EXIT_USAGE, "doctor: --timeout takes seconds from 1 to 3600");
    } else {
      return cli_fail(EXIT_USAGE, "doctor: unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "doctor: unexpected argument '%s'", argv[optind]);

  report r = {.checks = cJSON_CreateArray(), .json = json};
  if (!r.checks) return cli_fail(EXIT_RUNTIME, "out of memory");
  config cfg;
  config_init(&cfg);
  perr e;
  const char *cfg_name = g->config_path ? g->config_path : "(none: defaults)";
  int cfg_ok = config_load(&cfg, g->config_path, &e) == 0;
  if (cfg_ok)
    add(&r, "config", cfg_name, ST_OK, "%s", g->config_path ? "loads" : "no --config given");
  else
    add(&r, "config", cfg_name, ST_FAIL, "%s", e.msg);
  if (cfg_ok) config_secrets(&r, &cfg);
  check_store(&r, g);
  if (network && cfg_ok) check_network(&r, &cfg, timeout);
  config_release(&cfg);

  if (json) {
    cJSON *out = cJSON_CreateObject();
    if (out) {
      cJSON_AddBoolToObject(out, "ok", !r.failed);
      cJSON_AddItemToObject(out, "checks", r.checks);
      r.checks = NULL;
      cli_print_json(out);
    }
  } else {
    printf("%s\n", r.failed ? "doctor: something failed (see fail lines above)" : "doctor: all is well");
  }
  cJSON_Delete(r.checks);
  return r.failed ? EXIT_RUNTIME : EXIT_OK;
}
