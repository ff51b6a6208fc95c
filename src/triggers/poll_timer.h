/*
 * poll_timer: the timing every polling trigger shares (imap, google_forms,
 * sheet_rows): one ev_timer for the next poll, exponential backoff after a
 * failed poll (poll_s doubled up to 15 minutes, reset by a good one), and
 * the asynchronous stop of connector.h -- done is called once, from the
 * loop, when the poll in progress has ended or at the next timer.
 */
#ifndef PROMPTD_POLL_TIMER_H
#define PROMPTD_POLL_TIMER_H

#include <ev.h>

#define POLL_MAX_BACKOFF_S 900

typedef struct poll_timer {
  struct ev_loop *loop;
  ev_timer timer;
  long poll_s, backoff_s;
  int stopping;
  void (*done)(void *ud);
  void *done_ud;
} poll_timer;

/* fires calls cb (w->data = data) for each poll. */
void poll_timer_init(poll_timer *p, struct ev_loop *loop, long poll_s,
                     void (*cb)(struct ev_loop *, ev_timer *, int), void *data);
/* The next poll in in_s seconds. */
void poll_timer_at(poll_timer *p, double in_s);
/* A poll ended (failed or not): when stopping, reports done; else the next
 * poll after poll_s, or after the grown backoff when it failed (0 s when
 * more_now). */
void poll_timer_ended(poll_timer *p, int failed, int more_now);
/* Reports done (once) when a stop was asked. */
void poll_timer_finish_stop(poll_timer *p);
/* connector.h stop(): busy says a poll is in progress and will end
 * through poll_timer_ended or poll_timer_finish_stop; else the timer fires
 * at once and the owner's callback finishes the stop. */
void poll_timer_stop(poll_timer *p, void (*done)(void *ud), void *ud, int busy);
/* For destroy(): no watcher left, no done to call. */
void poll_timer_release(poll_timer *p);

#endif
