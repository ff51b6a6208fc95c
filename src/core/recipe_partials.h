/*
 * recipe_partials: the partials a recipe's templates name, read from the
 * partials folder (DIR/NAME.mustache), each name once, following the
 * partials they name in turn, to a bounded depth.  A recipe may also carry
 * its partials inline (`partials: { name: text }`), as `recipe export`
 * writes them; those are used before the folder is looked at.  Used by the recipe
 * loader only: the loader hands partial_set_note to the field checks as
 * their partial callback, then calls partial_set_resolve after each config
 * so a problem is reported at the template that named the partial.
 */
#ifndef PROMPTD_RECIPE_PARTIALS_H
#define PROMPTD_RECIPE_PARTIALS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/err.h"
#include "core/yaml_doc.h"

#define RECIPE_PARTIAL_DEPTH 16       /* a partial named by a partial ... 16 levels */
#define RECIPE_PARTIAL_MAX (1u << 20) /* bytes in one partial file */

typedef struct partial_set {
  const char *dir; /* NULL: no folder, any partial is an error */
  /* The recipe's own `partials:` mapping (name -> text), or NULL. Inline
   * partials win over files, so an exported recipe imports anywhere. */
  const ynode *inline_map;
  /* Names in order of first use; [0, resolved) have been read and checked.
   * parent: index of the partial that named it, or SIZE_MAX for a recipe
   * template; depth: 1 for a recipe template's partial. */
  char **names;
  char **texts;
  size_t *parent;
  int *depth;
  size_t n, cap, resolved;
  /* State of the note callback while a partial's own text is checked. */
  int cur_depth;
  size_t cur_parent;
  char *too_deep; /* the name that went past RECIPE_PARTIAL_DEPTH */
  int oom;        /* the callback ran out of memory */
} partial_set;

void partial_set_init(partial_set *ps, const char *dir);
void partial_set_release(partial_set *ps);

/* A tpl_name_fn (ud: the set): notes a name the first time it is seen. */
int partial_set_note(void *ud, const char *name);

/* Reads and checks every partial noted but not yet read.  cfg and where
 * are the config whose templates named them; errors are
 * "FILE:LINE:COL: PATH: partial 'NAME' ..." at the template naming it. */
int partial_set_resolve(partial_set *ps, const char *file, const ynode *cfg, const char *where,
                        perr *e);

/* The texts as a JSON object, names sorted; NULL on OOM. */
cJSON *partial_set_json(const partial_set *ps);

#endif
