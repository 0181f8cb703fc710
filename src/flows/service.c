#include "flows/service.h"

#include "appflow_model.h"
#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "common/awsname.h"
#include "common/encode.h"
#include "common/hash.h"
#include "common/uuid.h"
#include "flows/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* af_map_entry stands for every TagsEntry message: they must share its layout. */
#define SAME_LAYOUT(T)                                                                             \
  _Static_assert(offsetof(T, key) == offsetof(af_map_entry, key) &&                                \
                     offsetof(T, value) == offsetof(af_map_entry, value) &&                        \
                     sizeof(T) == sizeof(af_map_entry),                                            \
                 #T " is not laid out as af_map_entry")
SAME_LAYOUT(Appflow__V1__CreateFlowRequest__TagsEntry);
SAME_LAYOUT(Appflow__V1__DescribeFlowResponse__TagsEntry);
SAME_LAYOUT(Appflow__V1__FlowDefinition__TagsEntry);
SAME_LAYOUT(Appflow__V1__TagResourceRequest__TagsEntry);
SAME_LAYOUT(Appflow__V1__ListTagsForResourceResponse__TagsEntry);

typedef Appflow__V1__FlowStatus flow_status;
#define STATUS(s) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##s
#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t

/* Region like "us-east-1": lower-case letters, digits and dashes. Account: 12 digits. */
static bool valid_region(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n < 48 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool valid_account(const char *s) {
  return strlen(s) == 12 && strspn(s, "0123456789") == 12;
}

/* Fills t from a valid account and region; scoped says whether it is another than the
 * service's own (which keeps the default scope). */
static void tenant_fill(af_tenant *t, const char *account, const char *region, bool scoped) {
  snprintf(t->account, sizeof t->account, "%s", account);
  snprintf(t->region, sizeof t->region, "%s", region);
  int n =
      snprintf(t->arn_prefix, sizeof t->arn_prefix, "arn:aws:appflow:%s:%s:flow/", region, account);
  t->arn_prefix_len = n > 0 ? (size_t)n : 0;
  snprintf(t->root_arn, sizeof t->root_arn, "arn:aws:iam::%s:root", account);
  n = scoped ? snprintf(t->scope, sizeof t->scope, "%s/%s", account, region) : 0;
  t->scope[n > 0 ? n : 0] = '\0';
  t->scope_len = n > 0 ? (size_t)n : 0;
}

af_err af__tenant(const af_flows *svc, const char *account, const char *region, af_tenant *out,
                  af_error *err) {
  const af_tenant *home = &svc->home;
  account = account != NULL ? account : home->account;
  region = region != NULL ? region : home->region;
  char esc[96];
  if (!valid_account(account))
    return af_error_set(err, AF_ERR_VALIDATION,
                        "The account '%s' is not an AWS account id: it must be 12 digits",
                        af_escape(esc, sizeof esc, account, strlen(account)));
  if (!valid_region(region))
    return af_error_set(err, AF_ERR_VALIDATION,
                        "The region '%s' is not an AWS region name: it must be lower-case "
                        "letters, digits and dashes, like us-east-1",
                        af_escape(esc, sizeof esc, region, strlen(region)));
  /* The service's own account and region, as every AWS CLI call names them (its signature's
   * scope) unless told otherwise: home already holds what tenant_fill's four snprintf calls
   * would make. */
  if (strcmp(account, home->account) == 0 && strcmp(region, home->region) == 0)
    *out = *home;
  else
    tenant_fill(out, account, region, true);
  return AF_OK;
}

static bool make_rpcs(af_flows *svc);
static const af_model_shape *connector_type(void);
static bool measure_connector_types(af_flows *svc);

static int64_t realtime_ms(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The number of CreateFlowRequest's field called name, from its descriptor; 0 for none. */
static uint32_t definition_field(const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
      &appflow__v1__create_flow_request__descriptor, name);
  return f != NULL ? f->id : 0;
}

/* Where maps can be in the messages the service packs sorted: its requests'. */
static bool make_sort_plans(af_flows *svc) {
  const ProtobufCMessageDescriptor **roots = malloc(svc->nrpcs * sizeof *roots);
  if (roots == NULL)
    return false;
  for (size_t i = 0; i < svc->nrpcs; i++)
    roots[i] = svc->rpcs[i].input;
  svc->sort_plans = af__sort_plans_new(roots, svc->nrpcs);
  free(roots);
  return svc->sort_plans != NULL;
}

af_flows *af_flows_new(const af_flows_config *cfg, af_error *err) {
  const char *region = cfg->region ? cfg->region : "us-east-1";
  const char *account = cfg->account ? cfg->account : "000000000000";
  if (!valid_region(region)) {
    af_error_set(err, AF_ERR_VALIDATION,
                 "region must be letters, digits and dashes (at most 47), like us-east-1");
    return NULL;
  }
  if (!valid_account(account)) {
    af_error_set(err, AF_ERR_VALIDATION, "account must be 12 digits, like 000000000000");
    return NULL;
  }
  af_flows *svc = calloc(1, sizeof *svc);
  if (svc != NULL) {
    svc->store = cfg->store;
    svc->own_store = cfg->store == NULL;
    if (svc->own_store)
      svc->store = af_store_memory_new(&(af_store_config){.log = cfg->log});
  }
  if (svc == NULL || svc->store == NULL) {
    free(svc);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  svc->log = cfg->log;
  pthread_mutex_init(&svc->scopes_lock, NULL);
  if ((svc->scopes = calloc(AF_KNOWN_SCOPES, sizeof *svc->scopes)) == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    af_flows_free(svc);
    return NULL;
  }
  svc->catalog = cfg->catalog;
  svc->own_catalog = cfg->catalog == NULL;
  if (svc->own_catalog && (svc->catalog = af_catalog_new()) == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    af_flows_free(svc);
    return NULL;
  }
  svc->checker = af_checker_new(err);
  if (svc->checker == NULL || !make_rpcs(svc) || !measure_connector_types(svc) ||
      !make_sort_plans(svc) ||
      (svc->token_mac = af__token_mac_new(svc->store->token_key, sizeof svc->store->token_key)) ==
          NULL) {
    if (svc->checker != NULL)
      af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    af_flows_free(svc);
    return NULL;
  }
  svc->fields = (af_definition_fields){
      definition_field("kms_arn"), definition_field("tags"), definition_field("tasks"),
      definition_field("metadata_catalog_config"), definition_field("source_flow_config")};
  svc->clock = cfg->clock ? *cfg->clock : (af_clock){realtime_ms, NULL};
  svc->run_duration_ms = cfg->run_duration_ms > 0 ? cfg->run_duration_ms : 0;
  atomic_init(&svc->clock_offset_ms, 0);
  tenant_fill(&svc->home, account, region, false);
  return svc;
}

void af_flows_free(af_flows *svc) {
  if (svc == NULL)
    return;
  af__scheduler_free(svc);
  if (svc->own_store)
    af_store_close(svc->store);
  if (svc->own_catalog)
    af_catalog_free(svc->catalog);
  af_checker_free(svc->checker);
  af__sort_plans_free(svc->sort_plans);
  free(svc->rpcs);
  free(svc->op_rpcs);
  free(svc->connector_len);
  af__token_mac_free(svc->token_mac);
  free(svc->paths);
  free(svc->emu_rpcs);
  free(svc->emu_paths);
  free(svc->scopes);
  pthread_mutex_destroy(&svc->scopes_lock);
  free(svc);
}

af_store *af_flows_store(af_flows *svc) { return svc->store; }

const char *af_flows_account(const af_flows *svc) { return svc->home.account; }

const char *af_flows_region(const af_flows *svc) { return svc->home.region; }

int64_t af_flows_now_ms(const af_flows *svc) {
  return svc->clock.now_ms(svc->clock.ctx) + atomic_load(&svc->clock_offset_ms);
}

static size_t tenant_arn(const af_tenant *t, char *dst, size_t dstsz, const char *name,
                         size_t len) {
  size_t p = t->arn_prefix_len, n = p + len;
  if (dstsz > 0) {
    size_t head = p < dstsz - 1 ? p : dstsz - 1;
    size_t tail = n < dstsz - 1 ? len : dstsz - 1 - head;
    memcpy(dst, t->arn_prefix, head);
    memcpy(dst + head, name, tail);
    dst[head + tail] = '\0';
  }
  return n;
}

size_t af_flows_arn(const af_flows *svc, char *dst, size_t dstsz, const char *name, size_t len) {
  return tenant_arn(&svc->home, dst, dstsz, name, len);
}

af_err af_flows_oom(af_error *err) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory building the response");
}

char *af_flows_arn_dup(const af_tenant *t, af_arena *arena, const char *name, size_t len) {
  size_t n = t->arn_prefix_len + len;
  char *arn = af_arena_alloc(arena, n + 1);
  if (arn != NULL)
    tenant_arn(t, arn, n + 1, name, len);
  return arn;
}

Google__Protobuf__Timestamp *af_flows_timestamp(af_arena *arena, int64_t ms) {
  Google__Protobuf__Timestamp *t = af_arena_alloc(arena, sizeof *t);
  if (t == NULL)
    return NULL;
  google__protobuf__timestamp__init(t);
  int64_t rem = ms % 1000;
  t->seconds = ms / 1000 - (rem < 0);
  t->nanos = (int32_t)((rem + (rem < 0) * 1000) * 1000000);
  return t;
}

const char *af_flows_by(const af_tenant *t, const char *principal) {
  return principal != NULL ? principal : t->root_arn;
}

char *af_flows_strdup(af_arena *arena, const char *s, bool *oom) {
  if (s == NULL)
    return NULL;
  char *d = af_arena_strndup(arena, s, strlen(s));
  *oom |= d == NULL;
  return d;
}

/* ---- the record's blobs ---- */

bool af_flows_tag_entries(af_bytes tags, const ProtobufCMessageDescriptor *desc, af_arena *arena,
                          size_t *n, af_map_entry ***out) {
  *n = 0;
  *out = NULL;
  if (tags.len == 0)
    return true;
  Appflowd__Store__V1__TagSet *ts =
      appflowd__store__v1__tag_set__unpack(&arena->allocator, tags.len, tags.data);
  if (ts == NULL)
    return false;
  if (ts->n_tags == 0)
    return true;
  af_map_entry **v = af_arena_alloc(arena, ts->n_tags * sizeof *v);
  af_map_entry *e = af_arena_alloc(arena, ts->n_tags * sizeof *e);
  if (v == NULL || e == NULL)
    return false;
  for (size_t i = 0; i < ts->n_tags; i++) {
    protobuf_c_message_init(desc, &e[i]);
    e[i].key = ts->tags[i]->key; /* unpacked into the arena: they outlive the record */
    e[i].value = ts->tags[i]->value;
    v[i] = &e[i];
  }
  *n = ts->n_tags;
  *out = v;
  return true;
}

bool af_flows_pack_tags(const af_tag *tags, size_t n, af_arena *arena, af_bytes *out) {
  *out = (af_bytes){NULL, 0};
  if (n == 0)
    return true;
  Appflowd__Store__V1__Tag *t = af_arena_alloc(arena, n * sizeof *t);
  Appflowd__Store__V1__Tag **v = af_arena_alloc(arena, n * sizeof *v);
  if (t == NULL || v == NULL)
    return false;
  for (size_t i = 0; i < n; i++) {
    appflowd__store__v1__tag__init(&t[i]);
    t[i].key = (char *)tags[i].key;
    t[i].value = (char *)tags[i].value;
    v[i] = &t[i];
  }
  Appflowd__Store__V1__TagSet ts = APPFLOWD__STORE__V1__TAG_SET__INIT;
  ts.n_tags = n;
  ts.tags = v;
  return af__pack(&ts.base, arena, out);
}

static void *arena_take(void *arena, size_t size) { return af_arena_alloc(arena, size); }

bool af__pack_room(const ProtobufCMessage *m, size_t extra, af_arena *arena, af_bytes *out) {
  size_t len = 0;
  uint8_t *buf = af_encode_alloc(m, 0, extra, arena_take, arena, &len);
  if (buf != NULL)
    *out = (af_bytes){buf, len};
  return buf != NULL;
}

bool af__pack(const ProtobufCMessage *m, af_arena *arena, af_bytes *out) {
  return af__pack_room(m, 0, arena, out);
}

Appflow__V1__FlowStatus af__created_status(Appflow__V1__TriggerType trigger) {
  return trigger == TRIGGER(ON_DEMAND) ? STATUS(ACTIVE) : STATUS(DRAFT);
}

Appflowd__Store__V1__RunLog *af_flows_runs(af_bytes runs, af_arena *arena) {
  if (runs.len > 0)
    return appflowd__store__v1__run_log__unpack(&arena->allocator, runs.len, runs.data);
  Appflowd__Store__V1__RunLog *r = af_arena_alloc(arena, sizeof *r);
  if (r != NULL)
    appflowd__store__v1__run_log__init(r);
  return r;
}

/* ---- the head of a run log ---- */

/* What lastRunExecutionDetails needs of a packed RunLog (last_run_ms, last_execution_id and the
 * latest execution, which comes first), read from its wire bytes without decoding the rest: a
 * ListFlows page reads 100 run logs of up to AF_EXECUTIONS_KEPT runs each. NULL when the bytes
 * are not a RunLog or out of memory. */
static Appflowd__Store__V1__RunLog *run_log_head(af_bytes runs, af_arena *a) {
  Appflowd__Store__V1__RunLog *r = af_arena_alloc(a, sizeof *r);
  if (r == NULL)
    return NULL;
  appflowd__store__v1__run_log__init(r);
  const uint8_t *p = runs.data, *end = runs.data + runs.len;
  while (p < end) {
    uint64_t key, v = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (!af__wire_varint(&p, end, &key))
      return NULL;
    unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
    if (field == 1 && wt == 0) {
      if (!af__wire_varint(&p, end, &v))
        return NULL;
      r->last_run_ms = (int64_t)v;
      continue;
    }
    if (!af__wire_skip(&p, end, wt, &data, &len))
      return NULL;
    if (field == 2 && wt == 2 &&
        (r->last_execution_id = af_arena_strndup(a, (const char *)data, len)) == NULL)
      return NULL;
    if (field == 6 && wt == 2 && r->n_executions == 0) {
      Appflowd__Store__V1__Execution **one = af_arena_alloc(a, sizeof *one);
      if (one == NULL ||
          (one[0] = appflowd__store__v1__execution__unpack(&a->allocator, len, data)) == NULL)
        return NULL;
      r->executions = one;
      r->n_executions = 1;
    }
  }
  return r;
}

Appflow__V1__ExecutionDetails *af_flows_last_run(af_bytes runs, int64_t now_ms, af_arena *arena,
                                                 bool *oom) {
  if (runs.len == 0)
    return NULL;
  Appflowd__Store__V1__RunLog *r = run_log_head(runs, arena);
  if (r == NULL) {
    *oom = true;
    return NULL;
  }
  return af_flows_last_run_of(r, now_ms, arena, oom);
}

/* What lastRunExecutionDetails says of the latest run (its status now). */
static void last_run_says(const Appflowd__Store__V1__RunLog *r, int64_t now_ms, int *status,
                          int64_t *at_ms, char *msg, size_t msgsz) {
  if (r->n_executions == 0) { /* a run log from before runs were kept: it succeeded */
    *status = APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL;
    *at_ms = r->last_run_ms;
    snprintf(msg, msgsz, "Execution %.40s ran on appflowd, which moves no data",
             r->last_execution_id);
    return;
  }
  const Appflowd__Store__V1__Execution *e = r->executions[0];
  int64_t since;
  *status = (int)af__execution_status(e, now_ms, &since);
  *at_ms = e->started_ms;
  if (*status == APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_ERROR && e->message[0] != '\0')
    snprintf(msg, msgsz, "%.200s", e->message);
  else
    snprintf(msg, msgsz, "Execution %.40s: %s", e->execution_id,
             *status == APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_IN_PROGRESS
                 ? "in progress"
                 : "ran on appflowd, which moves no data");
}

Appflow__V1__ExecutionDetails *af_flows_last_run_of(const Appflowd__Store__V1__RunLog *r,
                                                    int64_t now_ms, af_arena *arena, bool *oom) {
  if (r->last_run_ms == 0 && r->n_executions == 0)
    return NULL;
  Appflow__V1__ExecutionDetails *d = af_arena_alloc(arena, sizeof *d);
  char msg[256];
  int status;
  int64_t at_ms;
  last_run_says(r, now_ms, &status, &at_ms, msg, sizeof msg);
  if (d != NULL) {
    appflow__v1__execution_details__init(d);
    d->most_recent_execution_status = (Appflow__V1__ExecutionStatus)status;
    d->has_most_recent_execution_status = true;
    d->most_recent_execution_time = af_flows_timestamp(arena, at_ms);
    d->most_recent_execution_message = af_arena_strndup(arena, msg, strlen(msg));
  }
  if (d == NULL || d->most_recent_execution_time == NULL ||
      d->most_recent_execution_message == NULL) {
    *oom = true;
    return NULL;
  }
  return d;
}

static const af_model_shape *connector_type(void) {
  return af_model_member_named(&af_model_SourceFlowConfig, "connectorType")->shape;
}

const char *af_flows_connector_name(int v) { return af_model_enum_string(connector_type(), v); }

int af_flows_connector_value(const char *name) {
  return name != NULL ? af_model_enum_value(connector_type(), name, strlen(name)) : 0;
}

/* The enum's string lengths come from af_flows_new, so a value is told apart by its length and
 * first byte before any comparison of the text. */
int af__connector_value(const af_flows *svc, const char *name) {
  const af_model_shape *sh = svc->connector_type;
  size_t n = name != NULL ? strlen(name) : 0;
  for (size_t v = 1; n > 0 && v < sh->n_enum; v++) {
    const char *e = sh->enum_values[v];
    if (svc->connector_len[v] == n && e[0] == name[0] && memcmp(e, name, n) == 0)
      return (int)v;
  }
  return 0;
}

static bool measure_connector_types(af_flows *svc) {
  const af_model_shape *sh = svc->connector_type = connector_type();
  if ((svc->connector_len = calloc(sh->n_enum ? sh->n_enum : 1, sizeof(size_t))) == NULL)
    return false;
  for (size_t v = 1; v < sh->n_enum; v++)
    svc->connector_len[v] = sh->enum_values[v] != NULL ? strlen(sh->enum_values[v]) : 0;
  return true;
}

const char *af_flows_status_name(uint8_t status) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&appflow__v1__flow_status__descriptor, status);
  return v ? v->name : "FLOW_STATUS_UNSPECIFIED";
}

const char *af_flows_status_aws(uint8_t status, char *buf, size_t bufsz) {
  if (af_aws_enum_string("FLOW_STATUS_", af_flows_status_name(status), buf, bufsz) != 0)
    snprintf(buf, bufsz, "%u", status);
  return buf;
}

static void log_change(const af_flows *svc, const char *name, uint8_t before, uint8_t after) {
  af_log_printf(svc->log, AF_LOG_INFO, "flow %s: %s -> %s", name, af_flows_status_name(before),
                af_flows_status_name(after));
}

static bool scheduled_or_event(const af_flow_record *f) { return f->trigger != TRIGGER(ON_DEMAND); }

af_err af__wrong_state(const af_flow_record *f, const char *what, af_error *err) {
  char aws[32];
  return af_error_set(err, AF_ERR_CONFLICT, "Flow %s is in %s state and cannot be %s", f->name,
                      af_flows_status_aws(f->status, aws, sizeof aws), what);
}

/* ---- StopFlow ------------------------------------------------------------------------- */

typedef struct stop_call {
  af_call c;
  const char *name;
  size_t len;
  Appflow__V1__StopFlowResponse *resp;
  af_stop_result *result;
  uint8_t before;
  bool changed;
} stop_call;

static af_store_verdict stop_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  stop_call *s = ctx;
  s->before = cur->status;
  s->changed = false;
  if (!scheduled_or_event(cur)) {
    af_error_set(s->c.to.err, AF_ERR_UNSUPPORTED_OPERATION,
                 "Flow %s is an on-demand flow: StopFlow applies only to scheduled and "
                 "event-triggered flows",
                 cur->name);
    return AF_STORE_REFUSE;
  }
  switch ((flow_status)cur->status) {
  case STATUS(ACTIVE):
  case STATUS(ERRORED):
    next->status = STATUS(SUSPENDED);
    next->updated_ms = s->c.now_ms;
    s->changed = true;
    return AF_STORE_WRITE;
  case STATUS(SUSPENDED):
    return AF_STORE_KEEP;
  case STATUS(DRAFT):
  case STATUS(DEPRECATED):
  case STATUS(DELETED):
  case STATUS(UNSPECIFIED):
  case _APPFLOW__V1__FLOW_STATUS_IS_INT_SIZE:
    break;
  }
  af__wrong_state(cur, "stopped: only Active or Errored flows can be", s->c.to.err);
  return AF_STORE_REFUSE;
}

static void stop_done(af_store_op *op, af_store_rc rc) {
  stop_call *s = (stop_call *)af__call_of(op);
  af_err e = af__store_error(&s->c, rc, s->name, s->len);
  if (e == AF_OK &&
      (s->resp->flow_arn = af_flows_arn_dup(s->c.tenant, s->c.to.arena, s->name, s->len)) == NULL)
    e = af_flows_oom(s->c.to.err);
  if (e == AF_OK) {
    s->resp->flow_status = STATUS(SUSPENDED);
    s->resp->has_flow_status = true;
    if (s->changed)
      log_change(s->c.svc, s->name, s->before, STATUS(SUSPENDED));
    if (s->result != NULL)
      s->result->changed = s->changed;
  }
  af__call_end(&s->c, e);
}

static void stop_begin(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                       Appflow__V1__StopFlowResponse *resp, const af_reply_to *to,
                       af_stop_result *result) {
  stop_call *s = af__call_new(svc, to, sizeof *s);
  if (s == NULL || !af__call_check_name(&s->c, req->flow_name, &s->len))
    return;
  s->name = req->flow_name;
  s->resp = resp;
  s->result = result;
  af__call_modify(&s->c, s->name, s->len, stop_rule, stop_done);
}

typedef struct typed_stop {
  af_flows *svc;
  const Appflow__V1__StopFlowRequest *req;
  Appflow__V1__StopFlowResponse *resp;
  af_stop_result *result;
} typed_stop;

static void begin_typed_stop(void *arg, const af_reply_to *to) {
  typed_stop *t = arg;
  af_err rc = af_check_message(t->svc->checker, &af_model_StopFlowRequest, &t->req->base, to->err);
  if (rc != AF_OK)
    to->done(to->ctx, rc);
  else
    stop_begin(t->svc, t->req, t->resp, to, t->result);
}

af_err af_flows_stop_flow(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                          Appflow__V1__StopFlowResponse *resp, af_arena *arena,
                          af_stop_result *result, af_error *err) {
  appflow__v1__stop_flow_response__init(resp);
  if (result != NULL)
    result->changed = false;
  typed_stop t = {svc, req, resp, result};
  return af__wait(begin_typed_stop, &t, arena, err);
}

/* ---- StartFlow ------------------------------------------------------------------------ */

typedef struct start_call {
  af_call c;
  const char *name;
  size_t len;
  const char *token; /* NULL: none */
  char execution_id[37];
  Appflow__V1__StartFlowResponse *resp;
  uint8_t before, status; /* out */
  char result_id[41];     /* out: "" when no run */
  bool changed, replayed;
  bool arm; /* out: a scheduled flow activated, whose first run the scheduler is to find */
} start_call;

static bool fresh(int64_t at_ms, int64_t now) { return now - at_ms < AF_TOKEN_TTL_MS; }

/* Keeps the log's fresh start tokens (in their order) and drops the rest; the index of the one
 * named token among them, -1 for none (or no token), -2 when one is malformed. */
static ptrdiff_t fresh_tokens(af_packed_runs *r, const char *token, int64_t now) {
  size_t len = token != NULL ? strlen(token) : 0, kept = 0;
  ptrdiff_t found = -1;
  for (size_t i = 0; i < r->n_tokens; i++) {
    int64_t at;
    const char *name;
    size_t n;
    if (!af__token_peek(r->tokens[i], &at, &name, &n))
      return -2;
    if (!fresh(at, now))
      continue;
    if (token != NULL && found < 0 && n == len && memcmp(name, token, len) == 0)
      found = (ptrdiff_t)kept;
    r->tokens[kept++] = r->tokens[i];
  }
  r->n_tokens = kept;
  return found;
}

af_err af__changeable(const af_flow_record *f, const char *what, af_error *err) {
  switch ((flow_status)f->status) {
  case STATUS(ACTIVE):
  case STATUS(DRAFT):
  case STATUS(SUSPENDED):
  case STATUS(ERRORED):
    return AF_OK;
  case STATUS(DEPRECATED):
  case STATUS(DELETED):
  case STATUS(UNSPECIFIED):
  case _APPFLOW__V1__FLOW_STATUS_IS_INT_SIZE:
    break;
  }
  return af__wrong_state(f, what, err);
}

/* The run log after this start: its token (if any) first, then the old log's fresh tokens
 * (fresh_tokens kept only those), newest first, at most AF_START_TOKENS_KEPT in all. False when
 * out of memory. */
static bool log_start(start_call *s, const af_flow_record *cur, af_packed_runs *r, bool run,
                      af_bytes *out) {
  af_arena *a = s->c.to.arena;
  if (s->token != NULL) {
    Appflowd__Store__V1__StartToken add = APPFLOWD__STORE__V1__START_TOKEN__INIT;
    add.at_ms = s->c.now_ms;
    add.client_token = (char *)s->token;
    add.execution_id = s->result_id;
    add.flow_status = s->status;
    af_bytes packed;
    if (!af__pack(&add.base, a, &packed))
      return false;
    memmove(r->tokens + 1, r->tokens, r->n_tokens * sizeof *r->tokens); /* room made by split */
    r->tokens[0] = packed;
    r->n_tokens++;
  }
  if (r->n_tokens > AF_START_TOKENS_KEPT)
    r->n_tokens = AF_START_TOKENS_KEPT;
  if (s->arm) { /* an activation: every run so far stops counting towards failures */
    if (!af__runs_unsplit(r, a))
      return false;
    af__schedule_from(r->head, s->c.now_ms, true);
  }
  af_run_start rs = {s->execution_id, s->c.now_ms, TRIGGER(ON_DEMAND), cur->created_ms};
  if (run && !af__start_run_packed(s->c.svc, r, &rs, a))
    return false;
  return af__runs_join(r, a, out);
}

/* A retry: the first result again, from the token that started it. */
static af_store_verdict replay(start_call *s, af_bytes token) {
  Appflowd__Store__V1__StartToken *t =
      appflowd__store__v1__start_token__unpack(&s->c.to.arena->allocator, token.len, token.data);
  if (t == NULL) {
    af_flows_oom(s->c.to.err);
    return AF_STORE_REFUSE;
  }
  s->status = (uint8_t)t->flow_status;
  snprintf(s->result_id, sizeof s->result_id, "%s", t->execution_id);
  s->replayed = true;
  return AF_STORE_KEEP;
}

static af_store_verdict start_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  start_call *s = ctx;
  af_error *err = s->c.to.err;
  s->changed = s->replayed = s->arm = false;
  s->result_id[0] = '\0';
  af_packed_runs *old = af__runs_split(cur->runs, s->c.to.arena);
  ptrdiff_t seen = old != NULL ? fresh_tokens(old, s->token, s->c.now_ms) : -2;
  if (seen == -2) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  if (seen >= 0)
    return replay(s, old->tokens[seen]);
  if (af__changeable(cur, "started", err) != AF_OK)
    return AF_STORE_REFUSE;
  s->status = STATUS(ACTIVE);
  bool run = !scheduled_or_event(cur);
  s->arm = cur->trigger == TRIGGER(SCHEDULED) && cur->status != STATUS(ACTIVE);
  if (run)
    memcpy(s->result_id, s->execution_id, sizeof s->execution_id);
  if ((run || s->token != NULL || s->arm) && !log_start(s, cur, old, run, &next->runs)) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  s->before = cur->status;
  s->changed = cur->status != s->status;
  if (s->changed) {
    next->status = s->status;
    next->updated_ms = s->c.now_ms;
  }
  return s->changed || run || s->token != NULL ? AF_STORE_WRITE : AF_STORE_KEEP;
}

static void start_answer(af_call *c, af_err e) {
  start_call *s = (start_call *)c;
  af_arena *a = s->c.to.arena;
  if (e == AF_OK && (s->resp->flow_arn = af_flows_arn_dup(s->c.tenant, a, s->name, s->len)) == NULL)
    e = af_flows_oom(s->c.to.err);
  if (e == AF_OK && s->result_id[0] != '\0' &&
      (s->resp->execution_id = af_arena_strndup(a, s->result_id, strlen(s->result_id))) == NULL)
    e = af_flows_oom(s->c.to.err);
  if (e == AF_OK) {
    s->resp->flow_status = (flow_status)s->status;
    s->resp->has_flow_status = true;
    if (s->changed)
      log_change(s->c.svc, s->name, s->before, s->status);
    if (s->result_id[0] != '\0' && !s->replayed)
      af_log_printf(s->c.svc->log, AF_LOG_INFO, "flow %s: run %s", s->name, s->result_id);
  }
  af__call_end(&s->c, e);
}

static void start_done(af_store_op *op, af_store_rc rc) {
  start_call *s = (start_call *)af__call_of(op);
  af_err e = af__store_error(&s->c, rc, s->name, s->len);
  if (e == AF_OK && s->arm) /* the scheduler computes the first run from the definition */
    af__arm_timer(&s->c, s->name, s->len, s->c.now_ms, start_answer);
  else
    start_answer(&s->c, e);
}

static void start_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                       const af_reply_to *to) {
  const Appflow__V1__StartFlowRequest *req = (const Appflow__V1__StartFlowRequest *)msg;
  start_call *s = af__call_new(svc, to, sizeof *s);
  if (s == NULL || !af__call_check_name(&s->c, req->flow_name, &s->len))
    return;
  s->name = req->flow_name;
  s->resp = (Appflow__V1__StartFlowResponse *)out;
  s->token = req->client_token != NULL && req->client_token[0] != '\0' ? req->client_token : NULL;
  af_uuid_random(s->execution_id);
  s->c.op.writes = true; /* every start is recorded, but for a retry's */
  af__call_modify(&s->c, s->name, s->len, start_rule, start_done);
}

/* ---- DeleteFlow ----------------------------------------------------------------------- */

typedef struct delete_call {
  af_call c;
  const char *name;
  size_t len;
  bool force;
} delete_call;

static af_store_verdict delete_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  delete_call *d = ctx;
  if (!d->force && scheduled_or_event(cur) && cur->status == STATUS(ACTIVE)) {
    af_error_set(d->c.to.err, AF_ERR_CONFLICT,
                 "Flow is in active state, please set forceDelete to true or deactivate the "
                 "flow");
    return AF_STORE_REFUSE;
  }
  return AF_STORE_DELETE;
}

static void delete_done(af_store_op *op, af_store_rc rc) {
  delete_call *d = (delete_call *)af__call_of(op);
  af_err e = af__store_error(&d->c, rc, d->name, d->len);
  if (e == AF_OK)
    af_log_printf(d->c.svc->log, AF_LOG_INFO, "flow %s: deleted", d->name);
  af__call_end(&d->c, e);
}

static void delete_flow(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                        const af_reply_to *to) {
  (void)out;
  const Appflow__V1__DeleteFlowRequest *req = (const Appflow__V1__DeleteFlowRequest *)msg;
  delete_call *d = af__call_new(svc, to, sizeof *d);
  if (d == NULL || !af__call_check_name(&d->c, req->flow_name, &d->len))
    return;
  d->name = req->flow_name;
  d->force = req->force_delete;
  af__call_modify(&d->c, d->name, d->len, delete_rule, delete_done);
}

/* ---- the RPC table -------------------------------------------------------------------- */

static void stop_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                      const af_reply_to *to) {
  stop_begin(svc, (const Appflow__V1__StopFlowRequest *)req, (Appflow__V1__StopFlowResponse *)resp,
             to, NULL);
}

/* The operations the core serves, by the model's name; the rest of the contract answers
 * NotImplementedException until its handler is written. */
static const struct {
  const char *name;
  af_rpc_handler handler;
} handlers[] = {
    {"CreateFlow", af__create_flow},
    {"DescribeFlow", af__describe_flow},
    {"UpdateFlow", af__update_flow},
    {"ListFlows", af__list_flows},
    {"StartFlow", start_flow},
    {"StopFlow", stop_flow},
    {"DeleteFlow", delete_flow},
    {"TagResource", af__tag_resource},
    {"UntagResource", af__untag_resource},
    {"ListTagsForResource", af__list_tags_for_resource},
    {"CreateConnectorProfile", af__create_connector_profile},
    {"DescribeConnectorProfiles", af__describe_connector_profiles},
    {"UpdateConnectorProfile", af__update_connector_profile},
    {"DeleteConnectorProfile", af__delete_connector_profile},
    {"RegisterConnector", af__register_connector},
    {"UpdateConnectorRegistration", af__update_connector_registration},
    {"UnregisterConnector", af__unregister_connector},
    {"DescribeConnector", af__describe_connector},
    {"DescribeConnectors", af__describe_connectors},
    {"ListConnectors", af__list_connectors},
    {"ListConnectorEntities", af__list_connector_entities},
    {"DescribeConnectorEntity", af__describe_connector_entity},
    {"ResetConnectorMetadataCache", af__reset_connector_metadata_cache},
    {"DescribeFlowExecutionRecords", af__describe_flow_execution_records},
    {"CancelFlowExecutions", af__cancel_flow_executions},
};

/* The emulator control API's, by its service's method names. */
static const struct {
  const char *name;
  af_rpc_handler handler;
} emulator_handlers[] = {
    {"SendEvent", af__send_event},
    {"SetOutcomes", af__set_outcomes},
    {"AdvanceClock", af__advance_clock},
};

static af_rpc_handler handler_named(const char *name, bool emulator) {
  size_t n = emulator ? sizeof emulator_handlers / sizeof emulator_handlers[0]
                      : sizeof handlers / sizeof handlers[0];
  for (size_t i = 0; i < n; i++) {
    if (strcmp(emulator ? emulator_handlers[i].name : handlers[i].name, name) == 0)
      return emulator ? emulator_handlers[i].handler : handlers[i].handler;
  }
  return NULL;
}

static const af_model_operation *operation_named(const char *name) {
  for (size_t i = 0; i < af_model_operation_count; i++) {
    if (strcmp(af_model_operations[i].name, name) == 0)
      return &af_model_operations[i];
  }
  return NULL;
}

/* One row per method of a service descriptor into *rpcs (paths in *paths); false when out of
 * memory or when an AppFlow method has no operation in the model with the same messages (the
 * generator makes both from one file, so never). The emulator's rows have no operation. */
static bool make_table(const ProtobufCServiceDescriptor *sd, bool emulator, af_rpc **rpcs,
                       char **paths, size_t *count) {
  size_t room = 0;
  for (unsigned i = 0; i < sd->n_methods; i++)
    room += strlen(sd->name) + strlen(sd->methods[i].name) + 3;
  *rpcs = calloc(sd->n_methods ? sd->n_methods : 1, sizeof **rpcs);
  *paths = malloc(room ? room : 1);
  if (*rpcs == NULL || *paths == NULL)
    return false;
  char *p = *paths;
  for (unsigned i = 0; i < sd->n_methods; i++) {
    const ProtobufCMethodDescriptor *m = &sd->methods[i];
    af_rpc *r = &(*rpcs)[i];
    int n = sprintf(p, "/%s/%s", sd->name, m->name);
    *r = (af_rpc){m->name,
                  p,
                  m->input,
                  m->output,
                  emulator ? NULL : operation_named(m->name),
                  handler_named(m->name, emulator)};
    p += n + 1;
    if (!emulator && (r->op == NULL || r->op->input->descriptor != m->input ||
                      r->op->output->descriptor != m->output))
      return false;
  }
  *count = sd->n_methods;
  return true;
}

/* The rpcs by operation, so the AWS door finds a request's RPC by its route's operation without
 * comparing names. */
static bool index_operations(af_flows *svc) {
  svc->op_rpcs =
      calloc(af_model_operation_count ? af_model_operation_count : 1, sizeof *svc->op_rpcs);
  if (svc->op_rpcs == NULL)
    return false;
  for (size_t i = 0; i < svc->nrpcs; i++)
    svc->op_rpcs[svc->rpcs[i].op - af_model_operations] = &svc->rpcs[i];
  return true;
}

static bool make_rpcs(af_flows *svc) {
  return make_table(&appflow__v1__app_flow_service__descriptor, false, &svc->rpcs, &svc->paths,
                    &svc->nrpcs) &&
         make_table(&appflowd__emulator__v1__emulator_service__descriptor, true, &svc->emu_rpcs,
                    &svc->emu_paths, &svc->n_emu_rpcs) &&
         index_operations(svc);
}

size_t af_flows_rpc_count(const af_flows *svc) { return svc->nrpcs; }

const af_rpc *af_flows_rpc_at(const af_flows *svc, size_t i) {
  return i < svc->nrpcs ? &svc->rpcs[i] : NULL;
}

static const af_rpc *rpc_in(const af_rpc *rpcs, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(rpcs[i].name, name) == 0)
      return &rpcs[i];
  }
  return NULL;
}

const af_rpc *af_flows_rpc_named(const af_flows *svc, const char *name) {
  return rpc_in(svc->rpcs, svc->nrpcs, name);
}

const af_rpc *af_flows_rpc_of(const af_flows *svc, const af_model_operation *op) {
  size_t i = (size_t)(op - af_model_operations);
  return i < af_model_operation_count ? svc->op_rpcs[i] : NULL;
}

size_t af_flows_emulator_rpc_count(const af_flows *svc) { return svc->n_emu_rpcs; }

const af_rpc *af_flows_emulator_rpc_at(const af_flows *svc, size_t i) {
  return i < svc->n_emu_rpcs ? &svc->emu_rpcs[i] : NULL;
}

const af_rpc *af_flows_emulator_rpc_named(const af_flows *svc, const char *name) {
  return rpc_in(svc->emu_rpcs, svc->n_emu_rpcs, name);
}
