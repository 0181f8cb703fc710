/* The PostgreSQL store against a real server: what only a shared database brings (the schema,
 * replicas racing, locks, a database that goes away). Run under tests/pg_cluster.py, which sets
 * AF_TEST_PG_URI; each test works in a schema of its own, named in the URI's search_path. */
#include "thread_fail.h" /* first: it defines pthread_create */

#include "flows/store.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 60 /* for events: generous, since only a broken store waits this long */

static char schema[64];
static char store_uri[1024]; /* application_name is the schema: it finds the store's sessions */

/* ---- the database ---- */

static const char *env_uri(void) {
  const char *u = getenv("AF_TEST_PG_URI");
  cr_assert(u != NULL && u[0] != '\0',
            "AF_TEST_PG_URI is not set: run /usr/bin/python3 tests/pg_cluster.py -- CMD");
  return u;
}

typedef struct target {
  char user[64], host[128], port[16], db[64];
} target;

static void copy_option(const PQconninfoOption *o, const char *key, char *out, size_t n) {
  for (; o->keyword != NULL; o++)
    if (strcmp(o->keyword, key) == 0 && o->val != NULL)
      snprintf(out, n, "%s", o->val);
}

static target target_of_env(void) {
  target t = {"postgres", "127.0.0.1", "5432", "postgres"};
  PQconninfoOption *o = PQconninfoParse(env_uri(), NULL);
  cr_assert_not_null(o, "cannot parse AF_TEST_PG_URI");
  copy_option(o, "user", t.user, sizeof t.user);
  copy_option(o, "host", t.host, sizeof t.host);
  copy_option(o, "port", t.port, sizeof t.port);
  copy_option(o, "dbname", t.db, sizeof t.db);
  PQconninfoFree(o);
  return t;
}

/* A URI for this test's schema; password NULL for none. */
static void make_uri(char *out, size_t n, const char *scheme, const char *password,
                     const char *app) {
  target t = target_of_env();
  snprintf(out, n, "%s://%s%s%s@%s:%s/%s?options=-csearch_path%%3D%s&application_name=%s", scheme,
           t.user, password ? ":" : "", password ? password : "", t.host, t.port, t.db, schema,
           app);
}

static PGconn *admin(void) {
  char uri[1024];
  make_uri(uri, sizeof uri, "postgresql", NULL, "admin");
  PGconn *c = PQconnectdb(uri);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  return c;
}

static void sql_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
            PQresultErrorMessage(r));
  PQclear(r);
}

/* The first value sql returns, as text ("" for none). */
static char *sql_value(PGconn *c, const char *sql, char *out, size_t n) {
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  snprintf(out, n, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  return out;
}

/* How many columns table has in this test's schema; only: just these (a quoted, comma-separated
 * list), or all of them when NULL. */
static const char *columns(PGconn *c, const char *table, const char *only, char *v, size_t n) {
  char sql[768];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM information_schema.columns WHERE table_schema = '%s' AND "
           "table_name = '%s'%s%s%s",
           schema, table, only ? " AND column_name IN (" : "", only ? only : "", only ? ")" : "");
  return sql_value(c, sql, v, n);
}

/* Every table of this build's schema, with every column. */
static void expect_every_column(PGconn *c) {
  static const char *const tables[] = {"appflowd_flows", "appflowd_profiles", "appflowd_connectors",
                                       "appflowd_timers"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    char v[64];
    cr_expect_str_eq(columns(c, tables[i], NULL, v, sizeof v), "19", "%s", tables[i]);
    cr_expect_str_eq(columns(c, tables[i],
                             "'created_by', 'updated_by', 'status_message', 'source_profile', "
                             "'destination_profile'",
                             v, sizeof v),
                     "5", "%s", tables[i]);
  }
}

static void setup(void) {
  uint32_t rnd;
  cr_assert_eq(getrandom(&rnd, sizeof rnd, 0), (ssize_t)sizeof rnd);
  snprintf(schema, sizeof schema, "t_%d_%08x", (int)getpid(), rnd);
  PGconn *c = PQconnectdb(env_uri());
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
  sql_ok(c, sql);
  PQfinish(c);
  make_uri(store_uri, sizeof store_uri, "postgresql", NULL, schema);
}

static void teardown(void) {
  const char *uri = getenv("AF_TEST_PG_URI");
  if (uri == NULL || schema[0] == '\0')
    return; /* setup failed, and said why */
  PGconn *c = PQconnectdb(uri);
  char sql[256];
  snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE",
           schema);
  PQclear(PQexec(c, sql));
  PQfinish(c);
}

TestSuite(store_pg, .init = setup, .fini = teardown, .timeout = 180);

/* ---- the store ---- */

static af_store *open_at(const char *uri, const af_store_config *cfg) {
  af_store_open_rc why;
  char msg[512];
  af_store *s = af_store_open(uri, cfg, &why, msg, sizeof msg);
  cr_assert_not_null(s, "open failed (%d): %s", (int)why, msg);
  return s;
}

static af_store *open_store(const af_store_config *cfg) { return open_at(store_uri, cfg); }

static af_flow_record record(const char *name) {
  return (af_flow_record){.name = name,
                          .name_len = strlen(name),
                          .trigger = 1,
                          .status = 2,
                          .create_status = 3,
                          .updated_ms = 1000};
}

static af_store_rc insert_with(af_store *s, const af_flow_record *r, af_store_rule rule, void *ctx,
                               af_store_verdict *verdict) {
  af_store_op op = {.key = r->name,
                    .key_len = r->name_len,
                    .record = r,
                    .rule = rule,
                    .ctx = ctx,
                    .with_definition = true,
                    .verdict = (af_store_verdict)-1};
  af_store_rc rc = af_store_run(s, af_store_insert, &op);
  if (verdict != NULL)
    *verdict = op.verdict;
  return rc;
}

static af_store_rc insert(af_store *s, const af_flow_record *r) {
  return insert_with(s, r, NULL, NULL, NULL);
}

static af_store_rc modify_v(af_store *s, const char *name, af_store_rule rule, void *ctx,
                            af_store_verdict *verdict) {
  af_store_op op = {
      .key = name, .key_len = strlen(name), .rule = rule, .ctx = ctx, .with_definition = true};
  af_store_rc rc = af_store_run(s, af_store_modify, &op);
  if (verdict != NULL)
    *verdict = op.verdict;
  return rc;
}

static af_store_rc modify(af_store *s, const char *name, af_store_rule rule, void *ctx) {
  return modify_v(s, name, rule, ctx, NULL);
}

static af_store_verdict increment(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)ctx;
  next->created_ms = cur->created_ms + 1;
  return AF_STORE_WRITE;
}

static af_store_verdict keep(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_KEEP;
}

static af_store_verdict refuse(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_REFUSE;
}

static af_store_verdict delete_it(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

/* Reads created_ms and version through a KEEP rule. */
typedef struct reading {
  int64_t created_ms;
  uint64_t version;
} reading;

static af_store_verdict read_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  reading *r = ctx;
  r->created_ms = cur->created_ms;
  r->version = cur->version;
  return AF_STORE_KEEP;
}

static reading read_flow(af_store *s, const char *name) {
  reading r = {-1, 0};
  cr_assert_eq(modify(s, name, read_rule, &r), AF_STORE_OK, "reading %s", name);
  return r;
}

/* ---- waiting for ops and health ---- */

typedef struct tracker {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int finished;
  int ruled; /* rule runs: an op that ran its rule is on the database's side */
} tracker;

typedef struct async_op {
  af_store_op op; /* first: done gets it back */
  tracker *t;
  bool finished;
  af_store_rc rc;
} async_op;

static void async_done(af_store_op *op, af_store_rc rc) {
  async_op *a = (async_op *)op;
  pthread_mutex_lock(&a->t->lock);
  a->rc = rc;
  a->finished = true;
  a->t->finished++;
  pthread_cond_broadcast(&a->t->cond);
  pthread_mutex_unlock(&a->t->lock);
}

static struct timespec in_seconds(int s) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += s;
  return t;
}

/* Waits until *counter (under t->lock) reaches n. */
static bool wait_count(tracker *t, const int *counter, int n) {
  struct timespec until = in_seconds(WAIT_S);
  pthread_mutex_lock(&t->lock);
  int rc = 0;
  while (*counter < n && rc == 0)
    rc = pthread_cond_timedwait(&t->cond, &t->lock, &until);
  bool ok = *counter >= n;
  pthread_mutex_unlock(&t->lock);
  return ok;
}

/* increment, telling the tracker it ran (signalling does not block). */
static af_store_verdict tracked_increment(const af_flow_record *cur, af_flow_record *next,
                                          void *ctx) {
  tracker *t = ctx;
  pthread_mutex_lock(&t->lock);
  t->ruled++;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);
  return increment(cur, next, NULL);
}

static void submit_modify(af_store *s, async_op *a, tracker *t, const char *name,
                          int64_t deadline_ms) {
  *a = (async_op){.op = {.key = name,
                         .key_len = strlen(name),
                         .rule = tracked_increment,
                         .ctx = t,
                         .done = async_done,
                         .deadline_ms = deadline_ms},
                  .t = t};
  af_store_modify(s, &a->op);
}

typedef struct health_log {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int n;
  bool seq[256];
} health_log;

static void on_health(void *ctx, bool healthy) {
  health_log *h = ctx;
  pthread_mutex_lock(&h->lock);
  if (h->n < 256)
    h->seq[h->n++] = healthy;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
}

/* Whether the log holds a false and, after it, a true. */
static bool went_down_and_up(const health_log *h) {
  bool down = false;
  for (int i = 0; i < h->n; i++) {
    if (!h->seq[i])
      down = true;
    else if (down)
      return true;
  }
  return false;
}

static bool wait_down_up(health_log *h) {
  struct timespec until = in_seconds(WAIT_S);
  pthread_mutex_lock(&h->lock);
  int rc = 0;
  while (!went_down_and_up(h) && rc == 0)
    rc = pthread_cond_timedwait(&h->cond, &h->lock, &until);
  bool ok = went_down_and_up(h);
  pthread_mutex_unlock(&h->lock);
  return ok;
}

static void watch(af_store *s, health_log *h) {
  *h = (health_log){.n = 0};
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->cond, NULL);
  cr_assert(af_store_watch(s, on_health, h));
}

/* A connection that holds a row lock on name until released. */
static PGconn *lock_row(const char *name) {
  PGconn *c = admin();
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT 1 FROM appflowd_flows WHERE name = '%s' FOR UPDATE", name);
  sql_ok(c, "BEGIN");
  sql_ok(c, sql);
  return c;
}

static void release(PGconn *c) {
  sql_ok(c, "COMMIT");
  PQfinish(c);
}

/* ---- opening ---- */

Test(store_pg, schema_made_on_first_open_and_accepted_on_the_next) {
  PGconn *c = admin();
  char sql[256], v[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", schema);
  cr_assert_str_eq(sql_value(c, sql, v, sizeof v), "0");

  af_store *s = open_store(NULL);
  cr_expect(s->durable);
  cr_expect(af_store_healthy(s));
  cr_expect_str_eq(sql_value(c, sql, v, sizeof v), "5", "the meta table and four of records");
  cr_expect_str_eq(sql_value(c,
                             "SELECT convert_from(value, 'UTF8') FROM appflowd_meta WHERE key = "
                             "'schema_version'",
                             v, sizeof v),
                   "4", "a new database starts at the current schema version");
  expect_every_column(c);
  char hex[2 * AF_STORE_TOKEN_KEY_LEN + 1];
  for (int i = 0; i < AF_STORE_TOKEN_KEY_LEN; i++)
    snprintf(hex + 2 * i, 3, "%02x", s->token_key[i]);
  cr_expect_str_eq(sql_value(c,
                             "SELECT encode(value, 'hex') FROM appflowd_meta WHERE key = "
                             "'token_key'",
                             v, sizeof v),
                   hex);
  uint8_t key[AF_STORE_TOKEN_KEY_LEN];
  memcpy(key, s->token_key, sizeof key);
  af_flow_record r = record("kept");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  af_store_close(s);

  s = open_store(NULL);
  cr_expect_arr_eq(s->token_key, key, sizeof key);
  cr_expect_eq(insert(s, &r), AF_STORE_EXISTS, "the flow outlives the store");
  af_store_close(s);

  /* postgres:// is the same URI to libpq, and to appflowd. */
  cr_assert(strncmp(store_uri, "postgresql://", 13) == 0);
  char alias[1024];
  snprintf(alias, sizeof alias, "postgres://%s", store_uri + 13);
  s = open_at(alias, NULL);
  cr_expect_arr_eq(s->token_key, key, sizeof key);
  cr_expect_eq(insert(s, &r), AF_STORE_EXISTS);
  af_store_close(s);
  PQfinish(c);
}

Test(store_pg, display_never_holds_the_password) {
  target t = target_of_env();
  char want[512], uri[1024];
  snprintf(want, sizeof want, "postgresql://%s@%s:%s/%s", t.user, t.host, t.port, t.db);
  const char *schemes[] = {"postgresql", "postgres"};
  for (int i = 0; i < 2; i++) {
    make_uri(uri, sizeof uri, schemes[i], "s3cret", schema);
    af_store *s = open_at(uri, NULL);
    cr_expect_str_eq(s->display, want);
    cr_expect_null(strstr(s->display, "s3cret"));
    af_store_close(s);
  }
}

typedef struct opener {
  pthread_barrier_t *go;
  af_store *s;
} opener;

static void *open_thread(void *arg) {
  opener *o = arg;
  af_store_config cfg = {.connections = 2};
  pthread_barrier_wait(o->go);
  af_store_open_rc why;
  char msg[512];
  o->s = af_store_open(store_uri, &cfg, &why, msg, sizeof msg);
  return NULL;
}

Test(store_pg, replicas_opening_together_share_one_token_key) {
  enum { N = 4 };
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, N);
  opener o[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    o[i] = (opener){&go, NULL};
    pthread_create(&th[i], NULL, open_thread, &o[i]);
  }
  for (int i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < N; i++)
    cr_assert_not_null(o[i].s, "replica %d failed to open", i);
  for (int i = 1; i < N; i++)
    cr_expect_arr_eq(o[i].s->token_key, o[0].s->token_key, AF_STORE_TOKEN_KEY_LEN);
  for (int i = 0; i < N; i++)
    af_store_close(o[i].s);
}

Test(store_pg, newer_schema_is_refused) {
  af_store_close(open_store(NULL));
  PGconn *c = admin();
  sql_ok(c, "UPDATE appflowd_meta SET value = convert_to('99', 'UTF8') WHERE key = "
            "'schema_version'");
  char uri[1024], msg[512], v[64];
  make_uri(uri, sizeof uri, "postgresql", "s3cret", schema);
  af_store_open_rc why;
  af_store *s = af_store_open(uri, NULL, &why, msg, sizeof msg);
  cr_assert_null(s);
  cr_expect_eq(why, AF_STORE_TOO_NEW);
  cr_expect(strstr(msg, "has appflowd schema version 99, newer than this appflowd's 4: run a "
                        "newer appflowd") != NULL,
            "%s", msg);
  cr_expect(strstr(msg, "the database at postgresql://") != NULL, "%s", msg);
  cr_expect_null(strstr(msg, "s3cret"), "%s", msg);
  cr_expect_str_eq(sql_value(c,
                             "SELECT convert_from(value, 'UTF8') FROM appflowd_meta WHERE key = "
                             "'schema_version'",
                             v, sizeof v),
                   "99", "refusing changes nothing");
  PQfinish(c);
}

Test(store_pg, malformed_uri_is_a_bad_url) {
  af_store_open_rc why;
  char msg[512];
  cr_assert_null(af_store_open("postgresql://h/db?nosuchoption=1", NULL, &why, msg, sizeof msg));
  cr_expect_eq(why, AF_STORE_BAD_URL);
  cr_expect(strstr(msg, "nosuchoption") != NULL, "%s", msg);
}

/* A worker or the probe failing to start fails the open, saying why in pthread_create's own
 * words (it returns its error and sets no errno); the threads already started are stopped and
 * the store opens again after. */
Test(store_pg, a_thread_that_cannot_start_fails_the_open_saying_why) {
  char want[256];
  snprintf(want, sizeof want, "cannot start the store's threads: %s", thread_fail_reason());
  const int workers = 3;
  for (int skip = 0; skip <= workers; skip++) { /* each worker, then the probe */
    af_store_open_rc why;
    char msg[512];
    thread_fail_arm(skip, 1);
    af_store *s =
        af_store_open(store_uri, &(af_store_config){.connections = workers}, &why, msg, sizeof msg);
    thread_fail_disarm();
    cr_expect_null(s, "thread %d refused", skip);
    cr_expect_eq(why, AF_STORE_OPEN_FAILED);
    cr_expect_str_eq(msg, want);
    cr_expect_eq(thread_fail_calls(), skip + 1);
    af_store_close(s);
  }
  af_store_close(open_store(NULL));
}

/* A loopback port: closed, or listening but never answering. */
static int loopback_port(bool listening, int *fd) {
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
  if (listening)
    cr_assert_eq(listen(*fd, 8), 0);
  else
    close(*fd);
  return ntohs(a.sin_port);
}

static void expect_unreachable(int port, double timeout_s, const char *reason) {
  char uri[256], display[256], msg[512];
  snprintf(uri, sizeof uri, "postgresql://appflowd:pw@127.0.0.1:%d/flows", port);
  snprintf(display, sizeof display, "postgresql://appflowd@127.0.0.1:%d/flows", port);
  af_store_config cfg = {.timeout_seconds = timeout_s};
  af_store_open_rc why;
  int64_t t0 = af_store_now_ms();
  af_store *s = af_store_open(uri, &cfg, &why, msg, sizeof msg);
  int64_t took = af_store_now_ms() - t0;
  cr_assert_null(s);
  cr_expect_eq(why, AF_STORE_UNREACHABLE, "%s", msg);
  cr_expect(strstr(msg, display) != NULL, "%s", msg);
  cr_expect(strstr(msg, reason) != NULL, "%s", msg);
  cr_expect_null(strstr(msg, ":pw@"), "%s", msg);
  cr_expect_lt(took, (int64_t)(timeout_s * 1000) + 2000, "took %lld ms", (long long)took);
}

Test(store_pg, closed_port_is_unreachable) {
  int fd;
  expect_unreachable(loopback_port(false, &fd), 5, "Connection refused");
}

Test(store_pg, silent_server_is_unreachable_once_the_timeout_passes) {
  int fd;
  int port = loopback_port(true, &fd);
  int64_t t0 = af_store_now_ms();
  expect_unreachable(port, 0.5, "no answer in time");
  cr_expect_geq(af_store_now_ms() - t0, 450);
  close(fd);
}

/* ---- records ---- */

typedef struct expect_ctx {
  const af_flow_record *want;
  uint64_t version;
  bool same;
} expect_ctx;

static bool same_str(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Same bytes, and empty ones as {NULL, 0}. */
static bool same_bytes(af_bytes a, af_bytes b) {
  return af__bytes_equal(a, b) && (a.len > 0 || a.data == NULL);
}

static af_store_verdict expect_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  expect_ctx *e = ctx;
  const af_flow_record *w = e->want;
  e->version = cur->version;
  e->same = cur->name_len == w->name_len && memcmp(cur->name, w->name, w->name_len) == 0 &&
            cur->name[cur->name_len] == '\0' && cur->trigger == w->trigger &&
            cur->status == w->status && cur->create_status == w->create_status &&
            cur->created_ms == w->created_ms && cur->updated_ms == w->updated_ms &&
            same_str(cur->description, w->description) &&
            same_str(cur->source_connector, w->source_connector) &&
            same_str(cur->destination_connector, w->destination_connector) &&
            same_str(cur->create_token, w->create_token) &&
            same_str(cur->created_by, w->created_by) && same_str(cur->updated_by, w->updated_by) &&
            same_str(cur->status_message, w->status_message) &&
            same_str(cur->source_profile, w->source_profile) &&
            same_str(cur->destination_profile, w->destination_profile) &&
            same_bytes(cur->definition, w->definition) && same_bytes(cur->tags, w->tags) &&
            same_bytes(cur->runs, w->runs);
  return AF_STORE_KEEP;
}

static void expect_stored(af_store *s, const af_flow_record *want, uint64_t version) {
  expect_ctx e = {want, 0, false};
  cr_assert_eq(modify(s, want->name, expect_rule, &e), AF_STORE_OK);
  cr_expect(e.same, "%s: the stored record differs", want->name);
  cr_expect_eq(e.version, version);
}

typedef struct change_ctx {
  af_bytes tags, definition;
  bool change_definition;
} change_ctx;

static af_store_verdict change_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  change_ctx *c = ctx;
  next->tags = c->tags;
  if (c->change_definition)
    next->definition = c->definition;
  next->updated_ms = cur->updated_ms + 1;
  return AF_STORE_WRITE;
}

Test(store_pg, records_round_trip_through_every_verdict) {
  static uint8_t def[64 * 1024];
  for (size_t i = 0; i < sizeof def; i++)
    def[i] = (uint8_t)(i * 7 + (i >> 8));
  af_flow_record r = record("full");
  r.trigger = 200;
  r.created_ms = -5;
  r.updated_ms = INT64_C(1700000000123);
  r.description = "d\xc3\xa9scription";
  r.source_connector = "S3";
  r.destination_connector = "";
  r.create_token = "token-1";
  r.created_by = "arn:aws:iam::123456789012:user/cr\xc3\xa9"
                 "ator";
  r.updated_by = "";
  r.status_message = "Errored: the source bucket is gone";
  r.source_profile = "s3-pr\xc3\xb6"
                     "file";
  r.destination_profile = "";
  r.definition = (af_bytes){def, sizeof def};
  r.tags = (af_bytes){(const uint8_t *)"\x00\x01\x02", 3};
  r.runs = (af_bytes){(const uint8_t *)"runs\x00", 5};
  af_store *s = open_store(NULL);
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  expect_stored(s, &r, 1);

  af_store_verdict v;
  cr_expect_eq(insert(s, &r), AF_STORE_EXISTS);
  cr_expect_eq(insert_with(s, &r, keep, NULL, &v), AF_STORE_EXISTS);
  cr_expect_eq(v, AF_STORE_KEEP);
  cr_expect_eq(insert_with(s, &r, refuse, NULL, &v), AF_STORE_REFUSED);
  cr_expect_eq(v, AF_STORE_REFUSE);
  cr_expect_eq(modify_v(s, "full", refuse, NULL, &v), AF_STORE_REFUSED);
  cr_expect_eq(v, AF_STORE_REFUSE);
  expect_stored(s, &r, 1);

  /* A write that leaves the definition where it was keeps it (the statement without it). */
  change_ctx ch = {.tags = {(const uint8_t *)"new tags", 8}};
  cr_expect_eq(modify_v(s, "full", change_rule, &ch, &v), AF_STORE_OK);
  cr_expect_eq(v, AF_STORE_WRITE);
  r.tags = ch.tags;
  r.updated_ms++;
  expect_stored(s, &r, 2);

  ch = (change_ctx){.definition = {(const uint8_t *)"short", 5}, .change_definition = true};
  cr_expect_eq(modify(s, "full", change_rule, &ch), AF_STORE_OK);
  r.tags = (af_bytes){NULL, 0};
  r.definition = ch.definition;
  r.updated_ms++;
  expect_stored(s, &r, 3);

  cr_expect_eq(modify_v(s, "full", delete_it, NULL, &v), AF_STORE_OK);
  cr_expect_eq(v, AF_STORE_DELETE);
  cr_expect_eq(modify(s, "full", keep, NULL), AF_STORE_NOT_FOUND);
  cr_expect_eq(insert(s, &r), AF_STORE_OK, "a deleted name can be taken again");
  expect_stored(s, &r, 1);
  af_store_close(s);
}

Test(store_pg, absent_strings_and_empty_blobs_are_null) {
  af_store *s = open_store(NULL);
  af_flow_record r = record("bare");
  r.tags = (af_bytes){(const uint8_t *)"", 0};
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  r.tags = (af_bytes){NULL, 0};
  expect_stored(s, &r, 1);
  PGconn *c = admin();
  char v[64];
  cr_expect_str_eq(
      sql_value(
          c,
          "SELECT description IS NULL AND source_connector IS NULL AND "
          "destination_connector IS NULL AND create_token IS NULL AND "
          "created_by IS NULL AND updated_by IS NULL AND "
          "status_message IS NULL AND source_profile IS NULL AND "
          "destination_profile IS NULL AND definition IS NULL AND tags IS NULL AND runs IS NULL "
          "FROM appflowd_flows WHERE name = 'bare'",
          v, sizeof v),
      "t");
  PQfinish(c);
  af_store_close(s);
}

/* ---- migrating from schema versions 1 and 2 ---- */

/* The tables as schema version 1 made them (the previous appflowd's DDL, copied here), with
 * its meta rows and one flow. */
static const char v1_schema[] =
    "CREATE TABLE appflowd_meta (key text PRIMARY KEY, value bytea NOT NULL);"
    "CREATE TABLE IF NOT EXISTS appflowd_flows ("
    "name text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, "
    "trigger_type smallint NOT NULL, status smallint NOT NULL, "
    "create_status smallint NOT NULL, created_ms bigint NOT NULL, "
    "updated_ms bigint NOT NULL, description text, source_connector text, "
    "destination_connector text, create_token text, definition bytea, "
    "tags bytea, runs bytea);"
    "INSERT INTO appflowd_meta (key, value) VALUES "
    "('schema_version', convert_to('1', 'UTF8')), ('token_key', decode(repeat('ab', 32), 'hex'));"
    "INSERT INTO appflowd_flows VALUES ('old', 7, 1, 2, 3, 1000, 2000, 'made by version 1', 'S3', "
    "'Salesforce', 'token-0', '\\x0102'::bytea, '\\x0a0b'::bytea, NULL);";

/* The same as schema version 2 made them: appflowd_flows with three more columns, set in the
 * flow. */
static const char v2_schema[] =
    "CREATE TABLE appflowd_meta (key text PRIMARY KEY, value bytea NOT NULL);"
    "CREATE TABLE IF NOT EXISTS appflowd_flows ("
    "name text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, "
    "trigger_type smallint NOT NULL, status smallint NOT NULL, "
    "create_status smallint NOT NULL, created_ms bigint NOT NULL, "
    "updated_ms bigint NOT NULL, description text, source_connector text, "
    "destination_connector text, create_token text, definition bytea, "
    "tags bytea, runs bytea, created_by text, updated_by text, status_message text);"
    "INSERT INTO appflowd_meta (key, value) VALUES "
    "('schema_version', convert_to('2', 'UTF8')), ('token_key', decode(repeat('ab', 32), 'hex'));"
    "INSERT INTO appflowd_flows VALUES ('old', 7, 1, 2, 3, 1000, 2000, 'made by version 1', 'S3', "
    "'Salesforce', 'token-0', '\\x0102'::bytea, '\\x0a0b'::bytea, NULL, 'arn:creator', "
    "'arn:changer', 'Errored: made by version 2');";

static const char *const old_schemas[] = {[1] = v1_schema, [2] = v2_schema};

/* The flow an old schema holds, as the store returns it; from: its version. */
static af_flow_record old_flow(int from) {
  static const uint8_t def[] = {1, 2}, tags[] = {10, 11};
  af_flow_record r = {.name = "old",
                      .name_len = 3,
                      .trigger = 1,
                      .status = 2,
                      .create_status = 3,
                      .created_ms = 1000,
                      .updated_ms = 2000,
                      .description = "made by version 1",
                      .source_connector = "S3",
                      .destination_connector = "Salesforce",
                      .create_token = "token-0",
                      .definition = {def, sizeof def},
                      .tags = {tags, sizeof tags}};
  if (from >= 2) {
    r.created_by = "arn:creator";
    r.updated_by = "arn:changer";
    r.status_message = "Errored: made by version 2";
  }
  return r;
}

static af_store_verdict set_who(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const af_flow_record *want = ctx;
  next->created_by = want->created_by;
  next->updated_by = want->updated_by;
  next->status_message = want->status_message;
  next->source_profile = want->source_profile;
  next->destination_profile = want->destination_profile;
  return AF_STORE_WRITE;
}

/* Lines of the log file that say the schema was migrated (what: from which version, or any). */
static int migrations_logged(FILE *f, const char *what) {
  char line[1024];
  int n = 0;
  rewind(f);
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, what) != NULL;
  return n;
}

static af_store_rc insert_in(af_store *s, af_store_table t, const af_flow_record *r) {
  af_store_op op = {.table = t, .key = r->name, .key_len = r->name_len, .record = r};
  return af_store_run(s, af_store_insert, &op);
}

static void expect_stored_in(af_store *s, af_store_table t, const af_flow_record *want,
                             uint64_t version) {
  expect_ctx e = {want, 0, false};
  af_store_op op = {.table = t,
                    .key = want->name,
                    .key_len = want->name_len,
                    .rule = expect_rule,
                    .ctx = &e,
                    .with_definition = true};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK, "table %d", t);
  cr_expect(e.same, "%s in table %d: the stored record differs", want->name, t);
  cr_expect_eq(e.version, version);
}

/* The tables version 3 added take records, even one named as the flow, and leave the flow. */
static void expect_new_tables_usable(af_store *s, int from) {
  af_flow_record r = record("old");
  r.source_connector = "Salesforce";
  r.source_profile = "sf-profile";
  r.definition = (af_bytes){(const uint8_t *)"packed", 6};
  for (int t = AF_TABLE_PROFILES; t < AF_STORE_TABLES; t++) {
    cr_assert_eq(insert_in(s, (af_store_table)t, &r), AF_STORE_OK, "table %d", t);
    expect_stored_in(s, (af_store_table)t, &r, 1);
  }
  af_flow_record old = old_flow(from);
  expect_stored(s, &old, 7);
}

/* Opens the database of schema version from (made by hand): migrated once, its flow and token
 * key intact, every table and column there, the new ones usable and written. */
static void expect_migrated(int from) {
  PGconn *c = admin();
  sql_ok(c, old_schemas[from]);
  char v[256], line[64];
  cr_assert_str_eq(
      columns(c, "appflowd_flows", "'source_profile', 'destination_profile'", v, sizeof v), "0");
  FILE *logf = tmpfile();
  cr_assert_not_null(logf);
  af_log log = {AF_LOG_INFO, logf};
  af_store *s = open_store(&(af_store_config){.log = &log});
  snprintf(line, sizeof line, "migrated schema %d -> 4", from);
  cr_expect_eq(migrations_logged(logf, line), 1, "%s", line);
  uint8_t key[AF_STORE_TOKEN_KEY_LEN];
  memset(key, 0xab, sizeof key);
  cr_expect_arr_eq(s->token_key, key, sizeof key, "the token key outlives the migration");
  cr_expect_str_eq(sql_value(c,
                             "SELECT convert_from(value, 'UTF8') FROM appflowd_meta WHERE key = "
                             "'schema_version'",
                             v, sizeof v),
                   "4");
  expect_every_column(c);
  af_flow_record old = old_flow(from);
  expect_stored(s, &old, 7); /* the new strings NULL, the rest as the old version left it */
  expect_new_tables_usable(s, from);

  af_flow_record who = old;
  who.created_by = "arn:aws:iam::123456789012:user/creator";
  who.updated_by = "arn:aws:iam::123456789012:role/changer";
  who.status_message = "Errored: the connector profile is gone";
  who.source_profile = "s3-source";
  who.destination_profile = "sf-destination";
  cr_assert_eq(modify(s, "old", set_who, &who), AF_STORE_OK);
  expect_stored(s, &who, 8);
  cr_expect_str_eq(sql_value(c,
                             "SELECT created_by || ' ' || updated_by || ' ' || status_message "
                             "|| ' ' || source_profile || ' ' || destination_profile "
                             "FROM appflowd_flows WHERE name = 'old'",
                             v, sizeof v),
                   "arn:aws:iam::123456789012:user/creator arn:aws:iam::123456789012:role/changer "
                   "Errored: the connector profile is gone s3-source sf-destination");
  af_flow_record fresh = record("new");
  fresh.created_by = "arn:aws:iam::123456789012:user/new";
  fresh.destination_profile = "new-destination";
  cr_assert_eq(insert(s, &fresh), AF_STORE_OK);
  expect_stored(s, &fresh, 1);
  af_store_close(s);

  /* Opened again, a version 3 database is not migrated again. */
  s = open_store(&(af_store_config){.log = &log});
  cr_expect_eq(migrations_logged(logf, "migrated schema"), 1);
  expect_stored(s, &who, 8);
  expect_stored(s, &fresh, 1);
  af_store_close(s);
  fclose(logf);
  PQfinish(c);
}

Test(store_pg, a_version_1_database_is_migrated_on_open) { expect_migrated(1); }

Test(store_pg, a_version_2_database_is_migrated_on_open) { expect_migrated(2); }

typedef struct migrator {
  pthread_barrier_t *go;
  af_log *log;
  af_store *s;
  char msg[512];
} migrator;

static void *migrate_thread(void *arg) {
  migrator *m = arg;
  af_store_config cfg = {.connections = 1, .log = m->log};
  pthread_barrier_wait(m->go);
  af_store_open_rc why;
  m->s = af_store_open(store_uri, &cfg, &why, m->msg, sizeof m->msg);
  return NULL;
}

/* The advisory lock makes replicas take turns: the first migrates, the others find version 3
 * (a second ALTER TABLE ... ADD COLUMN would fail their open). */
static void expect_migrated_once_by_replicas(int from) {
  PGconn *c = admin();
  sql_ok(c, old_schemas[from]);
  FILE *logf = tmpfile();
  cr_assert_not_null(logf);
  af_log log = {AF_LOG_INFO, logf};
  enum { N = 4 };
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, N);
  static migrator m[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    m[i] = (migrator){.go = &go, .log = &log};
    pthread_create(&th[i], NULL, migrate_thread, &m[i]);
  }
  for (int i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < N; i++)
    cr_assert_not_null(m[i].s, "replica %d failed to open: %s", i, m[i].msg);
  cr_expect_eq(migrations_logged(logf, "migrated schema"), 1);
  expect_every_column(c);
  af_flow_record old = old_flow(from);
  for (int i = 0; i < N; i++)
    expect_stored(m[i].s, &old, 7);
  for (int i = 0; i < N; i++)
    af_store_close(m[i].s);
  fclose(logf);
  PQfinish(c);
}

typedef struct late_opener {
  af_store_config cfg;
  af_store *s;
  char msg[512];
} late_opener;

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, ms % 1000 * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}

static void *late_open_thread(void *arg) {
  late_opener *o = arg;
  af_store_open_rc why;
  o->s = af_store_open(store_uri, &o->cfg, &why, o->msg, sizeof o->msg);
  return NULL;
}

/* Whether a session of this store's waits on a lock (the opener on the schema lock). */
static bool store_waits_on_lock(PGconn *c) {
  char sql[256], v[32];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND "
           "wait_event_type = 'Lock'",
           schema);
  return strcmp(sql_value(c, sql, v, sizeof v), "0") != 0;
}

/* Opening is bounded on its own, not by the requests' --store-timeout: a replica that holds
 * the schema lock (migrating) for longer than that timeout does not fail the others' start. */
Test(store_pg, opening_waits_past_the_request_timeout_for_the_schema_lock) {
  PGconn *holder = admin();
  sql_ok(holder, "BEGIN");
  sql_ok(holder, "SELECT pg_advisory_xact_lock(" AF_STORE_PG_SCHEMA_LOCK ")");
  late_opener o = {.cfg = {.connections = 1, .timeout_seconds = 0.2}};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, late_open_thread, &o), 0);
  PGconn *c = admin();
  int64_t limit = af_store_now_ms() + WAIT_S * 1000;
  while (!store_waits_on_lock(c) && af_store_now_ms() < limit)
    sleep_ms(10);
  cr_assert(store_waits_on_lock(c), "the opener never waited on the schema lock");
  /* The scenario, not synchronisation: the lock is held past the 0.2 s request timeout. */
  sleep_ms(600);
  sql_ok(holder, "COMMIT");
  pthread_join(th, NULL);
  cr_assert_not_null(o.s, "open failed: %s", o.msg);
  af_store_close(o.s);
  PQfinish(c);
  PQfinish(holder);
}

Test(store_pg, replicas_opening_a_version_1_database_together_migrate_it_once) {
  expect_migrated_once_by_replicas(1);
}

Test(store_pg, replicas_opening_a_version_2_database_together_migrate_it_once) {
  expect_migrated_once_by_replicas(2);
}

/* ---- scans ---- */

typedef struct seen {
  char names[16][16];
  int n, stop_after;
  bool definition_empty;
} seen;

static bool collect(const af_flow_record *rec, void *ctx) {
  seen *s = ctx;
  if (s->n < 16)
    snprintf(s->names[s->n], sizeof s->names[0], "%.*s", (int)rec->name_len, rec->name);
  s->n++;
  s->definition_empty &= rec->definition.len == 0 && rec->definition.data == NULL;
  return s->stop_after == 0 || s->n < s->stop_after;
}

static seen scan(af_store *st, const char *after, size_t limit, int stop_after) {
  seen s = {.stop_after = stop_after, .definition_empty = true};
  af_store_op op = {.key = after,
                    .key_len = after ? strlen(after) : 0,
                    .visit = collect,
                    .ctx = &s,
                    .limit = limit};
  cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
  return s;
}

static void expect_names(const seen *s, const char *const *want, int n) {
  cr_assert_eq(s->n, n, "saw %d flows, not %d", s->n, n);
  for (int i = 0; i < n; i++)
    cr_expect_str_eq(s->names[i], want[i]);
}

/* Names are ASCII below '~' (the scopes' prefix: store.h), as every AppFlow name is. */
Test(store_pg, scans_go_in_bytewise_name_order_and_resume_after_a_key) {
  const char *names[] = {"a", "B", "b", "A", "ab", "_", "}"};
  af_store *s = open_store(NULL);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    af_flow_record r = record(names[i]);
    r.definition = (af_bytes){(const uint8_t *)"def", 3};
    cr_assert_eq(insert(s, &r), AF_STORE_OK);
  }
  const char *all[] = {"A", "B", "_", "a", "ab", "b", "}"};
  seen got = scan(s, NULL, SIZE_MAX, 0);
  expect_names(&got, all, 7);
  cr_expect(got.definition_empty, "a scan leaves definitions out");
  got = scan(s, "B", 2, 0);
  expect_names(&got, all + 2, 2);
  got = scan(s, "aa", SIZE_MAX, 0); /* resumes after a name that is not there */
  expect_names(&got, all + 4, 3);
  got = scan(s, "}", SIZE_MAX, 0);
  expect_names(&got, all, 0);
  got = scan(s, NULL, 0, 0);
  expect_names(&got, all, 0);
  got = scan(s, NULL, SIZE_MAX, 3);
  expect_names(&got, all, 3);
  af_store_close(s);
}

/* ---- replicas racing ---- */

typedef struct racer {
  af_store *s;
  int id;
  atomic_int *ok, *exists, *other;
} racer;

static void *increment_thread(void *arg) {
  racer *r = arg;
  for (int k = 0; k < 200; k++) {
    const char *name = k % 2 ? "r1" : "r0";
    if (modify(r->s, name, increment, NULL) != AF_STORE_OK)
      atomic_fetch_add(r->other, 1);
  }
  return NULL;
}

Test(store_pg, concurrent_modifies_apply_every_increment_once) {
  af_store *s[2] = {open_store(NULL), open_store(NULL)};
  af_flow_record r0 = record("r0"), r1 = record("r1");
  cr_assert_eq(insert(s[0], &r0), AF_STORE_OK);
  cr_assert_eq(insert(s[1], &r1), AF_STORE_OK);
  atomic_int failed = 0;
  racer rs[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    rs[i] = (racer){.s = s[i % 2], .id = i, .other = &failed};
    pthread_create(&th[i], NULL, increment_thread, &rs[i]);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  cr_expect_eq(atomic_load(&failed), 0);
  reading a = read_flow(s[0], "r0"), b = read_flow(s[1], "r1");
  cr_expect_eq(a.created_ms + b.created_ms, 1600);
  cr_expect_eq(a.created_ms, 800);
  cr_expect_eq(a.version, 801);
  cr_expect_eq(b.version, 801);
  af_store_close(s[0]);
  af_store_close(s[1]);
}

#define NAMES 50

static void *insert_thread(void *arg) {
  racer *r = arg;
  for (int k = 0; k < NAMES; k++) {
    int i = (k + r->id * 7) % NAMES;
    char name[16];
    snprintf(name, sizeof name, "flow-%02d", i);
    af_flow_record rec = record(name);
    rec.created_ms = r->id;
    switch (insert(r->s, &rec)) {
    case AF_STORE_OK:
      atomic_fetch_add(&r->ok[i], 1);
      break;
    case AF_STORE_EXISTS:
      atomic_fetch_add(&r->exists[i], 1);
      break;
    case AF_STORE_NOT_FOUND:
    case AF_STORE_REFUSED:
    case AF_STORE_BUSY:
    case AF_STORE_UNAVAILABLE:
    case AF_STORE_FAILED:
    case AF_STORE_TOO_LONG:
      atomic_fetch_add(r->other, 1);
      break;
    }
  }
  return NULL;
}

Test(store_pg, racing_inserts_take_each_name_once) {
  af_store *s[2] = {open_store(NULL), open_store(NULL)};
  atomic_int ok[NAMES] = {0}, exists[NAMES] = {0}, other = 0;
  racer rs[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    rs[i] = (racer){.s = s[i % 2], .id = i, .ok = ok, .exists = exists, .other = &other};
    pthread_create(&th[i], NULL, insert_thread, &rs[i]);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  cr_expect_eq(atomic_load(&other), 0);
  for (int i = 0; i < NAMES; i++) {
    cr_expect_eq(atomic_load(&ok[i]), 1, "flow-%02d inserted %d times", i, atomic_load(&ok[i]));
    cr_expect_eq(atomic_load(&exists[i]), 7);
  }
  seen all = scan(s[0], NULL, SIZE_MAX, 0);
  cr_expect_eq(all.n, NAMES);
  af_store_close(s[0]);
  af_store_close(s[1]);
}

/* ---- limits: queue, time, a database that goes away ---- */

/* A store with one connection, its flow "hot" locked by *blocker, and n modifies of it
 * submitted: the first (deadline first_deadline; 0: the store's) waits on the lock, its rule
 * having run, the others behind it. */
static af_store *hot_store(size_t queue, PGconn **blocker, tracker *t, async_op *ops, int n,
                           int64_t first_deadline) {
  af_store_config cfg = {.connections = 1, .queue = queue, .timeout_seconds = WAIT_S};
  af_store *s = open_store(&cfg);
  af_flow_record r = record("hot");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  *blocker = lock_row("hot");
  submit_modify(s, &ops[0], t, "hot", first_deadline);
  cr_assert(wait_count(t, &t->ruled, 1));
  for (int i = 1; i < n; i++)
    submit_modify(s, &ops[i], t, "hot", 0);
  return s;
}

Test(store_pg, full_queue_answers_busy) {
  /* The one connection waits on the lock with the first op, two more wait in the queue, and
   * the rest are turned away at once. */
  enum { N = 10 };
  tracker t = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  async_op ops[N];
  PGconn *blocker;
  af_store *s = hot_store(2, &blocker, &t, ops, N, 0);
  pthread_mutex_lock(&t.lock);
  int busy = 0;
  for (int i = 0; i < N; i++)
    busy += ops[i].finished && ops[i].rc == AF_STORE_BUSY;
  int early = t.finished;
  pthread_mutex_unlock(&t.lock);
  cr_expect_eq(early, busy, "only BUSY answers come before the lock is released");
  cr_expect_eq(busy, N - 3);
  release(blocker);
  cr_assert(wait_count(&t, &t.finished, N));
  for (int i = 0; i < N; i++)
    cr_expect(ops[i].rc == AF_STORE_OK || ops[i].rc == AF_STORE_BUSY, "op %d: %d", i,
              (int)ops[i].rc);
  cr_expect_eq(read_flow(s, "hot").created_ms, N - busy);
  af_store_close(s);
}

static int health_events(health_log *h) {
  pthread_mutex_lock(&h->lock);
  int n = h->n;
  pthread_mutex_unlock(&h->lock);
  return n;
}

/* A caller's deadline, shorter than the store's timeout, passes while a row lock holds the op:
 * UNAVAILABLE for that caller at its deadline, and the store stays healthy (a caller in a hurry
 * is no sign that the database is down). */
Test(store_pg, a_callers_deadline_under_a_row_lock_is_unavailable_not_a_hang) {
  af_store_config cfg = {.connections = 1, .timeout_seconds = WAIT_S};
  af_store *s = open_store(&cfg);
  af_flow_record r = record("hot");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  health_log h;
  watch(s, &h);
  PGconn *blocker = lock_row("hot");
  af_store_op op = {
      .key = "hot", .key_len = 3, .rule = increment, .deadline_ms = af_store_now_ms() + 300};
  int64_t t0 = af_store_now_ms();
  cr_expect_eq(af_store_run(s, af_store_modify, &op), AF_STORE_UNAVAILABLE);
  int64_t took = af_store_now_ms() - t0;
  cr_expect(took >= 250 && took < 5000, "took %lld ms", (long long)took);
  cr_expect(af_store_healthy(s));
  release(blocker);
  cr_expect_eq(modify(s, "hot", increment, NULL), AF_STORE_OK);
  cr_expect_eq(health_events(&h), 0, "health never changed");
  af_store_close(s);
}

/* The same when the caller's deadline passes while the store reconnects (its connection went
 * with the last op's deadline): the new session's statements wait on a table lock, and the
 * caller in a hurry still says nothing about the database's health. */
Test(store_pg, a_callers_deadline_while_reconnecting_leaves_the_store_healthy) {
  af_store_config cfg = {.connections = 1, .timeout_seconds = WAIT_S};
  af_store *s = open_store(&cfg);
  af_flow_record r = record("hot");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  health_log h;
  watch(s, &h);
  PGconn *row = lock_row("hot");
  af_store_op op = {
      .key = "hot", .key_len = 3, .rule = increment, .deadline_ms = af_store_now_ms() + 300};
  cr_expect_eq(af_store_run(s, af_store_modify, &op), AF_STORE_UNAVAILABLE);
  release(row);
  PGconn *table = admin();
  sql_ok(table, "BEGIN");
  sql_ok(table, "LOCK TABLE appflowd_flows IN ACCESS EXCLUSIVE MODE");
  af_store_op again = {
      .key = "hot", .key_len = 3, .rule = increment, .deadline_ms = af_store_now_ms() + 300};
  cr_expect_eq(af_store_run(s, af_store_modify, &again), AF_STORE_UNAVAILABLE);
  cr_expect(af_store_healthy(s));
  release(table);
  cr_expect_eq(modify(s, "hot", increment, NULL), AF_STORE_OK);
  cr_expect_eq(health_events(&h), 0, "health never changed");
  af_store_close(s);
}

/* The store's own timeout passes under the lock: the database is too slow to serve, so the
 * store turns unhealthy until it answers again. */
Test(store_pg, the_stores_timeout_under_a_row_lock_turns_it_unhealthy) {
  af_store_config cfg = {.connections = 1, .timeout_seconds = 0.3};
  af_store *s = open_store(&cfg);
  af_flow_record r = record("hot");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  health_log h;
  watch(s, &h);
  PGconn *blocker = lock_row("hot");
  int64_t t0 = af_store_now_ms();
  cr_expect_eq(modify(s, "hot", increment, NULL), AF_STORE_UNAVAILABLE);
  int64_t took = af_store_now_ms() - t0;
  cr_expect(took >= 250 && took < 5000, "took %lld ms", (long long)took);
  release(blocker);
  cr_assert(wait_down_up(&h), "health did not go down and come back");
  cr_expect_eq(modify(s, "hot", increment, NULL), AF_STORE_OK);
  af_store_close(s);
}

Test(store_pg, service_resumes_after_its_sessions_are_terminated) {
  af_store_config cfg = {.connections = 1, .timeout_seconds = WAIT_S};
  af_store *s = open_store(&cfg);
  af_flow_record r = record("f");
  cr_assert_eq(insert(s, &r), AF_STORE_OK);
  health_log h;
  watch(s, &h);
  PGconn *c = admin();
  char sql[512], v[32];
  snprintf(sql, sizeof sql,
           "WITH store AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE "
           "application_name = '%s') SELECT count(*) FROM store WHERE "
           "pg_terminate_backend(pid, 10000)",
           schema);
  cr_assert_str_eq(sql_value(c, sql, v, sizeof v), "1");
  af_store_rc rc = modify(s, "f", increment, NULL);
  cr_expect(rc == AF_STORE_UNAVAILABLE || rc == AF_STORE_OK, "%d", (int)rc);
  if (rc == AF_STORE_UNAVAILABLE)
    cr_assert(wait_down_up(&h), "health did not go down and come back");
  cr_expect_eq(modify(s, "f", increment, NULL), AF_STORE_OK);
  cr_expect_eq(read_flow(s, "f").created_ms, rc == AF_STORE_OK ? 2 : 1);
  PQfinish(c);
  af_store_close(s);
}

Test(store_pg, close_completes_queued_ops_unavailable) {
  /* The first op waits on the lock until its deadline, the others in the queue. */
  enum { N = 4 };
  tracker t = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  async_op ops[N];
  PGconn *blocker;
  af_store *s = hot_store(8, &blocker, &t, ops, N, af_store_now_ms() + 500);
  af_store_close(s);
  cr_expect_eq(t.finished, N, "close completes every op");
  for (int i = 0; i < N; i++)
    cr_expect_eq(ops[i].rc, AF_STORE_UNAVAILABLE, "op %d", i);
  release(blocker);
}
