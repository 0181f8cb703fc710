/* src/flows/store_sqlite.c: what only the SQLite store does - keep flows across a close and a
 * reopen, refuse a database from a newer appflowd or a file that is not one, say clearly when a
 * path cannot be opened, commit concurrent writes together, and answer BUSY or UNAVAILABLE
 * rather than wait when another process holds the database (the contract every store keeps is
 * checked by test_store.c). */
#include "flows/store.h"

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

/* Another process holding the database's write lock: ops wait at most the store's timeout and
 * then fail UNAVAILABLE; those past the queue's bound are BUSY at once. Nothing hangs. */
Test(sqlite, a_locked_database_gives_unavailable_and_a_full_queue_busy) {
  af_store *s = open_ok(&(af_store_config){.timeout_seconds = 0.3, .queue = 8});
  sqlite3 *other;
  cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  static burst_op ops[40];
  burst b;
  burst_insert(s, "w", ops, 40, &b);
  cr_expect_eq(b.ok, 0);
  cr_expect_gt(b.busy, 0, "the queue holds 8");
  cr_expect_gt(b.unavailable, 0);
  cr_expect_eq(b.busy + b.unavailable, 40);
  cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  cr_expect_eq(insert(s, "after", 2), AF_STORE_OK, "served again once the lock is gone");
  af_store_close(s);
}
