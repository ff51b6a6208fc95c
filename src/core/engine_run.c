/*
 * engine_run: one run in hand, step by step (the transitions in engine.h's
 * diagram): claim, condition, prepare, wait for the resource, begin (step
 * row durable), start the action, deliver its outcome, settle the run.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/cond.h"
#include "core/engine_internal.h"
#include "core/log.h"
#include "core/metrics_catalog.h"

static void advance(active_run *ar);
static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents);

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

static void usage_clear(active_run *ar) {
  for (size_t i = 0; i < ar->nusage; i++) {
    free((char *)ar->usage[i].provider);
    free((char *)ar->usage[i].model);
  }
  free(ar->usage);
  ar->usage = NULL;
  ar->nusage = 0;
}

static void step_clear(active_run *ar) {
  usage_clear(ar);
  cJSON_Delete(ar->input);
  cJSON_Delete(ar->state);
  cJSON_Delete(ar->out_output);
  free(ar->out_detail);
  ar->input = ar->state = ar->out_output = NULL;
  ar->out_detail = NULL;
}

void run_drop(active_run *ar) {
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
void run_settle(active_run *ar, const char *status, int64_t next_at, const char *error) {
  engine *en = ar->en;
  perr e;
  store *s = engine_txn(en, &e);
  if (!s || store_run_update(s, ar->id, status, ar->attempt, next_at, error, clock_now_ms(), &e)) {
    engine_fail(en, e.msg);
    return;
  }
  ar->phase = AR_IDLE;
  if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
    metric_inc(METRIC_GET(&m_runs_finished, ar->rc->name, status));
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

void action_usage(action_call *c, const action_usage_rec *u) {
  active_run *ar = c->engine_priv;
  if (!ar || ar->phase != AR_IN_FLIGHT) return;
  action_usage_rec *p = realloc(ar->usage, (ar->nusage + 1) * sizeof *p);
  if (!p) {
    log_error("usage not recorded: out of memory", "run=%lld", (long long)ar->id);
    return;
  }
  ar->usage = p;
  action_usage_rec *r = &p[ar->nusage];
  *r = *u;
  r->provider = strdup(u->provider ? u->provider : "");
  r->model = strdup(u->model ? u->model : "");
  if (!r->provider || !r->model) {
    free((char *)r->provider);
    free((char *)r->model);
    log_error("usage not recorded: out of memory", "run=%lld", (long long)ar->id);
    return;
  }
  ar->nusage++;
}

static int flush_usage(active_run *ar, store *s, int64_t now, perr *e) {
  char day[32];
  clock_format_ms(now, day, sizeof day);
  day[10] = '\0'; /* YYYY-MM-DD of the UTC timestamp */
  for (size_t i = 0; i < ar->nusage; i++) {
    const action_usage_rec *u = &ar->usage[i];
    if (store_usage_add(s, ar->id, ar->position, day, u->provider, u->model, ar->rc->name,
                        u->calls, u->prompt_tokens, u->completion_tokens, u->cached_tokens,
                        u->cost_usd, e))
      return -1;
    metric_add(METRIC_GET(&m_gpt_prompt_tokens, u->model, ar->rc->name), (double)u->prompt_tokens);
    metric_add(METRIC_GET(&m_gpt_completion_tokens, u->model, ar->rc->name),
               (double)u->completion_tokens);
    metric_add(METRIC_GET(&m_gpt_cost, u->model, ar->rc->name), u->cost_usd);
  }
  usage_clear(ar);
  return 0;
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
  /* Billed whatever the outcome: usage goes in with it. */
  if (flush_usage(ar, s, now, &e)) {
    engine_fail(en, e.msg);
    return;
  }
  outcome_class cls = ar->out_cls;
  metric_observe(METRIC_GET(&m_step_duration, st->kind->name), (double)took / 1000.0);
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
      metric_inc(METRIC_GET(&m_step_retries, st->kind->name));
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
    case OUTCOME_BUDGET: {
      long wait = ar->out_retry_after > 0 ? ar->out_retry_after : 15L * 60 * 1000;
      if (store_step_finish(s, ar->id, ar->position, st->id, "running", NULL, detail, now, took,
                            &e)) {
        engine_fail(en, e.msg);
        return;
      }
      log_warn("run waits for budget", "run=%lld recipe=%s step=%s wait_ms=%ld reason=%s",
               (long long)ar->id, ar->rc->name, st->id, wait, log_q(detail));
      char msg[1200];
      snprintf(msg, sizeof msg, "step %s: %s", st->id, detail);
      run_settle(ar, "budget", ar->out_at_ms + wait, msg);
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
  ar->out_at_ms = (int64_t)(ev_now(ar->en->loop) * 1000.0);
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
      .rt = &en->rt,
      .kind_state = engine_kind_state(en, st->kind),
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
void begin_step(active_run *ar) {
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
  /* Exactly-once kinds act only once their recorded state is durable (it
   * is what recovery undoes to).  Other kinds start now: their step row
   * commits with the next group, and a crash before that repeats at most
   * this one attempt, which is their guarantee anyway. */
  if (!st->kind->begin) {
    start_step(ar);
    return;
  }
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
    if (st->kind->gate) {
      action_call probe = {.loop = en->loop,
                           .input = ar->input,
                           .run_id = ar->id,
                           .position = ar->position,
                           .attempt = ar->attempt + 1,
                           .recipe = rc->name,
                           .step_id = st->id,
                           .rt = &en->rt,
                           .kind_state = engine_kind_state(en, st->kind)};
      char why[600] = "";
      /* The wait counts from the loop's time, which gate() reads too. */
      int64_t at = (int64_t)(ev_now(en->loop) * 1000.0);
      long wait = st->kind->gate(&probe, why, sizeof why);
      if (wait > 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "step %s: %s", st->id, why[0] ? why : "waiting for budget");
        log_info("run waits for budget", "run=%lld recipe=%s step=%s wait_ms=%ld reason=%s",
                 (long long)ar->id, rc->name, st->id, wait, log_q(why));
        step_clear(ar);
        run_settle(ar, "budget", at + wait, msg);
        return;
      }
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
    perr_set(e, "event %lld: %s", (long long)ev->id,
             event || !ctx || !runj ? "cannot build the template context (out of memory)"
                                    : "its stored payload does not parse as JSON");
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

int recover_interrupted(engine *en, perr *e) {
  store_run *runs = NULL;
  size_t nruns = 0;
  if (store_runs_list(en->st, "running", NULL, INT_MAX, &runs, &nruns, e)) return -1;
  int rc = 0;
  for (size_t i = 0; i < nruns && !rc; i++) {
    perr re;
    const recipe *r = version_get(en, runs[i].recipe, runs[i].recipe_version, &re);
    store_step *rows = NULL;
    size_t n = 0;
    if (!r) continue; /* claim_run fails the run with the reason */
    if (store_steps_of_run(en->st, runs[i].id, &rows, &n, e)) {
      rc = -1;
      break;
    }
    for (size_t j = 0; j < n && !rc; j++) {
      store_step *st = &rows[j];
      if (strcmp(st->status, "running") != 0 || st->finished_at != 0 || !st->state ||
          !st->input || st->position >= r->nsteps ||
          strcmp(r->steps[st->position].id, st->step_id) != 0)
        continue;
      const action_kind *k = r->steps[st->position].kind;
      if (!k->recover) continue;
      cJSON *in = cJSON_Parse(st->input), *state = cJSON_Parse(st->state);
      int bad = !in || !state || k->recover(in, state, &re);
      cJSON_Delete(in);
      cJSON_Delete(state);
      if (bad) { /* left as it is: the run fails with the reason when it resumes */
        log_error("cannot recover the interrupted attempt", "run=%lld step=%s",
                  (long long)st->run_id, st->step_id);
        continue;
      }
      /* finished_at set: restore_steps() will not undo it a second time. */
      rc = store_step_finish(en->st, st->run_id, st->position, st->step_id, "running", NULL,
                             "interrupted by a restart (recovered)", clock_now_ms(), 0, e);
      if (!rc)
        log_info("step recovered after restart", "run=%lld step=%s", (long long)st->run_id,
                 st->step_id);
    }
    store_steps_free(rows, n);
  }
  store_runs_free(runs, nruns);
  return rc ? -1 : 0;
}

/* A run that cannot even start (its recipe version or its event is not
 * readable) fails with the reason; releases run.  1, or -1 when the store
 * failed. */
static int fail_unclaimed(engine *en, store_run *run, const char *why) {
  perr e;
  store *s = engine_txn(en, &e);
  int rc = !s || store_run_update(s, run->id, "failed", run->attempt, 0, why, clock_now_ms(), &e);
  if (!rc) {
    log_error("run failed", "run=%lld error=%s", (long long)run->id, log_q(why));
    metric_inc(METRIC_GET(&m_runs_finished, run->recipe, "failed"));
  }
  store_run_release(run);
  return rc ? -1 : 1;
}

/* 1: claimed; 0: left for later (per-recipe limit); -1: store failure. */
int claim_run(engine *en, int64_t id) {
  perr e;
  store_run run;
  store_event ev;
  int rc = store_run_get(en->st, id, &run, &e);
  if (rc) return rc == 1 ? 0 : -1;
  const recipe *r = version_get(en, run.recipe, run.recipe_version, &e);
  if (!r) return fail_unclaimed(en, &run, e.msg);
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
  if (!ar->ctx) {
    /* An event intake accepted but that cannot be read back is this run's
     * problem, not the engine's: stopping would stop again at every start. */
    free(ar);
    return fail_unclaimed(en, &run, e.msg);
  }
  if (restore_steps(ar, &e)) {
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
  metric_inc(METRIC_GET(&m_runs_started, r->name));
  advance(ar);
  return 1;
}

