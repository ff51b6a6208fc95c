/*
 * engine: intake, group commit, and the scheduler that runs recipes step
 * by step, all on one libev loop.
 *
 * Group commit.  Every store write made while the loop handles an
 * iteration (intake, claims, step records) goes into one open transaction.
 * Just before the loop blocks, an ev_prepare watcher commits it (one
 * fsync) and then runs the callbacks that waited for durability: webhook
 * answers, emit acknowledgements, and "start the next step".  Work those
 * callbacks write goes into the next transaction, committed on the next
 * iteration (an ev_idle keeps the loop from blocking meanwhile).
 *
 * A commit that fails leaves memory ahead of the store.  The store is the
 * truth, so the engine reports the failure to every waiting callback and
 * stops with an error (engine_failed); a restart resumes from the store.
 *
 * A run in hand goes through (the store.h diagram has the durable states):
 *
 *   claim ──► next step ──if false──► skipped ──► next step
 *               │
 *               ├─ prepare (render) ──error──► failed
 *               ├─ wait for the step's resource (exactly-once kinds)
 *               ├─ begin: step row `running`  ─commit─► start action
 *               └─ action_done ─► outcome row ─commit─► next step | retrying | failed
 *   no step left ─► succeeded
 *
 * Transitions: claim_runs(), advance(), begin_step(), start_step(),
 * deliver_outcome(), finish_run().  A step found running after a crash is
 * handed to its kind's recover() before it runs again.
 */
#ifndef PROMPTD_ENGINE_H
#define PROMPTD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/intake.h"
#include "core/recipe.h"
#include "core/store.h"

struct ev_loop;
struct config;
typedef struct engine engine;

typedef struct engine_config {
  int concurrency;            /* runs in flight at once; default 16 */
  size_t max_event_bytes;     /* default 1 MiB */
  retry_policy retry;         /* default 5 attempts, 1 s base, 5 min cap */
  double poll_interval;       /* seconds between checks for outside writes; 0.25 */
  double shutdown_timeout;    /* seconds in-flight steps get at shutdown; 30 */
  int commit_each;            /* commit each intake at once (no grouping); 0 */
} engine_config;

void engine_config_defaults(engine_config *c);

/* cfg (may be NULL: defaults) must outlive the engine: action kinds read
 * their sections from it. */
engine *engine_new(struct ev_loop *loop, store *s, const struct config *cfg, perr *e);
/* Requeues runs left running by a previous process, loads recipes, makes
 * each action kind's shared state (init), arms the watchers. Runs start on
 * the next loop iteration. */
int engine_start(engine *en, perr *e);
/* Stops intake and new steps, lets in-flight steps finish (up to the
 * shutdown timeout; then asks them to cancel), commits, calls done once. */
void engine_shutdown(engine *en, void (*done)(void *ud), void *ud);
void engine_free(engine *en);

/* Reload (SIGHUP), on the loop.
 *
 * engine_reconfigure: cfg becomes the configuration kinds and triggers
 * read from now on, and its engine: settings apply at once (concurrency,
 * retry policy, shutdown timeout, event size limit, commit_each).  cfg and
 * every configuration given before stay the caller's and must outlive the
 * engine: steps in flight and triggers keep pointers into the one they
 * started with.  what:
 *   ENGINE_RECONF_KINDS     each action kind's shared state is made again
 *                           from cfg (init); steps started before keep the
 *                           old one, released at engine_free.  All or
 *                           nothing: a kind that cannot init refuses it.
 *   ENGINE_RECONF_TRIGGERS  active triggers that poll an account
 *                           (TRIGGER_ACCOUNT) restart with cfg; their
 *                           cursors are in the store.
 * -1 with e set (nothing changed) when shutting down or a kind refused. */
enum { ENGINE_RECONF_KINDS = 1u << 0, ENGINE_RECONF_TRIGGERS = 1u << 1 };
int engine_reconfigure(engine *en, const struct config *cfg, unsigned what, perr *e);
/* Loads the enabled recipes again now and reconciles the active triggers:
 * for an import made on the engine's own connection, which the poll for
 * other processes' writes does not see.  -1: the previous set stays. */
int engine_reload_recipes(engine *en);

/* Non-zero once a commit failed; the message says why. */
const char *engine_failed(const engine *en);
/* 1 once engine_shutdown was called (for readiness). */
int engine_stopping(const engine *en);
struct ev_loop *engine_loop(const engine *en);

/* Runs in hand, and runs waiting to be claimed (for demo/status). */
size_t engine_active(const engine *en);
/* The enabled recipes as the engine currently sees them (reloaded when
 * another process imports or disables one); valid until control returns
 * to the loop. */
const struct recipe_set *engine_recipes(const engine *en);
/* Runs waiting to start (queued, retrying, budget): counted at most once a
 * second, plus the runs this engine's intake created since.  An upper
 * bound meant for admission control (webhook 503), not for reports. */
size_t engine_backlog(engine *en);
/* 1 when nothing is in hand and nothing is runnable now. */
int engine_idle(engine *en);

/* Called once the event is durable (ok = 1) or refused/lost (ok = 0,
 * err says why). Never from inside engine_ingest. */
typedef void (*engine_ingest_cb)(void *ud, int ok, const intake_result *r, const char *err);

/* Intake for triggers on the loop. Fails now (-1, e set) for a payload
 * refused outright; otherwise cb (may be NULL) is called exactly once
 * after the group commit. */
int engine_ingest(engine *en, const char *source, const char *dedupe_key, const char *payload,
                  size_t len, engine_ingest_cb cb, void *ud, perr *e);

/* The same for a trigger that built the event itself: event is the parse
 * of payload (intake_event_parsed). */
int engine_ingest_parsed(engine *en, const char *source, const char *dedupe_key,
                         const cJSON *event, const char *payload, size_t len, engine_ingest_cb cb,
                         void *ud, perr *e);
/* The services actions get (core/runtime.h: the loop, the HTTP client,
 * the configuration), for active triggers too.  Valid from engine_start. */
const struct runtime *engine_runtime(const engine *en);
/* For active triggers (connector.h): the source's stored cursor (malloc'd;
 * 1 when there is none yet), and a new one written in this iteration's
 * transaction, with the events ingested alongside it. */
int engine_cursor_get(engine *en, const char *source, char **cursor, perr *e);
int engine_cursor_set(engine *en, const char *source, const char *cursor, perr *e);
/* Records an attempt of an active trigger (error NULL: it worked) for
 * `promptd status`, and logs a change between working and failing once,
 * not at every attempt. */
void engine_trigger_report(engine *en, const char *source, const char *error);
/* Queues fn to run once the current transaction is durable. Opens the
 * transaction when none is open. Used by the engine and triggers whose
 * acknowledgement waits for durability. */
int engine_after_commit(engine *en, void (*fn)(void *ud, int ok), void *ud);
/* The store with this iteration's transaction open (begun if needed), or
 * NULL with e set. */
store *engine_txn(engine *en, perr *e);

#endif
