/* src/flows/runs.c: a flow's runs, on the store AF_TEST_STORE names, with a clock the tests move:
 * a run InProgress for the service's run duration and then Successful, cancelled runs
 * CancelStarted and then Canceled, CancelFlowExecutions' invalid ids, records newest first in
 * pages with sealed tokens, data pull windows that continue, the run log's bound, and
 * DescribeFlow's lastRunExecutionDetails following the latest run. */
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define T0 1700000000000LL
#define DURATION_MS 2000
#define ES(x) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##x

static af_flows *svc;
static af_store *store;
static af_arena arena;

static void setup(void) {
  fake_now = T0;
  svc = test_service_new(
      &(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .run_duration_ms = DURATION_MS},
      &store);
  af_arena_init(&arena);
  af_error err;
  cr_assert_eq(call_json(svc, "CreateFlow",
                         "{\"flowName\": \"f1\", \"triggerConfig\": {\"triggerType\": "
                         "\"OnDemand\"}, \"sourceFlowConfig\": {\"connectorType\": \"S3\", "
                         "\"sourceConnectorProperties\": {\"S3\": {\"bucketName\": \"src\"}}}, "
                         "\"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "
                         "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": "
                         "\"dst\"}}}], \"tasks\": [{\"sourceFields\": [], \"taskType\": "
                         "\"Map_all\"}]}",
                         &arena, NULL, &err),
               AF_OK, "%s", err.message);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
}

TestSuite(runs, .init = setup, .fini = teardown);

/* StartFlow of f; the run's id, in the arena. */
static const char *start(void) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "StartFlow", "{\"flowName\": \"f1\"}", &arena, &resp, &err), AF_OK,
               "%s", err.message);
  const char *id = ((Appflow__V1__StartFlowResponse *)resp)->execution_id;
  cr_assert_not_null(id);
  return id;
}

static Appflow__V1__DescribeFlowExecutionRecordsResponse *records(const char *json, af_err want) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "DescribeFlowExecutionRecords", json, &arena, &resp, &err), want,
               "%s", err.message);
  return (Appflow__V1__DescribeFlowExecutionRecordsResponse *)resp;
}

/* The status run id has now. */
static Appflow__V1__ExecutionStatus status_of(const char *id) {
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r =
      records("{\"flowName\": \"f1\", \"maxResults\": 100}", AF_OK);
  for (size_t i = 0; i < r->n_flow_executions; i++)
    if (strcmp(r->flow_executions[i]->execution_id, id) == 0)
      return r->flow_executions[i]->execution_status;
  cr_assert_fail("run %s is not listed", id);
  return 0;
}

static Appflow__V1__CancelFlowExecutionsResponse *cancel(const char *json) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "CancelFlowExecutions", json, &arena, &resp, &err), AF_OK, "%s",
               err.message);
  return (Appflow__V1__CancelFlowExecutionsResponse *)resp;
}

static Appflow__V1__ExecutionStatus last_run(void) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "DescribeFlow", "{\"flowName\": \"f1\"}", &arena, &resp, &err),
               AF_OK);
  const Appflow__V1__ExecutionDetails *d =
      ((Appflow__V1__DescribeFlowResponse *)resp)->last_run_execution_details;
  cr_assert_not_null(d);
  return d->most_recent_execution_status;
}

Test(runs, in_progress_for_the_run_duration_then_successful) {
  const char *id = start();
  cr_expect_eq(status_of(id), ES(IN_PROGRESS));
  cr_expect_eq(last_run(), ES(IN_PROGRESS));
  fake_now = T0 + DURATION_MS - 1;
  cr_expect_eq(status_of(id), ES(IN_PROGRESS));
  fake_now = T0 + DURATION_MS;
  cr_expect_eq(status_of(id), ES(SUCCESSFUL));
  cr_expect_eq(last_run(), ES(SUCCESSFUL));
  Appflow__V1__ExecutionRecord *r = records("{\"flowName\": \"f1\"}", AF_OK)->flow_executions[0];
  cr_expect_eq(r->started_at->seconds, T0 / 1000);
  cr_expect_eq(r->last_updated_at->seconds, (T0 + DURATION_MS) / 1000, "when it ended");
  cr_expect_eq(r->data_pull_end_time->seconds, T0 / 1000);
}

Test(runs, cancelled_runs_and_invalid_ids) {
  const char *a = start(), *b = start();
  fake_now = T0 + 10;
  Appflow__V1__CancelFlowExecutionsResponse *c =
      cancel("{\"flowName\": \"f1\", \"executionIds\": [\"nope\"]}");
  cr_assert_eq(c->n_invalid_executions, 1);
  cr_expect_str_eq(c->invalid_executions[0], "nope");
  char json[256];
  snprintf(json, sizeof json, "{\"flowName\": \"f1\", \"executionIds\": [\"%s\"]}", a);
  cr_expect_eq(cancel(json)->n_invalid_executions, 0);
  cr_expect_eq(status_of(a), ES(CANCEL_STARTED));
  cr_expect_eq(status_of(b), ES(IN_PROGRESS), "only the one named");
  fake_now = T0 + 10 + 1000;
  cr_expect_eq(status_of(a), ES(CANCELED));
  cr_expect_eq(cancel(json)->n_invalid_executions, 1, "no longer in progress");
  cr_expect_eq(cancel("{\"flowName\": \"f1\"}")->n_invalid_executions, 0);
  cr_expect_eq(status_of(b), ES(CANCEL_STARTED), "none named: every run in progress");
  fake_now = T0 + 100000;
  cr_expect_eq(status_of(b), ES(CANCELED), "a cancelled run never succeeds");
  af_error err;
  cr_expect_eq(call_json(svc, "CancelFlowExecutions", "{\"flowName\": \"g1\"}", &arena, NULL, &err),
               AF_ERR_RESOURCE_NOT_FOUND);
}

Test(runs, records_newest_first_in_pages) {
  const char *ids[30];
  for (int i = 0; i < 30; i++) {
    fake_now = T0 + i * 1000;
    ids[i] = start();
  }
  fake_now = T0 + 100000;
  size_t seen = 0;
  const char *token = NULL;
  int64_t prev_start = INT64_MAX, prev_pull_start = -1;
  do {
    char json[512];
    snprintf(json, sizeof json, "{\"flowName\": \"f1\", \"maxResults\": 7%s%s%s}",
             token ? ", \"nextToken\": \"" : "", token ? token : "", token ? "\"" : "");
    Appflow__V1__DescribeFlowExecutionRecordsResponse *r = records(json, AF_OK);
    cr_assert_leq(r->n_flow_executions, 7);
    for (size_t i = 0; i < r->n_flow_executions; i++, seen++) {
      Appflow__V1__ExecutionRecord *e = r->flow_executions[i];
      cr_expect_str_eq(e->execution_id, ids[29 - seen], "newest first");
      cr_expect_lt(e->started_at->seconds, prev_start);
      if (prev_pull_start >= 0)
        cr_expect_eq(e->data_pull_end_time->seconds, prev_pull_start, "windows continue");
      prev_start = e->started_at->seconds;
      prev_pull_start = e->data_pull_start_time->seconds;
    }
    token = r->next_token;
  } while (token != NULL);
  cr_expect_eq(seen, 30);
  cr_expect_eq(records("{\"flowName\": \"f1\"}", AF_OK)->n_flow_executions, 20, "default page");
  records("{\"flowName\": \"f1\", \"nextToken\": \"bm9wZQ\"}", AF_ERR_VALIDATION);
  records("{\"flowName\": \"g1\"}", AF_ERR_RESOURCE_NOT_FOUND);
}

Test(runs, the_run_log_keeps_the_latest_100) {
  const char *first = start();
  for (int i = 0; i < 105; i++)
    start();
  size_t n = 0;
  const char *token = NULL;
  do {
    char json[512];
    snprintf(json, sizeof json, "{\"flowName\": \"f1\", \"maxResults\": 100%s%s%s}",
             token ? ", \"nextToken\": \"" : "", token ? token : "", token ? "\"" : "");
    Appflow__V1__DescribeFlowExecutionRecordsResponse *r = records(json, AF_OK);
    for (size_t i = 0; i < r->n_flow_executions; i++)
      cr_expect_str_neq(r->flow_executions[i]->execution_id, first);
    n += r->n_flow_executions;
    token = r->next_token;
  } while (token != NULL);
  cr_expect_eq(n, 100);
}

/* ListFlows reads only the head of each run log: the latest of many runs, as DescribeFlow. */
Test(runs, list_flows_follows_the_latest_of_many_runs) {
  for (int i = 0; i < 50; i++) {
    fake_now = T0 + i * 10000;
    start();
  }
  const char *latest = start();
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "ListFlows", "{}", &arena, &resp, &err), AF_OK, "%s", err.message);
  Appflow__V1__ListFlowsResponse *l = (Appflow__V1__ListFlowsResponse *)resp;
  cr_assert_eq(l->n_flows, 1);
  const Appflow__V1__ExecutionDetails *d = l->flows[0]->last_run_execution_details;
  cr_assert_not_null(d);
  cr_expect_eq(d->most_recent_execution_status, ES(IN_PROGRESS));
  cr_expect_eq(d->most_recent_execution_time->seconds, fake_now / 1000);
  cr_expect(strstr(d->most_recent_execution_message, latest) != NULL, "%s",
            d->most_recent_execution_message);
  fake_now += DURATION_MS;
  cr_assert_eq(call_json(svc, "ListFlows", "{}", &arena, &resp, &err), AF_OK);
  l = (Appflow__V1__ListFlowsResponse *)resp;
  cr_expect_eq(l->flows[0]->last_run_execution_details->most_recent_execution_status,
               ES(SUCCESSFUL));
  cr_expect_eq(last_run(), ES(SUCCESSFUL), "DescribeFlow says the same");
}
