/*
 * http_client against a real HTTP/1.1 server on loopback.
 *
 * Each test forks a small keep-alive server (below, "the server"), runs a
 * fresh libev loop and client against it, and ends by proving the loop is
 * left with no active watcher once the client is freed.  Behaviours are
 * chosen by path:
 *   /ok             200, JSON body, custom and repeated headers
 *   /slow?ms=N      200 after N ms (other connections keep being served)
 *   /big            200 with a 2 MiB body and a Content-Length
 *   /bigchunked     the same body, chunked (no length known in advance)
 *   /status/503     503 with Retry-After: 7
 *   /close          closes the connection without answering
 *   /hang           never answers
 *   /echo           describes the request it got (method, body, headers)
 *   /stats          how many connections the server has accepted so far
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/http_client.h"

/* ---- the server (runs in a child process) ------------------------------- */

#define SRV_MAX_CONNS 512
#define SRV_BIG ((size_t)2 << 20)

typedef struct sconn {
  int fd;
  int hang;
  long long due; /* when a delayed answer is due (ms), 0 if none */
  size_t len;
  char in[32768];
} sconn;

static sconn srv_conns[SRV_MAX_CONNS];
static size_t srv_nconns;
static long srv_accepts;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int send_response(int fd, const char *status, const char *extra, const char *body,
                         size_t blen) {
  char head[1024];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status, blen,
                   extra);
  if (send_all(fd, head, (size_t)n)) return -1;
  return send_all(fd, body, blen);
}

static int send_big(int fd, int chunked) {
  static char block[65536];
  memset(block, 'x', sizeof block);
  if (!chunked) {
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", SRV_BIG);
    if (send_all(fd, head, (size_t)n)) return -1;
    for (size_t sent = 0; sent < SRV_BIG; sent += sizeof block)
      if (send_all(fd, block, sizeof block)) return -1;
    return 0;
  }
  const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  if (send_all(fd, head, strlen(head))) return -1;
  for (size_t sent = 0; sent < SRV_BIG; sent += sizeof block) {
    if (send_all(fd, "10000\r\n", 7) || send_all(fd, block, sizeof block) ||
        send_all(fd, "\r\n", 2))
      return -1;
  }
  return send_all(fd, "0\r\n\r\n", 5);
}

/* Answers complete requests in c->in.  -1: close the connection. */
static int srv_process(sconn *c) {
  while (!c->hang && !c->due) {
    char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
    if (!end) return c->len == sizeof c->in ? -1 : 0;
    size_t head_len = (size_t)(end - c->in) + 4;
    char head[8192];
    if (head_len >= sizeof head) return -1;
    memcpy(head, c->in, head_len);
    head[head_len] = '\0';
    char method[16], path[1024];
    if (sscanf(head, "%15s %1023s", method, path) != 2) return -1;
    size_t clen = 0;
    int expect = 0;
    char custom[128] = "";
    for (char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
      char *l = line + 2;
      if (strncasecmp(l, "content-length:", 15) == 0) clen = strtoul(l + 15, NULL, 10);
      if (strncasecmp(l, "expect:", 7) == 0) expect = 1;
      if (strncasecmp(l, "x-custom:", 9) == 0) sscanf(l + 9, " %127[^\r]", custom);
    }
    if (c->len < head_len + clen) return c->len == sizeof c->in ? -1 : 0;
    const unsigned char *body = (const unsigned char *)c->in + head_len;

    int rc = 0;
    if (strcmp(path, "/ok") == 0) {
      const char *b = "{\"ok\":true}";
      rc = send_response(c->fd, "200 OK",
                         "Content-Type: application/json\r\nX-Request-Id: req-123\r\n"
                         "X-Multi: one\r\nX-Multi: two\r\nX-Spaces:   padded value  \r\n",
                         b, strlen(b));
    } else if (strncmp(path, "/slow?ms=", 9) == 0) {
      c->due = now_ms() + strtol(path + 9, NULL, 10);
      if (c->due == 0) c->due = 1;
    } else if (strcmp(path, "/big") == 0) {
      rc = send_big(c->fd, 0);
    } else if (strcmp(path, "/bigchunked") == 0) {
      rc = send_big(c->fd, 1);
    } else if (strcmp(path, "/status/503") == 0) {
      const char *b = "busy";
      rc = send_response(c->fd, "503 Service Unavailable", "Retry-After: 7\r\n", b, strlen(b));
    } else if (strcmp(path, "/close") == 0) {
      return -1;
    } else if (strcmp(path, "/hang") == 0) {
      c->hang = 1;
    } else if (strcmp(path, "/echo") == 0) {
      unsigned long sum = 0;
      for (size_t i = 0; i < clen; i++) sum = sum * 31 + body[i];
      char b[512];
      int n = snprintf(b, sizeof b, "method=%s len=%zu expect=%d sum=%lu x-custom=%s", method, clen,
                       expect, sum & 0xffffffffUL, custom);
      rc = send_response(c->fd, "200 OK", "", b, (size_t)n);
    } else if (strcmp(path, "/stats") == 0) {
      char b[64];
      int n = snprintf(b, sizeof b, "%ld", srv_accepts);
      rc = send_response(c->fd, "200 OK", "", b, (size_t)n);
    } else {
      rc = send_response(c->fd, "404 Not Found", "", "", 0);
    }
    if (rc) return -1;
    memmove(c->in, c->in + head_len + clen, c->len - head_len - clen);
    c->len -= head_len + clen;
  }
  return 0;
}

static void srv_close(size_t i) {
  close(srv_conns[i].fd);
  srv_conns[i] = srv_conns[--srv_nconns];
}

static void __attribute__((noreturn)) srv_run(int lfd) {
  static struct pollfd pfd[SRV_MAX_CONNS + 1];
  for (;;) {
    long long now = now_ms(), next = -1;
    for (size_t i = 0; i < srv_nconns; i++)
      if (srv_conns[i].due && (next < 0 || srv_conns[i].due < next)) next = srv_conns[i].due;
    int timeout = next < 0 ? -1 : (int)(next > now ? next - now : 0);
    pfd[0].fd = lfd;
    pfd[0].events = srv_nconns < SRV_MAX_CONNS ? POLLIN : 0;
    for (size_t i = 0; i < srv_nconns; i++) {
      pfd[i + 1].fd = srv_conns[i].fd;
      pfd[i + 1].events = POLLIN;
      pfd[i + 1].revents = 0;
    }
    size_t polled = srv_nconns;
    if (poll(pfd, polled + 1, timeout) < 0 && errno != EINTR) _exit(1);
    now = now_ms();
    /* Walk backwards: srv_close moves the last connection into slot i. */
    for (size_t k = polled; k-- > 0;) {
      sconn *c = &srv_conns[k];
      int bad = 0;
      if (c->due && c->due <= now) {
        c->due = 0;
        bad = send_response(c->fd, "200 OK", "", "slow", 4) || srv_process(c);
      }
      if (!bad && (pfd[k + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
        if (r <= 0)
          bad = 1;
        else {
          c->len += (size_t)r;
          bad = srv_process(c);
        }
      }
      if (bad) srv_close(k);
    }
    if (pfd[0].revents & POLLIN) {
      int fd = accept(lfd, NULL, NULL);
      if (fd >= 0) {
        srv_accepts++;
        memset(&srv_conns[srv_nconns], 0, sizeof srv_conns[0]);
        srv_conns[srv_nconns++].fd = fd;
      }
    }
  }
}

typedef struct server {
  pid_t pid;
  int port;
} server;

static void server_start(server *s) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* Never outlive the test, even one that aborts before server_stop. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() == 1) _exit(1);
    close(p[0]);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 512) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen))
      _exit(1);
    int port = ntohs(a.sin_port);
    if (write(p[1], &port, sizeof port) != (ssize_t)sizeof port) _exit(1);
    close(p[1]);
    srv_run(lfd);
  }
  close(p[1]);
  int port = 0;
  assert_int_equal(read(p[0], &port, sizeof port), (ssize_t)sizeof port);
  close(p[0]);
  s->pid = pid;
  s->port = port;
}

static void server_stop(server *s) {
  if (s->pid <= 0) return;
  kill(s->pid, SIGKILL);
  int st;
  while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
  }
  s->pid = 0;
}

/* ---- fixture ------------------------------------------------------------ */

static struct ev_loop *g_loop;
static http_client *g_client;
static server g_srv;
static int g_in_api;     /* set around start and cancel */
static int g_violations; /* done called from inside start or cancel */
/* Set by teardown: a failed test may leave calls whose results lived on its
 * stack, so the done callbacks run by http_client_free must not write. */
static int g_tearing_down;

typedef struct result {
  int calls;
  int transport_error;
  int timed_out;
  long status;
  double total_s;
  size_t body_len;
  char body[512];
  char error[CURL_ERROR_SIZE];
  char req_id[64], req_id_upper[64], multi[64], ctype[64], retry_after[64], spaces[64];
  int absent_is_null;
} result;

static void copy_header(const http_response *r, const char *name, char *out, size_t n) {
  const char *v = http_response_header(r, name);
  snprintf(out, n, "%s", v ? v : "(null)");
}

static void record(result *res, const http_response *r) {
  if (g_tearing_down) return;
  if (g_in_api) g_violations++;
  res->calls++;
  res->transport_error = r->transport_error;
  res->timed_out = r->timed_out;
  res->status = r->status;
  res->total_s = r->total_s;
  res->body_len = r->body_len;
  snprintf(res->body, sizeof res->body, "%s", r->body);
  snprintf(res->error, sizeof res->error, "%s", r->error);
  copy_header(r, "x-request-id", res->req_id, sizeof res->req_id);
  copy_header(r, "X-REQUEST-ID", res->req_id_upper, sizeof res->req_id_upper);
  copy_header(r, "x-multi", res->multi, sizeof res->multi);
  copy_header(r, "Content-Type", res->ctype, sizeof res->ctype);
  copy_header(r, "retry-after", res->retry_after, sizeof res->retry_after);
  copy_header(r, "x-spaces", res->spaces, sizeof res->spaces);
  res->absent_is_null = http_response_header(r, "x-absent") == NULL;
}

static void on_done(void *ud, const http_response *r) { record(ud, r); }

static void url_for(char *out, size_t n, const char *path) {
  snprintf(out, n, "http://127.0.0.1:%d%s", g_srv.port, path);
}

static http_call *start_req(const http_request *req, http_done_fn done, void *ud) {
  http_call *call = NULL;
  perr e;
  g_in_api = 1;
  int rc = http_client_start(g_client, req, done, ud, &call, &e);
  g_in_api = 0;
  if (rc) fail_msg("http_client_start: %s", e.msg);
  return call;
}

static http_call *start_get(const char *path, result *res) {
  char url[256];
  url_for(url, sizeof url, path);
  http_request req = {.method = "GET", .url = url};
  return start_req(&req, on_done, res);
}

static void cancel(http_call *call) {
  g_in_api = 1;
  http_call_cancel(call);
  g_in_api = 0;
}

static int g_guard_fired;
static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  g_guard_fired = 1;
}

/* Runs the loop until *count reaches target, or max_s passes (returns -1). */
static int run_until(const int *count, int target, double max_s) {
  ev_timer guard;
  ev_timer_init(&guard, guard_cb, max_s, 0.);
  g_guard_fired = 0;
  ev_timer_start(g_loop, &guard);
  while (*count < target && !g_guard_fired) ev_run(g_loop, EVRUN_ONCE);
  ev_timer_stop(g_loop, &guard);
  return *count >= target ? 0 : -1;
}

/* Runs the loop for s seconds. */
static void run_for(double s) {
  int never = 0;
  run_until(&never, 1, s);
}

static int setup(void **state) {
  (void)state;
  log_set_level(LOG_ERROR);
  server_start(&g_srv);
  g_loop = ev_loop_new(EVFLAG_AUTO);
  if (!g_loop) return -1;
  perr e;
  g_client = http_client_new(g_loop, &e);
  g_violations = 0;
  return g_client ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  g_tearing_down = 1;
  http_client_free(g_client);
  g_tearing_down = 0;
  g_client = NULL;
  /* The client left nothing behind on the loop: no active watcher. */
  int left = ev_run(g_loop, EVRUN_NOWAIT);
  ev_loop_destroy(g_loop);
  g_loop = NULL;
  server_stop(&g_srv);
  if (left) fprintf(stderr, "active watchers left on the loop\n");
  if (g_violations) fprintf(stderr, "done called from inside start or cancel\n");
  return left || g_violations ? -1 : 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_ok_headers(void **state) {
  (void)state;
  result r = {0};
  start_get("/ok", &r);
  assert_int_equal(r.calls, 0); /* never from inside start */
  assert_int_equal(http_client_in_flight(g_client), 1);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.transport_error, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.error, "");
  assert_string_equal(r.body, "{\"ok\":true}");
  assert_int_equal(r.body_len, strlen("{\"ok\":true}"));
  assert_string_equal(r.req_id, "req-123");
  assert_string_equal(r.req_id_upper, "req-123");
  assert_string_equal(r.multi, "two"); /* the last of repeated headers */
  assert_string_equal(r.ctype, "application/json");
  assert_string_equal(r.spaces, "padded value");
  assert_true(r.absent_is_null);
  assert_true(r.total_s > 0);
  assert_int_equal(http_client_in_flight(g_client), 0);
  run_for(0.05);
  assert_int_equal(r.calls, 1); /* exactly once */
}

static void test_post_body_copied_no_expect(void **state) {
  (void)state;
  char url[256];
  url_for(url, sizeof url, "/echo");
  size_t n = 4096;
  char *body = malloc(n);
  assert_non_null(body);
  unsigned long sum = 0;
  for (size_t i = 0; i < n; i++) {
    body[i] = (char)('a' + i % 26);
    sum = sum * 31 + (unsigned char)body[i];
  }
  const char *headers[] = {"X-Custom: hello", "Content-Type: text/plain", NULL};
  http_request req = {
      .method = "POST", .url = url, .headers = headers, .body = body, .body_len = n};
  result r = {0};
  start_req(&req, on_done, &r);
  memset(body, 0, n); /* the body was copied at start */
  free(body);

  http_request del = {.method = "DELETE", .url = url};
  result d = {0};
  start_req(&del, on_done, &d);

  const char *hput[] = {"X-Custom: put", NULL};
  http_request put = {.method = "PUT", .url = url, .headers = hput, .body = "abc", .body_len = 3};
  result p = {0};
  start_req(&put, on_done, &p);

  /* Well under curl's one-second wait for a 100 Continue. */
  assert_int_equal(run_until(&r.calls, 1, 0.8), 0);
  assert_int_equal(run_until(&d.calls, 1, 5), 0);
  assert_int_equal(run_until(&p.calls, 1, 5), 0);
  char want[256];
  snprintf(want, sizeof want, "method=POST len=4096 expect=0 sum=%lu x-custom=hello",
           sum & 0xffffffffUL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, want);
  assert_string_equal(d.body, "method=DELETE len=0 expect=0 sum=0 x-custom=");
  assert_int_equal(p.status, 200);
  assert_true(strncmp(p.body, "method=PUT len=3 expect=0 ", 26) == 0);
  assert_non_null(strstr(p.body, "x-custom=put"));
}

static void test_status_503(void **state) {
  (void)state;
  result r = {0};
  start_get("/status/503", &r);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(r.transport_error, 0); /* a status is not a transport error */
  assert_int_equal(r.status, 503);
  assert_string_equal(r.retry_after, "7");
  assert_string_equal(r.body, "busy");
}

/* Over cleartext HTTP/1.1 a slow answer must not hold back other calls to
 * the same host (curl's PIPEWAIT would, until the slow response arrives). */
static void test_slow_call_does_not_block_others(void **state) {
  (void)state;
  result slow = {0}, fast = {0};
  http_call *s = start_get("/slow?ms=3000", &slow);
  run_for(0.05);
  start_get("/ok", &fast);
  assert_int_equal(run_until(&fast.calls, 1, 1), 0);
  assert_int_equal(fast.status, 200);
  assert_int_equal(slow.calls, 0);
  cancel(s);
  assert_int_equal(run_until(&slow.calls, 1, 1), 0);
  assert_int_equal(slow.transport_error, HTTP_CANCELLED);
}

static int g_batch_done, g_batch_ok;
static void on_batch(void *ud, const http_response *r) {
  (void)ud;
  if (g_tearing_down) return;
  if (g_in_api) g_violations++;
  g_batch_done++;
  if (r->transport_error == 0 && r->status == 200 && strcmp(r->body, "slow") == 0) g_batch_ok++;
}

static long fetch_accepts(void) {
  result s = {0};
  start_get("/stats", &s);
  assert_int_equal(run_until(&s.calls, 1, 5), 0);
  assert_int_equal(s.status, 200);
  return strtol(s.body, NULL, 10);
}

static void run_batch(int n) {
  g_batch_done = g_batch_ok = 0;
  char url[256];
  url_for(url, sizeof url, "/slow?ms=20");
  http_request req = {.method = "GET", .url = url};
  for (int i = 0; i < n; i++) start_req(&req, on_batch, NULL);
  assert_int_equal(g_batch_done, 0);
  assert_int_equal(http_client_in_flight(g_client), (size_t)n);
  assert_int_equal(run_until(&g_batch_done, n, 20), 0);
  assert_int_equal(g_batch_ok, n);
  assert_int_equal(http_client_in_flight(g_client), 0);
}

static void test_concurrent_reuse(void **state) {
  (void)state;
  run_batch(100);
  long first = fetch_accepts();
  /* At most the per-host limit (64) at once, the rest reuse them. */
  assert_true(first >= 1);
  assert_true(first <= 65);
  /* A second wave finds the cached connections. */
  run_batch(100);
  long second = fetch_accepts();
  assert_true(second - first < 20);
}

static void test_concurrent_limited_hosts(void **state) {
  (void)state;
  perr e;
  assert_int_equal(http_client_set_max_host_connections(g_client, 4, &e), 0);
  assert_int_equal(http_client_set_max_host_connections(g_client, 0, &e), -1);
  run_batch(100);
  long accepts = fetch_accepts();
  assert_true(accepts >= 1);
  assert_true(accepts <= 5); /* far fewer than 100 */
}

static void test_timeout(void **state) {
  (void)state;
  char url[256];
  url_for(url, sizeof url, "/hang");
  http_request req = {.method = "GET", .url = url, .timeout_ms = 300};
  result r = {0};
  start_req(&req, on_done, &r);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(r.timed_out, 1);
  assert_int_equal(r.transport_error, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal(r.status, 0);
  assert_true(r.error[0] != '\0');
  assert_true(r.total_s >= 0.25 && r.total_s < 3);
  assert_true(!strcmp(r.req_id, "(null)"));
}

static void test_cap_exceeded(void **state) {
  (void)state;
  char url[256], url2[256];
  url_for(url, sizeof url, "/big");
  url_for(url2, sizeof url2, "/bigchunked");
  http_request req = {.method = "GET", .url = url, .max_response = 65536};
  http_request req2 = {.method = "GET", .url = url2, .max_response = 65536};
  result r = {0}, r2 = {0};
  start_req(&req, on_done, &r);
  start_req(&req2, on_done, &r2);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(run_until(&r2.calls, 1, 5), 0);
  assert_true(r.transport_error > 0);
  assert_true(r2.transport_error > 0);
  assert_int_equal(r.status, 0);
  assert_int_equal(r2.status, 0);
  assert_int_equal(r.timed_out, 0);
  assert_non_null(strstr(r.error, "larger than 65536"));
  assert_non_null(strstr(r2.error, "larger than 65536"));
  assert_int_equal(r.body_len, 0);
  /* The client carries on. */
  result ok = {0};
  start_get("/ok", &ok);
  assert_int_equal(run_until(&ok.calls, 1, 5), 0);
  assert_int_equal(ok.status, 200);
}

static void test_closed_without_response(void **state) {
  (void)state;
  result r = {0};
  start_get("/close", &r);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_true(r.transport_error > 0);
  assert_int_equal(r.status, 0);
  assert_true(r.error[0] != '\0');
}

static void test_connection_refused(void **state) {
  (void)state;
  /* A port nobody listens on: bound, never listened, then released. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  close(fd);
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", ntohs(a.sin_port));
  http_request req = {.method = "GET", .url = url};
  result r = {0};
  start_req(&req, on_done, &r);
  assert_int_equal(r.calls, 0);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(r.transport_error, CURLE_COULDNT_CONNECT);
  assert_int_equal(r.status, 0);
  assert_true(r.error[0] != '\0');
}

static void test_bad_requests(void **state) {
  (void)state;
  result r = {0};
  perr e;
  e.msg[0] = '\0';
  http_request noturl = {.method = "GET", .url = NULL};
  http_call *call = (http_call *)&r;
  assert_int_equal(http_client_start(g_client, &noturl, on_done, &r, &call, &e), -1);
  assert_null(call);
  assert_true(e.msg[0] != '\0');
  /* Other schemes are refused, by curl, through done, later. */
  http_request file = {.method = "GET", .url = "file:///etc/passwd"};
  start_req(&file, on_done, &r);
  assert_int_equal(r.calls, 0);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  assert_int_equal(r.transport_error, CURLE_UNSUPPORTED_PROTOCOL);
  run_for(0.05);
  assert_int_equal(r.calls, 1);
}

static void test_cancel(void **state) {
  (void)state;
  /* Before the loop ever ran. */
  result a = {0};
  http_call *ca = start_get("/slow?ms=5000", &a);
  cancel(ca);
  assert_int_equal(a.calls, 0); /* never inside cancel */
  assert_int_equal(http_client_in_flight(g_client), 1);
  assert_int_equal(run_until(&a.calls, 1, 1), 0);
  assert_int_equal(a.transport_error, HTTP_CANCELLED);
  assert_int_equal(a.status, 0);
  assert_int_equal(http_client_in_flight(g_client), 0);

  /* Mid-transfer, twice before done. */
  result b = {0};
  http_call *cb = start_get("/slow?ms=5000", &b);
  run_for(0.1);
  assert_int_equal(b.calls, 0);
  cancel(cb);
  cancel(cb);
  assert_int_equal(b.calls, 0);
  assert_int_equal(run_until(&b.calls, 1, 1), 0);
  assert_int_equal(b.transport_error, HTTP_CANCELLED);
  run_for(0.1);
  assert_int_equal(a.calls, 1);
  assert_int_equal(b.calls, 1);

  /* The connection of a cancelled transfer is not handed to the next. */
  result c = {0};
  start_get("/ok", &c);
  assert_int_equal(run_until(&c.calls, 1, 5), 0);
  assert_int_equal(c.status, 200);
}

/* A done callback that starts the next call, and cancels a sibling. */
typedef struct chain {
  int remaining;
  int calls;
  int ok;
  http_call *victim;
  result victim_res;
} chain;

static void on_chain(void *ud, const http_response *r) {
  chain *ch = ud;
  if (g_tearing_down) return;
  if (g_in_api) g_violations++;
  ch->calls++;
  if (r->status == 200) ch->ok++;
  if (ch->victim) {
    http_call_cancel(ch->victim);
    ch->victim = NULL;
  }
  if (ch->remaining > 0) {
    ch->remaining--;
    char url[256];
    url_for(url, sizeof url, "/ok");
    http_request req = {.method = "GET", .url = url};
    perr e;
    g_in_api = 1;
    int rc = http_client_start(g_client, &req, on_chain, ch, NULL, &e);
    g_in_api = 0;
    if (rc) ch->remaining = -100;
  }
}

static void test_start_and_cancel_from_done(void **state) {
  (void)state;
  chain ch = {.remaining = 5};
  ch.victim = start_get("/slow?ms=5000", &ch.victim_res);
  char url[256];
  url_for(url, sizeof url, "/ok");
  http_request req = {.method = "GET", .url = url};
  start_req(&req, on_chain, &ch);
  assert_int_equal(run_until(&ch.calls, 6, 5), 0);
  assert_int_equal(ch.ok, 6);
  assert_int_equal(ch.remaining, 0);
  assert_int_equal(run_until(&ch.victim_res.calls, 1, 1), 0);
  assert_int_equal(ch.victim_res.transport_error, HTTP_CANCELLED);
  assert_int_equal(http_client_in_flight(g_client), 0);
}

static void test_free_with_calls_in_flight(void **state) {
  (void)state;
  result r[5] = {{0}};
  for (int i = 0; i < 4; i++) start_get("/hang", &r[i]);
  http_call *c4 = start_get("/slow?ms=5000", &r[4]);
  run_for(0.1);
  cancel(c4); /* its done is still pending when the client goes */
  for (int i = 0; i < 5; i++) assert_int_equal(r[i].calls, 0);
  http_client_free(g_client);
  g_client = NULL;
  /* Each done ran exactly once, inside http_client_free. */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].transport_error, HTTP_CANCELLED);
  }
  assert_int_equal(ev_run(g_loop, EVRUN_NOWAIT), 0);
}

/* A done callback that frees the whole client, with another call in flight. */
static result g_other;
static int g_freed_in_done;
static void on_free_client(void *ud, const http_response *r) {
  if (g_tearing_down) return;
  record(ud, r);
  /* Its done runs inside this call; a start now fails. */
  http_client_free(g_client);
  assert_int_equal(g_other.calls, 1);
  char url[256];
  url_for(url, sizeof url, "/ok");
  http_request req = {.method = "GET", .url = url};
  perr e;
  g_freed_in_done = http_client_start(g_client, &req, on_done, &g_other, NULL, &e) == -1;
}

static void test_free_from_done(void **state) {
  (void)state;
  memset(&g_other, 0, sizeof g_other);
  g_freed_in_done = 0;
  result r = {0};
  start_get("/hang", &g_other);
  char url[256];
  url_for(url, sizeof url, "/ok");
  http_request req = {.method = "GET", .url = url};
  start_req(&req, on_free_client, &r);
  assert_int_equal(run_until(&r.calls, 1, 5), 0);
  g_client = NULL; /* freed once the callback returned */
  assert_int_equal(r.status, 200);
  assert_int_equal(g_other.calls, 1);
  assert_int_equal(g_other.transport_error, HTTP_CANCELLED);
  assert_true(g_freed_in_done);
  assert_int_equal(ev_run(g_loop, EVRUN_NOWAIT), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ok_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_body_copied_no_expect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_503, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_call_does_not_block_others, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_limited_hosts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cap_exceeded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_closed_without_response, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_and_cancel_from_done, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_with_calls_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_from_done, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
