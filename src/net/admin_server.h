/*
 * admin_server: the admin HTTP listener, separate from the webhook server
 * and off unless configured (`admin: { listen: }` or serve --admin-listen).
 *
 *   GET /healthz   200 "ok": the loop answers
 *   GET /readyz    200 "ready" once the engine is started and the
 *                  listeners are bound; 503 "not ready: <reason>" while
 *                  stopping or after a store failure
 *   GET /metrics   Prometheus text format 0.0.4 (metrics_catalog.h)
 *   other paths 404; other methods than GET and HEAD 405 (with Allow)
 *
 * The endpoints are unauthenticated and meant for loopback (the default
 * address when only a port is given).  Answers are rendered into a buffer
 * on the loop and handed to the HTTP server, which sends them without
 * blocking; a scrape costs one pass over the series and a few /proc reads.
 */
#ifndef PROMPTD_NET_ADMIN_SERVER_H
#define PROMPTD_NET_ADMIN_SERVER_H

#include "core/config.h"
#include "core/engine.h"
#include "core/err.h"
#include "core/fields.h"

#define ADMIN_DEFAULT_ADDR "127.0.0.1"

extern const field_spec admin_config_fields[];

typedef struct admin_server admin_server;

/* The address to serve on: flag (serve --admin-listen) over the config's
 * admin.listen; NULL when neither is given (the listener is off). */
const char *admin_listen_address(const config *cfg, const char *flag);

/* listen: "ADDR:PORT", "[IPv6]:PORT" or a bare "PORT" (127.0.0.1); port 0
 * picks a free one (logged as `admin server listening ... port=N`).  NULL
 * with e set on a bad address or a bind error. */
admin_server *admin_server_new(engine *en, const char *listen, perr *e);
int admin_server_port(const admin_server *a);
/* NULL is ignored. */
void admin_server_free(admin_server *a);

#endif
