/*
 * cond: the conditions of `when:` filters and `if:` steps.
 *
 *   { path: event.body.email, exists: true }
 *   { path: steps.qualify.score, gte: 7 }
 *   { path: event.subject, regex: "(?i)invoice" }      -- POSIX ERE; (?i) prefix = ignore case
 *   { all: [ ... ] }  { any: [ ... ] }  { not: { ... } }
 *
 * Operators: eq ne lt lte gt gte contains regex exists.  eq/ne compare JSON
 * values (a number never equals a string); lt..gte compare two numbers, or
 * two strings bytewise; contains: substring of a string, or element of an
 * array; a missing path is false for every operator but `exists: false`
 * and `ne`.  Stored as JSON of exactly this shape.
 */
#ifndef PROMPTD_COND_H
#define PROMPTD_COND_H

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/yaml_doc.h"

/* Validates a condition node and builds its JSON form.  Regexes are
 * compiled here so a bad one is an import error.  Errors are
 * "FILE:LINE:COL: WHERE: message". */
int cond_parse(const ynode *n, const char *file, const char *where, cJSON **out, perr *e);

/* 1 true, 0 false. A malformed stored condition evaluates false. */
int cond_eval(const cJSON *c, const cJSON *ctx);

/* Calls fn with every path the condition reads; a non-zero return stops
 * the walk and is returned. */
int cond_paths(const cJSON *c, int (*fn)(void *ud, const char *path), void *ud);

/* Human form for dry runs: "steps.qualify.score >= 7". */
int cond_describe(const cJSON *c, buf *out);

#endif
