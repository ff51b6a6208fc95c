/*
 * store_backup: an online copy of the database (`promptd backup`).
 *
 * sqlite3_backup_step(-1) copies every page under one read transaction of
 * the source: in WAL mode that is a snapshot, and the daemon keeps writing
 * meanwhile (a WAL reader never blocks the writer).  Copying in small steps
 * would instead restart from the first page whenever another connection
 * writes, and under steady intake might never finish.  The price of the one
 * snapshot: the WAL cannot be checkpointed past it while the copy runs, so
 * the WAL grows by what the daemon writes during the copy (and is cut back
 * by the next checkpoint).
 *
 * The copy is written to PATH.tmp-XXXXXX beside PATH, checked, switched to
 * rollback journaling (a single file, readable without its -wal/-shm),
 * fsynced and only then renamed to PATH, so PATH never holds half a copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/store_internal.h"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The SQLite files a connection to tmp may leave beside it. */
static void unlink_tmp(const char *tmp) {
  static const char *const tails[] = {"", "-journal", "-wal", "-shm"};
  char p[4200];
  for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
    snprintf(p, sizeof p, "%s%s", tmp, tails[i]);
    unlink(p);
  }
}

static int check_target(const store *s, const char *path, int overwrite, perr *e) {
  if (!path || !*path) return perr_set(e, "backup: no file given");
  if (strlen(path) > 4000) return perr_set(e, "backup: file name too long");
  char *copy = strdup(path);
  if (!copy) return perr_set(e, "backup: out of memory");
  const char *dir = dirname(copy);
  struct stat sb;
  int rc = 0;
  if (stat(dir, &sb) != 0)
    rc = perr_set(e, "backup: directory %s: %s", dir, strerror(errno));
  else if (!S_ISDIR(sb.st_mode))
    rc = perr_set(e, "backup: %s is not a directory", dir);
  free(copy);
  if (rc) return rc;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT) return 0;
    return perr_set(e, "backup: %s: %s", path, strerror(errno));
  }
  struct stat db;
  if (stat(s->path, &db) == 0 && db.st_dev == sb.st_dev && db.st_ino == sb.st_ino)
    return perr_set(e, "backup: %s is the database itself", path);
  if (S_ISDIR(sb.st_mode))
    return perr_set(e, "backup: %s is a directory; give a file name", path);
  if (!S_ISREG(sb.st_mode)) return perr_set(e, "backup: %s is not a regular file", path);
  if (!overwrite) return perr_set(e, "backup: %s exists (--force replaces it)", path);
  return 0;
}

static int exec_dst(sqlite3 *dst, const char *sql, const char *what, perr *e) {
  char *msg = NULL;
  if (sqlite3_exec(dst, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  perr_set(e, "backup: %s: %s", what, msg ? msg : sqlite3_errmsg(dst));
  sqlite3_free(msg);
  return -1;
}

static int int_query(sqlite3 *dst, const char *sql, int64_t *v, perr *e) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(dst, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *v = sqlite3_column_int64(st, 0);
  else perr_set(e, "backup: %s on the copy: %s", sql, sqlite3_errmsg(dst));
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : -1;
}

static int integrity(sqlite3 *dst, perr *e) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
    perr_set(e, "backup: integrity check: %s", sqlite3_errmsg(dst));
    return -1;
  }
  int rc = sqlite3_step(st), ok = 0;
  const char *line = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  if (line && strcmp(line, "ok") == 0) ok = 1;
  else if (line) perr_set(e, "backup: the copy fails its integrity check: %.400s", line);
  else perr_set(e, "backup: integrity check: %s", sqlite3_errmsg(dst));
  sqlite3_finalize(st);
  return ok ? 0 : -1;
}

/* The whole copy in one step, waiting out a moment when no read
 * transaction can start (another connection restarting the WAL). */
static int copy_pages(store *s, sqlite3 *dst, perr *e) {
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", s->db, "main");
  if (!b) return perr_set(e, "backup: cannot start: %s", sqlite3_errmsg(dst));
  int rc;
  for (int tries = 0;; tries++) {
    rc = sqlite3_backup_step(b, -1);
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries >= 250) break;
    sqlite3_sleep(20);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE)
    return perr_set(e, "backup: copying %s failed: %s", s->path,
                    rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? "the database stayed busy for 5 s"
                                                             : sqlite3_errmsg(dst));
  return 0;
}

/* Copies, converts, checks and measures into the file tmp. */
static int write_copy(store *s, const char *tmp, store_backup_info *out, perr *e) {
  sqlite3 *dst = NULL;
  int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    perr_set(e, "backup: cannot open %s: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    sqlite3_close(dst);
    return -1;
  }
  int64_t version = 0;
  rc = copy_pages(s, dst, e);
  /* The copied header says WAL, as the source does. */
  if (!rc) rc = exec_dst(dst, "PRAGMA journal_mode = DELETE", "switch the copy to one file", e);
  if (!rc) rc = integrity(dst, e);
  if (!rc) rc = int_query(dst, "PRAGMA page_count", &out->pages, e);
  if (!rc) rc = int_query(dst, "PRAGMA page_size", &out->page_size, e);
  if (!rc) rc = int_query(dst, "PRAGMA user_version", &version, e);
  if (!rc) rc = int_query(dst, "SELECT count(*) FROM events", &out->events, e);
  if (!rc) rc = int_query(dst, "SELECT count(*) FROM runs", &out->runs, e);
  out->schema_version = (int)version;
  if (sqlite3_close(dst) != SQLITE_OK && !rc) rc = perr_set(e, "backup: cannot close the copy");
  return rc;
}

static int fsync_path(const char *path, int flags, perr *e) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return perr_set(e, "backup: cannot open %s: %s", path, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc) return perr_set(e, "backup: fsync %s: %s", path, strerror(err));
  return 0;
}

static int publish(const char *tmp, const char *path, int overwrite, perr *e) {
  if (overwrite) {
    if (rename(tmp, path) == 0) return 0;
    return perr_set(e, "backup: cannot rename %s to %s: %s", tmp, path, strerror(errno));
  }
  /* No replacing a file that appeared since the check. */
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 0;
  if (errno == EINVAL || errno == ENOSYS) {
    if (link(tmp, path) == 0) {
      unlink(tmp);
      return 0;
    }
  }
  if (errno == EEXIST) return perr_set(e, "backup: %s exists (--force replaces it)", path);
  return perr_set(e, "backup: cannot rename %s to %s: %s", tmp, path, strerror(errno));
}

int store_backup(store *s, const char *path, int overwrite, store_backup_info *out, perr *e) {
  memset(out, 0, sizeof *out);
  int64_t t0 = mono_ms();
  if (store_in_txn(s)) return perr_set(e, "backup: a transaction is open on the source");
  if (check_target(s, path, overwrite, e)) return -1;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  /* mkstemp creates it 0600, like the database. */
  int fd = mkstemp(tmp);
  if (fd < 0) return perr_set(e, "backup: cannot create a file beside %s: %s", path, strerror(errno));
  close(fd);
  int rc = write_copy(s, tmp, out, e);
  struct stat sb;
  if (!rc && stat(tmp, &sb) != 0) rc = perr_set(e, "backup: %s: %s", tmp, strerror(errno));
  if (!rc) out->bytes = (int64_t)sb.st_size;
  if (!rc) rc = fsync_path(tmp, O_RDONLY, e);
  if (!rc) rc = publish(tmp, path, overwrite, e);
  if (rc) {
    unlink_tmp(tmp);
    return -1;
  }
  char *copy = strdup(path);
  if (!copy) return perr_set(e, "backup: out of memory");
  /* The rename is durable once the directory is. */
  rc = fsync_path(dirname(copy), O_RDONLY | O_DIRECTORY, e);
  free(copy);
  out->ms = mono_ms() - t0;
  return rc;
}
