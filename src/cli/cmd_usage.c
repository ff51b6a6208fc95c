/* promptd usage: GPT calls, tokens and cost per recipe and model. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd usage [--since YYYY-MM-DD] [--recipe NAME] [--json]\n"
    "\n"
    "GPT calls, prompt/completion/cached tokens and cost (USD, from the price table)\n"
    "per recipe and model, summed over UTC days from --since (default: all).\n"
    "--json prints {\"rows\": [{recipe, model, calls, prompt_tokens, completion_tokens,\n"
    "cached_tokens, cost_usd}, ...], \"total\": {the same without recipe and model}}.\n";

static int valid_day(const char *s) {
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
  int month = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static cJSON *row_json(const store_usage_row *r, int with_names) {
  cJSON *o = cJSON_CreateObject();
  if (with_names) {
    cJSON_AddStringToObject(o, "recipe", r->recipe ? r->recipe : "");
    cJSON_AddStringToObject(o, "model", r->model ? r->model : "");
  }
  cJSON_AddNumberToObject(o, "calls", (double)r->calls);
  cJSON_AddNumberToObject(o, "prompt_tokens", (double)r->prompt_tokens);
  cJSON_AddNumberToObject(o, "completion_tokens", (double)r->completion_tokens);
  cJSON_AddNumberToObject(o, "cached_tokens", (double)r->cached_tokens);
  cJSON_AddNumberToObject(o, "cost_usd", r->cost_usd);
  return o;
}

int cmd_usage(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {{"since", required_argument, 0, 's'},
                                       {"recipe", required_argument, 0, 'r'},
                                       {"json", no_argument, 0, 'j'},
                                       {0, 0, 0, 0}};
  const char *since = NULL, *recipe = NULL;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 's': since = optarg; break;
      case 'r': recipe = optarg; break;
      case 'j': json = 1; break;
      default: return cli_fail(EXIT_USAGE, "usage: unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "usage: unexpected argument '%s'", argv[optind]);
  if (since && !valid_day(since))
    return cli_fail(EXIT_USAGE, "usage: --since takes a date as YYYY-MM-DD, got '%s'", since);
  store *s = cli_open_store(g, 0);
  if (!s) return EXIT_RUNTIME;
  store_usage_row *rows = NULL;
  size_t n = 0;
  perr e;
  if (store_usage_report(s, since, recipe, &rows, &n, &e)) {
    store_close(s);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  store_usage_row total = {0};
  for (size_t i = 0; i < n; i++) {
    total.calls += rows[i].calls;
    total.prompt_tokens += rows[i].prompt_tokens;
    total.completion_tokens += rows[i].completion_tokens;
    total.cached_tokens += rows[i].cached_tokens;
    total.cost_usd += rows[i].cost_usd;
  }
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "rows");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, row_json(&rows[i], 1));
    cJSON_AddItemToObject(o, "total", row_json(&total, 0));
    cli_print_json(o);
  } else {
    printf("%-24s %-24s %7s %12s %12s %12s %11s\n", "RECIPE", "MODEL", "CALLS", "PROMPT",
           "COMPLETION", "CACHED", "COST_USD");
    for (size_t i = 0; i < n; i++)
      printf("%-24s %-24s %7lld %12lld %12lld %12lld %11.4f\n", rows[i].recipe, rows[i].model,
             (long long)rows[i].calls, (long long)rows[i].prompt_tokens,
             (long long)rows[i].completion_tokens, (long long)rows[i].cached_tokens,
             rows[i].cost_usd);
    printf("%-24s %-24s %7lld %12lld %12lld %12lld %11.4f\n", "total", "", (long long)total.calls,
           (long long)total.prompt_tokens, (long long)total.completion_tokens,
           (long long)total.cached_tokens, total.cost_usd);
  }
  store_usage_rows_free(rows, n);
  store_close(s);
  return EXIT_OK;
}
