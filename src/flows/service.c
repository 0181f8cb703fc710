#include "flows/service.h"

#include "common/awsname.h"
#include "common/hash.h"
#include "common/uuid.h"
#include "flows/internal.h"
#include "flows/validate.h"

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

/* Runs (and StartFlow tokens) kept per flow: enough for any client's retries, bounded so a
 * client starting one flow in a loop cannot grow it without end. */
#define RUNS_TOKENS_MAX 64

/* Region like "us-east-1": lower-case letters, digits and dashes. Account: 12 digits. */
static bool valid_region(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool valid_account(const char *s) {
  return strlen(s) == 12 && strspn(s, "0123456789") == 12;
}

static int64_t realtime_ms(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

af_flows *af_flows_new(const af_flows_config *cfg, af_error *err) {
  const char *region = cfg->region ? cfg->region : "us-east-1";
  const char *account = cfg->account ? cfg->account : "000000000000";
  if (!valid_region(region)) {
    af_error_set(err, AF_ERR_VALIDATION,
                 "region must be letters, digits and dashes, like us-east-1");
    return NULL;
  }
  if (!valid_account(account)) {
    af_error_set(err, AF_ERR_VALIDATION, "account must be 12 digits, like 000000000000");
    return NULL;
  }
  af_flows *svc = calloc(1, sizeof *svc);
  /* The hash key keeps clients from choosing colliding names. */
  if (svc == NULL || (svc->table = af_table_new(af_random64(), cfg->alloc)) == NULL) {
    free(svc);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  svc->log = cfg->log;
  svc->clock = cfg->clock ? *cfg->clock : (af_clock){realtime_ms, NULL};
  svc->token_key = af_random64();
  svc->id_key[0] = af_random64();
  svc->id_key[1] = af_random64();
  atomic_init(&svc->id_counter, 0);
  snprintf(svc->region, sizeof svc->region, "%s", region);
  snprintf(svc->account, sizeof svc->account, "%s", account);
  int n = snprintf(svc->arn_prefix, sizeof svc->arn_prefix, "arn:aws:appflow:%s:%s:flow/",
                   svc->region, svc->account);
  svc->arn_prefix_len = n > 0 ? (size_t)n : 0;
  return svc;
}

void af_flows_free(af_flows *svc) {
  if (svc == NULL)
    return;
  af_table_free(svc->table);
  free(svc);
}

af_table *af_flows_table(af_flows *svc) { return svc->table; }

int64_t af_flows_now_ms(const af_flows *svc) { return svc->clock.now_ms(svc->clock.ctx); }

size_t af_flows_arn(const af_flows *svc, char *dst, size_t dstsz, const char *name, size_t len) {
  size_t p = svc->arn_prefix_len, n = p + len;
  if (dstsz > 0) {
    size_t head = p < dstsz - 1 ? p : dstsz - 1;
    size_t tail = n < dstsz - 1 ? len : dstsz - 1 - head;
    memcpy(dst, svc->arn_prefix, head);
    memcpy(dst + head, name, tail);
    dst[head + tail] = '\0';
  }
  return n;
}

af_err af_flows_oom(af_error *err) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory building the response");
}

char *af_flows_arn_dup(const af_flows *svc, af_arena *arena, const char *name, size_t len) {
  size_t n = svc->arn_prefix_len + len;
  char *arn = af_arena_alloc(arena, n + 1);
  if (arn != NULL)
    af_flows_arn(svc, arn, n + 1, name, len);
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

bool af_flows_tag_entries(const af_tagset *ts, const ProtobufCMessageDescriptor *desc,
                          af_arena *arena, size_t *n, af_map_entry ***out) {
  *n = 0;
  *out = NULL;
  if (ts == NULL || ts->n == 0)
    return true;
  af_map_entry **v = af_arena_alloc(arena, ts->n * sizeof *v);
  af_map_entry *e = af_arena_alloc(arena, ts->n * sizeof *e);
  if (v == NULL || e == NULL)
    return false;
  for (uint32_t i = 0; i < ts->n; i++) {
    protobuf_c_message_init(desc, &e[i]);
    e[i].key = af_arena_strndup(arena, ts->tags[i].key, strlen(ts->tags[i].key));
    e[i].value = af_arena_strndup(arena, ts->tags[i].value, strlen(ts->tags[i].value));
    if (e[i].key == NULL || e[i].value == NULL)
      return false;
    v[i] = &e[i];
  }
  *n = ts->n;
  *out = v;
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

Appflow__V1__ExecutionDetails *af_flows_last_run(const af_runs *r, af_arena *arena, bool *oom) {
  if (r == NULL || r->last_ms == 0)
    return NULL;
  Appflow__V1__ExecutionDetails *d = af_arena_alloc(arena, sizeof *d);
  char msg[96];
  snprintf(msg, sizeof msg, "Execution %s ran on appflowd, which moves no data", r->last_id);
  if (d != NULL) {
    appflow__v1__execution_details__init(d);
    d->most_recent_execution_status = APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL;
    d->most_recent_execution_time = af_flows_timestamp(arena, r->last_ms);
    d->most_recent_execution_message = af_arena_strndup(arena, msg, strlen(msg));
  }
  if (d == NULL || d->most_recent_execution_time == NULL ||
      d->most_recent_execution_message == NULL) {
    *oom = true;
    return NULL;
  }
  return d;
}

static void log_change(const af_flows *svc, const char *name, uint8_t before, uint8_t after) {
  af_log_printf(svc->log, AF_LOG_INFO, "flow %s: %s -> %s", name, af_flows_status_name(before),
                af_flows_status_name(after));
}

static bool scheduled_or_event(const af_flow *f) { return f->trigger != TRIGGER(ON_DEMAND); }

/* ConflictException for a transition f's status does not allow: "Flow x is in Draft state and
 * cannot be <what>". */
static af_err wrong_state(const af_flow *f, const char *what, af_error *err) {
  char aws[32];
  return af_error_set(err, AF_ERR_CONFLICT, "Flow %s is in %s state and cannot be %s", f->name,
                      af_flows_status_aws(f->status, aws, sizeof aws), what);
}

/* ---- StopFlow ------------------------------------------------------------------------- */

/* The StopFlow state machine, run under the flow's shard lock. */
struct stop_ctx {
  int64_t now;
  uint8_t before;
  bool changed;
};

static af_err stop_locked(af_flow *f, void *ctx, af_error *err) {
  struct stop_ctx *c = ctx;
  c->before = f->status;
  if (!scheduled_or_event(f))
    return af_error_set(err, AF_ERR_UNSUPPORTED_OPERATION,
                        "Flow %s is an on-demand flow: StopFlow applies only to scheduled and "
                        "event-triggered flows",
                        f->name);
  switch ((flow_status)f->status) {
  case STATUS(ACTIVE):
  case STATUS(ERRORED):
    f->status = STATUS(SUSPENDED);
    f->updated_ms = c->now;
    c->changed = true;
    return AF_OK;
  case STATUS(SUSPENDED):
    return AF_OK;
  case STATUS(DRAFT):
  case STATUS(DEPRECATED):
  case STATUS(DELETED):
  case STATUS(UNSPECIFIED):
  case _APPFLOW__V1__FLOW_STATUS_IS_INT_SIZE:
    break;
  }
  return wrong_state(f, "stopped: only Active or Errored flows can be", err);
}

af_err af_flows_stop_flow(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                          Appflow__V1__StopFlowResponse *resp, af_arena *arena,
                          af_stop_result *result, af_error *err) {
  const char *name = req->flow_name;
  size_t len = name ? strlen(name) : 0;
  af_err rc = af_check_name("flowName", name, len, err);
  if (rc != AF_OK)
    return rc;
  struct stop_ctx ctx = {af_flows_now_ms(svc), 0, false};
  rc = af_table_update(svc->table, name, len, stop_locked, &ctx, err);
  if (rc != AF_OK)
    return rc;
  if ((resp->flow_arn = af_flows_arn_dup(svc, arena, name, len)) == NULL)
    return af_flows_oom(err);
  resp->flow_status = STATUS(SUSPENDED);
  if (ctx.changed)
    log_change(svc, name, ctx.before, STATUS(SUSPENDED));
  if (result != NULL)
    result->changed = ctx.changed;
  return AF_OK;
}

/* ---- StartFlow ------------------------------------------------------------------------ */

struct start_ctx {
  af_table *table;
  int64_t now;
  const char *token;        /* NULL: none */
  const char *execution_id; /* made before locking; used for an on-demand run */
  uint8_t before, status;   /* out */
  char result_id[37];       /* out: "" when no run */
  bool changed, replayed;
};

static bool fresh(const af_start_record *rec, int64_t now) {
  return now - rec->at_ms < AF_TOKEN_TTL_MS;
}

static void push_record(af_runs *r, const af_start_record *src, char **cursor) {
  size_t len = strlen(src->token) + 1;
  r->rec[r->n] = *src;
  r->rec[r->n].token = memcpy(*cursor, src->token, len);
  *cursor += len;
  r->n++;
}

/* A new runs block: the new record (if any), then old's fresh records, newest first, at most
 * RUNS_TOKENS_MAX in all; NULL when out of memory. */
static af_runs *runs_next(af_table *t, const af_runs *old, const af_start_record *add,
                          int64_t last_ms, const char *last_id, int64_t now) {
  uint32_t n = add != NULL;
  size_t strings = add != NULL ? strlen(add->token) + 1 : 0;
  for (uint32_t i = 0; old != NULL && i < old->n && n < RUNS_TOKENS_MAX; i++) {
    if (fresh(&old->rec[i], now)) {
      strings += strlen(old->rec[i].token) + 1;
      n++;
    }
  }
  af_runs *r = af_table_block_alloc(t, sizeof *r + n * sizeof r->rec[0] + strings);
  if (r == NULL)
    return NULL;
  r->last_ms = last_ms;
  snprintf(r->last_id, sizeof r->last_id, "%s", last_id);
  r->n = 0;
  char *cursor = (char *)&r->rec[n];
  if (add != NULL)
    push_record(r, add, &cursor);
  for (uint32_t i = 0; old != NULL && i < old->n && r->n < n; i++) {
    if (fresh(&old->rec[i], now))
      push_record(r, &old->rec[i], &cursor);
  }
  return r;
}

static const af_start_record *find_token(const af_runs *r, const char *token, int64_t now) {
  for (uint32_t i = 0; r != NULL && token != NULL && i < r->n; i++) {
    if (fresh(&r->rec[i], now) && strcmp(r->rec[i].token, token) == 0)
      return &r->rec[i];
  }
  return NULL;
}

/* Where a start moves the flow; AF_OK or a conflict. */
static af_err start_status(const af_flow *f, uint8_t *next, af_error *err) {
  switch ((flow_status)f->status) {
  case STATUS(ACTIVE):
  case STATUS(DRAFT):
  case STATUS(SUSPENDED):
  case STATUS(ERRORED):
    *next = STATUS(ACTIVE);
    return AF_OK;
  case STATUS(DEPRECATED):
  case STATUS(DELETED):
  case STATUS(UNSPECIFIED):
  case _APPFLOW__V1__FLOW_STATUS_IS_INT_SIZE:
    break;
  }
  return wrong_state(f, "started", err);
}

static af_err start_locked(af_flow *f, void *ctx, af_error *err) {
  struct start_ctx *c = ctx;
  af_runs *old = f->runs;
  const af_start_record *seen = find_token(old, c->token, c->now);
  if (seen != NULL) { /* a retry: the first result again, and nothing else */
    c->status = seen->status;
    memcpy(c->result_id, seen->execution_id, sizeof c->result_id);
    c->replayed = true;
    return AF_OK;
  }
  uint8_t next;
  af_err rc = start_status(f, &next, err);
  if (rc != AF_OK)
    return rc;
  bool run = !scheduled_or_event(f);
  c->result_id[0] = '\0';
  if (run)
    snprintf(c->result_id, sizeof c->result_id, "%s", c->execution_id);
  if (run || c->token != NULL) {
    af_start_record add = {c->now, c->token, "", next};
    memcpy(add.execution_id, c->result_id, sizeof add.execution_id);
    int64_t last_ms = run ? c->now : old != NULL ? old->last_ms : 0;
    const char *last_id = run ? c->execution_id : old != NULL ? old->last_id : "";
    af_runs *r = runs_next(c->table, old, c->token ? &add : NULL, last_ms, last_id, c->now);
    if (r == NULL)
      return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory recording the start");
    f->runs = r;
    af_table_block_free(c->table, old);
  }
  c->before = f->status;
  c->status = next;
  c->changed = f->status != next;
  if (c->changed) {
    f->status = next;
    f->updated_ms = c->now;
  }
  return AF_OK;
}

/* A fresh execution id: a counter through a keyed bijection, so ids never repeat within a
 * process and reveal nothing, without a lock or a system call. */
static void execution_id(af_flows *svc, char out[37]) {
  uint64_t n = atomic_fetch_add(&svc->id_counter, 1);
  uint64_t hi = af_hash64(svc->id_key[0], &n, sizeof n);
  uint64_t lo = af_hash64(svc->id_key[1], &n, sizeof n);
  af_uuid_format(hi, lo, out);
}

af_err af_flows_start_flow(af_flows *svc, const Appflow__V1__StartFlowRequest *req,
                           Appflow__V1__StartFlowResponse *resp, af_arena *arena, af_error *err) {
  const char *name = req->flow_name;
  size_t len = name ? strlen(name) : 0;
  af_err rc = af_check_name("flowName", name, len, err);
  if (rc == AF_OK)
    rc = af_check_client_token("clientToken", req->client_token, err);
  if (rc != AF_OK)
    return rc;
  char id[37];
  execution_id(svc, id);
  bool token = req->client_token != NULL && req->client_token[0] != '\0';
  struct start_ctx c = {svc->table, af_flows_now_ms(svc), token ? req->client_token : NULL, id};
  rc = af_table_update(svc->table, name, len, start_locked, &c, err);
  if (rc != AF_OK)
    return rc;
  if ((resp->flow_arn = af_flows_arn_dup(svc, arena, name, len)) == NULL)
    return af_flows_oom(err);
  resp->flow_status = (flow_status)c.status;
  if (c.result_id[0] != '\0' &&
      (resp->execution_id = af_arena_strndup(arena, c.result_id, strlen(c.result_id))) == NULL)
    return af_flows_oom(err);
  if (c.changed)
    log_change(svc, name, c.before, c.status);
  if (c.result_id[0] != '\0' && !c.replayed)
    af_log_printf(svc->log, AF_LOG_INFO, "flow %s: run %s", name, c.result_id);
  return AF_OK;
}

/* ---- DeleteFlow ----------------------------------------------------------------------- */

static af_err delete_locked(af_flow *f, void *ctx, af_error *err) {
  bool force = *(const bool *)ctx;
  if (!force && scheduled_or_event(f) && f->status == STATUS(ACTIVE))
    return af_error_set(err, AF_ERR_CONFLICT,
                        "Flow is in active state, please set forceDelete to true or deactivate "
                        "the flow");
  return AF_OK;
}

af_err af_flows_delete_flow(af_flows *svc, const Appflow__V1__DeleteFlowRequest *req,
                            Appflow__V1__DeleteFlowResponse *resp, af_arena *arena, af_error *err) {
  (void)resp;
  (void)arena;
  const char *name = req->flow_name;
  size_t len = name ? strlen(name) : 0;
  af_err rc = af_check_name("flowName", name, len, err);
  if (rc != AF_OK)
    return rc;
  bool force = req->force_delete;
  rc = af_table_delete(svc->table, name, len, delete_locked, &force, err);
  if (rc == AF_OK)
    af_log_printf(svc->log, AF_LOG_INFO, "flow %s: deleted", name);
  return rc;
}

/* ---- the RPC table -------------------------------------------------------------------- */

static af_err rpc_stop_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                            af_arena *arena, af_error *err) {
  return af_flows_stop_flow(svc, (const Appflow__V1__StopFlowRequest *)req,
                            (Appflow__V1__StopFlowResponse *)resp, arena, NULL, err);
}

/* The typed handlers all take (svc, req, resp, arena, err); this adapts one to af_rpc. */
#define RPC(Name, snake, fn)                                                                       \
  static af_err rpc_##snake(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,    \
                            af_arena *arena, af_error *err) {                                      \
    return fn(svc, (const Appflow__V1__##Name##Request *)req,                                      \
              (Appflow__V1__##Name##Response *)resp, arena, err);                                  \
  }
RPC(CreateFlow, create_flow, af_flows_create_flow)
RPC(DescribeFlow, describe_flow, af_flows_describe_flow)
RPC(ListFlows, list_flows, af_flows_list_flows)
RPC(StartFlow, start_flow, af_flows_start_flow)
RPC(DeleteFlow, delete_flow, af_flows_delete_flow)
RPC(TagResource, tag_resource, af_flows_tag_resource)
RPC(UntagResource, untag_resource, af_flows_untag_resource)
RPC(ListTagsForResource, list_tags_for_resource, af_flows_list_tags)

#define ROW(Name, snake)                                                                           \
  {                                                                                                \
#Name, "/appflow.v1.AppFlowService/" #Name, &appflow__v1__##snake##_request__descriptor,       \
        &appflow__v1__##snake##_response__descriptor, rpc_##snake                                  \
  }

const af_rpc af_flows_rpcs[] = {
    ROW(CreateFlow, create_flow),
    ROW(DescribeFlow, describe_flow),
    ROW(ListFlows, list_flows),
    ROW(StartFlow, start_flow),
    ROW(StopFlow, stop_flow),
    ROW(DeleteFlow, delete_flow),
    ROW(TagResource, tag_resource),
    ROW(UntagResource, untag_resource),
    ROW(ListTagsForResource, list_tags_for_resource),
};
const size_t af_flows_rpc_count = sizeof af_flows_rpcs / sizeof af_flows_rpcs[0];

const af_rpc *af_flows_rpc_named(const char *name) {
  for (size_t i = 0; i < af_flows_rpc_count; i++) {
    if (strcmp(af_flows_rpcs[i].name, name) == 0)
      return &af_flows_rpcs[i];
  }
  return NULL;
}
