/* Deleting what others may use: a connector profile (used by flows) and a custom connector
 * (used by profiles) are deleted only when nothing uses them, unless forceDelete says so.
 *
 * The users are found by scanning their table's columns (a flow's source_profile and
 * destination_profile, a profile's connector label), a page at a time, so a database store
 * never sends a million rows at once and no definition is unpacked. */
#include "flows/internal.h"

#include <stdio.h>
#include <string.h>

/* Users looked at per scan. */
#define USERS_PAGE 1024

typedef struct delete_call {
  af_call c;
  const af_delete_spec *spec;
  const char *name;
  size_t len;
  char user[AF_FLOW_NAME_MAX + 1]; /* one that uses the record */
  char last[AF_FLOW_NAME_MAX + 1]; /* the last record the scan looked at */
  size_t seen;                     /* records looked at by this page's scan */
} delete_call;

static af_store_verdict delete_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

static void delete_done(af_store_op *op, af_store_rc rc) {
  delete_call *c = (delete_call *)af__call_of(op);
  af_err e = rc == AF_STORE_NOT_FOUND ? c->spec->missing(c->c.to.err, c->name)
                                      : af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK)
    af_log_printf(c->c.svc->log, AF_LOG_INFO, "%s %s: deleted", c->spec->log_what, c->name);
  af__call_end(&c->c, e);
}

static void delete_now(delete_call *c) {
  c->c.op = (af_store_op){.table = c->spec->table, .ctx = c, .deadline_ms = c->c.op.deadline_ms};
  af__op_scope(&c->c.op, c->c.tenant);
  af__call_modify(&c->c, c->name, c->len, delete_rule, delete_done);
}

static bool user_visit(const af_flow_record *r, void *ctx) {
  delete_call *c = ctx;
  c->seen++;
  snprintf(c->last, sizeof c->last, "%.*s", (int)r->name_len, r->name);
  if (!c->spec->uses(r, c->name))
    return true;
  snprintf(c->user, sizeof c->user, "%.*s", (int)r->name_len, r->name);
  return false;
}

static void users_scanned(af_store_op *op, af_store_rc rc);

/* The next page of users after c->last (the first when it is empty). */
static void scan_users(delete_call *c) {
  c->seen = 0;
  c->c.op = (af_store_op){.table = c->spec->users_table,
                          .key = c->last[0] != '\0' ? c->last : NULL,
                          .key_len = strlen(c->last),
                          .visit = user_visit,
                          .ctx = c,
                          .limit = USERS_PAGE,
                          .deadline_ms = c->c.op.deadline_ms,
                          .done = users_scanned};
  af__op_scope(&c->c.op, c->c.tenant);
  af_store_scan(c->c.svc->store, &c->c.op);
}

static void users_scanned(af_store_op *op, af_store_rc rc) {
  delete_call *c = (delete_call *)af__call_of(op);
  char esc[600], user[600];
  af_err e = af__store_error(&c->c, rc, c->name, c->len);
  if (e == AF_OK && c->user[0] == '\0' && c->seen == USERS_PAGE) {
    scan_users(c); /* more to look at */
    return;
  }
  if (e == AF_OK && c->user[0] != '\0')
    e = af_error_set(c->c.to.err, AF_ERR_CONFLICT, "%s %s is in use by %s %s: %s", c->spec->what,
                     af_escape(esc, sizeof esc, c->name, c->len), c->spec->user_what,
                     af_escape(user, sizeof user, c->user, strlen(c->user)), c->spec->hint);
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  delete_now(c);
}

/* The record exists: its users are looked for. */
static void found(af_store_op *op, af_store_rc rc) {
  delete_call *c = (delete_call *)af__call_of(op);
  af_err e = rc == AF_STORE_NOT_FOUND ? c->spec->missing(c->c.to.err, c->name)
                                      : af__store_error(&c->c, rc, c->name, c->len);
  if (e != AF_OK) {
    af__call_end(&c->c, e);
    return;
  }
  scan_users(c);
}

void af__delete_unless_used(af_flows *svc, const af_reply_to *to, const af_delete_spec *spec,
                            const char *name, bool force) {
  delete_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->spec = spec;
  c->name = name;
  c->len = strlen(name);
  if (force) {
    delete_now(c);
    return;
  }
  /* first whether it exists: what forceDelete removed may still be named by its users, and
   * deleting it again is a ResourceNotFoundException, not a conflict */
  c->c.op.table = spec->table;
  af__call_modify(&c->c, name, c->len, af__keep_rule, found);
}
