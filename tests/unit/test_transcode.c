/* The AWS JSON transcoder (src/bridge/transcode.h) against the real contract: the generated
 * protobuf-c messages of proto/appflow/v1/appflow.proto and the AWS model's tables. */
#include "bridge/transcode.h"

#include "appflow/v1/appflow.pb-c.h"
#include "appflow_model.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static af_arena arena;

static void setup(void) { af_arena_init(&arena); }
static void teardown(void) { af_arena_destroy(&arena); }

TestSuite(transcode, .init = setup, .fini = teardown);

static void *parse_len(const af_model_struct *s, const char *json, size_t len) {
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  af_err rc = af_bridge_json_to_message(s, json, len, &arena, &m, &err);
  cr_assert_eq(rc, AF_OK, "parsing %s as %s: %s", json, s->name, err.message);
  cr_assert_not_null(m);
  cr_assert_eq(m->descriptor, s->descriptor);
  return m;
}

static void *parse(const af_model_struct *s, const char *json) {
  return parse_len(s, json, strlen(json));
}

static const char *write_json(const af_model_struct *s, const void *m) {
  af_error err = {0};
  char *out = NULL;
  size_t len = 0;
  af_err rc = af_bridge_message_to_json(s, m, &arena, &out, &len, &err);
  cr_assert_eq(rc, AF_OK, "writing %s: %s", s->name, err.message);
  cr_assert_not_null(out);
  cr_assert_eq(strlen(out), len);
  return out;
}

/* json read as s and written back must be want. */
static void round_trip(const af_model_struct *s, const char *json, const char *want) {
  cr_expect_str_eq(write_json(s, parse(s, json)), want, "%s", json);
}

/* Writing m must fail with AF_ERR_INTERNAL_SERVER and a message holding want. */
static void write_fails(const af_model_struct *s, const void *m, const char *want) {
  af_error err = {0};
  char *out = (char *)"sentinel";
  size_t len = 99;
  cr_expect_eq(af_bridge_message_to_json(s, m, &arena, &out, &len, &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(err.code, AF_ERR_INTERNAL_SERVER);
  cr_expect_null(out);
  cr_expect_eq(len, 0);
  cr_expect(strstr(err.message, want) != NULL, "message '%s' lacks '%s'", err.message, want);
}

/* Parsing json as s must fail with code; exact: the message must equal want, else hold it.
 * Returns the message (static). */
static const char *fails_as(const af_model_struct *s, const char *json, af_err code,
                            const char *want, int exact) {
  static af_error err;
  memset(&err, 0, sizeof err);
  ProtobufCMessage sentinel, *m = &sentinel;
  af_err rc = af_bridge_json_to_message(s, json, strlen(json), &arena, &m, &err);
  cr_expect_eq(rc, code, "%s: code %d, want %d (%s)", json, rc, code, err.message);
  cr_expect_eq(err.code, code, "%s", json);
  cr_expect_null(m, "%s", json);
  if (want != NULL && exact)
    cr_expect_str_eq(err.message, want, "%s", json);
  else if (want != NULL)
    cr_expect(strstr(err.message, want) != NULL, "%s: message '%s' lacks '%s'", json, err.message,
              want);
  return err.message;
}

static void malformed(const af_model_struct *s, const char *json, const char *want) {
  fails_as(s, json, AF_ERR_SERIALIZATION, want, 0);
}

#define TASK_TYPES                                                                                 \
  "[Arithmetic, Filter, Map, Map_all, Mask, Merge, Passthrough, Truncate, "                        \
  "Validate, Partition]"

/* ---- names, enums, nesting ---- */

static const char stop_flow_response_json[] =
    "{\"flowArn\":\"arn:aws:appflow:us-east-1:000000000000:flow/x\",\"flowStatus\":\"Suspended\"}";

Test(transcode, stop_flow_response_golden) {
  Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  r.flow_arn = "arn:aws:appflow:us-east-1:000000000000:flow/x";
  r.has_flow_status = 1;
  r.flow_status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED;
  cr_expect_str_eq(write_json(&af_model_StopFlowResponse, &r), stop_flow_response_json);
  Appflow__V1__StopFlowResponse *back = parse(&af_model_StopFlowResponse, stop_flow_response_json);
  cr_expect_str_eq(back->flow_arn, r.flow_arn);
  cr_expect(back->has_flow_status);
  cr_expect_eq(back->flow_status, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED);
}

Test(transcode, stop_flow_request) {
  Appflow__V1__StopFlowRequest *r = parse(&af_model_StopFlowRequest, "{\"flowName\":\"x\"}");
  cr_expect_str_eq(r->flow_name, "x");
  r = parse(&af_model_StopFlowRequest, "{\"flow_name\":\"snake\"}"); /* AWS names only */
  cr_expect_null(r->flow_name);
}

static const char create_flow_json[] =
    "{\"flowName\":\"f\",\"triggerConfig\":{\"triggerType\":\"Scheduled\",\"triggerProperties\":"
    "{\"Scheduled\":{\"scheduleExpression\":\"rate(1hours)\",\"dataPullMode\":\"Incremental\","
    "\"scheduleStartTime\":1700000000.25,\"scheduleOffset\":0}}},"
    "\"tags\":{\"team\":\"data\"},"
    "\"sourceFlowConfig\":{\"connectorType\":\"S3\",\"sourceConnectorProperties\":{\"S3\":"
    "{\"bucketName\":\"in\",\"bucketPrefix\":\"p\"}}},"
    "\"destinationFlowConfigList\":[{\"connectorType\":\"SAPOData\","
    "\"destinationConnectorProperties\":{\"SAPOData\":{\"objectPath\":\"/o\"}}}],"
    "\"tasks\":[{\"sourceFields\":[\"a\",\"b\"],\"connectorOperator\":{\"S3\":\"PROJECTION\"},"
    "\"taskType\":\"Filter\"},{\"sourceFields\":[],\"destinationField\":\"a\","
    "\"taskType\":\"Map_all\",\"taskProperties\":{\"DATA_TYPE\":\"string\"}}]}";

Test(transcode, create_flow_names_from_the_model) {
  Appflow__V1__CreateFlowRequest *r = parse(&af_model_CreateFlowRequest, create_flow_json);
  cr_expect_str_eq(r->flow_name, "f");
  cr_assert_not_null(r->trigger_config);
  cr_expect_eq(r->trigger_config->trigger_type, APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED);
  Appflow__V1__ScheduledTriggerProperties *sp = r->trigger_config->trigger_properties->scheduled;
  cr_assert_not_null(sp);
  cr_expect_str_eq(sp->schedule_expression, "rate(1hours)");
  cr_expect_eq(sp->data_pull_mode, APPFLOW__V1__DATA_PULL_MODE__DATA_PULL_MODE_INCREMENTAL);
  cr_expect_eq(sp->schedule_start_time->seconds, 1700000000);
  cr_expect_eq(sp->schedule_start_time->nanos, 250000000);
  cr_expect_eq(r->source_flow_config->connector_type,
               APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3);
  cr_expect_str_eq(r->source_flow_config->source_connector_properties->s3->bucket_name, "in");
  cr_assert_eq(r->n_destination_flow_config_list, 1);
  cr_expect_str_eq(
      r->destination_flow_config_list[0]->destination_connector_properties->sapo_data->object_path,
      "/o");
  cr_assert_eq(r->n_tasks, 2);
  cr_expect_eq(r->tasks[0]->n_source_fields, 2);
  cr_expect_str_eq(r->tasks[0]->source_fields[1], "b");
  cr_expect_eq(r->tasks[0]->task_type, APPFLOW__V1__TASK_TYPE__TASK_TYPE_FILTER);
  cr_expect_eq(r->tasks[1]->task_type, APPFLOW__V1__TASK_TYPE__TASK_TYPE_MAP_ALL);
  cr_expect_eq(r->tasks[1]->n_source_fields, 0);
  cr_assert_eq(r->tasks[1]->n_task_properties, 1);
  cr_expect_str_eq(r->tasks[1]->task_properties[0]->key, "DATA_TYPE");
  cr_expect_str_eq(r->tasks[1]->task_properties[0]->value, "string");
  cr_assert_eq(r->n_tags, 1);
  cr_expect_str_eq(r->tags[0]->key, "team");
  /* Written back in field-number order; the empty sourceFields list is left out. */
  cr_expect_str_eq(
      write_json(&af_model_CreateFlowRequest, r),
      "{\"flowName\":\"f\",\"triggerConfig\":{\"triggerType\":\"Scheduled\",\"triggerProperties\":"
      "{\"Scheduled\":{\"scheduleExpression\":\"rate(1hours)\",\"dataPullMode\":\"Incremental\","
      "\"scheduleStartTime\":1700000000.25,\"scheduleOffset\":0}}},"
      "\"tags\":{\"team\":\"data\"},"
      "\"sourceFlowConfig\":{\"connectorType\":\"S3\",\"sourceConnectorProperties\":{\"S3\":"
      "{\"bucketName\":\"in\",\"bucketPrefix\":\"p\"}}},"
      "\"destinationFlowConfigList\":[{\"connectorType\":\"SAPOData\","
      "\"destinationConnectorProperties\":{\"SAPOData\":{\"objectPath\":\"/o\"}}}],"
      "\"tasks\":[{\"sourceFields\":[\"a\",\"b\"],\"connectorOperator\":{\"S3\":\"PROJECTION\"},"
      "\"taskType\":\"Filter\"},{\"destinationField\":\"a\","
      "\"taskType\":\"Map_all\",\"taskProperties\":{\"DATA_TYPE\":\"string\"}}]}");
}

Test(transcode, enums_both_ways) {
  Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  r.has_flow_status = 1;
  for (int v = 1; v < (int)af_model_StopFlowResponse.members[1].shape->n_enum; v++) {
    const char *aws = af_model_StopFlowResponse.members[1].shape->enum_values[v];
    char want[128];
    snprintf(want, sizeof want, "{\"flowStatus\":\"%s\"}", aws);
    r.flow_status = (Appflow__V1__FlowStatus)v;
    cr_expect_str_eq(write_json(&af_model_StopFlowResponse, &r), want);
    Appflow__V1__StopFlowResponse *back = parse(&af_model_StopFlowResponse, want);
    cr_expect_eq(back->flow_status, v, "%s", aws);
  }
  /* Strings as the model spells them, not as proto names: case matters. */
  round_trip(&af_model_DescribeConnectorsResponse,
             "{\"connectorConfigurations\":{\"x\":{\"connectorType\":\"SAPOData\","
             "\"supportedTriggerTypes\":[\"OnDemand\",\"Event\"]}}}",
             "{\"connectorConfigurations\":{\"x\":{\"supportedTriggerTypes\":[\"OnDemand\","
             "\"Event\"],\"connectorType\":\"SAPOData\"}},\"connectors\":[]}");
}

Test(transcode, an_unknown_enum_string_is_a_validation_error) {
  fails_as(&af_model_StopFlowResponse, "{\"flowStatus\":\"suspended\"}", AF_ERR_VALIDATION,
           "1 validation error detected: Value 'suspended' at 'flowStatus' failed to satisfy "
           "constraint: Member must satisfy enum value set: [Active, Deprecated, Deleted, Draft, "
           "Errored, Suspended]",
           1);
  fails_as(&af_model_CreateFlowRequest, "{\"tasks\":[{\"taskType\":\"Bogus\"}]}", AF_ERR_VALIDATION,
           "1 validation error detected: Value 'Bogus' at 'tasks.1.member.taskType' failed to "
           "satisfy constraint: Member must satisfy enum value set: " TASK_TYPES,
           1);
  fails_as(&af_model_StopFlowResponse, "{\"flowStatus\":\"FLOW_STATUS_ACTIVE\"}", AF_ERR_VALIDATION,
           "Value 'FLOW_STATUS_ACTIVE' at 'flowStatus'", 0);
  fails_as(&af_model_StopFlowResponse, "{\"flowStatus\":\"\"}", AF_ERR_VALIDATION,
           "Value '' at 'flowStatus'", 0);
}

Test(transcode, every_bad_enum_is_reported_with_its_aws_path) {
  const char *msg = fails_as(
      &af_model_CreateFlowRequest,
      "{\"triggerConfig\":{\"triggerType\":\"Sometimes\"},"
      "\"sourceFlowConfig\":{\"connectorType\":\"Dropbox\"},"
      "\"destinationFlowConfigList\":[{\"connectorType\":\"S3\"},{\"connectorType\":\"Box\"}],"
      "\"tasks\":[{\"taskType\":\"Map\"},{\"taskType\":\"Bogus\"}]}",
      AF_ERR_VALIDATION, NULL, 0);
  const char *want[] = {
      "4 validation errors detected: Value 'Sometimes' at 'triggerConfig.triggerType' failed to "
      "satisfy constraint: Member must satisfy enum value set: [Scheduled, Event, OnDemand]; ",
      "Value 'Dropbox' at 'sourceFlowConfig.connectorType' failed to satisfy constraint: Member "
      "must satisfy enum value set: [",
      "; Value 'Box' at 'destinationFlowConfigList.2.member.connectorType' failed",
      "; Value 'Bogus' at 'tasks.2.member.taskType' failed to satisfy constraint: Member must "
      "satisfy enum value set: " TASK_TYPES};
  const char *at = msg;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *p = strstr(at, want[i]);
    cr_expect_not_null(p, "'%s' lacks, in order, '%s'", msg, want[i]);
    at = p != NULL ? p + strlen(want[i]) : at;
  }
  cr_expect_eq(strstr(msg, "'S3'"), NULL, "%s", msg);
  cr_expect_eq(msg[strlen(msg) - 1], ']');
}

/* Errors come in the model's order of the members, whatever the order of the keys; so does the
 * serialization error that stops the reading. */
Test(transcode, errors_follow_the_models_order_not_the_keys) {
  char *forward = strdup(fails_as(&af_model_CreateFlowRequest,
                                  "{\"triggerConfig\":{\"triggerType\":\"Sometimes\"},"
                                  "\"sourceFlowConfig\":{\"connectorType\":\"Dropbox\"},"
                                  "\"tasks\":[{\"taskType\":\"Bogus\"}]}",
                                  AF_ERR_VALIDATION, "3 validation errors detected", 0));
  fails_as(&af_model_CreateFlowRequest,
           "{\"tasks\":[{\"taskType\":\"Bogus\"}],"
           "\"sourceFlowConfig\":{\"connectorType\":\"Dropbox\"},"
           "\"triggerConfig\":{\"triggerType\":\"Sometimes\"}}",
           AF_ERR_VALIDATION, forward, 1);
  free(forward);
  malformed(&af_model_CreateFlowRequest, "{\"tasks\":7,\"triggerConfig\":7}",
            "member triggerConfig must be an object");
}

Test(transcode, bad_enums_in_maps_and_lists_of_enums) {
  fails_as(&af_model_DescribeConnectorsResponse,
           "{\"connectorConfigurations\":{\"S3\":{\"supportedTriggerTypes\":[\"Event\",\"Never\"],"
           "\"connectorType\":\"S3\"}}}",
           AF_ERR_VALIDATION,
           "1 validation error detected: Value 'Never' at "
           "'connectorConfigurations.S3.member.supportedTriggerTypes.2.member' failed to satisfy "
           "constraint: Member must satisfy enum value set: [Scheduled, Event, OnDemand]",
           1);
}

Test(transcode, a_serialization_error_wins_over_bad_enums) {
  malformed(&af_model_CreateFlowRequest,
            "{\"tasks\":[{\"taskType\":\"Bogus\",\"sourceFields\":[1]}]}",
            "member tasks.1.member.sourceFields.1.member must be a string, not a number");
}

Test(transcode, many_bad_enums_are_cut_at_a_whole_error) {
  char *json = malloc(64 * 1024), *p = json;
  p += sprintf(p, "{\"tasks\":[");
  for (int i = 0; i < 200; i++)
    p += sprintf(p, "%s{\"taskType\":\"Bad%d\"}", i ? "," : "", i);
  sprintf(p, "]}");
  const char *msg = fails_as(&af_model_CreateFlowRequest, json, AF_ERR_VALIDATION,
                             "200 validation errors detected: Value 'Bad0' at "
                             "'tasks.1.member.taskType' failed",
                             0);
  size_t n = strlen(msg);
  cr_expect_lt(n, AF_ERROR_MESSAGE_MAX - 1);
  cr_expect_eq(msg[n - 1], ']', "cut mid-error: ...%s", msg + n - 40);
  cr_expect_null(strstr(msg, "Bad199"));
  free(json);
}

/* ---- presence ---- */

Test(transcode, presence_round_trips) {
  const char *json =
      "{\"Scheduled\":{\"scheduleExpression\":\"\",\"scheduleOffset\":0,\"timezone\":null}}";
  Appflow__V1__TriggerProperties *t = parse(&af_model_TriggerProperties, json);
  Appflow__V1__ScheduledTriggerProperties *s = t->scheduled;
  cr_assert_not_null(s);
  cr_expect(s->has_schedule_offset);
  cr_expect_eq(s->schedule_offset, 0);
  cr_expect_str_eq(s->schedule_expression, "");
  cr_expect_null(s->timezone);
  cr_expect_not(s->has_data_pull_mode);
  cr_expect_not(s->has_flow_error_deactivation_threshold);
  cr_expect_null(s->schedule_start_time);
  cr_expect_str_eq(write_json(&af_model_TriggerProperties, t),
                   "{\"Scheduled\":{\"scheduleExpression\":\"\",\"scheduleOffset\":0}}");
  /* false and an empty structure are present too */
  round_trip(&af_model_ConnectorEntity, "{\"hasNestedEntities\":false}",
             "{\"hasNestedEntities\":false}");
  round_trip(&af_model_TriggerProperties, "{\"Scheduled\":{}}", "{\"Scheduled\":{}}");
  round_trip(&af_model_TriggerProperties, "{\"Scheduled\":null}", "{}");
}

Test(transcode, set_members_are_written_whatever_their_value) {
  Appflow__V1__ScheduledTriggerProperties s = APPFLOW__V1__SCHEDULED_TRIGGER_PROPERTIES__INIT;
  cr_expect_str_eq(write_json(&af_model_ScheduledTriggerProperties, &s), "{}");
  s.schedule_offset = 5; /* no has_ flag: absent */
  cr_expect_str_eq(write_json(&af_model_ScheduledTriggerProperties, &s), "{}");
  s.has_schedule_offset = 1;
  s.schedule_offset = 0;
  s.timezone = "";
  cr_expect_str_eq(write_json(&af_model_ScheduledTriggerProperties, &s),
                   "{\"timezone\":\"\",\"scheduleOffset\":0}");
}

Test(transcode, unknown_members_are_dropped) {
  round_trip(&af_model_StopFlowRequest,
             "{\"flowName\":\"x\",\"unknownMember\":{\"a\":[1,2,{\"b\":null}]},\"FlowName\":1}",
             "{\"flowName\":\"x\"}");
  round_trip(&af_model_TriggerProperties, "{\"Scheduled\":{\"bogus\":true},\"OnDemand\":{}}",
             "{\"Scheduled\":{}}");
}

/* ---- maps ---- */

Test(transcode, an_outputs_empty_maps_are_written_as_empty_objects) {
  Appflow__V1__ListTagsForResourceResponse l = APPFLOW__V1__LIST_TAGS_FOR_RESOURCE_RESPONSE__INIT;
  cr_expect_str_eq(write_json(&af_model_ListTagsForResourceResponse, &l), "{\"tags\":{}}");
  Appflow__V1__DescribeFlowResponse d = APPFLOW__V1__DESCRIBE_FLOW_RESPONSE__INIT;
  d.flow_name = "f";
  cr_expect_str_eq(write_json(&af_model_DescribeFlowResponse, &d),
                   "{\"flowName\":\"f\",\"tags\":{}}");
  /* only at the top of an output: not in a request, not nested */
  round_trip(&af_model_CreateFlowRequest, "{}", "{}");
  round_trip(&af_model_DescribeFlowResponse, "{\"tasks\":[{\"taskType\":\"Map\"}]}",
             "{\"tags\":{},\"tasks\":[{\"taskType\":\"Map\"}]}");
  round_trip(&af_model_ListConnectorEntitiesResponse, "{}", "{\"connectorEntityMap\":{}}");
  /* an empty page (an output with a nextToken) and a required list are [], other lists left out */
  round_trip(&af_model_DescribeConnectorProfilesResponse, "{}", "{\"connectorProfileDetails\":[]}");
  round_trip(&af_model_ListFlowsResponse, "{}", "{\"flows\":[]}");
  round_trip(&af_model_DescribeConnectorEntityResponse, "{}", "{\"connectorEntityFields\":[]}");
  round_trip(&af_model_DescribeFlowResponse, "{}", "{\"tags\":{}}");
}

Test(transcode, a_map_of_structures) {
  const char *json = "{\"connectorConfigurations\":{\"S3\":{\"canUseAsSource\":true,"
                     "\"supportedTriggerTypes\":[\"OnDemand\",\"Scheduled\"],"
                     "\"registeredAt\":1.5},\"Salesforce\":{}},\"connectors\":[]}";
  Appflow__V1__DescribeConnectorsResponse *r = parse(&af_model_DescribeConnectorsResponse, json);
  cr_assert_eq(r->n_connector_configurations, 2);
  Appflow__V1__ConnectorConfiguration *c = NULL;
  for (size_t i = 0; i < 2; i++)
    if (strcmp(r->connector_configurations[i]->key, "S3") == 0)
      c = r->connector_configurations[i]->value;
  cr_assert_not_null(c);
  cr_expect(c->has_can_use_as_source && c->can_use_as_source);
  cr_expect_not(c->has_can_use_as_destination);
  cr_assert_eq(c->n_supported_trigger_types, 2);
  cr_expect_eq(c->supported_trigger_types[0], APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND);
  cr_expect_eq(c->registered_at->nanos, 500000000);
  cr_expect_str_eq(write_json(&af_model_DescribeConnectorsResponse, r), json);
}

Test(transcode, a_map_of_lists_is_arrays_of_the_wrapper) {
  const char *json = "{\"connectorEntityMap\":{\"Objects\":[{\"name\":\"Account\","
                     "\"hasNestedEntities\":false},{\"name\":\"Lead\",\"label\":\"L\"}],"
                     "\"Empty\":[]},\"nextToken\":\"t\"}";
  Appflow__V1__ListConnectorEntitiesResponse *r =
      parse(&af_model_ListConnectorEntitiesResponse, json);
  cr_assert_eq(r->n_connector_entity_map, 2);
  Appflow__V1__ConnectorEntityList *objects = r->connector_entity_map[0]->value;
  cr_assert_not_null(objects);
  cr_assert_eq(objects->n_items, 2);
  cr_expect_str_eq(objects->items[1]->name, "Lead");
  cr_expect_str_eq(objects->items[1]->label, "L");
  cr_expect_eq(r->connector_entity_map[1]->value->n_items, 0);
  cr_expect_str_eq(write_json(&af_model_ListConnectorEntitiesResponse, r), json);
  malformed(&af_model_ListConnectorEntitiesResponse, "{\"connectorEntityMap\":{\"a\":{}}}",
            "member connectorEntityMap.a.member must be an array, not an object");
  malformed(&af_model_ListConnectorEntitiesResponse,
            "{\"connectorEntityMap\":{\"a\":[{\"name\":1}]}}",
            "member connectorEntityMap.a.member.1.member.name must be a string, not a number");
}

Test(transcode, map_errors) {
  malformed(&af_model_ListTagsForResourceResponse, "{\"tags\":[]}",
            "member tags must be an object, not an array");
  malformed(&af_model_ListTagsForResourceResponse, "{\"tags\":{\"k\":1}}",
            "member tags.k must be a string, not a number");
  malformed(&af_model_ListTagsForResourceResponse, "{\"tags\":{\"k\":null}}",
            "member tags.k must be a string, not null");
}

/* ---- scalars and timestamps ---- */

Test(transcode, timestamps_are_epoch_seconds) {
  Appflow__V1__DescribeFlowResponse *r =
      parse(&af_model_DescribeFlowResponse, "{\"createdAt\":1700000000,\"lastUpdatedAt\":-1.5}");
  cr_expect_eq(r->created_at->seconds, 1700000000);
  cr_expect_eq(r->created_at->nanos, 0);
  cr_expect_eq(r->last_updated_at->seconds, -2);
  cr_expect_eq(r->last_updated_at->nanos, 500000000);
  cr_expect_str_eq(write_json(&af_model_DescribeFlowResponse, r),
                   "{\"createdAt\":1700000000,\"lastUpdatedAt\":-1.5,\"tags\":{}}");
  malformed(&af_model_DescribeFlowResponse, "{\"createdAt\":\"2024-01-01\"}",
            "member createdAt must be a number of epoch seconds, not a string");
  malformed(&af_model_DescribeFlowResponse, "{\"createdAt\":1e20}",
            "member createdAt must be epoch seconds from");
}

Test(transcode, numbers) {
  round_trip(&af_model_DescribeFlowResponse, "{\"schemaVersion\":9007199254740993}",
             "{\"tags\":{},\"schemaVersion\":9007199254740993}");
  round_trip(&af_model_Range, "{\"maximum\":1.5,\"minimum\":-2}",
             "{\"maximum\":1.5,\"minimum\":-2}");
  round_trip(&af_model_ScheduledTriggerProperties, "{\"flowErrorDeactivationThreshold\":3.0}",
             "{\"flowErrorDeactivationThreshold\":3}");
  malformed(&af_model_ScheduledTriggerProperties, "{\"flowErrorDeactivationThreshold\":3000000000}",
            "member flowErrorDeactivationThreshold must be an integer from -2147483648 to "
            "2147483647, not 3000000000");
  malformed(&af_model_ScheduledTriggerProperties, "{\"flowErrorDeactivationThreshold\":1.5}",
            "member flowErrorDeactivationThreshold must be an integer, not 1.5");
  malformed(&af_model_ScheduledTriggerProperties, "{\"scheduleOffset\":\"1\"}",
            "member scheduleOffset must be an integer, not a string");
  malformed(&af_model_ConnectorEntity, "{\"hasNestedEntities\":\"true\"}",
            "member hasNestedEntities must be a boolean, not a string");
  malformed(&af_model_Range, "{\"maximum\":true}",
            "member maximum must be a number, not a boolean");
}

/* ---- bodies ---- */

Test(transcode, bodies) {
  Appflow__V1__StopFlowRequest *r = parse_len(&af_model_StopFlowRequest, "", 0);
  cr_expect_null(r->flow_name);
  r = parse_len(&af_model_StopFlowRequest, NULL, 0);
  cr_expect_null(r->flow_name);
  r = parse(&af_model_StopFlowRequest, " \r\n\t ");
  cr_expect_null(r->flow_name);
  malformed(&af_model_StopFlowRequest, "[]",
            "the request body must be a JSON object, not an array");
  malformed(&af_model_StopFlowRequest, "\"x\"", "must be a JSON object, not a string");
  malformed(&af_model_StopFlowRequest, "{", "the request body is not valid JSON");
  malformed(&af_model_StopFlowRequest, "{\"flowName\":\"a\",\"flowName\":\"b\"}",
            "the request body is not valid JSON: duplicate object key");
  malformed(&af_model_StopFlowRequest, "{\"flowName\":\"a\\u0000\"}", "\\u0000");
  malformed(&af_model_StopFlowRequest, "{\"flowName\":{}}",
            "member flowName must be a string, not an object");
  malformed(&af_model_CreateFlowRequest, "{\"triggerConfig\":[]}",
            "member triggerConfig must be an object, not an array");
  malformed(&af_model_CreateFlowRequest, "{\"tasks\":{}}",
            "member tasks must be an array, not an object");
  malformed(&af_model_CreateFlowRequest, "{\"tasks\":[null]}",
            "member tasks.1.member must be an object, not null");
}

Test(transcode, deep_unknown_members_are_skipped) {
  char json[4096], *p = json;
  p += sprintf(p, "{\"flowName\":\"x\",\"deep\":");
  for (int i = 0; i < 500; i++)
    *p++ = '[';
  for (int i = 0; i < 500; i++)
    *p++ = ']';
  strcpy(p, "}");
  round_trip(&af_model_StopFlowRequest, json, "{\"flowName\":\"x\"}");
}

Test(transcode, every_structure_reads_and_writes_an_empty_object) {
  cr_assert_gt(af_model_struct_count, 100);
  for (size_t i = 0; i < af_model_struct_count; i++) {
    const af_model_struct *s = af_model_structs[i];
    cr_assert_eq(s->n_members, s->descriptor->n_fields, "%s", s->name);
    const char *out = write_json(s, parse(s, "{}"));
    /* an output writes its empty maps, and its empty pages and required lists */
    int writes_empty = 0, paged = af_model_member_named(s, "nextToken") != NULL;
    for (size_t k = 0; k < s->n_members; k++) {
      const af_model_member *mb = &s->members[k];
      writes_empty |=
          mb->shape->type == AF_MODEL_MAP ||
          (s->operation_output && mb->shape->type == AF_MODEL_LIST && (paged || mb->required));
    }
    if (!writes_empty)
      cr_expect_str_eq(out, "{}", "%s", s->name);
  }
}

/* ---- writing errors ---- */

Test(transcode, what_json_cannot_hold_is_an_internal_error) {
  Appflow__V1__Range r = APPFLOW__V1__RANGE__INIT;
  r.has_maximum = 1;
  r.maximum = NAN;
  write_fails(&af_model_Range, &r, "the response member maximum is NaN");
  r.maximum = INFINITY;
  write_fails(&af_model_Range, &r, "is infinite");

  Appflow__V1__StopFlowResponse s = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  s.flow_arn = "\xff";
  write_fails(&af_model_StopFlowResponse, &s, "flowArn holds a string that is not UTF-8");
  s.flow_arn = NULL;
  s.has_flow_status = 1;
  s.flow_status = 0;
  write_fails(&af_model_StopFlowResponse, &s, "flowStatus holds 0, which is no value of enum");
  s.flow_status = 99;
  write_fails(&af_model_StopFlowResponse, &s, "holds 99");

  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.nanos = -1;
  Appflow__V1__DescribeFlowResponse d = APPFLOW__V1__DESCRIBE_FLOW_RESPONSE__INIT;
  d.created_at = &ts;
  write_fails(&af_model_DescribeFlowResponse, &d, "the response member createdAt is a Timestamp");
}

Test(transcode, shape_and_message_must_agree) {
  Appflow__V1__StopFlowResponse s = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  write_fails(&af_model_StopFlowRequest, &s, "disagree");
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  cr_expect_eq(af_bridge_json_to_message(NULL, "{}", 2, &arena, &m, &err), AF_ERR_INTERNAL_SERVER);
}

/* ---- bound members ---- */

Test(transcode, members_bound_to_the_path_and_query) {
  const af_model_struct *s = &af_model_UntagResourceRequest;
  /* the body never sets them */
  Appflow__V1__UntagResourceRequest *r =
      parse(s, "{\"resourceArn\":\"body\",\"tagKeys\":[\"body\"]}");
  cr_expect_null(r->resource_arn);
  cr_expect_eq(r->n_tag_keys, 0);
  const char *arn[] = {"arn:x"}, *keys[] = {"a", "b"};
  af_bridge_binding b[] = {{AF_MODEL_URI, "resourceArn", arn, 1},
                           {AF_MODEL_QUERY, "tagKeys", keys, 2}};
  af_error err = {0};
  cr_assert_eq(af_bridge_bind_members(s, &r->base, b, 2, &arena, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(r->resource_arn, "arn:x");
  cr_assert_eq(r->n_tag_keys, 2);
  cr_expect_str_eq(r->tag_keys[1], "b");
  cr_expect_str_eq(write_json(s, r), "{}"); /* nor are they written */
  af_bridge_binding none[] = {{AF_MODEL_URI, "resourceArn", NULL, 0},
                              {AF_MODEL_QUERY, "tagKeys", NULL, 0}};
  cr_assert_eq(af_bridge_bind_members(s, &r->base, none, 2, &arena, &err), AF_OK);
  cr_expect_null(r->resource_arn);
  cr_expect_eq(r->n_tag_keys, 0);
}

Test(transcode, binding_what_the_model_does_not_bind_is_an_internal_error) {
  const af_model_struct *s = &af_model_UntagResourceRequest;
  Appflow__V1__UntagResourceRequest *r = parse(s, "{}");
  const char *v[] = {"x"};
  af_bridge_binding wrong[] = {{AF_MODEL_QUERY, "resourceArn", v, 1},
                               {AF_MODEL_URI, "tagkeys", v, 1},
                               {AF_MODEL_HEADER, "resourceArn", v, 1},
                               {AF_MODEL_BODY, "tagKeys", v, 1}};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    af_error err = {0};
    cr_expect_eq(af_bridge_bind_members(s, &r->base, &wrong[i], 1, &arena, &err),
                 AF_ERR_INTERNAL_SERVER, "%zu", i);
  }
}

/* A ListFlows page of 200 flows with long descriptions (about 200 KiB of JSON): the writer's
 * buffer doubles many times, and the arena must end up holding about the final buffer, not the
 * final buffer plus every smaller copy (they used to add up to as much again). */
Test(transcode, long_response_leaves_no_old_buffers_behind) {
  enum { FLOWS = 200, DESC = 1000 };
  static char desc[DESC + 1];
  static Appflow__V1__FlowDefinition defs[FLOWS], *ptrs[FLOWS];
  static char names[FLOWS][16];
  memset(desc, 'd', DESC);
  for (int i = 0; i < FLOWS; i++) {
    appflow__v1__flow_definition__init(&defs[i]);
    snprintf(names[i], sizeof names[i], "flow%d", i);
    defs[i].flow_name = names[i];
    defs[i].description = desc;
    ptrs[i] = &defs[i];
  }
  Appflow__V1__ListFlowsResponse r = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  r.n_flows = FLOWS;
  r.flows = ptrs;
  size_t before = arena.used;
  af_error err = {0};
  char *out = NULL;
  size_t len = 0;
  cr_assert_eq(
      af_bridge_message_to_json(&af_model_ListFlowsResponse, &r.base, &arena, &out, &len, &err),
      AF_OK, "%s", err.message);
  cr_expect_gt(len, (size_t)FLOWS * DESC);
  cr_expect_eq(strlen(out), len);
  cr_expect_eq(strncmp(out, "{\"flows\":[{", 11), 0, "%.60s", out);
  cr_expect_not_null(strstr(out, "\"flowName\":\"flow199\""));
  size_t cap = 256; /* the buffer the writer ends with: doubled from 256 until it holds len */
  while (cap <= len)
    cap *= 2;
  cr_expect_leq(arena.used - before, cap + 2 * 8192,
                "%zu bytes of arena for %zu bytes of JSON in a buffer of %zu", arena.used - before,
                len, cap);
}

/* The writer names a bad value by its whole AWS path, through lists and maps, as the reader does
 * (the path is spelled out only when an error needs it). */
Test(transcode, write_errors_name_the_member_path) {
  Appflow__V1__DescribeConnectorsResponse *r = parse(
      &af_model_DescribeConnectorsResponse,
      "{\"connectorConfigurations\":{\"S3\":{\"supportedTriggerTypes\":[\"Event\",\"Event\"]},"
      "\"a\\\"b\":{\"supportedTriggerTypes\":[\"Event\"]}}}");
  cr_assert_eq(r->n_connector_configurations, 2);
  r->connector_configurations[0]->value->supported_trigger_types[1] = 99;
  write_fails(
      &af_model_DescribeConnectorsResponse, r,
      "the response member connectorConfigurations.S3.member.supportedTriggerTypes.2.member "
      "holds 99");
  r->connector_configurations[0]->value->supported_trigger_types[1] = 2;
  r->connector_configurations[1]->value->supported_trigger_types[0] = 98;
  write_fails(&af_model_DescribeConnectorsResponse, r,
              "member connectorConfigurations.a\"b.member.supportedTriggerTypes.1.member holds 98");

  Appflow__V1__FlowDefinition defs[2] = {APPFLOW__V1__FLOW_DEFINITION__INIT,
                                         APPFLOW__V1__FLOW_DEFINITION__INIT};
  Appflow__V1__FlowDefinition *ptrs[2] = {&defs[0], &defs[1]};
  defs[1].description = "ok \xc3";
  Appflow__V1__ListFlowsResponse l = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  l.n_flows = 2;
  l.flows = ptrs;
  write_fails(&af_model_ListFlowsResponse, &l,
              "the response member flows.2.member.description holds a string that is not UTF-8");
}

/* Long strings full of what JSON must escape, across many growths of the writer's buffer, come
 * back the same once read. */
Test(transcode, escapes_survive_buffer_growth) {
  enum { N = 20000 };
  static char desc[N + 1];
  static const char *const pieces[] = {
      "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe2\x82\xac", "ab", "\xf0\x9f\x98\x80", "\x7f", "/"};
  size_t n = 0;
  for (unsigned i = 0; n < N - 8; i = i * 7 + 3) {
    const char *p = pieces[i % (sizeof pieces / sizeof pieces[0])];
    memcpy(desc + n, p, strlen(p));
    n += strlen(p);
  }
  desc[n] = '\0';
  Appflow__V1__FlowDefinition def = APPFLOW__V1__FLOW_DEFINITION__INIT;
  Appflow__V1__FlowDefinition *ptrs[1] = {&def};
  def.description = desc;
  Appflow__V1__ListFlowsResponse l = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  l.n_flows = 1;
  l.flows = ptrs;
  const char *out = write_json(&af_model_ListFlowsResponse, &l);
  json_error_t je;
  json_t *back = json_loads(out, 0, &je);
  cr_assert_not_null(back, "%s", je.text);
  json_t *d = json_object_get(json_array_get(json_object_get(back, "flows"), 0), "description");
  cr_assert(json_is_string(d));
  cr_expect_eq(json_string_length(d), n);
  cr_expect_eq(memcmp(json_string_value(d), desc, n), 0);
  json_decref(back);
}

/* Integers are formatted by hand, two digits at a time: every length and both ends of int64. */
Test(transcode, integers_at_every_length) {
  static const int64_t values[] = {0,    7,           10,        99,         100,          101,
                                   999,  1000,        123456789, 1767225600, -1,           -10,
                                   -100, -1767225600, INT64_MAX, INT64_MIN,  INT64_MIN + 1};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    Appflow__V1__ExecutionResult r = APPFLOW__V1__EXECUTION_RESULT__INIT;
    r.has_bytes_processed = 1;
    r.bytes_processed = values[i];
    char want[64];
    snprintf(want, sizeof want, "{\"bytesProcessed\":%" PRId64 "}", values[i]);
    cr_expect_str_eq(write_json(&af_model_ExecutionResult, &r), want);
  }
  for (int64_t v = 1; v > 0 && v < INT64_MAX / 10; v = v * 10 + 3) { /* 1, 13, 133, ... */
    Appflow__V1__ExecutionResult r = APPFLOW__V1__EXECUTION_RESULT__INIT;
    r.has_records_processed = 1;
    r.records_processed = v;
    char want[64];
    snprintf(want, sizeof want, "{\"recordsProcessed\":%" PRId64 "}", v);
    cr_expect_str_eq(write_json(&af_model_ExecutionResult, &r), want);
  }
}

/* Strings are scanned 8 bytes at a time: a byte that needs care is found at every position of
 * a word, and its neighbours in the byte order are not mistaken for it. */
Test(transcode, every_byte_position_of_a_string) {
  static const char *const pieces[] = {"\"", "\\", "\x1f", "\x01", "\x7f", " ",
                                       "!",  "#",  "[",    "]",    "/",    "\xc3\xa9"};
  for (size_t pos = 0; pos < 20; pos++) {
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
      char s[64];
      snprintf(s, sizeof s, "%.*s%s%.*s", (int)pos, "aaaaaaaaaaaaaaaaaaaa", pieces[k],
               (int)(20 - pos), "bbbbbbbbbbbbbbbbbbbb");
      Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
      r.flow_arn = s;
      const char *out = write_json(&af_model_StopFlowResponse, &r);
      json_error_t je;
      json_t *back = json_loads(out, 0, &je);
      cr_assert_not_null(back, "%zu %zu: %s: %s", pos, k, out, je.text);
      cr_expect_str_eq(json_string_value(json_object_get(back, "flowArn")), s, "%s", out);
      json_decref(back);
    }
    char bad[64];
    snprintf(bad, sizeof bad, "%.*s\xff%.*s", (int)pos, "aaaaaaaaaaaaaaaaaaaa", (int)(20 - pos),
             "bbbbbbbbbbbbbbbbbbbb");
    Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
    r.flow_arn = bad;
    write_fails(&af_model_StopFlowResponse, &r, "flowArn holds a string that is not UTF-8");
  }
}

/* Responses write each member's key as the generator spelled it: the name as a JSON string and
 * a colon. */
Test(transcode, every_member_has_its_json_key) {
  for (size_t i = 0; i < af_model_struct_count; i++) {
    const af_model_struct *s = af_model_structs[i];
    for (size_t k = 0; k < s->n_members; k++) {
      const af_model_member *mb = &s->members[k];
      json_t *name = json_string(mb->name);
      char *quoted = json_dumps(name, JSON_ENCODE_ANY);
      char want[256];
      snprintf(want, sizeof want, "%s:", quoted);
      cr_expect_str_eq(mb->json_key, want, "%s.%s", s->name, mb->name);
      cr_expect_eq(mb->json_key_len, strlen(want), "%s.%s", s->name, mb->name);
      free(quoted);
      json_decref(name);
    }
  }
}

/* Enum values are written as the generator quoted them: each one jansson's quoting of the AWS
 * string, with its length, wherever the string exists. */
Test(transcode, every_enum_value_has_its_json) {
  size_t checked = 0;
  for (size_t i = 0; i < af_model_struct_count; i++) {
    const af_model_struct *s = af_model_structs[i];
    for (size_t k = 0; k < s->n_members; k++) {
      const af_model_shape *sh = s->members[k].shape;
      if (sh->type == AF_MODEL_LIST && sh->member != NULL)
        sh = sh->member;
      if (sh->type != AF_MODEL_ENUM)
        continue;
      cr_assert_not_null(sh->enum_json, "%s", sh->name);
      for (size_t v = 0; v < sh->n_enum; v++) {
        if (sh->enum_values[v] == NULL) {
          cr_expect_null(sh->enum_json[v], "%s %zu", sh->name, v);
          continue;
        }
        json_t *str = json_string(sh->enum_values[v]);
        char *quoted = json_dumps(str, JSON_ENCODE_ANY);
        cr_expect_str_eq(sh->enum_json[v], quoted, "%s %zu", sh->name, v);
        cr_expect_eq(sh->enum_json_len[v], strlen(quoted), "%s %zu", sh->name, v);
        free(quoted);
        json_decref(str);
        checked++;
      }
    }
  }
  cr_expect_gt(checked, 100);
}

/* A long list makes room for all its elements after writing the first; elements unlike the
 * first (here 50 times bigger) are written whole all the same. */
Test(transcode, long_list_of_unlike_elements) {
  enum { FLOWS = 64 };
  static Appflow__V1__FlowDefinition defs[FLOWS], *ptrs[FLOWS];
  static char big[2001];
  memset(big, 'x', sizeof big - 1);
  for (int i = 0; i < FLOWS; i++) {
    appflow__v1__flow_definition__init(&defs[i]);
    defs[i].flow_name = i == 0 ? "a" : big;
    ptrs[i] = &defs[i];
  }
  Appflow__V1__ListFlowsResponse r = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  r.n_flows = FLOWS;
  r.flows = ptrs;
  const char *out = write_json(&af_model_ListFlowsResponse, &r);
  json_error_t je;
  json_t *back = json_loads(out, 0, &je);
  cr_assert_not_null(back, "%s", je.text);
  json_t *flows = json_object_get(back, "flows");
  cr_assert_eq(json_array_size(flows), FLOWS);
  cr_expect_str_eq(json_string_value(json_object_get(json_array_get(flows, 0), "flowName")), "a");
  cr_expect_str_eq(json_string_value(json_object_get(json_array_get(flows, FLOWS - 1), "flowName")),
                   big);
  json_decref(back);
}

/* ---- kept JSON (the service's memos of ListFlows's entries) ---- */

static const char *write_kept_as(const af_model_struct *shape, const void *m,
                                 const af_pbc_ready *ready) {
  char *out;
  size_t len;
  af_error err;
  cr_assert_eq(af_bridge_message_to_json_kept(shape, m, ready, &arena, &out, &len, &err), AF_OK,
               "%s", err.message);
  cr_assert_eq(strlen(out), len);
  return out;
}

static const char *write_kept(const void *m, const af_pbc_ready *ready) {
  return write_kept_as(&af_model_ListFlowsResponse, m, ready);
}

/* A listed flow whose JSON has a place to be kept is written, then kept; the next page writes
 * the kept text as it is; a flow without a place, or not in the list, is written every time. */
Test(transcode, listed_flows_json_is_kept_and_reused) {
  const Appflow__V1__ListFlowsResponse *r = parse(
      &af_model_ListFlowsResponse,
      "{\"flows\": [{\"flowName\": \"a\", \"flowStatus\": \"Active\", \"tags\": {\"k\": \"v\"}, "
      "\"createdAt\": 1700000000.5}, {\"flowName\": \"b\", \"description\": \"d\\u00e9\"}, "
      "{\"flowName\": \"c\", \"lastRunExecutionDetails\": {\"mostRecentExecutionStatus\": "
      "\"Successful\"}}], \"nextToken\": \"t\"}");
  cr_assert_eq(r->n_flows, 3);
  const char *plain = write_json(&af_model_ListFlowsResponse, r);
  _Atomic(af_pbc_text *) slots[2];
  atomic_init(&slots[0], NULL);
  atomic_init(&slots[1], NULL);
  af_pbc_packed items[] = {{&r->flows[0]->base, NULL, 0, &slots[0]},
                           {&r->flows[1]->base, NULL, 0, NULL}, /* no place to keep it */
                           {&r->flows[2]->base, NULL, 0, &slots[1]}};
  af_pbc_ready ready = {3, items};
  cr_expect_str_eq(write_kept(r, &ready), plain, "written as without a list");
  af_pbc_text *a = atomic_load(&slots[0]), *c = atomic_load(&slots[1]);
  cr_assert(a != NULL && c != NULL, "both kept");
  cr_expect(strncmp(plain, "{\"flows\":[", 10) == 0 && memcmp(plain + 10, a->data, a->len) == 0 &&
                plain[10 + a->len] == ',',
            "a's own text");
  cr_expect(strstr(plain, "{\"flowName\":\"c\"") != NULL &&
                memcmp(strstr(plain, "{\"flowName\":\"c\""), c->data, c->len) == 0,
            "c's own text");
  /* the next page takes the kept text as it is: changed here, it shows */
  af_pbc_text *other = malloc(sizeof *other + 16);
  cr_assert_not_null(other);
  other->len = 16;
  memcpy(other->data, "{\"flowName\":\"z\"}", 16);
  atomic_store(&slots[0], other);
  const char *again = write_kept(r, &ready);
  cr_expect_str_eq(again + 10 + 16, plain + 10 + a->len, "the rest as before");
  cr_expect(memcmp(again + 10, "{\"flowName\":\"z\"}", 16) == 0, "%s", again);
  cr_expect_eq(atomic_load(&slots[1]), c, "kept once");
  free(a);
  free(other);
  free(c);
}

/* A whole answer with a place for its JSON (DescribeFlow's, kept with its flow) is written as
 * without one, then kept; the next call writes the kept text as it is. */
Test(transcode, a_whole_answer_kept_is_written_as_it_is) {
  const ProtobufCMessage *r = parse(&af_model_DescribeFlowResponse,
                                    "{\"flowName\": \"a\", \"flowStatus\": \"Active\", "
                                    "\"tags\": {\"k\": \"v\"}, \"createdAt\": 1700000000.5}");
  const char *plain = write_json(&af_model_DescribeFlowResponse, r);
  _Atomic(af_pbc_text *) slot;
  atomic_init(&slot, NULL);
  af_pbc_packed item = {r, NULL, 0, &slot};
  af_pbc_ready ready = {1, &item};
  cr_expect_str_eq(write_kept_as(&af_model_DescribeFlowResponse, r, &ready), plain);
  af_pbc_text *t = atomic_load(&slot);
  cr_assert_not_null(t, "kept");
  cr_expect_eq(t->len, strlen(plain));
  cr_expect(memcmp(t->data, plain, t->len) == 0);
  af_pbc_text *other = malloc(sizeof *other + 2);
  cr_assert_not_null(other);
  other->len = 2;
  memcpy(other->data, "{}", 2);
  atomic_store(&slot, other);
  cr_expect_str_eq(write_kept_as(&af_model_DescribeFlowResponse, r, &ready), "{}");
  free(t);
  free(other);
}
