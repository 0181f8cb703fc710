/* The census: flows by status and the runs in their run logs by status, for operators (the
 * admin listener's /metrics), by a paged scan of each account and region's flows (every scope
 * af__scopes_each knows). Counts are kept per (account, region) until every scope has been
 * scanned, so a failure reports nothing. A run's status is where it is at the moment of the
 * scan, on the service's clock (runs.c). */
#include "appflow_model.h"
#include "flows/internal.h"

#include <stdlib.h>
#include <string.h>

#define FLOW_STATUSES 7      /* Appflow__V1__FlowStatus, 0 (unspecified) to 6 */
#define EXECUTION_STATUSES 6 /* Appflow__V1__ExecutionStatus, 0 (unspecified) to 5 */

/* One account and region's counts. */
typedef struct tally {
  char account[16], region[64];
  uint64_t flows[FLOW_STATUSES];
  uint64_t runs[EXECUTION_STATUSES];
} tally;

typedef struct census {
  af_flows *svc;
  int64_t now_ms;
  af_arena arena; /* one run log at a time */
  tally *t;       /* one per scope scanned; the last is the one being counted */
  size_t n, cap;
} census;

static void count_runs(census *c, tally *t, af_bytes blob) {
  Appflowd__Store__V1__RunLog *log = af_flows_runs(blob, &c->arena);
  for (size_t i = 0; log != NULL && i < log->n_executions; i++) {
    int64_t since;
    unsigned st = (unsigned)af__execution_status(log->executions[i], c->now_ms, &since);
    if (st < EXECUTION_STATUSES)
      t->runs[st]++;
  }
  af_arena_reset(&c->arena);
}

static bool visit(const af_flow_record *rec, void *ctx) {
  census *c = ctx;
  tally *t = &c->t[c->n - 1];
  if (rec->status < FLOW_STATUSES)
    t->flows[rec->status]++;
  if (rec->runs.len > 0)
    count_runs(c, t, rec->runs);
  return true;
}

/* Scans one scope's flows (NULL: --account/--region's; else "ACCOUNT/REGION") into a new tally. */
static af_store_rc census_scope(void *ctx, const char *scope) {
  census *c = ctx;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 4;
    tally *t = realloc(c->t, cap * sizeof *t);
    if (t == NULL)
      return AF_STORE_FAILED;
    c->t = t;
    c->cap = cap;
  }
  tally *t = &c->t[c->n++];
  memset(t, 0, sizeof *t);
  const char *slash = scope != NULL ? strchr(scope, '/') : NULL;
  if (slash != NULL) {
    snprintf(t->account, sizeof t->account, "%.*s", (int)(slash - scope), scope);
    snprintf(t->region, sizeof t->region, "%s", slash + 1);
  } else {
    snprintf(t->account, sizeof t->account, "%s", af_flows_account(c->svc));
    snprintf(t->region, sizeof t->region, "%s", af_flows_region(c->svc));
  }
  return af__scan_all(c->svc, AF_TABLE_FLOWS, scope, visit, NULL, c);
}

/* Every status of an enum shape with its count, zeros included (so a status that empties shows
 * 0 rather than vanishing). */
static void report(const tally *t, af_census_fn fn, void *ctx, af_census_kind kind,
                   const af_model_struct *s, const char *member, const uint64_t *counts, size_t n) {
  const af_model_member *m = af_model_member_named(s, member);
  for (size_t v = 1; m != NULL && v < n; v++) {
    const char *status = af_model_enum_string(m->shape, (int)v);
    if (status != NULL)
      fn(ctx, kind, t->account, t->region, status, counts[v]);
  }
}

static af_err store_error(af_store_rc rc, af_error *err) {
  switch (rc) {
  case AF_STORE_BUSY:
    return af_error_set(err, AF_ERR_THROTTLING, "too many requests are waiting for the store");
  case AF_STORE_UNAVAILABLE:
    return af_error_set(err, AF_ERR_UNAVAILABLE, "the store is unavailable or did not answer");
  case AF_STORE_OK:
  case AF_STORE_NOT_FOUND:
  case AF_STORE_EXISTS:
  case AF_STORE_REFUSED:
  case AF_STORE_TOO_LONG:
  case AF_STORE_FAILED:
    break;
  }
  return af_error_set(err, AF_ERR_INTERNAL_SERVER, "the store failed to scan the flows");
}

af_err af_flows_census(af_flows *svc, af_census_fn fn, void *ctx, af_error *err) {
  census c = {.svc = svc, .now_ms = af_flows_now_ms(svc)};
  af_arena_init(&c.arena);
  af_store_rc rc = af__scopes_each(svc, census_scope, &c);
  af_arena_destroy(&c.arena);
  af_err e = AF_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < c.n; i++) {
    report(&c.t[i], fn, ctx, AF_CENSUS_FLOWS, &af_model_FlowDefinition, "flowStatus", c.t[i].flows,
           FLOW_STATUSES);
    report(&c.t[i], fn, ctx, AF_CENSUS_EXECUTIONS, &af_model_ExecutionRecord, "executionStatus",
           c.t[i].runs, EXECUTION_STATUSES);
  }
  if (rc != AF_STORE_OK)
    e = store_error(rc, err);
  free(c.t);
  return e;
}
