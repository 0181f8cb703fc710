/* Helpers over protobuf-c's descriptors shared by the core's checks and the gRPC encoder.
 * Header-only and pure: no allocation, no errors, safe from any thread. */
#ifndef AF_COMMON_PBC_H
#define AF_COMMON_PBC_H

#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A door's own text of a message (the AWS door's JSON), malloc'd: freed by its keeper. */
typedef struct af_pbc_text {
  size_t len;
  char data[];
} af_pbc_text;

/* A nested message of a response that is packed already (the service keeps some answers' parts
 * packed: common/encode.h writes these bytes in place of walking msg), and where the message's
 * JSON is kept once a door has written it (bridge/transcode.h): NULL when nowhere; the slot is
 * filled once, by compare-and-swap from NULL, and read by every writer after. */
typedef struct af_pbc_packed {
  const ProtobufCMessage *msg;
  const uint8_t *data;
  size_t len;
  _Atomic(af_pbc_text *) *text;
} af_pbc_packed;

/* The packed messages of one response (the response itself, or messages nested in it), in the
 * order an encoder meets them (fields in descriptor order, each repeated field's elements in
 * order). */
typedef struct af_pbc_ready {
  size_t n;
  const af_pbc_packed *items;
} af_pbc_ready;

/* The in-memory size of one element of a repeated field of type t, as protobuf-c lays out its
 * arrays (its own sizeof_elt_in_repeated_array is not exported). */
static inline size_t af_pbc_element_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_ENUM:
    return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  }
  return sizeof(void *);
}

#endif
