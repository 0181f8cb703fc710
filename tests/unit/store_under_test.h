/* The store a test runs on, so one suite checks every store: AF_TEST_STORE names it
 *   memory       (the default) the memory store;
 *   sqlite       a new database file in a temporary directory, removed after;
 *   postgresql   a new schema in the database AF_TEST_PG_URI names (tests/pg_cluster.py
 *                starts one), dropped after.
 * ctest runs the store-independent unit tests once per store (tests/CMakeLists.txt).
 * Header-only: each test file that needs it includes it. Not thread-safe: tests open and close
 * stores from their main thread. */
#ifndef AF_TESTS_STORE_UNDER_TEST_H
#define AF_TESTS_STORE_UNDER_TEST_H

#include "common/latch.h"
#include "flows/service.h"
#include "flows/store.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What each open test store needs removed after; a test may have a few open at once. */
#define TEST_STORES 8
static struct {
  af_store *store;
  char dir[64];    /* sqlite: the temporary directory */
  char schema[64]; /* postgresql: the schema */
} test_stores[TEST_STORES];
static char test_store_dir[64], test_store_schema[64]; /* of the URL made last */
static char test_store_url[1024];

static inline const char *test_store_kind(void) {
  const char *k = getenv("AF_TEST_STORE");
  return k != NULL && *k != '\0' ? k : "memory";
}

/* Runs SQL on the test database; asserts it worked. */
static inline void test_store_pg_exec(const char *sql) {
  const char *uri = getenv("AF_TEST_PG_URI");
  cr_assert_not_null(uri, "AF_TEST_PG_URI is not set: run under tests/pg_cluster.py");
  PGconn *c = PQconnectdb(uri);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
}

/* A URL for a new, empty store of the kind under test. */
static inline const char *test_store_new_url(void) {
  const char *kind = test_store_kind();
  if (strcmp(kind, "memory") == 0) {
    snprintf(test_store_url, sizeof test_store_url, "memory:");
  } else if (strcmp(kind, "sqlite") == 0) {
    snprintf(test_store_dir, sizeof test_store_dir, "/tmp/appflowd-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(test_store_dir));
    snprintf(test_store_url, sizeof test_store_url, "sqlite:%s/flows.db", test_store_dir);
  } else if (strcmp(kind, "postgresql") == 0) {
    static int n;
    snprintf(test_store_schema, sizeof test_store_schema, "unit_%d_%d", (int)getpid(), n++);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", test_store_schema);
    test_store_pg_exec(sql);
    const char *uri = getenv("AF_TEST_PG_URI");
    snprintf(test_store_url, sizeof test_store_url, "%s%soptions=-csearch_path%%3D%s", uri,
             strchr(uri, '?') ? "&" : "?", test_store_schema);
  } else {
    cr_assert_fail("AF_TEST_STORE must be memory, sqlite or postgresql, not %s", kind);
  }
  return test_store_url;
}

/* Opens url with cfg (NULL: defaults); asserts it opened. */
static inline af_store *test_store_open_url(const char *url, const af_store_config *cfg) {
  af_store_open_rc why;
  char msg[1024];
  af_store *s = af_store_open(url, cfg, &why, msg, sizeof msg);
  cr_assert_not_null(s, "%s: %s", url, msg);
  return s;
}

/* Connections of a PostgreSQL test store: two workers still run ops side by side, and each
 * connection is a server process the cluster starts for every test (eight, the default, made
 * the PostgreSQL runs take twice as long as the SQLite ones). */
#define TEST_STORE_CONNECTIONS 2

/* A new, empty store of the kind under test. */
static inline af_store *test_store_open(void) {
  af_store_config cfg = {.connections = TEST_STORE_CONNECTIONS};
  af_store *s = test_store_open_url(test_store_new_url(), &cfg);
  size_t i = 0;
  while (i < TEST_STORES && test_stores[i].store != NULL)
    i++;
  cr_assert_lt(i, TEST_STORES, "too many test stores open");
  test_stores[i].store = s;
  snprintf(test_stores[i].dir, sizeof test_stores[i].dir, "%s", test_store_dir);
  snprintf(test_stores[i].schema, sizeof test_stores[i].schema, "%s", test_store_schema);
  test_store_dir[0] = test_store_schema[0] = '\0';
  return s;
}

/* Closes s and removes what test_store_open made for it (a store it did not make is only
 * closed). */
static inline void test_store_close(af_store *s) {
  af_store_close(s);
  for (size_t i = 0; s != NULL && i < TEST_STORES; i++) {
    if (test_stores[i].store != s)
      continue;
    test_stores[i].store = NULL;
    if (test_stores[i].dir[0] != '\0') {
      char cmd[128];
      snprintf(cmd, sizeof cmd, "rm -rf %s", test_stores[i].dir);
      cr_expect_eq(system(cmd), 0);
    }
    if (test_stores[i].schema[0] != '\0') {
      char sql[128];
      snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", test_stores[i].schema);
      test_store_pg_exec(sql);
    }
  }
}

/* A clock the tests move by hand (epoch milliseconds): .clock = &(af_clock){fake_clock, NULL}.
 * Atomic, as a service's scheduler thread reads it too. */
__attribute__((unused)) static _Atomic int64_t fake_now;
__attribute__((unused)) static int64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now;
}

/* A service on a new store of the kind under test; *store gets the store to close after. */
static inline af_flows *test_service_new(const af_flows_config *base, af_store **store) {
  af_flows_config cfg = base ? *base : (af_flows_config){0};
  *store = test_store_open();
  cfg.store = *store;
  af_error err;
  af_flows *svc = af_flows_new(&cfg, &err);
  cr_assert_not_null(svc, "%s", err.message);
  return svc;
}

static inline void test_service_free(af_flows *svc, af_store *store) {
  af_flows_free(svc);
  test_store_close(store);
}

/* Seeds one flow through the service, as the seed file does; asserts it was added. */
static inline void test_seed_flow(af_flows *svc, const char *name, Appflow__V1__TriggerType trigger,
                                  Appflow__V1__FlowStatus status) {
  af_flow_spec spec = {name, strlen(name), trigger, status, NULL, NULL, 0};
  af_error err;
  bool added = false;
  cr_assert_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_OK, "%s: %s", name, err.message);
  cr_assert(added, "%s was there already", name);
}

/* DeleteFlow of name (forceDelete as given) through the service. */
static inline af_err test_delete_flow(af_flows *svc, const char *name, bool force, af_error *err) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__DeleteFlowRequest req = APPFLOW__V1__DELETE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  req.force_delete = force;
  Appflow__V1__DeleteFlowResponse resp = APPFLOW__V1__DELETE_FLOW_RESPONSE__INIT;
  af_err rc = af_flows_delete_flow(svc, &req, &resp, &arena, err);
  af_arena_destroy(&arena);
  return rc;
}

/* A call waited for (test_call_ready). */
typedef struct test_call_wait {
  af_latch latch;
  af_err rc;
} test_call_wait;

static inline void test_call_done(void *ctx, af_err rc) {
  test_call_wait *w = ctx;
  w->rc = rc;
  af_latch_open(&w->latch);
}

/* rpc's answer to req in resp (in arena a), waited for, with the packed messages it came with
 * in *ready; asserts that it succeeded. */
static inline void test_call_ready(af_flows *svc, const char *rpc, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, af_pbc_ready *ready, af_arena *a) {
  af_error err;
  test_call_wait w = {.rc = AF_OK};
  af_latch_init(&w.latch);
  *ready = (af_pbc_ready){0, NULL};
  af_reply_to to = {.arena = a, .err = &err, .done = test_call_done, .ctx = &w, .ready = ready};
  af_flows_call(svc, af_flows_rpc_named(svc, rpc), req, resp, &to);
  af_latch_wait(&w.latch);
  cr_assert_eq(w.rc, AF_OK, "%s: %s", rpc, err.message);
}

#endif
