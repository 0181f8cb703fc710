/* The emulator's control RPCs (appflowd.emulator.v1.EmulatorService): an event starts a run of
 * an Active event-triggered flow, and scripted outcomes decide how a flow's next runs end. Both
 * change the flow's run log in one write, as StartFlow does, so they are as durable and as
 * shared as the flow. AdvanceClock is the scheduler's (scheduler.c). */
#include "appflow_model.h"
#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "common/uuid.h"
#include "flows/internal.h"

#include <math.h>
#include <string.h>

#define STATUS(s) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##s
#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t
/* Outcomes one request may script: more than a flow keeps runs. */
#define OUTCOMES_MAX 1000
/* The longest run an outcome may ask for: a year. */
#define DURATION_MAX_S (366.0 * 24 * 3600)
/* The errorInfo.executionMessage of an Error outcome that gives none. */
#define DEFAULT_ERROR "The run failed: the emulator control API scripted an Error outcome"

/* The flow name checked as AppFlow's operations check theirs (the model's FlowName): false once
 * the call has ended with the error. */
static bool checked_name(af_call *c, const char *name, size_t *len) {
  Appflow__V1__DescribeFlowRequest r = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  r.flow_name = (char *)name;
  af_err e = af_check_message(c->svc->checker, &af_model_DescribeFlowRequest, &r.base, c->to.err);
  if (e != AF_OK) {
    af__call_end(c, e);
    return false;
  }
  return af__call_check_name(c, name, len);
}

/* ---- SendEvent ---- */

typedef struct event_call {
  af_call c;
  const char *name;
  size_t len;
  char execution_id[37];
  Appflowd__Emulator__V1__SendEventResponse *resp;
} event_call;

static af_store_verdict event_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  event_call *e = ctx;
  af_error *err = e->c.to.err;
  af_arena *a = e->c.to.arena;
  if (cur->trigger != TRIGGER(EVENT)) {
    char t[32];
    const char *trig = af_model_enum_string(
        af_model_member_named(&af_model_TriggerConfig, "triggerType")->shape, cur->trigger);
    snprintf(t, sizeof t, "%s", trig ? trig : "unknown");
    af_error_set(err, AF_ERR_UNSUPPORTED_OPERATION,
                 "Flow %.*s is triggered %s, not by events: only an Event flow takes an event",
                 (int)e->len, e->name, t);
    return AF_STORE_REFUSE;
  }
  if (cur->status != APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE) {
    af__wrong_state(cur, "triggered by an event (start it first)", err);
    return AF_STORE_REFUSE;
  }
  Appflowd__Store__V1__RunLog *log = af_flows_runs(cur->runs, a);
  af_run_start s = {e->execution_id, e->c.now_ms, TRIGGER(EVENT), cur->created_ms};
  if (log == NULL || !af__start_run(e->c.svc, log, &s, a) ||
      !af__pack(&log->base, a, &next->runs)) {
    af_flows_oom(err);
    return AF_STORE_REFUSE;
  }
  return AF_STORE_WRITE;
}

static void event_done(af_store_op *op, af_store_rc rc) {
  event_call *e = (event_call *)af__call_of(op);
  af_err err = af__store_error(&e->c, rc, e->name, e->len);
  if (err == AF_OK) {
    e->resp->execution_id = e->execution_id;
    af_log_printf(e->c.svc->log, AF_LOG_INFO, "flow %s: event, run %s", e->name, e->execution_id);
  }
  af__call_end(&e->c, err);
}

void af__send_event(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                    const af_reply_to *to) {
  const Appflowd__Emulator__V1__SendEventRequest *req =
      (const Appflowd__Emulator__V1__SendEventRequest *)msg;
  event_call *e = af__call_new(svc, to, sizeof *e);
  if (e == NULL || !checked_name(&e->c, req->flow_name, &e->len))
    return;
  e->name = req->flow_name;
  e->resp = (Appflowd__Emulator__V1__SendEventResponse *)out;
  af_uuid_random(e->execution_id);
  af__call_modify(&e->c, e->name, e->len, event_rule, event_done);
}

/* ---- SetOutcomes ---- */

typedef struct outcomes_call {
  af_call c;
  const char *name;
  size_t len;
  Appflowd__Store__V1__ScriptedOutcome **outcomes;
  size_t n;
} outcomes_call;

/* The request's outcomes as the run log keeps them, checked; false once the call has ended
 * with why not. */
static bool scripted(outcomes_call *o, const Appflowd__Emulator__V1__SetOutcomesRequest *req) {
  af_error *err = o->c.to.err;
  af_arena *a = o->c.to.arena;
  af_err rc = AF_OK;
  if (req->n_outcomes > OUTCOMES_MAX)
    rc = af_error_set(err, AF_ERR_VALIDATION, "outcomes: at most %d, not %zu", OUTCOMES_MAX,
                      req->n_outcomes);
  o->outcomes = af_arena_alloc(a, (req->n_outcomes + 1) * sizeof *o->outcomes);
  if (rc == AF_OK && o->outcomes == NULL)
    rc = af_flows_oom(err);
  for (size_t i = 0; rc == AF_OK && i < req->n_outcomes; i++) {
    const Appflowd__Emulator__V1__Outcome *in = req->outcomes[i];
    Appflowd__Store__V1__ScriptedOutcome *s = af_arena_alloc(a, sizeof *s);
    int st = in->has_execution_status ? (int)in->execution_status : 0;
    if (s == NULL) {
      rc = af_flows_oom(err);
      break;
    }
    appflowd__store__v1__scripted_outcome__init(s);
    if (st != 0 && st != STATUS(SUCCESSFUL) && st != STATUS(ERROR))
      rc = af_error_set(err, AF_ERR_VALIDATION,
                        "outcomes[%zu].executionStatus: a run ends Successful or Error", i);
    else if (in->has_duration_seconds &&
             !(in->duration_seconds >= 0 && in->duration_seconds <= DURATION_MAX_S))
      rc = af_error_set(err, AF_ERR_VALIDATION,
                        "outcomes[%zu].durationSeconds: from 0 to %.0f seconds", i, DURATION_MAX_S);
    else if (in->has_records_processed && in->records_processed < 0)
      rc = af_error_set(err, AF_ERR_VALIDATION, "outcomes[%zu].recordsProcessed: 0 or more", i);
    else if (in->message != NULL && strlen(in->message) > AF_STATUS_MESSAGE_MAX)
      rc = af_error_set(err, AF_ERR_VALIDATION, "outcomes[%zu].message: at most %d bytes", i,
                        AF_STATUS_MESSAGE_MAX);
    s->status = st == STATUS(ERROR) ? st : 0;
    s->message = in->message != NULL && in->message[0] != '\0' ? in->message
                 : s->status != 0                              ? DEFAULT_ERROR
                                                               : "";
    s->duration_ms = in->has_duration_seconds ? (int64_t)llround(in->duration_seconds * 1000) : -1;
    s->records_processed = in->records_processed;
    o->outcomes[i] = s;
  }
  o->n = req->n_outcomes;
  if (rc != AF_OK)
    af__call_end(&o->c, rc);
  return rc == AF_OK;
}

static af_store_verdict outcomes_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  outcomes_call *o = ctx;
  af_arena *a = o->c.to.arena;
  Appflowd__Store__V1__RunLog *log = af_flows_runs(cur->runs, a);
  if (log == NULL) {
    af_flows_oom(o->c.to.err);
    return AF_STORE_REFUSE;
  }
  log->outcomes = o->outcomes;
  log->n_outcomes = o->n;
  if (!af__pack(&log->base, a, &next->runs)) {
    af_flows_oom(o->c.to.err);
    return AF_STORE_REFUSE;
  }
  return AF_STORE_WRITE;
}

static void outcomes_done(af_store_op *op, af_store_rc rc) {
  outcomes_call *o = (outcomes_call *)af__call_of(op);
  af_err err = af__store_error(&o->c, rc, o->name, o->len);
  if (err == AF_OK)
    af_log_printf(o->c.svc->log, AF_LOG_INFO, "flow %s: %zu outcome(s) scripted", o->name, o->n);
  af__call_end(&o->c, err);
}

void af__set_outcomes(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                      const af_reply_to *to) {
  const Appflowd__Emulator__V1__SetOutcomesRequest *req =
      (const Appflowd__Emulator__V1__SetOutcomesRequest *)msg;
  Appflowd__Emulator__V1__SetOutcomesResponse *resp =
      (Appflowd__Emulator__V1__SetOutcomesResponse *)out;
  outcomes_call *o = af__call_new(svc, to, sizeof *o);
  if (o == NULL || !checked_name(&o->c, req->flow_name, &o->len) || !scripted(o, req))
    return;
  o->name = req->flow_name;
  resp->pending = (int32_t)o->n;
  resp->has_pending = true;
  af__call_modify(&o->c, o->name, o->len, outcomes_rule, outcomes_done);
}
