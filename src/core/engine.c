/*
 * engine: see engine.h for the design (group commit, run life cycle).
 *
 * Invariants:
 *  - At most one transaction is open, and only between an engine write and
 *    the next on_prepare; nothing waits on durability without a callback
 *    in en->after.
 *  - An active_run is in exactly one phase; it is freed only from
 *    run_drop(), never while an action holds its action_call.
 *  - A resource (exactly-once kinds) is held from before begin() until the
 *    step's outcome is durable, so recover() after a crash can only ever
 *    undo the one step that was writing.
 */
#include "core/engine.h"

#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/cond.h"
#include "core/log.h"
#include "core/recipe_set.h"

typedef enum {
  AR_IDLE,            /* between steps, its writes awaiting commit */
  AR_WAIT_RESOURCE,   /* queued behind another step on the same resource */
  AR_BEGIN_PENDING,   /* step row `running` awaiting commit */
  AR_IN_FLIGHT,       /* action started, outcome not yet reported */
  AR_OUTCOME_PENDING, /* outcome reported, delivery or commit pending */
} ar_phase;

typedef struct active_run active_run;
typedef struct resource resource;

struct active_run {
  engine *en;
  active_run *prev, *next;   /* en->runs */
  active_run *wait_next;     /* resource queue */
  int64_t id;
  const recipe *rc;
  cJSON *ctx;                /* {event, steps, run} */
  int position;
  int attempt;               /* attempts of the current step, counting the one in hand */
  ar_phase phase;
  cJSON *input, *state;      /* current step's */
  resource *held;
  action_call call;
  int64_t started_ms;
  cJSON *recover_input, *recover_state; /* a step found half done after a crash */
  outcome_class out_cls;
  cJSON *out_output;
  char *out_detail;
  long out_retry_after;
  ev_timer deliver;
};

struct resource {
  char *name;
  active_run *holder;
  active_run *wait_head, *wait_tail;
  resource *next;
};

typedef struct after_cb {
  void (*fn)(void *ud, int ok);
  void *ud;
} after_cb;

typedef struct version_entry {
  recipe *rc;
  struct version_entry *next;
} version_entry;

struct engine {
  struct ev_loop *loop;
  store *st;
  engine_config cfg;
  recipe_set *rs;
  version_entry *versions;
  ev_prepare prepare;
  ev_idle idle;
  ev_timer poll, wake, shutdown_timer;
  int txn_open;
  after_cb *after;
  size_t nafter, after_cap;
  active_run *runs;
  size_t nactive;
  resource *resources;
  int64_t data_version;
  int need_schedule;
  int shutting_down;
  int cancel_asked;
  void (*shutdown_done)(void *ud);
  void *shutdown_ud;
  char failed[1024];
};

static void advance(active_run *ar);
static void begin_step(active_run *ar);
static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents);

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
static void engine_fail(engine *en, const char *why) {
  if (!en->failed[0]) {
    snprintf(en->failed, sizeof en->failed, "%s", why);
    log_error("engine stopping: store failure", "error=%s", log_q(why));
  }
  ev_break(en->loop, EVBREAK_ALL);
}

static void commit_now(engine *en) {
  perr e;
  int ok = 1;
  if (store_commit(en->st, &e)) {
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
  if (!ok) engine_fail(en, e.msg);
  for (size_t i = 0; i < n; i++) list[i].fn(list[i].ud, ok);
  free(list);
}

static void schedule(engine *en);

static void maybe_finish_shutdown(engine *en) {
  if (en->shutting_down && en->nactive == 0 && !en->txn_open && en->shutdown_done) {
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
  if (en->txn_open) commit_now(en);
  /* Work queued by the callbacks is committed on the next iteration. */
  if ((en->txn_open || en->need_schedule) && !en->failed[0])
    ev_idle_start(loop, &en->idle);
  else
    ev_idle_stop(loop, &en->idle);
  maybe_finish_shutdown(en);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop, (void)w, (void)revents; /* only keeps the loop from blocking */
}

/* ---- recipe versions ---- */

static const recipe *version_get(engine *en, const char *name, int version, perr *e) {
  for (version_entry *v = en->versions; v; v = v->next)
    if (v->rc->version == version && strcmp(v->rc->name, name) == 0) return v->rc;
  store_recipe row;
  int rc = store_recipe_get(en->st, name, version, &row, e);
  if (rc == 1) perr_set(e, "recipe %s version %d is not in the store", name, version);
  if (rc) return NULL;
  cJSON *def = cJSON_Parse(row.definition);
  store_recipe_release(&row);
  if (!def) {
    perr_set(e, "recipe %s version %d: stored definition is not JSON", name, version);
    return NULL;
  }
  recipe *r;
  if (recipe_compile(def, version, 1, &r, e)) return NULL;
  version_entry *v = malloc(sizeof *v);
  if (!v) {
    recipe_free(r);
    perr_set(e, "out of memory");
    return NULL;
  }
  v->rc = r;
  v->next = en->versions;
  en->versions = v;
  return r;
}

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
  return 0;
}

/* ---- resources ---- */

static resource *resource_find(engine *en, const char *name) {
  for (resource *r = en->resources; r; r = r->next)
    if (strcmp(r->name, name) == 0) return r;
  return NULL;
}

/* 1: ar holds it now; 0: ar waits its turn; -1: out of memory. */
static int resource_acquire(engine *en, const char *name, active_run *ar) {
  resource *r = resource_find(en, name);
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
      free(r);
      return -1;
    }
    r->next = en->resources;
    en->resources = r;
  }
  if (!r->holder) {
    r->holder = ar;
    ar->held = r;
    return 1;
  }
  ar->wait_next = NULL;
  if (r->wait_tail)
    r->wait_tail->wait_next = ar;
  else
    r->wait_head = ar;
  r->wait_tail = ar;
  ar->phase = AR_WAIT_RESOURCE;
  return 0;
}

static void resource_unlink(engine *en, resource *r) {
  for (resource **pp = &en->resources; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  free(r->name);
  free(r);
}

static void resource_release(active_run *ar) {
  resource *r = ar->held;
  if (!r) return;
  ar->held = NULL;
  r->holder = NULL;
  active_run *next = r->wait_head;
  if (!next) {
    resource_unlink(ar->en, r);
    return;
  }
  r->wait_head = next->wait_next;
  if (!r->wait_head) r->wait_tail = NULL;
  r->holder = next;
  next->held = r;
  begin_step(next);
}

static void resource_forget_waiter(engine *en, active_run *ar) {
  for (resource *r = en->resources; r; r = r->next) {
    active_run *prev = NULL;
    for (active_run *w = r->wait_head; w; prev = w, w = w->wait_next) {
      if (w != ar) continue;
      if (prev)
        prev->wait_next = w->wait_next;
      else
        r->wait_head = w->wait_next;
      if (r->wait_tail == w) r->wait_tail = prev;
      return;
    }
  }
}

/* ---- active runs ---- */

static void step_clear(active_run *ar) {
  cJSON_Delete(ar->input);
  cJSON_Delete(ar->state);
  cJSON_Delete(ar->out_output);
  free(ar->out_detail);
  ar->input = ar->state = ar->out_output = NULL;
  ar->out_detail = NULL;
}

static void run_drop(active_run *ar) {
  engine *en = ar->en;
  ev_timer_stop(en->loop, &ar->deliver);
  if (ar->phase == AR_WAIT_RESOURCE) resource_forget_waiter(en, ar);
  resource_release(ar);
  if (ar->prev)
    ar->prev->next = ar->next;
  else
    en->runs = ar->next;
  if (ar->next) ar->next->prev = ar->prev;
  en->nactive--;
  en->need_schedule = 1;
  step_clear(ar);
  cJSON_Delete(ar->recover_input);
  cJSON_Delete(ar->recover_state);
  cJSON_Delete(ar->ctx);
  free(ar);
}

static void on_drop_committed(void *ud, int ok) {
  (void)ok;
  run_drop(ud);
}

static char *json_text(const cJSON *j) { return j ? cJSON_PrintUnformatted(j) : NULL; }

/* Writes the run's new durable state, then drops it once that is durable. */
static void run_settle(active_run *ar, const char *status, int64_t next_at, const char *error) {
  engine *en = ar->en;
  perr e;
  store *s = engine_txn(en, &e);
  if (!s || store_run_update(s, ar->id, status, ar->attempt, next_at, error, clock_now_ms(), &e)) {
    engine_fail(en, e.msg);
    return;
  }
  ar->phase = AR_IDLE;
  if (engine_after_commit(en, on_drop_committed, ar)) engine_fail(en, "out of memory");
}

static void fail_run(active_run *ar, const char *step_status, const char *why) {
  engine *en = ar->en;
  const recipe_step *st = &ar->rc->steps[ar->position];
  perr e;
  store *s = engine_txn(en, &e);
  if (!s) {
    engine_fail(en, e.msg);
    return;
  }
  char msg[1200];
  snprintf(msg, sizeof msg, "step %s: %s", st->id, why);
  if (step_status &&
      store_step_finish(s, ar->id, ar->position, st->id, step_status, NULL, why, clock_now_ms(),
                        ar->started_ms ? clock_now_ms() - ar->started_ms : 0, &e)) {
    engine_fail(en, e.msg);
    return;
  }
  log_warn("run failed", "run=%lld recipe=%s step=%s error=%s", (long long)ar->id, ar->rc->name,
           st->id, log_q(why));
  run_settle(ar, "failed", 0, msg);
}

static void on_step_committed(void *ud, int ok) {
  active_run *ar = ud;
  if (!ok) return;
  resource_release(ar);
  step_clear(ar);
  ar->position++;
  ar->attempt = 0;
  ar->started_ms = 0;
  advance(ar);
}

static long backoff_ms(const retry_policy *p, int attempt) {
  double ceiling = (double)p->base_ms * pow(2.0, attempt > 1 ? attempt - 1 : 0);
  if (ceiling > (double)p->cap_ms) ceiling = (double)p->cap_ms;
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand();
  /* Full jitter: spreads retries of a burst over the whole window. */
  return (long)(ceiling * ((double)r / 4294967296.0));
}

static retry_policy effective_retry(const engine *en, const recipe_step *st) {
  retry_policy p = en->cfg.retry;
  if (st->retry.max_attempts > 0) p.max_attempts = st->retry.max_attempts;
  if (st->retry.base_ms > 0) p.base_ms = st->retry.base_ms;
  if (st->retry.cap_ms > 0) p.cap_ms = st->retry.cap_ms;
  return p;
}

/* Exactly-once kinds leave nothing behind from an attempt that did not
 * succeed, so the next attempt (or the next step on the resource) starts
 * from the recorded state. */
static void undo_attempt(active_run *ar) {
  const action_kind *k = ar->rc->steps[ar->position].kind;
  perr e;
  if (k->recover && ar->state && k->recover(ar->input, ar->state, &e))
    log_error("cannot undo a failed attempt", "run=%lld step=%s error=%s", (long long)ar->id,
              ar->rc->steps[ar->position].id, log_q(e.msg));
}

static void deliver_outcome(active_run *ar) {
  engine *en = ar->en;
  const recipe_step *st = &ar->rc->steps[ar->position];
  int64_t now = clock_now_ms();
  int64_t took = now - ar->started_ms;
  perr e;
  store *s = engine_txn(en, &e);
  if (!s) {
    engine_fail(en, e.msg);
    return;
  }
  outcome_class cls = ar->out_cls;
  const char *detail = ar->out_detail ? ar->out_detail : outcome_class_name(cls);
  retry_policy pol = effective_retry(en, st);
  char gave_up[1200];
  if (cls == OUTCOME_RETRY && ar->attempt >= pol.max_attempts) {
    snprintf(gave_up, sizeof gave_up, "gave up after %d attempts: %s", ar->attempt, detail);
    detail = gave_up;
    cls = OUTCOME_FAIL;
  }
  if (cls != OUTCOME_OK) undo_attempt(ar);
  switch (cls) {
    case OUTCOME_OK: {
      cJSON *out = ar->out_output ? ar->out_output : cJSON_CreateObject();
      ar->out_output = NULL;
      char *text = json_text(out);
      int rc = store_step_finish(s, ar->id, ar->position, st->id, "succeeded", text, NULL, now,
                                 took, &e);
      free(text);
      cJSON *steps = cJSON_GetObjectItemCaseSensitive(ar->ctx, "steps");
      cJSON_AddItemToObject(steps, st->id, out);
      if (rc) {
        engine_fail(en, e.msg);
        return;
      }
      log_info("step succeeded", "run=%lld recipe=%s step=%s attempt=%d ms=%lld",
               (long long)ar->id, ar->rc->name, st->id, ar->attempt, (long long)took);
      ar->phase = AR_IDLE;
      if (engine_after_commit(en, on_step_committed, ar)) engine_fail(en, "out of memory");
      return;
    }
    case OUTCOME_RETRY: {
      long delay = ar->out_retry_after > 0 ? ar->out_retry_after : backoff_ms(&pol, ar->attempt);
      if (store_step_finish(s, ar->id, ar->position, st->id, "running", NULL, detail, now, took,
                            &e)) {
        engine_fail(en, e.msg);
        return;
      }
      log_warn("step will retry", "run=%lld recipe=%s step=%s attempt=%d delay_ms=%ld error=%s",
               (long long)ar->id, ar->rc->name, st->id, ar->attempt, delay, log_q(detail));
      char msg[1200];
      snprintf(msg, sizeof msg, "step %s: %s", st->id, detail);
      run_settle(ar, "retrying", now + delay, msg);
      return;
    }
    case OUTCOME_CANCELLED: {
      if (store_step_finish(s, ar->id, ar->position, st->id, "running", NULL,
                            "cancelled at shutdown", now, took, &e)) {
        engine_fail(en, e.msg);
        return;
      }
      run_settle(ar, "queued", 0, NULL);
      return;
    }
    case OUTCOME_FAIL:
      ar->started_ms = ar->started_ms ? ar->started_ms : now;
      fail_run(ar, "failed", detail);
      return;
  }
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  deliver_outcome(w->data);
}

void action_done(action_call *c, outcome_class cls, cJSON *output, const char *detail,
                 long retry_after_ms) {
  active_run *ar = c->engine_priv;
  if (!ar || ar->phase != AR_IN_FLIGHT) {
    /* A second report breaks the action contract; keep the first. */
    log_error("action reported twice; ignored", "step=%s", c->step_id ? c->step_id : "?");
    cJSON_Delete(output);
    return;
  }
  ar->phase = AR_OUTCOME_PENDING;
  ar->out_cls = cls;
  ar->out_output = output;
  ar->out_detail = detail ? strdup(detail) : NULL;
  ar->out_retry_after = retry_after_ms;
  /* Deferred: the action may be calling from inside start(). */
  ev_timer_set(&ar->deliver, 0., 0.);
  ev_timer_start(ar->en->loop, &ar->deliver);
}

static void start_step(active_run *ar) {
  engine *en = ar->en;
  const recipe_step *st = &ar->rc->steps[ar->position];
  ar->call = (action_call){
      .loop = en->loop,
      .input = ar->input,
      .state = ar->state,
      .run_id = ar->id,
      .position = ar->position,
      .attempt = ar->attempt,
      .recipe = ar->rc->name,
      .step_id = st->id,
      .engine_priv = ar,
  };
  ar->phase = AR_IN_FLIGHT;
  ar->started_ms = clock_now_ms();
  perr e;
  if (st->kind->start(&ar->call, &e)) {
    ar->phase = AR_OUTCOME_PENDING;
    ar->out_cls = OUTCOME_FAIL;
    ar->out_detail = strdup(e.msg);
    deliver_outcome(ar);
  }
}

/* A step whose begin is durable counts as in flight, even when shutdown
 * was asked meanwhile: it runs and finishes like the others. */
static void on_begin_committed(void *ud, int ok) {
  if (ok) start_step(ud);
}

/* Runs with the step's resource held (or none needed). */
static void begin_step(active_run *ar) {
  engine *en = ar->en;
  const recipe_step *st = &ar->rc->steps[ar->position];
  perr e;
  if (ar->recover_input) {
    int rc = st->kind->recover ? st->kind->recover(ar->recover_input, ar->recover_state, &e) : 0;
    cJSON_Delete(ar->recover_input);
    cJSON_Delete(ar->recover_state);
    ar->recover_input = ar->recover_state = NULL;
    if (rc) {
      char why[1100];
      snprintf(why, sizeof why, "cannot recover the interrupted attempt: %s", e.msg);
      resource_release(ar);
      fail_run(ar, "failed", why);
      return;
    }
    log_info("step recovered after restart", "run=%lld step=%s", (long long)ar->id, st->id);
  }
  if (st->kind->begin && st->kind->begin(ar->input, &ar->state, &e)) {
    resource_release(ar);
    fail_run(ar, "failed", e.msg);
    return;
  }
  store *s = engine_txn(en, &e);
  char *in = json_text(ar->input), *state = json_text(ar->state);
  int rc = !s || store_step_begin(s, ar->id, ar->position, st->id, in, state, clock_now_ms(), &e);
  free(in);
  free(state);
  if (rc) {
    engine_fail(en, e.msg);
    return;
  }
  ar->attempt++;
  ar->phase = AR_BEGIN_PENDING;
  if (engine_after_commit(en, on_begin_committed, ar)) engine_fail(en, "out of memory");
}

static void advance(active_run *ar) {
  engine *en = ar->en;
  const recipe *rc = ar->rc;
  perr e;
  while (ar->position < rc->nsteps) {
    if (en->shutting_down) {
      run_settle(ar, "queued", 0, NULL);
      return;
    }
    const recipe_step *st = &rc->steps[ar->position];
    if (st->cond && !cond_eval(st->cond, ar->ctx)) {
      store *s = engine_txn(en, &e);
      if (!s || store_step_finish(s, ar->id, ar->position, st->id, "skipped", NULL, NULL,
                                  clock_now_ms(), 0, &e)) {
        engine_fail(en, e.msg);
        return;
      }
      ar->position++;
      ar->attempt = 0;
      continue;
    }
    render_env env = {recipe_partial, (void *)rc};
    if (st->kind->prepare(st->cfg, ar->ctx, &env, &ar->input, &e)) {
      fail_run(ar, "failed", e.msg);
      return;
    }
    if (st->kind->resource) {
      const char *name = st->kind->resource(ar->input);
      int got = resource_acquire(en, name ? name : "", ar);
      if (got < 0) {
        engine_fail(en, "out of memory");
        return;
      }
      if (!got) return; /* resource_release() calls begin_step for us */
    }
    begin_step(ar);
    return;
  }
  store *s = engine_txn(en, &e);
  if (!s) {
    engine_fail(en, e.msg);
    return;
  }
  log_info("run succeeded", "run=%lld recipe=%s version=%d", (long long)ar->id, rc->name,
           rc->version);
  run_settle(ar, "succeeded", 0, NULL);
}

static size_t active_for_recipe(const engine *en, const char *name) {
  size_t n = 0;
  for (active_run *ar = en->runs; ar; ar = ar->next)
    if (strcmp(ar->rc->name, name) == 0) n++;
  return n;
}

static cJSON *build_ctx(const store_run *run, const store_event *ev, perr *e) {
  cJSON *ctx = cJSON_CreateObject();
  cJSON *event = cJSON_Parse(ev->payload);
  cJSON *runj = cJSON_CreateObject();
  if (!ctx || !event || !runj || !cJSON_AddObjectToObject(ctx, "steps")) {
    cJSON_Delete(ctx);
    cJSON_Delete(event);
    cJSON_Delete(runj);
    perr_set(e, "event %lld: cannot build the template context", (long long)ev->id);
    return NULL;
  }
  cJSON_AddItemToObject(ctx, "event", event);
  cJSON_AddNumberToObject(runj, "id", (double)run->id);
  cJSON_AddNumberToObject(runj, "event_id", (double)run->event_id);
  cJSON_AddStringToObject(runj, "recipe", run->recipe);
  cJSON_AddNumberToObject(runj, "recipe_version", run->recipe_version);
  cJSON_AddStringToObject(runj, "source", ev->source);
  cJSON_AddItemToObject(ctx, "run", runj);
  return ctx;
}

/* Restores the outputs of finished steps and finds where the run resumes. */
static int restore_steps(active_run *ar, perr *e) {
  store_step *rows = NULL;
  size_t n = 0;
  if (store_steps_of_run(ar->en->st, ar->id, &rows, &n, e)) return -1;
  cJSON *steps = cJSON_GetObjectItemCaseSensitive(ar->ctx, "steps");
  int pos = 0;
  for (size_t i = 0; i < n; i++) {
    store_step *r = &rows[i];
    if (r->position != pos) break;
    if (strcmp(r->status, "succeeded") == 0) {
      cJSON *out = r->output ? cJSON_Parse(r->output) : cJSON_CreateObject();
      if (out) cJSON_AddItemToObject(steps, r->step_id, out);
      pos++;
    } else if (strcmp(r->status, "skipped") == 0) {
      pos++;
    } else {
      break;
    }
  }
  ar->position = pos;
  for (size_t i = 0; i < n; i++) {
    store_step *r = &rows[i];
    if (r->position != pos || strcmp(r->status, "running") != 0) continue;
    ar->attempt = r->attempts;
    /* finished_at == 0: an attempt began and never reported (a crash). */
    if (r->finished_at == 0 && r->state && r->input) {
      ar->recover_input = cJSON_Parse(r->input);
      ar->recover_state = cJSON_Parse(r->state);
    }
  }
  store_steps_free(rows, n);
  return 0;
}

/* 1: claimed; 0: left for later (per-recipe limit); -1: store failure. */
static int claim_run(engine *en, int64_t id) {
  perr e;
  store_run run;
  store_event ev;
  int rc = store_run_get(en->st, id, &run, &e);
  if (rc) return rc == 1 ? 0 : -1;
  const recipe *r = version_get(en, run.recipe, run.recipe_version, &e);
  if (!r) {
    store *s = engine_txn(en, &e);
    perr e2;
    if (!s || store_run_update(s, id, "failed", run.attempt, 0, e.msg, clock_now_ms(), &e2)) {
      store_run_release(&run);
      return -1;
    }
    log_error("run failed", "run=%lld error=%s", (long long)id, log_q(e.msg));
    store_run_release(&run);
    return 1;
  }
  if (r->concurrency > 0 && active_for_recipe(en, r->name) >= (size_t)r->concurrency) {
    store_run_release(&run);
    return 0;
  }
  if (store_event_get(en->st, run.event_id, &ev, &e)) {
    store_run_release(&run);
    return -1;
  }
  active_run *ar = calloc(1, sizeof *ar);
  if (!ar) {
    store_event_release(&ev);
    store_run_release(&run);
    return -1;
  }
  ar->en = en;
  ar->id = id;
  ar->rc = r;
  ar->ctx = build_ctx(&run, &ev, &e);
  store_event_release(&ev);
  ev_timer_init(&ar->deliver, on_deliver, 0., 0.);
  ar->deliver.data = ar;
  if (!ar->ctx || restore_steps(ar, &e)) {
    cJSON_Delete(ar->ctx);
    free(ar);
    store_run_release(&run);
    return -1;
  }
  store *s = engine_txn(en, &e);
  if (!s || store_run_update(s, id, "running", ar->attempt, 0, run.last_error, clock_now_ms(), &e)) {
    cJSON_Delete(ar->ctx);
    cJSON_Delete(ar->recover_input);
    cJSON_Delete(ar->recover_state);
    free(ar);
    store_run_release(&run);
    return -1;
  }
  store_run_release(&run);
  ar->next = en->runs;
  if (en->runs) en->runs->prev = ar;
  en->runs = ar;
  en->nactive++;
  advance(ar);
  return 1;
}

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
    size_t want = (size_t)cap + 64, n = 0;
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
} pending_ingest;

static void on_ingest_committed(void *ud, int ok) {
  pending_ingest *p = ud;
  p->cb(p->ud, ok, &p->r, ok ? NULL : "the event could not be stored durably");
  free(p);
}

int engine_ingest(engine *en, const char *source, const char *dedupe_key, const char *payload,
                  size_t len, engine_ingest_cb cb, void *ud, perr *e) {
  if (en->shutting_down) return perr_set(e, "promptd is shutting down");
  pending_ingest *p = calloc(1, sizeof *p);
  if (!p) return perr_set(e, "out of memory");
  store *s = engine_txn(en, e);
  int rc = s ? intake_event(s, en->rs, source, dedupe_key, payload, len, en->cfg.max_event_bytes,
                            clock_now_ms(), &p->r, e)
             : INTAKE_STORE_FAILED;
  if (rc) {
    free(p);
    /* A store error dooms this iteration's transaction: everyone waiting on
     * it is told, and the store stays the truth. */
    if (rc == INTAKE_STORE_FAILED) engine_fail(en, e->msg);
    return -1;
  }
  p->cb = cb;
  p->ud = ud;
  if (engine_after_commit(en, on_ingest_committed, p)) {
    free(p);
    engine_fail(en, "out of memory");
    return perr_set(e, "out of memory");
  }
  if (p->r.runs) en->need_schedule = 1;
  return 0;
}

/* ---- life cycle ---- */

engine *engine_new(struct ev_loop *loop, store *s, const engine_config *cfg, perr *e) {
  engine *en = calloc(1, sizeof *en);
  if (!en) {
    perr_set(e, "out of memory");
    return NULL;
  }
  en->loop = loop;
  en->st = s;
  if (cfg)
    en->cfg = *cfg;
  else
    engine_config_defaults(&en->cfg);
  if (en->cfg.concurrency < 1) en->cfg.concurrency = 1;
  ev_prepare_init(&en->prepare, on_prepare);
  en->prepare.data = en;
  ev_idle_init(&en->idle, on_idle);
  ev_timer_init(&en->poll, on_poll, en->cfg.poll_interval, en->cfg.poll_interval);
  en->poll.data = en;
  ev_timer_init(&en->wake, on_wake, 0., 0.);
  en->wake.data = en;
  return en;
}

int engine_start(engine *en, perr *e) {
  int n = 0;
  if (store_begin(en->st, e)) return -1;
  if (store_runs_requeue_running(en->st, clock_now_ms(), &n, e)) {
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
  return 0;
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
      const action_kind *k = ar->rc->steps[ar->position].kind;
      if (ar->phase == AR_IN_FLIGHT && k->cancel) {
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
  maybe_finish_shutdown(en);
}

void engine_shutdown(engine *en, void (*done)(void *ud), void *ud) {
  if (en->shutting_down) return;
  en->shutting_down = 1;
  en->shutdown_done = done;
  en->shutdown_ud = ud;
  ev_timer_stop(en->loop, &en->poll);
  ev_timer_stop(en->loop, &en->wake);
  log_info("stopping: finishing in-flight steps", "runs=%zu", en->nactive);
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

int engine_idle(engine *en) {
  if (en->nactive || en->txn_open || en->need_schedule) return 0;
  int64_t id;
  size_t n = 0;
  perr e;
  if (store_runs_runnable(en->st, clock_now_ms(), NULL, 0, 1, &id, &n, &e)) return 0;
  return n == 0;
}

void engine_free(engine *en) {
  if (!en) return;
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
  free(en);
}
