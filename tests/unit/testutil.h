/* Helpers shared by the unit tests. */
#ifndef PROMPTD_TESTUTIL_H
#define PROMPTD_TESTUTIL_H

#include <stddef.h>

/* A fresh empty directory under $TMPDIR (malloc'd path); removed with
 * tu_rmtree. */
char *tu_tempdir(void);
void tu_rmtree(const char *path);
/* Reads a whole file (malloc'd, NUL-terminated), NULL on error. */
char *tu_read_file(const char *path, size_t *len);
/* Writes text to path; 0 on success. */
int tu_write_file(const char *path, const char *text);

#endif
