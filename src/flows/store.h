/* The storage seam: where flows (and connector profiles and custom connectors) are kept, behind one
 * ops table (as hiredis builds replies through a table of functions), so the service runs the same
 * rules on every store:
 *
 *   memory:               a sharded hash table in this process (the default, the fastest);
 *   sqlite:PATH           an embedded database file: WAL, group commit, durable once answered;
 *   postgresql://...      a shared database: the source of truth for any number of replicas.
 *
 * Four operations, each on one record of one table (flows, connector profiles, custom
 * connectors): insert if absent, modify through a rule callback (the rule says keep, write or
 * delete), scan in the store's order after a key, and close. A store keeps values, never links:
 * a record is a struct of scalars, strings and opaque blobs (tags and the run log are packed
 * protobuf, the definition a packed CreateFlowRequest), and the store knows nothing of what
 * they mean. It returns codes only; the service writes every message a caller sees, and every
 * AppFlow rule lives in the service's rule callbacks.
 *
 * Operations complete through a callback: the memory store calls it before submit returns,
 * the database stores later, on a thread of their own, so a door never waits on a disk or a
 * network. A store bounds its queue (AF_STORE_BUSY when full), its time (AF_STORE_UNAVAILABLE
 * once op->deadline_ms passes) and reports whether it can serve (af_store_healthy).
 *
 * Ownership: the caller owns each op and everything it points to until op->done runs; record
 * pointers handed to a rule or a visitor are valid during that call only. Thread-safety: every
 * function may be called from any thread once af_store_open has returned, except close. */
#ifndef AF_FLOWS_STORE_H
#define AF_FLOWS_STORE_H

#include "common/compiler.h"
#include "flows/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The schema this build writes; a database marked 1, 2 or 3 is migrated to it on open, one marked
 * newer is refused. */
#define AF_STORE_SCHEMA_VERSION 4
/* PostgreSQL: the transaction-level advisory lock under which a replica makes, checks or
 * migrates the schema, so that replicas starting together take turns ("appflowd" in ASCII). */
#define AF_STORE_PG_SCHEMA_LOCK "7021235404278822756"
/* What a database store takes when its configuration leaves a value 0. */
#define AF_STORE_DEFAULT_CONNECTIONS 8
#define AF_STORE_DEFAULT_QUEUE 1024
#define AF_STORE_DEFAULT_TIMEOUT_S 5.0
/* Keys that start with this byte (DEL, which no AppFlow name can hold) are the service's own
 * records, such as a CreateFlow clientToken's: insert and modify treat them as any other, and
 * a scan never visits them (nor counts them towards its limit), in every table. */
#define AF_STORE_PRIVATE_KEY "\x7f"
/* The longest scope (af_store_op.scope) a store takes; a longer one is AF_STORE_FAILED. */
#define AF_STORE_SCOPE_MAX 64
/* The longest key (a record's name) every store takes, in bytes: each AppFlow name (at most 256
 * bytes), the service's own keys (the longest, a clientToken's record: AF_STORE_PRIVATE_KEY
 * "create-token:" and a token of 256, is 270 bytes), an account and a region put in front of
 * either (up to 64 bytes more), and room to spare. Insert, modify and scan answer
 * AF_STORE_TOO_LONG for a longer key: no store cuts one short. */
#define AF_STORE_KEY_MAX 512
/* Bytes of the key that seals ListFlows tokens; made once per store and kept in it. */
#define AF_STORE_TOKEN_KEY_LEN 32

/* Which table an op works on. Each table is its own namespace of names with its own order;
 * a record means the same in each, as af_flow_record documents per table. */
typedef enum af_store_table {
  AF_TABLE_FLOWS = 0,  /* flows (and the service's private records keyed AF_STORE_PRIVATE_KEY...) */
  AF_TABLE_PROFILES,   /* connector profiles */
  AF_TABLE_CONNECTORS, /* custom connector registrations */
  AF_TABLE_TIMERS,     /* the scheduler's: what is due when, who is serving, the clock */
  AF_STORE_TABLES
} af_store_table;

typedef struct af_bytes {
  const uint8_t *data; /* NULL when len == 0 */
  size_t len;
} af_bytes;

/* What the service made of one version of a record and asks a store to keep with it (a flow's
 * ListFlows entry, its DescribeFlow answer: made once instead of for every call): reference
 * counted. A store that keeps memos takes one reference when the service installs one (the
 * service then adds its bytes, and whatever it adds to the memo later, to the store's
 * memo_bytes) and drops it when the record changes or goes (the store then takes them off), so a
 * memo never outlives the version it was made of in the store; a reader's own references keep it
 * alive past that, even past the store. */
typedef struct af_memo {
  atomic_size_t refs;
  atomic_size_t bytes;             /* what it holds (it may grow while it is kept) */
  void (*free)(struct af_memo *m); /* when the last reference goes */
} af_memo;

static inline void af_memo_retain(af_memo *m) {
  atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}
/* Drops one reference (NULL: none); the last one frees the memo. */
static inline void af_memo_release(af_memo *m) {
  if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
    m->free(m);
}

/* One record as a store keeps it, in any table. Strings are NUL-terminated, NULL for none. The
 * store interprets none of it and keeps every member in every table; what a member holds is the
 * service's choice, per table:
 *   flows       every member as its comment says; source_profile and destination_profile are
 *               the connectorProfileName of the flow's source and of its destination;
 *   profiles    name = connectorProfileName, source_connector = connectorType (AWS spelling),
 *               destination_connector = connectorLabel (custom connectors), definition = the
 *               service's packed profile, create_token, created_by/updated_by,
 *               created_ms/updated_ms;
 *   connectors  name = connectorLabel, description, definition = the service's packed
 *               registration, tags, create_token, created_by/updated_by, created_ms/updated_ms;
 *   timers      the scheduler's rows (flows/scheduler.c): name = a flow's name and created_ms =
 *               when it is next due; or name = "instance:ID", one per running appflowd, with
 *               description = "HOST PID" and updated_ms = its last heartbeat; or name =
 *               "clock:", created_ms = how far the emulator's clock is ahead.
 * Members a table does not use stay 0 or NULL. */
typedef struct af_flow_record {
  const char *name; /* the key */
  size_t name_len;
  uint64_t version; /* set by the store: changes with every write */
  uint8_t trigger;  /* Appflow__V1__TriggerType */
  uint8_t status;   /* Appflow__V1__FlowStatus */
  uint8_t create_status;
  int64_t created_ms, updated_ms; /* epoch milliseconds */
  const char *description;
  const char *source_connector, *destination_connector;
  const char *create_token;   /* CreateFlow's clientToken */
  const char *created_by;     /* the principal ARN that created the flow (createdBy) */
  const char *updated_by;     /* the principal ARN of the last change (lastUpdatedBy) */
  const char *status_message; /* why the flow is in its status (flowStatusMessage) */
  const char *source_profile, *destination_profile; /* connectorProfileName of each end */
  af_bytes definition; /* the packed CreateFlowRequest; empty in a read or a scan whose op did
                          not ask for it (with_definition) */
  af_bytes tags;       /* packed appflowd.store.v1.TagSet */
  af_bytes runs;       /* packed appflowd.store.v1.RunLog */
  /* this version's memo slot, in what a scan visits and in cur of a modify's rule while it
   * reads under a shared lock; NULL otherwise, for a record keyed AF_STORE_PRIVATE_KEY, and when
   * the store keeps none (the databases). A visitor or rule may retain the memo it finds there,
   * or fill the slot while it is empty (compare-and-swap from NULL: the store then owns that
   * reference); it never replaces or clears one. Readers share the slot, so it is read and
   * filled atomically; the store clears it alone. */
  _Atomic(af_memo *) *memo;
} af_flow_record;

/* How an op ended. After UNAVAILABLE or FAILED a write's outcome is unknown when it had been
 * sent: it may have been applied (or be applied once a lock frees). Callers must not assume it
 * was not; the service's answers are safe to retry (a clientToken retry finds the first
 * result, and a repeated state change is a no-op). */
typedef enum af_store_rc {
  AF_STORE_OK = 0,
  AF_STORE_NOT_FOUND,   /* modify: no record has the key */
  AF_STORE_EXISTS,      /* insert: the key is taken (the rule, if any, kept it) */
  AF_STORE_REFUSED,     /* the rule refused; it has said why in its own context */
  AF_STORE_BUSY,        /* the queue is full: try again later */
  AF_STORE_UNAVAILABLE, /* the database is down, or did not answer by the deadline */
  AF_STORE_FAILED,      /* the database failed otherwise (disk full, I/O, out of memory) */
  AF_STORE_TOO_LONG     /* the key is over AF_STORE_KEY_MAX bytes: nothing was read or written */
} af_store_rc;

/* What a rule decides. AF_STORE_WRITE stores *next (the store fills next with cur before the
 * call; the rule changes what it changes, keeping the key); blobs it leaves pointing where cur's
 * did are known unchanged. */
typedef enum af_store_verdict {
  AF_STORE_KEEP,
  AF_STORE_WRITE,
  AF_STORE_DELETE,
  AF_STORE_REFUSE
} af_store_verdict;

/* Decides one record's fate. May run more than once for one op (PostgreSQL and the memory
 * store run it again when another writer got there first); only the last run counts, so it
 * must start from cur each time. May run while other ops' rules and visitors read the same
 * record (the memory store lets readers share a shard), so it changes nothing but next and its
 * own ctx. Must not block or call the store. Memory for next's strings and blobs comes from the
 * caller (its arena); the store copies what it keeps before the op completes. */
typedef af_store_verdict (*af_store_rule)(const af_flow_record *cur, af_flow_record *next,
                                          void *ctx);
/* Sees one record of a scan, in the store's order (a total order of names that the other
 * records do not change: (keyed hash, name) in memory, bytewise names in the databases);
 * returns false to stop. Like a rule, it may run alongside other readers of the same records,
 * and must not block or call the store. */
typedef bool (*af_store_visit)(const af_flow_record *rec, void *ctx);
/* What a scan's peek made of a record's memo. */
typedef enum af_store_peek_rc {
  AF_PEEK_RECORD = 0, /* not enough: visit the whole record */
  AF_PEEK_GO_ON,      /* visited (as visit returning true) */
  AF_PEEK_STOP        /* stop here (as visit returning false) */
} af_store_peek_rc;
/* Sees one record of a scan by its memo alone: a store that keeps memos calls it, when the scan
 * op sets it, for each record that has one, before it reads the rest of the record, and calls
 * visit only when it answers AF_PEEK_RECORD. A page made of what earlier calls kept then reads
 * a record's link and memo slot, not the record. It may retain the memo (af_memo_retain); it
 * runs under the same terms as visit. Records keyed AF_STORE_PRIVATE_KEY never have a memo. */
typedef af_store_peek_rc (*af_store_peek)(af_memo *memo, void *ctx);

typedef struct af_store_op af_store_op;
typedef void (*af_store_done)(af_store_op *op, af_store_rc rc);

struct af_store_op {
  /* Set by the caller. */
  af_store_table table; /* the table every op works on; 0 (zero-initialised): flows */
  const char *key;      /* the record's name; scan: resume after it, NULL to start at the first */
  size_t key_len;
  const af_flow_record *record; /* insert: the new record, its name equal to key */
  af_store_rule rule;           /* modify; insert: runs on a record in the way, and may only
                                   KEEP it or REFUSE (NULL: EXISTS) */
  af_store_visit visit;         /* scan */
  af_store_peek peek;           /* scan, optional: first, for a record with a memo */
  void *ctx;                    /* for rule and visit */
  bool with_definition;         /* modify, insert: the rule reads or replaces cur->definition;
                                   without this a database store may leave cur's empty (it can
                                   be 64 KiB), and a write keeps the stored one. scan: visited
                                   records carry their definition; without this they never do
                                   (ListFlows reads none) */
  bool writes;                  /* modify: the rule nearly always changes the record
                                   (StartFlow records every start): a store that first runs
                                   rules beside other readers runs this one alone at once,
                                   rather than twice when another write came between */
  bool deferred;                /* insert (a seed): the store may answer before the change is
                                  durable; it is once any later op without this flag has been
                                  answered OK (the seeder ends with one). Stores that commit
                                  each op may ignore it. A store's queue takes it past its
                                  bound (--store-queue bounds requests; the seeder bounds how
                                  many of its own are in flight) */
  bool ran_only;                /* scan: visit only records with a run log (flows that ever
                                   ran): the look for runs a crash left in progress passes a
                                   million flows that never ran without reading them */
  size_t limit;                 /* scan: visit at most this many */
  int64_t deadline_ms;          /* af_store_now_ms() after which the answer is no use; 0: the
                                   store's own timeout. A database store replaces it with the
                                   earlier of the two when the op is submitted. */
  /* the scope every op works in: one account and region's namespace, in every table (a key is
   * unique within its scope; a scan visits one scope; records handed to rules and visitors
   * carry their name without it). NULL (scope_len 0): the default scope. At most
   * AF_STORE_SCOPE_MAX bytes, with no '/' (a store that keeps it in the key relies on that). */
  const char *scope;
  size_t scope_len;
  af_store_done done; /* called exactly once */
  /* Set by the store before done. */
  af_store_verdict verdict; /* the rule's last verdict (modify, and insert when its rule ran) */
  /* The store's own. */
  af_store_op *queue_next;
  int kind;
  int64_t queued_ms;
  int64_t own_deadline_ms; /* the deadline the store's timeout alone gives */
  /* The seam's, while the store's ops are timed (af_store_time_ops): the caller's done, which
   * the seam's own runs after recording how long the op took since it was submitted. */
  af_store_done timed_done;
  int64_t submitted_ns;
  struct af_metric *timing;
  size_t timing_series;
};

typedef struct af_store af_store;

typedef struct af_store_ops {
  void (*insert)(af_store *s, af_store_op *op);
  void (*modify)(af_store *s, af_store_op *op);
  void (*scan)(af_store *s, af_store_op *op);
  /* Optional (NULL: insert, one op at a time): the n inserts in ops, in order, as insert would
   * take each; a store with a queue takes them in one hold of its lock. May reorder ops. */
  void (*insert_all)(af_store *s, af_store_op **ops, size_t n);
  /* Ends every op already submitted (SQLite runs what is queued; PostgreSQL lets the ops in
   * progress finish and answers the queued ones UNAVAILABLE), then frees the store. No op may
   * be submitted after. */
  void (*close)(af_store *s);
} af_store_ops;

/* Called when a store's health changes (from a store thread; must not block). */
typedef void (*af_store_health_fn)(void *ctx, bool healthy);

#define AF_STORE_WATCHERS 4

/* What every store has; each implementation embeds it first. */
struct af_store {
  const af_store_ops *ops;
  char display[256];                         /* for the start-up line; never holds a password */
  uint8_t token_key[AF_STORE_TOKEN_KEY_LEN]; /* the store's, shared by every replica */
  bool durable;                              /* kept across restarts */
  bool answers_at_once;                      /* every op completes before its submit returns */
  bool shared; /* other processes (replicas) may write it while this one runs */
  /* made by this open (a file no other process can write), and no scheduler has started on it
   * yet: it holds no run a crash left. The first scheduler to start clears it. */
  atomic_bool fresh;
  atomic_bool healthy;
  _Atomic uint64_t commits; /* transactions a database store committed (group commit shows as
                               fewer commits than writes) */
  atomic_size_t memo_bytes; /* what the memos its records keep hold (af_memo.bytes) */
  const af_log *log;
  struct af_metric *timing; /* NULL: ops are not timed (af_store_time_ops) */
  pthread_mutex_t watch_lock;
  size_t nwatchers;
  struct {
    af_store_health_fn fn;
    void *ctx;
  } watchers[AF_STORE_WATCHERS];
};

typedef enum af_store_sync { AF_STORE_SYNC_NORMAL, AF_STORE_SYNC_FULL } af_store_sync;

/* Where a memory store's memory comes from; tests pass one that fails on demand to show that
 * running out of memory is an error, never a crash or a half-made change. */
typedef struct af_allocator {
  void *(*alloc)(void *ctx, size_t size); /* NULL on failure */
  void (*free)(void *ctx, void *p);       /* p may be NULL */
  void *ctx;
} af_allocator;

typedef struct af_store_config {
  const af_log *log;         /* borrowed, may be NULL */
  af_store_sync sync;        /* sqlite: NORMAL survives a process crash, FULL power loss */
  int connections;           /* postgresql: connections (and threads); 0 = the default */
  size_t queue;              /* ops waiting at most; 0 = 1024 */
  double timeout_seconds;    /* one op's longest wait, queue included; 0 = the default */
  const af_allocator *alloc; /* memory: NULL = malloc */
} af_store_config;

typedef enum af_store_open_rc {
  AF_STORE_OPENED = 0,
  AF_STORE_BAD_URL,     /* not a store URL appflowd knows, or a malformed one */
  AF_STORE_TOO_NEW,     /* the database was written by a newer appflowd */
  AF_STORE_UNREACHABLE, /* the database cannot be opened or reached */
  AF_STORE_OPEN_FAILED  /* anything else (out of memory, a schema that cannot be made) */
} af_store_open_rc;

/* Opens the store a URL names: "memory:", "sqlite:PATH" or a libpq URI ("postgresql://..." or
 * "postgres://..."), creating its schema on first use. On failure returns NULL with why set
 * and a message a person can act on in msg. */
af_store *af_store_open(const char *url, const af_store_config *cfg, af_store_open_rc *why,
                        char *msg, size_t msgsz) AF_MUST_USE;
/* The memory store (also what af_store_open makes of "memory:"). NULL when out of memory. */
af_store *af_store_memory_new(const af_store_config *cfg) AF_MUST_USE;
/* Completes what is in flight and frees the store. NULL is fine. */
void af_store_close(af_store *s);

/* Answers op AF_STORE_UNAVAILABLE and returns true when its deadline has passed already. */
bool af__store_late(af_store_op *op);

/* Times ops from here on (the seam, not each store): puts each op's done behind one that
 * records, into m's histogram appflowd_store_operation_seconds{store,op} (added to m), the time
 * from submit to done; two clock reads per op, atomics, no lock, no allocation. Nothing when m
 * wants no histograms (--metrics-histograms off). Call before any op is submitted from another
 * thread (start-up). false when out of memory. */
struct af_metrics;
bool af_store_time_ops(af_store *s, struct af_metrics *m);
enum { AF_STORE_TIMED_INSERT, AF_STORE_TIMED_MODIFY, AF_STORE_TIMED_SCAN };
void af__store_time(af_store *s, af_store_op *op, size_t series);

/* Submit an op; op->done runs exactly once (maybe before these return). An op whose deadline
 * has passed when it is submitted is answered AF_STORE_UNAVAILABLE at once, unrun, on every
 * store: no write starts that its caller no longer waits for. */
static inline void af_store_insert(af_store *s, af_store_op *op) {
  if (af__store_late(op))
    return;
  if (s->timing != NULL)
    af__store_time(s, op, AF_STORE_TIMED_INSERT);
  s->ops->insert(s, op);
}
/* Submits the n inserts in ops as af_store_insert would each, in order (a store with a queue
 * takes them at once: a seed's batches). ops is the caller's to reuse after; its order is not
 * kept. */
void af_store_insert_all(af_store *s, af_store_op **ops, size_t n);
static inline void af_store_modify(af_store *s, af_store_op *op) {
  if (af__store_late(op))
    return;
  if (s->timing != NULL)
    af__store_time(s, op, AF_STORE_TIMED_MODIFY);
  s->ops->modify(s, op);
}
static inline void af_store_scan(af_store *s, af_store_op *op) {
  if (af__store_late(op))
    return;
  if (s->timing != NULL)
    af__store_time(s, op, AF_STORE_TIMED_SCAN);
  s->ops->scan(s, op);
}

/* Runs one op and waits for it (start-up, tests). kind is af_store_insert, _modify or _scan. */
af_store_rc af_store_run(af_store *s, void (*kind)(af_store *, af_store_op *),
                         af_store_op *op) AF_MUST_USE;

/* Whether the store can serve now (a database store: its database answers). */
static inline bool af_store_healthy(af_store *s) { return atomic_load(&s->healthy); }
/* Adds a health watcher; false when AF_STORE_WATCHERS are registered already. */
bool af_store_watch(af_store *s, af_store_health_fn fn, void *ctx) AF_MUST_USE;
/* Removes a watcher added with the same fn and ctx; once it returns, fn is not running and will
 * not be called again for ctx. */
void af_store_unwatch(af_store *s, af_store_health_fn fn, void *ctx);

/* The clock deadlines use: monotonic milliseconds. */
int64_t af_store_now_ms(void);

/* ---- for store implementations ---- */

/* Fills the common part; display is copied. */
void af__store_init(af_store *s, const af_store_ops *ops, const char *display,
                    const af_store_config *cfg);
void af__store_fini(af_store *s);
/* Sets healthy and tells the watchers if it changed. */
void af__store_set_healthy(af_store *s, bool healthy);
/* Sets op's deadlines for an op submitted now: own_deadline_ms from timeout_seconds (0: the
 * default), and deadline_ms the earlier of that and the caller's. */
void af__store_set_deadline(af_store_op *op, double timeout_seconds);
/* Whether op names a table this build has; a store answers an op that does not FAILED. */
static inline bool af__store_table_ok(const af_store_op *op) {
  return (unsigned)op->table < AF_STORE_TABLES;
}
/* Whether a store takes op's key: at most AF_STORE_KEY_MAX bytes (or NULL: a scan from the
 * first), and an insert's record name too. A store answers an op whose key it does not take
 * AF_STORE_TOO_LONG at once. */
static inline bool af__store_key_ok(const af_store_op *op, bool insert) {
  return (op->key == NULL || op->key_len <= AF_STORE_KEY_MAX) &&
         (!insert || op->record->name_len <= AF_STORE_KEY_MAX);
}
/* Whether op's scope is one a store takes (at most AF_STORE_SCOPE_MAX bytes); a store answers
 * an op whose scope is not FAILED. */
static inline bool af__store_scope_ok(const af_store_op *op) {
  return op->scope_len <= AF_STORE_SCOPE_MAX && (op->scope_len == 0 || op->scope != NULL);
}
/* How a database store keeps scopes: a key of the default scope as it is, one of another scope
 * as "~" scope "/" key. '~' sorts after every byte an AppFlow name (and every name the service
 * stores) may hold, so the default scope's names sort before every other scope's, and a scope's
 * private keys ("~" scope "/" AF_STORE_PRIVATE_KEY ...) after its names. */
#define AF_STORE_DB_KEY_MAX (AF_STORE_SCOPE_MAX + 2 + AF_STORE_KEY_MAX)
typedef struct af_db_key {
  size_t len;                          /* of bytes */
  size_t prefix_len;                   /* bytes before the key proper: 0 in the default scope */
  char bytes[AF_STORE_DB_KEY_MAX + 1]; /* NUL-terminated: rules may read the name as a string */
} af_db_key;
/* key[0..len) of op's scope as the database keeps it; false when it would not fit. */
bool af__db_key(const af_store_op *op, const char *key, size_t len, af_db_key *out);
/* A scan's bounds in op's scope: every name kept in the scope sorts after *lo (op->key's, or
 * the scope's start) and before *hi, and nothing of another scope or private does. False when
 * op->key is too long. */
bool af__db_scan_bounds(const af_store_op *op, af_db_key *lo, af_db_key *hi);
/* The database table that holds a store table's records ("appflowd_flows", ...); static. */
const char *af__store_table_name(af_store_table t);
/* head, table t's name and tail in out (n bytes): a database store's statement for that table,
 * made from literals only. False when it does not fit. */
bool af__store_sql_for(char *out, size_t n, const char *head, af_store_table t,
                       const char *tail) AF_MUST_USE;
/* true when two byte strings are the same bytes (NULL and empty are equal). */
bool af__bytes_equal(af_bytes a, af_bytes b);
/* Fills buf with n bytes from the kernel's random source; 0 or -1. */
int af__store_random(uint8_t *buf, size_t n) AF_MUST_USE;

af_store *af__store_sqlite_open(const char *path, const af_store_config *cfg, af_store_open_rc *why,
                                char *msg, size_t msgsz) AF_MUST_USE;
af_store *af__store_pg_open(const char *uri, const af_store_config *cfg, af_store_open_rc *why,
                            char *msg, size_t msgsz) AF_MUST_USE;

#endif
