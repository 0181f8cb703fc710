/* The SQLite store: flows, connector profiles and custom connectors in one database file (a
 * table each, all with the same columns), kept across restarts and crashes.
 *
 * One thread owns the database connection. It takes every op waiting in the queue (up to
 * BATCH_MAX), runs them all in one write transaction and commits once, then completes them:
 * concurrent writers share one commit (group commit), so the cost of making a change durable
 * is paid per group, not per request. An op is completed only after its transaction committed,
 * so an acknowledged change is in the file: with synchronous=NORMAL (WAL) it survives the
 * process being killed, with FULL the machine losing power too.
 *
 * Each op writes at most one row with one statement, so an op is applied whole or not at all;
 * a group whose commit fails answers every op that wrote with AF_STORE_FAILED. */
#include "flows/store.h"
#include "flows/store_queue.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 1024
/* Deferred inserts (a seed) share one transaction until this many are in it: a commit of a few
 * hundred seeded flows rewrote each leaf page it touched, and a seed touches each leaf again
 * and again. */
#define DEFERRED_MAX 32768
#define CACHE_KIB 65536 /* page cache: enough for a million flows' index to stay in memory */

/* A table's statements; each table has its own set, prepared at open. */
enum stmt_id {
  ST_SELECT,
  ST_SELECT_BARE, /* ... without the definition */
  ST_INSERT,
  ST_UPDATE,
  ST_UPDATE_NODEF, /* an update leaving the definition (up to 64 KiB) as it is */
  ST_DELETE,
  ST_SCAN,
  ST_SCAN_DEF, /* ... with the definitions */
  ST_COUNT
};

/* The statements that name no table. */
enum txn_id { TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_COUNT };

#define STR(x) #x
#define XSTR(x) STR(x)

/* Column order of every SELECT and of the INSERT, so one reader fills a record from any. */
#define BARE_COLUMNS /* COLUMNS without the definition */                                          \
  "name, version, trigger_type, status, create_status, created_ms, updated_ms, description, "      \
  "source_connector, destination_connector, create_token, tags, runs, created_by, updated_by, "    \
  "status_message, source_profile, destination_profile"
#define COLUMNS BARE_COLUMNS ", definition"
#define COL_DEFINITION 18
#define SET_MUTABLE                                                                                \
  "version = version + 1, trigger_type = ?2, status = ?3, create_status = ?4, created_ms = ?5, "   \
  "updated_ms = ?6, description = ?7, source_connector = ?8, destination_connector = ?9, "         \
  "create_token = ?10, tags = ?11, runs = ?12, created_by = ?13, updated_by = ?14, "               \
  "status_message = ?15, source_profile = ?16, destination_profile = ?17"
/* A scan's rows lie between two names (af__db_scan_bounds: one scope's, never the private
 * keys, which start with AF_STORE_PRIVATE_KEY) */
#define SCAN                                                                                       \
  " WHERE name > ?1 AND name < ?3 AND (?4 = 0 OR runs IS NOT NULL) ORDER BY name LIMIT ?2"

/* Each statement is head, the table's name, tail: the SQL is made per table at open (from
 * literals only, so nothing a caller sends is ever part of it). */
static const struct {
  const char *head, *tail;
} sql[ST_COUNT] = {
    [ST_SELECT] = {"SELECT " COLUMNS " FROM ", " WHERE name = ?1"},
    [ST_SELECT_BARE] = {"SELECT " BARE_COLUMNS " FROM ", " WHERE name = ?1"},
    [ST_INSERT] = {"INSERT INTO ",
                   " (" COLUMNS ") VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                   "?13, ?14, ?15, ?16, ?17, ?18) ON CONFLICT (name) DO NOTHING"},
    [ST_UPDATE] = {"UPDATE ", " SET " SET_MUTABLE ", definition = ?18 WHERE name = ?1"},
    [ST_UPDATE_NODEF] = {"UPDATE ", " SET " SET_MUTABLE " WHERE name = ?1"},
    [ST_DELETE] = {"DELETE FROM ", " WHERE name = ?1"},
    [ST_SCAN] = {"SELECT " BARE_COLUMNS " FROM ", SCAN},
    [ST_SCAN_DEF] = {"SELECT " COLUMNS " FROM ", SCAN},
};

static const char *const txn_sql[TX_COUNT] = {
    [TX_BEGIN] = "BEGIN IMMEDIATE",
    [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",
};

/* Every table of schema version 3 has these columns; a version 1 appflowd_flows lacks the last
 * five, a version 2 one the last two (migrations). */
#define TABLE_COLUMNS                                                                              \
  " (name TEXT PRIMARY KEY, version INTEGER NOT NULL,"                                             \
  " trigger_type INTEGER NOT NULL, status INTEGER NOT NULL, create_status INTEGER NOT NULL,"       \
  " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"                                     \
  " description TEXT, source_connector TEXT, destination_connector TEXT, create_token TEXT,"       \
  " definition BLOB, tags BLOB, runs BLOB,"                                                        \
  " created_by TEXT, updated_by TEXT, status_message TEXT,"                                        \
  " source_profile TEXT, destination_profile TEXT) WITHOUT ROWID"

/* What a database of version v needs to be one of version v + 1 (in the open transaction);
 * the tables versions 3 and 4 added are made as on a new database (make_tables). */
static const char *const migrations[AF_STORE_SCHEMA_VERSION] = {
    [1] = "ALTER TABLE appflowd_flows ADD COLUMN created_by TEXT;"
          "ALTER TABLE appflowd_flows ADD COLUMN updated_by TEXT;"
          "ALTER TABLE appflowd_flows ADD COLUMN status_message TEXT;",
    [2] = "ALTER TABLE appflowd_flows ADD COLUMN source_profile TEXT;"
          "ALTER TABLE appflowd_flows ADD COLUMN destination_profile TEXT;",
};

enum op_kind { OP_INSERT = 1, OP_MODIFY, OP_SCAN };

typedef struct sqlite_store {
  af_store base;
  sqlite3 *db;
  sqlite3_stmt *st[AF_STORE_TABLES][ST_COUNT];
  sqlite3_stmt *tx[TX_COUNT];
  af_store_queue queue;
  pthread_t thread;
  bool thread_running;
  double timeout;
  size_t deferred; /* rows of deferred inserts in the transaction left open; 0: none is open */
  char *scratch;   /* the writer's copy of a row's values while it is rewritten */
  size_t scratch_cap;
  char path[1024];
} sqlite_store;

/* ---- reading and writing rows ---- */

static const char *text_or_null(sqlite3_stmt *st, int col) {
  return sqlite3_column_type(st, col) == SQLITE_NULL ? NULL
                                                     : (const char *)sqlite3_column_text(st, col);
}

static af_bytes blob_of(sqlite3_stmt *st, int col) {
  const void *p = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p != NULL && n > 0 ? (af_bytes){p, (size_t)n} : (af_bytes){NULL, 0};
}

/* The row st is on, as a record; pointers valid until st steps or resets. */
static af_flow_record read_row(sqlite3_stmt *st, bool with_definition) {
  return (af_flow_record){
      .name = (const char *)sqlite3_column_text(st, 0),
      .name_len = (size_t)sqlite3_column_bytes(st, 0),
      .version = (uint64_t)sqlite3_column_int64(st, 1),
      .trigger = (uint8_t)sqlite3_column_int(st, 2),
      .status = (uint8_t)sqlite3_column_int(st, 3),
      .create_status = (uint8_t)sqlite3_column_int(st, 4),
      .created_ms = sqlite3_column_int64(st, 5),
      .updated_ms = sqlite3_column_int64(st, 6),
      .description = text_or_null(st, 7),
      .source_connector = text_or_null(st, 8),
      .destination_connector = text_or_null(st, 9),
      .create_token = text_or_null(st, 10),
      .tags = blob_of(st, 11),
      .runs = blob_of(st, 12),
      .created_by = text_or_null(st, 13),
      .updated_by = text_or_null(st, 14),
      .status_message = text_or_null(st, 15),
      .source_profile = text_or_null(st, 16),
      .destination_profile = text_or_null(st, 17),
      .definition = with_definition ? blob_of(st, COL_DEFINITION) : (af_bytes){NULL, 0},
  };
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s != NULL)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, af_bytes b) {
  if (b.len > 0)
    sqlite3_bind_blob64(st, i, b.data, b.len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* Binds ?1 (the name) to ?17 from r, and ?18 (the definition) when with_definition. */
static void bind_record(sqlite3_stmt *st, const af_flow_record *r, bool with_definition) {
  sqlite3_bind_text(st, 1, r->name, (int)r->name_len, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, r->trigger);
  sqlite3_bind_int(st, 3, r->status);
  sqlite3_bind_int(st, 4, r->create_status);
  sqlite3_bind_int64(st, 5, r->created_ms);
  sqlite3_bind_int64(st, 6, r->updated_ms);
  bind_text(st, 7, r->description);
  bind_text(st, 8, r->source_connector);
  bind_text(st, 9, r->destination_connector);
  bind_text(st, 10, r->create_token);
  bind_blob(st, 11, r->tags);
  bind_blob(st, 12, r->runs);
  bind_text(st, 13, r->created_by);
  bind_text(st, 14, r->updated_by);
  bind_text(st, 15, r->status_message);
  bind_text(st, 16, r->source_profile);
  bind_text(st, 17, r->destination_profile);
  if (with_definition)
    bind_blob(st, 18, r->definition);
}

static void done_with(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

/* Says why a statement failed, once, and what the op then answers. */
static af_store_rc failed(sqlite_store *s, sqlite3_stmt *st, int rc) {
  af_log_printf(s->base.log, AF_LOG_WARN, "store %s: %s: %s", s->base.display, sqlite3_sql(st),
                sqlite3_errstr(rc));
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? AF_STORE_UNAVAILABLE : AF_STORE_FAILED;
}

/* Runs a statement that returns no rows (after its binds); AF_STORE_OK or the failure. */
static af_store_rc exec_stmt(sqlite_store *s, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  done_with(st);
  return rc == SQLITE_DONE ? AF_STORE_OK : failed(s, st, rc);
}

/* The statements of the table op works on (af__store_table_ok was checked at submit). */
static sqlite3_stmt **stmts_of(sqlite_store *s, const af_store_op *op) { return s->st[op->table]; }

/* ---- the ops, inside the group's transaction ---- */

/* Stores a rule's WRITE or DELETE of the row next names, with the table's statements st. */
static af_store_rc write_row(sqlite_store *s, sqlite3_stmt **st, af_store_verdict v, bool keep_def,
                             const af_flow_record *next) {
  if (v == AF_STORE_DELETE) {
    sqlite3_bind_text(st[ST_DELETE], 1, next->name, (int)next->name_len, SQLITE_STATIC);
    return exec_stmt(s, st[ST_DELETE]);
  }
  sqlite3_stmt *update = st[keep_def ? ST_UPDATE_NODEF : ST_UPDATE];
  bind_record(update, next, !keep_def);
  return exec_stmt(s, update);
}

/* Copies what next shares with the selected row into the store's scratch, so the row can be
 * let go before the write (a statement's column values die when it steps or resets). The
 * definition is left: a write that keeps it does not bind it. False when out of memory. */
static bool own_refs(sqlite_store *s, const af_flow_record *cur, af_flow_record *next) {
  const char **strs[] = {
      &next->description,    &next->source_connector, &next->destination_connector,
      &next->create_token,   &next->created_by,       &next->updated_by,
      &next->status_message, &next->source_profile,   &next->destination_profile};
  const char *const was[] = {cur->description,    cur->source_connector, cur->destination_connector,
                             cur->create_token,   cur->created_by,       cur->updated_by,
                             cur->status_message, cur->source_profile,   cur->destination_profile};
  const size_t nstrs = sizeof strs / sizeof strs[0];
  af_bytes *blobs[] = {&next->tags, &next->runs};
  const uint8_t *const was_blob[] = {cur->tags.data, cur->runs.data};
  size_t need = 0;
  for (size_t i = 0; i < nstrs; i++)
    need += *strs[i] != NULL && *strs[i] == was[i] ? strlen(was[i]) + 1 : 0;
  for (size_t i = 0; i < 2; i++)
    need += blobs[i]->data != NULL && blobs[i]->data == was_blob[i] ? blobs[i]->len : 0;
  if (need > s->scratch_cap) {
    char *b = realloc(s->scratch, need);
    if (b == NULL)
      return false;
    s->scratch = b;
    s->scratch_cap = need;
  }
  char *p = s->scratch;
  for (size_t i = 0; i < nstrs; i++) {
    if (*strs[i] != NULL && *strs[i] == was[i]) {
      size_t n = strlen(was[i]) + 1;
      *strs[i] = memcpy(p, was[i], n);
      p += n;
    }
  }
  for (size_t i = 0; i < 2; i++) {
    if (blobs[i]->data != NULL && blobs[i]->data == was_blob[i]) {
      blobs[i]->data = memcpy(p, was_blob[i], blobs[i]->len);
      p += blobs[i]->len;
    }
  }
  return true;
}

/* What op answers for the rule's verdict (insert's rule may only keep or refuse). */
static af_store_rc verdict_rc(const af_store_op *op, bool modify) {
  if (!modify)
    return op->verdict == AF_STORE_KEEP ? AF_STORE_EXISTS : AF_STORE_REFUSED;
  return op->verdict == AF_STORE_REFUSE ? AF_STORE_REFUSED : AF_STORE_OK;
}

/* Runs op's rule on the row called key (op->key in op's scope), then stores what it decided;
 * *wrote says whether it changed the database. */
static af_store_rc run_rule(sqlite_store *s, af_store_op *op, const af_db_key *key, bool modify,
                            bool *wrote) {
  sqlite3_stmt *st = stmts_of(s, op)[op->with_definition ? ST_SELECT : ST_SELECT_BARE];
  sqlite3_bind_text(st, 1, key->bytes, (int)key->len, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    done_with(st);
    return rc == SQLITE_DONE ? AF_STORE_NOT_FOUND : failed(s, st, rc);
  }
  af_flow_record cur = read_row(st, op->with_definition);
  cur.name = key->bytes + key->prefix_len; /* as the caller knows it: without the scope */
  cur.name_len = key->len - key->prefix_len;
  af_flow_record next = cur;
  op->verdict = op->rule(&cur, &next, op->ctx);
  af_store_rc out = verdict_rc(op, modify);
  bool write = modify && (op->verdict == AF_STORE_WRITE || op->verdict == AF_STORE_DELETE);
  if (write && !own_refs(s, &cur, &next))
    out = AF_STORE_FAILED;
  bool keep_def = next.definition.data == cur.definition.data;
  done_with(st);
  if (!write || out != AF_STORE_OK)
    return out;
  cur.name = next.name = key->bytes; /* the row's own text is gone */
  cur.name_len = next.name_len = key->len;
  if (keep_def)
    next.definition = (af_bytes){NULL, 0}; /* not bound: ST_UPDATE_NODEF leaves it */
  *wrote = true;
  return write_row(s, stmts_of(s, op), op->verdict, keep_def, &next);
}

static af_store_rc run_insert(sqlite_store *s, af_store_op *op, const af_db_key *key, bool *wrote) {
  sqlite3_stmt *st = stmts_of(s, op)[ST_INSERT];
  af_flow_record r = *op->record;
  r.name = key->bytes;
  r.name_len = key->len;
  bind_record(st, &r, true);
  af_store_rc rc = exec_stmt(s, st);
  if (rc != AF_STORE_OK)
    return rc;
  if (sqlite3_changes(s->db) == 1) {
    *wrote = true;
    return AF_STORE_OK;
  }
  if (op->rule == NULL)
    return AF_STORE_EXISTS;
  return run_rule(s, op, key, false, wrote);
}

static af_store_rc run_scan(sqlite_store *s, af_store_op *op, af_db_key *lo) {
  af_db_key hi;
  if (!af__db_scan_bounds(op, lo, &hi))
    return AF_STORE_FAILED;
  sqlite3_stmt *st = stmts_of(s, op)[op->with_definition ? ST_SCAN_DEF : ST_SCAN];
  sqlite3_bind_text(st, 1, lo->bytes, (int)lo->len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, op->limit > INT64_MAX ? -1 : (sqlite3_int64)op->limit);
  sqlite3_bind_text(st, 3, hi.bytes, (int)hi.len, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, op->ran_only); /* an empty run log is stored as NULL (bind_blob) */
  int rc;
  bool more = true;
  while (more && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    af_flow_record r = read_row(st, op->with_definition);
    r.name += lo->prefix_len; /* every row between the bounds has the scope's prefix */
    r.name_len -= lo->prefix_len;
    more = op->visit(&r, op->ctx);
  }
  done_with(st);
  return !more || rc == SQLITE_DONE ? AF_STORE_OK : failed(s, st, rc);
}

static af_store_rc run_op(sqlite_store *s, af_store_op *op, bool *wrote) {
  af_db_key key;
  if ((enum op_kind)op->kind == OP_SCAN)
    return run_scan(s, op, &key);
  const char *name = op->kind == OP_INSERT ? op->record->name : op->key;
  size_t len = op->kind == OP_INSERT ? op->record->name_len : op->key_len;
  if (!af__db_key(op, name, len, &key))
    return AF_STORE_FAILED;
  switch ((enum op_kind)op->kind) {
  case OP_INSERT:
    return run_insert(s, op, &key, wrote);
  case OP_MODIFY:
    return run_rule(s, op, &key, true, wrote);
  case OP_SCAN:
    break;
  }
  return AF_STORE_FAILED;
}

/* ---- the group commit ---- */

typedef struct group {
  af_store_op *ops[BATCH_MAX];
  af_store_rc rc[BATCH_MAX];
  bool wrote[BATCH_MAX];
  size_t n;
} group;

/* Whether every op of g is a deferred insert. */
static bool all_deferred(const group *g) {
  for (size_t i = 0; i < g->n; i++)
    if (!g->ops[i]->deferred || (enum op_kind)g->ops[i]->kind != OP_INSERT)
      return false;
  return true;
}

/* Commits the open transaction; on failure rolls it back and says so in the rc of every op of
 * g that wrote, or of every op when deferred inserts were answered before it (their loss is
 * told to whoever comes next: the seeder ends with an op of its own). */
static void commit(sqlite_store *s, group *g) {
  bool had_deferred = s->deferred > 0;
  s->deferred = 0;
  af_store_rc rc = exec_stmt(s, s->tx[TX_COMMIT]);
  if (rc == AF_STORE_OK) {
    atomic_fetch_add(&s->base.commits, 1);
    return;
  }
  exec_stmt(s, s->tx[TX_ROLLBACK]);
  for (size_t i = 0; g != NULL && i < g->n; i++) {
    if (g->wrote[i] || had_deferred)
      g->rc[i] = rc;
  }
}

/* Runs the ops of g in one transaction; one of deferred inserts only is left open (and its
 * ops answered) until DEFERRED_MAX rows or another op. */
static void run_group(sqlite_store *s, group *g) {
  af_store_rc begin = s->deferred > 0 ? AF_STORE_OK : exec_stmt(s, s->tx[TX_BEGIN]);
  int64_t now = af_store_now_ms();
  for (size_t i = 0; i < g->n; i++) {
    g->wrote[i] = false;
    if (begin != AF_STORE_OK)
      g->rc[i] = begin;
    else if (g->ops[i]->deadline_ms < now) /* no one waits for it any more */
      g->rc[i] = AF_STORE_UNAVAILABLE;
    else
      g->rc[i] = run_op(s, g->ops[i], &g->wrote[i]);
  }
  if (begin != AF_STORE_OK)
    return;
  if (all_deferred(g) && s->deferred + g->n < DEFERRED_MAX) {
    s->deferred += g->n;
    return;
  }
  commit(s, g);
}

static void *writer_main(void *arg) {
  sqlite_store *s = arg;
  group *g = malloc(sizeof *g);
  if (g == NULL) {
    af_log_printf(s->base.log, AF_LOG_ERROR, "store %s: out of memory", s->base.display);
    abort(); /* no thread to answer the store's ops: nothing can be served */
  }
  af_store_op *op;
  while ((op = af__queue_pop(&s->queue, BATCH_MAX)) != NULL) {
    g->n = 0;
    for (; op != NULL; op = op->queue_next)
      g->ops[g->n++] = op;
    run_group(s, g);
    for (size_t i = 0; i < g->n; i++)
      g->ops[i]->done(g->ops[i], g->rc[i]);
  }
  if (s->deferred > 0) /* closing with a seed's rows open: keep them */
    commit(s, NULL);
  free(g);
  return NULL;
}

/* Whether op may be queued (stamped for it); if not, it is answered why. */
static bool admit(sqlite_store *s, af_store_op *op, enum op_kind kind) {
  if (!af__store_table_ok(op) || !af__store_scope_ok(op)) {
    op->done(op, AF_STORE_FAILED);
    return false;
  }
  if (!af__store_key_ok(op, kind == OP_INSERT)) {
    op->done(op, AF_STORE_TOO_LONG);
    return false;
  }
  op->kind = kind;
  af__store_set_deadline(op, s->timeout);
  return true;
}

static void submit(sqlite_store *s, af_store_op *op, enum op_kind kind) {
  if (admit(s, op, kind))
    af__queue_submit(&s->queue, op);
}

static void sq_insert(af_store *st, af_store_op *op) { submit((sqlite_store *)st, op, OP_INSERT); }
static void sq_insert_all(af_store *st, af_store_op **ops, size_t n) {
  sqlite_store *s = (sqlite_store *)st;
  size_t admitted = 0;
  for (size_t i = 0; i < n; i++)
    if (admit(s, ops[i], OP_INSERT))
      ops[admitted++] = ops[i];
  af__queue_submit_all(&s->queue, ops, admitted);
}
static void sq_modify(af_store *st, af_store_op *op) { submit((sqlite_store *)st, op, OP_MODIFY); }
static void sq_scan(af_store *st, af_store_op *op) { submit((sqlite_store *)st, op, OP_SCAN); }

static void free_store(sqlite_store *s) {
  for (int t = 0; t < AF_STORE_TABLES; t++)
    for (int i = 0; i < ST_COUNT; i++)
      sqlite3_finalize(s->st[t][i]);
  for (int i = 0; i < TX_COUNT; i++)
    sqlite3_finalize(s->tx[i]);
  sqlite3_close(s->db);
  free(s->scratch);
  af__queue_fini(&s->queue);
  af__store_fini(&s->base);
  free(s);
}

static void sq_close(af_store *st) {
  sqlite_store *s = (sqlite_store *)st;
  af__queue_close(&s->queue); /* the writer runs what is queued, then returns */
  if (s->thread_running)
    pthread_join(s->thread, NULL);
  free_store(s);
}

static const af_store_ops sqlite_ops = {sq_insert, sq_modify, sq_scan, sq_insert_all, sq_close};

/* ---- opening: the file, its settings and its schema ---- */

/* Runs SQL text (no results wanted); SQLITE_OK or the error, with the message in msg. */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no -Wformat-truncation */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation" /* cut short on purpose */
#endif
static int exec_sql(sqlite_store *s, const char *text, char *msg, size_t msgsz) {
  char *e = NULL;
  int rc = sqlite3_exec(s->db, text, NULL, NULL, &e);
  if (rc != SQLITE_OK)
    snprintf(msg, msgsz, "%s: %s", s->path, e ? e : sqlite3_errstr(rc));
  sqlite3_free(e);
  return rc;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* The value of a meta row into buf (cap bytes); its length, or -1 when absent. */
static long meta_get(sqlite_store *s, const char *key, uint8_t *buf, size_t cap) {
  sqlite3_stmt *st;
  long n = -1;
  if (sqlite3_prepare_v2(s->db, "SELECT value FROM appflowd_meta WHERE key = ?1", -1, &st, NULL) !=
      SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    af_bytes v = blob_of(st, 0);
    n = (long)(v.len < cap ? v.len : cap);
    if (n > 0)
      memcpy(buf, v.data, (size_t)n);
  }
  sqlite3_finalize(st);
  return n;
}

static int meta_put(sqlite_store *s, const char *key, const void *value, size_t len) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(
      s->db, "INSERT INTO appflowd_meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING", -1,
      &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Brings a database of version from (1 or 2) to this build's, in the open transaction. */
static af_store_open_rc migrate(sqlite_store *s, int from, char *msg, size_t msgsz) {
  char why[512];
  for (int v = from; v < AF_STORE_SCHEMA_VERSION; v++) {
    if (migrations[v] != NULL && exec_sql(s, migrations[v], why, sizeof why) != SQLITE_OK) {
      snprintf(msg, msgsz, "cannot migrate appflowd's tables from schema version %d to %d: %s", v,
               v + 1, why);
      return AF_STORE_OPEN_FAILED;
    }
  }
  static const char mark[] = "UPDATE appflowd_meta SET value = CAST('" XSTR(
      AF_STORE_SCHEMA_VERSION) "' AS BLOB) WHERE key = 'schema_version'";
  return exec_sql(s, mark, msg, msgsz) == SQLITE_OK ? AF_STORE_OPENED : AF_STORE_OPEN_FAILED;
}

/* Checks (or writes) the schema version, migrates an older database (*migrated_from: the
 * version it had, 0 when none was migrated), and reads (or makes) the token key, in the open
 * transaction. */
static af_store_open_rc check_schema(sqlite_store *s, int *migrated_from, char *msg, size_t msgsz) {
  char version[16] = "";
  long n = meta_get(s, "schema_version", (uint8_t *)version, sizeof version - 1);
  int v = n < 0 ? 0 : atoi(version);
  if (n < 0) { /* a new database, which this connection keeps to itself (EXCLUSIVE) */
    atomic_store(&s->base.fresh, true);
    snprintf(version, sizeof version, "%d", AF_STORE_SCHEMA_VERSION);
    if (meta_put(s, "schema_version", version, strlen(version)) != SQLITE_OK)
      goto fail;
  } else if (v > AF_STORE_SCHEMA_VERSION) {
    snprintf(msg, msgsz,
             "the database %s has appflowd schema version %s, newer than this appflowd's %d: "
             "run a newer appflowd",
             s->path, version, AF_STORE_SCHEMA_VERSION);
    return AF_STORE_TOO_NEW;
  } else if (v >= 1 && v < AF_STORE_SCHEMA_VERSION) {
    af_store_open_rc rc = migrate(s, v, msg, msgsz);
    if (rc != AF_STORE_OPENED)
      return rc;
    *migrated_from = v;
  }
  uint8_t key[AF_STORE_TOKEN_KEY_LEN];
  if (af__store_random(key, sizeof key) != 0 ||
      meta_put(s, "token_key", key, sizeof key) != SQLITE_OK ||
      meta_get(s, "token_key", s->base.token_key, sizeof s->base.token_key) !=
          (long)sizeof s->base.token_key)
    goto fail;
  return AF_STORE_OPENED;
fail:
  snprintf(msg, msgsz, "%s: cannot set up appflowd's tables: %s", s->path, sqlite3_errmsg(s->db));
  return AF_STORE_OPEN_FAILED;
}

/* Makes whatever tables are missing (all of them in a new database), in the open transaction. */
static af_store_open_rc make_tables(sqlite_store *s, char *msg, size_t msgsz) {
  if (exec_sql(s,
               "CREATE TABLE IF NOT EXISTS appflowd_meta (key TEXT PRIMARY KEY, "
               "value BLOB NOT NULL)",
               msg, msgsz) != SQLITE_OK)
    return AF_STORE_OPEN_FAILED;
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    char text[1024];
    if (!af__store_sql_for(text, sizeof text, "CREATE TABLE IF NOT EXISTS ", (af_store_table)t,
                           TABLE_COLUMNS) ||
        exec_sql(s, text, msg, msgsz) != SQLITE_OK)
      return AF_STORE_OPEN_FAILED;
  }
  return AF_STORE_OPENED;
}

static bool prepare(sqlite_store *s, const char *text, sqlite3_stmt **out) {
  return sqlite3_prepare_v3(s->db, text, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) == SQLITE_OK;
}

/* Prepares every table's statements, and the transaction's. */
static af_store_open_rc prepare_all(sqlite_store *s, char *msg, size_t msgsz) {
  bool ok = true;
  for (int t = 0; ok && t < AF_STORE_TABLES; t++) {
    for (int i = 0; ok && i < ST_COUNT; i++) {
      char text[2048];
      ok = af__store_sql_for(text, sizeof text, sql[i].head, (af_store_table)t, sql[i].tail) &&
           prepare(s, text, &s->st[t][i]);
    }
  }
  for (int i = 0; ok && i < TX_COUNT; i++)
    ok = prepare(s, txn_sql[i], &s->tx[i]);
  if (!ok)
    snprintf(msg, msgsz, "%s: %s", s->path, sqlite3_errmsg(s->db));
  return ok ? AF_STORE_OPENED : AF_STORE_OPEN_FAILED;
}

/* Settings, then the schema in one transaction. The connection keeps the file locked from its
 * first write until it closes (locking_mode EXCLUSIVE): one appflowd per file, as the store's
 * guarantees assume, and no lock taken and released by every transaction. */
static af_store_open_rc set_up(sqlite_store *s, af_store_sync sync, char *msg, size_t msgsz) {
  char pragmas[256];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; "
           "PRAGMA cache_size = -%d;",
           sync == AF_STORE_SYNC_FULL ? "FULL" : "NORMAL", CACHE_KIB);
  sqlite3_busy_timeout(s->db, (int)(s->timeout * 1000));
  int rc = exec_sql(s, pragmas, msg, msgsz);
  if (rc == SQLITE_OK)
    rc = exec_sql(s, "BEGIN IMMEDIATE", msg, msgsz);
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
    snprintf(msg, msgsz,
             "%s is in use by another process: an appflowd keeps its SQLite file to itself "
             "(for replicas, share PostgreSQL)",
             s->path);
  if (rc != SQLITE_OK)
    return AF_STORE_UNREACHABLE;
  int migrated_from = 0;
  af_store_open_rc out = make_tables(s, msg, msgsz);
  if (out == AF_STORE_OPENED)
    out = check_schema(s, &migrated_from, msg, msgsz);
  if (out != AF_STORE_OPENED) {
    exec_sql(s, "ROLLBACK", NULL, 0);
    return out;
  }
  if (exec_sql(s, "COMMIT", msg, msgsz) != SQLITE_OK)
    return AF_STORE_OPEN_FAILED;
  if (migrated_from != 0)
    af_log_printf(s->base.log, AF_LOG_INFO, "store %s: migrated schema %d -> %d", s->base.display,
                  migrated_from, AF_STORE_SCHEMA_VERSION);
  return prepare_all(s, msg, msgsz);
}

af_store *af__store_sqlite_open(const char *path, const af_store_config *cfg, af_store_open_rc *why,
                                char *msg, size_t msgsz) {
  if (path[0] == '\0') {
    *why = AF_STORE_BAD_URL;
    snprintf(msg, msgsz, "sqlite: needs a file name, as in sqlite:/var/lib/appflowd/flows.db");
    return NULL;
  }
  sqlite_store *s = calloc(1, sizeof *s);
  if (s == NULL) {
    *why = AF_STORE_OPEN_FAILED;
    snprintf(msg, msgsz, "out of memory");
    return NULL;
  }
  snprintf(s->path, sizeof s->path, "%s", path);
  s->timeout = cfg->timeout_seconds > 0 ? cfg->timeout_seconds : AF_STORE_DEFAULT_TIMEOUT_S;
  char display[sizeof s->path + 8];
  snprintf(display, sizeof display, "sqlite:%s", path);
  af__store_init(&s->base, &sqlite_ops, display, cfg);
  s->base.durable = true;
  af__queue_init(&s->queue, cfg->queue ? cfg->queue : AF_STORE_DEFAULT_QUEUE);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
  *why = rc == SQLITE_OK ? set_up(s, cfg->sync, msg, msgsz) : AF_STORE_UNREACHABLE;
  if (rc != SQLITE_OK)
    snprintf(msg, msgsz, "cannot open %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
  int e = *why == AF_STORE_OPENED ? pthread_create(&s->thread, NULL, writer_main, s) : 0;
  if (e != 0) { /* pthread_create says why in what it returns, not in errno */
    *why = AF_STORE_OPEN_FAILED;
    snprintf(msg, msgsz, "cannot start the store's thread: %s", strerror(e));
  }
  if (*why != AF_STORE_OPENED) {
    free_store(s);
    return NULL;
  }
  s->thread_running = true;
  return &s->base;
}
