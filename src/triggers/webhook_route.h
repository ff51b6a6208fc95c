/*
 * webhook_route: what a webhook request becomes, without any I/O: the
 * method check, the body parsed by its Content-Type, the dedupe key and
 * the event payload.  The HTTP glue (webhook_router.c) calls it; the fuzz
 * target (tests/fuzz/fuzz_webhook.c) drives it with arbitrary requests.
 *
 * The event a request becomes:
 *   {
 *     "method": "POST", "path": "/hooks/leads",
 *     "headers": { lower-cased name: value, ... },   (credentials left out)
 *     "query":   { name: value, ... },                (repeated names: a list)
 *     "body":    JSON value | form object | text | null,
 *     "fields":  { ... }                              (map: typeform only)
 *   }
 *
 * Body by Content-Type (parameters other than charset ignored; a charset
 * other than utf-8 / us-ascii is 415):
 *   application/json, application/<x>+json    any JSON value (400 if not JSON)
 *   application/x-www-form-urlencoded         object, values percent-decoded,
 *                                             `+` as space, repeats as lists
 *   text/<any>                                the text as a string
 *   none, with an empty body                  null
 *   anything else                             415
 * Text in any form must be valid UTF-8 (400 otherwise): events are JSON.
 * JSON bodies may nest WEBHOOK_BODY_MAX_DEPTH levels.  rq->body must be
 * NUL-terminated (the HTTP server's bodies are); a text body ends at the
 * first NUL, so a NUL byte anywhere in a body is refused.
 *
 * Authorization, Proxy-Authorization and Cookie headers are left out of the
 * event: they are credentials, and events are stored and shown.
 */
#ifndef PROMPTD_WEBHOOK_ROUTE_H
#define PROMPTD_WEBHOOK_ROUTE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define WEBHOOK_SOURCE_PREFIX "webhook:"
/* A JSON body deeper than this is refused (400): the event adds a level
 * and must stay within what cJSON parses back (CJSON_NESTING_LIMIT). */
#define WEBHOOK_BODY_MAX_DEPTH 512
/* Event source names are at most 64 characters. */
#define WEBHOOK_PATH_MAX (64 - (int)(sizeof WEBHOOK_SOURCE_PREFIX - 1))

typedef struct webhook_kv {
  const char *name, *value;
} webhook_kv;

typedef struct webhook_request {
  const char *method, *path;
  const webhook_kv *headers; /* as received */
  size_t nheaders;
  const webhook_kv *query;   /* percent-decoded */
  size_t nquery;
  const char *body;
  size_t body_len;
} webhook_request;

/* The value of the first header called name (case-insensitive), or NULL. */
const char *webhook_header(const webhook_request *rq, const char *name);

/* 1 when the trigger configuration `cfg` accepts the method. */
int webhook_method_allowed(const cJSON *cfg, const char *method);
/* "POST, GET" for an Allow header. */
void webhook_allow_list(const cJSON *cfg, char *out, size_t len);

/* Builds the event of a request for a trigger configuration.  Returns 0
 * with *payload (malloc'd JSON text of *len bytes) and *dedupe (malloc'd
 * key, or NULL when the recipe names none or the request lacks it); or an
 * HTTP status (400, 415, 500) with a one-line reason in why. */
int webhook_event_build(const cJSON *cfg, const webhook_request *rq, char **payload, size_t *len,
                        char **dedupe, char *why, size_t why_len);

/* The same, also handing over the event itself (*event, the parse of
 * *payload, for engine_ingest_parsed); the caller frees all three. */
int webhook_event_make(const cJSON *cfg, const webhook_request *rq, cJSON **event, char **payload,
                       size_t *len, char **dedupe, char *why, size_t why_len);

#endif
