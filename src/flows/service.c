#include "flows/service.h"

#include "common/awsname.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct af_flows {
  af_table *table;
  const af_log *log;
  char region[64];
  char account[16];
};

/* Region like "us-east-1": lower-case letters, digits and dashes. Account: 12 digits. */
static bool valid_region(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= 64)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

static bool valid_account(const char *s) {
  if (strlen(s) != 12)
    return false;
  for (int i = 0; i < 12; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
  }
  return true;
}

/* Keys the table's hash, so clients cannot pick names that collide. The clock stands in only
 * if the kernel's source fails, which it does not after boot. */
static uint64_t random_seed(void) {
  uint64_t seed;
  if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed)
    return seed;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
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
  if (svc == NULL || (svc->table = af_table_new(random_seed(), cfg->alloc)) == NULL) {
    free(svc);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  svc->log = cfg->log;
  snprintf(svc->region, sizeof svc->region, "%s", region);
  snprintf(svc->account, sizeof svc->account, "%s", account);
  return svc;
}

void af_flows_free(af_flows *svc) {
  if (svc == NULL)
    return;
  af_table_free(svc->table);
  free(svc);
}

af_table *af_flows_table(af_flows *svc) { return svc->table; }

/* [\w!@#.-] with \w as Java's (AWS's regex dialect): ASCII letters, digits and underscore. */
static bool name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '!' || c == '@' || c == '#' || c == '.' || c == '-';
}

static bool name_first_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool name_matches(const char *name, size_t len) {
  if (len < 2 || !name_first_char((unsigned char)name[0]))
    return false;
  for (size_t i = 1; i < len; i++) {
    if (!name_char((unsigned char)name[i]))
      return false;
  }
  return true;
}

/* Messages follow AWS's validation wording, which the AWS CLI and SDKs show as they are. */
af_err af_flows_check_name(const char *member, const char *name, size_t len, af_error *err) {
  if (name == NULL || len == 0)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "1 validation error detected: Value null at '%s' failed to satisfy "
                        "constraint: Member must not be null",
                        member);
  if (len > AF_FLOW_NAME_MAX)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "1 validation error detected: Value at '%s' failed to satisfy "
                        "constraint: Member must have length less than or equal to %d",
                        member, AF_FLOW_NAME_MAX);
  if (!name_matches(name, len)) {
    char esc[AF_ERROR_MESSAGE_MAX - 256];
    return af_error_set(err, AF_ERR_VALIDATION,
                        "1 validation error detected: Value '%s' at '%s' failed to satisfy "
                        "constraint: Member must satisfy regular expression pattern: "
                        "[a-zA-Z0-9][\\w!@#.-]+",
                        af_escape(esc, sizeof esc, name, len), member);
  }
  return AF_OK;
}

size_t af_flows_arn(const af_flows *svc, char *dst, size_t dstsz, const char *name, size_t len) {
  int n = snprintf(dst, dstsz, "arn:aws:appflow:%s:%s:flow/%.*s", svc->region, svc->account,
                   (int)len, name);
  return n < 0 ? 0 : (size_t)n;
}

/* The proto name of a status (FLOW_STATUS_ACTIVE), as logs show it. */
static const char *status_name(uint8_t status) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&appflow__v1__flow_status__descriptor, status);
  return v ? v->name : "FLOW_STATUS_UNSPECIFIED";
}

/* The AWS spelling of a status (Active), as callers see it in messages. */
static const char *status_aws(uint8_t status, char *buf, size_t bufsz) {
  if (af_aws_enum_string("FLOW_STATUS_", status_name(status), buf, bufsz) != 0)
    snprintf(buf, bufsz, "%u", status);
  return buf;
}

/* The StopFlow state machine, run under the flow's shard lock. */
struct stop_ctx {
  uint8_t before;
  bool changed;
};

static af_err stop_locked(af_flow *f, void *ctx, af_error *err) {
  struct stop_ctx *c = ctx;
  c->before = f->status;
  if (f->trigger == APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND)
    return af_error_set(err, AF_ERR_UNSUPPORTED_OPERATION,
                        "Flow %s is an on-demand flow: StopFlow applies only to scheduled and "
                        "event-triggered flows",
                        f->name);
  switch ((Appflow__V1__FlowStatus)f->status) {
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE:
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ERRORED:
    f->status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED;
    c->changed = true;
    return AF_OK;
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED:
    return AF_OK;
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT:
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DEPRECATED:
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DELETED:
  case APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_UNSPECIFIED:
  case _APPFLOW__V1__FLOW_STATUS_IS_INT_SIZE:
    break;
  }
  char aws[32];
  return af_error_set(err, AF_ERR_CONFLICT,
                      "Flow %s is in %s state and cannot be stopped: only Active or Errored "
                      "flows can be",
                      f->name, status_aws(f->status, aws, sizeof aws));
}

af_err af_flows_stop_flow(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                          Appflow__V1__StopFlowResponse *resp, af_arena *arena,
                          af_stop_result *result, af_error *err) {
  const char *name = req->flow_name;
  size_t len = name ? strlen(name) : 0;
  af_err rc = af_flows_check_name("flowName", name, len, err);
  if (rc != AF_OK)
    return rc;
  struct stop_ctx ctx = {0, false};
  rc = af_table_update(svc->table, name, len, stop_locked, &ctx, err);
  if (rc != AF_OK)
    return rc;
  char arn[AF_FLOW_NAME_MAX + 128];
  size_t n = af_flows_arn(svc, arn, sizeof arn, name, len);
  resp->flow_arn = af_arena_strndup(arena, arn, n);
  if (resp->flow_arn == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory building the response");
  resp->flow_status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED;
  if (ctx.changed)
    af_log_printf(svc->log, AF_LOG_INFO, "flow %s: %s -> FLOW_STATUS_SUSPENDED", name,
                  status_name(ctx.before));
  if (result != NULL)
    result->changed = ctx.changed;
  return AF_OK;
}

static af_err rpc_stop_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                            af_arena *arena, af_error *err) {
  return af_flows_stop_flow(svc, (const Appflow__V1__StopFlowRequest *)req,
                            (Appflow__V1__StopFlowResponse *)resp, arena, NULL, err);
}

const af_rpc af_flows_rpcs[] = {
    {"StopFlow", "/appflow.v1.AppFlowService/StopFlow", &appflow__v1__stop_flow_request__descriptor,
     &appflow__v1__stop_flow_response__descriptor, rpc_stop_flow},
};
const size_t af_flows_rpc_count = sizeof af_flows_rpcs / sizeof af_flows_rpcs[0];
