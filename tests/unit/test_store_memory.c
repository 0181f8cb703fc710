/* src/flows/store_memory.c: what only the memory store does - grow to many flows, keep its
 * order while it grows, fail cleanly when memory runs out, let reads of one shard run together,
 * and run a write's rule again when another write came between its read and its write (the
 * contract every store keeps is checked by test_store.c). */
#include "mutex_audit.h" /* first: it defines pthread_mutex_init, pthread_rwlock_init... */

#include "flows/store.h"

#include "budget_alloc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a new memory store allocates besides itself: the buckets of 64 shards per table. */
#define SHARD_BLOCKS (64 * AF_STORE_TABLES)

static af_store *open_memory(const af_allocator *mem) {
  return af_store_memory_new(&(af_store_config){.alloc = mem});
}

static af_flow_record record(const char *name) {
  return (af_flow_record){.name = name, .name_len = strlen(name), .trigger = 1, .status = 2};
}

static af_store_rc insert_in(af_store *s, af_store_table t, const char *name) {
  af_flow_record r = record(name);
  af_store_op op = {.table = t, .key = name, .key_len = r.name_len, .record = &r};
  return af_store_run(s, af_store_insert, &op);
}

static af_store_rc insert(af_store *s, const char *name) {
  return insert_in(s, AF_TABLE_FLOWS, name);
}

static af_store_verdict keep(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_KEEP;
}

static af_store_rc find_in(af_store *s, af_store_table t, const char *name) {
  af_store_op op = {.table = t, .key = name, .key_len = strlen(name), .rule = keep};
  return af_store_run(s, af_store_modify, &op);
}

static af_store_rc find(af_store *s, const char *name) { return find_in(s, AF_TABLE_FLOWS, name); }

typedef struct names {
  char (*v)[16];
  size_t n, cap;
} names;

static bool collect(const af_flow_record *r, void *ctx) {
  names *c = ctx;
  cr_assert_lt(c->n, c->cap, "scan visited more flows than exist");
  snprintf(c->v[c->n++], sizeof c->v[0], "%.*s", (int)r->name_len, r->name);
  return true;
}

static void scan(af_store *s, const char *after, names *out) {
  out->n = 0;
  af_store_op op = {.key = after,
                    .key_len = after ? strlen(after) : 0,
                    .visit = collect,
                    .ctx = out,
                    .limit = SIZE_MAX};
  cr_assert_eq(af_store_run(s, af_store_scan, &op), AF_STORE_OK);
}

Test(memory, grows_to_many_flows) {
  af_store *s = open_memory(NULL);
  char name[32];
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof name, "flow_%d", i);
    cr_assert_eq(insert(s, name), AF_STORE_OK);
  }
  for (int i = 0; i < 100000; i += 997) {
    snprintf(name, sizeof name, "flow_%d", i);
    cr_expect_eq(find(s, name), AF_STORE_OK, "%s", name);
  }
  af_store_close(s);
}

#define SCAN_FLOWS 3000

/* Resuming after any name visits exactly the flows after it in the first scan's order, even
 * when every shard doubled its buckets in between. */
Test(memory, order_survives_growth) {
  af_store *s = open_memory(NULL);
  char name[16];
  for (int i = 0; i < SCAN_FLOWS; i++) {
    snprintf(name, sizeof name, "f%d", i);
    cr_assert_eq(insert(s, name), AF_STORE_OK);
  }
  names all = {calloc(SCAN_FLOWS, 16), 0, SCAN_FLOWS};
  scan(s, NULL, &all);
  cr_assert_eq(all.n, SCAN_FLOWS);
  for (int i = 0; i < 20000; i++) { /* new flows land between the old ones, wherever */
    snprintf(name, sizeof name, "n%d", i);
    cr_assert_eq(insert(s, name), AF_STORE_OK);
  }
  names rest = {calloc(SCAN_FLOWS + 20000, 16), 0, SCAN_FLOWS + 20000};
  for (size_t k = 0; k < SCAN_FLOWS; k += 487) {
    scan(s, all.v[k], &rest);
    size_t old = 0;
    for (size_t i = 0; i < rest.n; i++) {
      if (rest.v[i][0] != 'f')
        continue;
      cr_assert_str_eq(rest.v[i], all.v[k + 1 + old], "after #%zu", k);
      old++;
    }
    cr_expect_eq(old, SCAN_FLOWS - k - 1);
  }
  free(all.v);
  free(rest.v);
  af_store_close(s);
}

Test(memory, out_of_memory_is_a_failure_that_changes_nothing) {
  struct budget b = {1 + SHARD_BLOCKS + 3}; /* the store, its shards' buckets, then 3 flows */
  af_allocator mem = budget_allocator(&b);
  af_store *s = open_memory(&mem);
  cr_assert_not_null(s);
  cr_expect_eq(insert(s, "one"), AF_STORE_OK);
  cr_expect_eq(insert(s, "two"), AF_STORE_OK);
  cr_expect_eq(insert(s, "three"), AF_STORE_OK);
  cr_expect_eq(insert(s, "four"), AF_STORE_FAILED);
  cr_expect_eq(find(s, "four"), AF_STORE_NOT_FOUND);
  cr_expect_eq(find(s, "two"), AF_STORE_OK, "the rest intact");
  cr_expect_eq(insert_in(s, AF_TABLE_PROFILES, "four"), AF_STORE_FAILED, "in any table");
  cr_expect_eq(find_in(s, AF_TABLE_PROFILES, "four"), AF_STORE_NOT_FOUND);
  b.left = 1;
  cr_expect_eq(insert(s, "four"), AF_STORE_OK, "memory back: the same insert now works");
  cr_expect_eq(find_in(s, AF_TABLE_PROFILES, "four"), AF_STORE_NOT_FOUND, "in its table only");
  b.left = 1;
  cr_expect_eq(insert_in(s, AF_TABLE_PROFILES, "four"), AF_STORE_OK);
  af_store_close(s);
}

static const uint8_t new_tags[] = {1, 2, 3};

static af_store_verdict retag(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)ctx;
  next->tags = (af_bytes){new_tags, sizeof new_tags};
  next->status = 9;
  return AF_STORE_WRITE;
}

static af_store_verdict read_status(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  *(int *)ctx = cur->status + 100 * (int)cur->tags.len;
  return AF_STORE_KEEP;
}

Test(memory, a_write_without_memory_leaves_the_record_as_it_was) {
  struct budget b = {1 + SHARD_BLOCKS + 100};
  af_allocator mem = budget_allocator(&b);
  af_store *s = open_memory(&mem);
  cr_assert_eq(insert(s, "tagged"), AF_STORE_OK);
  b.left = 0;
  af_store_op op = {.key = "tagged", .key_len = 6, .rule = retag};
  cr_expect_eq(af_store_run(s, af_store_modify, &op), AF_STORE_FAILED);
  int seen = 0;
  op = (af_store_op){.key = "tagged", .key_len = 6, .rule = read_status, .ctx = &seen};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(seen, 2, "status and tags unchanged");
  b.left = 1;
  op = (af_store_op){.key = "tagged", .key_len = 6, .rule = retag};
  cr_expect_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  op = (af_store_op){.key = "tagged", .key_len = 6, .rule = read_status, .ctx = &seen};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(seen, 309);
  af_store_close(s);
}

Test(memory, failing_to_grow_only_lengthens_chains) {
  struct budget b = {1 + SHARD_BLOCKS + 1000}; /* enough for flows, none to double buckets */
  af_allocator mem = budget_allocator(&b);
  af_store *s = open_memory(&mem);
  cr_assert_not_null(s);
  char name[32];
  int ok = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "grow_%d", i);
    ok += insert(s, name) == AF_STORE_OK;
  }
  /* Every doubling that failed cost a flow nothing; doublings that happened cost budget, so
   * at most the budget's worth of flows went in, each findable. */
  names all = {calloc(1000, 16), 0, 1000};
  scan(s, NULL, &all);
  cr_expect_eq((size_t)ok, all.n);
  for (size_t i = 0; i < all.n; i++)
    cr_expect_eq(find(s, all.v[i]), AF_STORE_OK);
  free(all.v);
  af_store_close(s);
}

Test(memory, no_memory_at_all) {
  struct budget b = {0};
  af_allocator mem = budget_allocator(&b);
  cr_expect_null(open_memory(&mem));
  b.left = 10; /* the store but not all its shards: undone, nothing leaked */
  cr_expect_null(open_memory(&mem));
  b.left = SHARD_BLOCKS; /* the store and every shard but the last */
  cr_expect_null(open_memory(&mem));
}

/* budget_alloc, auditing the locks in the first block it hands out: the store itself. */
static void *audited_alloc(void *ctx, size_t size) {
  void *p = budget_alloc(ctx, size);
  if (p != NULL)
    mutex_audit_block(p, size);
  return p;
}

static void expect_mutexes_undone(const char *what, int n, int inits) {
  cr_expect_eq(mutex_audit.strays, 0, "%s %d: %d locks destroyed that were never initialised", what,
               n, mutex_audit.strays);
  cr_expect_eq(mutex_audit.nlive, 0, "%s %d: %zu locks initialised and never destroyed", what, n,
               mutex_audit.nlive);
  cr_expect_eq(mutex_audit.inits, inits, "%s %d: %d locks initialised", what, n, mutex_audit.inits);
  cr_expect_eq(mutex_audit.overflow, 0);
}

/* A store that runs out of memory at its k-th allocation, for every k, or whose j-th lock
 * cannot be initialised, for every j, is NULL having destroyed exactly the locks it initialised
 * and freed what it took (LeakSanitizer checks); with all it needs it opens, and closing it
 * destroys every lock it made. */
Test(memory, a_store_that_cannot_be_made_undoes_exactly_what_it_did) {
  const int needed = 1 + SHARD_BLOCKS; /* the store, then one block of buckets per shard */
  for (int k = 0; k <= needed; k++) {
    struct budget b = {k};
    af_allocator mem = {audited_alloc, budget_free, &b};
    mutex_audit_start(0);
    af_store *s = open_memory(&mem);
    cr_expect_eq(s == NULL, k < needed, "%d allocations allowed", k);
    af_store_close(s);
    mutex_audit_stop();
    /* a shard's lock (a read-write lock) is initialised once its buckets are there; then the
     * mutex of the list of other scopes' tables, and the store's watch lock last */
    expect_mutexes_undone("allocations", k, k < needed ? (k > 1 ? k - 1 : 0) : SHARD_BLOCKS + 2);
  }
  for (int j = 1; j <= SHARD_BLOCKS + 1; j++) { /* each shard's, then the scopes' list's */
    struct budget b = {needed};
    af_allocator mem = {audited_alloc, budget_free, &b};
    mutex_audit_start(j);
    af_store *s = open_memory(&mem);
    cr_expect_null(s, "lock %d failed", j);
    af_store_close(s);
    mutex_audit_stop();
    expect_mutexes_undone("failing lock", j, j);
  }
}

/* ---- reads together, writes alone ---- */

#define MEET_WAIT_S 5 /* how long a reader waits for the other to join it under the lock */

/* Two callers that meet inside the store: each says it has arrived, then waits (a little while
 * at most) until the other has too. Only if both can be inside one shard's lock at once do
 * they meet; under a lock that serialised them the first would wait its time out alone. */
typedef struct meeting {
  atomic_int arrived;
  atomic_int met;  /* callers that saw the other arrive */
  atomic_int runs; /* rules run */
} meeting;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void meet(meeting *m) {
  atomic_fetch_add(&m->arrived, 1);
  double until = now_s() + MEET_WAIT_S;
  while (atomic_load(&m->arrived) < 2 && now_s() < until)
    sched_yield();
  if (atomic_load(&m->arrived) >= 2)
    atomic_fetch_add(&m->met, 1);
}

static af_store_verdict meet_and_keep(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next;
  meet(ctx);
  return AF_STORE_KEEP;
}

static bool meet_and_go_on(const af_flow_record *r, void *ctx) {
  (void)r;
  meet(ctx);
  return true;
}

typedef struct reader {
  af_store *s;
  meeting *m;
  bool scan; /* a scan of the one record; else a modify whose rule keeps it */
  af_store_rc rc;
} reader;

static void *read_once(void *arg) {
  reader *r = arg;
  af_store_op op = {.key = r->scan ? NULL : "only",
                    .key_len = r->scan ? 0 : 4,
                    .rule = meet_and_keep,
                    .visit = meet_and_go_on,
                    .ctx = r->m,
                    .limit = 10};
  r->rc = af_store_run(r->s, r->scan ? af_store_scan : af_store_modify, &op);
  return NULL;
}

/* Two reads of one record (so of one shard) are inside its lock together: two scans (ListFlows),
 * two rules that keep the record (DescribeFlow), and one of each. */
Test(memory, reads_of_one_shard_run_together) {
  af_store *s = open_memory(NULL);
  cr_assert_eq(insert(s, "only"), AF_STORE_OK);
  static const bool kinds[][2] = {{true, true}, {false, false}, {true, false}};
  for (size_t k = 0; k < 3; k++) {
    meeting m = {0};
    reader r[2] = {{s, &m, kinds[k][0], AF_STORE_FAILED}, {s, &m, kinds[k][1], AF_STORE_FAILED}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
      cr_assert_eq(pthread_create(&th[i], NULL, read_once, &r[i]), 0);
    for (int i = 0; i < 2; i++) {
      pthread_join(th[i], NULL);
      cr_expect_eq(r[i].rc, AF_STORE_OK);
    }
    cr_expect_eq(atomic_load(&m.met), 2, "reads %zu: %d of 2 met the other inside the lock", k,
                 atomic_load(&m.met));
  }
  af_store_close(s);
}

/* Adds one to created_ms; its first run waits to meet the other writer's. */
static af_store_verdict meet_and_add(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  meeting *m = ctx;
  if (atomic_fetch_add(&m->runs, 1) < 2)
    meet(m);
  next->created_ms = cur->created_ms + 1;
  return AF_STORE_WRITE;
}

typedef struct writer {
  af_store *s;
  meeting *m;
  af_store_rc rc;
} writer;

static void *add_once(void *arg) {
  writer *w = arg;
  af_store_op op = {.key = "counter", .key_len = 7, .rule = meet_and_add, .ctx = w->m};
  w->rc = af_store_run(w->s, af_store_modify, &op);
  return NULL;
}

static af_store_verdict read_created(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  *(int64_t *)ctx = cur->created_ms;
  return AF_STORE_KEEP;
}

/* "counter" was added to twice (its created_ms is 2). */
static void expect_both_additions(af_store *s) {
  int64_t created = -1;
  af_store_op op = {.key = "counter", .key_len = 7, .rule = read_created, .ctx = &created};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(created, 2, "both additions are there");
}

/* Two writes whose rules both read the record before either wrote: the first to write applies
 * what its rule decided; the second finds the shard changed since its rule read it, and runs
 * its rule again on what is there now. Neither write is lost. */
Test(memory, a_write_whose_read_went_stale_runs_its_rule_again) {
  af_store *s = open_memory(NULL);
  cr_assert_eq(insert(s, "counter"), AF_STORE_OK);
  meeting m = {0};
  writer w[2] = {{s, &m, AF_STORE_FAILED}, {s, &m, AF_STORE_FAILED}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, add_once, &w[i]), 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    cr_expect_eq(w[i].rc, AF_STORE_OK);
  }
  cr_expect_eq(atomic_load(&m.met), 2, "both rules read before either wrote");
  cr_expect_eq(atomic_load(&m.runs), 3, "one rule ran again");
  expect_both_additions(s);
  af_store_close(s);
}

/* A delete between a write's read and its write: the write finds nothing, and says so. */
static af_store_verdict meet_and_delete(const af_flow_record *cur, af_flow_record *next,
                                        void *ctx) {
  (void)cur, (void)next;
  meeting *m = ctx;
  if (atomic_fetch_add(&m->runs, 1) < 2)
    meet(m);
  return AF_STORE_DELETE;
}

static void *delete_once(void *arg) {
  writer *w = arg;
  af_store_op op = {.key = "counter", .key_len = 7, .rule = meet_and_delete, .ctx = w->m};
  w->rc = af_store_run(w->s, af_store_modify, &op);
  return NULL;
}

Test(memory, a_write_after_a_delete_it_raced_finds_nothing) {
  af_store *s = open_memory(NULL);
  cr_assert_eq(insert(s, "counter"), AF_STORE_OK);
  meeting m = {0};
  writer w[2] = {{s, &m, AF_STORE_FAILED}, {s, &m, AF_STORE_FAILED}};
  pthread_t th[2];
  cr_assert_eq(pthread_create(&th[0], NULL, delete_once, &w[0]), 0);
  cr_assert_eq(pthread_create(&th[1], NULL, add_once, &w[1]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  cr_expect_eq(atomic_load(&m.met), 2);
  /* Whichever went first: a delete then a write that finds nothing, or a write then a delete
   * that runs its rule again and deletes. */
  bool delete_first = w[1].rc == AF_STORE_NOT_FOUND;
  cr_expect_eq(w[0].rc, AF_STORE_OK);
  cr_expect(delete_first || w[1].rc == AF_STORE_OK, "the write: %d", w[1].rc);
  cr_expect_eq(atomic_load(&m.runs), delete_first ? 2 : 3);
  cr_expect_eq(find(s, "counter"), AF_STORE_NOT_FOUND, "deleted either way");
  af_store_close(s);
}

/* Writes said to write (op.writes, as StartFlow's are): each rule runs once, with the shard to
 * itself. The first rule waits until the second writer has submitted its op, then gives its rule
 * a while to join it in the lock, which it must not. */
typedef struct alone {
  atomic_int runs, inside, overlapped, submitted;
} alone;

#define ALONE_WAIT_S 0.2

static af_store_verdict add_alone(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  alone *a = ctx;
  int first = atomic_fetch_add(&a->runs, 1) == 0;
  if (atomic_fetch_add(&a->inside, 1) > 0)
    atomic_store(&a->overlapped, 1);
  while (first && !atomic_load(&a->submitted))
    sched_yield();
  for (double until = now_s() + ALONE_WAIT_S; first && now_s() < until;)
    sched_yield();
  atomic_fetch_sub(&a->inside, 1);
  next->created_ms = cur->created_ms + 1;
  return AF_STORE_WRITE;
}

typedef struct alone_writer {
  af_store *s;
  alone *a;
  bool second;
  af_store_rc rc;
} alone_writer;

static void *add_alone_once(void *arg) {
  alone_writer *w = arg;
  af_store_op op = {.key = "counter", .key_len = 7, .rule = add_alone, .ctx = w->a, .writes = true};
  if (w->second)
    atomic_store(&w->a->submitted, 1);
  w->rc = af_store_run(w->s, af_store_modify, &op);
  return NULL;
}

Test(memory, a_write_said_to_write_runs_its_rule_once_alone) {
  af_store *s = open_memory(NULL);
  cr_assert_eq(insert(s, "counter"), AF_STORE_OK);
  alone a = {0};
  alone_writer w[2] = {{s, &a, false, AF_STORE_FAILED}, {s, &a, true, AF_STORE_FAILED}};
  pthread_t th[2];
  cr_assert_eq(pthread_create(&th[0], NULL, add_alone_once, &w[0]), 0);
  while (atomic_load(&a.runs) == 0) /* the first is in its rule */
    sched_yield();
  cr_assert_eq(pthread_create(&th[1], NULL, add_alone_once, &w[1]), 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    cr_expect_eq(w[i].rc, AF_STORE_OK);
  }
  cr_expect_eq(atomic_load(&a.overlapped), 0, "the second rule ran beside the first");
  cr_expect_eq(atomic_load(&a.runs), 2, "each rule once");
  expect_both_additions(s);
  af_store_close(s);
}

/* ---- memos ---- */

typedef struct test_memo {
  af_memo base;
  int *freed; /* counts frees */
} test_memo;

static void test_memo_free(af_memo *m) {
  (*((test_memo *)m)->freed)++;
  free(m);
}

static int memos_found;

static int memo_frees;

static bool fill(const af_flow_record *r, void *ctx) {
  if (atomic_load(r->memo) != NULL) {
    memos_found++;
    return true;
  }
  test_memo *m = malloc(sizeof *m);
  cr_assert_not_null(m);
  *m = (test_memo){.base = {.bytes = 100, .free = test_memo_free}, .freed = &memo_frees};
  atomic_init(&m->base.refs, 1);
  atomic_fetch_add(&((af_store *)ctx)->memo_bytes, 100);
  af_memo *empty = NULL;
  cr_assert(atomic_compare_exchange_strong(r->memo, &empty, &m->base));
  return true;
}

/* Scans every flow with fill; the memos it found already there. */
static int fill_all(af_store *s) {
  memos_found = 0;
  af_store_op op = {.visit = fill, .ctx = s, .limit = SIZE_MAX};
  cr_assert_eq(af_store_run(s, af_store_scan, &op), AF_STORE_OK);
  return memos_found;
}

static af_store_verdict drop(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

static af_store_verdict redescribe(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)ctx;
  next->description = "a new description";
  return AF_STORE_WRITE;
}

/* A memo lives as long as the version of the record it was made of: a write (in place, or one
 * that rebuilds the record), a delete and the store's close each free it, and a read keeps it. */
Test(memory, a_memo_goes_with_the_version_it_was_made_of) {
  af_store *s = open_memory(NULL);
  const char *flows[] = {"a", "b", "c", "d"};
  for (size_t i = 0; i < 4; i++)
    cr_assert_eq(insert(s, flows[i]), AF_STORE_OK);
  memo_frees = 0;
  cr_expect_eq(fill_all(s), 0);
  cr_expect_eq(fill_all(s), 4, "kept");
  cr_expect_eq(find(s, "a"), AF_STORE_OK);
  cr_expect_eq(memo_frees, 0, "a read keeps it");
  af_store_op w = {.key = "b", .key_len = 1, .rule = retag}; /* tags and status: in place */
  cr_assert_eq(af_store_run(s, af_store_modify, &w), AF_STORE_OK);
  cr_expect_eq(memo_frees, 1);
  af_store_op d = {.key = "c", .key_len = 1, .rule = drop};
  cr_assert_eq(af_store_run(s, af_store_modify, &d), AF_STORE_OK);
  cr_expect_eq(memo_frees, 2);
  cr_expect_eq(fill_all(s), 2, "a and d kept theirs; b's new version has none yet");
  cr_expect_eq(atomic_load(&s->memo_bytes), 300);
  af_store_op r = {.key = "a", .key_len = 1, .rule = redescribe}; /* rebuilds the node */
  cr_assert_eq(af_store_run(s, af_store_modify, &r), AF_STORE_OK);
  cr_expect_eq(memo_frees, 3);
  cr_expect_eq(atomic_load(&s->memo_bytes), 200);
  af_store_close(s);
  cr_expect_eq(memo_frees, 5, "the close frees the rest");
}

Test(memory, close_accepts_null) { af_store_close(NULL); }

/* ---- a scan that peeks at memos first (af_store_peek) ---- */

typedef struct peeking {
  af_memo *record_for; /* the memo the peek answers AF_PEEK_RECORD for */
  af_memo *stop_at;    /* the memo the peek answers AF_PEEK_STOP for */
  int peeks;
  names visited;
} peeking;

static af_store_peek_rc peek_memo(af_memo *memo, void *ctx) {
  peeking *p = ctx;
  p->peeks++;
  if (memo == p->record_for)
    return AF_PEEK_RECORD;
  return memo == p->stop_at ? AF_PEEK_STOP : AF_PEEK_GO_ON;
}

static bool visit_peeking(const af_flow_record *r, void *ctx) {
  return collect(r, &((peeking *)ctx)->visited);
}

/* Memos of a and c only: fill gives every record it visits one. */
static bool fill_a_and_c(const af_flow_record *r, void *ctx) {
  return r->name[0] == 'a' || r->name[0] == 'c' ? fill(r, ctx) : true;
}

typedef struct slot_seen {
  bool slot;    /* the rule was given a memo slot */
  af_memo *now; /* what it held */
} slot_seen;

static af_store_verdict note_memo(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  slot_seen *seen = ctx;
  seen->slot = cur->memo != NULL;
  seen->now = cur->memo != NULL ? atomic_load(cur->memo) : NULL;
  return AF_STORE_KEEP;
}

/* What a modify's rule on name is given of its memo. */
static slot_seen memo_slot(af_store *s, const char *name) {
  slot_seen seen = {0};
  af_store_op op = {.key = name, .key_len = strlen(name), .rule = note_memo, .ctx = &seen};
  cr_assert_eq(af_store_run(s, af_store_modify, &op), AF_STORE_OK);
  return seen;
}

static void scan_peeking(af_store *s, size_t limit, peeking *p) {
  p->peeks = 0;
  p->visited.n = 0;
  af_store_op op = {.visit = visit_peeking, .peek = peek_memo, .ctx = p, .limit = limit};
  cr_assert_eq(af_store_run(s, af_store_scan, &op), AF_STORE_OK);
}

/* A record with a memo is seen by the peek alone unless it asks for the record; one without is
 * visited; both count toward the limit; a stop ends the scan; the service's own records are
 * never peeked at or visited, and a rule gets no memo slot for them. */
Test(memory, a_scan_peeks_at_memos_before_records) {
  af_store *s = open_memory(NULL);
  const char *flows[] = {"a", "b", "c", "d"};
  for (size_t i = 0; i < 4; i++)
    cr_assert_eq(insert(s, flows[i]), AF_STORE_OK);
  cr_assert_eq(insert(s, AF_STORE_PRIVATE_KEY "own"), AF_STORE_OK);
  af_store_op f = {.visit = fill_a_and_c, .ctx = s, .limit = SIZE_MAX};
  cr_assert_eq(af_store_run(s, af_store_scan, &f), AF_STORE_OK);
  memo_frees = 0;
  af_memo *a = memo_slot(s, "a").now, *c = memo_slot(s, "c").now;
  cr_assert(a != NULL && c != NULL && memo_slot(s, "b").now == NULL && memo_slot(s, "b").slot);
  cr_expect(!memo_slot(s, AF_STORE_PRIVATE_KEY "own").slot, "no memo slot for the service's own");

  char v[8][16];
  peeking p = {.visited = {v, 0, 8}};
  scan_peeking(s, SIZE_MAX, &p);
  cr_expect_eq(p.peeks, 2);
  cr_expect_eq(p.visited.n, 2, "b and d are visited, a and c only peeked at");
  for (size_t i = 0; i < p.visited.n; i++)
    cr_expect(strcmp(v[i], "b") == 0 || strcmp(v[i], "d") == 0, "%s", v[i]);

  p.record_for = c; /* c's peek wants the record: c is visited as well */
  scan_peeking(s, SIZE_MAX, &p);
  cr_expect_eq(p.peeks, 2);
  cr_expect_eq(p.visited.n, 3);

  p.record_for = NULL;
  scan_peeking(s, 3, &p); /* peeks count toward the limit */
  cr_expect_eq(p.peeks + (int)p.visited.n, 3);

  /* A stop at a's memo: nothing after a in the scan's order is peeked at or visited. */
  names order = {v, 0, 8};
  scan(s, NULL, &order);
  cr_assert_eq(order.n, 4);
  size_t at = 0;
  while (strcmp(v[at], "a") != 0)
    at++;
  char want[4][16];
  memcpy(want, v, sizeof want);
  p.stop_at = a;
  scan_peeking(s, SIZE_MAX, &p);
  size_t before_a = 0;
  for (size_t i = 0; i < at; i++)
    before_a += strcmp(want[i], "c") != 0; /* c, when before a, was only peeked at */
  cr_expect_eq(p.visited.n, before_a, "visited before the stop");
  cr_expect_eq(p.peeks, 1 + (int)(at - before_a));
  af_store_close(s);
  cr_expect_eq(memo_frees, 2);
}
