/*
 * yaml_doc: a YAML file read with libyaml into a small node tree that keeps
 * the line and column of every node, so validation can say
 * "recipes/leads.yaml:12:7: ...".  One document per file; anchors/aliases
 * and duplicate keys are refused (both hide mistakes in hand-written files).
 * Scalars stay text: the field table decides whether "7" is a number.
 */
#ifndef PROMPTD_YAML_DOC_H
#define PROMPTD_YAML_DOC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/err.h"

typedef enum { YN_SCALAR, YN_SEQ, YN_MAP } ynode_kind;

typedef struct ynode ynode;
struct ynode {
  ynode_kind kind;
  int line, col;  /* 1-based position of the node's first character */
  char *text;     /* YN_SCALAR: the value, NUL-terminated (may hold NULs: see len) */
  size_t len;
  int plain;      /* YN_SCALAR: unquoted, so it may be a number, bool or null */
  size_t n;       /* YN_SEQ: items; YN_MAP: pairs */
  ynode **items;  /* YN_SEQ: the items; YN_MAP: the values */
  ynode **keys;   /* YN_MAP: the keys (scalars) */
};

/* On error the message is "NAME:LINE:COL: what is wrong". */
int ydoc_load_file(const char *path, ynode **root, perr *e);
int ydoc_load_string(const char *text, size_t len, const char *name, ynode **root, perr *e);
void ynode_free(ynode *n);

/* YN_MAP lookup; NULL when absent or not a map. */
const ynode *ynode_get(const ynode *map, const char *key);
/* "a mapping", "a list", "a string" ... for messages. */
const char *ynode_kind_name(const ynode *n);
/* Converts with the YAML core schema: plain null/~, true/false, integers and
 * floats become JSON literals; everything else a string. NULL on OOM. */
cJSON *ynode_to_json(const ynode *n);

/* Core-schema readings of one plain (unquoted, untagged) scalar, shared by
 * the field tables and conditions so "7", "true" and "~" mean the same
 * everywhere.  Quoted scalars are always text: these return "no".
 *   ynode_is_null: 1 for an empty plain scalar, ~, null, Null, NULL.
 *   ynode_bool:    1 true, 0 false, -1 not a boolean.
 *   ynode_number:  1 with *v when a number (*is_int for integer syntax:
 *                  decimal, 0o octal, 0x hex); .inf and .nan give a
 *                  non-finite *v, an integer too large for a double HUGE_VAL. */
int ynode_is_null(const ynode *n);
int ynode_bool(const ynode *n);
int ynode_number(const ynode *n, double *v, int *is_int);

#endif
