#include "grpc/decode.h"

#include "appflow/v1/appflow.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <criterion/criterion.h>
#include <string.h>

static af_err decode(const ProtobufCMessageDescriptor *d, const void *wire, size_t len,
                     ProtobufCMessage **out, af_error *err, af_arena *a) {
  return af_grpc_decode(d, wire, len, a, out, err);
}

#define REQ &appflow__v1__stop_flow_request__descriptor

Test(decode, valid_request) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_assert_eq(decode(REQ,
                      "\x0a\x04"
                      "demo",
                      6, &m, &err, &a),
               AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "demo");
  /* Empty payload: every field absent (proto2 keeps presence). */
  cr_assert_eq(decode(REQ, "", 0, &m, &err, &a), AF_OK);
  cr_expect_null(((Appflow__V1__StopFlowRequest *)m)->flow_name);
  /* An empty string is present. */
  cr_assert_eq(decode(REQ, "\x0a\x00", 2, &m, &err, &a), AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "");
  /* Unknown fields are skipped. */
  cr_assert_eq(decode(REQ,
                      "\x10\x01\x0a\x02"
                      "ab\x1d\x01\x02\x03\x04",
                      11, &m, &err, &a),
               AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "ab");
  af_arena_destroy(&a);
}

Test(decode, nul_in_string_is_refused_not_truncated) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(REQ,
                      "\x0a\x05"
                      "ab\0cd",
                      7, &m, &err, &a),
               AF_ERR_SERIALIZATION);
  cr_expect_null(m);
  cr_expect(strstr(err.message, "flow_name contains a NUL byte") != NULL, "%s", err.message);
  af_arena_destroy(&a);
}

Test(decode, invalid_utf8_is_refused) {
  static const char *bad[] = {
      "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xc3", "\xe2\x82", "\x80"};
  af_arena a;
  af_arena_init(&a);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char wire[16] = {0x0a, (char)strlen(bad[i])};
    memcpy(wire + 2, bad[i], strlen(bad[i]));
    ProtobufCMessage *m;
    af_error err;
    cr_expect_eq(decode(REQ, wire, 2 + strlen(bad[i]), &m, &err, &a), AF_ERR_SERIALIZATION,
                 "case %zu", i);
    cr_expect(strstr(err.message, "not valid UTF-8") != NULL);
  }
  af_arena_destroy(&a);
}

Test(decode, malformed_wire_is_a_serialization_error) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  static const struct {
    const char *wire;
    size_t len;
  } cases[] = {
      {"\x0a\x05"
       "ab",
       4},                                                      /* string longer than the payload */
      {"\x0a", 1},                                              /* key without length */
      {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12}, /* varint too long */
      {"\x0b", 1},                                              /* group start: not in proto3 */
      {"\x0f", 1},                                              /* wire type 7 */
      {"\x08\x80\x80", 3},                                      /* truncated varint */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(decode(REQ, cases[i].wire, cases[i].len, &m, &err, &a), AF_ERR_SERIALIZATION,
                 "case %zu", i);
    cr_expect(strstr(err.message, "appflow.v1.StopFlowRequest") != NULL, "%s", err.message);
  }
  af_arena_destroy(&a);
}

Test(decode, strings_in_nested_messages_are_checked) {
  /* google.rpc.Status{details: [Any{type_url: "a\0b"}]} */
  static const char wire[] = "\x1a\x05\x0a\x03"
                             "a\0b";
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(&google__rpc__status__descriptor, wire, sizeof wire - 1, &m, &err, &a),
               AF_ERR_SERIALIZATION);
  cr_expect(strstr(err.message, "type_url") != NULL, "%s", err.message);
  af_arena_destroy(&a);
}

/* Regressions found by fuzz_decode: field number 0 written with an overlong (two-byte) tag,
 * at the top and inside a nested message (a map entry of google.rpc.ErrorInfo). */
Test(decode, field_number_zero_is_refused_at_any_depth) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(REQ, "\x80\x00\x00", 3, &m, &err, &a), AF_ERR_SERIALIZATION);
  cr_expect(strstr(err.message, "field number 0") != NULL, "%s", err.message);
  static const char nested[] = "\x1a\x07\x80\x00\x6b\x30\x6b\x12\x00";
  cr_expect_eq(
      decode(&google__rpc__error_info__descriptor, nested, sizeof nested - 1, &m, &err, &a),
      AF_ERR_SERIALIZATION);
  /* The largest field number is fine (an unknown field, skipped). */
  cr_expect_eq(decode(REQ, "\xf8\xff\xff\xff\x0f\x01", 6, &m, &err, &a), AF_OK);
  cr_expect_eq(decode(REQ, "\x80\x80\x80\x80\x10\x01", 6, &m, &err, &a), AF_ERR_SERIALIZATION);
  af_arena_destroy(&a);
}

/* ---- the same messages as protobuf-c's unpack ----
 *
 * Wire bytes made at random for every message type of gen/pbc: its fields in any order and
 * some given twice (strings and scalars replaced, messages merged, repeated fields appended,
 * oneof members displacing each other), the wire type each takes and now and then another,
 * repeated scalars packed and not, nested messages some levels down, unknown fields of every
 * wire type, and some inputs damaged (a byte changed, cut short). The decoder must accept
 * exactly what protobuf_c_message_unpack accepts, except strings it refuses (a NUL, bad UTF-8)
 * and field numbers out of range, and what it accepts must pack to protobuf-c's bytes. */

extern const ProtobufCMessageDescriptor *const af_pbc_messages[];
extern const size_t af_pbc_message_count;

typedef struct wire {
  uint64_t state;
  uint8_t buf[1 << 14];
  size_t len;
} wire;

static uint64_t rnd(wire *w) { /* xorshift64* */
  w->state ^= w->state >> 12;
  w->state ^= w->state << 25;
  w->state ^= w->state >> 27;
  return w->state * 0x2545f4914f6cdd1dULL;
}

static uint32_t below(wire *w, uint32_t n) { return (uint32_t)(rnd(w) % n); }

static void put(wire *w, const void *p, size_t n) {
  if (w->len + n <= sizeof w->buf) {
    memcpy(w->buf + w->len, p, n);
    w->len += n;
  }
}

static void put_varint(wire *w, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v != 0)
      b[n] |= 0x80;
    n++;
  } while (v != 0);
  put(w, b, n);
}

static uint64_t any_varint(wire *w) {
  switch (below(w, 6)) {
  case 0:
    return 0;
  case 1:
    return 1;
  case 2:
    return (uint64_t) - (int64_t)below(w, 1000); /* negative: ten bytes */
  case 3:
    return rnd(w);
  default:
    return below(w, 300);
  }
}

static const char *const strings[] = {"",   "a",     "flow-1", "é",   "日本",
                                      "😀x", "a b c", "\xff",   "x\0y"};

static void put_string(wire *w) {
  size_t i = below(w, 60);
  i = i < 7 ? i : i < 58 ? 2 : i - 51; /* bad UTF-8 and a NUL now and then */
  size_t len = i == 8 ? 3 : strlen(strings[i]);
  put_varint(w, len);
  put(w, strings[i], len);
}

static void put_message(wire *w, const ProtobufCMessageDescriptor *d, int depth);

/* A length-prefixed nested message: written after a gap for the longest prefix, then moved. */
static void put_nested(wire *w, const ProtobufCMessageDescriptor *d, int depth) {
  size_t at = w->len;
  put_message(w, d, depth);
  if (w->len > sizeof w->buf - 8)
    return;
  size_t body = w->len - at;
  uint8_t tmp[sizeof w->buf];
  memcpy(tmp, w->buf + at, body);
  w->len = at;
  put_varint(w, body);
  put(w, tmp, body);
}

static unsigned natural_wire(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 5;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 1;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return 2;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_BOOL:
    break;
  }
  return 0;
}

/* One value of wire type wt (for field f, or for an unknown field when f is NULL). */
static void put_value(wire *w, const ProtobufCFieldDescriptor *f, unsigned wt, int depth) {
  uint64_t v = rnd(w);
  if (wt == 0) {
    put_varint(w, f != NULL && f->type == PROTOBUF_C_TYPE_BOOL ? below(w, 3) : any_varint(w));
  } else if (wt == 1) {
    put(w, &v, 8);
  } else if (wt == 5) {
    put(w, &v, 4);
  } else if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 4) {
    put_nested(w, f->descriptor, depth + 1);
  } else if (f != NULL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->label == PROTOBUF_C_LABEL_REPEATED && natural_wire(f->type) != 2) {
    wire run = {.state = v | 1}; /* a packed run */
    for (unsigned i = below(w, 5); i > 0; i--)
      put_value(&run, f, natural_wire(f->type), depth);
    put_varint(w, run.len);
    put(w, run.buf, run.len);
  } else {
    put_string(w);
  }
}

static void put_message(wire *w, const ProtobufCMessageDescriptor *d, int depth) {
  for (unsigned n = below(w, depth == 0 ? 12 : 6); n > 0; n--) {
    const ProtobufCFieldDescriptor *f =
        d->n_fields > 0 && below(w, 10) != 0 ? &d->fields[below(w, d->n_fields)] : NULL;
    uint32_t number = f != NULL ? f->id : 1000 + below(w, 5);
    unsigned wt = f != NULL ? natural_wire(f->type) : (unsigned[]){0, 1, 2, 5}[below(w, 4)];
    if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED && wt != 2 && below(w, 2) == 0)
      wt = 2; /* packed */
    else if (below(w, 25) == 0)
      wt = (unsigned[]){0, 1, 2, 5}[below(w, 4)]; /* a wire type the field does not take */
    put_varint(w, (uint64_t)number << 3 | wt);
    put_value(w, f, wt, depth);
  }
}

static bool ours(const char *message) {
  return strstr(message, "NUL byte") != NULL || strstr(message, "not valid UTF-8") != NULL ||
         strstr(message, "field number") != NULL;
}

static void expect_as_protobuf_c(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t len,
                                 af_arena *a, size_t *accepted) {
  ProtobufCMessage *want = protobuf_c_message_unpack(d, NULL, len, b), *got = NULL;
  af_error err = {0};
  af_err rc = af_grpc_decode(d, b, len, a, &got, &err);
  if (rc != AF_OK) {
    cr_assert(want == NULL || ours(err.message), "%s (%zu bytes): refused, protobuf-c took it: %s",
              d->name, len, err.message);
    cr_assert_null(got);
    protobuf_c_message_free_unpacked(want, NULL);
    return;
  }
  cr_assert_not_null(want, "%s (%zu bytes): taken, protobuf-c refused it", d->name, len);
  size_t n = protobuf_c_message_get_packed_size(want);
  cr_assert_eq(protobuf_c_message_get_packed_size(got), n, "%s: sizes differ", d->name);
  uint8_t *x = malloc(n + 1), *y = malloc(n + 1);
  protobuf_c_message_pack(want, x);
  protobuf_c_message_pack(got, y);
  cr_assert(memcmp(x, y, n) == 0, "%s (%zu bytes): decoded otherwise than protobuf-c", d->name,
            len);
  free(x);
  free(y);
  protobuf_c_message_free_unpacked(want, NULL);
  (*accepted)++;
}

Test(decode, the_messages_protobuf_c_unpacks) {
  af_arena a;
  af_arena_init(&a);
  wire *w = malloc(sizeof *w);
  cr_assert_not_null(w);
  size_t tried = 0, accepted = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    for (size_t i = 0; i < af_pbc_message_count; i++) {
      const ProtobufCMessageDescriptor *d = af_pbc_messages[i];
      w->state = seed * 0x9e3779b97f4a7c15ULL + i;
      w->len = 0;
      put_message(w, d, 0);
      if (w->len > 0 && seed % 4 == 0)
        w->buf[below(w, (uint32_t)w->len)] ^= (uint8_t)(1u << below(w, 8));
      size_t len = seed % 5 == 0 && w->len > 0 ? below(w, (uint32_t)w->len) : w->len;
      expect_as_protobuf_c(d, w->buf, len, &a, &accepted);
      af_arena_reset(&a);
      tried++;
    }
  }
  cr_expect_gt(accepted, tried / 3, "%zu of %zu accepted: the inputs exercise the decoding",
               accepted, tried);
  free(w);
  af_arena_destroy(&a);
}

/* Edges the random inputs rarely make, each as protobuf-c takes or refuses it: overlong tags,
 * lengths and varints, a bool in every wire type, a string given twice. */
Test(decode, edges_as_protobuf_c) {
  static const struct {
    const char *b;
    size_t len;
  } cases[] = {
      {"\x8a\x80\x80\x80\x00\x01x", 7},     /* field 1 in a five-byte tag */
      {"\x8a\x80\x80\x80\x80\x00\x01x", 8}, /* and in six: protobuf-c stops at five */
      {"\x0a\x81\x80\x80\x80\x00x", 7},     /* a five-byte length */
      {"\x0a\x81\x80\x80\x80\x80\x00x", 8}, /* a six-byte one */
      {"\x0a\x01x\x0a\x02yz", 7},           /* the last string wins */
      {"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11}, /* ten-byte varint, unknown */
      {"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12},
  };
  af_arena a;
  af_arena_init(&a);
  size_t accepted = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_as_protobuf_c(REQ, (const uint8_t *)cases[i].b, cases[i].len, &a, &accepted);
  /* force_delete (DeleteFlowRequest field 2, a bool) in each wire type */
  static const char *const bools[] = {"\x10\x80\x01",   "\x10\x80\x00", "\x11\0\0\0\0\0\0\0\x02",
                                      "\x15\0\0\x80\0", "\x12\x01\x00", "\x12\x00"};
  static const size_t bool_len[] = {3, 3, 9, 5, 3, 2};
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
    expect_as_protobuf_c(&appflow__v1__delete_flow_request__descriptor, (const uint8_t *)bools[i],
                         bool_len[i], &a, &accepted);
  cr_expect_eq(accepted, 10,
               "%zu taken: all but the six-byte tag and length and the 11-byte varint", accepted);
  af_arena_destroy(&a);
}

/* Found by fuzz_decode: an empty packed run for a repeated field that has no other element. */
Test(decode, an_empty_packed_run) {
  af_arena a;
  af_arena_init(&a);
  size_t accepted = 0;
  /* DescribeConnectorsRequest.connector_types (field 1, repeated enum): packed, empty */
  expect_as_protobuf_c(&appflow__v1__describe_connectors_request__descriptor,
                       (const uint8_t *)"\x0a\x00", 2, &a, &accepted);
  expect_as_protobuf_c(&appflow__v1__describe_connectors_request__descriptor,
                       (const uint8_t *)"\x0a\x00\x08\x01\x0a\x00", 6, &a, &accepted);
  /* and a run of bytes none of which ends a varint: refused */
  expect_as_protobuf_c(&appflow__v1__describe_connectors_request__descriptor,
                       (const uint8_t *)"\x0a\x02\x80\x80", 4, &a, &accepted);
  cr_expect_eq(accepted, 2);
  af_arena_destroy(&a);
}
