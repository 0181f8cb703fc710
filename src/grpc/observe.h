/* What the gRPC door records of each call when an operator asks (--admin-listen,
 * --access-log): go-grpc-prometheus's server metrics, named as its server_metrics.go names them
 * (grpc_server_started_total, grpc_server_handled_total with the code's name as grpc-go writes
 * it, grpc_server_handling_seconds), and the access log's line, with the x-amzn-requestid
 * response header that carries the line's request_id to the caller.
 *
 * Cost: a door without an observer pays one NULL test per hook. With one, a call costs an
 * atomic add per counter (started, handled, the histogram's bucket and sum) and, only when the
 * histogram or the access log needs its duration, a clock read as it starts and one as it ends;
 * the access log adds its line, made only when it is on.
 *
 * Ownership: the observer borrows the registry, the log and the service (they outlive it); the
 * per-call part lives in the door's slot. Thread-safety: the hooks of one call run one at a time
 * (the door's slot says so), on any thread; the observer is shared read-only. */
#ifndef AF_GRPC_OBSERVE_H
#define AF_GRPC_OBSERVE_H

#include "common/accesslog.h"
#include "common/metrics.h"
#include "flows/error.h"
#include "flows/service.h"

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum af_grpc_type {
  AF_GRPC_UNARY,
  AF_GRPC_SERVER_STREAM,
  AF_GRPC_BIDI_STREAM
} af_grpc_type;

/* One method the door serves: its path ("/appflow.v1.AppFlowService/CreateFlow") and type. */
typedef struct af_grpc_method_info {
  const char *path;
  af_grpc_type type;
} af_grpc_method_info;

/* One call's part, in the door's slot; zero it (or af_grpc_call_obs_reset) before a call. */
typedef struct af_grpc_call_obs {
  int64_t start_ns;
  uint64_t bytes_in, bytes_out; /* message bytes received and sent */
  bool live;                    /* started and not yet recorded as over */
  size_t method;                /* index into the observer's methods; beyond them: unknown */
  char request_id[37];          /* the x-amzn-requestid header (access log on only) */
  grpc_metadata header;
} af_grpc_call_obs;

/* What the door knows of a call as it ends. */
typedef struct af_grpc_call_view {
  grpc_call *call;                    /* for the peer */
  const grpc_metadata_array *request; /* the request's metadata, for user-agent */
  const char *path;                   /* the method as the client named it */
  size_t path_len;
  const char *account, *region; /* the call's (NULL: the service's own) */
} af_grpc_call_view;

typedef struct af_grpc_observer af_grpc_observer;

/* An observer of methods[0..n) recording into metrics (NULL: no metrics) and writing to log
 * (NULL: no access log); its families are added to metrics. NULL with err set when out of
 * memory. */
af_grpc_observer *af_grpc_observer_new(af_metrics *metrics, af_access_log *log, af_flows *svc,
                                       const af_grpc_method_info *methods, size_t n, af_error *err);
/* NULL is fine. */
void af_grpc_observer_free(af_grpc_observer *o);

/* A call of methods[method] (method >= n: a method the door does not know) has arrived. */
void af_grpc_observe_start(af_grpc_observer *o, af_grpc_call_obs *c, size_t method);
/* The response headers to send with the call's first batch into *md: how many (0 or 1). */
size_t af_grpc_observe_headers(af_grpc_observer *o, af_grpc_call_obs *c, grpc_metadata **md);
/* The call is over with code (error_type: the AWS error type of a failure, or NULL): counts it
 * and logs it, once; later calls for the same call do nothing. */
void af_grpc_observe_end(af_grpc_observer *o, af_grpc_call_obs *c, grpc_status_code code,
                         const char *error_type, const af_grpc_call_view *v);
/* The name grpc-go gives a status code ("OK", "NotFound", ...); "Unknown" for codes past 16. */
const char *af_grpc_code_name(grpc_status_code code);

#endif
