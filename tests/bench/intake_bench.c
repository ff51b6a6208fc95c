/*
 * intake_bench: events per second stored durably, one transaction per
 * event against group commit (B events per transaction, as the daemon
 * commits everything that arrived in one loop iteration), and peak RSS.
 *
 * Each event is a ~1 KiB JSON object matched by one recipe, so every
 * event stores one event row and one run row, with synchronous=FULL.
 * Every configuration runs --reps times on a fresh database; the median
 * is reported.
 *
 *   intake_bench [--events N] [--single-events N] [--reps R] [--dir DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "core/clock.h"
#include "core/intake.h"
#include "core/recipe_import.h"
#include "core/recipe_set.h"
#include "core/store.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const perr *e) {
  fprintf(stderr, "intake_bench: %s: %s\n", what, e ? e->msg : "");
  exit(1);
}

/* One timed pass: events/s for n events committed batch at a time. */
static double pass(const char *dir, int rep, int n, int batch) {
  char db[4096], recipes[4096], yaml[4200];
  snprintf(db, sizeof db, "%s/bench-%d-%d.db", dir, batch, rep);
  snprintf(recipes, sizeof recipes, "%s/recipes", dir);
  snprintf(yaml, sizeof yaml, "%s/bench.yaml", recipes);
  perr e;
  store *s;
  if (store_open(&s, db, 0, &e)) die("open", &e);
  import_item *items;
  size_t nitems;
  if (recipe_import_path(s, yaml, &items, &nitems, &e)) die("import", &e);
  import_items_free(items, nitems);
  recipe_set *rs;
  if (recipe_set_load(s, &rs, &e)) die("recipes", &e);

  char filler[901];
  memset(filler, 'x', sizeof filler - 1);
  filler[sizeof filler - 1] = '\0';
  char payload[1200];
  double t0 = now_s();
  for (int i = 0; i < n; i += batch) {
    if (store_begin(s, &e)) die("begin", &e);
    for (int k = i; k < i + batch && k < n; k++) {
      int len = snprintf(payload, sizeof payload,
                         "{\"id\":%d,\"email\":\"lead%d@example.com\",\"company\":\"Example %d\","
                         "\"message\":\"%s\"}",
                         k, k, k, filler);
      char key[32];
      snprintf(key, sizeof key, "k%d", k);
      intake_result r;
      if (intake_event(s, rs, "bench", key, payload, (size_t)len, 0, clock_now_ms(), &r, &e))
        die("intake", &e);
      if (r.runs != 1) die("expected one run per event", NULL);
    }
    if (store_commit(s, &e)) die("commit", &e);
  }
  double rate = n / (now_s() - t0);
  recipe_set_free(rs);
  store_close(s);
  char side[4200];
  unlink(db);
  snprintf(side, sizeof side, "%s-wal", db);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db);
  unlink(side);
  return rate;
}

int main(int argc, char **argv) {
  int events = 50000, single = 3000, reps = 5;
  const char *dir = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--events") == 0)
      events = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--single-events") == 0)
      single = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--reps") == 0)
      reps = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--dir") == 0)
      dir = argv[i + 1];
  }
  if (events < 1 || single < 1 || reps < 1 || reps > 99) {
    fputs("usage: intake_bench [--events N] [--single-events N] [--reps R] [--dir DIR]\n", stderr);
    return 2;
  }
  char tmpl[] = "/var/tmp/promptd-bench-XXXXXX";
  if (!dir && !(dir = mkdtemp(tmpl))) die("mkdtemp", NULL);
  char path[4096];
  snprintf(path, sizeof path, "%s/recipes", dir);
  if (mkdir(path, 0700) != 0) die("cannot create the recipes folder", NULL);
  snprintf(path, sizeof path, "%s/recipes/bench.yaml", dir);
  FILE *f = fopen(path, "w");
  if (!f) die("write recipe", NULL);
  fputs("name: bench\ntrigger: { event: { source: bench } }\n"
        "when: { path: event.email, exists: true }\n"
        "steps:\n  - id: note\n    log: { message: \"lead {{event.email}}\" }\n",
        f);
  fclose(f);

  static const int batches[] = {1, 16, 64, 256};
  printf("intake benchmark: ~1 KiB events, one run each, WAL + synchronous=FULL, "
         "median of %d runs\n", reps);
  printf("%-22s %10s %14s %8s\n", "transaction size", "events", "events/s", "ratio");
  double base = 0;
  for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
    int n = batches[b] == 1 ? single : events;
    double rates[99];
    for (int r = 0; r < reps; r++) rates[r] = pass(dir, r, n, batches[b]);
    qsort(rates, (size_t)reps, sizeof rates[0], cmp_double);
    double med = rates[reps / 2];
    if (b == 0) base = med;
    char label[32];
    snprintf(label, sizeof label, batches[b] == 1 ? "1 (one per event)" : "%d (group commit)",
             batches[b]);
    printf("%-22s %10d %14.0f %7.1fx\n", label, n, med, med / base);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
  unlink(path);
  snprintf(path, sizeof path, "%s/recipes", dir);
  rmdir(path);
  rmdir(dir);
  return 0;
}
