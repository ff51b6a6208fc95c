/*
 * service: promptd as a systemd service (sd_notify and socket activation,
 * through libsystemd).
 *
 * Notifications
 *   systemd starts a Type=notify unit with NOTIFY_SOCKET set; the daemon
 *   tells it READY=1 once it really serves (store open, migrations applied,
 *   recipes imported, engine started, every listener bound), STOPPING=1 when
 *   a stop signal arrives, RELOADING=1 / READY=1 around a reload and STATUS=
 *   lines for `systemctl status`.  Without NOTIFY_SOCKET every call here is
 *   a cheap no-op, so the same binary runs in a terminal or under any other
 *   supervisor.
 *
 * Watchdog
 *   With WatchdogSec= systemd sets WATCHDOG_USEC (and WATCHDOG_PID, which
 *   must be this process).  service_init then arms a repeating ev_timer on
 *   the loop that sends WATCHDOG=1 at half that interval.  The ping comes
 *   from the loop itself, so a loop stuck in a callback stops pinging and
 *   systemd kills and restarts the daemon (Restart=on-failure).
 *
 * Socket activation
 *   With promptd.socket systemd opens the webhook listener and passes it as
 *   fd 3 (LISTEN_FDS=1, LISTEN_PID=this process).  service_init takes it
 *   (and removes LISTEN_* from the environment, so nothing started later
 *   inherits them); service_listen_fd returns it for the webhook server.
 *   Anything other than one listening stream socket is refused.
 *
 * Test hook (tests only, never set in a unit)
 *   With PROMPTD_TEST_HOOKS=1 in the environment, SIGUSR2 makes the loop
 *   block on purpose: the signal's callback sleeps PROMPTD_TEST_STALL_S
 *   seconds (default 5) on the loop, as a stuck callback would.  The
 *   integration test uses it to see the watchdog pings stop and resume.
 *   Without the variable SIGUSR2 is left alone.
 *
 * State is process-wide (there is one loop and one service manager);
 * service_init is called once, before the loop runs, service_free after.
 */
#ifndef PROMPTD_CORE_SERVICE_H
#define PROMPTD_CORE_SERVICE_H

#include "core/err.h"

struct ev_loop;

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC/WATCHDOG_PID and LISTEN_FDS/LISTEN_PID,
 * arms the watchdog timer and the test hook on loop (the default loop: the
 * hook is a signal watcher).  -1 with e set when systemd passed sockets
 * promptd cannot use. */
int service_init(struct ev_loop *loop, perr *e);
/* READY=1 with MAINPID and STATUS=serving. */
void service_ready(void);
/* RELOADING=1: a reload has begun; service_ready() when it is over. */
void service_reloading(void);
/* STOPPING=1: shutdown has begun (systemd then waits for the exit). */
void service_stopping(void);
/* STATUS=<formatted text>, shown by `systemctl status`. */
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stops the watchers service_init started.  Harmless without init and twice. */
void service_free(void);

/* The socket-activated listening socket, or -1 when there is none.  The
 * webhook server that takes it owns it from then on. */
int service_listen_fd(void);

#endif
