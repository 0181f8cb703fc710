/* The two passes of encode.h. Both walk a message the same way and decide presence with the
 * same functions (pointer_set, has, present_other), so the writing pass meets the nested
 * messages, packed arrays and strings in the order the sizing pass recorded their sizes. Each
 * rule below is named after the protobuf-c 1.4.1 function (protobuf-c.c) whose bytes it
 * reproduces. */
#include "common/encode.h"

#include "common/pbc.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_VARINT 0
#define WIRE_64BIT 1
#define WIRE_LENGTH 2
#define WIRE_32BIT 5

/* Sizes the first sizing pass makes room for: a DescribeFlow takes a few dozen, a ListFlows page
 * of 100 flows some hundreds (the encoder keeps what it grew to). */
#define FIRST_CAP 64

/* The per-field helpers go inline into the two walks: a call per field costs about as much as
 * the field itself (measured with callgrind on a page of 100 flows). */
#define INLINE static inline __attribute__((always_inline))

void af_encoder_init(af_encoder *e) { *e = (af_encoder){0}; }

void af_encoder_init_on(af_encoder *e, size_t *room, size_t cap) {
  *e = (af_encoder){.sizes = room, .cap = cap, .borrowed = true};
}

void af_encoder_free(af_encoder *e) {
  if (!e->borrowed)
    free(e->sizes);
  *e = (af_encoder){0};
}

void *af_encode_alloc(const ProtobufCMessage *msg, size_t before, size_t after,
                      void *(*alloc)(void *ctx, size_t size), void *ctx, size_t *len) {
  size_t room[AF_ENCODE_STACK_SIZES], n = 0;
  af_encoder e;
  af_encoder_init_on(&e, room, AF_ENCODE_STACK_SIZES);
  uint8_t *block = NULL;
  if (af_encode_size(&e, msg, &n) && n <= SIZE_MAX - before - after - 1)
    block = alloc(ctx, before + n + after > 0 ? before + n + after : 1);
  if (block != NULL)
    *len = af_encode_write(&e, msg, block + before);
  af_encoder_free(&e);
  return block;
}

/* ---- sizes ---- */

INLINE size_t varint32_size(uint32_t v) {
  return v < (1u << 7) ? 1 : v < (1u << 14) ? 2 : v < (1u << 21) ? 3 : v < (1u << 28) ? 4 : 5;
}

INLINE size_t varint64_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* int32_size: a negative value is sign-extended to ten bytes. */
INLINE size_t int32_size(int32_t v) { return v < 0 ? 10 : varint32_size((uint32_t)v); }

INLINE uint32_t zigzag32(int32_t v) { return ((uint32_t)v << 1) ^ (0u - ((uint32_t)v >> 31)); }
INLINE uint64_t zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (0u - ((uint64_t)v >> 63)); }

/* get_tag_size: by the field number's bits, as protobuf-c counts them. */
INLINE size_t tag_size(uint32_t id) {
  return id < (1u << 4) ? 1 : id < (1u << 11) ? 2 : id < (1u << 18) ? 3 : id < (1u << 25) ? 4 : 5;
}

/* A length as protobuf-c writes it: uint32_pack of the length cut to 32 bits (a gRPC message is
 * under 4 GiB, so nothing is ever cut). */
INLINE size_t length_size(size_t len) { return varint32_size((uint32_t)len); }

INLINE const char *string_of(const void *member) { return *(const char *const *)member; }
INLINE const ProtobufCMessage *message_of(const void *member) {
  return *(const ProtobufCMessage *const *)member;
}

INLINE bool pointer_type(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

/* field_is_zeroish: a proto3 unlabeled field is left out when this holds. For bytes protobuf-c
 * reads the member's first word as a pointer; that word is the length. */
static bool zeroish(ProtobufCType t, const void *member) {
  switch (t) {
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)member == 0;
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
    return *(const uint32_t *)member == 0;
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)member == 0;
  case PROTOBUF_C_TYPE_FLOAT:
    return *(const float *)member == 0; /* -0.0 too */
  case PROTOBUF_C_TYPE_DOUBLE:
    return *(const double *)member == 0;
  case PROTOBUF_C_TYPE_STRING:
    return string_of(member) == NULL || string_of(member)[0] == '\0';
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)member)->len == 0;
  case PROTOBUF_C_TYPE_MESSAGE:
    return message_of(member) == NULL;
  }
  return true;
}

/* A string or message member is set: not NULL, and not the default itself (a proto2 default is
 * what a reader assumes when the field is absent, so protobuf-c leaves it out). */
INLINE bool pointer_set(const ProtobufCFieldDescriptor *f, const void *member) {
  const void *p = *(const void *const *)member;
  return p != NULL && p != f->default_value;
}

/* A proto2 optional field outside any oneof: nearly every field of the contract. The passes
 * decide these inline, by type: a pointer (pointer_set) or a has_ flag (has). */
INLINE bool plain_optional(const ProtobufCFieldDescriptor *f) {
  return f->label == PROTOBUF_C_LABEL_OPTIONAL && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0;
}

INLINE bool has(const char *m, const ProtobufCFieldDescriptor *f) {
  return *(const protobuf_c_boolean *)(const void *)(m + f->quantifier_offset) != 0;
}

/* Whether any other field that is not repeated is written: protobuf_c_message_pack's choice
 * among required_, oneof_ and unlabeled_field_pack. */
static bool present_other(const char *m, const ProtobufCFieldDescriptor *f, const void *member) {
  if (f->label == PROTOBUF_C_LABEL_REQUIRED)
    return true;
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0) /* proto3 unlabeled */
    return !zeroish(f->type, member);
  if (*(const uint32_t *)(const void *)(m + f->quantifier_offset) != f->id)
    return false;
  return !pointer_type(f->type) || pointer_set(f, member);
}

/* reserve() once the sizes are full: grows them, or sets e->oom and answers SIZE_MAX. */
static size_t reserve_more(af_encoder *e) {
  size_t cap = e->cap != 0 ? 2 * e->cap : FIRST_CAP;
  size_t *sizes = NULL;
  if (!e->oom && cap <= SIZE_MAX / sizeof *sizes)
    sizes = e->borrowed ? malloc(cap * sizeof *sizes) : realloc(e->sizes, cap * sizeof *sizes);
  if (sizes == NULL) {
    e->oom = true;
    return SIZE_MAX;
  }
  if (e->borrowed && e->n > 0) /* the caller's room stays the caller's */
    memcpy(sizes, e->sizes, e->n * sizeof *sizes);
  e->borrowed = false;
  e->sizes = sizes;
  e->cap = cap;
  return e->n++;
}

/* The entry for the next size; SIZE_MAX (and e->oom) when there is no room to be had. */
INLINE size_t reserve(af_encoder *e) { return e->n < e->cap ? e->n++ : reserve_more(e); }

/* Records a size in the next entry. */
INLINE void record(af_encoder *e, size_t size) {
  size_t at = reserve(e);
  if (at != SIZE_MAX)
    e->sizes[at] = size;
}

/* The size the sizing pass recorded next. */
INLINE size_t take(af_encoder *e) { return e->sizes[e->next++]; }

static size_t fields_size(af_encoder *e, const ProtobufCMessage *m);

/* The packed bytes the caller has for m, when m is the next of them (e->ready). */
INLINE const af_pbc_packed *ready_for(af_encoder *e, const ProtobufCMessage *m) {
  const af_pbc_ready *r = e->ready;
  if (r == NULL || e->ready_next >= r->n || r->items[e->ready_next].msg != m)
    return NULL;
  return &r->items[e->ready_next++];
}

/* A nested message's size, recorded in visit order. */
static size_t nested_size(af_encoder *e, const ProtobufCMessage *m) {
  const af_pbc_packed *ready = ready_for(e, m);
  size_t at = reserve(e);
  size_t len = ready != NULL ? ready->len : fields_size(e, m);
  if (at != SIZE_MAX)
    e->sizes[at] = len;
  return len;
}

/* A string's length and bytes (NULL: empty); its length is recorded, so strlen runs once. */
INLINE size_t string_size(af_encoder *e, const char *s) {
  size_t len = s != NULL ? strlen(s) : 0;
  record(e, len);
  return length_size(len) + len;
}

/* A nested message's length and bytes (NULL: empty, as prefixed_message_pack writes it). */
INLINE size_t message_size(af_encoder *e, const ProtobufCMessage *m) {
  size_t len = m != NULL ? nested_size(e, m) : 0;
  return length_size(len) + len;
}

/* One value's bytes after its tag (required_field_get_packed_size less the tag). */
INLINE size_t value_size(af_encoder *e, ProtobufCType t, const void *v) {
  switch (t) {
  case PROTOBUF_C_TYPE_SINT32:
    return varint32_size(zigzag32(*(const int32_t *)v));
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_INT32:
    return int32_size(*(const int32_t *)v);
  case PROTOBUF_C_TYPE_UINT32:
    return varint32_size(*(const uint32_t *)v);
  case PROTOBUF_C_TYPE_SINT64:
    return varint64_size(zigzag64(*(const int64_t *)v));
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
    return varint64_size(*(const uint64_t *)v);
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 4;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return 1;
  case PROTOBUF_C_TYPE_STRING:
    return string_size(e, string_of(v));
  case PROTOBUF_C_TYPE_BYTES: {
    size_t len = ((const ProtobufCBinaryData *)v)->len;
    return length_size(len) + len;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return message_size(e, message_of(v));
  }
  return 0;
}

/* repeated_field_get_packed_size: each element with its tag, or one tag and length before the
 * packed elements, whose size is recorded in visit order. */
static size_t repeated_size(af_encoder *e, const ProtobufCFieldDescriptor *f, size_t count,
                            const void *array) {
  size_t step = af_pbc_element_size(f->type), payload = 0;
  const char *v = array;
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) == 0) {
    for (size_t i = 0; i < count; i++, v += step)
      payload += value_size(e, f->type, v);
    return count * tag_size(f->id) + payload;
  }
  size_t at = reserve(e);
  for (size_t i = 0; i < count; i++, v += step)
    payload += value_size(e, f->type, v);
  if (at != SIZE_MAX)
    e->sizes[at] = payload;
  return tag_size(f->id) + length_size(payload) + payload;
}

/* The end of d's fields. A message without fields has no array (fields is NULL), and NULL + 0
 * is undefined in C: the catalog packs such messages (empty properties of a connector). */
INLINE const ProtobufCFieldDescriptor *fields_end(const ProtobufCMessageDescriptor *d) {
  return d->n_fields > 0 ? d->fields + d->n_fields : d->fields;
}

/* The sizing pass over one message's fields (protobuf_c_message_get_packed_size). */
static size_t fields_size(af_encoder *e, const ProtobufCMessage *m) {
  const char *base = (const char *)m;
  const ProtobufCFieldDescriptor *f = m->descriptor->fields, *end = fields_end(m->descriptor);
  size_t len = 0;
  for (; f < end; f++) {
    const char *member = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(const void *)(base + f->quantifier_offset);
      if (count > 0)
        len += repeated_size(e, f, count, *(const void *const *)(const void *)member);
    } else if (plain_optional(f)) {
      if (f->type == PROTOBUF_C_TYPE_STRING) { /* the common cases first, without a switch */
        if (pointer_set(f, member))
          len += tag_size(f->id) + string_size(e, string_of(member));
      } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (pointer_set(f, member))
          len += tag_size(f->id) + message_size(e, message_of(member));
      } else if (has(base, f)) {
        len += tag_size(f->id) + value_size(e, f->type, member);
      }
    } else if (present_other(base, f, member)) {
      len += tag_size(f->id) + value_size(e, f->type, member);
    }
  }
  for (size_t i = 0; i < m->n_unknown_fields; i++)
    len += tag_size(m->unknown_fields[i].tag) + m->unknown_fields[i].len;
  return len;
}

bool af_encode_size(af_encoder *e, const ProtobufCMessage *msg, size_t *len) {
  e->n = 0;
  e->oom = false;
  e->ready_next = 0;
  const af_pbc_packed *ready = ready_for(e, msg); /* the whole answer, kept (DescribeFlow's) */
  *len = ready != NULL ? ready->len : fields_size(e, msg);
  return !e->oom;
}

/* ---- bytes ---- */

INLINE uint8_t *put_varint32(uint8_t *p, uint32_t v) {
  if (v < 0x80) { /* most lengths */
    *p = (uint8_t)v;
    return p + 1;
  }
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

INLINE uint8_t *put_varint64(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* tag_pack with the wire type in its first byte: the varint of (id << 3 | wire). */
INLINE uint8_t *put_tag(uint8_t *p, uint32_t id, unsigned wire) {
  if (id < 16) { /* most fields: one byte */
    *p = (uint8_t)(id << 3 | wire);
    return p + 1;
  }
  return put_varint64(p, (uint64_t)id << 3 | wire);
}

/* Little-endian, as the wire wants, on any host. */
INLINE uint8_t *put_fixed32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

INLINE uint8_t *put_fixed64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    *p++ = (uint8_t)(v >> (8 * i));
  return p;
}

INLINE uint8_t *put_bytes(uint8_t *p, const void *data, size_t len) {
  p = put_varint32(p, (uint32_t)len);
  if (len > 0) /* data may be NULL when there is nothing */
    memcpy(p, data, len);
  return p + len;
}

/* The wire type of each ProtobufCType, in the enum's order. */
static const uint8_t wire_types[] = {
    [PROTOBUF_C_TYPE_INT32] = WIRE_VARINT,   [PROTOBUF_C_TYPE_SINT32] = WIRE_VARINT,
    [PROTOBUF_C_TYPE_SFIXED32] = WIRE_32BIT, [PROTOBUF_C_TYPE_INT64] = WIRE_VARINT,
    [PROTOBUF_C_TYPE_SINT64] = WIRE_VARINT,  [PROTOBUF_C_TYPE_SFIXED64] = WIRE_64BIT,
    [PROTOBUF_C_TYPE_UINT32] = WIRE_VARINT,  [PROTOBUF_C_TYPE_FIXED32] = WIRE_32BIT,
    [PROTOBUF_C_TYPE_UINT64] = WIRE_VARINT,  [PROTOBUF_C_TYPE_FIXED64] = WIRE_64BIT,
    [PROTOBUF_C_TYPE_FLOAT] = WIRE_32BIT,    [PROTOBUF_C_TYPE_DOUBLE] = WIRE_64BIT,
    [PROTOBUF_C_TYPE_BOOL] = WIRE_VARINT,    [PROTOBUF_C_TYPE_ENUM] = WIRE_VARINT,
    [PROTOBUF_C_TYPE_STRING] = WIRE_LENGTH,  [PROTOBUF_C_TYPE_BYTES] = WIRE_LENGTH,
    [PROTOBUF_C_TYPE_MESSAGE] = WIRE_LENGTH,
};

INLINE unsigned wire_type(ProtobufCType t) {
  return (unsigned)t < sizeof wire_types ? wire_types[t] : WIRE_VARINT;
}

static uint8_t *write_fields(af_encoder *e, const ProtobufCMessage *m, uint8_t *p);

INLINE uint8_t *put_string(af_encoder *e, uint8_t *p, const char *s) {
  return put_bytes(p, s, take(e));
}

/* prefixed_message_pack: NULL is an empty message. */
INLINE uint8_t *put_message(af_encoder *e, uint8_t *p, const ProtobufCMessage *m) {
  if (m == NULL)
    return put_varint32(p, 0);
  p = put_varint32(p, (uint32_t)take(e));
  const af_pbc_packed *ready = ready_for(e, m);
  if (ready == NULL)
    return write_fields(e, m, p);
  if (ready->len > 0)
    memcpy(p, ready->data, ready->len);
  return p + ready->len;
}

/* One value after its tag (required_field_pack less the tag). */
INLINE uint8_t *write_value(af_encoder *e, ProtobufCType t, const void *v, uint8_t *p) {
  switch (t) {
  case PROTOBUF_C_TYPE_SINT32:
    return put_varint32(p, zigzag32(*(const int32_t *)v));
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_INT32: /* int32_pack: a negative value sign-extended to 64 bits */
    return put_varint64(p, (uint64_t)(int64_t) * (const int32_t *)v);
  case PROTOBUF_C_TYPE_UINT32:
    return put_varint32(p, *(const uint32_t *)v);
  case PROTOBUF_C_TYPE_SINT64:
    return put_varint64(p, zigzag64(*(const int64_t *)v));
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
    return put_varint64(p, *(const uint64_t *)v);
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return put_fixed32(p, *(const uint32_t *)v);
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return put_fixed64(p, *(const uint64_t *)v);
  case PROTOBUF_C_TYPE_BOOL:
    *p = *(const protobuf_c_boolean *)v != 0 ? 1 : 0;
    return p + 1;
  case PROTOBUF_C_TYPE_STRING:
    return put_string(e, p, string_of(v));
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = v;
    return put_bytes(p, b->data, b->len);
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return put_message(e, p, message_of(v));
  }
  return p;
}

/* repeated_field_pack. */
static uint8_t *write_repeated(af_encoder *e, const ProtobufCFieldDescriptor *f, size_t count,
                               const void *array, uint8_t *p) {
  size_t step = af_pbc_element_size(f->type);
  const char *v = array;
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) == 0) {
    unsigned wire = wire_type(f->type);
    for (size_t i = 0; i < count; i++, v += step)
      p = write_value(e, f->type, v, put_tag(p, f->id, wire));
    return p;
  }
  p = put_tag(p, f->id, WIRE_LENGTH);
  p = put_varint32(p, (uint32_t)take(e));
  for (size_t i = 0; i < count; i++, v += step)
    p = write_value(e, f->type, v, p);
  return p;
}

/* The writing pass over one message's fields (protobuf_c_message_pack): the same walk and the
 * same choices as fields_size. */
static uint8_t *write_fields(af_encoder *e, const ProtobufCMessage *m, uint8_t *p) {
  const char *base = (const char *)m;
  const ProtobufCFieldDescriptor *f = m->descriptor->fields, *end = fields_end(m->descriptor);
  for (; f < end; f++) {
    const char *member = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t count = *(const size_t *)(const void *)(base + f->quantifier_offset);
      if (count > 0)
        p = write_repeated(e, f, count, *(const void *const *)(const void *)member, p);
    } else if (plain_optional(f)) {
      if (f->type == PROTOBUF_C_TYPE_STRING) {
        if (pointer_set(f, member))
          p = put_string(e, put_tag(p, f->id, WIRE_LENGTH), string_of(member));
      } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (pointer_set(f, member))
          p = put_message(e, put_tag(p, f->id, WIRE_LENGTH), message_of(member));
      } else if (has(base, f)) {
        p = write_value(e, f->type, member, put_tag(p, f->id, wire_type(f->type)));
      }
    } else if (present_other(base, f, member)) {
      p = write_value(e, f->type, member, put_tag(p, f->id, wire_type(f->type)));
    }
  }
  for (size_t i = 0; i < m->n_unknown_fields; i++) { /* unknown_field_pack */
    const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
    p = put_tag(p, u->tag, (unsigned)u->wire_type);
    if (u->len > 0)
      memcpy(p, u->data, u->len);
    p += u->len;
  }
  return p;
}

size_t af_encode_write(af_encoder *e, const ProtobufCMessage *msg, uint8_t *out) {
  e->next = 0;
  e->ready_next = 0;
  const af_pbc_packed *ready = ready_for(e, msg);
  if (ready == NULL)
    return (size_t)(write_fields(e, msg, out) - out);
  if (ready->len > 0)
    memcpy(out, ready->data, ready->len);
  return ready->len;
}
