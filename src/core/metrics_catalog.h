/*
 * metrics_catalog: every metric promptd exports, in one place, and the
 * scrape that renders them (the admin listener's /metrics).
 *
 * Where each is counted
 *   events_*            engine.c (intake, counted once the commit is
 *                       durable) and the webhook router (refusals)
 *   runs_*, step_*      engine_run.c
 *   gpt_requests_total  gpt/step.c, one per HTTP answer (or transport
 *                       failure); outcome "ok" is a billed reply
 *   gpt_*tokens, cost   engine_run.c, with the usage rows written to the store
 *   gpt_budget_*        gpt/step.c's collector, at scrape
 *   store_commit_*      store.c
 *   process_*           metrics_process.c, read from /proc at scrape
 *
 * Gauges that describe state (runs in flight, waiting, budgets, process)
 * are set by collectors, functions registered with metrics_on_scrape that
 * run just before each render.  Everything runs on the loop thread.
 */
#ifndef PROMPTD_METRICS_CATALOG_H
#define PROMPTD_METRICS_CATALOG_H

#include "core/buf.h"
#include "core/metrics.h"

extern metric_family m_events_received;     /* source */
extern metric_family m_events_deduplicated; /* source */
extern metric_family m_events_rejected;     /* source, reason */
extern metric_family m_runs_started;        /* recipe */
extern metric_family m_runs_finished;       /* recipe, status */
extern metric_family m_runs_in_flight;
extern metric_family m_runs_waiting;
extern metric_family m_step_duration;         /* kind */
extern metric_family m_step_retries;          /* kind */
extern metric_family m_gpt_requests;          /* model, recipe, outcome */
extern metric_family m_gpt_prompt_tokens;     /* model, recipe */
extern metric_family m_gpt_completion_tokens; /* model, recipe */
extern metric_family m_gpt_cost;              /* model, recipe */
extern metric_family m_gpt_budget_tokens;     /* scope, recipe */
extern metric_family m_gpt_budget_usd;        /* scope, recipe */
extern metric_family m_store_commit;
extern metric_family m_process_rss;
extern metric_family m_process_open_fds;
extern metric_family m_process_max_fds;
extern metric_family m_process_start_time;
extern metric_family m_process_cpu;

/* The one series of a family without labels. */
#define METRIC_SOLO(f) metric_get((f), NULL)

typedef void (*metrics_collect_fn)(void *ud);
/* Runs fn(ud) before every render until metrics_off_scrape; -1 when the
 * (small, fixed) table is full. */
int metrics_on_scrape(metrics_collect_fn fn, void *ud);
void metrics_off_scrape(metrics_collect_fn fn, void *ud);

/* Runs the collectors, then renders every family above into out. */
int metrics_scrape(buf *out);

/* Frees every series (cached series pointers become invalid): for the end
 * of `serve`, after everything that counts is gone. */
void metrics_catalog_release(void);

/* metrics_process.c: sets the process_* gauges from /proc/self. */
void metrics_process_collect(void *ud);

#endif
