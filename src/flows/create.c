/* CreateFlow and DescribeFlow: what a flow is made of going in, and coming back out.
 *
 * A created flow keeps its request, packed (name and clientToken cleared), as its definition:
 * DescribeFlow unpacks it to return every member as given, and a CreateFlow retry with the
 * same clientToken is recognised by packing it the same way and comparing bytes. */
#include "appflow_model.h"
#include "flows/internal.h"
#include "flows/rules.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS(s) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##s
#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t

/* A CreateFlow clientToken belongs to the request that first used it, whatever flow it named:
 * the service keeps a record of its own (AF_STORE_PRIVATE_KEY) under this prefix and the token,
 * holding the flow's name (as its description) and the request's SHA-256 (as its definition)
 * for 8 hours, so the same token with another request - another name included - is a
 * ConflictException on every replica. */
#define TOKEN_KEY_PREFIX AF_CREATE_TOKEN_KEY
#define TOKEN_DIGEST_LEN 32

/* Tags as a TagSet takes them; a key given twice (possible on gRPC) keeps its last value.
 * *count is the distinct keys (the model bounds the entries, so at most 50). */
static af_tag *tags_of(Appflow__V1__CreateFlowRequest__TagsEntry *const *e, size_t n,
                       af_arena *arena, size_t *count) {
  af_tag *tags = af_arena_alloc(arena, (n ? n : 1) * sizeof *tags);
  *count = 0;
  for (size_t i = 0; tags != NULL && i < n; i++) {
    size_t j = 0;
    while (j < *count && strcmp(tags[j].key, e[i]->key) != 0)
      j++;
    tags[j] = (af_tag){e[i]->key, e[i]->value ? e[i]->value : ""};
    if (j == *count)
      (*count)++;
  }
  return tags;
}

af_err af_flows_check_create(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                             af_error *err) {
  af_err rc = af_check_message(svc->checker, &af_model_CreateFlowRequest, &req->base, err);
  if (rc == AF_OK)
    rc = af_check_flow_rules(AF_FLOW_CREATE, req->trigger_config, req->source_flow_config,
                             req->destination_flow_config_list, req->n_destination_flow_config_list,
                             req->tasks, req->n_tasks, err);
  return rc;
}

typedef struct create_call {
  af_call c;
  const Appflow__V1__CreateFlowRequest *req;
  Appflow__V1__CreateFlowResponse *resp;
  af_flow_record rec;
  af_flow_record token; /* the clientToken's own record, when the request has a token */
  uint8_t digest[TOKEN_DIGEST_LEN];
  uint8_t status; /* the first result's status on a retry */
  af_flow_profiles profiles;
} create_call;

static const char *nonempty(const char *s) { return s != NULL && *s != '\0' ? s : NULL; }

/* The name is taken: a retry of the request that took it gets its first result. */
static af_store_verdict create_taken(const af_flow_record *f, af_flow_record *next, void *ctx) {
  (void)next;
  create_call *c = ctx;
  const af_flow_record *r = &c->rec;
  bool retry = r->create_token != NULL && f->create_token != NULL &&
               strcmp(r->create_token, f->create_token) == 0 &&
               r->created_ms - f->created_ms < AF_TOKEN_TTL_MS;
  if (!retry) {
    af_error_set(c->c.to.err, AF_ERR_NAME_TAKEN, "A flow named %s already exists", f->name);
    return AF_STORE_REFUSE;
  }
  if (!af__bytes_equal(f->definition, r->definition)) {
    af_error_set(c->c.to.err, AF_ERR_CONFLICT,
                 "Conflict executing request: clientToken was already used to create flow %s "
                 "with other parameters: use a "
                 "new clientToken for a different request",
                 f->name);
    return AF_STORE_REFUSE;
  }
  c->status = f->create_status;
  return AF_STORE_KEEP;
}

static void create_done(af_store_op *op, af_store_rc rc) {
  create_call *c = (create_call *)af__call_of(op);
  const char *name = c->rec.name;
  af_err e = af__store_error(&c->c, rc, name, c->rec.name_len);
  if (e == AF_OK && (c->resp->flow_arn = af_flows_arn_dup(c->c.tenant, c->c.to.arena, name,
                                                          c->rec.name_len)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK) {
    c->resp->flow_status = (Appflow__V1__FlowStatus)(rc == AF_STORE_OK ? c->rec.status : c->status);
    c->resp->has_flow_status = true;
    if (rc == AF_STORE_OK)
      af_log_printf(c->c.svc->log, AF_LOG_INFO, "flow %s: created, %s", name,
                    af_flows_status_name(c->rec.status));
  }
  af__call_end(&c->c, e);
}

/* The record a valid request makes; AF_OK or an error in err. */
static af_err make_record(create_call *c, af_error *err) {
  const Appflow__V1__CreateFlowRequest *req = c->req;
  af_arena *arena = c->c.to.arena;
  size_t ntags;
  /* Tags first: a key repeated (possible on gRPC) keeps its last value, in the given order. */
  af_tag *tags = tags_of(req->tags, req->n_tags, arena, &ntags);
  if (tags == NULL)
    return af_flows_oom(err);
  af_flow_record *r = &c->rec;
  size_t def_len;
  uint8_t *def = af__pack_definition(c->c.svc->sort_plans, req, arena, &def_len);
  if (def == NULL || !af_flows_pack_tags(tags, ntags, arena, &r->tags))
    return af_flows_oom(err);
  Appflow__V1__TriggerType trigger = req->trigger_config->trigger_type;
  r->name = req->flow_name;
  r->name_len = strlen(req->flow_name);
  r->trigger = (uint8_t)trigger;
  r->status = r->create_status = (uint8_t)af__created_status(trigger);
  r->created_ms = r->updated_ms = c->c.now_ms;
  r->created_by = r->updated_by = af__principal(&c->c);
  r->description = req->description; /* "" is a description too */
  r->source_connector = af_flows_connector_name(req->source_flow_config->connector_type);
  const Appflow__V1__DestinationFlowConfig *dst = req->destination_flow_config_list[0];
  r->destination_connector = af_flows_connector_name(dst->connector_type);
  r->source_profile = af__flow_profile(req->source_flow_config->connector_profile_name,
                                       (int)req->source_flow_config->connector_type);
  r->destination_profile = af__flow_profile(dst->connector_profile_name, (int)dst->connector_type);
  r->create_token = nonempty(req->client_token);
  r->definition = (af_bytes){def, def_len};
  return AF_OK;
}

/* ---- the clientToken's record ---- */

static bool token_fresh(const af_flow_record *t, int64_t now_ms) {
  return now_ms - t->created_ms < AF_TOKEN_TTL_MS;
}

/* The token's record names this request: the same flow, the same SHA-256. */
static bool token_same(const af_flow_record *t, const create_call *c) {
  return t->description != NULL && strcmp(t->description, c->rec.name) == 0 &&
         af__bytes_equal(t->definition, c->token.definition);
}

static af_store_verdict token_conflict(const af_flow_record *t, create_call *c) {
  char esc[300];
  const char *tok = c->req->client_token;
  af_error_set(c->c.to.err, AF_ERR_CONFLICT,
               "Conflict executing request: clientToken %s was already used to create flow %s "
               "with other parameters: use a new clientToken for a different request",
               af_escape(esc, sizeof esc, tok, strlen(tok)),
               t->description != NULL ? t->description : "");
  return AF_STORE_REFUSE;
}

/* modify: a fresh record for another request refuses; a stale one is this request's now. */
static af_store_verdict token_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  create_call *c = ctx;
  if (!token_fresh(cur, c->c.now_ms)) {
    next->description = c->token.description;
    next->definition = c->token.definition;
    next->created_ms = next->updated_ms = c->c.now_ms;
    return AF_STORE_WRITE;
  }
  return token_same(cur, c) ? AF_STORE_KEEP : token_conflict(cur, c);
}

/* insert, on a record another call stored first: the same check, read-only. */
static af_store_verdict token_taken(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  create_call *c = ctx;
  if (token_fresh(cur, c->c.now_ms) && !token_same(cur, c))
    return token_conflict(cur, c);
  return AF_STORE_KEEP;
}

static void insert_flow(create_call *c) {
  c->c.op = (af_store_op){.key = c->rec.name,
                          .key_len = c->rec.name_len,
                          .record = &c->rec,
                          .rule = create_taken,
                          .ctx = c,
                          .with_definition = true, /* a retry is told from a clash by it */
                          .deadline_ms = c->c.op.deadline_ms,
                          .done = create_done};
  af__op_scope(&c->c.op, c->c.tenant);
  af_store_insert(c->c.svc->store, &c->c.op);
}

static void token_stored(af_store_op *op, af_store_rc rc) {
  create_call *c = (create_call *)af__call_of(op);
  if (rc == AF_STORE_OK || rc == AF_STORE_EXISTS)
    insert_flow(c);
  else
    af__call_end(&c->c, af__store_error(&c->c, rc, c->rec.name, c->rec.name_len));
}

static void token_checked(af_store_op *op, af_store_rc rc) {
  create_call *c = (create_call *)af__call_of(op);
  if (rc != AF_STORE_NOT_FOUND) {
    token_stored(op, rc);
    return;
  }
  c->c.op = (af_store_op){.key = c->token.name,
                          .key_len = c->token.name_len,
                          .record = &c->token,
                          .rule = token_taken,
                          .ctx = c,
                          .with_definition = true,
                          .deadline_ms = op->deadline_ms,
                          .done = token_stored};
  af__op_scope(&c->c.op, c->c.tenant);
  af_store_insert(c->c.svc->store, &c->c.op);
}

/* The token's record for this request: its key, the flow's name, the request's digest (the
 * packed definition and the name). false when out of memory. */
static bool make_token(create_call *c) {
  const char *tok = c->req->client_token;
  size_t plen = strlen(TOKEN_KEY_PREFIX), tlen = strlen(tok);
  char *key = af_arena_alloc(c->c.to.arena, plen + tlen + 1);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned n = 0;
  bool ok = key != NULL && md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(md, c->rec.name, c->rec.name_len + 1) == 1 &&
            EVP_DigestUpdate(md, c->rec.definition.data, c->rec.definition.len) == 1 &&
            EVP_DigestFinal_ex(md, c->digest, &n) == 1 && n == TOKEN_DIGEST_LEN;
  EVP_MD_CTX_free(md);
  if (!ok)
    return false;
  memcpy(key, TOKEN_KEY_PREFIX, plen);
  memcpy(key + plen, tok, tlen + 1);
  c->token = (af_flow_record){.name = key,
                              .name_len = plen + tlen,
                              .created_ms = c->c.now_ms,
                              .updated_ms = c->c.now_ms,
                              .description = c->rec.name,
                              .definition = {c->digest, TOKEN_DIGEST_LEN}};
  return true;
}

static void create_checked(af_call *call);

void af__create_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                     const af_reply_to *to) {
  create_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__CreateFlowRequest *)msg;
  c->resp = (Appflow__V1__CreateFlowResponse *)out;
  af_err rc = af_check_flow_rules(AF_FLOW_CREATE, c->req->trigger_config,
                                  c->req->source_flow_config, c->req->destination_flow_config_list,
                                  c->req->n_destination_flow_config_list, c->req->tasks,
                                  c->req->n_tasks, to->err);
  if (rc == AF_OK)
    rc = make_record(c, to->err);
  if (rc == AF_OK && c->rec.create_token != NULL && !make_token(c))
    rc = af_flows_oom(to->err);
  if (rc != AF_OK) {
    af__call_end(&c->c, rc);
    return;
  }
  af__check_flow_profiles(&c->c, &c->profiles, c->req->source_flow_config,
                          c->req->destination_flow_config_list[0], create_checked);
}

/* The profiles the flow names exist: the token (when there is one), then the flow. */
static void create_checked(af_call *call) {
  create_call *c = (create_call *)call;
  af_flows *svc = c->c.svc;
  if (c->rec.create_token == NULL) {
    insert_flow(c);
    return;
  }
  /* the token first: it may belong to another request */
  c->c.op.key = c->token.name;
  c->c.op.key_len = c->token.name_len;
  c->c.op.rule = token_rule;
  c->c.op.with_definition = true;
  c->c.op.done = token_checked;
  af_store_modify(svc->store, &c->c.op);
}

/* ---- DescribeFlow --------------------------------------------------------------------- */

/* DescribeFlow makes its answer in its rule, from the record as the store holds it, and keeps
 * it with the record (flows/memo.c) when it says the same whenever it is read (no run in
 * progress): a later call copies the kept answer, and the doors write its packed bytes or its
 * JSON as they are (af_reply_to.ready). */
typedef struct describe_call {
  af_call c;
  const char *name;
  size_t len;
  Appflow__V1__DescribeFlowResponse *resp;
  af_memo *held;      /* the kept answer's memo (a reference the call holds), or NULL */
  af_memo_part *kept; /* the kept answer, or NULL */
  const Appflow__V1__DescribeFlowResponse *kept_msg; /* its message, or NULL: made in resp */
  af_pbc_packed ready;                               /* the kept answer's bytes, for to.ready */
  bool oom;
} describe_call;

/* The members only the definition holds; a seeded flow has none, so its trigger is all. */
static bool fill_definition(describe_call *c, const af_flow_record *f,
                            const Appflowd__Store__V1__Execution *latest) {
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  af_arena *a = c->c.to.arena;
  if (f->definition.len == 0) {
    r->trigger_config = af_arena_alloc(a, sizeof *r->trigger_config);
    if (r->trigger_config == NULL)
      return false;
    appflow__v1__trigger_config__init(r->trigger_config);
    r->trigger_config->trigger_type = (Appflow__V1__TriggerType)f->trigger;
    r->trigger_config->has_trigger_type = true;
    return true;
  }
  Appflow__V1__CreateFlowRequest *d = appflow__v1__create_flow_request__unpack(
      &a->allocator, f->definition.len, f->definition.data);
  if (d == NULL)
    return false;
  r->kms_arn = d->kms_arn;
  r->trigger_config = d->trigger_config;
  r->source_flow_config = d->source_flow_config;
  r->n_destination_flow_config_list = d->n_destination_flow_config_list;
  r->destination_flow_config_list = d->destination_flow_config_list;
  r->n_tasks = d->n_tasks;
  r->tasks = d->tasks;
  r->metadata_catalog_config = d->metadata_catalog_config;
  const Appflow__V1__MetadataCatalogConfig *m = d->metadata_catalog_config;
  return latest == NULL ||
         af__catalog_details(a, m ? m->glue_data_catalog : NULL, c->name, c->len, latest,
                             c->c.now_ms, &r->n_last_run_metadata_catalog_details,
                             &r->last_run_metadata_catalog_details);
}

/* The answer, made of the record; false when out of memory. */
static bool describe_record(describe_call *c, const af_flow_record *f) {
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  af_arena *a = c->c.to.arena;
  bool oom = false;
  appflow__v1__describe_flow_response__init(r); /* a rule may run again: start afresh */
  r->flow_name = af_arena_strndup(a, c->name, c->len);
  r->flow_arn = af_flows_arn_dup(c->c.tenant, a, c->name, c->len);
  r->flow_status = (Appflow__V1__FlowStatus)f->status;
  r->has_flow_status = true;
  r->description = af_flows_strdup(a, f->description, &oom);
  r->created_by = af_flows_strdup(a, af_flows_by(c->c.tenant, f->created_by), &oom);
  r->last_updated_by = af_flows_strdup(a, af_flows_by(c->c.tenant, f->updated_by), &oom);
  r->flow_status_message = af_flows_strdup(a, f->status_message, &oom);
  r->created_at = af_flows_timestamp(a, f->created_ms);
  r->last_updated_at = af_flows_timestamp(a, f->updated_ms);
  oom |= r->flow_name == NULL || r->flow_arn == NULL || r->created_at == NULL ||
         r->last_updated_at == NULL;
  oom |=
      !af_flows_tag_entries(f->tags, &appflow__v1__describe_flow_response__tags_entry__descriptor,
                            a, &r->n_tags, (af_map_entry ***)&r->tags);
  Appflowd__Store__V1__RunLog *runs = af_flows_runs(f->runs, a); /* unpacked once, for both */
  oom |= runs == NULL;
  r->last_run_execution_details =
      runs != NULL ? af_flows_last_run_of(runs, c->c.now_ms, a, &oom) : NULL;
  r->schema_version = runs != NULL && runs->schema_version > 0 ? runs->schema_version : 1;
  r->has_schema_version = true;
  const Appflowd__Store__V1__Execution *latest =
      runs != NULL && runs->n_executions > 0 ? runs->executions[0] : NULL;
  return !oom && fill_definition(c, f, latest);
}

static af_store_verdict describe_rule(const af_flow_record *f, af_flow_record *next, void *ctx) {
  (void)next;
  describe_call *c = ctx;
  af_store *store = c->c.svc->store;
  af_memo_release(c->held); /* a run before this one's */
  c->held = NULL;
  c->kept = af__memo_find(f, AF_MEMO_DESCRIBE, &c->held);
  c->kept_msg =
      c->kept != NULL
          ? (const Appflow__V1__DescribeFlowResponse *)af__memo_msg(store, c->held, c->kept)
          : NULL;
  if (c->kept_msg != NULL)
    return AF_STORE_KEEP;
  c->oom = !describe_record(c, f);
  if (!c->oom && c->kept == NULL && af__run_details_timeless(c->resp->last_run_execution_details))
    c->kept = af__memo_keep(store, f, AF_MEMO_DESCRIBE, &c->resp->base, &c->held);
  return AF_STORE_KEEP;
}

static void release_held(void *ctx) {
  describe_call *c = ctx;
  af_memo_release(c->held);
}

static void describe_done(af_store_op *op, af_store_rc rc) {
  describe_call *c = (describe_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK && c->kept_msg != NULL) /* the kept answer's members: it outlives the call */
    *c->resp = *c->kept_msg;
  if (e == AF_OK && c->kept != NULL) {
    c->ready = (af_pbc_packed){&c->resp->base, c->kept->packed, c->kept->len, &c->kept->json};
    if (c->c.to.ready != NULL)
      *c->c.to.ready = (af_pbc_ready){1, &c->ready};
  }
  af__call_end(&c->c, e);
}

void af__describe_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                       const af_reply_to *to) {
  const Appflow__V1__DescribeFlowRequest *req = (const Appflow__V1__DescribeFlowRequest *)msg;
  describe_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL || !af__call_check_name(&c->c, req->flow_name, &c->len))
    return;
  c->name = req->flow_name;
  c->resp = (Appflow__V1__DescribeFlowResponse *)out;
  if (!af_arena_defer(to->arena, release_held, c)) {
    af__call_end(&c->c, af_flows_oom(to->err));
    return;
  }
  c->c.op.with_definition = true;
  af__call_modify(&c->c, c->name, c->len, describe_rule, describe_done);
}
