#include "core/daemon_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void lock_path(const char *db_path, char *out, size_t size) {
  snprintf(out, size, "%s.lock", db_path);
}

static pid_t read_pid(int fd) {
  char buf[32] = {0};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  long v = strtol(buf, NULL, 10);
  return v > 0 ? (pid_t)v : 0;
}

int daemon_lock_take(const char *db_path, perr *e) {
  char path[4096];
  lock_path(db_path, path, sizeof path);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return perr_set(e, "cannot open lock file %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    int err = errno;
    pid_t pid = read_pid(fd);
    close(fd);
    if (err == EWOULDBLOCK)
      return perr_set(e, "another promptd (pid %ld) is already serving %s", (long)pid, db_path);
    return perr_set(e, "cannot lock %s: %s", path, strerror(err));
  }
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
    close(fd);
    return perr_set(e, "cannot write lock file %s: %s", path, strerror(errno));
  }
  return fd;
}

void daemon_lock_drop(int fd) {
  /* Closing releases the flock; the pid left in the file is only a hint,
   * read solely while someone holds the lock. */
  if (fd >= 0) close(fd);
}

pid_t daemon_lock_owner(const char *db_path) {
  char path[4096];
  lock_path(db_path, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  pid_t pid = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) == 0)
    flock(fd, LOCK_UN);
  else if (errno == EWOULDBLOCK)
    pid = read_pid(fd);
  close(fd);
  return pid;
}
