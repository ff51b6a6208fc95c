/* poll_timer: see poll_timer.h. */
#include "triggers/poll_timer.h"

#include <stddef.h>

void poll_timer_init(poll_timer *p, struct ev_loop *loop, long poll_s,
                     void (*cb)(struct ev_loop *, ev_timer *, int), void *data) {
  p->loop = loop;
  p->poll_s = poll_s;
  p->backoff_s = 0;
  p->stopping = 0;
  p->done = NULL;
  p->done_ud = NULL;
  ev_timer_init(&p->timer, cb, 0., 0.);
  p->timer.data = data;
}

void poll_timer_at(poll_timer *p, double in_s) {
  ev_timer_stop(p->loop, &p->timer);
  ev_timer_set(&p->timer, in_s, 0.);
  ev_timer_start(p->loop, &p->timer);
}

void poll_timer_finish_stop(poll_timer *p) {
  void (*done)(void *) = p->done;
  p->done = NULL;
  if (done) done(p->done_ud);
}

void poll_timer_ended(poll_timer *p, int failed, int more_now) {
  if (failed) {
    p->backoff_s = p->backoff_s ? p->backoff_s * 2 : p->poll_s;
    if (p->backoff_s > POLL_MAX_BACKOFF_S) p->backoff_s = POLL_MAX_BACKOFF_S;
  } else {
    p->backoff_s = 0;
  }
  if (p->stopping)
    poll_timer_finish_stop(p);
  else
    poll_timer_at(p, failed ? (double)p->backoff_s : more_now ? 0. : (double)p->poll_s);
}

void poll_timer_stop(poll_timer *p, void (*done)(void *ud), void *ud, int busy) {
  p->stopping = 1;
  p->done = done;
  p->done_ud = ud;
  if (!busy) poll_timer_at(p, 0.);
}

void poll_timer_release(poll_timer *p) {
  ev_timer_stop(p->loop, &p->timer);
  p->done = NULL;
  p->stopping = 1;
}
