/*
 * gpt/ratelimit: client-side token buckets per provider and model, so a
 * burst of events becomes a steady stream of calls instead of a storm of
 * 429s.
 *
 * Each bucket holds requests and tokens per minute (from the provider's
 * `rate_limits:`, else the limits the server reports in
 * x-ratelimit-limit-*), refilled continuously; a call takes one request and
 * its estimated tokens.  The API's x-ratelimit-remaining-* / x-ratelimit-reset-*
 * headers correct the buckets: the server's remaining count caps ours, and
 * a remaining count of 0 blocks the bucket until the reset time, limits
 * configured or not.  A 429 with a retry time blocks it the same way.
 */
#ifndef PROMPTD_GPT_RATELIMIT_H
#define PROMPTD_GPT_RATELIMIT_H

typedef struct gpt_limiter gpt_limiter;

gpt_limiter *gpt_limiter_new(void);
void gpt_limiter_free(gpt_limiter *l);

/* 0 when the call may go now (its request and est_tokens are taken);
 * otherwise the seconds to wait before asking again.  rpm/tpm <= 0: no
 * local limit of that kind. */
double gpt_limiter_take(gpt_limiter *l, const char *provider, const char *model, double rpm,
                        double tpm, double est_tokens, double now);

/* What the server said (x-ratelimit-limit/remaining/reset-*). Any argument
 * < 0 is unknown.  The reset time is when the whole limit is back; when
 * nothing remains the bucket waits only until one more request (or token)
 * is back, limit/60 per second, when the limit is known. */
typedef struct gpt_ratelimit_seen {
  double limit_requests, remaining_requests, reset_requests_s;
  double limit_tokens, remaining_tokens, reset_tokens_s;
} gpt_ratelimit_seen;
void gpt_limiter_observe(gpt_limiter *l, const char *provider, const char *model,
                         const gpt_ratelimit_seen *seen, double now);
/* Blocks the bucket for wait_s (a 429 with a retry time). */
void gpt_limiter_block(gpt_limiter *l, const char *provider, const char *model, double wait_s,
                       double now);

/* "6m0s", "1s", "20ms", "1h2m3.5s", or a bare number of seconds; -1 when
 * it is none of these. */
double gpt_duration_s(const char *s);

#endif
