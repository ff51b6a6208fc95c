/* reload: SIGHUP for a serving daemon (see reload.h). */
#include "core/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/recipe_import.h"
#include "core/service.h"

/* Sections read only when the daemon starts (the webhook and admin servers
 * bind and size themselves once; retention arms its timer at engine start):
 * a change is reported, not applied. */
static const char *const start_only_sections[] = {"http", "admin", "retention", NULL};
/* Top-level keys the reload applies itself; any other one is read at start
 * only. */
static const char *const live_keys[] = {"engine", "log", "recipes_dir", NULL};

typedef struct kept_config {
  config cfg;
  struct kept_config *next;
} kept_config;

struct reloader {
  char *config_path;
  char *recipes_opt;
  const config *current;
  kept_config *kept; /* every configuration a reload applied, newest first */
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

reloader *reloader_new(const char *config_path, const char *recipes_opt, const config *initial) {
  reloader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->config_path = dup_or_null(config_path);
  r->recipes_opt = dup_or_null(recipes_opt);
  r->current = initial;
  if ((config_path && !r->config_path) || (recipes_opt && !r->recipes_opt)) {
    reloader_free(r);
    return NULL;
  }
  return r;
}

const config *reloader_config(const reloader *r) { return r->current; }

void reloader_free(reloader *r) {
  if (!r) return;
  while (r->kept) {
    kept_config *k = r->kept;
    r->kept = k->next;
    config_release(&k->cfg);
    free(k);
  }
  free(r->config_path);
  free(r->recipes_opt);
  free(r);
}

static int listed(const char *const *names, const char *name) {
  for (size_t i = 0; names[i]; i++)
    if (strcmp(names[i], name) == 0) return 1;
  return 0;
}

static int same(const cJSON *a, const cJSON *b) {
  if (!a || !b) return a == b;
  return cJSON_Compare(a, b, 1);
}

/* Calls fn for every name in a or b (objects, either may be NULL) whose
 * value differs between them. */
static void each_change(const cJSON *a, const cJSON *b,
                        void (*fn)(const char *name, const cJSON *was, const cJSON *now, void *ud),
                        void *ud) {
  const cJSON *it;
  cJSON_ArrayForEach(it, a) {
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(b, it->string);
    if (!same(it, other)) fn(it->string, it, other, ud);
  }
  cJSON_ArrayForEach(it, b) {
    if (!cJSON_GetObjectItemCaseSensitive(a, it->string)) fn(it->string, NULL, it, ud);
  }
}

typedef struct diff {
  buf applied;       /* "engine.concurrency,providers,..." */
  int napplied;
  const char *prefix; /* while walking a section: "http" */
  int sections;      /* a connector section other than the start-only ones changed */
  int log;           /* log: changed */
  int recipes_dir;
} diff;

static void note(diff *d, const char *name) {
  if (d->napplied++) buf_addc(&d->applied, ',');
  if (d->prefix) {
    buf_adds(&d->applied, d->prefix);
    buf_addc(&d->applied, '.');
  }
  buf_adds(&d->applied, name);
}

static void warn_restart(const char *prefix, const char *name) {
  char what[160], msg[240];
  snprintf(what, sizeof what, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
  snprintf(msg, sizeof msg, "%s changed: takes effect at restart", what);
  log_warn(msg, "setting=%s", what);
}

static void on_start_only(const char *name, const cJSON *was, const cJSON *now, void *ud) {
  (void)was, (void)now;
  warn_restart(((diff *)ud)->prefix, name);
}

static void on_applied(const char *name, const cJSON *was, const cJSON *now, void *ud) {
  (void)was, (void)now;
  note(ud, name);
}

static void on_section(const char *name, const cJSON *was, const cJSON *now, void *ud) {
  diff *d = ud;
  if (listed(start_only_sections, name)) {
    d->prefix = name;
    if (cJSON_IsObject(was) || cJSON_IsObject(now))
      each_change(was, now, on_start_only, d);
    else
      warn_restart(NULL, name);
    d->prefix = NULL;
    return;
  }
  d->sections = 1;
  note(d, name);
}

static void on_top(const char *name, const cJSON *was, const cJSON *now, void *ud) {
  diff *d = ud;
  if (!listed(live_keys, name)) {
    warn_restart(NULL, name);
    return;
  }
  if (strcmp(name, "log") == 0) d->log = 1;
  if (strcmp(name, "recipes_dir") == 0) d->recipes_dir = 1;
  if (cJSON_IsObject(was) || cJSON_IsObject(now)) {
    d->prefix = name;
    each_change(was, now, on_applied, d);
    d->prefix = NULL;
  } else {
    note(d, name);
  }
}

/* A log setting the file no longer names goes back to the default. */
static void apply_log(const config *c) {
  if (!c->log_level) log_set_level(LOG_INFO);
  if (!c->log_format) log_set_json(0);
  config_apply_log(c);
}

/* 1: applied; 0: unchanged or no file; -1: refused (logged). */
static int reload_config(reloader *r, engine *en) {
  if (!r->config_path) return 0;
  kept_config *k = calloc(1, sizeof *k);
  perr e;
  if (!k) {
    log_error("reload refused", "part=config error=%s", log_q("out of memory"));
    return -1;
  }
  config_init(&k->cfg);
  if (config_parse(&k->cfg, r->config_path, &e)) {
    log_error("reload refused", "part=config error=%s", log_q(e.msg));
    config_release(&k->cfg);
    free(k);
    return -1;
  }
  diff d = {0};
  buf_init(&d.applied, 4096);
  each_change(r->current->doc, k->cfg.doc, on_top, &d);
  each_change(r->current->sections, k->cfg.sections, on_section, &d);
  int rc = 0;
  if (!d.napplied) {
    /* Nothing to apply (at most start-only changes, warned about): the
     * configuration in force stays the object steps point into. */
    log_info("config unchanged", "file=%s", log_q(r->config_path));
    config_release(&k->cfg);
    free(k);
  } else if (engine_reconfigure(en, &k->cfg,
                                d.sections ? ENGINE_RECONF_KINDS | ENGINE_RECONF_TRIGGERS : 0,
                                &e)) {
    log_error("reload refused", "part=config error=%s", log_q(e.msg));
    config_release(&k->cfg);
    free(k);
    rc = -1;
  } else {
    k->next = r->kept;
    r->kept = k;
    r->current = &k->cfg;
    if (d.recipes_dir && r->recipes_opt)
      log_warn("recipes_dir changed: --recipes on the command line still wins", "recipes=%s",
               log_q(r->recipes_opt));
    log_info("config reloaded", "file=%s changed=%s concurrency=%d", log_q(r->config_path),
             log_q(d.applied.data ? d.applied.data : ""), r->current->engine.concurrency);
    /* Last, so the line above is logged at the level it was sent under. */
    if (d.log) apply_log(r->current);
    rc = 1;
  }
  buf_release(&d.applied);
  return rc;
}

int reload_import_recipes(store *s, const char *path, const char *changed_msg, int log_unchanged,
                          int *changes, perr *e) {
  import_item *items = NULL;
  size_t n = 0;
  *changes = 0;
  if (recipe_import_dir_sync(s, path, &items, &n, e)) return -1;
  for (size_t i = 0; i < n; i++) {
    const import_item *it = &items[i];
    if (it->removed) {
      log_info("recipe removed", "recipe=%s version=%d file=%s", it->name, it->version,
               log_q(it->file));
      (*changes)++;
    } else if (it->changed) {
      log_info(changed_msg, "recipe=%s version=%d file=%s", it->name, it->version,
               log_q(it->file));
      (*changes)++;
    } else if (log_unchanged) {
      log_info("recipe unchanged", "recipe=%s version=%d", it->name, it->version);
    }
  }
  import_items_free(items, n);
  return 0;
}

/* 1: some recipe changed; 0: none, or no directory; -1: refused (logged). */
static int reload_recipes(reloader *r, engine *en) {
  const char *dir = r->recipes_opt ? r->recipes_opt : r->current->recipes_dir;
  if (!dir) return 0;
  perr e;
  int changes = 0;
  /* The engine's transaction: the import is a savepoint in it, committed
   * with the iteration's other writes (or rolled back alone). */
  store *s = engine_txn(en, &e);
  if (!s || reload_import_recipes(s, dir, "recipe reloaded", 0, &changes, &e)) {
    log_error("reload refused", "part=recipes dir=%s error=%s", log_q(dir), log_q(e.msg));
    return -1;
  }
  if (!changes) return 0;
  /* Stored, but the engine keeps the set it had (engine_reload_recipes
   * logged why): say so rather than claim a refusal. */
  if (engine_reload_recipes(en)) {
    log_error("recipes stored but not loaded; the previous set stays in force until the next "
              "reload", "dir=%s", log_q(dir));
    return -1;
  }
  return 1;
}

static const char *outcome(int rc) { return rc < 0 ? "refused" : rc ? "applied" : "unchanged"; }

int reloader_run(reloader *r, engine *en) {
  service_reloading();
  log_info("reloading", "config=%s recipes=%s", log_q(r->config_path ? r->config_path : ""),
           log_q(r->recipes_opt ? r->recipes_opt : r->current->recipes_dir ? r->current->recipes_dir : ""));
  int crc = reload_config(r, en);
  /* A refused configuration refuses the whole reload: recipes written for
   * the new one would run under the old. */
  int rrc = crc < 0 ? 0 : reload_recipes(r, en);
  log_info("reload done", "config=%s recipes=%s", outcome(crc),
           crc < 0 ? "skipped" : outcome(rrc));
  service_ready();
  return crc < 0 || rrc < 0 ? -1 : 0;
}
