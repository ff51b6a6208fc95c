/*
 * gpt/pricing: USD cost of a call from its token counts.
 *
 * Prices are per million tokens: input, cached input, output.  Defaults
 * cover current OpenAI models (published list prices, standard tier; they
 * change: override them in the configuration); a model is matched by the
 * longest configured or default name that prefixes it, so the dated names
 * the API returns ("gpt-4o-mini-2024-07-18") find "gpt-4o-mini".  A model
 * with no price (a local one) costs 0.
 *
 *   prices:
 *     gpt-4o-mini: { input: 0.15, cached_input: 0.075, output: 0.60 }
 */
#ifndef PROMPTD_GPT_PRICING_H
#define PROMPTD_GPT_PRICING_H

#include <cjson/cJSON.h>

#include "core/fields.h"

extern const field_spec gpt_price_fields[];

/* Cached tokens are part of prompt_tokens, billed at the cached rate. */
double gpt_cost_usd(const cJSON *prices, const char *model, long long prompt_tokens,
                    long long cached_tokens, long long completion_tokens);
/* 1 when the model has a price (configured or default). */
int gpt_has_price(const cJSON *prices, const char *model);

#endif
