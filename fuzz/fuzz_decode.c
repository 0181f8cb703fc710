/* The gRPC payload decoder (src/grpc/decode.h): every gRPC request's bytes, unauthenticated.
 * Input: byte 0 picks the message type, the rest is the payload. StopFlowRequest is the real
 * request; google.rpc.Status (repeated Any), ErrorInfo (a map) and BadRequest (repeated nested
 * messages) reach the nested-message walk StopFlowRequest alone never does.
 *
 * Oracle, on success: no string field anywhere in the payload held a NUL or invalid UTF-8,
 * checked twice and apart from decode.c's walker: on the wire (where a NUL is still visible;
 * protobuf-c would cut the string there) and in the decoded message; and the message packed
 * again decodes again. On failure: an error with a message, and no message out. */
#include "fuzz.h"

#include "appflow/v1/appflow.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpc/decode.h"

#include <string.h>

static const ProtobufCMessageDescriptor *const descs[4] = {
    &appflow__v1__stop_flow_request__descriptor, &google__rpc__status__descriptor,
    &google__rpc__error_info__descriptor, &google__rpc__bad_request__descriptor};

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int i = 0; i < 10; i++) {
    if (*p == end)
      return 0;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80))
      return 1;
  }
  return 0;
}

/* The wire, read after protobuf-c accepted it, so it is well formed as far as protobuf-c
 * reads: each length-delimited field the descriptor calls a string must be clean UTF-8. */
static void check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end) {
  uint64_t key, n;
  while (p < end && varint(&p, end, &key)) {
    unsigned wt = key & 7;
    if (wt == 0) {
      if (!varint(&p, end, &n))
        return;
      continue;
    }
    if (wt == 1 || wt == 5)
      n = wt == 1 ? 8 : 4;
    else if (wt != 2 || !varint(&p, end, &n))
      return;
    if (n > (uint64_t)(end - p))
      return;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, (unsigned)(uint32_t)(key >> 3));
    if (f != NULL && wt == 2 && f->type == PROTOBUF_C_TYPE_STRING)
      CHECK(memchr(p, 0, n) == NULL && fuzz_utf8_ok(p, n));
    if (f != NULL && wt == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE)
      check_wire(f->descriptor, p, p + n);
    p += n;
  }
}

/* The decoded message: every string (singular, repeated, in nested messages) valid UTF-8. */
static void check_msg(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    const char *member = (const char *)m + f->offset;
    size_t count = 1;
    const void *const *items = (const void *const *)member;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      count = *(const size_t *)((const char *)m + f->quantifier_offset);
      items = *(const void *const *const *)member;
    } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
        continue;
    }
    for (size_t k = 0; k < count; k++) {
      if (items[k] == NULL)
        continue;
      if (f->type == PROTOBUF_C_TYPE_STRING)
        CHECK(fuzz_utf8_ok(items[k], strlen(items[k])));
      else
        check_msg(items[k]);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const ProtobufCMessageDescriptor *d = descs[data[0] & 3];
  static af_arena arena;
  af_arena_init(&arena);
  af_error err;
  memset(&err, 0xAA, sizeof err);
  ProtobufCMessage *m = (ProtobufCMessage *)&err; /* must be overwritten with NULL on failure */
  af_err rc = af_grpc_decode(d, data + 1, size - 1, &arena, &m, &err);
  if (rc != AF_OK) {
    CHECK(m == NULL && err.code == rc);
    CHECK(memchr(err.message, 0, sizeof err.message) != NULL && err.message[0] != '\0');
  } else {
    CHECK(m != NULL && m->descriptor == d);
    check_wire(d, data + 1, data + size);
    check_msg(m);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf != NULL && protobuf_c_message_pack(m, buf) == n);
    ProtobufCMessage *again;
    CHECK(af_grpc_decode(d, buf, n, &arena, &again, &err) == AF_OK);
    free(buf);
  }
  af_arena_destroy(&arena);
  return 0;
}
