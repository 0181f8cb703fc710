#include "client/ctljson.h"

#include "common/json.h"
#include "google/protobuf/timestamp.pb.h"

#include <ctype.h>
#include <math.h>
#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN 512
#define MSG_PREFIX "appflow_v1_"

/* Which shapes the fields of a message have: a model structure's members, or a map entry's
 * key (field 1) and value (field 2). */
typedef struct view {
  const af_model_struct *ms;
  const af_model_shape *key, *value;
} view;

/* A callback field bound to the codec: what its encode callback writes (in), or what its
 * decode callback collected (out). */
typedef struct binding {
  struct binding *next;
  af_ctl_codec *k;
  const af_model_shape *shape;
  json_t *in;  /* a reference of our own */
  json_t *out; /* ours */
  char path[PATH_LEN];
} binding;

struct af_ctl_codec {
  binding *bindings;
  af_ctl_status status;
  char error[1024];
};

/* ---- the nanopb message index ---- */

const af_ctl_message *af_ctl_message_of(const pb_msgdesc_t *desc) {
  for (size_t i = 0; i < af_ctl_message_count; i++) {
    if (af_ctl_messages[i].desc == desc)
      return &af_ctl_messages[i];
  }
  return NULL;
}

const af_ctl_message *af_ctl_message_for(const af_model_struct *ms) {
  size_t n = strlen(MSG_PREFIX);
  for (size_t i = 0; i < af_ctl_message_count; i++) {
    const char *name = af_ctl_messages[i].name;
    if (strncmp(name, MSG_PREFIX, n) == 0 && strcmp(name + n, ms->name) == 0)
      return &af_ctl_messages[i];
  }
  return NULL;
}

/* ---- the codec ---- */

af_ctl_codec *af_ctl_codec_new(void) { return calloc(1, sizeof(af_ctl_codec)); }

void af_ctl_codec_free(af_ctl_codec *k) {
  if (k == NULL)
    return;
  while (k->bindings != NULL) {
    binding *b = k->bindings;
    k->bindings = b->next;
    json_decref(b->in);
    json_decref(b->out);
    free(b);
  }
  free(k);
}

const char *af_ctl_codec_error(const af_ctl_codec *k) { return k->error; }
af_ctl_status af_ctl_codec_status(const af_ctl_codec *k) { return k->status; }

static void reset(af_ctl_codec *k) {
  k->status = AF_CTL_OK;
  k->error[0] = '\0';
}

/* Records the first error of a call; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(af_ctl_codec *k, af_ctl_status st,
                                                      const char *fmt, ...) {
  if (k->status != AF_CTL_OK)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->error, sizeof k->error, fmt, ap);
  va_end(ap);
  k->status = st;
  return -1;
}

static int no_memory(af_ctl_codec *k) { return fail(k, AF_CTL_FAILURE, "out of memory"); }

static binding *bind(af_ctl_codec *k, const char *path, const af_model_shape *shape) {
  binding *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->k = k;
  b->shape = shape;
  snprintf(b->path, sizeof b->path, "%s", path);
  b->next = k->bindings;
  k->bindings = b;
  return b;
}

static void join(char *dst, const char *path, const char *name) {
  snprintf(dst, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", name);
}

#if defined(__GNUC__) && !defined(__clang__) /* clang has no -Wformat-truncation */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation" /* cut short on purpose */
#endif
static void join_index(char *dst, const char *path, size_t i) {
  snprintf(dst, PATH_LEN, "%s[%zu]", path, i);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static const af_model_shape *shape_of(const view *v, int number, const char **name) {
  if (v->ms == NULL) {
    *name = number == 1 ? "key" : "value";
    return number == 1 ? v->key : number == 2 ? v->value : NULL;
  }
  for (size_t i = 0; i < v->ms->n_members; i++) {
    if (v->ms->members[i].number == number) {
      *name = v->ms->members[i].name;
      return v->ms->members[i].shape;
    }
  }
  return NULL;
}

/* The view of a submessage holding a value of shape: a structure, a list wrapper, an entry. */
static view view_of(const af_model_shape *shape) {
  if (shape->type == AF_MODEL_MAP)
    return (view){NULL, shape->key, shape->member};
  return (view){shape->structure, NULL, NULL};
}

static void *new_message(af_ctl_codec *k, const pb_msgdesc_t *desc) {
  const af_ctl_message *m = af_ctl_message_of(desc);
  void *msg = m ? calloc(1, m->size) : NULL;
  if (m == NULL)
    fail(k, AF_CTL_FAILURE, "a nanopb message missing from the index");
  else if (msg == NULL)
    no_memory(k);
  return msg;
}

/* ---- JSON to values ---- */

static int want(af_ctl_codec *k, const char *path, const char *what, const json_t *v) {
  return fail(k, AF_CTL_INPUT, "%s: expected %s, not %s", path, what, af_json_kind(v));
}

/* An integer-valued member (also enums by AWS string and booleans) as an int64. */
static int json_int(af_ctl_codec *k, const char *path, const af_model_shape *shape, const json_t *v,
                    int64_t *out) {
  if (shape->type == AF_MODEL_ENUM) {
    if (!json_is_string(v))
      return want(k, path, "a string", v);
    int e = af_model_enum_value(shape, json_string_value(v), json_string_length(v));
    if (e == 0)
      return fail(k, AF_CTL_INPUT, "%s: '%s' is not a value of %s", path, json_string_value(v),
                  shape->name);
    *out = e;
    return 0;
  }
  if (shape->type == AF_MODEL_BOOLEAN) {
    if (!json_is_boolean(v))
      return want(k, path, "a boolean", v);
    *out = json_is_true(v);
    return 0;
  }
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  double d = json_is_real(v) ? json_real_value(v) : NAN;
  if (!(d == floor(d) && fabs(d) < 9.2e18))
    return want(k, path, "an integer", v);
  *out = (int64_t)d;
  return 0;
}

static int json_double(af_ctl_codec *k, const char *path, const json_t *v, double *out) {
  if (!json_is_number(v))
    return want(k, path, "a number", v);
  *out = json_number_value(v);
  return 0;
}

static int store_int(af_ctl_codec *k, const char *path, void *dst, size_t size, int64_t v) {
  switch (size) {
  case 1:
    *(uint8_t *)dst = (uint8_t)v;
    return 0;
  case 2:
    *(uint16_t *)dst = (uint16_t)v;
    return 0;
  case 4:
    if (v < INT32_MIN || v > UINT32_MAX)
      return fail(k, AF_CTL_INPUT, "%s: %lld does not fit 32 bits", path, (long long)v);
    *(int32_t *)dst = (int32_t)v;
    return 0;
  case 8:
    *(int64_t *)dst = v;
    return 0;
  default:
    return fail(k, AF_CTL_FAILURE, "%s: an integer of %zu bytes", path, size);
  }
}

static int fill_timestamp(af_ctl_codec *k, const char *path, const json_t *v,
                          google_protobuf_Timestamp *ts) {
  double d = 0; /* json_double sets it; GCC -O3 cannot tell (-Wmaybe-uninitialized) */
  if (json_double(k, path, v, &d) != 0)
    return -1;
  if (!(fabs(d) < 253402300800.0))
    return fail(k, AF_CTL_INPUT, "%s: %g is not a time in epoch seconds", path, d);
  double s = floor(d);
  ts->seconds = (int64_t)s;
  ts->nanos = (int32_t)lround((d - s) * 1e9);
  if (ts->nanos >= 1000000000) {
    ts->seconds++;
    ts->nanos -= 1000000000;
  }
  return 0;
}

static int fill_message(af_ctl_codec *k, const char *path, const view *v, const pb_msgdesc_t *desc,
                        const json_t *obj, void *msg);

/* One value of shape into the nanopb storage dst of a field of type t (data_size size). */
static int fill_value(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                      const pb_field_iter_t *it, void *dst, const json_t *val) {
  pb_type_t lt = PB_LTYPE(it->type);
  int64_t i;
  double d = 0; /* json_double sets it; GCC -O3 cannot tell (-Wmaybe-uninitialized) */
  if (lt == PB_LTYPE_STRING) {
    if (!json_is_string(val))
      return want(k, path, "a string", val);
    size_t n = json_string_length(val);
    if (n + 1 > it->data_size)
      return fail(k, AF_CTL_INPUT, "%s is %zu bytes long, over its limit of %u", path, n,
                  (unsigned)it->data_size - 1);
    memcpy(dst, json_string_value(val), n + 1);
    return 0;
  }
  if (lt == PB_LTYPE_BOOL) {
    if (!json_is_boolean(val))
      return want(k, path, "a boolean", val);
    *(bool *)dst = json_is_true(val);
    return 0;
  }
  if (PB_LTYPE_IS_SUBMSG(lt)) {
    if (shape->type == AF_MODEL_TIMESTAMP && it->submsg_desc == google_protobuf_Timestamp_fields)
      return fill_timestamp(k, path, val, dst);
    view sv = view_of(shape);
    if (shape->type == AF_MODEL_LIST && sv.ms != NULL) { /* a list wrapper: {"items": val} */
      json_t *w = json_pack("{s:O}", "items", val);
      int rc = w ? fill_message(k, path, &sv, it->submsg_desc, w, dst) : no_memory(k);
      json_decref(w);
      return rc;
    }
    if (shape->type != AF_MODEL_STRUCTURE || sv.ms == NULL)
      return fail(k, AF_CTL_FAILURE, "%s: shape %s is no message", path, shape->name);
    return fill_message(k, path, &sv, it->submsg_desc, val, dst);
  }
  if ((lt == PB_LTYPE_FIXED32 || lt == PB_LTYPE_FIXED64) && shape->type == AF_MODEL_DOUBLE) {
    if (json_double(k, path, val, &d) != 0)
      return -1;
    if (lt == PB_LTYPE_FIXED32)
      *(float *)dst = (float)d;
    else
      *(double *)dst = d;
    return 0;
  }
  if (lt == PB_LTYPE_VARINT || lt == PB_LTYPE_UVARINT || lt == PB_LTYPE_SVARINT ||
      lt == PB_LTYPE_FIXED32 || lt == PB_LTYPE_FIXED64) {
    if (json_int(k, path, shape, val, &i) != 0)
      return -1;
    return store_int(k, path, dst, it->data_size, i);
  }
  return fail(k, AF_CTL_FAILURE, "%s: nanopb type %u is not supported", path, (unsigned)lt);
}

static bool encode_callback(pb_ostream_t *stream, const pb_field_t *field, void *const *arg);

static int fill_entries(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                        const pb_field_iter_t *it, const json_t *val);

static int check_count(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                       const pb_field_iter_t *it, const json_t *val) {
  bool map = shape->type == AF_MODEL_MAP;
  if (map ? !json_is_object(val) : !json_is_array(val))
    return want(k, path, map ? "an object" : "an array", val);
  size_t n = map ? json_object_size(val) : json_array_size(val);
  if (n > it->array_size)
    return fail(k, AF_CTL_INPUT, "%s has %zu entries, over its limit of %u", path, n,
                (unsigned)it->array_size);
  *(pb_size_t *)it->pSize = (pb_size_t)n;
  return 0;
}

/* val into the field at it: in place for static fields, bound to the codec for callbacks. */
static int fill_field(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                      const pb_field_iter_t *it, const json_t *val) {
  if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
    binding *b = bind(k, path, shape);
    if (b == NULL)
      return no_memory(k);
    b->in = json_incref((json_t *)val);
    pb_callback_t *cb = it->pData;
    cb->funcs.encode = encode_callback;
    cb->arg = b;
    return 0;
  }
  if (PB_ATYPE(it->type) != PB_ATYPE_STATIC)
    return fail(k, AF_CTL_FAILURE, "%s: pointer fields are not supported", path);
  if (PB_HTYPE(it->type) != PB_HTYPE_REPEATED) {
    if (fill_value(k, path, shape, it, it->pData, val) != 0)
      return -1;
    if (it->pSize != NULL && PB_HTYPE(it->type) == PB_HTYPE_OPTIONAL)
      *(bool *)it->pSize = true;
    return 0;
  }
  if (shape->type == AF_MODEL_MAP)
    return fill_entries(k, path, shape, it, val);
  if (shape->type != AF_MODEL_LIST || check_count(k, path, shape, it, val) != 0)
    return k->status ? -1 : fail(k, AF_CTL_FAILURE, "%s: a repeated %s", path, shape->name);
  char sub[PATH_LEN];
  for (size_t i = 0; i < json_array_size(val); i++) {
    join_index(sub, path, i);
    void *dst = (char *)it->pField + i * it->data_size;
    if (fill_value(k, sub, shape->member, it, dst, json_array_get(val, i)) != 0)
      return -1;
  }
  return 0;
}

/* The member number of msg (a struct of desc) from val. */
static int fill_number(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                       const pb_msgdesc_t *desc, void *msg, int number, const json_t *val) {
  pb_field_iter_t it;
  if (!pb_field_iter_begin(&it, desc, msg) || !pb_field_iter_find(&it, (uint32_t)number))
    return fail(k, AF_CTL_FAILURE, "%s: no field %d in the nanopb message", path, number);
  return fill_field(k, path, shape, &it, val);
}

/* A map entry message (key = 1, value = 2) from one member of a JSON object. */
static int fill_entry(af_ctl_codec *k, const char *path, const af_model_shape *map,
                      const pb_msgdesc_t *desc, void *entry, const char *key, const json_t *val) {
  json_t *jkey = json_string(key);
  if (jkey == NULL)
    return no_memory(k);
  char sub[PATH_LEN];
  snprintf(sub, sizeof sub, "%s.%s", path, key);
  int rc = fill_number(k, sub, map->key, desc, entry, 1, jkey);
  if (rc == 0)
    rc = fill_number(k, sub, map->member, desc, entry, 2, val);
  json_decref(jkey);
  return rc;
}

static int fill_entries(af_ctl_codec *k, const char *path, const af_model_shape *shape,
                        const pb_field_iter_t *it, const json_t *val) {
  if (check_count(k, path, shape, it, val) != 0)
    return -1;
  size_t i = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)val, key, v) {
    void *entry = (char *)it->pField + i++ * it->data_size;
    if (fill_entry(k, path, shape, it->submsg_desc, entry, key, v) != 0)
      return -1;
  }
  return 0;
}

static int fill_message(af_ctl_codec *k, const char *path, const view *v, const pb_msgdesc_t *desc,
                        const json_t *obj, void *msg) {
  if (!json_is_object(obj))
    return want(k, path[0] ? path : v->ms->name, "an object", obj);
  const char *key;
  json_t *val;
  char sub[PATH_LEN];
  json_object_foreach((json_t *)obj, key, val) {
    join(sub, path, key);
    const af_model_member *m = af_model_member_named(v->ms, key);
    if (m == NULL)
      return fail(k, AF_CTL_INPUT, "%s: unknown member of %s", sub, v->ms->name);
    if (json_is_null(val))
      continue;
    if (fill_number(k, sub, m->shape, desc, msg, m->number, val) != 0)
      return -1;
  }
  return 0;
}

int af_ctl_fill(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m,
                const json_t *obj, void *msg) {
  reset(k);
  view v = {ms, NULL, NULL};
  return fill_message(k, "", &v, m->desc, obj, msg);
}

/* ---- encode callbacks ---- */

/* A submessage of field from val (of shape): a struct made for it, filled, written. */
static bool encode_submessage(pb_ostream_t *stream, const pb_field_t *field, const binding *b,
                              const char *path, const af_model_shape *shape, const json_t *val,
                              const char *key) {
  af_ctl_codec *k = b->k;
  void *msg = new_message(k, field->submsg_desc);
  if (msg == NULL)
    return false;
  int rc;
  if (key != NULL) {
    rc = fill_entry(k, path, shape, field->submsg_desc, msg, key, val);
  } else {
    pb_field_iter_t it = *field; /* fill_value reads the type and submessage of the field */
    rc = fill_value(k, path, shape, &it, msg, val);
  }
  bool ok = rc == 0 && pb_encode_tag_for_field(stream, field) &&
            pb_encode_submessage(stream, field->submsg_desc, msg);
  free(msg);
  return ok;
}

static bool encode_one(pb_ostream_t *stream, const pb_field_t *field, const binding *b,
                       const char *path, const af_model_shape *shape, const json_t *val) {
  af_ctl_codec *k = b->k;
  pb_type_t lt = PB_LTYPE(field->type);
  int64_t i;
  double d;
  if (PB_LTYPE_IS_SUBMSG(lt))
    return encode_submessage(stream, field, b, path, shape, val, NULL);
  if (lt == PB_LTYPE_STRING || lt == PB_LTYPE_BYTES) {
    if (!json_is_string(val))
      return want(k, path, "a string", val), false;
    return pb_encode_tag_for_field(stream, field) &&
           pb_encode_string(stream, (const pb_byte_t *)json_string_value(val),
                            json_string_length(val));
  }
  if (shape->type == AF_MODEL_DOUBLE && (lt == PB_LTYPE_FIXED32 || lt == PB_LTYPE_FIXED64)) {
    if (json_double(k, path, val, &d) != 0)
      return false;
    float f = (float)d;
    return pb_encode_tag_for_field(stream, field) &&
           (lt == PB_LTYPE_FIXED32 ? pb_encode_fixed32(stream, &f) : pb_encode_fixed64(stream, &d));
  }
  if (json_int(k, path, shape, val, &i) != 0 || !pb_encode_tag_for_field(stream, field))
    return false;
  if (lt == PB_LTYPE_SVARINT)
    return pb_encode_svarint(stream, i);
  if (lt == PB_LTYPE_FIXED32) {
    int32_t v32 = (int32_t)i;
    return pb_encode_fixed32(stream, &v32);
  }
  if (lt == PB_LTYPE_FIXED64)
    return pb_encode_fixed64(stream, &i);
  return pb_encode_varint(stream, (uint64_t)i);
}

static bool encode_callback(pb_ostream_t *stream, const pb_field_t *field, void *const *arg) {
  const binding *b = *arg;
  const af_model_shape *shape = b->shape;
  const json_t *val = b->in;
  char sub[PATH_LEN];
  if (PB_HTYPE(field->type) != PB_HTYPE_REPEATED)
    return encode_one(stream, field, b, b->path, shape, val);
  if (shape->type == AF_MODEL_MAP) {
    if (!json_is_object(val))
      return want(b->k, b->path, "an object", val), false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)val, key, v) {
      if (!encode_submessage(stream, field, b, b->path, shape, v, key))
        return false;
    }
    return true;
  }
  if (!json_is_array(val))
    return want(b->k, b->path, "an array", val), false;
  const af_model_shape *elem = shape->type == AF_MODEL_LIST ? shape->member : shape;
  for (size_t i = 0; i < json_array_size(val); i++) {
    join_index(sub, b->path, i);
    if (!encode_one(stream, field, b, sub, elem, json_array_get(val, i)))
      return false;
  }
  return true;
}

/* ---- decoding ---- */

static bool decode_callback(pb_istream_t *stream, const pb_field_t *field, void **arg);

static int prepare_message(af_ctl_codec *k, const view *v, const pb_msgdesc_t *desc, void *msg);

/* Binds a callback field, or prepares every element of a static submessage field. */
static int prepare_field(af_ctl_codec *k, const af_model_shape *shape, const pb_field_iter_t *it) {
  if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
    binding *b = bind(k, "", shape);
    if (b == NULL)
      return no_memory(k);
    pb_callback_t *cb = it->pData;
    cb->funcs.decode = decode_callback;
    cb->arg = b;
    return 0;
  }
  if (!PB_LTYPE_IS_SUBMSG(it->type) || shape->type == AF_MODEL_TIMESTAMP)
    return 0;
  const af_model_shape *elem = shape;
  if (PB_HTYPE(it->type) == PB_HTYPE_REPEATED && shape->type == AF_MODEL_LIST)
    elem = shape->member;
  if (elem->type == AF_MODEL_TIMESTAMP)
    return 0;
  view sv = view_of(elem);
  size_t n = PB_HTYPE(it->type) == PB_HTYPE_REPEATED ? it->array_size : 1;
  for (size_t i = 0; i < n; i++) {
    if (prepare_message(k, &sv, it->submsg_desc, (char *)it->pField + i * it->data_size) != 0)
      return -1;
  }
  return 0;
}

static int prepare_message(af_ctl_codec *k, const view *v, const pb_msgdesc_t *desc, void *msg) {
  if (v->ms == NULL && v->key == NULL)
    return fail(k, AF_CTL_FAILURE, "a message without a model structure");
  pb_field_iter_t it;
  if (!pb_field_iter_begin(&it, desc, msg))
    return 0;
  do {
    const char *name;
    const af_model_shape *shape = shape_of(v, (int)it.tag, &name);
    if (shape != NULL && prepare_field(k, shape, &it) != 0)
      return -1;
  } while (pb_field_iter_next(&it));
  return 0;
}

int af_ctl_prepare(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m, void *msg) {
  reset(k);
  view v = {ms, NULL, NULL};
  return prepare_message(k, &v, m->desc, msg);
}

static json_t *message_json(af_ctl_codec *k, const view *v, const pb_msgdesc_t *desc,
                            const void *msg);

static json_t *timestamp_json(const google_protobuf_Timestamp *ts) {
  if (ts->nanos == 0)
    return json_integer(ts->seconds);
  return json_real((double)ts->seconds + ts->nanos / 1e9);
}

static json_t *int_json(const af_model_shape *shape, int64_t v) {
  const char *s = shape->type == AF_MODEL_ENUM ? af_model_enum_string(shape, (int)v) : NULL;
  if (s != NULL)
    return json_string(s);
  if (shape->type == AF_MODEL_BOOLEAN)
    return json_boolean(v);
  return json_integer(v);
}

static int64_t load_int(const void *src, size_t size, bool is_signed) {
  switch (size) {
  case 1:
    return is_signed ? (int64_t) * (const int8_t *)src : (int64_t) * (const uint8_t *)src;
  case 2:
    return is_signed ? (int64_t) * (const int16_t *)src : (int64_t) * (const uint16_t *)src;
  case 4:
    return is_signed ? (int64_t) * (const int32_t *)src : (int64_t) * (const uint32_t *)src;
  default:
    return *(const int64_t *)src;
  }
}

static json_t *string_json(af_ctl_codec *k, const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j == NULL)
    fail(k, AF_CTL_FAILURE, "the reply holds a string that is not UTF-8");
  return j;
}

/* A submessage value of shape as JSON: a timestamp, a structure, a list wrapper's items. */
static json_t *submessage_json(af_ctl_codec *k, const af_model_shape *shape,
                               const pb_msgdesc_t *desc, const void *msg) {
  if (shape->type == AF_MODEL_TIMESTAMP && desc == google_protobuf_Timestamp_fields)
    return timestamp_json(msg);
  view sv = view_of(shape);
  if (sv.ms == NULL) {
    fail(k, AF_CTL_FAILURE, "shape %s is no message", shape->name);
    return NULL;
  }
  json_t *o = message_json(k, &sv, desc, msg);
  if (o == NULL || shape->type != AF_MODEL_LIST)
    return o;
  json_t *items = json_incref(json_object_get(o, "items"));
  json_decref(o);
  return items ? items : json_array();
}

/* One static value of shape stored at src for a field like it. */
static json_t *value_json(af_ctl_codec *k, const af_model_shape *shape, const pb_field_iter_t *it,
                          const void *src) {
  pb_type_t lt = PB_LTYPE(it->type);
  if (lt == PB_LTYPE_STRING)
    return string_json(k, src, strlen(src));
  if (lt == PB_LTYPE_BOOL)
    return json_boolean(*(const bool *)src);
  if (PB_LTYPE_IS_SUBMSG(lt))
    return submessage_json(k, shape, it->submsg_desc, src);
  if (shape->type == AF_MODEL_DOUBLE && lt == PB_LTYPE_FIXED32)
    return json_real(*(const float *)src);
  if (shape->type == AF_MODEL_DOUBLE && lt == PB_LTYPE_FIXED64)
    return json_real(*(const double *)src);
  return int_json(shape, load_int(src, it->data_size, lt != PB_LTYPE_UVARINT));
}

static json_t *entries_json(af_ctl_codec *k, const af_model_shape *shape, const pb_field_iter_t *it,
                            size_t n);

/* The field at it as JSON; NULL when it is not present (or on failure, with k's status set). */
static json_t *field_json(af_ctl_codec *k, const af_model_shape *shape, const pb_field_iter_t *it) {
  if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK) {
    const pb_callback_t *cb = it->pData;
    const binding *b = cb->funcs.decode == decode_callback ? cb->arg : NULL;
    return b && b->out ? json_incref(b->out) : NULL;
  }
  if (PB_ATYPE(it->type) != PB_ATYPE_STATIC)
    return NULL;
  if (PB_HTYPE(it->type) != PB_HTYPE_REPEATED) {
    if (it->pSize != NULL && PB_HTYPE(it->type) == PB_HTYPE_OPTIONAL && !*(const bool *)it->pSize)
      return NULL;
    return value_json(k, shape, it, it->pData);
  }
  size_t n = *(const pb_size_t *)it->pSize;
  if (n == 0)
    return NULL;
  if (shape->type == AF_MODEL_MAP)
    return entries_json(k, shape, it, n);
  /* a list's elements; a list wrapper's "items" member is given as its element shape */
  const af_model_shape *elem = shape->type == AF_MODEL_LIST ? shape->member : shape;
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < n; i++) {
    const void *src = (const char *)it->pField + i * it->data_size;
    if (json_array_append_new(a, value_json(k, elem, it, src)) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  return a;
}

/* Sets o[key of entry] = value of entry: a map entry message (key = 1, value = 2). */
static int entry_into(af_ctl_codec *k, const af_model_shape *map, const pb_msgdesc_t *desc,
                      const void *entry, json_t *o) {
  view ev = view_of(map);
  json_t *kv = message_json(k, &ev, desc, entry);
  json_t *key = json_object_get(kv, "key");
  int rc = -1;
  if (kv != NULL && json_is_string(key)) {
    json_t *value = json_object_get(kv, "value");
    rc = json_object_set(o, json_string_value(key), value ? value : json_null());
  }
  json_decref(kv);
  return rc == 0 ? 0 : k->status ? -1 : fail(k, AF_CTL_FAILURE, "a map entry without a key");
}

static json_t *entries_json(af_ctl_codec *k, const af_model_shape *shape, const pb_field_iter_t *it,
                            size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; o != NULL && i < n; i++) {
    const void *entry = (const char *)it->pField + i * it->data_size;
    if (entry_into(k, shape, it->submsg_desc, entry, o) != 0) {
      json_decref(o);
      o = NULL;
    }
  }
  return o;
}

static json_t *message_json(af_ctl_codec *k, const view *v, const pb_msgdesc_t *desc,
                            const void *msg) {
  json_t *o = json_object();
  pb_field_iter_t it;
  if (o == NULL || !pb_field_iter_begin_const(&it, desc, msg))
    return o;
  do {
    const char *name;
    const af_model_shape *shape = shape_of(v, (int)it.tag, &name);
    json_t *j = shape ? field_json(k, shape, &it) : NULL;
    if (k->status != AF_CTL_OK || (j != NULL && json_object_set_new(o, name, j) != 0)) {
      json_decref(o);
      return NULL;
    }
  } while (pb_field_iter_next(&it));
  return o;
}

json_t *af_ctl_to_json(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m,
                       const void *msg) {
  view v = {ms, NULL, NULL};
  json_t *o = message_json(k, &v, m->desc, msg);
  if (o == NULL && k->status == AF_CTL_OK)
    no_memory(k);
  return o;
}

/* One element read by a decode callback: a string, a number, or a submessage decoded into a
 * struct made for it (its own callbacks bound first). */
static json_t *decode_one(pb_istream_t *stream, const pb_field_t *field, af_ctl_codec *k,
                          const af_model_shape *shape) {
  pb_type_t lt = PB_LTYPE(field->type);
  if (lt == PB_LTYPE_STRING || lt == PB_LTYPE_BYTES) {
    size_t n = stream->bytes_left;
    char *s = malloc(n + 1);
    json_t *j = NULL;
    if (s == NULL)
      no_memory(k);
    else if (pb_read(stream, (pb_byte_t *)s, n))
      j = string_json(k, s, n);
    free(s);
    return j;
  }
  if (PB_LTYPE_IS_SUBMSG(lt)) {
    void *msg = new_message(k, field->submsg_desc);
    view sv = view_of(shape);
    json_t *j = NULL;
    bool plain = shape->type == AF_MODEL_TIMESTAMP;
    if (msg != NULL && (plain || prepare_message(k, &sv, field->submsg_desc, msg) == 0) &&
        pb_decode(stream, field->submsg_desc, msg))
      j = submessage_json(k, shape, field->submsg_desc, msg);
    free(msg);
    return j;
  }
  uint64_t u = 0;
  int64_t s = 0;
  if (lt == PB_LTYPE_FIXED32) {
    uint32_t v32;
    if (!pb_decode_fixed32(stream, &v32))
      return NULL;
    float f;
    memcpy(&f, &v32, sizeof f);
    return shape->type == AF_MODEL_DOUBLE ? json_real(f) : int_json(shape, (int32_t)v32);
  }
  if (lt == PB_LTYPE_FIXED64) {
    if (!pb_decode_fixed64(stream, &u))
      return NULL;
    double d;
    memcpy(&d, &u, sizeof d);
    return shape->type == AF_MODEL_DOUBLE ? json_real(d) : int_json(shape, (int64_t)u);
  }
  if (lt == PB_LTYPE_SVARINT)
    return pb_decode_svarint(stream, &s) ? int_json(shape, s) : NULL;
  if (!pb_decode_varint(stream, &u))
    return NULL;
  if (lt == PB_LTYPE_BOOL)
    return json_boolean(u != 0);
  return int_json(shape, (int64_t)u);
}

static bool decode_entry(pb_istream_t *stream, const pb_field_t *field, binding *b) {
  af_ctl_codec *k = b->k;
  void *entry = new_message(k, field->submsg_desc);
  view ev = view_of(b->shape);
  bool ok = entry != NULL && prepare_message(k, &ev, field->submsg_desc, entry) == 0 &&
            pb_decode(stream, field->submsg_desc, entry) &&
            (b->out != NULL || (b->out = json_object()) != NULL) &&
            entry_into(k, b->shape, field->submsg_desc, entry, b->out) == 0;
  free(entry);
  return ok;
}

static bool decode_callback(pb_istream_t *stream, const pb_field_t *field, void **arg) {
  binding *b = *arg;
  if (PB_HTYPE(field->type) != PB_HTYPE_REPEATED) {
    json_t *j = decode_one(stream, field, b->k, b->shape);
    if (j == NULL)
      return false;
    json_decref(b->out);
    b->out = j;
    return true;
  }
  if (b->shape->type == AF_MODEL_MAP)
    return decode_entry(stream, field, b);
  if (b->out == NULL && (b->out = json_array()) == NULL)
    return false;
  /* a list's elements; a list wrapper's "items" member is given as its element shape */
  const af_model_shape *elem = b->shape->type == AF_MODEL_LIST ? b->shape->member : b->shape;
  return json_array_append_new(b->out, decode_one(stream, field, b->k, elem)) == 0;
}

/* ---- names ---- */

/* botocore's xform_name: a trailing run of capitals + 's' ("ARNs") becomes "-arns", then a
 * separator goes before each capital that starts a capitalised word ((.)([A-Z][a-z]+)), then
 * between a lower-case letter or digit and a capital (([a-z0-9])([A-Z])), all in lower case. */
static void first_caps(const char *s, char *out) {
  size_t n = strlen(s), o = 0;
  for (size_t i = 0; i < n;) {
    if (i + 2 < n && isupper((unsigned char)s[i + 1]) && islower((unsigned char)s[i + 2])) {
      out[o++] = s[i++];
      out[o++] = '-';
      out[o++] = s[i++];
      while (i < n && islower((unsigned char)s[i]))
        out[o++] = s[i++];
    } else {
      out[o++] = s[i++];
    }
  }
  out[o] = '\0';
}

static void end_caps(const char *s, char *out) {
  size_t n = strlen(s), o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (i + 1 < n && (islower(c) || isdigit(c)) && isupper((unsigned char)s[i + 1])) {
      out[o++] = s[i++];
      out[o++] = '-';
      out[o++] = s[i++];
    } else {
      out[o++] = s[i++];
    }
  }
  out[o] = '\0';
}

int af_ctl_cli_name(const char *name, char *dst, size_t dstsz) {
  char a[256], b[512], c[1024];
  size_t n = strlen(name);
  if (n >= sizeof a / 2 - 1)
    return -1;
  size_t caps = 0; /* a trailing [A-Z]{2,}s: "...ARNs" */
  if (n > 0 && name[n - 1] == 's') {
    while (caps + 1 < n && isupper((unsigned char)name[n - 2 - caps]))
      caps++;
  }
  if (caps >= 2) {
    size_t cut = n - 1 - caps;
    snprintf(a, sizeof a, "%.*s-%s", (int)cut, name, name + cut);
    for (char *p = a + cut; *p; p++)
      *p = (char)tolower((unsigned char)*p);
  } else {
    snprintf(a, sizeof a, "%s", name);
  }
  first_caps(a, b);
  end_caps(b, c);
  if (strlen(c) + 1 > dstsz)
    return -1;
  for (size_t i = 0; c[i] != '\0'; i++)
    dst[i] = (char)tolower((unsigned char)c[i]);
  dst[strlen(c)] = '\0';
  return 0;
}
