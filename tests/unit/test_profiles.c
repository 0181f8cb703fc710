/* src/flows/profiles.c: CreateConnectorProfile, DescribeConnectorProfiles,
 * UpdateConnectorProfile, DeleteConnectorProfile and the profile checks of CreateFlow and
 * UpdateFlow, on the store AF_TEST_STORE names (store_under_test.h): every refusal of README's
 * table with its error and words, every member DescribeConnectorProfiles gives back, credentials
 * that go in and never come out (every answer of this file is searched for them), an update that
 * keeps them, clientToken retries, pages, filters, deletes refused while a flow (anywhere in the
 * flows table) uses the profile, and the profiles' table kept apart from the flows'. */
#include "bridge/catalog_load.h"
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT(x) APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_##x
#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x

#define T0 1700000000123LL
#define HOUR_MS (3600LL * 1000)
#define ACCOUNT "000000000000"
#define PROFILE_ARN(name) "arn:aws:appflow:us-east-1:" ACCOUNT ":connectorprofile/" name
#define SECRET_ARN(name)                                                                           \
  "arn:aws:secretsmanager:us-east-1:" ACCOUNT ":secret:appflow!" ACCOUNT "-" name "-"

/* What no answer may ever hold. */
#define SECRET_ACCESS "sEcReT-access-token-7f3a"
#define SECRET_REFRESH "sEcReT-refresh-token-91bc"
#define SECRET_PASSWORD "sEcReT-password-55d0"
#define SECRET_NEW "sEcReT-new-access-token-c0de"
static const char *const secrets[] = {SECRET_ACCESS, SECRET_REFRESH, SECRET_PASSWORD, SECRET_NEW};

#define SF_PROPERTIES "{\"Salesforce\": {\"instanceUrl\": \"https://example.my.salesforce.com\"}}"
#define SF_CREDENTIALS                                                                             \
  "{\"Salesforce\": {\"accessToken\": \"" SECRET_ACCESS "\", \"refreshToken\": \"" SECRET_REFRESH  \
  "\"}}"
#define SNOW_PROPERTIES                                                                            \
  "{\"Snowflake\": {\"warehouse\": \"WH\", \"stage\": \"DB.PUBLIC.STAGE\", \"bucketName\": "       \
  "\"stage-bucket\"}}"
#define SNOW_CREDENTIALS                                                                           \
  "{\"Snowflake\": {\"username\": \"loader\", \"password\": \"" SECRET_PASSWORD "\"}}"
#define ZD_PROPERTIES "{\"Zendesk\": {\"instanceUrl\": \"https://example.zendesk.com\"}}"
#define ZD_CREDENTIALS "{\"Zendesk\": {\"clientId\": \"id\", \"clientSecret\": \"zd-secret\"}}"
#define LAMBDA "arn:aws:lambda:us-east-1:" ACCOUNT ":function:acme"

static af_catalog *cat;
static af_flows *svc;
static af_store *store;
static af_arena arena;

static void setup(void) {
  fake_now = T0;
  cat = test_catalog_builtin();
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .catalog = cat},
                         &store);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
  af_catalog_free(cat);
}

TestSuite(profiles, .init = setup, .fini = teardown);
TestSuite(profile_errors, .init = setup, .fini = teardown);
TestSuite(flow_profiles, .init = setup, .fini = teardown);

/* ---- calls: every answer and every error is searched for the secrets ---- */

/* Whether data[0..len) holds s anywhere. */
static bool holds(const uint8_t *data, size_t len, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= len; i++)
    if (memcmp(data + i, s, n) == 0)
      return true;
  return false;
}

static void expect_no_secret(const char *what, const void *data, size_t len) {
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    cr_expect_not(holds(data, len, secrets[i]), "%s holds %s", what, secrets[i]);
}

/* Runs op on the AWS JSON request on svc s; the response (made in the arena) in *resp. */
static af_err call_on(af_flows *s, const char *op, const char *json, void *resp, af_error *err) {
  ProtobufCMessage *out = NULL;
  memset(err, 0, sizeof *err);
  af_err rc = call_json(s, op, json, &arena, &out, err);
  if (resp != NULL)
    *(ProtobufCMessage **)resp = out;
  expect_no_secret("an error message", err->message, strlen(err->message));
  if (rc == AF_OK) {
    size_t n = protobuf_c_message_get_packed_size(out);
    uint8_t *buf = af_arena_alloc(&arena, n ? n : 1);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(out, buf);
    expect_no_secret(op, buf, n);
    const char *json_out = message_json(af_flows_rpc_named(s, op)->op->output, out, &arena);
    expect_no_secret(op, json_out, strlen(json_out));
  }
  return rc;
}

static af_err call(const char *op, const char *json, void *resp, af_error *err) {
  return call_on(svc, op, json, resp, err);
}

/* op must succeed. */
static void *called(const char *op, const char *json) {
  void *resp;
  af_error err;
  cr_assert_eq(call(op, json, &resp, &err), AF_OK, "%s %s: %s", op, json, err.message);
  return resp;
}

static void expect_error(af_err got, const af_error *err, af_err want, const char *words) {
  cr_expect_eq(got, want, "%d, not %d: %s", got, want, err->message);
  cr_expect(strstr(err->message, words) != NULL, "'%s' does not say '%s'", err->message, words);
}

/* A CreateConnectorProfile request in JSON; extra is more members (each with a leading ", "). */
static const char *profile_json(const char *name, const char *type, const char *properties,
                                const char *credentials, const char *extra) {
  char creds[512] = "";
  if (credentials != NULL)
    snprintf(creds, sizeof creds, ", \"connectorProfileCredentials\": %s", credentials);
  return arena_printf(&arena,
                      "{\"connectorProfileName\": \"%s\", \"connectorType\": \"%s\", "
                      "\"connectionMode\": \"Public\", \"connectorProfileConfig\": {"
                      "\"connectorProfileProperties\": %s%s}%s}",
                      name, type, properties, creds, extra ? extra : "");
}

static const char *sf_json(const char *name, const char *extra) {
  return profile_json(name, "Salesforce", SF_PROPERTIES, SF_CREDENTIALS, extra);
}

static Appflow__V1__CreateConnectorProfileResponse *create_sf(const char *name) {
  return called("CreateConnectorProfile", sf_json(name, NULL));
}

static void create_snowflake(const char *name) {
  called("CreateConnectorProfile",
         profile_json(name, "Snowflake", SNOW_PROPERTIES, SNOW_CREDENTIALS, NULL));
}

static Appflow__V1__DescribeConnectorProfilesResponse *describe(const char *json) {
  return called("DescribeConnectorProfiles", json);
}

/* The one profile called name (the test fails unless there is exactly one). */
static const Appflow__V1__ConnectorProfile *profile(const char *name) {
  Appflow__V1__DescribeConnectorProfilesResponse *r =
      describe(arena_printf(&arena, "{\"connectorProfileNames\": [\"%s\"]}", name));
  cr_assert_eq(r->n_connector_profile_details, 1, "%s", name);
  cr_expect_null(r->next_token);
  return r->connector_profile_details[0];
}

/* The names of a DescribeConnectorProfiles answer, joined by ' '. */
static const char *names_of(const Appflow__V1__DescribeConnectorProfilesResponse *r) {
  char *out = af_arena_alloc(&arena, 8192);
  cr_assert_not_null(out);
  out[0] = '\0';
  for (size_t i = 0; i < r->n_connector_profile_details; i++) {
    size_t o = strlen(out);
    snprintf(out + o, 8192 - o, "%s%s", i ? " " : "",
             r->connector_profile_details[i]->connector_profile_name);
  }
  return out;
}

static af_err delete_profile(const char *name, bool force, af_error *err) {
  return call("DeleteConnectorProfile",
              arena_printf(&arena, "{\"connectorProfileName\": \"%s\", \"forceDelete\": %s}", name,
                           force ? "true" : "false"),
              NULL, err);
}

static void expect_time(const Google__Protobuf__Timestamp *t, int64_t ms, const char *what) {
  cr_assert_not_null(t, "%s", what);
  cr_expect_eq(t->seconds, ms / 1000, "%s", what);
  cr_expect_eq(t->nanos, (ms % 1000) * 1000000, "%s", what);
}

/* The request the store keeps for profile name (credentials and all); free it with
 * protobuf_c_message_free_unpacked. */
typedef struct stored {
  uint8_t *def;
  size_t len;
} stored;

static af_store_verdict grab(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  stored *s = ctx;
  free(s->def);
  s->def = malloc(cur->definition.len ? cur->definition.len : 1);
  if (s->def != NULL && cur->definition.len > 0)
    memcpy(s->def, cur->definition.data, cur->definition.len);
  s->len = cur->definition.len;
  return AF_STORE_KEEP;
}

static Appflow__V1__CreateConnectorProfileRequest *stored_request(const char *name,
                                                                  char **credentials_id) {
  stored s = {0};
  af_store_op op = {.table = AF_TABLE_PROFILES,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = grab,
                    .ctx = &s,
                    .with_definition = true};
  cr_assert_eq(af_store_run(store, af_store_modify, &op), AF_STORE_OK, "%s", name);
  cr_assert_not_null(s.def);
  Appflowd__Store__V1__Profile *p = appflowd__store__v1__profile__unpack(NULL, s.len, s.def);
  free(s.def);
  cr_assert_not_null(p, "%s: not a Profile", name);
  Appflow__V1__CreateConnectorProfileRequest *q =
      appflow__v1__create_connector_profile_request__unpack(NULL, p->request.len, p->request.data);
  if (credentials_id != NULL)
    *credentials_id = af_arena_strndup(&arena, p->credentials_id, strlen(p->credentials_id));
  appflowd__store__v1__profile__free_unpacked(p, NULL);
  cr_assert_not_null(q, "%s: its request does not unpack", name);
  return q;
}

/* ---- flows ---- */

/* Salesforce (through profile; NULL: none named) to S3. */
static const char *sf_to_s3(const char *name, const char *profile) {
  char p[300] = "";
  if (profile != NULL)
    snprintf(p, sizeof p, "\"connectorProfileName\": \"%s\", ", profile);
  return arena_printf(
      &arena,
      "{\"flowName\": \"%s\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"Salesforce\", %s"
      "\"sourceConnectorProperties\": {\"Salesforce\": {\"object\": \"Account\"}}}, "
      "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "
      "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"bucket\"}}}], "
      "\"tasks\": [{\"sourceFields\": [\"Id\"], \"taskType\": \"Filter\", "
      "\"connectorOperator\": {\"Salesforce\": \"PROJECTION\"}}]}",
      name, p);
}

/* S3 (naming source_profile, which S3 ignores, when not NULL) to a destination of type dst
 * (through profile; NULL: none named) with properties. */
static const char *s3_to(const char *name, const char *source_profile, const char *dst,
                         const char *profile, const char *properties) {
  char sp[300] = "", p[300] = "";
  if (source_profile != NULL)
    snprintf(sp, sizeof sp, "\"connectorProfileName\": \"%s\", ", source_profile);
  if (profile != NULL)
    snprintf(p, sizeof p, "\"connectorProfileName\": \"%s\", ", profile);
  return arena_printf(
      &arena,
      "{\"flowName\": \"%s\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"S3\", %s\"sourceConnectorProperties\": "
      "{\"S3\": {\"bucketName\": \"in-bucket\"}}}, "
      "\"destinationFlowConfigList\": [{\"connectorType\": \"%s\", %s"
      "\"destinationConnectorProperties\": {\"%s\": %s}}], "
      "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\", "
      "\"connectorOperator\": {\"S3\": \"NO_OP\"}}]}",
      name, sp, dst, p, dst, properties);
}

static const char *s3_to_sf(const char *name, const char *profile) {
  return s3_to(name, NULL, "Salesforce", profile, "{\"object\": \"Account\"}");
}

/* The same request as UpdateFlow's: flowName and every member UpdateFlow takes are CreateFlow's
 * (UpdateFlow has no tags or metadataCatalogConfig, which these flows do not set). */
static af_err create_flow(const char *json, af_error *err) {
  return call("CreateFlow", json, NULL, err);
}

static af_err update_flow(const char *json, af_error *err) {
  return call("UpdateFlow", json, NULL, err);
}

static void flow_created(const char *json) {
  af_error err;
  cr_assert_eq(create_flow(json, &err), AF_OK, "%s: %s", json, err.message);
}

static bool flow_exists(const char *name) {
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__DescribeFlowResponse resp;
  af_error err;
  af_err rc = af_flows_describe_flow(svc, &req, &resp, &arena, &err);
  cr_assert(rc == AF_OK || rc == AF_ERR_RESOURCE_NOT_FOUND, "%s", err.message);
  return rc == AF_OK;
}

/* The source's connectorProfileName of flow name, as DescribeFlow gives it. */
static const char *flow_source_profile(const char *name) {
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__DescribeFlowResponse resp;
  af_error err;
  cr_assert_eq(af_flows_describe_flow(svc, &req, &resp, &arena, &err), AF_OK, "%s", err.message);
  cr_assert_not_null(resp.source_flow_config);
  return resp.source_flow_config->connector_profile_name;
}

/* ==== create and describe ==== */

Test(profiles, create_then_describe_gives_every_member) {
  Appflow__V1__CreateConnectorProfileResponse *c = called(
      "CreateConnectorProfile",
      arena_printf(&arena,
                   "{\"connectorProfileName\": \"sf-a\", \"connectorType\": \"Salesforce\", "
                   "\"connectionMode\": \"Public\", \"connectorProfileConfig\": {"
                   "\"connectorProfileProperties\": {\"Salesforce\": {\"instanceUrl\": "
                   "\"https://example.my.salesforce.com\", \"isSandboxEnvironment\": true}}, "
                   "\"connectorProfileCredentials\": %s}}",
                   SF_CREDENTIALS));
  cr_expect_str_eq(c->connector_profile_arn, PROFILE_ARN("sf-a"));
  const Appflow__V1__ConnectorProfile *p = profile("sf-a");
  cr_expect_str_eq(p->connector_profile_arn, PROFILE_ARN("sf-a"));
  cr_expect_str_eq(p->connector_profile_name, "sf-a");
  cr_expect(p->has_connector_type);
  cr_expect_eq(p->connector_type, CT(SALESFORCE));
  cr_expect_null(p->connector_label);
  cr_expect(p->has_connection_mode);
  cr_expect_eq(p->connection_mode, APPFLOW__V1__CONNECTION_MODE__CONNECTION_MODE_PUBLIC);
  cr_expect_null(p->private_connection_provisioning_state, "a Public connection");
  /* arn:aws:secretsmanager:REGION:ACCOUNT:secret:appflow!ACCOUNT-NAME-... */
  cr_assert_not_null(p->credentials_arn);
  cr_expect_eq(strncmp(p->credentials_arn, SECRET_ARN("sf-a"), strlen(SECRET_ARN("sf-a"))), 0, "%s",
               p->credentials_arn);
  const char *tail = p->credentials_arn + strlen(SECRET_ARN("sf-a"));
  cr_expect_gt(strlen(tail), 6, "%s", p->credentials_arn);
  cr_expect_eq(strspn(tail, "0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
               strlen(tail), "%s", p->credentials_arn);
  cr_assert_not_null(p->connector_profile_properties);
  const Appflow__V1__SalesforceConnectorProfileProperties *sf =
      p->connector_profile_properties->salesforce;
  cr_assert_not_null(sf);
  cr_expect_str_eq(sf->instance_url, "https://example.my.salesforce.com");
  cr_expect(sf->has_is_sandbox_environment && sf->is_sandbox_environment);
  cr_expect_null(p->connector_profile_properties->zendesk);
  expect_time(p->created_at, T0, "createdAt");
  expect_time(p->last_updated_at, T0, "lastUpdatedAt");
}

Test(profiles, update_changes_mode_properties_and_time_and_keeps_the_rest) {
  create_sf("sf-a");
  const char *secret_arn = profile("sf-a")->credentials_arn;
  fake_now = T0 + 5 * HOUR_MS + 7;
  Appflow__V1__UpdateConnectorProfileResponse *u =
      called("UpdateConnectorProfile",
             "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Private\", "
             "\"connectorProfileConfig\": {\"connectorProfileProperties\": {\"Salesforce\": "
             "{\"instanceUrl\": \"https://other.my.salesforce.com\", \"isSandboxEnvironment\": "
             "true}}}}");
  cr_expect_str_eq(u->connector_profile_arn, PROFILE_ARN("sf-a"));
  const Appflow__V1__ConnectorProfile *p = profile("sf-a");
  cr_expect_eq(p->connection_mode, APPFLOW__V1__CONNECTION_MODE__CONNECTION_MODE_PRIVATE);
  cr_assert_not_null(p->private_connection_provisioning_state);
  cr_expect_eq(
      p->private_connection_provisioning_state->status,
      APPFLOW__V1__PRIVATE_CONNECTION_PROVISIONING_STATUS__PRIVATE_CONNECTION_PROVISIONING_STATUS_CREATED);
  cr_expect_str_eq(p->connector_profile_properties->salesforce->instance_url,
                   "https://other.my.salesforce.com");
  cr_expect(p->connector_profile_properties->salesforce->is_sandbox_environment);
  cr_expect_eq(p->connector_type, CT(SALESFORCE), "the type is the profile's for good");
  expect_time(p->created_at, T0, "createdAt");
  expect_time(p->last_updated_at, T0 + 5 * HOUR_MS + 7, "lastUpdatedAt");
  cr_expect_str_eq(p->credentials_arn, secret_arn, "the same secret");
  /* and again, with new credentials: still the same secret's ARN */
  fake_now += 1000;
  called("UpdateConnectorProfile",
         "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Public\", "
         "\"connectorProfileConfig\": {\"connectorProfileProperties\": " SF_PROPERTIES
         ", \"connectorProfileCredentials\": {\"Salesforce\": {\"accessToken\": \"" SECRET_NEW
         "\"}}}}");
  p = profile("sf-a");
  cr_expect_str_eq(p->credentials_arn, secret_arn);
  cr_expect_null(p->private_connection_provisioning_state);
  expect_time(p->last_updated_at, T0 + 5 * HOUR_MS + 1007, "lastUpdatedAt");
}

Test(profiles, a_profile_made_again_gets_a_new_secret) {
  create_sf("sf-a");
  const char *first = profile("sf-a")->credentials_arn;
  af_error err;
  cr_assert_eq(delete_profile("sf-a", false, &err), AF_OK, "%s", err.message);
  create_sf("sf-a");
  cr_expect_str_neq(profile("sf-a")->credentials_arn, first);
  /* two profiles' secrets differ */
  create_sf("sf-b");
  cr_expect_str_neq(profile("sf-b")->credentials_arn, profile("sf-a")->credentials_arn);
}

Test(profiles, arns_name_the_services_region_and_account) {
  af_store *other_store;
  af_flows *other = test_service_new(
      &(af_flows_config){.region = "eu-west-2", .account = "123456789012"}, &other_store);
  Appflow__V1__CreateConnectorProfileResponse *c;
  af_error err;
  cr_assert_eq(call_on(other, "CreateConnectorProfile", sf_json("sf-eu", NULL), &c, &err), AF_OK,
               "%s", err.message);
  cr_expect_str_eq(c->connector_profile_arn,
                   "arn:aws:appflow:eu-west-2:123456789012:connectorprofile/sf-eu");
  Appflow__V1__DescribeConnectorProfilesResponse *d;
  cr_assert_eq(call_on(other, "DescribeConnectorProfiles", "{}", &d, &err), AF_OK, "%s",
               err.message);
  cr_assert_eq(d->n_connector_profile_details, 1);
  const char *want = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:appflow!123456789012-"
                     "sf-eu-";
  cr_expect_eq(strncmp(d->connector_profile_details[0]->credentials_arn, want, strlen(want)), 0,
               "%s", d->connector_profile_details[0]->credentials_arn);
  test_service_free(other, other_store);
}

Test(profiles, a_custom_connectors_profile_names_its_label) {
  called("RegisterConnector", "{\"connectorLabel\": \"acme\", \"connectorProvisioningType\": "
                              "\"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\": "
                              "{\"lambdaArn\": \"" LAMBDA "\"}}}");
  called("CreateConnectorProfile",
         "{\"connectorProfileName\": \"acme-prof\", \"connectorType\": \"CustomConnector\", "
         "\"connectorLabel\": \"acme\", \"connectionMode\": \"Public\", "
         "\"connectorProfileConfig\": {\"connectorProfileProperties\": {\"CustomConnector\": "
         "{\"profileProperties\": {\"region\": \"eu\"}}}, \"connectorProfileCredentials\": "
         "{\"CustomConnector\": {\"authenticationType\": \"APIKEY\", \"apiKey\": {\"apiKey\": "
         "\"" SECRET_NEW "\"}}}}}");
  const Appflow__V1__ConnectorProfile *p = profile("acme-prof");
  cr_expect_eq(p->connector_type, CT(CUSTOM_CONNECTOR));
  cr_expect_str_eq(p->connector_label, "acme");
  cr_assert_not_null(p->connector_profile_properties->custom_connector);
  cr_assert_eq(p->connector_profile_properties->custom_connector->n_profile_properties, 1);
  cr_expect_str_eq(p->connector_profile_properties->custom_connector->profile_properties[0]->value,
                   "eu");
}

/* ==== credentials ==== */

Test(profiles, credentials_never_come_out) {
  /* every call here goes through call(), which searches each answer for the secrets */
  create_sf("sf-a");
  create_snowflake("snow-a");
  describe("{}");
  describe("{\"connectorProfileNames\": [\"sf-a\", \"snow-a\"]}");
  describe("{\"connectorType\": \"Snowflake\"}");
  describe("{\"maxResults\": 1}");
  called("UpdateConnectorProfile",
         "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Private\", "
         "\"connectorProfileConfig\": {\"connectorProfileProperties\": " SF_PROPERTIES
         ", \"connectorProfileCredentials\": {\"Salesforce\": {\"accessToken\": \"" SECRET_NEW
         "\"}}}}");
  describe("{}");
  af_error err;
  /* refusals do not repeat them either */
  expect_error(call("CreateConnectorProfile", sf_json("sf-a", NULL), NULL, &err), &err,
               AF_ERR_NAME_TAKEN, "sf-a");
  expect_error(call("CreateConnectorProfile",
                    profile_json("sf-z", "Salesforce", ZD_PROPERTIES, SF_CREDENTIALS, NULL), NULL,
                    &err),
               &err, AF_ERR_VALIDATION, "sets Zendesk");
  called("CreateConnectorProfile", sf_json("tok-sf", ", \"clientToken\": \"t-1\""));
  expect_error(call("CreateConnectorProfile",
                    profile_json("tok-sf", "Salesforce", SF_PROPERTIES,
                                 "{\"Salesforce\": {\"accessToken\": \"" SECRET_NEW "\"}}",
                                 ", \"clientToken\": \"t-1\""),
                    NULL, &err),
               &err, AF_ERR_CONFLICT, "clientToken");
  /* the whole answer, packed, is searched too (call() does it): and the store has them */
  Appflow__V1__CreateConnectorProfileRequest *q = stored_request("snow-a", NULL);
  cr_assert_not_null(q->connector_profile_config->connector_profile_credentials->snowflake);
  cr_expect_str_eq(q->connector_profile_config->connector_profile_credentials->snowflake->password,
                   SECRET_PASSWORD);
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

Test(profiles, an_update_without_credentials_keeps_them) {
  create_sf("sf-a");
  char *id_before;
  Appflow__V1__CreateConnectorProfileRequest *q = stored_request("sf-a", &id_before);
  cr_expect_str_eq(
      q->connector_profile_config->connector_profile_credentials->salesforce->access_token,
      SECRET_ACCESS);
  protobuf_c_message_free_unpacked(&q->base, NULL);
  called("UpdateConnectorProfile",
         "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Private\", "
         "\"connectorProfileConfig\": {\"connectorProfileProperties\": {\"Salesforce\": "
         "{\"instanceUrl\": \"https://changed.my.salesforce.com\"}}}}");
  char *id;
  q = stored_request("sf-a", &id);
  cr_expect_str_eq(id, id_before);
  cr_assert_not_null(q->connector_profile_config->connector_profile_credentials,
                     "the credentials were dropped");
  const Appflow__V1__SalesforceConnectorProfileCredentials *c =
      q->connector_profile_config->connector_profile_credentials->salesforce;
  cr_assert_not_null(c, "the credentials were dropped");
  cr_expect_str_eq(c->access_token, SECRET_ACCESS);
  cr_expect_str_eq(c->refresh_token, SECRET_REFRESH);
  cr_expect_str_eq(
      q->connector_profile_config->connector_profile_properties->salesforce->instance_url,
      "https://changed.my.salesforce.com");
  cr_expect_eq(q->connection_mode, APPFLOW__V1__CONNECTION_MODE__CONNECTION_MODE_PRIVATE);
  cr_expect_null(q->connector_profile_name, "the name is the record's key");
  cr_expect_null(q->client_token);
  protobuf_c_message_free_unpacked(&q->base, NULL);
  /* new credentials replace them */
  called("UpdateConnectorProfile",
         "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Public\", "
         "\"connectorProfileConfig\": {\"connectorProfileProperties\": " SF_PROPERTIES
         ", \"connectorProfileCredentials\": {\"Salesforce\": {\"accessToken\": \"" SECRET_NEW
         "\"}}}}");
  q = stored_request("sf-a", NULL);
  c = q->connector_profile_config->connector_profile_credentials->salesforce;
  cr_assert_not_null(c);
  cr_expect_str_eq(c->access_token, SECRET_NEW);
  cr_expect_null(c->refresh_token, "replaced whole");
  protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* ==== clientToken ==== */

Test(profiles, a_client_token_retry_gets_the_first_answer) {
  const char *req = sf_json("tok-sf", ", \"clientToken\": \"t-1\"");
  Appflow__V1__CreateConnectorProfileResponse *first = called("CreateConnectorProfile", req);
  fake_now = T0 + 60 * 1000;
  Appflow__V1__CreateConnectorProfileResponse *again = called("CreateConnectorProfile", req);
  cr_expect_str_eq(again->connector_profile_arn, first->connector_profile_arn);
  const Appflow__V1__ConnectorProfile *p = profile("tok-sf");
  expect_time(p->created_at, T0, "createdAt: the first one's");
  cr_expect_eq(describe("{}")->n_connector_profile_details, 1);
  af_error err;
  /* the same token with another request */
  expect_error(call("CreateConnectorProfile",
                    sf_json("tok-sf", ", \"clientToken\": \"t-1\", \"kmsArn\": "
                                      "\"arn:aws:kms:us-east-1:000000000000:key/k\""),
                    NULL, &err),
               &err, AF_ERR_CONFLICT,
               "clientToken was already used to create connector profile tok-sf with other "
               "parameters");
  expect_error(call("CreateConnectorProfile",
                    profile_json("tok-sf", "Salesforce", SF_PROPERTIES,
                                 "{\"Salesforce\": {\"accessToken\": \"" SECRET_NEW "\"}}",
                                 ", \"clientToken\": \"t-1\""),
                    NULL, &err),
               &err, AF_ERR_CONFLICT, "with other parameters");
  /* another token, or none: the name is taken */
  expect_error(
      call("CreateConnectorProfile", sf_json("tok-sf", ", \"clientToken\": \"t-2\""), NULL, &err),
      &err, AF_ERR_NAME_TAKEN, "A connector profile named tok-sf already exists");
  expect_error(call("CreateConnectorProfile", sf_json("tok-sf", NULL), NULL, &err), &err,
               AF_ERR_NAME_TAKEN, "A connector profile named tok-sf already exists");
  /* a token lasts 8 hours */
  fake_now = T0 + 8 * HOUR_MS - 1;
  called("CreateConnectorProfile", req);
  fake_now = T0 + 8 * HOUR_MS;
  expect_error(call("CreateConnectorProfile", req, NULL, &err), &err, AF_ERR_NAME_TAKEN,
               "already exists");
  /* a retry changed nothing */
  expect_time(profile("tok-sf")->created_at, T0, "createdAt");
  expect_time(profile("tok-sf")->last_updated_at, T0, "lastUpdatedAt");
}

/* ==== the error table ==== */

Test(profile_errors, create_refusals) {
  create_sf("sf-a");
  af_error err;
  expect_error(call("CreateConnectorProfile", sf_json("sf-a", NULL), NULL, &err), &err,
               AF_ERR_NAME_TAKEN, "A connector profile named sf-a already exists");
  cr_expect_eq(af_err_rpc_code(err.code), AF_RPC_ALREADY_EXISTS);
  cr_expect_str_eq(af_err_type(err.code), "ConflictException");
  /* a name taken by another type's profile is taken too */
  expect_error(call("CreateConnectorProfile",
                    profile_json("sf-a", "Snowflake", SNOW_PROPERTIES, SNOW_CREDENTIALS, NULL),
                    NULL, &err),
               &err, AF_ERR_NAME_TAKEN, "sf-a");
  struct {
    const char *what, *json, *message;
  } rows[] = {
      {"properties of another connector",
       profile_json("bad-1", "Salesforce", ZD_PROPERTIES, SF_CREDENTIALS, NULL),
       "Create Connector Profile request failed: [Connector Validation Error: "
       "'connectorProfileConfig.connectorProfileProperties' sets Zendesk but 'connectorType' is "
       "'Salesforce'; they must name the same connector]"},
      {"credentials of another connector",
       profile_json("bad-2", "Salesforce", SF_PROPERTIES, ZD_CREDENTIALS, NULL),
       "Create Connector Profile request failed: [Connector Validation Error: "
       "'connectorProfileConfig.connectorProfileCredentials' sets Zendesk but 'connectorType' is "
       "'Salesforce'; they must name the same connector]"},
      {"properties of no connector",
       profile_json("bad-3", "Salesforce", "{}", SF_CREDENTIALS, NULL),
       "Create Connector Profile request failed: [Connector Validation Error: "
       "'connectorProfileConfig.connectorProfileProperties' sets no connector; it must set "
       "Salesforce, the connectorType]"},
      {"credentials missing", profile_json("bad-4", "Salesforce", SF_PROPERTIES, NULL, NULL),
       "Create Connector Profile request failed: ['connectorProfileConfig."
       "connectorProfileCredentials' is required: a Salesforce connection needs its "
       "credentials]"},
      {"a type that takes no profile", profile_json("bad-5", "S3", "{}", NULL, NULL),
       "Create Connector Profile request failed: [Connector type S3 takes no connector profile: "
       "flows use it without one]"},
      {"EventBridge takes none either", profile_json("bad-6", "EventBridge", "{}", NULL, NULL),
       "Connector type EventBridge takes no connector profile"},
      {"a label on a managed connector",
       profile_json("bad-7", "Salesforce", SF_PROPERTIES, SF_CREDENTIALS,
                    ", \"connectorLabel\": \"acme\""),
       "Create Connector Profile request failed: ['connectorLabel' is only for CustomConnector "
       "profiles; connectorType is Salesforce]"},
      {"a custom connector without its label",
       profile_json("bad-8", "CustomConnector",
                    "{\"CustomConnector\": {\"profileProperties\": {\"a\": \"b\"}}}",
                    "{\"CustomConnector\": {\"authenticationType\": \"APIKEY\", \"apiKey\": "
                    "{\"apiKey\": \"k\"}}}",
                    NULL),
       "Create Connector Profile request failed: ['connectorLabel' is required when "
       "connectorType is CustomConnector: it names the registered connector]"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    af_err rc = call("CreateConnectorProfile", rows[i].json, NULL, &err);
    cr_expect_eq(rc, AF_ERR_VALIDATION, "%s: %d %s", rows[i].what, rc, err.message);
    cr_expect(strstr(err.message, rows[i].message) != NULL, "%s: '%s' does not say '%s'",
              rows[i].what, err.message, rows[i].message);
  }
  /* a custom connector that is not registered */
  expect_error(call("CreateConnectorProfile",
                    profile_json("ghost-prof", "CustomConnector",
                                 "{\"CustomConnector\": {\"profileProperties\": {\"a\": \"b\"}}}",
                                 "{\"CustomConnector\": {\"authenticationType\": \"APIKEY\", "
                                 "\"apiKey\": {\"apiKey\": \"k\"}}}",
                                 ", \"connectorLabel\": \"ghost\""),
                    NULL, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector:ghost is not registered. Please register it first "
                                "before creating ConnectorProfile.");
  /* the model's own checks come first */
  expect_error(call("CreateConnectorProfile", sf_json("has space", NULL), NULL, &err), &err,
               AF_ERR_VALIDATION, "at 'connectorProfileName' failed to satisfy constraint");
  /* nothing refused was stored */
  cr_expect_str_eq(names_of(describe("{}")), "sf-a");
}

Test(profile_errors, update_refusals) {
  create_sf("sf-a");
  af_error err;
  expect_error(call("UpdateConnectorProfile",
                    "{\"connectorProfileName\": \"nope\", \"connectionMode\": \"Public\", "
                    "\"connectorProfileConfig\": {\"connectorProfileProperties\": " SF_PROPERTIES
                    "}}",
                    NULL, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector Profile with name nope does not exist.");
  expect_error(call("UpdateConnectorProfile",
                    "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Private\", "
                    "\"connectorProfileConfig\": {\"connectorProfileProperties\": " ZD_PROPERTIES
                    "}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION,
               "Update Connector Profile request failed: [Connector Validation Error: "
               "'connectorProfileConfig.connectorProfileProperties' sets Zendesk but "
               "'connectorType' is 'Salesforce'; they must name the same connector]");
  expect_error(call("UpdateConnectorProfile",
                    "{\"connectorProfileName\": \"sf-a\", \"connectionMode\": \"Private\", "
                    "\"connectorProfileConfig\": {\"connectorProfileProperties\": " SF_PROPERTIES
                    ", \"connectorProfileCredentials\": " SNOW_CREDENTIALS "}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION,
               "Update Connector Profile request failed: [Connector Validation Error: "
               "'connectorProfileConfig.connectorProfileCredentials' sets Snowflake but "
               "'connectorType' is 'Salesforce'");
  /* refused: nothing changed */
  const Appflow__V1__ConnectorProfile *p = profile("sf-a");
  cr_expect_eq(p->connection_mode, APPFLOW__V1__CONNECTION_MODE__CONNECTION_MODE_PUBLIC);
  cr_expect_not_null(p->connector_profile_properties->salesforce);
}

Test(profile_errors, delete_refusals) {
  af_error err;
  expect_error(delete_profile("nope", false, &err), &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector Profile with name nope does not exist.");
  expect_error(delete_profile("nope", true, &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector Profile with name nope does not exist.");
  create_sf("sf-a");
  flow_created(sf_to_s3("uses_sf", "sf-a"));
  expect_error(delete_profile("sf-a", false, &err), &err, AF_ERR_CONFLICT,
               "Connector profile sf-a is in use by flow uses_sf: delete or change the flows "
               "that use it first, or set forceDelete");
  cr_expect_str_eq(af_err_type(err.code), "ConflictException");
  cr_expect_str_eq(names_of(describe("{}")), "sf-a", "refused: still there");
}

/* ==== CreateFlow's and UpdateFlow's profile checks ==== */

Test(flow_profiles, create_flow_refusals) {
  create_sf("sf");
  create_snowflake("snow");
  af_error err;
  /* a profile that does not exist, on either side */
  expect_error(create_flow(sf_to_s3("f1", "no-such-profile"), &err), &err,
               AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector Profile with name no-such-profile does not exist.");
  expect_error(create_flow(s3_to_sf("f2", "missing-dst"), &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "");
  cr_expect_str_eq(err.message, "Connector Profile with name missing-dst does not exist.");
  /* none named where one is needed */
  expect_error(create_flow(sf_to_s3("f3", NULL), &err), &err, AF_ERR_VALIDATION,
               "'sourceFlowConfig.connectorProfileName' is required: connector type Salesforce is "
               "reached through a connector profile");
  expect_error(create_flow(s3_to_sf("f4", NULL), &err), &err, AF_ERR_VALIDATION,
               "'destinationFlowConfig.connectorProfileName' is required: connector type "
               "Salesforce is reached through a connector profile");
  expect_error(create_flow(sf_to_s3("f4b", ""), &err), &err, AF_ERR_VALIDATION,
               "at 'sourceFlowConfig.connectorProfileName' failed to satisfy constraint");
  /* one of another type */
  expect_error(create_flow(sf_to_s3("f5", "snow"), &err), &err, AF_ERR_VALIDATION,
               "Connector profile snow is for connector type Snowflake, but "
               "sourceFlowConfig.connectorType is Salesforce");
  expect_error(create_flow(s3_to_sf("f6", "snow"), &err), &err, AF_ERR_VALIDATION,
               "Connector profile snow is for connector type Snowflake, but "
               "destinationFlowConfig.connectorType is Salesforce");
  /* a pair the catalog does not support */
  expect_error(
      create_flow(s3_to("f7", NULL, "EventBridge", NULL, "{\"object\": \"partner\"}"), &err), &err,
      AF_ERR_VALIDATION,
      "Connector type EventBridge is not a supported destination for source connector "
      "type S3");
  static const char *const refused[] = {"f1", "f2", "f3", "f4", "f4b", "f5", "f6", "f7"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    cr_expect_not(flow_exists(refused[i]), "%s was made", refused[i]);
  cr_expect_eq(af_flows_count(svc), 0);
  /* and what is right is made: a type that takes no profile ignores a name given */
  flow_created(sf_to_s3("ok1", "sf"));
  flow_created(s3_to_sf("ok2", "sf"));
  flow_created(
      s3_to("ok3", "no-such-profile", "S3", "no-such-either", "{\"bucketName\": \"out-bucket\"}"));
  cr_expect_eq(af_flows_count(svc), 3);
}

Test(flow_profiles, update_flow_refusals) {
  create_sf("sf");
  create_snowflake("snow");
  flow_created(sf_to_s3("fl", "sf"));
  af_error err;
  expect_error(update_flow(sf_to_s3("fl", "missing-too"), &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "");
  cr_expect_str_eq(err.message, "Connector Profile with name missing-too does not exist.");
  expect_error(update_flow(s3_to_sf("fl", "missing-dst"), &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector Profile with name missing-dst does not exist.");
  expect_error(update_flow(sf_to_s3("fl", NULL), &err), &err, AF_ERR_VALIDATION,
               "'sourceFlowConfig.connectorProfileName' is required");
  expect_error(update_flow(s3_to_sf("fl", NULL), &err), &err, AF_ERR_VALIDATION,
               "'destinationFlowConfig.connectorProfileName' is required");
  expect_error(update_flow(sf_to_s3("fl", "snow"), &err), &err, AF_ERR_VALIDATION,
               "Connector profile snow is for connector type Snowflake, but "
               "sourceFlowConfig.connectorType is Salesforce");
  expect_error(update_flow(s3_to_sf("fl", "snow"), &err), &err, AF_ERR_VALIDATION,
               "Connector profile snow is for connector type Snowflake, but "
               "destinationFlowConfig.connectorType is Salesforce");
  expect_error(
      update_flow(s3_to("fl", NULL, "EventBridge", NULL, "{\"object\": \"partner\"}"), &err), &err,
      AF_ERR_VALIDATION,
      "Connector type EventBridge is not a supported destination for source connector "
      "type S3");
  cr_expect_str_eq(flow_source_profile("fl"), "sf", "refused updates changed nothing");
  /* a profile deleted with force: the flow cannot be updated to name it */
  cr_assert_eq(delete_profile("sf", true, &err), AF_OK, "%s", err.message);
  expect_error(update_flow(sf_to_s3("fl", "sf"), &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector Profile with name sf does not exist.");
  cr_assert_eq(update_flow(s3_to_sf("fl", "snow"), &err), AF_ERR_VALIDATION);
  create_sf("sf");
  cr_expect_eq(update_flow(s3_to_sf("fl", "sf"), &err), AF_OK, "%s", err.message);
}

/* ==== deleting a profile a flow uses ==== */

Test(profiles, delete_is_refused_while_a_flow_uses_the_profile) {
  create_sf("sf-a");
  create_sf("sf-b");
  flow_created(sf_to_s3("src_user", "sf-a"));
  flow_created(s3_to_sf("dst_user", "sf-b"));
  af_error err;
  expect_error(delete_profile("sf-a", false, &err), &err, AF_ERR_CONFLICT,
               "Connector profile sf-a is in use by flow src_user");
  expect_error(delete_profile("sf-b", false, &err), &err, AF_ERR_CONFLICT,
               "Connector profile sf-b is in use by flow dst_user");
  /* once the flow is gone, the profile may go */
  cr_assert_eq(test_delete_flow(svc, "src_user", true, &err), AF_OK, "%s", err.message);
  cr_expect_eq(delete_profile("sf-a", false, &err), AF_OK, "%s", err.message);
  /* forceDelete: the profile goes, the flow stays as it was */
  cr_expect_eq(delete_profile("sf-b", true, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(names_of(describe("{}")), "");
  cr_expect(flow_exists("dst_user"));
  expect_error(delete_profile("sf-b", false, &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector Profile with name sf-b does not exist.");
}

Test(profiles, a_name_a_flow_ignores_does_not_hold_the_profile) {
  create_sf("sf-a");
  /* S3 takes no profile: the name given with it is not the flow's */
  flow_created(s3_to("s3_flow", "sf-a", "S3", "sf-a", "{\"bucketName\": \"out-bucket\"}"));
  af_error err;
  cr_expect_eq(delete_profile("sf-a", false, &err), AF_OK, "%s", err.message);
  cr_expect(flow_exists("s3_flow"));
}

/* The flows table's names in the store's order (a scan), in the arena. */
typedef struct order {
  char **names;
  size_t n, cap;
} order;

static bool note(const af_flow_record *r, void *ctx) {
  order *o = ctx;
  cr_assert_lt(o->n, o->cap);
  o->names[o->n++] = af_arena_strndup(&arena, r->name, r->name_len);
  return true;
}

static order flows_in_order(size_t cap) {
  order o = {af_arena_alloc(&arena, cap * sizeof(char *)), 0, cap};
  cr_assert_not_null(o.names);
  af_store_op op = {.table = AF_TABLE_FLOWS, .visit = note, .ctx = &o, .limit = cap};
  cr_assert_eq(af_store_run(store, af_store_scan, &op), AF_STORE_OK);
  return o;
}

/* The delete looks at flows a page of 1024 at a time: a user on any page holds the profile. */
Test(profiles, a_user_anywhere_among_many_flows_holds_the_profile, .timeout = 600) {
  enum { FLOWS = 2100 };
  create_sf("sf-a");
  af_flows_seeder *sd = af_flows_seed_begin(svc);
  cr_assert_not_null(sd);
  af_error err;
  for (int i = 0; i < FLOWS; i++) {
    char name[32];
    snprintf(name, sizeof name, "filler_%04d", i);
    af_flow_spec spec = {.name = name, .name_len = strlen(name), .trigger = T(ON_DEMAND)};
    cr_assert_geq(af_flows_seed_add(sd, &spec, &err), 0, "%s", err.message);
  }
  size_t added = 0;
  cr_assert_eq(af_flows_seed_end(sd, &added, NULL, &err), 0, "%s", err.message);
  cr_assert_eq(added, FLOWS);
  order o = flows_in_order(FLOWS + 1);
  cr_assert_eq(o.n, FLOWS);
  /* the last of the first page, the first of the second, the last of the third */
  static const size_t at[] = {1023, 1024, FLOWS - 1};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    const char *name = o.names[at[i]];
    cr_assert_eq(test_delete_flow(svc, name, true, &err), AF_OK, "%s", err.message);
    flow_created(i == 1 ? s3_to_sf(name, "sf-a") : sf_to_s3(name, "sf-a"));
    cr_assert_str_eq(flows_in_order(FLOWS + 1).names[at[i]], name, "the user is where it was");
    af_err rc = delete_profile("sf-a", false, &err);
    cr_expect_eq(rc, AF_ERR_CONFLICT, "a user at %zu of %d flows was not found: %s", at[i], FLOWS,
                 err.message);
    cr_expect(strstr(err.message, name) != NULL, "%s", err.message);
    if (rc == AF_OK)
      create_sf("sf-a"); /* deleted when it should not have been: for the next position */
    cr_assert_eq(test_delete_flow(svc, name, true, &err), AF_OK, "%s", err.message);
    test_seed_flow(svc, name, T(ON_DEMAND), 0);
  }
  /* no user at all: it goes */
  cr_expect_eq(delete_profile("sf-a", false, &err), AF_OK, "%s", err.message);
  cr_expect_eq(af_flows_count(svc), FLOWS);
}

/* ==== pages and filters ==== */

/* Every page of DescribeConnectorProfiles with json's members (a JSON object's inside, may be
 * empty) and maxResults max, names joined by ' ' in the order they came; *pages gets how many
 * pages it took. */
static const char *all_pages(const char *members, int max, int *pages) {
  char *out = af_arena_alloc(&arena, 16384);
  cr_assert_not_null(out);
  out[0] = '\0';
  *pages = 0;
  const char *token = NULL;
  do {
    const char *req =
        token
            ? arena_printf(&arena, "{%s%s\"maxResults\": %d, \"nextToken\": \"%s\"}", members,
                           *members ? ", " : "", max, token)
            : arena_printf(&arena, "{%s%s\"maxResults\": %d}", members, *members ? ", " : "", max);
    Appflow__V1__DescribeConnectorProfilesResponse *r = describe(req);
    cr_expect_leq(r->n_connector_profile_details, (size_t)max);
    cr_expect(r->next_token == NULL || r->n_connector_profile_details == (size_t)max,
              "a short page before the end");
    const char *names = names_of(r);
    size_t o = strlen(out);
    snprintf(out + o, 16384 - o, "%s%s", o && *names ? " " : "", names);
    token = r->next_token;
    cr_assert_lt(++*pages, 200, "pages do not end");
  } while (token != NULL);
  return out;
}

/* The names of s (joined by ' '), sorted, so pages in the store's order compare. */
static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *sorted(const char *s) {
  char *copy = af_arena_strndup(&arena, s, strlen(s));
  char *v[256];
  size_t n = 0;
  for (char *t = strtok(copy, " "); t != NULL; t = strtok(NULL, " ")) {
    cr_assert_lt(n, 256);
    v[n++] = t;
  }
  qsort(v, n, sizeof v[0], by_name);
  char *out = af_arena_alloc(&arena, strlen(s) + 1);
  cr_assert_not_null(out);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    strcat(out, i ? " " : "");
    strcat(out, v[i]);
  }
  return out;
}

Test(profiles, pages_cover_every_profile_once) {
  char want_all[2560] = "", want_sf[2048] = "";
  for (int i = 0; i < 23; i++) {
    char name[32];
    snprintf(name, sizeof name, "page-sf-%02d", i);
    create_sf(name);
    snprintf(want_sf + strlen(want_sf), sizeof want_sf - strlen(want_sf), "%s%s", i ? " " : "",
             name);
  }
  create_snowflake("page-snow-1");
  create_snowflake("page-snow-2");
  snprintf(want_all, sizeof want_all, "%s %s", want_sf, "page-snow-1 page-snow-2");
  const char *want = sorted(want_all);
  const char *unpaged = names_of(describe("{\"maxResults\": 100}"));
  cr_expect_str_eq(sorted(unpaged), want);
  static const int maxes[] = {1, 2, 7, 24, 25, 26, 100};
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
    int pages;
    const char *got = all_pages("", maxes[i], &pages);
    cr_expect_str_eq(got, unpaged, "maxResults %d: every profile once, in one order", maxes[i]);
    cr_expect_eq(pages, (25 + maxes[i] - 1) / maxes[i], "maxResults %d", maxes[i]);
    /* with a filter, pages skip what it leaves out */
    cr_expect_str_eq(sorted(all_pages("\"connectorType\": \"Salesforce\"", maxes[i], &pages)),
                     sorted(want_sf), "maxResults %d", maxes[i]);
  }
  /* the default page is AppFlow's 20 */
  Appflow__V1__DescribeConnectorProfilesResponse *r = describe("{}");
  cr_expect_eq(r->n_connector_profile_details, 20);
  cr_assert_not_null(r->next_token);
  r = describe(arena_printf(&arena, "{\"nextToken\": \"%s\"}", r->next_token));
  cr_expect_eq(r->n_connector_profile_details, 5);
  cr_expect_null(r->next_token);
}

Test(profiles, a_bad_or_foreign_token_is_refused) {
  create_sf("sf-a");
  create_sf("sf-b");
  af_error err;
  Appflow__V1__DescribeConnectorProfilesResponse *r;
  expect_error(call("DescribeConnectorProfiles", "{\"nextToken\": \"bm90LWEtdG9rZW4\"}", &r, &err),
               &err, AF_ERR_VALIDATION,
               "Invalid nextToken: pass the nextToken of a previous DescribeConnectorProfiles "
               "response unchanged");
  /* a ListFlows token */
  test_seed_flow(svc, "f1", T(ON_DEMAND), 0);
  test_seed_flow(svc, "f2", T(ON_DEMAND), 0);
  Appflow__V1__ListFlowsResponse *flows = called("ListFlows", "{\"maxResults\": 1}");
  cr_assert_not_null(flows->next_token);
  expect_error(call("DescribeConnectorProfiles",
                    arena_printf(&arena, "{\"nextToken\": \"%s\"}", flows->next_token), &r, &err),
               &err, AF_ERR_VALIDATION, "Invalid nextToken");
  /* and the other way */
  r = describe("{\"maxResults\": 1}");
  cr_assert_not_null(r->next_token);
  const char *token = r->next_token;
  expect_error(
      call("ListFlows", arena_printf(&arena, "{\"nextToken\": \"%s\"}", token), NULL, &err), &err,
      AF_ERR_VALIDATION, "Invalid nextToken");
  /* changed */
  char *changed = af_arena_strndup(&arena, token, strlen(token));
  changed[strlen(changed) / 2] = changed[strlen(changed) / 2] == 'A' ? 'B' : 'A';
  expect_error(call("DescribeConnectorProfiles",
                    arena_printf(&arena, "{\"nextToken\": \"%s\"}", changed), &r, &err),
               &err, AF_ERR_VALIDATION, "Invalid nextToken");
  /* another server's (another store's key) */
  af_store *other_store;
  af_flows *other = test_service_new(NULL, &other_store);
  cr_expect_eq(call_on(other, "DescribeConnectorProfiles",
                       arena_printf(&arena, "{\"nextToken\": \"%s\"}", token), &r, &err),
               AF_ERR_VALIDATION, "%s", err.message);
  test_service_free(other, other_store);
  /* the token itself works */
  r = describe(arena_printf(&arena, "{\"nextToken\": \"%s\"}", token));
  cr_expect_eq(r->n_connector_profile_details, 1);
}

Test(profiles, filters) {
  create_sf("sf-a");
  create_sf("sf-b");
  create_snowflake("snow-a");
  called("RegisterConnector", "{\"connectorLabel\": \"acme\", \"connectorProvisioningType\": "
                              "\"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\": "
                              "{\"lambdaArn\": \"" LAMBDA "\"}}}");
  called("RegisterConnector", "{\"connectorLabel\": \"other\", \"connectorProvisioningType\": "
                              "\"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\": "
                              "{\"lambdaArn\": \"" LAMBDA "\"}}}");
  static const char custom_config[] =
      "\"connectorProfileConfig\": {\"connectorProfileProperties\": {\"CustomConnector\": "
      "{\"profileProperties\": {\"a\": \"b\"}}}, \"connectorProfileCredentials\": "
      "{\"CustomConnector\": {\"authenticationType\": \"APIKEY\", \"apiKey\": {\"apiKey\": "
      "\"k\"}}}}";
  called("CreateConnectorProfile",
         arena_printf(&arena,
                      "{\"connectorProfileName\": \"acme-prof\", \"connectorType\": "
                      "\"CustomConnector\", \"connectorLabel\": \"acme\", \"connectionMode\": "
                      "\"Public\", %s}",
                      custom_config));
  called("CreateConnectorProfile",
         arena_printf(&arena,
                      "{\"connectorProfileName\": \"other-prof\", \"connectorType\": "
                      "\"CustomConnector\", \"connectorLabel\": \"other\", \"connectionMode\": "
                      "\"Public\", %s}",
                      custom_config));
  cr_expect_str_eq(sorted(names_of(describe("{}"))), "acme-prof other-prof sf-a sf-b snow-a");
  cr_expect_str_eq(
      sorted(names_of(describe("{\"connectorProfileNames\": [\"sf-b\", \"nope\", \"snow-a\"]}"))),
      "sf-b snow-a");
  cr_expect_str_eq(names_of(describe("{\"connectorProfileNames\": [\"nope\"]}")), "");
  cr_expect_str_eq(sorted(names_of(describe("{\"connectorType\": \"Salesforce\"}"))), "sf-a sf-b");
  cr_expect_str_eq(names_of(describe("{\"connectorType\": \"Snowflake\"}")), "snow-a");
  cr_expect_str_eq(names_of(describe("{\"connectorType\": \"Zendesk\"}")), "");
  cr_expect_str_eq(sorted(names_of(describe("{\"connectorType\": \"CustomConnector\"}"))),
                   "acme-prof other-prof");
  cr_expect_str_eq(names_of(describe("{\"connectorLabel\": \"acme\"}")), "acme-prof");
  cr_expect_str_eq(names_of(describe("{\"connectorLabel\": \"nobody\"}")), "");
  /* filters together: all must hold */
  cr_expect_str_eq(names_of(describe("{\"connectorProfileNames\": [\"sf-a\", \"snow-a\"], "
                                     "\"connectorType\": \"Snowflake\"}")),
                   "snow-a");
  cr_expect_str_eq(names_of(describe("{\"connectorProfileNames\": [\"sf-a\"], "
                                     "\"connectorType\": \"Snowflake\"}")),
                   "");
  cr_expect_str_eq(names_of(describe("{\"connectorType\": \"CustomConnector\", "
                                     "\"connectorLabel\": \"other\"}")),
                   "other-prof");
  cr_expect_str_eq(names_of(describe("{\"connectorType\": \"Salesforce\", "
                                     "\"connectorLabel\": \"acme\"}")),
                   "");
}

/* ==== the profiles' table is not the flows' ==== */

Test(profiles, profiles_are_not_flows) {
  create_sf("sf-a");
  create_sf("p2");
  create_snowflake("p3");
  cr_expect_eq(af_flows_count(svc), 0);
  Appflow__V1__ListFlowsResponse *l = called("ListFlows", "{}");
  cr_expect_eq(l->n_flows, 0);
  cr_expect_not(flow_exists("sf-a"));
  /* a flow may have a profile's name: each in its own table */
  flow_created(sf_to_s3("sf-a", "sf-a"));
  cr_expect_eq(af_flows_count(svc), 1);
  l = called("ListFlows", "{}");
  cr_assert_eq(l->n_flows, 1);
  cr_expect_str_eq(l->flows[0]->flow_name, "sf-a");
  cr_expect_str_eq(sorted(names_of(describe("{}"))), "p2 p3 sf-a");
  af_error err;
  cr_assert_eq(test_delete_flow(svc, "sf-a", true, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(sorted(names_of(describe("{}"))), "p2 p3 sf-a", "the profile stays");
  flow_created(sf_to_s3("fl", "p2"));
  cr_assert_eq(delete_profile("p3", false, &err), AF_OK, "%s", err.message);
  cr_expect_eq(af_flows_count(svc), 1, "the flows stay");
  cr_expect(flow_exists("fl"));
}
