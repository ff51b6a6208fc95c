/* promptd status: who serves the database, runs per status, trigger health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/daemon_lock.h"
#include "core/recipe_set.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd status [--json]\n"
    "\n"
    "Whether a daemon is serving this database (its pid), runs per status, the age\n"
    "of the oldest runnable run, and each enabled recipe's trigger and its state.\n"
    "Exit code 0 whether or not a daemon runs; 1 when the database cannot be read.\n";

/* passive | ok | failing | waiting (active, no attempt recorded yet).
 * Failing also when the kind's silence limit has passed since the last
 * success: a poller that stopped polling reports no error. */
static const char *trigger_state(const recipe *r, int health_rc, const store_trigger_health *h) {
  if (r->trigger->flags & TRIGGER_PASSIVE) return "passive";
  if (health_rc != 0) return "waiting";
  if (h->last_error) return "failing";
  long stale = r->trigger->stale_after_s ? r->trigger->stale_after_s(r->trigger_cfg) : 0;
  if (stale > 0 && clock_now_ms() - h->last_success > (int64_t)stale * 1000) return "failing";
  return "ok";
}

int cmd_status(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      return cli_fail(EXIT_USAGE, "status: unexpected argument '%s'", argv[i]);
  }
  store *s = cli_open_store(g, 0);
  if (!s) return EXIT_RUNTIME;
  perr e;
  store_status_count counts[16];
  size_t n = 0;
  int64_t oldest = 0, now = clock_now_ms();
  recipe_set *rs = NULL;
  int has_oldest;
  if (store_runs_count_by_status(s, counts, 16, &n, &e) ||
      (has_oldest = store_runs_oldest_runnable(s, now, &oldest, &e)) < 0 ||
      recipe_set_load(s, &rs, &e)) {
    store_close(s);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  pid_t pid = daemon_lock_owner(g->db_path);
  double age = has_oldest == 0 ? (double)(now - oldest) / 1000.0 : -1;
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "database", g->db_path);
    cJSON *d = cJSON_AddObjectToObject(o, "daemon");
    cJSON_AddBoolToObject(d, "running", pid > 0);
    if (pid > 0)
      cJSON_AddNumberToObject(d, "pid", pid);
    else
      cJSON_AddNullToObject(d, "pid");
    cJSON *runs = cJSON_AddObjectToObject(o, "runs");
    for (size_t i = 0; i < n; i++) cJSON_AddNumberToObject(runs, counts[i].status, (double)counts[i].count);
    if (age >= 0)
      cJSON_AddNumberToObject(o, "oldest_runnable_age_s", age);
    else
      cJSON_AddNullToObject(o, "oldest_runnable_age_s");
    cJSON *trig = cJSON_AddArrayToObject(o, "triggers");
    for (size_t i = 0; i < recipe_set_count(rs); i++) {
      const recipe *r = recipe_set_at(rs, i);
      cJSON *t = cJSON_CreateObject();
      cJSON_AddStringToObject(t, "recipe", r->name);
      cJSON_AddStringToObject(t, "kind", r->trigger->name);
      cJSON_AddStringToObject(t, "source", r->source);
      /* Passive triggers are fed by intake (emit, the webhook server); they
       * have no poll to fail.  Active ones report every attempt. */
      store_trigger_health h;
      int hr = (r->trigger->flags & TRIGGER_PASSIVE) ? 1 : store_trigger_health_get(s, r->source, &h, &e);
      char when[40];
      cJSON_AddStringToObject(t, "state", trigger_state(r, hr, &h));
      if (hr == 0 && h.last_success) {
        clock_format_ms(h.last_success, when, sizeof when);
        cJSON_AddStringToObject(t, "last_success", when);
      } else {
        cJSON_AddNullToObject(t, "last_success");
      }
      if (hr == 0 && h.last_error) {
        cJSON_AddStringToObject(t, "last_error", h.last_error);
        clock_format_ms(h.failing_since, when, sizeof when);
        cJSON_AddStringToObject(t, "failing_since", when);
      }
      if (hr == 0) store_trigger_health_release(&h);
      cJSON_AddItemToArray(trig, t);
    }
    cli_print_json(o);
  } else {
    printf("database: %s\n", g->db_path);
    if (pid > 0)
      printf("daemon:   serving (pid %ld)\n", (long)pid);
    else
      puts("daemon:   not running");
    printf("runs:    ");
    if (!n) printf(" none");
    for (size_t i = 0; i < n; i++)
      printf(" %s %lld%s", counts[i].status, (long long)counts[i].count, i + 1 < n ? "," : "");
    putchar('\n');
    if (age >= 0)
      printf("oldest runnable run: waiting %.1f s\n", age);
    else
      puts("oldest runnable run: none waiting");
    if (!recipe_set_count(rs)) puts("triggers: no enabled recipes");
    for (size_t i = 0; i < recipe_set_count(rs); i++) {
      const recipe *r = recipe_set_at(rs, i);
      if (r->trigger->flags & TRIGGER_PASSIVE) {
        printf("trigger:  %-24s %s (source %s): %s\n", r->name, r->trigger->name, r->source,
               (r->trigger->flags & TRIGGER_HTTP) ? "passive, fed by the daemon's webhook server"
                                                  : "passive, fed by intake");
        continue;
      }
      store_trigger_health h;
      int hr = store_trigger_health_get(s, r->source, &h, &e);
      char ok[40] = "never", since[40] = "";
      if (hr == 0 && h.last_success) clock_format_ms(h.last_success, ok, sizeof ok);
      if (hr == 0 && h.last_error) clock_format_ms(h.failing_since, since, sizeof since);
      printf("trigger:  %-24s %s (source %s): %s, last success %s", r->name, r->trigger->name,
             r->source, trigger_state(r, hr, &h), ok);
      if (hr == 0 && h.last_error) printf(", failing since %s: %s", since, h.last_error);
      putchar('\n');
      if (hr == 0) store_trigger_health_release(&h);
    }
  }
  recipe_set_free(rs);
  store_close(s);
  return EXIT_OK;
}
