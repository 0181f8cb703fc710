#include "common/awsmodel.h"

#include <string.h>

const af_model_member *af_model_member_named(const af_model_struct *s, const char *name) {
  for (size_t i = 0; i < s->n_members; i++) {
    if (strcmp(s->members[i].name, name) == 0)
      return &s->members[i];
  }
  return NULL;
}

const char *af_model_enum_string(const af_model_shape *shape, int v) {
  if (shape->type != AF_MODEL_ENUM || v <= 0 || (size_t)v >= shape->n_enum)
    return NULL;
  return shape->enum_values[v];
}

int af_model_enum_value(const af_model_shape *shape, const char *s, size_t n) {
  for (size_t v = 1; shape->type == AF_MODEL_ENUM && v < shape->n_enum; v++) {
    const char *e = shape->enum_values[v];
    if (e != NULL && strlen(e) == n && memcmp(e, s, n) == 0)
      return (int)v;
  }
  return 0;
}
