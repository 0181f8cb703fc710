/* src/flows/create.c and update.c: CreateFlow (the model's checks and AppFlow's rules, first
 * status, ARN, name conflicts, clientToken retries within 8 hours, running out of memory),
 * DescribeFlow (every member given back as created, timestamps from the service's clock, who
 * created and last changed the flow, schemaVersion, seeded flows, missing flows) and UpdateFlow
 * (what it replaces and keeps, status, times, schemaVersion, clientToken retries, refusals), on
 * the store AF_TEST_STORE names (store_under_test.h). Requests are written as AWS JSON and
 * decoded by the AWS door's transcoder (request_json.h). */
#include "common/latch.h"
#include "flows/internal.h"
#include "flows/service.h"

#include "budget_alloc.h"
#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

/* 2023-11-14T22:13:20.123Z: milliseconds, so a Timestamp's nanos are checked too. */
#define T0 1700000000123LL
#define HOUR_MS (3600LL * 1000)
#define ROOT "arn:aws:iam::000000000000:root"

static af_flows *svc;
static af_store *store;
static af_arena arena; /* requests and responses of one test */

static void setup(void) {
  fake_now = T0;
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}}, &store);
  af_arena_init(&arena);
  test_salesforce_profile(svc, "sf-prod");
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
}

TestSuite(create, .init = setup, .fini = teardown);
TestSuite(update, .init = setup, .fini = teardown);

/* ---- building requests in the arena ---- */

static const char *trigger_json(Appflow__V1__TriggerType t) {
  if (t == T(SCHEDULED))
    return "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
           "{\"scheduleExpression\": \"rate(1hours)\"}}}";
  if (t == T(EVENT))
    return "{\"triggerType\": \"Event\"}";
  cr_assert_eq(t, T(ON_DEMAND));
  return "{\"triggerType\": \"OnDemand\"}";
}

/* Salesforce to S3 with one projection task: the members CreateFlow and UpdateFlow require. */
#define SF_TO_S3                                                                                   \
  "\"sourceFlowConfig\": {\"connectorType\": \"Salesforce\", \"connectorProfileName\": "           \
  "\"sf-prod\", \"sourceConnectorProperties\": {\"Salesforce\": {\"object\": \"Account\"}}}, "     \
  "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "                                   \
  "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"bucket\"}}}], "                 \
  "\"tasks\": [{\"sourceFields\": [\"Id\"], \"taskType\": \"Filter\", "                            \
  "\"connectorOperator\": {\"Salesforce\": \"PROJECTION\"}}]"

/* The smallest valid request with a trigger of this type. */
static Appflow__V1__CreateFlowRequest *minimal(const char *name, Appflow__V1__TriggerType trigger) {
  return request_from_jsonf(&af_model_CreateFlowRequest, &arena,
                            "{\"flowName\": \"%s\", \"triggerConfig\": %s, " SF_TO_S3 "}", name,
                            trigger_json(trigger));
}

/* Every member CreateFlow takes, set to something other than its default. */
#define FULL_JSON                                                                                  \
  CREATE_FLOW_ALL_MEMBERS_HEAD "\"cost/center\": \"42\"}, \"clientToken\": \"token-1\"}"

static Appflow__V1__CreateFlowRequest *full(const char *name) {
  return request_from_jsonf(&af_model_CreateFlowRequest, &arena, FULL_JSON, name);
}

/* An UpdateFlow of name to an event flow from S3 (two tasks), with a description. */
static Appflow__V1__UpdateFlowRequest *update_req(const char *name,
                                                  Appflow__V1__TriggerType trigger) {
  return request_from_jsonf(
      &af_model_UpdateFlowRequest, &arena,
      "{\"flowName\": \"%s\", \"description\": \"Now from S3\", \"triggerConfig\": %s, "
      "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "
      "{\"S3\": {\"bucketName\": \"in-bucket\", \"bucketPrefix\": \"raw\"}}}, "
      "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "
      "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"out-bucket\"}}}], "
      "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\", "
      "\"connectorOperator\": {\"S3\": \"NO_OP\"}}, "
      "{\"sourceFields\": [\"a\"], \"taskType\": \"Filter\", \"connectorOperator\": "
      "{\"S3\": \"PROJECTION\"}}]}",
      name, trigger_json(trigger));
}

/* ---- calling the service ---- */

static af_err create(const Appflow__V1__CreateFlowRequest *req,
                     Appflow__V1__CreateFlowResponse *resp, af_error *err) {
  return af_flows_create_flow(svc, req, resp, &arena, err);
}

/* Creates req, which must succeed; returns the status it reported. */
static Appflow__V1__FlowStatus created(const Appflow__V1__CreateFlowRequest *req) {
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_assert_eq(create(req, &resp, &err), AF_OK, "%s: %s", req->flow_name, err.message);
  cr_expect(resp.has_flow_status);
  return resp.flow_status;
}

static af_err describe(const char *name, Appflow__V1__DescribeFlowResponse *resp, af_error *err) {
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  return af_flows_describe_flow(svc, &req, resp, &arena, err);
}

static Appflow__V1__DescribeFlowResponse described(const char *name) {
  Appflow__V1__DescribeFlowResponse resp;
  af_error err;
  cr_assert_eq(describe(name, &resp, &err), AF_OK, "%s: %s", name, err.message);
  return resp;
}

static af_err update(const Appflow__V1__UpdateFlowRequest *req,
                     Appflow__V1__UpdateFlowResponse *resp, af_error *err) {
  appflow__v1__update_flow_response__init(resp);
  return af_flows_call_sync(svc, af_flows_rpc_named(svc, "UpdateFlow"), &req->base, &resp->base,
                            &arena, err);
}

/* Updates with req, which must succeed; returns the status it reported. */
static Appflow__V1__FlowStatus updated(const Appflow__V1__UpdateFlowRequest *req) {
  Appflow__V1__UpdateFlowResponse resp;
  af_error err;
  cr_assert_eq(update(req, &resp, &err), AF_OK, "%s: %s", req->flow_name, err.message);
  cr_expect(resp.has_flow_status);
  return resp.flow_status;
}

static Appflow__V1__StartFlowResponse start(const char *name) {
  Appflow__V1__StartFlowRequest req = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__StartFlowResponse resp;
  af_error err;
  cr_assert_eq(af_flows_start_flow(svc, &req, &resp, &arena, &err), AF_OK, "%s", err.message);
  return resp;
}

static void stop(const char *name) {
  Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__StopFlowResponse resp = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(af_flows_stop_flow(svc, &req, &resp, &arena, NULL, &err), AF_OK, "%s", err.message);
}

/* A call as the principal given (createdBy, lastUpdatedBy), waited for. */
typedef struct as_call {
  af_latch latch;
  af_err rc;
} as_call;

static void as_done(void *ctx, af_err rc) {
  as_call *c = ctx;
  c->rc = rc;
  af_latch_open(&c->latch);
}

static af_err call_as(const char *principal, const char *rpc, const ProtobufCMessage *req,
                      ProtobufCMessage *resp, af_error *err) {
  as_call c = {.rc = AF_OK};
  af_latch_init(&c.latch);
  af_reply_to to = {
      .arena = &arena, .err = err, .done = as_done, .ctx = &c, .principal = principal};
  af_flows_call(svc, af_flows_rpc_named(svc, rpc), req, resp, &to);
  af_latch_wait(&c.latch);
  return c.rc;
}

/* Two messages are equal when protobuf-c packs them to the same bytes (NULL only equals NULL). */
static void expect_same(const ProtobufCMessage *got, const ProtobufCMessage *want,
                        const char *what) {
  if (want == NULL || got == NULL) {
    cr_expect(got == want, "%s: one of them is missing", what);
    return;
  }
  cr_assert_eq(got->descriptor, want->descriptor, "%s", what);
  size_t n = protobuf_c_message_get_packed_size(got), m = protobuf_c_message_get_packed_size(want);
  cr_expect_eq(n, m, "%s: %zu bytes, want %zu", what, n, m);
  if (n != m)
    return;
  uint8_t *a = af_arena_alloc(&arena, n + 1), *b = af_arena_alloc(&arena, m + 1);
  cr_assert(a != NULL && b != NULL);
  protobuf_c_message_pack(got, a);
  protobuf_c_message_pack(want, b);
  cr_expect(memcmp(a, b, n) == 0, "%s differs", what);
}

/* The members CreateFlow, UpdateFlow and DescribeFlow share (a flow's definition, less kmsArn
 * and tags), from src to dst, messages of any of the three. */
#define COPY_DEFINITION(dst, src)                                                                  \
  do {                                                                                             \
    (dst).description = (src)->description;                                                        \
    (dst).trigger_config = (src)->trigger_config;                                                  \
    (dst).source_flow_config = (src)->source_flow_config;                                          \
    (dst).n_destination_flow_config_list = (src)->n_destination_flow_config_list;                  \
    (dst).destination_flow_config_list = (src)->destination_flow_config_list;                      \
    (dst).n_tasks = (src)->n_tasks;                                                                \
    (dst).tasks = (src)->tasks;                                                                    \
    (dst).metadata_catalog_config = (src)->metadata_catalog_config;                                \
  } while (0)

/* The definition DescribeFlow gave back, as a CreateFlow request in AWS JSON (without name,
 * token and tags, which are compared on their own). */
static const char *definition_json(const Appflow__V1__DescribeFlowResponse *d) {
  Appflow__V1__CreateFlowRequest r = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  COPY_DEFINITION(r, d);
  r.kms_arn = d->kms_arn;
  return message_json(&af_model_CreateFlowRequest, &r, &arena);
}

/* req's definition in AWS JSON, as definition_json writes it. */
static const char *request_definition_json(const Appflow__V1__CreateFlowRequest *req) {
  Appflow__V1__CreateFlowRequest r = *req;
  r.flow_name = r.client_token = NULL;
  r.n_tags = 0;
  r.tags = NULL;
  return message_json(&af_model_CreateFlowRequest, &r, &arena);
}

static const char *tag_value(const Appflow__V1__DescribeFlowResponse *d, const char *key) {
  for (size_t i = 0; i < d->n_tags; i++) {
    if (strcmp(d->tags[i]->key, key) == 0)
      return d->tags[i]->value;
  }
  return NULL;
}

static void expect_time(const Google__Protobuf__Timestamp *t, int64_t ms, const char *what) {
  cr_assert_not_null(t, "%s", what);
  cr_expect_eq(t->seconds, ms / 1000, "%s seconds", what);
  cr_expect_eq(t->nanos, (ms % 1000) * 1000000, "%s nanos", what);
}

static int64_t schema_version(const char *name) {
  Appflow__V1__DescribeFlowResponse d = described(name);
  cr_expect(d.has_schema_version, "%s: no schemaVersion", name);
  return d.schema_version;
}

/* ---- CreateFlow ---- */

Test(create, first_status_depends_on_the_trigger) {
  cr_expect_eq(created(minimal("sched", T(SCHEDULED))), S(DRAFT));
  cr_expect_eq(created(minimal("event", T(EVENT))), S(DRAFT));
  cr_expect_eq(created(minimal("ondemand", T(ON_DEMAND))), S(ACTIVE));
  cr_expect_eq(described("sched").flow_status, S(DRAFT));
  cr_expect_eq(described("event").flow_status, S(DRAFT));
  cr_expect_eq(described("ondemand").flow_status, S(ACTIVE));
  cr_expect(described("ondemand").has_flow_status);
  cr_expect_eq(af_flows_count(svc), 3);
}

Test(create, arn_names_the_flow) {
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_assert_eq(create(minimal("my-flow_1", T(ON_DEMAND)), &resp, &err), AF_OK);
  cr_expect_str_eq(resp.flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/my-flow_1");
  cr_expect_str_eq(described("my-flow_1").flow_arn, resp.flow_arn);
  cr_expect_str_eq(described("my-flow_1").flow_name, "my-flow_1");
  test_service_free(svc, store);
  svc = test_service_new(&(af_flows_config){.region = "eu-west-2", .account = "123456789012"},
                         &store);
  test_salesforce_profile(svc, "sf-prod");
  cr_assert_eq(create(minimal("f1", T(EVENT)), &resp, &err), AF_OK);
  cr_expect_str_eq(resp.flow_arn, "arn:aws:appflow:eu-west-2:123456789012:flow/f1");
  cr_expect_str_eq(described("f1").created_by, "arn:aws:iam::123456789012:root",
                   "the account's root");
}

Test(create, describe_gives_back_the_definition) {
  Appflow__V1__CreateFlowRequest *req = full("round_trip");
  cr_expect_eq(created(req), S(DRAFT));
  Appflow__V1__DescribeFlowResponse d = described("round_trip");
  cr_expect_str_eq(d.flow_name, "round_trip");
  cr_expect_str_eq(d.flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/round_trip");
  cr_expect_str_eq(definition_json(&d), request_definition_json(req));
  cr_expect_str_eq(d.description, req->description);
  cr_expect_str_eq(d.kms_arn, req->kms_arn);
  expect_same(&d.trigger_config->base, &req->trigger_config->base, "triggerConfig");
  expect_same(&d.source_flow_config->base, &req->source_flow_config->base, "sourceFlowConfig");
  cr_assert_eq(d.n_destination_flow_config_list, 1);
  expect_same(&d.destination_flow_config_list[0]->base, &req->destination_flow_config_list[0]->base,
              "destinationFlowConfigList");
  cr_assert_eq(d.n_tasks, 2);
  for (size_t i = 0; i < 2; i++)
    expect_same(&d.tasks[i]->base, &req->tasks[i]->base, "tasks");
  expect_same(&d.metadata_catalog_config->base, &req->metadata_catalog_config->base,
              "metadataCatalogConfig");
  cr_assert_eq(d.n_tags, 3);
  cr_expect_str_eq(tag_value(&d, "team"), "data");
  cr_expect_str_eq(tag_value(&d, "env"), "prod");
  cr_expect_str_eq(tag_value(&d, "cost/center"), "42");
  cr_expect_null(d.last_run_execution_details, "never run");
  cr_expect_null(d.flow_status_message);
}

Test(create, describe_members_field_by_field) {
  created(full("fields"));
  Appflow__V1__DescribeFlowResponse d = described("fields");
  const Appflow__V1__TriggerConfig *tc = d.trigger_config;
  cr_assert_not_null(tc);
  cr_expect(tc->has_trigger_type);
  cr_expect_eq(tc->trigger_type, T(SCHEDULED));
  cr_assert_not_null(tc->trigger_properties);
  const Appflow__V1__ScheduledTriggerProperties *sp = tc->trigger_properties->scheduled;
  cr_assert_not_null(sp);
  cr_expect_str_eq(sp->schedule_expression, "cron(0 12 * * ? *)");
  cr_expect(sp->has_data_pull_mode);
  cr_expect_eq(sp->data_pull_mode, APPFLOW__V1__DATA_PULL_MODE__DATA_PULL_MODE_INCREMENTAL);
  cr_assert_not_null(sp->schedule_start_time);
  cr_expect_eq(sp->schedule_start_time->seconds, 1800000000);
  cr_assert_not_null(sp->schedule_end_time);
  cr_expect_eq(sp->schedule_end_time->seconds, 1900000000);
  cr_expect_eq(sp->schedule_end_time->nanos, 500000000);
  cr_assert_not_null(sp->first_execution_from);
  cr_expect_eq(sp->first_execution_from->seconds, 1700000000);
  cr_expect_str_eq(sp->timezone, "America/New_York");
  cr_expect(sp->has_schedule_offset);
  cr_expect_eq(sp->schedule_offset, 300);
  cr_expect(sp->has_flow_error_deactivation_threshold);
  cr_expect_eq(sp->flow_error_deactivation_threshold, 5);
  const Appflow__V1__SourceFlowConfig *src = d.source_flow_config;
  cr_assert_not_null(src);
  cr_expect(src->has_connector_type);
  cr_expect_eq(src->connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SALESFORCE);
  cr_expect_str_eq(src->connector_profile_name, "sf-prod");
  cr_expect_str_eq(src->api_version, "58.0");
  cr_assert_not_null(src->source_connector_properties);
  const Appflow__V1__SalesforceSourceProperties *sf = src->source_connector_properties->salesforce;
  cr_assert_not_null(sf);
  cr_expect_str_eq(sf->object, "Account");
  cr_expect(sf->has_enable_dynamic_field_update, "false is present");
  cr_expect_not(sf->enable_dynamic_field_update);
  cr_expect(sf->has_include_deleted_records);
  cr_expect(sf->include_deleted_records);
  cr_assert_not_null(src->incremental_pull_config);
  cr_expect_str_eq(src->incremental_pull_config->datetime_type_field_name, "LastModifiedDate");
  const Appflow__V1__DestinationFlowConfig *dst = d.destination_flow_config_list[0];
  cr_expect_eq(dst->connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3);
  cr_assert_not_null(dst->destination_connector_properties);
  const Appflow__V1__S3DestinationProperties *s3 = dst->destination_connector_properties->s3;
  cr_assert_not_null(s3);
  cr_expect_str_eq(s3->bucket_name, "bucket");
  cr_expect_str_eq(s3->bucket_prefix, "accounts");
  cr_assert_not_null(s3->s3_output_format_config);
  cr_expect_eq(s3->s3_output_format_config->file_type, APPFLOW__V1__FILE_TYPE__FILE_TYPE_JSON);
  cr_expect_eq(d.tasks[0]->task_type, APPFLOW__V1__TASK_TYPE__TASK_TYPE_FILTER);
  cr_assert_not_null(d.tasks[0]->connector_operator);
  cr_expect(d.tasks[0]->connector_operator->has_salesforce);
  cr_expect_eq(
      d.tasks[0]->connector_operator->salesforce,
      APPFLOW__V1__SALESFORCE_CONNECTOR_OPERATOR__SALESFORCE_CONNECTOR_OPERATOR_PROJECTION);
  cr_assert_eq(d.tasks[0]->n_source_fields, 2);
  cr_expect_str_eq(d.tasks[0]->source_fields[1], "Name");
  cr_expect_str_eq(d.tasks[1]->destination_field, "Id");
  cr_expect_eq(d.tasks[1]->n_task_properties, 2);
  cr_assert_not_null(d.metadata_catalog_config);
  cr_assert_not_null(d.metadata_catalog_config->glue_data_catalog);
  cr_expect_str_eq(d.metadata_catalog_config->glue_data_catalog->database_name, "db");
  cr_expect_str_eq(d.metadata_catalog_config->glue_data_catalog->role_arn,
                   "arn:aws:iam::123456789012:role/glue");
}

Test(create, minimal_flow_describes_without_optional_members) {
  created(minimal("plain", T(EVENT)));
  Appflow__V1__DescribeFlowResponse d = described("plain");
  cr_expect_null(d.description);
  cr_expect_null(d.kms_arn);
  cr_expect_null(d.metadata_catalog_config);
  cr_expect_eq(d.n_tags, 0);
  cr_expect_eq(d.trigger_config->trigger_type, T(EVENT));
  cr_expect_null(d.trigger_config->trigger_properties);
  cr_expect_str_eq(d.source_flow_config->connector_profile_name, "sf-prod");
  cr_expect_not(
      d.source_flow_config->source_connector_properties->salesforce->has_include_deleted_records);
  /* An empty description is a value: it is kept as given. */
  Appflow__V1__CreateFlowRequest *r = minimal("empty_description", T(EVENT));
  r->description = "";
  created(r);
  d = described("empty_description");
  cr_expect(d.description == NULL || d.description[0] == '\0', "%s", d.description);
}

Test(create, who_created_the_flow_and_its_schema_version) {
  created(minimal("by_root", T(EVENT)));
  Appflow__V1__DescribeFlowResponse d = described("by_root");
  cr_expect_str_eq(d.created_by, ROOT);
  cr_expect_str_eq(d.last_updated_by, ROOT);
  cr_expect(d.has_schema_version);
  cr_expect_eq(d.schema_version, 1);
  /* A caller signed as a role: its ARN is the creator. */
  static const char role[] = "arn:aws:sts::000000000000:assumed-role/ops/alice";
  Appflow__V1__CreateFlowResponse resp = APPFLOW__V1__CREATE_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(call_as(role, "CreateFlow", &minimal("by_role", T(EVENT))->base, &resp.base, &err),
               AF_OK, "%s", err.message);
  d = described("by_role");
  cr_expect_str_eq(d.created_by, role);
  cr_expect_str_eq(d.last_updated_by, role);
}

Test(create, timestamps_come_from_the_clock) {
  created(full("timed"));
  Appflow__V1__DescribeFlowResponse d = described("timed");
  expect_time(d.created_at, T0, "createdAt");
  expect_time(d.last_updated_at, T0, "lastUpdatedAt");
  fake_now = T0 + 5 * HOUR_MS + 7;
  start("timed"); /* Draft -> Active: an update */
  d = described("timed");
  expect_time(d.created_at, T0, "createdAt after a start");
  expect_time(d.last_updated_at, T0 + 5 * HOUR_MS + 7, "lastUpdatedAt after a start");
}

Test(create, on_demand_run_shows_in_describe) {
  created(minimal("od", T(ON_DEMAND)));
  fake_now = T0 + 60000;
  Appflow__V1__StartFlowResponse s = start("od");
  cr_assert_not_null(s.execution_id);
  Appflow__V1__DescribeFlowResponse d = described("od");
  cr_assert_not_null(d.last_run_execution_details);
  cr_expect(d.last_run_execution_details->has_most_recent_execution_status);
  cr_expect_eq(d.last_run_execution_details->most_recent_execution_status,
               APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL);
  expect_time(d.last_run_execution_details->most_recent_execution_time, T0 + 60000,
              "mostRecentExecutionTime");
  cr_assert_not_null(d.last_run_execution_details->most_recent_execution_message);
  cr_expect(strstr(d.last_run_execution_details->most_recent_execution_message, s.execution_id) !=
                NULL,
            "%s", d.last_run_execution_details->most_recent_execution_message);
}

/* DescribeFlow's answer to name in arena a, with the packed messages it came with in *ready. */
static Appflow__V1__DescribeFlowResponse *describe_ready(const char *name, af_pbc_ready *ready,
                                                         af_arena *a) {
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__DescribeFlowResponse *resp = af_arena_alloc(a, sizeof *resp);
  cr_assert_not_null(resp);
  appflow__v1__describe_flow_response__init(resp);
  test_call_ready(svc, "DescribeFlow", &req.base, &resp->base, ready, a);
  return resp;
}

/* 'p' when the answer came packed (then the bytes are those it packs to), '-' when it was made
 * for the call. */
static char packed_mark(const Appflow__V1__DescribeFlowResponse *r, const af_pbc_ready *ready) {
  if (ready->n == 0)
    return '-';
  cr_assert_eq(ready->n, 1, "one answer");
  cr_assert_eq(ready->items[0].msg, &r->base, "the packed message is the answer itself");
  size_t len = protobuf_c_message_get_packed_size(&r->base);
  uint8_t *buf = af_arena_alloc(&arena, len + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(protobuf_c_message_pack(&r->base, buf), len);
  cr_assert_eq(ready->items[0].len, len);
  cr_assert_arr_eq(ready->items[0].data, buf, len);
  return 'p';
}

/* An answer is made once and given from then on as it was made (its packed bytes; the message
 * they are, once a second call unpacked it), until its flow changes; one
 * whose run is in progress (its status moves with the clock) is made for every call; an answer
 * stays readable after its flow goes (ASan), and the store counts none of it then. */
Test(create, describe_is_kept_packed_until_the_flow_changes) {
  test_service_free(svc, store); /* one whose runs take a minute */
  svc = test_service_new(
      &(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .run_duration_ms = 60000}, &store);
  test_salesforce_profile(svc, "sf-prod");
  bool keeps = strcmp(test_store_kind(), "memory") == 0; /* the databases keep no memos */
  char kept = keeps ? 'p' : '-';
  created(minimal("od", T(ON_DEMAND)));
  af_arena a1, a2;
  af_arena_init(&a1);
  af_arena_init(&a2);
  af_pbc_ready r1, r2;
  Appflow__V1__DescribeFlowResponse *d1 = describe_ready("od", &r1, &a1);
  cr_expect_eq(packed_mark(d1, &r1), kept);
  Appflow__V1__DescribeFlowResponse *d2 = describe_ready("od", &r2, &a2);
  cr_expect_eq(packed_mark(d2, &r2), kept);
  af_arena a3; /* the second call unpacked the answer; from then on it is shared */
  af_arena_init(&a3);
  af_pbc_ready r3;
  Appflow__V1__DescribeFlowResponse *d3 = describe_ready("od", &r3, &a3);
  cr_expect_eq(packed_mark(d3, &r3), kept);
  if (keeps)
    cr_expect_eq(d3->flow_arn, d2->flow_arn, "the same answer, not a copy");
  af_arena_destroy(&a3);
  af_arena_destroy(&a2);

  start("od"); /* in progress for a minute */
  af_arena_init(&a2);
  d2 = describe_ready("od", &r2, &a2);
  cr_assert_not_null(d2->last_run_execution_details);
  cr_expect_eq(d2->last_run_execution_details->most_recent_execution_status,
               APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_IN_PROGRESS);
  cr_expect_eq(packed_mark(d2, &r2), '-', "a run in progress is described as it is now");
  af_arena_destroy(&a2);
  fake_now += 60000;
  af_arena_init(&a2);
  d2 = describe_ready("od", &r2, &a2);
  cr_expect_eq(d2->last_run_execution_details->most_recent_execution_status,
               APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL);
  cr_expect_eq(packed_mark(d2, &r2), kept, "an ended run's answer is kept");
  af_arena_destroy(&a2);

  updated(update_req("od", T(ON_DEMAND)));
  af_arena_init(&a2);
  d2 = describe_ready("od", &r2, &a2);
  cr_expect_str_eq(d2->description, "Now from S3", "the change, not the answer kept before it");
  cr_expect_eq(packed_mark(d2, &r2), kept);
  if (keeps)
    cr_expect_gt(atomic_load(&store->memo_bytes), 0);
  af_error err;
  cr_assert_eq(test_delete_flow(svc, "od", true, &err), AF_OK, "%s", err.message);
  cr_expect_eq(atomic_load(&store->memo_bytes), 0);
  cr_expect_str_eq(d1->flow_name, "od"); /* what a call was given stays readable (ASan) */
  cr_expect_null(d1->last_run_execution_details);
  cr_expect_str_eq(d2->flow_name, "od");
  af_arena_destroy(&a1);
  af_arena_destroy(&a2);
}

Test(create, taken_name) {
  created(minimal("taken", T(SCHEDULED)));
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(minimal("taken", T(SCHEDULED)), &resp, &err), AF_ERR_NAME_TAKEN);
  cr_expect_str_eq(err.message, "A flow named taken already exists");
  cr_expect_eq(create(minimal("taken", T(ON_DEMAND)), &resp, &err), AF_ERR_NAME_TAKEN);
  Appflow__V1__CreateFlowRequest *with_token = minimal("taken", T(SCHEDULED));
  with_token->client_token = "t";
  cr_expect_eq(create(with_token, &resp, &err), AF_ERR_NAME_TAKEN,
               "a token the first request did not have");
  cr_expect_eq(af_flows_count(svc), 1);
  cr_expect_eq(described("taken").trigger_config->trigger_type, T(SCHEDULED));
}

Test(create, retry_with_the_same_token_returns_the_first_result) {
  Appflow__V1__CreateFlowRequest *req = full("retried");
  Appflow__V1__CreateFlowResponse first, again;
  af_error err;
  cr_assert_eq(create(req, &first, &err), AF_OK, "%s", err.message);
  cr_assert_eq(first.flow_status, S(DRAFT));
  fake_now = T0 + HOUR_MS;
  start("retried");
  cr_assert_eq(described("retried").flow_status, S(ACTIVE));
  /* A retry built afresh, as a client would send it again. */
  cr_expect_eq(create(full("retried"), &again, &err), AF_OK, "%s", err.message);
  cr_expect_eq(again.flow_status, S(DRAFT), "the first result, not the flow's status now");
  cr_expect_str_eq(again.flow_arn, first.flow_arn);
  cr_expect_eq(af_flows_count(svc), 1);
  cr_expect_eq(described("retried").flow_status, S(ACTIVE), "a retry changes nothing");
  expect_time(described("retried").created_at, T0, "createdAt");
}

/* Protocol Buffers leaves the wire order of map entries undefined (and some runtimes, Go's
 * among them, vary it from one marshal to the next), so a retry may carry the same tags, or the
 * same task properties, in another order: it is still the same request. */
Test(create, a_retry_with_map_entries_in_another_order_is_the_same_request) {
  created(full("ordered"));
  Appflow__V1__CreateFlowRequest *retry = full("ordered");
  Appflow__V1__CreateFlowRequest__TagsEntry *t = retry->tags[0];
  retry->tags[0] = retry->tags[2];
  retry->tags[2] = t;
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(retry, &resp, &err), AF_OK, "tags reordered: %s", err.message);
  retry = full("ordered");
  Appflow__V1__Task *map = retry->tasks[1];
  cr_assert_eq(map->n_task_properties, 2);
  Appflow__V1__Task__TaskPropertiesEntry *p = map->task_properties[0];
  map->task_properties[0] = map->task_properties[1];
  map->task_properties[1] = p;
  cr_expect_eq(create(retry, &resp, &err), AF_OK, "taskProperties reordered: %s", err.message);
}

/* m packed, as its caller would see it, in the test's arena. */
static af_bytes packed(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = af_arena_alloc(&arena, n + 1);
  cr_assert_not_null(b);
  protobuf_c_message_pack(m, b);
  return (af_bytes){b, n};
}

static void expect_bytes(af_bytes got, af_bytes want, const char *what) {
  cr_expect(af__bytes_equal(got, want), "%s: %zu bytes differ from the %zu before", what, got.len,
            want.len);
}

/* Turns a list of entries around, so a map in key order is not. */
static void reverse(void **v, size_t n) {
  for (size_t i = 0; i < n / 2; i++) {
    void *t = v[i];
    v[i] = v[n - 1 - i];
    v[n - 1 - i] = t;
  }
}

/* full(name) with its maps (tags, the Map task's taskProperties) out of key order. */
static Appflow__V1__CreateFlowRequest *unordered(const char *name) {
  Appflow__V1__CreateFlowRequest *req = full(name);
  cr_assert_eq(req->n_tags, 3);
  cr_assert_eq(req->tasks[1]->n_task_properties, 2);
  reverse((void **)req->tasks[1]->task_properties, 2);
  cr_assert_gt(strcmp(req->tags[0]->key, req->tags[1]->key), 0, "tags out of order");
  cr_assert_gt(
      strcmp(req->tasks[1]->task_properties[0]->key, req->tasks[1]->task_properties[1]->key), 0,
      "taskProperties out of order");
  return req;
}

/* A request is the caller's (a const pointer): packing its definition sorts copies of the maps'
 * arrays, never the request's own, whatever path it takes. */
Test(create, the_callers_request_is_never_changed) {
  Appflow__V1__CreateFlowRequest *req = unordered("untouched");
  af_bytes before = packed(&req->base);
  size_t len = 0;
  cr_assert_not_null(af__pack_definition(svc->sort_plans, req, &arena, &len));
  expect_bytes(packed(&req->base), before, "after packing its definition");
  cr_expect_eq(created(req), S(DRAFT));
  expect_bytes(packed(&req->base), before, "after CreateFlow");
  cr_expect_eq(created(req), S(DRAFT), "a retry");
  expect_bytes(packed(&req->base), before, "after a retry");
  Appflow__V1__UpdateFlowRequest *u = update_req("untouched", T(EVENT));
  u->source_flow_config = req->source_flow_config;
  u->destination_flow_config_list = req->destination_flow_config_list;
  u->tasks = req->tasks;
  u->n_tasks = req->n_tasks;
  u->client_token = "update-1";
  af_bytes update_before = packed(&u->base);
  updated(u);
  expect_bytes(packed(&u->base), update_before, "after UpdateFlow");
  expect_bytes(packed(&req->base), before, "the create request after UpdateFlow");
}

/* The definition is the request in one order of map entries, whatever order it came in; entries
 * sharing a key (possible on gRPC) keep theirs, which says which one counts. */
Test(create, requests_differing_only_in_map_order_pack_equal) {
  size_t a_len = 0, b_len = 0;
  uint8_t *a = af__pack_definition(svc->sort_plans, full("same"), &arena, &a_len);
  uint8_t *b = af__pack_definition(svc->sort_plans, unordered("same"), &arena, &b_len);
  cr_assert(a != NULL && b != NULL);
  expect_bytes((af_bytes){b, b_len}, (af_bytes){a, a_len}, "the unordered request's definition");
  Appflow__V1__CreateFlowRequest *d =
      appflow__v1__create_flow_request__unpack(&arena.allocator, a_len, a);
  cr_assert_not_null(d);
  cr_assert_eq(d->n_tags, 3);
  cr_expect_str_eq(d->tags[0]->key, "cost/center");
  cr_expect_str_eq(d->tags[1]->key, "env");
  cr_expect_str_eq(d->tags[2]->key, "team");
  cr_expect_str_eq(d->tasks[1]->task_properties[0]->key, "DESTINATION_DATA_TYPE");

  Appflow__V1__CreateFlowRequest__TagsEntry e[3] = {
      APPFLOW__V1__CREATE_FLOW_REQUEST__TAGS_ENTRY__INIT,
      APPFLOW__V1__CREATE_FLOW_REQUEST__TAGS_ENTRY__INIT,
      APPFLOW__V1__CREATE_FLOW_REQUEST__TAGS_ENTRY__INIT};
  e[0].key = "dup", e[0].value = "first";
  e[1].key = "a", e[1].value = "z";
  e[2].key = "dup", e[2].value = "second";
  Appflow__V1__CreateFlowRequest *req = full("dup");
  Appflow__V1__CreateFlowRequest__TagsEntry *tags[] = {&e[0], &e[1], &e[2]};
  req->tags = tags;
  req->n_tags = 3;
  uint8_t *c = af__pack_definition(svc->sort_plans, req, &arena, &a_len);
  cr_assert_not_null(c);
  d = appflow__v1__create_flow_request__unpack(&arena.allocator, a_len, c);
  cr_assert(d != NULL && d->n_tags == 3);
  cr_expect_str_eq(d->tags[0]->key, "a");
  cr_expect_str_eq(d->tags[1]->value, "first", "the first of two entries with one key stays first");
  cr_expect_str_eq(d->tags[2]->value, "second");
  cr_expect(tags[0] == &e[0] && tags[1] == &e[1] && tags[2] == &e[2], "the caller's array kept");
}

/* The service's plans walk only the fields that can lead to a map: a map as deep as a custom
 * connector's customProperties, out of order on both sides, packs sorted with them as with the
 * walk of every field (NULL plans), and as the same request given in order. */
Test(create, plans_find_maps_at_any_depth) {
  static const char fmt[] =
      "{\"flowName\": \"deep\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"CustomConnector\", "
      "\"connectorProfileName\": \"p\", \"sourceConnectorProperties\": {\"CustomConnector\": "
      "{\"entityName\": \"e\", \"customProperties\": {%s}}}}, "
      "\"destinationFlowConfigList\": [{\"connectorType\": \"CustomConnector\", "
      "\"destinationConnectorProperties\": {\"CustomConnector\": {\"entityName\": \"e\", "
      "\"customProperties\": {%s}}}}], \"tasks\": [{\"sourceFields\": [\"a\"], "
      "\"taskType\": \"Map\", \"taskProperties\": {%s}}], \"tags\": {%s}}";
  static const char up[] = "\"a\": \"1\", \"b\": \"2\", \"c\": \"3\"";
  static const char down[] = "\"c\": \"3\", \"b\": \"2\", \"a\": \"1\"";
  Appflow__V1__CreateFlowRequest *in_order =
      request_from_jsonf(&af_model_CreateFlowRequest, &arena, fmt, up, up, up, up);
  const af_sort_plans *plans[] = {svc->sort_plans, NULL};
  size_t want_len = 0;
  uint8_t *want = af__pack_definition(NULL, in_order, &arena, &want_len);
  cr_assert_not_null(want);
  for (int side = 0; side < 4; side++) { /* one map out of order at a time */
    Appflow__V1__CreateFlowRequest *req =
        request_from_jsonf(&af_model_CreateFlowRequest, &arena, fmt, side == 0 ? down : up,
                           side == 1 ? down : up, side == 2 ? down : up, side == 3 ? down : up);
    for (int k = 0; k < 2; k++) {
      size_t len = 0;
      uint8_t *got = af__pack_definition(plans[k], req, &arena, &len);
      cr_assert_not_null(got);
      expect_bytes((af_bytes){got, len}, (af_bytes){want, want_len},
                   k == 0 ? "packed with the service's plans" : "packed walking every field");
    }
  }
  cr_assert_not_null(svc->sort_plans);
}

Test(create, retry_of_an_on_demand_flow) {
  Appflow__V1__CreateFlowRequest *req = minimal("od", T(ON_DEMAND));
  req->client_token = "abc";
  cr_assert_eq(created(req), S(ACTIVE));
  cr_expect_eq(created(req), S(ACTIVE));
  cr_expect_eq(af_flows_count(svc), 1);
}

Test(create, same_token_with_other_parameters_conflicts) {
  created(full("once"));
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  Appflow__V1__CreateFlowRequest *other = full("once");
  other->description = "Something else";
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message,
                   "Conflict executing request: clientToken token-1 was already used to create "
                   "flow once with other parameters: use a new clientToken for a different "
                   "request");
  other = full("once");
  other->tags[0]->value = "ops";
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT, "tags are parameters too");
  other = full("once");
  other->trigger_config->trigger_properties->scheduled->schedule_offset = 301;
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT);
  other = full("once");
  other->trigger_config->trigger_properties->scheduled->has_schedule_offset = false;
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT, "an absent member differs too");
  other = full("once");
  other->tasks[1] = other->tasks[0];
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT);
  other = full("once");
  other->client_token = "token-2";
  cr_expect_eq(create(other, &resp, &err), AF_ERR_NAME_TAKEN, "another token: the name is taken");
  cr_expect_str_eq(described("once").description, "Accounts to S3, nightly.");
}

/* A clientToken belongs to its first request, whatever flow it named: the same token for another
 * name is a conflict (and creates nothing), and a retry of the first still gets its result. */
Test(create, a_token_is_bound_to_its_first_request_across_names) {
  cr_expect_eq(created(full("first")), S(DRAFT));
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(full("second"), &resp, &err), AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message,
                   "Conflict executing request: clientToken token-1 was already used to create "
                   "flow first with other parameters: use a new clientToken for a different "
                   "request");
  cr_expect_eq(describe("second", &(Appflow__V1__DescribeFlowResponse){0}, &err),
               AF_ERR_RESOURCE_NOT_FOUND, "nothing was created");
  cr_expect_eq(create(full("first"), &resp, &err), AF_OK, "%s", err.message);
  cr_expect_eq(resp.flow_status, S(DRAFT), "the retry gets the first result");
  cr_expect_eq(af_flows_count(svc), 1, "the token's own record is never listed");
  /* 8 hours on, the token is free: it now belongs to the request that uses it next */
  fake_now = T0 + 8 * HOUR_MS;
  cr_expect_eq(create(full("second"), &resp, &err), AF_OK, "%s", err.message);
  fake_now = T0 + 8 * HOUR_MS + 1;
  cr_expect_eq(create(full("third"), &resp, &err), AF_ERR_CONFLICT);
  cr_expect_eq(af_flows_count(svc), 2);
}

Test(create, a_token_lasts_8_hours) {
  created(full("ttl"));
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  fake_now = T0 + 8 * HOUR_MS - 1;
  cr_expect_eq(create(full("ttl"), &resp, &err), AF_OK, "%s", err.message);
  fake_now = T0 + 8 * HOUR_MS;
  cr_expect_eq(create(full("ttl"), &resp, &err), AF_ERR_NAME_TAKEN);
  fake_now = T0 + 100 * HOUR_MS;
  cr_expect_eq(create(full("ttl"), &resp, &err), AF_ERR_NAME_TAKEN);
}

Test(create, a_deleted_flow_name_is_free_again) {
  created(full("reuse"));
  af_error err;
  cr_assert_eq(test_delete_flow(svc, "reuse", false, &err), AF_OK, "%s", err.message);
  Appflow__V1__DescribeFlowResponse d;
  cr_expect_eq(describe("reuse", &d, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(created(minimal("reuse", T(ON_DEMAND))), S(ACTIVE));
  cr_expect_eq(described("reuse").trigger_config->trigger_type, T(ON_DEMAND));
}

/* JSON cannot repeat a key, but gRPC can send a map entry twice. */
Test(create, a_tag_key_given_twice_keeps_its_last_value) {
  Appflow__V1__CreateFlowRequest *req = minimal("dup", T(EVENT));
  static const char *const kv[] = {"k", "first", "other", "x", "k", "last"};
  Appflow__V1__CreateFlowRequest__TagsEntry e[3], *v[3];
  for (size_t i = 0; i < 3; i++) {
    appflow__v1__create_flow_request__tags_entry__init(&e[i]);
    e[i].key = (char *)kv[2 * i];
    e[i].value = (char *)kv[2 * i + 1];
    v[i] = &e[i];
  }
  req->n_tags = 3;
  req->tags = v;
  created(req);
  Appflow__V1__DescribeFlowResponse d = described("dup");
  cr_expect_eq(d.n_tags, 2);
  cr_expect_str_eq(tag_value(&d, "k"), "last");
  cr_expect_str_eq(tag_value(&d, "other"), "x");
}

Test(create, seeded_flow_describes_with_its_trigger_only) {
  test_seed_flow(svc, "seeded", T(SCHEDULED), S(SUSPENDED));
  Appflow__V1__DescribeFlowResponse d = described("seeded");
  cr_expect_eq(d.flow_status, S(SUSPENDED));
  cr_assert_not_null(d.trigger_config);
  cr_expect(d.trigger_config->has_trigger_type);
  cr_expect_eq(d.trigger_config->trigger_type, T(SCHEDULED));
  cr_expect_null(d.trigger_config->trigger_properties);
  cr_expect_null(d.source_flow_config);
  cr_expect_eq(d.n_destination_flow_config_list, 0);
  cr_expect_eq(d.n_tasks, 0);
  cr_expect_null(d.kms_arn);
  cr_expect_null(d.metadata_catalog_config);
  cr_expect_str_eq(d.flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/seeded");
  cr_expect_str_eq(d.created_by, ROOT);
  cr_expect_str_eq(d.last_updated_by, ROOT);
  cr_expect_eq(d.schema_version, 1);
}

Test(create, describe_missing_or_invalid) {
  Appflow__V1__DescribeFlowResponse d;
  af_error err;
  cr_expect_eq(describe("nope", &d, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_str_eq(err.message, "Flow nope does not exist");
  cr_expect_eq(describe("bad name", &d, &err), AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message,
                   "1 validation error detected: Value 'bad name' at 'flowName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: "
                   "[a-zA-Z0-9][\\w!@#.-]+");
  cr_expect_eq(describe("", &d, &err), AF_ERR_VALIDATION, "an empty name is a value");
  cr_expect_str_eq(err.message,
                   "1 validation error detected: Value '' at 'flowName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: "
                   "[a-zA-Z0-9][\\w!@#.-]+");
  cr_expect_eq(describe(NULL, &d, &err), AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message, "1 validation error detected: Value null at 'flowName' failed to "
                                "satisfy constraint: Member must not be null");
}

/* ---- what CreateFlow refuses (and then adds nothing) ---- */

#define V1 "1 validation error detected: "
#define FLOW_NAME_PATTERN "Member must satisfy regular expression pattern: [a-zA-Z0-9][\\w!@#.-]+"

static void expect_refused(const Appflow__V1__CreateFlowRequest *req, const char *message,
                           const char *what) {
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(req, &resp, &err), AF_ERR_VALIDATION, "%s accepted", what);
  cr_expect(strcmp(err.message, message) == 0, "%s:\n got  %s\n want %s", what, err.message,
            message);
  cr_expect_eq(af_flows_count(svc), 0, "%s added a flow", what);
}

Test(create, refuses_what_the_model_does_not_allow) {
  Appflow__V1__CreateFlowRequest *r;
  expect_refused(minimal("x", T(EVENT)),
                 V1 "Value 'x' at 'flowName' failed to satisfy constraint: " FLOW_NAME_PATTERN,
                 "a short name");
  expect_refused(minimal("", T(EVENT)),
                 V1 "Value '' at 'flowName' failed to satisfy constraint: " FLOW_NAME_PATTERN,
                 "an empty name");
  r = minimal("f", T(EVENT));
  r->flow_name = NULL;
  expect_refused(
      r, V1 "Value null at 'flowName' failed to satisfy constraint: Member must not be null",
      "no name");
  r = minimal("ff", T(EVENT));
  r->description = "a:b";
  expect_refused(r,
                 V1 "Value 'a:b' at 'description' failed to satisfy constraint: Member must "
                    "satisfy regular expression pattern: [\\w!@#\\-.?,\\s]*",
                 "':' in the description");
  r = minimal("ff", T(EVENT));
  r->kms_arn = "arn:aws:kms:us-east-1:key/abcdefghijk";
  expect_refused(r,
                 V1 "Value 'arn:aws:kms:us-east-1:key/abcdefghijk' at 'kmsArn' failed to satisfy "
                    "constraint: Member must satisfy regular expression pattern: "
                    "arn:aws:kms:.*:[0-9]+:.*",
                 "an ARN without an account");
  r = minimal("ff", T(EVENT));
  r->trigger_config = NULL;
  expect_refused(
      r, V1 "Value null at 'triggerConfig' failed to satisfy constraint: Member must not be null",
      "no trigger");
  r = minimal("ff", T(EVENT));
  r->trigger_config->has_trigger_type = false;
  expect_refused(r,
                 V1 "Value null at 'triggerConfig.triggerType' failed to satisfy constraint: "
                    "Member must not be null",
                 "no trigger type");
  r = minimal("ff", T(EVENT));
  r->source_flow_config = NULL;
  expect_refused(
      r,
      V1 "Value null at 'sourceFlowConfig' failed to satisfy constraint: Member must not be null",
      "no source");
  r = minimal("ff", T(EVENT));
  r->source_flow_config->connector_type = (Appflow__V1__ConnectorType)99;
  expect_refused(
      r,
      V1 "Value '99' at 'sourceFlowConfig.connectorType' failed to satisfy constraint: Member "
         "must satisfy enum value set: [Salesforce, Singular, Slack, Redshift, S3, Marketo, "
         "Googleanalytics, Zendesk, Servicenow, Datadog, Trendmicro, Snowflake, Dynatrace, "
         "Infornexus, Amplitude, Veeva, EventBridge, LookoutMetrics, Upsolver, Honeycode, "
         "CustomerProfiles, SAPOData, CustomConnector, Pardot]",
      "an unknown connector");
  r = minimal("ff", T(EVENT));
  r->source_flow_config->source_connector_properties->salesforce->object = "";
  expect_refused(r,
                 V1 "Value '' at 'sourceFlowConfig.sourceConnectorProperties.Salesforce.object' "
                    "failed to satisfy constraint: Member must satisfy regular expression "
                    "pattern: \\S+",
                 "an empty object is a value, and not \\S+");
  r = minimal("ff", T(EVENT));
  r->destination_flow_config_list[0]->destination_connector_properties->s3->bucket_name = "ab";
  expect_refused(r,
                 V1 "Value 'ab' at "
                    "'destinationFlowConfigList.1.member.destinationConnectorProperties.S3."
                    "bucketName' failed to satisfy constraint: Member must have length greater "
                    "than or equal to 3",
                 "a short bucket name");
  r = minimal("ff", T(EVENT));
  r->destination_flow_config_list[0]->destination_connector_properties = NULL;
  expect_refused(r,
                 V1 "Value null at "
                    "'destinationFlowConfigList.1.member.destinationConnectorProperties' failed "
                    "to satisfy constraint: Member must not be null",
                 "a destination without properties");
  r = minimal("ff", T(EVENT));
  r->tasks[0]->has_task_type = false;
  expect_refused(
      r,
      V1 "Value null at 'tasks.1.member.taskType' failed to satisfy constraint: Member must not "
         "be null",
      "a task without a type");
  r = minimal("ff", T(EVENT));
  r->client_token = "a\tb";
  expect_refused(r,
                 V1 "Value 'a\\x09b' at 'clientToken' failed to satisfy constraint: Member must "
                    "satisfy regular expression pattern: [ -~]+",
                 "a tab in the token");
  r = minimal("ff", T(EVENT));
  r->client_token = "";
  expect_refused(r,
                 "2 validation errors detected: Value '' at 'clientToken' failed to satisfy "
                 "constraint: Member must satisfy regular expression pattern: [ -~]+; Value '' "
                 "at 'clientToken' failed to satisfy constraint: Member must have length "
                 "greater than or equal to 1",
                 "an empty token is a value: pattern, then length");
}

Test(create, refuses_bad_tags) {
  Appflow__V1__CreateFlowRequest *r =
      request_from_jsonf(&af_model_CreateFlowRequest, &arena,
                         "{\"flowName\": \"ff\", \"triggerConfig\": {\"triggerType\": \"Event\"}, "
                         "\"tags\": {\"aws:owner\": \"me\"}, " SF_TO_S3 "}");
  expect_refused(r,
                 V1 "Value '{aws:owner=me}' at 'tags' failed to satisfy constraint: Map keys "
                    "must satisfy constraint: [Member must have length less than or equal to "
                    "128, Member must have length greater than or equal to 1, Member must "
                    "satisfy regular expression pattern: ^(?!aws:)[a-zA-Z+-=._:/]+$]",
                 "an aws: tag");
  r = request_from_jsonf(&af_model_CreateFlowRequest, &arena,
                         "{\"flowName\": \"ff\", \"triggerConfig\": {\"triggerType\": \"Event\"}, "
                         "\"tags\": {\"team\": \"a#b\"}, " SF_TO_S3 "}");
  expect_refused(r,
                 V1 "Value '{team=a#b}' at 'tags' failed to satisfy constraint: Map value must "
                    "satisfy constraint: [Member must have length less than or equal to 256, "
                    "Member must satisfy regular expression pattern: [\\s\\w+-=\\.:/@]*]",
                 "'#' in a tag value");
}

Test(create, counts_every_violation_in_one_message) {
  Appflow__V1__CreateFlowRequest *r = minimal("ff", T(EVENT));
  r->source_flow_config->source_connector_properties->salesforce->object = NULL;
  r->destination_flow_config_list[0]->destination_connector_properties->s3->bucket_name = "ab";
  expect_refused(r,
                 "2 validation errors detected: Value null at "
                 "'sourceFlowConfig.sourceConnectorProperties.Salesforce.object' failed to satisfy "
                 "constraint: Member must not be null; Value 'ab' at "
                 "'destinationFlowConfigList.1.member.destinationConnectorProperties.S3."
                 "bucketName' failed to satisfy constraint: Member must have length greater "
                 "than or equal to 3",
                 "two bad members");
}

#define CREATE_FAILED "Create Flow request failed: ["
#define ONE_DESTINATION                                                                            \
  "{\"connectorType\": \"S3\", \"destinationConnectorProperties\": {\"S3\": {\"bucketName\": "     \
  "\"bucket\"}}}"

Test(create, refuses_what_appflows_rules_do_not_allow) {
  Appflow__V1__CreateFlowRequest *r;
  r = minimal("ff", T(EVENT));
  r->n_destination_flow_config_list = 0;
  expect_refused(r,
                 CREATE_FAILED "Destination Validation Error: 'destinationFlowConfigList' must "
                               "hold exactly one destination; it holds 0]",
                 "no destination");
  r = request_from_jsonf(
      &af_model_CreateFlowRequest, &arena,
      "{\"flowName\": \"ff\", \"triggerConfig\": {\"triggerType\": \"Event\"}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"S3\", "
      "\"sourceConnectorProperties\": {\"S3\": {\"bucketName\": \"in-bucket\"}}}, "
      "\"destinationFlowConfigList\": [" ONE_DESTINATION ", " ONE_DESTINATION
      "], \"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}");
  expect_refused(r,
                 CREATE_FAILED "Destination Validation Error: 'destinationFlowConfigList' must "
                               "hold exactly one destination; it holds 2]",
                 "two destinations");
  r = minimal("ff", T(EVENT));
  r->source_flow_config->connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3;
  expect_refused(r,
                 CREATE_FAILED "Connector Validation Error: "
                               "'sourceFlowConfig.sourceConnectorProperties' sets Salesforce but "
                               "'sourceFlowConfig.connectorType' is 'S3'; they must name the "
                               "same connector]",
                 "a connector type that is not the properties'");
  r = minimal("ff", T(EVENT));
  r->n_tasks = 0;
  expect_refused(r,
                 CREATE_FAILED
                 "Task Validation Error: You must specify a projection task or a MAP_ALL task]",
                 "no task");
  r = minimal("ff", T(EVENT));
  r->tasks[0]->task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MAP;
  expect_refused(r,
                 CREATE_FAILED "Task Validation Error: Value 'PROJECTION' at "
                               "'tasks.1.member.connectorOperator.Salesforce' is not an operator "
                               "of a Map task, which takes NO_OP, Task Validation Error: You must "
                               "specify a projection task or a MAP_ALL task]",
                 "no projection task, and an operator of another kind");
  r = minimal("ff", T(SCHEDULED));
  r->trigger_config->trigger_properties->scheduled->schedule_expression = "every hour";
  expect_refused(r,
                 CREATE_FAILED "Trigger Validation Error: Value 'every hour' at "
                               "'triggerConfig.triggerProperties.Scheduled.scheduleExpression' is "
                               "not a valid schedule expression: use rate(value unit), such as "
                               "rate(1 hour), or cron(fields), such as cron(0 12 * * ? *)]",
                 "a bad schedule");
  r = minimal("ff", T(SCHEDULED));
  r->trigger_config->trigger_properties = NULL;
  expect_refused(r,
                 CREATE_FAILED "Trigger Validation Error: a Scheduled trigger needs "
                               "'triggerConfig.triggerProperties.Scheduled']",
                 "a schedule without its properties");
}

Test(create, at_most_50_tags) {
  char json[4096];
  size_t o = 0;
  for (int i = 0; i < 51; i++)
    o += (size_t)snprintf(json + o, sizeof json - o, "%s\"k%c%c\": \"v\"", i ? ", " : "",
                          'a' + i / 26, 'a' + i % 26);
  Appflow__V1__CreateFlowRequest *r = request_from_jsonf(
      &af_model_CreateFlowRequest, &arena,
      "{\"flowName\": \"many\", \"triggerConfig\": {\"triggerType\": \"Event\"}, \"tags\": {%s}, "
      "" SF_TO_S3 "}",
      json);
  cr_assert_eq(r->n_tags, 51);
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(r, &resp, &err), AF_ERR_VALIDATION, "51 tags");
  cr_expect(strstr(err.message, "at 'tags' failed to satisfy constraint: Member must have length "
                                "less than or equal to 50") != NULL,
            "%s", err.message);
  cr_expect_eq(af_flows_count(svc), 0);
  r->n_tags = 50;
  created(r);
  cr_expect_eq(described("many").n_tags, 50);
}

/* ---- running out of memory ---- */

/* The memory store's own allocator runs out (the database stores' failures are theirs). */
Test(create, store_out_of_memory_adds_nothing) {
  struct budget b = {1000};
  af_allocator mem = budget_allocator(&b);
  test_service_free(svc, store);
  af_error err;
  store = af_store_memory_new(&(af_store_config){.alloc = &mem});
  svc = af_flows_new(&(af_flows_config){.store = store, .clock = &(af_clock){fake_clock, NULL}},
                     &err);
  cr_assert_not_null(svc);
  test_salesforce_profile(svc, "sf-prod");
  Appflow__V1__CreateFlowResponse resp;
  for (int budget = 0; budget < 2; budget++) { /* the flow, then its tags */
    b.left = budget;
    cr_expect_eq(create(full("oom"), &resp, &err), AF_ERR_INTERNAL_SERVER, "budget %d", budget);
    cr_expect_eq(af_flows_count(svc), 0);
    Appflow__V1__DescribeFlowResponse d;
    cr_expect_eq(describe("oom", &d, &err), AF_ERR_RESOURCE_NOT_FOUND);
  }
  b.left = 1000;
  cr_expect_eq(created(full("oom")), S(DRAFT), "the failed attempts left no trace");
  cr_expect_eq(described("oom").n_tags, 3);
}

/* Spends the arena's whole allowance, so its next allocation fails. */
static void exhaust(af_arena *a) {
  for (size_t size = 1u << 20; size > 0; size /= 2) {
    while (af_arena_alloc(a, size) != NULL)
      ;
  }
}

Test(create, response_out_of_memory) {
  af_arena full_arena;
  af_arena_init(&full_arena);
  Appflow__V1__CreateFlowRequest *req = full("arena");
  exhaust(&full_arena);
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(af_flows_create_flow(svc, req, &resp, &full_arena, &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(af_flows_count(svc), 0, "no memory for the definition: no flow");
  created(req);
  Appflow__V1__DescribeFlowRequest dreq = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  dreq.flow_name = "arena";
  Appflow__V1__DescribeFlowResponse d;
  cr_expect_eq(af_flows_describe_flow(svc, &dreq, &d, &full_arena, &err), AF_ERR_INTERNAL_SERVER);
  Appflow__V1__UpdateFlowRequest *ureq = update_req("arena", T(EVENT));
  Appflow__V1__UpdateFlowResponse uresp = APPFLOW__V1__UPDATE_FLOW_RESPONSE__INIT;
  cr_expect_eq(af_flows_call_sync(svc, af_flows_rpc_named(svc, "UpdateFlow"), &ureq->base,
                                  &uresp.base, &full_arena, &err),
               AF_ERR_INTERNAL_SERVER);
  cr_expect_str_eq(described("arena").description, "Accounts to S3, nightly.", "not updated");
  af_arena_destroy(&full_arena);
}

/* ---- UpdateFlow ---- */

Test(update, replaces_the_definition_and_keeps_kms_and_tags) {
  Appflow__V1__CreateFlowRequest *req = full("changed");
  created(req);
  Appflow__V1__UpdateFlowRequest *u = update_req("changed", T(EVENT));
  cr_expect_eq(updated(u), S(DRAFT), "a Draft scheduled flow made an event flow stays Draft");
  Appflow__V1__DescribeFlowResponse d = described("changed");
  cr_expect_str_eq(d.description, "Now from S3");
  cr_expect_eq(d.trigger_config->trigger_type, T(EVENT));
  cr_expect_null(d.trigger_config->trigger_properties, "the schedule went with the trigger");
  expect_same(&d.source_flow_config->base, &u->source_flow_config->base, "sourceFlowConfig");
  cr_assert_eq(d.n_destination_flow_config_list, 1);
  expect_same(&d.destination_flow_config_list[0]->base, &u->destination_flow_config_list[0]->base,
              "destinationFlowConfigList");
  cr_assert_eq(d.n_tasks, 2);
  for (size_t i = 0; i < 2; i++)
    expect_same(&d.tasks[i]->base, &u->tasks[i]->base, "tasks");
  cr_expect_null(d.metadata_catalog_config, "replaced by the request's (none)");
  cr_expect_str_eq(d.kms_arn, req->kms_arn, "UpdateFlow does not take kmsArn: kept");
  cr_assert_eq(d.n_tags, 3, "UpdateFlow does not take tags: kept");
  cr_expect_str_eq(tag_value(&d, "cost/center"), "42");
  /* No description in the update: the flow has none after it. */
  u = update_req("changed", T(EVENT));
  u->description = NULL;
  updated(u);
  cr_expect_null(described("changed").description);
}

Test(update, keeps_the_status_except_on_demand_is_active) {
  created(minimal("sched", T(SCHEDULED)));
  start("sched");
  cr_expect_eq(updated(update_req("sched", T(SCHEDULED))), S(ACTIVE),
               "an Active scheduled flow stays Active");
  cr_expect_eq(described("sched").flow_status, S(ACTIVE));
  stop("sched");
  cr_expect_eq(updated(update_req("sched", T(SCHEDULED))), S(SUSPENDED));
  cr_expect_eq(described("sched").flow_status, S(SUSPENDED));
  created(minimal("draft", T(EVENT)));
  cr_expect_eq(updated(update_req("draft", T(EVENT))), S(DRAFT));
  cr_expect_eq(updated(update_req("draft", T(ON_DEMAND))), S(ACTIVE),
               "a flow made on-demand becomes Active");
  cr_expect_eq(described("draft").flow_status, S(ACTIVE));
  created(minimal("od", T(ON_DEMAND)));
  cr_expect_eq(updated(update_req("od", T(ON_DEMAND))), S(ACTIVE), "on-demand stays Active");
  cr_expect_eq(updated(update_req("od", T(SCHEDULED))), S(ACTIVE),
               "an Active flow made scheduled stays Active");
  test_seed_flow(svc, "errored", T(EVENT), S(ERRORED));
  cr_expect_eq(updated(update_req("errored", T(EVENT))), S(ERRORED));
}

Test(update, moves_last_updated_not_created) {
  created(full("timed"));
  fake_now = T0 + 2 * HOUR_MS + 5;
  static const char role[] = "arn:aws:iam::000000000000:user/bob";
  Appflow__V1__UpdateFlowResponse resp = APPFLOW__V1__UPDATE_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(call_as(role, "UpdateFlow", &update_req("timed", T(EVENT))->base, &resp.base, &err),
               AF_OK, "%s", err.message);
  Appflow__V1__DescribeFlowResponse d = described("timed");
  expect_time(d.created_at, T0, "createdAt");
  expect_time(d.last_updated_at, T0 + 2 * HOUR_MS + 5, "lastUpdatedAt");
  cr_expect_str_eq(d.created_by, ROOT);
  cr_expect_str_eq(d.last_updated_by, role);
}

Test(update, schema_version_counts_changes_of_the_tasks) {
  created(minimal("versions", T(EVENT)));
  cr_expect_eq(schema_version("versions"), 1);
  Appflow__V1__UpdateFlowRequest *u =
      request_from_jsonf(&af_model_UpdateFlowRequest, &arena,
                         "{\"flowName\": \"versions\", \"description\": \"same tasks\", "
                         "\"triggerConfig\": %s, " SF_TO_S3 "}",
                         trigger_json(T(SCHEDULED)));
  updated(u);
  cr_expect_eq(schema_version("versions"), 1, "same tasks: same version");
  cr_expect_eq(described("versions").trigger_config->trigger_type, T(SCHEDULED));
  updated(update_req("versions", T(EVENT)));
  cr_expect_eq(schema_version("versions"), 2, "new tasks");
  updated(update_req("versions", T(ON_DEMAND)));
  cr_expect_eq(schema_version("versions"), 2, "the same new tasks again");
  u = update_req("versions", T(EVENT));
  u->tasks[1]->source_fields[0] = "b";
  updated(u);
  cr_expect_eq(schema_version("versions"), 3, "a task changed");
}

Test(update, a_retry_with_the_same_token_returns_the_first_result) {
  created(minimal("retried", T(EVENT)));
  Appflow__V1__UpdateFlowRequest *u = update_req("retried", T(ON_DEMAND));
  u->client_token = "u-1";
  cr_assert_eq(updated(u), S(ACTIVE));
  fake_now = T0 + HOUR_MS;
  Appflow__V1__UpdateFlowRequest *other = update_req("retried", T(EVENT));
  updated(other); /* an update without a token: the flow moves on */
  cr_expect_eq(described("retried").trigger_config->trigger_type, T(EVENT));
  fake_now = T0 + 2 * HOUR_MS;
  u = update_req("retried", T(ON_DEMAND));
  u->client_token = "u-1";
  cr_expect_eq(updated(u), S(ACTIVE), "the first result");
  Appflow__V1__DescribeFlowResponse d = described("retried");
  cr_expect_eq(d.trigger_config->trigger_type, T(EVENT), "a retry changes nothing");
  expect_time(d.last_updated_at, T0 + HOUR_MS, "lastUpdatedAt");
  /* The same token with other parameters. */
  u = update_req("retried", T(ON_DEMAND));
  u->client_token = "u-1";
  u->description = "Something else";
  Appflow__V1__UpdateFlowResponse resp;
  af_error err;
  cr_expect_eq(update(u, &resp, &err), AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message,
                   "Conflict executing request: clientToken was already used to update flow "
                   "retried with other parameters: use a new clientToken for a different request");
  /* Eight hours on, the token is forgotten: the same request updates again. */
  fake_now = T0 + 8 * HOUR_MS;
  u = update_req("retried", T(ON_DEMAND));
  u->client_token = "u-1";
  updated(u);
  cr_expect_eq(described("retried").trigger_config->trigger_type, T(ON_DEMAND));
}

Test(update, refuses_missing_and_retired_flows) {
  Appflow__V1__UpdateFlowResponse resp;
  af_error err;
  cr_expect_eq(update(update_req("nope", T(EVENT)), &resp, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_str_eq(err.message, "Flow nope does not exist");
  test_seed_flow(svc, "old", T(SCHEDULED), S(DEPRECATED));
  cr_expect_eq(update(update_req("old", T(SCHEDULED)), &resp, &err), AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message, "Flow old is in Deprecated state and cannot be updated");
  test_seed_flow(svc, "gone", T(EVENT), S(DELETED));
  cr_expect_eq(update(update_req("gone", T(EVENT)), &resp, &err), AF_ERR_CONFLICT);
  cr_expect_eq(described("old").flow_status, S(DEPRECATED));
  cr_expect_null(described("old").source_flow_config, "not updated");
}

Test(update, applies_the_models_checks_and_appflows_rules) {
  created(minimal("checked", T(EVENT)));
  Appflow__V1__UpdateFlowResponse resp;
  af_error err;
  Appflow__V1__UpdateFlowRequest *u = update_req("checked", T(EVENT));
  Appflow__V1__DestinationFlowConfig *two[] = {u->destination_flow_config_list[0],
                                               u->destination_flow_config_list[0]};
  u->n_destination_flow_config_list = 2;
  u->destination_flow_config_list = two;
  cr_expect_eq(update(u, &resp, &err), AF_ERR_VALIDATION, "two destinations");
  cr_expect_str_eq(err.message, "Update Flow request failed: [Destination Validation Error: "
                                "'destinationFlowConfigList' must hold exactly one destination; "
                                "it holds 2]");
  u = update_req("checked", T(EVENT));
  u->source_flow_config->source_connector_properties->s3->bucket_name = "ab";
  cr_expect_eq(update(u, &resp, &err), AF_ERR_VALIDATION, "a short bucket name");
  cr_expect_str_eq(err.message,
                   V1 "Value 'ab' at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' "
                      "failed to satisfy constraint: Member must have length greater than or "
                      "equal to 3");
  u = update_req("checked", T(EVENT));
  u->trigger_config = NULL;
  cr_expect_eq(update(u, &resp, &err), AF_ERR_VALIDATION, "no trigger");
  cr_expect_str_eq(
      err.message,
      V1 "Value null at 'triggerConfig' failed to satisfy constraint: Member must not be null");
  u = update_req("checked", T(EVENT));
  u->n_tasks = 1; /* the Map_all task alone */
  updated(u);
  u = update_req("checked", T(EVENT));
  u->tasks[0] = u->tasks[1];
  u->tasks[1]->connector_operator->s3 =
      APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_EQUAL_TO;
  cr_expect_eq(update(u, &resp, &err), AF_ERR_VALIDATION, "no projection task");
  cr_expect(strstr(err.message, "You must specify a projection task or a MAP_ALL task") != NULL,
            "%s", err.message);
  cr_expect_eq(described("checked").n_tasks, 1, "the refused updates changed nothing");
}

/* An update whose tasks are the flow's own keeps the old kmsArn and tags without unpacking
 * the old definition (flows/update.c splices them into the request's, packed): the bytes must
 * be the ones CreateFlow stores for the same members. A CreateFlow retry compares them: after
 * an update that changed nothing, the retry still gets the first result. */
Test(update, stores_the_definition_createflow_would) {
  Appflow__V1__CreateFlowRequest *req = full("spliced");
  req->client_token = "create-1";
  created(req);
  Appflow__V1__UpdateFlowRequest u = APPFLOW__V1__UPDATE_FLOW_REQUEST__INIT;
  u.flow_name = req->flow_name;
  COPY_DEFINITION(u, req);
  updated(&u);
  cr_expect_eq(schema_version("spliced"), 1, "the same tasks");
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(req, &resp, &err), AF_OK, "the retry: %s", err.message);
  Appflow__V1__DescribeFlowResponse d = described("spliced");
  cr_expect_str_eq(d.kms_arn, req->kms_arn);
  cr_expect_eq(d.n_tags, 3);
  u.description = "changed";
  updated(&u);
  cr_expect_eq(create(req, &resp, &err), AF_ERR_CONFLICT, "the flow is another now");
  cr_expect_str_eq(described("spliced").description, "changed");
  cr_expect_eq(described("spliced").n_tags, 3);
}

Test(update, a_seeded_flow_gets_a_definition) {
  test_seed_flow(svc, "seeded", T(SCHEDULED), S(ACTIVE));
  cr_expect_eq(updated(update_req("seeded", T(SCHEDULED))), S(ACTIVE));
  Appflow__V1__DescribeFlowResponse d = described("seeded");
  cr_assert_not_null(d.source_flow_config);
  cr_expect_eq(d.source_flow_config->connector_type,
               APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3);
  cr_expect_eq(d.n_tasks, 2);
  cr_expect_eq(d.schema_version, 1);
}
