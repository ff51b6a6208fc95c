/*
 * connector: what a trigger kind and an action kind are to the engine.
 *
 * Each kind is a `static const` struct of function pointers plus a field
 * table, registered in connectors.c (the only file that names them).  The
 * engine never names a connector; it asks the table.
 *
 * Action contract (libuv's): start() either fails now (returns -1, never
 * calls back) or returns 0 and later reports exactly one outcome with
 * action_done().  action_done() may be called from inside start(): the
 * engine defers processing to the next loop iteration, so the caller's
 * stack is never re-entered.  Actions never retry by themselves; they say
 * OUTCOME_RETRY (with retry_after_ms when the far side said how long) and
 * the engine schedules the retry with backoff.
 *
 * Exactly-once actions (flag ACTION_EXACTLY_ONCE) give begin() and
 * recover(): begin() returns state (e.g. a file offset) that the engine
 * stores durably before start(); after a crash, a step found still running
 * is first handed to recover() with that state, which undoes any half-done
 * effect.  resource() names what such steps must not do concurrently (a
 * file path); the engine runs one step per resource from begin() until its
 * outcome is durable.
 */
#ifndef PROMPTD_CONNECTOR_H
#define PROMPTD_CONNECTOR_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/fields.h"
#include "core/template.h"

struct ev_loop;

typedef enum {
  OUTCOME_OK,        /* done; output (may be NULL) becomes steps.<id>.* */
  OUTCOME_RETRY,     /* transient: try again later */
  OUTCOME_FAIL,      /* permanent: the run fails with the detail */
  OUTCOME_CANCELLED, /* stopped by shutdown; the step runs again on restart */
  OUTCOME_BUDGET,    /* a spending cap or the account's quota: the run waits in
                      * status `budget` for retry_after_ms (default 15 min),
                      * counted from the loop's time (ev_now) at action_done */
} outcome_class;

const char *outcome_class_name(outcome_class c);

/* Shared services for kinds that need more than their input (core/runtime.h):
 * the loop, the HTTP client, the configuration, the store API. */
typedef struct runtime runtime;

typedef struct action_call action_call;
struct action_call {
  struct ev_loop *loop;
  const cJSON *input;   /* what prepare() rendered; owned by the engine */
  const cJSON *state;   /* what begin() returned, or NULL */
  int64_t run_id;
  int position;         /* 0-based step index */
  int attempt;          /* 1 for the first try of this step */
  const char *recipe;
  const char *step_id;
  void *priv;           /* the action's own, for an asynchronous start */
  runtime *rt;
  void *kind_state;     /* what the kind's init() made, or NULL */
  void *engine_priv;    /* the engine's */
};

/* What one call to a paid service cost.  Recorded with the step's outcome,
 * in the same transaction, whatever the outcome (a failed call is billed
 * too); may be reported several times before action_done. */
typedef struct action_usage_rec {
  const char *provider, *model;
  int64_t calls;
  int64_t prompt_tokens, completion_tokens, cached_tokens;
  double cost_usd;
} action_usage_rec;
void action_usage(action_call *c, const action_usage_rec *u);

/* Reports the one outcome of a started call.  Takes ownership of output.
 * detail: for RETRY/FAIL, why (stored on the run, shown by `runs show`). */
void action_done(action_call *c, outcome_class cls, cJSON *output, const char *detail,
                 long retry_after_ms);

enum {
  ACTION_EXACTLY_ONCE = 1u << 0, /* begin/recover/resource given */
  ACTION_ACCOUNT = 1u << 1,      /* acts on an outside account (a mailbox, a sheet) */
};

/* Rendering context for prepare(): escaping follows where text goes. */
typedef struct render_env {
  tpl_partial_fn partial;   /* the recipe's partials */
  void *partial_ud;
} render_env;

typedef struct action_kind {
  const char *name;       /* the step key in a recipe: `csvfile:` */
  const char *summary;    /* one line for `promptd connectors` */
  const char *guarantee;  /* delivery guarantee, one line */
  const field_spec *fields;
  unsigned flags;
  /* Cross-field checks after the table's; may be NULL. */
  int (*validate)(const cJSON *cfg, perr *e);
  /* Pure: renders cfg against ctx (event, steps, run) into the step input,
   * the request exactly as it will be made. No I/O. */
  int (*prepare)(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                 perr *e);
  const char *(*resource)(const cJSON *input);
  int (*begin)(const cJSON *input, cJSON **state, perr *e);
  int (*recover)(const cJSON *input, const cJSON *state, perr *e);
  int (*start)(action_call *c, perr *e);
  /* Optional: asked to stop early at shutdown; still reports one outcome. */
  void (*cancel)(action_call *c);
  /* Optional: shared state made once per engine before any step runs
   * (rate limiters, budget ledgers), handed to every call as kind_state,
   * and released by shutdown() after the last step. */
  int (*init)(runtime *rt, void **state, perr *e);
  void (*shutdown)(void *state);
  /* Optional: asked before a step begins (c has input, rt, kind_state; no
   * attempt is counted yet).  0: go ahead; > 0: the run waits that many ms
   * (from the loop's time, ev_now) in status `budget`, with why saying what
   * cap was reached. */
  long (*gate)(action_call *c, char *why, size_t why_len);
} action_kind;

enum {
  TRIGGER_PASSIVE = 1u << 0, /* events arrive through intake (emit); no watchers */
  TRIGGER_HTTP = 1u << 1,    /* ... from promptd's HTTP server, routed by the trigger's path */
  TRIGGER_ACCOUNT = 1u << 2, /* polls an outside system with an account (a mailbox, a form) */
};

struct engine;
typedef struct trigger_inst trigger_inst;

typedef struct trigger_kind {
  const char *name;     /* the key under `trigger:` */
  const char *summary;
  const field_spec *fields;
  unsigned flags;
  int (*validate)(const cJSON *cfg, perr *e);
  /* The event source its events are ingested under (malloc'd). Recipes
   * match events by this name. */
  char *(*source)(const cJSON *cfg);
  /* Active kinds only (NULL for TRIGGER_PASSIVE).  The engine keeps one
   * instance per event source among the enabled recipes (the first recipe
   * by name gives the configuration) and replaces it when that changes.
   * create does no I/O (cfg and source stay valid until destroy); start
   * registers watchers on engine_loop(eng); stop is asynchronous and calls
   * done exactly once, never from inside stop; destroy frees, whatever the
   * state (after stop, half-built, or still running: it stops its watchers).
   *
   * An instance produces events with engine_ingest, keeps its position with
   * engine_cursor_get/set (the cursor commits in the same transaction as the
   * events ingested in the same loop iteration, so nothing is skipped or
   * repeated) and reports each attempt with engine_trigger_report, which
   * `promptd status` shows. */
  int (*create)(trigger_inst **out, const cJSON *cfg, const char *source, struct engine *eng,
                perr *e);
  int (*start)(trigger_inst *t, perr *e);
  void (*stop)(trigger_inst *t, void (*done)(void *ud), void *ud);
  void (*destroy)(trigger_inst *t);
  /* Optional: seconds without a successful attempt after which `promptd
   * status` calls the trigger failing even when no attempt reported an
   * error (a poller that stopped polling); 0: no such limit. */
  long (*stale_after_s)(const cJSON *cfg);
} trigger_kind;

/* The registry (connectors.c). */
const action_kind *connectors_action(const char *name);
const trigger_kind *connectors_trigger(const char *name);
extern const action_kind *const connectors_actions[];
extern const trigger_kind *const connectors_triggers[];
/* How many action kinds there are (connectors_actions is NULL-terminated). */
size_t connectors_action_count(void);

#endif
