/*
 * store_internal: what the store*.c files share.  Nothing outside
 * src/core/store*.c includes this; the rest of promptd sees store.h only.
 *
 * Statement cache: every SQL text the store runs is prepared once per
 * connection (SQLITE_PREPARE_PERSISTENT) and kept under a key of the enum
 * below.  The SQL is written at the one place that uses the key, so a
 * reader sees the text next to its binds; intake's hot path then costs
 * bind + step + reset and no parsing.
 */
#ifndef PROMPTD_STORE_INTERNAL_H
#define PROMPTD_STORE_INTERNAL_H

#include <sqlite3.h>

#include "core/store.h"

enum store_stmt_id {
  /* store.c */
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SAVEPOINT,
  ST_SAVEPOINT_RELEASE,
  ST_SAVEPOINT_ROLLBACK,
  ST_DATA_VERSION,
  ST_GENERATION,
  ST_USER_VERSION,
  ST_INTEGRITY_CHECK,
  /* store_recipes.c */
  ST_RECIPE_HEAD,
  ST_RECIPE_HEAD_INSERT,
  ST_RECIPE_HEAD_UPDATE,
  ST_RECIPE_VERSION_INSERT,
  ST_RECIPE_GET_CURRENT,
  ST_RECIPE_GET_VERSION,
  ST_RECIPE_LIST,
  ST_RECIPE_SET_ENABLED,
  ST_RECIPE_REMOVE,
  /* store_events.c */
  ST_EVENT_INSERT,
  ST_EVENT_FIND,
  ST_EVENT_GET,
  ST_CURSOR_GET,
  ST_CURSOR_SET,
  /* store_runs.c */
  ST_RUN_INSERT,
  ST_RUN_GET,
  ST_RUNS_OF_EVENT,
  ST_RUNS_RUNNABLE,
  ST_RUNS_NEXT_WAKEUP,
  ST_RUNS_COUNT_WAITING,
  ST_HEALTH_SET,
  ST_HEALTH_GET,
  ST_RUN_UPDATE,
  ST_RUNS_REQUEUE,
  ST_RUNS_LIST_ALL,
  ST_RUNS_LIST_STATUS,
  ST_RUNS_LIST_RECIPE,
  ST_RUNS_LIST_BOTH,
  ST_RUNS_COUNT,
  ST_RUNS_OLDEST,
  ST_RUN_STATUS,
  ST_RUN_REPLAY,
  ST_STEPS_DELETE_FAILED,
  /* store_steps.c */
  ST_STEPS_OF_RUN,
  ST_STEP_BEGIN,
  ST_STEP_FINISH,
  /* store_usage.c */
  ST_USAGE_STEP,
  ST_USAGE_DAY_ADD,
  ST_USAGE_REPORT,
  ST_USAGE_DAY_ALL,
  ST_USAGE_DAY_RECIPE,
  ST_CACHE_GET,
  ST_CACHE_PUT,
  /* store_prune.c */
  ST_PRUNE_FIND_RUNS,
  ST_PRUNE_STEPS,
  ST_PRUNE_RUN,
  ST_PRUNE_EVENT_IF_ORPHAN,
  ST_PRUNE_EVENT,
  ST_PRUNE_META_GET,
  ST_PRUNE_META_SET,
  ST_PRUNE_WALK_EVENTS,
  ST_PRUNE_CACHE,
  ST__COUNT
};

struct store {
  sqlite3 *db;
  char *path;
  unsigned flags;
  sqlite3_stmt *stmt[ST__COUNT];
};

/* The cached statement for id, prepared from sql on first use.  NULL with e
 * filled when preparing failed.  The statement comes back reset; callers
 * end with store_stmt_done on every path. */
sqlite3_stmt *store_stmt(store *s, enum store_stmt_id id, const char *sql, perr *e);
/* Reset and unbind, so no statement keeps a read snapshot open (that would
 * stall WAL checkpoints) and no binding outlives the caller's strings. */
void store_stmt_done(sqlite3_stmt *st);
/* perr "store: <what>: <sqlite message>"; returns -1. */
int store_fail(store *s, const char *what, perr *e);
/* Steps a statement that returns no rows, then store_stmt_done. */
int store_step_done(store *s, sqlite3_stmt *st, const char *what, perr *e);

/* A multi-statement change made atomic: its own transaction when none is
 * open, a savepoint inside the caller's.  end commits/releases when rc >= 0
 * and returns rc (or -1 when that fails); rolls back and returns rc when
 * rc < 0. */
int store_atomic_begin(store *s, int *own, perr *e);
int store_atomic_end(store *s, int own, int rc, perr *e);

/* Copy of a TEXT column (NULL for SQL NULL) into *out.  -1 on out of
 * memory. */
int store_col_text(sqlite3_stmt *st, int col, char **out);
/* Grows a malloc'd array of elem-sized items to hold at least need. */
int store_grow(void **v, size_t *cap, size_t need, size_t elem);

#endif
