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
  af_bytes fresh;         /* the request's members as a definition, packed before the lock */
  af_bytes tasks;         /* the request's tasks, packed as pack_tasks does */
  af_flow_profiles profiles;
} update_call;

/* SHA-256 of the request without its clientToken, maps sorted; false on failure. */
static bool digest_of(const af_sort_plans *plans, const Appflow__V1__UpdateFlowRequest *req,
                      af_arena *arena, uint8_t out[DIGEST_LEN]) {
  Appflow__V1__UpdateFlowRequest d = *req;
  d.client_token = NULL;
  af_bytes b;
  unsigned n = 0;
  return af__pack_sorted(plans, &d.base, arena, &b) &&
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
static bool pack_tasks(const af_sort_plans *plans, Appflow__V1__Task **tasks, size_t n, af_arena *a,
                       af_bytes *out) {
  Appflow__V1__CreateFlowRequest t = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  t.tasks = tasks;
  t.n_tasks = n;
  return af__pack_sorted(plans, &t.base, a, out);
}

/* The request's members as a definition's (kmsArn and tags are CreateFlow's alone). */
static Appflow__V1__CreateFlowRequest definition_of(const Appflow__V1__UpdateFlowRequest *req) {
  Appflow__V1__CreateFlowRequest d = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  d.description = req->description;
  d.trigger_config = req->trigger_config;
  d.source_flow_config = req->source_flow_config;
  d.n_destination_flow_config_list = req->n_destination_flow_config_list;
  d.destination_flow_config_list = req->destination_flow_config_list;
  d.n_tasks = req->n_tasks;
  d.tasks = req->tasks;
  d.metadata_catalog_config = req->metadata_catalog_config;
  return d;
}

/* The new definition: the old one (kmsArn, tags) with the request's members. *tasks_changed
 * says whether the tasks differ from the old definition's. The slow way, for what
 * new_definition does not take: the old definition unpacked and all of it packed again. */
static bool rebuild_definition(update_call *u, const af_flow_record *cur, af_bytes *out,
                               bool *tasks_changed) {
  af_arena *a = u->c.to.arena;
  Appflow__V1__CreateFlowRequest *old = NULL;
  if (cur->definition.len > 0 &&
      (old = appflow__v1__create_flow_request__unpack(&a->allocator, cur->definition.len,
                                                      cur->definition.data)) == NULL)
    return false;
  Appflow__V1__CreateFlowRequest d = definition_of(u->req);
  if (old != NULL) {
    d.kms_arn = old->kms_arn;
    d.n_tags = old->n_tags;
    d.tags = old->tags;
  }
  size_t len;
  const af_sort_plans *plans = u->c.svc->sort_plans;
  uint8_t *buf = af__pack_definition(plans, &d, a, &len);
  af_bytes was = {NULL, 0};
  if (buf == NULL || (old != NULL && !pack_tasks(plans, old->tasks, old->n_tasks, a, &was)))
    return false;
  *tasks_changed = old == NULL || !af__bytes_equal(was, u->tasks);
  *out = (af_bytes){buf, len};
  return true;
}

/* Where a packed definition keeps one field's values: the bytes of every one, tag included,
 * when they come one after another. */
typedef struct field_run {
  const uint8_t *at;
  size_t len;
  bool seen, ended; /* ended: another field came after it */
} field_run;

/* The fields an update splices or compares. */
enum { KMS_ARN, TAGS, TASKS, PARTS };

static af_bytes run_bytes(const field_run *r) { return (af_bytes){r->at, r->seen ? r->len : 0}; }

/* Adds the field at [p, end) to its run; false when the run was already ended. */
static bool extend(field_run *r, const uint8_t *p, const uint8_t *end) {
  if (r->ended)
    return false;
  if (!r->seen)
    r->at = p;
  r->seen = true;
  r->len = (size_t)(end - r->at);
  return true;
}

/* A packed definition's kmsArn, tags and tasks as their packed bytes. False for bytes this
 * cannot splice: malformed, a field CreateFlowRequest does not have (a definition some other
 * build wrote), kmsArn twice, or tags or tasks not together. */
static bool definition_parts(const af_definition_fields *f, af_bytes def, field_run part[PARTS]) {
  const uint32_t number[PARTS] = {[KMS_ARN] = f->kms_arn, [TAGS] = f->tags, [TASKS] = f->tasks};
  for (int i = 0; i < PARTS; i++)
    part[i] = (field_run){0};
  const uint8_t *p = def.data, *end = def.len ? def.data + def.len : p;
  while (p < end) {
    const uint8_t *field = p, *data;
    uint64_t key;
    size_t len;
    if (!af__wire_field(&p, end, &key, &data, &len) || key >> 3 > UINT32_MAX ||
        protobuf_c_message_descriptor_get_field(&appflow__v1__create_flow_request__descriptor,
                                                (unsigned)(key >> 3)) == NULL ||
        (key >> 3 == number[KMS_ARN] && part[KMS_ARN].seen))
      return false;
    for (int i = 0; i < PARTS; i++) {
      if (key >> 3 == number[i] && !extend(&part[i], field, p))
        return false;
      if (key >> 3 != number[i] && part[i].seen)
        part[i].ended = true;
    }
  }
  return true;
}

/* What the update stores of the request, packed before the flow's lock is taken: its members
 * as a definition (u->fresh, without the old kmsArn and tags) and its tasks, which are the
 * bytes pack_tasks writes (the same packing, sorted alike), read off the definition's. */
static bool pack_request(update_call *u, const Appflow__V1__UpdateFlowRequest *req, af_arena *a) {
  Appflow__V1__CreateFlowRequest d = definition_of(req);
  size_t len;
  uint8_t *buf = af__pack_definition(u->c.svc->sort_plans, &d, a, &len);
  field_run part[PARTS];
  u->fresh = (af_bytes){buf, len};
  if (buf == NULL || !definition_parts(&u->c.svc->fields, u->fresh, part))
    return false;
  u->tasks = run_bytes(&part[TASKS]);
  return true;
}

/* Writes r's bytes at o, the first time only; past them. */
static uint8_t *put_run(uint8_t *o, field_run *r) {
  af_bytes b = run_bytes(r);
  if (b.len > 0)
    memcpy(o, b.data, b.len);
  r->seen = false; /* written */
  return o + b.len;
}

/* The new definition without unpacking the old one: the request's members, packed before the
 * lock (u->fresh), with the old kmsArn and tags put in their places by field number. A stored
 * definition is always af__pack_definition's (CreateFlow, the seed, this), which writes fields
 * in number order and map entries sorted, so these bytes are the ones rebuild_definition
 * would pack (a CreateFlow retry compares them), and two task lists differ as bytes only when
 * they differ. */
static bool new_definition(update_call *u, const af_flow_record *cur, af_bytes *out,
                           bool *tasks_changed) {
  field_run part[PARTS];
  if (cur->definition.len == 0 || !definition_parts(&u->c.svc->fields, cur->definition, part))
    return rebuild_definition(u, cur, out, tasks_changed);
  *tasks_changed = !af__bytes_equal(run_bytes(&part[TASKS]), u->tasks);
  af_bytes kms = run_bytes(&part[KMS_ARN]), tags = run_bytes(&part[TAGS]);
  uint32_t kms_no = u->c.svc->fields.kms_arn, tags_no = u->c.svc->fields.tags;
  size_t len = u->fresh.len + kms.len + tags.len;
  uint8_t *buf = af_arena_alloc(u->c.to.arena, len ? len : 1), *o = buf;
  if (buf == NULL)
    return false;
  const uint8_t *p = u->fresh.data, *end = u->fresh.len ? p + u->fresh.len : p;
  while (p < end) {
    const uint8_t *field = p, *data;
    uint64_t key;
    size_t n;
    if (!af__wire_field(&p, end, &key, &data, &n))
      return false; /* our own packing: cannot happen */
    if (key >> 3 > kms_no)
      o = put_run(o, &part[KMS_ARN]);
    if (key >> 3 > tags_no)
      o = put_run(o, &part[TAGS]);
    memcpy(o, field, (size_t)(p - field));
    o += p - field;
  }
  o = put_run(o, &part[KMS_ARN]);
  o = put_run(o, &part[TAGS]);
  *out = (af_bytes){buf, (size_t)(o - buf)};
  return true;
}

/* The run log after this update: its token first, then the old log's fresh tokens. The log's
 * start tokens and runs stay packed (af__runs_split): a flow started often has a hundred. */
static bool log_update(update_call *u, af_packed_runs *s, bool bump, af_bytes *out) {
  af_arena *a = u->c.to.arena;
  const Appflowd__Store__V1__RunLog *old = s->head;
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
  s->head = &r;
  return af__runs_join(s, a, out);
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
  af_packed_runs *old = af__runs_split(cur->runs, u->c.to.arena);
  if (old == NULL) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  const Appflowd__Store__V1__UpdateToken *seen = find_token(old->head, u->token, u->c.now_ms);
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
  /* the digest is kept with a clientToken and compared with a retry's: none without one */
  bool token = req->client_token != NULL;
  if (rc == AF_OK && ((token && !digest_of(svc->sort_plans, req, to->arena, u->digest)) ||
                      !pack_request(u, req, to->arena)))
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
