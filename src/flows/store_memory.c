/* The memory store: records in this process, gone when it exits.
 *
 * Each table has SHARDS shards of its own, so a scan of one table never walks another's records.
 * Records hash into their table's shards by the top bits of a keyed hash; each shard is a chained
 * hash table under its own lock, so requests for different records rarely meet on a lock, and a
 * shard grows (doubling its buckets) without stopping the others. Every op runs on the caller's
 * thread and completes before it returns: nothing here waits on anything but a shard lock.
 *
 * Reads do not wait for each other. A shard's lock is a read-write lock: a scan and its visitor
 * (ListFlows builds its page there), and the first run of a modify's rule (DescribeFlow builds
 * its answer there), hold it shared; only what changes the shard holds it alone. A rule that
 * keeps or refuses is then done; one that writes or deletes takes the lock alone and applies
 * what it decided, unless another write changed the shard in between (the shard counts its
 * writes): then its rule runs again on the record as it is now, as the seam allows (store.h:
 * only a rule's last run counts). A modify said to write (op->writes: StartFlow's) skips the
 * shared run and runs its rule once with the lock alone. Writers are preferred, so a stream of
 * readers never holds a write off; no thread holds two shard locks, so none can wait for itself.
 *
 * Scopes: each scope (an account and region) has tables of its own (a space), made by the first
 * insert into it and kept until the store closes, so a scan of one scope never walks another's
 * records and the default scope's ops cost nothing more than before.
 *
 * Order: buckets are picked by the hash bits just below the shard bits, and chains are kept
 * sorted, so walking shards, buckets and chains in turn visits flows in (hash, name) order - a
 * total order that depends on names alone, so a scan resumes after any name, even one deleted
 * since, and never returns a flow twice or skips one that stayed. Doubling splits bucket b into
 * 2b and 2b+1, which keeps that order.
 *
 * A node holds the record's scalars and, in the same allocation, its name and the strings and
 * definition that only a rebuild changes; tags and the run log, which StartFlow and the tag
 * operations replace, are blocks of their own. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writers first */
#endif
#include "flows/store.h"

#include "common/hash.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A node keeps its name's length in 16 bits (name_len); no store takes a longer key. */
_Static_assert(AF_STORE_KEY_MAX <= UINT16_MAX, "a node's name_len holds every key's length");

#define SHARDS 64
#define SHARD_BITS 6
#define INITIAL_BUCKET_BITS 4

typedef struct blob {
  size_t len;
  uint8_t data[];
} blob;

typedef struct node {
  /* next and memo share 16 bytes of one cache line (nodes are malloc's, 16-byte aligned): a
   * scan whose op peeks at memos reads only these of a record that has one. */
  struct node *next;       /* bucket chain, sorted by (hash, name) */
  _Atomic(af_memo *) memo; /* this version's (af_flow_record.memo): cleared by every change */
  uint64_t hash;
  uint64_t version;
  int64_t created_ms, updated_ms;
  /* Where these lie in the node (0: absent): offsets rather than pointers, 40 bytes a flow
   * less, which a million flows feel. */
  uint32_t description, source_connector, destination_connector, create_token, created_by,
      updated_by, status_message, source_profile, destination_profile, definition;
  uint32_t definition_len;
  uint16_t name_len;
  uint8_t trigger, status, create_status;
  blob *tags, *runs; /* NULL for none */
  char name[];       /* NUL-terminated */
} node;

typedef struct shard {
  pthread_rwlock_t lock; /* shared: reads and rules' first runs; alone: changes */
  node **buckets;
  unsigned bits; /* log2 of the number of buckets */
  /* Nodes; changed under the lock alone, read by a scan without it to pass an empty shard by:
   * a table of a few records (connector profiles, registrations) was 64 locks and 1,024
   * buckets, 30,000 instructions a scan. A change that happened before the scan (the caller
   * was answered) is seen, as with the lock; one made while the scan runs may or may not be,
   * as for a shard the scan has not reached yet. */
  _Atomic size_t count;
  uint64_t writes; /* changes made, under the lock alone: a modify that read under the shared
                      lock finds out whether what its rule read still stands */
  char pad[64];    /* keeps neighbouring locks off one cache line */
} shard;

/* One scope's tables. */
typedef struct space {
  shard shards[AF_STORE_TABLES][SHARDS];
  struct space *next; /* the next scope's, in the store's list */
  size_t scope_len;
  char scope[AF_STORE_SCOPE_MAX];
} space;

typedef struct memory_store {
  af_store base;
  af_hash_key seed;
  af_allocator mem;
  space main;                  /* the default scope's */
  _Atomic(space *) others;     /* every other scope's, newest first; never shrinks */
  pthread_mutex_t spaces_lock; /* held to add to others (readers walk it without) */
} memory_store;

static void *libc_alloc(void *ctx, size_t size) {
  (void)ctx;
  return malloc(size);
}

static void libc_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void *zalloc(const af_allocator *mem, size_t size) {
  void *p = mem->alloc(mem->ctx, size);
  if (p != NULL)
    memset(p, 0, size);
  return p;
}

static size_t nbuckets(const shard *s) { return (size_t)1 << s->bits; }

static shard *shard_of(space *sp, af_store_table t, uint64_t h) {
  return &sp->shards[t][h >> (64 - SHARD_BITS)];
}

static size_t bucket_of(const shard *s, uint64_t h) {
  return (size_t)((h << SHARD_BITS) >> (64 - s->bits));
}

/* <0, 0, >0 as node n sorts before, with or after (h, name). */
static int compare(const node *n, uint64_t h, const char *name, size_t len) {
  if (n->hash != h)
    return n->hash < h ? -1 : 1;
  size_t k = n->name_len < len ? n->name_len : len;
  int c = memcmp(n->name, name, k);
  if (c != 0)
    return c;
  return n->name_len == len ? 0 : (n->name_len < len ? -1 : 1);
}

/* The link that points at the first node not before (h, name): where it is, or would go. */
static node **seek(shard *s, uint64_t h, const char *name, size_t len) {
  node **link = &s->buckets[bucket_of(s, h)];
  while (*link != NULL && compare(*link, h, name, len) < 0)
    link = &(*link)->next;
  return link;
}

/* Doubles the buckets once the chains average two nodes. Failing to grow only makes chains
 * longer, so it is not an error. */
static void maybe_grow(const af_allocator *mem, shard *s) {
  if (atomic_load_explicit(&s->count, memory_order_relaxed) < nbuckets(s) * 2 ||
      s->bits >= 64 - SHARD_BITS)
    return;
  node **nb = zalloc(mem, 2 * nbuckets(s) * sizeof *nb);
  if (nb == NULL)
    return;
  uint64_t bit = (uint64_t)1 << (63 - SHARD_BITS - s->bits);
  for (size_t b = 0; b < nbuckets(s); b++) {
    /* The next bit of the hash splits the sorted chain; appending keeps each half sorted. */
    node **tail[2] = {&nb[2 * b], &nb[2 * b + 1]};
    node *n = s->buckets[b];
    while (n != NULL) {
      node *next = n->next;
      int half = (n->hash & bit) != 0;
      n->next = NULL;
      *tail[half] = n;
      tail[half] = &n->next;
      n = next;
    }
  }
  mem->free(mem->ctx, s->buckets);
  s->buckets = nb;
  s->bits++;
}

/* ---- records in and out of nodes ---- */

static af_bytes blob_bytes(const blob *b) {
  return b != NULL ? (af_bytes){b->data, b->len} : (af_bytes){NULL, 0};
}

/* The string (or bytes) at offset off in n; NULL for 0. */
static const char *at(const node *n, uint32_t off) {
  return off != 0 ? (const char *)n + off : NULL;
}

/* The record a node holds; pointers into the node, valid under its shard lock (and for as long
 * as the shard's write count stays the same: a node is freed only after a counted change). */
static af_flow_record view(const node *n) {
  return (af_flow_record){
      .name = n->name,
      .name_len = n->name_len,
      .version = n->version,
      .trigger = n->trigger,
      .status = n->status,
      .create_status = n->create_status,
      .created_ms = n->created_ms,
      .updated_ms = n->updated_ms,
      .description = at(n, n->description),
      .source_connector = at(n, n->source_connector),
      .destination_connector = at(n, n->destination_connector),
      .create_token = at(n, n->create_token),
      .created_by = at(n, n->created_by),
      .updated_by = at(n, n->updated_by),
      .status_message = at(n, n->status_message),
      .source_profile = at(n, n->source_profile),
      .destination_profile = at(n, n->destination_profile),
      .definition = {(const uint8_t *)at(n, n->definition), n->definition_len},
      .tags = blob_bytes(n->tags),
      .runs = blob_bytes(n->runs),
  };
}

static size_t str_size(const char *s) { return s != NULL ? strlen(s) + 1 : 0; }

/* Copies s to the node's cursor; its offset in n, or 0 for NULL. */
static uint32_t put_string(node *n, char **cursor, const char *s) {
  if (s == NULL)
    return 0;
  size_t len = strlen(s) + 1;
  uint32_t off = (uint32_t)(*cursor - (char *)n);
  memcpy(*cursor, s, len);
  *cursor += len;
  return off;
}

/* A copy of b's bytes; *out NULL for none. False when out of memory. */
static bool blob_new(const af_allocator *mem, af_bytes b, blob **out) {
  *out = NULL;
  if (b.len == 0)
    return true;
  blob *x = mem->alloc(mem->ctx, sizeof *x + b.len);
  if (x == NULL)
    return false;
  x->len = b.len;
  memcpy(x->data, b.data, b.len);
  *out = x;
  return true;
}

static void node_free(const af_allocator *mem, node *n) {
  if (n == NULL)
    return;
  af_memo_release(atomic_load_explicit(&n->memo, memory_order_acquire)); /* see unmemo */
  mem->free(mem->ctx, n->tags);
  mem->free(mem->ctx, n->runs);
  mem->free(mem->ctx, n);
}

/* Drops the memo of a node's version, taking its bytes off the store's count; with the shard's
 * lock alone, or on a node no longer linked, so no reader is retaining it. (node_free drops one
 * uncounted: at the store's close, or of a node never linked.) */
static void unmemo(memory_store *m, node *n) {
  af_memo *memo = atomic_exchange_explicit(&n->memo, NULL, memory_order_acq_rel);
  if (memo != NULL) {
    atomic_fetch_sub_explicit(&m->base.memo_bytes, atomic_load(&memo->bytes), memory_order_relaxed);
    af_memo_release(memo);
  }
}

/* Frees the node a delete unlinked (NULL: none), after the shard's lock. */
static void free_deleted(memory_store *m, node *n) {
  if (n != NULL)
    unmemo(m, n);
  node_free(&m->mem, n);
}

/* A node holding a copy of r (version and hash as given); NULL when out of memory. */
static node *node_new(const af_allocator *mem, const af_flow_record *r, uint64_t h,
                      uint64_t version) {
  size_t size = sizeof(node) + r->name_len + 1 + r->definition.len + str_size(r->description) +
                str_size(r->source_connector) + str_size(r->destination_connector) +
                str_size(r->create_token) + str_size(r->created_by) + str_size(r->updated_by) +
                str_size(r->status_message) + str_size(r->source_profile) +
                str_size(r->destination_profile);
  if (size > UINT32_MAX) /* offsets within the node are 32-bit */
    return NULL;
  node *n = zalloc(mem, size);
  if (n == NULL)
    return NULL;
  if (!blob_new(mem, r->tags, &n->tags) || !blob_new(mem, r->runs, &n->runs)) {
    node_free(mem, n);
    return NULL;
  }
  n->hash = h;
  n->version = version;
  n->name_len = (uint16_t)r->name_len;
  n->trigger = r->trigger;
  n->status = r->status;
  n->create_status = r->create_status;
  n->created_ms = r->created_ms;
  n->updated_ms = r->updated_ms;
  memcpy(n->name, r->name, r->name_len);
  char *cursor = n->name + r->name_len + 1;
  if (r->definition.len > 0) {
    n->definition = (uint32_t)(cursor - (char *)n);
    n->definition_len = (uint32_t)r->definition.len;
    memcpy(cursor, r->definition.data, r->definition.len);
    cursor += r->definition.len;
  }
  n->description = put_string(n, &cursor, r->description);
  n->source_connector = put_string(n, &cursor, r->source_connector);
  n->destination_connector = put_string(n, &cursor, r->destination_connector);
  n->create_token = put_string(n, &cursor, r->create_token);
  n->created_by = put_string(n, &cursor, r->created_by);
  n->updated_by = put_string(n, &cursor, r->updated_by);
  n->status_message = put_string(n, &cursor, r->status_message);
  n->source_profile = put_string(n, &cursor, r->source_profile);
  n->destination_profile = put_string(n, &cursor, r->destination_profile);
  return n;
}

static bool same_string(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether next changes what lives inside the node's own allocation. */
static bool changes_fixed(const af_flow_record *cur, const af_flow_record *next) {
  return !same_string(cur->description, next->description) ||
         !same_string(cur->source_connector, next->source_connector) ||
         !same_string(cur->destination_connector, next->destination_connector) ||
         !same_string(cur->create_token, next->create_token) ||
         !same_string(cur->created_by, next->created_by) ||
         !same_string(cur->updated_by, next->updated_by) ||
         !same_string(cur->status_message, next->status_message) ||
         !same_string(cur->source_profile, next->source_profile) ||
         !same_string(cur->destination_profile, next->destination_profile) ||
         (cur->definition.data != next->definition.data &&
          !af__bytes_equal(cur->definition, next->definition));
}

/* Replaces a blob when the rule gave new bytes; false when out of memory (nothing changed). */
static bool blob_update(const af_allocator *mem, af_bytes cur, af_bytes next, blob **slot,
                        blob **fresh) {
  *fresh = *slot;
  if (next.data == cur.data && next.len == cur.len)
    return true;
  return blob_new(mem, next, fresh);
}

/* Stores next into the node *link points at; false when out of memory (nothing changed). */
static bool write_node(memory_store *m, node **link, const af_flow_record *cur,
                       const af_flow_record *next) {
  node *n = *link;
  if (changes_fixed(cur, next)) { /* rare: build a new node and put it in n's place */
    node *nn = node_new(&m->mem, next, n->hash, n->version + 1);
    if (nn == NULL)
      return false;
    nn->next = n->next;
    *link = nn;
    unmemo(m, n);
    node_free(&m->mem, n);
    return true;
  }
  blob *tags, *runs;
  if (!blob_update(&m->mem, cur->tags, next->tags, &n->tags, &tags))
    return false;
  if (!blob_update(&m->mem, cur->runs, next->runs, &n->runs, &runs)) {
    if (tags != n->tags)
      m->mem.free(m->mem.ctx, tags);
    return false;
  }
  if (tags != n->tags)
    m->mem.free(m->mem.ctx, n->tags);
  if (runs != n->runs)
    m->mem.free(m->mem.ctx, n->runs);
  n->tags = tags;
  n->runs = runs;
  n->status = next->status;
  n->trigger = next->trigger;
  n->create_status = next->create_status;
  n->created_ms = next->created_ms;
  n->updated_ms = next->updated_ms;
  n->version++;
  unmemo(m, n);
  return true;
}

/* ---- the ops ---- */

static space *find_space(memory_store *m, const char *scope, size_t len);
static space *space_for_insert(memory_store *m, const char *scope, size_t len);

/* The one way the memory store fails; the service tells the caller, the log says why. */
static void out_of_memory(memory_store *m) {
  af_log_printf(m->base.log, AF_LOG_WARN, "store memory: out of memory");
}

static void mem_insert(af_store *st, af_store_op *op) {
  memory_store *m = (memory_store *)st;
  const af_flow_record *r = op->record;
  if (!af__store_table_ok(op) || !af__store_scope_ok(op) || r->name_len == 0 ||
      r->definition.len > UINT32_MAX) {
    op->done(op, AF_STORE_FAILED);
    return;
  }
  if (!af__store_key_ok(op, true)) {
    op->done(op, AF_STORE_TOO_LONG);
    return;
  }
  space *sp = space_for_insert(m, op->scope, op->scope_len);
  if (sp == NULL) {
    op->done(op, AF_STORE_FAILED);
    return;
  }
  uint64_t h = af_hash64(&m->seed, r->name, r->name_len);
  node *n = node_new(&m->mem, r, h, 1); /* built outside the lock, which only links it in */
  if (n == NULL) {
    out_of_memory(m);
    op->done(op, AF_STORE_FAILED);
    return;
  }
  shard *s = shard_of(sp, op->table, h);
  pthread_rwlock_wrlock(&s->lock);
  node **link = seek(s, h, r->name, r->name_len);
  if (*link != NULL && compare(*link, h, r->name, r->name_len) == 0) {
    af_store_rc rc = AF_STORE_EXISTS;
    if (op->rule != NULL) {
      af_flow_record cur = view(*link), next = cur;
      op->verdict = op->rule(&cur, &next, op->ctx);
      rc = op->verdict == AF_STORE_KEEP ? AF_STORE_EXISTS : AF_STORE_REFUSED;
    }
    pthread_rwlock_unlock(&s->lock);
    node_free(&m->mem, n);
    op->done(op, rc);
    return;
  }
  maybe_grow(&m->mem, s);
  link = seek(s, h, r->name, r->name_len);
  n->next = *link;
  *link = n;
  atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
  s->writes++;
  pthread_rwlock_unlock(&s->lock);
  op->done(op, AF_STORE_OK);
}

/* Carries out the verdict a rule gave on cur (the node *link points at), making next of it;
 * under the shard lock alone. The node a delete unlinks goes to *freed, to be freed after the
 * lock. */
static af_store_rc carry_out(memory_store *m, shard *s, node **link, af_store_verdict verdict,
                             const af_flow_record *cur, const af_flow_record *next, node **freed) {
  switch (verdict) {
  case AF_STORE_KEEP:
    return AF_STORE_OK;
  case AF_STORE_REFUSE:
    return AF_STORE_REFUSED;
  case AF_STORE_DELETE:
    *freed = *link;
    *link = (*link)->next;
    atomic_fetch_sub_explicit(&s->count, 1, memory_order_release);
    s->writes++;
    return AF_STORE_OK;
  case AF_STORE_WRITE:
    if (write_node(m, link, cur, next)) {
      s->writes++;
      return AF_STORE_OK;
    }
    out_of_memory(m);
    return AF_STORE_FAILED;
  }
  return AF_STORE_FAILED;
}

/* The link to the node keyed (h, key), or NULL when the shard has none. */
static node **find_node(shard *s, uint64_t h, const char *key, size_t len) {
  node **link = seek(s, h, key, len);
  return *link != NULL && compare(*link, h, key, len) == 0 ? link : NULL;
}

/* A modify whose rule runs once, with the shard's lock alone (op->writes). */
static void modify_alone(memory_store *m, shard *s, uint64_t h, af_store_op *op) {
  node *freed = NULL;
  af_store_rc rc = AF_STORE_NOT_FOUND;
  pthread_rwlock_wrlock(&s->lock);
  node **link = find_node(s, h, op->key, op->key_len);
  if (link != NULL) {
    af_flow_record cur = view(*link), next = cur;
    op->verdict = op->rule(&cur, &next, op->ctx);
    rc = carry_out(m, s, link, op->verdict, &cur, &next, &freed);
  }
  pthread_rwlock_unlock(&s->lock);
  free_deleted(m, freed);
  op->done(op, rc);
}

static void mem_modify(af_store *st, af_store_op *op) {
  memory_store *m = (memory_store *)st;
  if (!af__store_table_ok(op) || !af__store_scope_ok(op)) {
    op->done(op, AF_STORE_FAILED);
    return;
  }
  if (!af__store_key_ok(op, false)) {
    op->done(op, AF_STORE_TOO_LONG);
    return;
  }
  space *sp = find_space(m, op->scope, op->scope_len);
  if (sp == NULL) { /* nothing was ever stored in that scope */
    op->done(op, AF_STORE_NOT_FOUND);
    return;
  }
  uint64_t h = af_hash64(&m->seed, op->key, op->key_len);
  shard *s = shard_of(sp, op->table, h);
  if (op->writes) {
    modify_alone(m, s, h, op);
    return;
  }
  /* The rule's first run shares the lock with other readers: most rules only read (DescribeFlow,
   * ListTagsForResource, retries), and they are done here. */
  pthread_rwlock_rdlock(&s->lock);
  node **link = find_node(s, h, op->key, op->key_len);
  af_flow_record cur = {0}, next = {0};
  uint64_t seen = s->writes;
  if (link != NULL) {
    cur = view(*link);
    /* A read-only rule may keep what it made of the record; the service's own records get no
     * memo, so a scan's peek never meets one (store.h, af_store_peek). */
    if (cur.name[0] != AF_STORE_PRIVATE_KEY[0])
      cur.memo = &(*link)->memo;
    next = cur;
    next.memo = NULL;
    op->verdict = op->rule(&cur, &next, op->ctx);
  }
  pthread_rwlock_unlock(&s->lock);
  if (link == NULL) {
    op->done(op, AF_STORE_NOT_FOUND);
    return;
  }
  if (op->verdict == AF_STORE_KEEP || op->verdict == AF_STORE_REFUSE) {
    op->done(op, op->verdict == AF_STORE_KEEP ? AF_STORE_OK : AF_STORE_REFUSED);
    return;
  }
  /* A change: with the lock alone, what the rule decided stands if no write came in between
   * (cur and next still point into the same, unchanged node); otherwise the rule decides again
   * on the record as it is now. */
  node *freed = NULL;
  af_store_rc rc = AF_STORE_NOT_FOUND;
  pthread_rwlock_wrlock(&s->lock);
  link = find_node(s, h, op->key, op->key_len);
  if (link != NULL && s->writes != seen) {
    cur = view(*link);
    next = cur;
    op->verdict = op->rule(&cur, &next, op->ctx);
  }
  if (link != NULL)
    rc = carry_out(m, s, link, op->verdict, &cur, &next, &freed);
  pthread_rwlock_unlock(&s->lock);
  free_deleted(m, freed);
  op->done(op, rc);
}

typedef struct scan_state {
  af_store_op *op;
  size_t seen;
} scan_state;

/* How many buckets ahead of the one being visited a scan fetches the chains' heads; the nodes
 * after them are fetched SCAN_NEXT buckets ahead, once the heads have arrived. */
#define SCAN_AHEAD 8
#define SCAN_NEXT 4

/* Fetches the line of a node's link and memo slot, which every scan reads. */
static void fetch_head(const node *k) { __builtin_prefetch(k); }

/* Fetches the rest of a node's lines up to its name: its fields and the name a resumed scan
 * compares (nodes are malloc's, 16-byte aligned, so those bytes may start anywhere in a line). */
static void fetch_rest(const node *k) {
  const char *p = (const char *)k;
  __builtin_prefetch(p + 64);
  __builtin_prefetch(p + offsetof(node, name) + 15);
}

/* Fetches what visiting k reads: its memo (a peek or visitor retains it) or, when it has none or
 * the scan does not peek, the rest of k; and the head of the node after it. k's head has
 * arrived: it was fetched earlier in the pipeline. */
static const node *fetch_after(const node *k, bool peek) {
  af_memo *memo = atomic_load_explicit(&k->memo, memory_order_relaxed);
  if (memo != NULL)
    __builtin_prefetch(memo, 1);
  if (memo == NULL || !peek)
    fetch_rest(k);
  if (k->next != NULL)
    fetch_head(k->next);
  return k->next;
}

/* Each node a scan visits is its own allocation, so the first read of each was a cache miss
 * the visitor waited for: 85% of the scan's time in a ListFlows page (bench/RESULTS.md). While
 * bucket b is visited, a pipeline fetches ahead so that no read waits on one just asked for:
 * SCAN_AHEAD buckets on, the chain's head; SCAN_NEXT on (the head has arrived), its memo (or
 * the rest of it) and the second node's head; at the bucket before the visit, the rest of the
 * chain (chains average one to two nodes: a shard doubles its buckets at two). */
static void scan_prefetch(const shard *s, size_t b, bool peek) {
  size_t n = nbuckets(s);
  if (b + SCAN_AHEAD < n && s->buckets[b + SCAN_AHEAD] != NULL)
    fetch_head(s->buckets[b + SCAN_AHEAD]);
  if (b + SCAN_NEXT < n && s->buckets[b + SCAN_NEXT] != NULL)
    (void)fetch_after(s->buckets[b + SCAN_NEXT], peek);
  if (b + 1 < n && s->buckets[b + 1] != NULL) {
    for (const node *k = s->buckets[b + 1]->next; k != NULL;)
      k = fetch_after(k, peek);
  }
}

/* Visits n: by its memo when the op peeks and the peek is enough, else as a whole record. False
 * when the scan is over. */
static bool visit_node(node *n, scan_state *st) {
  af_store_op *op = st->op;
  if (op->ran_only && view(n).runs.len == 0) /* never ran */
    return true;
  af_memo *memo = op->peek != NULL ? atomic_load_explicit(&n->memo, memory_order_acquire) : NULL;
  af_store_peek_rc pk = memo != NULL ? op->peek(memo, op->ctx) : AF_PEEK_RECORD;
  if (pk != AF_PEEK_RECORD)
    return pk == AF_PEEK_GO_ON && ++st->seen < op->limit;
  af_flow_record r = view(n);
  r.memo = &n->memo;
  if (r.name[0] == AF_STORE_PRIVATE_KEY[0]) /* the service's own: never scanned */
    return true;
  if (!op->with_definition)
    r.definition = (af_bytes){NULL, 0};
  return op->visit(&r, op->ctx) && ++st->seen < op->limit;
}

/* Visits one shard's nodes after (h, name) (all when after is NULL); false when the scan is
 * over. */
static bool scan_shard(shard *s, uint64_t h, const char *after, size_t after_len, scan_state *st) {
  bool more = true;
  pthread_rwlock_rdlock(&s->lock); /* shared: scans and visitors only read */
  size_t b = after != NULL ? bucket_of(s, h) : 0;
  bool peek = st->op->peek != NULL;
  for (; more && b < nbuckets(s); b++) {
    scan_prefetch(s, b, peek);
    for (node *n = s->buckets[b]; more && n != NULL; n = n->next) {
      if (after == NULL || compare(n, h, after, after_len) > 0)
        more = visit_node(n, st);
    }
  }
  pthread_rwlock_unlock(&s->lock);
  return more;
}

static void mem_scan(af_store *st, af_store_op *op) {
  memory_store *m = (memory_store *)st;
  if (!af__store_table_ok(op) || !af__store_scope_ok(op)) {
    op->done(op, AF_STORE_FAILED);
    return;
  }
  if (!af__store_key_ok(op, false)) {
    op->done(op, AF_STORE_TOO_LONG);
    return;
  }
  space *sp = find_space(m, op->scope, op->scope_len);
  const char *after = op->key;
  uint64_t h = after != NULL ? af_hash64(&m->seed, after, op->key_len) : 0;
  size_t first = after != NULL ? (size_t)(h >> (64 - SHARD_BITS)) : 0;
  scan_state state = {op, 0};
  bool more = op->limit > 0 && sp != NULL;
  for (size_t i = first; more && i < SHARDS; i++) {
    shard *s = &sp->shards[op->table][i];
    /* Only the shard the name hashes to holds nodes on both sides of it. */
    bool resume = after != NULL && i == first;
    if (atomic_load_explicit(&s->count, memory_order_acquire) > 0)
      more = scan_shard(s, h, resume ? after : NULL, op->key_len, &state);
  }
  op->done(op, AF_STORE_OK);
}

/* Frees a shard's nodes and buckets. */
static void shard_free(const af_allocator *mem, shard *s) {
  for (size_t b = 0; b < nbuckets(s); b++) {
    node *n = s->buckets[b];
    while (n != NULL) {
      node *next = n->next;
      node_free(mem, n);
      n = next;
    }
  }
  mem->free(mem->ctx, s->buckets);
  pthread_rwlock_destroy(&s->lock);
}

/* Frees the first n shards of sp, in table order, as space_init made them. */
static void shards_free(const af_allocator *mem, space *sp, size_t n) {
  for (size_t i = 0; i < n; i++)
    shard_free(mem, &sp->shards[i / SHARDS][i % SHARDS]);
}

/* A shard lock that prefers writers: glibc's default lets a steady stream of readers (scans
 * walking the shards) hold a write off indefinitely. */
static int shard_lock_init(pthread_rwlock_t *lock) {
  pthread_rwlockattr_t attr;
  int rc = pthread_rwlockattr_init(&attr);
  if (rc != 0)
    return rc;
  rc = pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  if (rc == 0)
    rc = pthread_rwlock_init(lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  return rc;
}

/* Makes sp's empty tables; false when out of memory (then nothing is left to free). */
static bool space_init(const af_allocator *mem, space *sp) {
  const size_t all = (size_t)AF_STORE_TABLES * SHARDS;
  for (size_t i = 0; i < all; i++) {
    shard *s = &sp->shards[i / SHARDS][i % SHARDS];
    s->bits = INITIAL_BUCKET_BITS;
    if ((s->buckets = zalloc(mem, nbuckets(s) * sizeof *s->buckets)) == NULL ||
        shard_lock_init(&s->lock) != 0) {
      mem->free(mem->ctx, s->buckets); /* NULL, or this shard's: its lock is not made */
      shards_free(mem, sp, i);         /* the shards made whole, and only those */
      return false;
    }
  }
  return true;
}

/* The space of a scope, NULL when nothing was ever stored in it. Lock-free: spaces are only
 * ever added, at the head, published with release order. */
static space *find_space(memory_store *m, const char *scope, size_t len) {
  if (len == 0)
    return &m->main;
  for (space *sp = atomic_load_explicit(&m->others, memory_order_acquire); sp != NULL;
       sp = sp->next)
    if (sp->scope_len == len && memcmp(sp->scope, scope, len) == 0)
      return sp;
  return NULL;
}

/* The space of a scope, made when it has none; NULL when out of memory. */
static space *space_for_insert(memory_store *m, const char *scope, size_t len) {
  space *sp = find_space(m, scope, len);
  if (sp != NULL)
    return sp;
  pthread_mutex_lock(&m->spaces_lock);
  if ((sp = find_space(m, scope, len)) == NULL && (sp = zalloc(&m->mem, sizeof *sp)) != NULL) {
    if (space_init(&m->mem, sp)) {
      memcpy(sp->scope, scope, len);
      sp->scope_len = len;
      sp->next = atomic_load_explicit(&m->others, memory_order_relaxed);
      atomic_store_explicit(&m->others, sp, memory_order_release);
    } else {
      m->mem.free(m->mem.ctx, sp);
      sp = NULL;
    }
  }
  pthread_mutex_unlock(&m->spaces_lock);
  if (sp == NULL)
    out_of_memory(m);
  return sp;
}

static void mem_close(af_store *st) {
  memory_store *m = (memory_store *)st;
  const size_t all = (size_t)AF_STORE_TABLES * SHARDS;
  shards_free(&m->mem, &m->main, all);
  space *sp = atomic_load(&m->others);
  while (sp != NULL) {
    space *next = sp->next;
    shards_free(&m->mem, sp, all);
    m->mem.free(m->mem.ctx, sp);
    sp = next;
  }
  pthread_mutex_destroy(&m->spaces_lock);
  af__store_fini(&m->base);
  af_allocator mem = m->mem;
  mem.free(mem.ctx, m);
}

static const af_store_ops memory_ops = {mem_insert, mem_modify, mem_scan, NULL, mem_close};

af_store *af_store_memory_new(const af_store_config *cfg) {
  af_allocator mem = cfg && cfg->alloc ? *cfg->alloc : (af_allocator){libc_alloc, libc_free, NULL};
  memory_store *m = zalloc(&mem, sizeof *m);
  if (m == NULL)
    return NULL;
  m->mem = mem;
  /* The hash key keeps callers from choosing colliding names. */
  m->seed = af_hash_key_random();
  if (!space_init(&m->mem, &m->main)) {
    mem.free(mem.ctx, m);
    return NULL;
  }
  if (af__store_random(m->base.token_key, sizeof m->base.token_key) != 0) {
    shards_free(&m->mem, &m->main, (size_t)AF_STORE_TABLES * SHARDS);
    mem.free(mem.ctx, m);
    return NULL;
  }
  atomic_init(&m->others, NULL);
  if (pthread_mutex_init(&m->spaces_lock, NULL) != 0) {
    shards_free(&m->mem, &m->main, (size_t)AF_STORE_TABLES * SHARDS);
    mem.free(mem.ctx, m);
    return NULL;
  }
  af__store_init(&m->base, &memory_ops, "memory:", cfg);
  m->base.answers_at_once = true;
  return &m->base;
}
