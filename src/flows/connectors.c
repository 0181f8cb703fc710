/* Connectors: the catalog's connector types (DescribeConnectors, DescribeConnector,
 * ListConnectors), custom connectors (RegisterConnector, UpdateConnectorRegistration,
 * UnregisterConnector) and what connectors contain (ListConnectorEntities,
 * DescribeConnectorEntity, ResetConnectorMetadataCache).
 *
 * A registration is a record of the connectors table keyed by its label, its request packed in
 * a Registration as its definition. Pages of DescribeConnectors and ListConnectors run over the
 * catalog's types in the enum's order and then the registrations in the store's order; a token
 * says which ("m" and a type, or "c" and a label). */
#include "appflow_model.h"
#include "flows/internal.h"
#include "flows/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each operation seals its own tokens: a DescribeConnectors token (which may have skipped the
 * types its filter left out) is no ListConnectors token. */
#define DESCRIBE_DOMAIN "appflowd DescribeConnectors v1"
#define LIST_DOMAIN "appflowd ListConnectors v1"
#define ENTITIES_DOMAIN "appflowd ListConnectorEntities v1"
#define PAGE_DEFAULT 20
#define ENTITIES_DEFAULT 20
#define CUSTOM APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_CUSTOM_CONNECTOR
#define TYPES_MAX 64

static af_err not_registered(af_error *err, const char *label) {
  char esc[600];
  return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND, "Connector:%s is not registered.",
                      af_escape(esc, sizeof esc, label, strlen(label)));
}

static Appflow__V1__RegisterConnectorRequest *stored_registration(af_bytes def, af_arena *a) {
  Appflowd__Store__V1__Registration *r =
      appflowd__store__v1__registration__unpack(&a->allocator, def.len, def.data);
  if (r == NULL)
    return NULL;
  return appflow__v1__register_connector_request__unpack(&a->allocator, r->request.len,
                                                         r->request.data);
}

static bool pack_registration(Appflow__V1__RegisterConnectorRequest *req, af_arena *a,
                              af_bytes *out) {
  Appflow__V1__RegisterConnectorRequest d = *req;
  d.client_token = NULL;
  af_bytes request;
  if (!af__pack(&d.base, a, &request))
    return false;
  Appflowd__Store__V1__Registration r = APPFLOWD__STORE__V1__REGISTRATION__INIT;
  r.request = (ProtobufCBinaryData){request.len, (uint8_t *)request.data};
  return af__pack(&r.base, a, out);
}

/* A lambda provisioning needs its Lambda's ARN (the model cannot say so: the member is optional
 * for other provisioning types AppFlow may add). */
static af_err check_provisioning(const Appflow__V1__ConnectorProvisioningConfig *cfg, bool needed,
                                 af_error *err) {
  if (cfg == NULL && !needed)
    return AF_OK;
  if (cfg == NULL || cfg->lambda == NULL || cfg->lambda->lambda_arn == NULL)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "'connectorProvisioningConfig.lambda.lambdaArn' is required: a LAMBDA "
                        "connector is the Lambda function that implements it");
  return AF_OK;
}

/* ---- RegisterConnector ---- */

typedef struct register_call {
  af_call c;
  Appflow__V1__RegisterConnectorResponse *resp;
  af_flow_record rec;
} register_call;

static af_store_verdict register_taken(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  register_call *c = ctx;
  char esc[600];
  const char *tok = c->rec.create_token;
  if (tok != NULL && cur->create_token != NULL && strcmp(tok, cur->create_token) == 0 &&
      af__bytes_equal(cur->definition, c->rec.definition))
    return AF_STORE_KEEP; /* a retry */
  af_error_set(c->c.to.err, AF_ERR_NAME_TAKEN, "A connector with label %s is already registered",
               af_escape(esc, sizeof esc, cur->name, cur->name_len));
  return AF_STORE_REFUSE;
}

static void register_done(af_store_op *op, af_store_rc rc) {
  register_call *c = (register_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, c->rec.name, c->rec.name_len);
  if (e == AF_OK &&
      (c->resp->connector_arn = af__connector_arn(c->c.tenant, c->c.to.arena, c->rec.name)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK && rc == AF_STORE_OK)
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "connector %s: registered", c->rec.name);
  af__call_end(&c->c, e);
}

void af__register_connector(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                            const af_reply_to *to) {
  register_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  Appflow__V1__RegisterConnectorRequest *req = (Appflow__V1__RegisterConnectorRequest *)msg;
  c->resp = (Appflow__V1__RegisterConnectorResponse *)out;
  af_err e = AF_OK;
  if (req->connector_label == NULL)
    e = af_error_set(to->err, AF_ERR_VALIDATION,
                     "1 validation error detected: Value null at 'connectorLabel' failed to "
                     "satisfy constraint: Member must not be null");
  else if (!req->has_connector_provisioning_type)
    e = af_error_set(to->err, AF_ERR_VALIDATION,
                     "1 validation error detected: Value null at 'connectorProvisioningType' "
                     "failed to satisfy constraint: Member must not be null");
  else
    e = check_provisioning(req->connector_provisioning_config, true, to->err);
  af_bytes def;
  if (e == AF_OK && !pack_registration(req, to->arena, &def))
    e = af_flows_oom(to->err);
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  c->rec = (af_flow_record){.name = req->connector_label,
                            .name_len = strlen(req->connector_label),
                            .created_ms = c->c.now_ms,
                            .updated_ms = c->c.now_ms,
                            .description = req->description,
                            .create_token =
                                req->client_token && *req->client_token ? req->client_token : NULL,
                            .created_by = af__principal(&c->c),
                            .updated_by = af__principal(&c->c),
                            .definition = def};
  c->c.op = (af_store_op){.table = AF_TABLE_CONNECTORS,
                          .key = c->rec.name,
                          .key_len = c->rec.name_len,
                          .record = &c->rec,
                          .rule = register_taken,
                          .ctx = c,
                          .with_definition = true,
                          .deadline_ms = c->c.op.deadline_ms,
                          .done = register_done};
  af__op_scope(&c->c.op, c->c.tenant);
  af_store_insert(svc->store, &c->c.op);
}

/* ---- UpdateConnectorRegistration ---- */

typedef struct reg_update_call {
  af_call c;
  const Appflow__V1__UpdateConnectorRegistrationRequest *req;
  Appflow__V1__UpdateConnectorRegistrationResponse *resp;
} reg_update_call;

static af_store_verdict reg_update_rule(const af_flow_record *cur, af_flow_record *next,
                                        void *ctx) {
  reg_update_call *c = ctx;
  af_arena *a = c->c.to.arena;
  Appflow__V1__RegisterConnectorRequest *r = stored_registration(cur->definition, a);
  if (r == NULL) {
    af_flows_oom(c->c.to.err);
    return AF_STORE_REFUSE;
  }
  if (c->req->description != NULL) {
    r->description = c->req->description;
    next->description = c->req->description;
  }
  if (c->req->connector_provisioning_config != NULL)
    r->connector_provisioning_config = c->req->connector_provisioning_config;
  if (!pack_registration(r, a, &next->definition)) {
    af_flows_oom(c->c.to.err);
    return AF_STORE_REFUSE;
  }
  next->updated_ms = c->c.now_ms;
  next->updated_by = af__principal(&c->c);
  return AF_STORE_WRITE;
}

static void reg_update_done(af_store_op *op, af_store_rc rc) {
  reg_update_call *c = (reg_update_call *)af__call_of(op);
  const char *label = c->req->connector_label;
  af_err e = rc == AF_STORE_NOT_FOUND ? not_registered(c->c.to.err, label)
                                      : af__store_error(&c->c, rc, label, strlen(label));
  if (e == AF_OK &&
      (c->resp->connector_arn = af__connector_arn(c->c.tenant, c->c.to.arena, label)) == NULL)
    e = af_flows_oom(c->c.to.err);
  af__call_end(&c->c, e);
}

void af__update_connector_registration(af_flows *svc, const ProtobufCMessage *msg,
                                       ProtobufCMessage *out, const af_reply_to *to) {
  reg_update_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__UpdateConnectorRegistrationRequest *)msg;
  c->resp = (Appflow__V1__UpdateConnectorRegistrationResponse *)out;
  af_err e = check_provisioning(c->req->connector_provisioning_config, false, to->err);
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  c->c.op.table = AF_TABLE_CONNECTORS;
  c->c.op.with_definition = true;
  af__call_modify(&c->c, c->req->connector_label, strlen(c->req->connector_label), reg_update_rule,
                  reg_update_done);
}

/* ---- UnregisterConnector ---- */

static bool uses_label(const af_flow_record *profile, const char *label) {
  return profile->destination_connector != NULL &&
         strcmp(profile->destination_connector, label) == 0;
}

static const af_delete_spec unregistration = {.table = AF_TABLE_CONNECTORS,
                                              .users_table = AF_TABLE_PROFILES,
                                              .uses = uses_label,
                                              .missing = not_registered,
                                              .what = "Connector",
                                              .user_what = "connector profile",
                                              .hint =
                                                  "delete its profiles first, or set forceDelete",
                                              .log_what = "connector"};

void af__unregister_connector(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                              const af_reply_to *to) {
  (void)out;
  const Appflow__V1__UnregisterConnectorRequest *req =
      (const Appflow__V1__UnregisterConnectorRequest *)msg;
  af__delete_unless_used(svc, to, &unregistration, req->connector_label,
                         req->has_force_delete && req->force_delete);
}

/* ---- what a registration shows ---- */

static Appflow__V1__ConnectorConfiguration *custom_configuration(af_call *c,
                                                                 const af_flow_record *r) {
  af_arena *a = c->to.arena;
  Appflow__V1__RegisterConnectorRequest *q = stored_registration(r->definition, a);
  Appflow__V1__ConnectorConfiguration *cfg = af_arena_alloc(a, sizeof *cfg);
  static Appflow__V1__TriggerType triggers[] = {APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED,
                                                APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND};
  if (q == NULL || cfg == NULL)
    return NULL;
  appflow__v1__connector_configuration__init(cfg);
  cfg->can_use_as_source = cfg->can_use_as_destination = true;
  cfg->has_can_use_as_source = cfg->has_can_use_as_destination = true;
  cfg->connector_type = CUSTOM;
  cfg->has_connector_type = true;
  cfg->connector_label = af_arena_strndup(a, r->name, r->name_len);
  cfg->connector_name = cfg->connector_label;
  cfg->connector_description = q->description;
  cfg->connector_arn = af__connector_arn(c->tenant, a, cfg->connector_label);
  cfg->connector_provisioning_type = q->connector_provisioning_type;
  cfg->has_connector_provisioning_type = q->has_connector_provisioning_type;
  cfg->connector_provisioning_config = q->connector_provisioning_config;
  cfg->registered_at = af_flows_timestamp(a, r->created_ms);
  bool oom = false;
  cfg->registered_by = af_flows_strdup(a, af_flows_by(c->tenant, r->created_by), &oom);
  cfg->supported_trigger_types = triggers;
  cfg->n_supported_trigger_types = 2;
  if (oom || cfg->connector_label == NULL || cfg->connector_arn == NULL ||
      cfg->registered_at == NULL)
    return NULL;
  return cfg;
}

static Appflow__V1__ConnectorDetail *detail_of(af_call *c,
                                               const Appflow__V1__ConnectorConfiguration *cfg,
                                               const char *application_type) {
  Appflow__V1__ConnectorDetail *d = af_arena_alloc(c->to.arena, sizeof *d);
  if (d == NULL)
    return NULL;
  appflow__v1__connector_detail__init(d);
  d->connector_description = cfg->connector_description;
  d->connector_name = cfg->connector_name;
  d->connector_owner = cfg->connector_owner;
  d->connector_version = cfg->connector_version;
  d->application_type = (char *)application_type;
  d->connector_type = cfg->connector_type;
  d->has_connector_type = cfg->has_connector_type;
  d->connector_label = cfg->connector_label;
  d->registered_at = cfg->registered_at;
  d->registered_by = cfg->registered_by;
  d->connector_provisioning_type = cfg->connector_provisioning_type;
  d->has_connector_provisioning_type = cfg->has_connector_provisioning_type;
  d->n_connector_modes = cfg->n_connector_modes;
  d->connector_modes = cfg->connector_modes;
  d->n_supported_data_transfer_types = cfg->n_supported_data_transfer_types;
  d->supported_data_transfer_types = cfg->supported_data_transfer_types;
  return d;
}

/* ---- DescribeConnector ---- */

typedef struct describe_one_call {
  af_call c;
  Appflow__V1__DescribeConnectorResponse *resp;
  const char *label;
  bool oom;
  af_pbc_packed ready; /* a catalog type's configuration as the catalog keeps it, for to.ready */
} describe_one_call;

static af_store_verdict describe_one_rule(const af_flow_record *cur, af_flow_record *next,
                                          void *ctx) {
  (void)next;
  describe_one_call *c = ctx;
  c->resp->connector_configuration = custom_configuration(&c->c, cur);
  c->oom = c->resp->connector_configuration == NULL;
  return AF_STORE_KEEP;
}

static void describe_one_done(af_store_op *op, af_store_rc rc) {
  describe_one_call *c = (describe_one_call *)af__call_of(op);
  af_err e = rc == AF_STORE_NOT_FOUND ? not_registered(c->c.to.err, c->label)
                                      : af__store_error(&c->c, rc, c->label, strlen(c->label));
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  af__call_end(&c->c, e);
}

void af__describe_connector(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                            const af_reply_to *to) {
  const Appflow__V1__DescribeConnectorRequest *req =
      (const Appflow__V1__DescribeConnectorRequest *)msg;
  describe_one_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->resp = (Appflow__V1__DescribeConnectorResponse *)out;
  int type = (int)req->connector_type;
  if (type != CUSTOM) {
    const Appflow__V1__ConnectorConfiguration *cfg = af_catalog_connector(svc->catalog, type);
    c->resp->connector_configuration = (Appflow__V1__ConnectorConfiguration *)cfg;
    if (to->ready != NULL && af_catalog_connector_packed(svc->catalog, type, &c->ready))
      *to->ready = (af_pbc_ready){1, &c->ready};
    af__call_end(&c->c, cfg != NULL ? AF_OK
                                    : af_error_set(to->err, AF_ERR_RESOURCE_NOT_FOUND,
                                                   "Connector type %s is not in appflowd's "
                                                   "catalog",
                                                   af_flows_connector_name(type)));
    return;
  }
  if (req->connector_label == NULL) {
    af__call_end(&c->c, af_error_set(to->err, AF_ERR_VALIDATION,
                                     "'connectorLabel' is required when connectorType is "
                                     "CustomConnector: it names the registered connector"));
    return;
  }
  c->label = req->connector_label;
  c->c.op.table = AF_TABLE_CONNECTORS;
  c->c.op.with_definition = true;
  af__call_modify(&c->c, c->label, strlen(c->label), describe_one_rule, describe_one_done);
}

/* ---- DescribeConnectors and ListConnectors: one page over catalog types, then custom ---- */

typedef struct page_call {
  af_call c;
  bool describe; /* DescribeConnectors (else ListConnectors) */
  bool want[TYPES_MAX];
  bool want_custom;
  size_t max, n, nconfigs;
  Appflow__V1__ConnectorDetail **details;
  Appflow__V1__DescribeConnectorsResponse__ConnectorConfigurationsEntry **configs;
  af_pbc_packed *ready; /* the configurations as the catalog keeps them packed, for to.ready */
  size_t nready;
  char after[AF_FLOW_NAME_MAX + 1]; /* "m" + type name, or "c" + label */
  char last[AF_FLOW_NAME_MAX + 1];
  bool more, oom;
  Appflow__V1__DescribeConnectorsResponse *dresp; /* one of these two */
  Appflow__V1__ListConnectorsResponse *lresp;
} page_call;

/* Hands the page to the response and ends the call. */
static void page_end(page_call *c, af_err e) {
  char *token = NULL;
  if (e == AF_OK && c->more &&
      (token = af__page_token(&c->c, c->describe ? DESCRIBE_DOMAIN : LIST_DOMAIN, c->last,
                              strlen(c->last), c->c.to.arena)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (c->dresp != NULL) {
    c->dresp->connectors = c->details;
    c->dresp->n_connectors = c->n;
    c->dresp->connector_configurations = c->configs;
    c->dresp->n_connector_configurations = c->nconfigs;
    c->dresp->next_token = token;
    if (c->nready > 0) /* the encoders meet the map's values first, in this order */
      *c->c.to.ready = (af_pbc_ready){c->nready, c->ready};
  } else {
    c->lresp->connectors = c->details;
    c->lresp->n_connectors = c->n;
    c->lresp->next_token = token;
  }
  af__call_end(&c->c, e);
}

static bool add_detail(page_call *c, const Appflow__V1__ConnectorConfiguration *cfg,
                       const char *application_type) {
  Appflow__V1__ConnectorDetail *d = detail_of(&c->c, cfg, application_type);
  if (d == NULL)
    return false;
  c->details[c->n++] = d;
  return true;
}

static bool add_config(page_call *c, const Appflow__V1__ConnectorConfiguration *cfg) {
  Appflow__V1__DescribeConnectorsResponse__ConnectorConfigurationsEntry *e =
      af_arena_alloc(c->c.to.arena, sizeof *e);
  if (e == NULL)
    return false;
  appflow__v1__describe_connectors_response__connector_configurations_entry__init(e);
  e->key = (char *)af_flows_connector_name((int)cfg->connector_type);
  e->value = (Appflow__V1__ConnectorConfiguration *)cfg;
  c->configs[c->nconfigs++] = e;
  if (c->ready != NULL && af_catalog_connector_packed(c->c.svc->catalog, (int)cfg->connector_type,
                                                      &c->ready[c->nready]))
    c->nready++;
  return true;
}

static bool custom_visit(const af_flow_record *r, void *ctx) {
  page_call *c = ctx;
  if (c->n == c->max) {
    c->more = true;
    return false;
  }
  Appflow__V1__ConnectorConfiguration *cfg = custom_configuration(&c->c, r);
  if (cfg == NULL || !add_detail(c, cfg, NULL)) {
    c->oom = true;
    return false;
  }
  snprintf(c->last, sizeof c->last, "c%.*s", (int)r->name_len, r->name);
  return true;
}

static void page_done(af_store_op *op, af_store_rc rc) {
  page_call *c = (page_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, "", 0);
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  page_end(c, e);
}

/* The catalog's types of the page; false when out of memory. Leaves c->more set when the page
 * filled before the types ran out. */
static bool page_types(page_call *c) {
  int start = 1;
  if (c->after[0] == 'm')
    start = af_flows_connector_value(c->after + 1) + 1;
  else if (c->after[0] == 'c')
    return true;
  for (int t = start; t < TYPES_MAX; t++) {
    const Appflow__V1__ConnectorConfiguration *cfg = af_catalog_connector(c->c.svc->catalog, t);
    if (cfg == NULL || !c->want[t])
      continue;
    if (c->n == c->max) {
      c->more = true;
      return true;
    }
    if (!add_detail(c, cfg, af_catalog_application_type(c->c.svc->catalog, t)) ||
        (c->describe && !add_config(c, cfg)))
      return false;
    snprintf(c->last, sizeof c->last, "m%s", af_flows_connector_name(t));
  }
  return true;
}

static void page_begin(page_call *c, const char *token, bool has_max, int max_results) {
  af_error *err = c->c.to.err;
  af_arena *a = c->c.to.arena;
  size_t after_len = 0;
  af_err e = AF_OK;
  if (token != NULL)
    e = af__page_token_read(&c->c, c->describe ? DESCRIBE_DOMAIN : LIST_DOMAIN,
                            c->describe ? "DescribeConnectors" : "ListConnectors", token, c->after,
                            &after_len, err);
  c->max = has_max ? (size_t)max_results : PAGE_DEFAULT;
  if (e == AF_OK && ((c->details = af_arena_alloc(a, c->max * sizeof *c->details)) == NULL ||
                     (c->configs = af_arena_alloc(a, c->max * sizeof *c->configs)) == NULL ||
                     (c->describe && c->c.to.ready != NULL &&
                      (c->ready = af_arena_alloc(a, c->max * sizeof *c->ready)) == NULL) ||
                     !page_types(c)))
    e = af_flows_oom(err);
  if (e != AF_OK || c->more || !c->want_custom) {
    page_end(c, e);
    return;
  }
  c->c.op.table = AF_TABLE_CONNECTORS;
  c->c.op.key = c->after[0] == 'c' ? c->after + 1 : NULL;
  c->c.op.key_len = c->after[0] == 'c' ? after_len - 1 : 0;
  c->c.op.visit = custom_visit;
  c->c.op.limit = c->max - c->n + 1;
  c->c.op.with_definition = true;
  c->c.op.done = page_done;
  af_store_scan(c->c.svc->store, &c->c.op);
}

void af__describe_connectors(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                             const af_reply_to *to) {
  const Appflow__V1__DescribeConnectorsRequest *req =
      (const Appflow__V1__DescribeConnectorsRequest *)msg;
  Appflow__V1__DescribeConnectorsResponse *resp = (Appflow__V1__DescribeConnectorsResponse *)out;
  page_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->describe = true;
  c->dresp = resp;
  for (size_t i = 0; i < req->n_connector_types; i++)
    if ((int)req->connector_types[i] > 0 && (int)req->connector_types[i] < TYPES_MAX)
      c->want[req->connector_types[i]] = true;
  if (req->n_connector_types == 0)
    memset(c->want, 1, sizeof c->want);
  c->want_custom = c->want[CUSTOM];
  page_begin(c, req->next_token, req->has_max_results, req->max_results);
}

void af__list_connectors(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                         const af_reply_to *to) {
  const Appflow__V1__ListConnectorsRequest *req = (const Appflow__V1__ListConnectorsRequest *)msg;
  Appflow__V1__ListConnectorsResponse *resp = (Appflow__V1__ListConnectorsResponse *)out;
  page_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->lresp = resp;
  memset(c->want, 1, sizeof c->want);
  c->want_custom = true;
  page_begin(c, req->next_token, req->has_max_results, req->max_results);
}
