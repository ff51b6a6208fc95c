/* The fuzz targets' invariant check: names the broken invariant, since a
 * bare abort from the corpus runner leaves only the input's name. */
#ifndef PROMPTD_FUZZ_CHECK_H
#define PROMPTD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

#endif
