/* The emulator control API (src/admin/control.h) and the runs it drives: whatever the path and
 * body, a call answers one JSON object, and the flows' runs stay well formed.
 *
 * Input: byte 0 picks the path: one of the control API's on each seeded flow, or (its top bit
 * set) the rest up to the first newline as a path of its own; the rest is the body. A fresh
 * service per input (memory store, scheduler running, a tick an hour so only the input moves
 * time) holds an on-demand flow (od), an Active event flow (ev) and an Active scheduled flow
 * (sc, rate(1minutes), deactivated after 2 failed runs in a row).
 *
 * Oracle: decode errors are 4xx with a "__type" and a "message"; calls answer a JSON object,
 * errors 4xx too (never InternalServerException); after a call each flow's runs are listed
 * newest first, each with a status AppFlow has, at most 100 of them, and an Error run has an
 * errorInfo. */
#include "fuzz.h"

#include "admin/control.h"
#include "bridge/transcode.h"

#include <jansson.h>
#include <string.h>

#define FLOW_JSON(name, trigger)                                                                   \
  "{\"flowName\": \"" name "\", \"triggerConfig\": " trigger ", \"sourceFlowConfig\": "            \
  "{\"connectorType\": \"S3\", \"sourceConnectorProperties\": {\"S3\": {\"bucketName\": "          \
  "\"src\"}}}, \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "                       \
  "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}], \"tasks\": "         \
  "[{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}"

static const char *const flows[] = {
    FLOW_JSON("od", "{\"triggerType\": \"OnDemand\"}"),
    FLOW_JSON("ev", "{\"triggerType\": \"Event\"}"),
    FLOW_JSON("sc", "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
                    "{\"scheduleExpression\": \"rate(1minutes)\", "
                    "\"flowErrorDeactivationThreshold\": 2}}}"),
};
static const char *const names[] = {"od", "ev", "sc"};
static const char *const paths[] = {
    "/emulator/flows/od/outcomes", "/emulator/flows/ev/outcomes", "/emulator/flows/sc/outcomes",
    "/emulator/flows/ev/events",   "/emulator/flows/od/events",   "/emulator/clock",
};

/* Runs op with the AWS JSON request json; its error code. */
static af_err call(af_flows *svc, const char *op, const char *json, af_arena *a,
                   ProtobufCMessage **out) {
  const af_rpc *rpc = af_flows_rpc_named(svc, op);
  ProtobufCMessage *req;
  af_error err;
  CHECK(af_bridge_json_to_message(rpc->op->input, json, strlen(json), a, &req, &err) == AF_OK);
  ProtobufCMessage *resp = af_arena_alloc(a, rpc->output->sizeof_message);
  CHECK(resp != NULL);
  protobuf_c_message_init(rpc->output, resp);
  if (out != NULL)
    *out = resp;
  return af_flows_call_sync(svc, rpc, req, resp, a, &err);
}

static af_flows *new_service(af_arena *a) {
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){.catalog = fuzz_catalog()}, &err);
  CHECK(svc != NULL);
  CHECK(af_flows_scheduler_start(svc, 3600 * 1000, NULL, &err) == AF_OK);
  for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++)
    CHECK(call(svc, "CreateFlow", flows[i], a, NULL) == AF_OK);
  CHECK(call(svc, "StartFlow", "{\"flowName\": \"ev\"}", a, NULL) == AF_OK);
  CHECK(call(svc, "StartFlow", "{\"flowName\": \"sc\"}", a, NULL) == AF_OK);
  return svc;
}

static void check_json(const char *s, bool ok) {
  CHECK(s != NULL);
  json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
  CHECK(j != NULL && json_is_object(j));
  if (!ok) {
    CHECK(json_is_string(json_object_get(j, "__type")));
    CHECK(json_is_string(json_object_get(j, "message")));
  }
  json_decref(j);
}

/* Each flow's runs are well formed, newest first. */
static void check_runs(af_flows *svc, af_arena *a) {
  for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
    char json[96];
    snprintf(json, sizeof json, "{\"flowName\": \"%s\", \"maxResults\": 100}", names[f]);
    ProtobufCMessage *out;
    CHECK(call(svc, "DescribeFlowExecutionRecords", json, a, &out) == AF_OK);
    const Appflow__V1__DescribeFlowExecutionRecordsResponse *r = (const void *)out;
    CHECK(r->n_flow_executions <= 100);
    for (size_t i = 0; i < r->n_flow_executions; i++) {
      const Appflow__V1__ExecutionRecord *e = r->flow_executions[i];
      CHECK(e->execution_status >= APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_IN_PROGRESS &&
            e->execution_status <= APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_CANCELED);
      CHECK((e->execution_result->error_info != NULL) ==
            (e->execution_status == APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_ERROR));
      if (i > 0)
        CHECK(e->started_at->seconds <= r->flow_executions[i - 1]->started_at->seconds);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  af_arena a;
  af_arena_init(&a);
  char path[512];
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  if (data[0] & 0x80) { /* a path of the input's own */
    const char *nl = memchr(body, '\n', len);
    size_t n = nl ? (size_t)(nl - body) : len;
    if (n >= sizeof path)
      n = sizeof path - 1;
    memcpy(path, body, n);
    path[n] = '\0';
    if (strlen(path) != n) /* the HTTP layer hands over a C string */
      return 0;
    body += nl ? n + 1 : len;
    len -= nl ? n + 1 : len;
  } else {
    snprintf(path, sizeof path, "%s", paths[data[0] % (sizeof paths / sizeof paths[0])]);
  }
  af_flows *svc = new_service(&a);
  const af_rpc *rpc = NULL;
  ProtobufCMessage *req = NULL;
  af_error err = {AF_OK, ""};
  af_err rc = af_control_decode(svc, "POST", path, body, len, &a, &rpc, &req, &err);
  if (rc != AF_OK) {
    CHECK(af_err_http_status(rc) >= 400 && af_err_http_status(rc) < 500);
    check_json(af_control_error(&err, &a), false);
  } else {
    ProtobufCMessage *resp = af_arena_alloc(&a, rpc->output->sizeof_message);
    CHECK(resp != NULL);
    protobuf_c_message_init(rpc->output, resp);
    rc = af_flows_call_sync(svc, rpc, req, resp, &a, &err);
    CHECK(rc == AF_OK || (af_err_http_status(rc) >= 400 && af_err_http_status(rc) < 500));
    check_json(rc == AF_OK ? af_control_encode(rpc, resp, &a) : af_control_error(&err, &a),
               rc == AF_OK);
    /* the scripted outcomes (if any) used: runs on demand, then an hour of the schedule */
    call(svc, "StartFlow", "{\"flowName\": \"od\"}", &a, NULL);
    CHECK(af_control_decode(svc, "POST", "/emulator/clock", "{\"advanceSeconds\": 3600}", 24, &a,
                            &rpc, &req, &err) == AF_OK);
    ProtobufCMessage *clock = af_arena_alloc(&a, rpc->output->sizeof_message);
    protobuf_c_message_init(rpc->output, clock);
    CHECK(af_flows_call_sync(svc, rpc, req, clock, &a, &err) == AF_OK);
    check_runs(svc, &a);
  }
  af_flows_free(svc);
  af_arena_destroy(&a);
  return 0;
}
