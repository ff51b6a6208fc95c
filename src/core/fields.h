/*
 * fields: declared field tables.  Every configurable component (trigger
 * kind, action kind, the recipe itself, the config file) describes its
 * fields once; the core checks unknown keys, types, bounds, choices and
 * required fields and reports FILE:LINE:COL with the field's path, and the
 * same table prints `promptd connectors` help.  Components add only
 * cross-field checks.
 */
#ifndef PROMPTD_FIELDS_H
#define PROMPTD_FIELDS_H

#include <cjson/cJSON.h>

#include "core/err.h"
#include "core/template.h"
#include "core/yaml_doc.h"

typedef enum {
  FT_STRING,        /* text */
  FT_TEMPLATE,      /* text holding a Mustache template: syntax-checked */
  FT_SECRET,        /* a secret reference: env:NAME, file:/path or cred:NAME */
  FT_INT,           /* integer within [min, max] */
  FT_NUMBER,        /* number within [min, max] */
  FT_BOOL,          /* true / false */
  FT_STRING_LIST,   /* list of text */
  FT_TEMPLATE_LIST, /* list of templates */
  FT_TEMPLATE_MAP,  /* mapping of name -> template (e.g. headers) */
  FT_JSON,          /* any value, kept as JSON (schemas, Block Kit) */
  FT_COND,          /* a condition (see cond.h) */
  FT_OBJECT,        /* a nested mapping checked against `sub` */
  FT_OBJECT_MAP,    /* a mapping of names to mappings, each checked against `sub` */
  FT_OBJECT_LIST,   /* a list of mappings, each checked against `sub` */
} field_type;

enum { FIELD_REQUIRED = 1u << 0 };
/* The caller checks this field's value itself (a recipe's trigger and
 * steps, whose keys are connector names): fields_check only accepts the
 * key, reports it when required and missing, and leaves it out of `out`. */
enum { FIELD_EXTERNAL = 1u << 1 };

typedef struct field_spec field_spec;
struct field_spec {
  const char *name;
  field_type type;
  unsigned flags;
  const char *help;              /* one line: what it is, its default */
  double min, max;               /* FT_INT/FT_NUMBER bounds when min < max */
  const char *const *choices;    /* FT_STRING: allowed values, NULL-terminated */
  const field_spec *sub;         /* FT_OBJECT: its fields */
};

/* Context of one check: where messages point, and who hears of partials. */
typedef struct fields_ctx {
  const char *file;         /* for messages */
  tpl_name_fn on_partial;   /* every partial named by a template field */
  void *partial_ud;
} fields_ctx;

/* Checks the mapping `map` against `tbl` (terminated by a {NULL} row) and
 * builds a JSON object of the typed values.  `where` is the field path for
 * messages ("steps[1].csvfile").  Error format:
 *   FILE:LINE:COL: WHERE.FIELD: expected an integer from 1 to 10, got "high"
 */
int fields_check(const field_spec *tbl, const ynode *map, const fields_ctx *cx,
                 const char *where, cJSON **out, perr *e);

/* "an integer", "a template string", ... for help and messages. */
const char *field_type_name(field_type t);

/* Checks one value against one row (f->name is not used; `path` is the
 * full field path for messages) and builds its JSON.  For callers whose
 * mapping mixes declared fields with other keys (a recipe step). */
int fields_check_value(const field_spec *f, const ynode *v, const fields_ctx *cx, const char *path,
                       cJSON **out, perr *e);

/* The candidate closest to key by edit distance when the distance is at
 * most 2 (a likely typo), else NULL.  names is NULL-terminated. */
const char *fields_did_you_mean(const char *key, const char *const *names);

/* How a value is shown after "got": a quoted, shortened string, a plain
 * number or boolean as written, or "a list"/"a mapping"/"null". */
void fields_describe_value(const ynode *v, char *out, size_t size);

/* Calls fn for every secret reference in obj, a JSON object built by
 * fields_check against tbl, with the field path ("oauth2.client_secret",
 * "accounts.support.password") and the reference.  For `promptd doctor`,
 * which resolves each without printing it. */
typedef void (*fields_secret_fn)(void *ud, const char *path, const char *ref);
void fields_each_secret(const field_spec *tbl, const cJSON *obj, const char *where,
                        fields_secret_fn fn, void *ud);

#endif
