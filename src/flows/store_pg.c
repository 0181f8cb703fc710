/* The PostgreSQL store: flows, connector profiles and custom connectors in a table each (all
 * with the same columns) of a shared database, the source of truth for any number of appflowd
 * replicas.
 *
 * Threads: `connections` workers, each with its own connection and prepared statements, take
 * one op at a time from a bounded queue; a probe thread sleeps while the store is healthy and,
 * once it is not, tries the database every PROBE_MS until it answers again.
 *
 * Replicas meet optimistically, one statement per write and no explicit transaction: each row
 * carries a version every write increments, and a write or delete names the version its rule
 * saw (WHERE version = $2). No row affected means another writer came first: the op then reads
 * the row again under its lock (SELECT ... FOR UPDATE in a transaction) and reruns the rule, so
 * a contended flow costs a wait on its lock, never rounds of wasted work. Nothing is ever
 * half-applied.
 *
 * Time: every round trip, connecting included, goes through libpq's asynchronous API and
 * poll() with the op's deadline, so no thread waits on the database longer than an op may. A
 * connection that timed out or broke is closed (what it was doing is unknown) and the store
 * turns unhealthy, so doors fail fast until the probe gets an answer - unless only the caller's
 * own deadline, shorter than the store's timeout, ran out: a caller in a hurry does not make
 * the database unhealthy for everyone. Sessions also set
 * statement_timeout and client_connection_check_interval, so that a statement whose client has
 * given up stops instead of running on.
 *
 * Encoding: parameters and results travel in binary (integers big-endian, bytea and text as
 * their bytes); libpq ends every value with a NUL, so text results are C strings. */
#include "flows/store.h"

#include "flows/store_queue.h"

#include <libpq-fe.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES 100 /* reads and rule runs for one op that keeps losing races */
#define PROBE_MS 250
#define CHECK_INTERVAL_MS 1000
#define MAX_PARAMS 19
#define WHY_MAX 256

#define STR(x) #x
#define XSTR(x) STR(x)

/* Type OIDs (catalog/pg_type_d.h, which libpq-dev does not ship). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_TEXT 25

enum { KIND_INSERT = 1, KIND_MODIFY, KIND_SCAN };

/* ---- statements ---- */

/* Result columns, in the order every SELECT lists them; a scan stops before the definition. */
enum {
  COL_NAME,
  COL_VERSION,
  COL_TRIGGER,
  COL_STATUS,
  COL_CREATE_STATUS,
  COL_CREATED,
  COL_UPDATED,
  COL_DESCRIPTION,
  COL_SOURCE,
  COL_DESTINATION,
  COL_TOKEN,
  COL_TAGS,
  COL_RUNS,
  COL_CREATED_BY,
  COL_UPDATED_BY,
  COL_STATUS_MESSAGE,
  COL_SOURCE_PROFILE,
  COL_DESTINATION_PROFILE,
  COL_DEFINITION
};

#define COLUMNS                                                                                    \
  "name, version, trigger_type, status, create_status, created_ms, updated_ms, description, "      \
  "source_connector, destination_connector, create_token, tags, runs, created_by, updated_by, "    \
  "status_message, source_profile, destination_profile"
/* What put_record sends after the key (and version), as UPDATE assigns it. */
#define RECORD_SET                                                                                 \
  "trigger_type = $3, status = $4, create_status = $5, created_ms = $6, updated_ms = $7, "         \
  "description = $8, source_connector = $9, destination_connector = $10, create_token = $11, "     \
  "tags = $12, runs = $13, created_by = $14, updated_by = $15, status_message = $16, "             \
  "source_profile = $17, destination_profile = $18"
#define RECORD_TYPES                                                                               \
  OID_INT2, OID_INT2, OID_INT2, OID_INT8, OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT,        \
      OID_BYTEA, OID_BYTEA, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT
/* A scan's rows lie between two names (af__db_scan_bounds: one scope's, never the private
 * keys, which start with AF_STORE_PRIVATE_KEY) */
/* ... and, when $4 is not 0, only rows with a run log (an empty one is stored as NULL) */
#define SCAN_RANGE "name > $1 AND name < $3 AND ($4 = 0 OR runs IS NOT NULL)"
/* Every table of schema version 3 has these columns; a version 1 appflowd_flows lacks the last
 * five, a version 2 one the last two (migrations). */
#define TABLE_COLUMNS                                                                              \
  " (name text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, "                               \
  "trigger_type smallint NOT NULL, status smallint NOT NULL, "                                     \
  "create_status smallint NOT NULL, created_ms bigint NOT NULL, "                                  \
  "updated_ms bigint NOT NULL, description text, source_connector text, "                          \
  "destination_connector text, create_token text, definition bytea, "                              \
  "tags bytea, runs bytea, created_by text, updated_by text, status_message text, "                \
  "source_profile text, destination_profile text)"

typedef enum stmt_id {
  ST_SELECT,
  ST_SELECT_BARE, /* ... without the definition */
  ST_SELECT_LOCKED,
  ST_SELECT_LOCKED_BARE,
  ST_INSERT,
  ST_UPDATE,
  ST_UPDATE_KEEP_DEFINITION,
  ST_DELETE,
  ST_SCAN,
  ST_SCAN_DEFINITIONS, /* ... with the definitions */
  ST_COUNT
} stmt_id;

/* A statement is head, a table's name, tail: each table has its own set, prepared on every
 * connection under names of their own (stmt_key). what names it in the log, before the table. */
typedef struct stmt {
  const char *what, *head, *tail;
  int nparams;
  Oid types[MAX_PARAMS];
} stmt;

static const stmt stmts[ST_COUNT] = {
    [ST_SELECT] =
        {"select from", "SELECT " COLUMNS ", definition FROM ", " WHERE name = $1", 1, {OID_TEXT}},
    [ST_SELECT_BARE] = {"select but the definition from",
                        "SELECT " COLUMNS " FROM ",
                        " WHERE name = $1",
                        1,
                        {OID_TEXT}},
    [ST_SELECT_LOCKED_BARE] = {"select but the definition for update from",
                               "SELECT " COLUMNS " FROM ",
                               " WHERE name = $1 FOR UPDATE",
                               1,
                               {OID_TEXT}},
    [ST_SELECT_LOCKED] = {"select for update from",
                          "SELECT " COLUMNS ", definition FROM ",
                          " WHERE name = $1 FOR UPDATE",
                          1,
                          {OID_TEXT}},
    [ST_INSERT] = {"insert into",
                   "INSERT INTO ",
                   " (" COLUMNS ", definition) VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, "
                   "$10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (name) DO NOTHING",
                   18,
                   {OID_TEXT, RECORD_TYPES, OID_BYTEA}},
    [ST_UPDATE] = {"update",
                   "UPDATE ",
                   " SET " RECORD_SET ", definition = $19, version = version + 1 "
                   "WHERE name = $1 AND version = $2",
                   19,
                   {OID_TEXT, OID_INT8, RECORD_TYPES, OID_BYTEA}},
    [ST_UPDATE_KEEP_DEFINITION] = {"update but the definition in",
                                   "UPDATE ",
                                   " SET " RECORD_SET ", version = version + 1 "
                                   "WHERE name = $1 AND version = $2",
                                   18,
                                   {OID_TEXT, OID_INT8, RECORD_TYPES}},
    [ST_DELETE] = {"delete from",
                   "DELETE FROM ",
                   " WHERE name = $1 AND version = $2",
                   2,
                   {OID_TEXT, OID_INT8}},
    [ST_SCAN] = {"scan of",
                 "SELECT " COLUMNS " FROM ",
                 " WHERE " SCAN_RANGE " ORDER BY name LIMIT $2",
                 4,
                 {OID_TEXT, OID_INT8, OID_TEXT, OID_INT8}},
    [ST_SCAN_DEFINITIONS] = {"scan with definitions of",
                             "SELECT " COLUMNS ", definition FROM ",
                             " WHERE " SCAN_RANGE " ORDER BY name LIMIT $2",
                             4,
                             {OID_TEXT, OID_INT8, OID_TEXT, OID_INT8}},
};

/* Statement names on the server: the table and the index, so that the names above can be
 * prose. */
static void stmt_key(af_store_table t, stmt_id id, char out[16]) {
  snprintf(out, 16, "af_%d_%d", (int)t, (int)id);
}

/* ---- parameters (binary) ---- */

typedef struct params {
  int n;
  bool too_big; /* a value over INT_MAX bytes: the statement is not sent */
  const char *values[MAX_PARAMS];
  int lengths[MAX_PARAMS];
  int formats[MAX_PARAMS];
  char ints[MAX_PARAMS][8]; /* the big-endian integers values point at */
} params;

/* NULL data: SQL NULL. */
static void put_bytes(params *p, const void *data, size_t len) {
  p->too_big |= len > INT_MAX;
  p->values[p->n] = data;
  p->lengths[p->n] = len > INT_MAX ? 0 : (int)len;
  p->formats[p->n] = 1;
  p->n++;
}

static void put_int(params *p, int64_t v, int size) {
  char *out = p->ints[p->n];
  for (int i = 0; i < size; i++)
    out[i] = (char)((uint64_t)v >> (8 * (size - 1 - i)));
  put_bytes(p, out, (size_t)size);
}

static void put_string(params *p, const char *s) { put_bytes(p, s, s != NULL ? strlen(s) : 0); }

/* Empty blobs are stored as NULL. */
static void put_blob(params *p, af_bytes b) { put_bytes(p, b.len > 0 ? b.data : NULL, b.len); }

static void put_record(params *p, const af_flow_record *r, bool definition) {
  put_int(p, r->trigger, 2);
  put_int(p, r->status, 2);
  put_int(p, r->create_status, 2);
  put_int(p, r->created_ms, 8);
  put_int(p, r->updated_ms, 8);
  put_string(p, r->description);
  put_string(p, r->source_connector);
  put_string(p, r->destination_connector);
  put_string(p, r->create_token);
  put_blob(p, r->tags);
  put_blob(p, r->runs);
  put_string(p, r->created_by);
  put_string(p, r->updated_by);
  put_string(p, r->status_message);
  put_string(p, r->source_profile);
  put_string(p, r->destination_profile);
  if (definition)
    put_blob(p, r->definition);
}

/* ---- results (binary) ---- */

static bool is_int(const PGresult *r, int row, int col, int size) {
  return !PQgetisnull(r, row, col) && PQgetlength(r, row, col) == size;
}

static int64_t get_int(const PGresult *r, int row, int col) {
  const uint8_t *v = (const uint8_t *)PQgetvalue(r, row, col);
  int n = PQgetlength(r, row, col);
  uint64_t x = n > 0 && (v[0] & 0x80) ? UINT64_MAX : 0; /* sign-extends a smallint */
  for (int i = 0; i < n; i++)
    x = x << 8 | v[i];
  return (int64_t)x;
}

static const char *get_string(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static af_bytes get_blob(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) == 0)
    return (af_bytes){NULL, 0};
  return (af_bytes){(const uint8_t *)PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)};
}

/* The record in row of r, pointing into r; false when the row is not what the schema makes. */
static bool record_of(const PGresult *r, int row, af_flow_record *out) {
  static const int ints[][2] = {{COL_VERSION, 8},       {COL_TRIGGER, 2}, {COL_STATUS, 2},
                                {COL_CREATE_STATUS, 2}, {COL_CREATED, 8}, {COL_UPDATED, 8}};
  if (PQnfields(r) <= COL_DESTINATION_PROFILE || PQgetisnull(r, row, COL_NAME))
    return false;
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (!is_int(r, row, ints[i][0], ints[i][1]))
      return false;
  *out = (af_flow_record){
      .name = PQgetvalue(r, row, COL_NAME),
      .name_len = (size_t)PQgetlength(r, row, COL_NAME),
      .version = (uint64_t)get_int(r, row, COL_VERSION),
      .trigger = (uint8_t)get_int(r, row, COL_TRIGGER),
      .status = (uint8_t)get_int(r, row, COL_STATUS),
      .create_status = (uint8_t)get_int(r, row, COL_CREATE_STATUS),
      .created_ms = get_int(r, row, COL_CREATED),
      .updated_ms = get_int(r, row, COL_UPDATED),
      .description = get_string(r, row, COL_DESCRIPTION),
      .source_connector = get_string(r, row, COL_SOURCE),
      .destination_connector = get_string(r, row, COL_DESTINATION),
      .create_token = get_string(r, row, COL_TOKEN),
      .tags = get_blob(r, row, COL_TAGS),
      .runs = get_blob(r, row, COL_RUNS),
      .created_by = get_string(r, row, COL_CREATED_BY),
      .updated_by = get_string(r, row, COL_UPDATED_BY),
      .status_message = get_string(r, row, COL_STATUS_MESSAGE),
      .source_profile = get_string(r, row, COL_SOURCE_PROFILE),
      .destination_profile = get_string(r, row, COL_DESTINATION_PROFILE),
      .definition =
          PQnfields(r) > COL_DEFINITION ? get_blob(r, row, COL_DEFINITION) : (af_bytes){NULL, 0},
  };
  return true;
}

static long affected(const PGresult *r) { return strtol(PQcmdTuples((PGresult *)r), NULL, 10); }

/* ---- the store ---- */

typedef struct pg_store pg_store;

typedef struct worker {
  pg_store *s;
  pthread_t thread;
  PGconn *conn;         /* NULL until connected, and once it timed out or broke */
  uint64_t gen;         /* s->gen when conn was made */
  int64_t own_deadline; /* the op's deadline had the store's timeout alone set it */
  af_db_key key;        /* the op's key (a scan's: where it resumes) as the database keeps it */
} worker;

struct pg_store {
  af_store base;
  char *uri; /* holds the password, if any: never logged */
  double timeout_s;
  af_store_queue queue;
  atomic_bool closing;
  /* Moves on when a connection times out or breaks: those made before are likely dead too, so
   * their workers replace them before their next statement rather than fail an op on them. */
  _Atomic uint64_t gen;
  int nworkers, nstarted;
  worker *workers;
  pthread_t probe;
  bool probe_started;
  pthread_mutex_t probe_lock;
  pthread_cond_t probe_wake; /* the store turned unhealthy, or is closing */
  bool stop;                 /* under probe_lock */
  int stop_fd;               /* an eventfd, readable once closing: cuts the probe's wait short */
};

static int64_t timeout_ms(const pg_store *s) { return (int64_t)(s->timeout_s * 1000); }

/* Reaching the database at start-up takes at most --store-timeout, but setting up the schema
 * once it answers is not a request: a timeout short enough for requests must not fail start-up
 * because another replica holds the schema lock through a migration, or the machine is slow.
 * Setting up gets the longer of the two. */
#define OPEN_TIMEOUT_MS 30000

static int64_t open_timeout_ms(const pg_store *s) {
  int64_t t = timeout_ms(s);
  return t > OPEN_TIMEOUT_MS ? t : OPEN_TIMEOUT_MS;
}

/* The first line of a libpq message (the rest is detail and hints). */
static void first_line(char *out, size_t n, const char *msg) {
  msg = msg != NULL ? msg : "";
  snprintf(out, n, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* ---- waiting on a connection ---- */

/* Waits until fd is ready for events: 1; 0 once the deadline passes or stop_fd (-1: none) is
 * readable. */
static int wait_fd(int fd, short events, int64_t deadline, int stop_fd) {
  if (fd < 0)
    return 1; /* no socket: let libpq say what is wrong */
  struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = stop_fd, .events = POLLIN}};
  for (;;) {
    int64_t left = deadline - af_store_now_ms();
    if (left <= 0)
      return 0;
    int r = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
    if (r < 0 && errno != EINTR)
      return 0;
    if (p[1].revents != 0)
      return 0;
    if (r > 0)
      return 1;
  }
}

typedef enum q_rc {
  Q_OK,
  Q_SQL,  /* the statement failed; the session is fine */
  Q_DOWN, /* lost: the connection is of no further use */
  Q_LATE  /* no answer by the deadline: what the connection was doing is unknown, so it goes */
} q_rc;

static q_rc down(PGconn *c, char *why, size_t whysz) {
  first_line(why, whysz, PQerrorMessage(c));
  if (why[0] == '\0')
    snprintf(why, whysz, "connection lost");
  return Q_DOWN;
}

static q_rc timed_out(char *why, size_t whysz) {
  snprintf(why, whysz, "no answer in time");
  return Q_LATE;
}

static bool result_ok(const PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Whether a failed statement says the session is gone or was cut short rather than that the
 * statement was wrong. */
static bool session_lost(PGconn *c, const PGresult *r) {
  if (PQstatus(c) == CONNECTION_BAD)
    return true;
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  /* 08: connection exception; 57: operator intervention (shutdown, pg_terminate_backend,
   * statement_timeout). No state: libpq's own failure. */
  return state == NULL || strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0;
}

static q_rc flush(PGconn *c, int64_t deadline, int stop_fd, char *why, size_t whysz) {
  int f;
  while ((f = PQflush(c)) == 1) {
    if (!wait_fd(PQsocket(c), POLLIN | POLLOUT, deadline, stop_fd))
      return timed_out(why, whysz);
    if (!PQconsumeInput(c))
      return down(c, why, whysz);
  }
  return f == 0 ? Q_OK : down(c, why, whysz);
}

/* Reads every result of what was just sent, and keeps the first failure, else the first. */
static q_rc collect(PGconn *c, int64_t deadline, int stop_fd, PGresult **out, char *why,
                    size_t whysz) {
  *out = NULL;
  for (;;) {
    while (PQisBusy(c)) {
      if (!wait_fd(PQsocket(c), POLLIN, deadline, stop_fd))
        return timed_out(why, whysz);
      if (!PQconsumeInput(c))
        return down(c, why, whysz);
    }
    PGresult *r = PQgetResult(c);
    if (r == NULL)
      return *out != NULL ? Q_OK : down(c, why, whysz);
    if (*out == NULL || (result_ok(*out) && !result_ok(r))) {
      PQclear(*out);
      *out = r;
    } else {
      PQclear(r);
    }
  }
}

/* Waits for the answer to what was just sent (sent: what PQsend* returned). Q_OK with the
 * result in *res (cleared when res is NULL); otherwise why says what went wrong. */
static q_rc await(PGconn *c, int sent, int64_t deadline, int stop_fd, PGresult **res, char *why,
                  size_t whysz) {
  if (res != NULL)
    *res = NULL;
  if (!sent)
    return down(c, why, whysz);
  PGresult *r = NULL;
  q_rc rc = flush(c, deadline, stop_fd, why, whysz);
  if (rc == Q_OK)
    rc = collect(c, deadline, stop_fd, &r, why, whysz);
  if (rc == Q_OK && !result_ok(r)) {
    first_line(why, whysz, PQresultErrorMessage(r));
    rc = session_lost(c, r) ? Q_DOWN : Q_SQL;
  }
  if (rc == Q_OK && res != NULL)
    *res = r;
  else
    PQclear(r);
  return rc;
}

/* ---- connecting ---- */

static void on_notice(void *arg, const char *message) {
  const pg_store *s = arg;
  char line[WHY_MAX];
  first_line(line, sizeof line, message);
  af_log_printf(s->base.log, AF_LOG_DEBUG, "store %s: %s", s->base.display, line);
}

/* A connection to s's database made by the deadline, or NULL with why. */
static PGconn *connect_db(pg_store *s, int64_t deadline, int stop_fd, char *why, size_t whysz) {
  /* Listed before dbname (the URI), so that the URI's own values win. */
  static const char *const keys[] = {"fallback_application_name", "client_encoding", "dbname",
                                     NULL};
  const char *const values[] = {"appflowd", "UTF8", s->uri, NULL};
  PGconn *c = PQconnectStartParams(keys, values, 1);
  if (c == NULL) {
    snprintf(why, whysz, "out of memory");
    return NULL;
  }
  PQsetNoticeProcessor(c, on_notice, s);
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    /* The socket can change between calls (a URI may name several hosts). */
    short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!wait_fd(PQsocket(c), events, deadline, stop_fd)) {
      timed_out(why, whysz);
      PQfinish(c);
      return NULL;
    }
    st = PQconnectPoll(c);
  }
  if (st != PGRES_POLLING_OK || PQsetnonblocking(c, 1) != 0) {
    down(c, why, whysz);
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Prepares table t's statement id on c. */
static q_rc prepare(PGconn *c, af_store_table t, stmt_id id, int64_t deadline, char *why,
                    size_t whysz) {
  char key[16], text[2048];
  stmt_key(t, id, key);
  if (!af__store_sql_for(text, sizeof text, stmts[id].head, t, stmts[id].tail)) {
    snprintf(why, whysz, "statement too long");
    return Q_SQL;
  }
  int sent = PQsendPrepare(c, key, text, stmts[id].nparams, stmts[id].types);
  return await(c, sent, deadline, -1, NULL, why, whysz);
}

/* Session settings and prepared statements, once the schema exists. */
static q_rc setup(const pg_store *s, PGconn *c, int64_t deadline, char *why, size_t whysz) {
  int64_t ms = timeout_ms(s) > 0 ? timeout_ms(s) : 1;
  char sql[160];
  snprintf(sql, sizeof sql, "SET statement_timeout = %lld%s",
           (long long)(ms < INT_MAX ? ms : INT_MAX),
           PQserverVersion(c) >= 140000
               ? "; SET client_connection_check_interval = " XSTR(CHECK_INTERVAL_MS)
               : "");
  q_rc rc = await(c, PQsendQuery(c, sql), deadline, -1, NULL, why, whysz);
  for (int t = 0; rc == Q_OK && t < AF_STORE_TABLES; t++)
    for (int i = 0; rc == Q_OK && i < ST_COUNT; i++)
      rc = prepare(c, (af_store_table)t, (stmt_id)i, deadline, why, whysz);
  return rc;
}

/* ---- health ---- */

static void mark_unhealthy(pg_store *s) {
  af__store_set_healthy(&s->base, false);
  pthread_mutex_lock(&s->probe_lock);
  pthread_cond_signal(&s->probe_wake);
  pthread_mutex_unlock(&s->probe_lock);
}

static bool probe_once(pg_store *s) {
  char why[WHY_MAX];
  int64_t deadline = af_store_now_ms() + timeout_ms(s);
  PGconn *c = connect_db(s, deadline, s->stop_fd, why, sizeof why);
  q_rc rc = Q_DOWN;
  if (c != NULL)
    rc = await(c, PQsendQuery(c, "SELECT 1"), deadline, s->stop_fd, NULL, why, sizeof why);
  PQfinish(c);
  if (rc != Q_OK)
    af_log_printf(s->base.log, AF_LOG_DEBUG, "store %s: still unavailable: %s", s->base.display,
                  why);
  return rc == Q_OK;
}

/* Waits on probe_wake (probe_lock held) for at most ms. */
static void probe_sleep(pg_store *s, int64_t ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000;
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&s->probe_wake, &s->probe_lock, &t);
}

static void *probe_main(void *arg) {
  pg_store *s = arg;
  pthread_mutex_lock(&s->probe_lock);
  while (!s->stop) {
    if (af_store_healthy(&s->base)) {
      pthread_cond_wait(&s->probe_wake, &s->probe_lock);
      continue;
    }
    pthread_mutex_unlock(&s->probe_lock);
    bool up = probe_once(s);
    if (up)
      af__store_set_healthy(&s->base, true);
    pthread_mutex_lock(&s->probe_lock);
    if (!up && !s->stop)
      probe_sleep(s, PROBE_MS);
  }
  pthread_mutex_unlock(&s->probe_lock);
  return NULL;
}

/* ---- running one statement for an op ---- */

static void drop(worker *w) {
  if (w->conn != NULL)
    PQfinish(w->conn);
  w->conn = NULL;
}

/* w's connection timed out or broke: what it was doing is unknown, so it goes. */
static void lose(worker *w, const char *what, const char *why) {
  pg_store *s = w->s;
  af_log_printf(s->base.log, AF_LOG_WARN, "store %s: %s: %s", s->base.display, what, why);
  drop(w);
  /* Only a connection as new as the last outage reports one: older ones failing later are
   * that same outage, and must not undo the probe's finding that the database is back. */
  uint64_t gen = w->gen;
  if (atomic_compare_exchange_strong(&s->gen, &gen, gen + 1))
    mark_unhealthy(s);
}

/* Whether w has a connection fit to use, making one by the deadline if need be; if not, *rc
 * says how the op ends. */
static bool connected(worker *w, int64_t deadline, af_store_rc *rc) {
  pg_store *s = w->s;
  uint64_t gen = atomic_load(&s->gen);
  if (w->conn != NULL && w->gen == gen)
    return true;
  drop(w);
  char why[WHY_MAX];
  PGconn *c = connect_db(s, deadline, -1, why, sizeof why);
  q_rc q = c != NULL ? setup(s, c, deadline, why, sizeof why) : Q_DOWN;
  if (q == Q_OK) {
    w->conn = c;
    w->gen = gen;
    return true;
  }
  if (c != NULL)
    PQfinish(c);
  af_log_printf(s->base.log, AF_LOG_WARN, "store %s: cannot connect: %s", s->base.display, why);
  /* A database that answers but rejects the statements is not down, but broken; one slower
   * than the caller's own deadline (shorter than the store's), connecting or setting up, is
   * neither: only the store's own timeout says that it is down. */
  *rc = q == Q_SQL ? AF_STORE_FAILED : AF_STORE_UNAVAILABLE;
  bool hurried = deadline < w->own_deadline && af_store_now_ms() >= deadline;
  if ((q == Q_DOWN || q == Q_LATE) && !hurried)
    mark_unhealthy(s);
  return false;
}

/* Runs statement id on w's connection: AF_STORE_OK with *res (the caller clears it),
 * UNAVAILABLE when the connection timed out or broke (it is gone then), or FAILED (logged). */
/* The answer to what was just sent on w's connection (sent: what PQsend* returned), as an op's
 * result; what names the statement for the log. */
static af_store_rc answer(worker *w, int sent, const char *what, int64_t deadline, PGresult **res) {
  pg_store *s = w->s;
  char why[WHY_MAX];
  switch (await(w->conn, sent, deadline, -1, res, why, sizeof why)) {
  case Q_OK:
    return AF_STORE_OK;
  case Q_SQL:
    af_log_printf(s->base.log, AF_LOG_WARN, "store %s: %s failed: %s", s->base.display, what, why);
    return AF_STORE_FAILED;
  case Q_LATE:
    if (deadline < w->own_deadline) { /* the caller's deadline, shorter than the store's: the */
      drop(w);                        /* database may just be slower than this caller allows */
      return AF_STORE_UNAVAILABLE;
    }
    lose(w, what, why);
    return AF_STORE_UNAVAILABLE;
  case Q_DOWN:
    lose(w, what, why);
    return AF_STORE_UNAVAILABLE;
  }
  return AF_STORE_FAILED;
}

/* Runs statement id of op's table, by op's deadline. */
static af_store_rc exec(worker *w, const af_store_op *op, stmt_id id, const params *p,
                        PGresult **res) {
  *res = NULL;
  if (p->too_big)
    return AF_STORE_FAILED;
  char key[16], what[96];
  stmt_key(op->table, id, key);
  snprintf(what, sizeof what, "%s %s", stmts[id].what, af__store_table_name(op->table));
  int sent = PQsendQueryPrepared(w->conn, key, p->n, p->values, p->lengths, p->formats, 1);
  return answer(w, sent, what, op->deadline_ms, res);
}

/* A statement without parameters or results (BEGIN, COMMIT, ROLLBACK). */
static af_store_rc simple(worker *w, const char *sql, int64_t deadline) {
  PGresult *res = NULL;
  af_store_rc rc = answer(w, PQsendQuery(w->conn, sql), sql, deadline, &res);
  PQclear(res);
  return rc;
}

/* The row op names (locked: FOR UPDATE), with its definition only when the rule reads it. */
static af_store_rc select_row(worker *w, const af_store_op *op, const char *name, size_t len,
                              bool locked, PGresult **res) {
  static const stmt_id ids[2][2] = {{ST_SELECT_BARE, ST_SELECT},
                                    {ST_SELECT_LOCKED_BARE, ST_SELECT_LOCKED}};
  params p = {0};
  put_bytes(&p, name, len);
  return exec(w, op, ids[locked][op->with_definition], &p, res);
}

/* A write: *raced when it changed no row (another writer came first). */
static af_store_rc apply(worker *w, const af_store_op *op, stmt_id id, const params *p,
                         bool *raced) {
  PGresult *res;
  af_store_rc rc = exec(w, op, id, p, &res);
  if (rc == AF_STORE_OK) {
    *raced = affected(res) == 0;
    PQclear(res);
  }
  return rc;
}

static af_store_rc bad_row(const worker *w, const af_store_op *op) {
  af_log_printf(w->s->base.log, AF_LOG_WARN, "store %s: a row of %s is malformed",
                w->s->base.display, af__store_table_name(op->table));
  return AF_STORE_FAILED;
}

static af_store_rc gave_up(const worker *w, const af_store_op *op, const char *name, size_t len) {
  af_log_printf(w->s->base.log, AF_LOG_WARN,
                "store %s: %s %.*s: gave up after %d tries, other writers changing it first",
                w->s->base.display, af__store_table_name(op->table), (int)(len < 256 ? len : 256),
                name != NULL ? name : "", MAX_TRIES);
  return AF_STORE_FAILED;
}

/* ---- the ops ---- */

/* A row's record as the caller knows it: its name without the scope's prefix. */
static void unscope(const worker *w, af_flow_record *r) {
  r->name += w->key.prefix_len;
  r->name_len -= w->key.prefix_len;
}

/* The key is taken by the row in res: the rule, if any, may keep it or refuse. */
static af_store_rc taken(const worker *w, af_store_op *op, const PGresult *res) {
  if (op->rule == NULL)
    return AF_STORE_EXISTS;
  af_flow_record cur;
  if (!record_of(res, 0, &cur))
    return bad_row(w, op);
  unscope(w, &cur);
  af_flow_record next = cur;
  op->verdict = op->rule(&cur, &next, op->ctx);
  return op->verdict == AF_STORE_KEEP ? AF_STORE_EXISTS : AF_STORE_REFUSED;
}

static af_store_rc do_insert(worker *w, af_store_op *op) {
  const af_flow_record *r = op->record;
  if (r->name_len == 0)
    return AF_STORE_FAILED;
  params p = {0};
  put_bytes(&p, w->key.bytes, w->key.len);
  put_record(&p, r, true);
  for (int i = 0; i < MAX_TRIES; i++) {
    bool raced = false;
    af_store_rc rc = apply(w, op, ST_INSERT, &p, &raced);
    if (rc != AF_STORE_OK || !raced)
      return rc;
    PGresult *res;
    if ((rc = select_row(w, op, w->key.bytes, w->key.len, false, &res)) != AF_STORE_OK)
      return rc;
    bool gone = PQntuples(res) == 0; /* deleted since: insert again */
    if (!gone)
      rc = taken(w, op, res);
    PQclear(res);
    if (!gone)
      return rc;
  }
  return gave_up(w, op, r->name, r->name_len);
}

static af_store_rc write_row(worker *w, const af_store_op *op, const af_flow_record *cur,
                             const af_flow_record *next, bool *raced) {
  /* The definition is most of a row (up to 64 KB) and most writes (StopFlow, tags, runs) leave
   * it where it was. */
  bool keep =
      next->definition.data == cur->definition.data && next->definition.len == cur->definition.len;
  params p = {0};
  put_bytes(&p, w->key.bytes, w->key.len);
  put_int(&p, (int64_t)cur->version, 8);
  put_record(&p, next, !keep);
  return apply(w, op, keep ? ST_UPDATE_KEEP_DEFINITION : ST_UPDATE, &p, raced);
}

static af_store_rc delete_row(worker *w, const af_store_op *op, const af_flow_record *cur,
                              bool *raced) {
  params p = {0};
  put_bytes(&p, w->key.bytes, w->key.len);
  put_int(&p, (int64_t)cur->version, 8);
  return apply(w, op, ST_DELETE, &p, raced);
}

/* Runs the rule on the row in res and does what it says; *raced when another writer changed
 * the row first. Pointers into res stay valid until the write is sent. */
static af_store_rc decide(worker *w, af_store_op *op, const PGresult *res, bool *raced) {
  af_flow_record cur;
  if (!record_of(res, 0, &cur))
    return bad_row(w, op);
  unscope(w, &cur);
  af_flow_record next = cur;
  op->verdict = op->rule(&cur, &next, op->ctx);
  switch (op->verdict) {
  case AF_STORE_KEEP:
    return AF_STORE_OK;
  case AF_STORE_REFUSE:
    return AF_STORE_REFUSED;
  case AF_STORE_WRITE:
    return write_row(w, op, &cur, &next, raced);
  case AF_STORE_DELETE:
    return delete_row(w, op, &cur, raced);
  }
  return AF_STORE_FAILED;
}

/* A modify that lost a race, again with the row locked (a transaction: BEGIN, SELECT ... FOR
 * UPDATE, the write, COMMIT), so it cannot lose again: a flow many replicas change at once
 * costs one wait on its lock each, not rounds of wasted reads. */
static af_store_rc modify_locked(worker *w, af_store_op *op) {
  af_store_rc rc = simple(w, "BEGIN", op->deadline_ms);
  if (rc != AF_STORE_OK)
    return rc;
  PGresult *res;
  bool raced = false;
  rc = select_row(w, op, w->key.bytes, w->key.len, true, &res);
  if (rc == AF_STORE_OK) {
    rc = PQntuples(res) == 0 ? AF_STORE_NOT_FOUND : decide(w, op, res, &raced);
    PQclear(res);
  }
  if (w->conn == NULL) /* lost: the server rolls the transaction back */
    return rc;
  bool keep = rc == AF_STORE_OK && !raced;
  af_store_rc end = simple(w, keep ? "COMMIT" : "ROLLBACK", op->deadline_ms);
  if (raced) { /* under the lock, nobody else writes the row */
    af_log_printf(w->s->base.log, AF_LOG_WARN, "store %s: %s %.*s changed under its lock",
                  w->s->base.display, af__store_table_name(op->table),
                  (int)(op->key_len < 256 ? op->key_len : 256), op->key);
    return AF_STORE_FAILED;
  }
  return keep ? end : rc;
}

/* Optimistic first: read, run the rule, write if the version is still the one read. */
static af_store_rc do_modify(worker *w, af_store_op *op) {
  PGresult *res;
  af_store_rc rc = select_row(w, op, w->key.bytes, w->key.len, false, &res);
  if (rc != AF_STORE_OK)
    return rc;
  bool raced = false;
  rc = PQntuples(res) == 0 ? AF_STORE_NOT_FOUND : decide(w, op, res, &raced);
  PQclear(res);
  return raced ? modify_locked(w, op) : rc;
}

static af_store_rc do_scan(worker *w, af_store_op *op) {
  af_db_key hi;
  if (!af__db_scan_bounds(op, &w->key, &hi))
    return AF_STORE_FAILED;
  params p = {0};
  put_bytes(&p, w->key.bytes, w->key.len);
  if (op->limit > (uint64_t)INT64_MAX)
    put_bytes(&p, NULL, 0); /* LIMIT NULL: no limit */
  else
    put_int(&p, (int64_t)op->limit, 8);
  put_bytes(&p, hi.bytes, hi.len);
  put_int(&p, op->ran_only, 8);
  PGresult *res;
  af_store_rc rc = exec(w, op, op->with_definition ? ST_SCAN_DEFINITIONS : ST_SCAN, &p, &res);
  if (rc != AF_STORE_OK)
    return rc;
  for (int i = 0; i < PQntuples(res); i++) {
    af_flow_record rec;
    if (!record_of(res, i, &rec)) {
      rc = bad_row(w, op);
      break;
    }
    unscope(w, &rec); /* every row between the bounds has the scope's prefix */
    if (!op->visit(&rec, op->ctx))
      break;
  }
  PQclear(res);
  return rc;
}

static af_store_rc serve(worker *w, af_store_op *op) {
  af_store_rc rc = AF_STORE_UNAVAILABLE;
  w->own_deadline = op->own_deadline_ms;
  /* Closing: what is still queued ends now rather than hold up the shutdown. */
  if (atomic_load(&w->s->closing) || af_store_now_ms() >= op->deadline_ms ||
      !connected(w, op->deadline_ms, &rc))
    return rc;
  if (op->kind != KIND_SCAN &&
      !af__db_key(op, op->kind == KIND_INSERT ? op->record->name : op->key,
                  op->kind == KIND_INSERT ? op->record->name_len : op->key_len, &w->key))
    return AF_STORE_FAILED;
  switch (op->kind) {
  case KIND_INSERT:
    return do_insert(w, op);
  case KIND_MODIFY:
    return do_modify(w, op);
  case KIND_SCAN:
    return do_scan(w, op);
  }
  return AF_STORE_FAILED;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  af_store_op *op;
  while ((op = af__queue_pop(&w->s->queue, 1)) != NULL)
    op->done(op, serve(w, op));
  drop(w);
  return NULL;
}

static void submit(af_store *st, af_store_op *op, int kind) {
  pg_store *s = (pg_store *)st;
  if (!af__store_table_ok(op) || !af__store_scope_ok(op)) {
    op->done(op, AF_STORE_FAILED);
    return;
  }
  if (!af__store_key_ok(op, kind == KIND_INSERT)) {
    op->done(op, AF_STORE_TOO_LONG);
    return;
  }
  if (!af_store_healthy(st)) { /* fail fast: the probe says when to come back */
    op->done(op, AF_STORE_UNAVAILABLE);
    return;
  }
  op->kind = kind;
  af__store_set_deadline(op, s->timeout_s);
  af__queue_submit(&s->queue, op);
}

static void pg_insert(af_store *st, af_store_op *op) { submit(st, op, KIND_INSERT); }
static void pg_modify(af_store *st, af_store_op *op) { submit(st, op, KIND_MODIFY); }
static void pg_scan(af_store *st, af_store_op *op) { submit(st, op, KIND_SCAN); }

/* ---- opening and closing ---- */

static void stop_threads(pg_store *s) {
  atomic_store(&s->closing, true);
  af__queue_close(&s->queue);
  for (int i = 0; i < s->nstarted; i++)
    pthread_join(s->workers[i].thread, NULL);
  s->nstarted = 0;
  if (!s->probe_started)
    return;
  pthread_mutex_lock(&s->probe_lock);
  s->stop = true;
  pthread_cond_signal(&s->probe_wake);
  pthread_mutex_unlock(&s->probe_lock);
  uint64_t one = 1;
  if (write(s->stop_fd, &one, sizeof one) < 0) {
    /* cannot fail on an eventfd below its maximum; the probe then stops within a timeout */
  }
  pthread_join(s->probe, NULL);
  s->probe_started = false;
}

/* Frees s once no thread runs (also a half-opened one). */
static void destroy(pg_store *s) {
  for (int i = 0; i < s->nworkers; i++)
    drop(&s->workers[i]);
  af__queue_fini(&s->queue);
  pthread_mutex_destroy(&s->probe_lock);
  pthread_cond_destroy(&s->probe_wake);
  close(s->stop_fd);
  af__store_fini(&s->base);
  free(s->workers);
  free(s->uri);
  free(s);
}

static void pg_close(af_store *st) {
  pg_store *s = (pg_store *)st;
  stop_threads(s);
  destroy(s);
}

static const af_store_ops pg_ops = {pg_insert, pg_modify, pg_scan, NULL, pg_close};

static const char *option(const PQconninfoOption *o, const char *key) {
  for (; o->keyword != NULL; o++)
    if (strcmp(o->keyword, key) == 0)
      return o->val != NULL && o->val[0] != '\0' ? o->val : NULL;
  return NULL;
}

/* postgresql://USER@HOST:PORT/DBNAME from what uri says (never its password); false with msg
 * when libpq cannot parse it. */
static bool display_of(const char *uri, char *out, size_t n, char *msg, size_t msgsz) {
  char *err = NULL;
  PQconninfoOption *o = PQconninfoParse(uri, &err);
  if (o == NULL) {
    char line[WHY_MAX];
    first_line(line, sizeof line, err != NULL ? err : "out of memory");
    snprintf(msg, msgsz, "bad PostgreSQL URI: %s", line);
    PQfreemem(err);
    return false;
  }
  const char *user = option(o, "user"), *host = option(o, "host"), *port = option(o, "port");
  const char *db = option(o, "dbname");
  host = host != NULL ? host : option(o, "hostaddr");
  snprintf(out, n, "postgresql://%s%s%s%s%s%s%s", user ? user : "", user ? "@" : "",
           host ? host : "", port ? ":" : "", port ? port : "", db ? "/" : "", db ? db : "");
  PQconninfoFree(o);
  return true;
}

static pg_store *store_new(const char *uri, const char *display, const af_store_config *cfg) {
  pg_store *s = calloc(1, sizeof *s);
  int n = cfg->connections > 0 ? cfg->connections : AF_STORE_DEFAULT_CONNECTIONS;
  if (s == NULL || (s->uri = strdup(uri)) == NULL ||
      (s->workers = calloc((size_t)n, sizeof *s->workers)) == NULL ||
      (s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    if (s != NULL) {
      free(s->workers);
      free(s->uri);
    }
    free(s);
    return NULL;
  }
  af__store_init(&s->base, &pg_ops, display, cfg);
  s->base.durable = true;
  s->base.shared = true;
  s->timeout_s = cfg->timeout_seconds > 0 ? cfg->timeout_seconds : AF_STORE_DEFAULT_TIMEOUT_S;
  af__queue_init(&s->queue, cfg->queue > 0 ? cfg->queue : AF_STORE_DEFAULT_QUEUE);
  atomic_init(&s->closing, false);
  atomic_init(&s->gen, 0);
  s->nworkers = n;
  for (int i = 0; i < n; i++)
    s->workers[i].s = s;
  pthread_mutex_init(&s->probe_lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->probe_wake, &attr);
  pthread_condattr_destroy(&attr);
  return s;
}

/* Parses schema_version's value (ASCII decimal); an absent row reads as 0. */
static bool schema_version(const PGresult *r, long long *out) {
  *out = 0;
  if (PQntuples(r) == 0)
    return true;
  const char *v = PQgetvalue(r, 0, 0);
  int n = PQgetlength(r, 0, 0);
  for (int i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9' || *out > (LLONG_MAX - 9) / 10)
      return false;
    *out = *out * 10 + (v[i] - '0');
  }
  return n > 0;
}

typedef struct opening {
  pg_store *s;
  PGconn *c;
  int64_t deadline;
  char *msg;
  size_t msgsz;
} opening;

/* Runs one statement of the schema transaction; on failure, fills msg and says how open fails. */
static af_store_open_rc schema_sql(opening *o, const char *sql, const params *p, PGresult **res) {
  char why[WHY_MAX];
  int sent = p != NULL
                 ? PQsendQueryParams(o->c, sql, p->n, NULL, p->values, p->lengths, p->formats, 1)
                 : PQsendQueryParams(o->c, sql, 0, NULL, NULL, NULL, NULL, 1);
  switch (await(o->c, sent, o->deadline, -1, res, why, sizeof why)) {
  case Q_OK:
    return AF_STORE_OPENED;
  case Q_SQL:
    snprintf(o->msg, o->msgsz, "cannot set up appflowd's tables in the database at %s: %s",
             o->s->base.display, why);
    return AF_STORE_OPEN_FAILED;
  case Q_DOWN:
  case Q_LATE:
    break;
  }
  snprintf(o->msg, o->msgsz, "lost the database at %s while setting it up: %s", o->s->base.display,
           why);
  return AF_STORE_UNREACHABLE;
}

/* Reads the schema version into *v (0: none yet), refusing one newer than this build's. */
static af_store_open_rc check_version(opening *o, long long *v) {
  PGresult *r;
  af_store_open_rc rc =
      schema_sql(o, "SELECT value FROM appflowd_meta WHERE key = 'schema_version'", NULL, &r);
  if (rc != AF_STORE_OPENED)
    return rc;
  bool ok = schema_version(r, v);
  PQclear(r);
  if (!ok) {
    snprintf(o->msg, o->msgsz, "the database at %s has an unreadable appflowd schema version",
             o->s->base.display);
    return AF_STORE_OPEN_FAILED;
  }
  /* Older versions are migrated by make_schema, inside the same lock. */
  if (*v <= AF_STORE_SCHEMA_VERSION)
    return AF_STORE_OPENED;
  snprintf(o->msg, o->msgsz,
           "the database at %s has appflowd schema version %lld, newer than this appflowd's %d: "
           "run a newer appflowd",
           o->s->base.display, *v, AF_STORE_SCHEMA_VERSION);
  return AF_STORE_TOO_NEW;
}

/* Inserts a token key unless one is there, and reads back the one every replica uses. */
static af_store_open_rc token_key(opening *o) {
  uint8_t key[AF_STORE_TOKEN_KEY_LEN];
  if (af__store_random(key, sizeof key) != 0) {
    snprintf(o->msg, o->msgsz, "cannot read random bytes for the token key");
    return AF_STORE_OPEN_FAILED;
  }
  params p = {0};
  put_bytes(&p, XSTR(AF_STORE_SCHEMA_VERSION), strlen(XSTR(AF_STORE_SCHEMA_VERSION)));
  put_bytes(&p, key, sizeof key);
  af_store_open_rc rc = schema_sql(o,
                                   "INSERT INTO appflowd_meta (key, value) VALUES "
                                   "('schema_version', $1::bytea), ('token_key', $2::bytea) "
                                   "ON CONFLICT (key) DO NOTHING",
                                   &p, NULL);
  PGresult *r;
  if (rc != AF_STORE_OPENED ||
      (rc = schema_sql(o, "SELECT value FROM appflowd_meta WHERE key = 'token_key'", NULL, &r)) !=
          AF_STORE_OPENED)
    return rc;
  bool ok = PQntuples(r) == 1 && PQgetlength(r, 0, 0) == AF_STORE_TOKEN_KEY_LEN;
  if (ok)
    memcpy(o->s->base.token_key, PQgetvalue(r, 0, 0), AF_STORE_TOKEN_KEY_LEN);
  PQclear(r);
  if (!ok) {
    snprintf(o->msg, o->msgsz, "the database at %s has a malformed appflowd token key",
             o->s->base.display);
    return AF_STORE_OPEN_FAILED;
  }
  return AF_STORE_OPENED;
}

/* What a database of version v needs to be one of version v + 1 (in the schema transaction):
 * columns added nullable, so existing rows read them as NULL. The tables versions 3 and 4 added are
 * made as on a new database (make_tables). */
static const char *const migrations[AF_STORE_SCHEMA_VERSION] = {
    [1] = "ALTER TABLE appflowd_flows ADD COLUMN created_by text, ADD COLUMN updated_by text, "
          "ADD COLUMN status_message text",
    [2] = "ALTER TABLE appflowd_flows ADD COLUMN source_profile text, "
          "ADD COLUMN destination_profile text",
};

/* Brings a database of version from (1 or 2) to this build's, then marks it so. */
static af_store_open_rc migrate(opening *o, long long from) {
  af_store_open_rc rc = AF_STORE_OPENED;
  for (long long v = from; rc == AF_STORE_OPENED && v < AF_STORE_SCHEMA_VERSION; v++)
    if (migrations[v] != NULL)
      rc = schema_sql(o, migrations[v], NULL, NULL);
  if (rc == AF_STORE_OPENED)
    rc = schema_sql(o,
                    "UPDATE appflowd_meta SET value = convert_to('" XSTR(
                        AF_STORE_SCHEMA_VERSION) "', 'UTF8') WHERE key = 'schema_version'",
                    NULL, NULL);
  return rc;
}

/* Makes whichever of the record tables are missing (all of them in a new database). */
static af_store_open_rc make_tables(opening *o) {
  af_store_open_rc rc = AF_STORE_OPENED;
  for (int t = 0; rc == AF_STORE_OPENED && t < AF_STORE_TABLES; t++) {
    char sql[1024];
    if (!af__store_sql_for(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS ", (af_store_table)t,
                           TABLE_COLUMNS)) {
      snprintf(o->msg, o->msgsz, "cannot set up appflowd's tables: statement too long");
      return AF_STORE_OPEN_FAILED;
    }
    rc = schema_sql(o, sql, NULL, NULL);
  }
  return rc;
}

/* Makes the schema, checks it, or migrates it from an older version, in one transaction under
 * an advisory lock, so that replicas starting together take turns (and only the first
 * migrates). A failure leaves nothing behind: closing the connection rolls the transaction
 * back. */
static af_store_open_rc make_schema(opening *o) {
  static const char *const start[] = {
      "BEGIN",
      "SELECT pg_advisory_xact_lock(" AF_STORE_PG_SCHEMA_LOCK ")",
      "CREATE TABLE IF NOT EXISTS appflowd_meta (key text PRIMARY KEY, value bytea NOT NULL)",
  };
  af_store_open_rc rc = AF_STORE_OPENED;
  long long version = 0;
  for (size_t i = 0; rc == AF_STORE_OPENED && i < sizeof start / sizeof start[0]; i++)
    rc = schema_sql(o, start[i], NULL, NULL);
  if (rc == AF_STORE_OPENED)
    rc = check_version(o, &version);
  if (rc == AF_STORE_OPENED)
    rc = make_tables(o);
  bool migrate_it = version >= 1 && version < AF_STORE_SCHEMA_VERSION;
  if (rc == AF_STORE_OPENED && migrate_it)
    rc = migrate(o, version);
  if (rc == AF_STORE_OPENED)
    rc = token_key(o);
  if (rc == AF_STORE_OPENED)
    rc = schema_sql(o, "COMMIT", NULL, NULL);
  if (rc == AF_STORE_OPENED && migrate_it)
    af_log_printf(o->s->base.log, AF_LOG_INFO, "store %s: migrated schema %lld -> %d",
                  o->s->base.display, version, AF_STORE_SCHEMA_VERSION);
  return rc;
}

/* Starts the workers (the first with the connection open made) and the probe; 0, or the error
 * pthread_create returned (it sets no errno). */
static int start_threads(pg_store *s, PGconn *first) {
  s->workers[0].conn = first;
  s->workers[0].gen = 0;
  for (int i = 0; i < s->nworkers; i++) {
    int e = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    if (e != 0)
      return e;
    s->nstarted++;
  }
  int e = pthread_create(&s->probe, NULL, probe_main, s);
  s->probe_started = e == 0;
  return e;
}

/* Connects, makes or checks the schema and starts the threads. */
static af_store_open_rc open_store(pg_store *s, char *msg, size_t msgsz) {
  char why[WHY_MAX];
  opening o = {s, NULL, af_store_now_ms() + timeout_ms(s), msg, msgsz};
  if ((o.c = connect_db(s, o.deadline, -1, why, sizeof why)) == NULL) {
    snprintf(msg, msgsz, "cannot reach the database at %s: %s", s->base.display, why);
    return AF_STORE_UNREACHABLE;
  }
  o.deadline = af_store_now_ms() + open_timeout_ms(s);
  af_store_open_rc rc = make_schema(&o);
  q_rc q = rc == AF_STORE_OPENED ? setup(s, o.c, o.deadline, why, sizeof why) : Q_OK;
  if (q != Q_OK) {
    snprintf(msg, msgsz, "cannot prepare appflowd's statements in the database at %s: %s",
             s->base.display, why);
    rc = q == Q_SQL ? AF_STORE_OPEN_FAILED : AF_STORE_UNREACHABLE;
  }
  if (rc != AF_STORE_OPENED) {
    PQfinish(o.c);
    return rc;
  }
  int e = start_threads(s, o.c); /* o.c is the first worker's now: destroy finishes it */
  if (e != 0) {
    snprintf(msg, msgsz, "cannot start the store's threads: %s", strerror(e));
    return AF_STORE_OPEN_FAILED;
  }
  return AF_STORE_OPENED;
}

af_store *af__store_pg_open(const char *uri, const af_store_config *cfg, af_store_open_rc *why,
                            char *msg, size_t msgsz) {
  af_store_config none = {0};
  cfg = cfg != NULL ? cfg : &none;
  char display[sizeof((af_store *)NULL)->display];
  if (!display_of(uri, display, sizeof display, msg, msgsz)) {
    *why = AF_STORE_BAD_URL;
    return NULL;
  }
  pg_store *s = store_new(uri, display, cfg);
  if (s == NULL) {
    *why = AF_STORE_OPEN_FAILED;
    snprintf(msg, msgsz, "out of memory");
    return NULL;
  }
  *why = open_store(s, msg, msgsz);
  if (*why != AF_STORE_OPENED) {
    stop_threads(s);
    destroy(s);
    return NULL;
  }
  return &s->base;
}
