/*
 * trigger `csv_export`: rows of CSV exports (Google Forms, Typeform, Tally,
 * Jotform) in a local file or directory become events.
 *
 *   trigger: { csv_export: { path: /srv/exports/leads.csv, key: "Submission ID" } }
 *   trigger: { csv_export: { path: /srv/exports/ } }     # every *.csv in it
 *
 * Source "csv_export:<path as written>".  The event and the key are
 * csv_rows.h's: {fields: {header: cell}, row: [cells], file, line, record,
 * key}; without `key` the row hash is the key.
 *
 * Nothing twice, nothing skipped.  Each row is ingested with its key as
 * the dedupe key, so a row already stored is never an event again, whatever
 * the file: a re-downloaded export (same rows plus new ones, under the same
 * name or a new one in a watched directory) triggers only the new rows,
 * also after a restart.  The cursor says how far each file was read, so an
 * append-only file is read from where it was left; it is written in the
 * same loop iteration as the events (one transaction), so a crash repeats
 * or loses nothing.  Per file (the cursor is a JSON object keyed by path):
 *
 *   "dev:ino:size:mtime_s.ns:hdr:off:line:rec:tail"
 *     hdr   offset past the header, off past the last complete record,
 *     line/rec  line and record number at off,
 *     tail  SHA-256 of the (up to) 4 KiB before off.
 *
 * A scan of one file (scan_file):
 *   same dev/ino, size >= off, tail still matches  -> records from off on
 *   anything else (replaced, shrunk, rewritten)     -> the whole file again,
 *                                                      dedupe keys drop the old
 *   same size and mtime as last time                -> nothing to read
 * A record still being written (no line ending yet, or an open quote)
 * waits.  Some exporters end the last record without a line ending: a
 * trailing record outside quotes is taken once the file has stayed the same
 * for settle_s seconds (default 10), which is also how long such a record
 * may stall mid-write without being cut.
 *
 * When to scan: an ev_stat on the path (inotify where libev has it, else
 * its own polling), one per *.csv in directory mode, plus a fallback timer
 * every poll_s (default 30).  ev_stat compares whole-second times, so each
 * change also schedules a second look 1.1 s later (libev's advice).  All
 * reading is of local files with plain read calls; a file over 64 MiB is
 * refused (an error in status), so one scan never holds more.
 *
 * Health goes to engine_trigger_report after every scan: a missing path, a
 * file over the cap, a UTF-16 export, a key column absent from a header,
 * each shows in `promptd status` as the trigger failing with the reason.
 * A row intake refuses (over the event size cap) is logged and passed over.
 */
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/connector.h"
#include "core/engine.h"
#include "core/log.h"
#include "triggers/csv_rows.h"

#define MAX_FILE_BYTES (64u * 1024 * 1024)
#define MAX_DIR_FILES 1000
#define TAIL_BYTES 4096
#define RECHECK_S 1.1

static const field_spec csv_export_fields[] = {
    {.name = "path", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "CSV file, or directory whose *.csv files are all read (relative to the "
             "daemon's working directory unless absolute)"},
    {.name = "key", .type = FT_STRING,
     .help = "column whose value identifies a row, e.g. \"Submission ID\" (default: a "
             "SHA-256 of the row's cells)"},
    {.name = "settle_s", .type = FT_INT, .min = 1, .max = 3600,
     .help = "seconds a last row without a line ending must stay unchanged before it "
             "counts (default 10)"},
    {.name = "poll_s", .type = FT_INT, .min = 1, .max = 86400,
     .help = "seconds between fallback checks besides change notifications (default 30)"},
    {.name = NULL},
};

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long num(const cJSON *o, const char *k, long dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

static int csv_export_validate(const cJSON *cfg, perr *e) {
  const char *path = str(cfg, "path"), *key = str(cfg, "key");
  if (!path || !*path) return perr_set(e, "path: expected a file or directory");
  if (key && !*key) return perr_set(e, "key: expected a column name, got \"\"");
  return 0;
}

static char *csv_export_source(const cJSON *cfg) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  if (buf_printf(&b, "csv_export:%s", str(cfg, "path"))) return NULL;
  return buf_detach(&b, NULL);
}

typedef struct file_watch file_watch;
struct file_watch {
  ev_stat w;
  trigger_inst *t;
  char *path;
  int seen;
  file_watch *next;
};

struct trigger_inst {
  engine *en;
  const char *source;
  const char *path, *key;
  long settle_s, poll_s;
  cJSON *cursor;   /* {path: entry}, as committed (or about to be) */
  cJSON *pending;  /* {path: "size:mtime:since_ms"}: trailing record waiting */
  ev_stat root;
  file_watch *files; /* directory mode: one per *.csv */
  ev_timer kick, recheck, poll, settle, done_timer;
  int stopping;
  void (*done)(void *ud);
  void *done_ud;
};

typedef struct entry {
  unsigned long long dev, ino, size, mtime_s, mtime_ns, hdr, off, line, rec;
  char tail[65];
} entry;

static int entry_parse(const char *s, entry *x) {
  memset(x, 0, sizeof *x);
  int n = 0;
  if (sscanf(s, "%llu:%llu:%llu:%llu.%llu:%llu:%llu:%llu:%llu:%n", &x->dev, &x->ino, &x->size,
             &x->mtime_s, &x->mtime_ns, &x->hdr, &x->off, &x->line, &x->rec, &n) != 9 ||
      !n || strlen(s + n) > 64 || x->hdr > x->off || x->line < 1)
    return -1;
  memcpy(x->tail, s + n, strlen(s + n) + 1);
  return 0;
}

/* Up to len bytes from off (fewer when the file shrank meanwhile). */
static char *read_range(int fd, size_t off, size_t len, size_t *got, perr *e) {
  char *p = malloc(len + 1);
  if (!p) return perr_set(e, "out of memory"), NULL;
  size_t n = 0;
  while (n < len) {
    ssize_t r = pread(fd, p + n, len - n, (off_t)(off + n));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      perr_set(e, "read: %s", strerror(errno));
      free(p);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  p[n] = '\0';
  *got = n;
  return p;
}

static int sha256_hex(const char *d, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (EVP_Digest(d, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) return -1;
  for (unsigned i = 0; i < mdlen; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  out[64] = '\0';
  return 0;
}

/* The hash of the TAIL_BYTES before off ("" at 0). */
static int tail_hash(int fd, size_t off, char out[65], perr *e) {
  out[0] = '\0';
  if (!off) return 0;
  size_t from = off > TAIL_BYTES ? off - TAIL_BYTES : 0, got;
  char *d = read_range(fd, from, off - from, &got, e);
  if (!d) return -1;
  int rc = got == off - from ? sha256_hex(d, got, out) : -1;
  free(d);
  if (rc) out[0] = '\0'; /* shrank under us: no match, read from the start */
  return 0;
}

static void ingest_rows(trigger_inst *t, const char *file, const csv_rows *r, int key_col) {
  size_t fresh = 0;
  for (size_t i = 0; i < r->nrows; i++) {
    const csv_row *row = &r->rows[i];
    perr e;
    char *key = csv_row_key(row, key_col);
    cJSON *ev = key ? csv_event(r, row, file, key) : NULL;
    char *payload = ev ? cJSON_PrintUnformatted(ev) : NULL;
    if (!payload)
      perr_set(&e, "out of memory");
    if (!payload || engine_ingest_parsed(t->en, t->source, key, ev, payload, strlen(payload), NULL,
                                         NULL, &e))
      log_error("csv row not taken", "source=%s file=%s line=%zu error=%s", t->source,
                log_q(file), row->line, log_q(e.msg));
    else
      fresh++;
    free(payload);
    cJSON_Delete(ev);
    free(key);
  }
  if (r->nrows)
    log_info("csv rows read", "source=%s file=%s rows=%zu replaced_cells=%zu", t->source,
             log_q(file), fresh, r->replaced);
}

/* Whether the trailing record of file has waited long enough. */
static int settled(trigger_inst *t, const char *file, const struct stat *st, int64_t now) {
  const char *p = str(t->pending, file);
  unsigned long long size, ms, ns;
  long long since;
  if (!p || sscanf(p, "%llu:%llu.%llu:%lld", &size, &ms, &ns, &since) != 4) return 0;
  return size == (unsigned long long)st->st_size &&
         ms == (unsigned long long)st->st_mtim.tv_sec &&
         ns == (unsigned long long)st->st_mtim.tv_nsec && now - since >= t->settle_s * 1000;
}

static void set_pending(trigger_inst *t, const char *file, const struct stat *st, int64_t now,
                        int waiting) {
  char want[96];
  snprintf(want, sizeof want, "%llu:%llu.%llu:", (unsigned long long)st->st_size,
           (unsigned long long)st->st_mtim.tv_sec, (unsigned long long)st->st_mtim.tv_nsec);
  const char *have = str(t->pending, file);
  if (waiting && have && strncmp(have, want, strlen(want)) == 0) return; /* still waiting */
  cJSON_DeleteItemFromObjectCaseSensitive(t->pending, file);
  if (!waiting) return;
  char v[128];
  snprintf(v, sizeof v, "%s%lld", want, (long long)now);
  cJSON_AddStringToObject(t->pending, file, v);
}

/* One file: new complete records -> events, and its cursor entry. */
static int scan_file(trigger_inst *t, const char *file, perr *e) {
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return perr_set(e, "%s: %s", file, strerror(errno));
  struct stat st;
  csv_rows r;
  csv_rows_init(&r);
  char *head = NULL, *body = NULL;
  int rc = -1;
  if (fstat(fd, &st) != 0) {
    perr_set(e, "%s: %s", file, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    perr_set(e, "%s: not a regular file", file);
    goto out;
  }
  if ((unsigned long long)st.st_size > MAX_FILE_BYTES) {
    perr_set(e, "%s: larger than the %u MiB cap", file, MAX_FILE_BYTES >> 20);
    goto out;
  }
  size_t size = (size_t)st.st_size;
  int64_t now = clock_now_ms();
  entry x;
  const char *have = str(t->cursor, file);
  int known = have && entry_parse(have, &x) == 0;
  int final = settled(t, file, &st, now);
  if (known && x.dev == (unsigned long long)st.st_dev && x.ino == (unsigned long long)st.st_ino &&
      x.size == size && x.mtime_s == (unsigned long long)st.st_mtim.tv_sec &&
      x.mtime_ns == (unsigned long long)st.st_mtim.tv_nsec && !final) {
    rc = 0; /* nothing changed since the last look */
    goto out;
  }
  int resume = known && x.dev == (unsigned long long)st.st_dev &&
               x.ino == (unsigned long long)st.st_ino && x.off <= size && x.hdr > 0;
  char tail[65];
  if (resume) {
    if (tail_hash(fd, (size_t)x.off, tail, e)) goto out;
    resume = strcmp(tail, x.tail) == 0;
  }
  size_t got;
  if (resume) {
    if (!(head = read_range(fd, 0, (size_t)x.hdr, &got, e))) goto out;
    /* hdr is a known boundary: read as final, or a header ending in a
     * lone CR would look half written. */
    if (csv_rows_header(&r, head, got, 1, e)) goto out_named;
    resume = r.header_end == x.hdr;
  }
  if (resume) {
    if (!(body = read_range(fd, (size_t)x.off, size - (size_t)x.off, &got, e))) goto out;
    if (csv_rows_records(&r, body, got, (size_t)x.off, (size_t)x.line, (size_t)x.rec, final, e))
      goto out_named;
  } else {
    if (known) log_info("csv file rewritten; reading it again", "source=%s file=%s", t->source,
                        log_q(file));
    csv_rows_release(&r);
    if (!(body = read_range(fd, 0, size, &got, e))) goto out;
    if (csv_rows_parse(&r, body, got, final, e)) goto out_named;
  }
  int key_col = -1;
  if (t->key && r.header_end && (key_col = csv_rows_column(&r, t->key)) < 0) {
    perr_set(e, "%s: no column \"%s\" in the header", file, t->key);
    goto out;
  }
  ingest_rows(t, file, &r, key_col);
  if (tail_hash(fd, r.end, tail, e)) goto out;
  char ent[256];
  snprintf(ent, sizeof ent, "%llu:%llu:%zu:%llu.%llu:%zu:%zu:%zu:%zu:%s",
           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, size,
           (unsigned long long)st.st_mtim.tv_sec, (unsigned long long)st.st_mtim.tv_nsec,
           r.header_end, r.header_end ? r.end : 0, r.header_end ? r.end_line : 1,
           r.end_number, r.header_end ? tail : "");
  cJSON_DeleteItemFromObjectCaseSensitive(t->cursor, file);
  if (!cJSON_AddStringToObject(t->cursor, file, ent)) {
    perr_set(e, "out of memory");
    goto out;
  }
  set_pending(t, file, &st, now, r.incomplete && !r.open_quote);
  rc = 0;
  goto out;
out_named:
  perr_prefix(e, "%s", file);
out:
  csv_rows_release(&r);
  free(head);
  free(body);
  close(fd);
  return rc;
}

static void on_change(struct ev_loop *loop, ev_stat *w, int revents);

static int ends_csv(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 4 && strcasecmp(name + n - 4, ".csv") == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.csv files of dir, sorted (malloc'd array of malloc'd paths). */
static char **list_dir(const char *dir, size_t *n, perr *e) {
  DIR *d = opendir(dir);
  if (!d) return perr_set(e, "%s: %s", dir, strerror(errno)), NULL;
  char **v = NULL;
  size_t cap = 0;
  *n = 0;
  struct dirent *de;
  int failed = 0;
  while (!failed && (de = readdir(d)) != NULL) {
    if (!ends_csv(de->d_name)) continue;
    if (*n == MAX_DIR_FILES) {
      failed = perr_set(e, "%s: more than %d CSV files", dir, MAX_DIR_FILES);
      break;
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      char **p = realloc(v, cap * sizeof *p);
      if (!p) {
        failed = perr_set(e, "out of memory");
        break;
      }
      v = p;
    }
    buf b;
    buf_init(&b, BUF_UNLIMITED);
    size_t dl = strlen(dir);
    if (buf_printf(&b, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", de->d_name) ||
        !(v[*n] = buf_detach(&b, NULL))) {
      failed = perr_set(e, "out of memory");
      break;
    }
    struct stat st;
    if (stat(v[*n], &st) != 0 || !S_ISREG(st.st_mode)) {
      free(v[*n]);
      continue;
    }
    (*n)++;
  }
  closedir(d);
  if (failed) {
    for (size_t i = 0; i < *n; i++) free(v[i]);
    free(v);
    return NULL;
  }
  if (*n) qsort(v, *n, sizeof *v, by_name);
  return v ? v : calloc(1, sizeof *v);
}

static void watch_free(trigger_inst *t, file_watch *f) {
  ev_stat_stop(engine_loop(t->en), &f->w);
  free(f->path);
  free(f);
}

/* Directory mode: an ev_stat per listed file, none for files gone. */
static void watch_files(trigger_inst *t, char **paths, size_t n) {
  for (file_watch *f = t->files; f; f = f->next) f->seen = 0;
  for (size_t i = 0; i < n; i++) {
    file_watch *f = t->files;
    while (f && strcmp(f->path, paths[i]) != 0) f = f->next;
    if (f) {
      f->seen = 1;
      continue;
    }
    if (!(f = calloc(1, sizeof *f)) || !(f->path = strdup(paths[i]))) {
      free(f);
      continue; /* the fallback poll still reads it */
    }
    f->t = t;
    f->seen = 1;
    ev_stat_init(&f->w, on_change, f->path, 0.);
    f->w.data = t;
    ev_stat_start(engine_loop(t->en), &f->w);
    f->next = t->files;
    t->files = f;
  }
  for (file_watch **p = &t->files; *p;) {
    file_watch *f = *p;
    if (f->seen) {
      p = &f->next;
    } else {
      *p = f->next;
      watch_free(t, f);
    }
  }
}

static void arm_settle(trigger_inst *t, int64_t now) {
  struct ev_loop *loop = engine_loop(t->en);
  ev_timer_stop(loop, &t->settle);
  int64_t due = -1;
  const cJSON *p;
  cJSON_ArrayForEach(p, t->pending) {
    unsigned long long a, b, c;
    long long since;
    if (cJSON_IsString(p) && sscanf(p->valuestring, "%llu:%llu.%llu:%lld", &a, &b, &c, &since) == 4) {
      int64_t at = since + t->settle_s * 1000;
      if (due < 0 || at < due) due = at;
    }
  }
  if (due < 0) return;
  double in = (double)(due - now) / 1000.0 + 0.05;
  ev_timer_set(&t->settle, in > 0.05 ? in : 0.05, 0.);
  ev_timer_start(loop, &t->settle);
}

static void scan(trigger_inst *t) {
  if (t->stopping) return;
  perr e, first;
  int failed = 0;
  char *before = cJSON_PrintUnformatted(t->cursor);
  struct stat st;
  if (stat(t->path, &st) != 0) {
    failed = perr_set(&first, "%s: %s", t->path, strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    size_t n = 0;
    char **paths = list_dir(t->path, &n, &first);
    if (!paths) {
      failed = 1;
    } else {
      watch_files(t, paths, n);
      /* Files gone from the directory: their entries go too, so the
       * cursor stays as small as the directory. */
      for (cJSON *c = t->cursor->child, *next; c; c = next) {
        next = c->next;
        int listed = 0;
        for (size_t i = 0; i < n && !listed; i++) listed = strcmp(paths[i], c->string) == 0;
        if (!listed) cJSON_Delete(cJSON_DetachItemViaPointer(t->cursor, c));
      }
      for (size_t i = 0; i < n; i++) {
        if (scan_file(t, paths[i], &e) && !failed++) first = e;
        free(paths[i]);
      }
      free(paths);
    }
  } else {
    if (scan_file(t, t->path, &e)) failed = 1, first = e;
  }
  char *after = cJSON_PrintUnformatted(t->cursor);
  if (after && (!before || strcmp(before, after) != 0) &&
      engine_cursor_set(t->en, t->source, after, &e) && !failed++)
    first = e;
  free(before);
  free(after);
  engine_trigger_report(t->en, t->source, failed ? first.msg : NULL);
  arm_settle(t, clock_now_ms());
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  scan(w->data);
}

static void on_change(struct ev_loop *loop, ev_stat *w, int revents) {
  (void)revents;
  trigger_inst *t = w->data;
  if (t->stopping) return;
  /* Several notifications for one write come in one burst: one scan. */
  if (!ev_is_active(&t->kick)) {
    ev_timer_set(&t->kick, 0.02, 0.);
    ev_timer_start(loop, &t->kick);
  }
  if (!ev_is_active(&t->recheck)) {
    ev_timer_set(&t->recheck, RECHECK_S, 0.);
    ev_timer_start(loop, &t->recheck);
  }
}

static void on_done_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  trigger_inst *t = w->data;
  void (*done)(void *) = t->done;
  t->done = NULL;
  if (done) done(t->done_ud);
}

static int csv_export_create(trigger_inst **out, const cJSON *cfg, const char *source,
                             engine *en, perr *e) {
  trigger_inst *t = calloc(1, sizeof *t);
  if (!t) return perr_set(e, "out of memory");
  t->en = en;
  t->source = source;
  t->path = str(cfg, "path");
  t->key = str(cfg, "key");
  t->settle_s = num(cfg, "settle_s", 10);
  t->poll_s = num(cfg, "poll_s", 30);
  if (!(t->cursor = cJSON_CreateObject()) || !(t->pending = cJSON_CreateObject())) {
    cJSON_Delete(t->cursor);
    free(t);
    return perr_set(e, "out of memory");
  }
  ev_stat_init(&t->root, on_change, t->path, 0.);
  t->root.data = t;
  ev_timer_init(&t->kick, on_kick, 0., 0.);
  ev_timer_init(&t->recheck, on_kick, 0., 0.);
  ev_timer_init(&t->poll, on_kick, (double)t->poll_s, (double)t->poll_s);
  ev_timer_init(&t->settle, on_kick, 0., 0.);
  ev_timer_init(&t->done_timer, on_done_timer, 0., 0.);
  t->kick.data = t->recheck.data = t->poll.data = t->settle.data = t->done_timer.data = t;
  *out = t;
  return 0;
}

static int csv_export_start(trigger_inst *t, perr *e) {
  char *cursor = NULL;
  int rc = engine_cursor_get(t->en, t->source, &cursor, e);
  if (rc < 0) return -1;
  if (rc == 0) {
    cJSON *c = cJSON_Parse(cursor);
    free(cursor);
    if (cJSON_IsObject(c)) {
      cJSON_Delete(t->cursor);
      t->cursor = c;
    } else {
      /* Unreadable: every file is read whole again; dedupe keys keep
       * what was already stored from triggering twice. */
      log_warn("csv_export cursor unreadable; reading files again", "source=%s", t->source);
      cJSON_Delete(c);
    }
  }
  struct ev_loop *loop = engine_loop(t->en);
  ev_stat_start(loop, &t->root);
  ev_timer_start(loop, &t->poll);
  ev_timer_start(loop, &t->kick); /* the first scan, from the loop */
  return 0;
}

static void stop_watchers(trigger_inst *t) {
  struct ev_loop *loop = engine_loop(t->en);
  ev_stat_stop(loop, &t->root);
  ev_timer_stop(loop, &t->kick);
  ev_timer_stop(loop, &t->recheck);
  ev_timer_stop(loop, &t->poll);
  ev_timer_stop(loop, &t->settle);
  while (t->files) {
    file_watch *f = t->files;
    t->files = f->next;
    watch_free(t, f);
  }
}

static void csv_export_stop(trigger_inst *t, void (*done)(void *ud), void *ud) {
  t->stopping = 1;
  stop_watchers(t);
  t->done = done;
  t->done_ud = ud;
  ev_timer_start(engine_loop(t->en), &t->done_timer);
}

static void csv_export_destroy(trigger_inst *t) {
  if (!t) return;
  stop_watchers(t);
  ev_timer_stop(engine_loop(t->en), &t->done_timer);
  cJSON_Delete(t->cursor);
  cJSON_Delete(t->pending);
  free(t);
}

const trigger_kind trigger_csv_export = {
    .name = "csv_export",
    .summary = "new rows of CSV exports (Google Forms, Typeform, Tally, Jotform) in a file or "
               "directory; one event per row, deduplicated by a key column or the row hash",
    .fields = csv_export_fields,
    .validate = csv_export_validate,
    .source = csv_export_source,
    .create = csv_export_create,
    .start = csv_export_start,
    .stop = csv_export_stop,
    .destroy = csv_export_destroy,
};
