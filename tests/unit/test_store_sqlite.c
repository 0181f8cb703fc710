/* src/flows/store_sqlite.c: what only the SQLite store does - keep flows across a close and a
 * reopen, refuse a database from a newer appflowd or a file that is not one, say clearly when a
 * path cannot be opened or another process has the file, commit concurrent writes together, and
 * answer BUSY at once when its queue is full (the contract every store keeps is checked by
 * test_store.c). */
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
