/*
 * http_client: libcurl multi-socket glue on libev (see http_client.h for
 * the contract).  Wiring after curl's docs/examples/evhiperfifo.c, with the
 * corrections listed in STYLE.md "curl multi-socket on libev".
 *
 * Where control comes from
 *   sock_cb   CURLMOPT_SOCKETFUNCTION: keeps one sock_rec (an ev_io) per
 *             socket curl cares about.  The glue owns these records, not the
 *             calls: an idle cached connection outlives its transfer.
 *   timer_cb  CURLMOPT_TIMERFUNCTION: only (re)arms c->timer.  It never
 *             calls libcurl (curl #3537: re-entering the multi from here is
 *             not allowed).
 *   io_cb, curl_timeout_cb   libev callbacks: call curl_multi_socket_action,
 *             then drain().
 *   defer_cb  0 s ev_timer: delivers the done callbacks of cancelled calls,
 *             so http_call_cancel never calls back from inside itself.
 *
 * A call's states (call->state) and the function making each transition
 *
 *     http_client_start ──► ACTIVE ──drain()──────────────► (done, freed)
 *                             │
 *                             └─http_call_cancel()─► CANCELLED ──defer_cb()──► (done, freed)
 *
 *   ACTIVE: in c->active and in the multi handle.  CANCELLED: easy handle
 *   already removed and cleaned up, queued in c->cancelled until defer_cb.
 *   http_client_free moves every call through to (done, freed) itself.
 *
 * Libcurl 7.88 (Debian 12) has no CURLMOPT_NOTIFYFUNCTION, so completions
 * are collected by drain() after every curl_multi_socket_action.  drain()
 * copies a message out, detaches and cleans the easy handle, and only then
 * calls done, which may start or cancel calls: both are plain multi calls
 * made outside any libcurl callback, which curl allows.
 *
 * http_client_start and http_client_start_easy differ only in how the
 * easy handle is set up; both end in call_launch, and from there a call
 * is a call.  easy_mode changes only what call_complete reports.
 *
 * User callbacks (done) run only from drain(), defer_cb() and
 * http_client_free().  c->depth counts the libev callbacks of ours on the
 * stack; http_client_free called at depth > 0 completes the calls at once
 * but leaves curl_multi_cleanup and the final free to the outermost of
 * them, which is also what keeps curl_multi_cleanup out of drain (curl
 * #2782) and keeps our own loops from touching a freed client.
 */
#include "net/http_client.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE ((size_t)8 << 20)
/* Response heads are small; curl itself refuses single lines over 100 KiB. */
#define MAX_HEADER_BYTES ((size_t)256 << 10)
#define DEFAULT_MAX_HOST_CONNECTIONS 64L
/* Idle connections kept for reuse across all hosts. */
#define MAX_CACHED_CONNECTIONS 256L

typedef struct sock_rec {
  ev_io io; /* io.data points back to the client */
  curl_socket_t fd;
  struct sock_rec *prev, *next;
} sock_rec;

/* DELIVERING: done is running; the call is in no list and cancel ignores it. */
enum call_state { CALL_ACTIVE, CALL_CANCELLED, CALL_DELIVERING };

/* The public response followed by the header storage it refers to.  The
 * public struct comes first, so http_response_header can find the rest. */
typedef struct resp_full {
  http_response pub;
  const char *hdrs; /* "name\0value\0" pairs, names lower-cased */
  size_t hdrs_len;
  const char *raw; /* the verbatim header stream of a raw_headers call */
  size_t raw_len;
} resp_full;

struct http_call {
  http_client *c;
  CURL *easy;
  struct curl_slist *headers;
  enum call_state state;
  http_done_fn done;
  void *ud;
  buf body;
  buf hdrs;
  int body_over_cap;
  int hdrs_over_cap;
  int easy_mode;   /* started by http_client_start_easy */
  int raw_headers; /* header stream kept verbatim */
  size_t max_response;
  size_t max_headers;
  char errbuf[CURL_ERROR_SIZE];
  struct http_call *prev, *next; /* c->active, or c->cancelled (next only) */
};

struct http_client {
  struct ev_loop *loop;
  CURLM *multi;
  ev_timer timer; /* curl's timeout */
  ev_timer defer; /* delivers cancelled calls' done callbacks */
  http_call *active;
  http_call *cancelled, *cancelled_tail;
  sock_rec *socks;
  size_t in_flight;
  int depth;      /* our libev callbacks on the stack */
  int closing;    /* http_client_free has begun: no new calls */
  int free_later; /* http_client_free ran at depth > 0 */
};

/* ---- process-wide init -------------------------------------------------- */

static int global_init_done;

static int global_init(perr *e) {
  if (global_init_done) return 0;
  CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) return perr_set(e, "curl_global_init: %s", curl_easy_strerror(rc));
  global_init_done = 1;
  return 0;
}

/* ---- lists -------------------------------------------------------------- */

static void active_link(http_client *c, http_call *call) {
  call->prev = NULL;
  call->next = c->active;
  if (c->active) c->active->prev = call;
  c->active = call;
}

static void active_unlink(http_client *c, http_call *call) {
  if (call->prev)
    call->prev->next = call->next;
  else
    c->active = call->next;
  if (call->next) call->next->prev = call->prev;
  call->prev = call->next = NULL;
}

static void cancelled_push(http_client *c, http_call *call) {
  call->prev = call->next = NULL;
  if (c->cancelled_tail)
    c->cancelled_tail->next = call;
  else
    c->cancelled = call;
  c->cancelled_tail = call;
}

static http_call *cancelled_pop(http_client *c) {
  http_call *call = c->cancelled;
  if (!call) return NULL;
  c->cancelled = call->next;
  if (!c->cancelled) c->cancelled_tail = NULL;
  call->next = NULL;
  return call;
}

/* ---- calls -------------------------------------------------------------- */

/* Frees everything a call owns except what http_client_start's caller
 * handed in.  The easy handle must already be out of the multi. */
static void call_free(http_call *call) {
  if (call->easy) curl_easy_cleanup(call->easy);
  curl_slist_free_all(call->headers);
  buf_release(&call->body);
  buf_release(&call->hdrs);
  free(call);
}

/* Takes the call's easy handle out of the multi and cleans it up.  Never
 * from inside a libcurl callback. */
static void call_detach(http_call *call) {
  if (!call->easy) return;
  CURLMcode mc = curl_multi_remove_handle(call->c->multi, call->easy);
  if (mc != CURLM_OK)
    log_warn("curl_multi_remove_handle failed", "error=%s", log_q(curl_multi_strerror(mc)));
  curl_easy_cleanup(call->easy);
  call->easy = NULL;
}

/* Hands the response to done and frees the call.  The call is already out
 * of every list, so whatever done does to the client cannot reach it. */
static void call_deliver(http_call *call, resp_full *r) {
  http_client *c = call->c;
  c->in_flight--;
  call->state = CALL_DELIVERING;
  call->done(call->ud, &r->pub);
  call_free(call);
}

static void call_deliver_cancelled(http_call *call) {
  resp_full r;
  memset(&r, 0, sizeof r);
  r.pub.transport_error = HTTP_CANCELLED;
  r.pub.error = "cancelled";
  r.pub.body = "";
  call_deliver(call, &r);
}

/* The response of a http_client_start_easy call: success is curl's word
 * alone, and what was received stays visible on failure (an IMAP NO says
 * why in its tagged line). */
static void easy_result(http_call *call, CURLcode res, long status, resp_full *r) {
  r->pub.status = status;
  r->pub.body = call->body.data ? call->body.data : "";
  r->pub.body_len = call->body.len;
  if (call->raw_headers) {
    r->raw = call->hdrs.data ? call->hdrs.data : "";
    r->raw_len = call->hdrs.len;
  } else {
    r->hdrs = call->hdrs.data;
    r->hdrs_len = call->hdrs.len;
  }
  if (res == CURLE_OK) {
    r->pub.error = "";
    return;
  }
  r->pub.transport_error = (int)res;
  r->pub.timed_out = res == CURLE_OPERATION_TIMEDOUT;
  if (call->body_over_cap || res == CURLE_FILESIZE_EXCEEDED)
    snprintf(call->errbuf, sizeof call->errbuf, "response body larger than %zu bytes",
             call->max_response);
  else if (call->hdrs_over_cap)
    snprintf(call->errbuf, sizeof call->errbuf, "response headers larger than %zu bytes",
             call->max_headers);
  else if (!call->errbuf[0])
    snprintf(call->errbuf, sizeof call->errbuf, "%s", curl_easy_strerror(res));
  r->pub.error = call->errbuf;
}

/* Finishes an ACTIVE call whose transfer curl reported done. */
static void call_complete(http_call *call, CURLcode res) {
  http_client *c = call->c;
  resp_full r;
  memset(&r, 0, sizeof r);
  long status = 0;
  double total = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME, &total);
  active_unlink(c, call);
  call_detach(call);

  r.pub.total_s = total;
  if (call->easy_mode) {
    easy_result(call, res, status, &r);
  } else if (res == CURLE_OK && status > 0) {
    r.pub.status = status;
    r.pub.error = "";
    r.pub.body = call->body.data ? call->body.data : "";
    r.pub.body_len = call->body.len;
    r.hdrs = call->hdrs.data;
    r.hdrs_len = call->hdrs.len;
  } else {
    r.pub.transport_error = res != CURLE_OK ? (int)res : (int)CURLE_WEIRD_SERVER_REPLY;
    r.pub.timed_out = res == CURLE_OPERATION_TIMEDOUT;
    r.pub.body = "";
    /* Our own reasons first: curl only knows the write callback said no. */
    if (call->body_over_cap || res == CURLE_FILESIZE_EXCEEDED) {
      snprintf(call->errbuf, sizeof call->errbuf, "response body larger than %zu bytes",
               call->max_response);
    } else if (call->hdrs_over_cap) {
      snprintf(call->errbuf, sizeof call->errbuf, "response headers larger than %zu bytes",
               call->max_headers);
    } else if (!call->errbuf[0]) {
      snprintf(call->errbuf, sizeof call->errbuf, "%s",
               res != CURLE_OK ? curl_easy_strerror(res) : "no HTTP status received");
    }
    r.pub.error = call->errbuf;
  }
  call_deliver(call, &r);
}

/* ---- curl callbacks: only copy, never call back into the multi ---------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
  http_call *call = userdata;
  size_t n = size * nmemb;
  if (buf_add(&call->body, ptr, n)) {
    call->body_over_cap = 1;
    return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
  }
  return n;
}

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* One header line per call, CRLF included.  A status line starts a new
 * response head (100 Continue, or a 3xx we do not follow), so the headers
 * kept are always those of the last head. */
static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata) {
  http_call *call = userdata;
  size_t n = size * nitems;
  if (call->raw_headers) {
    if (buf_add(&call->hdrs, ptr, n) == 0) return n;
    call->hdrs_over_cap = 1;
    return 0;
  }
  size_t end = n;
  while (end > 0 && is_space(ptr[end - 1])) end--;
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
    buf_reset(&call->hdrs);
    return n;
  }
  if (end == 0) return n; /* the blank line ending a head */

  int ok = 0;
  if (is_space(ptr[0])) {
    /* Obsolete line folding: continue the previous value. */
    size_t start = 0;
    while (start < end && is_space(ptr[start])) start++;
    if (call->hdrs.len == 0) return n;
    call->hdrs.len--; /* reopen the last value's terminator */
    ok = buf_addc(&call->hdrs, ' ') == 0 && buf_add(&call->hdrs, ptr + start, end - start) == 0 &&
         buf_addc(&call->hdrs, '\0') == 0;
  } else {
    const char *colon = memchr(ptr, ':', end);
    if (!colon) return n; /* not a header line: ignore */
    size_t name_len = (size_t)(colon - ptr);
    size_t vstart = name_len + 1;
    while (vstart < end && is_space(ptr[vstart])) vstart++;
    ok = 1;
    for (size_t i = 0; ok && i < name_len; i++) {
      char ch = ptr[i];
      if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
      ok = buf_addc(&call->hdrs, ch) == 0;
    }
    ok = ok && buf_addc(&call->hdrs, '\0') == 0 &&
         buf_add(&call->hdrs, ptr + vstart, end - vstart) == 0 && buf_addc(&call->hdrs, '\0') == 0;
  }
  if (!ok) {
    call->hdrs_over_cap = 1;
    return 0; /* curl fails the transfer */
  }
  return n;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  http_client *c = userp;
  sock_rec *rec = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (rec) {
      ev_io_stop(c->loop, &rec->io);
      if (rec->prev)
        rec->prev->next = rec->next;
      else
        c->socks = rec->next;
      if (rec->next) rec->next->prev = rec->prev;
      free(rec);
    }
    return 0;
  }
  int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  if (!rec) {
    rec = calloc(1, sizeof *rec);
    if (!rec) return -1; /* curl fails the transfers on this socket */
    rec->fd = s;
    ev_io_init(&rec->io, io_cb, s, events);
    rec->io.data = c;
    if (curl_multi_assign(c->multi, s, rec) != CURLM_OK) {
      free(rec);
      return -1;
    }
    rec->next = c->socks;
    if (c->socks) c->socks->prev = rec;
    c->socks = rec;
  } else {
    ev_io_stop(c->loop, &rec->io);
    ev_io_set(&rec->io, s, events);
  }
  if (events) ev_io_start(c->loop, &rec->io);
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  http_client *c = userp;
  ev_timer_stop(c->loop, &c->timer);
  if (timeout_ms >= 0) {
    /* curl's timeout is relative to now; libev's "now" may be stale after a
     * long blocking step (STYLE.md point 8).  Floating point, so the timer
     * does not wake up early and spin. */
    ev_now_update(c->loop);
    ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
    ev_timer_start(c->loop, &c->timer);
  }
  return 0;
}

/* ---- driving the multi from the loop ------------------------------------ */

static void client_destroy(http_client *c);

static void drain(http_client *c) {
  CURLMsg *m;
  int left;
  while (!c->closing && (m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURLcode res = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    http_call *call = (http_call *)priv;
    if (!call || call->state != CALL_ACTIVE) continue;
    call_complete(call, res);
  }
}

/* The end of every libev callback of ours: the outermost one finishes a
 * http_client_free that a done callback asked for. */
static void leave(http_client *c) {
  if (--c->depth == 0 && c->free_later) client_destroy(c);
}

static void socket_action(http_client *c, curl_socket_t fd, int ev_bitmask) {
  int running = 0;
  c->depth++;
  CURLMcode mc = curl_multi_socket_action(c->multi, fd, ev_bitmask, &running);
  if (mc != CURLM_OK)
    log_warn("curl_multi_socket_action failed", "error=%s", log_q(curl_multi_strerror(mc)));
  drain(c);
  leave(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  /* Copy out now: curl may free the record during the action. */
  http_client *c = w->data;
  curl_socket_t fd = w->fd;
  int action = ((revents & EV_READ) ? CURL_CSELECT_IN : 0) |
               ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0) |
               ((revents & EV_ERROR) ? CURL_CSELECT_ERR : 0);
  socket_action(c, fd, action);
}

static void curl_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  socket_action(w->data, CURL_SOCKET_TIMEOUT, 0);
}

static void defer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  http_client *c = w->data;
  c->depth++;
  http_call *call;
  while ((call = cancelled_pop(c))) call_deliver_cancelled(call);
  leave(c);
}

/* ---- public ------------------------------------------------------------- */

const char *http_response_header(const http_response *r, const char *name) {
  const resp_full *f = (const resp_full *)r;
  const char *found = NULL;
  const char *p = f->hdrs, *end = f->hdrs ? f->hdrs + f->hdrs_len : NULL;
  while (p && p < end) {
    const char *value = p + strlen(p) + 1;
    if (value >= end) break;
    if (strcasecmp(p, name) == 0) found = value;
    p = value + strlen(value) + 1;
  }
  return found;
}

const char *http_response_raw_headers(const http_response *r, size_t *len) {
  const resp_full *f = (const resp_full *)r;
  if (len) *len = f->raw ? f->raw_len : 0;
  return f->raw ? f->raw : "";
}

http_client *http_client_new(struct ev_loop *loop, perr *e) {
  if (global_init(e)) return NULL;
  http_client *c = calloc(1, sizeof *c);
  if (!c) {
    perr_set(e, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->multi = curl_multi_init();
  if (!c->multi) {
    free(c);
    perr_set(e, "curl_multi_init failed");
    return NULL;
  }
  ev_timer_init(&c->timer, curl_timeout_cb, 0., 0.);
  c->timer.data = c;
  ev_timer_init(&c->defer, defer_cb, 0., 0.);
  c->defer.data = c;
  CURLMcode mc = CURLM_OK;
  if (mc == CURLM_OK) mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  if (mc == CURLM_OK) mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  if (mc == CURLM_OK) mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  if (mc == CURLM_OK) mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, DEFAULT_MAX_HOST_CONNECTIONS);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, MAX_CACHED_CONNECTIONS);
  if (mc != CURLM_OK) {
    perr_set(e, "curl_multi_setopt: %s", curl_multi_strerror(mc));
    curl_multi_cleanup(c->multi);
    free(c);
    return NULL;
  }
  return c;
}

int http_client_set_max_host_connections(http_client *c, long n, perr *e) {
  if (n < 1) return perr_set(e, "max host connections must be at least 1, got %ld", n);
  CURLMcode mc = curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
  if (mc != CURLM_OK) return perr_set(e, "curl_multi_setopt: %s", curl_multi_strerror(mc));
  return 0;
}

static int has_header(const char *const *headers, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; headers && headers[i]; i++)
    if (strncasecmp(headers[i], name, len) == 0 && headers[i][len] == ':') return 1;
  return 0;
}

/* Sets every option of a new call; curl's message on failure. */
static CURLcode call_setup(http_call *call, const http_request *req) {
  CURL *h = call->easy;
  long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  long connect = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  int has_body = req->body != NULL || strcmp(req->method, "POST") == 0;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc == CURLE_OK ? curl_easy_setopt(h, opt, val) : rc)
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PRIVATE, (void *)call);
  /* No SIGALRM for DNS timeouts: signals and a single loop do not mix. */
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, call->errbuf);
  SET(CURLOPT_TIMEOUT_MS, timeout);
  SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
  /* URLs come from recipes: never let one reach file://, smtp:// ... */
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* Over TLS, ALPN says within the handshake whether a connection
   * multiplexes (HTTP/2): waiting for that beats one connection per call.
   * Cleartext HTTP/1.1 is only known after a whole response, so there a
   * slow answer would hold back every other call to the host. */
  if (strncasecmp(req->url, "https://", 8) == 0) SET(CURLOPT_PIPEWAIT, 1L);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, (void *)call);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, (void *)call);
  /* Refuse a declared Content-Length over the cap before reading it. */
  if (call->max_response <= (size_t)INT64_MAX)
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_response);
  if (has_body) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SET(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    if (strcmp(req->method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, req->method);
  } else if (strcmp(req->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(req->method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, req->method);
  }
  SET(CURLOPT_HTTPHEADER, call->headers);
#undef SET
  return rc;
}

/* Hands a set-up call to the multi; frees it on failure. */
static int call_launch(http_client *c, http_call *call, http_call **out, perr *e) {
  /* May call timer_cb (which only arms a timer), never sock_cb or done:
   * the transfer begins from the loop. */
  CURLMcode mc = curl_multi_add_handle(c->multi, call->easy);
  if (mc != CURLM_OK) {
    perr_set(e, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    call_free(call);
    return -1;
  }
  active_link(c, call);
  c->in_flight++;
  if (out) *out = call;
  return 0;
}

int http_client_start(http_client *c, const http_request *req, http_done_fn done, void *ud,
                      http_call **out, perr *e) {
  if (out) *out = NULL;
  if (c->closing) return perr_set(e, "http client is shutting down");
  if (!req || !req->url || !req->method || !req->method[0] || !done)
    return perr_set(e, "http request needs a method, a URL and a callback");
  if (req->body_len && !req->body) return perr_set(e, "http request body length without a body");

  http_call *call = calloc(1, sizeof *call);
  if (!call) return perr_set(e, "out of memory");
  call->c = c;
  call->done = done;
  call->ud = ud;
  call->state = CALL_ACTIVE;
  call->max_response = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
  call->max_headers = MAX_HEADER_BYTES;
  buf_init(&call->body, call->max_response);
  buf_init(&call->hdrs, call->max_headers);

  for (size_t i = 0; req->headers && req->headers[i]; i++) {
    struct curl_slist *l = curl_slist_append(call->headers, req->headers[i]);
    if (!l) goto oom;
    call->headers = l;
  }
  /* curl 7.88 sends "Expect: 100-continue" for POST bodies over 1 KiB and
   * then waits up to a second for a 100 that many servers never send. */
  if ((req->body || strcmp(req->method, "POST") == 0) && !has_header(req->headers, "Expect")) {
    struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
    if (!l) goto oom;
    call->headers = l;
  }

  call->easy = curl_easy_init();
  if (!call->easy) goto oom;
  CURLcode rc = call_setup(call, req);
  if (rc != CURLE_OK) {
    perr_set(e, "http request %s %s: %s", req->method, req->url, curl_easy_strerror(rc));
    call_free(call);
    return -1;
  }
  return call_launch(c, call, out, e);

oom:
  call_free(call);
  return perr_set(e, "out of memory");
}

int http_client_start_easy(http_client *c, CURL *easy, const http_easy_opts *opts,
                           http_done_fn done, void *ud, http_call **out, perr *e) {
  if (out) *out = NULL;
  if (!easy) return perr_set(e, "no easy handle to start");
  if (c->closing || !done) {
    curl_easy_cleanup(easy);
    return perr_set(e, c->closing ? "http client is shutting down" : "transfer needs a callback");
  }
  http_easy_opts o = {0};
  if (opts) o = *opts;
  http_call *call = calloc(1, sizeof *call);
  if (!call) {
    curl_easy_cleanup(easy);
    return perr_set(e, "out of memory");
  }
  call->c = c;
  call->easy = easy;
  call->done = done;
  call->ud = ud;
  call->state = CALL_ACTIVE;
  call->easy_mode = 1;
  call->raw_headers = o.raw_headers != 0;
  call->max_response = o.max_response ? o.max_response : DEFAULT_MAX_RESPONSE;
  call->max_headers = o.max_headers ? o.max_headers : MAX_HEADER_BYTES;
  buf_init(&call->body, call->max_response);
  buf_init(&call->hdrs, call->max_headers);
  long timeout = o.timeout_ms > 0 ? o.timeout_ms : DEFAULT_TIMEOUT_MS;
  long connect = o.connect_timeout_ms > 0 ? o.connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc == CURLE_OK ? curl_easy_setopt(easy, opt, val) : rc)
  SET(CURLOPT_PRIVATE, (void *)call);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, call->errbuf);
  SET(CURLOPT_TIMEOUT_MS, timeout);
  SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, (void *)call);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, (void *)call);
#undef SET
  if (rc != CURLE_OK) {
    perr_set(e, "transfer setup: %s", curl_easy_strerror(rc));
    call_free(call);
    return -1;
  }
  return call_launch(c, call, out, e);
}

void http_call_cancel(http_call *call) {
  if (!call || call->state != CALL_ACTIVE) return;
  http_client *c = call->c;
  call->state = CALL_CANCELLED;
  active_unlink(c, call);
  call_detach(call);
  cancelled_push(c, call);
  if (!ev_is_active(&c->defer)) {
    ev_timer_set(&c->defer, 0., 0.);
    ev_timer_start(c->loop, &c->defer);
  }
}

size_t http_client_in_flight(const http_client *c) { return c->in_flight; }

static void client_destroy(http_client *c) {
  /* curl closes its cached connections here and tells sock_cb, so the loop
   * and the records must still exist (curl #14860). */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  ev_timer_stop(c->loop, &c->timer);
  ev_timer_stop(c->loop, &c->defer);
  while (c->socks) {
    sock_rec *rec = c->socks;
    c->socks = rec->next;
    ev_io_stop(c->loop, &rec->io);
    free(rec);
  }
  free(c);
}

void http_client_free(http_client *c) {
  if (!c || c->closing) return;
  c->closing = 1;
  /* A done callback may cancel further calls: loop until both are empty. */
  for (;;) {
    http_call *call = c->active;
    if (call) {
      active_unlink(c, call);
      call->state = CALL_CANCELLED;
      call_detach(call);
    } else if (!(call = cancelled_pop(c))) {
      break;
    }
    call_deliver_cancelled(call);
  }
  if (c->depth > 0) {
    c->free_later = 1; /* the outermost callback of ours finishes this */
    return;
  }
  client_destroy(c);
}
