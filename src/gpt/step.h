/*
 * gpt/step: the `gpt` action kind.
 *
 *   - id: qualify
 *     gpt:
 *       model: gpt-4o-mini
 *       system: You qualify B2B sales leads.
 *       prompt: "Lead: {{event.body.name}}"     # or messages: [{role, content}]
 *       output_schema: { type: object, properties: {...}, required: [...] }
 *       cache: 24h                               # optional
 *
 * prepare() renders the request body exactly as it will be sent (stored as
 * the step's input); start() sends it through the provider's endpoint on the
 * shared HTTP client, subject to the global in-flight limit (`gpt:
 * max_in_flight`, default 32), the provider's rate-limit buckets and the
 * daily budgets (gate()).  A reply that does not match output_schema is
 * re-asked once with the validation error appended (a repair turn); then
 * it is a permanent error carrying the reply.  The output is the reply's
 * fields (or `text`), plus `_gpt` with the model returned, finish_reason,
 * request id, latency, tokens and cost.
 *
 * The call's life: queued (in-flight limit) -> waiting (rate limit timer)
 * -> sent -> answered -> [repair: queued again] -> reported.  cancel() at
 * any stage reports OUTCOME_CANCELLED exactly once.
 */
#ifndef PROMPTD_GPT_STEP_H
#define PROMPTD_GPT_STEP_H

#include "core/connector.h"
#include "core/fields.h"

extern const action_kind action_gpt;
extern const field_spec gpt_settings_fields[];

#endif
