/*
 * webhook_router: promptd's HTTP server put to work for webhook recipes.
 *
 * One http_server (net/http_server.h) on the engine's loop; each request is
 * routed by its path to the enabled recipes whose trigger is a webhook on
 * that path (looked up in the engine's current recipe set, so imports take
 * effect without a restart), checked, turned into an event
 * (webhook_route.h) and handed to engine_ingest.  The answer waits for the
 * group commit: 202 is sent only once the event and its runs are durable.
 *
 *   404  no enabled recipe on the path        405  method not accepted (Allow)
 *   401  signature check failed               413  body over http.max_body_bytes
 *   400  unparsable body, bad UTF-8           415  unsupported Content-Type
 *   503  queue above http.max_queue (Retry-After), shutting down, store failure
 *   202  {"event_id": N, "runs": K, "duplicate": false}   (true: a redelivery
 *        with a known dedupe key; nothing new was stored)
 *   200  {"challenge": ...} for Slack's url_verification handshake (signed)
 *
 * Several recipes on one path share each event; every one of them that
 * names `verify` must accept the signature, and the first (by name) decides
 * the dedupe key and body mapping.
 *
 * Configuration, section `http:`
 *   listen: 127.0.0.1:8080     max_body_bytes: 1048576   max_header_bytes: 8192
 *   max_connections: 1024      idle_timeout_s: 30         max_queue: 100000
 *   queue_retry_after_s: 5
 */
#ifndef PROMPTD_WEBHOOK_ROUTER_H
#define PROMPTD_WEBHOOK_ROUTER_H

#include "core/config.h"
#include "core/engine.h"
#include "core/err.h"
#include "core/fields.h"

#define WEBHOOK_DEFAULT_LISTEN "127.0.0.1:8080"

extern const field_spec webhook_http_fields[];

typedef struct webhook_router webhook_router;

/* Listens on `listen` (NULL: the config's http.listen, else the default)
 * on the engine's loop -- or, when systemd passed a socket
 * (service_listen_fd(), promptd.socket), on that socket, which the router
 * then owns.  NULL with e set when the address cannot be bound. */
webhook_router *webhook_router_new(engine *en, const config *cfg, const char *listen, perr *e);
int webhook_router_port(const webhook_router *r);
/* 1 when some enabled recipe has a webhook trigger. */
int webhook_router_wanted(const engine *en);
/* Requests waiting for their commit are answered by the engine first
 * (engine_free reports them as not stored), so free the engine before
 * this.  NULL is ignored. */
void webhook_router_free(webhook_router *r);

#endif
