/* src/flows/store_sqlite.c: what only the SQLite store does - keep flows across a close and a
 * reopen, refuse a database from a newer appflowd or a file that is not one, say clearly when a
 * path cannot be opened or another process has the file, commit concurrent writes together, and
 * answer BUSY at once when its queue is full (the contract every store keeps is checked by
 * test_store.c). */
#include "thread_fail.h" /* first: it defines pthread_create */

#include "flows/store.h"

#include "common/latch.h"
#include "store_burst.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], path[128], url[160];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/appflowd-sqlite-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/flows.db", dir);
  snprintf(url, sizeof url, "sqlite:%s", path);
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}

TestSuite(sqlite, .init = setup, .fini = teardown);

static af_store *open_ok(const af_store_config *cfg) {
  af_store_open_rc why;
  char msg[512];
  af_store *s = af_store_open(url, cfg, &why, msg, sizeof msg);
  cr_assert_not_null(s, "%s", msg);
  cr_expect_eq(why, AF_STORE_OPENED);
  return s;
}

static af_store_open_rc open_fails(const char *u, char *msg, size_t msgsz) {
  af_store_open_rc why;
  af_store *s = af_store_open(u, NULL, &why, msg, msgsz);
  cr_assert_null(s, "%s opened", u);
  return why;
}

static af_store_rc insert(af_store *s, const char *name, uint8_t status) {
  af_flow_record r = {.name = name, .name_len = strlen(name), .trigger = 1, .status = status};
  af_store_op op = {.key = name, .key_len = r.name_len, .record = &r};
  return af_store_run(s, af_store_insert, &op);
}

static af_store_verdict read_status(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  *(int *)ctx = cur->status;
  return AF_STORE_KEEP;
}

static int status_of(af_store *s, const char *name) {
  int status = -1;
  af_store_op op = {.key = name, .key_len = strlen(name), .rule = read_status, .ctx = &status};
  af_store_rc rc = af_store_run(s, af_store_modify, &op);
  return rc == AF_STORE_OK ? status : -(int)rc;
}

static void sql(const char *text) {
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  char *e = NULL;
  cr_assert_eq(sqlite3_exec(db, text, NULL, NULL, &e), SQLITE_OK, "%s", e ? e : "");
  sqlite3_close(db);
}

Test(sqlite, flows_and_the_token_key_outlive_a_reopen) {
  af_store *s = open_ok(&(af_store_config){.sync = AF_STORE_SYNC_FULL});
  cr_expect(s->durable);
  cr_expect_str_eq(s->display, url);
  cr_assert_eq(insert(s, "kept", 5), AF_STORE_OK);
  uint8_t key[AF_STORE_TOKEN_KEY_LEN];
  memcpy(key, s->token_key, sizeof key);
  af_store_close(s);
  s = open_ok(NULL);
  cr_expect_eq(status_of(s, "kept"), 5);
  cr_expect_arr_eq(s->token_key, key, sizeof key, "tokens stay valid across restarts");
  cr_expect_eq(insert(s, "kept", 1), AF_STORE_EXISTS);
  af_store_close(s);
}

Test(sqlite, a_database_from_a_newer_appflowd_is_refused) {
  af_store_close(open_ok(NULL));
  sql("UPDATE appflowd_meta SET value = CAST('99' AS BLOB) WHERE key = 'schema_version'");
  char msg[512];
  cr_expect_eq(open_fails(url, msg, sizeof msg), AF_STORE_TOO_NEW);
  cr_expect(strstr(msg, "schema version 99") != NULL, "%s", msg);
  cr_expect(strstr(msg, "newer appflowd") != NULL, "%s", msg);
}

/* ---- migrating from schema versions 1 and 2 ---- */

/* The tables as schema version 1 made them (the previous appflowd's DDL, copied here), with
 * its meta rows (values stored as blobs, as it wrote them) and one flow. */
static const char v1_schema[] =
    "CREATE TABLE IF NOT EXISTS appflowd_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS appflowd_flows ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " trigger_type INTEGER NOT NULL, status INTEGER NOT NULL, create_status INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " description TEXT, source_connector TEXT, destination_connector TEXT, create_token TEXT,"
    " definition BLOB, tags BLOB, runs BLOB) WITHOUT ROWID;"
    "INSERT INTO appflowd_meta (key, value) VALUES ('schema_version', CAST('1' AS BLOB)),"
    " ('token_key', zeroblob(32));"
    "INSERT INTO appflowd_flows VALUES ('old', 7, 1, 2, 3, 1000, 2000, 'made by version 1', 'S3',"
    " 'Salesforce', 'token-0', x'0102', x'0a0b', NULL);";

/* The same as schema version 2 made it: appflowd_flows with three more columns, and the flow
 * with them set. */
static const char v2_schema[] =
    "CREATE TABLE IF NOT EXISTS appflowd_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS appflowd_flows ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " trigger_type INTEGER NOT NULL, status INTEGER NOT NULL, create_status INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " description TEXT, source_connector TEXT, destination_connector TEXT, create_token TEXT,"
    " definition BLOB, tags BLOB, runs BLOB,"
    " created_by TEXT, updated_by TEXT, status_message TEXT) WITHOUT ROWID;"
    "INSERT INTO appflowd_meta (key, value) VALUES ('schema_version', CAST('2' AS BLOB)),"
    " ('token_key', zeroblob(32));"
    "INSERT INTO appflowd_flows VALUES ('old', 7, 1, 2, 3, 1000, 2000, 'made by version 1', 'S3',"
    " 'Salesforce', 'token-0', x'0102', x'0a0b', NULL, 'arn:creator', 'arn:changer',"
    " 'Errored: made by version 2');";

/* The value sql returns, as text ("(null)" for NULL, "" for no row); the file must be closed. */
static void sql_value(const char *text, char *out, size_t n) {
  sqlite3 *db;
  sqlite3_stmt *st;
  cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  snprintf(out, n, "%s", "");
  if (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(out, n, "%s", v != NULL ? (const char *)v : "(null)");
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* A record's fields, copied out of a rule ("(null)" for NULL strings). */
typedef struct seen_flow {
  uint64_t version;
  int trigger, status, create_status;
  int64_t created_ms, updated_ms;
  char description[64], token[32], created_by[96], updated_by[96], status_message[96];
  char source_profile[64], destination_profile[64];
  size_t definition_len, tags_len;
} seen_flow;

static void copy_str(char *dst, size_t n, const char *s) {
  snprintf(dst, n, "%s", s ? s : "(null)");
}

static af_store_verdict see_flow(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  seen_flow *f = ctx;
  f->version = cur->version;
  f->trigger = cur->trigger;
  f->status = cur->status;
  f->create_status = cur->create_status;
  f->created_ms = cur->created_ms;
  f->updated_ms = cur->updated_ms;
  copy_str(f->description, sizeof f->description, cur->description);
  copy_str(f->token, sizeof f->token, cur->create_token);
  copy_str(f->created_by, sizeof f->created_by, cur->created_by);
  copy_str(f->updated_by, sizeof f->updated_by, cur->updated_by);
  copy_str(f->status_message, sizeof f->status_message, cur->status_message);
  copy_str(f->source_profile, sizeof f->source_profile, cur->source_profile);
  copy_str(f->destination_profile, sizeof f->destination_profile, cur->destination_profile);
  f->definition_len = cur->definition.len;
  f->tags_len = cur->tags.len;
  return AF_STORE_KEEP;
}

static seen_flow see_in(af_store *s, af_store_table t, const char *name) {
  seen_flow f = {0};
  af_store_op op = {.table = t,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = see_flow,
                    .ctx = &f,
                    .with_definition = true};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK, "%s in table %d", name, t);
  return f;
}

static seen_flow see(af_store *s, const char *name) { return see_in(s, AF_TABLE_FLOWS, name); }

/* The flow the old schemas hold, as this build reads it; from_v2: with version 2's strings. */
static void expect_old_flow(af_store *s, bool from_v2, uint64_t version) {
  seen_flow f = see(s, "old");
  cr_expect_eq(f.version, version);
  cr_expect_eq(f.trigger, 1);
  cr_expect_eq(f.status, 2);
  cr_expect_eq(f.create_status, 3);
  cr_expect_eq(f.created_ms, 1000);
  cr_expect_eq(f.updated_ms, 2000);
  cr_expect_str_eq(f.description, "made by version 1");
  cr_expect_str_eq(f.token, "token-0");
  cr_expect_eq(f.definition_len, 2);
  cr_expect_eq(f.tags_len, 2);
  cr_expect_str_eq(f.created_by, from_v2 ? "arn:creator" : "(null)");
  cr_expect_str_eq(f.updated_by, from_v2 ? "arn:changer" : "(null)");
  cr_expect_str_eq(f.status_message, from_v2 ? "Errored: made by version 2" : "(null)");
  cr_expect_str_eq(f.source_profile, "(null)", "a migrated row has none of the new strings");
  cr_expect_str_eq(f.destination_profile, "(null)");
}

static af_store_verdict set_who(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const char *const *who = ctx;
  next->created_by = who[0];
  next->updated_by = who[1];
  next->status_message = who[2];
  next->source_profile = who[3];
  next->destination_profile = who[4];
  return AF_STORE_WRITE;
}

static int migrations_logged(FILE *f, const char *what) {
  char line[1024];
  int n = 0;
  rewind(f);
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, what) != NULL;
  return n;
}

static bool count_visit(const af_flow_record *r, void *ctx) {
  (void)r;
  ++*(int *)ctx;
  return true;
}

/* The tables version 3 added take records, even one named as the flow, and leave the flow. */
static void expect_new_tables_usable(af_store *s) {
  static const uint8_t def[] = {'p', 0, 'q'};
  af_flow_record r = {.name = "old",
                      .name_len = 3,
                      .status = 9,
                      .source_connector = "Salesforce",
                      .source_profile = "sf-profile",
                      .definition = {def, sizeof def}};
  for (int t = AF_TABLE_PROFILES; t < AF_STORE_TABLES; t++) {
    af_store_op op = {.table = (af_store_table)t, .key = "old", .key_len = 3, .record = &r};
    cr_assert_eq(af_store_run(s, af_store_insert, &op), AF_STORE_OK, "table %d", t);
    seen_flow f = see_in(s, (af_store_table)t, "old");
    cr_expect_eq(f.status, 9);
    cr_expect_str_eq(f.source_profile, "sf-profile");
    cr_expect_eq(f.definition_len, sizeof def);
    int n = 0;
    op = (af_store_op){.table = (af_store_table)t,
                       .visit = count_visit,
                       .ctx = &n,
                       .limit = SIZE_MAX,
                       .with_definition = true};
    cr_assert_eq(af_store_run(s, af_store_scan, &op), AF_STORE_OK);
    cr_expect_eq(n, 1, "table %d", t);
  }
  cr_expect_eq(see(s, "old").status, 2, "the flow is its own record");
}

/* Every table of this build's schema, with every column. */
static void expect_current_file(void) {
  char v[256];
  sql_value("SELECT CAST(value AS TEXT) FROM appflowd_meta WHERE key = 'schema_version'", v,
            sizeof v);
  cr_expect_str_eq(v, "4");
  const char *tables[] = {"appflowd_flows", "appflowd_profiles", "appflowd_connectors",
                          "appflowd_timers"};
  for (int i = 0; i < 4; i++) {
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pragma_table_info('%s') WHERE name IN ('created_by', "
             "'updated_by', 'status_message', 'source_profile', 'destination_profile')",
             tables[i]);
    sql_value(q, v, sizeof v);
    cr_expect_str_eq(v, "5", "%s", tables[i]);
    snprintf(q, sizeof q, "SELECT count(*) FROM pragma_table_info('%s')", tables[i]);
    sql_value(q, v, sizeof v);
    cr_expect_str_eq(v, "19", "%s", tables[i]);
  }
}

/* Opens a database of an older version (its DDL in schema, at version from): migrated once,
 * its flow and token key intact, the new tables usable, and the new columns written. */
static void expect_migrated(const char *schema, int from) {
  sql(schema);
  FILE *logf = tmpfile();
  cr_assert_not_null(logf);
  af_log log = {AF_LOG_INFO, logf};
  char line[64];
  snprintf(line, sizeof line, "migrated schema %d -> 4", from);
  af_store *s = open_ok(&(af_store_config){.log = &log});
  cr_expect_eq(migrations_logged(logf, line), 1, "%s", line);
  static const uint8_t zero_key[AF_STORE_TOKEN_KEY_LEN];
  cr_expect_arr_eq(s->token_key, zero_key, sizeof zero_key, "the token key outlives it");
  expect_old_flow(s, from == 2, 7);
  expect_new_tables_usable(s);
  af_store_close(s);
  expect_current_file();

  s = open_ok(&(af_store_config){.log = &log});
  cr_expect_eq(migrations_logged(logf, "migrated schema"), 1, "a version 3 database stays");
  expect_old_flow(s, from == 2, 7);
  const char *who[] = {"arn:aws:iam::123456789012:user/creator",
                       "arn:aws:iam::123456789012:role/changer",
                       "Errored: the connector profile is gone", "s3-source", "sf-destination"};
  af_store_op op = {.key = "old", .key_len = 3, .rule = set_who, .ctx = (void *)who};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  seen_flow f = see(s, "old");
  cr_expect_eq(f.version, 8);
  cr_expect_str_eq(f.created_by, who[0]);
  cr_expect_str_eq(f.updated_by, who[1]);
  cr_expect_str_eq(f.status_message, who[2]);
  cr_expect_str_eq(f.source_profile, who[3]);
  cr_expect_str_eq(f.destination_profile, who[4]);
  cr_expect_str_eq(f.description, "made by version 1");
  cr_expect_eq(f.definition_len, 2, "a write that did not read the definition keeps it");
  af_store_close(s);

  char v[256];
  sql_value("SELECT created_by || ' ' || updated_by || ' ' || status_message || ' ' || "
            "source_profile || ' ' || destination_profile FROM appflowd_flows WHERE name = 'old'",
            v, sizeof v);
  cr_expect_str_eq(v, "arn:aws:iam::123456789012:user/creator "
                      "arn:aws:iam::123456789012:role/changer Errored: the connector profile is "
                      "gone s3-source sf-destination");
  fclose(logf);
}

Test(sqlite, a_version_1_database_is_migrated_on_open) { expect_migrated(v1_schema, 1); }

Test(sqlite, a_version_2_database_is_migrated_on_open) { expect_migrated(v2_schema, 2); }

/* A version 3 database (before the timers table) gets the table, and nothing else changes. */
Test(sqlite, a_version_3_database_is_migrated_on_open) {
  af_store_close(open_ok(NULL));
  sql("DROP TABLE appflowd_timers;"
      "UPDATE appflowd_meta SET value = CAST('3' AS BLOB) WHERE key = 'schema_version'");
  FILE *logf = tmpfile();
  cr_assert_not_null(logf);
  af_log log = {AF_LOG_INFO, logf};
  af_store_close(open_ok(&(af_store_config){.log = &log}));
  cr_expect_eq(migrations_logged(logf, "migrated schema 3 -> 4"), 1);
  expect_current_file();
  fclose(logf);
}

/* A new database starts at version 4, with every table and column. */
Test(sqlite, a_new_database_is_made_at_version_4) {
  af_store_close(open_ok(NULL));
  expect_current_file();
}

Test(sqlite, what_cannot_be_a_store_says_why) {
  char msg[512], u[256];
  snprintf(u, sizeof u, "sqlite:%s/no/such/dir/flows.db", dir);
  cr_expect_eq(open_fails(u, msg, sizeof msg), AF_STORE_UNREACHABLE);
  cr_expect(strstr(msg, "no/such/dir") != NULL, "%s", msg);
  FILE *f = fopen(path, "w");
  fputs("this is not a database, just text long enough to look at ...........................\n",
        f);
  fclose(f);
  cr_expect_eq(open_fails(url, msg, sizeof msg), AF_STORE_UNREACHABLE);
  cr_expect(strstr(msg, path) != NULL, "%s", msg);
  cr_expect_eq(open_fails("sqlite:", msg, sizeof msg), AF_STORE_BAD_URL);
  cr_expect(strstr(msg, "file name") != NULL, "%s", msg);
}

/* ---- group commit ---- */

#define WRITES 400

Test(sqlite, writes_in_flight_together_share_commits) {
  af_store *s = open_ok(NULL);
  static burst_op ops[WRITES];
  burst b;
  burst_insert(s, "w", ops, WRITES, &b);
  cr_expect_eq(b.ok, WRITES);
  uint64_t commits = atomic_load(&s->commits);
  cr_expect_gt(commits, 0);
  cr_expect_lt(commits, WRITES / 4, "%d writes took %lu commits", WRITES, (unsigned long)commits);
  af_store_close(s);
  s = open_ok(NULL);
  for (int i = 0; i < WRITES; i += 37)
    cr_expect_eq(status_of(s, ops[i].name), 1, "%s was committed", ops[i].name);
  af_store_close(s);
}

/* An appflowd keeps its file to itself: a second store on it is refused at open, saying why,
 * and opens once the first is closed. */
Test(sqlite, a_second_store_on_the_same_file_is_refused) {
  af_store *first = open_ok(NULL);
  af_store_open_rc why;
  char msg[512];
  af_store *second =
      af_store_open(url, &(af_store_config){.timeout_seconds = 0.2}, &why, msg, sizeof msg);
  cr_expect_null(second);
  cr_expect_eq(why, AF_STORE_UNREACHABLE);
  cr_expect(strstr(msg, "in use by another process") != NULL, "%s", msg);
  af_store_close(first);
  second = open_ok(NULL);
  af_store_close(second);
}

/* The writer's thread failing to start fails the open, saying why in pthread_create's own
 * words (it returns its error and sets no errno), and leaves the file free for the next open. */
Test(sqlite, a_writer_that_cannot_start_fails_the_open_saying_why) {
  char msg[512];
  thread_fail_arm(0, 1);
  cr_expect_eq(open_fails(url, msg, sizeof msg), AF_STORE_OPEN_FAILED);
  thread_fail_disarm();
  cr_expect_eq(thread_fail_calls(), 1, "the writer was asked for once");
  char want[256];
  snprintf(want, sizeof want, "cannot start the store's thread: %s", thread_fail_reason());
  cr_expect_str_eq(msg, want);
  af_store_close(open_ok(NULL));
}

/* A rule that holds the writer until the test lets it go: a slow disk, made to order. */
typedef struct gate {
  af_latch entered, release;
} gate;

static af_store_verdict hold(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next;
  gate *g = ctx;
  af_latch_open(&g->entered);
  af_latch_wait(&g->release);
  return AF_STORE_KEEP;
}

static void held_done(af_store_op *op, af_store_rc rc) {
  (void)op;
  cr_expect_eq(rc, AF_STORE_OK);
}

/* The writer busy with one op, the queue holds two more and turns the rest away BUSY at once;
 * the queued ones then run. */
Test(sqlite, a_full_queue_answers_busy) {
  af_store *s = open_ok(&(af_store_config){.queue = 2});
  cr_assert_eq(insert(s, "hot", 1), AF_STORE_OK);
  gate g;
  af_latch_init(&g.entered);
  af_latch_init(&g.release);
  af_store_op op = {.key = "hot", .key_len = 3, .rule = hold, .ctx = &g, .done = held_done};
  af_store_modify(s, &op);
  af_latch_wait(&g.entered);
  static burst_op ops[10];
  burst b;
  burst_submit(s, "w", ops, 10, &b); /* the BUSY ones end before this returns */
  pthread_mutex_lock(&b.lock);
  int busy = b.busy;
  pthread_mutex_unlock(&b.lock);
  af_latch_open(&g.release);
  burst_wait(&b);
  cr_expect_eq(busy, 8, "turned away at once");
  cr_expect_eq(b.busy, 8);
  cr_expect_eq(b.ok, 2);
  af_store_close(s);
}

static af_store_rc insert_deferred(af_store *s, const char *name) {
  af_flow_record r = {.name = name, .name_len = strlen(name), .trigger = 1, .status = 2};
  af_store_op op = {.key = name, .key_len = r.name_len, .record = &r, .deferred = true};
  return af_store_run(s, af_store_insert, &op);
}

/* Deferred inserts (a seed's) are answered with their transaction left open: no commit until
 * an op that is not deferred, which sees them and commits them with its own. A close with
 * deferred rows still open commits them. */
Test(sqlite, deferred_inserts_share_one_commit_with_the_next_op) {
  af_store *s = open_ok(NULL);
  uint64_t before = atomic_load(&s->commits);
  cr_assert_eq(insert_deferred(s, "d1"), AF_STORE_OK);
  cr_assert_eq(insert_deferred(s, "d2"), AF_STORE_OK);
  cr_expect_eq(insert_deferred(s, "d1"), AF_STORE_EXISTS, "the open transaction's row is seen");
  cr_expect_eq(atomic_load(&s->commits), before, "answered before any commit");
  cr_expect_eq(status_of(s, "d2"), 2);
  cr_expect_eq(atomic_load(&s->commits), before + 1, "the next op commits them with its own");
  cr_assert_eq(insert_deferred(s, "d3"), AF_STORE_OK);
  cr_expect_eq(atomic_load(&s->commits), before + 1);
  af_store_close(s);
  s = open_ok(NULL);
  cr_expect_eq(status_of(s, "d1"), 2);
  cr_expect_eq(status_of(s, "d3"), 2, "a close commits what is left open");
  af_store_close(s);
}
