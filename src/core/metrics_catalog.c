/*
 * metrics_catalog: the definitions behind metrics_catalog.h.  Names follow
 * Prometheus' conventions: the promptd_ prefix, the unit in the name,
 * counters ending in _total; process_* are the standard process metrics.
 */
#include "core/metrics_catalog.h"

#include <stddef.h>

static const char *const l_source[] = {"source", NULL};
static const char *const l_source_reason[] = {"source", "reason", NULL};
static const char *const l_recipe[] = {"recipe", NULL};
static const char *const l_recipe_status[] = {"recipe", "status", NULL};
static const char *const l_kind[] = {"kind", NULL};
static const char *const l_model_recipe[] = {"model", "recipe", NULL};
static const char *const l_model_recipe_outcome[] = {"model", "recipe", "outcome", NULL};
static const char *const l_scope_recipe[] = {"scope", "recipe", NULL};

/* Steps range from a local CSV append (sub-millisecond) to a GPT call with
 * retries inside (a minute). */
static const double step_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,     2.5,  5,     10,   30,  60};
/* A group commit is one fsync: a fraction of a millisecond on a good disk,
 * tens of milliseconds on a slow one. */
static const double commit_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   1};
#define NB(a) (sizeof(a) / sizeof(a)[0])

metric_family m_events_received = {
    .name = "promptd_events_received_total",
    .help = "Events stored (durably) per trigger source; redeliveries not included.",
    .type = METRIC_COUNTER,
    .labels = l_source};
metric_family m_events_deduplicated = {
    .name = "promptd_events_deduplicated_total",
    .help =
        "Redeliveries of an event already stored (same source and dedupe key); nothing new "
        "was stored.",
    .type = METRIC_COUNTER,
    .labels = l_source};
metric_family m_events_rejected = {
    .name = "promptd_events_rejected_total",
    .help =
        "Events refused per source and reason (signature, invalid, too_large, method, "
        "busy, unavailable).",
    .type = METRIC_COUNTER,
    .labels = l_source_reason};
metric_family m_runs_started = {
    .name = "promptd_runs_started_total",
    .help =
        "Runs taken in hand to execute steps: a first start, or a resume after a retry "
        "wait, a budget wait or a restart.",
    .type = METRIC_COUNTER,
    .labels = l_recipe};
metric_family m_runs_finished = {
    .name = "promptd_runs_finished_total",
    .help = "Runs that reached a final status (succeeded or failed) per recipe.",
    .type = METRIC_COUNTER,
    .labels = l_recipe_status};
metric_family m_runs_in_flight = {.name = "promptd_runs_in_flight",
                                  .help = "Runs in hand now (at most engine.concurrency).",
                                  .type = METRIC_GAUGE};
metric_family m_runs_waiting = {
    .name = "promptd_runs_waiting",
    .help = "Runs waiting to start (queued, retrying, waiting for budget): the queue depth.",
    .type = METRIC_GAUGE};
metric_family m_step_duration = {
    .name = "promptd_step_duration_seconds",
    .help = "Duration of one step attempt per action kind, whatever its outcome.",
    .type = METRIC_HISTOGRAM,
    .labels = l_kind,
    .bounds = step_bounds,
    .nbounds = NB(step_bounds)};
metric_family m_step_retries = {
    .name = "promptd_step_retries_total",
    .help = "Step attempts that ended in a transient error and were scheduled again, per kind.",
    .type = METRIC_COUNTER,
    .labels = l_kind};
metric_family m_gpt_requests = {
    .name = "promptd_gpt_requests_total",
    .help =
        "GPT API requests per model, recipe and outcome (ok: a billed reply; retry: "
        "transient error; fail: permanent error; budget: quota exhausted; cancelled).",
    .type = METRIC_COUNTER,
    .labels = l_model_recipe_outcome};
metric_family m_gpt_prompt_tokens = {.name = "promptd_gpt_prompt_tokens_total",
                                     .help = "Prompt tokens billed per model and recipe.",
                                     .type = METRIC_COUNTER,
                                     .labels = l_model_recipe};
metric_family m_gpt_completion_tokens = {.name = "promptd_gpt_completion_tokens_total",
                                         .help = "Completion tokens billed per model and recipe.",
                                         .type = METRIC_COUNTER,
                                         .labels = l_model_recipe};
metric_family m_gpt_cost = {
    .name = "promptd_gpt_cost_usd_total",
    .help = "Cost of GPT calls in USD per model and recipe, from the price table.",
    .type = METRIC_COUNTER,
    .labels = l_model_recipe};
metric_family m_gpt_budget_tokens = {
    .name = "promptd_gpt_budget_remaining_tokens",
    .help =
        "Tokens left in today's (UTC) budget; scope daemon (all recipes, recipe=\"\") or "
        "recipe.  Only configured caps.",
    .type = METRIC_GAUGE,
    .labels = l_scope_recipe};
metric_family m_gpt_budget_usd = {
    .name = "promptd_gpt_budget_remaining_usd",
    .help =
        "USD left in today's (UTC) budget; scope daemon (all recipes, recipe=\"\") or "
        "recipe.  Only configured caps.",
    .type = METRIC_GAUGE,
    .labels = l_scope_recipe};
metric_family m_store_commit = {
    .name = "promptd_store_commit_seconds",
    .help = "Latency of store commits (one group commit, fsync included).",
    .type = METRIC_HISTOGRAM,
    .bounds = commit_bounds,
    .nbounds = NB(commit_bounds)};
metric_family m_process_rss = {.name = "process_resident_memory_bytes",
                               .help = "Resident memory size in bytes.",
                               .type = METRIC_GAUGE};
metric_family m_process_open_fds = {
    .name = "process_open_fds", .help = "Number of open file descriptors.", .type = METRIC_GAUGE};
metric_family m_process_max_fds = {.name = "process_max_fds",
                                   .help = "Maximum number of open file descriptors.",
                                   .type = METRIC_GAUGE};
metric_family m_process_start_time = {
    .name = "process_start_time_seconds",
    .help = "Start time of the process since the Unix epoch in seconds.",
    .type = METRIC_GAUGE};
metric_family m_process_cpu = {.name = "process_cpu_seconds_total",
                               .help = "Total user and system CPU time spent in seconds.",
                               .type = METRIC_COUNTER};

static metric_family *const all[] = {
    &m_events_received,   &m_events_deduplicated,
    &m_events_rejected,   &m_runs_started,
    &m_runs_finished,     &m_runs_in_flight,
    &m_runs_waiting,      &m_step_duration,
    &m_step_retries,      &m_gpt_requests,
    &m_gpt_prompt_tokens, &m_gpt_completion_tokens,
    &m_gpt_cost,          &m_gpt_budget_tokens,
    &m_gpt_budget_usd,    &m_store_commit,
    &m_process_rss,       &m_process_open_fds,
    &m_process_max_fds,   &m_process_start_time,
    &m_process_cpu,       NULL,
};

#define MAX_COLLECTORS 16

static struct {
  metrics_collect_fn fn;
  void *ud;
} collectors[MAX_COLLECTORS];

int metrics_on_scrape(metrics_collect_fn fn, void *ud) {
  for (size_t i = 0; i < MAX_COLLECTORS; i++)
    if (!collectors[i].fn) {
      collectors[i].fn = fn;
      collectors[i].ud = ud;
      return 0;
    }
  return -1;
}

void metrics_off_scrape(metrics_collect_fn fn, void *ud) {
  for (size_t i = 0; i < MAX_COLLECTORS; i++)
    if (collectors[i].fn == fn && collectors[i].ud == ud) collectors[i].fn = NULL;
}

int metrics_scrape(buf *out) {
  for (size_t i = 0; i < MAX_COLLECTORS; i++)
    if (collectors[i].fn) collectors[i].fn(collectors[i].ud);
  return metrics_render(all, out);
}

void metrics_catalog_release(void) {
  for (size_t i = 0; all[i]; i++) metric_family_release(all[i]);
}
