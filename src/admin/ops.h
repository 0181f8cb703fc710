/* The admin listener's endpoints for operators:
 *
 *   GET /metrics   Prometheus text format 0.0.4: the registry's families (the doors' calls, the
 *                  store's operations), the census (appflowd_flows{account,region,status},
 *                  appflowd_executions_total{status}), the access log's dropped lines and the
 *                  process_* metrics
 *   GET /healthz   200 {"status":"ok"} while the process runs
 *   GET /readyz    200 when the store can serve and the doors are not draining, else 503; the
 *                  body says which part is not ready
 *
 * Another method on these paths is 405 (Allow: GET) with the control API's error body.
 *
 * Ownership: an answer's body is malloc'd and the caller's. Thread-safety: any thread; /metrics
 * waits for the store's scan (the admin listener's threads may wait). */
#ifndef AF_ADMIN_OPS_H
#define AF_ADMIN_OPS_H

#include "common/accesslog.h"
#include "common/metrics.h"
#include "flows/log.h"
#include "flows/service.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct af_admin_ops {
  af_flows *svc;
  af_metrics *metrics;             /* NULL: only the census and the process */
  const af_access_log *access_log; /* NULL: no access log (no dropped count) */
  const atomic_bool *draining;     /* true once shutdown began */
  const af_log *log;               /* may be NULL */
} af_admin_ops;

typedef struct af_admin_answer {
  unsigned status;
  const char *content_type;
  const char *allow; /* the Allow header of a 405, else NULL */
  char *body;        /* malloc'd; NULL only when out of memory (then status is 500) */
  size_t len;
} af_admin_answer;

/* Whether path (the request's path, decoded, without its query) is one of the endpoints. */
bool af_admin_ops_path(const char *path);
/* Answers method on one of the endpoints. */
void af_admin_ops_answer(const af_admin_ops *o, const char *method, const char *path,
                         af_admin_answer *out);

#endif
