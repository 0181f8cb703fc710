/* /metrics, /healthz and /readyz. */
#include "admin/ops.h"

#include "admin/control.h"

#include <stdlib.h>
#include <string.h>

#define JSON "application/json"

bool af_admin_ops_path(const char *path) {
  return strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
         strcmp(path, "/readyz") == 0;
}

/* The answer: status and a copy of body (text of len bytes). */
static void answer(af_admin_answer *out, unsigned status, const char *type, const char *body,
                   size_t len) {
  *out = (af_admin_answer){status, type, NULL, malloc(len + 1), len};
  if (out->body == NULL) {
    out->status = 500;
    out->len = 0;
    return;
  }
  memcpy(out->body, body, len);
  out->body[len] = '\0';
}

/* ---- /metrics ---- */

/* The census as two families: flows per (account, region, status), and runs per status summed
 * over every account and region (the run log is a flow's, its runs have no labels of their
 * own). */
#define MAX_RUN_STATUSES 16
typedef struct census_text {
  af_text flows;
  const char *run_status[MAX_RUN_STATUSES]; /* the model's static strings */
  double runs[MAX_RUN_STATUSES];
  size_t nruns;
} census_text;

static void on_count(void *ctx, af_census_kind kind, const char *account, const char *region,
                     const char *status, uint64_t count) {
  census_text *c = ctx;
  if (kind == AF_CENSUS_FLOWS) {
    static const char *const names[] = {"account", "region", "status"};
    const char *values[] = {account, region, status};
    af_prom_sample(&c->flows, "appflowd_flows", 3, names, values, (double)count);
    return;
  }
  size_t i = 0;
  while (i < c->nruns && strcmp(c->run_status[i], status) != 0)
    i++;
  if (i == MAX_RUN_STATUSES)
    return;
  if (i == c->nruns) {
    c->run_status[c->nruns++] = status;
    c->runs[i] = 0;
  }
  c->runs[i] += (double)count;
}

static void write_census(const af_admin_ops *o, af_text *t) {
  census_text c = {.nruns = 0};
  af_text_init(&c.flows);
  af_error err;
  if (af_flows_census(o->svc, on_count, &c, &err) != AF_OK) {
    /* the rest of the scrape is still worth having: the census families are left out (the
     * store has said why it is down, at warn; this would repeat it every scrape) */
    af_log_printf(o->log, AF_LOG_DEBUG, "metrics: the census of flows failed: %s", err.message);
    af_text_free(&c.flows);
    return;
  }
  af_prom_family(t, "appflowd_flows", "Flows in the store by account, region and status.",
                 AF_METRIC_GAUGE);
  af_text_append(t, c.flows.data ? c.flows.data : "", c.flows.len);
  t->failed = t->failed || c.flows.failed;
  af_prom_family(t, "appflowd_executions_total",
                 "Flow runs by status, counted at scrape time in the flows' run logs (each keeps "
                 "its latest 100 runs): a gauge, since runs change status and old ones drop off.",
                 AF_METRIC_GAUGE);
  static const char *const names[] = {"status"};
  for (size_t i = 0; i < c.nruns; i++)
    af_prom_sample(t, "appflowd_executions_total", 1, names, &c.run_status[i], c.runs[i]);
  af_text_free(&c.flows);
}

/* What the store keeps with flows' versions so calls need not make it again (flows/store.h,
 * af_memo): an operator sizing memory sees it grow up to AF_MEMO_BUDGET. */
static void write_memos(const af_admin_ops *o, af_text *t) {
  const af_store *st = af_flows_store(o->svc);
  af_prom_family(t, "appflowd_store_memo_bytes",
                 "Bytes of answers the store keeps with the versions of flows they were made of "
                 "(ListFlows entries, DescribeFlow answers; the memory store only).",
                 AF_METRIC_GAUGE);
  af_prom_sample(t, "appflowd_store_memo_bytes", 0, NULL, NULL,
                 (double)atomic_load_explicit(&st->memo_bytes, memory_order_relaxed));
}

static void metrics(const af_admin_ops *o, af_admin_answer *out) {
  af_text t;
  af_text_init(&t);
  if (o->metrics != NULL)
    af_metrics_render(o->metrics, &t);
  write_census(o, &t);
  write_memos(o, &t);
  if (o->access_log != NULL) {
    af_prom_family(&t, "appflowd_access_log_dropped_total",
                   "Access log lines dropped because they could not be written (a full disk, a "
                   "closed or full pipe).",
                   AF_METRIC_COUNTER);
    af_prom_sample(&t, "appflowd_access_log_dropped_total", 0, NULL, NULL,
                   (double)af_access_log_dropped(o->access_log));
  }
  af_prom_process(&t);
  if (t.failed || t.data == NULL) {
    af_text_free(&t);
    *out = (af_admin_answer){500, JSON, NULL, NULL, 0};
    return;
  }
  *out = (af_admin_answer){200, AF_METRICS_CONTENT_TYPE, NULL, t.data, t.len};
}

/* ---- health ---- */

static void readyz(const af_admin_ops *o, af_admin_answer *out) {
  bool store = af_store_healthy(af_flows_store(o->svc));
  bool serving = o->draining == NULL || !atomic_load(o->draining);
  char body[160];
  int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"store\":\"%s\",\"doors\":\"%s\"}",
                   store && serving ? "ok" : "unavailable", store ? "ok" : "unavailable",
                   serving ? "serving" : "draining");
  answer(out, store && serving ? 200 : 503, JSON, body, (size_t)n);
}

static void not_allowed(const char *method, const char *path, af_admin_answer *out) {
  af_arena a;
  af_arena_init(&a);
  af_error err;
  char esc[64];
  af_error_set(&err, AF_ERR_METHOD_NOT_ALLOWED, "%s takes GET, not %s", path,
               af_escape(esc, sizeof esc, method, strlen(method)));
  const char *json = af_control_error(&err, &a);
  answer(out, 405, JSON, json ? json : "{}", json ? strlen(json) : 2);
  out->allow = "GET";
  af_arena_destroy(&a);
}

void af_admin_ops_answer(const af_admin_ops *o, const char *method, const char *path,
                         af_admin_answer *out) {
  static const char ok[] = "{\"status\":\"ok\"}";
  if (strcmp(method, "GET") != 0)
    not_allowed(method, path, out);
  else if (strcmp(path, "/metrics") == 0)
    metrics(o, out);
  else if (strcmp(path, "/readyz") == 0)
    readyz(o, out);
  else
    answer(out, 200, JSON, ok, sizeof ok - 1);
}
