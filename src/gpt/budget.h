/*
 * gpt/budget: daily spending caps, in tokens and in USD, for all recipes
 * together and per recipe.
 *
 *   budgets:
 *     daily_tokens: 2000000
 *     daily_usd: 20
 *     recipes:
 *       qualify-lead: { daily_tokens: 100000, daily_usd: 2 }
 *
 * Days are UTC.  The ledger starts from the store's usage for today and
 * adds each call as it completes.  A step whose recipe (or the whole
 * daemon) has reached a cap does not call: its run waits in status
 * `budget` until the next UTC midnight (or `runs replay` after a raised
 * cap).  Calls already in flight when a cap is reached still finish, so the
 * overshoot is bounded by the calls in flight at that moment: at most
 * gpt.max_in_flight calls, each at most its prompt plus its
 * max_completion_tokens.
 */
#ifndef PROMPTD_GPT_BUDGET_H
#define PROMPTD_GPT_BUDGET_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fields.h"
#include "core/store.h"

extern const field_spec gpt_budget_fields[];

typedef struct gpt_budget gpt_budget;

/* section may be NULL (no caps). Keeps a copy. */
gpt_budget *gpt_budget_new(const cJSON *section);
void gpt_budget_free(gpt_budget *b);

/* 0: the recipe may spend now; > 0: ms until the window rolls over, with
 * why naming the cap. Reads today's usage from the store once per day. */
long gpt_budget_gate(gpt_budget *b, store *st, const char *recipe, int64_t now_ms, char *why,
                     size_t why_len);
void gpt_budget_spend(gpt_budget *b, const char *recipe, int64_t tokens, double usd,
                      int64_t now_ms);
/* For each configured cap, what is left of it today (never below 0):
 * fn(ud, recipe or NULL for all recipes, tokens left or -1 when that cap
 * is not set, USD left or -1).  Reads today's usage from the store once per
 * day, as the gate does. */
void gpt_budget_remaining(gpt_budget *b, store *st, int64_t now_ms,
                          void (*fn)(void *ud, const char *recipe, double tokens, double usd),
                          void *ud);

#endif
