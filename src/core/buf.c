#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  b->max = max;
  b->failed = 0;
}

void buf_release(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
}

static int buf_fail(buf *b) {
  buf_release(b);
  b->failed = 1;
  return -1;
}

static int buf_grow(buf *b, size_t extra) {
  if (b->failed) return -1;
  if (extra > b->max - b->len) return buf_fail(b);
  size_t need = b->len + extra + 1;
  if (need <= b->alloc) return 0;
  size_t n = b->alloc ? b->alloc : 64;
  while (n < need) n = n > ((size_t)-1) / 2 ? need : n * 2;
  char *p = realloc(b->data, n);
  if (!p) return buf_fail(b);
  b->data = p;
  b->alloc = n;
  return 0;
}

int buf_add(buf *b, const void *data, size_t len) {
  if (buf_grow(b, len)) return -1;
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int buf_adds(buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

int buf_addc(buf *b, char c) { return buf_add(b, &c, 1); }

int buf_vprintf(buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0 || buf_grow(b, (size_t)n)) return n < 0 ? buf_fail(b) : -1;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int buf_printf(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return r;
}

void buf_reset(buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

char *buf_detach(buf *b, size_t *len) {
  if (b->failed) return NULL;
  char *p = b->data;
  if (!p) p = calloc(1, 1);
  if (len) *len = b->len;
  buf_init(b, b->max);
  return p;
}

char *mem_dup_str(const void *p, size_t n) {
  char *out = malloc(n + 1);
  if (!out) return NULL;
  if (n) memcpy(out, p, n);
  out[n] = '\0';
  return out;
}
