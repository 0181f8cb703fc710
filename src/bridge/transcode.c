/* AWS REST-JSON <-> protobuf-c messages by walking runtime descriptors (the mapping is in
 * transcode.h). Requests are parsed by jansson; responses are written straight into the arena,
 * with no JSON tree, since every response of the AWS door passes through here.
 *
 * Limits the contract does not spell out:
 * - uint64/fixed64 members above INT64_MAX cannot be read: jansson holds integers as long long
 *   and refuses larger ones as a syntax error. They are written exactly, so such a value does
 *   not survive a round trip. Map keys, being strings, take the full uint64 range.
 * - An integer member accepts a JSON real without a fraction (1.0, 1e3), as protobuf's own
 *   JSON mapping does.
 * - Timestamp fractions pass through a double: about microsecond precision for current dates.
 *   Timestamps must lie in years 1 to 9999, as google.protobuf.Timestamp defines.
 * - JSON may nest at most MAX_DEPTH levels, counting the body's object as the first; the
 *   writer refuses deeper messages with AF_ERR_INTERNAL_SERVER, so whatever was read can be
 *   written back.
 * - The writer fails with AF_ERR_INTERNAL_SERVER on what JSON cannot hold or the core should
 *   never produce: NaN or infinite numbers, strings that are not UTF-8, Timestamp nanos outside
 *   0..999999999.
 * - Enum values that lack their enum's prefix are spelled as their proto names; an enum number
 *   the descriptor does not know is written as a JSON number, which the reader refuses.
 * - No libm (appflowd_core does not link it): floor and rounding are done by casts.
 * - Numbers are formatted with snprintf: the process must keep the "C" numeric locale.
 * - A member name must be shorter than NAME_CAP bytes to be found.
 * - Fields with label OPTIONAL and a has_ flag are read and written by that flag. protoc-c
 *   (1.4, 1.5) refuses proto3 `optional`, so today only proto2 messages have them. */
#include "bridge/transcode.h"

#include "common/base64.h"

#include "common/awsname.h"
#include "common/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define NAME_CAP 256
#define PATH_CAP 384
#define TS_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* How a field's value is stored, whatever its wire encoding. */
enum kind {
  K_INT32,
  K_INT64,
  K_UINT32,
  K_UINT64,
  K_BOOL,
  K_FLOAT,
  K_DOUBLE,
  K_ENUM,
  K_STRING,
  K_BYTES,
  K_MESSAGE
};

enum wkt { WKT_NONE, WKT_TIMESTAMP, WKT_STRUCT, WKT_VALUE, WKT_LIST };

/* The AWS path of the member being read or written, for error messages. */
typedef struct member_path {
  size_t len;
  char text[PATH_CAP];
} member_path;

typedef struct decoder {
  af_arena *arena;
  af_error *err;
  int depth;
  member_path path;
} decoder;

typedef struct encoder {
  af_arena *arena;
  af_error *err;
  af_err rc; /* the first failure; once set, nothing more is written */
  char *buf;
  size_t len, cap;
  int depth;
  member_path path;
} encoder;

/* ---- descriptors ---- */

static enum kind kind_of(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return K_INT32;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return K_INT64;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return K_UINT32;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return K_UINT64;
  case PROTOBUF_C_TYPE_BOOL:
    return K_BOOL;
  case PROTOBUF_C_TYPE_FLOAT:
    return K_FLOAT;
  case PROTOBUF_C_TYPE_DOUBLE:
    return K_DOUBLE;
  case PROTOBUF_C_TYPE_ENUM:
    return K_ENUM;
  case PROTOBUF_C_TYPE_STRING:
    return K_STRING;
  case PROTOBUF_C_TYPE_BYTES:
    return K_BYTES;
  case PROTOBUF_C_TYPE_MESSAGE:
    return K_MESSAGE;
  }
  return K_MESSAGE;
}

static size_t kind_size(enum kind k) {
  switch (k) {
  case K_INT32:
  case K_UINT32:
    return sizeof(int32_t);
  case K_INT64:
  case K_UINT64:
    return sizeof(int64_t);
  case K_BOOL:
    return sizeof(protobuf_c_boolean);
  case K_FLOAT:
    return sizeof(float);
  case K_DOUBLE:
    return sizeof(double);
  case K_ENUM:
    return sizeof(int); /* protobuf-c forces every enum to int size */
  case K_STRING:
    return sizeof(char *);
  case K_BYTES:
    return sizeof(ProtobufCBinaryData);
  case K_MESSAGE:
    return sizeof(ProtobufCMessage *);
  }
  return 0;
}

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d) {
  static const struct {
    const char *name;
    enum wkt wkt;
  } table[] = {{"google.protobuf.Timestamp", WKT_TIMESTAMP},
               {"google.protobuf.Struct", WKT_STRUCT},
               {"google.protobuf.Value", WKT_VALUE},
               {"google.protobuf.ListValue", WKT_LIST}};
  if (strncmp(d->name, "google.protobuf.", 16) != 0)
    return WKT_NONE;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(d->name, table[i].name) == 0)
      return table[i].wkt;
  return WKT_NONE;
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d,
                                                   const char *name) {
  return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* protobuf-c gives map<K,V> as a repeated message "...Entry" of fields key = 1, value = 2. */
static int is_map(const ProtobufCFieldDescriptor *f) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return 0;
  const ProtobufCMessageDescriptor *d = f->descriptor;
  return ends_with(d->name, "Entry") && d->n_fields == 2 && d->fields[0].id == 1 &&
         strcmp(d->fields[0].name, "key") == 0 && d->fields[1].id == 2 &&
         strcmp(d->fields[1].name, "value") == 0;
}

static int is_value_field(const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == WKT_VALUE;
}

static ProtobufCMessage *new_message(af_arena *a, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = af_arena_alloc(a, d->sizeof_message);
  if (m != NULL)
    protobuf_c_message_init(d, m);
  return m;
}

/* ---- names ---- */

size_t af_bridge_member_name(const char *field_name, char *dst, size_t dstsz) {
  size_t n = 0;
  int upper = 0;
  for (const char *p = field_name; *p != '\0'; p++) {
    if (*p == '_') {
      upper = 1;
      continue;
    }
    if (n + 1 < dstsz)
      dst[n] = upper ? (char)toupper((unsigned char)*p) : *p;
    n++;
    upper = 0;
  }
  if (dstsz > 0)
    dst[n < dstsz ? n : dstsz - 1] = '\0';
  return n;
}

/* "FlowStatus" -> "FLOW_STATUS_": UPPER_SNAKE_CASE of the enum's short name plus "_". */
static void enum_prefix(const char *short_name, char *dst, size_t dstsz) {
  size_t n = 0;
  for (size_t i = 0; short_name[i] != '\0' && n + 3 < dstsz; i++) {
    unsigned char c = (unsigned char)short_name[i], prev = i ? (unsigned char)short_name[i - 1] : 0,
                  next = (unsigned char)short_name[i + 1];
    if (isupper(c) && i > 0 && (islower(prev) || isdigit(prev) || (isupper(prev) && islower(next))))
      dst[n++] = '_';
    dst[n++] = (char)toupper(c);
  }
  dst[n++] = '_';
  dst[n] = '\0';
}

/* The AWS string of one value; its proto name when it lacks the prefix. */
static void aws_enum_name(const char *prefix, const char *value, char *dst, size_t dstsz) {
  if (af_aws_enum_string(prefix, value, dst, dstsz) != 0)
    snprintf(dst, dstsz, "%s", value);
}

static int is_unspecified(const ProtobufCEnumValue *v) {
  return ends_with(v->name, "_UNSPECIFIED");
}

/* ---- member paths ---- */

static void path_put(member_path *p, const char *s, size_t n) {
  size_t room = sizeof p->text - 1 - p->len;
  if (n > room)
    n = room;
  memcpy(p->text + p->len, s, n);
  p->len += n;
  p->text[p->len] = '\0';
}

static size_t path_member(member_path *p, const char *name) {
  size_t old = p->len;
  if (old > 0)
    path_put(p, ".", 1);
  path_put(p, name, strlen(name));
  return old;
}

static size_t path_index(member_path *p, size_t i) {
  size_t old = p->len;
  char b[32];
  int n = snprintf(b, sizeof b, "[%zu]", i);
  path_put(p, b, (size_t)n);
  return old;
}

static size_t path_key(member_path *p, const char *key) {
  size_t old = p->len;
  char b[128];
  af_escape(b, sizeof b, key, strlen(key));
  path_put(p, ".", 1);
  path_put(p, b, strlen(b));
  return old;
}

static void path_pop(member_path *p, size_t old) {
  p->len = old;
  p->text[old] = '\0';
}

/* ---- reading: errors ---- */

static const char *json_kind(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "unknown";
}

static af_err no_memory(af_error *err) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "the request needs more memory than appflowd allows one request");
}

static af_err wrong_type(decoder *d, const char *want, const json_t *j) {
  return af_error_set(d->err, AF_ERR_SERIALIZATION, "member %s must be %s, not %s", d->path.text,
                      want, json_kind(j));
}

static const char *number_text(const json_t *j, char *buf, size_t n) {
  if (json_is_integer(j))
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
  else
    snprintf(buf, n, "%.17g", json_number_value(j));
  return buf;
}

static af_err enter(decoder *d) {
  if (++d->depth <= MAX_DEPTH)
    return AF_OK;
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s nests JSON deeper than %d levels, the most appflowd reads",
                      d->path.text, MAX_DEPTH);
}

/* ---- reading: scalars ---- */

static void int_limits(enum kind k, long long *lo, long long *hi) {
  *lo = LLONG_MIN;
  *hi = LLONG_MAX;
  if (k == K_INT32) {
    *lo = INT32_MIN;
    *hi = INT32_MAX;
  } else if (k == K_UINT32 || k == K_UINT64) {
    *lo = 0;
    *hi = k == K_UINT32 ? (long long)UINT32_MAX : LLONG_MAX;
  }
}

static af_err out_of_range(decoder *d, enum kind k, const json_t *j) {
  long long lo, hi;
  char num[40];
  int_limits(k, &lo, &hi);
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s must be an integer from %lld to %lld, not %s", d->path.text, lo,
                      hi, number_text(j, num, sizeof num));
}

/* A JSON integer, or a real without a fraction inside long long's range. */
static af_err integer_of(decoder *d, enum kind k, const json_t *j, long long *v) {
  if (json_is_integer(j)) {
    *v = json_integer_value(j);
    return AF_OK;
  }
  if (!json_is_real(j))
    return wrong_type(d, "an integer", j);
  double x = json_real_value(j);
  if (!(x >= -0x1p63 && x < 0x1p63)) /* every double this large is a whole number */
    return out_of_range(d, k, j);
  *v = (long long)x;
  if ((double)*v != x)
    return af_error_set(d->err, AF_ERR_SERIALIZATION, "member %s must be an integer, not %.17g",
                        d->path.text, x);
  return AF_OK;
}

static af_err decode_integer(decoder *d, enum kind k, const json_t *j, void *dst) {
  long long v = 0, lo = 0, hi = 0;
  af_err rc = integer_of(d, k, j, &v);
  if (rc != AF_OK)
    return rc;
  int_limits(k, &lo, &hi);
  if (v < lo || v > hi)
    return out_of_range(d, k, j);
  if (k == K_INT32)
    *(int32_t *)dst = (int32_t)v;
  else if (k == K_UINT32)
    *(uint32_t *)dst = (uint32_t)v;
  else
    *(int64_t *)dst = v; /* uint64 storage takes the same bits for 0..INT64_MAX */
  return AF_OK;
}

static af_err decode_bool(decoder *d, const json_t *j, protobuf_c_boolean *dst) {
  if (!json_is_boolean(j))
    return wrong_type(d, "a boolean", j);
  *dst = json_is_true(j);
  return AF_OK;
}

static af_err decode_real(decoder *d, enum kind k, const json_t *j, void *dst) {
  if (!json_is_number(j))
    return wrong_type(d, "a number", j);
  double x = json_number_value(j);
  if (k == K_DOUBLE) {
    *(double *)dst = x;
    return AF_OK;
  }
  if (x > FLT_MAX || x < -FLT_MAX)
    return af_error_set(d->err, AF_ERR_SERIALIZATION,
                        "member %s must be a number within float range (%g), not %.17g",
                        d->path.text, (double)FLT_MAX, x);
  *(float *)dst = (float)x;
  return AF_OK;
}

static af_err decode_string(decoder *d, const json_t *j, char **dst) {
  if (!json_is_string(j))
    return wrong_type(d, "a string", j);
  char *s = af_arena_strndup(d->arena, json_string_value(j), json_string_length(j));
  if (s == NULL)
    return no_memory(d->err);
  *dst = s;
  return AF_OK;
}

/* ---- reading: bytes ---- */

static af_err decode_bytes(decoder *d, const json_t *j, ProtobufCBinaryData *dst) {
  if (!json_is_string(j))
    return wrong_type(d, "a base64 string", j);
  size_t n = json_string_length(j);
  uint8_t *out = af_arena_alloc(d->arena, n / 4 * 3 + 1);
  if (out == NULL)
    return no_memory(d->err);
  long len = af_base64_decode(json_string_value(j), n, out, n / 4 * 3 + 1, AF_BASE64_STD);
  if (len < 0)
    return af_error_set(d->err, AF_ERR_SERIALIZATION,
                        "member %s must be base64 (standard alphabet, padded with =), but is not",
                        d->path.text);
  dst->data = out;
  dst->len = (size_t)len;
  return AF_OK;
}

/* ---- reading: enums ---- */

/* "Scheduled, Event, OnDemand": the values AWS accepts, truncated to fit. */
static void enum_value_list(const ProtobufCEnumDescriptor *ed, char *dst, size_t dstsz) {
  char prefix[NAME_CAP], name[NAME_CAP];
  size_t n = 0;
  enum_prefix(ed->short_name, prefix, sizeof prefix);
  dst[0] = '\0';
  for (unsigned i = 0; i < ed->n_values && n < dstsz; i++) {
    if (is_unspecified(&ed->values[i]))
      continue;
    aws_enum_name(prefix, ed->values[i].name, name, sizeof name);
    int w = snprintf(dst + n, dstsz - n, "%s%s", n > 0 ? ", " : "", name);
    n += w > 0 ? (size_t)w : 0;
  }
}

static af_err enum_error(decoder *d, const ProtobufCEnumDescriptor *ed, const char *s, size_t n) {
  char quoted[256], list[512];
  af_escape(quoted, sizeof quoted, s, n);
  enum_value_list(ed, list, sizeof list);
  return af_error_set(d->err, AF_ERR_VALIDATION,
                      "1 validation error detected: Value '%s' at '%s' failed to satisfy "
                      "constraint: Member must satisfy enum value set: [%s]",
                      quoted, d->path.text, list);
}

static af_err decode_enum(decoder *d, const ProtobufCEnumDescriptor *ed, const json_t *j,
                          int *dst) {
  if (!json_is_string(j))
    return wrong_type(d, "a string", j);
  const char *s = json_string_value(j);
  size_t n = json_string_length(j);
  char prefix[NAME_CAP], name[NAME_CAP];
  enum_prefix(ed->short_name, prefix, sizeof prefix);
  for (unsigned i = 0; i < ed->n_values; i++) {
    if (is_unspecified(&ed->values[i]))
      continue;
    aws_enum_name(prefix, ed->values[i].name, name, sizeof name);
    if (strlen(name) == n && memcmp(name, s, n) == 0) {
      *dst = ed->values[i].value;
      return AF_OK;
    }
  }
  return enum_error(d, ed, s, n);
}

/* ---- reading: messages, repeated fields, maps ---- */

static af_err decode_message(decoder *d, const ProtobufCMessageDescriptor *desc, json_t *j,
                             ProtobufCMessage **dst);
static af_err decode_field(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           json_t *j);

/* One value (a singular field, an array element, a map value) into its storage at dst. */
static af_err decode_scalar(decoder *d, const ProtobufCFieldDescriptor *f, json_t *j, void *dst) {
  enum kind k = kind_of(f->type);
  switch (k) {
  case K_INT32:
  case K_INT64:
  case K_UINT32:
  case K_UINT64:
    return decode_integer(d, k, j, dst);
  case K_BOOL:
    return decode_bool(d, j, dst);
  case K_FLOAT:
  case K_DOUBLE:
    return decode_real(d, k, j, dst);
  case K_ENUM:
    return decode_enum(d, f->descriptor, j, dst);
  case K_STRING:
    return decode_string(d, j, dst);
  case K_BYTES:
    return decode_bytes(d, j, dst);
  case K_MESSAGE:
    return decode_message(d, f->descriptor, j, dst);
  }
  return AF_OK;
}

static af_err decode_elements(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                              json_t *j) {
  size_t n = json_array_size(j), size = kind_size(kind_of(f->type));
  char *elems = n > AF_ARENA_LIMIT / size ? NULL : af_arena_alloc(d->arena, n * size);
  af_err rc = AF_OK;
  if (elems == NULL)
    return no_memory(d->err);
  memset(elems, 0, n * size);
  *(size_t *)((char *)m + f->quantifier_offset) = n;
  *(char **)((char *)m + f->offset) = elems;
  for (size_t i = 0; rc == AF_OK && i < n; i++) {
    size_t old = path_index(&d->path, i);
    rc = decode_scalar(d, f, json_array_get(j, i), elems + i * size);
    path_pop(&d->path, old);
  }
  return rc;
}

static af_err decode_array(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           json_t *j) {
  if (!json_is_array(j))
    return wrong_type(d, "an array", j);
  af_err rc = enter(d);
  if (rc == AF_OK && json_array_size(j) > 0)
    rc = decode_elements(d, m, f, j);
  d->depth--;
  return rc;
}

/* Strict decimal, as protobuf's JSON writes integer map keys. */
static int parse_int_key(const char *s, enum kind k, void *dst) {
  char *end;
  errno = 0;
  if (k == K_UINT32 || k == K_UINT64) {
    unsigned long long u = isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
    if (!isdigit((unsigned char)s[0]) || errno != 0 || *end != '\0' ||
        (k == K_UINT32 && u > UINT32_MAX))
      return -1;
    if (k == K_UINT32)
      *(uint32_t *)dst = (uint32_t)u;
    else
      *(uint64_t *)dst = u;
    return 0;
  }
  int ok = isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]));
  long long v = ok ? strtoll(s, &end, 10) : 0;
  if (!ok || errno != 0 || *end != '\0' || (k == K_INT32 && (v < INT32_MIN || v > INT32_MAX)))
    return -1;
  if (k == K_INT32)
    *(int32_t *)dst = (int32_t)v;
  else
    *(int64_t *)dst = v;
  return 0;
}

static const char *key_want(enum kind k) {
  switch (k) {
  case K_INT32:
    return "an integer from -2147483648 to 2147483647";
  case K_INT64:
    return "an integer from -9223372036854775808 to 9223372036854775807";
  case K_UINT32:
    return "an integer from 0 to 4294967295";
  case K_UINT64:
    return "an integer from 0 to 18446744073709551615";
  case K_BOOL:
    return "true or false";
  case K_STRING:
  case K_FLOAT:
  case K_DOUBLE:
  case K_ENUM:
  case K_BYTES:
  case K_MESSAGE:
    break;
  }
  return "a key protobuf allows";
}

static af_err decode_key(decoder *d, const ProtobufCFieldDescriptor *kf, const char *key,
                         void *dst) {
  enum kind k = kind_of(kf->type);
  int bad = -1;
  if (k == K_STRING) {
    *(char **)dst = af_arena_strndup(d->arena, key, strlen(key));
    return *(char **)dst == NULL ? no_memory(d->err) : AF_OK;
  }
  if (k == K_BOOL && (strcmp(key, "true") == 0 || strcmp(key, "false") == 0)) {
    *(protobuf_c_boolean *)dst = key[0] == 't';
    bad = 0;
  } else if (k == K_INT32 || k == K_INT64 || k == K_UINT32 || k == K_UINT64) {
    bad = parse_int_key(key, k, dst);
  }
  if (bad == 0)
    return AF_OK;
  char quoted[128];
  af_escape(quoted, sizeof quoted, key, strlen(key));
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s has key '%s', but its keys must be %s", d->path.text, quoted,
                      key_want(k));
}

static void mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
    *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

static af_err decode_entry(decoder *d, const ProtobufCMessageDescriptor *entry, const char *key,
                           json_t *value, ProtobufCMessage **dst) {
  ProtobufCMessage *e = new_message(d->arena, entry);
  if (e == NULL)
    return no_memory(d->err);
  *dst = e;
  const ProtobufCFieldDescriptor *kf = &entry->fields[0], *vf = &entry->fields[1];
  af_err rc = decode_key(d, kf, key, (char *)e + kf->offset);
  if (rc != AF_OK)
    return rc;
  mark_present(e, kf);
  size_t old = path_key(&d->path, key);
  rc = decode_field(d, e, vf, value);
  path_pop(&d->path, old);
  return rc;
}

static af_err decode_entries(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                             json_t *j) {
  size_t n = json_object_size(j), i = 0;
  ProtobufCMessage **items =
      n > AF_ARENA_LIMIT / sizeof *items ? NULL : af_arena_alloc(d->arena, n * sizeof *items);
  const char *key;
  json_t *value;
  if (items == NULL)
    return no_memory(d->err);
  *(size_t *)((char *)m + f->quantifier_offset) = n;
  *(ProtobufCMessage ***)((char *)m + f->offset) = items;
  json_object_foreach(j, key, value) {
    af_err rc = decode_entry(d, f->descriptor, key, value, &items[i++]);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

static af_err decode_map(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         json_t *j) {
  if (!json_is_object(j))
    return wrong_type(d, "an object", j);
  af_err rc = enter(d);
  if (rc == AF_OK && json_object_size(j) > 0)
    rc = decode_entries(d, m, f, j);
  d->depth--;
  return rc;
}

static af_err claim_oneof(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  uint32_t *which = (uint32_t *)((char *)m + f->quantifier_offset);
  if (*which != 0 && *which != f->id) {
    const ProtobufCFieldDescriptor *other =
        protobuf_c_message_descriptor_get_field(m->descriptor, *which);
    char name[NAME_CAP];
    af_bridge_member_name(other != NULL ? other->name : "?", name, sizeof name);
    return af_error_set(d->err, AF_ERR_SERIALIZATION,
                        "member %s cannot be set together with %s: they are alternatives (one "
                        "oneof), so set only one",
                        d->path.text, name);
  }
  *which = f->id;
  return AF_OK;
}

static af_err decode_field(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           json_t *j) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return is_map(f) ? decode_map(d, m, f, j) : decode_array(d, m, f, j);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    af_err rc = claim_oneof(d, m, f);
    if (rc != AF_OK)
      return rc;
  } else {
    mark_present(m, f);
  }
  return decode_scalar(d, f, j, (char *)m + f->offset);
}

static af_err decode_member(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                            json_t *obj) {
  char name[NAME_CAP];
  af_bridge_member_name(f->name, name, sizeof name);
  json_t *v = json_object_get(obj, name);
  if (v == NULL || (json_is_null(v) && !is_value_field(f)))
    return AF_OK;
  size_t old = path_member(&d->path, name);
  af_err rc = decode_field(d, m, f, v);
  path_pop(&d->path, old);
  return rc;
}

static af_err decode_fields(decoder *d, ProtobufCMessage *m, json_t *j) {
  if (!json_is_object(j))
    return wrong_type(d, "an object", j);
  af_err rc = enter(d);
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  for (unsigned i = 0; rc == AF_OK && i < desc->n_fields; i++)
    rc = decode_member(d, m, &desc->fields[i], j);
  d->depth--;
  return rc;
}

/* ---- reading: well-known types ---- */

static af_err timestamp_range(decoder *d, const json_t *j) {
  char num[40];
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s must be epoch seconds from %lld to %lld, not %s", d->path.text,
                      TS_MIN, TS_MAX, number_text(j, num, sizeof num));
}

static af_err decode_timestamp(decoder *d, ProtobufCMessage *m, const json_t *j) {
  long long secs, nanos = 0;
  if (!json_is_number(j))
    return wrong_type(d, "a number of epoch seconds", j);
  if (json_is_integer(j)) {
    secs = json_integer_value(j);
  } else {
    double x = json_real_value(j);
    if (!(x >= TS_MIN && x < TS_MAX + 1.0))
      return timestamp_range(d, j);
    secs = (long long)x; /* toward zero; then down to the floor */
    if ((double)secs > x)
      secs--;
    nanos = (long long)((x - (double)secs) * 1e9 + 0.5);
    if (nanos >= 1000000000) {
      secs++;
      nanos -= 1000000000;
    }
  }
  if (secs < TS_MIN || secs > TS_MAX)
    return timestamp_range(d, j);
  *(int64_t *)((char *)m + field_named(m->descriptor, "seconds")->offset) = secs;
  *(int32_t *)((char *)m + field_named(m->descriptor, "nanos")->offset) = (int32_t)nanos;
  return AF_OK;
}

/* The google.protobuf.Value member that holds a JSON value of j's type. */
static const char *value_member(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    return "struct_value";
  case JSON_ARRAY:
    return "list_value";
  case JSON_STRING:
    return "string_value";
  case JSON_INTEGER:
  case JSON_REAL:
    return "number_value";
  case JSON_TRUE:
  case JSON_FALSE:
    return "bool_value";
  case JSON_NULL:
    break;
  }
  return "null_value";
}

static af_err decode_any(decoder *d, ProtobufCMessage *m, json_t *j) {
  const ProtobufCFieldDescriptor *f = field_named(m->descriptor, value_member(j));
  *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
  if (json_is_null(j))
    return AF_OK; /* null_value is NULL_VALUE, 0, from protobuf_c_message_init */
  return decode_scalar(d, f, j, (char *)m + f->offset);
}

static af_err decode_message(decoder *d, const ProtobufCMessageDescriptor *desc, json_t *j,
                             ProtobufCMessage **dst) {
  ProtobufCMessage *m = new_message(d->arena, desc);
  if (m == NULL)
    return no_memory(d->err);
  *dst = m;
  switch (wkt_of(desc)) {
  case WKT_TIMESTAMP:
    return decode_timestamp(d, m, j);
  case WKT_STRUCT:
    return decode_map(d, m, field_named(desc, "fields"), j);
  case WKT_LIST:
    return decode_array(d, m, field_named(desc, "values"), j);
  case WKT_VALUE:
    return decode_any(d, m, j);
  case WKT_NONE:
    break;
  }
  return decode_fields(d, m, j);
}

/* ---- reading: the body ---- */

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
      return 0;
  return 1;
}

/* jansson's own text, escaped; but not its advice to use a flag a client cannot set. */
static af_err syntax_error(const json_error_t *je, af_error *err) {
  char text[4 * JSON_ERROR_TEXT_LENGTH];
  if (json_error_code(je) == json_error_null_character)
    return af_error_set(err, AF_ERR_SERIALIZATION,
                        "the request body is not valid JSON: a string holds \\u0000, which "
                        "appflowd does not accept, at line %d column %d",
                        je->line, je->column);
  af_escape(text, sizeof text, je->text, strnlen(je->text, sizeof je->text - 1));
  return af_error_set(err, AF_ERR_SERIALIZATION,
                      "the request body is not valid JSON: %s at line %d column %d", text, je->line,
                      je->column);
}

static af_err parse_body(const char *body, size_t len, json_t **root, af_error *err) {
  json_error_t je;
  if (body == NULL || is_blank(body, len)) {
    body = "{}";
    len = 2;
  }
  *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (*root == NULL)
    return syntax_error(&je, err);
  if (json_is_object(*root))
    return AF_OK;
  af_err rc = af_error_set(err, AF_ERR_SERIALIZATION,
                           "the request body must be a JSON object, not %s", json_kind(*root));
  json_decref(*root);
  *root = NULL;
  return rc;
}

af_err af_bridge_json_to_message(const ProtobufCMessageDescriptor *desc, const char *body,
                                 size_t len, af_arena *arena, ProtobufCMessage **out,
                                 af_error *err) {
  if (out == NULL || desc == NULL || arena == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "JSON decoding was called without a target");
  *out = NULL;
  json_t *root;
  af_err rc = parse_body(body, len, &root, err);
  if (rc != AF_OK)
    return rc;
  decoder d = {.arena = arena, .err = err};
  ProtobufCMessage *m = NULL;
  rc = decode_message(&d, desc, root, &m);
  json_decref(root);
  if (rc == AF_OK)
    *out = m;
  return rc;
}

/* ---- reading: members bound to the path and query ---- */

static const ProtobufCFieldDescriptor *member_field(const ProtobufCMessageDescriptor *d,
                                                    const char *member) {
  char name[NAME_CAP];
  for (unsigned i = 0; i < d->n_fields; i++) {
    af_bridge_member_name(d->fields[i].name, name, sizeof name);
    if (strcmp(name, member) == 0)
      return &d->fields[i];
  }
  return NULL;
}

static af_err bind_member(ProtobufCMessage *m, const af_bridge_binding *b, af_arena *arena,
                          af_error *err) {
  const ProtobufCFieldDescriptor *f = member_field(m->descriptor, b->member);
  if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                        "%s has no string member %s to take from the request's path or query",
                        m->descriptor->name, b->member);
  char *field = (char *)m + f->offset;
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    *(char **)field = b->nvalues > 0 ? (char *)b->values[0] : (char *)f->default_value;
    return AF_OK;
  }
  char **copy = NULL;
  if (b->nvalues > 0) { /* an array of the message's own: the caller's is const */
    copy = b->nvalues > AF_ARENA_LIMIT / sizeof *copy
               ? NULL
               : af_arena_alloc(arena, b->nvalues * sizeof *copy);
    if (copy == NULL)
      return no_memory(err);
    for (size_t i = 0; i < b->nvalues; i++)
      copy[i] = (char *)b->values[i];
  }
  *(size_t *)((char *)m + f->quantifier_offset) = b->nvalues;
  *(char ***)field = copy;
  return AF_OK;
}

af_err af_bridge_bind_members(ProtobufCMessage *msg, const af_bridge_binding *bindings, size_t n,
                              af_arena *arena, af_error *err) {
  if (msg == NULL || arena == NULL || (n > 0 && bindings == NULL))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "member binding was called without a message");
  for (size_t i = 0; i < n; i++) {
    af_err rc = bind_member(msg, &bindings[i], arena, err);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

/* ---- writing: the buffer ---- */

static void fail(encoder *e, af_err rc) {
  if (e->rc == AF_OK)
    e->rc = rc;
}

static void fail_oom(encoder *e) {
  if (e->rc == AF_OK)
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response needs more memory than appflowd allows one request"));
}

/* Room for n more bytes and a NUL; 0 (with e->rc set) when there is none. */
static int reserve(encoder *e, size_t n) {
  if (e->rc != AF_OK)
    return 0;
  if (e->cap - e->len > n)
    return 1;
  size_t cap = e->cap > 0 ? e->cap : 256;
  while (cap - e->len <= n && cap <= AF_ARENA_LIMIT)
    cap *= 2;
  char *b = cap <= AF_ARENA_LIMIT ? af_arena_alloc(e->arena, cap) : NULL;
  if (b == NULL) {
    fail_oom(e);
    return 0;
  }
  if (e->len > 0)
    memcpy(b, e->buf, e->len);
  e->buf = b;
  e->cap = cap;
  return 1;
}

static void put(encoder *e, const char *s, size_t n) {
  if (!reserve(e, n))
    return;
  memcpy(e->buf + e->len, s, n);
  e->len += n;
}

static void put_str(encoder *e, const char *s) { put(e, s, strlen(s)); }

static void put_char(encoder *e, char c) { put(e, &c, 1); }

static void put_number(encoder *e, const char *buf, int n) {
  if (n > 0)
    put(e, buf, (size_t)n);
}

static int enter_out(encoder *e) {
  if (++e->depth <= MAX_DEPTH)
    return 1;
  if (e->rc == AF_OK)
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response member %s nests deeper than %d levels", e->path.text,
                         MAX_DEPTH));
  return 0;
}

/* ---- writing: scalars ---- */

static void encode_real(encoder *e, double x, int digits) {
  char b[40];
  if (!isfinite(x)) {
    if (e->rc == AF_OK)
      fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                           "the response member %s is %s, which JSON cannot hold", e->path.text,
                           isnan(x) ? "NaN" : "infinite"));
    return;
  }
  put_number(e, b, snprintf(b, sizeof b, "%.*g", digits, x));
}

static int is_plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* Writes the character at p that needs care; returns where the next one starts. */
static const char *encode_special(encoder *e, const char *p, const char *end) {
  unsigned char c = (unsigned char)*p;
  char b[8];
  if (c == '"' || c == '\\') {
    put_char(e, '\\');
    put_char(e, (char)c);
    return p + 1;
  }
  if (c < 0x20) {
    put_number(e, b, snprintf(b, sizeof b, "\\u%04x", c));
    return p + 1;
  }
  int n = af_utf8_seq_len(p, end);
  if (n <= 0) {
    if (e->rc == AF_OK)
      fail(e,
           af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                        "the response member %s holds a string that is not UTF-8", e->path.text));
    return end;
  }
  put(e, p, (size_t)n);
  return p + n;
}

static void encode_string(encoder *e, const char *s, size_t n) {
  const char *p = s, *end = s + n;
  put_char(e, '"');
  while (p < end && e->rc == AF_OK) {
    const char *run = p;
    while (p < end && is_plain((unsigned char)*p))
      p++;
    put(e, run, (size_t)(p - run));
    if (p < end)
      p = encode_special(e, p, end);
  }
  put_char(e, '"');
}

static void encode_bytes(encoder *e, const ProtobufCBinaryData *b) {
  size_t n = b->data != NULL ? b->len : 0, out = af_base64_encoded_len(n, AF_BASE64_STD);
  put_char(e, '"');
  if (!reserve(e, out))
    return;
  af_base64_encode(b->data, n, e->buf + e->len, AF_BASE64_STD);
  e->len += out;
  put_char(e, '"');
}

static void encode_enum(encoder *e, const ProtobufCEnumDescriptor *ed, int v) {
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
  char prefix[NAME_CAP], name[NAME_CAP];
  if (ev == NULL) {
    put_number(e, name, snprintf(name, sizeof name, "%d", v));
    return;
  }
  enum_prefix(ed->short_name, prefix, sizeof prefix);
  aws_enum_name(prefix, ev->name, name, sizeof name);
  encode_string(e, name, strlen(name));
}

/* ---- writing: messages ---- */

static void encode_message(encoder *e, const ProtobufCMessageDescriptor *desc,
                           const ProtobufCMessage *m);

/* Integers are written by hand: snprintf was a sixth of a ListFlows page's JSON. b needs 21
 * bytes (a sign and 20 digits); returns the length. */
static int format_u64(char *b, uint64_t v) {
  char tmp[20];
  int n = 0;
  do
    tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  for (int i = 0; i < n; i++)
    b[i] = tmp[n - 1 - i];
  return n;
}

static int format_i64(char *b, int64_t v) {
  if (v >= 0)
    return format_u64(b, (uint64_t)v);
  b[0] = '-';
  return 1 + format_u64(b + 1, 0 - (uint64_t)v); /* unsigned negation: INT64_MIN too */
}

static void encode_scalar(encoder *e, const ProtobufCFieldDescriptor *f, const void *p) {
  char b[32];
  switch (kind_of(f->type)) {
  case K_INT32:
    put_number(e, b, format_i64(b, *(const int32_t *)p));
    break;
  case K_INT64:
    put_number(e, b, format_i64(b, *(const int64_t *)p));
    break;
  case K_UINT32:
    put_number(e, b, format_u64(b, *(const uint32_t *)p));
    break;
  case K_UINT64:
    put_number(e, b, format_u64(b, *(const uint64_t *)p));
    break;
  case K_BOOL:
    put_str(e, *(const protobuf_c_boolean *)p ? "true" : "false");
    break;
  case K_FLOAT:
    encode_real(e, *(const float *)p, FLT_DECIMAL_DIG);
    break;
  case K_DOUBLE:
    encode_real(e, *(const double *)p, DBL_DECIMAL_DIG);
    break;
  case K_ENUM:
    encode_enum(e, f->descriptor, *(const int *)p);
    break;
  case K_STRING: {
    const char *s = *(char *const *)p;
    encode_string(e, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
    break;
  }
  case K_BYTES:
    encode_bytes(e, p);
    break;
  case K_MESSAGE:
    encode_message(e, f->descriptor, *(ProtobufCMessage *const *)p);
    break;
  }
}

static void encode_array(encoder *e, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  const char *elems = *(char *const *)((const char *)m + f->offset);
  size_t size = kind_size(kind_of(f->type));
  if (!enter_out(e))
    return;
  put_char(e, '[');
  for (size_t i = 0; elems != NULL && i < n && e->rc == AF_OK; i++) {
    size_t old = path_index(&e->path, i);
    if (i > 0)
      put_char(e, ',');
    encode_scalar(e, f, elems + i * size);
    path_pop(&e->path, old);
  }
  put_char(e, ']');
  e->depth--;
}

/* JSON keys are strings: integer and bool keys are written as their text in quotes. */
static void encode_entry(encoder *e, const ProtobufCMessage *entry) {
  const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
  const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
  const char *key = (const char *)entry + kf->offset;
  int quote = kf->type != PROTOBUF_C_TYPE_STRING;
  if (quote)
    put_char(e, '"');
  encode_scalar(e, kf, key);
  if (quote)
    put_char(e, '"');
  put_char(e, ':');
  encode_scalar(e, vf, (const char *)entry + vf->offset);
}

static void encode_map(encoder *e, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  ProtobufCMessage *const *items = *(ProtobufCMessage * *const *)((const char *)m + f->offset);
  int first = 1;
  if (!enter_out(e))
    return;
  put_char(e, '{');
  for (size_t i = 0; items != NULL && i < n && e->rc == AF_OK; i++) {
    if (items[i] == NULL)
      continue;
    size_t old = path_index(&e->path, i);
    if (!first)
      put_char(e, ',');
    first = 0;
    encode_entry(e, items[i]);
    path_pop(&e->path, old);
  }
  put_char(e, '}');
  e->depth--;
}

static int is_default(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (kind_of(f->type)) {
  case K_INT32:
  case K_UINT32:
    return *(const uint32_t *)p == 0;
  case K_INT64:
  case K_UINT64:
    return *(const uint64_t *)p == 0;
  case K_BOOL:
    return *(const protobuf_c_boolean *)p == 0;
  case K_FLOAT:
    return *(const float *)p == 0;
  case K_DOUBLE:
    return *(const double *)p == 0;
  case K_ENUM:
    return *(const int *)p == 0;
  case K_STRING: {
    const char *s = *(char *const *)p;
    return s == NULL || s[0] == '\0';
  }
  case K_BYTES:
    return ((const ProtobufCBinaryData *)p)->len == 0;
  case K_MESSAGE:
    return *(ProtobufCMessage *const *)p == NULL;
  }
  return 1;
}

static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)m;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
  switch (f->label) {
  case PROTOBUF_C_LABEL_REPEATED:
    return *(const size_t *)(base + f->quantifier_offset) > 0;
  case PROTOBUF_C_LABEL_REQUIRED:
    return 1;
  case PROTOBUF_C_LABEL_OPTIONAL:
    if (f->quantifier_offset != 0)
      return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    /* strings and messages: present unless unset or the default protobuf-c points at */
    return *(void *const *)(base + f->offset) != NULL &&
           *(void *const *)(base + f->offset) != f->default_value;
  case PROTOBUF_C_LABEL_NONE:
    break;
  }
  return !is_default(f, base + f->offset);
}

static void encode_member(encoder *e, const ProtobufCMessage *m,
                          const ProtobufCFieldDescriptor *f) {
  char name[NAME_CAP];
  size_t n = af_bridge_member_name(f->name, name, sizeof name);
  size_t old = path_member(&e->path, name);
  put_char(e, '"');
  put(e, name, n < sizeof name ? n : sizeof name - 1);
  put(e, "\":", 2);
  if (f->label != PROTOBUF_C_LABEL_REPEATED)
    encode_scalar(e, f, (const char *)m + f->offset);
  else if (is_map(f))
    encode_map(e, m, f);
  else
    encode_array(e, m, f);
  path_pop(&e->path, old);
}

static void encode_fields(encoder *e, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  int first = 1;
  if (!enter_out(e))
    return;
  put_char(e, '{');
  for (unsigned i = 0; i < desc->n_fields && e->rc == AF_OK; i++) {
    if (!is_present(m, &desc->fields[i]))
      continue;
    if (!first)
      put_char(e, ',');
    first = 0;
    encode_member(e, m, &desc->fields[i]);
  }
  put_char(e, '}');
  e->depth--;
}

/* ---- writing: well-known types ---- */

/* Epoch seconds: an integer, or up to 9 fraction digits without trailing zeros. */
static void encode_timestamp(encoder *e, const ProtobufCMessage *m) {
  int64_t s = *(const int64_t *)((const char *)m + field_named(m->descriptor, "seconds")->offset);
  int32_t ns = *(const int32_t *)((const char *)m + field_named(m->descriptor, "nanos")->offset);
  char b[48];
  int n;
  if (ns < 0 || ns > 999999999) {
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response member %s is a Timestamp with nanos %" PRId32
                         ", outside 0 to 999999999",
                         e->path.text, ns));
    return;
  }
  if (ns != 0 && s < 0) { /* s + ns/1e9 = -((-s - 1) + (1e9 - ns)/1e9) */
    b[0] = '-';
    n = 1 + format_i64(b + 1, -(s + 1));
    ns = 1000000000 - ns;
  } else {
    n = format_i64(b, s);
  }
  if (ns != 0) {
    b[n++] = '.';
    for (int32_t div = 100000000; div > 0 && ns != 0; div /= 10) { /* up to 9, no trailing 0s */
      b[n++] = (char)('0' + ns / div);
      ns %= div;
    }
  }
  put_number(e, b, n);
}

static void encode_any(encoder *e, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  uint32_t which = *(const uint32_t *)((const char *)m + desc->fields[0].quantifier_offset);
  const ProtobufCFieldDescriptor *f =
      which != 0 ? protobuf_c_message_descriptor_get_field(desc, which) : NULL;
  if (f == NULL || f->type == PROTOBUF_C_TYPE_ENUM) /* unset, or null_value */
    put_str(e, "null");
  else
    encode_scalar(e, f, (const char *)m + f->offset);
}

/* A NULL message (an unset oneof member, a hole in a repeated field) is written as the
 * message's default. */
static void encode_message(encoder *e, const ProtobufCMessageDescriptor *desc,
                           const ProtobufCMessage *m) {
  if (m == NULL)
    m = new_message(e->arena, desc);
  if (m == NULL) {
    fail_oom(e);
    return;
  }
  switch (wkt_of(desc)) {
  case WKT_TIMESTAMP:
    encode_timestamp(e, m);
    break;
  case WKT_STRUCT:
    encode_map(e, m, field_named(desc, "fields"));
    break;
  case WKT_LIST:
    encode_array(e, m, field_named(desc, "values"));
    break;
  case WKT_VALUE:
    encode_any(e, m);
    break;
  case WKT_NONE:
    encode_fields(e, m);
    break;
  }
}

af_err af_bridge_message_to_json(const ProtobufCMessage *msg, af_arena *arena, char **out,
                                 size_t *len, af_error *err) {
  if (msg == NULL || arena == NULL || out == NULL || len == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "JSON encoding was called without a message");
  *out = NULL;
  *len = 0;
  encoder e = {.arena = arena, .err = err};
  encode_message(&e, msg->descriptor, msg);
  if (e.rc != AF_OK || !reserve(&e, 0))
    return e.rc;
  e.buf[e.len] = '\0';
  *out = e.buf;
  *len = e.len;
  return AF_OK;
}
