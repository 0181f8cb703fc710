/* src/flows/service.c: StopFlow's rules (name validation, every row of the semantics table in
 * docs/ARCHITECTURE.md, ARNs, many threads stopping many flows at once), StartFlow's state
 * machine, runs and clientTokens, DeleteFlow, and the RPC table - on the store AF_TEST_STORE
 * names (store_under_test.h), so every rule is checked on every store. */
#include "appflow_model.h"
#include "flows/internal.h"
#include "flows/service.h"

#include "bridge/seed.h"
#include "common/latch.h"

#include "budget_alloc.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static af_flows *svc;
static af_store *store;

static void setup(void) { svc = test_service_new(NULL, &store); }

static void teardown(void) { test_service_free(svc, store); }

static void add(const char *name, Appflow__V1__TriggerType trigger,
                Appflow__V1__FlowStatus status) {
  test_seed_flow(svc, name, trigger, status);
}

/* Runs StopFlow on name; returns its result and fills the outputs. */
static af_err stop(const char *name, Appflow__V1__StopFlowResponse *resp, af_stop_result *res,
                   af_error *err) {
  static af_arena arena; /* tests are single-threaded here */
  af_arena_reset(&arena);
  Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  appflow__v1__stop_flow_response__init(resp);
  *res = (af_stop_result){false};
  return af_flows_stop_flow(svc, &req, resp, &arena, res, err);
}

/* StopFlow's answer for a flow named name[0..len) that does not exist: AF_OK when the name
 * passes the model's checks (the answer is then ResourceNotFoundException), else the error. */
static af_err check_err(const char *name, size_t len, af_error *err) {
  char buf[400];
  if (name != NULL)
    snprintf(buf, sizeof buf, "%.*s", (int)len, name);
  Appflow__V1__StopFlowResponse resp;
  af_stop_result res;
  af_err rc = stop(name != NULL ? buf : NULL, &resp, &res, err);
  return rc == AF_ERR_RESOURCE_NOT_FOUND ? AF_OK : rc;
}

static af_err check(const char *name, size_t len) {
  af_error err;
  return check_err(name, len, &err);
}

TestSuite(validate, .init = setup, .fini = teardown);

Test(validate, lengths) {
  char name[300];
  memset(name, 'a', sizeof name);
  cr_expect_eq(check(name, 0), AF_ERR_VALIDATION);
  cr_expect_eq(check(NULL, 0), AF_ERR_VALIDATION);
  cr_expect_eq(check(name, 1), AF_ERR_VALIDATION); /* the pattern needs 2 */
  cr_expect_eq(check(name, 2), AF_OK);
  cr_expect_eq(check(name, 256), AF_OK);
  cr_expect_eq(check(name, 257), AF_ERR_VALIDATION);
}

Test(validate, characters) {
  cr_expect_eq(check("a_!@#.-Z9", 9), AF_OK);
  const char *allowed = "_!@#.-";
  for (const char *p = allowed; *p; p++) {
    char n[3] = {'x', *p, 0};
    cr_expect_eq(check(n, 2), AF_OK, "'%c' is allowed after the first character", *p);
    char first[3] = {*p, 'x', 0};
    cr_expect_eq(check(first, 2), AF_ERR_VALIDATION, "'%c' may not come first", *p);
  }
  cr_expect_eq(check("9lives", 6), AF_OK);
  cr_expect_eq(check("has space", 9), AF_ERR_VALIDATION);
  cr_expect_eq(check("tab\there", 8), AF_ERR_VALIDATION);
  cr_expect_eq(check("fl\xc3\xb6w", 5), AF_ERR_VALIDATION);
  cr_expect_eq(check("a/b", 3), AF_ERR_VALIDATION);
  cr_expect_eq(check("a$b", 3), AF_ERR_VALIDATION);
}

Test(validate, messages_name_member_and_constraint) {
  af_error err;
  check_err("bad name", 8, &err);
  cr_expect(strstr(err.message, "'bad name' at 'flowName'") != NULL, "%s", err.message);
  cr_expect(strstr(err.message, "regular expression pattern: [a-zA-Z0-9][\\w!@#.-]+") != NULL);
  check_err(NULL, 0, &err);
  cr_expect(strstr(err.message, "Member must not be null") != NULL, "%s", err.message);
  char longname[257];
  memset(longname, 'a', sizeof longname);
  check_err(longname, 257, &err);
  cr_expect(strstr(err.message, "length less than or equal to 256") != NULL, "%s", err.message);
  check_err("\xff\x01", 2, &err);
  cr_expect(strstr(err.message, "'\\xff\\x01'") != NULL, "untrusted bytes are escaped: %s",
            err.message);
}

static void call_ended(void *ctx, af_err rc) { *(af_err *)ctx = rc; }

/* A key the service built longer than any store keeps (AF_STORE_TOO_LONG) is the caller's
 * ValidationException naming the limit, with the name quoted in part, never an internal
 * error. */
Test(validate, a_key_too_long_for_the_store) {
  static char name[AF_STORE_KEY_MAX + 1];
  memset(name, 'n', sizeof name);
  af_arena arena;
  af_arena_init(&arena);
  af_error err;
  af_err ended = AF_ERR_INTERNAL_SERVER;
  af_reply_to to = {.arena = &arena, .err = &err, .done = call_ended, .ctx = &ended};
  af_call *c = af__call_new(svc, &to, sizeof *c);
  cr_assert_not_null(c);
  cr_expect_eq(af__store_error(c, AF_STORE_TOO_LONG, name, sizeof name), AF_ERR_VALIDATION);
  char want[256];
  snprintf(want, sizeof want,
           "Name %.64s... is too long for appflowd's store, whose keys (the name and what "
           "appflowd adds to it) hold at most 512 bytes",
           name);
  cr_expect_str_eq(err.message, want);
  af__call_end(c, AF_OK);
  cr_expect_eq(ended, AF_OK);
  af_arena_destroy(&arena);
}

TestSuite(stop, .init = setup, .fini = teardown);

static void expect_stopped(const char *name, bool changed) {
  Appflow__V1__StopFlowResponse resp;
  af_stop_result res;
  af_error err;
  cr_assert_eq(stop(name, &resp, &res, &err), AF_OK, "%s: %s", name, err.message);
  cr_expect_eq(resp.flow_status, S(SUSPENDED));
  char arn[400];
  snprintf(arn, sizeof arn, "arn:aws:appflow:us-east-1:000000000000:flow/%s", name);
  cr_expect_str_eq(resp.flow_arn, arn);
  cr_expect_eq(res.changed, changed, "%s: changed", name);
}

static void expect_error(const char *name, af_err want, const char *fragment) {
  Appflow__V1__StopFlowResponse resp;
  af_stop_result res;
  af_error err;
  cr_expect_eq(stop(name, &resp, &res, &err), want, "%s", name);
  cr_expect_eq(err.code, want);
  cr_expect(strstr(err.message, fragment) != NULL, "%s: message '%s' lacks '%s'", name, err.message,
            fragment);
  cr_expect_not(res.changed);
}

Test(stop, active_and_errored_become_suspended_once) {
  add("sched_active", T(SCHEDULED), S(ACTIVE));
  add("event_active", T(EVENT), S(ACTIVE));
  add("sched_errored", T(SCHEDULED), S(ERRORED));
  add("event_errored", T(EVENT), S(ERRORED));
  const char *names[] = {"sched_active", "event_active", "sched_errored", "event_errored"};
  for (int i = 0; i < 4; i++) {
    expect_stopped(names[i], true);
    expect_stopped(names[i], false); /* the change is visible to the next call */
  }
}

Test(stop, suspended_is_idempotent) {
  add("sched_susp", T(SCHEDULED), S(SUSPENDED));
  add("event_susp", T(EVENT), S(SUSPENDED));
  expect_stopped("sched_susp", false);
  expect_stopped("event_susp", false);
}

Test(stop, on_demand_is_unsupported_in_any_status) {
  Appflow__V1__FlowStatus all[] = {S(ACTIVE), S(SUSPENDED), S(DRAFT), S(ERRORED), S(DEPRECATED)};
  for (int i = 0; i < 5; i++) {
    char name[32];
    snprintf(name, sizeof name, "ondemand_%d", i);
    add(name, T(ON_DEMAND), all[i]);
    expect_error(name, AF_ERR_UNSUPPORTED_OPERATION, "on-demand");
  }
}

Test(stop, draft_and_deprecated_conflict) {
  add("sched_draft", T(SCHEDULED), S(DRAFT));
  add("event_deprecated", T(EVENT), S(DEPRECATED));
  expect_error("sched_draft", AF_ERR_CONFLICT, "in Draft state");
  expect_error("event_deprecated", AF_ERR_CONFLICT, "in Deprecated state");
  expect_error("sched_draft", AF_ERR_CONFLICT, "cannot be stopped"); /* nothing changed */
}

Test(stop, missing_and_invalid) {
  expect_error("no_such_flow", AF_ERR_RESOURCE_NOT_FOUND, "no_such_flow");
  expect_error("", AF_ERR_VALIDATION,
               "Value '' at 'flowName' failed to satisfy constraint: Member must satisfy regular "
               "expression pattern");
  expect_error("x", AF_ERR_VALIDATION, "regular expression");
  expect_error("bad name", AF_ERR_VALIDATION, "'bad name'");
  Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
  req.flow_name = NULL;
  Appflow__V1__StopFlowResponse resp = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  af_arena arena;
  af_arena_init(&arena);
  af_error err;
  cr_expect_eq(af_flows_stop_flow(svc, &req, &resp, &arena, NULL, &err), AF_ERR_VALIDATION);
  af_arena_destroy(&arena);
}

Test(stop, longest_name) {
  char name[257];
  memset(name, 'n', 256);
  name[256] = '\0';
  add(name, T(SCHEDULED), S(ACTIVE));
  expect_stopped(name, true);
}

Test(arn, uses_configured_region_and_account) {
  af_error err;
  af_flows *s =
      af_flows_new(&(af_flows_config){.region = "eu-west-2", .account = "123456789012"}, &err);
  cr_assert_not_null(s);
  char arn[128];
  size_t n = af_flows_arn(s, arn, sizeof arn, "f1", 2);
  cr_expect_str_eq(arn, "arn:aws:appflow:eu-west-2:123456789012:flow/f1");
  cr_expect_eq(n, strlen(arn));
  af_flows_free(s);
}

/* Like snprintf: a short buffer gets what fits and a NUL, and the full length is returned. */
Test(arn, truncates_like_snprintf) {
  af_error err;
  af_flows *s = af_flows_new(&(af_flows_config){0}, &err);
  cr_assert_not_null(s);
  const char *full = "arn:aws:appflow:us-east-1:000000000000:flow/name";
  for (size_t cap = 0; cap <= strlen(full) + 1; cap++) {
    char buf[64];
    memset(buf, 'X', sizeof buf);
    cr_expect_eq(af_flows_arn(s, buf, cap, "name", 4), strlen(full));
    if (cap > 0) {
      cr_expect_eq(strlen(buf), cap - 1, "cap %zu", cap);
      cr_expect_eq(strncmp(buf, full, cap - 1), 0, "cap %zu: %s", cap, buf);
    }
    cr_expect_eq(buf[cap], 'X', "cap %zu: wrote past the end", cap);
  }
  af_flows_free(s);
}

Test(arn, rejects_bad_region_or_account) {
  af_error err;
  cr_expect_null(af_flows_new(&(af_flows_config){.region = "EU West"}, &err));
  cr_expect_eq(err.code, AF_ERR_VALIDATION);
  cr_expect_null(af_flows_new(&(af_flows_config){.account = "12345"}, &err));
  cr_expect_null(af_flows_new(&(af_flows_config){.account = "12345678901a"}, &err));
}

/* The RPC table is the proto's service: every method once, in order, with its messages and
 * the model's operation; the flow lifecycle has handlers. */
TestSuite(rpcs, .init = setup, .fini = teardown);

Test(rpcs, table_is_the_proto_service) {
  const ProtobufCServiceDescriptor *sd = &appflow__v1__app_flow_service__descriptor;
  cr_assert_eq(af_flows_rpc_count(svc), sd->n_methods);
  cr_assert_eq(sd->n_methods, 25, "every operation of AppFlow's model");
  for (unsigned i = 0; i < sd->n_methods; i++) {
    const ProtobufCMethodDescriptor *m = &sd->methods[i];
    const af_rpc *r = af_flows_rpc_at(svc, i);
    char path[128];
    snprintf(path, sizeof path, "/appflow.v1.AppFlowService/%s", m->name);
    cr_expect_str_eq(r->name, m->name);
    cr_expect_str_eq(r->path, path);
    cr_expect_eq(r->input, m->input, "%s input", m->name);
    cr_expect_eq(r->output, m->output, "%s output", m->name);
    cr_expect_str_eq(r->op->name, m->name);
    cr_expect_eq(r->op->input->descriptor, m->input);
    cr_expect_eq(af_flows_rpc_named(svc, m->name), r);
  }
  /* every operation of the model is served */
  for (unsigned i = 0; i < sd->n_methods; i++)
    cr_expect_not_null(af_flows_rpc_named(svc, sd->methods[i].name)->handler, "%s",
                       sd->methods[i].name);
  cr_expect_null(af_flows_rpc_named(svc, "NoSuchOperation"));
}

/* af__connector_value (the enum's lengths measured once) agrees with af_flows_connector_value,
 * for the table's own strings and for copies (what stores hand back). */
Test(rpcs, connector_types_by_name) {
  int n = 0;
  for (int v = 1; af_flows_connector_name(v) != NULL; v++, n++) {
    const char *name = af_flows_connector_name(v);
    char copy[64];
    snprintf(copy, sizeof copy, "%s", name);
    cr_expect_eq(af__connector_value(svc, name), v, "%s", name);
    cr_expect_eq(af__connector_value(svc, copy), v, "%s", copy);
    cr_expect_eq(af_flows_connector_value(copy), v, "%s", copy);
  }
  cr_expect_gt(n, 20);
  cr_expect_eq(af__connector_value(svc, NULL), 0);
  cr_expect_eq(af__connector_value(svc, "Nope"), 0);
  cr_expect_eq(af__connector_value(svc, "s3"), 0);
  cr_expect_eq(af__connector_value(svc, "S"), 0);
  cr_expect_eq(af__connector_value(svc, "S33"), 0);
  cr_expect_eq(af__connector_value(svc, ""), 0);
}

/* The AWS door finds an operation's RPC by the operation itself: the same as by its name. */
Test(rpcs, every_operation_finds_its_rpc) {
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    cr_expect_eq(af_flows_rpc_of(svc, op), af_flows_rpc_named(svc, op->name), "%s", op->name);
    cr_expect_not_null(af_flows_rpc_of(svc, op), "%s", op->name);
  }
}

/* The model's checks run before the handler: a request they refuse never reaches it. */
Test(rpcs, the_models_checks_come_before_the_handler) {
  const af_rpc *r = af_flows_rpc_named(svc, "DescribeFlowExecutionRecords");
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__DescribeFlowExecutionRecordsRequest req =
      APPFLOW__V1__DESCRIBE_FLOW_EXECUTION_RECORDS_REQUEST__INIT;
  Appflow__V1__DescribeFlowExecutionRecordsResponse resp =
      APPFLOW__V1__DESCRIBE_FLOW_EXECUTION_RECORDS_RESPONSE__INIT;
  req.flow_name = "a-flow";
  af_error err;
  cr_expect_eq(af_flows_call_sync(svc, r, &req.base, &resp.base, &arena, &err),
               AF_ERR_RESOURCE_NOT_FOUND, "the handler ran: %s", err.message);
  req.has_max_results = true;
  req.max_results = 0;
  cr_expect_eq(af_flows_call_sync(svc, r, &req.base, &resp.base, &arena, &err), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "at 'maxResults'") != NULL, "%s", err.message);
  af_arena_destroy(&arena);
}

/* ---- StartFlow and DeleteFlow ---- */

static void setup_clock(void) {
  fake_now = 1700000000000;
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}}, &store);
}

TestSuite(start, .init = setup_clock, .fini = teardown);

struct started {
  af_err rc;
  Appflow__V1__FlowStatus status;
  char execution_id[64];
  af_error err;
};

static struct started start(const char *name, const char *token) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__StartFlowRequest req = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  req.client_token = (char *)token; /* NULL: none */
  Appflow__V1__StartFlowResponse resp = APPFLOW__V1__START_FLOW_RESPONSE__INIT;
  struct started r = {0};
  r.rc = af_flows_start_flow(svc, &req, &resp, &arena, &r.err);
  r.status = resp.flow_status;
  snprintf(r.execution_id, sizeof r.execution_id, "%s", resp.execution_id ? resp.execution_id : "");
  af_arena_destroy(&arena);
  return r;
}

static Appflow__V1__FlowStatus status_of(const char *name) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__DescribeFlowResponse resp = APPFLOW__V1__DESCRIBE_FLOW_RESPONSE__INIT;
  af_error err;
  cr_assert_eq(af_flows_describe_flow(svc, &req, &resp, &arena, &err), AF_OK, "%s", err.message);
  Appflow__V1__FlowStatus st = resp.flow_status;
  af_arena_destroy(&arena);
  return st;
}

Test(start, scheduled_and_event_become_active) {
  static const Appflow__V1__FlowStatus from[] = {S(DRAFT), S(SUSPENDED), S(ERRORED), S(ACTIVE)};
  for (size_t i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "s%zu", i);
    add(name, i % 2 ? T(EVENT) : T(SCHEDULED), from[i]);
    struct started r = start(name, NULL);
    cr_expect_eq(r.rc, AF_OK, "%s: %s", name, r.err.message);
    cr_expect_eq(r.status, S(ACTIVE));
    cr_expect_str_empty(r.execution_id, "only on-demand starts are runs");
    cr_expect_eq(status_of(name), S(ACTIVE));
  }
}

Test(start, deprecated_conflicts_and_missing_is_not_found) {
  add("old", T(SCHEDULED), S(DEPRECATED));
  struct started r = start("old", NULL);
  cr_expect_eq(r.rc, AF_ERR_CONFLICT);
  cr_expect(strstr(r.err.message, "Deprecated") != NULL, "%s", r.err.message);
  cr_expect_eq(start("nope", NULL).rc, AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(start("bad name", NULL).rc, AF_ERR_VALIDATION);
  cr_expect_eq(start("old", "tab\there").rc, AF_ERR_VALIDATION);
}

Test(start, on_demand_runs_each_time_with_a_new_id) {
  add("od", T(ON_DEMAND), S(ACTIVE));
  struct started a = start("od", NULL), b = start("od", NULL);
  cr_assert_eq(a.rc, AF_OK);
  cr_expect_eq(a.status, S(ACTIVE));
  cr_expect_eq(strlen(a.execution_id), 36);
  cr_expect_eq(a.execution_id[14], '4', "a version 4 UUID: %s", a.execution_id);
  cr_expect_str_neq(a.execution_id, b.execution_id);
}

Test(start, a_repeated_token_returns_the_first_result_for_8_hours) {
  add("od", T(ON_DEMAND), S(ACTIVE));
  add("sched", T(SCHEDULED), S(DRAFT));
  struct started first = start("od", "retry-me");
  cr_assert_eq(first.rc, AF_OK);
  fake_now += 8LL * 3600 * 1000 - 1;
  struct started again = start("od", "retry-me");
  cr_expect_str_eq(again.execution_id, first.execution_id, "no second run");
  fake_now += 1;
  struct started later = start("od", "retry-me");
  cr_expect_str_neq(later.execution_id, first.execution_id, "after 8 hours a token is new");
  /* A scheduled flow: the retry after a stop returns Active again and changes nothing. */
  cr_assert_eq(start("sched", "t1").status, S(ACTIVE));
  Appflow__V1__StopFlowResponse resp;
  af_stop_result res;
  af_error err;
  cr_assert_eq(stop("sched", &resp, &res, &err), AF_OK);
  cr_expect_eq(start("sched", "t1").status, S(ACTIVE));
  cr_expect_eq(status_of("sched"), S(SUSPENDED));
  cr_expect_eq(start("sched", "t2").status, S(ACTIVE));
  cr_expect_eq(status_of("sched"), S(ACTIVE));
  /* Tokens belong to one flow. */
  add("od2", T(ON_DEMAND), S(ACTIVE));
  cr_expect_str_neq(start("od2", "retry-me").execution_id, later.execution_id);
}

Test(start, tokens_kept_per_flow_are_bounded) {
  add("od", T(ON_DEMAND), S(ACTIVE));
  struct started first = start("od", "token-0");
  char token[32];
  for (int i = 1; i <= 64; i++) {
    snprintf(token, sizeof token, "token-%d", i);
    cr_assert_eq(start("od", token).rc, AF_OK);
  }
  cr_expect_str_eq(start("od", "token-64").execution_id, start("od", "token-64").execution_id);
  cr_expect_str_neq(start("od", "token-0").execution_id, first.execution_id,
                    "the oldest of 65 tokens was let go");
}

/* The memory store's own allocator runs out (the database stores' failures are theirs). */
Test(start, out_of_memory_changes_nothing) {
  struct budget b = {1000};
  af_allocator mem = budget_allocator(&b);
  test_service_free(svc, store);
  af_error err;
  store = af_store_memory_new(&(af_store_config){.alloc = &mem});
  svc = af_flows_new(&(af_flows_config){.store = store, .clock = &(af_clock){fake_clock, NULL}},
                     &err);
  cr_assert_not_null(svc);
  add("sched", T(SCHEDULED), S(DRAFT));
  b.left = 0;
  struct started r = start("sched", "tok");
  cr_expect_eq(r.rc, AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(status_of("sched"), S(DRAFT));
  b.left = 10;
  cr_expect_eq(start("sched", "tok").status, S(ACTIVE));
}

static af_err delete_flow(const char *name, bool force, af_error *err) {
  return test_delete_flow(svc, name, force, err);
}

Test(start, delete_refuses_active_scheduled_and_event_flows_without_force) {
  add("sched", T(SCHEDULED), S(ACTIVE));
  add("event", T(EVENT), S(ACTIVE));
  add("od", T(ON_DEMAND), S(ACTIVE));
  add("susp", T(SCHEDULED), S(SUSPENDED));
  af_error err;
  cr_expect_eq(delete_flow("sched", false, &err), AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message, "Flow is in active state, please set forceDelete to true or "
                                "deactivate the flow");
  cr_expect_eq(delete_flow("event", false, &err), AF_ERR_CONFLICT);
  cr_expect_eq(delete_flow("od", false, &err), AF_OK, "on-demand flows are not deactivated");
  cr_expect_eq(delete_flow("susp", false, &err), AF_OK);
  cr_expect_eq(delete_flow("sched", true, &err), AF_OK);
  cr_expect_eq(delete_flow("sched", true, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(delete_flow("bad name", true, &err), AF_ERR_VALIDATION);
  cr_expect_eq(af_flows_count(svc), 1);
  add("sched", T(SCHEDULED), S(DRAFT)); /* the name is free again */
}

/* ---- many threads, many flows ---- */
#define FLOWS 500
#define THREADS 8

struct worker {
  int seed;
  int changed[FLOWS];
  int failures;
};

static void *stop_all(void *arg) {
  struct worker *w = arg;
  af_arena arena;
  af_arena_init(&arena);
  for (int k = 0; k < FLOWS; k++) {
    int i = (k * 7 + w->seed * 131) % FLOWS; /* each thread in its own order */
    char name[32];
    snprintf(name, sizeof name, "flow_%d", i);
    Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
    req.flow_name = name;
    Appflow__V1__StopFlowResponse resp = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
    af_stop_result res = {false};
    af_error err;
    if (af_flows_stop_flow(svc, &req, &resp, &arena, &res, &err) != AF_OK ||
        resp.flow_status != S(SUSPENDED))
      w->failures++;
    w->changed[i] += res.changed;
    af_arena_reset(&arena);
  }
  af_arena_destroy(&arena);
  return NULL;
}

Test(stop, concurrent_stops_each_transition_reported_once) {
  for (int i = 0; i < FLOWS; i++) {
    char name[32];
    snprintf(name, sizeof name, "flow_%d", i);
    add(name, i % 2 ? T(EVENT) : T(SCHEDULED), i % 3 ? S(ACTIVE) : S(ERRORED));
  }
  static struct worker w[THREADS];
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) {
    memset(&w[t], 0, sizeof w[t]);
    w[t].seed = t;
    pthread_create(&th[t], NULL, stop_all, &w[t]);
  }
  for (int t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  for (int i = 0; i < FLOWS; i++) {
    int total = 0;
    for (int t = 0; t < THREADS; t++)
      total += w[t].changed[i];
    cr_expect_eq(total, 1, "flow_%d changed %d times", i, total);
  }
  for (int t = 0; t < THREADS; t++)
    cr_expect_eq(w[t].failures, 0);
}

/* ---- describing flows while they change ---- */
TestSuite(describe, .init = setup, .fini = teardown);
#define TAGGED 16
#define READERS 4

static atomic_bool stop_reading;

struct reader {
  long answers;
  int failures;
};

/* The round a flow's "round" tag names in a DescribeFlow answer, -1 when it has none. */
static long round_of(const Appflow__V1__DescribeFlowResponse *d) {
  for (size_t i = 0; i < d->n_tags; i++)
    if (strcmp(d->tags[i]->key, "round") == 0)
      return strtol(d->tags[i]->value, NULL, 10);
  return -1;
}

/* DescribeFlow of tagged_i into *d. */
static af_err describe_tagged(int i, Appflow__V1__DescribeFlowResponse *d, af_arena *a) {
  char name[32];
  snprintf(name, sizeof name, "tagged_%d", i);
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = name;
  af_error err;
  af_err rc = af_flows_describe_flow(svc, &req, d, a, &err);
  return rc == AF_OK && strcmp(d->flow_name, name) != 0 ? AF_ERR_INTERNAL_SERVER : rc;
}

/* Describes the flows over and over: the round each shows never goes back (a kept answer is
 * never given after the change that replaced it). */
static void *describe_all(void *arg) {
  struct reader *r = arg;
  long last[TAGGED];
  for (int i = 0; i < TAGGED; i++)
    last[i] = -1;
  af_arena arena;
  af_arena_init(&arena);
  while (!atomic_load(&stop_reading)) {
    for (int i = 0; i < TAGGED; i++) {
      Appflow__V1__DescribeFlowResponse d;
      long round = describe_tagged(i, &d, &arena) == AF_OK ? round_of(&d) : -2;
      r->failures += round < last[i];
      last[i] = round > last[i] ? round : last[i];
      r->answers++;
      af_arena_reset(&arena);
    }
  }
  af_arena_destroy(&arena);
  return NULL;
}

/* Readers describe flows while their tags change: no answer goes back to a round before one it
 * saw, and once the changes are over every flow shows the last round. */
Test(describe, answers_follow_changes_made_while_others_read) {
  char arns[TAGGED][160];
  af_arena a;
  af_arena_init(&a);
  for (int i = 0; i < TAGGED; i++) {
    char name[32];
    snprintf(name, sizeof name, "tagged_%d", i);
    add(name, T(EVENT), S(ACTIVE));
    Appflow__V1__DescribeFlowResponse d;
    cr_assert_eq(describe_tagged(i, &d, &a), AF_OK, "%s", name);
    snprintf(arns[i], sizeof arns[i], "%s", d.flow_arn);
  }
  atomic_store(&stop_reading, false);
  static struct reader r[READERS];
  pthread_t th[READERS];
  for (int t = 0; t < READERS; t++) {
    r[t] = (struct reader){0, 0};
    cr_assert_eq(pthread_create(&th[t], NULL, describe_all, &r[t]), 0);
  }
  const int rounds = 40;
  bool failed = false; /* asserted once the readers are done */
  for (int k = 0; k < rounds && !failed; k++) {
    for (int i = 0; i < TAGGED; i++) {
      char value[16];
      snprintf(value, sizeof value, "%d", k);
      Appflow__V1__TagResourceRequest__TagsEntry e =
          APPFLOW__V1__TAG_RESOURCE_REQUEST__TAGS_ENTRY__INIT;
      e.key = "round";
      e.value = value;
      Appflow__V1__TagResourceRequest__TagsEntry *tags[] = {&e};
      Appflow__V1__TagResourceRequest req = APPFLOW__V1__TAG_RESOURCE_REQUEST__INIT;
      req.resource_arn = arns[i];
      req.n_tags = 1;
      req.tags = tags;
      Appflow__V1__TagResourceResponse resp = APPFLOW__V1__TAG_RESOURCE_RESPONSE__INIT;
      af_error err;
      af_arena_reset(&a);
      failed |= af_flows_call_sync(svc, af_flows_rpc_named(svc, "TagResource"), &req.base,
                                   &resp.base, &a, &err) != AF_OK;
    }
  }
  atomic_store(&stop_reading, true);
  for (int t = 0; t < READERS; t++) {
    pthread_join(th[t], NULL);
    cr_expect_eq(r[t].failures, 0, "reader %d: %d answers went back", t, r[t].failures);
    cr_expect_gt(r[t].answers, 0);
  }
  cr_assert(!failed, "TagResource failed");
  for (int i = 0; i < TAGGED; i++) {
    Appflow__V1__DescribeFlowResponse d;
    af_arena_reset(&a);
    cr_assert_eq(describe_tagged(i, &d, &a), AF_OK, "tagged_%d", i);
    cr_expect_eq(round_of(&d), rounds - 1, "tagged_%d", i);
  }
  af_arena_destroy(&a);
}

/* ---- running out of memory in the memory store ---- */

Test(oom, seed_load_fails_cleanly_and_stop_flow_still_answers) {
  struct budget b = {1 + 64 * AF_STORE_TABLES + 2}; /* the store, 64 shards a table, 2 flows */
  af_allocator mem = budget_allocator(&b);
  af_error err;
  af_store *ms = af_store_memory_new(&(af_store_config){.alloc = &mem});
  cr_assert_not_null(ms);
  af_flows *s = af_flows_new(&(af_flows_config){.store = ms}, &err);
  cr_assert_not_null(s);
#define EVENT_FLOW(name)                                                                           \
  "{\"flowName\":\"" name "\",\"flowStatus\":\"Active\",\"triggerConfig\":{\"triggerType\":"       \
  "\"Event\"},\"sourceFlowConfig\":{\"connectorType\":\"S3\",\"sourceConnectorProperties\":"       \
  "{\"S3\":{\"bucketName\":\"src\"}}},\"destinationFlowConfigList\":[{\"connectorType\":\"S3\","   \
  "\"destinationConnectorProperties\":{\"S3\":{\"bucketName\":\"dst\"}}}],\"tasks\":[{"            \
  "\"sourceFields\":[\"a\"],\"taskType\":\"Filter\",\"connectorOperator\":{\"S3\":"                \
  "\"PROJECTION\"}}]}"
  static const char seed[] =
      "[" EVENT_FLOW("a1") ",\n " EVENT_FLOW("a2") ",\n " EVENT_FLOW("a3") "]";
  af_seed_result res;
  af_seed_error se;
  cr_expect_eq(af_seed_load_buffer(s, seed, sizeof seed - 1, &res, &se), -1);
  cr_expect(strstr(se.message, "cannot store flow 'a3'") != NULL, "%s", se.message);
  cr_expect_eq(se.line, 3);
  cr_expect_eq(res.flows, 2);
  cr_expect_eq(res.added, 2);
  /* What was loaded answers as usual; StopFlow itself needs no store memory. */
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
  req.flow_name = (char *)"a2";
  Appflow__V1__StopFlowResponse resp = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  cr_expect_eq(af_flows_stop_flow(s, &req, &resp, &arena, NULL, &err), AF_OK);
  cr_expect_eq(resp.flow_status, S(SUSPENDED));
  req.flow_name = (char *)"a3";
  cr_expect_eq(af_flows_stop_flow(s, &req, &resp, &arena, NULL, &err), AF_ERR_RESOURCE_NOT_FOUND);
  af_arena_destroy(&arena);
  af_flows_free(s);
  af_store_close(ms);
}

/* ---- the caller's deadline ---- */

typedef struct answer {
  af_latch latch;
  af_err rc;
} answer;

static void answered(void *ctx, af_err rc) {
  answer *a = ctx;
  a->rc = rc;
  af_latch_open(&a->latch);
}

/* StopFlow of name on service s with a deadline (af_store_now_ms's clock), as a door calls it. */
static af_err stop_by(af_flows *s, const char *name, int64_t deadline_ms, af_error *err) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__StopFlowRequest req = APPFLOW__V1__STOP_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__StopFlowResponse resp = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  answer a;
  af_latch_init(&a.latch);
  af_reply_to to = {&arena, err, deadline_ms, answered, &a};
  af_flows_call(s, af_flows_rpc_named(s, "StopFlow"), &req.base, &resp.base, &to);
  af_latch_wait(&a.latch);
  af_arena_destroy(&arena);
  return a.rc;
}

/* Returns once the clock is past deadline_ms: the condition itself, not a guess at a delay. */
static void wait_past(int64_t deadline_ms) {
  while (af_store_now_ms() <= deadline_ms)
    nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
}

/* A store in front of the store under test, slow in one of two ways: it hands each op on only
 * once the op's deadline has passed (a queue that did not move in time), or it answers each
 * only once the deadline has passed (a database that answered late). */
typedef enum slowness { SLOW_TO_TAKE, SLOW_TO_ANSWER } slowness;

typedef struct slow_store {
  af_store base;
  af_store *inner;
  slowness how;
} slow_store;

typedef struct slow_op {
  af_store_op op;      /* first: the inner store's done gets this pointer */
  af_store_op *theirs; /* the caller's */
} slow_op;

static void slow_done(af_store_op *op, af_store_rc rc) {
  slow_op *w = (slow_op *)op;
  af_store_op *theirs = w->theirs;
  theirs->verdict = op->verdict;
  free(w);
  wait_past(theirs->deadline_ms);
  theirs->done(theirs, rc);
}

static void slow_submit(af_store *st, af_store_op *op, void (*kind)(af_store *, af_store_op *)) {
  slow_store *s = (slow_store *)st;
  if (op->deadline_ms <= 0) { /* seeding and checks without a caller waiting */
    kind(s->inner, op);
    return;
  }
  if (s->how == SLOW_TO_TAKE) {
    wait_past(op->deadline_ms);
    kind(s->inner, op);
    return;
  }
  slow_op *w = malloc(sizeof *w);
  cr_assert_not_null(w);
  w->op = *op;
  w->op.deadline_ms = 0; /* the store does the work in its own time; the answer is what is late */
  w->op.done = slow_done;
  w->theirs = op;
  kind(s->inner, &w->op);
}

static void slow_insert(af_store *s, af_store_op *op) { slow_submit(s, op, af_store_insert); }
static void slow_modify(af_store *s, af_store_op *op) { slow_submit(s, op, af_store_modify); }
static void slow_scan(af_store *s, af_store_op *op) { slow_submit(s, op, af_store_scan); }
static void slow_close(af_store *s) {
  af__store_fini(s);
  free(s);
}

static const af_store_ops slow_ops = {slow_insert, slow_modify, slow_scan, NULL, slow_close};

/* A service on a slow front of the test's store: what it writes, svc sees. */
static af_flows *slow_service(slowness how, af_store **front) {
  slow_store *s = calloc(1, sizeof *s);
  cr_assert_not_null(s);
  af__store_init(&s->base, &slow_ops, "slow", NULL);
  memcpy(s->base.token_key, store->token_key, sizeof s->base.token_key);
  s->inner = store;
  s->how = how;
  *front = &s->base;
  af_error err;
  af_flows *slow = af_flows_new(&(af_flows_config){.store = &s->base}, &err);
  cr_assert_not_null(slow, "%s", err.message);
  return slow;
}

TestSuite(deadline, .init = setup, .fini = teardown);

Test(deadline, a_call_whose_deadline_has_passed_ends_with_the_timeout_and_changes_nothing) {
  add("due", T(SCHEDULED), S(ACTIVE));
  af_error err;
  cr_expect_eq(stop_by(svc, "due", af_store_now_ms() - 1, &err), AF_ERR_REQUEST_TIMEOUT);
  cr_expect_str_eq(af_err_type(err.code), "RequestTimeoutException");
  cr_expect(strstr(err.message, "StopFlow did not start") != NULL, "%s", err.message);
  cr_expect(strstr(err.message, "nothing was changed") != NULL, "%s", err.message);
  cr_expect_eq(status_of("due"), S(ACTIVE), "the flow is as it was");
  /* Even a request that would be refused is not looked at: its deadline comes first. */
  cr_expect_eq(stop_by(svc, "no such flow!", af_store_now_ms() - 1, &err), AF_ERR_REQUEST_TIMEOUT);
  cr_expect_eq(stop_by(svc, "due", af_store_now_ms() + 60000, &err), AF_OK, "%s", err.message);
  cr_expect_eq(status_of("due"), S(SUSPENDED));
}

Test(deadline, no_write_starts_after_the_deadline) {
  add("queued", T(SCHEDULED), S(ACTIVE));
  af_store *front;
  af_flows *slow = slow_service(SLOW_TO_TAKE, &front);
  af_error err;
  cr_expect_eq(stop_by(slow, "queued", af_store_now_ms() + 50, &err), AF_ERR_REQUEST_TIMEOUT);
  cr_expect(strstr(err.message, "StopFlow did not complete within its deadline") != NULL, "%s",
            err.message);
  cr_expect_eq(status_of("queued"), S(ACTIVE), "the write was never started");
  af_flows_free(slow);
  af_store_close(front);
}

Test(deadline, no_success_is_answered_after_the_deadline) {
  add("late", T(SCHEDULED), S(ACTIVE));
  af_store *front;
  af_flows *slow = slow_service(SLOW_TO_ANSWER, &front);
  af_error err;
  /* The store does the work in time, but its answer comes after the deadline: the caller hears
   * the deadline's error, never OK. */
  cr_expect_eq(stop_by(slow, "late", af_store_now_ms() + 50, &err), AF_ERR_REQUEST_TIMEOUT);
  cr_expect(strstr(err.message, "may or may not have been made") != NULL, "%s", err.message);
  /* A refusal stands after the deadline: it changed nothing, and says why. */
  add("draft", T(SCHEDULED), S(DRAFT));
  cr_expect_eq(stop_by(slow, "draft", af_store_now_ms() + 50, &err), AF_ERR_CONFLICT, "%s",
               err.message);
  af_flows_free(slow);
  af_store_close(front);
}
