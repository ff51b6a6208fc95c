/*
 * perr: an error message carried up the stack without allocation.
 *
 * Functions that can fail take a perr * (may be NULL) and return -1 after
 * filling it; the outermost caller decides how to show it.  Messages name
 * the problem and what was expected, never a secret value.
 */
#ifndef PROMPTD_ERR_H
#define PROMPTD_ERR_H

typedef struct perr {
  char msg[1024];
} perr;

/* Formats into e (when not NULL) and returns -1, so `return perr_set(...)`. */
int perr_set(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message. Returns -1. */
int perr_prefix(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
