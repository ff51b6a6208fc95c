/*
 * trigger `schedule`: an event at fixed times.
 *
 *   trigger: { schedule: { every: 1d, offset: 9h } }   # daily at 09:00 UTC
 *   trigger: { schedule: { every: 15m } }              # :00, :15, :30, :45
 *
 * Ticks are the multiples of `every` since the Unix epoch (UTC), shifted by
 * `offset`, so they do not depend on when the daemon started and two
 * recipes with the same schedule share one source ("schedule:<every
 * s>+<offset s>") and one event per tick.  The event:
 *   {"scheduled_at": "2026-11-27T09:00:00.000Z", "fired_at": "...", "missed": 0}
 *
 * Exactly one event per tick: the tick's time is the event's dedupe key and
 * the cursor (the last tick fired, ms) commits with the event.  On the very
 * first start only future ticks fire.  After downtime the most recent
 * missed tick fires once at start, with `missed` counting the ticks skipped
 * before it: a daily digest after a weekend off runs once, not three times.
 *
 * Timing is an ev_periodic on the loop (wall clock, so a clock step moves
 * the next tick with it).  stop() reports done from the loop, never from
 * inside stop().
 */
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/connector.h"
#include "core/engine.h"
#include "core/log.h"

#define MAX_EVERY_S (366LL * 86400)

static const field_spec schedule_fields[] = {
    {.name = "every",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "interval: a number and a unit s, m, h or d (1s to 366d), e.g. 15m or 1d"},
    {.name = "offset",
     .type = FT_STRING,
     .help = "shift from the epoch-aligned ticks, less than every (e.g. every: 1d, offset: 9h "
             "for 09:00 UTC; default 0)"},
    {.name = NULL},
};

/* Seconds in "15m"; -1 when malformed. */
static long long parse_duration(const char *s) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (end == s || n < 0 || end[0] == '\0' || end[1] != '\0') return -1;
  long long unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600
                 : end[0] == 'd' ? 86400 : 0;
  if (!unit || n > MAX_EVERY_S / unit) return -1;
  return n * unit;
}

static long long cfg_seconds(const cJSON *cfg, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, name);
  return cJSON_IsString(v) ? parse_duration(v->valuestring) : 0;
}

static int schedule_validate(const cJSON *cfg, perr *e) {
  long long every = cfg_seconds(cfg, "every"), offset = cfg_seconds(cfg, "offset");
  if (every < 1)
    return perr_set(e, "every: expected a number and a unit s, m, h or d from 1s to 366d "
                       "(e.g. 15m), got \"%.32s\"",
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "every")));
  if (offset < 0)
    return perr_set(e, "offset: expected a number and a unit s, m, h or d (e.g. 9h), got "
                       "\"%.32s\"",
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "offset")));
  if (offset >= every)
    return perr_set(e, "offset: must be less than every (%llds), got %llds", every, offset);
  return 0;
}

static char *schedule_source(const cJSON *cfg) {
  char name[64];
  snprintf(name, sizeof name, "schedule:%lld+%lld", cfg_seconds(cfg, "every"),
           cfg_seconds(cfg, "offset"));
  return strdup(name);
}

struct trigger_inst {
  engine *en;
  const char *source; /* the engine's, valid until destroy */
  int64_t every_ms, offset_ms;
  int64_t last_tick;  /* ms; 0: none fired yet */
  ev_periodic tick;
  ev_timer done_timer;
  void (*done)(void *ud);
  void *done_ud;
};

/* The latest tick at or before now_ms. */
static int64_t tick_at_or_before(const trigger_inst *t, int64_t now_ms) {
  int64_t k = (now_ms - t->offset_ms) / t->every_ms;
  return k * t->every_ms + t->offset_ms;
}

static void fire(trigger_inst *t, int64_t tick, int64_t missed) {
  char sched[40], fired[40], key[32], cursor[32];
  clock_format_ms(tick, sched, sizeof sched);
  clock_format_ms(clock_now_ms(), fired, sizeof fired);
  snprintf(key, sizeof key, "%" PRId64, tick);
  snprintf(cursor, sizeof cursor, "%" PRId64, tick);
  char payload[160];
  int n = snprintf(payload, sizeof payload,
                   "{\"scheduled_at\":\"%s\",\"fired_at\":\"%s\",\"missed\":%" PRId64 "}", sched,
                   fired, missed);
  perr e;
  /* Event and cursor share this iteration's transaction. */
  if (engine_ingest(t->en, t->source, key, payload, (size_t)n, NULL, NULL, &e) ||
      engine_cursor_set(t->en, t->source, cursor, &e)) {
    engine_trigger_report(t->en, t->source, e.msg);
    return;
  }
  t->last_tick = tick;
  engine_trigger_report(t->en, t->source, NULL);
  log_info("schedule fired", "source=%s scheduled_at=%s missed=%" PRId64, t->source, sched,
           missed);
}

static void on_tick(struct ev_loop *loop, ev_periodic *w, int revents) {
  (void)loop, (void)revents;
  trigger_inst *t = w->data;
  /* libev has already moved the watcher to the next tick; this one is an
   * interval before it (the clock may read a hair either side of it). */
  int64_t tick = (int64_t)(ev_periodic_at(w) * 1000.0 + 0.5) - t->every_ms;
  tick = tick_at_or_before(t, tick + t->every_ms / 2);
  if (tick > t->last_tick) fire(t, tick, t->last_tick ? (tick - t->last_tick) / t->every_ms - 1 : 0);
}

static int schedule_create(trigger_inst **out, const cJSON *cfg, const char *source, engine *en,
                           perr *e) {
  trigger_inst *t = calloc(1, sizeof *t);
  if (!t) return perr_set(e, "out of memory");
  t->en = en;
  t->source = source;
  t->every_ms = cfg_seconds(cfg, "every") * 1000;
  t->offset_ms = cfg_seconds(cfg, "offset") * 1000;
  ev_periodic_init(&t->tick, on_tick, (double)t->offset_ms / 1000.0,
                   (double)t->every_ms / 1000.0, NULL);
  t->tick.data = t;
  *out = t;
  return 0;
}

static int schedule_start(trigger_inst *t, perr *e) {
  char *cursor = NULL;
  int rc = engine_cursor_get(t->en, t->source, &cursor, e);
  if (rc < 0) return -1;
  int64_t now = clock_now_ms(), due = tick_at_or_before(t, now);
  if (rc == 0) {
    t->last_tick = strtoll(cursor, NULL, 10);
    free(cursor);
    /* Missed while down: the latest one, once. */
    if (due > t->last_tick) fire(t, due, (due - t->last_tick) / t->every_ms - 1);
  } else {
    t->last_tick = due; /* first start: from now on */
  }
  ev_periodic_start(engine_loop(t->en), &t->tick);
  return 0;
}

static void on_done_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  trigger_inst *t = w->data;
  t->done(t->done_ud);
}

static void schedule_stop(trigger_inst *t, void (*done)(void *ud), void *ud) {
  struct ev_loop *loop = engine_loop(t->en);
  ev_periodic_stop(loop, &t->tick);
  t->done = done;
  t->done_ud = ud;
  ev_timer_init(&t->done_timer, on_done_timer, 0., 0.);
  t->done_timer.data = t;
  ev_timer_start(loop, &t->done_timer);
}

static void schedule_destroy(trigger_inst *t) {
  if (!t) return;
  struct ev_loop *loop = engine_loop(t->en);
  ev_periodic_stop(loop, &t->tick);
  ev_timer_stop(loop, &t->done_timer);
  free(t);
}

const trigger_kind trigger_schedule = {
    .name = "schedule",
    .summary = "an event at fixed times: every N s/m/h/d, aligned to UTC, optional offset; "
               "one event per tick, a missed tick fires once after downtime",
    .fields = schedule_fields,
    .validate = schedule_validate,
    .source = schedule_source,
    .create = schedule_create,
    .start = schedule_start,
    .stop = schedule_stop,
    .destroy = schedule_destroy,
};
