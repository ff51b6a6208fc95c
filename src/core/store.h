/*
 * store: the SQLite database, and the only code in promptd that speaks SQL.
 *
 * The database is the source of truth: an event is acknowledged only after
 * the transaction holding it and its runs is committed; a step's output is
 * committed before the next step starts.  Settings: WAL, synchronous=FULL,
 * foreign keys, busy timeout 5 s; the file is created mode 0600.
 * Migrations (schema/NNN_*.sql, compiled in) are applied at open in one
 * transaction; a database whose schema is newer than this binary is refused
 * and left untouched.
 *
 * Run states (runs.status) and who moves them:
 *
 *   queued --claim--> running --step ok, more steps--> running
 *     ^                 |  \--last step ok----------> succeeded
 *     |                 |--transient error--------> retrying --time--> (claimed again)
 *     |                 |--permanent / exhausted--> failed
 *     |                 |--budget spent / quota---> budget --window--> (claimed again)
 *     |                 '--crash or shutdown------> (found running at start: queued)
 *     '------------- runs replay (from failed or budget)
 *
 * Step rows (steps) exist from the moment a step begins:
 *   running -> succeeded | skipped | failed;  retrying keeps the row running
 *   with its attempts count.  A run's next step is the first position with
 *   no succeeded/skipped row.
 *
 * Timestamps are milliseconds since the epoch (int64).  All strings handed
 * back are malloc'd and released with the matching *_release function.
 * Functions return 0 on success, -1 on error (perr filled); lookups return
 * 1 for "not found".
 */
#ifndef PROMPTD_STORE_H
#define PROMPTD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct store store;

enum {
  STORE_READONLY = 1u << 0,  /* open an existing database for reading only */
};

int store_open(store **out, const char *path, unsigned flags, perr *e);
void store_close(store *s);
const char *store_path(const store *s);

/* Transactions. begin is BEGIN IMMEDIATE (waits up to the busy timeout
 * for other writers). Nesting is an error; use savepoints inside, which
 * nest and need an open transaction. begin on a STORE_READONLY store is an
 * error. A failed commit has rolled back: nothing of it was stored. */
int store_begin(store *s, perr *e);
int store_commit(store *s, perr *e);
void store_rollback(store *s);
int store_in_txn(const store *s);
int store_savepoint(store *s, perr *e);
int store_savepoint_release(store *s, perr *e);
void store_savepoint_rollback(store *s);

/* Changes when another connection commits (PRAGMA data_version). */
int store_data_version(store *s, int64_t *v, perr *e);
/* Bumped on every recipe change, by any process. */
int store_recipes_generation(store *s, int64_t *gen, perr *e);
int store_schema_version(store *s, int *v, perr *e);
/* PRAGMA integrity_check == ok */
int store_integrity_check(store *s, perr *e);

/* ---- recipes ---- */
typedef struct store_recipe {
  char *name;
  int version;        /* the version this row describes */
  int current;        /* the head's current version */
  int enabled;
  char *definition;   /* JSON */
  char *digest;       /* hex SHA-256 of the definition */
  char *source;       /* event source its trigger matches */
  char *file;         /* file imported from, or NULL */
  int64_t created_at; /* of this version */
} store_recipe;
void store_recipe_release(store_recipe *r);
void store_recipes_free(store_recipe *v, size_t n);

/* Stores a definition for name: a new version when digest differs from the
 * current one (changed = 1), nothing otherwise (changed = 0). A removed
 * recipe imported again continues its version numbers (or gets its last
 * version back when the digest is that version's; changed = 1 either way)
 * and is enabled again. New recipes are enabled; a disabled recipe stays
 * disabled across a change. version and changed may be NULL. */
int store_recipe_put(store *s, const char *name, const char *definition, const char *digest,
                     const char *source, const char *file, int64_t now, int *version,
                     int *changed, perr *e);
/* version 0: current. Returns 1 when absent (or removed, for version 0). */
int store_recipe_get(store *s, const char *name, int version, store_recipe *out, perr *e);
/* Current versions of every recipe, by name; enabled_only filters. */
int store_recipe_list(store *s, int enabled_only, store_recipe **out, size_t *n, perr *e);
/* Returns 1 when there is no such recipe. */
int store_recipe_set_enabled(store *s, const char *name, int enabled, perr *e);
/* Removes the recipe (no new runs); versions stay for the runs that used
 * them. Returns 1 when there is no such recipe. */
int store_recipe_remove(store *s, const char *name, perr *e);

/* ---- events ---- */
typedef struct store_event {
  int64_t id;
  char *source;
  char *dedupe_key;
  char *payload;      /* JSON object */
  int64_t received_at;
} store_event;
void store_event_release(store_event *ev);

/* Inserts unless (source, dedupe_key) exists; created says which. The
 * payload is payload_len bytes (no NUL needed). dedupe_key NULL: never a
 * duplicate. */
int store_event_insert(store *s, const char *source, const char *dedupe_key, const char *payload,
                       size_t payload_len, int64_t now, int64_t *event_id, int *created, perr *e);
int store_event_get(store *s, int64_t id, store_event *out, perr *e);

/* ---- runs ---- */
typedef struct store_run {
  int64_t id;
  int64_t event_id;
  char *recipe;
  int recipe_version;
  char *status;
  int attempt;            /* tries of the current step so far */
  int64_t next_attempt_at;
  char *last_error;       /* NULL when none */
  int64_t created_at;
  int64_t updated_at;
} store_run;
void store_run_release(store_run *r);
void store_runs_free(store_run *v, size_t n);

int store_run_insert(store *s, int64_t event_id, const char *recipe, int version, int64_t now,
                     int64_t *run_id, perr *e);
int store_run_get(store *s, int64_t id, store_run *out, perr *e);
/* Runs of an event, oldest first. */
int store_runs_of_event(store *s, int64_t event_id, store_run **out, size_t *n, perr *e);
/* Runs whose status is queued, or retrying/budget with next_attempt_at <= now,
 * oldest next_attempt_at first, skipping ids in `exclude` (those already in
 * hand); at most max. */
int store_runs_runnable(store *s, int64_t now, const int64_t *exclude, size_t nexclude,
                        size_t max, int64_t *ids, size_t *n, perr *e);
/* Earliest next_attempt_at among retrying and budget runs; 1 when none. */
int store_runs_next_wakeup(store *s, int64_t *at, perr *e);
/* Runs waiting to start: queued, retrying and budget (a backlog measure). */
int store_runs_count_waiting(store *s, int64_t *n, perr *e);
/* Sets status, attempt, next_attempt_at and last_error (NULL clears).
 * Returns 1 when there is no such run. */
int store_run_update(store *s, int64_t id, const char *status, int attempt,
                     int64_t next_attempt_at, const char *error, int64_t now, perr *e);
/* At daemon start: every `running` run becomes `queued` (its steps rows are
 * kept, so it resumes at its first unfinished step). n = how many. */
int store_runs_requeue_running(store *s, int64_t now, int *n, perr *e);
/* Filters may be NULL; limit <= 0 means 100. Newest first. */
int store_runs_list(store *s, const char *status, const char *recipe, int limit, store_run **out,
                    size_t *n, perr *e);
/* Counts per status, by status name; at most max entries. */
typedef struct store_status_count {
  char status[24];
  int64_t count;
} store_status_count;
int store_runs_count_by_status(store *s, store_status_count *out, size_t max, size_t *n, perr *e);
/* created_at of the oldest queued/retrying-due run; 1 when none. */
int store_runs_oldest_runnable(store *s, int64_t now, int64_t *created_at, perr *e);
/* failed (or budget) -> queued, attempt 0, error cleared, the failed
 * step's row deleted so it runs again.  Returns 1 when the run does not
 * exist, 2 when it is neither failed nor waiting for budget. */
int store_run_replay(store *s, int64_t id, int64_t now, perr *e);

/* ---- steps ---- */
typedef struct store_step {
  int64_t run_id;
  int position;
  char *step_id;
  char *status;         /* running, succeeded, skipped, failed */
  int attempts;
  char *input;          /* JSON or NULL */
  char *output;         /* JSON or NULL */
  char *state;          /* JSON or NULL: exactly-once bookkeeping */
  char *error;          /* NULL when none */
  int64_t started_at;
  int64_t finished_at;  /* 0 while running */
  int64_t duration_ms;  /* of the last attempt */
  int64_t prompt_tokens, completion_tokens, cached_tokens;
  double cost_usd;
} store_step;
void store_step_release(store_step *st);
void store_steps_free(store_step *v, size_t n);

/* All rows of a run, by position. */
int store_steps_of_run(store *s, int64_t run_id, store_step **out, size_t *n, perr *e);
/* Creates or updates the row as running: attempts + 1, input and state as
 * given, output and error cleared, started_at = now, finished_at = 0. */
int store_step_begin(store *s, int64_t run_id, int position, const char *step_id,
                     const char *input, const char *state, int64_t now, perr *e);
/* Ends an attempt: status (succeeded/skipped/failed/running for a retry
 * pending), output, error, finished_at = now, duration_ms. A skipped step
 * that never began gets its row here. */
int store_step_finish(store *s, int64_t run_id, int position, const char *step_id,
                      const char *status, const char *output, const char *error, int64_t now,
                      int64_t duration_ms, perr *e);

/* ---- trigger cursors ---- */
/* Returns 1 when the source has no cursor yet. */
int store_cursor_get(store *s, const char *source, char **cursor, perr *e);
int store_cursor_set(store *s, const char *source, const char *cursor, int64_t now, perr *e);

/* ---- trigger health ---- */
typedef struct store_trigger_health {
  int64_t last_success;  /* 0: never */
  int64_t last_attempt;
  int64_t failing_since; /* 0: not failing */
  char *last_error;      /* NULL after a success */
} store_trigger_health;
/* error NULL: the attempt succeeded. */
int store_trigger_health_set(store *s, const char *source, const char *error, int64_t now,
                             perr *e);
/* Returns 1 when the source has never reported. */
int store_trigger_health_get(store *s, const char *source, store_trigger_health *out, perr *e);
void store_trigger_health_release(store_trigger_health *h);

/* ---- usage (tokens, cost) and the response cache ---- */
typedef struct store_usage_row {
  char *recipe;       /* NULL in a total */
  char *model;        /* NULL in a total */
  int64_t calls;
  int64_t prompt_tokens, completion_tokens, cached_tokens;
  double cost_usd;
} store_usage_row;
void store_usage_rows_free(store_usage_row *v, size_t n);

/* Adds one call's usage to its step row (run_id, position) and to the
 * totals of (day, provider, model, recipe). day is "YYYY-MM-DD" (UTC). */
int store_usage_add(store *s, int64_t run_id, int position, const char *day,
                    const char *provider, const char *model, const char *recipe, int64_t calls,
                    int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens,
                    double cost_usd, perr *e);
/* Sums per recipe and model over days >= since_day (NULL: all days),
 * optionally one recipe; ordered by recipe, then model. */
int store_usage_report(store *s, const char *since_day, const char *recipe,
                       store_usage_row **out, size_t *n, perr *e);
/* One day's totals, of all recipes (recipe NULL) or one: tokens are prompt
 * plus completion. Zero when there is no usage. */
int store_usage_day(store *s, const char *day, const char *recipe, int64_t *tokens,
                    double *cost_usd, perr *e);

/* The cached response for key when present and not expired at now;
 * 1 when there is none. */
int store_cache_get(store *s, const char *key, int64_t now, char **response, perr *e);
/* Stores (or replaces) a response until expires_at. */
int store_cache_put(store *s, const char *key, const char *response, int64_t now,
                    int64_t expires_at, perr *e);

/* ---- retention (store_prune.c) and backup (store_backup.c) ---- */
typedef struct store_prune_rules {
  int64_t succeeded_before; /* succeeded runs finished before (ms), and events
                               that never had a run received before; 0: keep */
  int64_t failed_before;    /* failed runs finished before; 0: keep */
  int64_t cache_now;        /* response_cache rows expired at this time; 0: keep */
  int batch;                /* at most this many rows of each kind per call */
} store_prune_rules;
typedef struct store_prune_counts {
  int64_t runs, steps, events, cache; /* rows deleted, added to by each call */
} store_prune_counts;
/* One batch of pruning (store_prune.c has the rules), in its own
 * transaction or a savepoint of the caller's. Queued, running, retrying and
 * budget runs are never deleted; an event goes with its last run. more = 1
 * when a limit was reached: call again. */
int store_prune_batch(store *s, const store_prune_rules *r, store_prune_counts *c, int *more,
                      perr *e);
/* wal_autocheckpoint at 1000 pages; the WAL file cut back to
 * journal_size_limit bytes after a checkpoint. */
int store_wal_setup(store *s, int64_t journal_size_limit, perr *e);
/* A PASSIVE checkpoint (never waits) on a short-lived connection of its
 * own, so it runs whatever transaction s has open: frames in the WAL and
 * frames copied into the database. */
int store_wal_checkpoint(store *s, int *wal_frames, int *checkpointed, perr *e);

typedef struct store_backup_info {
  int64_t bytes;          /* size of the copy */
  int64_t pages, page_size;
  int schema_version;
  int64_t events, runs;   /* rows in the copy */
  int64_t ms;             /* time taken */
} store_backup_info;
/* An online copy of the whole database into path through SQLite's backup
 * API, in one step (one read snapshot; WAL readers never block the
 * writer): written to a temporary file beside path, checked with
 * PRAGMA integrity_check, made a single self-contained file (rollback
 * journal mode), fsynced, then renamed to path; the directory is fsynced.
 * An existing path is refused unless overwrite. Nothing is left under path
 * or beside it on failure. */
int store_backup(store *s, const char *path, int overwrite, store_backup_info *out, perr *e);

#endif
