/*
 * cli: the subcommands of the promptd binary.
 *
 * main.c parses the global options (--db, --config, --log-level,
 * --log-json), accepted before or after the command name, removes them
 * from argv, and calls the command with argv[0] = the command name.
 *
 * Exit codes, the same for every command (README "Exit codes"):
 *   0 ok, 1 runtime error (bad input data, store trouble, a failed check),
 *   2 usage error (unknown command or option, missing argument).
 */
#ifndef PROMPTD_CLI_H
#define PROMPTD_CLI_H

#include <stddef.h>
#include <stdio.h>

struct perr;
struct store;
struct cJSON;

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct cli_globals {
  const char *db_path;      /* --db, else $STATE_DIRECTORY/promptd.db, else ./promptd.db */
  const char *config_path;  /* --config, or NULL */
} cli_globals;

typedef int (*cli_fn)(int argc, char **argv, const cli_globals *g);

typedef struct cli_command {
  const char *name;
  const char *summary;
  cli_fn fn;
} cli_command;

int cmd_serve(int argc, char **argv, const cli_globals *g);
int cmd_recipe(int argc, char **argv, const cli_globals *g);
int cmd_runs(int argc, char **argv, const cli_globals *g);
int cmd_emit(int argc, char **argv, const cli_globals *g);
int cmd_status(int argc, char **argv, const cli_globals *g);
int cmd_test(int argc, char **argv, const cli_globals *g);
int cmd_template(int argc, char **argv, const cli_globals *g);
int cmd_demo(int argc, char **argv, const cli_globals *g);
int cmd_connectors(int argc, char **argv, const cli_globals *g);
int cmd_usage(int argc, char **argv, const cli_globals *g);
int cmd_mail(int argc, char **argv, const cli_globals *g);
int cmd_backup(int argc, char **argv, const cli_globals *g);
int cmd_doctor(int argc, char **argv, const cli_globals *g);

/* True when argv holds -h or --help; commands print their usage and exit 0. */
int cli_wants_help(int argc, char **argv);
/* Prints "promptd: " + message to stderr; returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads a whole file ("-" = stdin) up to max bytes; NULL with e set. */
char *cli_read_file(const char *path, size_t max, size_t *len, struct perr *e);

/* Opens the store at g->db_path, printing the error. NULL on failure. */
struct store *cli_open_store(const cli_globals *g, unsigned flags);
/* Prints j (pretty) and a newline to stdout, then frees it. */
void cli_print_json(struct cJSON *j);
/* Milliseconds since the epoch as RFC 3339 UTC into a static slot (4). */
const char *cli_time(long long ms);
/* Parses a positive decimal id; 0 on bad input. */
long long cli_parse_id(const char *s);

/* For commands with a single subcommand: 1 when argv[1] is sub; else 0
 * after saying what was expected (the caller exits EXIT_USAGE). */
int cli_subcommand_is(int argc, char **argv, const char *cmd, const char *sub);

#endif
