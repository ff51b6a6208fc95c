/*
 * metrics_process: the standard process_* gauges, read from /proc/self at
 * scrape time (a few small reads; nothing is sampled in between).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/metrics_catalog.h"

/* When the machine booted, in seconds since the epoch: the wall clock less
 * CLOCK_BOOTTIME (the clock /proc/self/stat's starttime counts on).  Not
 * /proc/stat's btime: the service's sandbox (ProcSubset=pid) hides it. */
static double boot_time(void) {
  struct timespec wall, up;
  if (clock_gettime(CLOCK_REALTIME, &wall) || clock_gettime(CLOCK_BOOTTIME, &up)) return -1;
  return (double)(wall.tv_sec - up.tv_sec) + (double)(wall.tv_nsec - up.tv_nsec) / 1e9;
}

static void from_stat(void) {
  FILE *f = fopen("/proc/self/stat", "re");
  if (!f) return;
  char text[1024];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* The command name is in parentheses and may hold anything, spaces and
   * parentheses included: the fields start after the last ')'. */
  char *p = strrchr(text, ')');
  if (!p) return;
  /* Fields from 3 (state) on: utime is 14, stime 15, starttime 22, rss 24. */
  unsigned long long v[25] = {0};
  int field = 3;
  for (char *tok = p + 2; *tok && field <= 24; field++) {
    char *end;
    v[field] = strtoull(tok, &end, 10);
    while (*end && *end != ' ') end++;
    tok = *end ? end + 1 : end;
  }
  if (field <= 24) return;
  double tck = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
  if (tck <= 0) return;
  metric_set(METRIC_SOLO(&m_process_cpu), (double)(v[14] + v[15]) / tck);
  metric_set(METRIC_SOLO(&m_process_rss), (double)v[24] * page);
  double bt = boot_time();
  if (bt >= 0) metric_set(METRIC_SOLO(&m_process_start_time), bt + (double)v[22] / tck);
}

static void fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    int own = dirfd(d);
    size_t n = 0;
    struct dirent *de;
    /* Not counting the descriptor this listing itself holds open. */
    while ((de = readdir(d)))
      if (de->d_name[0] != '.' && strtol(de->d_name, NULL, 10) != own) n++;
    closedir(d);
    metric_set(METRIC_SOLO(&m_process_open_fds), (double)n);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    metric_set(METRIC_SOLO(&m_process_max_fds), (double)rl.rlim_cur);
}

void metrics_process_collect(void *ud) {
  (void)ud;
  from_stat();
  fds();
}
