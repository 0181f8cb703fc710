/* The AWS REST-JSON door's HTTP/1.1 server (libmicrohttpd: keep-alive, a thread pool, epoll):
 * collects each request's body up to a limit and hands it, with the method and the
 * request-target as sent, to af_bridge_handle, then writes the reply with the headers AWS
 * clients read (x-amzn-RequestId on every reply, x-amzn-ErrorType on errors, Content-Type:
 * application/json).
 *
 * Bounds: max_connections open at once (idle, slow or busy; each a file descriptor): a
 * connection past them gets 503 ServiceUnavailableException with Connection: close to its
 * request and is closed, or is closed within a second if it sends none; a request must arrive
 * whole within timeout_seconds, and is answered within request_timeout seconds of its headers
 * (504 RequestTimeoutException past that).
 *
 * Lifecycle: af_bridge_server_start binds and serves on its own threads until
 * af_bridge_server_stop. Thread-safety: start and stop from one thread. */
#ifndef AF_BRIDGE_HTTP_H
#define AF_BRIDGE_HTTP_H

#include "bridge/sigv4.h"
#include "common/accesslog.h"
#include "common/compiler.h"
#include "common/metrics.h"
#include "flows/error.h"
#include "flows/log.h"
#include "flows/service.h"

#include <stddef.h>

#define AF_BRIDGE_DEFAULT_MAX_BODY AF_DEFAULT_MAX_REQUEST_BYTES
#define AF_BRIDGE_DEFAULT_TIMEOUT 30
#define AF_BRIDGE_DEFAULT_MAX_CONNECTIONS 10000
#define AF_BRIDGE_DEFAULT_REQUEST_TIMEOUT 30

typedef struct af_bridge_server af_bridge_server;

typedef struct af_bridge_config {
  const char *listen;          /* "HOST:PORT"; port 0 picks a free one */
  int threads;                 /* server threads, at least 1 */
  size_t max_body;             /* larger bodies get 413; 0 = 1 MiB */
  unsigned timeout_seconds;    /* idle connections are closed after this; 0 = 30 */
  unsigned max_connections;    /* served at once, past them 503 and closed; 0 = 10000 */
  double request_timeout;      /* seconds from a request's headers to its answer; 0 = 30 */
  const af_log *log;           /* borrowed, may be NULL */
  const af_sigv4_creds *creds; /* borrowed; NULL: no SigV4 check (any signature passes) */
  af_metrics *metrics;         /* borrowed, outlives the server; NULL: no metrics recorded */
  af_access_log *access_log;   /* borrowed, outlives the server; NULL: no access log */
} af_bridge_config;

/* Binds and starts serving svc (borrowed; must outlive the server). NULL with err set when the
 * address cannot be bound (the message says why) or memory runs out. */
af_bridge_server *af_bridge_server_start(const af_bridge_config *cfg, af_flows *svc,
                                         af_error *err) AF_MUST_USE;
/* Connections the door accepts at once for max_connections (0: the default): the limit and a
 * margin it answers 503; so the file descriptors it may hold. */
unsigned af_bridge_connection_slots(unsigned max_connections);
/* The port actually bound. */
int af_bridge_server_port(const af_bridge_server *s);
/* Begins shutdown without waiting: closes new connections as soon as they are accepted, and
 * answers requests that arrive on open connections with 503 ServiceUnavailableException and
 * Connection: close. NULL is fine; a second call does nothing. */
void af_bridge_server_drain(af_bridge_server *s);
/* Drains, lets requests in flight finish for up to grace_seconds, closes every connection,
 * joins the threads and frees the server. NULL is fine. */
void af_bridge_server_stop(af_bridge_server *s, double grace_seconds);

#endif
