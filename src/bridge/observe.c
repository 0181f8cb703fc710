/* The AWS door's metrics and access log. */
#include "bridge/observe.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* af_err's values: AF_OK and one per row of AF_ERR_MAP. */
#define XX(name, type, http, rpc) +1
enum { NERR = 1 AF_ERR_MAP(XX) };
#undef XX

/* The word for requests answered before they matched an operation. */
#define NO_OPERATION "none"

struct af_bridge_observer {
  af_access_log *log;
  af_flows *svc;
  size_t nops;          /* operations, then one more: NO_OPERATION */
  size_t *op_series;    /* per entry of af_model_operations: its series */
  const char **op_name; /* per series */
  size_t npairs;        /* distinct (HTTP status, AWS error type) of af_err */
  size_t pair_of[NERR]; /* per af_err: its pair */
  af_metric *requests;  /* (operation, pair) */
  af_metric *seconds;   /* operation; NULL when histograms are off */
  bool timed; /* a histogram or the log needs each request's duration: else no clock is read */
};

/* Operations in the service's order (af_flows_rpc_at), then any of the model's the service
 * lacks (they answer 501), then NO_OPERATION. */
static bool index_operations(af_bridge_observer *o) {
  size_t nmodel = af_model_operation_count;
  o->op_series = malloc((nmodel ? nmodel : 1) * sizeof *o->op_series);
  o->op_name = calloc(nmodel + 1, sizeof *o->op_name);
  if (o->op_series == NULL || o->op_name == NULL)
    return false;
  for (size_t i = 0; i < nmodel; i++)
    o->op_series[i] = SIZE_MAX;
  for (size_t i = 0; i < af_flows_rpc_count(o->svc); i++) {
    const af_rpc *rpc = af_flows_rpc_at(o->svc, i);
    size_t k = rpc->op != NULL ? (size_t)(rpc->op - af_model_operations) : SIZE_MAX;
    if (k < nmodel && o->op_series[k] == SIZE_MAX) {
      o->op_series[k] = o->nops;
      o->op_name[o->nops++] = rpc->name;
    }
  }
  for (size_t k = 0; k < nmodel; k++) {
    if (o->op_series[k] == SIZE_MAX) {
      o->op_series[k] = o->nops;
      o->op_name[o->nops++] = af_model_operations[k].name;
    }
  }
  o->op_name[o->nops++] = NO_OPERATION;
  return true;
}

/* Errors that share a status and a type (ConflictException 409 twice) share a series. */
static void index_errors(af_bridge_observer *o, af_err first_of_pair[NERR]) {
  for (int e = 0; e < NERR; e++) {
    size_t p = 0;
    while (p < o->npairs && !(af_err_http_status(first_of_pair[p]) == af_err_http_status(e) &&
                              strcmp(af_err_type(first_of_pair[p]), af_err_type(e)) == 0))
      p++;
    if (p == o->npairs)
      first_of_pair[o->npairs++] = (af_err)e;
    o->pair_of[e] = p;
  }
}

static bool make_requests(af_bridge_observer *o, const af_err *first_of_pair) {
  static const char *const labels[] = {"operation", "code", "error_type"};
  o->requests = af_metric_new(AF_METRIC_COUNTER, "appflowd_http_requests_total",
                              "Requests answered by the AWS REST-JSON door, by operation, HTTP "
                              "status and AWS error type.",
                              3, labels, o->nops * o->npairs, NULL, 0);
  if (o->requests == NULL)
    return false;
  af_metric_omit_zero(o->requests);
  for (size_t i = 0; i < o->nops; i++) {
    for (size_t p = 0; p < o->npairs; p++) {
      char code[8];
      snprintf(code, sizeof code, "%d", af_err_http_status(first_of_pair[p]));
      const char *v[] = {o->op_name[i], code, af_err_type(first_of_pair[p])};
      if (af_metric_label(o->requests, i * o->npairs + p, v) != 0)
        return false;
    }
  }
  return true;
}

static bool make_seconds(af_bridge_observer *o) {
  static const char *const labels[] = {"operation"};
  o->seconds =
      af_metric_new(AF_METRIC_HISTOGRAM, "appflowd_http_request_duration_seconds",
                    "Time from a request's arrival at the AWS REST-JSON door to its "
                    "reply, by operation.",
                    1, labels, o->nops, af_metric_default_buckets, af_metric_default_nbuckets);
  for (size_t i = 0; o->seconds != NULL && i < o->nops; i++)
    if (af_metric_label(o->seconds, i, &o->op_name[i]) != 0)
      return false;
  return o->seconds != NULL;
}

static bool make_families(af_bridge_observer *o, af_metrics *m) {
  af_err first_of_pair[NERR];
  index_errors(o, first_of_pair);
  if (!make_requests(o, first_of_pair) || (af_metrics_histograms(m) && !make_seconds(o)))
    return false;
  af_metrics_add(m, o->requests);
  if (o->seconds != NULL)
    af_metrics_add(m, o->seconds);
  return true;
}

af_bridge_observer *af_bridge_observer_new(af_metrics *metrics, af_access_log *log, af_flows *svc,
                                           af_error *err) {
  af_bridge_observer *o = calloc(1, sizeof *o);
  if (o != NULL) {
    o->log = log;
    o->svc = svc;
  }
  if (o == NULL || !index_operations(o) || (metrics != NULL && !make_families(o, metrics))) {
    if (o != NULL) { /* families are added only once all are made: these are ours to free */
      af_metric_free(o->requests);
      af_metric_free(o->seconds);
    }
    af_bridge_observer_free(o);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  o->timed = o->seconds != NULL || log != NULL;
  return o;
}

void af_bridge_observer_free(af_bridge_observer *o) {
  if (o == NULL)
    return;
  free(o->op_series);
  free(o->op_name);
  free(o);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t af_bridge_observe_start(const af_bridge_observer *o) { return o->timed ? now_ns() : 0; }

/* The client's address:port ([v6]:port). */
static void peer_of(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *info =
      c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
  const struct sockaddr *sa = info ? info->client_addr : NULL;
  char host[INET6_ADDRSTRLEN] = "";
  out[0] = '\0';
  if (sa != NULL && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(out, n, "%s:%u", host, (unsigned)ntohs(in->sin_port));
  } else if (sa != NULL && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf(out, n, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
  }
}

static void write_line(af_bridge_observer *o, const af_bridge_call_view *v, size_t op, int64_t ns) {
  char peer[INET6_ADDRSTRLEN + 16];
  peer_of(v->connection, peer, sizeof peer);
  const af_bridge_reply *rep = v->rep;
  const char *target = v->target ? v->target : "";
  af_access_entry e = {
      .request_id = v->request_id,
      .door = "aws",
      .operation = o->op_name[op],
      .account = v->account ? v->account : af_flows_account(o->svc),
      .region = v->region ? v->region : af_flows_region(o->svc),
      .http_status = rep->status,
      .error_type = rep->error_type,
      .duration_us = ns / 1000,
      .peer = peer,
      .bytes_in = v->bytes_in,
      .bytes_out = rep->body_len,
      .method = v->method,
      .path = target,
      .path_len = strcspn(target, "?"), /* a query may carry a presigned URL's signature */
      .user_agent = v->connection ? MHD_lookup_connection_value(v->connection, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_USER_AGENT)
                                  : NULL,
  };
  af_access_log_write(o->log, &e);
}

void af_bridge_observe(af_bridge_observer *o, const af_bridge_call_view *v) {
  int64_t ns = o->timed ? now_ns() - v->start_ns : 0;
  const af_model_operation *mop = v->rep->op;
  size_t k = mop != NULL ? (size_t)(mop - af_model_operations) : SIZE_MAX;
  size_t op = k < af_model_operation_count ? o->op_series[k] : o->nops - 1;
  size_t pair = o->pair_of[(unsigned)v->rep->code < NERR ? v->rep->code : AF_ERR_INTERNAL_SERVER];
  af_metric_inc(o->requests, op * o->npairs + pair);
  af_metric_observe_ns(o->seconds, op, ns);
  if (o->log != NULL)
    write_line(o, v, op, ns);
}
