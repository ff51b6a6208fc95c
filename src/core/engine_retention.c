/*
 * engine_retention: the pruning driver.  Every `interval` a pass deletes
 * what retention allows (store_prune.c has the rules), one batch per loop
 * iteration, each batch inside that iteration's group-commit transaction
 * (a savepoint of it), so pruning takes the write lock exactly as intake
 * does and never holds it across a wait.  Between batches the loop gets a
 * pause of at least 50 ms, and four times what the batch took, so pruning
 * takes at most a fifth of the loop whatever the disk; intake arriving
 * meanwhile is committed as usual.
 *
 * After the last batch is committed, a PASSIVE checkpoint (it never waits
 * for readers; on a connection of its own, since the engine's nearly always
 * has a transaction open under load) copies the WAL back into the
 * database, so the WAL restarts from its beginning and freed pages are
 * reused: the file stays bounded under steady load.  SQLite's own
 * autocheckpoint (1000 pages, on commit) does the same between passes;
 * journal_size_limit cuts a WAL grown by a burst, or by a long reader such
 * as `promptd backup`, back to 64 MiB.
 *
 * One line per pass at info level when it deleted anything (debug when
 * not), with what it deleted and how the WAL stood.
 */
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/engine_internal.h"
#include "core/log.h"
#include "core/retention.h"

#define PAUSE_MIN_S 0.05
#define FIRST_PASS_MAX_S 5.0
#define JOURNAL_SIZE_LIMIT (64LL << 20)

typedef enum { RP_IDLE, RP_PRUNING, RP_ENDING } retention_phase;

struct engine_retention {
  engine *en;
  retention_config cfg;
  ev_timer timer;
  retention_phase phase;
  int batches;
  store_prune_rules rules;
  store_prune_counts counts;
  double busy_s; /* spent in this pass's batches */
};

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void arm(struct engine_retention *r, double in) {
  ev_timer_stop(r->en->loop, &r->timer);
  ev_timer_set(&r->timer, in, 0.);
  ev_timer_start(r->en->loop, &r->timer);
}

static void begin_pass(struct engine_retention *r) {
  int64_t now = clock_now_ms();
  r->phase = RP_PRUNING;
  r->batches = 0;
  r->busy_s = 0;
  r->counts = (store_prune_counts){0, 0, 0, 0};
  r->rules = (store_prune_rules){
      .succeeded_before = r->cfg.succeeded_ms ? now - r->cfg.succeeded_ms : 0,
      .failed_before = r->cfg.failed_ms ? now - r->cfg.failed_ms : 0,
      .cache_now = now,
      .batch = r->cfg.batch,
  };
}

static void next_pass(struct engine_retention *r) {
  r->phase = RP_IDLE;
  arm(r, (double)r->cfg.interval_ms / 1000.0);
}

/* Runs an iteration after the last batch, which on_prepare has committed
 * by then. */
static void end_pass(struct engine_retention *r) {
  engine *en = r->en;
  perr e;
  int frames = 0, done = 0;
  if (store_wal_checkpoint(en->st, &frames, &done, &e))
    log_warn("retention: checkpoint failed", "error=%s", log_q(e.msg));
  const store_prune_counts *c = &r->counts;
  log_level lvl = c->runs || c->events || c->cache ? LOG_INFO : LOG_DEBUG;
  log_msg(lvl, "retention pass",
          "runs=%lld steps=%lld events=%lld cache=%lld batches=%d busy_ms=%.1f wal_frames=%d "
          "checkpointed=%d",
          (long long)c->runs, (long long)c->steps, (long long)c->events, (long long)c->cache,
          r->batches, r->busy_s * 1000.0, frames, done);
  next_pass(r);
}

static void prune_batch(struct engine_retention *r) {
  engine *en = r->en;
  perr e;
  store *s = engine_txn(en, &e);
  if (!s) return; /* the engine has failed and said why */
  double t0 = mono_s();
  int more = 0;
  int rc = store_prune_batch(s, &r->rules, &r->counts, &more, &e);
  double took = mono_s() - t0;
  r->busy_s += took;
  r->batches++;
  if (rc) {
    /* The batch's savepoint was rolled back; the iteration's other writes
     * stand.  The next pass tries again. */
    log_error("retention: pruning failed", "error=%s", log_q(e.msg));
    next_pass(r);
  } else if (more) {
    arm(r, took * 4 > PAUSE_MIN_S ? took * 4 : PAUSE_MIN_S);
  } else {
    /* Ends in a later iteration, once on_prepare has committed. */
    r->phase = RP_ENDING;
    arm(r, 0.);
  }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  struct engine_retention *r = w->data;
  engine *en = r->en;
  if (en->shutting_down || en->failed[0]) return;
  switch (r->phase) {
    case RP_IDLE:
      begin_pass(r);
      prune_batch(r);
      break;
    case RP_PRUNING:
      prune_batch(r);
      break;
    case RP_ENDING:
      end_pass(r);
      break;
  }
}

int engine_retention_start(engine *en, perr *e) {
  if (store_wal_setup(en->st, JOURNAL_SIZE_LIMIT, e)) return -1;
  struct engine_retention *r = calloc(1, sizeof *r);
  if (!r) return perr_set(e, "out of memory");
  if (retention_config_parse(config_get_section(en->rt.cfg, "retention"), &r->cfg, e)) {
    free(r);
    return -1;
  }
  r->en = en;
  en->retention = r;
  ev_timer_init(&r->timer, on_timer, 0., 0.);
  r->timer.data = r;
  if (!r->cfg.succeeded_ms && !r->cfg.failed_ms) {
    log_info("retention off: finished runs are kept", "%s", "");
    return 0;
  }
  double interval = (double)r->cfg.interval_ms / 1000.0;
  log_info("retention on", "succeeded_s=%lld failed_s=%lld interval_s=%g batch=%d",
           (long long)(r->cfg.succeeded_ms / 1000), (long long)(r->cfg.failed_ms / 1000),
           interval, r->cfg.batch);
  arm(r, interval < FIRST_PASS_MAX_S ? interval : FIRST_PASS_MAX_S);
  return 0;
}

void engine_retention_stop(engine *en) {
  if (en->retention) ev_timer_stop(en->loop, &en->retention->timer);
}

void engine_retention_free(engine *en) {
  engine_retention_stop(en);
  free(en->retention);
  en->retention = NULL;
}
