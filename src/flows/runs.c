/* A flow's runs: the executions StartFlow makes, DescribeFlowExecutionRecords and
 * CancelFlowExecutions.
 *
 * An execution is kept in its flow's run log (flows/store.h's runs blob: a RunLog, newest
 * first, at most AF_EXECUTIONS_KEPT), so it is as durable and as shared as its flow and changes
 * with it in one write. Its status is a function of the service's clock (see records.proto's
 * Execution): InProgress for the service's run duration, then Successful; once cancelled,
 * CancelStarted, then Canceled. Nothing has to wake up to end a run: whoever reads it sees
 * where it is now. */
#include "flows/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS_DOMAIN "appflowd DescribeFlowExecutionRecords v1"
#define PAGE_DEFAULT 20
/* How long a cancelled run is CancelStarted before it is Canceled. */
#define CANCEL_MS 1000
#define STATUS(s) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##s

Appflow__V1__ExecutionStatus af__execution_status(const Appflowd__Store__V1__Execution *e,
                                                  int64_t now_ms, int64_t *since_ms) {
  int64_t end = e->started_ms + e->duration_ms;
  if (e->cancel_ms != 0 && e->cancel_ms < end) {
    bool done = now_ms >= e->cancel_ms + CANCEL_MS;
    *since_ms = done ? e->cancel_ms + CANCEL_MS : e->cancel_ms;
    return done ? STATUS(CANCELED) : STATUS(CANCEL_STARTED);
  }
  if (now_ms < end) {
    *since_ms = e->started_ms;
    return STATUS(IN_PROGRESS);
  }
  *since_ms = end;
  return e->outcome != 0 ? (Appflow__V1__ExecutionStatus)e->outcome : STATUS(SUCCESSFUL);
}

/* Sets how e ends: as the first scripted outcome says (taking it off r), else Successful after
 * the service's run duration. */
static void take_outcome(const af_flows *svc, Appflowd__Store__V1__RunLog *r,
                         Appflowd__Store__V1__Execution *e) {
  e->duration_ms = svc->run_duration_ms;
  if (r->n_outcomes == 0)
    return;
  const Appflowd__Store__V1__ScriptedOutcome *o = r->outcomes[0];
  e->outcome = o->status;
  e->message = o->message;
  e->records_processed = o->records_processed;
  if (o->duration_ms >= 0)
    e->duration_ms = o->duration_ms;
  r->outcomes++;
  r->n_outcomes--;
}

/* The runs a new one goes among, newest first: n of them, the i-th got by nth (NULL when out of
 * memory or it is not an Execution). */
typedef struct run_list {
  size_t n;
  const Appflowd__Store__V1__Execution *(*nth)(const struct run_list *l, size_t i, af_arena *a);
  const void *items;
} run_list;

static const Appflowd__Store__V1__Execution *unpacked_nth(const run_list *l, size_t i,
                                                          af_arena *a) {
  (void)a;
  return ((Appflowd__Store__V1__Execution *const *)l->items)[i];
}

static const Appflowd__Store__V1__Execution *packed_nth(const run_list *l, size_t i, af_arena *a) {
  const af_bytes *b = &((const af_bytes *)l->items)[i];
  return appflowd__store__v1__execution__unpack(&a->allocator, b->len, b->data);
}

/* The run s starts, in a, and its place *at in l: before the first run that started no later (a
 * scheduler catching up can start a run earlier than one StartFlow just started). Its outcome is
 * taken off r, its data window continues from the end of the run before it, and r's last run is
 * it when it is the newest. NULL when out of memory. */
static Appflowd__Store__V1__Execution *new_run(const af_flows *svc, Appflowd__Store__V1__RunLog *r,
                                               const run_list *l, const af_run_start *s,
                                               af_arena *a, size_t *at) {
  Appflowd__Store__V1__Execution *e = af_arena_alloc(a, sizeof *e);
  if (e == NULL)
    return NULL;
  appflowd__store__v1__execution__init(e);
  e->execution_id = (char *)s->id;
  e->started_ms = s->at_ms;
  e->trigger = s->trigger;
  take_outcome(svc, r, e);
  const Appflowd__Store__V1__Execution *older = NULL;
  size_t i = 0;
  for (; i < l->n; i++) {
    if ((older = l->nth(l, i, a)) == NULL)
      return NULL;
    if (older->started_ms <= s->at_ms)
      break;
  }
  *at = i;
  e->data_pull_start_ms = i < l->n ? older->data_pull_end_ms : s->first_pull_ms;
  e->data_pull_end_ms = s->at_ms;
  if (i == 0) {
    r->last_run_ms = s->at_ms;
    r->last_execution_id = e->execution_id;
  }
  return e;
}

bool af__start_run(const af_flows *svc, Appflowd__Store__V1__RunLog *r, const af_run_start *s,
                   af_arena *a) {
  run_list l = {r->n_executions, unpacked_nth, r->executions};
  size_t at = 0, n = r->n_executions;
  Appflowd__Store__V1__Execution **v = af_arena_alloc(a, (n + 1) * sizeof *v);
  Appflowd__Store__V1__Execution *e = v != NULL ? new_run(svc, r, &l, s, a, &at) : NULL;
  if (e == NULL)
    return false;
  for (size_t i = 0; i < at; i++) /* not memcpy: an empty log's executions are NULL */
    v[i] = r->executions[i];
  v[at] = e;
  for (size_t i = at; i < n; i++)
    v[i + 1] = r->executions[i];
  r->executions = v;
  r->n_executions = n < AF_EXECUTIONS_KEPT ? n + 1 : AF_EXECUTIONS_KEPT; /* the oldest falls off */
  return true;
}

bool af__start_run_packed(const af_flows *svc, af_packed_runs *s, const af_run_start *rs,
                          af_arena *a) {
  if (s->head->n_executions > 0) /* unsplit: the head has them all */
    return af__start_run(svc, s->head, rs, a);
  run_list l = {s->n_runs, packed_nth, s->runs};
  size_t at = 0, n = s->n_runs;
  af_bytes packed;
  Appflowd__Store__V1__Execution *e = new_run(svc, s->head, &l, rs, a, &at);
  if (e == NULL || !af__pack(&e->base, a, &packed))
    return false;
  memmove(s->runs + at + 1, s->runs + at, (n - at) * sizeof *s->runs); /* room made by split */
  s->runs[at] = packed;
  s->n_runs = n < AF_EXECUTIONS_KEPT ? n + 1 : AF_EXECUTIONS_KEPT;
  return true;
}

size_t af__interrupt_runs(Appflowd__Store__V1__RunLog *r, int64_t now_ms) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_executions; i++) {
    Appflowd__Store__V1__Execution *e = r->executions[i];
    int64_t since;
    if (af__execution_status(e, now_ms, &since) != STATUS(IN_PROGRESS))
      continue;
    e->duration_ms = now_ms - e->started_ms;
    e->outcome = STATUS(ERROR);
    e->message = "The run was interrupted: appflowd stopped while it was in progress";
    e->records_processed = 0;
    n++;
  }
  return n;
}

/* ---- DescribeFlowExecutionRecords ---- */

typedef struct records_call {
  af_call c;
  const Appflow__V1__DescribeFlowExecutionRecordsRequest *req;
  Appflow__V1__DescribeFlowExecutionRecordsResponse *resp;
  const char *name;
  size_t len;
  const Appflow__V1__GlueDataCatalogConfig *glue;   /* the flow's catalog, or NULL */
  const Appflow__V1__SAPODataSourceProperties *sap; /* an SAP OData source, or NULL */
  char after[AF_FLOW_NAME_MAX + 1]; /* the last listed: "<started_ms>:<execution id>" */
  size_t after_len;
  bool oom;
} records_call;

/* Whether e comes after the token's execution in the list's order (newest first, then id). */
static bool after_token(const records_call *c, const Appflowd__Store__V1__Execution *e) {
  if (c->after_len == 0)
    return true;
  char *colon = NULL;
  long long ms = strtoll(c->after, &colon, 10);
  const char *id = colon != NULL && *colon == ':' ? colon + 1 : "";
  return e->started_ms < ms || (e->started_ms == ms && strcmp(e->execution_id, id) > 0);
}

static Appflow__V1__RegistrationOutput *registration(af_arena *a, Appflow__V1__ExecutionStatus st,
                                                     const char *what, const char *where) {
  Appflow__V1__RegistrationOutput *o = af_arena_alloc(a, sizeof *o);
  if (o == NULL)
    return NULL;
  appflow__v1__registration_output__init(o);
  bool ok = st == STATUS(SUCCESSFUL);
  o->status = st;
  o->has_status = true;
  o->result = af_arena_printf(a, "%s", where);
  o->message = af_arena_printf(a,
                               ok ? "%s registered in the AWS Glue Data Catalog"
                                  : "%s not registered: the run did not succeed",
                               what);
  return o->result != NULL && o->message != NULL ? o : NULL;
}

bool af__catalog_details(af_arena *a, const Appflow__V1__GlueDataCatalogConfig *glue,
                         const char *flow, size_t len, const Appflowd__Store__V1__Execution *e,
                         int64_t now_ms, size_t *n, Appflow__V1__MetadataCatalogDetail ***out) {
  int64_t since;
  Appflow__V1__ExecutionStatus st = af__execution_status(e, now_ms, &since);
  *n = 0;
  if (glue == NULL || st == STATUS(IN_PROGRESS) || st == STATUS(CANCEL_STARTED))
    return true;
  Appflow__V1__MetadataCatalogDetail *d = af_arena_alloc(a, sizeof *d);
  Appflow__V1__MetadataCatalogDetail **v = af_arena_alloc(a, sizeof *v);
  char *table =
      af_arena_printf(a, "%s%.*s", glue->table_prefix ? glue->table_prefix : "", (int)len, flow);
  if (d == NULL || v == NULL || table == NULL)
    return false;
  for (char *p = table; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  appflow__v1__metadata_catalog_detail__init(d);
  d->catalog_type = APPFLOW__V1__CATALOG_TYPE__CATALOG_TYPE_GLUE;
  d->has_catalog_type = true;
  d->table_name = table;
  const char *db = glue->database_name ? glue->database_name : "";
  char *where = af_arena_printf(a, "%s.%s", db, table);
  char *part = af_arena_printf(a, "%s.%s/%s", db, table, e->execution_id);
  if (where == NULL || part == NULL)
    return false;
  d->table_registration_output = registration(a, st, "Table", where);
  d->partition_registration_output = registration(a, st, "Partition", part);
  v[0] = d;
  *out = v;
  *n = 1;
  return d->table_registration_output != NULL && d->partition_registration_output != NULL;
}

static Appflow__V1__ExecutionRecord *record_of(records_call *c,
                                               const Appflowd__Store__V1__Execution *e) {
  af_arena *a = c->c.to.arena;
  Appflow__V1__ExecutionRecord *r = af_arena_alloc(a, sizeof *r);
  Appflow__V1__ExecutionResult *res = af_arena_alloc(a, sizeof *res);
  if (r == NULL || res == NULL)
    return NULL;
  appflow__v1__execution_record__init(r);
  appflow__v1__execution_result__init(res);
  int64_t since = 0;
  r->execution_id = af_arena_strndup(a, e->execution_id, strlen(e->execution_id));
  r->execution_status = af__execution_status(e, c->c.now_ms, &since);
  r->has_execution_status = true;
  r->started_at = af_flows_timestamp(a, e->started_ms);
  r->last_updated_at = af_flows_timestamp(a, since);
  r->data_pull_start_time = af_flows_timestamp(a, e->data_pull_start_ms);
  r->data_pull_end_time = af_flows_timestamp(a, e->data_pull_end_ms);
  bool ended = r->execution_status == STATUS(SUCCESSFUL) || r->execution_status == STATUS(ERROR);
  res->records_processed = ended ? e->records_processed : 0;
  res->bytes_processed = res->bytes_written = 0; /* appflowd moves no data */
  /* what an SAP OData source asks for (its parallelism and page size), else one process */
  const Appflow__V1__SAPODataSourceProperties *sap = c->sap;
  res->num_parallel_processes =
      sap && sap->parallelism_config ? sap->parallelism_config->max_parallelism : 1;
  res->has_max_page_size = sap && sap->pagination_config;
  res->max_page_size = res->has_max_page_size ? sap->pagination_config->max_page_size : 0;
  res->has_records_processed = res->has_bytes_processed = res->has_bytes_written = true;
  res->has_num_parallel_processes = true;
  if (r->execution_status == STATUS(ERROR)) {
    res->error_info = af_arena_alloc(a, sizeof *res->error_info);
    if (res->error_info == NULL)
      return NULL;
    appflow__v1__error_info__init(res->error_info);
    res->error_info->execution_message = af_arena_strndup(a, e->message, strlen(e->message));
    res->error_info->put_failures_count = 0;
    res->error_info->has_put_failures_count = true;
  }
  r->execution_result = res;
  if (!af__catalog_details(a, c->glue, c->name, c->len, e, c->c.now_ms,
                           &r->n_metadata_catalog_details, &r->metadata_catalog_details))
    return NULL;
  if (r->execution_id == NULL || r->started_at == NULL || r->last_updated_at == NULL ||
      r->data_pull_start_time == NULL || r->data_pull_end_time == NULL)
    return NULL;
  return r;
}

/* What the records need of the flow's definition: its Glue catalog and, for an SAP OData
 * source, the source's settings. Read from the packed bytes, each message unpacked alone: the
 * whole definition was most of a call's work. false when out of memory or malformed. */
static bool read_definition(records_call *c, const af_flow_record *cur) {
  af_arena *a = c->c.to.arena;
  bool sap = af__connector_value(c->c.svc, cur->source_connector) ==
             APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SAPO_DATA;
  uint64_t catalog_key = (uint64_t)c->c.svc->fields.metadata_catalog_config << 3 | 2;
  uint64_t source_key = (uint64_t)c->c.svc->fields.source_flow_config << 3 | 2;
  const uint8_t *p = cur->definition.data;
  const uint8_t *end = cur->definition.len ? p + cur->definition.len : p;
  af_bytes catalog = {NULL, 0}, source = {NULL, 0};
  while (p < end) {
    uint64_t key;
    const uint8_t *data;
    size_t len;
    if (!af__wire_field(&p, end, &key, &data, &len))
      return false;
    if (key == catalog_key) /* one in a packed definition: the last would win */
      catalog = (af_bytes){data, len};
    else if (key == source_key)
      source = (af_bytes){data, len};
  }
  if (catalog.data != NULL) {
    Appflow__V1__MetadataCatalogConfig *m =
        appflow__v1__metadata_catalog_config__unpack(&a->allocator, catalog.len, catalog.data);
    if (m == NULL)
      return false;
    c->glue = m->glue_data_catalog;
  }
  if (sap && source.data != NULL) {
    Appflow__V1__SourceFlowConfig *src =
        appflow__v1__source_flow_config__unpack(&a->allocator, source.len, source.data);
    if (src == NULL)
      return false;
    c->sap = src->source_connector_properties != NULL ? src->source_connector_properties->sapo_data
                                                      : NULL;
  }
  return true;
}

/* The page: the runs after the token, newest first, each unpacked as it is reached (a flow
 * started often keeps a hundred). */
static af_store_verdict records_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  records_call *c = ctx;
  af_arena *a = c->c.to.arena;
  c->glue = NULL;
  c->sap = NULL;
  af_packed_runs *log = af__runs_split(cur->runs, a);
  size_t max = c->req->has_max_results ? (size_t)c->req->max_results : PAGE_DEFAULT;
  Appflow__V1__ExecutionRecord **v = af_arena_alloc(a, max * sizeof *v);
  if (log == NULL || v == NULL || !read_definition(c, cur)) {
    c->oom = true;
    return AF_STORE_KEEP;
  }
  size_t n = 0, i = 0;
  const Appflowd__Store__V1__Execution *e = NULL, *last = NULL;
  for (; i < log->n_runs && n < max; i++) {
    e = appflowd__store__v1__execution__unpack(&a->allocator, log->runs[i].len, log->runs[i].data);
    if (e == NULL || (after_token(c, e) && (v[n++] = record_of(c, e)) == NULL)) {
      c->oom = true;
      return AF_STORE_KEEP;
    }
    last = e;
  }
  c->resp->flow_executions = v;
  c->resp->n_flow_executions = n;
  if (i < log->n_runs && n == max) {
    char pos[AF_FLOW_NAME_MAX + 1];
    snprintf(pos, sizeof pos, "%lld:%s", (long long)last->started_ms, last->execution_id);
    c->oom |=
        (c->resp->next_token = af__page_token(&c->c, RECORDS_DOMAIN, pos, strlen(pos), a)) == NULL;
  }
  return AF_STORE_KEEP;
}

static void records_done(af_store_op *op, af_store_rc rc) {
  records_call *c = (records_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  af__call_end(&c->c, e);
}

void af__describe_flow_execution_records(af_flows *svc, const ProtobufCMessage *msg,
                                         ProtobufCMessage *out, const af_reply_to *to) {
  records_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__DescribeFlowExecutionRecordsRequest *)msg;
  c->resp = (Appflow__V1__DescribeFlowExecutionRecordsResponse *)out;
  if (!af__call_check_name(&c->c, c->req->flow_name, &c->len))
    return;
  c->name = c->req->flow_name;
  if (c->req->next_token != NULL) {
    af_err e = af__page_token_read(&c->c, RECORDS_DOMAIN, "DescribeFlowExecutionRecords",
                                   c->req->next_token, c->after, &c->after_len, to->err);
    if (e != AF_OK) {
      af__call_end(&c->c, e);
      return;
    }
  }
  c->c.op.with_definition = true; /* for its metadataCatalogConfig */
  af__call_modify(&c->c, c->name, c->len, records_rule, records_done);
}

/* ---- CancelFlowExecutions ---- */

typedef struct cancel_call {
  af_call c;
  const Appflow__V1__CancelFlowExecutionsRequest *req;
  Appflow__V1__CancelFlowExecutionsResponse *resp;
  const char *name;
  size_t len;
  size_t cancelled;
  bool oom;
} cancel_call;

static bool in_progress(const Appflowd__Store__V1__Execution *e, int64_t now_ms) {
  int64_t since;
  return af__execution_status(e, now_ms, &since) == STATUS(IN_PROGRESS);
}

/* The execution called id, or NULL. */
static Appflowd__Store__V1__Execution *find(Appflowd__Store__V1__RunLog *log, const char *id) {
  for (size_t i = 0; i < log->n_executions; i++)
    if (strcmp(log->executions[i]->execution_id, id) == 0)
      return log->executions[i];
  return NULL;
}

/* Cancels the runs asked for (every one in progress when none are named); the others asked for
 * are the answer's invalidExecutions. */
static af_store_verdict cancel_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  cancel_call *c = ctx;
  af_arena *a = c->c.to.arena;
  int64_t now = c->c.now_ms;
  Appflowd__Store__V1__RunLog *log = af_flows_runs(cur->runs, a);
  const Appflow__V1__CancelFlowExecutionsRequest *q = c->req;
  char **invalid =
      af_arena_alloc(a, (q->n_execution_ids ? q->n_execution_ids : 1) * sizeof *invalid);
  if (log == NULL || invalid == NULL) {
    c->oom = true;
    return AF_STORE_REFUSE;
  }
  size_t ninvalid = 0;
  c->cancelled = 0;
  for (size_t i = 0; q->n_execution_ids == 0 && i < log->n_executions; i++)
    if (in_progress(log->executions[i], now)) {
      log->executions[i]->cancel_ms = now;
      c->cancelled++;
    }
  for (size_t i = 0; i < q->n_execution_ids; i++) {
    Appflowd__Store__V1__Execution *e = find(log, q->execution_ids[i]);
    if (e != NULL && in_progress(e, now)) {
      e->cancel_ms = now;
      c->cancelled++;
    } else {
      invalid[ninvalid++] = q->execution_ids[i];
    }
  }
  c->resp->invalid_executions = invalid;
  c->resp->n_invalid_executions = ninvalid;
  if (c->cancelled == 0)
    return AF_STORE_KEEP;
  if (!af__pack(&log->base, a, &next->runs)) {
    c->oom = true;
    return AF_STORE_REFUSE;
  }
  next->updated_ms = now;
  return AF_STORE_WRITE;
}

static void cancel_done(af_store_op *op, af_store_rc rc) {
  cancel_call *c = (cancel_call *)af__call_of(op);
  af_err e = c->oom ? af_flows_oom(c->c.to.err) : af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK && c->cancelled > 0)
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "flow %s: %zu run(s) cancelled", c->name,
                  c->cancelled);
  af__call_end(&c->c, e);
}

void af__cancel_flow_executions(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                const af_reply_to *to) {
  cancel_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->req = (const Appflow__V1__CancelFlowExecutionsRequest *)msg;
  c->resp = (Appflow__V1__CancelFlowExecutionsResponse *)out;
  if (!af__call_check_name(&c->c, c->req->flow_name, &c->len))
    return;
  c->name = c->req->flow_name;
  af__call_modify(&c->c, c->name, c->len, cancel_rule, cancel_done);
}
