/* UpdateFlow: a flow's trigger, connectors, tasks and catalog settings replaced, under the same
 * rules as CreateFlow.
 *
 * The new definition is the old one (which keeps kmsArn and the tags CreateFlow was given,
 * neither of which UpdateFlow takes) with the request's members in place of its own. The
 * flow's status stays what it was (an Active scheduled flow stays Active), except that an
 * on-demand flow is always Active, as CreateFlow makes it. A clientToken is kept with a digest
 * of its request for 8 hours: a retry with the same request gets the first result, and the same
 * token with another request is a ConflictException. */
#include "flows/internal.h"
#include "flows/rules.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define STATUS(s) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##s
#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t

/* UpdateFlow tokens kept per flow, as for StartFlow. */
#define UPDATE_TOKENS_MAX 64
#define DIGEST_LEN 32

typedef struct update_call {
  af_call c;
  const Appflow__V1__UpdateFlowRequest *req;
  Appflow__V1__UpdateFlowResponse *resp;
  const char *name;
  size_t len;
  const char *token; /* NULL: none */
  uint8_t digest[DIGEST_LEN];
  uint8_t before, status; /* out */
  bool changed, replayed; /* out */
  bool arm;               /* out: an Active scheduled flow, its schedule to compute again */
  af_flow_profiles profiles;
} update_call;

/* SHA-256 of the request without its clientToken, maps sorted; false on failure. */
static bool digest_of(const Appflow__V1__UpdateFlowRequest *req, af_arena *arena,
                      uint8_t out[DIGEST_LEN]) {
  Appflow__V1__UpdateFlowRequest d = *req;
  d.client_token = NULL;
  af_bytes b;
  unsigned n = 0;
  return af__pack_sorted(&d.base, arena, &b) &&
         EVP_Digest(b.data, b.len, out, &n, EVP_sha256(), NULL) == 1 && n == DIGEST_LEN;
}

static const Appflowd__Store__V1__UpdateToken *find_token(const Appflowd__Store__V1__RunLog *r,
                                                          const char *token, int64_t now) {
  for (size_t i = 0; token != NULL && i < r->n_update_tokens; i++) {
    const Appflowd__Store__V1__UpdateToken *t = r->update_tokens[i];
    if (now - t->at_ms < AF_TOKEN_TTL_MS && t->client_token != NULL &&
        strcmp(t->client_token, token) == 0)
      return t;
  }
  return NULL;
}

/* A CreateFlowRequest holding only tasks, packed (maps sorted, as the stored definition's
 * are): the tasks compared across an update. */
static bool pack_tasks(Appflow__V1__Task **tasks, size_t n, af_arena *a, af_bytes *out) {
  Appflow__V1__CreateFlowRequest t = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  t.tasks = tasks;
  t.n_tasks = n;
  return af__pack_sorted(&t.base, a, out);
}

/* The new definition: the old one (kmsArn, tags) with the request's members. *tasks_changed
 * says whether the tasks differ from the old definition's. */
static bool new_definition(update_call *u, const af_flow_record *cur, af_bytes *out,
                           bool *tasks_changed) {
  af_arena *a = u->c.to.arena;
  const Appflow__V1__UpdateFlowRequest *req = u->req;
  Appflow__V1__CreateFlowRequest *old = NULL;
  if (cur->definition.len > 0 &&
      (old = appflow__v1__create_flow_request__unpack(&a->allocator, cur->definition.len,
                                                      cur->definition.data)) == NULL)
    return false;
  Appflow__V1__CreateFlowRequest d = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  if (old != NULL) {
    d.kms_arn = old->kms_arn;
    d.n_tags = old->n_tags;
    d.tags = old->tags;
  }
  d.description = req->description;
  d.trigger_config = req->trigger_config;
  d.source_flow_config = req->source_flow_config;
  d.n_destination_flow_config_list = req->n_destination_flow_config_list;
  d.destination_flow_config_list = req->destination_flow_config_list;
  d.n_tasks = req->n_tasks;
  d.tasks = req->tasks;
  d.metadata_catalog_config = req->metadata_catalog_config;
  size_t len;
  uint8_t *buf = af__pack_definition(&d, a, &len);
  af_bytes was = {NULL, 0}, now = {NULL, 0};
  if (buf == NULL || !pack_tasks(req->tasks, req->n_tasks, a, &now) ||
      (old != NULL && !pack_tasks(old->tasks, old->n_tasks, a, &was)))
    return false;
  *tasks_changed = old == NULL || !af__bytes_equal(was, now);
  *out = (af_bytes){buf, len};
  return true;
}

/* The run log after this update: its token first, then the old log's fresh tokens. */
static bool log_update(update_call *u, const Appflowd__Store__V1__RunLog *old, bool bump,
                       af_bytes *out) {
  af_arena *a = u->c.to.arena;
  Appflowd__Store__V1__RunLog r = *old;
  Appflowd__Store__V1__UpdateToken **v = af_arena_alloc(a, (old->n_update_tokens + 1) * sizeof *v);
  Appflowd__Store__V1__UpdateToken *add = af_arena_alloc(a, sizeof *add);
  if (v == NULL || add == NULL)
    return false;
  size_t n = 0;
  if (u->token != NULL) {
    appflowd__store__v1__update_token__init(add);
    add->at_ms = u->c.now_ms;
    add->client_token = (char *)u->token;
    add->digest = (ProtobufCBinaryData){DIGEST_LEN, u->digest};
    add->flow_status = u->status;
    v[n++] = add;
  }
  for (size_t i = 0; i < old->n_update_tokens && n < UPDATE_TOKENS_MAX; i++) {
    if (u->c.now_ms - old->update_tokens[i]->at_ms < AF_TOKEN_TTL_MS)
      v[n++] = old->update_tokens[i];
  }
  r.n_update_tokens = n;
  r.update_tokens = v;
  if (bump)
    r.schema_version = (r.schema_version > 0 ? r.schema_version : 1) + 1;
  if (u->arm) /* the schedule may have changed: it starts again from now */
    af__schedule_from(&r, u->c.now_ms, false);
  return af__pack(&r.base, a, out);
}

/* Where an update leaves the flow's status (an on-demand flow is Active, as CreateFlow makes
 * it; others keep theirs); AF_OK or a conflict. */
static af_err update_status(const af_flow_record *f, Appflow__V1__TriggerType trigger,
                            uint8_t *next, af_error *err) {
  af_err rc = af__changeable(f, "updated", err);
  if (rc == AF_OK)
    *next = trigger == TRIGGER(ON_DEMAND) ? STATUS(ACTIVE) : f->status;
  return rc;
}

static af_store_verdict update_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  update_call *u = ctx;
  af_error *err = u->c.to.err;
  u->changed = u->replayed = u->arm = false;
  Appflowd__Store__V1__RunLog *old = af_flows_runs(cur->runs, u->c.to.arena);
  if (old == NULL) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  const Appflowd__Store__V1__UpdateToken *seen = find_token(old, u->token, u->c.now_ms);
  if (seen != NULL) {
    if (seen->digest.len != DIGEST_LEN || memcmp(seen->digest.data, u->digest, DIGEST_LEN) != 0) {
      af_error_set(err, AF_ERR_CONFLICT,
                   "Conflict executing request: clientToken was already used to update flow %s "
                   "with other parameters: use a new clientToken for a different request",
                   cur->name);
      return AF_STORE_REFUSE;
    }
    u->status = (uint8_t)seen->flow_status;
    u->replayed = true;
    return AF_STORE_KEEP;
  }
  Appflow__V1__TriggerType trigger = u->req->trigger_config->trigger_type;
  bool tasks_changed = false;
  if (update_status(cur, trigger, &u->status, err) != AF_OK)
    return AF_STORE_REFUSE;
  u->arm = u->status == STATUS(ACTIVE) && trigger == TRIGGER(SCHEDULED);
  if (!new_definition(u, cur, &next->definition, &tasks_changed) ||
      !log_update(u, old, tasks_changed && cur->definition.len > 0, &next->runs)) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  u->before = cur->status;
  u->changed = true;
  next->status = u->status;
  next->trigger = (uint8_t)trigger;
  next->updated_ms = u->c.now_ms;
  next->updated_by = af__principal(&u->c);
  next->description = u->req->description;
  next->source_connector = af_flows_connector_name(u->req->source_flow_config->connector_type);
  const Appflow__V1__DestinationFlowConfig *dst = u->req->destination_flow_config_list[0];
  next->destination_connector = af_flows_connector_name(dst->connector_type);
  next->source_profile = af__flow_profile(u->req->source_flow_config->connector_profile_name,
                                          (int)u->req->source_flow_config->connector_type);
  next->destination_profile =
      af__flow_profile(dst->connector_profile_name, (int)dst->connector_type);
  return AF_STORE_WRITE;
}

static void update_answer(af_call *c, af_err e) {
  update_call *u = (update_call *)c;
  if (e == AF_OK) {
    u->resp->flow_status = (Appflow__V1__FlowStatus)u->status;
    u->resp->has_flow_status = true;
    if (u->changed)
      af_log_printf(u->c.svc->log, AF_LOG_INFO, "flow %s: updated, %s", u->name,
                    af_flows_status_name(u->status));
  }
  af__call_end(&u->c, e);
}

static void update_done(af_store_op *op, af_store_rc rc) {
  update_call *u = (update_call *)af__call_of(op);
  af_err e = af__store_error(&u->c, rc, u->name, u->len);
  if (e == AF_OK && u->arm && !u->replayed)
    af__arm_timer(&u->c, u->name, u->len, u->c.now_ms, update_answer);
  else
    update_answer(&u->c, e);
}

/* The profiles the flow names exist: the update itself. */
static void update_checked(af_call *c) {
  update_call *u = (update_call *)c;
  u->c.op.with_definition = true; /* the rule builds on the old definition */
  af__call_modify(&u->c, u->name, u->len, update_rule, update_done);
}

void af__update_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                     const af_reply_to *to) {
  const Appflow__V1__UpdateFlowRequest *req = (const Appflow__V1__UpdateFlowRequest *)msg;
  update_call *u = af__call_new(svc, to, sizeof *u);
  if (u == NULL || !af__call_check_name(&u->c, req->flow_name, &u->len))
    return;
  af_err rc =
      af_check_flow_rules(AF_FLOW_UPDATE, req->trigger_config, req->source_flow_config,
                          req->destination_flow_config_list, req->n_destination_flow_config_list,
                          req->tasks, req->n_tasks, to->err);
  if (rc == AF_OK && !digest_of(req, to->arena, u->digest))
    rc = af_flows_oom(to->err);
  if (rc != AF_OK) {
    af__call_end(&u->c, rc);
    return;
  }
  u->req = req;
  u->resp = (Appflow__V1__UpdateFlowResponse *)out;
  u->name = req->flow_name;
  u->token = req->client_token;
  af__check_flow_profiles(&u->c, &u->profiles, req->source_flow_config,
                          req->destination_flow_config_list[0], update_checked);
}
