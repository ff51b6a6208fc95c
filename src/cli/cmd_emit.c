/* promptd emit: inject an event through the same intake triggers use. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/intake.h"
#include "core/recipe_set.h"

static const char usage_text[] =
    "usage: promptd emit --source NAME --event FILE|- [--dedupe KEY] [--json]\n"
    "\n"
    "Stores the event (a JSON object, available to templates as event.*) and one\n"
    "run per enabled recipe whose trigger is `event: { source: NAME }` and whose\n"
    "`when:` filter matches. Works whether or not a daemon is serving the\n"
    "database; a running daemon starts the new runs within a second.\n"
    "\n"
    "  --source NAME   event source the recipes' triggers name\n"
    "  --event FILE    the event JSON; - reads standard input\n"
    "  --dedupe KEY    deduplication key: an event with a key already stored for\n"
    "                  this source is not stored again (default: a fresh key)\n"
    "  --json          print {\"event_id\", \"created\", \"runs\"}\n";

int cmd_emit(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {{"source", required_argument, 0, 's'},
                                       {"event", required_argument, 0, 'e'},
                                       {"dedupe", required_argument, 0, 'd'},
                                       {"json", no_argument, 0, 'j'},
                                       {0, 0, 0, 0}};
  const char *source = NULL, *file = NULL, *dedupe = NULL;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 's': source = optarg; break;
      case 'e': file = optarg; break;
      case 'd': dedupe = optarg; break;
      case 'j': json = 1; break;
      default: return cli_fail(EXIT_USAGE, "emit: unknown option or missing value: %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "emit: unexpected argument '%s'", argv[optind]);
  if (!source || !file) return cli_fail(EXIT_USAGE, "emit needs --source NAME and --event FILE|-");

  config cfg;
  config_init(&cfg);
  perr e;
  if (config_load(&cfg, g->config_path, &e)) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  size_t max = cfg.engine.max_event_bytes, len = 0;
  config_release(&cfg);
  char *payload = cli_read_file(file, max, &len, &e);
  if (!payload) return cli_fail(EXIT_RUNTIME, "event refused: %s", e.msg);
  if (intake_check_payload(payload, len, max, &e)) {
    free(payload);
    return cli_fail(EXIT_RUNTIME, "event refused: %s", e.msg);
  }
  store *s = cli_open_store(g, 0);
  if (!s) {
    free(payload);
    return EXIT_RUNTIME;
  }
  recipe_set *rs = NULL;
  intake_result r;
  int rc = EXIT_RUNTIME;
  if (recipe_set_load(s, &rs, &e) || store_begin(s, &e)) goto out;
  int irc = intake_event(s, rs, source, dedupe, payload, len, max, clock_now_ms(), &r, &e);
  if (irc == INTAKE_REFUSED) perr_prefix(&e, "event refused");
  if (irc) {
    store_rollback(s);
    goto out;
  }
  if (store_commit(s, &e)) goto out;
  rc = EXIT_OK;
  if (json) {
    printf("{\"event_id\": %lld, \"created\": %s, \"runs\": %d}\n", (long long)r.event_id,
           r.created ? "true" : "false", r.runs);
  } else if (r.created) {
    printf("event %lld stored; %d run%s queued\n", (long long)r.event_id, r.runs,
           r.runs == 1 ? "" : "s");
  } else {
    printf("event %lld was already stored with this dedupe key; nothing added\n",
           (long long)r.event_id);
  }
out:
  if (rc) cli_fail(rc, "%s", e.msg);
  recipe_set_free(rs);
  store_close(s);
  free(payload);
  return rc;
}
