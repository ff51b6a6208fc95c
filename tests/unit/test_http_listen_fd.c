/* http_server on an adopted listening socket (http_server_opts.listen_fd, as
 * systemd socket activation passes it): it serves, reports the socket's
 * port and closes it when freed; anything but a listening TCP socket is
 * refused and closed, as the header promises. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/http_server.h"
#include "testutil.h"

static int g_calls;

static void handler(void *ud, http_req *r) {
  (void)ud;
  g_calls++;
  static const char body[] = "adopted";
  http_req_reply(r, 200, "text/plain", body, sizeof body - 1, NULL);
}

static int is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

static int tcp_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 16), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_serves_adopted_socket(void **state) {
  (void)state;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  int port = 0;
  int fd = tcp_listener(&port);
  http_server_opts o = {.listen = "ignored:0", .listen_fd = fd};
  perr e = {{0}};
  http_server *s = http_server_new(loop, &o, handler, NULL, &e);
  assert_non_null(s);
  assert_int_equal(http_server_port(s), port);

  /* The connection waits in the adopted socket's backlog until the loop
   * runs MHD; the client never blocks the loop. */
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  static const char req[] = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  assert_int_equal(send(c, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
  char got[2048] = "";
  size_t n = 0;
  double end = now_s() + 5;
  while (now_s() < end && !strstr(got, "adopted")) {
    ev_run(loop, EVRUN_NOWAIT);
    ssize_t k = recv(c, got + n, sizeof got - 1 - n, MSG_DONTWAIT);
    if (k > 0) n += (size_t)k;
    got[n] = '\0';
    if (k <= 0) usleep(2000);
  }
  close(c);
  assert_non_null(strstr(got, "HTTP/1.1 200"));
  assert_non_null(strstr(got, "adopted"));
  assert_int_equal(g_calls, 1);

  http_server_free(s);
  assert_false(is_open(fd));
  ev_loop_destroy(loop);
}

static void refused(int fd, const char *why) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  http_server_opts o = {.listen_fd = fd};
  perr e = {{0}};
  assert_null(http_server_new(loop, &o, handler, NULL, &e));
  if (!strstr(e.msg, why)) fail_msg("error '%s' does not say '%s'", e.msg, why);
  assert_false(is_open(fd));
  ev_loop_destroy(loop);
}

static void test_refuses_non_listener(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  refused(fd, "not a listening TCP socket");
}

static void test_refuses_datagram(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  refused(fd, "not a listening TCP socket");
}

static void test_refuses_unix_listener(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s/s", dir);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  refused(fd, "not a listening TCP socket");
  tu_rmtree(dir);
  free(dir);
}

static void test_refuses_closed_fd(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  close(fd);
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  http_server_opts o = {.listen_fd = fd};
  perr e = {{0}};
  assert_null(http_server_new(loop, &o, handler, NULL, &e));
  assert_non_null(strstr(e.msg, "fd"));
  ev_loop_destroy(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serves_adopted_socket),
      cmocka_unit_test(test_refuses_non_listener),
      cmocka_unit_test(test_refuses_datagram),
      cmocka_unit_test(test_refuses_unix_listener),
      cmocka_unit_test(test_refuses_closed_fd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
