/* AWS REST-JSON <-> protobuf-c messages by walking the AWS model's tables alongside the
 * protobuf-c descriptors (the mapping is in transcode.h): the table names members and enum
 * strings, the descriptor says where and how each is stored. Requests are parsed by
 * bridge/jsonread.h into the request's arena;
 * responses are written straight into the arena, with no JSON tree, since every response of the
 * AWS door passes through here.
 *
 * Limits the contract does not spell out:
 * - uint64/fixed64 members above INT64_MAX cannot be read: the reader holds integers as long long
 *   and refuses larger ones as a syntax error. They are written exactly.
 * - An integer member accepts a JSON real without a fraction (1.0, 1e3), as protobuf's own
 *   JSON mapping does.
 * - Timestamp fractions pass through a double: about microsecond precision for current dates.
 *   Timestamps must lie in years 1 to 9999, as google.protobuf.Timestamp defines.
 * - JSON may nest at most MAX_DEPTH levels, counting the body's object as the first; the
 *   writer refuses deeper messages with AF_ERR_INTERNAL_SERVER, so whatever was read can be
 *   written back.
 * - The writer fails with AF_ERR_INTERNAL_SERVER on what JSON cannot hold or the core should
 *   never produce: NaN or infinite numbers, strings that are not UTF-8, Timestamp nanos outside
 *   0..999999999, enum numbers the model has no string for.
 * - Map keys must be proto strings and fields sit outside oneofs, as scripts/gen_model.py
 *   generates them; anything else is a table out of step (AF_ERR_INTERNAL_SERVER).
 * - No libm (appflowd_core does not link it): floor and rounding are done by casts.
 * - Numbers are formatted with snprintf: the process must keep the "C" numeric locale. */
#include "bridge/transcode.h"

#include "appflow_model.h"
#include "bridge/jsonread.h"
#include "common/base64.h"
#include "common/decimal.h"
#include "common/json.h"
#include "common/utf8.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64
#define PATH_CAP 512
#define QUOTE_MAX 256           /* bytes of a bad value quoted in a validation error */
#define HEADER_ROOM 64          /* "N validation errors detected: " before the list */
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

/* One step of a member path: a member, a list element or a map value. */
typedef struct path_step {
  const char *text; /* a member's name, a map's key (borrowed for the step's life) */
  size_t index;     /* a list element's, from 0 */
  enum { STEP_MEMBER, STEP_INDEX, STEP_KEY, STEP_KEY_MEMBER } kind;
} path_step;

/* Every step sits one level deeper than the one before (enter, enter_out), so this many hold
 * any path the depth limit lets through. */
#define PATH_STEPS (MAX_DEPTH + 2)

/* The AWS path of the member being read or written, for error messages. Every member, element
 * and value of a message is walked through it, while only an error reads it: so it is kept as
 * the steps taken, a pointer each, and spelled out (path_text) when an error names it. */
typedef struct member_path {
  size_t n; /* steps taken; past PATH_STEPS (never, see above) they are counted only */
  path_step step[PATH_STEPS];
  char text[PATH_CAP];
} member_path;

typedef struct decoder {
  af_arena *arena;
  af_error *err;
  int depth;
  member_path path;
  size_t ninvalid;    /* bad enum values found, all counted */
  size_t invalid_len; /* bytes of invalid: the errors that fit, whole, "; " between */
  int invalid_full;   /* an error did not fit: none after it is listed either */
  int oom;            /* the arena had no room for invalid */
  char *invalid;      /* AF_ERROR_MESSAGE_MAX bytes, from the arena at the first bad value */
} decoder;

typedef struct encoder {
  af_arena *arena;
  af_error *err;
  af_err rc; /* the first failure; once set, nothing more is written */
  char *buf;
  size_t len, cap;
  int depth;
  member_path path;
  const af_pbc_ready *ready; /* messages whose JSON may be kept (NULL: none) */
  size_t ready_next;         /* the next of them the walk may meet */
} encoder;

/* ---- descriptors and shapes ---- */

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

/* google.protobuf.Timestamp: seconds = 1 and nanos = 2, which protobuf-c, listing a message's
 * fields by number, puts at fields[0] and fields[1]; checked here, so a timestamp's fields are
 * then found by position instead of by name for every timestamp written or read. */
static int is_timestamp(const ProtobufCMessageDescriptor *d) {
  return d->n_fields == 2 && d->fields[0].id == 1 && d->fields[1].id == 2 &&
         strcmp(d->name, "google.protobuf.Timestamp") == 0;
}

#define TS_SECONDS(m) ((m)->descriptor->fields[0].offset)
#define TS_NANOS(m) ((m)->descriptor->fields[1].offset)

/* A map field: protobuf-c gives map<K,V> as a repeated "...Entry" message of key = 1,
 * value = 2; the model says which repeated fields are maps. */
static int is_map(const ProtobufCFieldDescriptor *f, const af_model_shape *sh) {
  return f->label == PROTOBUF_C_LABEL_REPEATED && sh->type == AF_MODEL_MAP &&
         f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor != NULL &&
         ((const ProtobufCMessageDescriptor *)f->descriptor)->n_fields == 2;
}

/* The shape of one element of a repeated member: a list's member; a wrapper's "items" member
 * already has the element's shape. */
static const af_model_shape *element_shape(const af_model_struct *s, const af_model_shape *sh) {
  return !s->list_wrapper && sh->type == AF_MODEL_LIST && sh->member != NULL ? sh->member : sh;
}

/* A structure whose descriptor is d, or NULL: the table and the descriptor must agree. */
static const af_model_struct *structure_of(const af_model_shape *sh,
                                           const ProtobufCMessageDescriptor *d) {
  const af_model_struct *s = sh != NULL ? sh->structure : NULL;
  return s != NULL && s->descriptor == d && s->n_members == d->n_fields ? s : NULL;
}

static ProtobufCMessage *new_message(af_arena *a, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = af_arena_alloc(a, d->sizeof_message);
  if (m != NULL)
    protobuf_c_message_init(d, m);
  return m;
}

static af_err out_of_step(af_error *err, const char *what, const char *name) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "the AWS model's table and the message disagree at %s %s", what, name);
}

/* ---- member paths ---- */

static size_t path_push(member_path *p, path_step step) {
  if (p->n < PATH_STEPS)
    p->step[p->n] = step;
  return p->n++;
}

static size_t path_member(member_path *p, const char *name) {
  return path_push(p, (path_step){name, 0, STEP_MEMBER});
}

static size_t path_index(member_path *p, size_t i) {
  return path_push(p, (path_step){NULL, i, STEP_INDEX});
}

/* A structure or list value is "connectorConfigurations.S3.member", as the model's checks write
 * it. */
static size_t path_key(member_path *p, const char *key, const af_model_shape *value) {
  int member = value->type == AF_MODEL_STRUCTURE || value->type == AF_MODEL_LIST;
  return path_push(p, (path_step){key, 0, member ? STEP_KEY_MEMBER : STEP_KEY});
}

static void path_pop(member_path *p, size_t old) { p->n = old; }

static void text_put(char *text, size_t *len, const char *s, size_t n) {
  size_t room = PATH_CAP - 1 - *len;
  if (n > room)
    n = room;
  memcpy(text + *len, s, n);
  *len += n;
  text[*len] = '\0';
}

/* The path spelled out, as AWS writes it: members joined by '.', a list element as
 * "tasks.1.member" (counting from 1), a map value as "tags.team" (the key escaped and cut at 32
 * bytes); cut at PATH_CAP - 1 bytes. Valid until the next call. */
static const char *path_text(member_path *p) {
  size_t len = 0;
  p->text[0] = '\0';
  for (size_t i = 0; i < p->n && i < PATH_STEPS; i++) {
    const path_step *st = &p->step[i];
    char b[4 * 32 + 1];
    int n;
    switch (st->kind) {
    case STEP_MEMBER:
      if (len > 0)
        text_put(p->text, &len, ".", 1);
      text_put(p->text, &len, st->text, strlen(st->text));
      break;
    case STEP_INDEX:
      n = snprintf(b, sizeof b, ".%zu.member", st->index + 1);
      text_put(p->text, &len, b, (size_t)n);
      break;
    case STEP_KEY:
    case STEP_KEY_MEMBER:
      n = (int)strlen(st->text);
      af_escape(b, sizeof b, st->text, n < 32 ? (size_t)n : 32);
      text_put(p->text, &len, ".", 1);
      text_put(p->text, &len, b, strlen(b));
      if (st->kind == STEP_KEY_MEMBER)
        text_put(p->text, &len, ".member", 7);
      break;
    }
  }
  return p->text;
}

/* ---- reading: errors ---- */

static af_err no_memory(af_error *err) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "the request needs more memory than appflowd allows one request");
}

static af_err wrong_type(decoder *d, const char *want, const af_jv *j) {
  return af_error_set(d->err, AF_ERR_SERIALIZATION, "member %s must be %s, not %s",
                      path_text(&d->path), want, af_jv_kind(j));
}

static const char *number_text(const af_jv *j, char *buf, size_t n) {
  if (j->type == AF_JV_INTEGER)
    snprintf(buf, n, "%lld", j->u.integer);
  else
    snprintf(buf, n, "%.17g", af_jv_number(j));
  return buf;
}

static af_err enter(decoder *d) {
  if (++d->depth <= MAX_DEPTH)
    return AF_OK;
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s nests JSON deeper than %d levels, the most appflowd reads",
                      path_text(&d->path), MAX_DEPTH);
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

static af_err out_of_range(decoder *d, enum kind k, const af_jv *j) {
  long long lo, hi;
  char num[40];
  int_limits(k, &lo, &hi);
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s must be an integer from %lld to %lld, not %s", path_text(&d->path),
                      lo, hi, number_text(j, num, sizeof num));
}

/* A JSON integer, or a real without a fraction inside long long's range. */
static af_err integer_of(decoder *d, enum kind k, const af_jv *j, long long *v) {
  if (j->type == AF_JV_INTEGER) {
    *v = j->u.integer;
    return AF_OK;
  }
  if (j->type != AF_JV_REAL)
    return wrong_type(d, "an integer", j);
  double x = j->u.real;
  if (!(x >= -0x1p63 && x < 0x1p63)) /* every double this large is a whole number */
    return out_of_range(d, k, j);
  *v = (long long)x;
  if ((double)*v != x)
    return af_error_set(d->err, AF_ERR_SERIALIZATION, "member %s must be an integer, not %.17g",
                        path_text(&d->path), x);
  return AF_OK;
}

static af_err decode_integer(decoder *d, enum kind k, const af_jv *j, void *dst) {
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

static af_err decode_bool(decoder *d, const af_jv *j, protobuf_c_boolean *dst) {
  if (!(j->type == AF_JV_TRUE || j->type == AF_JV_FALSE))
    return wrong_type(d, "a boolean", j);
  *dst = j->type == AF_JV_TRUE;
  return AF_OK;
}

static af_err decode_real(decoder *d, enum kind k, const af_jv *j, void *dst) {
  if (!af_jv_is_number(j))
    return wrong_type(d, "a number", j);
  double x = af_jv_number(j);
  if (k == K_DOUBLE) {
    *(double *)dst = x;
    return AF_OK;
  }
  if (x > FLT_MAX || x < -FLT_MAX)
    return af_error_set(d->err, AF_ERR_SERIALIZATION,
                        "member %s must be a number within float range (%g), not %.17g",
                        path_text(&d->path), (double)FLT_MAX, x);
  *(float *)dst = (float)x;
  return AF_OK;
}

static af_err decode_string(decoder *d, const af_jv *j, char **dst) {
  if (j->type != AF_JV_STRING)
    return wrong_type(d, "a string", j);
  *dst = (char *)j->u.string.s; /* the tree's strings are the request arena's already */
  return AF_OK;
}

/* ---- reading: bytes ---- */

static af_err decode_bytes(decoder *d, const af_jv *j, ProtobufCBinaryData *dst) {
  if (j->type != AF_JV_STRING)
    return wrong_type(d, "a base64 string", j);
  size_t n = j->u.string.len;
  uint8_t *out = af_arena_alloc(d->arena, n / 4 * 3 + 1);
  if (out == NULL)
    return no_memory(d->err);
  long len = af_base64_decode(j->u.string.s, n, out, n / 4 * 3 + 1, AF_BASE64_STD);
  if (len < 0)
    return af_error_set(d->err, AF_ERR_SERIALIZATION,
                        "member %s must be base64 (standard alphabet, padded with =), but is not",
                        path_text(&d->path));
  dst->data = out;
  dst->len = (size_t)len;
  return AF_OK;
}

/* ---- reading: enums ---- */

/* "Arithmetic, Filter, Map": the values AWS accepts, in the model's order, truncated to fit. */
static void enum_value_list(const af_model_shape *sh, char *dst, size_t dstsz) {
  size_t n = 0;
  dst[0] = '\0';
  for (size_t i = 0; i < sh->n_enum && n < dstsz; i++) {
    if (sh->enum_values[i] == NULL)
      continue;
    int w = snprintf(dst + n, dstsz - n, "%s%s", n > 0 ? ", " : "", sh->enum_values[i]);
    n += w > 0 ? (size_t)w : 0;
  }
}

/* Notes one bad enum value; reading goes on, so every bad value of the request is reported.
 * An error joins the list only whole and only while every earlier one did. */
static void invalid_enum(decoder *d, const af_model_shape *sh, const char *s, size_t n) {
  char quoted[4 * QUOTE_MAX + 1], list[1024], one[AF_ERROR_MESSAGE_MAX];
  af_escape(quoted, sizeof quoted, s, n < QUOTE_MAX ? n : QUOTE_MAX);
  enum_value_list(sh, list, sizeof list);
  int w = snprintf(one, sizeof one,
                   "Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum "
                   "value set: [%s]",
                   quoted, path_text(&d->path), list);
  size_t len = w > 0 ? (size_t)w : 0, sep = d->ninvalid > 0 ? 2 : 0;
  d->ninvalid++;
  if (d->invalid == NULL && (d->invalid = af_arena_alloc(d->arena, AF_ERROR_MESSAGE_MAX)) == NULL)
    d->oom = 1;
  if (d->oom || d->invalid_full ||
      d->invalid_len + sep + len >= AF_ERROR_MESSAGE_MAX - HEADER_ROOM) {
    d->invalid_full = 1;
    return;
  }
  memcpy(d->invalid + d->invalid_len, "; ", sep);
  memcpy(d->invalid + d->invalid_len + sep, one, len);
  d->invalid_len += sep + len;
  d->invalid[d->invalid_len] = '\0';
}

/* The proto number of AWS string s[0..n); 0 when the shape has no such value. */
static int enum_number(const af_model_shape *sh, const char *s, size_t n) {
  /* first letter, then the rest and the value's end: no strlen of every value (ConnectorType
   * has 30) */
  for (size_t i = 1; n > 0 && i < sh->n_enum; i++) {
    const char *v = sh->enum_values[i];
    if (v != NULL && v[0] == s[0] && strncmp(v, s, n) == 0 && v[n] == '\0')
      return (int)i;
  }
  return 0;
}

static af_err decode_enum(decoder *d, const af_model_shape *sh, const af_jv *j, int *dst) {
  if (j->type != AF_JV_STRING)
    return wrong_type(d, "a string", j);
  const char *s = j->u.string.s;
  size_t n = j->u.string.len;
  *dst = sh->enum_values != NULL ? enum_number(sh, s, n) : 0;
  if (*dst == 0)
    invalid_enum(d, sh, s, n);
  return AF_OK;
}

/* A string whose shape is an enum (the model allows it where proto needs a string). */
static af_err decode_enum_string(decoder *d, const af_model_shape *sh, const af_jv *j, char **dst) {
  af_err rc = decode_string(d, j, dst);
  if (rc == AF_OK && sh->type == AF_MODEL_ENUM && sh->enum_values != NULL &&
      enum_number(sh, j->u.string.s, j->u.string.len) == 0)
    invalid_enum(d, sh, j->u.string.s, j->u.string.len);
  return rc;
}

/* ---- reading: values, lists, maps, structures ---- */

static af_err decode_message(decoder *d, const ProtobufCMessageDescriptor *desc,
                             const af_model_shape *sh, const af_jv *j, ProtobufCMessage **dst);
static af_err decode_struct(decoder *d, const af_model_struct *s, const af_jv *j,
                            ProtobufCMessage *m);

/* One value (a singular member, a list element, a map value) of shape sh into its storage. */
static af_err decode_value(decoder *d, const ProtobufCFieldDescriptor *f, const af_model_shape *sh,
                           const af_jv *j, void *dst) {
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
    return decode_enum(d, sh, j, dst);
  case K_STRING:
    return decode_enum_string(d, sh, j, dst);
  case K_BYTES:
    return decode_bytes(d, j, dst);
  case K_MESSAGE:
    return decode_message(d, f->descriptor, sh, j, dst);
  }
  return AF_OK;
}

static af_err decode_elements(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                              const af_model_shape *elem, const af_jv *j) {
  size_t n = j->u.kids.n, size = kind_size(kind_of(f->type));
  char *elems = n > AF_ARENA_LIMIT / size ? NULL : af_arena_alloc(d->arena, n * size);
  af_err rc = AF_OK;
  if (elems == NULL)
    return no_memory(d->err);
  memset(elems, 0, n * size);
  *(size_t *)((char *)m + f->quantifier_offset) = n;
  *(char **)((char *)m + f->offset) = elems;
  const af_jv *v = j->u.kids.first;
  for (size_t i = 0; rc == AF_OK && i < n; i++, v = v->next) {
    size_t old = path_index(&d->path, i);
    rc = decode_value(d, f, elem, v, elems + i * size);
    path_pop(&d->path, old);
  }
  return rc;
}

static af_err decode_array(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           const af_model_shape *elem, const af_jv *j) {
  if (j->type != AF_JV_ARRAY)
    return wrong_type(d, "an array", j);
  af_err rc = enter(d);
  if (rc == AF_OK && j->u.kids.n > 0)
    rc = decode_elements(d, m, f, elem, j);
  d->depth--;
  return rc;
}

static void mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
    *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

static af_err decode_entry(decoder *d, const ProtobufCMessageDescriptor *entry,
                           const af_model_shape *value_shape, const char *key, const af_jv *value,
                           ProtobufCMessage **dst) {
  ProtobufCMessage *e = new_message(d->arena, entry);
  if (e == NULL)
    return no_memory(d->err);
  *dst = e;
  const ProtobufCFieldDescriptor *kf = &entry->fields[0], *vf = &entry->fields[1];
  char **k = (char **)((char *)e + kf->offset);
  *k = (char *)key; /* the request arena's, as the tree is */
  mark_present(e, vf);
  size_t old = path_key(&d->path, key, value_shape);
  af_err rc = decode_value(d, vf, value_shape, value, (char *)e + vf->offset);
  path_pop(&d->path, old);
  return rc;
}

static af_err decode_entries(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                             const af_model_shape *value_shape, const af_jv *j) {
  size_t n = j->u.kids.n, i = 0;
  ProtobufCMessage **items =
      n > AF_ARENA_LIMIT / sizeof *items ? NULL : af_arena_alloc(d->arena, n * sizeof *items);
  if (items == NULL)
    return no_memory(d->err);
  memset(items, 0, n * sizeof *items);
  *(size_t *)((char *)m + f->quantifier_offset) = n;
  *(ProtobufCMessage ***)((char *)m + f->offset) = items;
  for (const af_jv *value = j->u.kids.first; value != NULL; value = value->next) {
    af_err rc = decode_entry(d, f->descriptor, value_shape, value->key, value, &items[i++]);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

static af_err decode_map(decoder *d, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         const af_model_shape *sh, const af_jv *j) {
  const ProtobufCMessageDescriptor *entry = f->descriptor;
  if (entry->fields[0].type != PROTOBUF_C_TYPE_STRING || sh->member == NULL)
    return out_of_step(d->err, "map", path_text(&d->path));
  if (j->type != AF_JV_OBJECT)
    return wrong_type(d, "an object", j);
  af_err rc = enter(d);
  if (rc == AF_OK && j->u.kids.n > 0)
    rc = decode_entries(d, m, f, sh->member, j);
  d->depth--;
  return rc;
}

static af_err decode_field(decoder *d, const af_model_struct *s, ProtobufCMessage *m,
                           const ProtobufCFieldDescriptor *f, const af_model_shape *sh,
                           const af_jv *j) {
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return out_of_step(d->err, "oneof member", path_text(&d->path));
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return is_map(f, sh) ? decode_map(d, m, f, sh, j)
                         : decode_array(d, m, f, element_shape(s, sh), j);
  mark_present(m, f);
  return decode_value(d, f, sh, j, (char *)m + f->offset);
}

/* Member i of s from its JSON value v. */
static af_err decode_member(decoder *d, const af_model_struct *s, size_t i, ProtobufCMessage *m,
                            const af_jv *v) {
  const af_model_member *mb = &s->members[i];
  size_t old = path_member(&d->path, mb->name);
  af_err rc = decode_field(d, s, m, &m->descriptor->fields[i], mb->shape, v);
  path_pop(&d->path, old);
  return rc;
}

/* The index of the member of s that key names, if the body carries it (a member the URI, the
 * query or a header carries is not read from JSON); SIZE_MAX for any other key. */
static size_t body_member(const af_model_struct *s, const char *key) {
  for (size_t i = 0; i < s->n_members; i++) {
    const af_model_member *mb = &s->members[i];
    /* two letters first (both strings go on past an equal first one, a name is never "") */
    if (mb->name[0] == key[0] && mb->name[1] == key[1] && mb->location == AF_MODEL_BODY &&
        strcmp(mb->name, key) == 0)
      return i;
  }
  return SIZE_MAX;
}

/* A key of the object that names a member, by the member's index. */
typedef struct member_value {
  size_t member;
  const af_jv *value;
} member_value;

#define FEW_MEMBERS 16

/* The object's members into m in the model's order, so the error a request gets names the
 * first faulty member as the model lists them, whatever the keys' order. The keys are looked
 * up among the members rather than every member among the keys: most of a structure's members
 * are absent from a request. Keys are unique (the reader refuses a duplicate); null is an
 * absent member; a key that names no body member is ignored. */
static af_err decode_struct(decoder *d, const af_model_struct *s, const af_jv *j,
                            ProtobufCMessage *m) {
  if (j->type != AF_JV_OBJECT)
    return wrong_type(d, "an object", j);
  af_err rc = enter(d);
  size_t room = j->u.kids.n < s->n_members ? j->u.kids.n : s->n_members, n = 0;
  member_value few[FEW_MEMBERS], *found = few;
  if (rc == AF_OK && room > FEW_MEMBERS &&
      (found = af_arena_alloc(d->arena, room * sizeof *found)) == NULL)
    rc = no_memory(d->err);
  for (const af_jv *v = j->u.kids.first; rc == AF_OK && v != NULL; v = v->next) {
    size_t i = body_member(s, v->key), k = n;
    if (i == SIZE_MAX || v->type == AF_JV_NULL)
      continue;
    for (; k > 0 && found[k - 1].member > i; k--) /* insertion: at most the members' count */
      found[k] = found[k - 1];
    found[k] = (member_value){i, v};
    n++;
  }
  for (size_t k = 0; rc == AF_OK && k < n; k++)
    rc = decode_member(d, s, found[k].member, m, found[k].value);
  d->depth--;
  return rc;
}

/* ---- reading: timestamps ---- */

static af_err timestamp_range(decoder *d, const af_jv *j) {
  char num[40];
  return af_error_set(d->err, AF_ERR_SERIALIZATION,
                      "member %s must be epoch seconds from %lld to %lld, not %s",
                      path_text(&d->path), TS_MIN, TS_MAX, number_text(j, num, sizeof num));
}

static af_err decode_timestamp(decoder *d, ProtobufCMessage *m, const af_jv *j) {
  long long secs, nanos = 0;
  if (!af_jv_is_number(j))
    return wrong_type(d, "a number of epoch seconds", j);
  if (j->type == AF_JV_INTEGER) {
    secs = j->u.integer;
  } else {
    double x = j->u.real;
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
  *(int64_t *)((char *)m + TS_SECONDS(m)) = secs;
  *(int32_t *)((char *)m + TS_NANOS(m)) = (int32_t)nanos;
  return AF_OK;
}

/* A message member: a timestamp, a list that is a map's value (its wrapper), or a structure. */
static af_err decode_message(decoder *d, const ProtobufCMessageDescriptor *desc,
                             const af_model_shape *sh, const af_jv *j, ProtobufCMessage **dst) {
  int timestamp = is_timestamp(desc);
  const af_model_struct *s = timestamp ? NULL : structure_of(sh, desc);
  if (!timestamp && s == NULL)
    return out_of_step(d->err, "member", path_text(&d->path));
  ProtobufCMessage *m = new_message(d->arena, desc);
  if (m == NULL)
    return no_memory(d->err);
  *dst = m;
  if (s == NULL)
    return decode_timestamp(d, m, j);
  if (s->list_wrapper)
    return decode_field(d, s, m, &desc->fields[0], s->members[0].shape, j);
  return decode_struct(d, s, j, m);
}

/* ---- reading: the body ---- */

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
      return 0;
  return 1;
}

static af_err syntax_error(const af_json_error *je, af_error *err) {
  if (je->out_of_memory)
    return no_memory(err);
  return af_error_set(err, AF_ERR_SERIALIZATION,
                      "the request body is not valid JSON: %s at line %d column %d", je->text,
                      je->line, je->column);
}

/* body[0..len) read (in place when own, which is body, may be rewritten). */
static af_err parse_body(const char *body, char *own, size_t len, af_arena *arena,
                         const af_jv **root, af_error *err) {
  af_json_error je;
  if (body == NULL || is_blank(body, len)) {
    body = "{}";
    own = NULL;
    len = 2;
  }
  *root = own != NULL ? af_json_read_in_place(own, len, arena, &je)
                      : af_json_read(body, len, arena, &je);
  return *root != NULL ? AF_OK : syntax_error(&je, err);
}

static int struct_ok(const af_model_struct *s) {
  return s != NULL && s->descriptor != NULL && s->n_members == s->descriptor->n_fields;
}

/* The decoder's state is on the stack; the collected errors' text (large, and rarely needed)
 * is taken from the arena at the first bad value. Only the fields read before they are set are
 * initialised: the path's steps and text are written before they are read. */
static af_err decode_body(const af_model_struct *shape, const af_jv *root, af_arena *arena,
                          ProtobufCMessage **out, af_error *err) {
  decoder dec;
  decoder *d = &dec;
  ProtobufCMessage *m = new_message(arena, shape->descriptor);
  if (m == NULL)
    return no_memory(err);
  d->arena = arena;
  d->err = err;
  d->depth = 0;
  d->path.n = 0;
  d->ninvalid = d->invalid_len = 0;
  d->invalid_full = d->oom = 0;
  d->invalid = NULL;
  af_err rc = decode_struct(d, shape, root, m);
  if (rc == AF_OK && d->oom)
    return no_memory(err);
  if (rc == AF_OK && d->ninvalid > 0)
    return af_error_set(err, AF_ERR_VALIDATION, "%zu validation error%s detected: %s", d->ninvalid,
                        d->ninvalid == 1 ? "" : "s", d->invalid_len > 0 ? d->invalid : "");
  if (rc == AF_OK)
    *out = m;
  return rc;
}

static af_jv *from_jansson(const json_t *j, af_arena *arena);

/* kid (with its key, NULL in an array) made again and linked at *tail; 0 when out of memory. */
static int link_kid(af_jv *v, af_jv ***tail, const json_t *kid, const char *key, af_arena *arena) {
  af_jv *k = from_jansson(kid, arena);
  if (k == NULL || (key != NULL && (k->key = af_arena_strndup(arena, key, strlen(key))) == NULL))
    return 0;
  **tail = k;
  *tail = &k->next;
  v->u.kids.n++;
  return 1;
}

static af_jv *kids_from_jansson(json_t *j, af_jv *v, af_arena *arena) {
  af_jv **tail = &v->u.kids.first;
  const char *key;
  json_t *kid;
  size_t i;
  if (json_is_array(j)) {
    json_array_foreach(j, i, kid) if (!link_kid(v, &tail, kid, NULL, arena)) return NULL;
  } else {
    json_object_foreach(j, key, kid) if (!link_kid(v, &tail, kid, key, arena)) return NULL;
  }
  return v;
}

/* A tree jansson parsed (the seed file's, the catalog's), made again as the reader makes one,
 * so one decoder reads both; NULL when out of memory. */
static af_jv *from_jansson(const json_t *j, af_arena *arena) {
  af_jv *v = af_arena_alloc(arena, sizeof *v);
  if (v == NULL)
    return NULL;
  memset(v, 0, sizeof *v);
  switch (json_typeof(j)) {
  case JSON_OBJECT:
  case JSON_ARRAY:
    v->type = json_is_object(j) ? AF_JV_OBJECT : AF_JV_ARRAY;
    return kids_from_jansson((json_t *)j, v, arena);
  case JSON_STRING:
    v->type = AF_JV_STRING;
    v->u.string.len = json_string_length(j);
    v->u.string.s = af_arena_strndup(arena, json_string_value(j), v->u.string.len);
    return v->u.string.s != NULL ? v : NULL;
  case JSON_INTEGER:
    v->type = AF_JV_INTEGER;
    v->u.integer = json_integer_value(j);
    return v;
  case JSON_REAL:
    v->type = AF_JV_REAL;
    v->u.real = json_real_value(j);
    return v;
  case JSON_TRUE:
  case JSON_FALSE:
    v->type = json_is_true(j) ? AF_JV_TRUE : AF_JV_FALSE;
    return v;
  case JSON_NULL:
    break;
  }
  v->type = AF_JV_NULL;
  return v;
}

af_err af_bridge_jv_to_message(const af_model_struct *shape, const af_jv *root, af_arena *arena,
                               ProtobufCMessage **out, af_error *err) {
  if (out == NULL || !struct_ok(shape) || arena == NULL || root == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "JSON decoding was called without a target");
  *out = NULL;
  if (root->type != AF_JV_OBJECT)
    return af_error_set(err, AF_ERR_SERIALIZATION, "the request body must be a JSON object, not %s",
                        af_jv_kind(root));
  return decode_body(shape, root, arena, out, err);
}

static af_err json_to_message(const af_model_struct *shape, const char *body, char *own, size_t len,
                              af_arena *arena, ProtobufCMessage **out, af_error *err) {
  if (out == NULL || !struct_ok(shape) || arena == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "JSON decoding was called without a target");
  *out = NULL;
  const af_jv *root;
  af_err rc = parse_body(body, own, len, arena, &root, err);
  return rc == AF_OK ? af_bridge_jv_to_message(shape, root, arena, out, err) : rc;
}

af_err af_bridge_json_to_message(const af_model_struct *shape, const char *body, size_t len,
                                 af_arena *arena, ProtobufCMessage **out, af_error *err) {
  return json_to_message(shape, body, NULL, len, arena, out, err);
}

af_err af_bridge_json_to_message_in_place(const af_model_struct *shape, char *body, size_t len,
                                          af_arena *arena, ProtobufCMessage **out, af_error *err) {
  return json_to_message(shape, body, body, len, arena, out, err);
}

af_err af_bridge_json_tree_to_message(const af_model_struct *shape, json_t *root, af_arena *arena,
                                      ProtobufCMessage **out, af_error *err) {
  const af_jv *tree = root != NULL && arena != NULL ? from_jansson(root, arena) : NULL;
  if (tree == NULL && root != NULL && arena != NULL)
    return no_memory(err);
  return af_bridge_jv_to_message(shape, tree, arena, out, err);
}

/* ---- reading: members bound to the path, query and headers ---- */

static const af_model_member *bound_member(const af_model_struct *s, const af_bridge_binding *b,
                                           size_t *index) {
  for (size_t i = 0; i < s->n_members; i++) {
    const af_model_member *mb = &s->members[i];
    if (mb->location != b->location || mb->location == AF_MODEL_BODY || mb->location_name == NULL ||
        b->name == NULL)
      continue;
    int same = b->location == AF_MODEL_HEADER ? strcasecmp(mb->location_name, b->name) == 0
                                              : strcmp(mb->location_name, b->name) == 0;
    if (same) {
      *index = i;
      return mb;
    }
  }
  return NULL;
}

static af_err bind_member(const af_model_struct *s, ProtobufCMessage *m, const af_bridge_binding *b,
                          af_arena *arena, af_error *err) {
  size_t i = 0;
  const af_model_member *mb = bound_member(s, b, &i);
  const ProtobufCFieldDescriptor *f = mb != NULL ? &m->descriptor->fields[i] : NULL;
  if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                        "%s has no string member at %s to take from the request's path, query or "
                        "headers",
                        s->name, b->name != NULL ? b->name : "(null)");
  char *field = (char *)m + f->offset;
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    *(char **)field = b->nvalues > 0 ? (char *)b->values[0] : NULL;
    return AF_OK;
  }
  char **copy = NULL;
  if (b->nvalues > 0) { /* an array of the message's own: the caller's is const */
    copy = b->nvalues > AF_ARENA_LIMIT / sizeof *copy
               ? NULL
               : af_arena_alloc(arena, b->nvalues * sizeof *copy);
    if (copy == NULL)
      return no_memory(err);
    for (size_t k = 0; k < b->nvalues; k++)
      copy[k] = (char *)b->values[k];
  }
  *(size_t *)((char *)m + f->quantifier_offset) = b->nvalues;
  *(char ***)field = copy;
  return AF_OK;
}

af_err af_bridge_bind_members(const af_model_struct *shape, ProtobufCMessage *msg,
                              const af_bridge_binding *bindings, size_t n, af_arena *arena,
                              af_error *err) {
  if (msg == NULL || arena == NULL || !struct_ok(shape) || msg->descriptor != shape->descriptor ||
      (n > 0 && bindings == NULL))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "member binding was called without a message");
  for (size_t i = 0; i < n; i++) {
    af_err rc = bind_member(shape, msg, &bindings[i], arena, err);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

/* ---- writing: the buffer ---- */

static void fail(encoder *e, af_err rc) {
  if (e->rc == AF_OK)
    e->rc = rc;
  e->cap = e->len; /* so put and put_char find no room and ask reserve, which refuses */
}

static void fail_oom(encoder *e) {
  if (e->rc == AF_OK)
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response needs more memory than appflowd allows one request"));
}

/* Room for n more bytes and a NUL; 0 (with e->rc set) when there is none. The buffer doubles
 * through af_arena_grow, which grows it in place or moves its own chunk, so a long response does
 * not leave each of its smaller copies behind in the arena. */
static int reserve(encoder *e, size_t n) {
  if (e->rc != AF_OK)
    return 0;
  if (e->cap - e->len > n)
    return 1;
  size_t cap = e->cap > 0 ? e->cap : 256;
  while (cap - e->len <= n && cap <= AF_ARENA_LIMIT)
    cap *= 2;
  char *b = cap <= AF_ARENA_LIMIT ? af_arena_grow(e->arena, e->buf, e->cap, cap) : NULL;
  if (b == NULL) {
    fail_oom(e);
    return 0;
  }
  e->buf = b;
  e->cap = cap;
  return 1;
}

/* put and put_char test for room themselves and call reserve only when there is none (or the
 * writer has failed): they run for every piece of every response. */
static void put(encoder *e, const char *s, size_t n) {
  if (e->cap - e->len <= n && !reserve(e, n))
    return;
  memcpy(e->buf + e->len, s, n);
  e->len += n;
}

static void put_str(encoder *e, const char *s) { put(e, s, strlen(s)); }

static void put_char(encoder *e, char c) {
  if (e->cap - e->len <= 1 && !reserve(e, 1))
    return;
  e->buf[e->len++] = c;
}

static void put_number(encoder *e, const char *buf, int n) {
  if (n > 0)
    put(e, buf, (size_t)n);
}

static int enter_out(encoder *e) {
  if (++e->depth <= MAX_DEPTH)
    return 1;
  if (e->rc == AF_OK)
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response member %s nests deeper than %d levels", path_text(&e->path),
                         MAX_DEPTH));
  return 0;
}

/* ---- writing: scalars ---- */

static void encode_real(encoder *e, double x, int digits) {
  char b[40];
  if (!isfinite(x)) {
    if (e->rc == AF_OK)
      fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                           "the response member %s is %s, which JSON cannot hold",
                           path_text(&e->path), isnan(x) ? "NaN" : "infinite"));
    return;
  }
  put_number(e, b, snprintf(b, sizeof b, "%.*g", digits, x));
}

/* The bytes a JSON string cannot hold as they are, or that start a character to check as UTF-8:
 * controls, '"', '\\' and every byte from 0x80. */
static const unsigned char needs_care[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1};

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
      fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                           "the response member %s holds a string that is not UTF-8",
                           path_text(&e->path)));
    return end;
  }
  put(e, p, (size_t)n);
  return p + n;
}

/* Whether any of the 8 bytes in w needs care (needs_care): a byte below 0x20, '"' or '\\' (the
 * usual tests for a zero byte, on w less 0x20 each and on w xor each quote) or from 0x80 (its top
 * bit). The tests are exact for "any", which is all this asks. */
static int word_needs_care(uint64_t w) {
  const uint64_t ones = 0x0101010101010101u;
  uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
  uint64_t t =
      ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | w;
  return (t & (ones * 0x80)) != 0;
}

/* Room is made once for the string as it is and its quotes, the usual case, and plain bytes are
 * copied straight into it, 8 at a time while no byte of the 8 needs care; after a character that
 * needed care, room is made again for the rest. */
static void encode_string(encoder *e, const char *s, size_t n) {
  const char *p = s, *end = s + n;
  if (e->cap - e->len <= n + 2 && !reserve(e, n + 2))
    return;
  e->buf[e->len++] = '"';
  while (p < end) {
    char *o = e->buf + e->len;
    const char *run = p;
    uint64_t w;
    while (end - p >= 8 && (memcpy(&w, p, 8), !word_needs_care(w))) {
      memcpy(o, &w, 8);
      o += 8;
      p += 8;
    }
    while (p < end && !needs_care[(unsigned char)*p])
      *o++ = *p++;
    e->len += (size_t)(p - run);
    if (p == end)
      break;
    p = encode_special(e, p, end);
    if (!reserve(e, (size_t)(end - p) + 1))
      return;
  }
  e->buf[e->len++] = '"';
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

/* The value's string as the generator quoted it (enum_json), written with one copy. */
static void encode_enum(encoder *e, const af_model_shape *sh, int v) {
  const char *s =
      sh->enum_json != NULL && v > 0 && (size_t)v < sh->n_enum ? sh->enum_json[v] : NULL;
  if (s != NULL) {
    put(e, s, sh->enum_json_len[v]);
    return;
  }
  if (e->rc == AF_OK)
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response member %s holds %d, which is no value of enum %s",
                         path_text(&e->path), v, sh->name));
}

/* ---- writing: messages ---- */

static void encode_message(encoder *e, const ProtobufCMessageDescriptor *desc,
                           const af_model_shape *sh, const ProtobufCMessage *m);
static void encode_struct(encoder *e, const af_model_struct *s, const ProtobufCMessage *m,
                          int top_output);

static void encode_value(encoder *e, const ProtobufCFieldDescriptor *f, const af_model_shape *sh,
                         const void *p) {
  char b[32];
  switch (kind_of(f->type)) {
  case K_INT32:
    put_number(e, b, (int)af_decimal_i64(b, *(const int32_t *)p));
    break;
  case K_INT64:
    put_number(e, b, (int)af_decimal_i64(b, *(const int64_t *)p));
    break;
  case K_UINT32:
    put_number(e, b, (int)af_decimal_u64(b, *(const uint32_t *)p));
    break;
  case K_UINT64:
    put_number(e, b, (int)af_decimal_u64(b, *(const uint64_t *)p));
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
    encode_enum(e, sh, *(const int *)p);
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
    encode_message(e, f->descriptor, sh, *(ProtobufCMessage *const *)p);
    break;
  }
}

/* The elements of a long list are alike (a page of flows): once the first of them is written
 * (first bytes), room for the rest is made at once, so the buffer moves once while it is small
 * instead of being copied again at each doubling. The buffer ends as big as doubling would
 * have made it, unless the guess crosses a power of two. Only a guess: when the arena cannot
 * give the room, nothing fails and the buffer grows as it goes. */
#define PRESIZE_MIN_ELEMENTS 8
#define PRESIZE_MIN_BYTES 4096

static void presize(encoder *e, size_t first, size_t rest) {
  if (e->rc != AF_OK || first == 0 || rest > AF_ARENA_LIMIT / 4 / (first + 1))
    return;
  size_t want = (first + 1) * rest, cap = e->cap; /* + 1: the comma before each */
  if (want < PRESIZE_MIN_BYTES || e->cap - e->len > want)
    return;
  while (cap - e->len <= want)
    cap *= 2;
  char *b = af_arena_grow(e->arena, e->buf, e->cap, cap);
  if (b != NULL) {
    e->buf = b;
    e->cap = cap;
  }
}

/* Where m's JSON is kept, when m is the next of e->ready's messages and has such a place;
 * taken (the next call looks at the message after) only when take. */
static _Atomic(af_pbc_text *) *ready_slot(encoder *e, const ProtobufCMessage *m, bool take) {
  const af_pbc_ready *r = e->ready;
  if (r == NULL || e->ready_next >= r->n || r->items[e->ready_next].msg != m)
    return NULL;
  return take ? r->items[e->ready_next++].text : r->items[e->ready_next].text;
}

static _Atomic(af_pbc_text *) *text_slot(encoder *e, const ProtobufCMessage *m) {
  return ready_slot(e, m, true);
}

/* Writes the text kept in slot; false when it holds none yet. */
static bool put_text(encoder *e, _Atomic(af_pbc_text *) *slot) {
  const af_pbc_text *t = atomic_load_explicit(slot, memory_order_acquire);
  if (t == NULL)
    return false;
  put(e, t->data, t->len);
  return true;
}

/* Writes m as the JSON already kept for it, when there is some (a page's entries after their
 * first page): no look at its shape or members. False when there is none. */
static bool put_kept(encoder *e, const ProtobufCMessage *m) {
  _Atomic(af_pbc_text *) *slot = ready_slot(e, m, false);
  if (slot == NULL || !put_text(e, slot))
    return false;
  e->ready_next++;
  return true;
}

static void encode_array(encoder *e, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         const af_model_shape *elem) {
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  const char *elems = *(char *const *)((const char *)m + f->offset);
  size_t size = kind_size(kind_of(f->type));
  if (!enter_out(e))
    return;
  bool messages = kind_of(f->type) == K_MESSAGE;
  put_char(e, '[');
  for (size_t i = 0; elems != NULL && i < n && e->rc == AF_OK; i++) {
    size_t start = e->len;
    if (i > 0)
      put_char(e, ',');
    if (!messages || !put_kept(e, *(ProtobufCMessage *const *)(elems + i * size))) {
      size_t old = path_index(&e->path, i);
      encode_value(e, f, elem, elems + i * size);
      path_pop(&e->path, old);
    }
    if (i == 0 && n >= PRESIZE_MIN_ELEMENTS)
      presize(e, e->len - start, n - 1);
  }
  put_char(e, ']');
  e->depth--;
}

static void encode_entry(encoder *e, const ProtobufCMessage *entry, const af_model_shape *value) {
  const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
  const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
  const char *key = *(char *const *)((const char *)entry + kf->offset);
  key = key != NULL ? key : "";
  size_t old = path_key(&e->path, key, value);
  encode_string(e, key, strlen(key));
  put_char(e, ':');
  encode_value(e, vf, value, (const char *)entry + vf->offset);
  path_pop(&e->path, old);
}

static void encode_map(encoder *e, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       const af_model_shape *sh) {
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  ProtobufCMessage *const *items = *(ProtobufCMessage * *const *)((const char *)m + f->offset);
  int first = 1;
  const ProtobufCMessageDescriptor *entry = f->descriptor;
  if (entry->fields[0].type != PROTOBUF_C_TYPE_STRING || sh->member == NULL) {
    if (e->rc == AF_OK)
      fail(e, out_of_step(e->err, "map", path_text(&e->path)));
    return;
  }
  if (!enter_out(e))
    return;
  put_char(e, '{');
  for (size_t i = 0; items != NULL && i < n && e->rc == AF_OK; i++) {
    if (items[i] == NULL)
      continue;
    if (!first)
      put_char(e, ',');
    first = 0;
    encode_entry(e, items[i], sh->member);
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

/* proto2 presence: a has_ flag, a non-NULL pointer, entries; proto3 (no label): not default. */
static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)m;
  switch (f->label) {
  case PROTOBUF_C_LABEL_REPEATED:
    return *(const size_t *)(base + f->quantifier_offset) > 0;
  case PROTOBUF_C_LABEL_REQUIRED:
    return 1;
  case PROTOBUF_C_LABEL_OPTIONAL:
    if (f->quantifier_offset != 0)
      return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    return *(void *const *)(base + f->offset) != NULL;
  case PROTOBUF_C_LABEL_NONE:
    break;
  }
  return !is_default(f, base + f->offset);
}

static void encode_field(encoder *e, const af_model_struct *s, const ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, const af_model_shape *sh) {
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (e->rc == AF_OK)
      fail(e, out_of_step(e->err, "oneof member", path_text(&e->path)));
  } else if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    encode_value(e, f, sh, (const char *)m + f->offset);
  } else if (is_map(f, sh)) {
    encode_map(e, m, f, sh);
  } else {
    encode_array(e, m, f, element_shape(s, sh));
  }
}

/* Body members only; present ones, and a top-level output's empty maps as {}, and its empty
 * lists as [] when they are required or a page (an output with a nextToken): an empty page is
 * "connectorProfileDetails": [], as AWS answers it, not a missing member. */
static int written(const af_model_member *mb, const ProtobufCMessage *m,
                   const ProtobufCFieldDescriptor *f, int top_output, int paged) {
  if (mb->location != AF_MODEL_BODY)
    return 0;
  if (is_present(m, f))
    return 1;
  return top_output && (is_map(f, mb->shape) ||
                        (f->label == PROTOBUF_C_LABEL_REPEATED && (paged || mb->required)));
}

static void encode_struct(encoder *e, const af_model_struct *s, const ProtobufCMessage *m,
                          int top_output) {
  int first = 1;
  int paged = top_output && af_model_member_named(s, "nextToken") != NULL;
  if (!enter_out(e))
    return;
  put_char(e, '{');
  for (size_t i = 0; i < s->n_members && e->rc == AF_OK; i++) {
    const af_model_member *mb = &s->members[i];
    const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
    if (!written(mb, m, f, top_output, paged))
      continue;
    size_t old = path_member(&e->path, mb->name);
    if (!first)
      put_char(e, ',');
    first = 0;
    put(e, mb->json_key, mb->json_key_len); /* "flowName": as the generator wrote it */
    encode_field(e, s, m, f, mb->shape);
    path_pop(&e->path, old);
  }
  put_char(e, '}');
  e->depth--;
}

/* ---- writing: timestamps ---- */

/* Epoch seconds: an integer, or up to 9 fraction digits without trailing zeros. */
static void encode_timestamp(encoder *e, const ProtobufCMessage *m) {
  int64_t s = *(const int64_t *)((const char *)m + TS_SECONDS(m));
  int32_t ns = *(const int32_t *)((const char *)m + TS_NANOS(m));
  char b[48];
  int n;
  if (ns < 0 || ns > 999999999 || s < TS_MIN || s > TS_MAX) {
    fail(e, af_error_set(e->err, AF_ERR_INTERNAL_SERVER,
                         "the response member %s is a Timestamp (%" PRId64 " s, %" PRId32
                         " ns) outside years 1 to 9999 or nanos 0 to 999999999",
                         path_text(&e->path), s, ns));
    return;
  }
  if (ns != 0 && s < 0) { /* s + ns/1e9 = -((-s - 1) + (1e9 - ns)/1e9) */
    b[0] = '-';
    n = 1 + (int)af_decimal_i64(b + 1, -(s + 1));
    ns = 1000000000 - ns;
  } else {
    n = (int)af_decimal_i64(b, s);
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

/* m (of structure s) as the JSON kept for it; or written, and kept for the writers after (the
 * same message always writes the same text). */
static void encode_kept(encoder *e, _Atomic(af_pbc_text *) *slot, const af_model_struct *s,
                        const ProtobufCMessage *m, int output) {
  if (put_text(e, slot))
    return;
  size_t start = e->len;
  encode_struct(e, s, m, output);
  size_t n = e->len - start;
  af_pbc_text *t;
  if (e->rc != AF_OK || (t = malloc(sizeof *t + n)) == NULL)
    return; /* written, only not kept */
  t->len = n;
  memcpy(t->data, e->buf + start, n);
  af_pbc_text *empty = NULL;
  if (!atomic_compare_exchange_strong_explicit(slot, &empty, t, memory_order_acq_rel,
                                               memory_order_acquire))
    free(t); /* another writer kept the same text first */
}

/* A NULL message (a hole in a list) is written as the message's default. */
static void encode_message(encoder *e, const ProtobufCMessageDescriptor *desc,
                           const af_model_shape *sh, const ProtobufCMessage *m) {
  int timestamp = is_timestamp(desc);
  const af_model_struct *s = timestamp ? NULL : structure_of(sh, desc);
  if (!timestamp && s == NULL) {
    if (e->rc == AF_OK)
      fail(e, out_of_step(e->err, "member", path_text(&e->path)));
    return;
  }
  if (m == NULL)
    m = new_message(e->arena, desc);
  if (m == NULL) {
    fail_oom(e);
    return;
  }
  _Atomic(af_pbc_text *) *kept = NULL;
  if (s == NULL)
    encode_timestamp(e, m);
  else if (s->list_wrapper)
    encode_array(e, m, &desc->fields[0], s->members[0].shape);
  else if ((kept = text_slot(e, m)) != NULL)
    encode_kept(e, kept, s, m, 0);
  else
    encode_struct(e, s, m, 0);
}

af_err af_bridge_message_to_json(const af_model_struct *shape, const ProtobufCMessage *msg,
                                 af_arena *arena, char **out, size_t *len, af_error *err) {
  return af_bridge_message_to_json_kept(shape, msg, NULL, arena, out, len, err);
}

af_err af_bridge_message_to_json_kept(const af_model_struct *shape, const ProtobufCMessage *msg,
                                      const af_pbc_ready *ready, af_arena *arena, char **out,
                                      size_t *len, af_error *err) {
  if (msg == NULL || arena == NULL || out == NULL || len == NULL || !struct_ok(shape))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "JSON encoding was called without a message");
  *out = NULL;
  *len = 0;
  if (msg->descriptor != shape->descriptor)
    return out_of_step(err, "structure", shape->name);
  encoder e; /* set field by field: the path's steps and text are written before they are read */
  e.arena = arena;
  e.err = err;
  e.rc = AF_OK;
  e.buf = NULL;
  e.len = e.cap = 0;
  e.depth = 0;
  e.path.n = 0;
  e.ready = ready;
  e.ready_next = 0;
  _Atomic(af_pbc_text *) *kept = text_slot(&e, msg); /* the whole answer (DescribeFlow's) */
  if (kept != NULL)
    encode_kept(&e, kept, shape, msg, shape->operation_output);
  else
    encode_struct(&e, shape, msg, shape->operation_output);
  if (e.rc != AF_OK || !reserve(&e, 0))
    return e.rc;
  e.buf[e.len] = '\0';
  *out = e.buf;
  *len = e.len;
  return AF_OK;
}
