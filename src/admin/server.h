/* The admin listener (--admin-listen): HTTP/1.1 for operators and tests, off by default. It
 * serves the emulator control API (admin/control.h), the operators' /metrics, /healthz and
 * /readyz (admin/ops.h), and the state's snapshot and reset (admin/state.h).
 *
 * Lifecycle: af_admin_server_start binds and serves on threads of its own (one per connection:
 * a control call may wait for the store and the scheduler) until af_admin_server_stop.
 * Thread-safety: start and stop from one thread. */
#ifndef AF_ADMIN_SERVER_H
#define AF_ADMIN_SERVER_H

#include "common/accesslog.h"
#include "common/compiler.h"
#include "common/metrics.h"
#include "flows/error.h"
#include "flows/log.h"
#include "flows/service.h"

typedef struct af_admin_server af_admin_server;

typedef struct af_admin_config {
  const char *listen;              /* "HOST:PORT"; port 0 picks a free one */
  size_t max_body;                 /* larger bodies get 413; 0 = 1 MiB */
  const af_log *log;               /* borrowed, may be NULL */
  af_metrics *metrics;             /* borrowed, outlives the server; NULL: /metrics shows the
                                      census and the process only */
  const af_access_log *access_log; /* borrowed, outlives the server; NULL: none */
  const char *seed_path;           /* the --flows file POST /reset loads again (borrowed); NULL:
                                      none */
} af_admin_config;

/* Binds and serves svc (borrowed; outlives the server). NULL with err set when the address
 * cannot be bound (the message says why) or memory runs out. */
af_admin_server *af_admin_server_start(const af_admin_config *cfg, af_flows *svc,
                                       af_error *err) AF_MUST_USE;
/* The port actually bound. */
int af_admin_server_port(const af_admin_server *s);
/* Shutdown began: /readyz answers 503 (doors draining) from now on. Any thread. */
void af_admin_server_drain(af_admin_server *s);
/* Stops serving, waits for calls in progress, frees the server. NULL is fine. */
void af_admin_server_stop(af_admin_server *s);

#endif
