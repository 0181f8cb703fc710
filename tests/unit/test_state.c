/* src/flows/state.c on the store AF_TEST_STORE names (store_under_test.h): the state's entries
 * cover every account and region, in a fixed order, with no credentials; a reset leaves nothing
 * but the instances' leases, and the seeder makes flows in the account and region a spec names. */
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define FLOW_JSON                                                                                  \
  "{\"flowName\": \"%s\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "                    \
  "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": {\"S3\": "     \
  "{\"bucketName\": \"src\"}}}, \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "      \
  "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}], \"tasks\": "         \
  "[{\"sourceFields\": [\"a\"], \"taskType\": \"Map_all\", \"connectorOperator\": {\"S3\": "       \
  "\"NO_OP\"}, \"taskProperties\": {}}]}"

/* Seeds the flow name in account/region (NULL: the service's) with a whole definition. */
static void seed_flow(af_flows *svc, const char *account, const char *region, const char *name) {
  af_arena a;
  af_arena_init(&a);
  Appflow__V1__CreateFlowRequest *req =
      request_from_json(&af_model_CreateFlowRequest, arena_printf(&a, FLOW_JSON, name), &a);
  af_error err;
  cr_assert_eq(af_flows_check_create(svc, req, &err), AF_OK, "%s", err.message);
  af_flow_spec spec = {.name = name,
                       .name_len = strlen(name),
                       .trigger = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND,
                       .definition = req,
                       .account = account,
                       .region = region};
  bool added = false;
  cr_assert_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_OK, "%s", err.message);
  cr_assert(added);
  af_arena_destroy(&a);
}

/* What the state visits, as "ACCOUNT/REGION/KIND/NAME" lines. */
typedef struct seen {
  char text[4096];
  bool credentials;
} seen;

static bool note(const af_state_entry *e, void *ctx) {
  seen *s = ctx;
  const char *name = "?";
  if (e->kind == AF_STATE_FLOW)
    name = ((const Appflow__V1__CreateFlowRequest *)e->request)->flow_name;
  if (e->kind == AF_STATE_PROFILE) {
    const Appflow__V1__CreateConnectorProfileRequest *p = (const void *)e->request;
    name = p->connector_profile_name;
    s->credentials |= p->connector_profile_config->connector_profile_credentials != NULL;
  }
  size_t n = strlen(s->text);
  snprintf(s->text + n, sizeof s->text - n, "%s/%s/%d/%s\n", e->account, e->region, (int)e->kind,
           name);
  return true;
}

static void state_of(af_flows *svc, seen *s) {
  *s = (seen){0};
  af_error err;
  cr_assert_eq(af_flows_state(svc, note, s, &err), AF_OK, "%s", err.message);
}

Test(state, every_scope_in_order_without_credentials_then_nothing_after_a_reset) {
  af_store *st;
  af_flows *svc = test_service_new(NULL, &st);
  seed_flow(svc, "222222222222", "eu-west-1", "zz");
  seed_flow(svc, NULL, NULL, "bb");
  seed_flow(svc, "111111111111", NULL, "bb");
  seed_flow(svc, NULL, NULL, "aa");
  test_salesforce_profile(svc, "sf");
  seen s;
  state_of(svc, &s);
  cr_expect_str_eq(s.text, "000000000000/us-east-1/1/sf\n"
                           "000000000000/us-east-1/2/aa\n"
                           "000000000000/us-east-1/2/bb\n"
                           "111111111111/us-east-1/2/bb\n"
                           "222222222222/eu-west-1/2/zz\n");
  cr_expect_not(s.credentials, "a profile's credentials left the store");

  af_reset_result res;
  af_error err;
  cr_assert_eq(af_flows_reset(svc, &res, &err), AF_OK, "%s", err.message);
  cr_expect_eq(res.flows, 4);
  cr_expect_eq(res.profiles, 1);
  cr_expect_eq(res.connectors, 0);
  cr_expect_eq(res.timers, 2, "the two scopes' rows"); /* no scheduler ran: no clock row */
  state_of(svc, &s);
  cr_expect_str_eq(s.text, "");
  cr_expect_eq(af_flows_count(svc), 0);
  /* the scopes are recorded again when used again */
  seed_flow(svc, "111111111111", NULL, "cc");
  state_of(svc, &s);
  cr_expect_str_eq(s.text, "111111111111/us-east-1/2/cc\n");
  test_service_free(svc, st);
}

Test(state, a_malformed_account_is_the_seeders_validation_error) {
  af_store *st;
  af_flows *svc = test_service_new(NULL, &st);
  af_flow_spec spec = {.name = "aa",
                       .name_len = 2,
                       .trigger = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT,
                       .account = "12"};
  af_error err;
  cr_expect_eq(af_flows_seed_one(svc, &spec, NULL, &err), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "not an AWS account id") != NULL, "%s", err.message);
  cr_expect_eq(af_flows_count(svc), 0);
  test_service_free(svc, st);
}
