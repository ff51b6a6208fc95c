/*
 * gpt_bench: events through a recipe with a `gpt` step, end to end, against
 * the fake OpenAI server at a fixed latency: events per second, promptd's
 * CPU time per event, peak RSS, and the fake's CPU share (it must not be
 * the bottleneck).
 *
 * The engine runs in this process exactly as under `promptd serve`: the
 * store with group commit, the scheduler, the curl multi-socket client on
 * libev.  Events are stored first (one transaction, timed apart), then the
 * clock runs from engine start until every run has succeeded.
 *
 *   gpt_bench [--fake tests/fake/fake_openai.py] [--events 5000] [--latency-ms 200]
 *             [--in-flight 256] [--reps 3]
 *
 * BENCH_ONE_STEP=1 drops the `log` step, to see what the second step costs.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli/fake_server.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/engine.h"
#include "core/intake.h"
#include "core/log.h"
#include "core/recipe_import.h"
#include "core/recipe_set.h"
#include "core/store.h"

/* utime + stime of another process, in seconds. */
static double proc_cpu_s(pid_t pid) {
  char path[64], text[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *p = strrchr(text, ')');
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *what, const perr *e) {
  fprintf(stderr, "gpt_bench: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
  exit(1);
}

typedef struct waiter {
  engine *en;
  ev_timer t;
} waiter;

static void on_check(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  waiter *wt = w->data;
  if (engine_idle(wt->en)) ev_break(loop, EVBREAK_ALL);
}

typedef struct result {
  double rate, cpu_us, intake_s, fake_share;
} result;

static result one_run(const char *dir, int rep, int port, pid_t fake, int events, int in_flight) {
  char db[4300], path[4300], cfgpath[4300];
  snprintf(db, sizeof db, "%s/bench-%d.db", dir, rep);
  snprintf(path, sizeof path, "%s/recipes/bench.yaml", dir);
  snprintf(cfgpath, sizeof cfgpath, "%s/config.yaml", dir);
  FILE *f = fopen(cfgpath, "w");
  if (!f) die("write config", NULL);
  fprintf(f,
          "engine: { concurrency: %d }\n"
          "gpt: { max_in_flight: %d }\n"
          "providers:\n  openai: { base_url: \"http://127.0.0.1:%d/v1\", api_key: env:BENCH_KEY }\n",
          in_flight, in_flight, port);
  fclose(f);
  perr e;
  config cfg;
  config_init(&cfg);
  if (config_load(&cfg, cfgpath, &e)) die("config", &e);
  store *s;
  if (store_open(&s, db, 0, &e)) die("open", &e);
  import_item *items;
  size_t nitems;
  if (recipe_import_path(s, path, &items, &nitems, &e)) die("import", &e);
  import_items_free(items, nitems);
  recipe_set *rs;
  if (recipe_set_load(s, &rs, &e)) die("recipes", &e);

  double t0 = mono_s();
  if (store_begin(s, &e)) die("begin", &e);
  for (int i = 0; i < events; i++) {
    char payload[256];
    int len = snprintf(payload, sizeof payload,
                       "{\"name\":\"Lead %d\",\"company\":\"Company %d\",\"message\":\"We need "
                       "%d seats next quarter.\"}",
                       i, i % 97, 10 + i % 50);
    intake_result r;
    if (intake_event(s, rs, "bench", NULL, payload, (size_t)len, 0, clock_now_ms(), &r, &e))
      die("intake", &e);
  }
  if (store_commit(s, &e)) die("commit", &e);
  double intake_s = mono_s() - t0;
  recipe_set_free(rs);

  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  engine *en = engine_new(loop, s, &cfg, &e);
  if (!en) die("engine", &e);
  double fake0 = proc_cpu_s(fake), cpu0 = cpu_s(), w0 = mono_s();
  if (engine_start(en, &e)) die("engine start", &e);
  waiter wt = {en, {0}};
  ev_timer_init(&wt.t, on_check, 0.01, 0.01);
  wt.t.data = &wt;
  ev_timer_start(loop, &wt.t);
  ev_run(loop, 0);
  ev_timer_stop(loop, &wt.t);
  double wall = mono_s() - w0, cpu = cpu_s() - cpu0, fake_cpu = proc_cpu_s(fake) - fake0;
  if (engine_failed(en)) die(engine_failed(en), NULL);
  engine_free(en);
  ev_loop_destroy(loop);

  store_status_count counts[8];
  size_t n = 0;
  if (store_runs_count_by_status(s, counts, 8, &n, &e)) die("count", &e);
  for (size_t i = 0; i < n; i++)
    if (strcmp(counts[i].status, "succeeded") != 0)
      fprintf(stderr, "gpt_bench: %lld runs %s\n", (long long)counts[i].count, counts[i].status);
  store_close(s);
  config_release(&cfg);
  char side[4400];
  unlink(db);
  snprintf(side, sizeof side, "%s-wal", db);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db);
  unlink(side);
  unlink(cfgpath);
  result r = {events / wall, cpu / events * 1e6, intake_s, fake_cpu / wall};
  return r;
}

int main(int argc, char **argv) {
  const char *fake_script = NULL;
  int events = 5000, latency = 200, in_flight = 256, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--fake") == 0) fake_script = argv[i + 1];
    else if (strcmp(argv[i], "--events") == 0) events = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--latency-ms") == 0) latency = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--in-flight") == 0) in_flight = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--reps") == 0) reps = (int)strtol(argv[i + 1], NULL, 10);
  }
  if (events < 1 || in_flight < 1 || reps < 1 || reps > 15) {
    fputs("usage: gpt_bench [--fake PATH/fake_openai.py] [--events N] [--latency-ms N] "
          "[--in-flight N] [--reps N]\n",
          stderr);
    return 2;
  }
  log_set_level(LOG_WARN);
  setenv("BENCH_KEY", "sk-bench", 1);
  char tmpl[] = "/var/tmp/promptd-gpt-bench-XXXXXX";
  const char *dir = mkdtemp(tmpl);
  if (!dir) die("mkdtemp", NULL);
  char path[4300];
  snprintf(path, sizeof path, "%s/recipes", dir);
  if (mkdir(path, 0700)) die("mkdir", NULL);
  snprintf(path, sizeof path, "%s/recipes/bench.yaml", dir);
  FILE *f = fopen(path, "w");
  if (!f) die("write recipe", NULL);
  const char *second = getenv("BENCH_ONE_STEP")
                           ? ""
                           : "  - id: note\n    log: { message: \"{{event.name}}: "
                             "{{steps.qualify.score}}\", level: info }\n";
  fprintf(f, "name: bench\ntrigger: { event: { source: bench } }\nsteps:\n"
        "  - id: qualify\n    gpt:\n      model: gpt-4o-mini\n"
        "      system: You qualify B2B sales leads.\n"
        "      prompt: \"Lead: {{event.name}} at {{event.company}}. {{event.message}}\"\n"
        "      output_schema:\n        type: object\n        properties:\n"
        "          score: { type: integer, minimum: 1, maximum: 10 }\n"
        "          summary: { type: string }\n        required: [score, summary]\n"
        "%s",
        second);
  fclose(f);
  int port;
  perr fe;
  pid_t fake = fake_server_start(fake_script ? fake_script : fake_server_script(), latency, &port,
                                 &fe);
  if (fake < 0) die("fake server", &fe);
  result rs[15];
  for (int r = 0; r < reps; r++) rs[r] = one_run(dir, r, port, fake, events, in_flight);
  fake_server_stop(fake);

  double rate[15], cpu[15], share[15];
  for (int r = 0; r < reps; r++) rate[r] = rs[r].rate, cpu[r] = rs[r].cpu_us, share[r] = rs[r].fake_share;
  qsort(rate, (size_t)reps, sizeof rate[0], cmp_double);
  qsort(cpu, (size_t)reps, sizeof cpu[0], cmp_double);
  qsort(share, (size_t)reps, sizeof share[0], cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("gpt benchmark: %d events, fake latency %d ms, %d calls in flight, median of %d runs\n",
         events, latency, in_flight, reps);
  printf("  end to end:        %.0f events/s (ceiling %d in flight / %.1f s = %.0f/s)\n",
         rate[reps / 2], in_flight, latency / 1000.0, in_flight / (latency / 1000.0));
  printf("  promptd CPU:       %.0f us per event (intake excluded: %.2f s for all %d)\n",
         cpu[reps / 2], rs[0].intake_s, events);
  printf("  peak RSS:          %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
  printf("  fake server CPU:   %.0f%% of one core\n", share[reps / 2] * 100.0);
  unlink(path);
  snprintf(path, sizeof path, "%s/recipes", dir);
  rmdir(path);
  rmdir(dir);
  return 0;
}
