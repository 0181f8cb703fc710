/* Families as arrays of atomics, rendered in Prometheus's text format. */
#include "common/metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const double af_metric_default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
const size_t af_metric_default_nbuckets =
    sizeof af_metric_default_buckets / sizeof af_metric_default_buckets[0];

struct af_metric {
  af_metric_type type;
  char *name, *help;
  size_t nlabels;
  char *label_names[AF_METRIC_MAX_LABELS];
  size_t nseries;
  char **label_values; /* nseries * nlabels */
  bool omit_zero;
  size_t nbounds;
  double *bounds;     /* seconds, for le */
  int64_t *bounds_ns; /* the same, for observing */
  /* Per series, stride cells: a counter's value; a histogram's buckets (nbounds, then +Inf,
   * not cumulative: one add per observation) and its sum in nanoseconds. */
  size_t stride;
  _Atomic uint64_t *cells;
  af_metric *next;
};

struct af_metrics {
  bool histograms;
  pthread_mutex_t lock; /* orders adds and renders; never taken to record */
  af_metric *first, *last;
};

/* ---- text ---- */

void af_text_init(af_text *t) { *t = (af_text){NULL, 0, 0, false}; }

void af_text_free(af_text *t) {
  free(t->data);
  af_text_init(t);
}

static bool reserve(af_text *t, size_t more) {
  if (t->failed)
    return false;
  if (t->len + more + 1 <= t->cap)
    return true;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < t->len + more + 1)
    cap *= 2;
  char *d = realloc(t->data, cap);
  if (d == NULL) {
    t->failed = true;
    return false;
  }
  t->data = d;
  t->cap = cap;
  return true;
}

void af_text_append(af_text *t, const char *s, size_t n) {
  if (!reserve(t, n))
    return;
  memcpy(t->data + t->len, s, n);
  t->len += n;
  t->data[t->len] = '\0';
}

void af_text_printf(af_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(t, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

/* s with '\\' and newlines escaped, and '"' too when quote (a label value). */
static void append_escaped(af_text *t, const char *s, bool quote) {
  for (; *s != '\0'; s++) {
    if (*s == '\\')
      af_text_append(t, "\\\\", 2);
    else if (*s == '\n')
      af_text_append(t, "\\n", 2);
    else if (*s == '"' && quote)
      af_text_append(t, "\\\"", 2);
    else
      af_text_append(t, s, 1);
  }
}

/* The shortest of %.15g, %.16g and %.17g that reads back as v, as Go's client writes floats. */
static void format_double(char out[40], double v) {
  if (isnan(v)) {
    strcpy(out, "NaN");
    return;
  }
  if (isinf(v)) {
    strcpy(out, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(out, 40, "%.*g", digits, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

static const char *type_name(af_metric_type type) {
  switch (type) {
  case AF_METRIC_COUNTER:
    return "counter";
  case AF_METRIC_GAUGE:
    return "gauge";
  case AF_METRIC_HISTOGRAM:
    return "histogram";
  }
  return "untyped";
}

void af_prom_family(af_text *t, const char *name, const char *help, af_metric_type type) {
  af_text_printf(t, "# HELP %s ", name);
  append_escaped(t, help, false);
  af_text_printf(t, "\n# TYPE %s %s\n", name, type_name(type));
}

/* {a="x",b="y"} (nothing without labels), with le="..." last when le is not NULL. */
static void write_labels(af_text *t, size_t n, const char *const *names, const char *const *values,
                         const char *le) {
  if (n == 0 && le == NULL)
    return;
  af_text_append(t, "{", 1);
  for (size_t i = 0; i < n; i++) {
    af_text_printf(t, "%s%s=\"", i ? "," : "", names[i]);
    append_escaped(t, values[i], true);
    af_text_append(t, "\"", 1);
  }
  if (le != NULL)
    af_text_printf(t, "%sle=\"%s\"", n ? "," : "", le);
  af_text_append(t, "}", 1);
}

void af_prom_sample(af_text *t, const char *name, size_t nlabels, const char *const *names,
                    const char *const *values, double v) {
  char num[40];
  format_double(num, v);
  af_text_append(t, name, strlen(name));
  write_labels(t, nlabels, names, values, NULL);
  af_text_printf(t, " %s\n", num);
}

/* ---- process metrics, as the client libraries read them ---- */

/* The fields of /proc/self/stat after the command's closing parenthesis (the command may hold
 * spaces and parentheses itself): fields[0] is field 3 of proc(5), the state. */
static size_t stat_fields(char *buf, size_t len, char **fields, size_t max) {
  buf[len] = '\0';
  char *p = strrchr(buf, ')');
  size_t n = 0;
  if (p == NULL)
    return 0;
  for (char *save = NULL, *f = strtok_r(p + 1, " \n", &save); f != NULL && n < max;
       f = strtok_r(NULL, " \n", &save))
    fields[n++] = f;
  return n;
}

static size_t read_small(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n;
}

/* The boot time in epoch seconds (/proc/stat's btime); -1 when unknown. */
static double boot_time(void) {
  FILE *f = fopen("/proc/stat", "re");
  if (f == NULL)
    return -1;
  char line[512];
  double bt = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "btime ", 6) == 0) {
      bt = strtod(line + 6, NULL);
      break;
    }
  }
  fclose(f);
  return bt;
}

static void process_stat(af_text *t) {
  char buf[2048];
  char *f[32];
  size_t len = read_small("/proc/self/stat", buf, sizeof buf);
  if (stat_fields(buf, len, f, 32) < 22)
    return;
  double ticks = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
  double cpu = strtod(f[11], NULL) / ticks + strtod(f[12], NULL) / ticks;
  af_prom_family(t, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 AF_METRIC_COUNTER);
  af_prom_sample(t, "process_cpu_seconds_total", 0, NULL, NULL, cpu);
  af_prom_family(t, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                 AF_METRIC_GAUGE);
  af_prom_sample(t, "process_virtual_memory_bytes", 0, NULL, NULL, strtod(f[20], NULL));
  af_prom_family(t, "process_resident_memory_bytes", "Resident memory size in bytes.",
                 AF_METRIC_GAUGE);
  af_prom_sample(t, "process_resident_memory_bytes", 0, NULL, NULL, strtod(f[21], NULL) * page);
  double btime = boot_time();
  if (btime < 0)
    return;
  af_prom_family(t, "process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", AF_METRIC_GAUGE);
  af_prom_sample(t, "process_start_time_seconds", 0, NULL, NULL,
                 strtod(f[19], NULL) / ticks + btime);
}

static void process_fds(af_text *t) {
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    double n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
      n += e->d_name[0] != '.';
    closedir(d);
    af_prom_family(t, "process_open_fds", "Number of open file descriptors.", AF_METRIC_GAUGE);
    af_prom_sample(t, "process_open_fds", 0, NULL, NULL, n);
  }
  FILE *f = fopen("/proc/self/limits", "re");
  if (f == NULL)
    return;
  char line[256];
  while (fgets(line, sizeof line, f) != NULL) {
    char soft[64];
    if (strncmp(line, "Max open files", 14) == 0 && sscanf(line + 14, "%63s", soft) == 1) {
      af_prom_family(t, "process_max_fds", "Maximum number of open file descriptors.",
                     AF_METRIC_GAUGE);
      af_prom_sample(t, "process_max_fds", 0, NULL, NULL,
                     strcmp(soft, "unlimited") == 0 ? INFINITY : strtod(soft, NULL));
      break;
    }
  }
  fclose(f);
}

void af_prom_process(af_text *t) {
  process_stat(t);
  process_fds(t);
}

/* ---- families ---- */

static bool name_ok(const char *s, bool colons) {
  if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
    return false;
  for (; *s != '\0'; s++) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colons && c == ':');
    if (!ok)
      return false;
  }
  return true;
}

static bool shape_ok(af_metric_type type, const char *name, size_t nlabels,
                     const char *const *label_names, const double *bounds, size_t nbounds) {
  if (type == AF_METRIC_GAUGE || !name_ok(name, true) || nlabels > AF_METRIC_MAX_LABELS)
    return false;
  if ((type == AF_METRIC_HISTOGRAM) != (nbounds > 0 && bounds != NULL))
    return false;
  for (size_t i = 0; i < nlabels; i++) {
    bool reserved = strncmp(label_names[i], "__", 2) == 0 ||
                    (type == AF_METRIC_HISTOGRAM && strcmp(label_names[i], "le") == 0);
    if (!name_ok(label_names[i], false) || reserved)
      return false;
  }
  for (size_t i = 1; i < nbounds; i++)
    if (!(bounds[i] > bounds[i - 1]))
      return false;
  return true;
}

/* Everything but the cells and values: names and bounds. */
static bool fill_shape(af_metric *f, const char *name, const char *help,
                       const char *const *label_names, const double *bounds) {
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  bool ok = f->name != NULL && f->help != NULL;
  for (size_t i = 0; i < f->nlabels; i++)
    ok = (f->label_names[i] = strdup(label_names[i])) != NULL && ok;
  if (f->nbounds > 0) {
    f->bounds = calloc(f->nbounds, sizeof *f->bounds);
    f->bounds_ns = calloc(f->nbounds, sizeof *f->bounds_ns);
    ok = ok && f->bounds != NULL && f->bounds_ns != NULL;
    for (size_t i = 0; ok && i < f->nbounds; i++) {
      f->bounds[i] = bounds[i];
      f->bounds_ns[i] = (int64_t)llround(bounds[i] * 1e9);
    }
  }
  return ok;
}

af_metric *af_metric_new(af_metric_type type, const char *name, const char *help, size_t nlabels,
                         const char *const *label_names, size_t nseries, const double *bounds,
                         size_t nbounds) {
  if (!shape_ok(type, name, nlabels, label_names, bounds, nbounds))
    return NULL;
  af_metric *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  f->type = type;
  f->nlabels = nlabels;
  f->nseries = nseries;
  f->nbounds = type == AF_METRIC_HISTOGRAM ? nbounds : 0;
  f->stride = type == AF_METRIC_HISTOGRAM ? nbounds + 2 : 1;
  bool ok = fill_shape(f, name, help, label_names, bounds);
  size_t ncells = nseries * f->stride, nvalues = nseries * nlabels;
  f->cells = ok ? calloc(ncells ? ncells : 1, sizeof *f->cells) : NULL;
  f->label_values = ok ? calloc(nvalues ? nvalues : 1, sizeof *f->label_values) : NULL;
  if (f->cells == NULL || f->label_values == NULL) {
    af_metric_free(f);
    return NULL;
  }
  for (size_t i = 0; i < ncells; i++)
    atomic_init(&f->cells[i], 0);
  return f;
}

int af_metric_label(af_metric *f, size_t i, const char *const *values) {
  if (i >= f->nseries)
    return -1;
  for (size_t k = 0; k < f->nlabels; k++) {
    char **slot = &f->label_values[i * f->nlabels + k];
    free(*slot);
    if ((*slot = strdup(values[k])) == NULL)
      return -1;
  }
  return 0;
}

void af_metric_omit_zero(af_metric *f) { f->omit_zero = true; }

void af_metric_free(af_metric *f) {
  if (f == NULL)
    return;
  free(f->name);
  free(f->help);
  for (size_t i = 0; i < f->nlabels; i++)
    free(f->label_names[i]);
  for (size_t i = 0; f->label_values != NULL && i < f->nseries * f->nlabels; i++)
    free(f->label_values[i]);
  free(f->label_values);
  free(f->bounds);
  free(f->bounds_ns);
  free(f->cells);
  free(f);
}

void af_metric_inc(af_metric *f, size_t i) { af_metric_add(f, i, 1); }

void af_metric_add(af_metric *f, size_t i, uint64_t n) {
  if (f != NULL)
    atomic_fetch_add_explicit(&f->cells[i * f->stride], n, memory_order_relaxed);
}

void af_metric_observe_ns(af_metric *f, size_t i, int64_t ns) {
  if (f == NULL)
    return;
  if (ns < 0)
    ns = 0;
  size_t b = 0;
  while (b < f->nbounds && ns > f->bounds_ns[b])
    b++;
  _Atomic uint64_t *cell = &f->cells[i * f->stride];
  atomic_fetch_add_explicit(&cell[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&cell[f->nbounds + 1], (uint64_t)ns, memory_order_relaxed);
}

uint64_t af_metric_count(const af_metric *f, size_t i) {
  const _Atomic uint64_t *cell = &f->cells[i * f->stride];
  if (f->type != AF_METRIC_HISTOGRAM)
    return atomic_load_explicit(cell, memory_order_relaxed);
  uint64_t n = 0;
  for (size_t b = 0; b <= f->nbounds; b++)
    n += atomic_load_explicit(&cell[b], memory_order_relaxed);
  return n;
}

/* ---- rendering ---- */

/* ns nanoseconds as decimal seconds, exactly: 1500000 -> "0.0015". */
static void format_seconds(char out[40], uint64_t ns) {
  int n = snprintf(out, 40, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
  while (n > 0 && out[n - 1] == '0')
    out[--n] = '\0';
  if (n > 0 && out[n - 1] == '.')
    out[--n] = '\0';
}

static void render_histogram(const af_metric *f, size_t i, const char *const *values, af_text *t) {
  const char *const *names = (const char *const *)f->label_names;
  const _Atomic uint64_t *cell = &f->cells[i * f->stride];
  uint64_t cum = 0;
  for (size_t b = 0; b <= f->nbounds; b++) {
    char le[40];
    if (b < f->nbounds)
      format_double(le, f->bounds[b]);
    else
      strcpy(le, "+Inf");
    cum += atomic_load_explicit(&cell[b], memory_order_relaxed);
    af_text_printf(t, "%s_bucket", f->name);
    write_labels(t, f->nlabels, names, values, le);
    af_text_printf(t, " %" PRIu64 "\n", cum);
  }
  char sum[40];
  format_seconds(sum, atomic_load_explicit(&cell[f->nbounds + 1], memory_order_relaxed));
  af_text_printf(t, "%s_sum", f->name);
  write_labels(t, f->nlabels, names, values, NULL);
  af_text_printf(t, " %s\n%s_count", sum, f->name);
  write_labels(t, f->nlabels, names, values, NULL);
  af_text_printf(t, " %" PRIu64 "\n", cum);
}

static void render_family(const af_metric *f, af_text *t) {
  af_prom_family(t, f->name, f->help, f->type);
  for (size_t i = 0; i < f->nseries; i++) {
    if (f->omit_zero && af_metric_count(f, i) == 0)
      continue;
    const char *const *values = (const char *const *)&f->label_values[i * f->nlabels];
    if (f->type == AF_METRIC_HISTOGRAM) {
      render_histogram(f, i, values, t);
      continue;
    }
    af_text_append(t, f->name, strlen(f->name));
    write_labels(t, f->nlabels, (const char *const *)f->label_names, values, NULL);
    af_text_printf(t, " %" PRIu64 "\n", af_metric_count(f, i));
  }
}

af_metrics *af_metrics_new(bool histograms) {
  af_metrics *m = calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->histograms = histograms;
  pthread_mutex_init(&m->lock, NULL);
  return m;
}

void af_metrics_free(af_metrics *m) {
  if (m == NULL)
    return;
  for (af_metric *f = m->first, *next; f != NULL; f = next) {
    next = f->next;
    af_metric_free(f);
  }
  pthread_mutex_destroy(&m->lock);
  free(m);
}

bool af_metrics_histograms(const af_metrics *m) { return m->histograms; }

void af_metrics_add(af_metrics *m, af_metric *f) {
  pthread_mutex_lock(&m->lock);
  f->next = NULL;
  if (m->last != NULL)
    m->last->next = f;
  else
    m->first = f;
  m->last = f;
  pthread_mutex_unlock(&m->lock);
}

void af_metrics_render(af_metrics *m, af_text *out) {
  pthread_mutex_lock(&m->lock);
  for (const af_metric *f = m->first; f != NULL; f = f->next)
    render_family(f, out);
  pthread_mutex_unlock(&m->lock);
}
