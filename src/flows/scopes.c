/* Accounts and regions other than the service's own. Each is a store scope of its own
 * (flows/store.h), recorded once in the timers table as "scope:ACCOUNT/REGION" before its first
 * call runs, so what must visit every account (the restart's interrupted runs, the operator's
 * census and state) finds them on every replica and after any crash. A process remembers the
 * scopes it has recorded (AF_KNOWN_SCOPES of them), so a call costs the extra write once per
 * scope, not once per call. */
#include "flows/internal.h"

#include <stdlib.h>
#include <string.h>

#define SCOPE_ROW "scope:"

static bool known(af_flows *svc, const char *scope) {
  pthread_mutex_lock(&svc->scopes_lock);
  size_t i = 0;
  while (i < svc->nscopes && strcmp(svc->scopes[i], scope) != 0)
    i++;
  bool found = i < svc->nscopes;
  pthread_mutex_unlock(&svc->scopes_lock);
  return found;
}

/* Past AF_KNOWN_SCOPES a scope is recorded again on each call: a write that finds its row. */
static void remember(af_flows *svc, const char *scope) {
  pthread_mutex_lock(&svc->scopes_lock);
  size_t i = 0;
  while (i < svc->nscopes && strcmp(svc->scopes[i], scope) != 0)
    i++;
  if (i == svc->nscopes && i < AF_KNOWN_SCOPES)
    snprintf(svc->scopes[svc->nscopes++], sizeof svc->scopes[0], "%s", scope);
  pthread_mutex_unlock(&svc->scopes_lock);
}

/* A call waiting for its scope's row. */
typedef struct record_call {
  af_store_op op; /* first: done gets it back */
  af_flow_record rec;
  char row[sizeof SCOPE_ROW + AF_STORE_SCOPE_MAX];
  char scope[AF_STORE_SCOPE_MAX + 1];
  af_flows *svc;
  const af_rpc *rpc;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  af_reply_to to;
} record_call;

static void recorded(af_store_op *op, af_store_rc rc) {
  record_call *r = (record_call *)(void *)op;
  if (rc == AF_STORE_OK || rc == AF_STORE_EXISTS) {
    remember(r->svc, r->scope);
    r->rpc->handler(r->svc, r->req, r->resp, &r->to);
    return;
  }
  af_call c = {.svc = r->svc, .tenant = &r->svc->home, .to = r->to};
  r->to.done(r->to.ctx, af__store_error(&c, rc, r->row, strlen(r->row)));
}

void af__scope_record(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                      ProtobufCMessage *resp, const af_reply_to *to) {
  af_tenant t;
  if (to->account == NULL && to->region == NULL) {
    rpc->handler(svc, req, resp, to);
    return;
  }
  af_err rc = af__tenant(svc, to->account, to->region, &t, to->err);
  if (rc != AF_OK) {
    to->done(to->ctx, rc);
    return;
  }
  if (t.scope_len == 0 || known(svc, t.scope)) {
    rpc->handler(svc, req, resp, to);
    return;
  }
  record_call *r = af_arena_alloc(to->arena, sizeof *r);
  if (r == NULL) {
    to->done(to->ctx, af_flows_oom(to->err));
    return;
  }
  *r = (record_call){.svc = svc, .rpc = rpc, .req = req, .resp = resp, .to = *to};
  memcpy(r->scope, t.scope, t.scope_len + 1);
  snprintf(r->row, sizeof r->row, SCOPE_ROW "%s", t.scope);
  r->rec = (af_flow_record){.name = r->row, .name_len = strlen(r->row), .description = r->scope};
  r->op = (af_store_op){.table = AF_TABLE_TIMERS,
                        .key = r->rec.name,
                        .key_len = r->rec.name_len,
                        .record = &r->rec,
                        .deadline_ms = to->deadline_ms,
                        .done = recorded};
  af_store_insert(svc->store, &r->op);
}

/* ---- every scope ---- */

typedef struct each {
  af_flows *svc;
  af_store_rc (*fn)(void *ctx, const char *scope);
  void *ctx;
  char (*page)[AF_STORE_SCOPE_MAX + 1]; /* the page's scope rows */
  size_t n;
} each;

#define EACH_PAGE 256 /* at least af__scan_all's page (scheduler.c) */

static bool visit_row(const af_flow_record *r, void *ctx) {
  each *e = ctx;
  size_t plen = strlen(SCOPE_ROW);
  if (r->name_len > plen && r->name_len - plen <= AF_STORE_SCOPE_MAX &&
      memcmp(r->name, SCOPE_ROW, plen) == 0 && e->n < EACH_PAGE) {
    memcpy(e->page[e->n], r->name + plen, r->name_len - plen);
    e->page[e->n++][r->name_len - plen] = '\0';
  }
  return true;
}

static af_store_rc each_page(void *ctx) {
  each *e = ctx;
  af_store_rc rc = AF_STORE_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < e->n; i++)
    rc = e->fn(e->ctx, e->page[i]);
  e->n = 0;
  return rc;
}

af_store_rc af__scopes_each(af_flows *svc, af_store_rc (*fn)(void *ctx, const char *scope),
                            void *ctx) {
  af_store_rc rc = fn(ctx, NULL);
  each e = {svc, fn, ctx, malloc(EACH_PAGE * sizeof *e.page), 0};
  if (rc == AF_STORE_OK)
    rc = e.page == NULL ? AF_STORE_FAILED
                        : af__scan_all(svc, AF_TABLE_TIMERS, NULL, visit_row, each_page, &e);
  free(e.page);
  return rc;
}

/* ---- seeding and reset ---- */

af_err af__scope_record_sync(af_flows *svc, const af_tenant *t, af_error *err) {
  if (t->scope_len == 0 || known(svc, t->scope))
    return AF_OK;
  char row[sizeof SCOPE_ROW + AF_STORE_SCOPE_MAX];
  snprintf(row, sizeof row, SCOPE_ROW "%s", t->scope);
  af_flow_record rec = {.name = row, .name_len = strlen(row), .description = t->scope};
  af_store_op op = {
      .table = AF_TABLE_TIMERS, .key = rec.name, .key_len = rec.name_len, .record = &rec};
  af_store_rc rc = af_store_run(svc->store, af_store_insert, &op);
  if (rc != AF_STORE_OK && rc != AF_STORE_EXISTS)
    return af_error_set(err, AF_ERR_UNAVAILABLE, "the store could not record the scope %s (%d)",
                        t->scope, (int)rc);
  remember(svc, t->scope);
  return AF_OK;
}

void af__scopes_forget(af_flows *svc) {
  pthread_mutex_lock(&svc->scopes_lock);
  svc->nscopes = 0;
  pthread_mutex_unlock(&svc->scopes_lock);
}
