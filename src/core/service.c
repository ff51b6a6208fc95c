/* service: sd_notify, the watchdog timer and socket activation (service.h). */
#include "core/service.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static struct {
  struct ev_loop *loop;
  int notify;    /* NOTIFY_SOCKET was set: notifications go somewhere */
  int listen_fd; /* socket-activated listener, -1 when none */
  int warned;    /* a failed notification was logged once */
  ev_timer watchdog;
  ev_signal stall;
  double stall_s;
} svc = {.listen_fd = -1};

static void notify(const char *state) {
  if (!svc.notify) return;
  int rc = sd_notify(0, state);
  if (rc < 0 && !svc.warned) {
    svc.warned = 1;
    log_warn("cannot notify systemd", "error=%s", log_q(strerror(-rc)));
  }
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  notify("WATCHDOG=1");
}

/* Sleeps on the loop on purpose: this is the stuck callback the watchdog
 * must catch.  Signals (SIGTERM) interrupt nanosleep; keep sleeping to the
 * deadline so the stall lasts what the test asked for. */
static void on_stall(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop, (void)w, (void)revents;
  log_warn("test hook: blocking the loop", "seconds=%.3f", svc.stall_s);
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double whole = (double)(long)svc.stall_s;
  end.tv_sec += (time_t)whole;
  end.tv_nsec += (long)((svc.stall_s - whole) * 1e9);
  if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR) {
  }
  log_warn("test hook: loop running again", "%s", "");
}

static int take_listen_fds(perr *e) {
  int n = sd_listen_fds(1);
  if (n < 0) return perr_set(e, "socket activation: %s", strerror(-n));
  if (n == 0) return 0;
  if (n > 1)
    return perr_set(e, "socket activation: systemd passed %d sockets; promptd takes one "
                       "(one ListenStream= in promptd.socket)", n);
  int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) <= 0)
    return perr_set(e, "socket activation: fd %d is not a listening TCP socket "
                       "(promptd.socket needs ListenStream=ADDR:PORT)", fd);
  svc.listen_fd = fd;
  return 0;
}

static void arm_stall_hook(void) {
  const char *hooks = getenv("PROMPTD_TEST_HOOKS");
  if (!hooks || strcmp(hooks, "1") != 0) return;
  const char *s = getenv("PROMPTD_TEST_STALL_S");
  char *end = NULL;
  svc.stall_s = s && *s ? strtod(s, &end) : 5.0;
  if (end && (*end || svc.stall_s < 0 || svc.stall_s > 3600)) svc.stall_s = 5.0;
  ev_signal_init(&svc.stall, on_stall, SIGUSR2);
  ev_signal_start(svc.loop, &svc.stall);
  log_warn("test hooks on: SIGUSR2 blocks the loop", "seconds=%.3f", svc.stall_s);
}

int service_init(struct ev_loop *loop, perr *e) {
  svc.loop = loop;
  if (take_listen_fds(e)) return -1;
  const char *ns = getenv("NOTIFY_SOCKET");
  svc.notify = ns && *ns;
  uint64_t usec = 0;
  int wd = sd_watchdog_enabled(0, &usec);
  if (wd < 0) log_warn("watchdog settings ignored", "error=%s", log_q(strerror(-wd)));
  if (wd > 0 && svc.notify && usec > 0) {
    double half = (double)usec / 2e6;
    ev_timer_init(&svc.watchdog, on_watchdog, half, half);
    ev_timer_start(loop, &svc.watchdog);
    log_info("watchdog armed", "interval_s=%.3f ping_s=%.3f", (double)usec / 1e6, half);
  }
  arm_stall_hook();
  return 0;
}

void service_ready(void) {
  if (!svc.notify) return;
  char msg[96];
  snprintf(msg, sizeof msg, "READY=1\nMAINPID=%ld\nSTATUS=serving", (long)getpid());
  notify(msg);
}

void service_reloading(void) {
  if (!svc.notify) return;
  /* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the
   * reload to its request; older managers ignore it. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char msg[96];
  snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
           (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
  notify(msg);
}

void service_stopping(void) { notify("STOPPING=1\nSTATUS=stopping"); }

void service_status(const char *fmt, ...) {
  if (!svc.notify) return;
  char msg[512] = "STATUS=";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + 7, sizeof msg - 7, fmt, ap);
  va_end(ap);
  /* A newline would start another assignment: STATUS is one line. */
  for (char *p = msg; *p; p++)
    if (*p == '\n') *p = ' ';
  notify(msg);
}

void service_free(void) {
  if (!svc.loop) return;
  ev_timer_stop(svc.loop, &svc.watchdog);
  ev_signal_stop(svc.loop, &svc.stall);
  svc.loop = NULL;
}

int service_listen_fd(void) { return svc.listen_fd; }
