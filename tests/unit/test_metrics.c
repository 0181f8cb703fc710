/* src/common/metrics.c: a small registry's text, byte for byte; histogram buckets at their
 * edges; label values and help that need escaping; families Prometheus would refuse; counts
 * from many threads at once; and the process_* metrics. */
#include "common/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static af_metrics *reg;
static af_text text;

static void setup(void) {
  reg = af_metrics_new(true);
  cr_assert_not_null(reg);
  af_text_init(&text);
}

static void teardown(void) {
  af_text_free(&text);
  af_metrics_free(reg);
}

TestSuite(metrics, .init = setup, .fini = teardown);

static const char *render(void) {
  af_text_free(&text);
  af_metrics_render(reg, &text);
  cr_assert(!text.failed);
  return text.data ? text.data : "";
}

static af_metric *counter(const char *name, size_t nlabels, const char *const *labels,
                          size_t nseries) {
  af_metric *f =
      af_metric_new(AF_METRIC_COUNTER, name, "Calls.", nlabels, labels, nseries, NULL, 0);
  cr_assert_not_null(f, "%s", name);
  return f;
}

Test(metrics, a_small_registry_renders_exactly) {
  static const char *const labels[] = {"method", "code"};
  af_metric *calls = counter("calls_total", 2, labels, 2);
  cr_assert_eq(af_metric_label(calls, 0, (const char *const[]){"Get", "OK"}), 0);
  cr_assert_eq(af_metric_label(calls, 1, (const char *const[]){"Put", "NotFound"}), 0);
  static const double bounds[] = {0.001, 0.5, 2};
  static const char *const op[] = {"op"};
  af_metric *secs =
      af_metric_new(AF_METRIC_HISTOGRAM, "op_seconds", "Time taken.", 1, op, 1, bounds, 3);
  cr_assert_not_null(secs);
  cr_assert_eq(af_metric_label(secs, 0, (const char *const[]){"scan"}), 0);
  af_metrics_add(reg, calls);
  af_metrics_add(reg, secs);
  af_metric_inc(calls, 0);
  af_metric_inc(calls, 0);
  af_metric_add(calls, 1, 5);
  af_metric_observe_ns(secs, 0, 1000000);    /* 0.001: on the first bound, so in it */
  af_metric_observe_ns(secs, 0, 1000001);    /* just past it */
  af_metric_observe_ns(secs, 0, 3000000000); /* past every bound */
  cr_expect_str_eq(render(), "# HELP calls_total Calls.\n"
                             "# TYPE calls_total counter\n"
                             "calls_total{method=\"Get\",code=\"OK\"} 2\n"
                             "calls_total{method=\"Put\",code=\"NotFound\"} 5\n"
                             "# HELP op_seconds Time taken.\n"
                             "# TYPE op_seconds histogram\n"
                             "op_seconds_bucket{op=\"scan\",le=\"0.001\"} 1\n"
                             "op_seconds_bucket{op=\"scan\",le=\"0.5\"} 2\n"
                             "op_seconds_bucket{op=\"scan\",le=\"2\"} 2\n"
                             "op_seconds_bucket{op=\"scan\",le=\"+Inf\"} 3\n"
                             "op_seconds_sum{op=\"scan\"} 3.002000001\n"
                             "op_seconds_count{op=\"scan\"} 3\n");
  cr_expect_eq(af_metric_count(secs, 0), 3);
  cr_expect_eq(af_metric_count(calls, 1), 5);
}

Test(metrics, a_family_without_labels_and_the_default_buckets) {
  af_metric *f = af_metric_new(AF_METRIC_HISTOGRAM, "wait_seconds", "Waits.", 0, NULL, 1,
                               af_metric_default_buckets, af_metric_default_nbuckets);
  cr_assert_not_null(f);
  af_metrics_add(reg, f);
  af_metric_observe_ns(f, 0, -5); /* a clock that went back counts as 0 */
  cr_expect_str_eq(render(), "# HELP wait_seconds Waits.\n"
                             "# TYPE wait_seconds histogram\n"
                             "wait_seconds_bucket{le=\"0.005\"} 1\n"
                             "wait_seconds_bucket{le=\"0.01\"} 1\n"
                             "wait_seconds_bucket{le=\"0.025\"} 1\n"
                             "wait_seconds_bucket{le=\"0.05\"} 1\n"
                             "wait_seconds_bucket{le=\"0.1\"} 1\n"
                             "wait_seconds_bucket{le=\"0.25\"} 1\n"
                             "wait_seconds_bucket{le=\"0.5\"} 1\n"
                             "wait_seconds_bucket{le=\"1\"} 1\n"
                             "wait_seconds_bucket{le=\"2.5\"} 1\n"
                             "wait_seconds_bucket{le=\"5\"} 1\n"
                             "wait_seconds_bucket{le=\"10\"} 1\n"
                             "wait_seconds_bucket{le=\"+Inf\"} 1\n"
                             "wait_seconds_sum 0\n"
                             "wait_seconds_count 1\n");
}

Test(metrics, omit_zero_leaves_out_series_never_counted) {
  static const char *const labels[] = {"code"};
  af_metric *f = counter("replies_total", 1, labels, 3);
  for (size_t i = 0; i < 3; i++)
    cr_assert_eq(af_metric_label(f, i,
                                 (const char *const[]){i == 0   ? "200"
                                                       : i == 1 ? "404"
                                                                : "500"}),
                 0);
  af_metric_omit_zero(f);
  af_metrics_add(reg, f);
  af_metric_inc(f, 1);
  cr_expect_str_eq(render(), "# HELP replies_total Calls.\n"
                             "# TYPE replies_total counter\n"
                             "replies_total{code=\"404\"} 1\n");
}

Test(metrics, label_values_and_help_are_escaped) {
  static const char *const labels[] = {"name"};
  af_metric *f = af_metric_new(AF_METRIC_COUNTER, "odd_total", "A \\ and a\nnewline \"kept\".", 1,
                               labels, 1, NULL, 0);
  cr_assert_not_null(f);
  cr_assert_eq(af_metric_label(f, 0, (const char *const[]){"a\"b\\c\nd"}), 0);
  af_metrics_add(reg, f);
  cr_expect_str_eq(render(), "# HELP odd_total A \\\\ and a\\nnewline \"kept\".\n"
                             "# TYPE odd_total counter\n"
                             "odd_total{name=\"a\\\"b\\\\c\\nd\"} 0\n");
}

Test(metrics, samples_written_at_scrape_time) {
  static const char *const names[] = {"status"};
  const char *values[] = {"Active"};
  af_prom_family(&text, "flows", "Flows.", AF_METRIC_GAUGE);
  af_prom_sample(&text, "flows", 1, names, values, 3);
  af_prom_sample(&text, "ratio", 0, NULL, NULL, 0.1);
  af_prom_sample(&text, "start", 0, NULL, NULL, 1714567890.25);
  af_prom_sample(&text, "big", 0, NULL, NULL, 1e21);
  af_prom_sample(&text, "limit", 0, NULL, NULL, INFINITY);
  cr_expect_str_eq(text.data, "# HELP flows Flows.\n"
                              "# TYPE flows gauge\n"
                              "flows{status=\"Active\"} 3\n"
                              "ratio 0.1\n"
                              "start 1714567890.25\n"
                              "big 1e+21\n"
                              "limit +Inf\n");
}

Test(metrics, names_prometheus_refuses_make_no_family) {
  static const char *const le[] = {"le"};
  static const char *const bad_label[] = {"a-b"};
  static const char *const reserved[] = {"__name"};
  static const double b[] = {1, 2};
  static const double unsorted[] = {2, 1};
  cr_expect_null(af_metric_new(AF_METRIC_COUNTER, "1abc", "", 0, NULL, 1, NULL, 0));
  cr_expect_null(af_metric_new(AF_METRIC_COUNTER, "a-b", "", 0, NULL, 1, NULL, 0));
  cr_expect_null(af_metric_new(AF_METRIC_COUNTER, "ok", "", 1, bad_label, 1, NULL, 0));
  cr_expect_null(af_metric_new(AF_METRIC_COUNTER, "ok", "", 1, reserved, 1, NULL, 0));
  cr_expect_null(af_metric_new(AF_METRIC_HISTOGRAM, "ok", "", 1, le, 1, b, 2));
  cr_expect_null(af_metric_new(AF_METRIC_HISTOGRAM, "ok", "", 0, NULL, 1, NULL, 0));
  cr_expect_null(af_metric_new(AF_METRIC_HISTOGRAM, "ok", "", 0, NULL, 1, unsorted, 2));
  cr_expect_null(af_metric_new(AF_METRIC_COUNTER, "ok", "", 0, NULL, 1, b, 2));
  cr_expect_null(af_metric_new(AF_METRIC_GAUGE, "ok", "", 0, NULL, 1, NULL, 0));
  af_metric *f = af_metric_new(AF_METRIC_COUNTER, "ns:ok_total", "", 0, NULL, 1, NULL, 0);
  cr_expect_not_null(f);
  cr_expect_eq(af_metric_label(f, 1, NULL), -1, "no series 1");
  af_metric_free(f);
  cr_expect(af_metrics_histograms(reg));
  af_metrics *off = af_metrics_new(false);
  cr_expect(!af_metrics_histograms(off));
  af_metrics_free(off);
}

/* NULL families record nothing: a door with histograms off passes its NULL histogram. */
Test(metrics, a_null_family_records_nothing) {
  af_metric_inc(NULL, 0);
  af_metric_observe_ns(NULL, 7, 1000);
  cr_expect_str_eq(render(), "");
}

#define THREADS 8
#define PER_THREAD 20000

static void *hammer(void *arg) {
  af_metric **f = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    af_metric_inc(f[0], (size_t)i % 2);
    af_metric_observe_ns(f[1], 0, 1000000);
  }
  return NULL;
}

/* Every count lands, whatever the threads do at once (and rendering meanwhile is safe). */
Test(metrics, counts_from_many_threads_are_exact) {
  static const char *const labels[] = {"half"};
  af_metric *f[2] = {counter("hits_total", 1, labels, 2),
                     af_metric_new(AF_METRIC_HISTOGRAM, "hit_seconds", "h", 0, NULL, 1,
                                   af_metric_default_buckets, af_metric_default_nbuckets)};
  cr_assert_not_null(f[1]);
  af_metric_label(f[0], 0, (const char *const[]){"even"});
  af_metric_label(f[0], 1, (const char *const[]){"odd"});
  af_metrics_add(reg, f[0]);
  af_metrics_add(reg, f[1]);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, hammer, f), 0);
  render();
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  cr_expect_eq(af_metric_count(f[0], 0), THREADS * PER_THREAD / 2);
  cr_expect_eq(af_metric_count(f[0], 1), THREADS * PER_THREAD / 2);
  cr_expect_eq(af_metric_count(f[1], 0), THREADS * PER_THREAD);
  cr_expect(strstr(render(), "hit_seconds_sum 160\n") != NULL, "8 x 20000 x 1 ms: %s", text.data);
}

static double sample(const char *all, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *p = strstr(all, key);
  cr_assert_not_null(p, "%s missing:\n%s", name, all);
  return strtod(p + strlen(key), NULL);
}

Test(metrics, process_metrics_are_this_process) {
  af_prom_process(&text);
  const char *t = text.data;
  cr_assert_not_null(t);
  cr_expect(strstr(t, "# TYPE process_resident_memory_bytes gauge\n") != NULL, "%s", t);
  cr_expect(sample(t, "process_resident_memory_bytes") > 1 << 20, "a process holds over 1 MiB");
  cr_expect(sample(t, "process_virtual_memory_bytes") >=
            sample(t, "process_resident_memory_bytes"));
  cr_expect(sample(t, "process_open_fds") >= 3, "stdin, stdout, stderr at least");
  cr_expect(sample(t, "process_max_fds") >= sample(t, "process_open_fds"));
  cr_expect(sample(t, "process_cpu_seconds_total") >= 0);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double start = sample(t, "process_start_time_seconds");
  cr_expect(start <= (double)now.tv_sec + 1 && start > (double)now.tv_sec - 3600,
            "started within the hour: %f", start);
}
