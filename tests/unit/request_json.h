/* Requests for tests, written as AWS JSON (what `aws appflow ... --cli-input-json` takes) and
 * decoded by the AWS door's transcoder (bridge/transcode.h) into the contract's protobuf-c
 * messages, so a test builds a nested request in one readable string. The messages and their
 * strings live in the arena given. Header-only, like budget_alloc.h: each test file that needs
 * it includes it. */
#ifndef AF_TESTS_REQUEST_JSON_H
#define AF_TESTS_REQUEST_JSON_H

#include "appflow_model.h"
#include "bridge/catalog_load.h"
#include "bridge/transcode.h"
#include "flows/arena.h"
#include "flows/service.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A CreateFlow request in AWS JSON with every member set to something other than its default,
 * up to its tags, which each test ends its own way: "%s" is the flow's name. */
#define CREATE_FLOW_ALL_MEMBERS_HEAD                                                               \
  "{\"flowName\": \"%s\", \"description\": \"Accounts to S3, nightly.\", "                         \
  "\"kmsArn\": \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\", "  \
  "\"triggerConfig\": {\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": {"   \
  "\"scheduleExpression\": \"cron(0 12 * * ? *)\", \"dataPullMode\": \"Incremental\", "            \
  "\"scheduleStartTime\": 1800000000, \"scheduleEndTime\": 1900000000.5, "                         \
  "\"timezone\": \"America/New_York\", \"scheduleOffset\": 300, "                                  \
  "\"firstExecutionFrom\": 1700000000, \"flowErrorDeactivationThreshold\": 5}}}, "                 \
  "\"sourceFlowConfig\": {\"connectorType\": \"Salesforce\", \"apiVersion\": \"58.0\", "           \
  "\"connectorProfileName\": \"sf-prod\", \"sourceConnectorProperties\": {\"Salesforce\": {"       \
  "\"object\": \"Account\", \"enableDynamicFieldUpdate\": false, "                                 \
  "\"includeDeletedRecords\": true}}, "                                                            \
  "\"incrementalPullConfig\": {\"datetimeTypeFieldName\": \"LastModifiedDate\"}}, "                \
  "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "                                   \
  "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"bucket\", "                     \
  "\"bucketPrefix\": \"accounts\", \"s3OutputFormatConfig\": {\"fileType\": \"JSON\", "            \
  "\"prefixConfig\": {\"prefixType\": \"PATH\", \"prefixFormat\": \"DAY\"}, "                      \
  "\"aggregationConfig\": {\"aggregationType\": \"SingleFile\"}}}}}], "                            \
  "\"tasks\": [{\"sourceFields\": [\"Id\", \"Name\"], \"connectorOperator\": "                     \
  "{\"Salesforce\": \"PROJECTION\"}, \"taskType\": \"Filter\"}, "                                  \
  "{\"sourceFields\": [\"Id\"], \"connectorOperator\": {\"Salesforce\": \"NO_OP\"}, "              \
  "\"destinationField\": \"Id\", \"taskType\": \"Map\", \"taskProperties\": "                      \
  "{\"DESTINATION_DATA_TYPE\": \"id\", \"SOURCE_DATA_TYPE\": \"id\"}}], "                          \
  "\"metadataCatalogConfig\": {\"glueDataCatalog\": {"                                             \
  "\"roleArn\": \"arn:aws:iam::123456789012:role/glue\", \"databaseName\": \"db\", "               \
  "\"tablePrefix\": \"appflow\"}}, "                                                               \
  "\"tags\": {\"team\": \"data\", \"env\": \"prod\", "

/* json decoded as a message of shape (af_model_CreateFlowRequest...); the test fails if it
 * does not decode. */
static inline void *request_from_json(const af_model_struct *shape, const char *json, af_arena *a) {
  ProtobufCMessage *m = NULL;
  af_error err;
  af_err rc = af_bridge_json_to_message(shape, json, strlen(json), a, &m, &err);
  cr_assert_eq(rc, AF_OK, "%s does not decode: %s\n%s", shape->descriptor->name, err.message, json);
  return m;
}

/* The text fmt makes (vprintf), in the arena. */
static inline const char *arena_vprintf(af_arena *a, const char *fmt, va_list ap) {
  char *s = af_arena_vprintf(a, fmt, ap);
  cr_assert_not_null(s);
  return s;
}

static inline const char *arena_printf(af_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline const char *arena_printf(af_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *s = arena_vprintf(a, fmt, ap);
  va_end(ap);
  return s;
}

/* request_from_json of the text fmt makes (printf), in the arena. */
static inline void *request_from_jsonf(const af_model_struct *shape, af_arena *a, const char *fmt,
                                       ...) __attribute__((format(printf, 3, 4)));
static inline void *request_from_jsonf(const af_model_struct *shape, af_arena *a, const char *fmt,
                                       ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *json = arena_vprintf(a, fmt, ap);
  va_end(ap);
  return request_from_json(shape, json, a);
}

/* A catalog holding the compiled-in data (data/); the test fails if it does not load. */
static inline af_catalog *test_catalog_builtin(void) {
  char msg[1024] = "";
  af_catalog *cat = af_catalog_new();
  cr_assert(cat != NULL && af_catalog_load_builtin(cat, msg, sizeof msg) == 0, "%s", msg);
  return cat;
}

/* msg (of shape) as AWS JSON, in the arena; the test fails if it cannot be written. */
static inline const char *message_json(const af_model_struct *shape, const void *msg, af_arena *a) {
  char *out = NULL;
  size_t len = 0;
  af_error err;
  af_err rc = af_bridge_message_to_json(shape, msg, a, &out, &len, &err);
  cr_assert_eq(rc, AF_OK, "%s does not encode: %s", shape->descriptor->name, err.message);
  return out;
}

/* Runs the operation op of svc on a request in AWS JSON, waiting; the response is made in a. */
static inline af_err call_json(af_flows *svc, const char *op, const char *json, af_arena *a,
                               ProtobufCMessage **resp, af_error *err) {
  const af_rpc *rpc = af_flows_rpc_named(svc, op);
  cr_assert_not_null(rpc, "%s", op);
  ProtobufCMessage *req = request_from_json(rpc->op->input, json, a);
  ProtobufCMessage *out = af_arena_alloc(a, rpc->output->sizeof_message);
  cr_assert_not_null(out);
  protobuf_c_message_init(rpc->output, out);
  if (resp != NULL)
    *resp = out;
  return af_flows_call_sync(svc, rpc, req, out, a, err);
}

/* Makes the connector profile name of type (an AWS ConnectorType) with the smallest valid
 * properties and credentials of that type, given as AWS JSON (the test fails otherwise). */
static inline void test_profile(af_flows *svc, const char *name, const char *type,
                                const char *properties, const char *credentials) {
  af_arena a;
  af_arena_init(&a);
  char json[2048];
  snprintf(json, sizeof json,
           "{\"connectorProfileName\": \"%s\", \"connectorType\": \"%s\", "
           "\"connectionMode\": \"Public\", \"connectorProfileConfig\": {"
           "\"connectorProfileProperties\": {\"%s\": %s}, "
           "\"connectorProfileCredentials\": {\"%s\": %s}}}",
           name, type, type, properties, type, credentials);
  af_error err;
  cr_assert_eq(call_json(svc, "CreateConnectorProfile", json, &a, NULL, &err), AF_OK, "%s: %s",
               name, err.message);
  af_arena_destroy(&a);
}

/* A Salesforce profile (the connector most tests read from). */
static inline void test_salesforce_profile(af_flows *svc, const char *name) {
  test_profile(svc, name, "Salesforce", "{\"instanceUrl\": \"https://example.my.salesforce.com\"}",
               "{\"accessToken\": \"test-access-token\"}");
}

#endif
