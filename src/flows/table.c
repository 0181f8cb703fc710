/* Flows hash into AF_TABLE_SHARDS shards by the top bits of a keyed hash; each shard is a
 * chained hash table under its own mutex. Requests for different flows rarely meet on a lock,
 * and a shard grows (doubling its buckets) without stopping the others. */
#include "flows/table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AF_TABLE_SHARDS 64
#define SHARD_BITS 6
#define INITIAL_BUCKETS 16

typedef struct shard {
  pthread_mutex_t lock;
  af_flow **buckets;
  size_t nbuckets; /* a power of two */
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

/* FNV-1a keyed by the table seed, then a 64-bit finaliser (from MurmurHash3) so the top bits,
 * which pick the shard, depend on every byte. */
static uint64_t hash_name(uint64_t seed, const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

static shard *shard_of(af_table *t, uint64_t h) { return &t->shards[h >> (64 - SHARD_BITS)]; }

af_table *af_table_new(uint64_t seed, const af_allocator *alloc) {
  af_allocator mem = alloc ? *alloc : (af_allocator){libc_alloc, libc_free, NULL};
  af_table *t = zalloc(&mem, sizeof *t);
  if (t == NULL)
    return NULL;
  t->seed = seed;
  t->mem = mem;
  for (int i = 0; i < AF_TABLE_SHARDS; i++) {
    shard *s = &t->shards[i];
    s->buckets = zalloc(&t->mem, INITIAL_BUCKETS * sizeof *s->buckets);
    s->nbuckets = INITIAL_BUCKETS;
    pthread_mutex_init(&s->lock, NULL);
    if (s->buckets == NULL) {
      af_table_free(t);
      return NULL;
    }
  }
  return t;
}

void af_table_free(af_table *t) {
  if (t == NULL)
    return;
  for (int i = 0; i < AF_TABLE_SHARDS; i++) {
    shard *s = &t->shards[i];
    for (size_t b = 0; s->buckets != NULL && b < s->nbuckets; b++) {
      af_flow *f = s->buckets[b];
      while (f != NULL) {
        af_flow *next = f->next;
        t->mem.free(t->mem.ctx, f);
        f = next;
      }
    }
    t->mem.free(t->mem.ctx, s->buckets);
    pthread_mutex_destroy(&s->lock);
  }
  af_allocator mem = t->mem;
  mem.free(mem.ctx, t);
}

static af_flow *find(shard *s, uint64_t h, const char *name, size_t len) {
  for (af_flow *f = s->buckets[h & (s->nbuckets - 1)]; f != NULL; f = f->next) {
    if (f->hash == h && f->name_len == len && memcmp(f->name, name, len) == 0)
      return f;
  }
  return NULL;
}

/* Doubles the buckets once the chains average two flows. Failing to grow only makes chains
 * longer, so it is not an error. */
static void maybe_grow(const af_allocator *mem, shard *s) {
  if (s->count < s->nbuckets * 2)
    return;
  size_t n = s->nbuckets * 2;
  af_flow **nb = zalloc(mem, n * sizeof *nb);
  if (nb == NULL)
    return;
  for (size_t b = 0; b < s->nbuckets; b++) {
    af_flow *f = s->buckets[b];
    while (f != NULL) {
      af_flow *next = f->next;
      f->next = nb[f->hash & (n - 1)];
      nb[f->hash & (n - 1)] = f;
      f = next;
    }
  }
  mem->free(mem->ctx, s->buckets);
  s->buckets = nb;
  s->nbuckets = n;
}

/* One allocation holds the flow, its name, its tags and every string they point to. */
static size_t flow_size(const af_flow_spec *spec) {
  size_t n =
      sizeof(af_flow) + spec->name_len + 1 + _Alignof(af_tag) - 1 + spec->ntags * sizeof(af_tag);
  if (spec->description != NULL)
    n += strlen(spec->description) + 1;
  for (size_t i = 0; i < spec->ntags; i++)
    n += strlen(spec->tags[i].key) + strlen(spec->tags[i].value) + 2;
  return n;
}

static char *put_string(char **cursor, const char *s) {
  size_t len = strlen(s) + 1;
  char *dst = *cursor;
  memcpy(dst, s, len);
  *cursor += len;
  return dst;
}

static af_flow *flow_new(const af_allocator *mem, const af_flow_spec *spec, uint64_t h) {
  af_flow *f = mem->alloc(mem->ctx, flow_size(spec));
  if (f == NULL)
    return NULL;
  f->next = NULL;
  f->hash = h;
  f->ntags = (uint32_t)spec->ntags;
  f->name_len = (uint16_t)spec->name_len;
  f->trigger = (uint8_t)spec->trigger;
  f->status = (uint8_t)spec->status;
  memcpy(f->name, spec->name, spec->name_len);
  f->name[spec->name_len] = '\0';
  /* Tags first: af_tag needs pointer alignment, which the bytes after the name lack. */
  char *cursor = f->name + spec->name_len + 1;
  size_t misalign = (uintptr_t)cursor % _Alignof(af_tag);
  af_tag *tags = (af_tag *)(cursor + (misalign ? _Alignof(af_tag) - misalign : 0));
  cursor = (char *)(tags + spec->ntags);
  for (size_t i = 0; i < spec->ntags; i++) {
    tags[i].key = put_string(&cursor, spec->tags[i].key);
    tags[i].value = put_string(&cursor, spec->tags[i].value);
  }
  f->tags = tags;
  f->description = spec->description ? put_string(&cursor, spec->description) : NULL;
  return f;
}

af_err af_table_insert(af_table *t, const af_flow_spec *spec, af_error *err) {
  if (spec->name_len == 0 || spec->name_len > UINT16_MAX)
    return af_error_set(err, AF_ERR_VALIDATION, "flow name length %zu is out of range",
                        spec->name_len);
  uint64_t h = hash_name(t->seed, spec->name, spec->name_len);
  af_flow *f = flow_new(&t->mem, spec, h);
  if (f == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory storing a flow");
  shard *s = shard_of(t, h);
  pthread_mutex_lock(&s->lock);
  if (find(s, h, spec->name, spec->name_len) != NULL) {
    pthread_mutex_unlock(&s->lock);
    t->mem.free(t->mem.ctx, f);
    char esc[AF_ERROR_MESSAGE_MAX / 2];
    return af_error_set(err, AF_ERR_NAME_TAKEN, "A flow named %s already exists",
                        af_escape(esc, sizeof esc, spec->name, spec->name_len));
  }
  maybe_grow(&t->mem, s);
  af_flow **b = &s->buckets[h & (s->nbuckets - 1)];
  f->next = *b;
  *b = f;
  s->count++;
  pthread_mutex_unlock(&s->lock);
  return AF_OK;
}

af_err af_table_update(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err) {
  uint64_t h = hash_name(t->seed, name, len);
  shard *s = shard_of(t, h);
  pthread_mutex_lock(&s->lock);
  af_flow *f = find(s, h, name, len);
  af_err rc = f != NULL ? fn(f, ctx, err) : AF_ERR_RESOURCE_NOT_FOUND;
  pthread_mutex_unlock(&s->lock);
  if (f == NULL) {
    char esc[AF_ERROR_MESSAGE_MAX / 2];
    af_error_set(err, rc, "Flow %s does not exist", af_escape(esc, sizeof esc, name, len));
  }
  return rc;
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
