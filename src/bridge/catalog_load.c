/* The catalogs' JSON (see catalog_load.h). Each connector configuration and entity field is
 * decoded by the transcoder with its AWS shape and checked with the model's constraints, so the
 * data meets the model as a request must; and, unlike a request, a member the model does not
 * have is an error (the transcoder would skip it), so a misspelt member is not lost unseen. */
#include "bridge/catalog_load.h"

#include "appflow_model.h"
#include "bridge/transcode.h"
#include "flows/check.h"
#include "flows/service.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char af_data_connectors[];
extern const size_t af_data_connectors_len;
extern const unsigned char af_data_entities[];
extern const size_t af_data_entities_len;

/* Entities nest at most this deep (S3 buckets and prefixes need two or three). */
#define DEPTH_MAX 16

static int failf(char *msg, size_t msgsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *msg, size_t msgsz, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msgsz, fmt, ap);
  va_end(ap);
  return -1;
}

/* The model's constraints, compiled once: a checker is immutable and shared (flows/check.h). */
static af_checker *checker;
static pthread_once_t checker_once = PTHREAD_ONCE_INIT;

static void make_checker(void) {
  af_error err;
  checker = af_checker_new(&err);
}

static int check_members(const af_model_struct *st, json_t *obj, const char *where, char *msg,
                         size_t msgsz);

/* Fails at the first member under v (of shape sh) that the model does not have. The transcoder
 * has taken v, so its depth is bounded. */
static int check_value(const af_model_shape *sh, json_t *v, const char *where, char *msg,
                       size_t msgsz) {
  char at[512];
  const char *k;
  json_t *x;
  if (sh->type == AF_MODEL_STRUCTURE && json_is_object(v))
    return check_members(sh->structure, v, where, msg, msgsz);
  if (sh->type == AF_MODEL_LIST && json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++) {
      snprintf(at, sizeof at, "%s[%zu]", where, i);
      if (check_value(sh->member, json_array_get(v, i), at, msg, msgsz) != 0)
        return -1;
    }
  }
  if (sh->type == AF_MODEL_MAP && json_is_object(v)) {
    json_object_foreach(v, k, x) {
      snprintf(at, sizeof at, "%s.%s", where, k);
      if (check_value(sh->member, x, at, msg, msgsz) != 0)
        return -1;
    }
  }
  return 0;
}

static int check_members(const af_model_struct *st, json_t *obj, const char *where, char *msg,
                         size_t msgsz) {
  char at[512];
  const char *k;
  json_t *x;
  json_object_foreach(obj, k, x) {
    const af_model_member *m = af_model_member_named(st, k);
    if (m == NULL || m->location != AF_MODEL_BODY)
      return failf(msg, msgsz, "%s: unknown member '%s' (%s has no such member)", where, k,
                   st->name);
    snprintf(at, sizeof at, "%s.%s", where, k);
    if (check_value(m->shape, x, at, msg, msgsz) != 0)
      return -1;
  }
  return 0;
}

/* json (an object) as a message of shape, in the arena: decoded, every member known to the
 * model, every constraint met. 0, or -1 with why in msg, prefixed by where. */
static int decode(const af_model_struct *shape, json_t *json, const char *where, af_arena *arena,
                  ProtobufCMessage **out, char *msg, size_t msgsz) {
  af_error err = {0};
  pthread_once(&checker_once, make_checker);
  if (checker == NULL)
    return failf(msg, msgsz, "%s: the model's checks could not be made (out of memory)", where);
  if (af_bridge_json_tree_to_message(shape, json, arena, out, &err) != AF_OK ||
      af_check_message(checker, shape, *out, &err) != AF_OK)
    return failf(msg, msgsz, "%s: %s", where, err.message);
  return json_is_object(json) ? check_members(shape, json, where, msg, msgsz) : 0;
}

static json_t *parse(const char *json, size_t len, char *msg, size_t msgsz) {
  json_error_t e;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
  if (root == NULL)
    failf(msg, msgsz, "line %d, column %d: %s", e.line, e.column, e.text);
  else if (!json_is_object(root)) {
    failf(msg, msgsz, "the document must be a JSON object keyed by connector type");
    json_decref(root);
    root = NULL;
  }
  return root;
}

/* The ConnectorType value of an AWS spelling ("Salesforce"), or 0. */
static int connector_value(const char *key) {
  const af_model_member *m =
      af_model_member_named(&af_model_ConnectorConfiguration, "connectorType");
  return af_model_enum_value(m->shape, key, strlen(key));
}

static int type_of(const char *key, const char *where, char *msg, size_t msgsz) {
  int t = connector_value(key);
  if (t == 0)
    failf(msg, msgsz, "%s: '%s' is not an AppFlow connector type", where, key);
  return t;
}

/* What a document holds for one connector type (its key, already checked). */
typedef int (*type_entry_fn)(af_catalog *cat, int type, const char *key, json_t *v, af_arena *arena,
                             char *msg, size_t msgsz);

/* Runs fn on each entry of a document keyed by connector type; doc names it in messages. */
static int each_type(af_catalog *cat, const char *doc, const char *json, size_t len,
                     type_entry_fn fn, char *msg, size_t msgsz) {
  json_t *root = parse(json, len, msg, msgsz);
  if (root == NULL)
    return -1;
  const char *key;
  json_t *v;
  int rc = 0;
  af_arena arena;
  af_arena_init(&arena);
  json_object_foreach(root, key, v) {
    int type = type_of(key, doc, msg, msgsz);
    if (type == 0 || fn(cat, type, key, v, &arena, msg, msgsz) != 0) {
      rc = -1;
      break;
    }
    af_arena_reset(&arena);
  }
  af_arena_destroy(&arena);
  json_decref(root);
  return rc;
}

/* One connector type's configuration, with applicationType (ListConnectors' member, not the
 * shape's) taken out before the transcoder reads it. */
static int connector_entry(af_catalog *cat, int type, const char *key, json_t *v, af_arena *arena,
                           char *msg, size_t msgsz) {
  json_t *cfg = json_deep_copy(v);
  json_t *app = cfg != NULL ? json_object_get(cfg, "applicationType") : NULL;
  char *application_type = json_is_string(app) ? strdup(json_string_value(app)) : NULL;
  if (cfg != NULL)
    json_object_del(cfg, "applicationType");
  ProtobufCMessage *m = NULL;
  char where[160];
  snprintf(where, sizeof where, "connectors.%s", key);
  int rc = 0;
  if (cfg == NULL)
    rc = failf(msg, msgsz, "%s: out of memory", where);
  else if (decode(&af_model_ConnectorConfiguration, cfg, where, arena, &m, msg, msgsz) != 0)
    rc = -1;
  else if ((int)((Appflow__V1__ConnectorConfiguration *)m)->connector_type != type)
    rc = failf(msg, msgsz, "connectors.%s: connectorType must be %s", key, key);
  else if (!af_catalog_set_connector(cat, (Appflow__V1__ConnectorConfiguration *)m,
                                     application_type))
    rc = failf(msg, msgsz, "out of memory");
  free(application_type);
  json_decref(cfg);
  return rc;
}

int af_catalog_load_connectors(af_catalog *cat, const char *json, size_t len, char *msg,
                               size_t msgsz) {
  return each_type(cat, "connectors", json, len, connector_entry, msg, msgsz);
}

typedef struct loader {
  af_arena *arena;
  char *msg;
  size_t msgsz;
} loader;

static Appflowd__Store__V1__Entity **groups_to_entities(loader *l, json_t *groups,
                                                        const char *where, int depth, size_t *n);

static Appflowd__Store__V1__Entity *entity_of(loader *l, json_t *o, const char *group,
                                              const char *where, int depth) {
  af_arena *a = l->arena;
  json_t *name = json_object_get(o, "name"), *label = json_object_get(o, "label");
  json_t *fields = json_object_get(o, "fields"), *nested = json_object_get(o, "entities");
  const char *k;
  json_t *v;
  if (!json_is_object(o)) {
    failf(l->msg, l->msgsz, "%s: an entity must be an object", where);
    return NULL;
  }
  json_object_foreach(o, k, v) {
    if (strcmp(k, "name") && strcmp(k, "label") && strcmp(k, "fields") && strcmp(k, "entities")) {
      failf(l->msg, l->msgsz,
            "%s: unknown member '%s' (an entity has name, label, fields and "
            "entities)",
            where, k);
      return NULL;
    }
  }
  if (!json_is_string(name) || json_string_length(name) == 0 ||
      (label != NULL && !json_is_string(label)) || (fields != NULL && !json_is_array(fields))) {
    failf(l->msg, l->msgsz,
          "%s: an entity needs a name (a string); label is a string, fields an array", where);
    return NULL;
  }
  Appflowd__Store__V1__Entity *e = af_arena_alloc(a, sizeof *e);
  if (e == NULL)
    return NULL;
  appflowd__store__v1__entity__init(e);
  e->group = (char *)group;
  e->name = (char *)json_string_value(name);
  e->label = label != NULL ? (char *)json_string_value(label) : "";
  size_t nf = fields != NULL ? json_array_size(fields) : 0;
  e->fields = af_arena_alloc(a, (nf ? nf : 1) * sizeof *e->fields);
  if (e->fields == NULL)
    return NULL;
  for (size_t i = 0; i < nf; i++) {
    ProtobufCMessage *m = NULL;
    char at[560];
    snprintf(at, sizeof at, "%s.fields[%zu]", where, i);
    if (decode(&af_model_ConnectorEntityField, json_array_get(fields, i), at, a, &m, l->msg,
               l->msgsz) != 0)
      return NULL;
    e->fields[e->n_fields++] = (Appflow__V1__ConnectorEntityField *)m;
  }
  if (nested != NULL &&
      (e->entities = groups_to_entities(l, nested, where, depth + 1, &e->n_entities)) == NULL)
    return NULL;
  return e;
}

static Appflowd__Store__V1__Entity **groups_to_entities(loader *l, json_t *groups,
                                                        const char *where, int depth, size_t *n) {
  if (!json_is_object(groups)) {
    failf(l->msg, l->msgsz, "%s: entities must be an object of groups, each an array", where);
    return NULL;
  }
  if (depth > DEPTH_MAX) {
    failf(l->msg, l->msgsz, "%s: entities nest deeper than %d", where, DEPTH_MAX);
    return NULL;
  }
  size_t total = 0;
  const char *group;
  json_t *list;
  json_object_foreach(groups, group, list) {
    if (!json_is_array(list)) {
      failf(l->msg, l->msgsz, "%s.%s: a group must be an array of entities", where, group);
      return NULL;
    }
    total += json_array_size(list);
  }
  Appflowd__Store__V1__Entity **out = af_arena_alloc(l->arena, (total ? total : 1) * sizeof *out);
  if (out == NULL)
    return NULL;
  *n = 0;
  json_object_foreach(groups, group, list) {
    for (size_t i = 0; i < json_array_size(list); i++) {
      char at[512];
      snprintf(at, sizeof at, "%s.%s[%zu]", where, group, i);
      Appflowd__Store__V1__Entity *e = entity_of(l, json_array_get(list, i), group, at, depth);
      if (e == NULL)
        return NULL;
      out[(*n)++] = e;
    }
  }
  return out;
}

int af_catalog_set_entities_json(af_catalog *cat, int type, const char *profile, json_t *groups,
                                 const char *where, char *msg, size_t msgsz) {
  af_arena arena;
  af_arena_init(&arena);
  loader l = {&arena, msg, msgsz};
  msg[0] = '\0';
  Appflowd__Store__V1__EntitySet set = APPFLOWD__STORE__V1__ENTITY_SET__INIT;
  set.entities = groups_to_entities(&l, groups, where, 0, &set.n_entities);
  int rc = 0;
  if (set.entities == NULL)
    rc = msg[0] != '\0' ? -1 : failf(msg, msgsz, "out of memory");
  else if (!af_catalog_set_entities(cat, type, profile, &set))
    rc = failf(msg, msgsz, "out of memory");
  af_arena_destroy(&arena);
  return rc;
}

static int entities_entry(af_catalog *cat, int type, const char *key, json_t *v, af_arena *arena,
                          char *msg, size_t msgsz) {
  (void)arena;
  char where[160];
  snprintf(where, sizeof where, "entities.%s", key);
  return af_catalog_set_entities_json(cat, type, NULL, v, where, msg, msgsz);
}

int af_catalog_load_entities(af_catalog *cat, const char *json, size_t len, char *msg,
                             size_t msgsz) {
  return each_type(cat, "entities", json, len, entities_entry, msg, msgsz);
}

int af_catalog_load_builtin(af_catalog *cat, char *msg, size_t msgsz) {
  char why[1024];
  if (af_catalog_load_connectors(cat, (const char *)af_data_connectors, af_data_connectors_len, why,
                                 sizeof why) != 0)
    return failf(msg, msgsz, "data/connectors.json: %s", why);
  if (af_catalog_load_entities(cat, (const char *)af_data_entities, af_data_entities_len, why,
                               sizeof why) != 0)
    return failf(msg, msgsz, "data/entities.json: %s", why);
  return 0;
}
