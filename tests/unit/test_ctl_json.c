/* AWS JSON <-> nanopb (src/client/ctljson.c) without a server: requests filled from JSON,
 * encoded with nanopb, decoded back with callbacks bound, and printed as the JSON they came
 * from; bounds of fixed fields; the AWS CLI's names. */
#include "appflow_model.h"
#include "client/ctljson.h"

#include <criterion/criterion.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

static const char *const CREATE_FLOW =
    "{\"flowName\": \"f1\", \"description\": \"d\","
    " \"triggerConfig\": {\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\":"
    "   {\"scheduleExpression\": \"rate(1hours)\", \"scheduleStartTime\": 1700000000.5}}},"
    " \"tags\": {\"team\": \"data\", \"env\": \"test\"},"
    " \"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\":"
    "   {\"S3\": {\"bucketName\": \"src\", \"bucketPrefix\": \"in\"}}},"
    " \"destinationFlowConfigList\": [{\"connectorType\": \"S3\","
    "   \"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}],"
    " \"tasks\": [{\"sourceFields\": [\"a\", \"b\"], \"taskType\": \"Filter\","
    "   \"connectorOperator\": {\"S3\": \"PROJECTION\"}},"
    "  {\"sourceFields\": [\"a\"], \"taskType\": \"Map\", \"destinationField\": \"a\","
    "   \"connectorOperator\": {\"S3\": \"NO_OP\"},"
    "   \"taskProperties\": {\"SOURCE_DATA_TYPE\": \"string\"}}]}";

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  cr_assert_not_null(j, "%s", e.text);
  return j;
}

/* obj as a message of ms, encoded, decoded as a message of back and printed as JSON. */
static json_t *round_trip(const af_model_struct *ms, const af_model_struct *back, json_t *obj) {
  const af_ctl_message *m = af_ctl_message_for(ms), *mb = af_ctl_message_for(back);
  cr_assert(m && mb);
  af_ctl_codec *k = af_ctl_codec_new();
  void *msg = calloc(1, m->size), *out = calloc(1, mb->size);
  cr_assert_eq(af_ctl_fill(k, ms, m, obj, msg), 0, "%s", af_ctl_codec_error(k));
  size_t n;
  cr_assert(pb_get_encoded_size(&n, m->desc, msg), "%s", af_ctl_codec_error(k));
  pb_byte_t *buf = malloc(n);
  pb_ostream_t os = pb_ostream_from_buffer(buf, n);
  cr_assert(pb_encode(&os, m->desc, msg), "%s", PB_GET_ERROR(&os));
  cr_assert_eq(af_ctl_prepare(k, back, mb, out), 0, "%s", af_ctl_codec_error(k));
  pb_istream_t is = pb_istream_from_buffer(buf, os.bytes_written);
  cr_assert(pb_decode(&is, mb->desc, out), "%s %s", PB_GET_ERROR(&is), af_ctl_codec_error(k));
  json_t *j = af_ctl_to_json(k, back, mb, out);
  cr_assert_not_null(j, "%s", af_ctl_codec_error(k));
  free(buf);
  free(msg);
  free(out);
  af_ctl_codec_free(k);
  return j;
}

static void assert_same(json_t *got, json_t *want) {
  char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
  cr_assert(json_equal(got, want), "got  %s\nwant %s", g, w);
  free(g);
  free(w);
}

Test(ctl_json, create_flow_request_round_trip) {
  json_t *in = parse(CREATE_FLOW);
  json_t *out = round_trip(&af_model_CreateFlowRequest, &af_model_CreateFlowRequest, in);
  assert_same(out, in);
  json_decref(in);
  json_decref(out);
}

Test(ctl_json, describe_flow_response_round_trip) {
  /* What the server answers: typed members at every depth, timestamps, a map, callback lists. */
  json_t *in = parse(CREATE_FLOW);
  json_object_del(in, "description");
  json_object_set_new(in, "flowArn", json_string("arn:aws:appflow:us-east-1:0:flow/f1"));
  json_object_set_new(in, "flowStatus", json_string("Suspended"));
  json_object_set_new(in, "createdAt", json_integer(1700000000));
  json_object_set_new(in, "lastUpdatedAt", json_real(1700000001.25));
  json_object_set_new(in, "schemaVersion", json_integer(1));
  json_t *out = round_trip(&af_model_DescribeFlowResponse, &af_model_DescribeFlowResponse, in);
  assert_same(out, in);
  json_decref(in);
  json_decref(out);
}

Test(ctl_json, members_in_field_order_and_absent_ones_left_out) {
  json_t *in = parse("{\"flowStatus\": \"Active\", \"flowArn\": \"arn:x\"}");
  json_t *out = round_trip(&af_model_StopFlowResponse, &af_model_StopFlowResponse, in);
  char *text = json_dumps(out, JSON_PRESERVE_ORDER);
  cr_assert_str_eq(text, "{\"flowArn\": \"arn:x\", \"flowStatus\": \"Active\"}");
  free(text);
  json_decref(in);
  json_decref(out);
}

Test(ctl_json, a_map_of_lists_round_trip) {
  /* ListConnectorEntities' answer: a map whose values are lists (list wrapper messages) */
  json_t *in = parse("{\"connectorEntityMap\": {\"Objects\": [{\"name\": \"Account\", "
                     "\"label\": \"Account\", \"hasNestedEntities\": false}, {\"name\": "
                     "\"Lead\", \"hasNestedEntities\": true}], \"Channels\": []}, "
                     "\"nextToken\": \"t\"}");
  json_t *out = round_trip(&af_model_ListConnectorEntitiesResponse,
                           &af_model_ListConnectorEntitiesResponse, in);
  assert_same(out, in);
  json_decref(in);
  json_decref(out);
}

/* The error filling (or, for callback fields, encoding) obj as a message of ms. */
static void assert_refused(const af_model_struct *ms, const char *text, const char *mention) {
  json_t *obj = parse(text);
  const af_ctl_message *m = af_ctl_message_for(ms);
  af_ctl_codec *k = af_ctl_codec_new();
  void *msg = calloc(1, m->size);
  size_t n;
  bool refused = af_ctl_fill(k, ms, m, obj, msg) != 0 || !pb_get_encoded_size(&n, m->desc, msg);
  cr_assert(refused, "%s was accepted", text);
  cr_assert_eq(af_ctl_codec_status(k), AF_CTL_INPUT, "%s", af_ctl_codec_error(k));
  cr_assert(strstr(af_ctl_codec_error(k), mention), "'%s' does not mention '%s'",
            af_ctl_codec_error(k), mention);
  free(msg);
  af_ctl_codec_free(k);
  json_decref(obj);
}

Test(ctl_json, bounds_types_and_names_refused) {
  char text[600];
  snprintf(text, sizeof text, "{\"flowName\": \"%0300d\"}", 0);
  assert_refused(&af_model_DescribeFlowRequest, text,
                 "flowName is 300 bytes long, over its "
                 "limit of 256");
  assert_refused(&af_model_CreateFlowRequest, "{\"tasks\": [{\"taskType\": \"Shuffle\"}]}",
                 "tasks[0].taskType: 'Shuffle'");
  assert_refused(&af_model_ListFlowsRequest, "{\"maxResults\": \"ten\"}", "maxResults");
  assert_refused(&af_model_ListFlowsRequest, "{\"colour\": 1}", "colour: unknown member");
  assert_refused(&af_model_CreateFlowRequest,
                 "{\"sourceFlowConfig\": {\"connectorType\": \"Nope\"}}",
                 "sourceFlowConfig.connectorType");
}

Test(ctl_json, bound_inside_a_callback_list) {
  char *text = malloc(1300);
  int n = snprintf(text, 1300, "{\"tasks\": [{\"taskType\": \"Map\"}, {\"destinationField\": \"");
  memset(text + n, 'd', 1100);
  strcpy(text + n + 1100, "\"}]}");
  assert_refused(&af_model_CreateFlowRequest, text, "tasks[1].destinationField is 1100 bytes");
  free(text);
}

Test(ctl_json, every_operation_has_its_messages) {
  for (size_t i = 0; i < af_model_operation_count; i++) {
    cr_assert_not_null(af_ctl_message_for(af_model_operations[i].input), "%s",
                       af_model_operations[i].name);
    cr_assert_not_null(af_ctl_message_for(af_model_operations[i].output), "%s",
                       af_model_operations[i].name);
  }
}

Test(ctl_json, aws_cli_names) {
  static const char *const cases[][2] = {
      {"ListFlows", "list-flows"},
      {"ListTagsForResource", "list-tags-for-resource"},
      {"DescribeFlowExecutionRecords", "describe-flow-execution-records"},
      {"flowName", "flow-name"},
      {"maxResults", "max-results"},
      {"kmsArn", "kms-arn"},
      {"forceDelete", "force-delete"},
      {"connectorAPIVersion", "connector-api-version"},
      {"s3", "s3"},
      {"ListARNs", "list-arns"},
      {"HTTPStatus", "http-status"},
  };
  char out[128];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(af_ctl_cli_name(cases[i][0], out, sizeof out), 0);
    cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
  }
  cr_assert_eq(af_ctl_cli_name("flowName", out, 5), -1);
}
