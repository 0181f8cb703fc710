/* The census: flows by status and the runs in their run logs by status, for operators (the
 * admin listener's /metrics), by one paged scan of the flows table.
 *
 * Every flow is in the service's one account and region today, so each count is reported for
 * that (account, region); when the store keeps flows of several accounts, the visitor reads
 * each record's own and the counts become per (account, region), with the interface as it is.
 * A run's status is where it is at the moment of the scan, on the service's clock (runs.c). */
#include "appflow_model.h"
#include "flows/internal.h"

#include <stdlib.h>
#include <string.h>

/* Records per scan op: each page is one store op, so a large store is never held for long. */
#define PAGE 512
#define FLOW_STATUSES 7      /* Appflow__V1__FlowStatus, 0 (unspecified) to 6 */
#define EXECUTION_STATUSES 6 /* Appflow__V1__ExecutionStatus, 0 (unspecified) to 5 */

typedef struct census {
  af_flows *svc;
  int64_t now_ms;
  af_arena arena; /* one run log at a time */
  uint64_t flows[FLOW_STATUSES];
  uint64_t runs[EXECUTION_STATUSES];
  char last[AF_FLOW_NAME_MAX + 64]; /* where the next page resumes */
  size_t last_len, seen;
} census;

static void count_runs(census *c, af_bytes blob) {
  Appflowd__Store__V1__RunLog *log = af_flows_runs(blob, &c->arena);
  for (size_t i = 0; log != NULL && i < log->n_executions; i++) {
    int64_t since;
    unsigned st = (unsigned)af__execution_status(log->executions[i], c->now_ms, &since);
    if (st < EXECUTION_STATUSES)
      c->runs[st]++;
  }
  af_arena_reset(&c->arena);
}

static bool visit(const af_flow_record *rec, void *ctx) {
  census *c = ctx;
  c->seen++;
  c->last_len = rec->name_len < sizeof c->last ? rec->name_len : sizeof c->last - 1;
  memcpy(c->last, rec->name, c->last_len);
  if (rec->status < FLOW_STATUSES)
    c->flows[rec->status]++;
  if (rec->runs.len > 0)
    count_runs(c, rec->runs);
  return true;
}

/* Scans every flow, a page at a time. */
static af_store_rc scan(census *c) {
  af_store_rc rc;
  do {
    char resume[sizeof c->last];
    size_t len = c->last_len;
    memcpy(resume, c->last, len);
    c->seen = 0;
    af_store_op op = {.table = AF_TABLE_FLOWS,
                      .key = len > 0 ? resume : NULL,
                      .key_len = len,
                      .visit = visit,
                      .ctx = c,
                      .limit = PAGE};
    rc = af_store_run(c->svc->store, af_store_scan, &op);
  } while (rc == AF_STORE_OK && c->seen == PAGE);
  return rc;
}

/* Every status of an enum shape with its count, zeros included (so a status that empties shows
 * 0 rather than vanishing). */
static void report(const census *c, af_census_fn fn, void *ctx, af_census_kind kind,
                   const af_model_struct *s, const char *member, const uint64_t *counts, size_t n) {
  const af_model_member *m = af_model_member_named(s, member);
  const char *account = af_flows_account(c->svc), *region = af_flows_region(c->svc);
  for (size_t v = 1; m != NULL && v < n; v++) {
    const char *status = af_model_enum_string(m->shape, (int)v);
    if (status != NULL)
      fn(ctx, kind, account, region, status, counts[v]);
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
  case AF_STORE_FAILED:
    break;
  }
  return af_error_set(err, AF_ERR_INTERNAL_SERVER, "the store failed to scan the flows");
}

af_err af_flows_census(af_flows *svc, af_census_fn fn, void *ctx, af_error *err) {
  census *c = calloc(1, sizeof *c);
  if (c == NULL)
    return af_flows_oom(err);
  c->svc = svc;
  c->now_ms = af_flows_now_ms(svc);
  af_arena_init(&c->arena);
  af_store_rc rc = scan(c);
  af_arena_destroy(&c->arena);
  af_err e = AF_OK;
  if (rc == AF_STORE_OK) {
    report(c, fn, ctx, AF_CENSUS_FLOWS, &af_model_FlowDefinition, "flowStatus", c->flows,
           FLOW_STATUSES);
    report(c, fn, ctx, AF_CENSUS_EXECUTIONS, &af_model_ExecutionRecord, "executionStatus", c->runs,
           EXECUTION_STATUSES);
  } else {
    e = store_error(rc, err);
  }
  free(c);
  return e;
}
