/*
 * http_floor_bench: the transport floor under gpt_bench.  The same chat
 * completion request, to the same fake server at the same latency and
 * concurrency, through promptd's http_client alone: no store, no engine, no
 * JSON beyond the bytes sent.  What this costs per call is what any GPT step
 * costs at least on this machine (libcurl, loopback TCP, epoll), so
 * gpt_bench's figure minus this one is promptd's own work.
 *
 *   http_floor_bench [--fake tests/fake/fake_openai.py] [--calls 5000]
 *                    [--latency-ms 200] [--in-flight 256] [--reps 3]
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "cli/fake_server.h"
#include "net/http_client.h"

typedef struct driver {
  http_client *hc;
  char url[128];
  const char *body;
  int to_start, running, failed;
} driver;

static void start_one(driver *d);

static void on_done(void *ud, const http_response *r) {
  driver *d = ud;
  d->running--;
  if (r->transport_error || r->status != 200) d->failed++;
  start_one(d);
}

static void start_one(driver *d) {
  if (d->to_start == 0) return;
  static const char *const headers[] = {"Content-Type: application/json",
                                        "Authorization: Bearer sk-bench", NULL};
  http_request rq = {.method = "POST", .url = d->url, .headers = headers, .body = d->body,
                     .body_len = strlen(d->body)};
  perr e;
  if (http_client_start(d->hc, &rq, on_done, d, NULL, &e)) {
    fprintf(stderr, "http_floor_bench: %s\n", e.msg);
    exit(1);
  }
  d->to_start--;
  d->running++;
}

int main(int argc, char **argv) {
  const char *fake_script = NULL;
  int calls = 5000, latency = 200, in_flight = 256, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--fake") == 0) fake_script = argv[i + 1];
    else if (strcmp(argv[i], "--calls") == 0) calls = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--latency-ms") == 0) latency = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--in-flight") == 0) in_flight = (int)strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--reps") == 0) reps = (int)strtol(argv[i + 1], NULL, 10);
  }
  if (calls < 1 || in_flight < 1 || reps < 1 || reps > 15) {
    fputs("usage: http_floor_bench [--fake PATH] [--calls N] [--latency-ms N] [--in-flight N] "
          "[--reps N]\n",
          stderr);
    return 2;
  }
  int port;
  perr e;
  pid_t fake = fake_server_start(fake_script ? fake_script : fake_server_script(), latency, &port,
                                 &e);
  if (fake < 0) {
    fprintf(stderr, "http_floor_bench: fake server: %s\n", e.msg);
    return 1;
  }
  /* The body gpt_bench's step sends, near enough in size and shape. */
  const char *body =
      "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You qualify "
      "B2B sales leads.\"},{\"role\":\"user\",\"content\":\"Lead: Lead 1 at Company 1. We need "
      "11 seats next quarter.\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
      "{\"name\":\"qualify\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{"
      "\"score\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},\"summary\":{\"type\":"
      "\"string\"}},\"required\":[\"score\",\"summary\"],\"additionalProperties\":false}}}}";
  double rate[15], cpu[15];
  for (int r = 0; r < reps; r++) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    driver d = {.body = body, .to_start = calls};
    snprintf(d.url, sizeof d.url, "http://127.0.0.1:%d/v1/chat/completions", port);
    d.hc = http_client_new(loop, &e);
    if (!d.hc || http_client_set_max_host_connections(d.hc, in_flight, &e)) {
      fprintf(stderr, "http_floor_bench: %s\n", e.msg);
      return 1;
    }
    double w0 = mono_s(), c0 = cpu_s();
    for (int i = 0; i < in_flight; i++) start_one(&d);
    ev_run(loop, 0);
    double wall = mono_s() - w0, c = cpu_s() - c0;
    http_client_free(d.hc);
    ev_loop_destroy(loop);
    if (d.failed) fprintf(stderr, "http_floor_bench: %d calls failed\n", d.failed);
    rate[r] = calls / wall;
    cpu[r] = c / calls * 1e6;
  }
  fake_server_stop(fake);
  qsort(rate, (size_t)reps, sizeof rate[0], cmp_double);
  qsort(cpu, (size_t)reps, sizeof cpu[0], cmp_double);
  printf("http floor: %d calls, fake latency %d ms, %d in flight, median of %d runs\n", calls,
         latency, in_flight, reps);
  printf("  calls/s:           %.0f\n", rate[reps / 2]);
  printf("  client CPU:        %.0f us per call (libcurl + loopback TCP + epoll)\n", cpu[reps / 2]);
  return 0;
}
