/* The AWS REST-JSON door without sockets (src/bridge/route.h): af_bridge_handle promises a
 * well-formed reply to every request, whatever its method, request-target or body.
 *
 * Input: byte 0 picks the method (real ones, a lower-case one, an empty one); then the
 * request-target as sent (path, labels and query still percent-encoded) up to the first NUL or
 * newline (the HTTP layer hands route.c a C string); the rest is the body. A fresh service per
 * input holds one flow in each state the lifecycle treats differently, so runs do not depend
 * on one another (a stopped or deleted flow stays so) and crashes replay.
 *
 * Oracle: status in 200..599; a body that is one JSON object; success (200, no error type)
 * only for a target af_bridge_match_route routes with that method, and then the response its
 * RPC gives; otherwise an error type and a "message" string; 404 UnknownOperationException
 * exactly when no route fits the path; an Allow header exactly on 405, listing the path's
 * methods but not the request's; labels and query values decoded to NUL-free UTF-8. */
#include "fuzz.h"

#include "bridge/route.h"

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
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &err);
  CHECK(svc != NULL);
  for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++)
    CHECK(af_flows_seed_one(svc, &flows[i], NULL, &err) == AF_OK);
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

/* A successful reply carries what its RPC answers. */
static void check_success(const char *rpc, json_t *j) {
  if (strcmp(rpc, "StopFlow") == 0 || strcmp(rpc, "StartFlow") == 0 ||
      strcmp(rpc, "CreateFlow") == 0) {
    CHECK(json_is_string(json_object_get(j, "flowArn")));
    CHECK(json_is_string(json_object_get(j, "flowStatus")));
  } else if (strcmp(rpc, "DescribeFlow") == 0) {
    CHECK(json_is_string(json_object_get(j, "flowName")));
  } else if (strcmp(rpc, "TagResource") == 0 || strcmp(rpc, "UntagResource") == 0 ||
             strcmp(rpc, "DeleteFlow") == 0) {
    CHECK(json_object_size(j) == 0);
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
  af_arena_destroy(&arena);
  af_flows_free(svc);
  free(target);
  return 0;
}
