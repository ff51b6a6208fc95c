/*
 * engine_internal: what the engine's files share (engine.c: loop glue,
 * group commit, scheduling, intake, life cycle; engine_run.c: a run's
 * steps; engine_resource.c: one step at a time per resource).  Not for
 * use outside src/core/engine*.c.
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
#ifndef PROMPTD_ENGINE_INTERNAL_H
#define PROMPTD_ENGINE_INTERNAL_H

#include <ev.h>

#include "core/config.h"
#include "core/engine.h"
#include "core/recipe_set.h"
#include "core/runtime.h"

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
  int64_t out_at_ms;         /* the loop's time at action_done: a budget wait counts from it */
  ev_timer deliver;
  action_usage_rec *usage;   /* reported by the action this attempt; strings owned */
  size_t nusage;
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

typedef struct trigger_entry trigger_entry;

/* A kind's shared state replaced by engine_reconfigure: steps started
 * before may still use it, so it lives until engine_free. */
typedef struct retired_state {
  size_t kind;               /* index in connectors_actions */
  void *state;
  struct retired_state *next;
} retired_state;

typedef struct version_entry {
  recipe *rc;
  struct version_entry *next;
} version_entry;

struct engine {
  struct ev_loop *loop;
  store *st;
  engine_config cfg;
  config own_cfg;            /* defaults, when engine_new got no configuration */
  runtime rt;
  void **kind_states;        /* per connectors_actions[i], from its init() */
  retired_state *retired;    /* replaced by a reload, released at engine_free */
  recipe_set *rs;
  version_entry *versions;
  ev_prepare prepare;
  ev_idle idle;
  ev_timer poll, wake, shutdown_timer;
  int txn_open;
  int64_t backlog;        /* runs waiting to start, as last counted plus since */
  double backlog_at;       /* ev_now of that count; < 0: never counted */
  after_cb *after;
  size_t nafter, after_cap;
  active_run *runs;
  size_t nactive;
  resource *resources;
  trigger_entry *triggers;   /* active trigger instances (engine_triggers.c) */
  struct engine_retention *retention; /* pruning driver (engine_retention.c) */
  size_t ntriggers_stopping;
  int64_t data_version;
  int need_schedule;
  int shutting_down;
  int cancel_asked;
  void (*shutdown_done)(void *ud);
  void *shutdown_ud;
  char failed[1024];
};

/* engine.c */
void engine_fail(engine *en, const char *why);
/* Calls the shutdown callback once nothing is left: no run, no open
 * transaction, no trigger still stopping. */
void engine_maybe_finish_shutdown(engine *en);

/* engine_triggers.c: one instance per active trigger source of the
 * enabled recipes; reconcile after every (re)load, stop at shutdown. */
void engine_triggers_reconcile(engine *en);
void engine_triggers_stop(engine *en);
/* Restarts the live instances whose kind has any of flags (a reload
 * changed the configuration they read when they started). */
void engine_triggers_restart(engine *en, unsigned flags);
void engine_triggers_free(engine *en);

/* engine_run.c: claims a runnable run and starts it (1), leaves it for
 * later because of its recipe's limit (0), or fails (-1). */
int claim_run(engine *en, int64_t id);
/* At start, inside the transaction that requeues `running` runs: undoes
 * every exactly-once step a crash interrupted, before any other step can
 * use its resource (recovery truncates to where that step began, which
 * would wipe what others wrote after it). */
int recover_interrupted(engine *en, perr *e);
/* Writes the run's new durable state, then drops it once that is durable. */
void run_settle(active_run *ar, const char *status, int64_t next_at, const char *error);
/* Frees a run in hand (its resource passes to the next waiter). */
void run_drop(active_run *ar);
/* Begins the current step; the caller holds its resource, if any. */
void begin_step(active_run *ar);

/* The kind's shared state (from its init), or NULL. */
void *engine_kind_state(const engine *en, const action_kind *k);

/* engine_resource.c: 1 when ar holds the resource now, 0 when it waits
 * its turn (begin_step is called when the turn comes), -1 out of memory. */
int resource_acquire(engine *en, const char *name, active_run *ar);
void resource_release(active_run *ar);
void resource_forget_waiter(engine *en, active_run *ar);

#endif
