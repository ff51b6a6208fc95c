/*
 * gpt/errors: what a finished chat.completions exchange means for the run.
 *
 * The classification follows the official OpenAI SDKs, so promptd retries
 * exactly when they would: an `x-should-retry: true|false` header from the
 * server decides; otherwise connection errors, timeouts, 408, 409, 429 and
 * 5xx are transient and every other non-2xx status is permanent.
 *
 * One deliberate difference: a 429 whose error code (or, in older bodies,
 * type) is `insufficient_quota` is not a rate limit.  The SDKs retry it;
 * promptd does not, because no amount of waiting tops up an account.  It is
 * reported as budget = 1 with cls = OUTCOME_FAIL, and the engine parks the
 * run in status `budget` (resumable) instead of failing it.  This wins over
 * `x-should-retry: true`.
 *
 * Pure: no I/O.  The only outside input besides the arguments is the wall
 * clock, needed to turn a `retry-after` HTTP-date into a delay.
 */
#ifndef PROMPTD_GPT_ERRORS_H
#define PROMPTD_GPT_ERRORS_H

#include <stddef.h>

#include "core/connector.h"

typedef struct gpt_verdict {
  outcome_class cls;   /* OUTCOME_OK (2xx), OUTCOME_RETRY or OUTCOME_FAIL */
  int budget;          /* 1 for 429 insufficient_quota (then cls is OUTCOME_FAIL) */
  /* From retry-after-ms, else retry-after (seconds or HTTP-date; a date in
   * the past gives 0), else -1.  Reported as the server said it; the engine
   * applies its own ceiling (the Python SDK ignores values above 60 s). */
  long retry_after_ms;
  /* The API's error.message verbatim, with " (code: X)" appended (or
   * " (type: X)" when the body has no code); "HTTP 503" when the body says
   * nothing usable; "request timed out" / "connection error (transport
   * error N)" without a status.  Empty for 2xx. */
  char message[600];
} gpt_verdict;

/* Looks up a response header by name, case-insensitively; NULL if absent. */
typedef const char *(*gpt_header_fn)(void *ud, const char *name);

/* transport_error != 0: no HTTP status (connection failed); timed_out != 0:
 * the request timed out.  Both are transient.  header may be NULL (no
 * headers); body may be NULL when len is 0. */
void gpt_classify(int transport_error, int timed_out, long status, gpt_header_fn header, void *ud,
                  const char *body, size_t len, gpt_verdict *v);

/* The retry-after rules alone (exposed for the rate limiter and tests):
 * milliseconds to wait, or -1 when neither header gives a usable value.
 * now_s is the current Unix time, for HTTP-dates. */
long gpt_retry_after_ms(gpt_header_fn header, void *ud, long long now_s);

#endif
