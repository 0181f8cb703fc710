/* The gRPC door: appflow.v1.AppFlowService on the gRPC C core. It decodes each request into
 * its protobuf-c message, calls the service's handler (af_flows_rpcs) and encodes the answer
 * or the error (status code, message, grpc-status-details-bin). It holds no AppFlow rules.
 *
 * Threading: one completion queue polled by cfg->threads threads; handlers run on them and
 * must not block. Lifecycle: grpc_init() before af_grpc_server_start, grpc_shutdown() after
 * af_grpc_server_stop (the process owns gRPC's global state, not the server).
 * Thread-safety: start and stop from one thread; port may be read from any. */
#ifndef AF_GRPC_SERVER_H
#define AF_GRPC_SERVER_H

#include "flows/error.h"
#include "flows/log.h"
#include "flows/service.h"

#include <stddef.h>

#define AF_GRPC_DEFAULT_MAX_RECEIVE (64 * 1024)

typedef struct af_grpc_server af_grpc_server;

typedef struct af_grpc_config {
  const char *listen;    /* "HOST:PORT"; port 0 picks a free one (see af_grpc_server_port) */
  int threads;           /* completion-queue threads, at least 1 */
  int max_receive_bytes; /* larger requests fail with RESOURCE_EXHAUSTED; 0 = 64 KiB */
  const af_log *log;     /* borrowed, may be NULL */
} af_grpc_config;

/* Binds, starts serving svc (borrowed; must outlive the server) and returns the running
 * server; NULL with err set when the address cannot be bound (the message says why, e.g.
 * "Address already in use") or memory runs out. */
af_grpc_server *af_grpc_server_start(const af_grpc_config *cfg, af_flows *svc, af_error *err);

/* The port actually bound. */
int af_grpc_server_port(const af_grpc_server *s);

/* Stops accepting calls, lets in-flight calls finish for up to grace_seconds, cancels what is
 * left, joins the threads and frees the server. NULL is fine. */
void af_grpc_server_stop(af_grpc_server *s, double grace_seconds);

#endif
