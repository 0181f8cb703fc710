/* Prometheus metrics for a server's hot paths, and the text exposition format (version 0.0.4)
 * they and values computed at scrape time are written in.
 *
 * A family (af_metric) is a counter or a histogram with a fixed number of series, each with its
 * label values, all allocated when the family is made at start-up: recording indexes arrays of
 * atomics (a counter: one atomic add; a histogram: two, its bucket and its sum) with no lock, no
 * allocation and no clock (callers pass the durations they measured). A family is made,
 * labelled, then added to a registry (af_metrics), which renders every family it holds in the
 * order they were added. Values that only exist at scrape time (gauges read from elsewhere)
 * are written next to them with af_prom_family and af_prom_sample.
 *
 * Ownership: a registry owns the families added to it (af_metrics_free frees them); a family
 * never added is freed with af_metric_free. Errors: constructors return NULL when out of memory
 * or given a name Prometheus does not allow; af_text records a failed allocation and keeps
 * going (af_text.failed). Thread-safety: af_metric_inc/add/observe_ns from any thread at any
 * time, also while the registry renders; af_metrics_add and af_metrics_render from any thread
 * (a lock orders them, never taken while recording); making and labelling a family belongs to
 * the thread that makes it, before it is added. */
#ifndef AF_COMMON_METRICS_H
#define AF_COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The exposition format's Content-Type. */
#define AF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Labels one family's series have at most (histograms add le). */
#define AF_METRIC_MAX_LABELS 4

typedef enum af_metric_type {
  AF_METRIC_COUNTER,
  AF_METRIC_GAUGE, /* only written at scrape time (af_prom_family), never recorded */
  AF_METRIC_HISTOGRAM
} af_metric_type;

/* Prometheus's default buckets (client_golang's DefBuckets), in seconds: what go-grpc-prometheus's
 * grpc_server_handling_seconds uses. */
extern const double af_metric_default_buckets[];
extern const size_t af_metric_default_nbuckets;

/* ---- text ---- */

/* A growing text buffer (malloc). */
typedef struct af_text {
  char *data; /* NUL-terminated; NULL until something is written */
  size_t len, cap;
  bool failed; /* an allocation failed: the text is incomplete */
} af_text;

void af_text_init(af_text *t);
void af_text_free(af_text *t);
void af_text_append(af_text *t, const char *s, size_t n);
void af_text_printf(af_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The # HELP and # TYPE lines of a family (help's backslashes and newlines escaped). */
void af_prom_family(af_text *t, const char *name, const char *help, af_metric_type type);
/* One sample line: name{names[0]="values[0]",...} v. Label values are escaped as the format
 * asks (backslash, double quote, newline), so any value is safe; v is written as the shortest
 * decimal that reads back as v (integers without a point; +Inf, -Inf, NaN). */
void af_prom_sample(af_text *t, const char *name, size_t nlabels, const char *const *names,
                    const char *const *values, double v);
/* The process's resident and virtual memory, CPU time, start time, open and maximum file
 * descriptors, as Prometheus's client libraries read and name them (process_*, from
 * /proc/self/stat, /proc/self/fd, /proc/self/limits and /proc/stat); a value that cannot be
 * read is left out. */
void af_prom_process(af_text *t);

/* ---- families ---- */

typedef struct af_metric af_metric;

/* A counter (bounds NULL, nbounds 0) or histogram (bounds ascending, in seconds, at least one)
 * of nseries series, each with nlabels labels named label_names (copied); every series starts
 * at zero with empty label values. NULL when out of memory, when a name is not one Prometheus
 * allows, nlabels exceeds AF_METRIC_MAX_LABELS, a histogram has a label "le" or no bounds, or
 * type is AF_METRIC_GAUGE. */
af_metric *af_metric_new(af_metric_type type, const char *name, const char *help, size_t nlabels,
                         const char *const *label_names, size_t nseries, const double *bounds,
                         size_t nbounds);
/* Sets series i's label values (nlabels of them, copied). 0, or -1 when out of memory or i is
 * out of range. */
int af_metric_label(af_metric *f, size_t i, const char *const *values);
/* Render only the series whose value (a histogram's count) is not zero: for a family whose
 * series are a sparse cross product (an operation returns few of all errors). */
void af_metric_omit_zero(af_metric *f);
/* Frees a family that was never added to a registry. NULL is fine. */
void af_metric_free(af_metric *f);

/* Counts one (n) in series i. f may be NULL (nothing is recorded); i must be < nseries. */
void af_metric_inc(af_metric *f, size_t i);
void af_metric_add(af_metric *f, size_t i, uint64_t n);
/* Observes a duration of ns nanoseconds (negative counts as 0) in histogram series i. f may be
 * NULL. */
void af_metric_observe_ns(af_metric *f, size_t i, int64_t ns);
/* Series i's count (a histogram's: its observations); for tests and rendering. */
uint64_t af_metric_count(const af_metric *f, size_t i);

/* ---- the registry ---- */

typedef struct af_metrics af_metrics;

/* An empty registry; histograms says whether latency histograms are wanted (callers skip making
 * theirs when not: --metrics-histograms). NULL when out of memory. */
af_metrics *af_metrics_new(bool histograms);
/* Frees the registry and its families. NULL is fine. No one may record into them any more. */
void af_metrics_free(af_metrics *m);
/* Whether histogram families are wanted. */
bool af_metrics_histograms(const af_metrics *m);
/* Adds f (which must be fully labelled); the registry owns it from now on. */
void af_metrics_add(af_metrics *m, af_metric *f);
/* Writes every family, in the order they were added. */
void af_metrics_render(af_metrics *m, af_text *out);

#endif
