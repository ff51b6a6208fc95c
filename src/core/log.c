/*
 * log: structured lines to stderr, logfmt by default, JSON on request.
 *
 * Shape of one call (log_msg):
 *   1. level filter first, so a filtered debug line costs one comparison;
 *   2. the caller's kv tail is formatted into a fixed 16 KiB buffer (a
 *      too-long tail is cut at the last pair boundary and marked
 *      truncated=true, so the line stays parseable);
 *   3. registered secrets are replaced by "[redacted]" in the message and
 *      the tail (log_q has already redacted the values it quoted, before
 *      cutting them at 300 bytes, so a cut can never leave half a secret);
 *   4. logfmt: ts, level and msg are prepended; JSON: the tail is parsed
 *      back into members (values always strings, as logfmt carries no
 *      types) and redacted again after unescaping;
 *   5. the whole line goes out with one write(2), so lines from concurrent
 *      processes sharing the journal stream never interleave mid-line.
 *
 * State (level, mode, redaction list, log_q slots) is process-global and
 * not locked: promptd runs one loop on one thread.
 */
#include "core/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

#define LOGQ_MAX_IN 300   /* bytes of a value kept by log_q */
#define LOGQ_SLOTS 8
#define LOGQ_SLOT_SIZE 2048 /* 300 bytes, each escaped to at most 6, + quotes and "..." */
#define TAIL_MAX 16384
#define REDACTED "[redacted]"

static log_level g_min = LOG_INFO;
static int g_json;

static char **g_secrets; /* longest first, so a secret containing another goes first */
static size_t g_nsecrets;

static char g_slots[LOGQ_SLOTS][LOGQ_SLOT_SIZE];
static unsigned g_next_slot;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level min) { g_min = min; }

void log_set_json(int on) { g_json = on != 0; }

int log_level_parse(const char *s, log_level *out) {
  if (!s) return -1;
  for (int i = 0; i <= (int)LOG_ERROR; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (log_level)i;
      return 0;
    }
  }
  if (strcmp(s, "warning") == 0) {
    *out = LOG_WARN;
    return 0;
  }
  return -1;
}

/* ---- redaction ---------------------------------------------------------- */

void log_redact(const char *secret) {
  /* An empty value cannot be found in a line; registering it would only
   * make every line match. */
  if (!secret || !*secret) return;
  for (size_t i = 0; i < g_nsecrets; i++)
    if (strcmp(g_secrets[i], secret) == 0) return;
  char *copy = strdup(secret);
  char **grown = realloc(g_secrets, (g_nsecrets + 1) * sizeof *grown);
  if (!copy || !grown) {
    /* Out of memory: nothing safe to do but keep the old list.  The secret
     * is still in the caller's hands; it will not be redacted. */
    free(copy);
    if (grown) g_secrets = grown;
    return;
  }
  g_secrets = grown;
  size_t len = strlen(copy), at = g_nsecrets;
  while (at > 0 && strlen(g_secrets[at - 1]) < len) {
    g_secrets[at] = g_secrets[at - 1];
    at--;
  }
  g_secrets[at] = copy;
  g_nsecrets++;
}

void log_redact_clear(void) {
  for (size_t i = 0; i < g_nsecrets; i++) {
    /* Wipe before freeing: the heap may be dumped later. */
    volatile char *p = g_secrets[i];
    while (*p) *p++ = '\0';
    free(g_secrets[i]);
  }
  free(g_secrets);
  g_secrets = NULL;
  g_nsecrets = 0;
}

/* Replaces every registered secret in s (NUL-terminated, len bytes) and
 * returns a new malloc'd string, or NULL when nothing matched (the common
 * case allocates nothing) or memory ran out (*oom set). */
static char *redact_dup(const char *s, size_t len, int *oom) {
  char *cur = NULL; /* owned: the latest rewritten copy */
  const char *src = s;
  size_t srclen = len;
  for (size_t i = 0; i < g_nsecrets; i++) {
    const char *sec = g_secrets[i];
    size_t sl = strlen(sec);
    if (!memmem(src, srclen, sec, sl)) continue;
    buf b;
    buf_init(&b, BUF_UNLIMITED);
    const char *p = src, *end = src + srclen, *hit;
    while ((hit = memmem(p, (size_t)(end - p), sec, sl)) != NULL) {
      buf_add(&b, p, (size_t)(hit - p));
      buf_adds(&b, REDACTED);
      p = hit + sl;
    }
    buf_add(&b, p, (size_t)(end - p));
    size_t nl;
    char *next = buf_detach(&b, &nl);
    free(cur);
    if (!next) {
      *oom = 1;
      return NULL;
    }
    cur = next;
    src = cur;
    srclen = nl;
  }
  return cur;
}

/* Redacts a buf in place. -1 on out of memory (b released). */
static int redact_buf(buf *b) {
  if (b->failed || !b->data || !g_nsecrets) return b->failed ? -1 : 0;
  int oom = 0;
  char *r = redact_dup(b->data, b->len, &oom);
  if (oom) {
    buf_release(b);
    b->failed = 1;
    return -1;
  }
  if (r) {
    buf_reset(b);
    buf_adds(b, r);
    free(r);
  }
  return b->failed ? -1 : 0;
}

/* ---- quoting ------------------------------------------------------------ */

static int needs_quotes(const char *s, size_t n) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '=' || c == '"' || c < 0x20 || c == 0x7f) return 1;
  }
  return 0;
}

/* Writes the escaped form of s[0..n) to out (room checked by the caller:
 * at most 6 bytes per input byte). Returns bytes written. */
static size_t escape_into(char *out, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"': out[o++] = '\\'; out[o++] = '"'; break;
      case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
      case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
      case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
      case '\t': out[o++] = '\\'; out[o++] = 't'; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          /* Any other control byte: never let it reach a terminal raw. */
          memcpy(out + o, "\\u00", 4);
          out[o + 4] = hex[c >> 4];
          out[o + 5] = hex[c & 15];
          o += 6;
        } else {
          out[o++] = (char)c;
        }
    }
  }
  return o;
}

/* Same escaping into a growable buffer, for the message (never cut). */
static void escape_buf(buf *b, const char *s) {
  char tmp[6 * 64];
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i += 64) {
    size_t chunk = n - i < 64 ? n - i : 64;
    buf_add(b, tmp, escape_into(tmp, s + i, chunk));
  }
}

const char *log_q(const char *s) {
  char *slot = g_slots[g_next_slot++ % LOGQ_SLOTS];
  if (!s) s = "";
  /* Redact before cutting: cutting first could keep a secret's prefix. */
  int oom = 0;
  char *red = redact_dup(s, strlen(s), &oom);
  if (oom) {
    memcpy(slot, "\"[unavailable]\"", sizeof "\"[unavailable]\"");
    return slot;
  }
  const char *v = red ? red : s;
  size_t n = strlen(v);
  int cut = 0;
  if (n > LOGQ_MAX_IN) {
    n = LOGQ_MAX_IN;
    /* Back up to a UTF-8 character boundary so the line stays valid text. */
    while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80) n--;
    cut = 1;
  }
  size_t o = 0;
  int q = needs_quotes(v, n);
  if (q) {
    slot[o++] = '"';
    o += escape_into(slot + o, v, n);
  } else {
    /* Bare values are read back literally: a backslash stays as is. */
    memcpy(slot, v, n);
    o = n;
  }
  if (cut) {
    memcpy(slot + o, "...", 3);
    o += 3;
  }
  if (q) slot[o++] = '"';
  slot[o] = '\0';
  free(red);
  return slot;
}

/* ---- logfmt tail parsing (JSON mode and truncation) ---------------------- */

/* Reads one value starting at *pp (a quoted or bare logfmt value),
 * unescaping quoted ones into out; advances *pp past it. */
static void read_value(const char **pp, buf *out) {
  const char *p = *pp;
  if (*p != '"') {
    const char *start = p;
    while (*p && *p != ' ') p++;
    buf_add(out, start, (size_t)(p - start));
    *pp = p;
    return;
  }
  p++;
  while (*p && *p != '"') {
    if (*p == '\\' && p[1]) {
      p++;
      switch (*p) {
        case 'n': buf_addc(out, '\n'); break;
        case 'r': buf_addc(out, '\r'); break;
        case 't': buf_addc(out, '\t'); break;
        case 'u': {
          unsigned v = 0;
          int k = 1;
          for (; k <= 4 && p[k]; k++) {
            char h = p[k];
            unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                         : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                         : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                                : 16u;
            if (d == 16) break;
            v = v * 16 + d;
          }
          if (k == 5 && v < 0x80) {
            buf_addc(out, (char)v);
            p += 4;
          } else {
            buf_addc(out, 'u');
          }
          break;
        }
        default: buf_addc(out, *p);
      }
      p++;
    } else {
      buf_addc(out, *p++);
    }
  }
  if (*p == '"') p++;
  *pp = p;
}

/* Turns "k=v k2=\"a b\" flag" into members of obj (values as strings; a
 * bare key means "true", as in logfmt). */
static void tail_to_json(const char *p, cJSON *obj) {
  buf key, val;
  buf_init(&key, TAIL_MAX);
  buf_init(&val, TAIL_MAX);
  for (;;) {
    while (*p == ' ') p++;
    if (!*p) break;
    buf_reset(&key);
    buf_reset(&val);
    const char *k = p;
    while (*p && *p != '=' && *p != ' ') p++;
    buf_add(&key, k, (size_t)(p - k));
    if (*p == '=') {
      p++;
      read_value(&p, &val);
    } else {
      buf_adds(&val, "true");
    }
    if (key.failed || val.failed) break;
    if (!key.len) continue; /* "=x": no name to give it */
    if (redact_buf(&val)) break;
    cJSON_AddItemToObject(obj, key.data, cJSON_CreateString(val.data ? val.data : ""));
  }
  buf_release(&key);
  buf_release(&val);
}

/* Length of the longest prefix of s[0..n) ending at a pair boundary (a
 * space outside quotes), used when a tail must be cut. */
static size_t pair_boundary(const char *s, size_t n) {
  size_t last = 0;
  int inq = 0;
  for (size_t i = 0; i < n; i++) {
    if (inq) {
      if (s[i] == '\\' && i + 1 < n) i++;
      else if (s[i] == '"') inq = 0;
    } else if (s[i] == '"') {
      inq = 1;
    } else if (s[i] == ' ') {
      last = i;
    }
  }
  return last;
}

/* ---- output --------------------------------------------------------------- */

static void format_ts(char *out, size_t n) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + k, n - k, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static void write_line(const char *p, size_t n) {
  /* One write(2) for the line; the loop only finishes a rare short write
   * (a pipe reader that is slow) or an EINTR. */
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void write_oom(void) {
  static const char line[] = "level=error msg=\"log line lost: out of memory\"\n";
  write_line(line, sizeof line - 1);
}

void log_msg(log_level lvl, const char *msg, const char *kv_fmt, ...) {
  if (lvl < g_min) return;
  if ((int)lvl < 0 || lvl > LOG_ERROR) lvl = LOG_ERROR;
  int saved_errno = errno; /* callers may log between a failure and strerror */

  char tail[TAIL_MAX];
  size_t tlen = 0;
  if (kv_fmt && *kv_fmt) {
    va_list ap;
    va_start(ap, kv_fmt);
    int n = vsnprintf(tail, sizeof tail, kv_fmt, ap);
    va_end(ap);
    if (n < 0) {
      tail[0] = '\0';
    } else if ((size_t)n >= sizeof tail) {
      tlen = pair_boundary(tail, strnlen(tail, sizeof tail - 32));
      memcpy(tail + tlen, tlen ? " truncated=true" : "truncated=true",
             tlen ? sizeof " truncated=true" : sizeof "truncated=true");
    }
    tlen = strlen(tail);
  }
  tail[tlen] = '\0';

  char ts[40];
  format_ts(ts, sizeof ts);

  buf m, t, line;
  buf_init(&m, BUF_UNLIMITED);
  buf_init(&t, BUF_UNLIMITED);
  buf_init(&line, BUF_UNLIMITED);
  buf_adds(&m, msg ? msg : "");
  buf_add(&t, tail, tlen);
  if (redact_buf(&m) || redact_buf(&t)) goto oom;

  if (g_json) {
    cJSON *o = cJSON_CreateObject();
    if (!o) goto oom;
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "level", level_names[lvl]);
    cJSON_AddStringToObject(o, "msg", m.data ? m.data : "");
    tail_to_json(t.data ? t.data : "", o);
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!js) goto oom;
    buf_adds(&line, js);
    free(js);
  } else {
    buf_printf(&line, "ts=%s level=%s msg=\"", ts, level_names[lvl]);
    escape_buf(&line, m.data ? m.data : "");
    buf_addc(&line, '"');
    if (t.len) {
      buf_addc(&line, ' ');
      buf_add(&line, t.data, t.len);
    }
  }
  if (buf_addc(&line, '\n')) goto oom;
  write_line(line.data, line.len);
  buf_release(&m);
  buf_release(&t);
  buf_release(&line);
  errno = saved_errno;
  return;

oom:
  buf_release(&m);
  buf_release(&t);
  buf_release(&line);
  write_oom();
  errno = saved_errno;
}
