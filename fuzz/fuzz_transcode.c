/* The AWS JSON transcoder (src/bridge/transcode.h): every REST-JSON body reaches it before any
 * rule runs. Input: byte 0 picks the message type, the rest is the JSON body. StopFlowRequest
 * is the real request; the google.rpc types add what it lacks (nested and repeated messages,
 * maps, bytes, int64, enums) so the generic walker is covered the same way.
 *
 * Oracle: failures carry a message; a success writes back as JSON that jansson accepts, and
 * that JSON transcodes again to the same message and the same text (a lossy or asymmetric
 * mapping shows up as a mismatch). */
#include "fuzz.h"

#include "appflow/v1/appflow.pb-c.h"
#include "bridge/transcode.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <jansson.h>
#include <string.h>

static const ProtobufCMessageDescriptor *const descs[8] = {
    &appflow__v1__stop_flow_request__descriptor,
    &appflow__v1__stop_flow_response__descriptor,
    &google__rpc__status__descriptor,
    &google__rpc__error_info__descriptor,
    &google__rpc__bad_request__descriptor,
    &google__rpc__retry_info__descriptor,
    &google__rpc__quota_failure__descriptor,
    &google__rpc__help__descriptor,
};

/* The packed form, for comparing two messages field by field. malloc'd. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  CHECK(buf != NULL && protobuf_c_message_pack(m, buf) == *len);
  return buf;
}

/* JSON text -> message, checking what every call must give. */
static af_err parse(const ProtobufCMessageDescriptor *d, const char *s, size_t n, af_arena *a,
                    ProtobufCMessage **m) {
  af_error err;
  memset(&err, 0xAA, sizeof err); /* an unset message then fails the memchr below */
  af_err rc = af_bridge_json_to_message(d, s, n, a, m, &err);
  if (rc == AF_OK)
    CHECK(*m != NULL && (*m)->descriptor == d);
  else
    CHECK(err.code == rc && memchr(err.message, 0, sizeof err.message) && err.message[0]);
  return rc;
}

static void write_json(const ProtobufCMessage *m, af_arena *a, char **out, size_t *len) {
  af_error err;
  /* What a parse accepted must be writable: every string came through jansson, so it is UTF-8,
   * and inputs are far below the arena's limit. */
  CHECK(af_bridge_message_to_json(m, a, out, len, &err) == AF_OK);
  CHECK(*out != NULL && strlen(*out) == *len);
  json_t *j = json_loadb(*out, *len, JSON_REJECT_DUPLICATES, NULL);
  CHECK(j != NULL && json_is_object(j));
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const ProtobufCMessageDescriptor *d = descs[data[0] & 7];
  static af_arena arena;
  af_arena_init(&arena);
  ProtobufCMessage *m1, *m2;
  if (parse(d, (const char *)data + 1, size - 1, &arena, &m1) == AF_OK) {
    char *j1, *j2;
    size_t n1, n2, p1, p2;
    write_json(m1, &arena, &j1, &n1);
    CHECK(parse(d, j1, n1, &arena, &m2) == AF_OK);
    write_json(m2, &arena, &j2, &n2);
    CHECK(n1 == n2 && memcmp(j1, j2, n1) == 0);
    uint8_t *b1 = pack(m1, &p1), *b2 = pack(m2, &p2);
    CHECK(p1 == p2 && memcmp(b1, b2, p1) == 0);
    free(b1);
    free(b2);
  }
  af_arena_destroy(&arena);
  return 0;
}
