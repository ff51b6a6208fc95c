/*
 * slack_pacer: one message at a time per destination, an interval after
 * the previous answer (design in slack.h).
 *
 * A destination's life:
 *
 *   take, idle and due     -> granted at once, busy
 *   take, otherwise        -> queued; timer armed for next_free unless busy
 *   release                -> not busy, next_free = now + interval; timer
 *                             armed when someone waits
 *   timer, not busy        -> head granted (go), busy
 *   forget                 -> unlinked; timer stopped when none are left
 *   hold                   -> next_free pushed; timer re-armed if armed
 *   idle, next_free passed -> dropped at the next search
 *
 * Times are wall-clock seconds (ev_time).  The timer is armed relative to
 * the loop's cached time, which is never ahead of the wall clock, so it
 * fires at or after next_free; on_timer checks once more and re-arms when
 * it is early anyway (a clock step).
 */
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "actions/slack.h"

typedef struct dest {
  unsigned char key[SLACK_KEY_LEN];
  int busy;
  double next_free;
  slack_waiter *head, *tail;
  ev_timer timer;
  slack_pacer *p;
  struct dest *next;
} dest;

struct slack_pacer {
  struct ev_loop *loop;
  double interval;
  dest *dests;
};

slack_pacer *slack_pacer_new(struct ev_loop *loop, double interval_s) {
  slack_pacer *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->loop = loop;
  p->interval = interval_s;
  return p;
}

static void dest_free(slack_pacer *p, dest *d) {
  ev_timer_stop(p->loop, &d->timer);
  for (slack_waiter *w = d->head; w; w = w->next) w->dest = NULL;
  free(d);
}

void slack_pacer_free(slack_pacer *p) {
  if (!p) return;
  while (p->dests) {
    dest *d = p->dests;
    p->dests = d->next;
    dest_free(p, d);
  }
  free(p);
}

static void arm(dest *d) {
  slack_pacer *p = d->p;
  double wait = d->next_free - ev_now(p->loop);
  if (wait < 0) wait = 0;
  ev_timer_stop(p->loop, &d->timer);
  ev_timer_set(&d->timer, wait, 0.);
  ev_timer_start(p->loop, &d->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop, (void)revents;
  dest *d = t->data;
  if (d->busy || !d->head) return; /* release arms it again */
  if (ev_time() < d->next_free) {
    arm(d);
    return;
  }
  slack_waiter *w = d->head;
  d->head = w->next;
  if (!d->head) d->tail = NULL;
  w->next = NULL;
  w->dest = NULL;
  d->busy = 1;
  /* Last: go() may send, fail and release, and must find the pacer whole. */
  w->go(w);
}

static int idle(const dest *d, double now) { return !d->busy && !d->head && d->next_free <= now; }

/* Finds key's destination, creating it when create is set, and drops
 * idle ones passed on the way. */
static dest *find(slack_pacer *p, const unsigned char *key, int create, double now) {
  dest **pp = &p->dests, *found = NULL;
  while (*pp) {
    dest *d = *pp;
    if (memcmp(d->key, key, SLACK_KEY_LEN) == 0) {
      found = d;
      pp = &d->next;
    } else if (idle(d, now)) {
      *pp = d->next;
      dest_free(p, d);
    } else {
      pp = &d->next;
    }
  }
  if (found || !create) return found;
  dest *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  memcpy(d->key, key, SLACK_KEY_LEN);
  d->p = p;
  ev_timer_init(&d->timer, on_timer, 0., 0.);
  d->timer.data = d;
  d->next = p->dests;
  p->dests = d;
  return d;
}

int slack_pacer_take(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN], slack_waiter *w) {
  double now = ev_time();
  dest *d = find(p, key, 1, now);
  if (!d) return -1;
  w->next = NULL;
  if (idle(d, now)) {
    d->busy = 1;
    w->dest = NULL;
    return 1;
  }
  w->dest = d;
  if (d->tail)
    d->tail->next = w;
  else
    d->head = w;
  d->tail = w;
  if (!d->busy && !ev_is_active(&d->timer)) arm(d);
  return 0;
}

void slack_pacer_release(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN]) {
  double now = ev_time();
  dest *d = find(p, key, 0, now);
  if (!d) return;
  d->busy = 0;
  if (now + p->interval > d->next_free) d->next_free = now + p->interval;
  if (d->head) arm(d);
}

void slack_pacer_forget(slack_pacer *p, slack_waiter *w) {
  dest *d = w->dest;
  if (!d) return;
  slack_waiter **pp = &d->head, *prev = NULL;
  while (*pp && *pp != w) prev = *pp, pp = &(*pp)->next;
  if (*pp) *pp = w->next;
  if (d->tail == w) d->tail = prev;
  w->next = NULL;
  w->dest = NULL;
  if (!d->head) ev_timer_stop(p->loop, &d->timer);
}

void slack_pacer_hold(slack_pacer *p, const unsigned char key[SLACK_KEY_LEN], double wait_s) {
  double now = ev_time();
  dest *d = find(p, key, 1, now);
  if (!d || now + wait_s <= d->next_free) return;
  d->next_free = now + wait_s;
  if (d->head && !d->busy) arm(d);
}

size_t slack_pacer_waiting(const slack_pacer *p, const unsigned char key[SLACK_KEY_LEN]) {
  for (const dest *d = p->dests; d; d = d->next) {
    if (memcmp(d->key, key, SLACK_KEY_LEN) != 0) continue;
    size_t n = 0;
    for (const slack_waiter *w = d->head; w; w = w->next) n++;
    return n;
  }
  return 0;
}
