/*
 * promptd: the command table and the global options.
 *
 * Global options may stand before or after the command name
 * (`promptd --db x.db runs list` = `promptd runs list --db x.db`), so they
 * are taken out of argv here, before the command parses its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"

static const cli_command commands[] = {
    {"serve", "run the daemon in the foreground", cmd_serve},
    {"emit", "inject an event, as a trigger would", cmd_emit},
    {"recipe", "import, list, show, enable, disable, remove, export recipes", cmd_recipe},
    {"runs", "list, show and replay runs", cmd_runs},
    {"status", "is a daemon serving, runs per status, trigger health", cmd_status},
    {"usage", "GPT calls, tokens and cost per recipe and model", cmd_usage},
    {"test", "dry-run a recipe against an event, calling nothing", cmd_test},
    {"template", "render a Mustache template against a JSON context", cmd_template},
    {"mail", "show the event a message file gives and whether filters skip it", cmd_mail},
    {"doctor", "check config, secrets, database and recipes (and, optionally, the network)",
     cmd_doctor},
    {"connectors", "list trigger and action kinds and their fields", cmd_connectors},
    {"demo", "run the example recipes end to end in a temporary database", cmd_demo},
    {"backup", "copy the database to a file while the daemon runs", cmd_backup},
};

static void usage(FILE *out) {
  fputs("usage: promptd [--db PATH] [--config PATH] [--log-level L] [--log-json] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n",
        out);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
  fputs("\nGlobal options (before or after the command):\n"
        "  --db PATH        database (default $STATE_DIRECTORY/promptd.db, else ./promptd.db)\n"
        "  --config PATH    configuration file (YAML; default\n"
        "                   $CONFIGURATION_DIRECTORY/promptd.yaml when that file exists,\n"
        "                   as under systemd: /etc/promptd/promptd.yaml)\n"
        "  --log-level L    debug, info, warn or error (default info)\n"
        "  --log-json       log one JSON object per line instead of logfmt\n"
        "\n"
        "`promptd COMMAND --help` describes a command. Exit codes: 0 ok, 1 runtime error,\n"
        "2 usage error.\n",
        out);
}

/* Removes the global options from argv wherever they stand; returns the new
 * argc, or -1 after printing a usage error. */
static int take_globals(int argc, char **argv, cli_globals *g, char **db_default_out) {
  int out = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--") == 0) {
      while (i < argc) argv[out++] = argv[i++];
      break;
    }
    if (strcmp(a, "--db") == 0 || strncmp(a, "--db=", 5) == 0)
      slot = &g->db_path;
    else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0)
      slot = &g->config_path;
    if (slot) {
      const char *eq = strchr(a, '=');
      if (eq) {
        *slot = eq + 1;
      } else if (i + 1 < argc) {
        *slot = argv[++i];
      } else {
        cli_fail(EXIT_USAGE, "%s needs a value", a);
        return -1;
      }
      continue;
    }
    if (strcmp(a, "--log-level") == 0 || strncmp(a, "--log-level=", 12) == 0) {
      const char *v = strchr(a, '=') ? strchr(a, '=') + 1 : (i + 1 < argc ? argv[++i] : NULL);
      log_level lvl;
      if (!v || log_level_parse(v, &lvl)) {
        cli_fail(EXIT_USAGE, "--log-level takes debug, info, warn or error");
        return -1;
      }
      log_set_level(lvl);
      continue;
    }
    if (strcmp(a, "--log-json") == 0) {
      log_set_json(1);
      continue;
    }
    argv[out++] = argv[i];
  }
  argv[out] = NULL;
  if (!g->db_path) {
    const char *dir = getenv("STATE_DIRECTORY");
    if (dir && *dir) {
      /* systemd may list several directories, colon-separated: use the first. */
      size_t n = strcspn(dir, ":");
      size_t size = n + sizeof "/promptd.db";
      char *p = malloc(size);
      if (!p) return -1;
      snprintf(p, size, "%.*s/promptd.db", (int)n, dir);
      *db_default_out = p;
      g->db_path = p;
    } else {
      g->db_path = "promptd.db";
    }
  }
  return out;
}

/* Under systemd (ConfigurationDirectory=promptd) the configuration is found
 * without --config; elsewhere none is read unless asked for.  Returns the
 * path it chose (malloc'd, the caller frees) or NULL. */
static char *default_config(cli_globals *g) {
  const char *dir = getenv("CONFIGURATION_DIRECTORY");
  if (g->config_path || !dir || !*dir) return NULL;
  size_t n = strcspn(dir, ":");
  size_t size = n + sizeof "/promptd.yaml";
  char *p = malloc(size);
  if (!p) return NULL;
  snprintf(p, size, "%.*s/promptd.yaml", (int)n, dir);
  if (access(p, F_OK) != 0) {
    free(p);
    return NULL;
  }
  g->config_path = p;
  return p;
}

/* A configuration given to any command must be valid, even to commands that
 * use none of it: a typo should never pass silently. */
static int check_config(const cli_globals *g) {
  config c;
  perr e;
  config_init(&c);
  int rc = config_load(&c, g->config_path, &e);
  config_release(&c);
  if (rc) cli_fail(EXIT_RUNTIME, "%s", e.msg);
  return rc;
}

int main(int argc, char **argv) {
  cli_globals g = {0};
  char *db_default = NULL;
  argc = take_globals(argc, argv, &g, &db_default);
  if (argc < 0) return EXIT_USAGE;
  char *config_default = default_config(&g);
  int rc;
  if (argc < 2) {
    usage(stderr);
    rc = EXIT_USAGE;
  } else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
             strcmp(argv[1], "help") == 0) {
    usage(stdout);
    rc = EXIT_OK;
  } else if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    puts("promptd " PROMPTD_VERSION);
    rc = EXIT_OK;
  } else {
    const cli_command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
      if (strcmp(commands[i].name, argv[1]) == 0) cmd = &commands[i];
    if (!cmd) {
      rc = cli_fail(EXIT_USAGE, "unknown command '%s' (see promptd --help)", argv[1]);
    } else if (g.config_path && cmd->fn != cmd_doctor && !cli_wants_help(argc - 1, argv + 1) &&
               check_config(&g)) {
      /* doctor reports a bad configuration as one of its findings */
      rc = EXIT_RUNTIME;
    } else {
      rc = cmd->fn(argc - 1, argv + 1, &g);
    }
  }
  free(db_default);
  free(config_default);
  return rc;
}
