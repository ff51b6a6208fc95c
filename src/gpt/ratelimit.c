#include "gpt/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  char *key; /* provider "\n" model */
  struct bucket *next;
  double req, tok;       /* available now; < 0: not yet initialised */
  double learned_rpm, learned_tpm; /* from x-ratelimit-limit-*, 0 when unknown */
  double last;           /* time of the last refill */
  double blocked_until;
} bucket;

struct gpt_limiter {
  bucket *buckets;
};

gpt_limiter *gpt_limiter_new(void) { return calloc(1, sizeof(gpt_limiter)); }

void gpt_limiter_free(gpt_limiter *l) {
  if (!l) return;
  while (l->buckets) {
    bucket *b = l->buckets;
    l->buckets = b->next;
    free(b->key);
    free(b);
  }
  free(l);
}

static bucket *find(gpt_limiter *l, const char *provider, const char *model) {
  size_t n = strlen(provider) + strlen(model) + 2;
  for (bucket *b = l->buckets; b; b = b->next)
    if (strlen(b->key) + 1 == n && strncmp(b->key, provider, strlen(provider)) == 0 &&
        b->key[strlen(provider)] == '\n' && strcmp(b->key + strlen(provider) + 1, model) == 0)
      return b;
  bucket *b = calloc(1, sizeof *b);
  if (!b || !(b->key = malloc(n))) {
    free(b);
    return NULL;
  }
  snprintf(b->key, n, "%s\n%s", provider, model);
  b->req = b->tok = -1;
  b->next = l->buckets;
  l->buckets = b;
  return b;
}

/* Buckets hold a whole minute's limit but refill at PACE of it: a call
 * paced exactly at the server's rate meets a 429 whenever scheduling or
 * the network brings two calls closer together on the way, and under load
 * they do.  A tenth of headroom absorbs that jitter. */
#define PACE 0.9

static void refill(bucket *b, double rpm, double tpm, double now) {
  if (b->req < 0) b->req = rpm > 0 ? rpm : 0;
  if (b->tok < 0) b->tok = tpm > 0 ? tpm : 0;
  double dt = now - b->last;
  if (dt > 0) {
    double r = dt * rpm * PACE / 60.0, t = dt * tpm * PACE / 60.0;
    if (rpm > 0) b->req = b->req + r > rpm ? rpm : b->req + r;
    if (tpm > 0) b->tok = b->tok + t > tpm ? tpm : b->tok + t;
  }
  b->last = now;
}

double gpt_limiter_take(gpt_limiter *l, const char *provider, const char *model, double rpm,
                        double tpm, double est_tokens, double now) {
  bucket *b = find(l, provider, model);
  if (!b) return 0; /* out of memory: do not hold calls back */
  if (now < b->blocked_until) return b->blocked_until - now;
  /* Without configured limits, pace to what the server says it allows. */
  if (rpm <= 0) rpm = b->learned_rpm;
  if (tpm <= 0) tpm = b->learned_tpm;
  refill(b, rpm, tpm, now);
  /* A call larger than a whole minute's tokens could never go: let it go
   * when the bucket is full rather than wait forever. */
  double need_tok = tpm > 0 && est_tokens > tpm ? tpm : est_tokens;
  double wait = 0;
  if (rpm > 0 && b->req < 1) wait = (1 - b->req) * 60.0 / (rpm * PACE);
  if (tpm > 0 && b->tok < need_tok) {
    double w = (need_tok - b->tok) * 60.0 / (tpm * PACE);
    if (w > wait) wait = w;
  }
  if (wait > 0) return wait < 0.001 ? 0.001 : wait;
  if (rpm > 0) b->req -= 1;
  if (tpm > 0) b->tok -= need_tok;
  return 0;
}

/* How long until one unit is back: the limit refills continuously, so a
 * unit comes back every 60/limit seconds; without the limit, the reset. */
static double until_one(double limit, double reset_s) {
  if (limit > 0 && reset_s > 0) return 60.0 / limit < reset_s ? 60.0 / limit : reset_s;
  return reset_s;
}

void gpt_limiter_observe(gpt_limiter *l, const char *provider, const char *model,
                         const gpt_ratelimit_seen *seen, double now) {
  bucket *b = find(l, provider, model);
  if (!b) return;
  /* The first time a limit is learned, the bucket starts from what the
   * server has left, not from the empty bucket of "no limit known". */
  if (seen->limit_requests > 0 && b->learned_rpm <= 0 && seen->remaining_requests >= 0)
    b->req = seen->remaining_requests;
  if (seen->limit_tokens > 0 && b->learned_tpm <= 0 && seen->remaining_tokens >= 0)
    b->tok = seen->remaining_tokens;
  if (seen->limit_requests > 0) b->learned_rpm = seen->limit_requests;
  if (seen->limit_tokens > 0) b->learned_tpm = seen->limit_tokens;
  refill(b, b->learned_rpm, b->learned_tpm, now);
  if (seen->remaining_requests >= 0) {
    if (b->req > seen->remaining_requests) b->req = seen->remaining_requests;
    double wait = until_one(seen->limit_requests, seen->reset_requests_s);
    if (seen->remaining_requests < 1 && wait > 0 && now + wait > b->blocked_until)
      b->blocked_until = now + wait;
  }
  if (seen->remaining_tokens >= 0) {
    if (b->tok > seen->remaining_tokens) b->tok = seen->remaining_tokens;
    double wait = until_one(seen->limit_tokens, seen->reset_tokens_s);
    if (seen->remaining_tokens < 1 && wait > 0 && now + wait > b->blocked_until)
      b->blocked_until = now + wait;
  }
}

void gpt_limiter_block(gpt_limiter *l, const char *provider, const char *model, double wait_s,
                       double now) {
  bucket *b = find(l, provider, model);
  if (b && wait_s > 0 && now + wait_s > b->blocked_until) b->blocked_until = now + wait_s;
}

double gpt_duration_s(const char *s) {
  if (!s || !*s) return -1;
  double total = 0;
  const char *p = s;
  int any = 0;
  while (*p) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || v < 0) return -1;
    p = end;
    any = 1;
    if (*p == '\0') return total + v; /* a bare number: seconds */
    if (p[0] == 'm' && p[1] == 's') {
      total += v / 1000.0;
      p += 2;
    } else if (*p == 'h') {
      total += v * 3600;
      p++;
    } else if (*p == 'm') {
      total += v * 60;
      p++;
    } else if (*p == 's') {
      total += v;
      p++;
    } else {
      return -1;
    }
  }
  return any ? total : -1;
}
