/*
 * http_server against real loopback clients in the same process.
 *
 * The clients are non-blocking sockets driven by the same libev loop as the
 * server (tclient below): they queue bytes, the loop writes them as the
 * socket takes them and collects whatever comes back.  Every wait is "run
 * the loop until this condition holds", bounded by a guard timer that fails
 * the test instead of hanging it.  Each test ends (teardown) by freeing the
 * server and the clients and proving the loop has no active watcher left.
 *
 * The handler records what it saw in g_seen and then, depending on g_mode,
 * answers at once, holds the request in g_held for the test to answer, or
 * frees the server from inside itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/http_server.h"

/* ---- loop helpers --------------------------------------------------------- */

static struct ev_loop *g_loop;
static int g_guard_fired;

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  g_guard_fired = 1;
}

/* Runs the loop until cond holds or max_s passes. */
#define RUN_UNTIL(cond, max_s)                                    \
  do {                                                            \
    ev_timer guard_;                                              \
    ev_timer_init(&guard_, guard_cb, (max_s), 0.);                \
    g_guard_fired = 0;                                            \
    ev_timer_start(g_loop, &guard_);                              \
    while (!(cond) && !g_guard_fired) ev_run(g_loop, EVRUN_ONCE); \
    ev_timer_stop(g_loop, &guard_);                               \
  } while (0)

/* Runs the loop for s seconds: only to show that something does NOT happen. */
static void run_for(double s) { RUN_UNTIL(0, s); }

/* ---- clients --------------------------------------------------------------- */

typedef struct tclient {
  int fd;
  ev_io io;
  char *out;
  size_t out_len, out_off;
  char in[65536];
  size_t in_len;
  int eof;   /* the server closed (or reset) the connection */
  int reset; /* ECONNRESET / EPIPE */
} tclient;

static void client_events(tclient *c, int events) {
  ev_io_stop(g_loop, &c->io);
  ev_io_set(&c->io, c->fd, events);
  if (events) ev_io_start(g_loop, &c->io);
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  tclient *c = w->data;
  if ((revents & EV_WRITE) && c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      c->eof = c->reset = 1;
      client_events(c, 0);
      return;
    }
    if (c->out_off == c->out_len) client_events(c, EV_READ);
  }
  if (revents & EV_READ) {
    for (;;) {
      if (c->in_len == sizeof c->in) break; /* full: the test looks before reading on */
      ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
      if (n > 0) {
        c->in_len += (size_t)n;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      c->eof = 1;
      if (n < 0) c->reset = 1;
      client_events(c, 0);
      break;
    }
  }
}

static int g_port;

static void client_open_family(tclient *c, int family) {
  memset(c, 0, sizeof *c);
  c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  assert_true(c->fd >= 0);
  int rc;
  if (family == AF_INET6) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons((uint16_t)g_port);
    rc = connect(c->fd, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)g_port);
    rc = connect(c->fd, (struct sockaddr *)&a, sizeof a);
  }
  assert_true(rc == 0 || errno == EINPROGRESS);
  ev_io_init(&c->io, client_io_cb, c->fd, EV_READ);
  c->io.data = c;
  ev_io_start(g_loop, &c->io);
}

static void client_open(tclient *c) { client_open_family(c, AF_INET); }

static void client_send(tclient *c, const void *p, size_t n) {
  char *grown = realloc(c->out, c->out_len + n);
  assert_non_null(grown);
  c->out = grown;
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  client_events(c, EV_READ | EV_WRITE);
}

static void client_sends(tclient *c, const char *s) { client_send(c, s, strlen(s)); }

static void client_close(tclient *c) {
  if (c->fd < 0) return;
  ev_io_stop(g_loop, &c->io);
  close(c->fd);
  c->fd = -1;
  free(c->out);
  c->out = NULL;
}

/* ---- responses ------------------------------------------------------------- */

typedef struct resp {
  int status;
  char ctype[64];
  char reply_hdr[64];
  char connection[32];
  size_t body_len;
  char body[1024];
} resp;

static void header_value(const char *head, size_t head_len, const char *name, char *out, size_t n) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *l = head; l && l < head + head_len; l = memchr(l, '\n', head + head_len - l)) {
    if (*l == '\n') l++;
    if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ') v++;
      size_t len = strcspn(v, "\r\n");
      snprintf(out, n, "%.*s", (int)len, v);
      return;
    }
  }
}

/* Size of the complete response at p, 0 when incomplete. */
static size_t parse_one(const char *p, size_t len, resp *out) {
  const char *end = memmem(p, len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - p) + 4;
  memset(out, 0, sizeof *out);
  assert_int_equal(sscanf(p, "HTTP/1.%*d %d", &out->status), 1);
  char clen[32];
  header_value(p, head, "Content-Length", clen, sizeof clen);
  header_value(p, head, "Content-Type", out->ctype, sizeof out->ctype);
  header_value(p, head, "X-Reply", out->reply_hdr, sizeof out->reply_hdr);
  header_value(p, head, "Connection", out->connection, sizeof out->connection);
  size_t body = clen[0] ? strtoul(clen, NULL, 10) : 0;
  if (len < head + body) return 0;
  out->body_len = body;
  snprintf(out->body, sizeof out->body, "%.*s", (int)body, p + head);
  return head + body;
}

/* Final responses received so far (1xx skipped; *continues counts them). */
static int responses(const tclient *c, resp *out, int max, int *continues) {
  int n = 0;
  size_t off = 0;
  if (continues) *continues = 0;
  resp tmp;
  while (off < c->in_len) {
    size_t used = parse_one(c->in + off, c->in_len - off, &tmp);
    if (!used) break;
    off += used;
    if (tmp.status < 200) {
      if (continues) (*continues)++;
      continue;
    }
    if (n < max && out) out[n] = tmp;
    n++;
  }
  return n;
}

static int nresp(const tclient *c) { return responses(c, NULL, 0, NULL); }

/* ---- the server and its handler -------------------------------------------- */

enum mode { MODE_NOW, MODE_LATER, MODE_FREE_AFTER_REPLY, MODE_FREE_NO_REPLY };

typedef struct seen {
  char method[16];
  char path[256];
  char body[8192];
  size_t body_len;
  char custom[64], custom_upper[64], dup[16];
  int absent_is_null;
  char headers[2048];
  char query[512];
} seen;

#define MAX_SEEN 16
static http_server *g_srv;
static enum mode g_mode;
static int g_calls;
static seen g_seen[MAX_SEEN];
static http_req *g_held[MAX_SEEN];
static int g_nheld;
static int g_in_api;     /* set around calls into http_server */
static int g_violations; /* handler called from inside one */

static void join_pair(void *ud, const char *name, const char *value) {
  char *out = ud;
  size_t len = strlen(out);
  if (len < 500) snprintf(out + len, 512 - len, "%s=%s;", name, value);
}

static void join_pair_hdr(void *ud, const char *name, const char *value) {
  char *out = ud;
  size_t len = strlen(out);
  if (len < 2000) snprintf(out + len, 2048 - len, "%s=%s;", name, value);
}

static void copy_hdr(const http_req *r, const char *name, char *out, size_t n) {
  const char *v = http_req_header(r, name);
  snprintf(out, n, "%s", v ? v : "(null)");
}

static void reply(http_req *r, unsigned status, const char *body) {
  const char *extra[] = {"X-Reply: yes", "no colon here", "Bad Name: x", NULL};
  g_in_api = 1;
  http_req_reply(r, status, "text/plain", body, strlen(body), extra);
  g_in_api = 0;
}

static void handler(void *ud, http_req *r) {
  (void)ud;
  if (g_in_api) g_violations++;
  seen *s = &g_seen[g_calls % MAX_SEEN];
  memset(s, 0, sizeof *s);
  g_calls++;
  snprintf(s->method, sizeof s->method, "%s", http_req_method(r));
  snprintf(s->path, sizeof s->path, "%s", http_req_path(r));
  const char *body = http_req_body(r, &s->body_len);
  assert_int_equal(body[s->body_len], '\0');
  memcpy(s->body, body, s->body_len < sizeof s->body ? s->body_len : sizeof s->body - 1);
  copy_hdr(r, "x-custom", s->custom, sizeof s->custom);
  copy_hdr(r, "X-CUSTOM", s->custom_upper, sizeof s->custom_upper);
  copy_hdr(r, "x-dup", s->dup, sizeof s->dup);
  s->absent_is_null = http_req_header(r, "x-absent") == NULL;
  http_req_each_header(r, join_pair_hdr, s->headers);
  http_req_each_query(r, join_pair, s->query);

  if (strcmp(s->path, "/error") == 0) {
    g_in_api = 1;
    http_req_reply_error(r, 422, "bad \"input\"\n\\");
    g_in_api = 0;
    return;
  }
  if (strcmp(s->path, "/badstatus") == 0) {
    reply(r, 42, "x");
    return;
  }
  switch (g_mode) {
    case MODE_NOW: {
      char b[512];
      snprintf(b, sizeof b, "%s %s %zu", s->method, s->path, s->body_len);
      reply(r, 200, b);
      break;
    }
    case MODE_LATER:
      assert_true(g_nheld < MAX_SEEN);
      g_held[g_nheld++] = r;
      break;
    case MODE_FREE_AFTER_REPLY:
      reply(r, 200, "bye");
      /* fall through */
    case MODE_FREE_NO_REPLY:
      g_in_api = 1;
      http_server_free(g_srv);
      g_in_api = 0;
      g_srv = NULL;
      break;
  }
}

static http_server_opts test_opts(void) {
  http_server_opts o = {.listen = "127.0.0.1:0", .max_body = 4096, .idle_timeout_s = 10};
  return o;
}

static void start_server_opts(const http_server_opts *o) {
  perr e;
  g_in_api = 1;
  g_srv = http_server_new(g_loop, o, handler, NULL, &e);
  g_in_api = 0;
  if (!g_srv) fail_msg("http_server_new: %s", e.msg);
  g_port = http_server_port(g_srv);
  assert_true(g_port > 0);
}

static void start_server(void) {
  http_server_opts o = test_opts();
  start_server_opts(&o);
}

/* Answers the held request i from the loop, outside the handler. */
static void reply_held(int i, unsigned status, const char *body) {
  assert_true(i < g_nheld && g_held[i]);
  http_req *r = g_held[i];
  g_held[i] = NULL;
  reply(r, status, body);
}

#define MAX_CLIENTS 8
static tclient g_clients[MAX_CLIENTS];

static int setup(void **state) {
  (void)state;
  log_set_level(LOG_ERROR);
  g_loop = ev_loop_new(EVFLAG_AUTO);
  g_srv = NULL;
  g_mode = MODE_NOW;
  g_calls = g_nheld = g_violations = 0;
  memset(g_held, 0, sizeof g_held);
  for (int i = 0; i < MAX_CLIENTS; i++) g_clients[i].fd = -1;
  return g_loop ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  http_server_free(g_srv);
  g_srv = NULL;
  for (int i = 0; i < MAX_CLIENTS; i++) client_close(&g_clients[i]);
  /* Neither the server nor the clients left anything on the loop. */
  unsigned pend = ev_pending_count(g_loop);
  int left = ev_run(g_loop, EVRUN_NOWAIT);
  ev_loop_destroy(g_loop);
  g_loop = NULL;
  if (left || pend) fprintf(stderr, "watchers left on the loop\n");
  if (g_violations) fprintf(stderr, "handler called from inside the API\n");
  return left || pend || g_violations ? -1 : 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_get_headers_query(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c,
               "GET /hooks/a%20b?x=1&y=two%20words&flag HTTP/1.1\r\nHost: t\r\n"
               "X-Custom: Hello\r\nx-dup: 1\r\nX-Dup: 2\r\n\r\n");
  assert_int_equal(g_calls, 0);
  RUN_UNTIL(nresp(c) >= 1, 5);
  resp r[2];
  assert_int_equal(responses(c, r, 2, NULL), 1);
  assert_int_equal(g_calls, 1);
  seen *s = &g_seen[0];
  assert_string_equal(s->method, "GET");
  assert_string_equal(s->path, "/hooks/a b");
  assert_string_equal(s->custom, "Hello");
  assert_string_equal(s->custom_upper, "Hello");
  assert_string_equal(s->dup, "1"); /* the first of repeated headers */
  assert_true(s->absent_is_null);
  assert_non_null(strstr(s->headers, "X-Custom=Hello;"));
  assert_non_null(strstr(s->headers, "x-dup=1;X-Dup=2;"));
  assert_non_null(strstr(s->headers, "Host=t;"));
  assert_string_equal(s->query, "x=1;y=two words;flag=;");
  assert_int_equal(s->body_len, 0);

  assert_int_equal(r[0].status, 200);
  assert_string_equal(r[0].ctype, "text/plain");
  assert_string_equal(r[0].reply_hdr, "yes");
  assert_string_equal(r[0].body, "GET /hooks/a b 0");
  assert_int_equal(http_server_pending(g_srv), 0);
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
  assert_false(c->eof);
}

static void test_post_bodies(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  /* Content-Length, with a NUL inside. */
  static const char p1[] = "POST /p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\na\0bcd";
  client_send(c, p1, sizeof p1 - 1);
  RUN_UNTIL(nresp(c) >= 1, 5);
  assert_int_equal(g_calls, 1);
  assert_int_equal(g_seen[0].body_len, 5);
  assert_memory_equal(g_seen[0].body, "a\0bcd", 5);
  /* Chunked. */
  client_sends(c,
               "POST /p2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 2, 5);
  assert_int_equal(g_calls, 2);
  assert_string_equal(g_seen[1].body, "hello world");
  assert_int_equal(g_seen[1].body_len, 11);
  /* Exactly max_body, announced with Expect: 100-continue. */
  char big[4096];
  memset(big, 'z', sizeof big);
  client_sends(c,
               "PUT /p3 HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n"
               "Expect: 100-continue\r\n\r\n");
  int continues = 0;
  RUN_UNTIL((responses(c, NULL, 0, &continues), continues >= 1), 5);
  assert_int_equal(continues, 1);
  client_send(c, big, sizeof big);
  RUN_UNTIL(nresp(c) >= 3, 5);
  resp r[3];
  assert_int_equal(responses(c, r, 3, NULL), 3);
  assert_int_equal(r[0].status, 200);
  assert_string_equal(r[0].body, "POST /p1 5");
  assert_string_equal(r[1].body, "POST /p2 11");
  assert_int_equal(r[2].status, 200);
  assert_string_equal(r[2].body, "PUT /p3 4096");
  assert_int_equal(g_seen[2].body_len, 4096);
  assert_false(c->eof);
}

static void test_reply_error_and_bad_status(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c,
               "GET /error HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /badstatus HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 2, 5);
  resp r[2];
  assert_int_equal(responses(c, r, 2, NULL), 2);
  assert_int_equal(r[0].status, 422);
  assert_string_equal(r[0].ctype, "application/json");
  assert_string_equal(r[0].body, "{\"error\":\"bad \\\"input\\\"\\u000a\\\\\"}");
  assert_int_equal(r[1].status, 500);
}

static void reply_first_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  (void)w;
  reply_held(0, 202, "{\"accepted\":true}");
}

static void test_reply_later(void **state) {
  (void)state;
  start_server();
  g_mode = MODE_LATER;
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c, "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  RUN_UNTIL(g_calls == 1, 5);
  assert_int_equal(g_calls, 1);
  assert_int_equal(http_server_pending(g_srv), 1);
  assert_int_equal(c->in_len, 0);
  /* Readable while suspended, from outside the handler. */
  size_t len = 0;
  assert_string_equal(http_req_body(g_held[0], &len), "abc");
  assert_string_equal(http_req_path(g_held[0]), "/later");

  ev_timer later;
  ev_timer_init(&later, reply_first_cb, 0.05, 0.);
  ev_timer_start(g_loop, &later);
  RUN_UNTIL(nresp(c) >= 1, 5);
  ev_timer_stop(g_loop, &later);
  resp r;
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_int_equal(r.status, 202);
  assert_string_equal(r.body, "{\"accepted\":true}");
  assert_int_equal(http_server_pending(g_srv), 0);

  /* The resumed connection carries on: a second request, answered inside. */
  g_mode = MODE_NOW;
  client_sends(c, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 2, 5);
  resp rr[2];
  assert_int_equal(responses(c, rr, 2, NULL), 2);
  assert_string_equal(rr[1].body, "GET /again 0");
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
}

static void test_keepalive(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 1, 5);
  assert_int_equal(nresp(c), 1);
  client_sends(c, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 2, 5);
  resp r[2];
  assert_int_equal(responses(c, r, 2, NULL), 2);
  assert_string_equal(r[0].body, "GET /one 0");
  assert_string_equal(r[1].body, "GET /two 0");
  assert_true(strcasecmp(r[1].connection, "close") != 0);
  assert_false(c->eof);
  assert_int_equal(g_calls, 2);
}

static void test_pipelined(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  const char *three =
      "GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n"
      "POST /p2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
      "GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n";
  /* Answered inside the handler. */
  client_sends(c, three);
  RUN_UNTIL(nresp(c) >= 3, 5);
  resp r[3];
  assert_int_equal(responses(c, r, 3, NULL), 3);
  assert_string_equal(r[0].body, "GET /p1 0");
  assert_string_equal(r[1].body, "POST /p2 2");
  assert_string_equal(r[2].body, "GET /p3 0");

  /* Answered later: one at a time, in order. */
  g_mode = MODE_LATER;
  tclient *d = &g_clients[1];
  client_open(d);
  client_sends(d, three);
  for (int i = 0; i < 3; i++) {
    RUN_UNTIL(g_calls == 4 + i, 5);
    assert_int_equal(g_calls, 4 + i);
    run_for(0.05); /* the next request must wait for this answer */
    assert_int_equal(g_calls, 4 + i);
    assert_int_equal(http_server_pending(g_srv), 1);
    char b[16];
    snprintf(b, sizeof b, "later%d", i + 1);
    reply_held(i, 200, b);
  }
  RUN_UNTIL(nresp(d) >= 3, 5);
  assert_int_equal(responses(d, r, 3, NULL), 3);
  assert_string_equal(r[0].body, "later1");
  assert_string_equal(r[1].body, "later2");
  assert_string_equal(r[2].body, "later3");
  assert_string_equal(g_seen[3].path, "/p1");
  assert_string_equal(g_seen[4].path, "/p2");
  assert_string_equal(g_seen[5].path, "/p3");
}

static void send_chunked(tclient *c, size_t total) {
  client_sends(c, "POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  char chunk[1000];
  memset(chunk, 'c', sizeof chunk);
  for (size_t sent = 0; sent < total; sent += sizeof chunk) {
    client_sends(c, "3e8\r\n");
    client_send(c, chunk, sizeof chunk);
    client_sends(c, "\r\n");
  }
  client_sends(c, "0\r\n\r\n");
}

static void test_chunked_body_over_limit(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  send_chunked(c, 5000); /* max_body is 4096 */
  RUN_UNTIL(nresp(c) >= 1, 5);
  resp r;
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_int_equal(r.status, 413);
  assert_string_equal(r.ctype, "application/json");
  assert_string_equal(r.body, "{\"error\":\"request body too large\"}");
  assert_int_equal(g_calls, 0);

  /* Far past the cap: the server stops reading and hangs up. */
  tclient *d = &g_clients[1];
  client_open(d);
  send_chunked(d, 20000);
  RUN_UNTIL(d->eof, 5);
  assert_true(d->eof);
  assert_int_equal(nresp(d), 0);
  assert_int_equal(g_calls, 0);
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
}

static void test_content_length_over_limit(void **state) {
  (void)state;
  start_server();
  tclient *c = &g_clients[0];
  client_open(c);
  /* Only the head is sent: the answer must not wait for the body. */
  client_sends(c, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 1, 5);
  resp r;
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_int_equal(r.status, 413);
  assert_string_equal(r.ctype, "application/json");
  assert_string_equal(r.body, "{\"error\":\"request body too large\"}");
  RUN_UNTIL(c->eof, 5);
  assert_true(c->eof); /* the body was never read, so the connection ends */

  /* With Expect: 100-continue, no 100 goes out before the refusal. */
  tclient *d = &g_clients[1];
  client_open(d);
  client_sends(d,
               "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 4097\r\n"
               "Expect: 100-continue\r\n\r\n");
  RUN_UNTIL(nresp(d) >= 1, 5);
  int continues = -1;
  assert_int_equal(responses(d, &r, 1, &continues), 1);
  assert_int_equal(continues, 0);
  assert_int_equal(r.status, 413);
  assert_int_equal(g_calls, 0);
}

static void test_huge_headers(void **state) {
  (void)state;
  start_server(); /* max_header: 16 KiB default */
  size_t n = 40000;
  char *req = malloc(n + 256);
  assert_non_null(req);

  /* One header larger than the whole allowance. */
  int len = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
  memset(req + len, 'a', 20000);
  len += 20000;
  len += snprintf(req + len, 64, "\r\n\r\n");
  tclient *a = &g_clients[0];
  client_open(a);
  client_send(a, req, (size_t)len);

  /* Thousands of small headers. */
  len = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 3000; i++) len += snprintf(req + len, 32, "X-H%d: v\r\n", i);
  len += snprintf(req + len, 64, "\r\n");
  tclient *b = &g_clients[1];
  client_open(b);
  client_send(b, req, (size_t)len);

  /* A request line longer than the allowance. */
  len = snprintf(req, 256, "GET /");
  memset(req + len, 'u', 20000);
  len += 20000;
  len += snprintf(req + len, 64, " HTTP/1.1\r\nHost: t\r\n\r\n");
  tclient *u = &g_clients[2];
  client_open(u);
  client_send(u, req, (size_t)len);
  free(req);

  tclient *all[] = {a, b, u};
  for (int i = 0; i < 3; i++) {
    RUN_UNTIL(nresp(all[i]) >= 1 || all[i]->eof, 5);
    resp r = {0};
    assert_int_equal(responses(all[i], &r, 1, NULL), 1);
    assert_true(r.status >= 400 && r.status < 500);
  }
  assert_int_equal(g_calls, 0);

  /* The server is fine afterwards. */
  tclient *ok = &g_clients[3];
  client_open(ok);
  client_sends(ok, "GET /fine HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(ok) >= 1, 5);
  resp r;
  assert_int_equal(responses(ok, &r, 1, NULL), 1);
  assert_int_equal(r.status, 200);
}

static void test_idle_timeout(void **state) {
  (void)state;
  http_server_opts o = test_opts();
  o.idle_timeout_s = 1;
  start_server_opts(&o);
  tclient *silent = &g_clients[0], *partial = &g_clients[1], *kept = &g_clients[2];
  client_open(silent);
  client_open(partial);
  client_sends(partial, "GET / HTTP/1.1\r\nHost: t\r\n");
  client_open(kept);
  client_sends(kept, "GET /k HTTP/1.1\r\nHost: t\r\n\r\n");
  ev_now_update(g_loop);
  double t0 = ev_now(g_loop);
  RUN_UNTIL(silent->eof && partial->eof && kept->eof, 5);
  ev_now_update(g_loop);
  double took = ev_now(g_loop) - t0;
  assert_true(silent->eof);
  assert_true(partial->eof);
  assert_true(kept->eof);
  assert_int_equal(nresp(kept), 1); /* answered, then dropped once idle */
  assert_int_equal(nresp(partial), 0);
  assert_true(took >= 0.9);
  assert_true(took < 4);
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
}

static void test_disconnect_while_suspended(void **state) {
  (void)state;
  start_server();
  g_mode = MODE_LATER;
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c, "POST /gone HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
  RUN_UNTIL(g_calls == 1, 5);
  assert_int_equal(http_server_pending(g_srv), 1);
  client_close(c);
  run_for(0.05);
  /* Still readable: nothing is freed behind the handler's back. */
  assert_string_equal(http_req_path(g_held[0]), "/gone");
  assert_int_equal(http_server_requests_alive(g_srv), 1);
  reply_held(0, 200, "too late");
  assert_int_equal(http_server_pending(g_srv), 0);
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);

  /* Gone in the middle of its body: the handler never hears of it. */
  tclient *d = &g_clients[1];
  client_open(d);
  client_sends(d, "POST /half HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly some");
  RUN_UNTIL(http_server_requests_alive(g_srv) == 1, 5);
  client_close(d);
  RUN_UNTIL(http_server_requests_alive(g_srv) == 0, 5);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
  assert_int_equal(g_calls, 1);

  /* The server still serves. */
  g_mode = MODE_NOW;
  tclient *e = &g_clients[2];
  client_open(e);
  client_sends(e, "GET /still HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(e) >= 1, 5);
  assert_int_equal(nresp(e), 1);
}

static void test_reply_timeout(void **state) {
  (void)state;
  http_server_opts o = test_opts();
  o.reply_timeout_s = 1;
  start_server_opts(&o);
  g_mode = MODE_LATER;
  tclient *c = &g_clients[0];
  client_open(c);
  client_sends(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 1, 5);
  resp r;
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.ctype, "application/json");
  assert_non_null(strstr(r.body, "timed out"));
  /* The handler still owes its reply; the record waits for it. */
  assert_int_equal(http_server_pending(g_srv), 1);
  assert_int_equal(http_server_requests_alive(g_srv), 1);
  assert_string_equal(http_req_path(g_held[0]), "/slow");
  reply_held(0, 200, "late");
  assert_int_equal(http_server_pending(g_srv), 0);
  assert_int_equal(http_server_requests_alive(g_srv), 0);
  run_for(0.05);
  assert_int_equal(nresp(c), 1); /* the late answer went nowhere */
}

static void test_free_with_pending(void **state) {
  (void)state;
  start_server();
  g_mode = MODE_LATER;
  tclient *a = &g_clients[0], *b = &g_clients[1], *idle = &g_clients[2], *half = &g_clients[3];
  client_open(a);
  client_sends(a, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
  client_open(b);
  client_sends(b, "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
  client_open(idle);
  client_open(half);
  client_sends(half, "POST /h HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  RUN_UNTIL(g_calls == 2 && http_server_requests_alive(g_srv) == 3, 5);
  assert_int_equal(g_calls, 2);
  assert_int_equal(http_server_pending(g_srv), 2);
  assert_int_equal(http_server_requests_alive(g_srv), 3);

  g_in_api = 1;
  http_server_free(g_srv);
  g_in_api = 0;
  g_srv = NULL;
  memset(g_held, 0, sizeof g_held); /* freed with the server */

  RUN_UNTIL(a->eof && b->eof && idle->eof && half->eof, 5);
  assert_true(a->eof && b->eof && idle->eof && half->eof);
  tclient *answered[] = {a, b};
  for (int i = 0; i < 2; i++) {
    resp r = {0};
    assert_int_equal(responses(answered[i], &r, 1, NULL), 1);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"error\":\"server shutting down\"}");
  }
  assert_int_equal(nresp(idle), 0);
  assert_int_equal(g_calls, 2);
  /* teardown proves the loop holds no watcher */
}

static void test_free_inside_handler(void **state) {
  (void)state;
  start_server();
  g_mode = MODE_FREE_AFTER_REPLY;
  tclient *a = &g_clients[0], *b = &g_clients[1];
  client_open(a);
  client_open(b);
  client_sends(a, "GET /first HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(a->eof, 5);
  assert_null(g_srv);
  assert_int_equal(g_calls, 1);
  resp r;
  assert_int_equal(responses(a, &r, 1, NULL), 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "bye");
  RUN_UNTIL(b->eof, 5);
  assert_true(b->eof);
  client_close(a);
  client_close(b);
  assert_int_equal(ev_run(g_loop, EVRUN_NOWAIT), 0);

  /* Freed without answering its own request: that one gets 503. */
  start_server();
  g_mode = MODE_FREE_NO_REPLY;
  tclient *c = &g_clients[2];
  client_open(c);
  client_sends(c, "GET /second HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(c->eof, 5);
  assert_null(g_srv);
  assert_int_equal(g_calls, 2);
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_int_equal(r.status, 503);
}

static void test_listen(void **state) {
  (void)state;
  const char *bad[] = {"",        "nonsense",     "127.0.0.1",       "::1:80",
                       "[::1]",   "[::1]80",      "127.0.0.1:99999", "999.1.1.1:80",
                       "host:80", "127.0.0.1:8x", "[nothex]:80",     ":80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    http_server_opts o = test_opts();
    o.listen = bad[i];
    perr e = {{0}};
    http_server *s = http_server_new(g_loop, &o, handler, NULL, &e);
    if (s) fail_msg("accepted listen address '%s'", bad[i]);
    assert_true(e.msg[0] != '\0');
  }

  start_server();
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
  http_server_opts o = test_opts();
  o.listen = addr;
  perr e = {{0}};
  assert_null(http_server_new(g_loop, &o, handler, NULL, &e));
  assert_non_null(strstr(e.msg, "in use"));
  http_server_free(g_srv);
  g_srv = NULL;

  /* IPv6 loopback, where the host has it. */
  o.listen = "[::1]:0";
  g_srv = http_server_new(g_loop, &o, handler, NULL, &e);
  if (!g_srv) {
    fprintf(stderr, "no IPv6 loopback here (%s): skipped\n", e.msg);
    return;
  }
  g_port = http_server_port(g_srv);
  tclient *c = &g_clients[0];
  client_open_family(c, AF_INET6);
  client_sends(c, "GET /v6 HTTP/1.1\r\nHost: t\r\n\r\n");
  RUN_UNTIL(nresp(c) >= 1, 5);
  resp r;
  assert_int_equal(responses(c, &r, 1, NULL), 1);
  assert_string_equal(r.body, "GET /v6 0");
}

static void test_connection_limit(void **state) {
  (void)state;
  http_server_opts o = test_opts();
  o.max_connections = 2;
  start_server_opts(&o);
  g_mode = MODE_LATER;
  tclient *c[3];
  for (int i = 0; i < 3; i++) {
    c[i] = &g_clients[i];
    client_open(c[i]);
    char req[64];
    snprintf(req, sizeof req, "GET /c%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    client_sends(c[i], req);
  }
  RUN_UNTIL(g_calls == 2, 5);
  run_for(0.05);
  assert_int_equal(g_calls, 2); /* the third waits for a free slot */
  reply_held(0, 200, "one");
  reply_held(1, 200, "two");
  /* Closing one connection makes room for the waiting client. */
  RUN_UNTIL(nresp(c[0]) >= 1 && nresp(c[1]) >= 1, 5);
  client_close(c[0]);
  RUN_UNTIL(g_calls == 3, 5);
  assert_int_equal(g_calls, 3);
  reply_held(2, 200, "three");
  RUN_UNTIL(nresp(c[2]) >= 1, 5);
  assert_int_equal(nresp(c[2]), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_headers_query, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_bodies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_error_and_bad_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_later, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chunked_body_over_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_length_over_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_huge_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_while_suspended, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_inside_handler, setup, teardown),
      cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
