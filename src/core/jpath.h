/*
 * jpath: dotted paths into a JSON document, as recipes write them:
 * "event.body.email", "steps.qualify.score", "event.items.0.sku".
 * A segment that is a decimal number indexes an array; any other segment
 * names an object member (exact, case-sensitive).
 */
#ifndef PROMPTD_JPATH_H
#define PROMPTD_JPATH_H

#include <cjson/cJSON.h>

/* The node at path, or NULL when any segment is missing. "" or "." is root. */
const cJSON *jpath_get(const cJSON *root, const char *path);

#endif
