/*
 * reload: what SIGHUP does to a serving daemon.
 *
 *   1. The configuration file (the same --config path) is read and checked
 *      whole.  Any error (YAML, unknown key, bad value) refuses the reload:
 *      `reload refused` with the error as config_load gives it
 *      (FILE:LINE:COL), and nothing changes, recipes included.
 *   2. A changed configuration is compared with the one in force, key by
 *      key, and applied where that is safe while steps run:
 *        log.*                 at once
 *        engine.*              at once (engine_reconfigure)
 *        connector sections    the action kinds' shared state is made
 *                              again (new steps use it; steps in flight
 *                              finish with the old one) and active
 *                              triggers that poll an account restart;
 *                              kinds that read their section at each step
 *                              see the new one at their next read
 *        http.*                only at start: a warning names each setting
 *        any other top-level   a warning names it (read at start only)
 *      Configurations replaced stay alive until reloader_free, after the
 *      engine is gone: steps and triggers may point into them.
 *   3. The recipes directory (--recipes, else recipes_dir: of the
 *      configuration now in force) is imported all or nothing in the
 *      engine's transaction (recipe_import_dir_sync): changed recipes get a
 *      new version, recipes whose file left the directory are removed.
 *      Runs keep the version they were created with (queued, in flight or
 *      retried alike); a removed recipe only starts no new runs.  A broken
 *      file refuses the whole directory and the old versions stay.
 *
 * One log line per change: `config reloaded` changed=..., `recipe reloaded`
 * recipe= version=, `recipe removed`, `reload refused` error=, and
 * `reload done` at the end.  systemd hears RELOADING=1 at the start and
 * READY=1 at the end.
 */
#ifndef PROMPTD_RELOAD_H
#define PROMPTD_RELOAD_H

#include "core/config.h"
#include "core/engine.h"
#include "core/store.h"

typedef struct reloader reloader;

/* config_path: the file serve read (NULL: none, so only recipes reload).
 * recipes_opt: --recipes, or NULL for the configuration's recipes_dir.
 * initial: the configuration serve started with; stays the caller's and
 * must outlive the reloader's use. */
reloader *reloader_new(const char *config_path, const char *recipes_opt, const config *initial);
/* The configuration in force (initial until a reload applied another). */
const config *reloader_config(const reloader *r);
/* The whole reload, on the loop.  0: all of it applied (or unchanged);
 * -1: a part was refused (logged; that part stays as it was). */
int reloader_run(reloader *r, engine *en);
/* Frees every configuration a reload made: after engine_free and whatever
 * else may point into them.  NULL is ignored. */
void reloader_free(reloader *r);

/* Imports the recipes directory (or file) path through s, logging one line
 * per recipe: changed_msg for a new version, "recipe unchanged" (only with
 * log_unchanged), "recipe removed".  *changes: how many were new or
 * removed.  -1 with e set: nothing was stored. */
int reload_import_recipes(store *s, const char *path, const char *changed_msg, int log_unchanged,
                          int *changes, perr *e);

#endif
