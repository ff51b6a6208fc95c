/*
 * run_corpus: replays saved fuzz inputs through LLVMFuzzerTestOneInput
 * without libFuzzer, so any compiler (and CTest) can run a fuzz target's
 * corpus as a plain test.
 *
 *   run_corpus DIR|FILE...
 *
 * Files of a directory run in name order, so a failure replays the same way
 * everywhere.  Each input is copied into a buffer of exactly its size, as
 * libFuzzer does, so a read past the end is caught under ASan.  Running no
 * input at all is a failure: it means the corpus path is wrong, and a test
 * that checks nothing must not pass.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "run_corpus: cannot open %s\n", path);
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
    fclose(f);
    fprintf(stderr, "run_corpus: cannot stat %s\n", path);
    return -1;
  }
  size_t size = (size_t)st.st_size;
  uint8_t *data = malloc(size ? size : 1);
  if (!data || fread(data, 1, size, f) != size) {
    free(data);
    fclose(f);
    fprintf(stderr, "run_corpus: cannot read %s\n", path);
    return -1;
  }
  fclose(f);
  /* Named first: when the target aborts, the last name printed is the culprit. */
  fprintf(stderr, "run_corpus: %s (%zu bytes)\n", path, size);
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir; the number run, or -1. */
static long run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  char **names = NULL;
  size_t n = 0, cap = 0;
  long rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      char **p = realloc(names, ncap * sizeof *p);
      if (!p) {
        rc = -1;
        break;
      }
      names = p;
      cap = ncap;
    }
    size_t len = strlen(dir) + 1 + strlen(de->d_name) + 1;
    names[n] = malloc(len);
    if (!names[n]) {
      rc = -1;
      break;
    }
    snprintf(names[n], len, "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(d);
  if (rc == 0 && n) qsort(names, n, sizeof *names, by_name);
  long ran = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (run_file(names[i]) != 0) rc = -1;
    ran++;
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc ? rc : ran;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
    return 2;
  }
  long total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "run_corpus: no such file or directory: %s\n", argv[i]);
      return 1;
    }
    long ran = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
    if (ran < 0) {
      fprintf(stderr, "run_corpus: failed on %s\n", argv[i]);
      return 1;
    }
    total += ran;
  }
  if (total == 0) {
    fprintf(stderr, "run_corpus: no input found\n");
    return 1;
  }
  printf("run_corpus: %ld inputs ran clean\n", total);
  return 0;
}
