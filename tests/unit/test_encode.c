/* src/common/encode.c: the encoder's bytes are protobuf_c_message_pack's, byte for byte, for the
 * service's own answers (a ListFlows page of 100 flows, DescribeFlow with a full definition,
 * run records, tags, connectors, profiles), for every response type of both services filled
 * in full, for every message type gen/pbc declares empty and filled at random (seeded, some
 * thousands of messages), for a hand-made message with every type under every label (what
 * the contract's protos do not use: sint, fixed, float, packed, required, string defaults),
 * and for the edges: empty messages, lengths of one to three bytes at every level, nesting a
 * hundred deep, unicode, zero, negative and extreme values, unknown fields. */
#include "common/encode.h"

#include "common/pbc.h"
#include "flows/catalog.h"

#include "appflow/v1/appflow.pb-c.h"
#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every message descriptor of gen/pbc (cmake/pbc_index.cmake). */
extern const ProtobufCMessageDescriptor *const af_pbc_messages[];
extern const size_t af_pbc_message_count;

#define T0 1700000000000LL

static af_arena arena;
static af_encoder enc;
static size_t checked; /* messages compared by this test */

static void setup(void) {
  af_arena_init(&arena);
  af_encoder_init(&enc);
  checked = 0;
}

static void teardown(void) {
  af_encoder_free(&enc);
  af_arena_destroy(&arena);
}

TestSuite(encode, .init = setup, .fini = teardown);

/* Packs m with protobuf-c and with the encoder; the test fails unless the sizes and every byte
 * agree (and the encoder writes nothing past its size). */
static void expect_same(const ProtobufCMessage *m, const char *what) {
  size_t want_len = protobuf_c_message_get_packed_size(m);
  uint8_t *want = malloc(want_len + 1);
  cr_assert_not_null(want);
  cr_assert_eq(protobuf_c_message_pack(m, want), want_len, "%s: protobuf-c disagrees with itself",
               what);
  size_t len = 0;
  cr_assert(af_encode_size(&enc, m, &len), "%s: out of memory", what);
  cr_assert_eq(len, want_len, "%s (%s): sized %zu bytes, protobuf-c %zu", what, m->descriptor->name,
               len, want_len);
  uint8_t *got = malloc(len + 1);
  cr_assert_not_null(got);
  got[len] = 0xa5;
  cr_assert_eq(af_encode_write(&enc, m, got), len, "%s: wrote other than it sized", what);
  cr_assert_eq(got[len], 0xa5, "%s: wrote past its size", what);
  size_t at = 0;
  while (at < len && got[at] == want[at])
    at++;
  cr_assert_eq(at, len, "%s (%s, %zu bytes): byte %zu is 0x%02x, protobuf-c's 0x%02x", what,
               m->descriptor->name, len, at, at < len ? got[at] : 0, at < len ? want[at] : 0);
  free(want);
  free(got);
  checked++;
}

/* ---- a message with every type under every label ---- */

/* X(name, PROTOBUF_C_TYPE_ suffix, C type): the types a packed array may hold (scalars). */
#define PACKABLE(X)                                                                                \
  X(int32, INT32, int32_t)                                                                         \
  X(sint32, SINT32, int32_t)                                                                       \
  X(sfixed32, SFIXED32, int32_t)                                                                   \
  X(int64, INT64, int64_t)                                                                         \
  X(sint64, SINT64, int64_t)                                                                       \
  X(sfixed64, SFIXED64, int64_t)                                                                   \
  X(uint32, UINT32, uint32_t)                                                                      \
  X(fixed32, FIXED32, uint32_t)                                                                    \
  X(uint64, UINT64, uint64_t)                                                                      \
  X(fixed64, FIXED64, uint64_t)                                                                    \
  X(float, FLOAT, float)                                                                           \
  X(double, DOUBLE, double)                                                                        \
  X(bool, BOOL, protobuf_c_boolean)                                                                \
  X(enum, ENUM, int)

/* Every type protobuf-c has: the scalars, then the three kept by pointer or by value. */
#define TYPES(X)                                                                                   \
  PACKABLE(X)                                                                                      \
  X(string, STRING, char *)                                                                        \
  X(bytes, BYTES, ProtobufCBinaryData)                                                             \
  X(message, MESSAGE, ProtobufCMessage *)

typedef struct all_types {
  ProtobufCMessage base;
#define MEMBERS(n, T, C)                                                                           \
  C req_##n;                                                                                       \
  protobuf_c_boolean has_opt_##n;                                                                  \
  C opt_##n;                                                                                       \
  C none_##n;                                                                                      \
  size_t n_rep_##n;                                                                                \
  C *rep_##n;
  TYPES(MEMBERS)
#undef MEMBERS
#define PACKED_MEMBERS(n, T, C)                                                                    \
  size_t n_packed_##n;                                                                             \
  C *packed_##n;
  PACKABLE(PACKED_MEMBERS)
#undef PACKED_MEMBERS
  char *with_default; /* optional string [default = "dflt"] */
  uint32_t which2;    /* a proto2 oneof: label OPTIONAL */
  union {
#define ONE(n, T, C) C o2_##n;
    TYPES(ONE)
  } one2;
  uint32_t which3; /* a proto3 oneof: label NONE */
  union {
    TYPES(ONE)
#undef ONE
  } one3;
} all_types;

static char dflt[] = "dflt";
/* 17 types x 4 labels, 14 packed, the default, and two oneofs of 17. */
#define ALL_FIELDS (17 * 4 + 14 + 1 + 17 * 2)
static ProtobufCFieldDescriptor all_fields[ALL_FIELDS];
static ProtobufCMessageDescriptor all_desc;

static void all_types_init(ProtobufCMessage *m) {
  memset(m, 0, sizeof(all_types));
  m->descriptor = &all_desc;
  ((all_types *)m)->with_default = dflt;
}

/* The sub-message and enum every MESSAGE and ENUM field of all_types uses. */
static const void *type_descriptor(ProtobufCType t) {
  if (t == PROTOBUF_C_TYPE_MESSAGE)
    return &all_desc;
  if (t == PROTOBUF_C_TYPE_ENUM)
    return &appflow__v1__flow_status__descriptor;
  return NULL;
}

static void add_field(unsigned *n, ProtobufCLabel label, ProtobufCType type, size_t offset,
                      size_t qoffset, unsigned flags, const void *def) {
  cr_assert_lt(*n, ALL_FIELDS);
  uint32_t id = *n + 1;
  /* spread the numbers, so tags take one to four bytes */
  id = id < 10 ? id : id < 60 ? id * 40 : id * 5000;
  all_fields[*n] = (ProtobufCFieldDescriptor){
      .name = "f",
      .id = id,
      .label = label,
      .type = type,
      .quantifier_offset = (unsigned)qoffset,
      .offset = (unsigned)offset,
      .descriptor = type_descriptor(type),
      .default_value = def,
      .flags = flags,
  };
  (*n)++;
}

/* Builds all_types' descriptor (once). */
static const ProtobufCMessageDescriptor *all_types_descriptor(void) {
  if (all_desc.n_fields != 0)
    return &all_desc;
  unsigned n = 0;
#define LABELS(nm, T, C)                                                                           \
  add_field(&n, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_##T, offsetof(all_types, req_##nm), 0,  \
            0, NULL);                                                                              \
  add_field(&n, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_##T, offsetof(all_types, opt_##nm),     \
            offsetof(all_types, has_opt_##nm), 0, NULL);                                           \
  add_field(&n, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_##T, offsetof(all_types, none_##nm), 0, 0,  \
            NULL);                                                                                 \
  add_field(&n, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_##T, offsetof(all_types, rep_##nm),     \
            offsetof(all_types, n_rep_##nm), 0, NULL);
  TYPES(LABELS)
#undef LABELS
#define PACKED(nm, T, C)                                                                           \
  add_field(&n, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_##T, offsetof(all_types, packed_##nm),  \
            offsetof(all_types, n_packed_##nm), PROTOBUF_C_FIELD_FLAG_PACKED, NULL);
  PACKABLE(PACKED)
#undef PACKED
  add_field(&n, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
            offsetof(all_types, with_default), 0, 0, dflt);
#define ONEOF2(nm, T, C)                                                                           \
  add_field(&n, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_##T, offsetof(all_types, one2),         \
            offsetof(all_types, which2), PROTOBUF_C_FIELD_FLAG_ONEOF, NULL);
  TYPES(ONEOF2)
#undef ONEOF2
#define ONEOF3(nm, T, C)                                                                           \
  add_field(&n, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_##T, offsetof(all_types, one3),             \
            offsetof(all_types, which3), PROTOBUF_C_FIELD_FLAG_ONEOF, NULL);
  TYPES(ONEOF3)
#undef ONEOF3
  cr_assert_eq(n, ALL_FIELDS);
  all_desc = (ProtobufCMessageDescriptor){
      .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
      .name = "test.AllTypes",
      .short_name = "AllTypes",
      .c_name = "AllTypes",
      .package_name = "test",
      .sizeof_message = sizeof(all_types),
      .n_fields = n,
      .fields = all_fields,
      .message_init = all_types_init,
  };
  return &all_desc;
}

/* ---- random messages ---- */

typedef struct filler {
  uint64_t state; /* xorshift64* */
  bool full;      /* every field set (no absent, no zero): a message as full as it gets */
  int depth;      /* how much deeper messages may nest */
  size_t budget;  /* fields left to fill in this message tree */
} filler;

static uint64_t next(filler *f) {
  f->state ^= f->state >> 12;
  f->state ^= f->state << 25;
  f->state ^= f->state >> 27;
  return f->state * 2685821657736338717ULL;
}

static uint32_t below(filler *f, uint32_t n) { return (uint32_t)(next(f) % n); }
static bool one_in(filler *f, uint32_t n) { return below(f, n) == 0; }

static void *alloc(size_t size) {
  void *p = af_arena_alloc(&arena, size ? size : 1);
  cr_assert_not_null(p);
  memset(p, 0, size ? size : 1);
  return p;
}

/* 64 bits, often one of the values whose varints change length or sign. */
static uint64_t bits(filler *f) {
  static const uint64_t edges[] = {0,
                                   1,
                                   2,
                                   127,
                                   128,
                                   255,
                                   16383,
                                   16384,
                                   (1u << 21) - 1,
                                   1u << 21,
                                   (1u << 28) - 1,
                                   1u << 28,
                                   INT32_MAX,
                                   (uint64_t)INT32_MAX + 1,
                                   UINT32_MAX,
                                   (uint64_t)UINT32_MAX + 1,
                                   (uint64_t)1 << 35,
                                   (uint64_t)1 << 49,
                                   (uint64_t)1 << 56,
                                   (uint64_t)INT64_MAX,
                                   (uint64_t)1 << 63,
                                   UINT64_MAX,
                                   (uint64_t)-1 << 31,
                                   (uint64_t)(int64_t)INT32_MIN,
                                   (uint64_t)INT64_MIN};
  switch (below(f, 3)) {
  case 0:
    return edges[below(f, sizeof edges / sizeof edges[0])];
  case 1:
    return next(f) >> below(f, 64); /* any length */
  default:
    return ~(next(f) >> below(f, 64)); /* negative, any length */
  }
}

static const char *const pieces[] = {"a",
                                     "flow",
                                     " ",
                                     "-",
                                     "\xc3\xa9" /* é */,
                                     "\xe6\x97\xa5\xe6\x9c\xac" /* 日本 */,
                                     "\xf0\x9f\x9a\x80" /* rocket */,
                                     "\xcc\x81" /* combining acute */,
                                     "\x7f",
                                     "arn:aws:appflow:us-east-1:123456789012:flow/",
                                     "\xd0\x9f\xd1\x80\xd0\xb8" /* При */};

/* A string of up to about max bytes from ASCII and UTF-8 pieces; "" sometimes. */
static char *text(filler *f, size_t max) {
  size_t want = one_in(f, 8) ? 0 : below(f, (uint32_t)max + 1);
  if (one_in(f, 16))
    want = 128 + below(f, 300); /* a length of two bytes */
  char *s = alloc(want + 64);
  size_t len = 0;
  while (len < want) {
    const char *p = pieces[below(f, sizeof pieces / sizeof pieces[0])];
    memcpy(s + len, p, strlen(p));
    len += strlen(p);
  }
  s[len] = '\0';
  return s;
}

static ProtobufCMessage *fill_message(filler *f, const ProtobufCMessageDescriptor *d);

static int enum_value(filler *f, const ProtobufCEnumDescriptor *e) {
  if (e != NULL && e->n_values > 0 && !one_in(f, 4))
    return e->values[below(f, e->n_values)].value;
  return (int)(int32_t)bits(f); /* protobuf-c packs any int, negative ones in ten bytes */
}

/* A value of the field's type at v (non-zero when f->full, as a full message has no zeros). */
static void fill_value(filler *f, const ProtobufCFieldDescriptor *fd, void *v) {
  uint64_t b = bits(f);
  if (f->full && b == 0)
    b = 1;
  switch (fd->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    *(uint32_t *)v = (uint32_t)b != 0 || !f->full ? (uint32_t)b : 1;
    return;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    *(uint64_t *)v = b;
    return;
  case PROTOBUF_C_TYPE_FLOAT: {
    static const float fl[] = {0.0f, -0.0f, 1.5f, -2.25e10f, 1e-40f /* subnormal */};
    float x = one_in(f, 2) ? fl[below(f, 5)] : one_in(f, 2) ? NAN : INFINITY;
    if (one_in(f, 3))
      memcpy(&x, &(uint32_t){(uint32_t)b}, sizeof x); /* any bits */
    *(float *)v = f->full && x == 0 ? 1.0f : x;
    return;
  }
  case PROTOBUF_C_TYPE_DOUBLE: {
    static const double db[] = {0.0, -0.0, 0.1, -1e300, 5e-324 /* subnormal */};
    double x = one_in(f, 2) ? db[below(f, 5)] : one_in(f, 2) ? NAN : -INFINITY;
    if (one_in(f, 3))
      memcpy(&x, &b, sizeof x);
    *(double *)v = f->full && x == 0 ? 1.0 : x;
    return;
  }
  case PROTOBUF_C_TYPE_BOOL: { /* protobuf-c writes any non-zero as 1 */
    static const protobuf_c_boolean bl[] = {0, 1, 2, -1};
    *(protobuf_c_boolean *)v = f->full ? 1 + (protobuf_c_boolean)below(f, 2) : bl[below(f, 4)];
    return;
  }
  case PROTOBUF_C_TYPE_ENUM: {
    int x = enum_value(f, fd->descriptor);
    *(int *)v = f->full && x == 0 ? 1 : x;
    return;
  }
  case PROTOBUF_C_TYPE_STRING: {
    char *s = text(f, 40);
    *(char **)v = f->full && s[0] == '\0' ? "x" : s;
    return;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    ProtobufCBinaryData *bd = v;
    bd->len = one_in(f, 8) ? 130 + below(f, 200) : below(f, 20);
    if (f->full && bd->len == 0)
      bd->len = 1;
    bd->data = bd->len > 0 || one_in(f, 2) ? alloc(bd->len) : NULL;
    for (size_t i = 0; i < bd->len; i++)
      bd->data[i] = (uint8_t)next(f);
    return;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    *(ProtobufCMessage **)v =
        f->depth > 0 && f->budget > 0 ? fill_message(f, fd->descriptor) : NULL;
    return;
  }
}

static bool pointer_type(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

static ProtobufCMessage *empty_message(const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = alloc(d->sizeof_message);
  protobuf_c_message_init(d, m);
  return m;
}

/* A repeated field: a few elements, sometimes enough to make a packed array's length take two
 * bytes. Elements are never NULL (protobuf-c would crash sizing one). */
static void fill_repeated(filler *f, const ProtobufCFieldDescriptor *fd, char *m) {
  size_t n = f->full ? 1 + below(f, 3) : below(f, 4);
  if ((fd->flags & PROTOBUF_C_FIELD_FLAG_PACKED) != 0 && one_in(f, 4))
    n = 20 + below(f, 60);
  if (fd->type == PROTOBUF_C_TYPE_MESSAGE && (f->depth <= 0 || f->budget == 0))
    n = 0;
  char *array = alloc(n * af_pbc_element_size(fd->type));
  for (size_t i = 0; i < n; i++) {
    char *v = array + i * af_pbc_element_size(fd->type);
    fill_value(f, fd, v);
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)(void *)v == NULL)
      *(ProtobufCMessage **)(void *)v = empty_message(fd->descriptor); /* the budget ran out */
  }
  *(size_t *)(void *)(m + fd->quantifier_offset) = n;
  *(void **)(void *)(m + fd->offset) = array;
}

/* The oneof whose first member is fields[i]: one member chosen (or none), its case set. */
static void fill_oneof(filler *f, const ProtobufCMessageDescriptor *d, unsigned i, char *m) {
  const ProtobufCFieldDescriptor *first = &d->fields[i];
  const ProtobufCFieldDescriptor *members[64];
  unsigned k = 0;
  for (unsigned j = i; j < d->n_fields && k < 64; j++)
    if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
        d->fields[j].quantifier_offset == first->quantifier_offset)
      members[k++] = &d->fields[j];
  unsigned pick = f->full ? below(f, k) : below(f, k + 1);
  uint32_t *which = (uint32_t *)(void *)(m + first->quantifier_offset);
  if (pick == k) { /* none: the case stays 0, or names a member whose value is unset */
    if (one_in(f, 2) && pointer_type(members[0]->type))
      *which = members[0]->id;
    return;
  }
  *which = members[pick]->id;
  fill_value(f, members[pick], m + members[pick]->offset);
  if (!f->full && one_in(f, 6)) /* a zero member is still the chosen one: written */
    memset(m + members[pick]->offset, 0, af_pbc_element_size(members[pick]->type));
}

/* Whether fields[i] is a oneof member after the first of its oneof. */
static bool later_member(const ProtobufCMessageDescriptor *d, unsigned i) {
  if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
    return false;
  for (unsigned j = 0; j < i; j++)
    if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
        d->fields[j].quantifier_offset == d->fields[i].quantifier_offset)
      return true;
  return false;
}

static void fill_unknown(filler *f, ProtobufCMessage *msg) {
  static const ProtobufCWireType wires[] = {PROTOBUF_C_WIRE_TYPE_VARINT, PROTOBUF_C_WIRE_TYPE_64BIT,
                                            PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
                                            PROTOBUF_C_WIRE_TYPE_32BIT};
  msg->n_unknown_fields = 1 + below(f, 2);
  msg->unknown_fields = alloc(msg->n_unknown_fields * sizeof *msg->unknown_fields);
  for (size_t i = 0; i < msg->n_unknown_fields; i++) {
    ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];
    u->tag = one_in(f, 2) ? 1 + below(f, 15) : 1 + below(f, (1u << 29) - 1);
    u->wire_type = wires[below(f, 4)];
    u->len = below(f, 12);
    u->data = alloc(u->len);
    for (size_t j = 0; j < u->len; j++)
      u->data[j] = (uint8_t)next(f);
  }
}

static ProtobufCMessage *fill_message(filler *f, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *msg = empty_message(d);
  char *m = (char *)msg;
  f->depth--;
  for (unsigned i = 0; i < d->n_fields && f->budget > 0; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    f->budget--;
    if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
      if (!later_member(d, i))
        fill_oneof(f, d, i, m);
      continue;
    }
    switch (fd->label) {
    case PROTOBUF_C_LABEL_REQUIRED: /* NULL sometimes: protobuf-c writes it empty */
      fill_value(f, fd, m + fd->offset);
      if (!f->full && pointer_type(fd->type) && one_in(f, 4))
        *(void **)(void *)(m + fd->offset) = NULL;
      break;
    case PROTOBUF_C_LABEL_OPTIONAL:
      if (pointer_type(fd->type)) { /* absent: NULL or the default itself */
        if (f->full || one_in(f, 2) || fd->type == PROTOBUF_C_TYPE_MESSAGE)
          fill_value(f, fd, m + fd->offset);
        else if (one_in(f, 2))
          *(const void **)(void *)(m + fd->offset) = fd->default_value;
        else
          *(void **)(void *)(m + fd->offset) = NULL;
        if (!f->full && fd->type == PROTOBUF_C_TYPE_MESSAGE && one_in(f, 3))
          *(void **)(void *)(m + fd->offset) = NULL;
        if (!f->full && fd->default_value != NULL && one_in(f, 3)) /* the default's text */
          *(char **)(void *)(m + fd->offset) = strcpy(alloc(8), fd->default_value);
      } else { /* has_ decides, whatever the value */
        *(protobuf_c_boolean *)(void *)(m + fd->quantifier_offset) = f->full || one_in(f, 2);
        if (f->full || !one_in(f, 4))
          fill_value(f, fd, m + fd->offset);
      }
      break;
    case PROTOBUF_C_LABEL_NONE: /* proto3: left out when zero */
      fill_value(f, fd, m + fd->offset);
      if (!f->full && one_in(f, 3))
        memset(m + fd->offset, 0, af_pbc_element_size(fd->type));
      break;
    case PROTOBUF_C_LABEL_REPEATED:
      fill_repeated(f, fd, m);
      break;
    }
  }
  if (!f->full && one_in(f, 16))
    fill_unknown(f, msg);
  f->depth++;
  return msg;
}

static ProtobufCMessage *random_message(uint64_t seed, const ProtobufCMessageDescriptor *d,
                                        bool full) {
  filler f = {seed * 0x9e3779b97f4a7c15ULL + 1, full, full ? 3 : 5, full ? 400 : 300};
  return fill_message(&f, d);
}

/* ---- every message type ---- */

Test(encode, every_message_type_empty) {
  for (size_t i = 0; i < af_pbc_message_count; i++) {
    expect_same(empty_message(af_pbc_messages[i]), "empty");
    af_arena_reset(&arena);
  }
  expect_same(empty_message(all_types_descriptor()), "empty AllTypes");
  cr_expect_gt(af_pbc_message_count, 250, "the index holds every generated message");
}

/* Every message type of gen/pbc and AllTypes, filled at random: sparse (absent, zero, NULL,
 * default and unknown fields) and full, seeded so a failure repeats. */
Test(encode, every_message_type_at_random) {
  const ProtobufCMessageDescriptor *all = all_types_descriptor();
  for (uint64_t seed = 1; seed <= 12; seed++) {
    for (size_t i = 0; i <= af_pbc_message_count; i++) {
      const ProtobufCMessageDescriptor *d = i < af_pbc_message_count ? af_pbc_messages[i] : all;
      char what[160];
      snprintf(what, sizeof what, "seed %llu, %s", (unsigned long long)seed, d->name);
      expect_same(random_message(seed * 1000 + i, d, seed % 4 == 0), what);
      af_arena_reset(&arena);
    }
  }
  for (uint64_t seed = 1; seed <= 400; seed++) { /* AllTypes, the one with every rule */
    expect_same(random_message(seed, all, seed % 5 == 0), "AllTypes");
    af_arena_reset(&arena);
  }
  cr_expect_gt(checked, 3000);
}

/* The response of every method of AppFlowService and EmulatorService, every field set. */
Test(encode, every_response_type_full) {
  const ProtobufCServiceDescriptor *services[] = {
      &appflow__v1__app_flow_service__descriptor,
      &appflowd__emulator__v1__emulator_service__descriptor};
  size_t methods = 0;
  for (size_t s = 0; s < 2; s++) {
    for (unsigned i = 0; i < services[s]->n_methods; i++, methods++) {
      const ProtobufCMessageDescriptor *out = services[s]->methods[i].output;
      for (uint64_t seed = 1; seed <= 5; seed++) {
        expect_same(random_message(seed + 100 * methods, out, true), services[s]->methods[i].name);
        af_arena_reset(&arena);
      }
    }
  }
  cr_expect_gt(methods, 25);
}

/* ---- the edges, by hand ---- */

static Google__Protobuf__Timestamp *timestamp(int64_t seconds, int32_t nanos) {
  Google__Protobuf__Timestamp *t = alloc(sizeof *t);
  google__protobuf__timestamp__init(t);
  t->seconds = seconds;
  t->nanos = nanos;
  return t;
}

/* A string of n bytes of c. */
static char *repeat(char c, size_t n) {
  char *s = alloc(n + 1);
  memset(s, c, n);
  return s;
}

/* A page of 100 flows whose strings make each flow's length take one, two or three bytes, with
 * tags (map entries), timestamps and run details: lengths of every size at three levels. */
Test(encode, a_page_of_100_flows) {
  static const size_t lengths[] = {0, 5, 100, 127, 128, 300, 16383, 16384, 20000};
  Appflow__V1__ListFlowsResponse *r = alloc(sizeof *r);
  appflow__v1__list_flows_response__init(r);
  r->n_flows = 100;
  r->flows = alloc(100 * sizeof *r->flows);
  for (size_t i = 0; i < 100; i++) {
    Appflow__V1__FlowDefinition *d = alloc(sizeof *d);
    appflow__v1__flow_definition__init(d);
    char *name = alloc(32);
    snprintf(name, 32, "flow-%03zu", i);
    d->flow_name = name;
    d->flow_arn =
        (char *)arena_printf(&arena, "arn:aws:appflow:us-east-1:123456789012:flow/%s", name);
    d->description = repeat('d', lengths[i % 9]);
    d->has_flow_status = true;
    d->flow_status = (Appflow__V1__FlowStatus)(i % 7);
    d->has_source_connector_type = i % 3 != 0;
    d->source_connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SALESFORCE;
    d->has_trigger_type = true;
    d->trigger_type = (Appflow__V1__TriggerType)(i % 4);
    d->created_at = timestamp((int64_t)(1700000000 + i), (int32_t)(i * 1000));
    d->last_updated_at = i % 2 ? timestamp(0, 0) : NULL; /* an empty message is still written */
    d->created_by = "arn:aws:iam::123456789012:root";
    d->n_tags = i % 4;
    d->tags = alloc(d->n_tags * sizeof *d->tags);
    for (size_t t = 0; t < d->n_tags; t++) {
      Appflow__V1__FlowDefinition__TagsEntry *e = alloc(sizeof *e);
      appflow__v1__flow_definition__tags_entry__init(e);
      e->key = (char *)arena_printf(&arena, "key%zu", t);
      e->value = t == 0 ? "" : repeat('v', 130 * t);
      d->tags[t] = e;
    }
    if (i % 5 == 0) {
      Appflow__V1__ExecutionDetails *x = alloc(sizeof *x);
      appflow__v1__execution_details__init(x);
      x->most_recent_execution_message = repeat('m', lengths[(i / 5) % 9]);
      x->most_recent_execution_time = timestamp(-1, -1);
      x->has_most_recent_execution_status = true;
      x->most_recent_execution_status = APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_ERROR;
      d->last_run_execution_details = x;
    }
    r->flows[i] = d;
  }
  r->next_token = repeat('t', 2048);
  expect_same(&r->base, "a page of 100 flows");
  r->n_flows = 1;
  expect_same(&r->base, "a page of 1 flow");
  r->n_flows = 0;
  r->next_token = NULL;
  expect_same(&r->base, "an empty page");
}

/* google.protobuf.Value in ListValue in Value... a hundred deep, a long string at the bottom:
 * every level's length takes two or three bytes, and the writing pass must take the sizes in
 * the order the sizing pass made them. */
Test(encode, nesting_a_hundred_deep) {
  for (size_t bottom = 0; bottom < 3; bottom++) {
    Google__Protobuf__Value *v = alloc(sizeof *v);
    google__protobuf__value__init(v);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = repeat('x', bottom == 0 ? 1 : bottom == 1 ? 200 : 17000);
    for (int level = 0; level < 100; level++) {
      Google__Protobuf__ListValue *l = alloc(sizeof *l);
      google__protobuf__list_value__init(l);
      Google__Protobuf__Value *up = alloc(sizeof *up);
      google__protobuf__value__init(up);
      /* siblings before and after the nested one, so order matters */
      Google__Protobuf__Value *before = alloc(sizeof *before), *after = alloc(sizeof *after);
      google__protobuf__value__init(before);
      before->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
      before->number_value = -level;
      google__protobuf__value__init(after);
      after->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
      after->string_value = repeat('a', (size_t)level * 3);
      l->n_values = 3;
      l->values = alloc(3 * sizeof *l->values);
      l->values[0] = before;
      l->values[1] = v;
      l->values[2] = after;
      up->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
      up->list_value = l;
      v = up;
    }
    expect_same(&v->base, "a hundred deep");
    af_arena_reset(&arena);
  }
}

/* Unicode in every string of a DescribeFlowResponse: accents, CJK, emoji, combining marks,
 * right-to-left text, and a character at each UTF-8 length's edges. */
Test(encode, unicode_strings) {
  static const char *const texts[] = {
      "caf\xc3\xa9",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe8\xaa\xac\xe6\x98\x8e",
      "\xf0\x9f\x9a\x80\xf0\x9f\x8c\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
      "e\xcc\x81\xcc\x81",
      "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85",
      "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    Appflow__V1__DescribeFlowResponse *r = alloc(sizeof *r);
    appflow__v1__describe_flow_response__init(r);
    r->flow_name = (char *)texts[i];
    r->description = (char *)arena_printf(&arena, "%s %s %s", texts[i], texts[i], texts[i]);
    /* a length of one byte or two, by the text */
    r->flow_status_message = (char *)arena_printf(&arena, "%s%s", repeat('z', 120), texts[i]);
    r->n_tags = 2;
    r->tags = alloc(2 * sizeof *r->tags);
    for (size_t t = 0; t < 2; t++) {
      r->tags[t] = alloc(sizeof *r->tags[t]);
      appflow__v1__describe_flow_response__tags_entry__init(r->tags[t]);
      r->tags[t]->key = (char *)texts[(i + t) % 6];
      r->tags[t]->value = (char *)texts[(i + t + 1) % 6];
    }
    expect_same(&r->base, texts[i]);
    af_arena_reset(&arena);
  }
}

/* Zero, negative and extreme values where the contract has numbers: the emulator's Outcome
 * (double, int64, an enum) and AdvanceClockResponse (int32, a Timestamp), DescribeFlow's
 * schema version, and a Timestamp's own proto3 fields. */
Test(encode, zero_negative_and_extreme_values) {
  static const int64_t i64[] = {0, 1, -1, INT64_MAX, INT64_MIN, 127, 128, -128};
  static const int32_t i32[] = {0, 1, -1, INT32_MAX, INT32_MIN, 127, 128, -2};
  static const double dbl[] = {0.0, -0.0, 1e308, -1e308, 5e-324, INFINITY, -INFINITY, NAN};
  for (size_t i = 0; i < 8; i++) {
    for (int has = 0; has < 2; has++) {
      Appflowd__Emulator__V1__Outcome o = APPFLOWD__EMULATOR__V1__OUTCOME__INIT;
      o.has_execution_status = has;
      o.execution_status = (Appflow__V1__ExecutionStatus)i32[i];
      o.has_duration_seconds = has;
      o.duration_seconds = dbl[i];
      o.has_records_processed = has;
      o.records_processed = i64[i];
      expect_same(&o.base, "Outcome");
      Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
      t.seconds = i64[i];
      t.nanos = i32[i];
      Appflowd__Emulator__V1__AdvanceClockResponse a =
          APPFLOWD__EMULATOR__V1__ADVANCE_CLOCK_RESPONSE__INIT;
      a.now = has ? &t : NULL;
      a.has_runs_started = has;
      a.runs_started = i32[i];
      expect_same(&a.base, "AdvanceClockResponse");
      Appflow__V1__DescribeFlowResponse d = APPFLOW__V1__DESCRIBE_FLOW_RESPONSE__INIT;
      d.has_schema_version = has;
      d.schema_version = i64[i];
      d.has_flow_status = has;
      d.flow_status = (Appflow__V1__FlowStatus)i32[i];
      d.created_at = &t;
      expect_same(&d.base, "DescribeFlowResponse");
    }
  }
}

/* An encoder is reused call after call: its sizes from a big message must not leak into the
 * next, smaller or bigger. */
Test(encode, one_encoder_for_many_messages) {
  for (uint64_t seed = 1; seed <= 50; seed++) {
    expect_same(random_message(seed, &appflow__v1__describe_flow_response__descriptor, true),
                "reused");
    expect_same(random_message(seed, &google__protobuf__timestamp__descriptor, false), "reused");
    af_arena_reset(&arena);
  }
}

/* ---- the service's own answers ---- */

static af_flows *svc;
static af_store *store;
static af_catalog *cat; /* the compiled-in connectors and entities (data/) */

/* Runs op on json, which must succeed, and compares its response both ways. */
static ProtobufCMessage *answer(const char *op, const char *json) {
  ProtobufCMessage *resp = NULL;
  af_error err;
  cr_assert_eq(call_json(svc, op, json, &arena, &resp, &err), AF_OK, "%s: %s", op, err.message);
  expect_same(resp, op);
  return resp;
}

/* Every member CreateFlow takes (request_json.h), for flow %s with tag value %d. */
#define FULL_FLOW CREATE_FLOW_ALL_MEMBERS_HEAD "\"n\": \"%d\"}}"

#define ON_DEMAND_FLOW                                                                             \
  "{\"flowName\": \"%s\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "                    \
  "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": {\"S3\": "     \
  "{\"bucketName\": \"src\"}}}, \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "      \
  "\"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}], "                    \
  "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}"

static void service_setup(void) {
  setup();
  fake_now = T0;
  cat = test_catalog_builtin();
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .catalog = cat},
                         &store);
  test_salesforce_profile(svc, "sf-prod");
}

static void service_teardown(void) {
  test_service_free(svc, store);
  af_catalog_free(cat);
  teardown();
}

TestSuite(service, .init = service_setup, .fini = service_teardown);

/* What the gRPC door sends for the service's answers: 100 full flows and on-demand flows with
 * runs, listed in a page of 100, described, their runs, tags, connectors and profiles. */
Test(service, answers_are_the_same_bytes) {
  for (int i = 0; i < 100; i++) {
    char name[32];
    snprintf(name, sizeof name, "full-%03d", i);
    answer("CreateFlow", arena_printf(&arena, FULL_FLOW, name, i));
  }
  for (int i = 0; i < 20; i++) {
    const char *name = arena_printf(&arena, "od-%02d", i);
    answer("CreateFlow", arena_printf(&arena, ON_DEMAND_FLOW, name));
    for (int r = 0; r < i % 3; r++) {
      answer("StartFlow", arena_printf(&arena, "{\"flowName\": \"%s\"}", name));
      fake_now += 1000;
    }
  }
  Appflow__V1__ListFlowsResponse *page =
      (Appflow__V1__ListFlowsResponse *)answer("ListFlows", "{\"maxResults\": 100}");
  cr_expect_eq(page->n_flows, 100);
  cr_expect_not_null(page->next_token);
  answer("ListFlows", arena_printf(&arena, "{\"nextToken\": \"%s\"}", page->next_token));
  Appflow__V1__DescribeFlowResponse *full =
      (Appflow__V1__DescribeFlowResponse *)answer("DescribeFlow", "{\"flowName\": \"full-007\"}");
  cr_expect_not_null(full->source_flow_config);
  cr_expect_eq(full->n_tasks, 2);
  answer("DescribeFlow", "{\"flowName\": \"od-05\"}");
  answer("DescribeFlowExecutionRecords", "{\"flowName\": \"od-05\"}");
  answer("CancelFlowExecutions", "{\"flowName\": \"od-05\"}");
  Appflow__V1__ListTagsForResourceRequest tags = APPFLOW__V1__LIST_TAGS_FOR_RESOURCE_REQUEST__INIT;
  tags.resource_arn = full->flow_arn; /* a member of the AWS path, not of the JSON body */
  const af_rpc *rpc = af_flows_rpc_named(svc, "ListTagsForResource");
  Appflow__V1__ListTagsForResourceResponse *listed = alloc(sizeof *listed);
  appflow__v1__list_tags_for_resource_response__init(listed);
  af_error err;
  cr_assert_eq(af_flows_call_sync(svc, rpc, &tags.base, &listed->base, &arena, &err), AF_OK, "%s",
               err.message);
  cr_expect_eq(listed->n_tags, 3);
  expect_same(&listed->base, "ListTagsForResource");
  answer("StartFlow", "{\"flowName\": \"full-003\"}");
  answer("StopFlow", "{\"flowName\": \"full-003\"}");
  answer("DescribeConnectorProfiles", "{}");
  answer("DescribeConnectors", "{}");
  answer("DescribeConnector", "{\"connectorType\": \"Salesforce\"}");
  answer("ListConnectors", "{}");
  answer("ListConnectorEntities", "{\"connectorProfileName\": \"sf-prod\"}");
  answer("DescribeConnectorEntity",
         "{\"connectorEntityName\": \"Account\", \"connectorProfileName\": \"sf-prod\"}");
  answer("DeleteFlow", "{\"flowName\": \"od-01\"}");
}

static void ready_done(void *ctx, af_err rc) { *(af_err *)ctx = rc; }

/* rpc's answer to req in resp (initialised here), with the packed messages it came with. */
static af_pbc_ready call_ready(const char *rpc, const ProtobufCMessage *req,
                               ProtobufCMessage *resp) {
  protobuf_c_message_init(resp->descriptor, resp);
  af_pbc_ready ready = {0, NULL};
  af_error err;
  af_err rc = AF_ERR_INTERNAL_SERVER; /* the memory store answers before the call returns */
  af_reply_to to = {.arena = &arena, .err = &err, .done = ready_done, .ctx = &rc, .ready = &ready};
  af_flows_call(svc, af_flows_rpc_named(svc, rpc), req, resp, &to);
  cr_assert_eq(rc, AF_OK, "%s: %s", rpc, err.message);
  return ready;
}

/* ListFlows's entries the memory store keeps packed: the encoder writes their bytes as they
 * are, in place of walking the message, and the page is still protobuf-c's bytes - with every
 * entry packed, with some, and with none. */
Test(service, a_page_of_packed_entries_is_the_same_bytes) {
  for (int i = 0; i < 100; i++)
    answer("CreateFlow", arena_printf(&arena, FULL_FLOW, arena_printf(&arena, "p-%03d", i), i));
  answer("ListFlows", "{}"); /* makes the entries */
  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  req.has_max_results = true;
  req.max_results = 60;
  Appflow__V1__ListFlowsResponse *page = alloc(sizeof *page);
  page->base.descriptor = &appflow__v1__list_flows_response__descriptor;
  af_pbc_ready ready = call_ready("ListFlows", &req.base, &page->base);
  cr_assert_eq(page->n_flows, 60);
  cr_assert_eq(ready.n, 60, "every entry was made by the listing before");
  enc.ready = &ready;
  expect_same(&page->base, "a page of packed entries");
  af_pbc_packed some[20];
  for (size_t i = 0; i < 20; i++)
    some[i] = ready.items[3 * i + 1];
  af_pbc_ready third = {20, some};
  enc.ready = &third;
  expect_same(&page->base, "a page with every third entry packed");
  af_pbc_ready none = {0, NULL};
  enc.ready = &none;
  expect_same(&page->base, "a page with none");
  enc.ready = NULL;
}

/* DescribeFlow's answer kept packed: the encoder writes its bytes as they are, and they are
 * protobuf-c's; bytes given for the answer are what both passes take, whatever they are. */
Test(service, a_described_flow_kept_packed_is_written_as_it_is) {
  answer("CreateFlow", arena_printf(&arena, FULL_FLOW, "kept", 7));
  answer("DescribeFlow", "{\"flowName\": \"kept\"}"); /* makes the answer */
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = "kept";
  Appflow__V1__DescribeFlowResponse *d = alloc(sizeof *d);
  d->base.descriptor = &appflow__v1__describe_flow_response__descriptor;
  af_pbc_ready ready = call_ready("DescribeFlow", &req.base, &d->base);
  cr_assert_eq(ready.n, 1, "the answer made by the call before");
  cr_assert_eq(ready.items[0].msg, &d->base);
  enc.ready = &ready;
  expect_same(&d->base, "a kept answer");
  const uint8_t other[] = {0x0a, 0x01, 'x'};
  af_pbc_packed fake = {&d->base, other, sizeof other, NULL};
  af_pbc_ready given = {1, &fake};
  enc.ready = &given;
  size_t len = 0;
  cr_assert(af_encode_size(&enc, &d->base, &len));
  cr_assert_eq(len, sizeof other);
  uint8_t out[sizeof other];
  cr_assert_eq(af_encode_write(&enc, &d->base, out), sizeof other);
  cr_expect_arr_eq(out, other, sizeof other);
  enc.ready = NULL;
}

/* An encoder started in the caller's room (af_encoder_init_on, as the core packs on a stack):
 * messages that fit and messages that outgrow it pack to protobuf-c's bytes, the room is left
 * as the caller's (never freed, which ASan would catch) and later messages use the heap. */
Test(encode, sizes_in_the_callers_room) {
  size_t room[4] = {0};
  af_encoder_free(&enc);
  af_encoder_init_on(&enc, room, 4);
  expect_same(empty_message(all_types_descriptor()), "empty AllTypes in the room");
  cr_expect(enc.borrowed, "a message with no nested sizes stays in the room");
  for (uint64_t seed = 1; seed <= 50; seed++) {
    expect_same(random_message(seed, all_types_descriptor(), true), "AllTypes out of the room");
    af_arena_reset(&arena);
  }
  cr_expect(!enc.borrowed && enc.sizes != room && enc.cap > 4, "the sizes moved to the heap");
}

/* A test allocator: records what af_encode_alloc asked for, and fails when told to. */
typedef struct asked {
  size_t size;
  int calls;
  bool fail;
} asked;

static void *asked_alloc(void *ctx, size_t size) {
  asked *a = ctx;
  a->size = size;
  a->calls++;
  return a->fail ? NULL : malloc(size);
}

Test(encode, packed_into_a_block_with_room_before_and_after) {
  for (uint64_t seed = 1; seed <= 40; seed++) {
    ProtobufCMessage *m = random_message(seed, all_types_descriptor(), true);
    size_t want_len = protobuf_c_message_get_packed_size(m);
    uint8_t *want = malloc(want_len + 1);
    cr_assert_not_null(want);
    protobuf_c_message_pack(m, want);
    size_t before = seed % 3 == 0 ? 0 : 24 + seed, after = seed % 2 == 0 ? 0 : 7, len = 0;
    asked a = {0};
    uint8_t *block = af_encode_alloc(m, before, after, asked_alloc, &a, &len);
    cr_assert_not_null(block, "seed %" PRIu64 ": no block", seed);
    cr_expect_eq(a.calls, 1);
    cr_expect_eq(len, want_len, "seed %" PRIu64 ": %zu bytes, protobuf-c %zu", seed, len, want_len);
    cr_expect_eq(a.size, before + len + after > 0 ? before + len + after : 1,
                 "seed %" PRIu64 ": asked for %zu bytes", seed, a.size);
    cr_expect(len == 0 || memcmp(block + before, want, len) == 0,
              "seed %" PRIu64 ": not protobuf-c's bytes at offset %zu", seed, before);
    free(block);
    free(want);
    af_arena_reset(&arena);
  }
  /* An empty message with no room around it still gets a block (never a 0-byte request). */
  size_t len = 99;
  asked a = {0};
  Appflow__V1__ListFlowsRequest none = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  uint8_t *block = af_encode_alloc(&none.base, 0, 0, asked_alloc, &a, &len);
  cr_assert_not_null(block);
  cr_expect_eq(len, 0);
  cr_expect_eq(a.size, 1);
  free(block);
  /* A failing allocator: NULL, and *len untouched. */
  a = (asked){.fail = true};
  len = 99;
  cr_expect_null(af_encode_alloc(random_message(7, all_types_descriptor(), true), 8, 8, asked_alloc,
                                 &a, &len));
  cr_expect_eq(len, 99);
}
