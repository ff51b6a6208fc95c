/*
 * slack: the pieces of the `slack` action kind that are tested on their
 * own (slack.c holds the kind itself and the recipe shape).
 *
 * slack_render.c: validate() and prepare(), pure.
 *
 * slack_classify.c: what a finished exchange with Slack means (pure).
 *
 *   incoming webhook                      chat.postMessage
 *   ----------------                      ----------------
 *   2xx ("ok")         -> OK              2xx, {"ok": true}      -> OK {ts, channel}
 *   429                -> RETRY           2xx, {"ok": false, error}:
 *   408, 5xx           -> RETRY              ratelimited, rate_limited, internal_error,
 *   other status       -> FAIL, the          service_unavailable, request_timeout,
 *                         body's error        team_added_to_org      -> RETRY
 *                         string             anything else          -> FAIL, the error
 *                         (invalid_payload,  2xx, not JSON / no ok   -> RETRY (a proxy's page)
 *                         channel_not_found, 429                    -> RETRY
 *                         no_service, ...)   408, 5xx               -> RETRY
 *                                            other status           -> FAIL
 *
 * Webhooks answer errors as plain-text bodies holding one error string with
 * a 4xx status (Slack changelog 2016-05-17); the Web API answers HTTP 200
 * with {"ok": false, "error": "..."}.  The detail always starts with Slack's
 * string so an operator can search Slack's documentation for it.  A body
 * that is not a bare error string (a proxy's HTML) is not quoted.
 * Retry-After (whole seconds in Slack's answers; fractions accepted) becomes
 * retry_after_ms, capped at SLACK_MAX_RETRY_AFTER_MS; -1 when absent.
 *
 * slack_pacer.c: per-destination spacing (see below).
 */
#ifndef PROMPTD_ACTIONS_SLACK_H
#define PROMPTD_ACTIONS_SLACK_H

#include <stddef.h>

#include "core/connector.h"

#define SLACK_MAX_RETRY_AFTER_MS (60L * 60 * 1000)
#define SLACK_DEFAULT_API_URL "https://slack.com/api"
#define SLACK_MAX_BLOCKS 50 /* Slack's limit per message */

/* slack_render.c: the kind's validate() and prepare() (rules in slack.c). */
int slack_validate(const cJSON *cfg, perr *e);
int slack_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                  perr *e);
/* 1 for an http:// or https:// URL. */
int slack_is_http_url(const char *s);

typedef struct slack_verdict {
  outcome_class cls;   /* OUTCOME_OK, OUTCOME_RETRY or OUTCOME_FAIL */
  long retry_after_ms; /* -1: none given (the engine's backoff applies) */
  char detail[512];    /* "" for OK */
  char ts[64];         /* chat.postMessage success: the message's ts */
  char channel[128];   /* ... and the channel ID it went to */
} slack_verdict;

/* retry_after: the Retry-After header's value or NULL. */
void slack_classify_webhook(long status, const char *retry_after, const char *body, size_t len,
                            slack_verdict *v);
void slack_classify_api(long status, const char *retry_after, const char *body, size_t len,
                        slack_verdict *v);
/* Retry-After in milliseconds (capped), or -1 when absent or unreadable. */
long slack_retry_after_ms(const char *value);

/*
 * slack_pacer: one message at a time per destination, each leaving at
 * least an interval after the previous one was answered; on the loop,
 * without blocking.
 *
 * Why "after the answer" and not "an interval after the previous send":
 * Slack counts arrivals.  A send delayed on its way (a new connection, a
 * busy loop) arrives late, and the next one, sent on time over a warm
 * connection, would arrive less than an interval after it.  Counting from
 * the answer bounds arrivals, costs one round trip per message, and keeps
 * a channel's messages in order.
 *
 * A destination is a key (a digest of where the message goes, so no secret
 * is kept).  Each has a busy flag (a message in flight), the earliest time
 * the next may leave (next_free), a FIFO of waiters and one ev_timer.
 * slack_pacer_take either grants the slot at once (returns 1) or queues the
 * waiter (returns 0) and calls its go() later, from the timer, never from
 * inside take.  Every grant is ended by exactly one slack_pacer_release
 * when its exchange is over (answered, failed to start, cancelled), which
 * sets next_free to now + interval.  slack_pacer_hold pushes next_free
 * further (a 429's Retry-After), so the destination's other messages wait
 * too.
 *
 * Destinations that are idle (not busy, nobody waiting, next_free passed)
 * are dropped when the list is next searched; the list is linear because a
 * daemon posts to a handful of channels, not thousands.
 */
typedef struct slack_pacer slack_pacer;
typedef struct slack_waiter slack_waiter;
struct slack_waiter {
  void (*go)(slack_waiter *w); /* the slot has come: send now */
  slack_waiter *next;          /* the pacer's */
  void *dest;                  /* the pacer's: where it waits, NULL when not waiting */
};

#define SLACK_KEY_LEN 32

slack_pacer *slack_pacer_new(struct ev_loop *loop, double interval_s);
/* Stops every timer and frees; waiters still queued are dropped without a
 * call (their owners release them). NULL is ignored. */
void slack_pacer_free(slack_pacer *p);
/* 1: go now (release later); 0: queued, w->go comes later (a grant too);
 * -1: out of memory: go now without a grant rather than hold the message
 * back (Slack's 429 still protects), and do not release. */
int slack_pacer_take(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN], slack_waiter *w);
/* Ends a grant: the next message to key may leave an interval from now. */
void slack_pacer_release(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN]);
/* Removes a queued waiter (cancel); harmless when it is not queued. */
void slack_pacer_forget(slack_pacer *p, slack_waiter *w);
/* No message to key before wait_s from now. */
void slack_pacer_hold(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN], double wait_s);
/* Waiters queued for key (tests, and the kind's log line). */
size_t slack_pacer_waiting(const slack_pacer *p, const unsigned char key[SLACK_KEY_LEN]);

#endif
