/*
 * http_server: libmicrohttpd in external-epoll mode on libev (see
 * http_server.h for the contract).  Wiring after libmicrohttpd's
 * src/examples/suspend_resume_epoll.c, with MHD's epoll fd watched by the
 * loop instead of a private epoll_wait.
 *
 * Where control comes from
 *   io_cb, timer_cb   libev callbacks: drive() runs MHD_run (epoll_wait
 *             with a zero timeout inside MHD, so it never blocks) and then
 *             re-arms the one ev_timer from MHD_get_timeout.  MHD connection
 *             sockets are edge-triggered inside MHD's epoll set; MHD asks for
 *             a 0 ms timeout whenever it left work behind, so honouring
 *             MHD_get_timeout is what keeps nothing stuck.
 *   on_request       MHD's access handler, only from inside MHD_run.  The
 *             first call (headers complete) creates the http_req, calls with
 *             data append to its capped body, the last call (body complete)
 *             hands it to the handler -- and after a resume, queues the
 *             staged answer.
 *   on_completed     MHD is done with a request (answered, client gone,
 *             timed out, daemon stopping): MHD's side lets go of it.
 *   deadline_cb      per-request ev_timer: the handler took longer than
 *             reply_timeout_s.
 *
 * Two holders, one free
 *   A http_req is referenced by MHD (r->conn != NULL, the request's
 *   req_cls) and, once handed over, by the handler (r->held, and then it is
 *   in s->pending).  Each side lets go on its own -- MHD in on_completed,
 *   the handler in http_req_reply -- and whichever lets go last frees it
 *   (req_release).  So a client that vanished while its request was
 *   suspended costs nothing special: MHD lets go once the connection is
 *   resumed and found closed, the late reply lets go of the rest, in either
 *   order, and neither can free what the other still uses.
 *
 * A request's states (r->state) and the function making each transition
 *
 *   (none)    -> READING    on_request, first call (headers complete)
 *   READING   -> ANSWERED   on_request: 413 (Content-Length or counted body
 *                           over the cap) or 503 (closing), via answer_now
 *   READING   -> HANDLER    on_request, body complete: handoff
 *   HANDLER   -> STAGED     http_req_reply inside the handler
 *   STAGED    -> ANSWERED   handoff, once the handler has returned
 *   HANDLER   -> SUSPENDED  handoff, the handler returned without a reply
 *   SUSPENDED -> RESUMING   http_req_reply, deadline_cb (503) or
 *                           server_destroy (503): staged + MHD_resume_connection
 *   RESUMING  -> ANSWERED   on_request, called again by MHD after the resume
 *   any       -> (MHD lets go)  on_completed
 *
 *   STAGED and RESUMING hold an MHD_Response in r->resp until on_request
 *   queues it; on_completed drops whatever is still staged.  MHD 0.9.75
 *   only accepts a response from inside its access handler at a request
 *   boundary, hence resume + on_request for answers given from outside.
 *   Suspending costs two epoll_ctl per request (MHD takes the socket out of
 *   its epoll set and puts it back on resume).
 *
 * Re-entrancy
 *   The handler runs inside MHD_run.  s->depth counts drive() frames on the
 *   stack; http_server_free called inside one only marks the server, and
 *   the outermost drive() finishes the teardown once MHD_run has returned
 *   (MHD_stop_daemon must not run inside MHD_run).  Once closing, the
 *   handler is never called again: new requests get 503 from the server.
 *
 * MHD_USE_TURBO
 *   On: MHD reads and writes optimistically instead of first asking epoll,
 *   puts a new connection into its epoll set only once a read would block,
 *   and closes without shutdown().  Counted with strace for one request per
 *   connection (the usual webhook sender): accept4, recvfrom, setsockopt,
 *   sendmsg, close -- 5 syscalls instead of 8 (two epoll_ctl and a shutdown
 *   saved).  Keep-alive traffic costs the same either way.  The price is the
 *   missing shutdown(): a connection closed with client data still unread
 *   (the 413 for an announced oversized body) may end in a reset; MHD
 *   0.9.75 has no lingering close, so that is a risk with or without it.
 */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

#define DEFAULT_MAX_BODY ((size_t)1 << 20)
#define DEFAULT_MAX_HEADER ((size_t)16 << 10)
/* Below this MHD cannot even hold a short request plus its answer's head. */
#define MIN_MAX_HEADER ((size_t)4 << 10)
#define DEFAULT_MAX_CONNECTIONS 1024u
#define DEFAULT_IDLE_TIMEOUT_S 30u
#define DEFAULT_REPLY_TIMEOUT_S 60u
/* MHD_run passes at teardown to push out the 503s: each handles what is
 * ready at once and never blocks; a stalled client simply gets dropped. */
#define TEARDOWN_RUNS 8

enum req_state { REQ_READING, REQ_HANDLER, REQ_STAGED, REQ_SUSPENDED, REQ_RESUMING, REQ_ANSWERED };

struct http_req {
  http_server *s;
  struct MHD_Connection *conn; /* MHD's hold: NULL once on_completed ran */
  int held;                    /* the handler's hold: in s->pending until http_req_reply */
  enum req_state state;
  /* method\0path\0, then name\0value\0 pairs: headers up to query_off,
   * query arguments after it. */
  buf meta;
  size_t path_off, hdr_off, query_off;
  buf body;          /* capped at max_body */
  uint64_t received; /* body bytes seen, kept or not */
  int over_cap;
  struct MHD_Response *resp; /* STAGED / RESUMING: the answer to queue */
  unsigned status;
  ev_timer deadline;            /* SUSPENDED only */
  struct http_req *prev, *next; /* s->pending */
};

struct http_server {
  struct ev_loop *loop;
  struct MHD_Daemon *d;
  ev_io io;       /* MHD's epoll fd */
  ev_timer timer; /* MHD's next deadline, or 0 s after a resume */
  http_handler_fn handler;
  void *ud;
  size_t max_body;
  size_t max_header;
  double reply_timeout;
  int port;
  http_req *pending;
  size_t npending;
  size_t alive;
  int depth;      /* drive() frames on the stack */
  int closing;    /* http_server_free has begun: the handler is not called again */
  int free_later; /* http_server_free ran at depth > 0 */
  int kick;       /* a connection was resumed during MHD_run: run again soon */
  int starting;   /* inside MHD_start_daemon: keep MHD's message for perr */
  char start_err[256];
};

/* ---- requests ------------------------------------------------------------ */

static void pending_link(http_server *s, http_req *r) {
  r->prev = NULL;
  r->next = s->pending;
  if (s->pending) s->pending->prev = r;
  s->pending = r;
  s->npending++;
  r->held = 1;
}

static void pending_unlink(http_server *s, http_req *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    s->pending = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  s->npending--;
  r->held = 0;
}

static void req_drop_staged(http_req *r) {
  if (r->resp) MHD_destroy_response(r->resp);
  r->resp = NULL;
}

static void req_free(http_req *r) {
  http_server *s = r->s;
  ev_timer_stop(s->loop, &r->deadline);
  req_drop_staged(r);
  buf_release(&r->meta);
  buf_release(&r->body);
  s->alive--;
  free(r);
}

/* Frees r once neither MHD nor the handler holds it. */
static void req_release(http_req *r) {
  if (!r->conn && !r->held) req_free(r);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
  (void)kind;
  http_req *r = cls;
  /* "?flag" has no value; an empty string reads better than NULL. */
  if (!value) value = "";
  if (buf_add(&r->meta, key, strlen(key) + 1) || buf_add(&r->meta, value, strlen(value) + 1))
    return MHD_NO;
  return MHD_YES;
}

/* Copies what the handler may read, so it stays readable whatever MHD
 * does with the connection's memory pool meanwhile. */
static http_req *req_new(http_server *s, struct MHD_Connection *conn, const char *url,
                         const char *method) {
  http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->s = s;
  r->conn = conn;
  r->state = REQ_READING;
  ev_timer_init(&r->deadline, deadline_cb, s->reply_timeout, 0.);
  r->deadline.data = r;
  /* MHD's pool (max_header) already bounds the head; the cap only guards
   * against that assumption breaking. */
  buf_init(&r->meta, s->max_header * 2 + 1024);
  buf_init(&r->body, s->max_body);
  s->alive++;
  if (buf_add(&r->meta, method, strlen(method) + 1)) goto fail;
  r->path_off = r->meta.len;
  if (buf_add(&r->meta, url, strlen(url) + 1)) goto fail;
  r->hdr_off = r->meta.len;
  MHD_get_connection_values(conn, MHD_HEADER_KIND, add_pair, r);
  r->query_off = r->meta.len;
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_pair, r);
  if (r->meta.failed) goto fail;
  return r;
fail:
  log_warn("http request dropped: out of memory", "method=%s", log_q(method));
  r->conn = NULL;
  req_free(r);
  return NULL;
}

/* ---- responses ----------------------------------------------------------- */

/* {"error":"<msg>"} with msg escaped for JSON. */
static int json_error_body(buf *b, const char *msg) {
  static const char hex[] = "0123456789abcdef";
  if (!msg) msg = "";
  int rc = buf_adds(b, "{\"error\":\"");
  for (const unsigned char *p = (const unsigned char *)msg; !rc && *p; p++) {
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      rc = buf_add(b, esc, 2);
    } else if (*p < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
      rc = buf_add(b, esc, sizeof esc);
    } else {
      rc = buf_addc(b, (char)*p);
    }
  }
  if (!rc) rc = buf_adds(b, "\"}");
  return rc;
}

/* Adds one "Name: value" string; 0 when added. */
static int add_extra_header(struct MHD_Response *resp, const char *line) {
  const char *colon = strchr(line, ':');
  if (!colon || colon == line) return -1;
  size_t nlen = (size_t)(colon - line);
  for (size_t i = 0; i < nlen; i++)
    if (line[i] == ' ' || line[i] == '\t') return -1;
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  size_t vlen = strlen(v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
  char *name = mem_dup_str(line, nlen);
  char *value = mem_dup_str(v, vlen);
  int rc = -1;
  if (name && value && MHD_add_response_header(resp, name, value) == MHD_YES) rc = 0;
  free(name);
  free(value);
  return rc;
}

/* A response owning a copy of body; NULL when out of memory. */
static struct MHD_Response *make_response(const char *content_type, const char *body, size_t len,
                                          const char *const *extra) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
  if (!resp) return NULL;
  if (content_type &&
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
    log_warn("http reply: content type refused", "value=%s", log_q(content_type));
  for (size_t i = 0; extra && extra[i]; i++)
    if (add_extra_header(resp, extra[i]))
      log_warn("http reply: header refused", "header=%s", log_q(extra[i]));
  return resp;
}

static struct MHD_Response *make_error_response(const char *msg) {
  buf b;
  buf_init(&b, 4096);
  struct MHD_Response *resp = NULL;
  if (json_error_body(&b, msg) == 0) resp = make_response("application/json", b.data, b.len, NULL);
  buf_release(&b);
  return resp;
}

static void stage(http_req *r, unsigned status, struct MHD_Response *resp) {
  req_drop_staged(r);
  r->status = status;
  r->resp = resp;
}

/* Hands the staged answer to MHD (from on_request only).  Without one
 * (out of memory) MHD_NO makes MHD close the connection. */
static enum MHD_Result queue_staged(http_req *r) {
  struct MHD_Response *resp = r->resp;
  r->resp = NULL;
  r->state = REQ_ANSWERED;
  if (!resp) return MHD_NO;
  enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
  MHD_destroy_response(resp); /* MHD keeps its own reference */
  return rc;
}

static enum MHD_Result answer_now(http_req *r, unsigned status, const char *msg) {
  stage(r, status, make_error_response(msg));
  return queue_staged(r);
}

/* ---- driving MHD from the loop -------------------------------------------- */

static void server_destroy(http_server *s);

static void arm_timer(http_server *s) {
  ev_timer_stop(s->loop, &s->timer);
  double after = -1;
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (s->kick)
    after = 0;
  else if (MHD_get_timeout(s->d, &ms) == MHD_YES)
    after = (double)ms / 1000.0;
  s->kick = 0;
  if (after < 0) return;
  /* MHD's timeout is relative to now; libev's "now" may be stale after a
   * long step (STYLE.md, curl point 8). */
  ev_now_update(s->loop);
  ev_timer_set(&s->timer, after, 0.);
  ev_timer_start(s->loop, &s->timer);
}

/* MHD_run needs calling soon: a suspended connection was resumed. */
static void kick(http_server *s) {
  if (s->depth > 0) {
    s->kick = 1; /* drive() re-arms the timer when MHD_run returns */
    return;
  }
  ev_timer_stop(s->loop, &s->timer);
  ev_timer_set(&s->timer, 0., 0.);
  ev_timer_start(s->loop, &s->timer);
}

static void drive(http_server *s) {
  s->depth++;
  s->kick = 0;
  MHD_run(s->d);
  if (--s->depth == 0 && s->free_later) {
    server_destroy(s);
    return;
  }
  arm_timer(s);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  drive(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  drive(w->data);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  http_req *r = w->data;
  if (r->state != REQ_SUSPENDED || !r->conn) return;
  log_warn("http handler did not answer in time", "method=%s path=%s timeout_s=%g",
           log_q(http_req_method(r)), log_q(http_req_path(r)), r->s->reply_timeout);
  stage(r, 503, make_error_response("timed out waiting for the handler"));
  r->state = REQ_RESUMING;
  MHD_resume_connection(r->conn);
  kick(r->s);
}

/* ---- MHD callbacks --------------------------------------------------------- */

static uint64_t declared_length(const http_req *r, int *present) {
  const char *v = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
  *present = 0;
  if (!v || !*v) return 0;
  uint64_t n = 0;
  for (const char *p = v; *p; p++) {
    if (*p < '0' || *p > '9') return 0; /* MHD rejects it itself */
    if (n > (UINT64_MAX - 9) / 10) {
      n = UINT64_MAX;
      break;
    }
    n = n * 10 + (uint64_t)(*p - '0');
  }
  *present = 1;
  return n;
}

static enum MHD_Result handoff(http_server *s, http_req *r) {
  r->state = REQ_HANDLER;
  pending_link(s, r);
  s->handler(s->ud, r);
  /* r is still ours: MHD's hold (r->conn) outlives whatever the handler
   * did, http_server_free included. */
  if (r->state == REQ_STAGED) return queue_staged(r);
  r->state = REQ_SUSPENDED;
  MHD_suspend_connection(r->conn);
  ev_timer_set(&r->deadline, s->reply_timeout, 0.);
  ev_timer_start(s->loop, &r->deadline);
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
  (void)version;
  http_server *s = cls;
  http_req *r = *req_cls;

  if (!r) { /* headers complete, nothing of the body read yet */
    r = req_new(s, conn, url, method);
    if (!r) return MHD_NO;
    *req_cls = r;
    int present = 0;
    uint64_t declared = declared_length(r, &present);
    /* Refused before any of the body is read: no 100 Continue is sent and
     * MHD closes the connection after the answer. */
    if (present && declared > s->max_body) {
      log_info("http request refused: body too large", "method=%s path=%s length=%llu max=%zu",
               log_q(method), log_q(url), (unsigned long long)declared, s->max_body);
      return answer_now(r, 413, "request body too large");
    }
    return MHD_YES;
  }

  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    r->received += n;
    if (r->received > s->max_body) {
      if (!r->over_cap) {
        r->over_cap = 1;
        buf_release(&r->body);
      }
      /* Reading on lets the client get its 413; not forever. */
      if (r->received - s->max_body > s->max_body) { /* twice the cap, without overflow */
        log_info("http connection dropped: body far too large", "method=%s path=%s max=%zu",
                 log_q(method), log_q(url), s->max_body);
        return MHD_NO;
      }
      return MHD_YES;
    }
    if (buf_add(&r->body, upload_data, n)) {
      log_warn("http request dropped: out of memory", "method=%s path=%s", log_q(method),
               log_q(url));
      return MHD_NO;
    }
    return MHD_YES;
  }

  switch (r->state) {
    case REQ_READING: /* the whole body is here */
      if (r->over_cap) {
        log_info("http request refused: body too large", "method=%s path=%s max=%zu", log_q(method),
                 log_q(url), s->max_body);
        return answer_now(r, 413, "request body too large");
      }
      if (s->closing) return answer_now(r, 503, "server shutting down");
      return handoff(s, r);
    case REQ_RESUMING: return queue_staged(r);
    case REQ_SUSPENDED: /* resumed without an answer: cannot happen, be safe */
    case REQ_HANDLER:
    case REQ_STAGED:
    case REQ_ANSWERED: break;
  }
  log_error("http server: request in unexpected state", "state=%d", (int)r->state);
  return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  http_req *r = *req_cls;
  if (!r) return;
  *req_cls = NULL;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
    log_debug("http request ended without a complete answer", "method=%s path=%s reason=%d",
              log_q(http_req_method(r)), log_q(http_req_path(r)), (int)toe);
  r->conn = NULL;
  ev_timer_stop(r->s->loop, &r->deadline);
  req_drop_staged(r);
  req_release(r);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
  http_server *s = cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  if (s->starting) {
    snprintf(s->start_err, sizeof s->start_err, "%s", msg);
    log_warn("http server: libmicrohttpd", "detail=%s", log_q(msg));
  } else {
    /* Mostly about misbehaving clients: worth a line, not an alarm. */
    log_info("http server: libmicrohttpd", "detail=%s", log_q(msg));
  }
}

/* ---- public ------------------------------------------------------------- */

/* "ADDR:PORT" or "[ADDR6]:PORT", numeric only (no name lookup on the loop). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, int *v6, unsigned *port,
                        perr *e) {
  if (!spec || !*spec) return perr_set(e, "http listen address is empty (want ADDR:PORT)");
  char host[64];
  const char *port_s;
  size_t hlen;
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':')
      return perr_set(e, "http listen address %s: want [IPV6]:PORT", spec);
    hlen = (size_t)(close - spec - 1);
    if (hlen == 0 || hlen >= sizeof host)
      return perr_set(e, "http listen address %s: bad IPv6 address", spec);
    memcpy(host, spec + 1, hlen);
    port_s = close + 2;
    *v6 = 1;
  } else {
    const char *colon = strrchr(spec, ':');
    if (!colon) return perr_set(e, "http listen address %s: want ADDR:PORT", spec);
    hlen = (size_t)(colon - spec);
    if (hlen == 0 || hlen >= sizeof host || memchr(spec, ':', hlen))
      return perr_set(e, "http listen address %s: want ADDR:PORT (IPv6 in brackets)", spec);
    memcpy(host, spec, hlen);
    port_s = colon + 1;
    *v6 = 0;
  }
  host[hlen] = '\0';
  unsigned long p = 0;
  if (!*port_s || strlen(port_s) > 5) return perr_set(e, "http listen address %s: bad port", spec);
  for (const char *c = port_s; *c; c++) {
    if (*c < '0' || *c > '9') return perr_set(e, "http listen address %s: bad port", spec);
    p = p * 10 + (unsigned long)(*c - '0');
  }
  if (p > 65535) return perr_set(e, "http listen address %s: port over 65535", spec);
  *port = (unsigned)p;
  memset(ss, 0, sizeof *ss);
  if (*v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)p);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
      return perr_set(e, "http listen address %s: bad IPv6 address", spec);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)p);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
      return perr_set(e, "http listen address %s: bad IPv4 address", spec);
  }
  return 0;
}

/* A socket handed over by systemd: it must be a listening TCP socket, and
 * MHD's accept loop (MHD_USE_TURBO) wants it non-blocking. */
static int adopt_listen_fd(int fd, int *v6, unsigned *port, perr *e) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type = 0, listening = 0;
  socklen_t tlen = sizeof type, llen = sizeof listening;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) ||
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) ||
      getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen))
    return perr_set(e, "http server on fd %d: %s", fd, strerror(errno));
  if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) || type != SOCK_STREAM || !listening)
    return perr_set(e, "http server on fd %d: not a listening TCP socket", fd);
  *v6 = ss.ss_family == AF_INET6;
  *port = ntohs(*v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return perr_set(e, "http server on fd %d: %s", fd, strerror(errno));
  return 0;
}

http_server *http_server_new(struct ev_loop *loop, const http_server_opts *o, http_handler_fn h,
                             void *ud, perr *e) {
  int fd = o && o->listen_fd > 0 ? o->listen_fd : -1;
  if (!loop || !o || !h) {
    perr_set(e, "http server needs a loop, options and a handler");
    if (fd >= 0) close(fd);
    return NULL;
  }
  struct sockaddr_storage ss;
  int v6 = 0;
  unsigned port = 0;
  if (fd >= 0 ? adopt_listen_fd(fd, &v6, &port, e) : parse_listen(o->listen, &ss, &v6, &port, e)) {
    if (fd >= 0) close(fd);
    return NULL;
  }
  char fd_label[32];
  snprintf(fd_label, sizeof fd_label, "fd %d", fd);
  const char *where = fd >= 0 ? fd_label : o->listen;

  http_server *s = calloc(1, sizeof *s);
  if (!s) {
    perr_set(e, "out of memory");
    if (fd >= 0) close(fd);
    return NULL;
  }
  s->loop = loop;
  s->handler = h;
  s->ud = ud;
  s->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
  s->max_header = o->max_header ? o->max_header : DEFAULT_MAX_HEADER;
  if (s->max_header < MIN_MAX_HEADER) s->max_header = MIN_MAX_HEADER;
  unsigned max_conn = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
  unsigned idle = o->idle_timeout_s ? o->idle_timeout_s : DEFAULT_IDLE_TIMEOUT_S;
  s->reply_timeout = (double)(o->reply_timeout_s ? o->reply_timeout_s : DEFAULT_REPLY_TIMEOUT_S);

  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  s->starting = 1;
  /* The logger first, so no start-up message goes to MHD's own stderr.  An
   * adopted socket replaces the address: MHD_OPTION_LISTEN_SOCKET then
   * stands where MHD_OPTION_SOCK_ADDR would. */
  if (fd >= 0)
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->max_header,
                            MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
                            idle, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
  else
    s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            s->max_header, MHD_OPTION_CONNECTION_LIMIT, max_conn,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_END);
  s->starting = 0;
  if (!s->d) {
    perr_set(e, "http server on %s: %s", where,
             s->start_err[0] ? s->start_err : "libmicrohttpd refused to start");
    /* Whether a failed start closed an adopted socket depends on MHD's
     * version; nothing else runs meanwhile, so an fd still open is ours. */
    if (fd >= 0 && fcntl(fd, F_GETFD) != -1) close(fd);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *fd_info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *port_info =
      fd >= 0 ? NULL : MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  if (!fd_info || fd_info->epoll_fd < 0 || (fd < 0 && !port_info)) {
    perr_set(e, "http server on %s: libmicrohttpd gave no epoll fd or port", where);
    MHD_stop_daemon(s->d);
    free(s);
    return NULL;
  }
  s->port = fd >= 0 ? (int)port : port_info->port;
  ev_io_init(&s->io, io_cb, fd_info->epoll_fd, EV_READ);
  s->io.data = s;
  ev_io_start(loop, &s->io);
  ev_timer_init(&s->timer, timer_cb, 0., 0.);
  s->timer.data = s;
  arm_timer(s);
  log_info("http server listening", "address=%s port=%d", log_q(where), s->port);
  return s;
}

int http_server_port(const http_server *s) { return s->port; }

const char *http_req_method(const http_req *r) { return r->meta.data; }

const char *http_req_path(const http_req *r) { return r->meta.data + r->path_off; }

static void each_pair(const http_req *r, size_t from, size_t to,
                      void (*fn)(void *ud, const char *name, const char *value), void *ud) {
  const char *p = r->meta.data + from, *end = r->meta.data + to;
  while (p < end) {
    const char *value = p + strlen(p) + 1;
    fn(ud, p, value);
    p = value + strlen(value) + 1;
  }
}

const char *http_req_header(const http_req *r, const char *name) {
  const char *p = r->meta.data + r->hdr_off, *end = r->meta.data + r->query_off;
  while (p < end) {
    const char *value = p + strlen(p) + 1;
    if (strcasecmp(p, name) == 0) return value;
    p = value + strlen(value) + 1;
  }
  return NULL;
}

void http_req_each_header(const http_req *r,
                          void (*fn)(void *ud, const char *name, const char *value), void *ud) {
  each_pair(r, r->hdr_off, r->query_off, fn, ud);
}

void http_req_each_query(const http_req *r,
                         void (*fn)(void *ud, const char *name, const char *value), void *ud) {
  each_pair(r, r->query_off, r->meta.len, fn, ud);
}

const char *http_req_body(const http_req *r, size_t *len) {
  if (len) *len = r->body.len;
  return r->body.data ? r->body.data : "";
}

void http_req_reply(http_req *r, unsigned status, const char *content_type, const char *body,
                    size_t len, const char *const *extra_headers) {
  if (!r || !r->held) return;
  http_server *s = r->s;
  if (status < 100 || status > 999) {
    log_warn("http reply: invalid status, sending 500", "status=%u", status);
    status = 500;
  }
  ev_timer_stop(s->loop, &r->deadline);
  if (r->conn && (r->state == REQ_HANDLER || r->state == REQ_SUSPENDED)) {
    stage(r, status, make_response(content_type, body, len, extra_headers));
    if (r->state == REQ_HANDLER) {
      r->state = REQ_STAGED; /* handoff() queues it when the handler returns */
    } else {
      r->state = REQ_RESUMING;
      MHD_resume_connection(r->conn);
      kick(s);
    }
  }
  /* Otherwise the server answered already (deadline) or the connection is
   * gone: the reply only gives r back. */
  pending_unlink(s, r);
  req_release(r);
}

void http_req_reply_error(http_req *r, unsigned status, const char *msg) {
  buf b;
  buf_init(&b, 4096 + (msg ? strlen(msg) * 6 : 0));
  if (json_error_body(&b, msg) == 0)
    http_req_reply(r, status, "application/json", b.data, b.len, NULL);
  else
    http_req_reply(r, status, "application/json", "{\"error\":\"\"}", 12, NULL);
  buf_release(&b);
}

size_t http_server_pending(const http_server *s) { return s->npending; }

size_t http_server_requests_alive(const http_server *s) { return s->alive; }

static void server_destroy(http_server *s) {
  /* No new connections while the last answers go out. */
  MHD_socket lfd = MHD_quiesce_daemon(s->d);
  if (lfd != MHD_INVALID_SOCKET) close(lfd);

  /* MHD_stop_daemon panics on a suspended connection: resume them all,
   * each with a 503 ready. */
  for (http_req *r = s->pending; r; r = r->next) {
    if (r->state != REQ_SUSPENDED || !r->conn) continue;
    ev_timer_stop(s->loop, &r->deadline);
    stage(r, 503, make_error_response("server shutting down"));
    r->state = REQ_RESUMING;
    MHD_resume_connection(r->conn);
  }
  /* Let the 503s go out while the sockets take them.  The handler is not
   * called from here: s->closing makes on_request answer by itself. */
  MHD_UNSIGNED_LONG_LONG ms = 0;
  for (int i = 0; i < TEARDOWN_RUNS; i++) {
    MHD_run(s->d);
    if (MHD_get_timeout(s->d, &ms) != MHD_YES || ms > 0) break;
  }
  /* Closes every connection; on_completed lets go of MHD's side of each
   * request. */
  MHD_stop_daemon(s->d);
  s->d = NULL;
  while (s->pending) {
    http_req *r = s->pending;
    pending_unlink(s, r);
    req_release(r);
  }
  ev_io_stop(s->loop, &s->io);
  ev_timer_stop(s->loop, &s->timer);
  if (s->alive) log_error("http server freed with requests alive", "count=%zu", s->alive);
  free(s);
}

void http_server_free(http_server *s) {
  if (!s || s->closing) return;
  s->closing = 1;
  if (s->depth > 0) {
    s->free_later = 1; /* the outermost drive() finishes this */
    return;
  }
  server_destroy(s);
}
