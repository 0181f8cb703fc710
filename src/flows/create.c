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

/* Tags as the table takes them; a key given twice (possible on gRPC) keeps its last value.
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

struct create_ctx {
  const char *token; /* NULL: none */
  const uint8_t *definition;
  size_t definition_len;
  int64_t now;
  uint8_t status; /* out: the first result's status on a retry */
};

/* The name is taken: a retry of the request that took it gets its first result. */
static af_err create_taken(af_flow *f, void *ctx, af_error *err) {
  const struct create_ctx *c = ctx;
  struct create_ctx *out = ctx;
  bool retry = c->token != NULL && f->create_token != NULL &&
               strcmp(c->token, f->create_token) == 0 && c->now - f->created_ms < AF_TOKEN_TTL_MS;
  if (!retry)
    return af_error_set(err, AF_ERR_NAME_TAKEN, "A flow named %s already exists", f->name);
  if (f->definition_len != c->definition_len ||
      memcmp(f->definition, c->definition, c->definition_len) != 0)
    return af_error_set(err, AF_ERR_CONFLICT,
                        "clientToken was already used to create flow %s with other parameters: "
                        "use a new clientToken for a different request",
                        f->name);
  out->status = f->create_status;
  return AF_OK;
}

static const char *nonempty(const char *s) { return s != NULL && *s != '\0' ? s : NULL; }

af_err af_flows_create_flow(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                            Appflow__V1__CreateFlowResponse *resp, af_arena *arena, af_error *err) {
  af_err rc = check_create(req, err);
  if (rc != AF_OK)
    return rc;
  size_t def_len, ntags;
  /* Tags first: a key repeated (possible on gRPC) keeps its last value, in the given order. */
  af_tag *tags = tags_of(req->tags, req->n_tags, arena, &ntags);
  if (tags == NULL)
    return af_flows_oom(err);
  if (ntags > AF_TAGS_MAX) /* counted in distinct keys; the message gives the entries sent */
    return af_check_count("tags", req->n_tags, AF_TAGS_MAX, err);
  uint8_t *def = pack_definition(req, arena, &def_len);
  if (def == NULL)
    return af_flows_oom(err);
  Appflow__V1__TriggerType trigger = req->trigger_config->trigger_type;
  Appflow__V1__FlowStatus status = trigger == TRIGGER(ON_DEMAND) ? STATUS(ACTIVE) : STATUS(DRAFT);
  size_t len = strlen(req->flow_name);
  struct create_ctx c = {nonempty(req->client_token), def, def_len, af_flows_now_ms(svc), status};
  af_flow_spec spec = {
      .name = req->flow_name,
      .name_len = len,
      .trigger = trigger,
      .status = status,
      .description = nonempty(req->description),
      .tags = tags,
      .ntags = ntags,
      .definition = def,
      .definition_len = def_len,
      .source_connector = af_struct_string(req->source_flow_config, "connectorType"),
      .destination_connector =
          af_struct_string(req->destination_flow_config_list[0], "connectorType"),
      .create_token = c.token,
      .created_ms = c.now,
  };
  bool inserted;
  rc = af_table_insert_or(svc->table, &spec, create_taken, &c, &inserted, err);
  if (rc != AF_OK)
    return rc;
  if ((resp->flow_arn = af_flows_arn_dup(svc, arena, req->flow_name, len)) == NULL)
    return af_flows_oom(err);
  resp->flow_status = (Appflow__V1__FlowStatus)c.status;
  if (inserted)
    af_log_printf(svc->log, AF_LOG_INFO, "flow %s: created, %s", req->flow_name,
                  af_flows_status_name(status));
  return AF_OK;
}

/* ---- DescribeFlow --------------------------------------------------------------------- */

/* What DescribeFlow copies out under the lock: the flow may be changed or deleted after. */
struct describe_ctx {
  af_arena *arena;
  Appflow__V1__DescribeFlowResponse *resp;
  uint8_t trigger;
  uint8_t *definition;
  size_t definition_len;
  bool oom;
};

static char *dup_or_null(af_arena *arena, const char *s, bool *oom) {
  if (s == NULL)
    return NULL;
  char *d = af_arena_strndup(arena, s, strlen(s));
  *oom |= d == NULL;
  return d;
}

static af_err describe_locked(af_flow *f, void *ctx, af_error *err) {
  (void)err;
  struct describe_ctx *c = ctx;
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  af_arena *a = c->arena;
  r->flow_status = (Appflow__V1__FlowStatus)f->status;
  r->description = dup_or_null(a, f->description, &c->oom);
  r->created_at = af_flows_timestamp(a, f->created_ms);
  r->last_updated_at = af_flows_timestamp(a, f->updated_ms);
  c->oom |= r->created_at == NULL || r->last_updated_at == NULL;
  c->oom |=
      !af_flows_tag_entries(f->tags, &appflow__v1__describe_flow_response__tags_entry__descriptor,
                            a, &r->n_tags, (af_map_entry ***)&r->tags);
  r->last_run_execution_details = af_flows_last_run(f->runs, a, &c->oom);
  c->trigger = f->trigger;
  c->definition_len = f->definition_len;
  if (f->definition_len > 0 && (c->definition = af_arena_alloc(a, f->definition_len)) != NULL)
    memcpy(c->definition, f->definition, f->definition_len);
  c->oom |= f->definition_len > 0 && c->definition == NULL;
  return AF_OK;
}

/* The members only the definition holds; a seeded flow has none, so its trigger is all. */
static bool fill_definition(struct describe_ctx *c) {
  Appflow__V1__DescribeFlowResponse *r = c->resp;
  if (c->definition == NULL) {
    r->trigger_config = af_arena_alloc(c->arena, sizeof *r->trigger_config);
    if (r->trigger_config == NULL)
      return false;
    appflow__v1__trigger_config__init(r->trigger_config);
    r->trigger_config->trigger_type = (Appflow__V1__TriggerType)c->trigger;
    return true;
  }
  Appflow__V1__CreateFlowRequest *d = appflow__v1__create_flow_request__unpack(
      &c->arena->allocator, c->definition_len, c->definition);
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

af_err af_flows_describe_flow(af_flows *svc, const Appflow__V1__DescribeFlowRequest *req,
                              Appflow__V1__DescribeFlowResponse *resp, af_arena *arena,
                              af_error *err) {
  const char *name = req->flow_name;
  size_t len = name ? strlen(name) : 0;
  af_err rc = af_check_name("flowName", name, len, err);
  if (rc != AF_OK)
    return rc;
  struct describe_ctx c = {arena, resp, 0, NULL, 0, false};
  rc = af_table_update(svc->table, name, len, describe_locked, &c, err);
  if (rc != AF_OK)
    return rc;
  resp->flow_name = af_arena_strndup(arena, name, len);
  resp->flow_arn = af_flows_arn_dup(svc, arena, name, len);
  if (c.oom || resp->flow_name == NULL || resp->flow_arn == NULL || !fill_definition(&c))
    return af_flows_oom(err);
  return AF_OK;
}
