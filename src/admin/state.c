/* GET /state and POST /reset: the core gives the entries (af_flows_state) and does the reset
 * (af_flows_reset); this file writes them as the seed file's JSON, through the AWS door's
 * transcoder, and loads the seed file again after a reset. */
#include "admin/state.h"

#include "appflow_model.h"
#include "bridge/seed.h"
#include "bridge/transcode.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define STATE_PATH "/state"
#define RESET_PATH "/reset"

bool af_admin_state_route(const char *path) {
  return strcmp(path, STATE_PATH) == 0 || strcmp(path, RESET_PATH) == 0;
}

/* The document being built. */
typedef struct doc {
  json_t *entries;
  af_arena *arena;
  af_error *err;
} doc;

static const af_model_struct *shape_of(af_state_kind kind) {
  switch (kind) {
  case AF_STATE_CONNECTOR:
    return &af_model_RegisterConnectorRequest;
  case AF_STATE_PROFILE:
    return &af_model_CreateConnectorProfileRequest;
  case AF_STATE_FLOW:
    break;
  }
  return &af_model_CreateFlowRequest;
}

/* A flow's own seed members: flowStatus (AWS's spelling) and flowStatusMessage. */
static bool add_flow_members(json_t *o, const af_state_entry *e) {
  const af_model_shape *shape =
      af_model_member_named(&af_model_CreateFlowResponse, "flowStatus")->shape;
  const char *status = af_model_enum_string(shape, (int)e->status);
  if (status != NULL && json_object_set_new(o, "flowStatus", json_string(status)) != 0)
    return false;
  return e->status_message == NULL ||
         json_object_set_new(o, "flowStatusMessage", json_string(e->status_message)) == 0;
}

/* One entry: where it lives first, then the request, then a flow's status. */
static bool add_entry(const af_state_entry *e, void *ctx) {
  doc *d = ctx;
  char *text = NULL;
  size_t len = 0;
  if (af_bridge_message_to_json(shape_of(e->kind), e->request, d->arena, &text, &len, d->err) !=
      AF_OK)
    return false;
  json_t *req = json_loadb(text, len, 0, NULL);
  json_t *o = json_pack("{s:s, s:s}", "accountId", e->account, "region", e->region);
  bool ok = req != NULL && o != NULL && json_object_update(o, req) == 0 &&
            (e->kind != AF_STATE_FLOW || add_flow_members(o, e)) &&
            json_array_append(d->entries, o) == 0;
  json_decref(req);
  json_decref(o);
  if (!ok)
    af_error_set(d->err, AF_ERR_INTERNAL_SERVER, "out of memory writing the state");
  return ok;
}

/* Compact JSON of o (which this takes) in the arena; NULL when out of memory. */
static char *dump(json_t *o, af_arena *a) {
  char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  char *out = s != NULL ? af_arena_strndup(a, s, strlen(s)) : NULL;
  free(s);
  json_decref(o);
  return out;
}

static af_err get_state(af_flows *svc, af_arena *arena, char **json, af_error *err) {
  doc d = {json_array(), arena, err};
  if (d.entries == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  af_err rc = af_flows_state(svc, add_entry, &d, err);
  if (rc != AF_OK) {
    json_decref(d.entries);
    return err->code != AF_OK ? err->code : rc;
  }
  *json = dump(d.entries, arena);
  return *json != NULL ? AF_OK : af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
}

/* The seed file loaded again after a reset. */
static af_err reseed(af_flows *svc, const char *path, af_seed_result *res, af_error *err) {
  af_seed_error e;
  if (path == NULL || af_seed_load_file(svc, path, res, &e) == 0)
    return AF_OK;
  if (e.line > 0)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                        "the state was reset, but the seed file could not be loaded again: "
                        "line %d, column %d: %.700s",
                        e.line, e.column, e.message);
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "the state was reset, but the seed file could not be loaded again: %.700s",
                      e.message);
}

static af_err post_reset(af_flows *svc, const char *seed_path, af_arena *arena, char **json,
                         af_error *err) {
  af_reset_result removed;
  af_seed_result seeded = {0};
  af_err rc = af_flows_reset(svc, &removed, err);
  if (rc == AF_OK)
    rc = reseed(svc, seed_path, &seeded, err);
  if (rc != AF_OK)
    return rc;
  json_t *o = json_pack(
      "{s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}}", "removed", "flows", (json_int_t)removed.flows,
      "connectorProfiles", (json_int_t)removed.profiles, "connectors",
      (json_int_t)removed.connectors, "schedulerRows", (json_int_t)removed.timers, "seeded",
      "flows", (json_int_t)seeded.added, "connectorProfiles", (json_int_t)seeded.profiles_added,
      "connectors", (json_int_t)seeded.connectors_added);
  *json = dump(o, arena);
  return *json != NULL ? AF_OK : af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
}

af_err af_admin_state_answer(af_flows *svc, const char *seed_path, const char *method,
                             const char *path, af_arena *arena, char **json, af_error *err) {
  bool state = strcmp(path, STATE_PATH) == 0;
  const char *want = state ? "GET" : "POST";
  if (strcmp(method, want) != 0)
    return af_error_set(err, AF_ERR_METHOD_NOT_ALLOWED, "%s takes %s, not %s", path, want, method);
  return state ? get_state(svc, arena, json, err) : post_reset(svc, seed_path, arena, json, err);
}
