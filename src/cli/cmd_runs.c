/* promptd runs: list, show and replay runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd runs list [--status S] [--recipe R] [--limit N] [--json]\n"
    "       promptd runs show ID [--json]\n"
    "       promptd runs replay ID\n"
    "\n"
    "list    newest first (default 100); statuses: queued, running, retrying,\n"
    "        budget, succeeded, failed\n"
    "show    the run, its event, and every step: input, output, timing, attempts, error\n"
    "replay  requeue a failed run from its failed step (earlier steps keep their\n"
    "        stored output and are not repeated), or a run waiting in `budget`\n"
    "        at once (after a raised cap or a topped-up account)\n";

static const char *const statuses[] = {"queued", "running", "retrying", "succeeded", "failed",
                                       "budget", "awaiting_approval", NULL};

static cJSON *run_json(const store_run *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", (double)r->id);
  cJSON_AddStringToObject(o, "recipe", r->recipe);
  cJSON_AddNumberToObject(o, "recipe_version", r->recipe_version);
  cJSON_AddNumberToObject(o, "event_id", (double)r->event_id);
  cJSON_AddStringToObject(o, "status", r->status);
  cJSON_AddNumberToObject(o, "attempt", r->attempt);
  if (r->last_error)
    cJSON_AddStringToObject(o, "error", r->last_error);
  else
    cJSON_AddNullToObject(o, "error");
  if (r->next_attempt_at)
    cJSON_AddStringToObject(o, "next_attempt_at", cli_time(r->next_attempt_at));
  else
    cJSON_AddNullToObject(o, "next_attempt_at");
  cJSON_AddStringToObject(o, "created_at", cli_time(r->created_at));
  cJSON_AddStringToObject(o, "updated_at", cli_time(r->updated_at));
  return o;
}

static int runs_list(int argc, char **argv, store *s) {
  static const struct option opts[] = {{"status", required_argument, 0, 's'},
                                       {"recipe", required_argument, 0, 'r'},
                                       {"limit", required_argument, 0, 'l'},
                                       {"json", no_argument, 0, 'j'},
                                       {0, 0, 0, 0}};
  const char *status = NULL, *recipe = NULL;
  long long limit = 100;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 's': status = optarg; break;
      case 'r': recipe = optarg; break;
      case 'l':
        if (!(limit = cli_parse_id(optarg)) || limit > 1000000)
          return cli_fail(EXIT_USAGE, "runs list: --limit takes a number from 1 to 1000000");
        break;
      case 'j': json = 1; break;
      default: return cli_fail(EXIT_USAGE, "runs list: unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "runs list: unexpected argument '%s'", argv[optind]);
  if (status) {
    int known = 0;
    for (size_t i = 0; statuses[i]; i++) known |= strcmp(statuses[i], status) == 0;
    if (!known)
      return cli_fail(EXIT_USAGE, "runs list: unknown status '%s' (queued, running, retrying, succeeded, failed)", status);
  }
  store_run *v = NULL;
  size_t n = 0;
  perr e;
  if (store_runs_list(s, status, recipe, (int)limit, &v, &n, &e))
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  if (json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, run_json(&v[i]));
    cli_print_json(arr);
  } else if (!n) {
    puts("no runs");
  } else {
    printf("%-8s %-24s %-4s %-10s %-7s %-24s %s\n", "ID", "RECIPE", "VER", "STATUS", "ATTEMPT",
           "UPDATED", "ERROR");
    for (size_t i = 0; i < n; i++)
      printf("%-8lld %-24s %-4d %-10s %-7d %-24s %s\n", (long long)v[i].id, v[i].recipe,
             v[i].recipe_version, v[i].status, v[i].attempt, cli_time(v[i].updated_at),
             v[i].last_error ? v[i].last_error : "");
  }
  store_runs_free(v, n);
  return EXIT_OK;
}

static cJSON *parsed_or_null(const char *text) {
  cJSON *j = text ? cJSON_Parse(text) : NULL;
  return j ? j : cJSON_CreateNull();
}

static void print_block(const char *label, const char *json_text) {
  if (!json_text) return;
  cJSON *j = cJSON_Parse(json_text);
  char *pretty = j ? cJSON_Print(j) : NULL;
  printf("    %s:\n", label);
  const char *p = pretty ? pretty : json_text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    int len = nl ? (int)(nl - p) : (int)strlen(p);
    printf("      %.*s\n", len, p);
    p += len + (nl ? 1 : 0);
  }
  free(pretty);
  cJSON_Delete(j);
}

static int runs_show(long long id, int json, store *s) {
  store_run r;
  store_event ev;
  store_step *steps = NULL;
  size_t n = 0;
  perr e;
  int rc = store_run_get(s, id, &r, &e);
  if (rc == 1) return cli_fail(EXIT_RUNTIME, "no run with id %lld", id);
  if (rc) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  if (store_event_get(s, r.event_id, &ev, &e)) {
    store_run_release(&r);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  if (store_steps_of_run(s, id, &steps, &n, &e)) {
    store_event_release(&ev);
    store_run_release(&r);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  if (json) {
    cJSON *o = run_json(&r);
    cJSON *evj = cJSON_AddObjectToObject(o, "event");
    cJSON_AddNumberToObject(evj, "id", (double)ev.id);
    cJSON_AddStringToObject(evj, "source", ev.source);
    if (ev.dedupe_key)
      cJSON_AddStringToObject(evj, "dedupe_key", ev.dedupe_key);
    else
      cJSON_AddNullToObject(evj, "dedupe_key");
    cJSON_AddStringToObject(evj, "received_at", cli_time(ev.received_at));
    cJSON_AddItemToObject(evj, "payload", parsed_or_null(ev.payload));
    cJSON *arr = cJSON_AddArrayToObject(o, "steps");
    for (size_t i = 0; i < n; i++) {
      store_step *st = &steps[i];
      cJSON *sj = cJSON_CreateObject();
      cJSON_AddNumberToObject(sj, "position", st->position);
      cJSON_AddStringToObject(sj, "id", st->step_id);
      cJSON_AddStringToObject(sj, "status", st->status);
      cJSON_AddNumberToObject(sj, "attempts", st->attempts);
      cJSON_AddItemToObject(sj, "input", parsed_or_null(st->input));
      cJSON_AddItemToObject(sj, "output", parsed_or_null(st->output));
      if (st->error)
        cJSON_AddStringToObject(sj, "error", st->error);
      else
        cJSON_AddNullToObject(sj, "error");
      cJSON_AddStringToObject(sj, "started_at", cli_time(st->started_at));
      cJSON_AddStringToObject(sj, "finished_at", cli_time(st->finished_at));
      cJSON_AddNumberToObject(sj, "duration_ms", (double)st->duration_ms);
      cJSON_AddItemToArray(arr, sj);
    }
    cli_print_json(o);
  } else {
    printf("run %lld  recipe %s (version %d)  status %s  attempt %d\n", (long long)r.id,
           r.recipe, r.recipe_version, r.status, r.attempt);
    printf("  event %lld from %s, received %s\n", (long long)ev.id, ev.source,
           cli_time(ev.received_at));
    if (r.last_error) printf("  error: %s\n", r.last_error);
    if (r.next_attempt_at && strcmp(r.status, "retrying") == 0)
      printf("  next attempt: %s\n", cli_time(r.next_attempt_at));
    if (!n) puts("  no step has started yet");
    for (size_t i = 0; i < n; i++) {
      store_step *st = &steps[i];
      printf("  step %d %s: %s, %d attempt%s, %lld ms (started %s, finished %s)\n", st->position,
             st->step_id, st->status, st->attempts, st->attempts == 1 ? "" : "s",
             (long long)st->duration_ms, cli_time(st->started_at), cli_time(st->finished_at));
      if (st->error) printf("    error: %s\n", st->error);
      print_block("input", st->input);
      print_block("output", st->output);
    }
  }
  store_steps_free(steps, n);
  store_event_release(&ev);
  store_run_release(&r);
  return EXIT_OK;
}

static int runs_replay(long long id, store *s) {
  perr e;
  int rc = store_run_replay(s, id, clock_now_ms(), &e);
  if (rc == 1) return cli_fail(EXIT_RUNTIME, "no run with id %lld", id);
  if (rc == 2)
    return cli_fail(EXIT_RUNTIME,
                    "run %lld has not failed; only failed runs (and runs waiting for budget) are "
                    "replayed",
                    id);
  if (rc) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  printf("run %lld queued again from its failed step\n", id);
  return EXIT_OK;
}

int cmd_runs(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv) || argc < 2) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  const char *sub = argv[1];
  int is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0,
      is_replay = strcmp(sub, "replay") == 0;
  if (!is_list && !is_show && !is_replay)
    return cli_fail(EXIT_USAGE, "runs: unknown subcommand '%s' (list, show, replay)", sub);
  long long id = 0;
  int json = 0;
  if (!is_list) {
    for (int i = 2; i < argc; i++) {
      if (strcmp(argv[i], "--json") == 0 && is_show)
        json = 1;
      else if (argv[i][0] == '-' || id)
        return cli_fail(EXIT_USAGE, "runs %s: unexpected argument '%s'", sub, argv[i]);
      else if (!(id = cli_parse_id(argv[i])))
        return cli_fail(EXIT_USAGE, "runs %s: '%s' is not a run id", sub, argv[i]);
    }
    if (!id) return cli_fail(EXIT_USAGE, "runs %s needs a run ID", sub);
  }
  store *s = cli_open_store(g, 0);
  if (!s) return EXIT_RUNTIME;
  int rc = is_list ? runs_list(argc - 1, argv + 1, s)
                   : is_show ? runs_show(id, json, s) : runs_replay(id, s);
  store_close(s);
  return rc;
}
