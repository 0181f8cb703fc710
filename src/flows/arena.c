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
  a->allocator.alloc = pbc_alloc;
  a->allocator.free = pbc_free;
  a->allocator.allocator_data = a;
}

static void *grow(af_arena *a, size_t size) {
  size_t want = size > CHUNK_MIN ? size : CHUNK_MIN;
  if (a->used + want > AF_ARENA_LIMIT)
    return NULL;
  struct af_arena_chunk *c = malloc(sizeof *c + want);
  if (c == NULL)
    return NULL;
  c->next = a->chunks;
  c->size = want;
  a->chunks = c;
  a->used += want;
  a->cur = c->data + size;
  a->end = c->data + want;
  return c->data;
}

void *af_arena_alloc(af_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0)
    size = 16;
  if (size > AF_ARENA_LIMIT)
    return NULL;
  if ((size_t)(a->end - a->cur) >= size) {
    void *p = a->cur;
    a->cur += size;
    return p;
  }
  return grow(a, size);
}

char *af_arena_strndup(af_arena *a, const char *s, size_t len) {
  char *p = af_arena_alloc(a, len + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

static void free_chunks(af_arena *a) {
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
