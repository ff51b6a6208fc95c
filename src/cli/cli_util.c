#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/store.h"

#include <cjson/cJSON.h>

int cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
  }
  return 0;
}

int cli_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("promptd: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return code;
}

char *cli_read_file(const char *path, size_t max, size_t *len, perr *e) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    perr_set(e, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  buf b;
  buf_init(&b, max);
  char chunk[65536];
  size_t n;
  int over = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (buf_add(&b, chunk, n)) {
      over = 1;
      break;
    }
  }
  int err = ferror(f);
  if (f != stdin) fclose(f);
  if (over) {
    perr_set(e, "%s is larger than %zu bytes", strcmp(path, "-") == 0 ? "standard input" : path,
             max);
    return NULL;
  }
  if (err) {
    buf_release(&b);
    perr_set(e, "cannot read %s", path);
    return NULL;
  }
  return buf_detach(&b, len);
}

struct store *cli_open_store(const cli_globals *g, unsigned flags) {
  store *s = NULL;
  perr e;
  if (store_open(&s, g->db_path, flags, &e)) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    return NULL;
  }
  return s;
}

void cli_print_json(cJSON *j) {
  char *text = j ? cJSON_Print(j) : NULL;
  if (text) puts(text);
  free(text);
  cJSON_Delete(j);
}

const char *cli_time(long long ms) {
  static char slots[4][40];
  static unsigned next;
  char *out = slots[next++ % 4];
  if (ms <= 0) return "-";
  clock_format_ms(ms, out, sizeof slots[0]);
  return out;
}

long long cli_parse_id(const char *s) {
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return (*end || errno || v <= 0) ? 0 : v;
}

int cli_subcommand_is(int argc, char **argv, const char *cmd, const char *sub) {
  if (argc < 2) {
    cli_fail(EXIT_USAGE, "%s: missing subcommand: %s (see promptd %s --help)", cmd, sub, cmd);
    return 0;
  }
  if (strcmp(argv[1], sub) != 0) {
    cli_fail(EXIT_USAGE, "%s: unknown subcommand '%s' (expected %s)", cmd, argv[1], sub);
    return 0;
  }
  return 1;
}
