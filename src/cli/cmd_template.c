/*
 * promptd template render: renders one Mustache template file against a
 * JSON context, so users can try a template before a recipe uses it.
 *
 * The output is exactly the rendered bytes, with nothing added, so the
 * official spec runs through this command unchanged and `--escape none`
 * shows what a prompt would receive.  Partials come from NAME.mustache
 * files in --partials DIR, read on first use and kept until the render
 * ends (the engine needs their text to stay valid for the whole call).  A
 * missing partial file renders as nothing, as the spec says; a file that
 * exists but cannot be read is an error rather than a silent blank.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/template.h"

#include "cli/cli.h"

/* Templates are human-written; a context may carry a whole document. */
#define MAX_TEMPLATE_BYTES ((size_t)1 << 20)
#define MAX_CONTEXT_BYTES ((size_t)16 << 20)

static const char usage_text[] =
    "usage: promptd template render TEMPLATE_FILE --context JSON_FILE [--partials DIR]\n"
    "                               [--escape html|none|json]\n"
    "\n"
    "Renders a Mustache template against a JSON context and prints exactly the\n"
    "result (no newline is added). TEMPLATE_FILE or JSON_FILE may be - for\n"
    "standard input.\n"
    "\n"
    "  --context FILE   the JSON value the template's names are looked up in\n"
    "  --partials DIR   where {{> NAME}} finds DIR/NAME.mustache (a missing file\n"
    "                   renders as nothing, as in standard Mustache)\n"
    "  --escape MODE    how {{name}} escapes values: html (default, standard\n"
    "                   Mustache), none (as a prompt or plain text receives it),\n"
    "                   json (as the inside of a JSON string); {{{name}}} never\n"
    "                   escapes\n"
    "\n"
    "Exit codes: 0 ok, 1 unreadable file, bad JSON or template error, 2 usage error.\n";

typedef struct partial_file {
  struct partial_file *next;
  char *name;
  char *text;
  size_t len;
} partial_file;

typedef struct partial_dir {
  const char *dir;
  partial_file *files;
  int failed; /* err holds why; the render's result is discarded */
  perr err;
} partial_dir;

static void partial_dir_release(partial_dir *d) {
  for (partial_file *f = d->files, *next; f; f = next) {
    next = f->next;
    free(f->name);
    free(f->text);
    free(f);
  }
  d->files = NULL;
}

/* A partial name must stay inside DIR: no absolute path, no "..". */
static int name_stays_inside(const char *name) {
  if (name[0] == '/') return 0;
  for (const char *p = name; *p;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
    p += n + (slash ? 1 : 0);
  }
  return 1;
}

static const char *load_partial(void *ud, const char *name, size_t *len) {
  partial_dir *d = ud;
  if (d->failed) return NULL;
  for (partial_file *f = d->files; f; f = f->next) {
    if (strcmp(f->name, name) == 0) {
      *len = f->len;
      return f->text;
    }
  }
  if (!name_stays_inside(name)) {
    d->failed = 1;
    perr_set(&d->err, "partial name '%s' points outside %s", name, d->dir);
    return NULL;
  }

  buf path;
  buf_init(&path, BUF_UNLIMITED);
  if (buf_printf(&path, "%s/%s.mustache", d->dir, name)) {
    d->failed = 1;
    perr_set(&d->err, "out of memory");
    return NULL;
  }
  struct stat st;
  if (stat(path.data, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    buf_release(&path);
    return NULL;
  }
  partial_file *f = calloc(1, sizeof *f);
  if (!f || !(f->name = strdup(name))) {
    free(f);
    buf_release(&path);
    d->failed = 1;
    perr_set(&d->err, "out of memory");
    return NULL;
  }
  f->text = cli_read_file(path.data, MAX_TEMPLATE_BYTES, &f->len, &d->err);
  buf_release(&path);
  if (!f->text) {
    free(f->name);
    free(f);
    d->failed = 1;
    perr_prefix(&d->err, "partial '%s'", name);
    return NULL;
  }
  f->next = d->files;
  d->files = f;
  *len = f->len;
  return f->text;
}

/* Line and column (1-based) of offset at in text, for JSON errors. */
static void text_position(const char *text, size_t at, size_t *line, size_t *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < at; i++) {
    if (text[i] == '\n') {
      ++*line;
      *col = 1;
    } else {
      ++*col;
    }
  }
}

static cJSON *read_context(const char *path, perr *e) {
  size_t len = 0;
  char *text = cli_read_file(path, MAX_CONTEXT_BYTES, &len, e);
  if (!text) return NULL;
  const char *end = NULL;
  cJSON *ctx = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (ctx && end) {
    while (end < text + len && *end && strchr(" \t\r\n", *end)) end++;
    if (end < text + len) {
      cJSON_Delete(ctx);
      ctx = NULL; /* trailing bytes after the value */
    }
  }
  if (!ctx) {
    size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
    size_t line, col;
    text_position(text, at, &line, &col);
    perr_set(e, "%s: invalid JSON at line %zu, column %zu", strcmp(path, "-") ? path : "stdin",
             line, col);
  }
  free(text);
  return ctx;
}

static int render(const char *tpl_path, const char *ctx_path, const char *partials,
                  tpl_escape esc) {
  perr e;
  size_t tlen = 0;
  char *tpl = cli_read_file(tpl_path, MAX_TEMPLATE_BYTES, &tlen, &e);
  if (!tpl) return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  cJSON *ctx = read_context(ctx_path, &e);
  if (!ctx) {
    free(tpl);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }

  partial_dir pd = {.dir = partials};
  tpl_opts o = {.escape = esc, .partial = partials ? load_partial : NULL, .partial_ud = &pd};
  buf out;
  buf_init(&out, BUF_UNLIMITED);
  int r = tpl_render(tpl, tlen, ctx, &o, &out, &e);
  int rc = EXIT_OK;
  const char *shown = strcmp(tpl_path, "-") ? tpl_path : "stdin";
  if (pd.failed) {
    rc = cli_fail(EXIT_RUNTIME, "%s: %s", shown, pd.err.msg);
  } else if (r) {
    rc = cli_fail(EXIT_RUNTIME, "%s: %s", shown, e.msg);
  } else if ((out.len && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout)) {
    rc = cli_fail(EXIT_RUNTIME, "cannot write to standard output: %s", strerror(errno));
  }
  buf_release(&out);
  partial_dir_release(&pd);
  cJSON_Delete(ctx);
  free(tpl);
  return rc;
}

int cmd_template(int argc, char **argv, const cli_globals *g) {
  (void)g; /* rendering touches no database */
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  if (!cli_subcommand_is(argc, argv, "template", "render")) return EXIT_USAGE;

  static const struct option opts[] = {{"context", required_argument, 0, 'c'},
                                       {"partials", required_argument, 0, 'p'},
                                       {"escape", required_argument, 0, 'e'},
                                       {0, 0, 0, 0}};
  const char *ctx_path = NULL, *partials = NULL, *escape = "html";
  /* Parse "render ..." as its own command line: argv[1] is getopt's argv[0]. */
  int sub_argc = argc - 1;
  char **sub_argv = argv + 1;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(sub_argc, sub_argv, ":", opts, NULL)) != -1) {
    switch (c) {
    case 'c': ctx_path = optarg; break;
    case 'p': partials = optarg; break;
    case 'e': escape = optarg; break;
    case ':':
      return cli_fail(EXIT_USAGE, "template render: %s needs a value", sub_argv[optind - 1]);
    default:
      return cli_fail(EXIT_USAGE, "template render: unknown option '%s'", sub_argv[optind - 1]);
    }
  }
  if (optind >= sub_argc)
    return cli_fail(EXIT_USAGE, "template render: missing TEMPLATE_FILE (see --help)");
  if (sub_argc - optind > 1)
    return cli_fail(EXIT_USAGE, "template render: unexpected argument '%s'", sub_argv[optind + 1]);
  const char *tpl_path = sub_argv[optind];
  if (!ctx_path) return cli_fail(EXIT_USAGE, "template render: missing --context JSON_FILE");
  if (strcmp(tpl_path, "-") == 0 && strcmp(ctx_path, "-") == 0)
    return cli_fail(EXIT_USAGE, "template render: only one of TEMPLATE_FILE and --context can be -");

  tpl_escape esc;
  if (strcmp(escape, "html") == 0)
    esc = TPL_ESCAPE_HTML;
  else if (strcmp(escape, "none") == 0)
    esc = TPL_ESCAPE_NONE;
  else if (strcmp(escape, "json") == 0)
    esc = TPL_ESCAPE_JSON;
  else
    return cli_fail(EXIT_USAGE, "template render: --escape takes html, none or json, not '%s'",
                    escape);
  return render(tpl_path, ctx_path, partials, esc);
}
