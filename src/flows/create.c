/* CreateFlow and DescribeFlow: what a flow is made of going in, and coming back out.
 *
 * A created flow keeps its request, packed (name and clientToken cleared), as its definition:
 * DescribeFlow unpacks it to return every member as given, and a CreateFlow retry with the
 * same clientToken is recognised by packing it the same way and comparing bytes. */
#include "flows/internal.h"
#include "flows/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS(s) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##s
#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t

static af_err check_list(const char *member, Google__Protobuf__Struct *const *items, size_t n,
                         const char *properties, af_error *err) {
  if (n == 0) {
    return af_error_set(err, AF_ERR_VALIDATION,
                        "1 validation error detected: Value at '%s' failed to satisfy "
                        "constraint: Member must have at least 1 item",
                        member);
  }
  for (size_t i = 0; i < n; i++) {
    char path[96];
    snprintf(path, sizeof path, "%s.%zu", member, i + 1);
    af_err rc = properties != NULL ? af_check_connector_config(path, items[i], properties, err)
                                   : af_check_task(path, items[i], err);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

static af_err check_create(const Appflow__V1__CreateFlowRequest *req, af_error *err) {
  const char *name = req->flow_name;
  af_err rc = af_check_name("flowName", name, name ? strlen(name) : 0, err);
  if (rc == AF_OK)
    rc = af_check_description("description", req->description, err);
  if (rc == AF_OK)
    rc = af_check_kms_arn("kmsArn", req->kms_arn, err);
  if (rc == AF_OK)
    rc = af_check_trigger(req->trigger_config, err);
  if (rc == AF_OK)
    rc = af_check_connector_config("sourceFlowConfig", req->source_flow_config,
                                   "sourceConnectorProperties", err);
  if (rc == AF_OK)
    rc = check_list("destinationFlowConfigList", req->destination_flow_config_list,
                    req->n_destination_flow_config_list, "destinationConnectorProperties", err);
  if (rc == AF_OK)
    rc = check_list("tasks", req->tasks, req->n_tasks, NULL, err);
  for (size_t i = 0; rc == AF_OK && i < req->n_tags; i++)
    rc = af_check_tag("tags", req->tags[i]->key, req->tags[i]->value, err);
  if (rc == AF_OK)
    rc = af_check_client_token("clientToken", req->client_token, err);
  return rc;
}

static int by_field_key(const void *a, const void *b) {
  const Google__Protobuf__Struct__FieldsEntry *x =
      *(Google__Protobuf__Struct__FieldsEntry *const *)a;
  const Google__Protobuf__Struct__FieldsEntry *y =
      *(Google__Protobuf__Struct__FieldsEntry *const *)b;
  return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static int by_tag_key(const void *a, const void *b) {
  const Appflow__V1__CreateFlowRequest__TagsEntry *x =
      *(Appflow__V1__CreateFlowRequest__TagsEntry *const *)a;
  const Appflow__V1__CreateFlowRequest__TagsEntry *y =
      *(Appflow__V1__CreateFlowRequest__TagsEntry *const *)b;
  return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static void sort_struct(Google__Protobuf__Struct *s, int depth);

static void sort_value(Google__Protobuf__Value *v, int depth) {
  if (v == NULL || depth > 100) /* both doors' decoders bound nesting below this */
    return;
  if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE)
    sort_struct(v->struct_value, depth + 1);
  if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE && v->list_value != NULL) {
    for (size_t i = 0; i < v->list_value->n_values; i++)
      sort_value(v->list_value->values[i], depth + 1);
  }
}

/* Sorts an object's members by key (qsort: a 64 KiB body can hold thousands). */
static void sort_struct(Google__Protobuf__Struct *s, int depth) {
  if (s == NULL)
    return;
  if (s->n_fields > 1)
    qsort(s->fields, s->n_fields, sizeof *s->fields, by_field_key);
  for (size_t i = 0; i < s->n_fields; i++)
    sort_value(s->fields[i]->value, depth);
}

/* Map entries and object members have no order in meaning, but they do in the packed bytes
 * a retry is compared by (and clients need not keep it), so the definition is stored sorted.
 * The request is this call's own (decoded into its arena); reordering it changes nothing. */
static void canonicalise(Appflow__V1__CreateFlowRequest *req) {
  if (req->n_tags > 1)
    qsort(req->tags, req->n_tags, sizeof *req->tags, by_tag_key);
  sort_struct(req->source_flow_config, 0);
  for (size_t i = 0; i < req->n_destination_flow_config_list; i++)
    sort_struct(req->destination_flow_config_list[i], 0);
  for (size_t i = 0; i < req->n_tasks; i++)
    sort_struct(req->tasks[i], 0);
  sort_struct(req->metadata_catalog_config, 0);
}

/* The definition: req packed without its name and clientToken, in the arena. */
static uint8_t *pack_definition(const Appflow__V1__CreateFlowRequest *req, af_arena *arena,
                                size_t *len) {
  canonicalise((Appflow__V1__CreateFlowRequest *)req);
  Appflow__V1__CreateFlowRequest d = *req;
  d.flow_name = "";
  d.client_token = "";
  *len = appflow__v1__create_flow_request__get_packed_size(&d);
  uint8_t *buf = af_arena_alloc(arena, *len ? *len : 1);
  if (buf != NULL)
    appflow__v1__create_flow_request__pack(&d, buf);
  return buf;
}

/* Tags as a TagSet takes them; a key given twice (possible on gRPC) keeps its last value.
 * *count is the distinct keys, or AF_TAGS_MAX + 1 once there are more than the limit. */
static af_tag *tags_of(Appflow__V1__CreateFlowRequest__TagsEntry *const *e, size_t n,
                       af_arena *arena, size_t *count) {
  af_tag *tags = af_arena_alloc(arena, (n ? n : 1) * sizeof *tags);
  *count = 0;
  for (size_t i = 0; tags != NULL && i < n && *count <= AF_TAGS_MAX; i++) {
    size_t j = 0; /* past the limit the request is refused: stop, keeping this O(n * 50) */
    while (j < *count && strcmp(tags[j].key, e[i]->key) != 0)
      j++;
    tags[j] = (af_tag){e[i]->key, e[i]->value ? e[i]->value : ""};
    if (j == *count)
      (*count)++;
  }
  return tags;
}

typedef struct create_call {
  af_call c;
  const Appflow__V1__CreateFlowRequest *req;
  Appflow__V1__CreateFlowResponse *resp;
  af_flow_record rec;
  uint8_t status; /* the first result's status on a retry */
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
                 "clientToken was already used to create flow %s with other parameters: use a "
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
  if (e == AF_OK && (c->resp->flow_arn =
                         af_flows_arn_dup(c->c.svc, c->c.to.arena, name, c->rec.name_len)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK) {
    c->resp->flow_status = (Appflow__V1__FlowStatus)(rc == AF_STORE_OK ? c->rec.status : c->status);
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
  if (ntags > AF_TAGS_MAX) /* counted in distinct keys; the message gives the entries sent */
    return af_check_count("tags", req->n_tags, AF_TAGS_MAX, err);
  af_flow_record *r = &c->rec;
  size_t def_len;
  uint8_t *def = pack_definition(req, arena, &def_len);
  if (def == NULL || !af_flows_pack_tags(tags, ntags, arena, &r->tags))
    return af_flows_oom(err);
  Appflow__V1__TriggerType trigger = req->trigger_config->trigger_type;
  r->name = req->flow_name;
  r->name_len = strlen(req->flow_name);
  r->trigger = (uint8_t)trigger;
  r->status = r->create_status = trigger == TRIGGER(ON_DEMAND) ? STATUS(ACTIVE) : STATUS(DRAFT);
  r->created_ms = r->updated_ms = c->c.now_ms;
  r->description = nonempty(req->description);
  r->source_connector = af_struct_string(req->source_flow_config, "connectorType");
  r->destination_connector =
      af_struct_string(req->destination_flow_config_list[0], "connectorType");
  r->create_token = nonempty(req->client_token);
  r->definition = (af_bytes){def, def_len};
  return AF_OK;
}

void af__create_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                     const af_reply_to *to) {
  create_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__CreateFlowRequest *)msg;
  c->resp = (Appflow__V1__CreateFlowResponse *)out;
  af_err rc = check_create(c->req, to->err);
  if (rc == AF_OK)
    rc = make_record(c, to->err);
  if (rc != AF_OK) {
    af__call_end(&c->c, rc);
    return;
  }
  c->c.op.key = c->rec.name;
  c->c.op.key_len = c->rec.name_len;
  c->c.op.record = &c->rec;
  c->c.op.rule = create_taken;
  c->c.op.with_definition = true; /* a retry is told from a clash by its definition */
  c->c.op.done = create_done;
  af_store_insert(svc->store, &c->c.op);
}

/* ---- DescribeFlow --------------------------------------------------------------------- */

/* What DescribeFlow copies out of the record: the flow may be changed or deleted after. */
typedef struct describe_call {
  af_call c;
  const char *name;
  size_t len;
  Appflow__V1__DescribeFlowResponse *resp;
  uint8_t trigger;
  uint8_t *definition;
  size_t definition_len;
  bool oom;
} describe_call;

static af_store_verdict describe_rule(const af_flow_record *f, af_flow_record *next, void *ctx) {
  (void)next;
  describe_call *c = ctx;
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  af_arena *a = c->c.to.arena;
  r->flow_status = (Appflow__V1__FlowStatus)f->status;
  r->description = af_flows_strdup(a, f->description, &c->oom);
  r->created_at = af_flows_timestamp(a, f->created_ms);
  r->last_updated_at = af_flows_timestamp(a, f->updated_ms);
  c->oom |= r->created_at == NULL || r->last_updated_at == NULL;
  c->oom |=
      !af_flows_tag_entries(f->tags, &appflow__v1__describe_flow_response__tags_entry__descriptor,
                            a, &r->n_tags, (af_map_entry ***)&r->tags);
  r->last_run_execution_details = af_flows_last_run(f->runs, a, &c->oom);
  c->trigger = f->trigger;
  c->definition_len = f->definition.len;
  if (f->definition.len > 0 && (c->definition = af_arena_alloc(a, f->definition.len)) != NULL)
    memcpy(c->definition, f->definition.data, f->definition.len);
  c->oom |= f->definition.len > 0 && c->definition == NULL;
  return AF_STORE_KEEP;
}

/* The members only the definition holds; a seeded flow has none, so its trigger is all. */
static bool fill_definition(describe_call *c) {
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  af_arena *a = c->c.to.arena;
  if (c->definition == NULL) {
    r->trigger_config = af_arena_alloc(a, sizeof *r->trigger_config);
    if (r->trigger_config == NULL)
      return false;
    appflow__v1__trigger_config__init(r->trigger_config);
    r->trigger_config->trigger_type = (Appflow__V1__TriggerType)c->trigger;
    return true;
  }
  Appflow__V1__CreateFlowRequest *d =
      appflow__v1__create_flow_request__unpack(&a->allocator, c->definition_len, c->definition);
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
  return true;
}

static void describe_done(af_store_op *op, af_store_rc rc) {
  describe_call *c = (describe_call *)af__call_of(op);
  af_arena *a = c->c.to.arena;
  af_err e = af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK) {
    c->resp->flow_name = af_arena_strndup(a, c->name, c->len);
    c->resp->flow_arn = af_flows_arn_dup(c->c.svc, a, c->name, c->len);
    if (c->oom || c->resp->flow_name == NULL || c->resp->flow_arn == NULL || !fill_definition(c))
      e = af_flows_oom(c->c.to.err);
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
  c->c.op.with_definition = true;
  af__call_modify(&c->c, c->name, c->len, describe_rule, describe_done);
}
