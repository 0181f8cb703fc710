/* Connector profiles: CreateConnectorProfile, DescribeConnectorProfiles,
 * UpdateConnectorProfile and DeleteConnectorProfile, and the check CreateFlow and UpdateFlow make
 * of the profiles a flow names.
 *
 * A profile is a record of the profiles table (flows/store.h): its connector type and label in
 * the record's connector columns, and its request (credentials included) packed in a Profile
 * as its definition. Credentials go in and never come out: an answer carries the
 * credentialsArn, a Secrets Manager ARN as AppFlow shows for the secret it keeps them in
 * ("appflow!" names AppFlow's own secrets), and nothing logs a request's body. */
#include "appflow_model.h"
#include "common/decimal.h"
#include "common/hash.h"
#include "flows/internal.h"
#include "flows/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILES_DOMAIN "appflowd DescribeConnectorProfiles v1"
/* AppFlow's default page for its paginated operations ("The default for maxResults is 20"). */
#define PAGE_DEFAULT 20
#define CUSTOM APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_CUSTOM_CONNECTOR

/* "arn:aws:appflow:{region}:{account}:", the tenant's flow ARN prefix without its "flow/". */
static af_piece appflow_arn_head(const af_tenant *t) {
  return (af_piece){t->arn_prefix, t->arn_prefix_len - (sizeof "flow/" - 1)};
}

char *af__profile_arn(const af_tenant *t, af_arena *arena, const char *name) {
  af_piece parts[] = {appflow_arn_head(t), AF_PIECE("connectorprofile/"), {name, strlen(name)}};
  return af_arena_join(arena, parts, sizeof parts / sizeof *parts);
}

char *af__connector_arn(const af_tenant *t, af_arena *arena, const char *label) {
  af_piece parts[] = {appflow_arn_head(t), AF_PIECE("connector/"), {label, strlen(label)}};
  return af_arena_join(arena, parts, sizeof parts / sizeof *parts);
}

static char *credentials_arn(const af_tenant *t, af_arena *arena, const char *name,
                             int64_t created_ms, const char *id) {
  char ms[AF_DECIMAL_MAX];
  size_t account_len = strlen(t->account);
  af_piece parts[] = {AF_PIECE("arn:aws:secretsmanager:"),
                      {t->region, strlen(t->region)},
                      AF_PIECE(":"),
                      {t->account, account_len},
                      AF_PIECE(":secret:appflow!"),
                      {t->account, account_len},
                      AF_PIECE("-"),
                      {name, strlen(name)},
                      AF_PIECE("-"),
                      {ms, af_decimal_i64(ms, created_ms)},
                      AF_PIECE("-"),
                      {id, strlen(id)}};
  return af_arena_join(arena, parts, sizeof parts / sizeof *parts);
}

/* Six letters and digits, as Secrets Manager ends a secret's ARN. */
static void random_suffix(char out[7]) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t r = af_random64();
  for (int i = 0; i < 6; i++, r /= 62)
    out[i] = abc[r % 62];
  out[6] = '\0';
}

af_err af__profile_missing(af_error *err, const char *name) {
  char esc[600];
  return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND,
                      "Connector Profile with name %s does not exist.",
                      af_escape(esc, sizeof esc, name, strlen(name)));
}

/* A profile's stored request, or NULL (out of memory or a malformed record). */
static Appflow__V1__CreateConnectorProfileRequest *stored_request(af_bytes def, af_arena *a,
                                                                  char **credentials_id) {
  Appflowd__Store__V1__Profile *p =
      appflowd__store__v1__profile__unpack(&a->allocator, def.len, def.data);
  if (p == NULL)
    return NULL;
  if (credentials_id != NULL)
    *credentials_id = p->credentials_id;
  return appflow__v1__create_connector_profile_request__unpack(&a->allocator, p->request.len,
                                                               p->request.data);
}

/* req packed (maps sorted, without name and token) and the Profile holding it; false when out
 * of memory. */
static bool pack_profile(const af_flows *svc, const Appflow__V1__CreateConnectorProfileRequest *req,
                         const char *id, af_arena *a, af_bytes *request, af_bytes *profile) {
  Appflow__V1__CreateConnectorProfileRequest d = *req;
  d.connector_profile_name = NULL;
  d.client_token = NULL;
  if (!af__pack_sorted(svc->sort_plans, &d.base, a, request))
    return false;
  Appflowd__Store__V1__Profile p = APPFLOWD__STORE__V1__PROFILE__INIT;
  p.request = (ProtobufCBinaryData){request->len, (uint8_t *)request->data};
  p.credentials_id = (char *)id;
  return af__pack(&p.base, a, profile);
}

/* ---- CreateConnectorProfile ---- */

typedef struct create_call {
  af_call c;
  Appflow__V1__CreateConnectorProfileRequest *req;
  Appflow__V1__CreateConnectorProfileResponse *resp;
  af_flow_record rec;
  af_bytes request;
  char id[7];
} create_call;

static af_store_verdict create_taken(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  create_call *c = ctx;
  char esc[600];
  const char *tok = c->rec.create_token;
  bool retry = tok != NULL && cur->create_token != NULL && strcmp(tok, cur->create_token) == 0 &&
               c->c.now_ms - cur->created_ms < AF_TOKEN_TTL_MS;
  if (retry) {
    Appflowd__Store__V1__Profile *p = appflowd__store__v1__profile__unpack(
        &c->c.to.arena->allocator, cur->definition.len, cur->definition.data);
    if (p != NULL && af__bytes_equal((af_bytes){p->request.data, p->request.len}, c->request))
      return AF_STORE_KEEP;
    af_error_set(c->c.to.err, AF_ERR_CONFLICT,
                 "Conflict executing request: clientToken was already used to create connector "
                 "profile %s with other parameters: use a new clientToken for a different "
                 "request",
                 af_escape(esc, sizeof esc, cur->name, cur->name_len));
    return AF_STORE_REFUSE;
  }
  af_error_set(c->c.to.err, AF_ERR_NAME_TAKEN, "A connector profile named %s already exists",
               af_escape(esc, sizeof esc, cur->name, cur->name_len));
  return AF_STORE_REFUSE;
}

static void create_done(af_store_op *op, af_store_rc rc) {
  create_call *c = (create_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, c->rec.name, c->rec.name_len);
  if (e == AF_OK && (c->resp->connector_profile_arn =
                         af__profile_arn(c->c.tenant, c->c.to.arena, c->rec.name)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK && rc == AF_STORE_OK)
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "connector profile %s: created (%s)", c->rec.name,
                  c->rec.source_connector);
  af__call_end(&c->c, e);
}

static void create_insert(create_call *c) {
  c->c.op = (af_store_op){.table = AF_TABLE_PROFILES,
                          .key = c->rec.name,
                          .key_len = c->rec.name_len,
                          .record = &c->rec,
                          .rule = create_taken,
                          .ctx = c,
                          .with_definition = true,
                          .deadline_ms = c->c.op.deadline_ms,
                          .done = create_done};
  af__op_scope(&c->c.op, c->c.tenant);
  af_store_insert(c->c.svc->store, &c->c.op);
}

static void registration_read(af_store_op *op, af_store_rc rc) {
  create_call *c = (create_call *)af__call_of(op);
  char esc[600];
  if (rc == AF_STORE_NOT_FOUND) {
    const char *label = c->req->connector_label;
    af__call_end(&c->c, af_error_set(c->c.to.err, AF_ERR_RESOURCE_NOT_FOUND,
                                     "Connector:%s is not registered. Please register it first "
                                     "before creating ConnectorProfile.",
                                     af_escape(esc, sizeof esc, label, strlen(label))));
    return;
  }
  af_err e = af__store_error(&c->c, rc, c->rec.name, c->rec.name_len);
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  create_insert(c);
}

void af__create_connector_profile(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                  const af_reply_to *to) {
  create_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (Appflow__V1__CreateConnectorProfileRequest *)msg;
  c->resp = (Appflow__V1__CreateConnectorProfileResponse *)out;
  const Appflow__V1__CreateConnectorProfileRequest *req = c->req;
  int type = (int)req->connector_type;
  af_err rc = af_check_profile_rules(to->seeding ? AF_PROFILE_SEED : AF_PROFILE_CREATE, type,
                                     req->connector_label, req->connector_profile_config, to->err);
  random_suffix(c->id);
  af_bytes def;
  if (rc == AF_OK && !pack_profile(svc, c->req, c->id, to->arena, &c->request, &def))
    rc = af_flows_oom(to->err);
  if (rc != AF_OK) {
    af__call_end(&c->c, rc);
    return;
  }
  c->rec = (af_flow_record){.name = req->connector_profile_name,
                            .name_len = strlen(req->connector_profile_name),
                            .created_ms = c->c.now_ms,
                            .updated_ms = c->c.now_ms,
                            .source_connector = af_flows_connector_name(type),
                            .destination_connector = req->connector_label,
                            .create_token =
                                req->client_token && *req->client_token ? req->client_token : NULL,
                            .created_by = af__principal(&c->c),
                            .updated_by = af__principal(&c->c),
                            .definition = def};
  if (type != CUSTOM) {
    create_insert(c);
    return;
  }
  /* a custom connector's profile names a registered connector */
  c->c.op.table = AF_TABLE_CONNECTORS;
  af__call_modify(&c->c, req->connector_label, strlen(req->connector_label), af__keep_rule,
                  registration_read);
}

/* ---- DescribeConnectorProfiles ---- */

typedef struct describe_call {
  af_call c;
  const Appflow__V1__DescribeConnectorProfilesRequest *req;
  Appflow__V1__DescribeConnectorProfilesResponse *resp;
  char after[AF_FLOW_NAME_MAX + 1];
  size_t max, n;
  Appflow__V1__ConnectorProfile **items;
  const char *last;
  bool more, oom;
} describe_call;

static bool wanted(const describe_call *c, const af_flow_record *r) {
  const Appflow__V1__DescribeConnectorProfilesRequest *q = c->req;
  if (q->n_connector_profile_names > 0) {
    size_t i = 0;
    while (i < q->n_connector_profile_names && strcmp(q->connector_profile_names[i], r->name) != 0)
      i++;
    if (i == q->n_connector_profile_names)
      return false;
  }
  if (q->has_connector_type &&
      af_flows_connector_value(r->source_connector) != (int)q->connector_type)
    return false;
  if (q->connector_label != NULL &&
      (r->destination_connector == NULL || strcmp(q->connector_label, r->destination_connector)))
    return false;
  return true;
}

/* What DescribeConnectorProfiles shows of a profile record; NULL when out of memory. */
static Appflow__V1__ConnectorProfile *profile_of(af_call *c, const af_flow_record *r) {
  af_arena *a = c->to.arena;
  char *id = NULL;
  Appflow__V1__CreateConnectorProfileRequest *q = stored_request(r->definition, a, &id);
  Appflow__V1__ConnectorProfile *p = af_arena_alloc(a, sizeof *p);
  if (q == NULL || p == NULL)
    return NULL;
  appflow__v1__connector_profile__init(p);
  bool oom = false;
  p->connector_profile_name = af_arena_strndup(a, r->name, r->name_len);
  p->connector_profile_arn = af__profile_arn(c->tenant, a, p->connector_profile_name);
  p->connector_type = q->connector_type;
  p->has_connector_type = q->has_connector_type;
  p->connector_label = q->connector_label;
  p->connection_mode = q->connection_mode;
  p->has_connection_mode = q->has_connection_mode;
  p->credentials_arn =
      credentials_arn(c->tenant, a, p->connector_profile_name, r->created_ms, id != NULL ? id : "");
  /* the properties only: the credentials stay in the store */
  p->connector_profile_properties = q->connector_profile_config != NULL
                                        ? q->connector_profile_config->connector_profile_properties
                                        : NULL;
  p->created_at = af_flows_timestamp(a, r->created_ms);
  p->last_updated_at = af_flows_timestamp(a, r->updated_ms);
  if (q->connection_mode == APPFLOW__V1__CONNECTION_MODE__CONNECTION_MODE_PRIVATE) {
    p->private_connection_provisioning_state =
        af_arena_alloc(a, sizeof *p->private_connection_provisioning_state);
    oom |= p->private_connection_provisioning_state == NULL;
    if (!oom) {
      appflow__v1__private_connection_provisioning_state__init(
          p->private_connection_provisioning_state);
      p->private_connection_provisioning_state->status =
          APPFLOW__V1__PRIVATE_CONNECTION_PROVISIONING_STATUS__PRIVATE_CONNECTION_PROVISIONING_STATUS_CREATED;
      p->private_connection_provisioning_state->has_status = true;
    }
  }
  oom |= p->connector_profile_name == NULL || p->connector_profile_arn == NULL ||
         p->credentials_arn == NULL || p->created_at == NULL || p->last_updated_at == NULL;
  return oom ? NULL : p;
}

static bool describe_visit(const af_flow_record *r, void *ctx) {
  describe_call *c = ctx;
  if (!wanted(c, r))
    return true;
  if (c->n == c->max) {
    c->more = true;
    return false;
  }
  Appflow__V1__ConnectorProfile *p = profile_of(&c->c, r);
  if (p == NULL) {
    c->oom = true;
    return false;
  }
  c->items[c->n++] = p;
  c->last = p->connector_profile_name;
  return true;
}

static void describe_done(af_store_op *op, af_store_rc rc) {
  describe_call *c = (describe_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, "", 0);
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK) {
    c->resp->connector_profile_details = c->items;
    c->resp->n_connector_profile_details = c->n;
    if (c->more && (c->resp->next_token = af__page_token(&c->c, PROFILES_DOMAIN, c->last,
                                                         strlen(c->last), c->c.to.arena)) == NULL)
      e = af_flows_oom(c->c.to.err);
  }
  af__call_end(&c->c, e);
}

void af__describe_connector_profiles(af_flows *svc, const ProtobufCMessage *msg,
                                     ProtobufCMessage *out, const af_reply_to *to) {
  describe_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__DescribeConnectorProfilesRequest *)msg;
  c->resp = (Appflow__V1__DescribeConnectorProfilesResponse *)out;
  size_t after_len = 0;
  af_err rc = AF_OK;
  if (c->req->next_token != NULL)
    rc = af__page_token_read(&c->c, PROFILES_DOMAIN, "DescribeConnectorProfiles",
                             c->req->next_token, c->after, &after_len, to->err);
  c->max = c->req->has_max_results ? (size_t)c->req->max_results : PAGE_DEFAULT;
  if (rc == AF_OK && (c->items = af_arena_alloc(to->arena, c->max * sizeof *c->items)) == NULL)
    rc = af_flows_oom(to->err);
  if (rc != AF_OK) {
    af__call_end(&c->c, rc);
    return;
  }
  c->c.op.table = AF_TABLE_PROFILES;
  c->c.op.key = after_len > 0 ? c->after : NULL;
  c->c.op.key_len = after_len;
  c->c.op.visit = describe_visit;
  c->c.op.limit = (size_t)1 << 20; /* the visitor ends the page: filters skip records */
  c->c.op.with_definition = true;
  c->c.op.done = describe_done;
  af_store_scan(svc->store, &c->c.op);
}

/* ---- UpdateConnectorProfile ---- */

typedef struct update_call {
  af_call c;
  const Appflow__V1__UpdateConnectorProfileRequest *req;
  Appflow__V1__UpdateConnectorProfileResponse *resp;
  const char *name;
  size_t len;
} update_call;

static af_store_verdict update_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  update_call *c = ctx;
  af_arena *a = c->c.to.arena;
  char *id = NULL;
  Appflow__V1__CreateConnectorProfileRequest *q = stored_request(cur->definition, a, &id);
  if (q == NULL) {
    af_flows_oom(c->c.to.err);
    return AF_STORE_REFUSE;
  }
  const Appflow__V1__ConnectorProfileConfig *given = c->req->connector_profile_config;
  if (af_check_profile_rules(AF_PROFILE_UPDATE, (int)q->connector_type, q->connector_label, given,
                             c->c.to.err) != AF_OK)
    return AF_STORE_REFUSE;
  Appflow__V1__ConnectorProfileConfig *cfg = af_arena_alloc(a, sizeof *cfg);
  if (cfg == NULL) {
    af_flows_oom(c->c.to.err);
    return AF_STORE_REFUSE;
  }
  *cfg = *given;
  /* credentials left out keep the ones stored (they are never shown, so a caller cannot resend
   * them) */
  if (cfg->connector_profile_credentials == NULL && q->connector_profile_config != NULL)
    cfg->connector_profile_credentials = q->connector_profile_config->connector_profile_credentials;
  q->connector_profile_config = cfg;
  q->connection_mode = c->req->connection_mode;
  q->has_connection_mode = c->req->has_connection_mode;
  af_bytes request;
  if (!pack_profile(c->c.svc, q, id != NULL ? id : "", a, &request, &next->definition)) {
    af_flows_oom(c->c.to.err);
    return AF_STORE_REFUSE;
  }
  next->updated_ms = c->c.now_ms;
  next->updated_by = af__principal(&c->c);
  return AF_STORE_WRITE;
}

static void update_done(af_store_op *op, af_store_rc rc) {
  update_call *c = (update_call *)af__call_of(op);
  af_err e = rc == AF_STORE_NOT_FOUND ? af__profile_missing(c->c.to.err, c->name)
                                      : af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK && (c->resp->connector_profile_arn =
                         af__profile_arn(c->c.tenant, c->c.to.arena, c->name)) == NULL)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK)
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "connector profile %s: updated", c->name);
  af__call_end(&c->c, e);
}

void af__update_connector_profile(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                  const af_reply_to *to) {
  update_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__UpdateConnectorProfileRequest *)msg;
  c->resp = (Appflow__V1__UpdateConnectorProfileResponse *)out;
  c->name = c->req->connector_profile_name;
  c->len = strlen(c->name);
  c->c.op.table = AF_TABLE_PROFILES;
  c->c.op.with_definition = true;
  af__call_modify(&c->c, c->name, c->len, update_rule, update_done);
}

/* ---- DeleteConnectorProfile ---- */

static bool uses_profile(const af_flow_record *flow, const char *name) {
  return (flow->source_profile != NULL && strcmp(flow->source_profile, name) == 0) ||
         (flow->destination_profile != NULL && strcmp(flow->destination_profile, name) == 0);
}

static const af_delete_spec profile_delete = {
    .table = AF_TABLE_PROFILES,
    .users_table = AF_TABLE_FLOWS,
    .uses = uses_profile,
    .missing = af__profile_missing,
    .what = "Connector profile",
    .user_what = "flow",
    .hint = "delete or change the flows that use it first, or set forceDelete",
    .log_what = "connector profile"};

void af__delete_connector_profile(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                  const af_reply_to *to) {
  (void)out;
  const Appflow__V1__DeleteConnectorProfileRequest *req =
      (const Appflow__V1__DeleteConnectorProfileRequest *)msg;
  af__delete_unless_used(svc, to, &profile_delete, req->connector_profile_name,
                         req->has_force_delete && req->force_delete);
}

/* ---- the profiles a flow names ---- */

static const char *const role[2] = {"sourceFlowConfig", "destinationFlowConfig"};

af_err af__profile_mismatch(af_error *err, const char *name, int found, int want, int side) {
  char esc[600];
  const char *was = af_flows_connector_name(found);
  return af_error_set(err, AF_ERR_VALIDATION,
                      "Connector profile %s is for connector type %s, but %s.connectorType is %s",
                      af_escape(esc, sizeof esc, name, strlen(name)), was ? was : "(none)",
                      role[side], af_flows_connector_name(want));
}

static void read_profile(af_call *c, af_flow_profiles *p);

static void profile_read(af_store_op *op, af_store_rc rc) {
  af_call *c = af__call_of(op);
  /* the op's ctx is the state's found_type, which the rule fills */
  af_flow_profiles *p =
      (af_flow_profiles *)(void *)((char *)op->ctx - offsetof(af_flow_profiles, found_type));
  const char *name = p->name[p->step];
  af_err e = rc == AF_STORE_NOT_FOUND ? af__profile_missing(c->to.err, name)
                                      : af__store_error(c, rc, name, strlen(name));
  if (e == AF_OK && p->found_type != p->type[p->step])
    e = af__profile_mismatch(c->to.err, name, p->found_type, p->type[p->step], p->step);
  if (e != AF_OK) {
    af__call_end(c, e);
    return;
  }
  p->step++;
  read_profile(c, p);
}

/* Reads the next profile to check, or goes on to the caller's next step. */
static void read_profile(af_call *c, af_flow_profiles *p) {
  while (p->step < 2 && p->name[p->step] == NULL)
    p->step++;
  if (p->step == 2) {
    int64_t deadline = c->op.deadline_ms;
    c->op = (af_store_op){.ctx = c, .deadline_ms = deadline}; /* free for the next step */
    af__op_scope(&c->op, c->tenant);
    p->next(c);
    return;
  }
  int64_t deadline = c->op.deadline_ms;
  c->op = (af_store_op){.table = AF_TABLE_PROFILES,
                        .key = p->name[p->step],
                        .key_len = strlen(p->name[p->step]),
                        .rule = af__profile_type_rule,
                        .ctx = &p->found_type,
                        .deadline_ms = deadline,
                        .done = profile_read};
  af__op_scope(&c->op, c->tenant);
  af_store_modify(c->svc->store, &c->op);
}

static bool listed(const Appflow__V1__ConnectorConfiguration *cfg, int type) {
  for (size_t i = 0; i < cfg->n_supported_destination_connectors; i++)
    if ((int)cfg->supported_destination_connectors[i] == type)
      return true;
  return false;
}

/* The pair is one AppFlow supports, by the catalog (which knows no custom connector's pairs). */
static af_err check_pair(af_flows *svc, int src, int dst, af_error *err) {
  const Appflow__V1__ConnectorConfiguration *s = af_catalog_connector(svc->catalog, src);
  const Appflow__V1__ConnectorConfiguration *d = af_catalog_connector(svc->catalog, dst);
  const char *sn = af_flows_connector_name(src), *dn = af_flows_connector_name(dst);
  if (src == CUSTOM || dst == CUSTOM)
    return AF_OK;
  if (s != NULL && !s->can_use_as_source)
    return af_error_set(err, AF_ERR_VALIDATION, "Connector type %s cannot be used as a source", sn);
  if (d != NULL && !d->can_use_as_destination)
    return af_error_set(err, AF_ERR_VALIDATION, "Connector type %s cannot be used as a destination",
                        dn);
  if (s != NULL && !listed(s, dst))
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Connector type %s is not a supported destination for source connector "
                        "type %s",
                        dn, sn);
  return AF_OK;
}

const char *af__flow_profile(const char *name, int type) {
  return af_connector_takes_profile(type) && name != NULL && *name != '\0' ? name : NULL;
}

af_err af__check_flow_connectors(af_flows *svc, const Appflow__V1__SourceFlowConfig *src,
                                 const Appflow__V1__DestinationFlowConfig *dst, af_error *err) {
  int type[2] = {(int)src->connector_type, (int)dst->connector_type};
  const char *name[2] = {src->connector_profile_name, dst->connector_profile_name};
  af_err e = check_pair(svc, type[0], type[1], err);
  for (int i = 0; e == AF_OK && i < 2; i++) {
    if (af_connector_takes_profile(type[i]) && (name[i] == NULL || name[i][0] == '\0'))
      e = af_error_set(err, AF_ERR_VALIDATION,
                       "'%s.connectorProfileName' is required: connector type %s is reached "
                       "through a connector profile",
                       role[i], af_flows_connector_name(type[i]));
  }
  return e;
}

void af__check_flow_profiles(af_call *c, af_flow_profiles *p,
                             const Appflow__V1__SourceFlowConfig *src,
                             const Appflow__V1__DestinationFlowConfig *dst,
                             void (*next)(af_call *c)) {
  p->type[0] = (int)src->connector_type;
  p->type[1] = (int)dst->connector_type;
  /* a type that takes no profile is reached with the flow's role; a name given is ignored */
  p->name[0] = af__flow_profile(src->connector_profile_name, p->type[0]);
  p->name[1] = af__flow_profile(dst->connector_profile_name, p->type[1]);
  p->step = 0;
  p->next = next;
  af_err e = af__check_flow_connectors(c->svc, src, dst, c->to.err);
  if (e != AF_OK) {
    af__call_end(c, e);
    return;
  }
  read_profile(c, p);
}

/* ---- for the seeder ---- */

struct af_catalog *af_flows_catalog(af_flows *svc) {
  return svc->catalog;
}

af_err af__profile_type(af_flows *svc, const af_tenant *t, const char *name, int *type,
                        af_error *err) {
  af_store_op op = {.table = AF_TABLE_PROFILES,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = af__profile_type_rule,
                    .ctx = type};
  af__op_scope(&op, t);
  *type = 0;
  af_store_rc rc = af_store_run(svc->store, af_store_modify, &op);
  if (rc == AF_STORE_NOT_FOUND)
    return af__profile_missing(err, name);
  if (rc != AF_STORE_OK)
    return af_error_set(err, AF_ERR_UNAVAILABLE, "the store could not be read (%d)", (int)rc);
  return AF_OK;
}
