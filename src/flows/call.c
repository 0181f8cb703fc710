/* One call's life: made in its request's arena, ended through its reply_to, or waited for by
 * the typed forms that tests and tools use. */
#include "common/latch.h"
#include "flows/internal.h"

#include <string.h>

/* The tenant of a call that names an account or region other than the service's, in the
 * arena; NULL after ending the call when it is malformed or memory runs out. */
static const af_tenant *other_tenant(af_flows *svc, const af_reply_to *to) {
  af_tenant t;
  af_err rc = af__tenant(svc, to->account, to->region, &t, to->err);
  if (rc != AF_OK) {
    to->done(to->ctx, rc);
    return NULL;
  }
  if (t.scope_len == 0)
    return &svc->home;
  af_tenant *copy = af_arena_alloc(to->arena, sizeof *copy);
  if (copy == NULL) {
    to->done(to->ctx, af_flows_oom(to->err));
    return NULL;
  }
  *copy = t;
  return copy;
}

void *af__call_new(af_flows *svc, const af_reply_to *to, size_t size) {
  const af_tenant *tenant = &svc->home;
  if ((to->account != NULL || to->region != NULL) && (tenant = other_tenant(svc, to)) == NULL)
    return NULL;
  af_call *c = af_arena_alloc(to->arena, size);
  if (c == NULL) {
    to->done(to->ctx, af_flows_oom(to->err));
    return NULL;
  }
  memset(c, 0, size);
  c->svc = svc;
  c->tenant = tenant;
  c->to = *to;
  c->now_ms = af_flows_now_ms(svc);
  c->op.deadline_ms = to->deadline_ms;
  c->op.ctx = c;
  af__op_scope(&c->op, tenant);
  return c;
}

void af__call_end(af_call *c, af_err rc) { c->to.done(c->to.ctx, rc); }

bool af__call_check_name(af_call *c, const char *name, size_t *len) {
  /* The model's checks ran before the handler (af_flows_call): flowName is there and valid. */
  *len = name ? strlen(name) : 0;
  if (name != NULL)
    return true;
  af__call_end(c, af_error_set(c->to.err, AF_ERR_VALIDATION,
                               "1 validation error detected: Value null at 'flowName' failed to "
                               "satisfy constraint: Member must not be null"));
  return false;
}

void af__call_modify(af_call *c, const char *key, size_t len, af_store_rule rule,
                     af_store_done done) {
  c->op.key = key;
  c->op.key_len = len;
  c->op.rule = rule;
  c->op.done = done;
  af_store_modify(c->svc->store, &c->op);
}

af_store_verdict af__keep_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_KEEP;
}

af_store_verdict af__profile_type_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  *(int *)ctx = af_flows_connector_value(cur->source_connector);
  return AF_STORE_KEEP;
}

af_err af__store_error(af_call *c, af_store_rc rc, const char *name, size_t len) {
  af_error *err = c->to.err;
  char esc[AF_ERROR_MESSAGE_MAX / 2];
  switch (rc) {
  case AF_STORE_OK:
  case AF_STORE_EXISTS:
    return AF_OK;
  case AF_STORE_REFUSED:
    return err->code;
  case AF_STORE_NOT_FOUND:
    return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND, "Flow %s does not exist",
                        af_escape(esc, sizeof esc, name, len));
  case AF_STORE_BUSY:
    return af_error_set(err, AF_ERR_THROTTLING,
                        "Too many requests are waiting for appflowd's flow store: retry later");
  case AF_STORE_UNAVAILABLE:
    return af_error_set(err, AF_ERR_UNAVAILABLE,
                        "appflowd's flow store is unavailable or did not answer in time: retry "
                        "later");
  case AF_STORE_TOO_LONG: /* the service built a key longer than any store keeps */
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Name %s%s is too long for appflowd's store, whose keys (the name and "
                        "what appflowd adds to it) hold at most %d bytes",
                        af_escape(esc, sizeof esc, name, len < 64 ? len : 64),
                        len > 64 ? "..." : "", AF_STORE_KEY_MAX);
  case AF_STORE_FAILED:
    break;
  }
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "appflowd's flow store failed to complete the request (the server log "
                      "says why)");
}

/* ---- waiting ---- */

typedef struct waiter {
  af_latch latch;
  af_err rc;
} waiter;

static void wake(void *ctx, af_err rc) {
  waiter *w = ctx;
  w->rc = rc;
  af_latch_open(&w->latch);
}

af_err af__wait(void (*begin)(void *arg, const af_reply_to *to), void *arg, af_arena *arena,
                af_error *err) {
  waiter w = {.rc = AF_OK};
  af_latch_init(&w.latch);
  af_error_start(err, AF_OK);
  af_reply_to to = {arena, err, 0, wake, &w};
  begin(arg, &to);
  af_latch_wait(&w.latch);
  return w.rc;
}

/* ---- the caller's deadline ---- */

/* A call with a deadline stands between its handler and its caller, so the answer it gives
 * after the deadline is the deadline's error. */
typedef struct deadline_call {
  af_reply_to to;   /* the caller's */
  const char *name; /* the RPC's, for the message */
} deadline_call;

static bool past(int64_t deadline_ms) {
  return deadline_ms > 0 && af_store_now_ms() >= deadline_ms;
}

static void deadline_done(void *ctx, af_err rc) {
  deadline_call *d = ctx;
  /* Past the deadline, a success or the store's timeout means the caller's deadline ran out
   * (no OK after it); a refusal stands, as it changed nothing. Each store op is one atomic
   * record change, and none starts after the deadline (af_store_modify...), so the change
   * asked for was made whole or not at all, which the caller cannot tell. */
  if ((rc == AF_OK || rc == AF_ERR_UNAVAILABLE) && past(d->to.deadline_ms))
    rc = af_error_set(d->to.err, AF_ERR_REQUEST_TIMEOUT,
                      "%s did not complete within its deadline; a change it asked for may or "
                      "may not have been made: check, or retry it (with the same clientToken, "
                      "if it has one), with a longer deadline if this recurs",
                      d->name);
  d->to.done(d->to.ctx, rc);
}

/* Runs the handler with the deadline's stand-in as its reply_to. */
static void call_with_deadline(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                               ProtobufCMessage *resp, const af_reply_to *to) {
  deadline_call *d = af_arena_alloc(to->arena, sizeof *d);
  if (d == NULL) {
    to->done(to->ctx, af_flows_oom(to->err));
    return;
  }
  *d = (deadline_call){*to, rpc->name};
  af_reply_to mine = *to;
  mine.done = deadline_done;
  mine.ctx = d;
  af__scope_record(svc, rpc, req, resp, &mine);
}

void af_flows_call(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                   ProtobufCMessage *resp, const af_reply_to *to) {
  if (past(to->deadline_ms)) {
    to->done(to->ctx, af_error_set(to->err, AF_ERR_REQUEST_TIMEOUT,
                                   "%s did not start: its deadline had passed before appflowd "
                                   "could begin it, so nothing was changed; retry it, with a "
                                   "longer deadline if this recurs",
                                   rpc->name));
    return;
  }
  /* The model's checks first, so every operation of the contract validates as AWS does, even
   * one whose handler is still to come. */
  af_err rc =
      rpc->op != NULL ? af_check_message(svc->checker, rpc->op->input, req, to->err) : AF_OK;
  if (rc == AF_OK && rpc->handler == NULL)
    rc = af_error_set(to->err, AF_ERR_NOT_IMPLEMENTED, "appflowd does not implement %s yet",
                      rpc->name);
  if (rc != AF_OK)
    to->done(to->ctx, rc);
  else if (to->deadline_ms > 0)
    call_with_deadline(svc, rpc, req, resp, to);
  else
    af__scope_record(svc, rpc, req, resp, to);
}

typedef struct sync_call {
  af_flows *svc;
  const af_rpc *rpc;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  const char *account, *region;
  bool seeding;
} sync_call;

static void begin_sync(void *arg, const af_reply_to *to) {
  sync_call *c = arg;
  af_reply_to in = *to;
  in.account = c->account;
  in.region = c->region;
  in.seeding = c->seeding;
  af_flows_call(c->svc, c->rpc, c->req, c->resp, &in);
}

af_err af_flows_call_sync(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                          ProtobufCMessage *resp, af_arena *arena, af_error *err) {
  return af_flows_call_sync_in(svc, NULL, NULL, rpc, req, resp, arena, err);
}

af_err af_flows_call_sync_in(af_flows *svc, const char *account, const char *region,
                             const af_rpc *rpc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                             af_arena *arena, af_error *err) {
  sync_call c = {svc, rpc, req, resp, account, region, false};
  return af__wait(begin_sync, &c, arena, err);
}

af_err af_flows_seed_call_in(af_flows *svc, const char *account, const char *region,
                             const af_rpc *rpc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                             af_arena *arena, af_error *err) {
  sync_call c = {svc, rpc, req, resp, account, region, true};
  return af__wait(begin_sync, &c, arena, err);
}

/* The typed forms: each waits for its RPC. */
#define TYPED(Name, snake, fn)                                                                     \
  af_err fn(af_flows *svc, const Appflow__V1__##Name##Request *req,                                \
            Appflow__V1__##Name##Response *resp, af_arena *arena, af_error *err) {                 \
    appflow__v1__##snake##_response__init(resp);                                                   \
    return af_flows_call_sync(svc, af_flows_rpc_named(svc, #Name), &req->base, &resp->base, arena, \
                              err);                                                                \
  }
TYPED(CreateFlow, create_flow, af_flows_create_flow)
TYPED(DescribeFlow, describe_flow, af_flows_describe_flow)
TYPED(ListFlows, list_flows, af_flows_list_flows)
TYPED(StartFlow, start_flow, af_flows_start_flow)
TYPED(DeleteFlow, delete_flow, af_flows_delete_flow)
TYPED(TagResource, tag_resource, af_flows_tag_resource)
TYPED(UntagResource, untag_resource, af_flows_untag_resource)
TYPED(ListTagsForResource, list_tags_for_resource, af_flows_list_tags)
