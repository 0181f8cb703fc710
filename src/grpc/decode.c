/* The decoder of decode.h. It makes the message protobuf_c_message_unpack (protobuf-c 1.4.1,
 * protobuf-c.c) makes of the same bytes, and refuses what it refuses: each rule below is named
 * after the protobuf-c function it follows. It is its own because the request's strings must be
 * checked (a NUL, UTF-8) and protobuf-c cannot: checking them first meant a walk of the bytes
 * before protobuf-c's two, where this makes two walks in all (the second takes the first's
 * reading of a message's first 16 fields), finds a field by its number at index number - 1 and
 * takes memory from the request's arena directly: a CreateFlow and a DeleteFlow decode in
 * ~24,000 instructions instead of ~29,000 (callgrind). tests/unit/test_decode.c and
 * fuzz/fuzz_decode.c hold the two to the same messages. */
#include "grpc/decode.h"

#include "common/pbc.h"
#include "common/utf8.h"

#include <limits.h>
#include <string.h>

/* Nested messages deeper than this are refused rather than walked (protobuf's own limit). */
#define MAX_DEPTH 100
#define MAX_FIELD_NUMBER ((1u << 29) - 1)

/* A field as the wire gives it: what protobuf-c 1.4.1's unpack calls a ScannedMember. */
typedef struct wire_field {
  uint32_t number;
  uint8_t wire;                      /* wire type */
  uint8_t prefix;                    /* bytes of the length prefix (wire type 2), else 0 */
  const ProtobufCFieldDescriptor *f; /* NULL: a field the message does not know */
  const uint8_t *data;               /* the value, its length prefix included */
  size_t len;                        /* bytes at data */
} wire_field;

typedef struct decoder {
  af_arena *arena;
  af_error *err;
  af_err rc; /* AF_OK, or the error a check below set (a NULL message without one: invalid) */
} decoder;

static ProtobufCMessage *decode_message(decoder *d, const ProtobufCMessageDescriptor *desc,
                                        const uint8_t *p, const uint8_t *end, int depth);

/* Field number id of desc, NULL when it has none. The contract's messages number their fields
 * 1 to n, so the field is nearly always at index id - 1 (a number is unique, so a match there is
 * the field); anything else takes protobuf-c's search. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *desc,
                                                uint64_t id) {
  if (id - 1 < desc->n_fields && desc->fields[id - 1].id == id)
    return &desc->fields[id - 1];
  return id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)id) : NULL;
}

/* Bytes of the varint at p (at most max and 10), 0 when none of them ends it. */
static size_t varint_len(const uint8_t *p, size_t max) {
  if (max > 10)
    max = 10;
  for (size_t i = 0; i < max; i++)
    if ((p[i] & 0x80) == 0)
      return i + 1;
  return 0;
}

static uint32_t varint32(const uint8_t *p, size_t len) { /* parse_uint32: 5 bytes at most */
  uint32_t v = p[0] & 0x7f;
  if (len > 1)
    v |= (uint32_t)(p[1] & 0x7f) << 7;
  if (len > 2)
    v |= (uint32_t)(p[2] & 0x7f) << 14;
  if (len > 3)
    v |= (uint32_t)(p[3] & 0x7f) << 21;
  if (len > 4)
    v |= (uint32_t)p[4] << 28;
  return v;
}

static uint64_t varint64(const uint8_t *p, size_t len) { /* parse_uint64 */
  if (len < 5)
    return varint32(p, len);
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++)
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
  return v;
}

/* Reads the field at *p (before end) into *w and moves *p past it; false when the bytes are
 * not a field, with d->rc set when the field number is out of range. Field numbers are 1 to
 * 2^29-1: protobuf-c refuses 0 only when its tag is one byte, so an overlong tag for field 0
 * would be kept as an unknown field (found by fuzz_decode). The rest are protobuf-c's rules
 * (parse_tag_and_wiretype, scan_length_prefixed_data): a tag of at most 5 bytes, a varint of at
 * most 10, a length prefix of at most 5 and at most INT_MAX. */
static bool read_field(decoder *d, const ProtobufCMessageDescriptor *desc, const uint8_t **p,
                       const uint8_t *end, wire_field *w) {
  size_t rem = (size_t)(end - *p);
  const uint8_t *q = *p;
  /* Most fields: a one-byte tag for fields 1-15, then a one-byte varint or length. */
  if (rem >= 2 && q[0] >= 8 && q[0] < 0x80 && q[1] < 0x80 &&
      ((q[0] & 7) == PROTOBUF_C_WIRE_TYPE_VARINT ||
       ((q[0] & 7) == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && q[1] <= rem - 2))) {
    bool length = (q[0] & 7) == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    *w = (wire_field){.number = q[0] >> 3u,
                      .wire = q[0] & 7u,
                      .prefix = length,
                      .f = field_of(desc, q[0] >> 3u),
                      .data = q + 1,
                      .len = length ? 1u + q[1] : 1u};
    *p = w->data + w->len;
    return true;
  }
  size_t n = varint_len(*p, rem);
  if (n == 0)
    return false;
  uint64_t key = varint64(*p, n);
  if (key >> 3 == 0 || key >> 3 > MAX_FIELD_NUMBER) {
    d->rc = af_error_set(d->err, AF_ERR_SERIALIZATION, "field number %llu is not a valid one",
                         (unsigned long long)(key >> 3));
    return false;
  }
  if (n > 5)
    return false;
  const uint8_t *at = *p + n;
  rem -= n;
  *w = (wire_field){.number = (uint32_t)(key >> 3), .wire = key & 7, .data = at};
  switch (w->wire) {
  case PROTOBUF_C_WIRE_TYPE_VARINT:
    w->len = varint_len(at, rem);
    if (w->len == 0)
      return false;
    break;
  case PROTOBUF_C_WIRE_TYPE_64BIT:
  case PROTOBUF_C_WIRE_TYPE_32BIT:
    w->len = w->wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
    if (rem < w->len)
      return false;
    break;
  case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: {
    size_t hdr = varint_len(at, rem < 5 ? rem : 5);
    if (hdr == 0)
      return false;
    uint64_t v = varint64(at, hdr);
    if (v > INT_MAX || hdr + v > rem)
      return false;
    w->prefix = (uint8_t)hdr;
    w->len = hdr + (size_t)v;
    break;
  }
  default:
    return false;
  }
  w->f = field_of(desc, w->number);
  *p = at + w->len;
  return true;
}

/* ---- values (protobuf-c's parse_required_member) ---- */

static int32_t unzigzag32(uint32_t v) { return (int32_t)((v >> 1) ^ (0u - (v & 1))); }
static int64_t unzigzag64(uint64_t v) { return (int64_t)((v >> 1) ^ (0u - (v & 1))); }

static bool any_bit(const uint8_t *p, size_t len) { /* parse_boolean */
  for (size_t i = 0; i < len; i++)
    if (p[i] & 0x7f)
      return true;
  return false;
}

static bool merge(decoder *d, ProtobufCMessage *earlier, ProtobufCMessage *latter);
static size_t *count_of(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

static bool string_value(decoder *d, const wire_field *w, char **out) {
  const uint8_t *s = w->data + w->prefix;
  size_t len = w->len - w->prefix;
  if (memchr(s, 0, len) != NULL) {
    d->rc =
        af_error_set(d->err, AF_ERR_SERIALIZATION,
                     "field %s contains a NUL byte, which no AppFlow string may hold", w->f->name);
    return false;
  }
  if (!af_utf8_valid((const char *)s, len)) {
    d->rc = af_error_set(d->err, AF_ERR_SERIALIZATION, "field %s is not valid UTF-8", w->f->name);
    return false;
  }
  char *copy = af_arena_alloc(d->arena, len + 1);
  if (copy == NULL)
    return false;
  if (len > 0)
    memcpy(copy, s, len);
  copy[len] = '\0';
  *out = copy;
  return true;
}

/* A message field's value; a second one for a field that is not repeated (merging) is merged
 * with the first as protobuf-c does. */
static bool message_value(decoder *d, const wire_field *w, void *member, bool merging, int depth) {
  ProtobufCMessage **slot = member;
  ProtobufCMessage *sub =
      decode_message(d, w->f->descriptor, w->data + w->prefix, w->data + w->len, depth + 1);
  bool ok = sub != NULL;
  if (ok && merging && *slot != NULL && *slot != w->f->default_value)
    ok = merge(d, *slot, sub);
  *slot = sub;
  return ok;
}

/* One value of field w->f into member; false when its wire type does not fit the field's
 * type. merging: not an element of a repeated field (parse_required_member's maybe_clear). */
static bool value(decoder *d, const wire_field *w, void *member, bool merging, int depth) {
  const uint8_t *p = w->data;
  bool varint = w->wire == PROTOBUF_C_WIRE_TYPE_VARINT;
  bool length = w->wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
  switch (w->f->type) {
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_UINT32:
    if (varint)
      *(uint32_t *)member = varint32(p, w->len);
    return varint;
  case PROTOBUF_C_TYPE_SINT32:
    if (varint)
      *(int32_t *)member = unzigzag32(varint32(p, w->len));
    return varint;
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    if (w->wire == PROTOBUF_C_WIRE_TYPE_32BIT)
      memcpy(member, p, 4);
    return w->wire == PROTOBUF_C_WIRE_TYPE_32BIT;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
    if (varint)
      *(uint64_t *)member = varint64(p, w->len);
    return varint;
  case PROTOBUF_C_TYPE_SINT64:
    if (varint)
      *(int64_t *)member = unzigzag64(varint64(p, w->len));
    return varint;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    if (w->wire == PROTOBUF_C_WIRE_TYPE_64BIT)
      memcpy(member, p, 8);
    return w->wire == PROTOBUF_C_WIRE_TYPE_64BIT;
  case PROTOBUF_C_TYPE_BOOL: /* any wire type: any value bit of the bytes, as protobuf-c */
    *(protobuf_c_boolean *)member = any_bit(p, w->len);
    return true;
  case PROTOBUF_C_TYPE_STRING:
    return length && string_value(d, w, member);
  case PROTOBUF_C_TYPE_BYTES: {
    ProtobufCBinaryData *b = member;
    if (!length)
      return false;
    b->len = w->len - w->prefix;
    b->data = NULL;
    if (b->len > 0 && (b->data = af_arena_alloc(d->arena, b->len)) == NULL)
      return false;
    if (b->len > 0)
      memcpy(b->data, p + w->prefix, b->len);
    return true;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return length && message_value(d, w, member, merging, depth);
  }
  return false;
}

/* ---- repeated fields ---- */

static bool packable(const ProtobufCFieldDescriptor *f) {
  return f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES &&
         f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static bool packed_here(const ProtobufCFieldDescriptor *f, const wire_field *w) {
  return w->wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
         ((f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) != 0 || packable(f));
}

static size_t *count_of(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  return (size_t *)(void *)((char *)m + f->quantifier_offset);
}

static bool fixed_size(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_FIXED32 ||
         t == PROTOBUF_C_TYPE_FLOAT || t == PROTOBUF_C_TYPE_SFIXED64 ||
         t == PROTOBUF_C_TYPE_FIXED64 || t == PROTOBUF_C_TYPE_DOUBLE;
}

/* Room the elements of a packed run take (count_packed_elements: for varints, the bytes that
 * end one; for bools, every byte); false when fixed-size elements do not fill it. */
static bool packed_count(const ProtobufCFieldDescriptor *f, const wire_field *w, size_t *n) {
  const uint8_t *p = w->data + w->prefix;
  size_t len = w->len - w->prefix;
  size_t size = af_pbc_element_size(f->type);
  if (fixed_size(f->type)) {
    *n = len / size;
    return len % size == 0;
  }
  *n = 0;
  if (f->type == PROTOBUF_C_TYPE_BOOL)
    *n = len;
  else
    for (size_t i = 0; i < len; i++)
      *n += (p[i] & 0x80) == 0;
  return true;
}

/* The elements of a packed run appended to the field's array (parse_packed_repeated_member). */
static bool packed_values(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                          const wire_field *w) {
  size_t *n = count_of(m, f), size = af_pbc_element_size(f->type);
  const uint8_t *p = w->data + w->prefix, *end = w->data + w->len;
  char *arr = *(char **)(void *)((char *)m + f->offset);
  if (arr == NULL) /* no element counted: an empty run, or varint bytes none of which ends one */
    return p == end;
  arr += size * *n;
  if (fixed_size(f->type)) {
    size_t count = (size_t)(end - p) / size;
    memcpy(arr, p, count * size);
    *n += count;
    return true;
  }
  for (; p < end; arr += size, (*n)++) {
    size_t len = varint_len(p, (size_t)(end - p));
    if (len == 0)
      return false;
    wire_field one = {.wire = PROTOBUF_C_WIRE_TYPE_VARINT, .f = f, .data = p, .len = len};
    value(NULL, &one, arr, false, 0); /* a varint fits every packable type */
    p += len;
  }
  return true;
}

/* ---- a message field given twice (protobuf-c's merge_messages) ---- */

static void *member_of(ProtobufCMessage *m, size_t offset) { return (char *)m + offset; }

/* Repeated field f: the earlier elements, then the latter's. */
static bool merge_repeated(decoder *d, ProtobufCMessage *earlier, ProtobufCMessage *latter,
                           const ProtobufCFieldDescriptor *f) {
  size_t *ne = count_of(earlier, f), *nl = count_of(latter, f);
  char **pe = member_of(earlier, f->offset), **pl = member_of(latter, f->offset);
  if (*ne == 0)
    return true;
  if (*nl == 0) {
    *pl = *pe;
    *nl = *ne;
  } else {
    size_t size = af_pbc_element_size(f->type);
    char *both = af_arena_alloc(d->arena, (*ne + *nl) * size);
    if (both == NULL)
      return false;
    memcpy(both, *pe, *ne * size);
    memcpy(both + *ne * size, *pl, *nl * size);
    *pl = both;
    *nl += *ne;
  }
  *pe = NULL;
  *ne = 0;
  return true;
}

/* Whether the earlier value of field f (a member of neither repeated nor required) replaces the
 * latter's: it was given and the latter was not. which_e and which_l are the quantifiers of
 * the field the walk is at (for a oneof, its case). */
static bool earlier_wins(decoder *d, ProtobufCMessage *earlier, ProtobufCMessage *latter,
                         const ProtobufCFieldDescriptor *f, const uint32_t *which_e,
                         const uint32_t *which_l, bool *ok) {
  const void *e = member_of(earlier, f->offset), *l = member_of(latter, f->offset);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    ProtobufCMessage *em = *(ProtobufCMessage *const *)e, *lm = *(ProtobufCMessage *const *)l;
    if (em != NULL && lm != NULL)
      *ok = merge(d, em, lm);
    return em != NULL && lm == NULL;
  }
  if (f->type == PROTOBUF_C_TYPE_BYTES) {
    const uint8_t *ed = ((const ProtobufCBinaryData *)e)->data;
    const uint8_t *ld = ((const ProtobufCBinaryData *)l)->data;
    const ProtobufCBinaryData *def = f->default_value;
    return ed != NULL && (def == NULL || ed != def->data) &&
           (ld == NULL || (def != NULL && ld == def->data));
  }
  if (f->type == PROTOBUF_C_TYPE_STRING)
    return *(const char *const *)e != f->default_value &&
           *(const char *const *)l == f->default_value;
  /* a has_ flag or a oneof's case; a field with neither reads the same word twice */
  return *which_e != 0 && *which_l == 0;
}

/* The earlier occurrence's fields into the latter, which is what the field then holds: its
 * scalars and strings win, messages merge, repeated fields are concatenated, and a field the
 * latter does not give takes the earlier value. As protobuf-c 1.4.1 does, a oneof set in
 * neither makes the merge (so the message) fail. */
static bool merge(decoder *d, ProtobufCMessage *earlier, ProtobufCMessage *latter) {
  const ProtobufCMessageDescriptor *desc = latter->descriptor;
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      if (!merge_repeated(d, earlier, latter, f))
        return false;
      continue;
    }
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
      continue;
    uint32_t *which_e = member_of(earlier, f->quantifier_offset);
    uint32_t *which_l = member_of(latter, f->quantifier_offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*which_l != 0)
        continue;
      if ((f = field_of(desc, *which_e)) == NULL)
        return false;
    }
    bool ok = true;
    if (earlier_wins(d, earlier, latter, f, which_e, which_l, &ok)) {
      size_t size = af_pbc_element_size(f->type);
      memcpy(member_of(latter, f->offset), member_of(earlier, f->offset), size);
      memset(member_of(earlier, f->offset), 0, size);
      if (f->quantifier_offset != 0) {
        *which_l = *which_e;
        *which_e = 0;
      }
    }
    if (!ok)
      return false;
  }
  return true;
}

/* A new message of desc with its defaults (protobuf_c_message_init; a descriptor without an
 * init function, as a hand-made one may be, gets message_init_generic's). */
static void init_message(const ProtobufCMessageDescriptor *desc, ProtobufCMessage *m) {
  if (desc->message_init != NULL) {
    protobuf_c_message_init(desc, m);
    return;
  }
  memset(m, 0, desc->sizeof_message);
  m->descriptor = desc;
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->default_value == NULL || f->label == PROTOBUF_C_LABEL_REPEATED)
      continue;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
      memcpy(member_of(m, f->offset), &f->default_value, sizeof f->default_value);
    else
      memcpy(member_of(m, f->offset), f->default_value, af_pbc_element_size(f->type));
  }
}

/* ---- messages ---- */

/* A oneof member of m, given while another (or the same) member is set: that one is cleared
 * first (parse_oneof_member). */
static bool oneof_value(decoder *d, ProtobufCMessage *m, const wire_field *w, void *member,
                        int depth) {
  uint32_t *which = (uint32_t *)(void *)((char *)m + w->f->quantifier_offset);
  if (*which != 0) {
    const ProtobufCFieldDescriptor *old = field_of(m->descriptor, *which);
    if (old == NULL)
      return false;
    memset(member, 0, af_pbc_element_size(old->type));
  }
  if (!value(d, w, member, true, depth))
    return false;
  *which = w->number;
  return true;
}

/* One field into m (parse_member). */
static bool store_field(decoder *d, ProtobufCMessage *m, const wire_field *w, int depth) {
  const ProtobufCFieldDescriptor *f = w->f;
  if (f == NULL) {
    ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields++];
    *u = (ProtobufCMessageUnknownField){
        .tag = w->number, .wire_type = (ProtobufCWireType)w->wire, .len = w->len};
    if ((u->data = af_arena_alloc(d->arena, w->len ? w->len : 1)) == NULL)
      return false;
    if (w->len > 0)
      memcpy(u->data, w->data, w->len);
    return true;
  }
  void *member = (char *)m + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REQUIRED)
    return value(d, w, member, true, depth);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
      return oneof_value(d, m, w, member, depth);
    if (!value(d, w, member, true, depth))
      return false;
    if (f->quantifier_offset != 0)
      *(protobuf_c_boolean *)(void *)((char *)m + f->quantifier_offset) = 1;
    return true;
  }
  if (packed_here(f, w))
    return packed_values(m, f, w);
  size_t *n = count_of(m, f), size = af_pbc_element_size(f->type);
  if (!value(d, w, *(char **)member + size * *n, false, depth))
    return false;
  (*n)++;
  return true;
}

/* The fields the first walk read, for the second to take rather than read again: the first
 * KEPT of them (a request's messages mostly have fewer), and where the rest start. */
#define KEPT 16
typedef struct kept_fields {
  wire_field f[KEPT];
  size_t n;
  const uint8_t *after; /* the bytes after f[n - 1] */
} kept_fields;

/* The first walk: every field well formed, the elements each repeated field will hold counted
 * into its count, the unknown fields counted, each required field marked in seen (a bit per
 * field, by index). */
static bool scan(decoder *d, ProtobufCMessage *m, const uint8_t *p, const uint8_t *end,
                 size_t *unknown, uint64_t *seen, kept_fields *k) {
  wire_field w;
  while (p < end) {
    if (!read_field(d, m->descriptor, &p, end, &w))
      return false;
    if (k->n < KEPT) {
      k->f[k->n++] = w;
      k->after = p;
    }
    const ProtobufCFieldDescriptor *f = w.f;
    if (f == NULL) {
      (*unknown)++;
    } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = 1;
      if (packed_here(f, &w) && !packed_count(f, &w, &n))
        return false;
      *count_of(m, f) += n;
    } else if (f->label == PROTOBUF_C_LABEL_REQUIRED) {
      size_t i = (size_t)(f - m->descriptor->fields);
      seen[i / 64] |= UINT64_C(1) << (i % 64);
    }
  }
  return true;
}

/* Between the walks: an array for each repeated field, its count back to 0 for the second
 * walk to fill; a required field without a default that was not given makes the message
 * invalid. */
static bool make_room(decoder *d, ProtobufCMessage *m, size_t unknown, const uint64_t *seen) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t *n = count_of(m, f);
      if (*n == 0)
        continue;
      void *arr =
          *n <= SIZE_MAX / 16 ? af_arena_alloc(d->arena, *n * af_pbc_element_size(f->type)) : NULL;
      if (arr == NULL)
        return false;
      memcpy((char *)m + f->offset, &arr, sizeof arr);
      *n = 0;
    } else if (f->label == PROTOBUF_C_LABEL_REQUIRED && f->default_value == NULL &&
               (seen[i / 64] & (UINT64_C(1) << (i % 64))) == 0) {
      return false;
    }
  }
  if (unknown > 0 &&
      (m->unknown_fields = af_arena_alloc(d->arena, unknown * sizeof *m->unknown_fields)) == NULL)
    return false;
  return true;
}

static ProtobufCMessage *decode_message(decoder *d, const ProtobufCMessageDescriptor *desc,
                                        const uint8_t *p, const uint8_t *end, int depth) {
  if (depth > MAX_DEPTH) {
    d->rc = af_error_set(d->err, AF_ERR_SERIALIZATION, "messages nested deeper than %d", MAX_DEPTH);
    return NULL;
  }
  ProtobufCMessage *m = af_arena_alloc(d->arena, desc->sizeof_message);
  if (m == NULL)
    return NULL;
  init_message(desc, m);
  size_t unknown = 0;
  uint64_t few = 0, *seen = &few; /* the required fields given, a bit per field */
  if (desc->n_fields > 64 &&
      (seen = af_arena_alloc(d->arena, (desc->n_fields + 63) / 64 * sizeof *seen)) == NULL)
    return NULL;
  if (seen != &few)
    memset(seen, 0, (desc->n_fields + 63) / 64 * sizeof *seen);
  kept_fields k;
  k.n = 0;
  if (!scan(d, m, p, end, &unknown, seen, &k) || !make_room(d, m, unknown, seen))
    return NULL;
  for (size_t i = 0; i < k.n; i++)
    if (!store_field(d, m, &k.f[i], depth))
      return NULL;
  p = k.n == KEPT ? k.after : end;
  wire_field w;
  while (p < end) {
    if (!read_field(d, desc, &p, end, &w) || !store_field(d, m, &w, depth))
      return NULL;
  }
  return m;
}

af_err af_grpc_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      af_arena *arena, ProtobufCMessage **out, af_error *err) {
  decoder d = {.arena = arena, .err = err, .rc = AF_OK};
  *out = decode_message(&d, desc, data, data + len, 0);
  if (*out != NULL)
    return AF_OK;
  if (d.rc != AF_OK)
    return d.rc;
  return af_error_set(err, AF_ERR_SERIALIZATION, "the request is not a valid %s message",
                      desc->name);
}
