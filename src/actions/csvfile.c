/*
 * action `csvfile`: appends one row to a local CSV file, exactly once.
 *
 *   csvfile: { path: /var/lib/promptd/out.csv,
 *              row: ["{{event.n}}", "{{event.text}}"],
 *              header: [n, text] }                  -- optional
 *
 * Format: RFC 4180.  Every field is quoted by libcsv's csv_write (it always
 * quotes, which RFC 4180 allows and which makes embedded commas, quotes and
 * line breaks safe without deciding per field); fields are separated by
 * commas, records end with CRLF; bytes are written as rendered (UTF-8).
 * The header is written when the file is empty (new, or truncated back to
 * zero by recover), so it appears exactly once, at the top.
 *
 * Exactly-once across crashes (ACTION_EXACTLY_ONCE):
 *
 *   engine                      csvfile                     file
 *   ------                      -------                     ----
 *   resource(input) = path      one step per path at a time
 *   begin(input)       ------>  {"offset": size now}
 *   stores state durably
 *   start(call)        ------>  open O_APPEND, write header? + row, fsync
 *                               (and fsync the directory when the file was
 *                               new or empty, so its entry is durable too)
 *   stores outcome durably  <-  action_done(OK, {path, offset, bytes})
 *
 *   crash anywhere between "stores state" and "stores outcome":
 *   recover(input, state) ---->  size > offset: truncate back to offset
 *                                size <= offset: nothing to undo
 *   start(call) again            writes the row once
 *
 * resource() is the path as written in the recipe: two recipes naming one
 * file must spell it the same way (prepare is pure, so it does not resolve
 * relative paths against the working directory).
 *
 * A shorter file than the recorded offset cannot come from this step (it
 * only appends, and only this step writes the path meanwhile); it means
 * someone else truncated or replaced the file, so there is nothing of ours
 * to undo and recover leaves it alone.  When start itself fails after a
 * partial write it truncates back before reporting, so a RETRY never
 * leaves half a row behind.
 *
 * Errors: transient conditions (disk full, I/O error, out of descriptors)
 * are OUTCOME_RETRY; conditions a retry cannot fix (permission, missing
 * directory, a directory or non-regular file at the path, read-only file
 * system) are OUTCOME_FAIL.  The detail names the path and strerror.
 */
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/connector.h"

#define CSV_RECORD_MAX (16u * 1024 * 1024)

static const field_spec csvfile_fields[] = {
    {.name = "path",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "CSV file to append to (plain text, not a template; relative to the "
             "daemon's working directory unless absolute)"},
    {.name = "row",
     .type = FT_TEMPLATE_LIST,
     .flags = FIELD_REQUIRED,
     .help = "the row's cells, each a template rendered without escaping (at least one)"},
    {.name = "header",
     .type = FT_STRING_LIST,
     .help = "column names written first when the file is new or empty; as many as row "
             "(default: no header)"},
    {.name = NULL},
};

static int all_strings(const cJSON *arr) {
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) if (!cJSON_IsString(it)) return 0;
  return 1;
}

static int csvfile_validate(const cJSON *cfg, perr *e) {
  const cJSON *path = cJSON_GetObjectItemCaseSensitive(cfg, "path");
  const cJSON *row = cJSON_GetObjectItemCaseSensitive(cfg, "row");
  const cJSON *header = cJSON_GetObjectItemCaseSensitive(cfg, "header");
  if (!cJSON_IsString(path) || !*path->valuestring)
    return perr_set(e, "path: expected a non-empty file path");
  if (!cJSON_IsArray(row) || !all_strings(row))
    return perr_set(e, "row: expected a list of templates");
  int n = cJSON_GetArraySize(row);
  if (n == 0) return perr_set(e, "row: expected at least one cell");
  if (header) {
    if (!cJSON_IsArray(header) || !all_strings(header))
      return perr_set(e, "header: expected a list of strings");
    int h = cJSON_GetArraySize(header);
    if (h != n)
      return perr_set(e, "header: expected %d column name%s (as many as row), got %d", n,
                      n == 1 ? "" : "s", h);
  }
  return 0;
}

static int csvfile_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env,
                           cJSON **input, perr *e) {
  *input = NULL;
  if (csvfile_validate(cfg, e)) return -1;
  tpl_opts o = {.escape = TPL_ESCAPE_NONE,
                .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  cJSON *in = cJSON_CreateObject();
  cJSON *cells;
  if (!in ||
      !cJSON_AddStringToObject(in, "path",
                               cJSON_GetObjectItemCaseSensitive(cfg, "path")->valuestring) ||
      !(cells = cJSON_AddArrayToObject(in, "row")))
    goto oom;
  const cJSON *it;
  int i = 0;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "row")) {
    char *text = tpl_render_str(it->valuestring, ctx, &o, e);
    if (!text) {
      cJSON_Delete(in);
      return perr_prefix(e, "row[%d]", i);
    }
    cJSON *s = cJSON_CreateString(text);
    free(text);
    if (!s) goto oom;
    cJSON_AddItemToArray(cells, s);
    i++;
  }
  const cJSON *header = cJSON_GetObjectItemCaseSensitive(cfg, "header");
  if (header) {
    cJSON *h = cJSON_Duplicate(header, 1);
    if (!h) goto oom;
    cJSON_AddItemToObject(in, "header", h);
  }
  *input = in;
  return 0;

oom:
  cJSON_Delete(in);
  return perr_set(e, "out of memory");
}

static const char *input_path(const cJSON *input) {
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(input, "path");
  return cJSON_IsString(p) ? p->valuestring : NULL;
}

static const char *csvfile_resource(const cJSON *input) {
  const char *p = input_path(input);
  return p ? p : "";
}

static int csvfile_begin(const cJSON *input, cJSON **state, perr *e) {
  *state = NULL;
  const char *path = input_path(input);
  if (!path) return perr_set(e, "csvfile: input has no path");
  struct stat st;
  double offset = 0;
  if (stat(path, &st) == 0) {
    /* A directory or special file gets 0: start refuses it, recover skips it. */
    if (S_ISREG(st.st_mode)) offset = (double)st.st_size;
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return perr_set(e, "cannot stat %s: %s", path, strerror(errno));
  }
  cJSON *s = cJSON_CreateObject();
  if (!s || !cJSON_AddNumberToObject(s, "offset", offset)) {
    cJSON_Delete(s);
    return perr_set(e, "out of memory");
  }
  *state = s;
  return 0;
}

/* Whether a retry could succeed where this errno failed. */
static outcome_class classify_errno(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EROFS:
    case EINVAL:
    case EFBIG:
    case ENXIO:
      return OUTCOME_FAIL;
    default:
      /* ENOSPC, EDQUOT, EIO, EINTR, EAGAIN, EMFILE, ENFILE, ENOMEM, ESTALE
       * and anything unforeseen: the engine bounds retries by attempts. */
      return OUTCOME_RETRY;
  }
}

/* Appends one CSV record (all fields quoted by libcsv, CRLF) to b. */
static int add_record(buf *b, const cJSON *cells) {
  const cJSON *it;
  int first = 1;
  cJSON_ArrayForEach(it, cells) {
    if (!cJSON_IsString(it)) return -1;
    if (!first && buf_addc(b, ',')) return -1;
    first = 0;
    const char *s = it->valuestring;
    size_t n = strlen(s);
    size_t need = csv_write(NULL, 0, s, n);
    if (need > CSV_RECORD_MAX) return -1;
    char *q = malloc(need);
    if (!q) return -1;
    csv_write(q, need, s, n);
    int r = buf_add(b, q, need);
    free(q);
    if (r) return -1;
  }
  return buf_add(b, "\r\n", 2);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* fsyncs the directory holding path, so a new file's entry is durable. */
static int fsync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) dir = strdup(".");
  else if (slash == path) dir = strdup("/");
  else dir = strndup(path, (size_t)(slash - path));
  if (!dir) {
    errno = ENOMEM;
    return -1;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return -1;
  int r = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

/* Opens path for appending; *created says whether this call made it.
 * O_NONBLOCK keeps a FIFO at the path from blocking the loop (it fails
 * with ENXIO, or is refused as non-regular below). */
static int open_append(const char *path, int *created) {
  for (int tries = 0; tries < 2; tries++) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd >= 0) {
      *created = 1;
      return fd;
    }
    if (errno != EEXIST) return -1;
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) {
      *created = 0;
      return fd;
    }
    if (errno != ENOENT) return -1; /* ENOENT: removed in between, create again */
  }
  return -1;
}

/* Best effort: a failed truncate leaves the tail for recover() to cut on
 * the next restart; the outcome reported is the original error. */
static void undo_append(int fd, off_t size) {
  if (ftruncate(fd, size) != 0) { /* see above */ }
}

static int fail_errno(action_call *c, const char *what, const char *path, int err) {
  char detail[768];
  snprintf(detail, sizeof detail, "cannot %s %s: %s", what, path, strerror(err));
  action_done(c, classify_errno(err), NULL, detail, 0);
  return 0;
}

static int csvfile_start(action_call *c, perr *e) {
  const char *path = input_path(c->input);
  const cJSON *row = cJSON_GetObjectItemCaseSensitive(c->input, "row");
  const cJSON *header = cJSON_GetObjectItemCaseSensitive(c->input, "header");
  if (!path || !cJSON_IsArray(row)) return perr_set(e, "csvfile: input has no path or row");

  int created = 0;
  int fd = open_append(path, &created);
  if (fd < 0) return fail_errno(c, "open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fail_errno(c, "stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    char detail[768];
    snprintf(detail, sizeof detail, "%s is not a regular file", path);
    action_done(c, OUTCOME_FAIL, NULL, detail, 0);
    return 0;
  }
  off_t start_size = st.st_size;

  buf rec;
  buf_init(&rec, CSV_RECORD_MAX);
  size_t header_len = 0;
  if (start_size == 0 && cJSON_IsArray(header)) {
    if (add_record(&rec, header)) goto too_big;
    header_len = rec.len;
  }
  if (add_record(&rec, row)) goto too_big;

  if (write_all(fd, rec.data, rec.len) != 0) {
    int err = errno;
    /* Leave no half row behind for the retry to append after. */
    undo_append(fd, start_size);
    close(fd);
    buf_release(&rec);
    return fail_errno(c, "write", path, err);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    undo_append(fd, start_size);
    close(fd);
    buf_release(&rec);
    return fail_errno(c, "fsync", path, err);
  }
  close(fd);
  /* A new file's directory entry must be durable too.  An empty file may be
   * one an earlier attempt created just before a crash, whose entry was
   * never synced: sync the directory then as well (it costs one fsync per
   * file, not per row). */
  if ((created || start_size == 0) && fsync_parent(path) != 0) {
    int err = errno;
    buf_release(&rec);
    /* The row is written but may vanish with the entry: undo and retry. */
    if (created) unlink(path);
    else if (truncate(path, 0) != 0) { /* recover() cuts it back on restart */ }
    return fail_errno(c, "fsync the directory of", path, err);
  }

  double row_off = (double)start_size + (double)header_len;
  double row_bytes = (double)(rec.len - header_len);
  buf_release(&rec);
  cJSON *out = cJSON_CreateObject();
  if (!out || !cJSON_AddStringToObject(out, "path", path) ||
      !cJSON_AddNumberToObject(out, "offset", row_off) ||
      !cJSON_AddNumberToObject(out, "bytes", row_bytes)) {
    cJSON_Delete(out);
    /* The row is durable; report success without the output rather than a
     * retry that would write it twice. */
    out = NULL;
  }
  action_done(c, OUTCOME_OK, out, NULL, 0);
  return 0;

too_big:
  close(fd);
  buf_release(&rec);
  {
    char detail[768];
    snprintf(detail, sizeof detail, "row for %s is larger than %u bytes (or memory ran out)",
             path, CSV_RECORD_MAX);
    action_done(c, OUTCOME_FAIL, NULL, detail, 0);
  }
  return 0;
}

static int csvfile_recover(const cJSON *input, const cJSON *state, perr *e) {
  const char *path = input_path(input);
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(state, "offset");
  if (!path) return perr_set(e, "csvfile: input has no path");
  if (!cJSON_IsNumber(off) || !isfinite(off->valuedouble) || off->valuedouble < 0 ||
      off->valuedouble > 9007199254740992.0 || floor(off->valuedouble) != off->valuedouble)
    return perr_set(e, "csvfile: recovery state has no valid offset");
  off_t offset = (off_t)off->valuedouble;

  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    /* Absent: nothing was written.  A directory or a FIFO at the path:
     * start refused it, so nothing of ours is there either. */
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR || errno == ENXIO) return 0;
    return perr_set(e, "cannot open %s to recover: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return perr_set(e, "cannot stat %s to recover: %s", path, strerror(err));
  }
  /* Not a regular file, or not longer than recorded: nothing of ours. */
  if (!S_ISREG(st.st_mode) || st.st_size <= offset) {
    close(fd);
    return 0;
  }
  if (ftruncate(fd, offset) != 0 || fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return perr_set(e, "cannot truncate %s back to %lld bytes: %s", path, (long long)offset,
                    strerror(err));
  }
  close(fd);
  return 0;
}

const action_kind action_csvfile = {
    .name = "csvfile",
    .summary = "appends one row to a local CSV file (RFC 4180, header when new)",
    .guarantee = "exactly-once (offset recorded before writing, truncated back after a crash)",
    .fields = csvfile_fields,
    .flags = ACTION_EXACTLY_ONCE,
    .validate = csvfile_validate,
    .prepare = csvfile_prepare,
    .resource = csvfile_resource,
    .begin = csvfile_begin,
    .recover = csvfile_recover,
    .start = csvfile_start,
};
