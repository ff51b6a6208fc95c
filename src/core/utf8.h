/* utf8: strict UTF-8 validation (no overlongs, no surrogates, <= U+10FFFF). */
#ifndef PROMPTD_UTF8_H
#define PROMPTD_UTF8_H

#include <stddef.h>

/* 1 when valid; otherwise 0 and *bad = offset of the first invalid byte. */
int utf8_valid(const char *s, size_t len, size_t *bad);

#endif
