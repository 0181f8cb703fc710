#include "grpc/decode.h"

#include "common/utf8.h"

#include <string.h>

/* Nested messages deeper than this are refused rather than walked (protobuf's own limit). */
#define MAX_DEPTH 100
#define MAX_FIELD_NUMBER ((1u << 29) - 1)

/* Reads a varint at *p; 0 when truncated or longer than 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}

static af_err bad_string(const ProtobufCFieldDescriptor *f, const uint8_t *s, size_t len,
                         af_error *err) {
  if (memchr(s, 0, len) != NULL)
    return af_error_set(err, AF_ERR_SERIALIZATION,
                        "field %s contains a NUL byte, which no AppFlow string may hold", f->name);
  if (!af_utf8_valid((const char *)s, len))
    return af_error_set(err, AF_ERR_SERIALIZATION, "field %s is not valid UTF-8", f->name);
  return AF_OK;
}

/* Field number id of desc, NULL when it has none. The contract's messages number their fields
 * 1 to n, so the field is nearly always at index id - 1 (a number is unique, so a match there is
 * the field); anything else takes protobuf-c's search. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *desc,
                                                uint64_t id) {
  if (id - 1 < desc->n_fields && desc->fields[id - 1].id == id)
    return &desc->fields[id - 1];
  return id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)id) : NULL;
}

/* Walks the wire form checking every string field, recursing into message fields. Structural
 * damage is left for protobuf_c_message_unpack to report. */
static af_err check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                            const uint8_t *end, int depth, af_error *err) {
  if (depth > MAX_DEPTH)
    return af_error_set(err, AF_ERR_SERIALIZATION, "messages nested deeper than %d", MAX_DEPTH);
  while (p < end) {
    uint64_t key, n = 0;
    if (!read_varint(&p, end, &key))
      return AF_OK;
    /* Field numbers are 1 to 2^29-1. protobuf-c refuses 0 only when its tag is one byte, so
     * an overlong tag for field 0 would be kept as an unknown field (found by fuzz_decode). */
    if (key >> 3 == 0 || key >> 3 > MAX_FIELD_NUMBER)
      return af_error_set(err, AF_ERR_SERIALIZATION, "field number %llu is not a valid one",
                          (unsigned long long)(key >> 3));
    switch (key & 7) {
    case 0:
      if (!read_varint(&p, end, &n))
        return AF_OK;
      continue;
    case 1:
      n = 8;
      break;
    case 5:
      n = 4;
      break;
    case 2:
      if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
        return AF_OK;
      break;
    default:
      return AF_OK;
    }
    if (n > (uint64_t)(end - p))
      return AF_OK;
    const ProtobufCFieldDescriptor *f = field_of(desc, key >> 3);
    if (f != NULL && (key & 7) == 2) {
      af_err rc = AF_OK;
      if (f->type == PROTOBUF_C_TYPE_STRING)
        rc = bad_string(f, p, (size_t)n, err);
      else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        rc = check_strings(f->descriptor, p, p + n, depth + 1, err);
      if (rc != AF_OK)
        return rc;
    }
    p += n;
  }
  return AF_OK;
}

af_err af_grpc_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      af_arena *arena, ProtobufCMessage **out, af_error *err) {
  *out = NULL;
  af_err rc = check_strings(desc, data, data + len, 0, err);
  if (rc != AF_OK)
    return rc;
  *out = protobuf_c_message_unpack(desc, &arena->allocator, len, data);
  if (*out == NULL)
    return af_error_set(err, AF_ERR_SERIALIZATION, "the request is not a valid %s message",
                        desc->name);
  return AF_OK;
}
