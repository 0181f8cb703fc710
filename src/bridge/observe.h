/* What the AWS door records of each request when an operator asks (--admin-listen,
 * --access-log): appflowd_http_requests_total{operation,code,error_type},
 * appflowd_http_request_duration_seconds{operation} and the access log's line.
 *
 * operation is the AWS operation the request was routed to, or "none" for one answered before
 * it matched an operation (no route, a body over the limit, a bad signature, shutdown); code the
 * HTTP status; error_type the AWS error type, empty on success. Every series is made at start-up
 * from the service's RPC table and the error table, so recording is an index and atomic adds.
 *
 * Ownership: the observer borrows the registry, the log and the service (they outlive it).
 * Thread-safety: af_bridge_observe from any thread; new and free from one. */
#ifndef AF_BRIDGE_OBSERVE_H
#define AF_BRIDGE_OBSERVE_H

#include "bridge/route.h"
#include "common/accesslog.h"
#include "common/metrics.h"
#include "flows/error.h"
#include "flows/service.h"

#include <stdint.h>

struct MHD_Connection;

/* What the door knows of a request as its reply is queued. */
typedef struct af_bridge_call_view {
  const af_bridge_reply *rep;
  const char *request_id;
  int64_t start_ns;  /* af_bridge_observe_start() as the request arrived */
  uint64_t bytes_in; /* body bytes received, dropped ones included */
  const char *method;
  const char *target; /* the request-target as sent (NULL: unknown); its query is never logged */
  struct MHD_Connection *connection; /* for the peer and the User-Agent */
  const char *account, *region;      /* the request's; NULL: the service's own */
} af_bridge_call_view;

typedef struct af_bridge_observer af_bridge_observer;

/* An observer recording into metrics (NULL: none) and writing to log (NULL: none); its families
 * are added to metrics. NULL with err set when out of memory. */
af_bridge_observer *af_bridge_observer_new(af_metrics *metrics, af_access_log *log, af_flows *svc,
                                           af_error *err);
/* NULL is fine. */
void af_bridge_observer_free(af_bridge_observer *o);
/* A request arrives: its start_ns (monotonic nanoseconds), or 0 without reading the clock when
 * nothing needs durations (histograms off, no access log). */
int64_t af_bridge_observe_start(const af_bridge_observer *o);
/* Counts the request, observes its duration and writes its line. */
void af_bridge_observe(af_bridge_observer *o, const af_bridge_call_view *v);

#endif
