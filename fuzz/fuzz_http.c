/* The AWS REST-JSON door without sockets (src/bridge/route.h): af_bridge_handle promises a
 * well-formed reply to every request, whatever its method, request-target or body.
 *
 * Input: byte 0 picks the method (real ones, a lower-case one, an empty one); then the
 * request-target as sent (path, labels and query still percent-encoded) up to the first NUL or
 * newline (the HTTP layer hands route.c a C string); the rest is the body. A fresh service per
 * input, with the built-in connector and entity catalogs, holds one flow in each state the
 * lifecycle treats differently, a Salesforce connector profile (sf_prof) that the flow sf_flow
 * reads from, a registered custom connector (fuzz_crm) and a profile of it (crm_prof), so runs
 * do not depend on one another (a stopped or deleted flow stays so) and crashes replay.
 *
 * Oracle: status in 200..599; a body that is one JSON object; success (200, no error type)
 * only for a target af_bridge_match_route routes with that method, and then the response its
 * RPC gives; otherwise an error type and a "message" string; 404 UnknownOperationException
 * exactly when no route fits the path; an Allow header exactly on 405, listing the path's
 * methods but not the request's; labels and query values decoded to NUL-free UTF-8; and no
 * reply, success or error, ever carries a seeded profile's credentials (unless the request
 * itself spelled them out, which a message may quote back). */
#include "fuzz.h"

#include "appflow_model.h"
#include "bridge/route.h"
#include "bridge/transcode.h"

#include <jansson.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static const char *const methods[8] = {"POST", "GET",     "PUT",  "DELETE",
                                       "HEAD", "OPTIONS", "post", ""};

#define FLOW(n, t, s, d, tg, nt)                                                                   \
  {                                                                                                \
    .name = n, .name_len = sizeof n - 1, .trigger = T(t), .status = S(s), .description = d,        \
    .tags = tg, .ntags = nt                                                                        \
  }

/* The profiles, the custom connector and the flow of fuzz.h, made by their RPCs from AWS JSON
 * (as a client sends them), in this order. */
static const struct {
  const char *op, *json;
} seed_calls[] = {
    {"CreateConnectorProfile", FUZZ_SF_PROFILE},
    {"RegisterConnector", FUZZ_CRM_CONNECTOR},
    {"CreateConnectorProfile", FUZZ_CRM_PROFILE},
    {"CreateFlow", FUZZ_SF_FLOW},
};

/* Runs op on a request given as AWS JSON, as the AWS door would; it must succeed. The request
 * is decoded once (its message kept for the process: handlers only sort its maps, which
 * leaves it as it was), so each input pays for the calls only. */
static void seed_call(af_flows *svc, size_t i) {
  static af_arena keep;
  static ProtobufCMessage *reqs[sizeof seed_calls / sizeof seed_calls[0]];
  const af_rpc *rpc = af_flows_rpc_named(svc, seed_calls[i].op);
  CHECK(rpc != NULL && rpc->handler != NULL);
  af_error err;
  if (reqs[i] == NULL) {
    const char *json = seed_calls[i].json;
    if (i == 0)
      af_arena_init(&keep);
    if (af_bridge_json_to_message(rpc->op->input, json, strlen(json), &keep, &reqs[i], &err) !=
        AF_OK) {
      fprintf(stderr, "fuzz_http: seeding %s: %s\n", seed_calls[i].op, err.message);
      abort();
    }
  }
  static af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *resp = af_arena_alloc(&a, rpc->output->sizeof_message);
  CHECK(resp != NULL);
  protobuf_c_message_init(rpc->output, resp);
  af_err rc = af_flows_call_sync(svc, rpc, reqs[i], resp, &a, &err);
  if (rc != AF_OK)
    fprintf(stderr, "fuzz_http: seeding %s: %s\n", seed_calls[i].op, err.message);
  CHECK(rc == AF_OK);
  af_arena_destroy(&a);
}

static af_flows *new_service(void) {
  static const af_tag tags[] = {{"team", "data"}, {"env", "fuzz"}};
  static const af_flow_spec flows[] = {
      FLOW("f1", SCHEDULED, ACTIVE, "scheduled", tags, 2),
      FLOW("ev_1", EVENT, ACTIVE, NULL, NULL, 0),
      FLOW("errored", SCHEDULED, ERRORED, NULL, NULL, 0),
      FLOW("stopped", EVENT, SUSPENDED, NULL, NULL, 0),
      FLOW("draft", SCHEDULED, DRAFT, NULL, NULL, 0),
      FLOW("old", EVENT, DEPRECATED, NULL, NULL, 0),
      FLOW("manual", ON_DEMAND, ACTIVE, NULL, tags, 1),
  };
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){.catalog = fuzz_catalog()}, &err);
  CHECK(svc != NULL);
  for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++)
    CHECK(af_flows_seed_one(svc, &flows[i], NULL, &err) == AF_OK);
  for (size_t i = 0; i < sizeof seed_calls / sizeof seed_calls[0]; i++)
    seed_call(svc, i);
  return svc;
}

/* True when list ("DELETE, GET, POST") holds method as one of its items. */
static int lists(const char *list, const char *method) {
  size_t n = strlen(method);
  for (const char *p = list; p != NULL; p = strstr(p, ", "), p = p ? p + 2 : NULL)
    if (strncmp(p, method, n) == 0 && (p[n] == '\0' || p[n] == ','))
      return 1;
  return 0;
}

static int is(const char *rpc, const char *name) { return strcmp(rpc, name) == 0; }

/* A string member that starts with prefix. */
static void check_arn(json_t *j, const char *member, const char *prefix) {
  const char *v = json_string_value(json_object_get(j, member));
  CHECK(v != NULL && strncmp(v, prefix, strlen(prefix)) == 0);
}

/* Each item of j's array member is an object. */
static void check_objects(json_t *j, const char *member) {
  json_t *a = json_object_get(j, member), *item;
  size_t i;
  CHECK(json_is_array(a));
  json_array_foreach(a, i, item) CHECK(json_is_object(item));
}

/* A successful reply carries what its RPC answers. */
static void check_success(const char *rpc, json_t *j) {
  json_t *token = json_object_get(j, "nextToken");
  CHECK(token == NULL || (json_is_string(token) && json_string_length(token) > 0));
  if (is(rpc, "StopFlow") || is(rpc, "StartFlow") || is(rpc, "CreateFlow")) {
    CHECK(json_is_string(json_object_get(j, "flowArn")));
    CHECK(json_is_string(json_object_get(j, "flowStatus")));
  } else if (is(rpc, "DescribeFlow")) {
    CHECK(json_is_string(json_object_get(j, "flowName")));
  } else if (is(rpc, "TagResource") || is(rpc, "UntagResource") || is(rpc, "DeleteFlow") ||
             is(rpc, "DeleteConnectorProfile") || is(rpc, "UnregisterConnector") ||
             is(rpc, "ResetConnectorMetadataCache")) {
    CHECK(json_object_size(j) == 0);
  } else if (is(rpc, "CreateConnectorProfile") || is(rpc, "UpdateConnectorProfile")) {
    check_arn(j, "connectorProfileArn", "arn:aws:appflow:us-east-1:000000000000:connectorprofile/");
  } else if (is(rpc, "RegisterConnector") || is(rpc, "UpdateConnectorRegistration")) {
    check_arn(j, "connectorArn", "arn:aws:appflow:us-east-1:000000000000:connector/");
  } else if (is(rpc, "DescribeConnectorProfiles")) {
    check_objects(j, "connectorProfileDetails");
    json_t *item;
    size_t i;
    json_array_foreach(json_object_get(j, "connectorProfileDetails"), i, item) {
      CHECK(json_is_string(json_object_get(item, "connectorProfileName")));
      CHECK(json_is_string(json_object_get(item, "credentialsArn")));
    }
  } else if (is(rpc, "DescribeConnectors")) {
    CHECK(json_is_object(json_object_get(j, "connectorConfigurations")));
    check_objects(j, "connectors");
  } else if (is(rpc, "ListConnectors")) {
    check_objects(j, "connectors");
  } else if (is(rpc, "DescribeConnector")) {
    CHECK(json_is_object(json_object_get(j, "connectorConfiguration")));
  } else if (is(rpc, "ListConnectorEntities")) {
    json_t *map = json_object_get(j, "connectorEntityMap"), *group;
    const char *key;
    CHECK(json_is_object(map));
    json_object_foreach(map, key, group) CHECK(json_is_array(group));
  } else if (is(rpc, "DescribeConnectorEntity")) {
    check_objects(j, "connectorEntityFields");
  }
}

/* The reply agrees with what af_bridge_match_route makes of the same request. */
static void check_routing(const char *method, const char *target, const af_bridge_reply *r,
                          json_t *j) {
  af_arena arena;
  af_arena_init(&arena);
  af_bridge_match m;
  af_error err = {AF_OK, ""};
  af_err rc = af_bridge_match_route(method, target, &arena, &m, &err);
  CHECK((rc == AF_ERR_UNKNOWN_OPERATION) ==
        (r->error_type != NULL && strcmp(r->error_type, "UnknownOperationException") == 0));
  CHECK((rc == AF_ERR_METHOD_NOT_ALLOWED) == (r->status == 405));
  if (r->status == 405)
    CHECK(m.allow != NULL && strcmp(r->allow, m.allow) == 0 && !lists(r->allow, method));
  if (r->status == 200) {
    CHECK(rc == AF_OK && strcmp(m.op->method, method) == 0);
    check_success(m.op->name, j);
  }
  for (size_t i = 0; rc == AF_OK && i < m.nbindings; i++)
    for (size_t k = 0; k < m.bindings[i].nvalues; k++) {
      const char *v = m.bindings[i].values[k];
      CHECK(v != NULL && fuzz_utf8_ok((const unsigned char *)v, strlen(v)));
    }
  af_arena_destroy(&arena);
}

static void check_reply(const char *method, const char *target, const af_bridge_reply *r) {
  CHECK(r->status >= 200 && r->status <= 599);
  CHECK(r->body != NULL && r->body_len > 0);
  json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
  CHECK(j != NULL && json_is_object(j));
  CHECK((r->allow != NULL) == (r->status == 405));
  if (r->error_type != NULL) {
    CHECK(r->status >= 400 && r->error_type[0] != '\0');
    CHECK(json_is_string(json_object_get(j, "message")));
  } else {
    CHECK(r->status == 200);
  }
  check_routing(method, target, r, j);
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const char *method = methods[data[0] & 7];
  const uint8_t *p = data + 1, *end = data + size, *sep = p;
  while (sep < end && *sep != '\0' && *sep != '\n')
    sep++;
  char *target = strndup((const char *)p, (size_t)(sep - p));
  CHECK(target != NULL);
  const uint8_t *body = sep < end ? sep + 1 : end;
  af_flows *svc = new_service();
  static af_arena arena;
  af_arena_init(&arena);
  af_bridge_reply r;
  memset(&r, 0xAA, sizeof r);
  af_bridge_handle_sync(svc, method, target, NULL, (const char *)body, (size_t)(end - body), &arena,
                        &r);
  check_reply(method, target, &r);
  CHECK(!fuzz_leaks(data, size, r.body, r.body_len));
  af_arena_destroy(&arena);
  af_flows_free(svc);
  free(target);
  return 0;
}
