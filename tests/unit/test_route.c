/* The AWS door without sockets: each kind of request gets the status, AWS error type and body
 * AWS clients expect, byte for byte. */
#include "bridge/route.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static af_flows *svc;
static af_arena arena;

static void setup(void) {
  af_error err;
  svc = af_flows_new(&(af_flows_config){0}, &err);
  cr_assert_not_null(svc);
  af_flow_spec spec = {"f1", 2, T(SCHEDULED), S(ACTIVE), NULL, NULL, 0};
  cr_assert_eq(af_table_insert(af_flows_table(svc), &spec, &err), AF_OK);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  af_flows_free(svc);
}

TestSuite(route, .init = setup, .fini = teardown);

static af_bridge_reply call(const char *method, const char *path, const char *body) {
  af_bridge_reply rep;
  af_bridge_handle(svc, method, path, body, strlen(body), &arena, &rep);
  return rep;
}

static void expect_reply(af_bridge_reply rep, int status, const char *type, const char *body) {
  cr_expect_eq(rep.status, status);
  if (type == NULL)
    cr_expect_null(rep.error_type);
  else
    cr_expect_str_eq(rep.error_type, type);
  cr_expect_eq(rep.body_len, strlen(body), "body %.*s", (int)rep.body_len, rep.body);
  cr_expect(rep.body_len == strlen(body) && memcmp(rep.body, body, rep.body_len) == 0, "body %.*s",
            (int)rep.body_len, rep.body);
}

Test(route, stop_flow_success_golden) {
  expect_reply(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}"), 200, NULL,
               "{\"flowArn\":\"arn:aws:appflow:us-east-1:000000000000:flow/f1\","
               "\"flowStatus\":\"Suspended\"}");
}

Test(route, service_errors_golden) {
  expect_reply(call("POST", "/stop-flow", "{\"flowName\":\"nope\"}"), 404,
               "ResourceNotFoundException", "{\"message\":\"Flow nope does not exist\"}");
  expect_reply(call("POST", "/stop-flow", "{}"), 400, "ValidationException",
               "{\"message\":\"1 validation error detected: Value null at 'flowName' failed to "
               "satisfy constraint: Member must not be null\"}");
  expect_reply(call("POST", "/stop-flow", ""), 400, "ValidationException",
               "{\"message\":\"1 validation error detected: Value null at 'flowName' failed to "
               "satisfy constraint: Member must not be null\"}");
}

Test(route, bad_bodies_are_serialization_errors) {
  const char *bad[] = {"{", "[]", "\"x\"", "{\"flowName\": 7}",
                       "{\"flowName\":\"a\",\"flowName\":\"b\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    af_bridge_reply rep = call("POST", "/stop-flow", bad[i]);
    cr_expect_eq(rep.status, 400, "%s", bad[i]);
    cr_expect_str_eq(rep.error_type, "SerializationException", "%s", bad[i]);
    cr_expect(rep.body_len > 14 && memcmp(rep.body, "{\"message\":\"", 12) == 0);
  }
}

Test(route, unknown_members_are_ignored) {
  af_bridge_reply rep = call("POST", "/stop-flow", "{\"flowName\":\"f1\",\"clientToken\":\"x\"}");
  cr_expect_eq(rep.status, 200);
}

Test(route, unknown_path_and_wrong_method) {
  expect_reply(call("POST", "/nope", "{}"), 404, "UnknownOperationException",
               "{\"message\":\"no operation at /nope: appflowd serves AppFlow's REST-JSON "
               "routes, such as POST /stop-flow\"}");
  af_bridge_reply rep = call("GET", "/stop-flow", "");
  expect_reply(rep, 405, "MethodNotAllowedException",
               "{\"message\":\"/stop-flow takes POST only\"}");
  cr_expect_str_eq(rep.allow, "POST");
}

Test(route, untrusted_path_is_escaped) {
  af_bridge_reply rep = call("POST", "/x\"\n\xff", "{}");
  cr_expect_eq(rep.status, 404);
  cr_expect(strstr(rep.body, "/x\\\"\\\\x0a\\\\xff") != NULL, "%.*s", (int)rep.body_len, rep.body);
}

Test(route, state_changes_once) {
  cr_expect_eq(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}").status, 200);
  cr_expect_eq(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}").status, 200);
}

Test(route, error_reply_golden) {
  af_error err;
  af_error_set(&err, AF_ERR_CONFLICT, "say \"hi\"");
  af_bridge_reply rep;
  af_bridge_error_reply(&err, &arena, &rep);
  expect_reply(rep, 409, "ConflictException", "{\"message\":\"say \\\"hi\\\"\"}");
  cr_expect_null(rep.allow);
}

Test(route, request_ids_are_uuid4) {
  char a[37], b[37];
  af_bridge_ids g, h;
  af_bridge_ids_init(&g);
  af_bridge_ids_init(&h);
  af_bridge_request_id(&g, a);
  af_bridge_request_id(&g, b);
  cr_expect_str_neq(a, b);
  af_bridge_request_id(&h, b); /* another generator starts elsewhere */
  cr_expect_str_neq(a, b);
  cr_assert_eq(strlen(a), 36);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      cr_expect_eq(a[i], '-');
    else
      cr_expect(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
  }
  cr_expect_eq(a[14], '4');
  cr_expect(strchr("89ab", a[19]) != NULL);
  for (int i = 0; i < 1000; i++) { /* the version and variant hold for every id */
    af_bridge_request_id(&g, a);
    cr_assert(a[14] == '4' && strchr("89ab", a[19]) != NULL && strlen(a) == 36, "%s", a);
  }
}
