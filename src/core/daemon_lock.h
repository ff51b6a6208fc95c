/*
 * daemon_lock: one daemon per database.  `serve` holds an exclusive flock
 * on DB.lock (which records its pid) for as long as it runs; the kernel
 * drops the lock when the process dies, even by SIGKILL, so a crash never
 * leaves a stale lock.  Other commands read it to say who is serving.
 */
#ifndef PROMPTD_DAEMON_LOCK_H
#define PROMPTD_DAEMON_LOCK_H

#include <sys/types.h>

#include "core/err.h"

/* Returns the held lock's fd, or -1 with e set (another daemon: its pid). */
int daemon_lock_take(const char *db_path, perr *e);
void daemon_lock_drop(int fd);
/* pid of the serving daemon, 0 when none. */
pid_t daemon_lock_owner(const char *db_path);

#endif
