/*
 * engine_triggers: the engine's active trigger instances (pollers,
 * schedules), one per event source among the enabled recipes.
 *
 *   reconcile (start, every recipe reload):
 *     source wanted, no instance        -> create + start
 *     source wanted, same kind and cfg  -> keep (its timers and cursor go on)
 *     source wanted, cfg changed        -> stop the old one, start a new one
 *     source no longer wanted           -> stop, then destroy
 *   restart (a reload changed the configuration sections a kind reads
 *   when it starts): stop those instances, then reconcile.
 *   shutdown: stop every instance; the engine finishes shutting down only
 *   once each has called back.  engine_free destroys what is left.
 *
 * A stopped instance is destroyed from its done callback, which the kind
 * calls from the loop (never from inside stop), so no instance is freed
 * under its own feet.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/engine_internal.h"
#include "core/log.h"

struct trigger_entry {
  engine *en;
  char *source;
  const trigger_kind *kind;
  cJSON *cfg;          /* a copy: the recipe set it came from may be reloaded */
  trigger_inst *inst;
  int started, stopping;
  int failing;         /* last report was an error: log only changes */
  trigger_entry *next;
};

static void entry_free(trigger_entry *t) {
  if (t->inst) t->kind->destroy(t->inst);
  cJSON_Delete(t->cfg);
  free(t->source);
  free(t);
}

static void unlink_entry(engine *en, trigger_entry *t) {
  for (trigger_entry **p = &en->triggers; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      return;
    }
}

static void on_stopped(void *ud) {
  trigger_entry *t = ud;
  engine *en = t->en;
  unlink_entry(en, t);
  en->ntriggers_stopping--;
  log_info("trigger stopped", "source=%s kind=%s", t->source, t->kind->name);
  entry_free(t);
  engine_maybe_finish_shutdown(en);
}

static void entry_stop(trigger_entry *t) {
  if (t->stopping) return;
  t->stopping = 1;
  t->en->ntriggers_stopping++;
  if (t->started) {
    t->kind->stop(t->inst, on_stopped, t);
  } else {
    /* Never started: nothing to wait for. */
    unlink_entry(t->en, t);
    t->en->ntriggers_stopping--;
    entry_free(t);
  }
}

static trigger_entry *find_live(engine *en, const char *source) {
  for (trigger_entry *t = en->triggers; t; t = t->next)
    if (!t->stopping && strcmp(t->source, source) == 0) return t;
  return NULL;
}

static int wanted(const recipe_set *rs, const trigger_entry *t) {
  for (size_t i = 0; i < recipe_set_count(rs); i++) {
    const recipe *r = recipe_set_at(rs, i);
    if (strcmp(r->source, t->source) == 0 && r->trigger == t->kind &&
        cJSON_Compare(r->trigger_cfg, t->cfg, 1))
      return 1;
  }
  return 0;
}

static void entry_start(engine *en, const recipe *r) {
  trigger_entry *t = calloc(1, sizeof *t);
  perr e;
  if (!t || !(t->source = strdup(r->source)) ||
      !(t->cfg = cJSON_Duplicate(r->trigger_cfg, 1))) {
    if (t) free(t->source);
    free(t);
    log_error("trigger not started: out of memory", "source=%s", r->source);
    return;
  }
  t->en = en;
  t->kind = r->trigger;
  t->next = en->triggers;
  en->triggers = t;
  if (r->trigger->create(&t->inst, t->cfg, t->source, en, &e) ||
      r->trigger->start(t->inst, &e)) {
    log_error("trigger not started", "source=%s kind=%s recipe=%s error=%s", t->source,
              t->kind->name, r->name, log_q(e.msg));
    /* Recorded, so `status` shows it failing rather than idle. */
    engine_trigger_report(en, t->source, e.msg);
    entry_stop(t);
    return;
  }
  t->started = 1;
  log_info("trigger started", "source=%s kind=%s recipe=%s", t->source, t->kind->name, r->name);
}

void engine_triggers_reconcile(engine *en) {
  if (en->shutting_down) return;
  for (trigger_entry *t = en->triggers, *next; t; t = next) {
    next = t->next;
    if (!t->stopping && !wanted(en->rs, t)) entry_stop(t);
  }
  /* Recipes come in name order: the first recipe of a source decides. */
  for (size_t i = 0; i < recipe_set_count(en->rs); i++) {
    const recipe *r = recipe_set_at(en->rs, i);
    if ((r->trigger->flags & TRIGGER_PASSIVE) || !r->trigger->create) continue;
    if (!find_live(en, r->source)) entry_start(en, r);
  }
}

void engine_triggers_restart(engine *en, unsigned flags) {
  if (en->shutting_down) return;
  for (trigger_entry *t = en->triggers, *next; t; t = next) {
    next = t->next;
    if (t->stopping || !(t->kind->flags & flags)) continue;
    log_info("trigger restarting with the new configuration", "source=%s kind=%s", t->source,
             t->kind->name);
    entry_stop(t);
  }
  engine_triggers_reconcile(en);
}

void engine_triggers_stop(engine *en) {
  for (trigger_entry *t = en->triggers, *next; t; t = next) {
    next = t->next;
    entry_stop(t);
  }
}

void engine_triggers_free(engine *en) {
  while (en->triggers) {
    trigger_entry *t = en->triggers;
    en->triggers = t->next;
    entry_free(t);
  }
  en->ntriggers_stopping = 0;
}

int engine_cursor_get(engine *en, const char *source, char **cursor, perr *e) {
  return store_cursor_get(en->st, source, cursor, e);
}

int engine_cursor_set(engine *en, const char *source, const char *cursor, perr *e) {
  store *s = engine_txn(en, e);
  if (!s || store_cursor_set(s, source, cursor, clock_now_ms(), e)) return -1;
  return 0;
}

void engine_trigger_report(engine *en, const char *source, const char *error) {
  perr e;
  store *s = engine_txn(en, &e);
  if (!s || store_trigger_health_set(s, source, error, clock_now_ms(), &e)) {
    engine_fail(en, e.msg);
    return;
  }
  trigger_entry *t = find_live(en, source);
  int was = t ? t->failing : 0;
  if (t) t->failing = error != NULL;
  if (error && !was)
    log_warn("trigger failing", "source=%s error=%s", source, log_q(error));
  else if (!error && was)
    log_info("trigger working again", "source=%s", source);
}
