/*
 * engine: loop glue, group commit, scheduling, intake and life cycle.
 * See engine.h for the design and engine_internal.h for the invariants.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/engine_internal.h"
#include "core/log.h"
#include "core/metrics_catalog.h"
#include "core/retention.h"
#include "net/http_client.h"

void engine_config_defaults(engine_config *c) {
  c->concurrency = 16;
  c->max_event_bytes = INTAKE_DEFAULT_MAX_EVENT_BYTES;
  c->retry.max_attempts = 5;
  c->retry.base_ms = 1000;
  c->retry.cap_ms = 300000;
  c->poll_interval = 0.25;
  c->shutdown_timeout = 30.0;
}

struct ev_loop *engine_loop(const engine *en) { return en->loop; }
const char *engine_failed(const engine *en) { return en->failed[0] ? en->failed : NULL; }
int engine_stopping(const engine *en) { return en->shutting_down; }
size_t engine_active(const engine *en) { return en->nactive; }

/* ---- transactions and group commit ---- */

store *engine_txn(engine *en, perr *e) {
  if (en->failed[0]) {
    perr_set(e, "engine stopped after a store failure: %s", en->failed);
    return NULL;
  }
  if (!en->txn_open) {
    if (store_begin(en->st, e)) return NULL;
    en->txn_open = 1;
  }
  return en->st;
}

int engine_after_commit(engine *en, void (*fn)(void *ud, int ok), void *ud) {
  perr e;
  if (!engine_txn(en, &e)) return -1;
  if (en->nafter == en->after_cap) {
    size_t cap = en->after_cap ? en->after_cap * 2 : 64;
    after_cb *p = realloc(en->after, cap * sizeof *p);
    if (!p) return -1;
    en->after = p;
    en->after_cap = cap;
  }
  en->after[en->nafter++] = (after_cb){fn, ud};
  return 0;
}

/* The store is the truth: once memory and store may disagree, stop. */
void engine_fail(engine *en, const char *why) {
  if (!en->failed[0]) {
    snprintf(en->failed, sizeof en->failed, "%s", why);
    log_error("engine stopping: store failure", "error=%s", log_q(why));
  }
  ev_break(en->loop, EVBREAK_ALL);
}

/* Commits the open transaction (if any), then tells everyone who waited. */
static void commit_now(engine *en) {
  perr e;
  int ok = !en->failed[0];
  if (en->txn_open && store_commit(en->st, &e)) {
    store_rollback(en->st);
    ok = 0;
  }
  en->txn_open = 0;
  ev_now_update(en->loop);
  /* Callbacks may queue more callbacks for the next commit: take the list. */
  after_cb *list = en->after;
  size_t n = en->nafter;
  en->after = NULL;
  en->nafter = en->after_cap = 0;
  if (!ok) engine_fail(en, en->failed[0] ? en->failed : e.msg);
  for (size_t i = 0; i < n; i++) list[i].fn(list[i].ud, ok);
  free(list);
}

static void schedule(engine *en);

void engine_maybe_finish_shutdown(engine *en) {
  if (en->shutting_down && en->nactive == 0 && !en->txn_open && !en->ntriggers_stopping &&
      en->shutdown_done) {
    void (*done)(void *) = en->shutdown_done;
    en->shutdown_done = NULL;
    ev_timer_stop(en->loop, &en->shutdown_timer);
    ev_prepare_stop(en->loop, &en->prepare);
    ev_idle_stop(en->loop, &en->idle);
    done(en->shutdown_ud);
  }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)revents;
  engine *en = w->data;
  if (en->need_schedule) schedule(en);
  if (en->txn_open || en->nafter) commit_now(en);
  /* Work queued by the callbacks is committed on the next iteration. */
  if ((en->txn_open || en->need_schedule) && !en->failed[0])
    ev_idle_start(loop, &en->idle);
  else
    ev_idle_stop(loop, &en->idle);
  engine_maybe_finish_shutdown(en);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop, (void)w, (void)revents; /* only keeps the loop from blocking */
}

/* ---- recipe versions ---- */

static int reload_recipes(engine *en) {
  perr e;
  recipe_set *rs;
  if (recipe_set_load(en->st, &rs, &e)) {
    log_error("cannot load recipes; keeping the previous set", "error=%s", log_q(e.msg));
    return -1;
  }
  recipe_set_free(en->rs);
  en->rs = rs;
  log_info("recipes loaded", "enabled=%zu generation=%lld", recipe_set_count(rs),
           (long long)recipe_set_generation(rs));
  engine_triggers_reconcile(en);
  return 0;
}

int engine_reload_recipes(engine *en) { return reload_recipes(en); }

/* ---- reconfiguration ---- */

/* The engine: settings as the engine uses them. */
static engine_config live_settings(const engine_config *c) {
  engine_config out = *c;
  if (out.concurrency < 1) out.concurrency = 1;
  return out;
}

int engine_reconfigure(engine *en, const config *cfg, unsigned what, perr *e) {
  if (en->shutting_down) return perr_set(e, "promptd is shutting down");
  size_t nkinds = connectors_action_count();
  void **fresh = NULL;
  if (what & ENGINE_RECONF_KINDS) {
    if (!(fresh = calloc(nkinds ? nkinds : 1, sizeof *fresh))) return perr_set(e, "out of memory");
    /* Kinds keep the runtime's address and read rt->cfg from it: point it at
     * the new configuration while they init, back if one refuses. */
    const config *old = en->rt.cfg;
    en->rt.cfg = cfg;
    for (size_t i = 0; connectors_actions[i]; i++) {
      const action_kind *k = connectors_actions[i];
      if (!k->init || !k->init(&en->rt, &fresh[i], e)) continue;
      perr_prefix(e, "%s", k->name);
      for (size_t j = 0; j < i; j++)
        if (fresh[j] && connectors_actions[j]->shutdown) connectors_actions[j]->shutdown(fresh[j]);
      free(fresh);
      en->rt.cfg = old;
      return -1;
    }
    for (size_t i = 0; connectors_actions[i]; i++) {
      if (!connectors_actions[i]->init) continue;
      retired_state *r = en->kind_states[i] ? malloc(sizeof *r) : NULL;
      if (en->kind_states[i] && !r) {
        /* Cannot keep the old state for the steps using it: keep using it. */
        if (fresh[i] && connectors_actions[i]->shutdown) connectors_actions[i]->shutdown(fresh[i]);
        continue;
      }
      if (r) {
        *r = (retired_state){i, en->kind_states[i], en->retired};
        en->retired = r;
      }
      en->kind_states[i] = fresh[i];
    }
    free(fresh);
  }
  en->rt.cfg = cfg;
  en->cfg = live_settings(&cfg->engine);
  en->need_schedule = 1; /* a higher concurrency has room now */
  if (what & ENGINE_RECONF_TRIGGERS) engine_triggers_restart(en, TRIGGER_ACCOUNT);
  return 0;
}

/* ---- resources ---- */

static void arm_wake(engine *en) {
  perr e;
  int64_t at;
  int rc = store_runs_next_wakeup(en->st, &at, &e);
  ev_timer_stop(en->loop, &en->wake);
  if (rc) return;
  double in = (double)(at - clock_now_ms()) / 1000.0;
  ev_timer_set(&en->wake, in > 0 ? in : 0., 0.);
  ev_timer_start(en->loop, &en->wake);
}

static void schedule(engine *en) {
  en->need_schedule = 0;
  if (en->shutting_down || en->failed[0]) return;
  int cap = en->cfg.concurrency - (int)en->nactive;
  if (cap > 0) {
    /* A little more than the free slots, to step over runs held back by
     * their recipe's limit. */
    size_t want = (size_t)cap + 8, n = 0;
    int64_t *ids = malloc(want * sizeof *ids);
    int64_t *exclude = en->nactive ? malloc(en->nactive * sizeof *exclude) : NULL;
    size_t nx = 0;
    for (active_run *ar = en->runs; ar && exclude; ar = ar->next) exclude[nx++] = ar->id;
    perr e;
    if (!ids || (en->nactive && !exclude)) {
      engine_fail(en, "out of memory");
    } else if (store_runs_runnable(en->st, clock_now_ms(), exclude, nx, want, ids, &n, &e)) {
      engine_fail(en, e.msg);
    } else {
      for (size_t i = 0; i < n && cap > 0 && !en->failed[0]; i++) {
        int rc = claim_run(en, ids[i]);
        if (rc < 0)
          engine_fail(en, "cannot claim a run");
        else
          cap -= rc;
      }
    }
    free(ids);
    free(exclude);
  }
  arm_wake(en);
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  engine *en = w->data;
  en->need_schedule = 1;
}

/* Another process (emit, recipe import, replay) committed: look again. */
static void on_poll(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  engine *en = w->data;
  perr e;
  int64_t v, gen;
  if (store_data_version(en->st, &v, &e)) {
    log_error("cannot read the store's data version", "error=%s", log_q(e.msg));
    return;
  }
  if (v == en->data_version) return;
  en->data_version = v;
  if (!store_recipes_generation(en->st, &gen, &e) && gen != recipe_set_generation(en->rs))
    reload_recipes(en);
  en->need_schedule = 1;
}

/* ---- intake ---- */

typedef struct pending_ingest {
  engine_ingest_cb cb;
  void *ud;
  intake_result r;
  metric_series *counted; /* received or deduplicated, bumped once durable */
} pending_ingest;

static void on_ingest_committed(void *ud, int ok) {
  pending_ingest *p = ud;
  if (ok) metric_inc(p->counted);
  if (p->cb) p->cb(p->ud, ok, &p->r, ok ? NULL : "the event could not be stored durably");
  free(p);
}

int engine_ingest(engine *en, const char *source, const char *dedupe_key, const char *payload,
                  size_t len, engine_ingest_cb cb, void *ud, perr *e) {
  return engine_ingest_parsed(en, source, dedupe_key, NULL, payload, len, cb, ud, e);
}

int engine_ingest_parsed(engine *en, const char *source, const char *dedupe_key,
                         const cJSON *event, const char *payload, size_t len, engine_ingest_cb cb,
                         void *ud, perr *e) {
  if (en->shutting_down) {
    metric_inc(METRIC_GET(&m_events_rejected, source, "unavailable"));
    return perr_set(e, "promptd is shutting down");
  }
  pending_ingest *p = calloc(1, sizeof *p);
  if (!p) return perr_set(e, "out of memory");
  store *s = engine_txn(en, e);
  int rc = !s      ? INTAKE_STORE_FAILED
           : event ? intake_event_parsed(s, en->rs, source, dedupe_key, event, payload, len,
                                         en->cfg.max_event_bytes, clock_now_ms(), &p->r, e)
                   : intake_event(s, en->rs, source, dedupe_key, payload, len,
                                  en->cfg.max_event_bytes, clock_now_ms(), &p->r, e);
  if (rc) {
    free(p);
    if (rc == INTAKE_REFUSED)
      metric_inc(METRIC_GET(&m_events_rejected, source,
                            strstr(e->msg, "over the limit") ? "too_large" : "invalid"));
    /* A store error dooms this iteration's transaction: everyone waiting on
     * it is told, and the store stays the truth. */
    if (rc == INTAKE_STORE_FAILED) engine_fail(en, e->msg);
    return -1;
  }
  p->cb = cb;
  p->ud = ud;
  p->counted = METRIC_GET(p->r.created ? &m_events_received : &m_events_deduplicated, source);
  if (engine_after_commit(en, on_ingest_committed, p)) {
    free(p);
    engine_fail(en, "out of memory");
    return perr_set(e, "out of memory");
  }
  if (p->r.runs) en->need_schedule = 1;
  en->backlog += p->r.runs;
  /* Without grouping the answer still waits for on_prepare (never from
   * inside this call), but the transaction, and its fsync, is this
   * event's alone. */
  if (en->cfg.commit_each) {
    perr ce;
    if (store_commit(en->st, &ce)) {
      store_rollback(en->st);
      en->txn_open = 0;
      engine_fail(en, ce.msg);
    }
    en->txn_open = 0;
  }
  return 0;
}

/* ---- life cycle ---- */

engine *engine_new(struct ev_loop *loop, store *s, const config *cfg, perr *e) {
  engine *en = calloc(1, sizeof *en);
  size_t nkinds = connectors_action_count();
  if (en) en->kind_states = calloc(nkinds ? nkinds : 1, sizeof *en->kind_states);
  if (!en || !en->kind_states) {
    free(en);
    perr_set(e, "out of memory");
    return NULL;
  }
  en->backlog_at = -1;
  en->loop = loop;
  en->st = s;
  config_init(&en->own_cfg);
  if (!cfg) {
    if (config_load(&en->own_cfg, NULL, e)) {
      free(en->kind_states);
      free(en);
      return NULL;
    }
    cfg = &en->own_cfg;
  }
  en->cfg = live_settings(&cfg->engine);
  en->rt = (runtime){.loop = loop, .st = s, .cfg = cfg};
  if (!(en->rt.http = http_client_new(loop, e))) {
    config_release(&en->own_cfg);
    free(en->kind_states);
    free(en);
    return NULL;
  }
  ev_prepare_init(&en->prepare, on_prepare);
  en->prepare.data = en;
  ev_idle_init(&en->idle, on_idle);
  ev_timer_init(&en->poll, on_poll, en->cfg.poll_interval, en->cfg.poll_interval);
  en->poll.data = en;
  ev_timer_init(&en->wake, on_wake, 0., 0.);
  en->wake.data = en;
  return en;
}

void *engine_kind_state(const engine *en, const action_kind *k) {
  for (size_t i = 0; connectors_actions[i]; i++)
    if (connectors_actions[i] == k) return en->kind_states[i];
  return NULL;
}

int engine_start(engine *en, perr *e) {
  int n = 0;
  for (size_t i = 0; connectors_actions[i]; i++) {
    const action_kind *k = connectors_actions[i];
    if (k->init && k->init(&en->rt, &en->kind_states[i], e)) {
      perr_prefix(e, "%s", k->name);
      return -1;
    }
  }
  if (store_begin(en->st, e)) return -1;
  if (recover_interrupted(en, e) || store_runs_requeue_running(en->st, clock_now_ms(), &n, e)) {
    store_rollback(en->st);
    return -1;
  }
  if (store_commit(en->st, e)) return -1;
  if (n) log_info("resuming interrupted runs", "runs=%d", n);
  if (recipe_set_load(en->st, &en->rs, e)) return -1;
  if (store_data_version(en->st, &en->data_version, e)) return -1;
  log_info("recipes loaded", "enabled=%zu generation=%lld", recipe_set_count(en->rs),
           (long long)recipe_set_generation(en->rs));
  ev_prepare_start(en->loop, &en->prepare);
  ev_timer_start(en->loop, &en->poll);
  en->need_schedule = 1;
  ev_idle_start(en->loop, &en->idle);
  engine_triggers_reconcile(en);
  return engine_retention_start(en, e);
}

/* First expiry: ask in-flight steps that can cancel to do so, and give
 * them a short grace.  Then: whatever is still in flight is left to the
 * next start (the store says `running`; start-up requeues it).  Runs in
 * other phases have commits pending and finish by themselves. */
static void on_shutdown_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  engine *en = w->data;
  if (!en->cancel_asked) {
    en->cancel_asked = 1;
    size_t asked = 0;
    for (active_run *ar = en->runs; ar; ar = ar->next) {
      /* Only a step in flight has a kind to ask: a run past its last step
       * has position == nsteps. */
      if (ar->phase != AR_IN_FLIGHT) continue;
      const action_kind *k = ar->rc->steps[ar->position].kind;
      if (k->cancel) {
        k->cancel(&ar->call);
        asked++;
      }
    }
    log_warn("shutdown timeout: cancelling in-flight steps", "runs=%zu cancelled=%zu",
             en->nactive, asked);
    if (asked) {
      ev_timer_set(w, 5., 0.);
      ev_timer_start(loop, w);
      return;
    }
  }
  size_t left = 0;
  for (active_run *ar = en->runs, *next; ar; ar = next) {
    next = ar->next;
    if (ar->phase != AR_IN_FLIGHT) continue;
    run_drop(ar);
    left++;
  }
  if (left) log_warn("steps left for the next start", "runs=%zu", left);
  en->need_schedule = 0;
  engine_maybe_finish_shutdown(en);
}

void engine_shutdown(engine *en, void (*done)(void *ud), void *ud) {
  if (en->shutting_down) return;
  en->shutting_down = 1;
  en->shutdown_done = done;
  en->shutdown_ud = ud;
  ev_timer_stop(en->loop, &en->poll);
  ev_timer_stop(en->loop, &en->wake);
  log_info("stopping: finishing in-flight steps", "runs=%zu", en->nactive);
  engine_retention_stop(en);
  engine_triggers_stop(en);
  /* Runs not inside a step go back to the queue now. */
  for (active_run *ar = en->runs, *next; ar; ar = next) {
    next = ar->next;
    if (ar->phase == AR_WAIT_RESOURCE) {
      resource_forget_waiter(en, ar);
      ar->phase = AR_IDLE;
      run_settle(ar, "queued", 0, NULL);
    }
  }
  ev_timer_init(&en->shutdown_timer, on_shutdown_timeout, en->cfg.shutdown_timeout, 0.);
  en->shutdown_timer.data = en;
  ev_timer_start(en->loop, &en->shutdown_timer);
  ev_idle_start(en->loop, &en->idle);
}

const recipe_set *engine_recipes(const engine *en) { return en->rs; }
const runtime *engine_runtime(const engine *en) { return &en->rt; }

size_t engine_backlog(engine *en) {
  double now = ev_now(en->loop);
  if (en->backlog_at < 0 || now - en->backlog_at >= 1.0) {
    perr e;
    int64_t n;
    if (store_runs_count_waiting(en->st, &n, &e) == 0) en->backlog = n;
    en->backlog_at = now;
  }
  return en->backlog > 0 ? (size_t)en->backlog : 0;
}

int engine_idle(engine *en) {
  if (en->nactive || en->txn_open || en->nafter || en->need_schedule) return 0;
  int64_t id;
  size_t n = 0;
  perr e;
  if (store_runs_runnable(en->st, clock_now_ms(), NULL, 0, 1, &id, &n, &e)) return 0;
  return n == 0;
}

void engine_free(engine *en) {
  if (!en) return;
  /* First, while runs and kind states still exist: calls in flight are
   * completed as cancelled and reach their steps. */
  http_client_free(en->rt.http);
  en->rt.http = NULL;
  if (en->txn_open) store_rollback(en->st);
  en->txn_open = 0;
  /* Waiters learn their write is lost; then whatever is still in hand goes. */
  after_cb *list = en->after;
  size_t n = en->nafter;
  en->after = NULL;
  en->nafter = en->after_cap = 0;
  for (size_t i = 0; i < n; i++) list[i].fn(list[i].ud, 0);
  free(list);
  while (en->runs) run_drop(en->runs);
  engine_triggers_free(en);
  engine_retention_free(en);
  ev_prepare_stop(en->loop, &en->prepare);
  ev_idle_stop(en->loop, &en->idle);
  ev_timer_stop(en->loop, &en->poll);
  ev_timer_stop(en->loop, &en->wake);
  ev_timer_stop(en->loop, &en->shutdown_timer);
  while (en->versions) {
    version_entry *v = en->versions;
    en->versions = v->next;
    recipe_free(v->rc);
    free(v);
  }
  recipe_set_free(en->rs);
  for (size_t i = 0; connectors_actions[i]; i++)
    if (connectors_actions[i]->shutdown && en->kind_states[i])
      connectors_actions[i]->shutdown(en->kind_states[i]);
  while (en->retired) {
    retired_state *r = en->retired;
    en->retired = r->next;
    if (connectors_actions[r->kind]->shutdown) connectors_actions[r->kind]->shutdown(r->state);
    free(r);
  }
  free(en->kind_states);
  config_release(&en->own_cfg);
  free(en);
}
