/* Flows hash into AF_TABLE_SHARDS shards by the top bits of a keyed hash; each shard is a
 * chained hash table under its own mutex. Requests for different flows rarely meet on a lock,
 * and a shard grows (doubling its buckets) without stopping the others.
 *
 * Buckets are picked by the hash bits just below the shard bits, and chains are kept sorted,
 * so walking shards, buckets and chains in turn visits flows in (hash, name) order; doubling
 * splits bucket b into 2b and 2b+1, which keeps that order. */
#include "flows/table.h"

#include "common/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AF_TABLE_SHARDS 64
#define SHARD_BITS 6
#define INITIAL_BUCKET_BITS 4

typedef struct shard {
  pthread_mutex_t lock;
  af_flow **buckets;
  unsigned bits; /* log2 of the number of buckets */
  size_t count;
  char pad[64]; /* keeps neighbouring locks off one cache line */
} shard;

struct af_table {
  uint64_t seed;
  af_allocator mem;
  shard shards[AF_TABLE_SHARDS];
};

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

static shard *shard_of(af_table *t, uint64_t h) { return &t->shards[h >> (64 - SHARD_BITS)]; }

static size_t bucket_of(const shard *s, uint64_t h) {
  return (size_t)((h << SHARD_BITS) >> (64 - s->bits));
}

/* <0, 0, >0 as flow f sorts before, with or after (h, name). */
static int compare(const af_flow *f, uint64_t h, const char *name, size_t len) {
  if (f->hash != h)
    return f->hash < h ? -1 : 1;
  size_t n = f->name_len < len ? f->name_len : len;
  int c = memcmp(f->name, name, n);
  if (c != 0)
    return c;
  return f->name_len == len ? 0 : (f->name_len < len ? -1 : 1);
}

af_table *af_table_new(uint64_t seed, const af_allocator *alloc) {
  af_allocator mem = alloc ? *alloc : (af_allocator){libc_alloc, libc_free, NULL};
  af_table *t = zalloc(&mem, sizeof *t);
  if (t == NULL)
    return NULL;
  t->seed = seed;
  t->mem = mem;
  for (int i = 0; i < AF_TABLE_SHARDS; i++) {
    shard *s = &t->shards[i];
    s->bits = INITIAL_BUCKET_BITS;
    s->buckets = zalloc(&t->mem, nbuckets(s) * sizeof *s->buckets);
    pthread_mutex_init(&s->lock, NULL);
    if (s->buckets == NULL) {
      af_table_free(t);
      return NULL;
    }
  }
  return t;
}

static void flow_free(af_table *t, af_flow *f) {
  t->mem.free(t->mem.ctx, f->tags);
  t->mem.free(t->mem.ctx, f->runs);
  t->mem.free(t->mem.ctx, f);
}

void af_table_free(af_table *t) {
  if (t == NULL)
    return;
  for (int i = 0; i < AF_TABLE_SHARDS; i++) {
    shard *s = &t->shards[i];
    for (size_t b = 0; s->buckets != NULL && b < nbuckets(s); b++) {
      af_flow *f = s->buckets[b];
      while (f != NULL) {
        af_flow *next = f->next;
        flow_free(t, f);
        f = next;
      }
    }
    t->mem.free(t->mem.ctx, s->buckets);
    pthread_mutex_destroy(&s->lock);
  }
  af_allocator mem = t->mem;
  mem.free(mem.ctx, t);
}

/* The link that points at the first flow not before (h, name): where it is, or would go. */
static af_flow **seek(shard *s, uint64_t h, const char *name, size_t len) {
  af_flow **link = &s->buckets[bucket_of(s, h)];
  while (*link != NULL && compare(*link, h, name, len) < 0)
    link = &(*link)->next;
  return link;
}

static af_flow *find(shard *s, uint64_t h, const char *name, size_t len) {
  af_flow *f = *seek(s, h, name, len);
  return f != NULL && compare(f, h, name, len) == 0 ? f : NULL;
}

/* Doubles the buckets once the chains average two flows. Failing to grow only makes chains
 * longer, so it is not an error. */
static void maybe_grow(const af_allocator *mem, shard *s) {
  if (s->count < nbuckets(s) * 2 || s->bits >= 64 - SHARD_BITS)
    return;
  af_flow **nb = zalloc(mem, 2 * nbuckets(s) * sizeof *nb);
  if (nb == NULL)
    return;
  for (size_t b = 0; b < nbuckets(s); b++) {
    /* The next bit of the hash splits the sorted chain; appending keeps each half sorted. */
    af_flow **tail[2] = {&nb[2 * b], &nb[2 * b + 1]};
    uint64_t bit = (uint64_t)1 << (63 - SHARD_BITS - s->bits);
    af_flow *f = s->buckets[b];
    while (f != NULL) {
      af_flow *next = f->next;
      int half = (f->hash & bit) != 0;
      f->next = NULL;
      *tail[half] = f;
      tail[half] = &f->next;
      f = next;
    }
  }
  mem->free(mem->ctx, s->buckets);
  s->buckets = nb;
  s->bits++;
}

static size_t str_size(const char *s) { return s != NULL ? strlen(s) + 1 : 0; }

static char *put_string(char **cursor, const char *s) {
  if (s == NULL)
    return NULL;
  size_t len = strlen(s) + 1;
  char *dst = *cursor;
  memcpy(dst, s, len);
  *cursor += len;
  return dst;
}

/* One allocation holds the flow, its name and every immutable string; tags go in their own
 * block because TagResource replaces them. */
static af_flow *flow_new(const af_allocator *mem, const af_flow_spec *spec, uint64_t h) {
  size_t size = sizeof(af_flow) + spec->name_len + 1 + spec->definition_len +
                str_size(spec->description) + str_size(spec->source_connector) +
                str_size(spec->destination_connector) + str_size(spec->create_token);
  af_flow *f = zalloc(mem, size);
  if (f == NULL)
    return NULL;
  f->hash = h;
  f->name_len = (uint16_t)spec->name_len;
  f->trigger = (uint8_t)spec->trigger;
  f->status = f->create_status = (uint8_t)spec->status;
  f->created_ms = f->updated_ms = spec->created_ms;
  memcpy(f->name, spec->name, spec->name_len);
  char *cursor = f->name + spec->name_len + 1;
  if (spec->definition_len > 0) {
    memcpy(cursor, spec->definition, spec->definition_len);
    f->definition = (const uint8_t *)cursor;
    f->definition_len = (uint32_t)spec->definition_len;
    cursor += spec->definition_len;
  }
  f->description = put_string(&cursor, spec->description);
  f->source_connector = put_string(&cursor, spec->source_connector);
  f->destination_connector = put_string(&cursor, spec->destination_connector);
  f->create_token = put_string(&cursor, spec->create_token);
  return f;
}

static af_tagset *tagset_new(const af_allocator *mem, const af_tag *tags, size_t n) {
  size_t size = sizeof(af_tagset) + n * sizeof(af_tag);
  for (size_t i = 0; i < n; i++)
    size += strlen(tags[i].key) + strlen(tags[i].value) + 2;
  af_tagset *ts = mem->alloc(mem->ctx, size);
  if (ts == NULL)
    return NULL;
  ts->n = (uint32_t)n;
  char *cursor = (char *)(ts->tags + n);
  for (size_t i = 0; i < n; i++) {
    ts->tags[i].key = put_string(&cursor, tags[i].key);
    ts->tags[i].value = put_string(&cursor, tags[i].value);
  }
  return ts;
}

af_err af_table_set_tags(af_table *t, af_flow *f, const af_tag *tags, size_t n, af_error *err) {
  af_tagset *ts = NULL;
  if (n > 0 && (ts = tagset_new(&t->mem, tags, n)) == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory storing tags");
  t->mem.free(t->mem.ctx, f->tags);
  f->tags = ts;
  return AF_OK;
}

void *af_table_block_alloc(af_table *t, size_t size) { return t->mem.alloc(t->mem.ctx, size); }

void af_table_block_free(af_table *t, void *p) { t->mem.free(t->mem.ctx, p); }

static af_err not_found(af_error *err, const char *name, size_t len) {
  char esc[AF_ERROR_MESSAGE_MAX / 2];
  return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND, "Flow %s does not exist",
                      af_escape(esc, sizeof esc, name, len));
}

/* Builds the flow outside the lock, so the lock is held only to link it in. */
static af_err build(af_table *t, const af_flow_spec *spec, uint64_t h, af_flow **out,
                    af_error *err) {
  *out = flow_new(&t->mem, spec, h);
  if (*out != NULL && spec->ntags > 0 &&
      ((*out)->tags = tagset_new(&t->mem, spec->tags, spec->ntags)) == NULL) {
    flow_free(t, *out);
    *out = NULL;
  }
  return *out != NULL ? AF_OK
                      : af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory storing a flow");
}

af_err af_table_insert_or(af_table *t, const af_flow_spec *spec, af_table_update_fn on_taken,
                          void *ctx, bool *inserted, af_error *err) {
  if (inserted != NULL)
    *inserted = false;
  if (spec->name_len == 0 || spec->name_len > UINT16_MAX || spec->definition_len > UINT32_MAX)
    return af_error_set(err, AF_ERR_VALIDATION, "flow name length %zu is out of range",
                        spec->name_len);
  uint64_t h = af_hash64(t->seed, spec->name, spec->name_len);
  af_flow *f;
  af_err rc = build(t, spec, h, &f, err);
  if (rc != AF_OK)
    return rc;
  shard *s = shard_of(t, h);
  pthread_mutex_lock(&s->lock);
  af_flow *old = find(s, h, spec->name, spec->name_len);
  if (old != NULL) {
    rc = on_taken != NULL ? on_taken(old, ctx, err) : AF_ERR_NAME_TAKEN;
    pthread_mutex_unlock(&s->lock);
    flow_free(t, f);
    char esc[AF_ERROR_MESSAGE_MAX / 2];
    if (on_taken == NULL)
      af_error_set(err, rc, "A flow named %s already exists",
                   af_escape(esc, sizeof esc, spec->name, spec->name_len));
    return rc;
  }
  maybe_grow(&t->mem, s);
  af_flow **link = seek(s, h, spec->name, spec->name_len);
  f->next = *link;
  *link = f;
  s->count++;
  pthread_mutex_unlock(&s->lock);
  if (inserted != NULL)
    *inserted = true;
  return AF_OK;
}

af_err af_table_insert(af_table *t, const af_flow_spec *spec, af_error *err) {
  return af_table_insert_or(t, spec, NULL, NULL, NULL, err);
}

af_err af_table_update(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err) {
  uint64_t h = af_hash64(t->seed, name, len);
  shard *s = shard_of(t, h);
  pthread_mutex_lock(&s->lock);
  af_flow *f = find(s, h, name, len);
  af_err rc = f != NULL ? fn(f, ctx, err) : AF_ERR_RESOURCE_NOT_FOUND;
  pthread_mutex_unlock(&s->lock);
  return f != NULL ? rc : not_found(err, name, len);
}

af_err af_table_delete(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err) {
  uint64_t h = af_hash64(t->seed, name, len);
  shard *s = shard_of(t, h);
  pthread_mutex_lock(&s->lock);
  af_flow **link = seek(s, h, name, len), *f = *link;
  if (f == NULL || compare(f, h, name, len) != 0) {
    pthread_mutex_unlock(&s->lock);
    return not_found(err, name, len);
  }
  af_err rc = fn != NULL ? fn(f, ctx, err) : AF_OK;
  if (rc == AF_OK) {
    *link = f->next;
    s->count--;
  }
  pthread_mutex_unlock(&s->lock);
  if (rc == AF_OK)
    flow_free(t, f);
  return rc;
}

/* Visits the flows of one shard after (h, name) (everything when after is NULL); false when
 * fn asked to stop. */
static bool scan_shard(shard *s, uint64_t h, const char *after, size_t after_len,
                       af_table_scan_fn fn, void *ctx) {
  bool more = true;
  pthread_mutex_lock(&s->lock);
  size_t b = after != NULL ? bucket_of(s, h) : 0;
  for (; more && b < nbuckets(s); b++) {
    for (const af_flow *f = s->buckets[b]; more && f != NULL; f = f->next) {
      if (after == NULL || compare(f, h, after, after_len) > 0)
        more = fn(f, ctx);
    }
  }
  pthread_mutex_unlock(&s->lock);
  return more;
}

void af_table_scan(af_table *t, const char *after, size_t after_len, af_table_scan_fn fn,
                   void *ctx) {
  uint64_t h = after != NULL ? af_hash64(t->seed, after, after_len) : 0;
  size_t first = after != NULL ? (size_t)(h >> (64 - SHARD_BITS)) : 0;
  for (size_t i = first; i < AF_TABLE_SHARDS; i++) {
    /* Only the shard the name hashes to holds flows on both sides of it. */
    bool resume = after != NULL && i == first;
    if (!scan_shard(&t->shards[i], h, resume ? after : NULL, after_len, fn, ctx))
      return;
  }
}

size_t af_table_count(af_table *t) {
  size_t n = 0;
  for (int i = 0; i < AF_TABLE_SHARDS; i++) {
    shard *s = &t->shards[i];
    pthread_mutex_lock(&s->lock);
    n += s->count;
    pthread_mutex_unlock(&s->lock);
  }
  return n;
}
