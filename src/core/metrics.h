/*
 * metrics: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * Shape
 *   A metric_family is a static definition (name, help, type, label names,
 *   histogram bounds) plus the series made for it so far.  A series is one
 *   set of label values; metric_get finds it by a hash of the values and
 *   makes it the first time (the only allocation; the values are copied).
 *   Callers on a hot path look a series up once and keep the pointer: it
 *   stays valid until metric_family_release.  Increments are plain
 *   arithmetic on the one loop thread: no lock, no allocation.
 *
 *   A series that cannot be made (out of memory) is NULL, and every update
 *   function ignores NULL: metrics never fail the work they measure.
 *
 * Rendering
 *   metrics_render writes the families in the order given, each with its
 *   HELP and TYPE lines (also when it has no series yet), series in the
 *   order they were made.  Label values and HELP text are escaped as the
 *   format asks (\\, \" and \n; HELP escapes no quote).  Histogram buckets
 *   are cumulative, end with le="+Inf" and are followed by _sum and _count.
 */
#ifndef PROMPTD_METRICS_H
#define PROMPTD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct metric_series {
  double value;      /* counter, gauge */
  double sum;        /* histogram */
  uint64_t count;    /* histogram: observations */
  uint64_t *buckets; /* histogram: per bound, not cumulative; [nbounds] is +Inf */
  const struct metric_family *family;
  struct metric_series *chain; /* same hash slot */
  struct metric_series *next;  /* creation order, for rendering */
  uint32_t hash;
  char *values[]; /* one per label name, owned */
} metric_series;

typedef struct metric_family {
  const char *name;
  const char *help;
  metric_type type;
  const char *const *labels; /* NULL-terminated label names, or NULL for none */
  const double *bounds;      /* histogram: ascending upper bounds (without +Inf) */
  size_t nbounds;
  /* Made by metric_get; freed by metric_family_release. */
  metric_series **slots;
  size_t nslots, nseries, nlabels;
  metric_series *first, *last;
} metric_family;

/* The series for these label values (as many as the family has labels;
 * ignored for a family without labels), made on first use.  NULL when out
 * of memory or a value is NULL. */
metric_series *metric_get(metric_family *f, const char *const *values);
#define METRIC_GET(f, ...) metric_get((f), (const char *const[]){__VA_ARGS__})

static inline void metric_add(metric_series *s, double v) {
  if (s) s->value += v;
}
static inline void metric_inc(metric_series *s) {
  if (s) s->value += 1;
}
static inline void metric_set(metric_series *s, double v) {
  if (s) s->value = v;
}
void metric_observe(metric_series *s, double v);

/* Appends families (NULL-terminated) to out.  0, or -1 when out failed. */
int metrics_render(metric_family *const *families, buf *out);

/* Frees every series of f (pointers to them become invalid); f can be used
 * again afterwards. */
void metric_family_release(metric_family *f);

/* Seconds on the monotonic clock, for durations. */
double metrics_now_s(void);

#endif
