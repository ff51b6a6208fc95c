/* promptd backup: an online, consistent copy of the database. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/store.h"

static const char usage_text[] =
    "usage: promptd backup [--force] [--json] FILE\n"
    "\n"
    "Copies the database (--db) to FILE while a daemon may be running and writing.\n"
    "The copy is one consistent snapshot (SQLite's backup API in a single step: the\n"
    "daemon keeps writing meanwhile; what it commits after the snapshot is not in\n"
    "the copy). It is written to FILE.tmp-XXXXXX beside FILE, checked with\n"
    "SQLite's integrity check, switched to rollback journaling (one self-contained\n"
    "file, no -wal/-shm needed), fsynced and only then renamed to FILE: FILE never\n"
    "holds half a copy, and nothing is left behind on failure. The copy opens with\n"
    "`promptd --db FILE ...` like any promptd database.\n"
    "\n"
    "  --force   replace FILE if it exists (default: refuse)\n"
    "  --json    print {\"file\", \"bytes\", \"pages\", \"page_size\", \"schema_version\",\n"
    "            \"integrity\", \"events\", \"runs\", \"ms\"} instead of a sentence\n"
    "\n"
    "While the copy runs the WAL cannot be checkpointed past its snapshot, so it\n"
    "grows by what the daemon writes meanwhile; the next checkpoint cuts it back.\n"
    "Exit codes: 0 copied and checked, 1 failed (FILE untouched), 2 usage error.\n";

int cmd_backup(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {
      {"force", no_argument, 0, 'f'}, {"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
  int force = 0, json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'f': force = 1; break;
      case 'j': json = 1; break;
      default:
        return cli_fail(EXIT_USAGE, "backup: unknown option or missing value: %s (see promptd backup --help)",
                        argv[optind - 1]);
    }
  }
  if (optind >= argc) return cli_fail(EXIT_USAGE, "backup: which FILE? (see promptd backup --help)");
  if (optind + 1 < argc) return cli_fail(EXIT_USAGE, "backup: unexpected argument '%s'", argv[optind + 1]);
  const char *file = argv[optind];
  if (!*file) return cli_fail(EXIT_USAGE, "backup: FILE is empty");
  store *s = cli_open_store(g, STORE_READONLY);
  if (!s) return EXIT_RUNTIME;
  store_backup_info info;
  perr e;
  int rc = store_backup(s, file, force, &info, &e);
  store_close(s);
  if (rc) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "bytes", (double)info.bytes);
    cJSON_AddNumberToObject(o, "pages", (double)info.pages);
    cJSON_AddNumberToObject(o, "page_size", (double)info.page_size);
    cJSON_AddNumberToObject(o, "schema_version", info.schema_version);
    cJSON_AddStringToObject(o, "integrity", "ok");
    cJSON_AddNumberToObject(o, "events", (double)info.events);
    cJSON_AddNumberToObject(o, "runs", (double)info.runs);
    cJSON_AddNumberToObject(o, "ms", (double)info.ms);
    cli_print_json(o);
  } else {
    printf("copied %s to %s: %lld bytes (%lld pages of %lld), schema version %d, %lld events, "
           "%lld runs, integrity ok, %lld ms\n",
           g->db_path, file, (long long)info.bytes, (long long)info.pages,
           (long long)info.page_size, info.schema_version, (long long)info.events,
           (long long)info.runs, (long long)info.ms);
  }
  return EXIT_OK;
}
