/* What connectors contain: ListConnectorEntities, DescribeConnectorEntity and
 * ResetConnectorMetadataCache, answered from the entity catalog (flows/catalog.h): a profile's
 * own entities when the seed gave it some, else its connector type's default.
 *
 * A request names a profile (then its type is the profile's) or, for a type that takes none
 * (S3), just the type. An entity is found by its name at any depth; entitiesPath lists the
 * entities nested under the entity of that name. */
#include "flows/internal.h"
#include "flows/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTITIES_DOMAIN "appflowd ListConnectorEntities v1"

typedef struct entity_call entity_call;
typedef void (*entity_step)(entity_call *c);

struct entity_call {
  af_call c;
  const char *profile; /* NULL: the type's default */
  int type;
  entity_step step; /* what runs once the profile is known */
  /* ListConnectorEntities */
  const Appflow__V1__ListConnectorEntitiesRequest *list;
  Appflow__V1__ListConnectorEntitiesResponse *list_resp;
  size_t offset;
  /* DescribeConnectorEntity */
  const Appflow__V1__DescribeConnectorEntityRequest *describe;
  Appflow__V1__DescribeConnectorEntityResponse *describe_resp;
  af_err rc; /* what the catalog reader found */
  int found_type;
};

/* ---- finding the profile ---- */

static void profile_read(af_store_op *op, af_store_rc rc) {
  entity_call *c = (entity_call *)af__call_of(op);
  char esc[600];
  const char *found = af_flows_connector_name(c->found_type);
  af_err e = rc == AF_STORE_NOT_FOUND ? af__profile_missing(c->c.to.err, c->profile)
                                      : af__store_error(&c->c, rc, c->profile, strlen(c->profile));
  if (e == AF_OK && c->type != 0 && c->type != c->found_type)
    e = af_error_set(c->c.to.err, AF_ERR_VALIDATION,
                     "Connector profile %s is for connector type %s, not %s",
                     af_escape(esc, sizeof esc, c->profile, strlen(c->profile)),
                     found ? found : "(none)", af_flows_connector_name(c->type));
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  c->type = c->found_type;
  c->step(c);
}

/* Resolves (profile, type) and runs step, or ends the call with why it cannot. */
static void resolve(entity_call *c, const char *profile, bool has_type, int type,
                    entity_step step) {
  c->profile = profile;
  c->type = has_type ? type : 0;
  c->step = step;
  if (profile == NULL && c->type == 0) {
    af__call_end(&c->c, af_error_set(c->c.to.err, AF_ERR_VALIDATION,
                                     "Give connectorProfileName (or, for a connector that takes "
                                     "no profile, connectorType)"));
    return;
  }
  if (profile == NULL && af_connector_takes_profile(c->type)) {
    af__call_end(&c->c, af_error_set(c->c.to.err, AF_ERR_VALIDATION,
                                     "'connectorProfileName' is required: connector type %s is "
                                     "reached through a connector profile",
                                     af_flows_connector_name(c->type)));
    return;
  }
  if (profile == NULL) {
    step(c);
    return;
  }
  c->c.op.table = AF_TABLE_PROFILES;
  c->c.op.ctx = &c->found_type;
  af__call_modify(&c->c, profile, strlen(profile), af__profile_type_rule, profile_read);
}

/* The entity called name in set, at any depth, or NULL. */
static const Appflowd__Store__V1__Entity *find(Appflowd__Store__V1__Entity *const *v, size_t n,
                                               const char *name, int depth) {
  for (size_t i = 0; depth < 32 && i < n; i++) {
    if (strcmp(v[i]->name, name) == 0)
      return v[i];
    const Appflowd__Store__V1__Entity *e = find(v[i]->entities, v[i]->n_entities, name, depth + 1);
    if (e != NULL)
      return e;
  }
  return NULL;
}

static af_err no_entity(entity_call *c, const char *what, const char *name) {
  char esc[600];
  return af_error_set(
      c->c.to.err, AF_ERR_RESOURCE_NOT_FOUND, "%s %s does not exist in the %s connector%s%s", what,
      af_escape(esc, sizeof esc, name, strlen(name)), af_flows_connector_name(c->type),
      c->profile ? " of profile " : "", c->profile ? c->profile : "");
}

/* ---- ListConnectorEntities ---- */

typedef Appflow__V1__ListConnectorEntitiesResponse__ConnectorEntityMapEntry map_entry;

/* The entry for group in the response, made if need be; NULL when out of memory. */
static map_entry *group_entry(entity_call *c, const char *group, size_t cap) {
  Appflow__V1__ListConnectorEntitiesResponse *r = c->list_resp;
  for (size_t i = 0; i < r->n_connector_entity_map; i++)
    if (strcmp(r->connector_entity_map[i]->key, group) == 0)
      return r->connector_entity_map[i];
  af_arena *a = c->c.to.arena;
  map_entry *e = af_arena_alloc(a, sizeof *e);
  Appflow__V1__ConnectorEntityList *l = af_arena_alloc(a, sizeof *l);
  char *key = af_arena_strndup(a, group, strlen(group));
  Appflow__V1__ConnectorEntity **items = af_arena_alloc(a, cap * sizeof *items);
  if (e == NULL || l == NULL || key == NULL || items == NULL)
    return NULL;
  appflow__v1__list_connector_entities_response__connector_entity_map_entry__init(e);
  appflow__v1__connector_entity_list__init(l);
  l->items = items;
  e->key = key;
  e->value = l;
  r->connector_entity_map[r->n_connector_entity_map++] = e;
  return e;
}

static bool add_entity(entity_call *c, const Appflowd__Store__V1__Entity *src, size_t cap) {
  af_arena *a = c->c.to.arena;
  map_entry *g = group_entry(c, src->group, cap);
  Appflow__V1__ConnectorEntity *e = af_arena_alloc(a, sizeof *e);
  if (g == NULL || e == NULL)
    return false;
  appflow__v1__connector_entity__init(e);
  e->name = af_arena_strndup(a, src->name, strlen(src->name));
  e->label = *src->label ? af_arena_strndup(a, src->label, strlen(src->label)) : NULL;
  e->has_nested_entities = src->n_entities > 0;
  e->has_has_nested_entities = true;
  g->value->items[g->value->n_items++] = e;
  return e->name != NULL && (*src->label == '\0' || e->label != NULL);
}

static void list_read(const Appflowd__Store__V1__EntitySet *set, void *ctx) {
  entity_call *c = ctx;
  const char *path = c->list->entities_path;
  Appflowd__Store__V1__Entity *const *v = set ? set->entities : NULL;
  size_t n = set ? set->n_entities : 0;
  if (path != NULL && *path != '\0') {
    const Appflowd__Store__V1__Entity *parent = find(v, n, path, 0);
    if (parent == NULL) {
      c->rc = no_entity(c, "Entities path", path);
      return;
    }
    v = parent->entities;
    n = parent->n_entities;
  }
  size_t max = c->list->has_max_results ? (size_t)c->list->max_results : n;
  size_t end = c->offset + max < n ? c->offset + max : n;
  Appflow__V1__ListConnectorEntitiesResponse *r = c->list_resp;
  size_t cap = end > c->offset ? end - c->offset : 1;
  if ((r->connector_entity_map = af_arena_alloc(c->c.to.arena, cap * sizeof(map_entry *))) ==
      NULL) {
    c->rc = af_flows_oom(c->c.to.err);
    return;
  }
  for (size_t i = c->offset; i < end; i++) {
    if (!add_entity(c, v[i], cap)) {
      c->rc = af_flows_oom(c->c.to.err);
      return;
    }
  }
  if (end < n) {
    char pos[32];
    snprintf(pos, sizeof pos, "%zu", end);
    if ((r->next_token = af__page_token(&c->c, ENTITIES_DOMAIN, pos, strlen(pos), c->c.to.arena)) ==
        NULL)
      c->rc = af_flows_oom(c->c.to.err);
  }
}

static void list_step(entity_call *c) {
  af_catalog_read_entities(c->c.svc->catalog, c->type, c->profile, list_read, c);
  af__call_end(&c->c, c->rc);
}

void af__list_connector_entities(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                 const af_reply_to *to) {
  entity_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->list = (const Appflow__V1__ListConnectorEntitiesRequest *)msg;
  c->list_resp = (Appflow__V1__ListConnectorEntitiesResponse *)out;
  if (c->list->next_token != NULL) {
    char pos[AF_FLOW_NAME_MAX + 1];
    size_t len = 0;
    af_err e = af__page_token_read(&c->c, ENTITIES_DOMAIN, "ListConnectorEntities",
                                   c->list->next_token, pos, &len, to->err);
    if (e != AF_OK) {
      af__call_end(&c->c, e);
      return;
    }
    c->offset = strtoul(pos, NULL, 10);
  }
  resolve(c, c->list->connector_profile_name, c->list->has_connector_type,
          (int)c->list->connector_type, list_step);
}

/* ---- DescribeConnectorEntity ---- */

static void describe_read(const Appflowd__Store__V1__EntitySet *set, void *ctx) {
  entity_call *c = ctx;
  const char *name = c->describe->connector_entity_name;
  const Appflowd__Store__V1__Entity *e =
      set != NULL ? find(set->entities, set->n_entities, name, 0) : NULL;
  if (e == NULL) {
    c->rc = no_entity(c, "Entity", name);
    return;
  }
  af_arena *a = c->c.to.arena;
  Appflow__V1__DescribeConnectorEntityResponse *r = c->describe_resp;
  r->connector_entity_fields = af_arena_alloc(a, (e->n_fields ? e->n_fields : 1) * sizeof(void *));
  if (r->connector_entity_fields == NULL) {
    c->rc = af_flows_oom(c->c.to.err);
    return;
  }
  /* copies into the request's arena: a reset may free the catalog's once the lock is let go */
  for (size_t i = 0; i < e->n_fields; i++) {
    af_bytes b;
    Appflow__V1__ConnectorEntityField *f = NULL;
    if (af__pack(&e->fields[i]->base, a, &b))
      f = appflow__v1__connector_entity_field__unpack(&a->allocator, b.len, b.data);
    if (f == NULL) {
      c->rc = af_flows_oom(c->c.to.err);
      return;
    }
    r->connector_entity_fields[r->n_connector_entity_fields++] = f;
  }
}

static void describe_step(entity_call *c) {
  af_catalog_read_entities(c->c.svc->catalog, c->type, c->profile, describe_read, c);
  af__call_end(&c->c, c->rc);
}

void af__describe_connector_entity(af_flows *svc, const ProtobufCMessage *msg,
                                   ProtobufCMessage *out, const af_reply_to *to) {
  entity_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->describe = (const Appflow__V1__DescribeConnectorEntityRequest *)msg;
  c->describe_resp = (Appflow__V1__DescribeConnectorEntityResponse *)out;
  resolve(c, c->describe->connector_profile_name, c->describe->has_connector_type,
          (int)c->describe->connector_type, describe_step);
}

/* ---- ResetConnectorMetadataCache ---- */

static void reset_step(entity_call *c) {
  char why[512] = "";
  af_err e = AF_OK;
  if (af_catalog_reload(c->c.svc->catalog, why, sizeof why) != 0)
    e = af_error_set(c->c.to.err, AF_ERR_INTERNAL_SERVER,
                     "Could not reload the connector metadata: %s", why);
  else
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "connector metadata reloaded (%s%s%s)",
                  af_flows_connector_name(c->type), c->profile ? ", profile " : "",
                  c->profile ? c->profile : "");
  af__call_end(&c->c, e);
}

void af__reset_connector_metadata_cache(af_flows *svc, const ProtobufCMessage *msg,
                                        ProtobufCMessage *out, const af_reply_to *to) {
  (void)out;
  const Appflow__V1__ResetConnectorMetadataCacheRequest *req =
      (const Appflow__V1__ResetConnectorMetadataCacheRequest *)msg;
  entity_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  resolve(c, req->connector_profile_name, req->has_connector_type, (int)req->connector_type,
          reset_step);
}
