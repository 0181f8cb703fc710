/* google.protobuf.Struct and Value trees for tests (CreateFlow's connector settings and
 * tasks), carved from the arena the including file points build_arena at before building.
 * Header-only, like budget_alloc.h: each test file that needs it includes it. */
#ifndef AF_TESTS_STRUCT_BUILD_H
#define AF_TESTS_STRUCT_BUILD_H

#include "flows/arena.h"
#include "google/protobuf/struct.pb-c.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define BUILD_MAX 16 /* members of one object or list */

static af_arena *build_arena;

/* size zeroed bytes from build_arena; the test fails if it is exhausted. */
static inline void *build_alloc(size_t size) {
  void *p = af_arena_alloc(build_arena, size);
  cr_assert_not_null(p);
  memset(p, 0, size);
  return p;
}

static inline Google__Protobuf__Value *new_value(Google__Protobuf__Value__KindCase kind) {
  Google__Protobuf__Value *v = build_alloc(sizeof *v);
  google__protobuf__value__init(v);
  v->kind_case = kind;
  return v;
}

static inline Google__Protobuf__Value *str(const char *s) {
  Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  v->string_value = (char *)s;
  return v;
}

static inline Google__Protobuf__Value *num(double d) {
  Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
  v->number_value = d;
  return v;
}

static inline Google__Protobuf__Value *boolean(bool b) {
  Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  v->bool_value = b;
  return v;
}

static inline Google__Protobuf__Value *null_value(void) {
  return new_value(GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
}

/* A Struct of (key, Value *) pairs ending with NULL. */
static inline Google__Protobuf__Struct *obj(const char *k, ...) {
  Google__Protobuf__Struct *s = build_alloc(sizeof *s);
  google__protobuf__struct__init(s);
  s->fields = build_alloc(BUILD_MAX * sizeof *s->fields);
  va_list ap;
  va_start(ap, k);
  for (; k != NULL; k = va_arg(ap, const char *)) {
    cr_assert_lt(s->n_fields, BUILD_MAX);
    Google__Protobuf__Struct__FieldsEntry *e = build_alloc(sizeof *e);
    google__protobuf__struct__fields_entry__init(e);
    e->key = (char *)k;
    e->value = va_arg(ap, Google__Protobuf__Value *);
    s->fields[s->n_fields++] = e;
  }
  va_end(ap);
  return s;
}

/* A Struct as a Value (an object member). */
static inline Google__Protobuf__Value *objv(Google__Protobuf__Struct *s) {
  Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  v->struct_value = s;
  return v;
}

/* A list of Values ending with NULL (list(NULL) is empty). */
static inline Google__Protobuf__Value *list(Google__Protobuf__Value *first, ...) {
  Google__Protobuf__Value *v = new_value(GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  v->list_value = build_alloc(sizeof *v->list_value);
  google__protobuf__list_value__init(v->list_value);
  v->list_value->values = build_alloc(BUILD_MAX * sizeof *v->list_value->values);
  va_list ap;
  va_start(ap, first);
  for (Google__Protobuf__Value *e = first; e != NULL; e = va_arg(ap, Google__Protobuf__Value *)) {
    cr_assert_lt(v->list_value->n_values, BUILD_MAX);
    v->list_value->values[v->list_value->n_values++] = e;
  }
  va_end(ap);
  return v;
}

#endif
