/*
 * recipe: the recipe model.  A YAML file is validated into a JSON
 * definition (what the store keeps, one version per change), and a stored
 * definition is compiled into a `recipe` the engine runs.
 *
 * Definition JSON (normalised, keys in this order; optional ones only
 * when the file has them):
 *   { "name": "...", "description": "...", "enabled": bool,
 *     "trigger": { "<kind>": {cfg} },
 *     "when": {cond},                       -- optional filter
 *     "concurrency": N,                     -- optional per-recipe limit
 *     "retry": {"max_attempts","base_ms","cap_ms"},   -- optional
 *     "steps": [ { "id": "...", "if": {cond}, "retry": {...}, "<kind>": {cfg} } ],
 *     "partials": { "name": "template text" } }   -- every partial used, embedded
 *
 * Embedding partials at import makes each stored version self-contained:
 * a run renders with the partials its version was imported with.
 */
#ifndef PROMPTD_RECIPE_H
#define PROMPTD_RECIPE_H

#include <cjson/cJSON.h>

#include "core/connector.h"
#include "core/err.h"

typedef struct retry_policy {
  int max_attempts; /* total tries of one step, >= 1 */
  long base_ms;
  long cap_ms;
} retry_policy;

typedef struct recipe_step {
  const char *id;
  const action_kind *kind;
  const cJSON *cfg;      /* points into def */
  const cJSON *cond;     /* `if`, or NULL */
  retry_policy retry;    /* recipe's, overridden per step; 0 fields = engine default */
} recipe_step;

typedef struct recipe {
  cJSON *def;            /* owned */
  const char *name;
  int version;           /* as stored; 0 before import */
  int enabled;
  const trigger_kind *trigger;
  const cJSON *trigger_cfg;
  char *source;          /* event source matched (owned) */
  const cJSON *when;     /* or NULL */
  int concurrency;       /* 0: engine's limit only */
  retry_policy retry;
  recipe_step *steps;    /* owned array */
  int nsteps;
  const cJSON *partials; /* object name -> text, or NULL */
} recipe;

/* Reads and validates one YAML file; partials are read from partials_dir
 * (may be NULL: any partial is then an error). Returns the normalised
 * definition. Every error names FILE:LINE:COL, the field and what was
 * expected. */
int recipe_load_file(const char *path, const char *partials_dir, cJSON **def, perr *e);
/* Same, from text (name is used in messages). */
int recipe_load_string(const char *text, size_t len, const char *name, const char *partials_dir,
                       cJSON **def, perr *e);

/* Compiles a stored definition (takes ownership of def, even on failure). */
int recipe_compile(cJSON *def, int version, int enabled, recipe **out, perr *e);
void recipe_free(recipe *r);

/* The partial callback for tpl_opts/render_env: ud is the recipe. */
const char *recipe_partial(void *ud, const char *name, size_t *len);

/* The step index of id, or -1. */
int recipe_step_index(const recipe *r, const char *id);

/* Hex SHA-256 of the definition's compact JSON (malloc'd; NULL on OOM).
 * Definitions are normalised, so an unchanged file keeps its digest. */
char *recipe_digest(const cJSON *def);

/* The file's `enabled:` (default 1): whether a newly imported recipe
 * starts enabled.  Stored in the definition only when the file says it;
 * afterwards `recipe enable|disable` and the store decide. */
int recipe_def_enabled(const cJSON *def);

#endif
