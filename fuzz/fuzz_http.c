/* The AWS REST-JSON door without sockets (src/bridge/route.h): af_bridge_handle promises a
 * well-formed reply to every request, whatever its method, path or body.
 *
 * Input: byte 0 picks the method (real ones, a lower-case one, an empty one); then the path up
 * to the first NUL or newline (the HTTP layer hands route.c a C string); the rest is the body.
 * A fresh service per input holds one flow in each state StopFlow treats differently, so runs
 * do not depend on one another (a stopped flow stays stopped) and crashes replay.
 *
 * Oracle: status in 200..599; a body that is one JSON object; success (200, no error type)
 * exactly when nothing failed, and then the StopFlow response; otherwise an error type and a
 * "message" string; an Allow header exactly on 405. */
#include "fuzz.h"

#include "bridge/route.h"

#include <jansson.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

static const char *const methods[8] = {"POST", "GET",     "PUT",  "DELETE",
                                       "HEAD", "OPTIONS", "post", ""};

static af_flows *new_service(void) {
  static const af_tag tags[] = {{"team", "data"}, {"env", "fuzz"}};
  static const af_flow_spec flows[] = {
      {"f1", 2, T(SCHEDULED), S(ACTIVE), "scheduled", tags, 2},
      {"ev_1", 4, T(EVENT), S(ACTIVE), NULL, NULL, 0},
      {"errored", 7, T(SCHEDULED), S(ERRORED), NULL, NULL, 0},
      {"stopped", 7, T(EVENT), S(SUSPENDED), NULL, NULL, 0},
      {"draft", 5, T(SCHEDULED), S(DRAFT), NULL, NULL, 0},
      {"old", 3, T(EVENT), S(DEPRECATED), NULL, NULL, 0},
      {"manual", 6, T(ON_DEMAND), S(ACTIVE), NULL, NULL, 0},
  };
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &err);
  CHECK(svc != NULL);
  for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++)
    CHECK(af_table_insert(af_flows_table(svc), &flows[i], &err) == AF_OK);
  return svc;
}

static void check_reply(const af_bridge_reply *r) {
  CHECK(r->status >= 200 && r->status <= 599);
  CHECK(r->body != NULL && r->body_len > 0);
  json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
  CHECK(j != NULL && json_is_object(j));
  if (r->error_type != NULL) {
    CHECK(r->status >= 400 && r->error_type[0] != '\0');
    CHECK(json_is_string(json_object_get(j, "message")));
  } else {
    CHECK(r->status == 200);
    CHECK(json_is_string(json_object_get(j, "flowArn")));
    CHECK(json_is_string(json_object_get(j, "flowStatus")));
  }
  CHECK((r->allow != NULL) == (r->status == 405));
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const char *method = methods[data[0] & 7];
  const uint8_t *p = data + 1, *end = data + size, *sep = p;
  while (sep < end && *sep != '\0' && *sep != '\n')
    sep++;
  char *path = strndup((const char *)p, (size_t)(sep - p));
  CHECK(path != NULL);
  const uint8_t *body = sep < end ? sep + 1 : end;
  af_flows *svc = new_service();
  static af_arena arena;
  af_arena_init(&arena);
  af_bridge_reply r;
  memset(&r, 0xAA, sizeof r);
  af_bridge_handle(svc, method, path, (const char *)body, (size_t)(end - body), &arena, &r);
  check_reply(&r);
  if (r.status == 200)
    CHECK(strcmp(method, "POST") == 0 && strcmp(path, "/stop-flow") == 0);
  af_arena_destroy(&arena);
  af_flows_free(svc);
  free(path);
  return 0;
}
