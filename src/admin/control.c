/* The emulator control API's JSON: strict, so a typo in a test's body is an error that names
 * it, never an outcome silently ignored. */
#include "admin/control.h"

#include "appflow_model.h"
#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "bridge/route.h"
#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOWS_PREFIX "/emulator/flows/"

/* The body as a JSON object (an empty body is {}); NULL once err is set. */
static json_t *body_object(const char *body, size_t len, af_error *err) {
  if (len == 0)
    return json_object();
  json_error_t je;
  json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (v == NULL) {
    af_error_set(err, AF_ERR_SERIALIZATION, "the body is not JSON: %s (at character %d)", je.text,
                 je.position);
    return NULL;
  }
  if (!json_is_object(v)) {
    af_error_set(err, AF_ERR_SERIALIZATION, "the body must be a JSON object, not %s",
                 af_json_kind(v));
    json_decref(v);
    return NULL;
  }
  return v;
}

/* Every member of o is one of names (NULL-terminated); else VALIDATION naming it. */
static af_err only(const json_t *o, const char *where, const char *const *names, af_error *err) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    size_t i = 0;
    while (names[i] != NULL && strcmp(names[i], k) != 0)
      i++;
    if (names[i] == NULL) {
      char esc[128];
      return af_error_set(err, AF_ERR_VALIDATION, "%s: unknown member '%s'", where,
                          af_escape(esc, sizeof esc, k, strlen(k)));
    }
  }
  return AF_OK;
}

/* A JSON number member as a double (absent: *has false). */
static af_err number(const json_t *o, const char *name, const char *where, double *out, bool *has,
                     af_error *err) {
  json_t *v = json_object_get(o, name);
  *has = v != NULL && !json_is_null(v);
  if (!*has)
    return AF_OK;
  if (!json_is_number(v))
    return af_error_set(err, AF_ERR_VALIDATION, "%s%s%s must be a number, not %s", where,
                        where[0] ? "." : "", name, af_json_kind(v));
  *out = json_number_value(v);
  return isfinite(*out) ? AF_OK
                        : af_error_set(err, AF_ERR_VALIDATION, "%s%s%s must be finite", where,
                                       where[0] ? "." : "", name);
}

static af_err outcome(const json_t *o, const char *where, af_arena *a,
                      Appflowd__Emulator__V1__Outcome *out, af_error *err) {
  static const char *const names[] = {"executionStatus", "message", "durationSeconds",
                                      "recordsProcessed", NULL};
  if (!json_is_object(o))
    return af_error_set(err, AF_ERR_VALIDATION, "%s must be an object, not %s", where,
                        af_json_kind(o));
  af_err rc = only(o, where, names, err);
  json_t *st = json_object_get(o, "executionStatus");
  json_t *msg = json_object_get(o, "message");
  if (rc == AF_OK && st != NULL && !json_is_null(st)) {
    /* any of AppFlow's execution statuses; which a run may end with is the core's rule */
    const af_model_shape *shape =
        af_model_member_named(&af_model_ExecutionRecord, "executionStatus")->shape;
    int v = json_is_string(st)
                ? af_model_enum_value(shape, json_string_value(st), json_string_length(st))
                : 0;
    if (v == 0)
      rc = af_error_set(err, AF_ERR_VALIDATION,
                        "%s.executionStatus must be \"Successful\" or \"Error\"", where);
    out->execution_status = (Appflow__V1__ExecutionStatus)v;
    out->has_execution_status = true;
  }
  if (rc == AF_OK && msg != NULL && !json_is_null(msg)) {
    if (!json_is_string(msg))
      rc = af_error_set(err, AF_ERR_VALIDATION, "%s.message must be a string, not %s", where,
                        af_json_kind(msg));
    else if ((out->message =
                  af_arena_strndup(a, json_string_value(msg), json_string_length(msg))) == NULL)
      rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  }
  double d = 0, r = 0;
  bool has = false;
  if (rc == AF_OK && (rc = number(o, "durationSeconds", where, &d, &has, err)) == AF_OK) {
    out->duration_seconds = d;
    out->has_duration_seconds = has;
  }
  if (rc == AF_OK && (rc = number(o, "recordsProcessed", where, &r, &has, err)) == AF_OK && has) {
    if (r != floor(r) || fabs(r) > 9e15) /* a count (0 or more: the core's rule) */
      rc = af_error_set(err, AF_ERR_VALIDATION, "%s.recordsProcessed must be a whole number from 0",
                        where);
    out->records_processed = (int64_t)r;
    out->has_records_processed = true;
  }
  return rc;
}

static af_err outcomes_req(const json_t *body, af_arena *a,
                           Appflowd__Emulator__V1__SetOutcomesRequest *req, af_error *err) {
  static const char *const names[] = {"outcomes", NULL};
  af_err rc = only(body, "the body", names, err);
  json_t *list = json_object_get(body, "outcomes");
  if (rc == AF_OK && !json_is_array(list))
    rc = af_error_set(err, AF_ERR_VALIDATION,
                      "the body needs \"outcomes\": a list of {\"executionStatus\", "
                      "\"message\", \"durationSeconds\", \"recordsProcessed\"}");
  size_t n = rc == AF_OK ? json_array_size(list) : 0;
  req->outcomes = af_arena_alloc(a, (n ? n : 1) * sizeof *req->outcomes);
  if (rc == AF_OK && req->outcomes == NULL)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  for (size_t i = 0; rc == AF_OK && i < n; i++) {
    char where[48];
    snprintf(where, sizeof where, "outcomes[%zu]", i);
    Appflowd__Emulator__V1__Outcome *o = af_arena_alloc(a, sizeof *o);
    if (o == NULL)
      return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    appflowd__emulator__v1__outcome__init(o);
    rc = outcome(json_array_get(list, i), where, a, o, err);
    req->outcomes[i] = o;
  }
  req->n_outcomes = rc == AF_OK ? n : 0;
  return rc;
}

static af_err clock_req(const json_t *body, Appflowd__Emulator__V1__AdvanceClockRequest *req,
                        af_error *err) {
  static const char *const names[] = {"advanceSeconds", NULL};
  bool has = false;
  af_err rc = only(body, "the body", names, err);
  if (rc == AF_OK)
    rc = number(body, "advanceSeconds", "", &req->advance_seconds, &has, err);
  if (rc == AF_OK && !has)
    rc = af_error_set(err, AF_ERR_VALIDATION,
                      "the body needs \"advanceSeconds\": how many seconds to move the clock");
  req->has_advance_seconds = has;
  return rc;
}

/* Which RPC path names, and the flow name in it (NULL for none). */
static af_err route(af_flows *svc, const char *path, af_arena *a, const af_rpc **rpc, char **flow,
                    af_error *err) {
  size_t plen = strlen(FLOWS_PREFIX);
  *flow = NULL;
  if (strchr(path, '?') != NULL)
    return af_error_set(err, AF_ERR_VALIDATION, "the control API takes no query string");
  if (strcmp(path, "/emulator/clock") == 0) {
    *rpc = af_flows_emulator_rpc_named(svc, "AdvanceClock");
    return AF_OK;
  }
  const char *slash = strncmp(path, FLOWS_PREFIX, plen) == 0 ? strrchr(path, '/') : NULL;
  if (slash != NULL && slash > path + plen) {
    const char *what = slash + 1;
    *rpc = strcmp(what, "events") == 0     ? af_flows_emulator_rpc_named(svc, "SendEvent")
           : strcmp(what, "outcomes") == 0 ? af_flows_emulator_rpc_named(svc, "SetOutcomes")
                                           : NULL;
    size_t name_len = (size_t)(slash - path) - plen;
    if (*rpc != NULL && memchr(path + plen, '/', name_len) == NULL)
      return af_bridge_percent_decode(path + plen, name_len, false, "path's flow name", a,
                                      (const char **)flow, err);
  }
  char esc[160];
  return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND,
                      "no control API at %s: use POST /emulator/flows/{flowName}/events, "
                      "/emulator/flows/{flowName}/outcomes or /emulator/clock",
                      af_escape(esc, sizeof esc, path, strlen(path)));
}

af_err af_control_decode(af_flows *svc, const char *method, const char *path, const char *body,
                         size_t len, af_arena *arena, const af_rpc **rpc, ProtobufCMessage **req,
                         af_error *err) {
  char *flow = NULL;
  af_err rc = route(svc, path, arena, rpc, &flow, err);
  if (rc != AF_OK)
    return rc;
  if (strcmp(method, "POST") != 0)
    return af_error_set(err, AF_ERR_METHOD_NOT_ALLOWED, "%s takes POST, not %s", path, method);
  *req = af_arena_alloc(arena, (*rpc)->input->sizeof_message);
  json_t *o = *req != NULL ? body_object(body, len, err) : NULL;
  if (*req == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (o == NULL)
    return err->code;
  protobuf_c_message_init((*rpc)->input, *req);
  if ((*rpc)->input == &appflowd__emulator__v1__send_event_request__descriptor)
    ((Appflowd__Emulator__V1__SendEventRequest *)*req)->flow_name = flow;
  else if ((*rpc)->input == &appflowd__emulator__v1__set_outcomes_request__descriptor) {
    ((Appflowd__Emulator__V1__SetOutcomesRequest *)*req)->flow_name = flow;
    rc = outcomes_req(o, arena, (Appflowd__Emulator__V1__SetOutcomesRequest *)*req, err);
  } else
    rc = clock_req(o, (Appflowd__Emulator__V1__AdvanceClockRequest *)*req, err);
  json_decref(o);
  return rc;
}

static char *dump(json_t *o, af_arena *a) {
  char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  char *out = s != NULL ? af_arena_strndup(a, s, strlen(s)) : NULL;
  free(s);
  json_decref(o);
  return out;
}

char *af_control_encode(const af_rpc *rpc, const ProtobufCMessage *resp, af_arena *arena) {
  json_t *o = json_object();
  if (o == NULL)
    return NULL;
  if (rpc->output == &appflowd__emulator__v1__send_event_response__descriptor) {
    const Appflowd__Emulator__V1__SendEventResponse *r = (const void *)resp;
    json_object_set_new(o, "executionId", json_string(r->execution_id ? r->execution_id : ""));
  } else if (rpc->output == &appflowd__emulator__v1__set_outcomes_response__descriptor) {
    const Appflowd__Emulator__V1__SetOutcomesResponse *r = (const void *)resp;
    json_object_set_new(o, "pending", json_integer(r->pending));
  } else {
    const Appflowd__Emulator__V1__AdvanceClockResponse *r = (const void *)resp;
    double now = r->now ? (double)r->now->seconds + r->now->nanos / 1e9 : 0;
    json_object_set_new(o, "now", json_real(now));
    json_object_set_new(o, "runsStarted", json_integer(r->runs_started));
  }
  return dump(o, arena);
}

char *af_control_error(const af_error *err, af_arena *arena) {
  json_t *o = json_pack("{s:s, s:s}", "__type", af_err_type(err->code), "message", err->message);
  return dump(o, arena);
}
