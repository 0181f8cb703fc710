/* The shape of an AWS service model as tables: what gen/model/appflow_model.c (written by
 * scripts/gen_model.py from model/appflow-2020-08-23.json) holds, so the service validates and
 * the AWS door transcodes from the model itself instead of from lists kept by hand.
 *
 * Every table is generated, static and read-only. A structure's members are in the order of its
 * protobuf-c descriptor's fields (by field number): members[i] describes descriptor->fields[i].
 * Ownership: nothing is allocated. Thread-safety: read-only data, safe from any thread. */
#ifndef AF_COMMON_AWSMODEL_H
#define AF_COMMON_AWSMODEL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef enum af_model_type {
  AF_MODEL_STRING,
  AF_MODEL_ENUM, /* a string with an enum: a proto enum, or a string where proto needs one (keys) */
  AF_MODEL_BOOLEAN,
  AF_MODEL_INTEGER,
  AF_MODEL_LONG,
  AF_MODEL_DOUBLE,
  AF_MODEL_TIMESTAMP,
  AF_MODEL_LIST,
  AF_MODEL_MAP,
  AF_MODEL_STRUCTURE
} af_model_type;

/* Where a request member travels on the AWS REST-JSON wire. */
typedef enum af_model_location {
  AF_MODEL_BODY,
  AF_MODEL_URI,   /* a {label} of the route */
  AF_MODEL_QUERY, /* a query-string parameter */
  AF_MODEL_HEADER
} af_model_location;

typedef struct af_model_struct af_model_struct;

/* One AWS shape and its constraints. min/max bound a string's length in characters, a list's
 * or map's entries, or a number's value. */
typedef struct af_model_shape {
  const char *name;
  af_model_type type;
  unsigned char has_min, has_max, sensitive;
  int pattern; /* index into af_model_pattern_*, or -1 */
  int64_t min, max;
  const struct af_model_shape *member; /* LIST: the element; MAP: the value */
  const struct af_model_shape *key;    /* MAP: the key */
  /* STRUCTURE: its members; LIST used as a map value: the wrapper message of its items */
  const af_model_struct *structure;
  const char *const *enum_values; /* ENUM: AWS strings by proto enum number; [0] and gaps NULL */
  size_t n_enum;
  /* ENUM: the same strings quoted as JSON ("\"OnDemand\""), and their lengths: made by the
   * generator, so a response writes an enum value with one copy. */
  const char *const *enum_json;
  const size_t *enum_json_len;
} af_model_shape;

typedef struct af_model_member {
  const char *name; /* the AWS member name: "flowName", "Scheduled", "s3" */
  /* The name as a JSON object key with its colon, "\"flowName\":", and its length: made by the
   * generator, so a response writes each member's key with one copy. */
  const char *json_key;
  size_t json_key_len;
  int number; /* the proto field number */
  const af_model_shape *shape;
  af_model_location location;
  const char *location_name; /* the label, query parameter or header; NULL in the body */
  unsigned char required, idempotency_token;
} af_model_member;

struct af_model_struct {
  const char *name;
  const ProtobufCMessageDescriptor *descriptor;
  const af_model_member *members; /* n_members == descriptor->n_fields, in its order */
  size_t n_members;
  int list_wrapper; /* a list shape as a map value: one member "items", a JSON array on the wire */
  int operation_output; /* the output structure of some operation (a response's top level) */
};

typedef struct af_model_operation {
  const char *name;   /* "CreateFlow" */
  const char *method; /* "POST" */
  const char *uri;    /* "/create-flow", "/tags/{resourceArn}" */
  const af_model_struct *input, *output;
  const char *const *errors; /* AWS error shapes the operation may return */
  size_t n_errors;
} af_model_operation;

/* The member of s named name (the AWS name), or NULL. */
const af_model_member *af_model_member_named(const af_model_struct *s, const char *name);
/* The AWS string of an enum shape's proto value v, or NULL when v is not one of its values. */
const char *af_model_enum_string(const af_model_shape *shape, int v);
/* The proto value of the AWS string s[0..n) in an enum shape, or 0 when it is none of them. */
int af_model_enum_value(const af_model_shape *shape, const char *s, size_t n);

#endif
