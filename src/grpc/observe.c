/* The gRPC door's metrics and access log. */
#include "grpc/observe.h"

#include "common/uuid.h"

#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CODES 17 /* grpc_status_code 0 (OK) to 16 (UNAUTHENTICATED) */

struct af_grpc_observer {
  af_access_log *log;
  af_flows *svc;
  size_t n;
  const char **operation;                 /* per method: its name within its service, for the log */
  af_metric *started, *handled, *seconds; /* NULL when not recorded */
  bool timed; /* a histogram or the log needs each call's duration: else no clock is read */
};

const char *af_grpc_code_name(grpc_status_code code) {
  static const char *const names[CODES] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return (unsigned)code < CODES ? names[code] : "Unknown";
}

static const char *type_name(af_grpc_type t) {
  switch (t) {
  case AF_GRPC_UNARY:
    return "unary";
  case AF_GRPC_SERVER_STREAM:
    return "server_stream";
  case AF_GRPC_BIDI_STREAM:
    return "bidi_stream";
  }
  return "unary";
}

/* "/pkg.Service/Method" as service and method, into the buffers. */
static void split_path(const char *path, char *service, char *method, size_t n) {
  const char *p = path[0] == '/' ? path + 1 : path;
  const char *slash = strrchr(p, '/');
  size_t len = slash ? (size_t)(slash - p) : 0;
  snprintf(service, n, "%.*s", (int)(len < n ? len : n - 1), p);
  snprintf(method, n, "%s", slash ? slash + 1 : p);
}

/* Labels each series of f: per method (and per code when codes). */
static bool label_methods(af_metric *f, const af_grpc_method_info *m, size_t n, bool codes) {
  for (size_t i = 0; i < n; i++) {
    char service[256], method[256];
    split_path(m[i].path, service, method, sizeof service);
    for (size_t c = 0; c < (codes ? CODES : 1); c++) {
      const char *v[] = {type_name(m[i].type), service, method,
                         af_grpc_code_name((grpc_status_code)c)};
      if (af_metric_label(f, codes ? i * CODES + c : i, v) != 0)
        return false;
    }
  }
  return true;
}

static af_metric *family(af_metric_type type, const char *name, const char *help, bool codes,
                         const af_grpc_method_info *m, size_t n) {
  static const char *const labels[] = {"grpc_type", "grpc_service", "grpc_method", "grpc_code"};
  bool hist = type == AF_METRIC_HISTOGRAM;
  af_metric *f =
      af_metric_new(type, name, help, codes ? 4 : 3, labels, codes ? n * CODES : n,
                    hist ? af_metric_default_buckets : NULL, hist ? af_metric_default_nbuckets : 0);
  if (f != NULL && !label_methods(f, m, n, codes)) {
    af_metric_free(f);
    return NULL;
  }
  return f;
}

/* The three families, made whole before any is added. */
static bool make_families(af_grpc_observer *o, af_metrics *m, const af_grpc_method_info *methods,
                          size_t n) {
  o->started = family(AF_METRIC_COUNTER, "grpc_server_started_total",
                      "Total number of RPCs started on the server.", false, methods, n);
  o->handled = family(AF_METRIC_COUNTER, "grpc_server_handled_total",
                      "Total number of RPCs completed on the server, regardless of success or "
                      "failure.",
                      true, methods, n);
  if (af_metrics_histograms(m))
    o->seconds = family(AF_METRIC_HISTOGRAM, "grpc_server_handling_seconds",
                        "Histogram of response latency (seconds) of gRPC that had been "
                        "application-level handled by the server.",
                        false, methods, n);
  if (o->started == NULL || o->handled == NULL || (af_metrics_histograms(m) && !o->seconds))
    return false;
  af_metrics_add(m, o->started);
  af_metrics_add(m, o->handled);
  if (o->seconds != NULL)
    af_metrics_add(m, o->seconds);
  return true;
}

af_grpc_observer *af_grpc_observer_new(af_metrics *metrics, af_access_log *log, af_flows *svc,
                                       const af_grpc_method_info *methods, size_t n,
                                       af_error *err) {
  af_grpc_observer *o = calloc(1, sizeof *o);
  const char **ops = calloc(n ? n : 1, sizeof *ops);
  if (o == NULL || ops == NULL || (metrics != NULL && !make_families(o, metrics, methods, n))) {
    if (o != NULL) { /* families not added yet are ours to free */
      af_metric_free(o->started);
      af_metric_free(o->handled);
      af_metric_free(o->seconds);
    }
    free(ops);
    free(o);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) { /* the method's name: what follows the last '/' */
    const char *slash = strrchr(methods[i].path, '/');
    ops[i] = slash ? slash + 1 : methods[i].path;
  }
  o->log = log;
  o->svc = svc;
  o->n = n;
  o->timed = o->seconds != NULL || log != NULL;
  o->operation = ops;
  return o;
}

void af_grpc_observer_free(af_grpc_observer *o) {
  if (o == NULL)
    return;
  free(o->operation);
  free(o);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void af_grpc_observe_start(af_grpc_observer *o, af_grpc_call_obs *c, size_t method) {
  c->live = true;
  c->method = method;
  c->bytes_in = c->bytes_out = 0;
  c->start_ns = o->timed ? now_ns() : 0;
  if (method < o->n)
    af_metric_inc(o->started, method);
  if (o->log != NULL)
    af_uuid_random(c->request_id);
}

size_t af_grpc_observe_headers(af_grpc_observer *o, af_grpc_call_obs *c, grpc_metadata **md) {
  if (o == NULL || o->log == NULL || !c->live)
    return 0;
  /* static slices: the slot's id outlives the call's batches */
  c->header.key = grpc_slice_from_static_string("x-amzn-requestid");
  c->header.value = grpc_slice_from_static_buffer(c->request_id, 36);
  *md = &c->header;
  return 1;
}

/* "ipv4:127.0.0.1:5555" or "ipv6:[::1]:5555" (gRPC's URI of the peer) as address:port. */
static void peer_of(grpc_call *call, char *out, size_t n) {
  char *p = call != NULL ? grpc_call_get_peer(call) : NULL;
  const char *s = p != NULL ? p : "";
  if (strncmp(s, "ipv4:", 5) == 0 || strncmp(s, "ipv6:", 5) == 0)
    s += 5;
  snprintf(out, n, "%s", s);
  gpr_free(p);
}

/* The request's user-agent as a NUL-terminated copy in out; NULL when it has none. */
static const char *user_agent(const grpc_metadata_array *md, char *out, size_t n) {
  for (size_t i = 0; md != NULL && i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, "user-agent") != 0)
      continue;
    size_t len = GRPC_SLICE_LENGTH(md->metadata[i].value);
    len = len < n ? len : n - 1;
    memcpy(out, GRPC_SLICE_START_PTR(md->metadata[i].value), len);
    out[len] = '\0';
    return out;
  }
  return NULL;
}

static void write_line(af_grpc_observer *o, const af_grpc_call_obs *c, grpc_status_code code,
                       const char *error_type, int64_t ns, const af_grpc_call_view *v) {
  char peer[128], agent[512];
  af_access_entry e = {
      .request_id = c->request_id,
      .door = "grpc",
      .operation = c->method < o->n ? o->operation[c->method] : "none",
      .account = v->account ? v->account : af_flows_account(o->svc),
      .region = v->region ? v->region : af_flows_region(o->svc),
      .grpc_status = af_grpc_code_name(code),
      .error_type = error_type,
      .duration_us = ns / 1000,
      .bytes_in = c->bytes_in,
      .bytes_out = c->bytes_out,
      .method = "POST",
      .path = v->path,
      .path_len = v->path_len,
  };
  peer_of(v->call, peer, sizeof peer);
  e.peer = peer;
  e.user_agent = user_agent(v->request, agent, sizeof agent);
  af_access_log_write(o->log, &e);
}

void af_grpc_observe_end(af_grpc_observer *o, af_grpc_call_obs *c, grpc_status_code code,
                         const char *error_type, const af_grpc_call_view *v) {
  if (!c->live)
    return;
  c->live = false;
  int64_t ns = o->timed ? now_ns() - c->start_ns : 0;
  size_t m = c->method;
  if (m < o->n) {
    af_metric_inc(o->handled, m * CODES + ((unsigned)code < CODES ? (size_t)code : 2));
    af_metric_observe_ns(o->seconds, m, ns);
  }
  if (o->log != NULL)
    write_line(o, c, code, error_type, ns, v);
}
