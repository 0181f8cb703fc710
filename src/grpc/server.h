/* The gRPC door: appflow.v1.AppFlowService on the gRPC C core, plus what a platform expects of
 * a gRPC server: grpc.health.v1.Health (Check, and Watch, which turns NOT_SERVING when
 * shutdown begins) and server reflection (grpc.reflection.v1 and v1alpha). It decodes each
 * request, calls the service's handler (af_flows_rpc_at) and encodes the answer or the error
 * (status code, message, grpc-status-details-bin). It holds no AppFlow rules.
 *
 * Threading: one completion queue polled by cfg->threads threads. An AppFlow call is handed
 * to the service and its slot waits ("working") until the service answers, on a poll thread
 * (memory store) or a store thread (database stores), which then starts the reply batch; no
 * poll thread ever waits on a store. Health answers from the poll threads at once: SERVING
 * while the store can serve and shutdown has not begun, and Watch streams each change. Lifecycle:
 * grpc_init() before af_grpc_server_start, grpc_shutdown() after af_grpc_server_stop (the process
 * owns gRPC's global state, not the server). Thread-safety: start and stop from one thread; port
 * may be read from any. */
#ifndef AF_GRPC_SERVER_H
#define AF_GRPC_SERVER_H

#include "common/accesslog.h"
#include "common/compiler.h"
#include "common/metrics.h"
#include "flows/error.h"
#include "flows/log.h"
#include "flows/service.h"
#include "grpc/reflection.h"

#include <stddef.h>

#define AF_GRPC_DEFAULT_MAX_RECEIVE AF_DEFAULT_MAX_REQUEST_BYTES
#define AF_GRPC_DEFAULT_MAX_STREAMS 100
#define AF_GRPC_DEFAULT_MIN_PING_MS 10000
#define AF_GRPC_DEFAULT_PING_STRIKES 2
#define AF_GRPC_DEFAULT_MAX_IDLE_MS (30 * 60 * 1000)

typedef struct af_grpc_server af_grpc_server;

/* PEM texts for TLS; all NULL for plaintext. */
typedef struct af_grpc_tls {
  const char *cert_chain;  /* the server's certificate chain */
  const char *private_key; /* its key */
  const char *client_ca;   /* when set: clients must present a certificate signed by it */
} af_grpc_tls;

typedef struct af_grpc_config {
  const char *listen;         /* "HOST:PORT"; port 0 picks a free one (see af_grpc_server_port) */
  int threads;                /* completion-queue threads, at least 1 */
  int max_receive_bytes;      /* larger requests fail with RESOURCE_EXHAUSTED; 0 = 1 MiB */
  int max_concurrent_streams; /* calls at once on one connection; 0 = 100 */
  int min_ping_interval_ms;   /* clients pinging more often than this while no data flows (with
                                 or without calls open) earn strikes; 0 = 10 s, <0 = no
                                 minimum */
  int max_ping_strikes;       /* strikes before the connection is closed; 0 = 2, <0 = no limit */
  int max_connection_idle_ms; /* connections without calls this long are closed; 0 = 30 min,
                                 <0 = never */
  af_grpc_tls tls;            /* borrowed for the call to start */
  const af_reflection *reflection; /* borrowed, outlives the server; NULL = no reflection */
  const af_log *log;               /* borrowed, may be NULL */
  bool emulator;             /* also serve appflowd.emulator.v1.EmulatorService (the control API) */
  af_metrics *metrics;       /* borrowed, outlives the server; NULL: no metrics recorded */
  af_access_log *access_log; /* borrowed, outlives the server; NULL: no access log (and no
                                x-amzn-requestid response header) */
} af_grpc_config;

/* Binds, starts serving svc (borrowed; must outlive the server) and returns the running
 * server; NULL with err set when the address cannot be bound (the message says why, e.g.
 * "Address already in use"), the TLS material is unusable, or memory runs out. */
af_grpc_server *af_grpc_server_start(const af_grpc_config *cfg, af_flows *svc,
                                     af_error *err) AF_MUST_USE;

/* The port actually bound. */
int af_grpc_server_port(const af_grpc_server *s);

/* Reports NOT_SERVING to health watchers (ending their streams), stops accepting calls, lets
 * in-flight calls finish for up to grace_seconds, cancels what is left, joins the threads and
 * frees the server. NULL is fine. */
void af_grpc_server_stop(af_grpc_server *s, double grace_seconds);

#endif
