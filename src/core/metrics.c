/*
 * metrics: the registry and the text renderer of metrics.h.
 *
 * Series live in a chained hash table per family, doubled when it is three
 * quarters full, and in a list in creation order (the render order, so a
 * scrape reads the same way every time).
 */
#include "core/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t label_count(const metric_family *f) {
  size_t n = 0;
  while (f->labels && f->labels[n]) n++;
  return n;
}

static uint32_t hash_values(const char *const *values, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
      h = (h ^ *p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* ("ab","c") and ("a","bc") differ */
  }
  return h;
}

static int same_values(const metric_series *s, const char *const *values, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->values[i], values[i]) != 0) return 0;
  return 1;
}

static int grow(metric_family *f) {
  size_t n = f->nslots ? f->nslots * 2 : 16;
  metric_series **slots = calloc(n, sizeof *slots);
  if (!slots) return -1;
  for (metric_series *s = f->first; s; s = s->next) {
    size_t i = s->hash & (n - 1);
    s->chain = slots[i];
    slots[i] = s;
  }
  free(f->slots);
  f->slots = slots;
  f->nslots = n;
  return 0;
}

static void series_free(metric_series *s, size_t nlabels) {
  for (size_t i = 0; i < nlabels; i++) free(s->values[i]);
  free(s->buckets);
  free(s);
}

static metric_series *series_new(metric_family *f, const char *const *values, uint32_t h) {
  size_t n = f->nlabels;
  metric_series *s = calloc(1, sizeof *s + n * sizeof s->values[0]);
  if (!s) return NULL;
  s->family = f;
  s->hash = h;
  int bad = 0;
  for (size_t i = 0; i < n && !bad; i++) bad = !(s->values[i] = strdup(values[i]));
  if (!bad && f->type == METRIC_HISTOGRAM)
    bad = !(s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets));
  if (bad) {
    series_free(s, n);
    return NULL;
  }
  return s;
}

metric_series *metric_get(metric_family *f, const char *const *values) {
  if (!f->nslots) f->nlabels = label_count(f);
  size_t n = f->nlabels;
  for (size_t i = 0; i < n; i++)
    if (!values || !values[i]) return NULL;
  uint32_t h = hash_values(values, n);
  if (f->nslots)
    for (metric_series *s = f->slots[h & (f->nslots - 1)]; s; s = s->chain)
      if (s->hash == h && same_values(s, values, n)) return s;
  if ((f->nseries + 1) * 4 > f->nslots * 3 && grow(f)) return NULL;
  metric_series *s = series_new(f, values, h);
  if (!s) return NULL;
  size_t i = h & (f->nslots - 1);
  s->chain = f->slots[i];
  f->slots[i] = s;
  if (f->last)
    f->last->next = s;
  else
    f->first = s;
  f->last = s;
  f->nseries++;
  return s;
}

void metric_observe(metric_series *s, double v) {
  if (!s || !s->buckets) return;
  const metric_family *f = s->family;
  size_t i = 0;
  while (i < f->nbounds && v > f->bounds[i]) i++;
  s->buckets[i]++;
  s->sum += v;
  s->count++;
}

void metric_family_release(metric_family *f) {
  for (metric_series *s = f->first, *next; s; s = next) {
    next = s->next;
    series_free(s, f->nlabels);
  }
  free(f->slots);
  f->slots = NULL;
  f->nslots = f->nseries = 0;
  f->first = f->last = NULL;
}

double metrics_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- rendering ---- */

/* The shortest text that reads back as v (Go's ParseFloat, which
 * Prometheus uses, accepts C's %g forms). */
static void format_value(double v, char *out, size_t n) {
  if (isnan(v)) {
    snprintf(out, n, "NaN");
  } else if (isinf(v)) {
    snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
  } else if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(out, n, "%.0f", v);
  } else {
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, n, "%.17g", v);
  }
}

/* quote: label values escape '"' too; HELP text does not. */
static int add_escaped(buf *out, const char *s, int quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *rep = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : quote && *s == '"' ? "\\\"" : NULL;
    if (!rep) continue;
    if (buf_add(out, run, (size_t)(s - run)) || buf_adds(out, rep)) return -1;
    run = s + 1;
  }
  return buf_add(out, run, (size_t)(s - run));
}

/* {a="x",b="y"} plus an optional le; nothing when there are no labels. */
static int add_labels(buf *out, const metric_series *s, const char *le) {
  const metric_family *f = s->family;
  if (!f->nlabels && !le) return 0;
  int rc = buf_addc(out, '{');
  for (size_t i = 0; i < f->nlabels && !rc; i++) {
    rc = buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]) ||
         add_escaped(out, s->values[i], 1) || buf_addc(out, '"');
  }
  if (le && !rc) rc = buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
  return rc || buf_addc(out, '}');
}

static int add_sample(buf *out, const metric_series *s, const char *suffix, const char *le,
                      double v) {
  char num[40];
  format_value(v, num, sizeof num);
  return buf_printf(out, "%s%s", s->family->name, suffix) || add_labels(out, s, le) ||
         buf_printf(out, " %s\n", num);
}

static int render_histogram(buf *out, const metric_series *s) {
  const metric_family *f = s->family;
  uint64_t cum = 0;
  char le[40];
  for (size_t i = 0; i <= f->nbounds; i++) {
    cum += s->buckets[i];
    if (i < f->nbounds)
      format_value(f->bounds[i], le, sizeof le);
    else
      snprintf(le, sizeof le, "+Inf");
    if (add_sample(out, s, "_bucket", le, (double)cum)) return -1;
  }
  return add_sample(out, s, "_sum", NULL, s->sum) ||
         add_sample(out, s, "_count", NULL, (double)s->count);
}

static const char *type_name(metric_type t) {
  return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

int metrics_render(metric_family *const *families, buf *out) {
  for (size_t k = 0; families[k]; k++) {
    metric_family *f = families[k];
    if (!f->nslots) f->nlabels = label_count(f);
    if (buf_printf(out, "# HELP %s ", f->name) || add_escaped(out, f->help, 0) ||
        buf_printf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type)))
      return -1;
    for (const metric_series *s = f->first; s; s = s->next) {
      int rc = f->type == METRIC_HISTOGRAM ? render_histogram(out, s)
                                           : add_sample(out, s, "", NULL, s->value);
      if (rc) return -1;
    }
  }
  return out->failed ? -1 : 0;
}
