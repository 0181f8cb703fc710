/* The AWS door without sockets: each kind of request gets the status, AWS error type and body
 * AWS clients expect, byte for byte; request-targets are matched and decoded as botocore and
 * the AWS CLI send them; and the model's operations agree with the proto's google.api.http
 * options. The route suite needs no service; the door suite runs requests through it. */
#include "bridge/route.h"

#include "appflow/v1/appflow.pb-c.h"
#include "google/api/http.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/protoset.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

#define F1_ARN "arn:aws:appflow:us-east-1:000000000000:flow/f1"
/* F1_ARN as botocore puts it in a path: ':' as %3A, '/' as %2F. */
#define F1_LABEL "arn%3Aaws%3Aappflow%3Aus-east-1%3A000000000000%3Aflow%2Ff1"
#define HTTP_RULE 72295728 /* (google.api.http), an extension of MethodOptions */

static af_flows *svc;
static af_arena arena;

/* route: matching, replies and ids, with no service (they run while the core is ported). */
static void setup(void) { af_arena_init(&arena); }
static void teardown(void) { af_arena_destroy(&arena); }

TestSuite(route, .init = setup, .fini = teardown);

/* door: requests through the service's handlers, on a service holding flow f1. */
static void door_setup(void) {
  af_error err;
  svc = af_flows_new(&(af_flows_config){0}, &err);
  cr_assert_not_null(svc);
  af_flow_spec spec = {.name = "f1", .name_len = 2, .trigger = T(SCHEDULED), .status = S(ACTIVE)};
  cr_assert_eq(af_flows_seed_one(svc, &spec, NULL, &err), AF_OK);
  af_arena_init(&arena);
}

static void door_teardown(void) {
  af_arena_destroy(&arena);
  af_flows_free(svc);
}

TestSuite(door, .init = door_setup, .fini = door_teardown);

static af_bridge_reply call(const char *method, const char *target, const char *body) {
  af_bridge_reply rep;
  af_bridge_handle_sync(svc, method, target, NULL, body, strlen(body), &arena, &rep);
  return rep;
}

static void expect_reply(af_bridge_reply rep, int status, const char *type, const char *body) {
  cr_expect_eq(rep.status, status, "status %d, body %.*s", rep.status, (int)rep.body_len, rep.body);
  if (type == NULL)
    cr_expect_null(rep.error_type, "%s", rep.error_type);
  else
    cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", type);
  cr_expect_eq(rep.body_len, strlen(body), "body %.*s", (int)rep.body_len, rep.body);
  cr_expect(rep.body_len == strlen(body) && memcmp(rep.body, body, rep.body_len) == 0, "body %.*s",
            (int)rep.body_len, rep.body);
}

/* The route and bindings of a request-target that must match. */
static af_bridge_match match(const char *method, const char *target) {
  af_bridge_match m;
  af_error err = {AF_OK, ""};
  cr_assert_eq(af_bridge_match_route(method, target, &arena, &m, &err), AF_OK, "%s %s: %s", method,
               target, err.message);
  return m;
}

/* The error a request-target must get; returns its message. */
static const char *no_match(const char *method, const char *target, af_err want) {
  af_bridge_match m;
  af_error err = {AF_OK, ""};
  af_err rc = af_bridge_match_route(method, target, &arena, &m, &err);
  cr_expect_eq(rc, want, "%s %s: %s (%s)", method, target, af_err_type(rc), err.message);
  char *msg = af_arena_strndup(&arena, err.message, strlen(err.message));
  cr_assert_not_null(msg);
  return msg;
}

/* The values bound to member, which must be bound exactly once. */
static const af_bridge_binding *bound(const af_bridge_match *m, const char *member) {
  const af_bridge_binding *b = NULL;
  for (size_t i = 0; i < m->nbindings; i++) {
    if (strcmp(m->bindings[i].name, member) == 0) {
      cr_expect_null(b, "%s bound twice", member);
      b = &m->bindings[i];
    }
  }
  cr_assert_not_null(b, "%s not bound", member);
  return b;
}

static void expect_values(const af_bridge_binding *b, const char *const *want, size_t n) {
  cr_assert_eq(b->nvalues, n, "%s: %zu values, want %zu", b->name, b->nvalues, n);
  for (size_t i = 0; i < n; i++)
    cr_expect_str_eq(b->values[i], want[i], "%s[%zu]", b->name, i);
}

/* ---- StopFlow, the route every earlier release served ---- */

Test(door, stop_flow_success_golden) {
  expect_reply(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}"), 200, NULL,
               "{\"flowArn\":\"arn:aws:appflow:us-east-1:000000000000:flow/f1\","
               "\"flowStatus\":\"Suspended\"}");
}

Test(door, service_errors_golden) {
  expect_reply(call("POST", "/stop-flow", "{\"flowName\":\"nope\"}"), 404,
               "ResourceNotFoundException", "{\"message\":\"Flow nope does not exist\"}");
  expect_reply(call("POST", "/stop-flow", "{}"), 400, "ValidationException",
               "{\"message\":\"1 validation error detected: Value null at 'flowName' failed to "
               "satisfy constraint: Member must not be null\"}");
  expect_reply(call("POST", "/stop-flow", ""), 400, "ValidationException",
               "{\"message\":\"1 validation error detected: Value null at 'flowName' failed to "
               "satisfy constraint: Member must not be null\"}");
}

/* What metrics and the access log read of a reply: the operation it was routed to (none when
 * no route matched) and its outcome. */
Test(door, a_reply_names_its_operation_and_outcome) {
  af_bridge_reply rep = call("POST", "/stop-flow", "{\"flowName\":\"f1\"}");
  cr_assert_not_null(rep.op);
  cr_expect_str_eq(rep.op->name, "StopFlow");
  cr_expect_eq(rep.code, AF_OK);
  rep = call("POST", "/stop-flow", "{\"flowName\":\"nope\"}");
  cr_expect_str_eq(rep.op ? rep.op->name : "(none)", "StopFlow");
  cr_expect_eq(rep.code, AF_ERR_RESOURCE_NOT_FOUND);
  rep = call("POST", "/stop-flow", "{");
  cr_expect_str_eq(rep.op ? rep.op->name : "(none)", "StopFlow");
  cr_expect_eq(rep.code, AF_ERR_SERIALIZATION);
  rep = call("GET", "/tags/%ff", "");
  cr_expect_str_eq(rep.op ? rep.op->name : "(none)", "ListTagsForResource", "a bad label");
  cr_expect_eq(rep.code, AF_ERR_SERIALIZATION);
  rep = call("POST", "/no-such-path", "{}");
  cr_expect_null(rep.op);
  cr_expect_eq(rep.code, AF_ERR_UNKNOWN_OPERATION);
  rep = call("PUT", "/stop-flow", "{}");
  cr_expect_null(rep.op, "no operation of that path takes PUT");
  cr_expect_eq(rep.code, AF_ERR_METHOD_NOT_ALLOWED);
}

Test(door, bad_bodies_are_serialization_errors) {
  const char *bad[] = {"{", "[]", "\"x\"", "{\"flowName\": 7}",
                       "{\"flowName\":\"a\",\"flowName\":\"b\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    af_bridge_reply rep = call("POST", "/stop-flow", bad[i]);
    cr_expect_eq(rep.status, 400, "%s", bad[i]);
    cr_expect_str_eq(rep.error_type, "SerializationException", "%s", bad[i]);
    cr_expect(rep.body_len > 14 && memcmp(rep.body, "{\"message\":\"", 12) == 0);
  }
}

Test(door, unknown_members_are_ignored) {
  af_bridge_reply rep = call("POST", "/stop-flow", "{\"flowName\":\"f1\",\"clientToken\":\"x\"}");
  cr_expect_eq(rep.status, 200);
}

Test(door, query_of_an_unbinding_route_is_ignored) {
  af_bridge_reply rep = call("POST", "/stop-flow?flowName=nope&x=%zz", "{\"flowName\":\"f1\"}");
  cr_expect_eq(rep.status, 200, "%.*s", (int)rep.body_len, rep.body);
}

Test(door, state_changes_once) {
  cr_expect_eq(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}").status, 200);
  cr_expect_eq(call("POST", "/stop-flow", "{\"flowName\":\"f1\"}").status, 200);
}

/* ---- matching ---- */

/* The template with each {label} filled in with "x". */
static const char *fill(const char *tmpl) {
  char *out = af_arena_alloc(&arena, strlen(tmpl) + 1), *o = out;
  cr_assert_not_null(out);
  for (const char *p = tmpl; *p != '\0'; p++) {
    if (*p != '{') {
      *o++ = *p;
      continue;
    }
    *o++ = 'x';
    p = strchr(p, '}');
    cr_assert_not_null(p, "%s: unclosed label", tmpl);
  }
  *o = '\0';
  return out;
}

Test(route, every_operation_is_reached_by_its_method_and_path) {
  cr_expect_eq(af_model_operation_count, 25);
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    const char *target = fill(op->uri);
    af_bridge_match m = match(op->method, target);
    cr_expect_eq(m.op, op, "%s %s reached %s", op->method, target, m.op->name);
  }
  const char *want[][3] = {
      {"POST", "/create-flow", "CreateFlow"},
      {"POST", "/describe-flow", "DescribeFlow"},
      {"POST", "/list-flows", "ListFlows"},
      {"POST", "/start-flow", "StartFlow"},
      {"POST", "/stop-flow", "StopFlow"},
      {"POST", "/delete-flow", "DeleteFlow"},
      {"POST", "/update-flow", "UpdateFlow"},
      {"POST", "/describe-connectors", "DescribeConnectors"},
      {"POST", "/list-connector-entities", "ListConnectorEntities"},
      {"POST", "/tags/" F1_LABEL, "TagResource"},
      {"DELETE", "/tags/" F1_LABEL "?tagKeys=a", "UntagResource"},
      {"GET", "/tags/" F1_LABEL, "ListTagsForResource"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_expect_str_eq(match(want[i][0], want[i][1]).op->name, want[i][2], "%s %s", want[i][0],
                     want[i][1]);
}

Test(route, untag_binds_every_tag_key_and_the_arn) {
  af_bridge_match m = match("DELETE", "/tags/" F1_LABEL "?tagKeys=a&tagKeys=b");
  cr_assert_eq(m.nbindings, 2);
  cr_expect_eq(bound(&m, "resourceArn")->location, AF_MODEL_URI);
  expect_values(bound(&m, "resourceArn"), (const char *[]){F1_ARN}, 1);
  cr_expect_eq(bound(&m, "tagKeys")->location, AF_MODEL_QUERY);
  expect_values(bound(&m, "tagKeys"), (const char *[]){"a", "b"}, 2);
  /* and so the request: the transcoder sets the members from the bindings */
  ProtobufCMessage *req = NULL;
  af_error err = {AF_OK, ""};
  cr_assert_eq(af_bridge_json_to_message(m.op->input, "", 0, &arena, &req, &err), AF_OK);
  cr_assert_eq(af_bridge_bind_members(m.op->input, req, m.bindings, m.nbindings, &arena, &err),
               AF_OK, "%s", err.message);
  const Appflow__V1__UntagResourceRequest *u = (const Appflow__V1__UntagResourceRequest *)req;
  cr_expect_str_eq(u->resource_arn, F1_ARN);
  cr_assert_eq(u->n_tag_keys, 2);
  cr_expect_str_eq(u->tag_keys[0], "a");
  cr_expect_str_eq(u->tag_keys[1], "b");
}

/* Every operation of the model is served: none answers 501 NotImplementedException (which an
 * operation the model gains before the core does would answer, after the model's checks). */
Test(door, every_operation_is_served) {
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    const af_rpc *rpc = af_flows_rpc_named(svc, op->name);
    cr_assert_not_null(rpc, "%s", op->name);
    cr_expect_not_null(rpc->handler, "%s", op->name);
    af_bridge_reply r = call(op->method, fill(op->uri), "{}");
    cr_expect_neq(r.status, 501, "%s", op->name);
    cr_expect(r.error_type == NULL || strcmp(r.error_type, "NotImplementedException") != 0, "%s",
              op->name);
  }
}

Test(route, literal_segments_match_decoded) {
  cr_expect_str_eq(match("POST", "/stop%2Dflow").op->name, "StopFlow");
  cr_expect_str_eq(match("POST", "/%74ags/x").op->name, "TagResource");
  no_match("POST", "/stop%2dflo", AF_ERR_UNKNOWN_OPERATION);
  no_match("POST", "/stop-flow%zz", AF_ERR_UNKNOWN_OPERATION);
  no_match("POST", "/stop-flow%00", AF_ERR_UNKNOWN_OPERATION);
  no_match("POST", "/stop%2Fflow", AF_ERR_UNKNOWN_OPERATION);
  no_match("POST", "/stop+flow", AF_ERR_UNKNOWN_OPERATION);
}

Test(route, unknown_paths_are_404) {
  const char *paths[] = {"/tags",
                         "/tags/",
                         "/tags/a/b",
                         "/tags//",
                         "/tags//a",
                         "//tags/a",
                         "/tags/a/",
                         "/nope",
                         "/stop-flow/",
                         "//stop-flow",
                         "/Stop-Flow",
                         "/stop-flow2",
                         "/",
                         "",
                         "stop-flow",
                         "*",
                         "?x=1",
                         "/tags?x=/tags/a",
                         "/stop-flow/x",
                         "http://h/stop-flow"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    no_match("POST", paths[i], AF_ERR_UNKNOWN_OPERATION);
    no_match("GET", paths[i], AF_ERR_UNKNOWN_OPERATION);
  }
  no_match("POST", NULL, AF_ERR_UNKNOWN_OPERATION);
}

Test(door, unknown_path_golden) {
  expect_reply(call("POST", "/nope?a=b", "{}"), 404, "UnknownOperationException",
               "{\"message\":\"no operation at /nope: appflowd serves AppFlow's REST-JSON "
               "routes, such as POST /create-flow, POST /stop-flow and GET "
               "/tags/{resourceArn}\"}");
  cr_expect_null(call("POST", "/tags/", "{}").allow);
}

Test(door, untrusted_path_is_escaped) {
  af_bridge_reply rep = call("POST", "/x\"\n\xff", "{}");
  cr_expect_eq(rep.status, 404);
  cr_expect(strstr(rep.body, "/x\\\"\\\\x0a\\\\xff") != NULL, "%.*s", (int)rep.body_len, rep.body);
}

Test(door, wrong_method_golden) {
  af_bridge_reply rep = call("GET", "/stop-flow", "");
  expect_reply(rep, 405, "MethodNotAllowedException",
               "{\"message\":\"/stop-flow takes POST only\"}");
  cr_expect_str_eq(rep.allow, "POST");
  const char *methods[] = {"PUT", "PATCH", "HEAD", "OPTIONS", "get", "delete", ""};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    rep = call(methods[i], "/tags/" F1_LABEL "?tagKeys=a", "");
    expect_reply(rep, 405, "MethodNotAllowedException",
                 "{\"message\":\"/tags/{resourceArn} takes DELETE, GET or POST only\"}");
    cr_expect_str_eq(rep.allow ? rep.allow : "(none)", "DELETE, GET, POST", "%s", methods[i]);
  }
  rep = call("DELETE", "/create-flow", "");
  cr_expect_eq(rep.status, 405);
  cr_expect_str_eq(rep.allow ? rep.allow : "(none)", "POST");
}

/* A 405 names the methods before labels are decoded: a bad label is no reason to hide them. */
Test(route, wrong_method_comes_before_label_decoding) {
  af_bridge_match m;
  af_error err;
  cr_expect_eq(af_bridge_match_route("PUT", "/tags/%zz", &arena, &m, &err),
               AF_ERR_METHOD_NOT_ALLOWED);
  cr_expect_str_eq(m.allow, "DELETE, GET, POST");
}

/* ---- labels ---- */

static const char *label(const char *target) {
  af_bridge_match m = match("GET", target);
  const af_bridge_binding *b = bound(&m, "resourceArn");
  cr_assert_eq(b->nvalues, 1);
  return b->values[0];
}

Test(route, labels_are_percent_decoded) {
  cr_expect_str_eq(label("/tags/" F1_LABEL), F1_ARN);
  cr_expect_str_eq(label("/tags/arn%3aaws%3aappflow%3aus-east-1%3a000000000000%3aflow%2ff1"),
                   F1_ARN);
  cr_expect_str_eq(label("/tags/arn:aws:appflow:us-east-1:000000000000:flow%2Ff1"), F1_ARN);
  cr_expect_str_eq(label("/tags/a%23b"), "a#b");
  cr_expect_str_eq(label("/tags/a%3Fb"), "a?b");
  cr_expect_str_eq(label("/tags/a%25b"), "a%b");
  cr_expect_str_eq(label("/tags/a+b"), "a+b"); /* '+' is no space in a path */
  cr_expect_str_eq(label("/tags/a%20b%2Bc"), "a b+c");
  cr_expect_str_eq(label("/tags/caf%C3%A9"), "caf\xc3\xa9");
  cr_expect_str_eq(label("/tags/%F0%9F%98%B9"), "\xf0\x9f\x98\xb9");
  cr_expect_str_eq(label("/tags/x?tagKeys=a"), "x");
}

Test(route, labels_take_one_segment) {
  no_match("GET", "/tags/" F1_ARN, AF_ERR_UNKNOWN_OPERATION);
  cr_expect_str_eq(label("/tags/%2F"), "/");
  cr_expect_str_eq(label("/tags/%2F%2F"), "//");
}

Test(door, bad_labels_are_serialization_errors) {
  struct {
    const char *target, *message;
  } cases[] = {
      {"/tags/%zz", "the path's label {resourceArn} has '%zz', which is no percent-escape: '%' "
                    "must be followed by two hex digits"},
      {"/tags/a%4", "the path's label {resourceArn} has '%4', which is no percent-escape: '%' "
                    "must be followed by two hex digits"},
      {"/tags/a%", "the path's label {resourceArn} has '%', which is no percent-escape: '%' "
                   "must be followed by two hex digits"},
      {"/tags/%4g", "the path's label {resourceArn} has '%4g', which is no percent-escape: '%' "
                    "must be followed by two hex digits"},
      {"/tags/%%41", "the path's label {resourceArn} has '%%4', which is no percent-escape: '%' "
                     "must be followed by two hex digits"},
      {"/tags/a%00b",
       "the path's label {resourceArn} holds %00 (a NUL byte), which appflowd does not accept"},
      {"/tags/%ff", "the path's label {resourceArn} is not UTF-8 once percent-decoded"},
      {"/tags/%C3", "the path's label {resourceArn} is not UTF-8 once percent-decoded"},
      {"/tags/%ED%A0%80", "the path's label {resourceArn} is not UTF-8 once percent-decoded"},
      {"/tags/%C0%AF", "the path's label {resourceArn} is not UTF-8 once percent-decoded"},
      {"/tags/\xff", "the path's label {resourceArn} is not UTF-8 once percent-decoded"},
      {"/tags/%zz?tagKeys=a", "the path's label {resourceArn} has '%zz', which is no "
                              "percent-escape: '%' must be followed by two hex digits"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int k = 0; k < 3; k++) {
      const char *method = (const char *[]){"GET", "POST", "DELETE"}[k];
      cr_expect_str_eq(no_match(method, cases[i].target, AF_ERR_SERIALIZATION), cases[i].message,
                       "%s %s", method, cases[i].target);
    }
  }
  /* the door's reply: AWS's SerializationException, before the body is read */
  expect_reply(call("GET", "/tags/%zz", "{"), 400, "SerializationException",
               "{\"message\":\"the path's label {resourceArn} has '%zz', which is no "
               "percent-escape: '%' must be followed by two hex digits\"}");
}

/* ---- the query ---- */

static af_bridge_match untag(const char *query) {
  char target[512];
  snprintf(target, sizeof target, "/tags/%s%s", F1_LABEL, query);
  return match("DELETE", target);
}

#define VALUES(...)                                                                                \
  (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

Test(route, repeated_query_parameters_bind_every_value) {
  af_bridge_match m = untag("?tagKeys=a&tagKeys=b");
  cr_expect_eq(m.nbindings, 2);
  expect_values(bound(&m, "resourceArn"), VALUES(F1_ARN));
  expect_values(bound(&m, "tagKeys"), VALUES("a", "b"));
  m = untag("?tagKeys=team&x=1&tagKeys=env&y&tagKeys=team");
  expect_values(bound(&m, "tagKeys"), VALUES("team", "env", "team"));
}

Test(route, unknown_query_parameters_are_ignored) {
  /* unknown names, even with bad escapes; names compared exactly (case matters) */
  af_bridge_match m = untag("?x=%zz&tagkeys=no&TagKeys=no&tagKeys=a&tagKeysx=no&%zz=%00&y=%ff");
  expect_values(bound(&m, "tagKeys"), VALUES("a"));
  m = untag("?x=1");
  cr_expect_eq(bound(&m, "tagKeys")->nvalues, 0); /* bound, with no values: the member is empty */
  m = untag("");
  cr_expect_eq(bound(&m, "tagKeys")->nvalues, 0);
  m = untag("?");
  cr_expect_eq(bound(&m, "tagKeys")->nvalues, 0);
  m = match("GET", "/tags/x?tagKeys=a"); /* ListTagsForResource binds no query parameter */
  cr_expect_eq(m.nbindings, 1);
}

Test(route, empty_query_values) {
  af_bridge_match m = untag("?tagKeys=");
  expect_values(bound(&m, "tagKeys"), VALUES(""));
  m = untag("?tagKeys");
  expect_values(bound(&m, "tagKeys"), VALUES(""));
  m = untag("?&&tagKeys=a&&tagKeys=&");
  expect_values(bound(&m, "tagKeys"), VALUES("a", ""));
}

Test(route, query_values_are_decoded) {
  af_bridge_match m = untag("?tagKeys=a%26b%3Dc&tagKeys=x=y&tagKeys=%3F%23%2F");
  expect_values(bound(&m, "tagKeys"), VALUES("a&b=c", "x=y", "?#/"));
  m = untag("?tagKeys=a+b&tagKeys=a%2Bb&tagKeys=a%20b&tagKeys=caf%C3%A9");
  expect_values(bound(&m, "tagKeys"), VALUES("a b", "a+b", "a b", "caf\xc3\xa9"));
  m = untag("?tag%4Beys=a&tag%4beys=b&tagKeys=c"); /* names are decoded too */
  expect_values(bound(&m, "tagKeys"), VALUES("a", "b", "c"));
  m = untag("?tag+Keys=a&tagKeys+=b&tagKeys=c"); /* a '+' in a name is a space there too */
  expect_values(bound(&m, "tagKeys"), VALUES("c"));
}

Test(route, bad_query_values_are_serialization_errors) {
  struct {
    const char *query, *message;
  } cases[] = {
      {"?tagKeys=%zz", "the query parameter tagKeys has '%zz', which is no percent-escape: '%' "
                       "must be followed by two hex digits"},
      {"?tagKeys=a&tagKeys=b%4", "the query parameter tagKeys has '%4', which is no "
                                 "percent-escape: '%' must be followed by two hex digits"},
      {"?tagKeys=%00",
       "the query parameter tagKeys holds %00 (a NUL byte), which appflowd does not accept"},
      {"?tagKeys=%ff", "the query parameter tagKeys is not UTF-8 once percent-decoded"},
      {"?tagKeys=\xc3", "the query parameter tagKeys is not UTF-8 once percent-decoded"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char target[256];
    snprintf(target, sizeof target, "/tags/x%s", cases[i].query);
    cr_expect_str_eq(no_match("DELETE", target, AF_ERR_SERIALIZATION), cases[i].message, "%s",
                     target);
  }
}

/* ---- every operation through the door (the service's handlers) ---- */

Test(door, every_operation_answers_through_the_door) {
  expect_reply(call("POST", "/describe-flow", "{\"flowName\":\"nope\"}"), 404,
               "ResourceNotFoundException", "{\"message\":\"Flow nope does not exist\"}");
  af_bridge_reply rep = call("POST", "/describe-flow", "{\"flowName\":\"f1\"}");
  cr_expect_eq(rep.status, 200, "%.*s", (int)rep.body_len, rep.body);
  cr_expect(strstr(rep.body, "\"flowArn\":\"" F1_ARN "\"") != NULL, "%.*s", (int)rep.body_len,
            rep.body);
  expect_reply(call("POST", "/start-flow", "{\"flowName\":\"f1\"}"), 200, NULL,
               "{\"flowArn\":\"" F1_ARN "\",\"flowStatus\":\"Active\"}");
  rep = call("POST", "/list-flows", "");
  cr_expect_eq(rep.status, 200, "%.*s", (int)rep.body_len, rep.body);
  cr_expect(strstr(rep.body, "\"flowName\":\"f1\"") != NULL, "%.*s", (int)rep.body_len, rep.body);
  rep = call("POST", "/create-flow", "{}");
  cr_expect_eq(rep.status, 400, "%.*s", (int)rep.body_len, rep.body);
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "ValidationException");
  rep = call("POST", "/start-flow", "{\"flowName\":\"nope\"}");
  cr_expect_eq(rep.status, 404, "%.*s", (int)rep.body_len, rep.body);
  rep = call("POST", "/delete-flow", "{\"flowName\":\"nope\"}");
  cr_expect_eq(rep.status, 404, "%.*s", (int)rep.body_len, rep.body);
}

Test(door, tags_through_the_door) {
  expect_reply(call("GET", "/tags/" F1_LABEL, ""), 200, NULL, "{\"tags\":{}}");
  expect_reply(call("POST", "/tags/" F1_LABEL, "{\"tags\":{\"team\":\"data\",\"env\":\"dev\"}}"),
               200, NULL, "{}");
  af_bridge_reply rep = call("GET", "/tags/" F1_LABEL, "");
  cr_expect_eq(rep.status, 200);
  cr_expect(strstr(rep.body, "\"team\":\"data\"") && strstr(rep.body, "\"env\":\"dev\""), "%.*s",
            (int)rep.body_len, rep.body);
  expect_reply(call("DELETE", "/tags/" F1_LABEL "?tagKeys=team&tagKeys=nope", ""), 200, NULL, "{}");
  expect_reply(call("GET", "/tags/" F1_LABEL, ""), 200, NULL, "{\"tags\":{\"env\":\"dev\"}}");
  expect_reply(call("DELETE", "/tags/" F1_LABEL "?tagKeys=env", ""), 200, NULL, "{}");
  expect_reply(call("GET", "/tags/" F1_LABEL, ""), 200, NULL, "{\"tags\":{}}");
}

/* AWS reads a bound member from its binding only: the body's value for it does not count. */
Test(door, bound_members_come_from_the_request_line) {
  const char *other = "{\"resourceArn\":\"arn:aws:appflow:us-east-1:000000000000:flow/nope\","
                      "\"tags\":{\"k\":\"v\"}}";
  expect_reply(call("POST", "/tags/" F1_LABEL, other), 200, NULL, "{}");
  expect_reply(call("GET", "/tags/" F1_LABEL, "{\"resourceArn\":\"x\"}"), 200, NULL,
               "{\"tags\":{\"k\":\"v\"}}");
  /* tagKeys in a DELETE's body is not read: the query has none, which AWS calls missing */
  af_bridge_reply rep = call("DELETE", "/tags/" F1_LABEL, "{\"tagKeys\":[\"k\"]}");
  cr_expect_eq(rep.status, 400, "%.*s", (int)rep.body_len, rep.body);
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "ValidationException");
  expect_reply(call("GET", "/tags/" F1_LABEL, ""), 200, NULL, "{\"tags\":{\"k\":\"v\"}}");
}

Test(door, get_and_delete_bodies_are_read) {
  af_bridge_reply rep = call("GET", "/tags/" F1_LABEL, "{");
  cr_expect_eq(rep.status, 400);
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "SerializationException");
  rep = call("DELETE", "/tags/" F1_LABEL "?tagKeys=a", "[]");
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "SerializationException");
  expect_reply(call("GET", "/tags/" F1_LABEL, " \r\n"), 200, NULL, "{\"tags\":{}}");
}

Test(door, tag_errors_through_the_door) {
  af_bridge_reply rep =
      call("GET", "/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A000000000000%3Aflow%2Fnope", "");
  cr_expect_eq(rep.status, 404, "%.*s", (int)rep.body_len, rep.body);
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "ResourceNotFoundException");
  rep = call("GET", "/tags/not-an-arn", "");
  cr_expect_eq(rep.status, 400, "%.*s", (int)rep.body_len, rep.body);
  cr_expect_str_eq(rep.error_type ? rep.error_type : "(none)", "ValidationException");
  /* AWS accepts an empty map for the required tags: nothing changes */
  rep = call("POST", "/tags/" F1_LABEL, "{\"tags\":{}}");
  cr_expect_eq(rep.status, 200, "%.*s", (int)rep.body_len, rep.body);
}

/* ---- replies ---- */

Test(route, error_reply_golden) {
  af_error err;
  af_error_set(&err, AF_ERR_CONFLICT, "say \"hi\"");
  af_bridge_reply rep;
  af_bridge_error_reply(&err, &arena, &rep);
  expect_reply(rep, 409, "ConflictException", "{\"message\":\"say \\\"hi\\\"\"}");
  cr_expect_null(rep.allow);
}

/* ---- the route table against the proto ---- */

/* The (google.api.http) rule of a method, from its options' unknown fields (protobuf-c does
 * not know the extension); NULL when it has none. Free it with its __free_unpacked. */
static Google__Api__HttpRule *http_rule(const Google__Protobuf__MethodDescriptorProto *md) {
  if (md->options == NULL)
    return NULL;
  for (unsigned i = 0; i < md->options->base.n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &md->options->base.unknown_fields[i];
    if (u->tag != HTTP_RULE || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
      continue;
    size_t skip = 0; /* protobuf-c keeps the field's length prefix (a varint) in its data */
    while (skip < u->len && (u->data[skip] & 0x80))
      skip++;
    cr_assert_lt(skip, u->len);
    return google__api__http_rule__unpack(NULL, u->len - skip - 1, u->data + skip + 1);
  }
  return NULL;
}

static const char *rule_method(const Google__Api__HttpRule *r, const char **path) {
  switch (r->pattern_case) {
  case GOOGLE__API__HTTP_RULE__PATTERN_GET:
    *path = r->get;
    return "GET";
  case GOOGLE__API__HTTP_RULE__PATTERN_PUT:
    *path = r->put;
    return "PUT";
  case GOOGLE__API__HTTP_RULE__PATTERN_POST:
    *path = r->post;
    return "POST";
  case GOOGLE__API__HTTP_RULE__PATTERN_DELETE:
    *path = r->delete_;
    return "DELETE";
  case GOOGLE__API__HTTP_RULE__PATTERN_PATCH:
    *path = r->patch;
    return "PATCH";
  case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
  case GOOGLE__API__HTTP_RULE__PATTERN__NOT_SET:
  case _GOOGLE__API__HTTP_RULE__PATTERN__CASE_IS_INT_SIZE:
    break;
  }
  *path = "";
  return "?";
}

/* The proto's path with each {field_name} written as the label the model names it by: the
 * location_name of the input's member on that field. */
static const char *aws_path(const char *path, const af_model_struct *in) {
  size_t cap = 2 * strlen(path) + 64, n = 0;
  char *out = af_arena_alloc(&arena, cap);
  cr_assert_not_null(out);
  for (const char *p = path; *p != '\0'; p++) {
    if (*p != '{') {
      out[n++] = *p;
      continue;
    }
    const char *close = strchr(p, '}');
    cr_assert_not_null(close, "%s: unclosed label", path);
    char field[128];
    snprintf(field, sizeof field, "%.*s", (int)(close - p - 1), p + 1);
    const char *label = "?";
    for (size_t i = 0; i < in->n_members; i++)
      if (strcmp(in->descriptor->fields[i].name, field) == 0 && in->members[i].location_name)
        label = in->members[i].location_name;
    n += (size_t)snprintf(out + n, cap - n, "{%s}", label);
    p = close;
  }
  out[n] = '\0';
  return out;
}

static const af_model_operation *operation_of(const char *name) {
  const af_model_operation *found = NULL;
  for (size_t i = 0; i < af_model_operation_count; i++) {
    if (strcmp(af_model_operations[i].name, name) == 0) {
      cr_expect_null(found, "two operations named %s", name);
      found = &af_model_operations[i];
    }
  }
  return found;
}

static const Google__Protobuf__ServiceDescriptorProto *
appflow_service(const Google__Protobuf__FileDescriptorSet *set) {
  for (size_t i = 0; i < set->n_file; i++) {
    const Google__Protobuf__FileDescriptorProto *f = set->file[i];
    for (size_t k = 0; strcmp(f->name, "appflow/v1/appflow.proto") == 0 && k < f->n_service; k++)
      if (strcmp(f->service[k]->name, "AppFlowService") == 0)
        return f->service[k];
  }
  return NULL;
}

Test(route, operations_agree_with_the_protos_http_options) {
  /* malloc, not the arena: the set with its source info is larger than a request may be */
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, af_protoset_len, af_protoset);
  cr_assert_not_null(set);
  const Google__Protobuf__ServiceDescriptorProto *svc_proto = appflow_service(set);
  cr_assert_not_null(svc_proto);
  cr_expect_eq(svc_proto->n_method, af_model_operation_count, "%zu RPCs, %zu operations",
               svc_proto->n_method, af_model_operation_count);
  for (size_t i = 0; i < svc_proto->n_method; i++) {
    const Google__Protobuf__MethodDescriptorProto *md = svc_proto->method[i];
    Google__Api__HttpRule *rule = http_rule(md);
    const af_model_operation *op = operation_of(md->name);
    cr_assert_not_null(rule, "%s has no google.api.http option", md->name);
    cr_assert_not_null(op, "%s is no operation of the model", md->name);
    const char *path, *method = rule_method(rule, &path);
    cr_expect_str_eq(op->method, method, "%s", md->name);
    cr_expect_str_eq(op->uri, aws_path(path, op->input), "%s", md->name);
    cr_expect_str_eq(rule->body, strcmp(method, "POST") == 0 ? "*" : "", "%s", md->name);
    google__api__http_rule__free_unpacked(rule, NULL);
  }
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

/* What a route binds is what the model places outside the body: every label of the template
 * (a URI member of the input) and every query member, as strings the transcoder can set; and
 * each operation stays within route.h's limits. */
Test(route, bound_members_are_the_inputs_located_members) {
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    const af_model_struct *in = op->input;
    af_bridge_match m = match(op->method, fill(op->uri));
    size_t located = 0, headers = 0;
    for (size_t k = 0; k < in->n_members; k++) {
      located +=
          in->members[k].location == AF_MODEL_URI || in->members[k].location == AF_MODEL_QUERY;
      headers += in->members[k].location == AF_MODEL_HEADER;
    }
    cr_expect_eq(m.nbindings, located, "%s binds %zu of %zu members", op->name, m.nbindings,
                 located);
    cr_expect_leq(headers, AF_BRIDGE_MAX_HEADERS, "%s", op->name);
    ProtobufCMessage *req = NULL;
    af_error err = {AF_OK, ""};
    cr_assert_eq(af_bridge_json_to_message(in, "{}", 2, &arena, &req, &err), AF_OK);
    cr_expect_eq(af_bridge_bind_members(in, req, m.bindings, m.nbindings, &arena, &err), AF_OK,
                 "%s: %s", op->name, err.message);
  }
}
