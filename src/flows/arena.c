#include "flows/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct af_arena_chunk {
  struct af_arena_chunk *next;
  size_t size;
  _Alignas(16) char data[];
};

struct af_arena_defer {
  struct af_arena_defer *next;
  void (*fn)(void *ctx);
  void *ctx;
};

#define CHUNK_MIN 8192

static void *pbc_alloc(void *ud, size_t size) { return af_arena_alloc(ud, size); }

/* Arena memory is released all at once by af_arena_reset. */
static void pbc_free(void *ud, void *p) {
  (void)ud;
  (void)p;
}

void af_arena_init(af_arena *a) {
  a->cur = a->inline_block;
  a->end = a->inline_block + sizeof a->inline_block;
  a->used = 0;
  a->chunks = NULL;
  a->defers = NULL;
  a->allocator.alloc = pbc_alloc;
  a->allocator.free = pbc_free;
  a->allocator.allocator_data = a;
}

static size_t round_up(size_t size) {
  size = (size + 15) & ~(size_t)15;
  return size == 0 ? 16 : size;
}

static struct af_arena_chunk *new_chunk(af_arena *a, size_t size) {
  if (a->used + size > AF_ARENA_LIMIT)
    return NULL;
  struct af_arena_chunk *c = malloc(sizeof *c + size);
  if (c == NULL)
    return NULL;
  c->next = a->chunks;
  c->size = size;
  a->chunks = c;
  a->used += size;
  return c;
}

/* The current chunk (or the inline block) cannot hold size. A new chunk of CHUNK_MIN becomes the
 * current one when it would have more room left after this block than the current one has now;
 * otherwise (a block of CHUNK_MIN or more, or one nearly that big while the current chunk still
 * has more room than a new one would keep) the block gets a chunk of exactly its size and the
 * current chunk stays, so a big block no longer throws away the rest of it. */
static void *grow(af_arena *a, size_t size) {
  size_t want = size > CHUNK_MIN ? size : CHUNK_MIN;
  if (want - size <= (size_t)(a->end - a->cur)) {
    struct af_arena_chunk *c = new_chunk(a, size);
    return c != NULL ? c->data : NULL;
  }
  struct af_arena_chunk *c = new_chunk(a, want);
  if (c == NULL)
    return NULL;
  a->cur = c->data + size;
  a->end = c->data + want;
  return c->data;
}

void *af_arena_alloc(af_arena *a, size_t size) {
  if (size > AF_ARENA_LIMIT)
    return NULL;
  size = round_up(size);
  if ((size_t)(a->end - a->cur) >= size) {
    void *p = a->cur;
    a->cur += size;
    return p;
  }
  return grow(a, size);
}

/* The link to the chunk that block (size bytes, rounded) fills alone: one given a chunk of its
 * own, or a chunk's only block; NULL when there is none. The current chunk is never one: the
 * arena's next blocks go there. */
static struct af_arena_chunk **own_chunk(af_arena *a, const char *block, size_t size) {
  for (struct af_arena_chunk **link = &a->chunks; *link != NULL; link = &(*link)->next) {
    struct af_arena_chunk *c = *link;
    if (c->data == block)
      return c->size == size && a->end != c->data + c->size ? link : NULL;
  }
  return NULL;
}

void *af_arena_grow(af_arena *a, void *p, size_t old_size, size_t new_size) {
  if (p == NULL)
    return af_arena_alloc(a, new_size);
  if (new_size > AF_ARENA_LIMIT)
    return NULL;
  size_t old = round_up(old_size), size = round_up(new_size);
  char *block = p;
  if (size <= old)
    return p;
  /* The latest block of the current chunk: it simply takes more of the chunk. */
  if (block + old == a->cur && (size_t)(a->end - block) >= size) {
    a->cur = block + size;
    return p;
  }
  /* A block with a chunk of its own: realloc moves it at most once, and frees the old copy. */
  struct af_arena_chunk **link = own_chunk(a, block, old);
  if (link != NULL && a->used - (*link)->size + size <= AF_ARENA_LIMIT) {
    struct af_arena_chunk *c = realloc(*link, sizeof *c + size);
    if (c == NULL)
      return NULL;
    a->used = a->used - c->size + size;
    c->size = size;
    *link = c;
    return c->data;
  }
  char *q = af_arena_alloc(a, size);
  if (q != NULL)
    memcpy(q, p, old_size);
  return q;
}

char *af_arena_strndup(af_arena *a, const char *s, size_t len) {
  char *p = af_arena_alloc(a, len + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

char *af_arena_join(af_arena *a, const af_piece *parts, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += parts[i].len;
  char *p = af_arena_alloc(a, len + 1);
  if (p == NULL)
    return NULL;
  char *o = p;
  for (size_t i = 0; i < n; i++) {
    memcpy(o, parts[i].s, parts[i].len);
    o += parts[i].len;
  }
  *o = '\0';
  return p;
}

bool af_arena_defer(af_arena *a, void (*fn)(void *ctx), void *ctx) {
  struct af_arena_defer *d = af_arena_alloc(a, sizeof *d);
  if (d == NULL)
    return false;
  *d = (struct af_arena_defer){a->defers, fn, ctx};
  a->defers = d;
  return true;
}

/* The deferred calls, then the chunks (a call may read its context from them). */
static void free_chunks(af_arena *a) {
  for (struct af_arena_defer *d = a->defers; d != NULL; d = d->next)
    d->fn(d->ctx);
  a->defers = NULL;
  struct af_arena_chunk *c = a->chunks;
  while (c != NULL) {
    struct af_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
}

void af_arena_reset(af_arena *a) {
  free_chunks(a);
  af_arena_init(a);
}

void af_arena_destroy(af_arena *a) {
  if (a == NULL)
    return;
  free_chunks(a);
  a->chunks = NULL;
}

char *af_arena_vprintf(af_arena *a, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  char *s = n >= 0 ? af_arena_alloc(a, (size_t)n + 1) : NULL;
  if (s != NULL)
    vsnprintf(s, (size_t)n + 1, fmt, again);
  va_end(again);
  return s;
}

char *af_arena_printf(af_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = af_arena_vprintf(a, fmt, ap);
  va_end(ap);
  return s;
}
