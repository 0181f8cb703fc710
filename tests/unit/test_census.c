/* src/flows/census.c, on the store AF_TEST_STORE names: flows counted by status over more than
 * one page of the scan, runs counted by where they are on the service's clock, every status
 * reported (zeros too) for the service's account and region, and the service's own records
 * (a clientToken's) never counted as flows. */
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define T0 1700000000000LL
#define DURATION_MS 2000
#define FS(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static af_flows *svc;
static af_store *store;
static af_arena arena;

static void setup(void) {
  fake_now = T0;
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL},
                                            .run_duration_ms = DURATION_MS,
                                            .account = "123456789012",
                                            .region = "eu-west-3"},
                         &store);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
}

TestSuite(census, .init = setup, .fini = teardown);

/* One census: each (kind, status) count, and how many rows came. */
#define ROWS 16
typedef struct tally {
  struct {
    af_census_kind kind;
    char status[32];
    uint64_t count;
  } row[ROWS];
  size_t n;
} tally;

static void on_count(void *ctx, af_census_kind kind, const char *account, const char *region,
                     const char *status, uint64_t count) {
  tally *t = ctx;
  cr_expect_str_eq(account, "123456789012");
  cr_expect_str_eq(region, "eu-west-3");
  cr_assert_lt(t->n, ROWS);
  t->row[t->n].kind = kind;
  snprintf(t->row[t->n].status, sizeof t->row[t->n].status, "%s", status);
  t->row[t->n++].count = count;
}

static tally take(void) {
  tally t = {.n = 0};
  af_error err;
  cr_assert_eq(af_flows_census(svc, on_count, &t, &err), AF_OK, "%s", err.message);
  return t;
}

/* The count of status of kind; the test fails when it was not reported. */
static uint64_t count_of(const tally *t, af_census_kind kind, const char *status) {
  for (size_t i = 0; i < t->n; i++)
    if (t->row[i].kind == kind && strcmp(t->row[i].status, status) == 0)
      return t->row[i].count;
  cr_assert_fail("%s not reported", status);
  return 0;
}

static uint64_t flows(const tally *t, const char *s) { return count_of(t, AF_CENSUS_FLOWS, s); }
static uint64_t runs(const tally *t, const char *s) { return count_of(t, AF_CENSUS_EXECUTIONS, s); }

Test(census, an_empty_store_reports_every_status_as_zero) {
  tally t = take();
  cr_expect_eq(t.n, 6 + 5, "six flow statuses, five run statuses");
  static const char *const fs[] = {"Active", "Deprecated", "Deleted",
                                   "Draft",  "Errored",    "Suspended"};
  static const char *const es[] = {"InProgress", "Successful", "Error", "CancelStarted",
                                   "Canceled"};
  for (size_t i = 0; i < 6; i++)
    cr_expect_eq(flows(&t, fs[i]), 0, "%s", fs[i]);
  for (size_t i = 0; i < 5; i++)
    cr_expect_eq(runs(&t, es[i]), 0, "%s", es[i]);
}

/* More flows than one page of the scan holds, each counted once. */
Test(census, flows_by_status_across_pages) {
  static const Appflow__V1__FlowStatus cycle[] = {FS(ACTIVE), FS(SUSPENDED), FS(DRAFT)};
  for (int i = 0; i < 1200; i++) {
    char name[32];
    snprintf(name, sizeof name, "flow_%04d", i);
    test_seed_flow(svc, name, APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED, cycle[i % 3]);
  }
  test_seed_flow(svc, "broken", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND, FS(ERRORED));
  tally t = take();
  cr_expect_eq(flows(&t, "Active"), 400);
  cr_expect_eq(flows(&t, "Suspended"), 400);
  cr_expect_eq(flows(&t, "Draft"), 400);
  cr_expect_eq(flows(&t, "Errored"), 1);
  cr_expect_eq(flows(&t, "Deleted"), 0);
}

static const char *const create_f1 =
    "{\"flowName\": \"f1\", \"clientToken\": \"token-1\", \"triggerConfig\": {\"triggerType\": "
    "\"OnDemand\"}, \"sourceFlowConfig\": {\"connectorType\": \"S3\", "
    "\"sourceConnectorProperties\": {\"S3\": {\"bucketName\": \"src\"}}}, "
    "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "
    "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}], \"tasks\": "
    "[{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}";

static void call(const char *op, const char *json) {
  af_error err;
  cr_assert_eq(call_json(svc, op, json, &arena, NULL, &err), AF_OK, "%s: %s", op, err.message);
}

/* Runs as they are now: in progress, then ended; a cancelled one CancelStarted, then Canceled.
 * The clientToken's own record is not a flow. */
Test(census, runs_by_where_they_are_now) {
  call("CreateFlow", create_f1);
  call("StartFlow", "{\"flowName\": \"f1\"}");
  call("StartFlow", "{\"flowName\": \"f1\"}");
  call("StartFlow", "{\"flowName\": \"f1\"}");
  tally t = take();
  cr_expect_eq(flows(&t, "Active"), 1, "one flow: the token's record is the service's own");
  cr_expect_eq(runs(&t, "InProgress"), 3);
  fake_now = T0 + 10;
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(
      call_json(svc, "DescribeFlowExecutionRecords", "{\"flowName\": \"f1\"}", &arena, &resp, &err),
      AF_OK);
  char json[256];
  snprintf(json, sizeof json, "{\"flowName\": \"f1\", \"executionIds\": [\"%s\"]}",
           ((Appflow__V1__DescribeFlowExecutionRecordsResponse *)resp)
               ->flow_executions[0]
               ->execution_id);
  call("CancelFlowExecutions", json);
  t = take();
  cr_expect_eq(runs(&t, "InProgress"), 2);
  cr_expect_eq(runs(&t, "CancelStarted"), 1);
  fake_now = T0 + DURATION_MS;
  t = take();
  cr_expect_eq(runs(&t, "InProgress"), 0);
  cr_expect_eq(runs(&t, "Successful"), 2);
  cr_expect_eq(runs(&t, "Canceled"), 1);
  cr_expect_eq(runs(&t, "Error"), 0);
}
