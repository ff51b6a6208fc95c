/*
 * template: Mustache (https://mustache.github.io/mustache.5.html) over cJSON.
 *
 * Supported: escaped {{x}} and raw {{{x}}} / {{& x}} variables, dotted names,
 * implicit iterator {{.}}, sections, inverted sections, comments, set
 * delimiters, partials with standalone-line indentation, and the standalone
 * tag whitespace rules of the official spec (which the suite runs verbatim).
 * Lambdas are not supported (there is no code in a recipe).
 *
 * Escaping depends on where the text goes (tpl_escape):
 *   HTML  standard Mustache: & < > " escaped (the spec's default),
 *   NONE  prompts and plain text,
 *   JSON  the text lands inside a JSON string: \" \\ control chars escaped.
 * Raw tags never escape.
 *
 * Values: strings as is; numbers in shortest round-trip form (integers with
 * no decimal point); true/false; null and missing names as ""; objects and
 * arrays as compact JSON, so a prompt can carry a whole sub-document.
 *
 * Partials are looked up through a callback; nesting is bounded by
 * max_depth (default 16) so a recursive partial cannot run away, and output
 * by max_output (default 1 MiB).
 */
#ifndef PROMPTD_TEMPLATE_H
#define PROMPTD_TEMPLATE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum { TPL_ESCAPE_HTML, TPL_ESCAPE_NONE, TPL_ESCAPE_JSON } tpl_escape;

/* Returns the partial's text (not owned by the caller; must stay valid for
 * the render call) and its length, or NULL when there is no such partial
 * (rendered as empty, per the spec). */
typedef const char *(*tpl_partial_fn)(void *ud, const char *name, size_t *len);

typedef struct tpl_opts {
  tpl_escape escape;
  tpl_partial_fn partial; /* may be NULL: every partial is empty */
  void *partial_ud;
  size_t max_output;      /* 0: 1 MiB */
  int max_depth;          /* 0: 16 */
} tpl_opts;

/* Renders src with ctx as the root context, appending to out (whose cap
 * also applies). On error (syntax, caps) returns -1 with a message naming
 * the line and column in src, e.g. "line 3, column 5: unclosed tag '{{'". */
int tpl_render(const char *src, size_t len, const cJSON *ctx, const tpl_opts *o, buf *out,
               perr *e);

/* Called with each partial name a template refers to. */
typedef int (*tpl_name_fn)(void *ud, const char *name);

/* Syntax check only: unclosed tags, unbalanced or mismatched sections, bad
 * delimiters. Reports every partial name through on_partial (may be NULL);
 * a non-zero return from it stops the check with that error. */
int tpl_check(const char *src, size_t len, tpl_name_fn on_partial, void *ud, perr *e);

/* Convenience: render a NUL-terminated template into a new string. */
char *tpl_render_str(const char *src, const cJSON *ctx, const tpl_opts *o, perr *e);

#endif
