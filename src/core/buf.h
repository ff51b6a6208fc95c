/*
 * buf: a growable byte buffer with a hard cap.
 *
 * Every buffer filled from outside (event payloads, rendered templates,
 * responses) gets a cap, so one bad input cannot take the process's memory.
 * On any failure (cap reached, out of memory) the buffer releases itself and
 * stays released: the caller has a single error path and never frees twice.
 *
 * Ownership names follow git's strbuf: buf_init (no allocation), buf_release
 * (contents), buf_detach (hands the bytes to the caller).  data is always
 * NUL-terminated when non-NULL.
 */
#ifndef PROMPTD_BUF_H
#define PROMPTD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
  char *data;
  size_t len;
  size_t alloc;
  size_t max;   /* cap on len; exceeding it fails the append */
  int failed;   /* set once an append failed; later appends fail too */
} buf;

#define BUF_UNLIMITED ((size_t)-1)

void buf_init(buf *b, size_t max);
void buf_release(buf *b);
/* Returns the NUL-terminated contents (or "" when empty) and re-inits b.
 * The caller frees. NULL when the buffer failed. */
char *buf_detach(buf *b, size_t *len);
/* 0 on success, -1 when the cap or memory ran out (the buffer is released). */
int buf_add(buf *b, const void *data, size_t len);
int buf_adds(buf *b, const char *s);
int buf_addc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void buf_reset(buf *b); /* len = 0, keeps the allocation */
/* n bytes of p, NUL-terminated, in a new allocation (NULL on OOM).  Unlike
 * strndup it never looks past n bytes, so p need not hold a string. */
char *mem_dup_str(const void *p, size_t n);

#endif
