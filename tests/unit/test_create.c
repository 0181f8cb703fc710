/* src/flows/create.c: CreateFlow (validation, first status, ARN, name conflicts, clientToken
 * retries within 8 hours, running out of memory) and DescribeFlow (every member given back as
 * created, timestamps from the service's clock, seeded flows, missing flows), on the store
 * AF_TEST_STORE names (store_under_test.h). */
#include "flows/internal.h"
#include "flows/service.h"
#include "flows/validate.h"

#include "budget_alloc.h"
#include "store_under_test.h"
#include "struct_build.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

/* 2023-11-14T22:13:20.123Z: milliseconds, so a Timestamp's nanos are checked too. */
#define T0 1700000000123LL
#define HOUR_MS (3600LL * 1000)

static int64_t fake_now;
static int64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now;
}

static af_flows *svc;
static af_store *store;
static af_arena arena; /* requests and responses of one test */

static void setup(void) {
  fake_now = T0;
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}}, &store);
  af_arena_init(&arena);
  build_arena = &arena;
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
}

TestSuite(create, .init = setup, .fini = teardown);

/* ---- building requests in the arena ---- */

static Google__Protobuf__Timestamp *timestamp(int64_t seconds) {
  Google__Protobuf__Timestamp *t = build_alloc(sizeof *t);
  google__protobuf__timestamp__init(t);
  t->seconds = seconds;
  return t;
}

static Appflow__V1__CreateFlowRequest__TagsEntry **tags_of(size_t n, const char *const *kv) {
  Appflow__V1__CreateFlowRequest__TagsEntry **v = build_alloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    v[i] = build_alloc(sizeof *v[i]);
    appflow__v1__create_flow_request__tags_entry__init(v[i]);
    v[i]->key = (char *)kv[2 * i];
    v[i]->value = (char *)kv[2 * i + 1];
  }
  return v;
}

/* Salesforce to S3 with one task: the smallest valid request with a trigger of this type. */
static Appflow__V1__CreateFlowRequest *minimal(const char *name, Appflow__V1__TriggerType trigger) {
  Appflow__V1__CreateFlowRequest *r = build_alloc(sizeof *r);
  appflow__v1__create_flow_request__init(r);
  r->flow_name = (char *)name;
  r->trigger_config = build_alloc(sizeof *r->trigger_config);
  appflow__v1__trigger_config__init(r->trigger_config);
  r->trigger_config->trigger_type = trigger;
  if (trigger == T(SCHEDULED)) {
    Appflow__V1__TriggerProperties *tp = build_alloc(sizeof *tp);
    appflow__v1__trigger_properties__init(tp);
    tp->scheduled = build_alloc(sizeof *tp->scheduled);
    appflow__v1__scheduled_trigger_properties__init(tp->scheduled);
    tp->scheduled->schedule_expression = "rate(1hours)";
    r->trigger_config->trigger_properties = tp;
  }
  r->source_flow_config =
      obj("connectorType", str("Salesforce"), "sourceConnectorProperties",
          objv(obj("Salesforce", objv(obj("object", str("Account"), NULL)), NULL)), NULL);
  r->n_destination_flow_config_list = 1;
  r->destination_flow_config_list = build_alloc(sizeof(Google__Protobuf__Struct *));
  r->destination_flow_config_list[0] =
      obj("connectorType", str("S3"), "destinationConnectorProperties",
          objv(obj("S3", objv(obj("bucketName", str("bucket"), NULL)), NULL)), NULL);
  r->n_tasks = 1;
  r->tasks = build_alloc(sizeof(Google__Protobuf__Struct *));
  r->tasks[0] = obj("sourceFields", list(str("Id"), NULL), "taskType", str("Map"), NULL);
  return r;
}

/* Every member CreateFlow takes, set to something other than its default. */
static Appflow__V1__CreateFlowRequest *full(const char *name) {
  Appflow__V1__CreateFlowRequest *r = minimal(name, T(SCHEDULED));
  r->description = "Accounts to S3, nightly.";
  r->kms_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  Appflow__V1__ScheduledTriggerProperties *sp = r->trigger_config->trigger_properties->scheduled;
  sp->schedule_expression = "cron(0 12 * * ? *)";
  sp->data_pull_mode = APPFLOW__V1__DATA_PULL_MODE__DATA_PULL_MODE_INCREMENTAL;
  sp->schedule_start_time = timestamp(1800000000);
  sp->schedule_end_time = timestamp(1900000000);
  sp->first_execution_from = timestamp(1700000000);
  sp->timezone = "America/New_York";
  sp->schedule_offset = 300;
  sp->flow_error_deactivation_threshold = 5;
  r->source_flow_config =
      obj("connectorType", str("Salesforce"), "connectorProfileName", str("sf-prod"), "apiVersion",
          str("58.0"), "sourceConnectorProperties",
          objv(obj("Salesforce",
                   objv(obj("object", str("Account"), "enableDynamicFieldUpdate", boolean(false),
                            "includeDeletedRecords", boolean(true), NULL)),
                   NULL)),
          "incrementalPullConfig",
          objv(obj("datetimeTypeFieldName", str("LastModifiedDate"), NULL)), NULL);
  r->n_destination_flow_config_list = 2;
  r->destination_flow_config_list = build_alloc(2 * sizeof(Google__Protobuf__Struct *));
  r->destination_flow_config_list[0] = obj(
      "connectorType", str("S3"), "destinationConnectorProperties",
      objv(obj("S3",
               objv(obj("bucketName", str("bucket"), "bucketPrefix", str("accounts"),
                        "s3OutputFormatConfig", objv(obj("fileType", str("JSON"), NULL)), NULL)),
               NULL)),
      NULL);
  r->destination_flow_config_list[1] =
      obj("connectorType", str("EventBridge"), "destinationConnectorProperties",
          objv(obj("EventBridge", objv(obj("object", str("bus"), NULL)), NULL)), NULL);
  r->n_tasks = 2;
  r->tasks = build_alloc(2 * sizeof(Google__Protobuf__Struct *));
  r->tasks[0] = obj("sourceFields", list(str("Id"), str("Name"), NULL), "connectorOperator",
                    objv(obj("Salesforce", str("PROJECTION"), NULL)), "taskType", str("Filter"),
                    "taskProperties", objv(obj(NULL)), NULL);
  r->tasks[1] =
      obj("sourceFields", list(str("Id"), NULL), "destinationField", str("Id"), "taskType",
          str("Map"), "taskProperties",
          objv(obj("DESTINATION_DATA_TYPE", str("id"), "SOURCE_DATA_TYPE", str("id"), NULL)),
          "limit", num(12.5), NULL);
  r->metadata_catalog_config =
      obj("glueDataCatalog",
          objv(obj("roleArn", str("arn:aws:iam::123456789012:role/glue"), "databaseName", str("db"),
                   "tablePrefix", str("appflow"), NULL)),
          NULL);
  static const char *const kv[] = {"team", "data", "env", "prod", "cost/center", "42"};
  r->n_tags = 3;
  r->tags = tags_of(3, kv);
  r->client_token = "token-1";
  return r;
}

/* ---- calling the service ---- */

static af_err create(const Appflow__V1__CreateFlowRequest *req,
                     Appflow__V1__CreateFlowResponse *resp, af_error *err) {
  appflow__v1__create_flow_response__init(resp);
  return af_flows_create_flow(svc, req, resp, &arena, err);
}

/* Creates req, which must succeed; returns the status it reported. */
static Appflow__V1__FlowStatus created(const Appflow__V1__CreateFlowRequest *req) {
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_assert_eq(create(req, &resp, &err), AF_OK, "%s: %s", req->flow_name, err.message);
  return resp.flow_status;
}

static af_err describe(const char *name, Appflow__V1__DescribeFlowResponse *resp, af_error *err) {
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  appflow__v1__describe_flow_response__init(resp);
  return af_flows_describe_flow(svc, &req, resp, &arena, err);
}

static Appflow__V1__DescribeFlowResponse described(const char *name) {
  Appflow__V1__DescribeFlowResponse resp;
  af_error err;
  cr_assert_eq(describe(name, &resp, &err), AF_OK, "%s: %s", name, err.message);
  return resp;
}

static Appflow__V1__StartFlowResponse start(const char *name, const char *token) {
  Appflow__V1__StartFlowRequest req = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  req.client_token = (char *)(token ? token : "");
  Appflow__V1__StartFlowResponse resp = APPFLOW__V1__START_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(af_flows_start_flow(svc, &req, &resp, &arena, &err), AF_OK, "%s", err.message);
  return resp;
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
  uint8_t *a = build_alloc(n + 1), *b = build_alloc(m + 1);
  protobuf_c_message_pack(got, a);
  protobuf_c_message_pack(want, b);
  cr_expect(memcmp(a, b, n) == 0, "%s differs", what);
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

/* ---- CreateFlow ---- */

Test(create, first_status_depends_on_the_trigger) {
  cr_expect_eq(created(minimal("sched", T(SCHEDULED))), S(DRAFT));
  cr_expect_eq(created(minimal("event", T(EVENT))), S(DRAFT));
  cr_expect_eq(created(minimal("ondemand", T(ON_DEMAND))), S(ACTIVE));
  cr_expect_eq(described("sched").flow_status, S(DRAFT));
  cr_expect_eq(described("event").flow_status, S(DRAFT));
  cr_expect_eq(described("ondemand").flow_status, S(ACTIVE));
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
  cr_assert_eq(create(minimal("f1", T(EVENT)), &resp, &err), AF_OK);
  cr_expect_str_eq(resp.flow_arn, "arn:aws:appflow:eu-west-2:123456789012:flow/f1");
}

Test(create, describe_gives_back_the_definition) {
  Appflow__V1__CreateFlowRequest *req = full("round_trip");
  cr_expect_eq(created(req), S(DRAFT));
  Appflow__V1__DescribeFlowResponse d = described("round_trip");
  cr_expect_str_eq(d.flow_name, "round_trip");
  cr_expect_str_eq(d.flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/round_trip");
  cr_expect_str_eq(d.description, req->description);
  cr_expect_str_eq(d.kms_arn, req->kms_arn);
  expect_same(&d.trigger_config->base, &req->trigger_config->base, "triggerConfig");
  expect_same(&d.source_flow_config->base, &req->source_flow_config->base, "sourceFlowConfig");
  cr_assert_eq(d.n_destination_flow_config_list, 2);
  for (size_t i = 0; i < 2; i++)
    expect_same(&d.destination_flow_config_list[i]->base,
                &req->destination_flow_config_list[i]->base, "destinationFlowConfigList");
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
}

Test(create, describe_members_field_by_field) {
  created(full("fields"));
  Appflow__V1__DescribeFlowResponse d = described("fields");
  const Appflow__V1__TriggerConfig *tc = d.trigger_config;
  cr_assert_not_null(tc);
  cr_expect_eq(tc->trigger_type, T(SCHEDULED));
  cr_assert_not_null(tc->trigger_properties);
  const Appflow__V1__ScheduledTriggerProperties *sp = tc->trigger_properties->scheduled;
  cr_assert_not_null(sp);
  cr_expect_str_eq(sp->schedule_expression, "cron(0 12 * * ? *)");
  cr_expect_eq(sp->data_pull_mode, APPFLOW__V1__DATA_PULL_MODE__DATA_PULL_MODE_INCREMENTAL);
  cr_assert_not_null(sp->schedule_start_time);
  cr_expect_eq(sp->schedule_start_time->seconds, 1800000000);
  cr_assert_not_null(sp->schedule_end_time);
  cr_expect_eq(sp->schedule_end_time->seconds, 1900000000);
  cr_assert_not_null(sp->first_execution_from);
  cr_expect_eq(sp->first_execution_from->seconds, 1700000000);
  cr_expect_str_eq(sp->timezone, "America/New_York");
  cr_expect_eq(sp->schedule_offset, 300);
  cr_expect_eq(sp->flow_error_deactivation_threshold, 5);
  cr_expect_str_eq(af_struct_string(d.source_flow_config, "connectorType"), "Salesforce");
  cr_expect_str_eq(af_struct_string(d.source_flow_config, "connectorProfileName"), "sf-prod");
  cr_expect_str_eq(af_struct_string(d.destination_flow_config_list[1], "connectorType"),
                   "EventBridge");
  cr_expect_str_eq(af_struct_string(d.tasks[0], "taskType"), "Filter");
  const Google__Protobuf__Struct *glue = NULL;
  for (size_t i = 0; i < d.metadata_catalog_config->n_fields; i++) {
    if (strcmp(d.metadata_catalog_config->fields[i]->key, "glueDataCatalog") == 0)
      glue = d.metadata_catalog_config->fields[i]->value->struct_value;
  }
  cr_assert_not_null(glue);
  cr_expect_str_eq(af_struct_string(glue, "databaseName"), "db");
}

Test(create, minimal_flow_describes_without_optional_members) {
  created(minimal("plain", T(EVENT)));
  Appflow__V1__DescribeFlowResponse d = described("plain");
  cr_expect(d.description == NULL || d.description[0] == '\0');
  cr_expect(d.kms_arn == NULL || d.kms_arn[0] == '\0');
  cr_expect_null(d.metadata_catalog_config);
  cr_expect_eq(d.n_tags, 0);
  cr_expect_eq(d.trigger_config->trigger_type, T(EVENT));
  cr_expect_null(d.trigger_config->trigger_properties);
}

Test(create, timestamps_come_from_the_clock) {
  created(full("timed"));
  Appflow__V1__DescribeFlowResponse d = described("timed");
  expect_time(d.created_at, T0, "createdAt");
  expect_time(d.last_updated_at, T0, "lastUpdatedAt");
  fake_now = T0 + 5 * HOUR_MS + 7;
  start("timed", NULL); /* Draft -> Active: an update */
  d = described("timed");
  expect_time(d.created_at, T0, "createdAt after a start");
  expect_time(d.last_updated_at, T0 + 5 * HOUR_MS + 7, "lastUpdatedAt after a start");
}

Test(create, on_demand_run_shows_in_describe) {
  created(minimal("od", T(ON_DEMAND)));
  fake_now = T0 + 60000;
  Appflow__V1__StartFlowResponse s = start("od", NULL);
  cr_assert_not_null(s.execution_id);
  Appflow__V1__DescribeFlowResponse d = described("od");
  cr_assert_not_null(d.last_run_execution_details);
  cr_expect_eq(d.last_run_execution_details->most_recent_execution_status,
               APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL);
  expect_time(d.last_run_execution_details->most_recent_execution_time, T0 + 60000,
              "mostRecentExecutionTime");
  cr_assert_not_null(d.last_run_execution_details->most_recent_execution_message);
  cr_expect(strstr(d.last_run_execution_details->most_recent_execution_message, s.execution_id) !=
                NULL,
            "%s", d.last_run_execution_details->most_recent_execution_message);
}

Test(create, taken_name) {
  created(minimal("taken", T(SCHEDULED)));
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(minimal("taken", T(SCHEDULED)), &resp, &err), AF_ERR_NAME_TAKEN);
  cr_expect(strstr(err.message, "taken") != NULL, "%s", err.message);
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
  start("retried", NULL);
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
 * same google.protobuf.Struct fields, in another order: it is still the same request. */
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
  Google__Protobuf__Struct *src = retry->source_flow_config;
  Google__Protobuf__Struct__FieldsEntry *f = src->fields[0];
  src->fields[0] = src->fields[src->n_fields - 1];
  src->fields[src->n_fields - 1] = f;
  cr_expect_eq(create(retry, &resp, &err), AF_OK, "sourceFlowConfig reordered: %s", err.message);
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
  cr_expect(strstr(err.message, "clientToken") != NULL, "%s", err.message);
  other = full("once");
  other->tags[0]->value = "ops";
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT, "tags are parameters too");
  other = full("once");
  other->trigger_config->trigger_properties->scheduled->schedule_offset = 301;
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT);
  other = full("once");
  other->tasks[1] = other->tasks[0];
  cr_expect_eq(create(other, &resp, &err), AF_ERR_CONFLICT);
  other = full("once");
  other->client_token = "token-2";
  cr_expect_eq(create(other, &resp, &err), AF_ERR_NAME_TAKEN, "another token: the name is taken");
  cr_expect_str_eq(described("once").description, "Accounts to S3, nightly.");
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
  Appflow__V1__DeleteFlowRequest del = APPFLOW__V1__DELETE_FLOW_REQUEST__INIT;
  del.flow_name = "reuse";
  Appflow__V1__DeleteFlowResponse dresp = APPFLOW__V1__DELETE_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(af_flows_delete_flow(svc, &del, &dresp, &arena, &err), AF_OK, "%s", err.message);
  Appflow__V1__DescribeFlowResponse d;
  cr_expect_eq(describe("reuse", &d, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(created(minimal("reuse", T(ON_DEMAND))), S(ACTIVE));
  cr_expect_eq(described("reuse").trigger_config->trigger_type, T(ON_DEMAND));
}

Test(create, a_tag_key_given_twice_keeps_its_last_value) {
  Appflow__V1__CreateFlowRequest *req = minimal("dup", T(EVENT));
  static const char *const kv[] = {"k", "first", "other", "x", "k", "last"};
  req->n_tags = 3;
  req->tags = tags_of(3, kv);
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
  cr_expect_eq(d.trigger_config->trigger_type, T(SCHEDULED));
  cr_expect_null(d.trigger_config->trigger_properties);
  cr_expect_null(d.source_flow_config);
  cr_expect_eq(d.n_destination_flow_config_list, 0);
  cr_expect_eq(d.n_tasks, 0);
  cr_expect(d.kms_arn == NULL || d.kms_arn[0] == '\0');
  cr_expect_null(d.metadata_catalog_config);
  cr_expect_str_eq(d.flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/seeded");
}

Test(create, describe_missing_or_invalid) {
  Appflow__V1__DescribeFlowResponse d;
  af_error err;
  cr_expect_eq(describe("nope", &d, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect(strstr(err.message, "nope") != NULL, "%s", err.message);
  cr_expect_eq(describe("bad name", &d, &err), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "'flowName'") != NULL, "%s", err.message);
  cr_expect_eq(describe("", &d, &err), AF_ERR_VALIDATION);
  cr_expect_eq(describe(NULL, &d, &err), AF_ERR_VALIDATION);
}

/* ---- what CreateFlow refuses (and then adds nothing) ---- */

static void expect_refused(const Appflow__V1__CreateFlowRequest *req, const char *member,
                           const char *what) {
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_expect_eq(create(req, &resp, &err), AF_ERR_VALIDATION, "%s accepted", what);
  char at[200];
  snprintf(at, sizeof at, "'%s'", member);
  cr_expect(strstr(err.message, at) != NULL, "%s: '%s' does not name %s", what, err.message,
            member);
  cr_expect_eq(af_flows_count(svc), 0, "%s added a flow", what);
}

Test(create, refuses_bad_members) {
  Appflow__V1__CreateFlowRequest *r;
  expect_refused(minimal("x", T(EVENT)), "flowName", "a short name");
  expect_refused(minimal("", T(EVENT)), "flowName", "no name");
  r = minimal("f", T(EVENT));
  r->flow_name = NULL;
  expect_refused(r, "flowName", "a NULL name");
  r = minimal("ff", T(EVENT));
  r->description = "a:b";
  expect_refused(r, "description", "':' in the description");
  r = minimal("ff", T(EVENT));
  r->kms_arn = "arn:aws:kms:us-east-1:key/abcdefghijk";
  expect_refused(r, "kmsArn", "an ARN without an account");
  r = minimal("ff", T(EVENT));
  r->trigger_config = NULL;
  expect_refused(r, "triggerConfig", "no trigger");
  r = minimal("ff", T(SCHEDULED));
  r->trigger_config->trigger_properties->scheduled->schedule_expression = "every hour";
  expect_refused(r, "triggerConfig.triggerProperties.Scheduled.scheduleExpression",
                 "a bad schedule");
  r = minimal("ff", T(EVENT));
  r->source_flow_config = NULL;
  expect_refused(r, "sourceFlowConfig", "no source");
  r = minimal("ff", T(EVENT));
  r->source_flow_config =
      obj("connectorType", str("Kafka"), "sourceConnectorProperties", objv(obj(NULL)), NULL);
  expect_refused(r, "sourceFlowConfig.connectorType", "an unknown connector");
  r = minimal("ff", T(EVENT));
  r->n_destination_flow_config_list = 0;
  expect_refused(r, "destinationFlowConfigList", "no destination");
  r = minimal("ff", T(EVENT));
  Google__Protobuf__Struct *two[] = {r->destination_flow_config_list[0],
                                     obj("connectorType", str("S3"), NULL)};
  r->n_destination_flow_config_list = 2;
  r->destination_flow_config_list = two;
  expect_refused(r, "destinationFlowConfigList.2.destinationConnectorProperties",
                 "a destination without properties");
  r = minimal("ff", T(EVENT));
  r->n_tasks = 0;
  expect_refused(r, "tasks", "no task");
  r = minimal("ff", T(EVENT));
  r->tasks[0] = obj("sourceFields", list(NULL), NULL);
  expect_refused(r, "tasks.1.taskType", "a task without a type");
  r = minimal("ff", T(EVENT));
  r->client_token = "a\tb";
  expect_refused(r, "clientToken", "a tab in the token");
  static const char *const aws_key[] = {"aws:owner", "me"};
  r = minimal("ff", T(EVENT));
  r->n_tags = 1;
  r->tags = tags_of(1, aws_key);
  expect_refused(r, "tags", "an aws: tag");
  static const char *const bad_value[] = {"team", "a#b"};
  r = minimal("ff", T(EVENT));
  r->n_tags = 1;
  r->tags = tags_of(1, bad_value);
  expect_refused(r, "tags.team", "'#' in a tag value");
}

Test(create, at_most_50_tags) {
  static char keys[51][8];
  const char *kv[102];
  for (int i = 0; i < 51; i++) {
    snprintf(keys[i], sizeof keys[i], "k%c%c", 'a' + i / 26, 'a' + i % 26);
    kv[2 * i] = keys[i];
    kv[2 * i + 1] = "v";
  }
  Appflow__V1__CreateFlowRequest *r = minimal("many", T(EVENT));
  r->n_tags = 51;
  r->tags = tags_of(51, kv);
  expect_refused(r, "tags", "51 tags");
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
  Appflow__V1__CreateFlowResponse resp = APPFLOW__V1__CREATE_FLOW_RESPONSE__INIT;
  af_error err;
  cr_expect_eq(af_flows_create_flow(svc, req, &resp, &full_arena, &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(af_flows_count(svc), 0, "no memory for the definition: no flow");
  created(req);
  Appflow__V1__DescribeFlowRequest dreq = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  dreq.flow_name = "arena";
  Appflow__V1__DescribeFlowResponse d = APPFLOW__V1__DESCRIBE_FLOW_RESPONSE__INIT;
  cr_expect_eq(af_flows_describe_flow(svc, &dreq, &d, &full_arena, &err), AF_ERR_INTERNAL_SERVER);
  af_arena_destroy(&full_arena);
}
