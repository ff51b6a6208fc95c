/*
 * http_server: promptd's inbound HTTP/1.1 (webhooks, admin), on the one
 * libev loop, through libmicrohttpd in external-epoll mode.
 *
 * Shape
 *   One http_server owns one MHD daemon started with MHD_USE_EPOLL and no
 *   internal thread.  MHD's epoll fd is one ev_io on the loop and MHD's
 *   next deadline is one ev_timer; every wakeup calls MHD_run (which never
 *   blocks) and re-arms the timer.  No threads and no blocking call.
 *   MHD parses requests, enforces the header memory cap, the connection
 *   cap and the idle timeout, and handles keep-alive and pipelining (the
 *   requests of one connection reach the handler one at a time, in order,
 *   each after the previous one was answered).
 *
 * A request's life
 *   The handler sees a request once its whole body has arrived.  It answers
 *   with http_req_reply, then or later from the loop; until then the
 *   connection is suspended (MHD reads nothing more from it).  Everything a
 *   http_req exposes (method, path, headers, query, body) is a copy owned
 *   by the request, readable until http_req_reply, whatever happened to
 *   the connection meanwhile.
 *
 * Async contract (STYLE.md habit 3)
 *   http_server_new either fails now (NULL, perr set, the handler is never
 *   called) or returns a server whose handler runs only from the loop,
 *   never from inside a function of this header.  The handler may reply to
 *   any request, including its own, and may call http_server_free (the
 *   server then finishes tearing down once the handler has returned).
 *
 *   Every http_req handed to the handler must be given back, exactly once,
 *   with http_req_reply (or http_req_reply_error) -- or be left to
 *   http_server_free.  That stays true when the client went away or the
 *   server already answered for the handler (reply_timeout_s): the late
 *   reply is then a cheap no-op that releases the request.
 *
 * Answers the server gives by itself, without calling the handler
 *   413  body over max_body: a declared Content-Length is refused before
 *        any of the body is read (the connection is then closed); a
 *        chunked body is counted as it arrives and refused once complete.
 *        A chunked body still going past twice max_body gets no answer:
 *        the connection is closed.
 *   503  the handler did not answer within reply_timeout_s, or the server
 *        is being freed.
 *   These are JSON, {"error":"..."} with Content-Type application/json.
 *   MHD itself answers malformed requests (400), oversized request lines
 *   or headers (414/431/413, past max_header) and unsupported versions
 *   (505) with its own short bodies, before promptd sees the request.
 *
 * Disconnects
 *   MHD does not watch a suspended connection, so a client that leaves
 *   while its request waits for the handler is noticed when the request is
 *   answered (or times out): the answer goes nowhere and everything is
 *   freed then.  Nothing is ever freed behind the handler's back.
 */
#ifndef PROMPTD_NET_HTTP_SERVER_H
#define PROMPTD_NET_HTTP_SERVER_H

#include <stddef.h>

#include "core/err.h"

struct ev_loop;

typedef struct http_server http_server;
typedef struct http_req http_req; /* one request, from complete body until reply */

/* Zero fields take the defaults. */
typedef struct http_server_opts {
  const char *listen;       /* "ADDR:PORT", IPv4 or [IPv6]:PORT, numeric; port 0 = any free port */
  int listen_fd;            /* > 0: serve this already listening TCP socket instead of binding
                               `listen` (systemd socket activation passes fds from 3 up);
                               the server owns it from the call on, even when the call fails */
  size_t max_body;          /* default 1 MiB; over it the server answers 413 itself */
  size_t max_header;        /* MHD's memory per connection, request line + headers included:
                               default 16 KiB, at least 4 KiB; past it MHD answers 431/414 */
  unsigned max_connections; /* default 1024; further clients wait in the listen backlog */
  unsigned idle_timeout_s;  /* default 30: a connection silent (or slow) this long is dropped;
                               does not run while the handler holds the request */
  unsigned reply_timeout_s; /* default 60: a request the handler has not answered by then gets
                               503 from the server (the handler still owes its reply) */
} http_server_opts;

typedef void (*http_handler_fn)(void *ud, http_req *r);

/* Binds and listens on o->listen (or takes o->listen_fd) and starts serving
 * on loop (which must outlive the server).  NULL with e set on a bad
 * address, a bind error (address in use, permission), a listen_fd that is
 * not a TCP socket, or MHD refusing to start. */
http_server *http_server_new(struct ev_loop *loop, const http_server_opts *o, http_handler_fn h,
                             void *ud, perr *e);

/* The bound port (the one the kernel chose for port 0). */
int http_server_port(const http_server *s);

const char *http_req_method(const http_req *r);
/* URL path without the query, percent-decoded by MHD. */
const char *http_req_path(const http_req *r);
/* First header of that name, case-insensitive; NULL if absent. */
const char *http_req_header(const http_req *r, const char *name);
/* Headers in arrival order, names as the client spelled them. */
void http_req_each_header(const http_req *r,
                          void (*fn)(void *ud, const char *name, const char *value), void *ud);
/* Query arguments in order, percent-decoded; "?flag" gives the value "". */
void http_req_each_query(const http_req *r,
                         void (*fn)(void *ud, const char *name, const char *value), void *ud);
/* The complete body, NUL-terminated ("" and 0 when there is none); *len
 * may be NULL.  Valid until http_req_reply. */
const char *http_req_body(const http_req *r, size_t *len);

/* Answers r: inside the handler or later from the loop.  The body and the
 * headers are copied now.  content_type may be NULL (no Content-Type);
 * extra_headers are "Name: value" strings, NULL-terminated, or NULL (a
 * malformed one is logged and skipped).  A status outside 100..999 becomes
 * 500.  After this call r is gone. */
void http_req_reply(http_req *r, unsigned status, const char *content_type, const char *body,
                    size_t len, const char *const *extra_headers);
/* http_req_reply with the JSON body {"error":"<msg>"}. */
void http_req_reply_error(http_req *r, unsigned status, const char *msg);

/* Requests handed to the handler and not yet given back with
 * http_req_reply (including those the server already answered 503). */
size_t http_server_pending(const http_server *s);
/* Request records alive: pending ones plus those whose connection MHD has
 * not finished with (a body arriving, an answer being sent).  For tests
 * and metrics. */
size_t http_server_requests_alive(const http_server *s);

/* Stops listening, answers every pending request 503 (sent if the socket
 * takes it at once, which is the usual case; otherwise the connection just
 * closes), closes all connections and frees every http_req: pointers the
 * handler's owner still holds are invalid afterwards, and the handler is
 * not called again.  No watcher of the server is active on the loop
 * afterwards.  Called from inside the handler, the teardown finishes when
 * the handler returns.  NULL is ignored. */
void http_server_free(http_server *s);

#endif
