/* The service's whole state as seed entries (the admin listener's GET /state), and a reset to
 * none (POST /reset), over every account and region's scope.
 *
 * State: each scope's tables are read a page at a time with their definitions, copied, sorted
 * by name (the memory store's order is a keyed hash, so two processes list the same records in
 * two orders) and turned back into the requests that made them: a profile's and a
 * registration's stored request, a flow's packed CreateFlowRequest with its name, description and
 * tags as the record has them now. A profile's credentials are dropped here, so no caller of
 * af_flows_state can leak them.
 *
 * Reset: each scope's records are read a page at a time (names only) and deleted one by one,
 * then the scheduler's rows but the instances' leases; a store has no "delete all", and one op
 * per record keeps every store's rules (a database's, a replica's) as they are. */
#include "flows/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records read at a time. */
#define PAGE 256
#define INSTANCE_ROW "instance:"

/* ---- reading a table page by page ---- */

typedef struct pages {
  af_flows *svc;
  af_store_table table;
  const char *scope; /* NULL: the default */
  bool with_definition;
  af_store_visit visit;
  af_store_rc (*after)(void *ctx); /* between pages, the store free; may be NULL */
  void *ctx;
  char last[AF_STORE_SCOPE_MAX + AF_FLOW_NAME_MAX * 4 + 64]; /* where the next page resumes */
  size_t seen;
} pages;

static bool page_visit(const af_flow_record *r, void *ctx) {
  pages *p = ctx;
  p->seen++;
  snprintf(p->last, sizeof p->last, "%.*s", (int)r->name_len, r->name);
  return p->visit(r, p->ctx);
}

static af_store_rc scan_pages(pages *p) {
  af_store_rc rc;
  p->last[0] = '\0';
  do {
    char resume[sizeof p->last];
    memcpy(resume, p->last, sizeof resume);
    p->seen = 0;
    af_store_op op = {.table = p->table,
                      .scope = p->scope,
                      .scope_len = p->scope != NULL ? strlen(p->scope) : 0,
                      .key = resume[0] ? resume : NULL,
                      .key_len = strlen(resume),
                      .visit = page_visit,
                      .ctx = p,
                      .limit = PAGE,
                      .with_definition = p->with_definition};
    rc = af_store_run(p->svc->store, af_store_scan, &op);
    if (rc == AF_STORE_OK && p->after != NULL)
      rc = p->after(p->ctx);
  } while (rc == AF_STORE_OK && p->seen == PAGE);
  return rc;
}

static af_err store_failed(af_store_rc rc, af_error *err) {
  if (rc == AF_STORE_BUSY || rc == AF_STORE_UNAVAILABLE)
    return af_error_set(err, AF_ERR_UNAVAILABLE,
                        "appflowd's store is unavailable or did not answer in time: retry later");
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "appflowd's store failed (the server log says why)");
}

/* ---- the scopes, in a stable order ---- */

typedef struct scope_list {
  char (*v)[AF_STORE_SCOPE_MAX + 1]; /* v[0] is "" (the default) */
  size_t n, cap;
} scope_list;

static af_store_rc add_scope(void *ctx, const char *scope) {
  scope_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    void *v = realloc(l->v, cap * sizeof *l->v);
    if (v == NULL)
      return AF_STORE_FAILED;
    l->v = v;
    l->cap = cap;
  }
  snprintf(l->v[l->n++], sizeof l->v[0], "%s", scope != NULL ? scope : "");
  return AF_STORE_OK;
}

static int by_string(const void *a, const void *b) { return strcmp(a, b); }

/* Every scope: the default first, then the others by name. */
static af_store_rc list_scopes(af_flows *svc, scope_list *l) {
  af_store_rc rc = af__scopes_each(svc, add_scope, l);
  if (rc == AF_STORE_OK && l->n > 1)
    qsort(l->v + 1, l->n - 1, sizeof l->v[0], by_string);
  return rc;
}

/* ---- state ---- */

/* A record copied out of a scan. */
typedef struct rec_copy {
  char *name, *description, *status_message;
  af_bytes definition, tags;
  uint8_t status;
} rec_copy;

typedef struct table_copy {
  af_arena *arena;
  rec_copy *v; /* malloc'd */
  size_t n, cap;
  bool oom;
} table_copy;

static af_bytes bytes_dup(af_arena *a, af_bytes b, bool *oom) {
  if (b.len == 0)
    return (af_bytes){NULL, 0};
  uint8_t *d = af_arena_alloc(a, b.len);
  *oom |= d == NULL;
  if (d != NULL)
    memcpy(d, b.data, b.len);
  return (af_bytes){d, d != NULL ? b.len : 0};
}

static bool copy_visit(const af_flow_record *r, void *ctx) {
  table_copy *t = ctx;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    rec_copy *v = realloc(t->v, cap * sizeof *v);
    if (v == NULL) {
      t->oom = true;
      return false;
    }
    t->v = v;
    t->cap = cap;
  }
  rec_copy *c = &t->v[t->n++];
  c->name = af_arena_strndup(t->arena, r->name, r->name_len);
  c->description = af_flows_strdup(t->arena, r->description, &t->oom);
  c->status_message = af_flows_strdup(t->arena, r->status_message, &t->oom);
  c->definition = bytes_dup(t->arena, r->definition, &t->oom);
  c->tags = bytes_dup(t->arena, r->tags, &t->oom);
  c->status = r->status;
  t->oom |= c->name == NULL;
  return !t->oom;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const rec_copy *)a)->name, ((const rec_copy *)b)->name);
}

/* What one scope's state visit needs. */
typedef struct state_run {
  af_flows *svc;
  bool (*visit)(const af_state_entry *e, void *ctx);
  void *ctx;
  af_arena arena; /* one table's copies and messages at a time */
  af_state_entry entry;
  bool stopped;
} state_run;

static ProtobufCMessage *registration_of(const rec_copy *r, af_arena *a) {
  Appflowd__Store__V1__Registration *g = appflowd__store__v1__registration__unpack(
      &a->allocator, r->definition.len, r->definition.data);
  Appflow__V1__RegisterConnectorRequest *q =
      g != NULL ? appflow__v1__register_connector_request__unpack(&a->allocator, g->request.len,
                                                                  g->request.data)
                : NULL;
  if (q == NULL)
    return NULL;
  q->connector_label = r->name;
  q->client_token = NULL;
  return &q->base;
}

static ProtobufCMessage *profile_of(const rec_copy *r, af_arena *a) {
  Appflowd__Store__V1__Profile *p =
      appflowd__store__v1__profile__unpack(&a->allocator, r->definition.len, r->definition.data);
  Appflow__V1__CreateConnectorProfileRequest *q =
      p != NULL ? appflow__v1__create_connector_profile_request__unpack(
                      &a->allocator, p->request.len, p->request.data)
                : NULL;
  if (q == NULL)
    return NULL;
  q->connector_profile_name = r->name;
  q->client_token = NULL;
  if (q->connector_profile_config != NULL) /* the secret: never leaves the store */
    q->connector_profile_config->connector_profile_credentials = NULL;
  return &q->base;
}

static ProtobufCMessage *flow_of(const rec_copy *r, af_arena *a) {
  Appflow__V1__CreateFlowRequest *q = appflow__v1__create_flow_request__unpack(
      &a->allocator, r->definition.len, r->definition.data);
  if (q == NULL)
    return NULL;
  q->flow_name = r->name;
  q->client_token = NULL;
  q->description = r->description;
  if (!af_flows_tag_entries(r->tags, &appflow__v1__create_flow_request__tags_entry__descriptor, a,
                            &q->n_tags, (af_map_entry ***)&q->tags))
    return NULL;
  return &q->base;
}

/* Visits one table's copies, by name. false when a record cannot be read or visit stopped. */
static bool visit_table(state_run *s, table_copy *t, af_state_kind kind) {
  if (t->n > 1)
    qsort(t->v, t->n, sizeof *t->v, by_name);
  for (size_t i = 0; i < t->n; i++) {
    const rec_copy *r = &t->v[i];
    if (r->definition.len == 0) /* a flow seeded without one: nothing would make it again */
      continue;
    ProtobufCMessage *m = kind == AF_STATE_CONNECTOR ? registration_of(r, &s->arena)
                          : kind == AF_STATE_PROFILE ? profile_of(r, &s->arena)
                                                     : flow_of(r, &s->arena);
    s->entry.kind = kind;
    s->entry.request = m;
    s->entry.status = (Appflow__V1__FlowStatus)r->status;
    s->entry.status_message = kind == AF_STATE_FLOW ? r->status_message : NULL;
    if (m == NULL || !s->visit(&s->entry, s->ctx))
      return false;
  }
  return true;
}

static const af_store_table kinds_tables[] = {AF_TABLE_CONNECTORS, AF_TABLE_PROFILES,
                                              AF_TABLE_FLOWS};

/* One scope's three tables, in the order that loads: registrations, profiles, flows. */
static af_err state_scope(state_run *s, const char *scope, af_error *err) {
  for (int k = 0; k < 3; k++) {
    af_arena_reset(&s->arena);
    table_copy t = {.arena = &s->arena};
    pages p = {.svc = s->svc,
               .table = kinds_tables[k],
               .scope = *scope ? scope : NULL,
               .with_definition = true,
               .visit = copy_visit,
               .ctx = &t};
    af_store_rc rc = scan_pages(&p);
    bool ok = rc == AF_STORE_OK && !t.oom && visit_table(s, &t, (af_state_kind)k);
    free(t.v);
    if (rc != AF_STORE_OK && !t.oom)
      return store_failed(rc, err);
    if (!ok)
      return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                          "out of memory, or a record the store holds cannot be read");
  }
  return AF_OK;
}

af_err af_flows_state(af_flows *svc, bool (*visit)(const af_state_entry *e, void *ctx), void *ctx,
                      af_error *err) {
  scope_list l = {0};
  af_store_rc rc = list_scopes(svc, &l);
  if (rc != AF_STORE_OK) {
    free(l.v);
    return store_failed(rc, err);
  }
  state_run s = {.svc = svc, .visit = visit, .ctx = ctx};
  af_arena_init(&s.arena);
  af_err e = AF_OK;
  for (size_t i = 0; e == AF_OK && i < l.n; i++) {
    char account[16], region[64];
    const char *slash = strchr(l.v[i], '/');
    if (slash == NULL) { /* the default scope */
      snprintf(account, sizeof account, "%s", svc->home.account);
      snprintf(region, sizeof region, "%s", svc->home.region);
    } else {
      snprintf(account, sizeof account, "%.*s", (int)(slash - l.v[i]), l.v[i]);
      snprintf(region, sizeof region, "%s", slash + 1);
    }
    s.entry = (af_state_entry){.account = account, .region = region};
    e = state_scope(&s, l.v[i], err);
  }
  af_arena_destroy(&s.arena);
  free(l.v);
  return e;
}

/* ---- reset ---- */

/* One page of names to delete, read by a scan and deleted after it. */
typedef struct doomed {
  af_flows *svc;
  af_store_table table;
  const char *scope;
  af_arena arena;
  char **names;  /* PAGE, in the arena */
  char **tokens; /* each flow's clientToken (NULL for none) */
  size_t n;
  size_t removed;
  bool oom;
} doomed;

static af_store_verdict delete_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

static bool is_lease(const af_flow_record *r) {
  size_t n = strlen(INSTANCE_ROW);
  return r->name_len >= n && memcmp(r->name, INSTANCE_ROW, n) == 0;
}

static bool doomed_visit(const af_flow_record *r, void *ctx) {
  doomed *d = ctx;
  if (d->table == AF_TABLE_TIMERS && is_lease(r))
    return true; /* the instances' leases stay: they say who is serving */
  bool oom = false;
  d->names[d->n] = af_arena_strndup(&d->arena, r->name, r->name_len);
  d->tokens[d->n] = af_flows_strdup(&d->arena, r->create_token, &oom);
  d->oom |= oom || d->names[d->n] == NULL;
  d->n += !d->oom;
  return !d->oom;
}

/* Deletes key in d's table and scope: OK (deleted) or NOT_FOUND (gone already) or the error. */
static af_store_rc delete_one(doomed *d, const char *key, size_t len) {
  af_store_op op = {.table = d->table,
                    .scope = d->scope,
                    .scope_len = d->scope != NULL ? strlen(d->scope) : 0,
                    .key = key,
                    .key_len = len,
                    .rule = delete_rule};
  return af_store_run(d->svc->store, af_store_modify, &op);
}

/* A flow's clientToken record (create.c keeps it under AF_CREATE_TOKEN_KEY), so a new flow may
 * take the token at once. */
static af_store_rc delete_token(doomed *d, const char *token) {
  size_t plen = strlen(AF_CREATE_TOKEN_KEY), tlen = strlen(token);
  char *key = af_arena_alloc(&d->arena, plen + tlen + 1);
  if (key == NULL)
    return AF_STORE_FAILED;
  memcpy(key, AF_CREATE_TOKEN_KEY, plen);
  memcpy(key + plen, token, tlen + 1);
  af_store_rc rc = delete_one(d, key, plen + tlen);
  return rc == AF_STORE_NOT_FOUND ? AF_STORE_OK : rc;
}

static af_store_rc delete_page(void *ctx) {
  doomed *d = ctx;
  af_store_rc rc = d->oom ? AF_STORE_FAILED : AF_STORE_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < d->n; i++) {
    rc = delete_one(d, d->names[i], strlen(d->names[i]));
    d->removed += rc == AF_STORE_OK;
    if (rc == AF_STORE_NOT_FOUND) /* deleted by someone else meanwhile */
      rc = AF_STORE_OK;
    if (rc == AF_STORE_OK && d->tokens[i] != NULL)
      rc = delete_token(d, d->tokens[i]);
  }
  d->n = 0;
  af_arena_reset(&d->arena);
  d->names = af_arena_alloc(&d->arena, PAGE * sizeof *d->names);
  d->tokens = af_arena_alloc(&d->arena, PAGE * sizeof *d->tokens);
  d->oom |= d->names == NULL || d->tokens == NULL;
  return rc == AF_STORE_OK && d->oom ? AF_STORE_FAILED : rc;
}

/* Deletes every record of table t in scope ("" for the default); how many in *removed. */
static af_store_rc clear_table(af_flows *svc, af_store_table t, const char *scope,
                               size_t *removed) {
  doomed d = {.svc = svc, .table = t, .scope = *scope ? scope : NULL};
  af_arena_init(&d.arena);
  d.names = af_arena_alloc(&d.arena, PAGE * sizeof *d.names);
  d.tokens = af_arena_alloc(&d.arena, PAGE * sizeof *d.tokens);
  af_store_rc rc = AF_STORE_FAILED;
  if (d.names != NULL && d.tokens != NULL) {
    pages p = {.svc = svc,
               .table = t,
               .scope = d.scope,
               .visit = doomed_visit,
               .after = delete_page,
               .ctx = &d};
    rc = scan_pages(&p);
  }
  *removed += d.removed;
  af_arena_destroy(&d.arena);
  return rc;
}

/* Every scope's flows, profiles and registrations. */
static af_store_rc clear_scopes(af_flows *svc, const scope_list *l, af_reset_result *res) {
  af_store_rc rc = AF_STORE_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < l->n; i++) {
    rc = clear_table(svc, AF_TABLE_FLOWS, l->v[i], &res->flows);
    if (rc == AF_STORE_OK)
      rc = clear_table(svc, AF_TABLE_PROFILES, l->v[i], &res->profiles);
    if (rc == AF_STORE_OK)
      rc = clear_table(svc, AF_TABLE_CONNECTORS, l->v[i], &res->connectors);
  }
  return rc;
}

af_err af_flows_reset(af_flows *svc, af_reset_result *res, af_error *err) {
  af_reset_result ignored;
  if (res == NULL)
    res = &ignored;
  *res = (af_reset_result){0};
  scope_list l = {0};
  af_store_rc rc = list_scopes(svc, &l);
  if (rc == AF_STORE_OK)
    rc = clear_scopes(svc, &l, res);
  /* the scheduler's rows last: the scope rows name what the steps above visit */
  if (rc == AF_STORE_OK)
    rc = clear_table(svc, AF_TABLE_TIMERS, "", &res->timers);
  free(l.v);
  if (rc != AF_STORE_OK)
    return store_failed(rc, err);
  atomic_store(&svc->clock_offset_ms, 0);
  af__scopes_forget(svc);
  af_catalog_clear_profile_entities(svc->catalog);
  af_log_printf(svc->log, AF_LOG_INFO,
                "reset: removed %zu flows, %zu connector profiles, %zu custom connectors, %zu "
                "scheduler rows",
                res->flows, res->profiles, res->connectors, res->timers);
  return AF_OK;
}
