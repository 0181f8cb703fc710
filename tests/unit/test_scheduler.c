/* src/flows/scheduler.c and emulator.c through the control API's JSON (src/admin/control.c), on
 * the store AF_TEST_STORE names, with a clock only the tests move: rate() and cron() schedules
 * firing at their instants with contiguous data windows, scheduleStartTime/EndTime and
 * scheduleOffset, none while Draft or Suspended, scripted outcomes and errorInfo, the
 * deactivation threshold, event flows, two services on one store firing each run once, and a
 * restart ending the runs left in progress. */
#include "thread_fail.h" /* first: it defines pthread_create */

#include "admin/control.h"
#include "flows/service.h"

#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */
#define MIN 60000LL
#define DURATION_MS 2000
#define ES(x) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##x
#define FS(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static af_flows *svc;
static af_store *store;
static af_arena arena;

static af_flows *service_on(af_store *s) {
  af_error err;
  af_flows *v = af_flows_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL},
                                                .run_duration_ms = DURATION_MS,
                                                .store = s},
                             &err);
  cr_assert_not_null(v, "%s", err.message);
  /* a tick an hour: the tests' AdvanceClocks are what fire runs */
  cr_assert_eq(af_flows_scheduler_start(v, 3600 * 1000, NULL, &err), AF_OK, "%s", err.message);
  return v;
}

static void setup(void) {
  fake_now = T0;
  store = test_store_open();
  svc = service_on(store);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  af_flows_free(svc);
  test_store_close(store);
}

TestSuite(scheduler, .init = setup, .fini = teardown);

/* The scheduler's thread failing to start is an error saying why in pthread_create's own words
 * (it returns its error and sets no errno); nothing is left half started, and a later start
 * works. */
Test(scheduler, a_thread_that_cannot_start_is_reported) {
  af_error err;
  af_flows *v = af_flows_new(
      &(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .store = store}, &err);
  cr_assert_not_null(v, "%s", err.message);
  thread_fail_arm(0, 1);
  cr_expect_eq(af_flows_scheduler_start(v, 3600 * 1000, NULL, &err), AF_ERR_INTERNAL_SERVER);
  thread_fail_disarm();
  cr_expect_eq(thread_fail_calls(), 1);
  char want[256];
  snprintf(want, sizeof want, "cannot start the scheduler: %s", thread_fail_reason());
  cr_expect_str_eq(err.message, want);
  cr_expect_eq(af_flows_scheduler_start(v, 3600 * 1000, NULL, &err), AF_OK, "%s", err.message);
  af_flows_free(v);
}

/* The control API call POST path body on v, in arena a: its error code, and its JSON answer in
 * *out. */
static af_err control_in(af_flows *v, af_arena *a, const char *path, const char *body,
                         const char **out) {
  const af_rpc *rpc;
  ProtobufCMessage *req;
  af_error err = {AF_OK, ""};
  af_err rc = af_control_decode(v, "POST", path, body, strlen(body), a, &rpc, &req, &err);
  ProtobufCMessage *resp = NULL;
  if (rc == AF_OK) {
    resp = af_arena_alloc(a, rpc->output->sizeof_message);
    protobuf_c_message_init(rpc->output, resp);
    rc = af_flows_call_sync(v, rpc, req, resp, a, &err);
  }
  if (out != NULL)
    *out = rc == AF_OK ? af_control_encode(rpc, resp, a) : af_control_error(&err, a);
  return rc;
}

static af_err control_on(af_flows *v, const char *path, const char *body, const char **out) {
  return control_in(v, &arena, path, body, out);
}

static const char *control(const char *path, const char *body) {
  const char *out;
  af_err rc = control_on(svc, path, body, &out);
  cr_assert_eq(rc, AF_OK, "%s %s: %s", path, body, out);
  return out;
}

/* Moves the clock on by ms through v, in arena a (threads each have their own). */
static void advance_in(af_flows *v, af_arena *a, int64_t ms) {
  char body[64];
  snprintf(body, sizeof body, "{\"advanceSeconds\": %.3f}", (double)ms / 1000);
  cr_assert_eq(control_in(v, a, "/emulator/clock", body, NULL), AF_OK);
}

static void advance_on(af_flows *v, int64_t ms) { advance_in(v, &arena, ms); }

static void advance(int64_t ms) { advance_on(svc, ms); }

static void call_ok(const char *op, const char *json) {
  af_error err;
  cr_assert_eq(call_json(svc, op, json, &arena, NULL, &err), AF_OK, "%s: %s", op, err.message);
}

/* Creates (op CreateFlow) or updates (UpdateFlow) flow name with trigger config json (its
 * triggerConfig member). */
static void put_flow(const char *op, const char *name, const char *trigger) {
  call_ok(op, arena_printf(&arena,
                           "{\"flowName\": \"%s\", \"triggerConfig\": %s, \"sourceFlowConfig\": "
                           "{\"connectorType\": \"S3\", \"sourceConnectorProperties\": {\"S3\": "
                           "{\"bucketName\": \"src\"}}}, \"destinationFlowConfigList\": "
                           "[{\"connectorType\": \"S3\", \"destinationConnectorProperties\": "
                           "{\"S3\": {\"bucketName\": \"dst\"}}}], \"tasks\": [{\"sourceFields\": "
                           "[], \"taskType\": \"Map_all\"}]}",
                           name, trigger));
}

static void create(const char *name, const char *trigger) { put_flow("CreateFlow", name, trigger); }

static void start(const char *name) {
  call_ok("StartFlow", arena_printf(&arena, "{\"flowName\": \"%s\"}", name));
}

/* Every run of name, newest first. */
static Appflow__V1__DescribeFlowExecutionRecordsResponse *runs_of(const char *name) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "DescribeFlowExecutionRecords",
                         arena_printf(&arena, "{\"flowName\": \"%s\", \"maxResults\": 100}", name),
                         &arena, &resp, &err),
               AF_OK, "%s", err.message);
  return (Appflow__V1__DescribeFlowExecutionRecordsResponse *)resp;
}

static int64_t ms_of(const Google__Protobuf__Timestamp *t) {
  return t->seconds * 1000 + t->nanos / 1000000;
}

/* name's runs started at want[0..n) (oldest first), each window from the one before. */
static void expect_runs_at(const char *name, const int64_t *want, size_t n) {
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of(name);
  cr_assert_eq(r->n_flow_executions, n, "%s: %zu runs, not %zu", name, r->n_flow_executions, n);
  for (size_t i = 0; i < n; i++) {
    const Appflow__V1__ExecutionRecord *e = r->flow_executions[n - 1 - i];
    cr_expect_eq(ms_of(e->started_at), want[i], "%s run %zu: %lld, not %lld", name, i,
                 (long long)ms_of(e->started_at), (long long)want[i]);
    cr_expect_eq(ms_of(e->data_pull_end_time), want[i]);
    if (i > 0)
      cr_expect_eq(ms_of(e->data_pull_start_time),
                   ms_of(r->flow_executions[n - i]->data_pull_end_time), "windows contiguous");
  }
}

static Appflow__V1__DescribeFlowResponse *describe(const char *name) {
  ProtobufCMessage *resp;
  af_error err;
  cr_assert_eq(call_json(svc, "DescribeFlow", arena_printf(&arena, "{\"flowName\": \"%s\"}", name),
                         &arena, &resp, &err),
               AF_OK, "%s", err.message);
  return (Appflow__V1__DescribeFlowResponse *)resp;
}

#define RATE5                                                                                      \
  "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "                       \
  "{\"scheduleExpression\": \"rate(5minutes)\", \"dataPullMode\": \"Incremental\"}}}"

Test(scheduler, rate_runs_every_interval_from_activation_with_contiguous_windows) {
  create("r5", RATE5);
  advance(20 * MIN);
  expect_runs_at("r5", NULL, 0); /* Draft: no runs */
  fake_now = T0 + 20 * MIN;
  start("r5");
  advance(30 * MIN); /* activated at T0+20m (the emulator's clock is ahead by 20m too) */
  int64_t a = T0 + 40 * MIN;
  int64_t want[] = {a + 5 * MIN,  a + 10 * MIN, a + 15 * MIN,
                    a + 20 * MIN, a + 25 * MIN, a + 30 * MIN};
  expect_runs_at("r5", want, 6);
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("r5");
  cr_expect_eq(ms_of(r->flow_executions[5]->data_pull_start_time), T0,
               "the first window starts when the flow was created");
  cr_expect_eq(r->flow_executions[0]->execution_status, ES(IN_PROGRESS), "started just now");
  cr_expect_eq(r->flow_executions[1]->execution_status, ES(SUCCESSFUL));
  /* Suspended: nothing more; started again: the interval counts from then */
  call_ok("StopFlow", "{\"flowName\": \"r5\"}");
  advance(12 * MIN);
  expect_runs_at("r5", want, 6);
}

Test(scheduler, an_update_of_an_active_schedule_starts_it_again) {
  create("r5", RATE5);
  start("r5");
  advance(12 * MIN);
  put_flow("UpdateFlow", "r5",
           "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
           "{\"scheduleExpression\": \"rate(1hours)\"}}}");
  advance(2 * 60 * MIN);
  int64_t want[] = {T0 + 5 * MIN, T0 + 10 * MIN, T0 + 72 * MIN, T0 + 132 * MIN};
  expect_runs_at("r5", want, 4);
}

Test(scheduler, cron_in_utc_with_a_timezone_label_start_end_and_offset) {
  create("c6", "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
               "{\"scheduleExpression\": \"cron(0 6 * * ? *)\", \"timezone\": "
               "\"America/New_York\", \"scheduleOffset\": 90, \"scheduleEndTime\": 1700300000}}}");
  start("c6");
  advance(4 * 24 * 60 * MIN);
  /* 06:00Z each day (the timezone is a label), plus 90 s, until scheduleEndTime (Nov 18 09:33Z) */
  int64_t d = 1700028000000LL + 90000; /* 2023-11-15T06:01:30Z */
  int64_t want[] = {d, d + 1440 * MIN, d + 2 * 1440 * MIN, d + 3 * 1440 * MIN};
  expect_runs_at("c6", want, 4);
  advance(2 * 1440 * MIN);
  expect_runs_at("c6", want, 4);
  Appflow__V1__DescribeFlowResponse *f = describe("c6");
  cr_expect_eq(f->flow_status, FS(ACTIVE), "an ended schedule leaves the flow Active");
}

Test(scheduler, schedule_start_time_is_the_first_run) {
  create("st", "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
               "{\"scheduleExpression\": \"rate(1hours)\", \"scheduleStartTime\": 1700003600, "
               "\"firstExecutionFrom\": 1699000000}}}");
  start("st");
  advance(3 * 60 * MIN);
  int64_t want[] = {1700003600000LL, 1700007200000LL, 1700010800000LL};
  expect_runs_at("st", want, 3);
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("st");
  cr_expect_eq(ms_of(r->flow_executions[2]->data_pull_start_time), 1699000000000LL,
               "firstExecutionFrom starts the first window");
}

Test(scheduler, scripted_outcomes_end_runs_in_order_with_error_info) {
  create("od", "{\"triggerType\": \"OnDemand\"}");
  const char *out = control("/emulator/flows/od/outcomes",
                            "{\"outcomes\": [{\"executionStatus\": \"Error\", \"message\": "
                            "\"token expired\", \"durationSeconds\": 1}, {\"executionStatus\": "
                            "\"Successful\", \"recordsProcessed\": 10, \"durationSeconds\": 0}]}");
  cr_expect_str_eq(out, "{\"pending\":2}");
  start("od");
  start("od");
  start("od");
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("od");
  cr_assert_eq(r->n_flow_executions, 3);
  cr_expect_eq(r->flow_executions[2]->execution_status, ES(IN_PROGRESS));
  cr_expect_eq(r->flow_executions[1]->execution_status, ES(SUCCESSFUL), "0 s: ended at once");
  cr_expect_eq(r->flow_executions[1]->execution_result->records_processed, 10);
  cr_expect_eq(r->flow_executions[0]->execution_status, ES(IN_PROGRESS), "then the default");
  fake_now = T0 + 1000;
  r = runs_of("od");
  cr_expect_eq(r->flow_executions[2]->execution_status, ES(ERROR));
  const Appflow__V1__ErrorInfo *e = r->flow_executions[2]->execution_result->error_info;
  cr_assert_not_null(e);
  cr_expect_str_eq(e->execution_message, "token expired");
  cr_expect_null(r->flow_executions[1]->execution_result->error_info);
  cr_expect_eq(describe("od")->last_run_execution_details->most_recent_execution_status,
               ES(IN_PROGRESS), "the latest run");
}

Test(scheduler, bad_outcomes_and_unknown_flows_are_refused) {
  create("od", "{\"triggerType\": \"OnDemand\"}");
  static const struct {
    const char *path, *body;
    af_err want;
    const char *says;
  } cases[] = {
      {"/emulator/flows/od/outcomes", "{\"outcomes\": [{\"executionStatus\": \"Canceled\"}]}",
       AF_ERR_VALIDATION, "Successful"},
      {"/emulator/flows/od/outcomes", "{\"outcomes\": [{\"durationSeconds\": -1}]}",
       AF_ERR_VALIDATION, "durationSeconds"},
      {"/emulator/flows/od/outcomes", "{\"outcomes\": [{\"recordsProcessed\": 1.5}]}",
       AF_ERR_VALIDATION, "recordsProcessed"},
      {"/emulator/flows/od/outcomes", "{\"outcomes\": [{\"status\": \"Error\"}]}",
       AF_ERR_VALIDATION, "unknown member 'status'"},
      {"/emulator/flows/od/outcomes", "{\"outcome\": []}", AF_ERR_VALIDATION, "'outcome'"},
      {"/emulator/flows/od/outcomes", "[1]", AF_ERR_SERIALIZATION, "JSON object"},
      {"/emulator/flows/od/outcomes", "{", AF_ERR_SERIALIZATION, "not JSON"},
      {"/emulator/flows/nope/outcomes", "{\"outcomes\": []}", AF_ERR_RESOURCE_NOT_FOUND, "nope"},
      {"/emulator/flows/bad%20name/events", "", AF_ERR_VALIDATION, "flowName"},
      {"/emulator/flows/od/events", "", AF_ERR_UNSUPPORTED_OPERATION, "OnDemand"},
      {"/emulator/flows/od/run", "", AF_ERR_RESOURCE_NOT_FOUND, "no control API"},
      {"/emulator/clock", "{\"advanceSeconds\": -5}", AF_ERR_VALIDATION, "forward"},
      {"/emulator/clock", "{}", AF_ERR_VALIDATION, "advanceSeconds"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *out;
    cr_expect_eq(control_on(svc, cases[i].path, cases[i].body, &out), cases[i].want, "%s %s: %s",
                 cases[i].path, cases[i].body, out);
    cr_expect(strstr(out, cases[i].says) != NULL, "%s %s: %s", cases[i].path, cases[i].body, out);
  }
}

Test(scheduler, failed_scheduled_runs_in_a_row_deactivate_the_flow) {
  create("th", "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
               "{\"scheduleExpression\": \"rate(1minutes)\", "
               "\"flowErrorDeactivationThreshold\": 2}}}");
  control("/emulator/flows/th/outcomes",
          "{\"outcomes\": [{\"executionStatus\": \"Error\"}, {}, {\"executionStatus\": "
          "\"Error\"}, {\"executionStatus\": \"Error\", \"message\": \"quota\"}]}");
  start("th");
  advance(10 * MIN);
  /* Error, Successful (the count starts again), Error, Error: deactivated as the 4th ends */
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("th");
  cr_expect_eq(r->n_flow_executions, 4);
  Appflow__V1__DescribeFlowResponse *f = describe("th");
  cr_expect_eq(f->flow_status, FS(SUSPENDED));
  cr_assert_not_null(f->flow_status_message);
  cr_expect(strstr(f->flow_status_message, "2 consecutive failed scheduled runs") != NULL, "%s",
            f->flow_status_message);
  cr_expect_eq(ms_of(f->last_updated_at), T0 + 4 * MIN + DURATION_MS, "when the 4th ended");
  /* started again: runs resume, the failures forgotten */
  start("th");
  advance(3 * MIN);
  cr_expect_eq(runs_of("th")->n_flow_executions, 7);
  cr_expect_eq(describe("th")->flow_status, FS(ACTIVE));
}

Test(scheduler, events_start_runs_of_active_event_flows) {
  create("ev", "{\"triggerType\": \"Event\"}");
  const char *out;
  cr_expect_eq(control_on(svc, "/emulator/flows/ev/events", "", &out), AF_ERR_CONFLICT, "%s", out);
  cr_expect(strstr(out, "Draft") != NULL, "%s", out);
  start("ev");
  out = control("/emulator/flows/ev/events", "{\"detail\": {\"anything\": 1}}");
  cr_expect(strncmp(out, "{\"executionId\":\"", 16) == 0, "%s", out);
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("ev");
  cr_assert_eq(r->n_flow_executions, 1);
  cr_expect(strstr(out, r->flow_executions[0]->execution_id) != NULL);
  cr_expect_eq(r->flow_executions[0]->execution_status, ES(IN_PROGRESS));
  advance(DURATION_MS);
  cr_expect_eq(runs_of("ev")->flow_executions[0]->execution_status, ES(SUCCESSFUL));
}

typedef struct mover {
  af_flows *v;
  int steps;
  int64_t step_ms;
} mover;

static void *move(void *arg) {
  mover *m = arg;
  af_arena a;
  af_arena_init(&a);
  for (int i = 0; i < m->steps; i++) {
    advance_in(m->v, &a, m->step_ms);
    af_arena_reset(&a);
  }
  af_arena_destroy(&a);
  return NULL;
}

Test(scheduler, two_services_on_one_store_fire_each_run_once) {
  create("r5", RATE5);
  start("r5");
  af_flows *other = service_on(store);
  /* one moves the shared clock on, the other only runs what is due, at once */
  mover a = {svc, 60, 30000}, b = {other, 60, 0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, move, &a);
  pthread_create(&tb, NULL, move, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  advance_on(other, 0);
  int64_t want[] = {T0 + 5 * MIN,  T0 + 10 * MIN, T0 + 15 * MIN,
                    T0 + 20 * MIN, T0 + 25 * MIN, T0 + 30 * MIN};
  expect_runs_at("r5", want, 6);
  af_flows_free(other);
}

Test(scheduler, a_restart_ends_the_runs_left_in_progress) {
  create("od", "{\"triggerType\": \"OnDemand\"}");
  control("/emulator/flows/od/outcomes", "{\"outcomes\": [{\"durationSeconds\": 600}]}");
  start("od");
  advance(60000);
  af_flows_free(svc); /* stops; no other appflowd serves the store */
  svc = service_on(store);
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("od");
  cr_assert_eq(r->n_flow_executions, 1);
  if (!store->durable) { /* the memory store does not outlive a restart: nothing to end */
    cr_expect_eq(r->flow_executions[0]->execution_status, ES(IN_PROGRESS));
    return;
  }
  cr_expect_eq(r->flow_executions[0]->execution_status, ES(ERROR));
  cr_expect(strstr(r->flow_executions[0]->execution_result->error_info->execution_message,
                   "interrupted") != NULL);
  cr_expect_eq(ms_of(r->flow_executions[0]->last_updated_at), T0 + 60000,
               "ended when the service came back, on the clock it kept");
}

Test(scheduler, a_glue_catalog_flow_registers_a_table_and_a_partition_per_run) {
  call_ok("CreateFlow",
          "{\"flowName\": \"glued\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
          "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "
          "{\"S3\": {\"bucketName\": \"src\"}}}, \"destinationFlowConfigList\": "
          "[{\"connectorType\": \"S3\", \"destinationConnectorProperties\": {\"S3\": "
          "{\"bucketName\": \"dst\"}}}], \"tasks\": [{\"sourceFields\": [], \"taskType\": "
          "\"Map_all\"}], \"metadataCatalogConfig\": {\"glueDataCatalog\": {\"roleArn\": "
          "\"arn:aws:iam::000000000000:role/glue\", \"databaseName\": \"lake\", "
          "\"tablePrefix\": \"AppFlow_\"}}}");
  control("/emulator/flows/glued/outcomes",
          "{\"outcomes\": [{}, {\"executionStatus\": \"Error\"}]}");
  start("glued");
  cr_expect_eq(runs_of("glued")->flow_executions[0]->n_metadata_catalog_details, 0,
               "nothing registered while the run is in progress");
  start("glued");
  advance(DURATION_MS);
  Appflow__V1__DescribeFlowExecutionRecordsResponse *r = runs_of("glued");
  cr_assert_eq(r->n_flow_executions, 2);
  const Appflow__V1__ExecutionRecord *ok = r->flow_executions[1], *bad = r->flow_executions[0];
  cr_assert_eq(ok->n_metadata_catalog_details, 1);
  const Appflow__V1__MetadataCatalogDetail *d = ok->metadata_catalog_details[0];
  cr_expect_eq(d->catalog_type, APPFLOW__V1__CATALOG_TYPE__CATALOG_TYPE_GLUE);
  cr_expect_str_eq(d->table_name, "appflow_glued");
  cr_expect_eq(d->table_registration_output->status, ES(SUCCESSFUL));
  cr_expect_str_eq(d->table_registration_output->result, "lake.appflow_glued");
  cr_expect(strstr(d->partition_registration_output->result, ok->execution_id) != NULL);
  cr_assert_eq(bad->n_metadata_catalog_details, 1);
  cr_expect_eq(bad->metadata_catalog_details[0]->table_registration_output->status, ES(ERROR));
  Appflow__V1__DescribeFlowResponse *f = describe("glued");
  cr_assert_eq(f->n_last_run_metadata_catalog_details, 1, "DescribeFlow follows the latest run");
  cr_expect_eq(f->last_run_metadata_catalog_details[0]->table_registration_output->status,
               ES(ERROR));
}

/* Puts a lease row for an instance on host with pid, its heartbeat now (real time). */
static void lease_row(const char *name, const char *host, long pid) {
  char desc[300];
  snprintf(desc, sizeof desc, "%s %ld", host, pid);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  af_flow_record rec = {.name = name, .name_len = strlen(name), .description = desc};
  rec.created_ms = rec.updated_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  af_store_op op = {.table = AF_TABLE_TIMERS, .key = name, .key_len = strlen(name), .record = &rec};
  cr_assert_eq(af_store_run(store, af_store_insert, &op), AF_STORE_OK);
}

static af_store_verdict keep_row(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_KEEP;
}

static af_store_verdict drop_row(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

/* Runs rule on the timers row name: OK or NOT_FOUND. */
static af_store_rc on_row(const char *name, af_store_rule rule) {
  af_store_op op = {.table = AF_TABLE_TIMERS, .key = name, .key_len = strlen(name), .rule = rule};
  return af_store_run(store, af_store_modify, &op);
}

Test(scheduler, a_live_instance_keeps_runs_going_and_a_dead_one_is_seen_at_once) {
  char host[256] = "";
  cr_assert_eq(gethostname(host, sizeof host - 1), 0);
  create("od", "{\"triggerType\": \"OnDemand\"}");
  control("/emulator/flows/od/outcomes", "{\"outcomes\": [{\"durationSeconds\": 600}]}");
  start("od");
  af_flows_free(svc);
  lease_row("instance:elsewhere", "another-host", 1); /* alive: its heartbeat is fresh */
  svc = service_on(store);
  cr_expect_eq(runs_of("od")->flow_executions[0]->execution_status, ES(IN_PROGRESS),
               "another appflowd serves the store: the runs go on");
  cr_expect_eq(on_row("instance:elsewhere", keep_row), AF_STORE_OK);
  af_flows_free(svc);
  cr_assert_eq(on_row("instance:elsewhere", drop_row), AF_STORE_OK);
  lease_row("instance:crashed", host, 2147483000L); /* this host, and no such process */
  svc = service_on(store);
  cr_expect_eq(on_row("instance:crashed", keep_row), AF_STORE_NOT_FOUND,
               "a dead instance's row is removed");
  cr_expect_eq(runs_of("od")->flow_executions[0]->execution_status,
               store->durable ? ES(ERROR) : ES(IN_PROGRESS),
               "with no other appflowd alive, a restart ends the runs (of a durable store)");
}

Test(scheduler, an_sap_source_reports_its_parallelism_and_page_size) {
  test_profile(svc, "sap", "SAPOData",
               "{\"applicationHostUrl\": \"https://sap.example.com\", \"applicationServicePath\": "
               "\"/sap/opu/odata\", \"portNumber\": 443, \"clientNumber\": \"100\"}",
               "{\"basicAuthCredentials\": {\"username\": \"u\", \"password\": \"p\"}}");
  call_ok("CreateFlow",
          "{\"flowName\": \"sapflow\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
          "\"sourceFlowConfig\": {\"connectorType\": \"SAPOData\", \"connectorProfileName\": "
          "\"sap\", \"sourceConnectorProperties\": {\"SAPOData\": {\"objectPath\": \"/o\", "
          "\"parallelismConfig\": {\"maxParallelism\": 4}, \"paginationConfig\": "
          "{\"maxPageSize\": 500}}}}, \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "
          "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}], "
          "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}");
  start("sapflow");
  const Appflow__V1__ExecutionResult *r = runs_of("sapflow")->flow_executions[0]->execution_result;
  cr_expect_eq(r->num_parallel_processes, 4);
  cr_expect(r->has_max_page_size);
  cr_expect_eq(r->max_page_size, 500);
  create("plain", "{\"triggerType\": \"OnDemand\"}");
  start("plain");
  r = runs_of("plain")->flow_executions[0]->execution_result;
  cr_expect_eq(r->num_parallel_processes, 1);
  cr_expect(!r->has_max_page_size);
}

Test(scheduler, runs_from_before_a_new_start_do_not_count_towards_the_threshold) {
  create("th1", "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "
                "{\"scheduleExpression\": \"rate(1minutes)\", "
                "\"flowErrorDeactivationThreshold\": 1}}}");
  /* the first run fails late (90 s), the second at once: the second deactivates the flow */
  control("/emulator/flows/th1/outcomes",
          "{\"outcomes\": [{\"executionStatus\": \"Error\", \"durationSeconds\": 90}, "
          "{\"executionStatus\": \"Error\", \"durationSeconds\": 0}]}");
  start("th1");
  advance(3 * MIN);
  cr_assert_eq(describe("th1")->flow_status, FS(SUSPENDED));
  cr_expect_eq(runs_of("th1")->n_flow_executions, 2);
  /* started again: the first run, which failed after the deactivation, is not counted */
  start("th1");
  advance(3 * MIN);
  cr_expect_eq(describe("th1")->flow_status, FS(ACTIVE));
  cr_expect_eq(runs_of("th1")->n_flow_executions, 5);
}
