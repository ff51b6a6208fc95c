/*
 * recipe_set: the enabled recipes, compiled, as the engine and intake see
 * them.  Loaded from the store; reloaded when the store's recipe
 * generation changes (any process may import or disable a recipe).
 * Versions stay loaded while runs use them (recipe_set_version).
 */
#ifndef PROMPTD_RECIPE_SET_H
#define PROMPTD_RECIPE_SET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/recipe.h"
#include "core/store.h"

typedef struct recipe_set recipe_set;

int recipe_set_load(store *s, recipe_set **out, perr *e);
void recipe_set_free(recipe_set *rs);
int64_t recipe_set_generation(const recipe_set *rs);

/* Enabled recipes in name order. */
size_t recipe_set_count(const recipe_set *rs);
const recipe *recipe_set_at(const recipe_set *rs, size_t i);

#endif
