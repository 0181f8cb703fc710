/* Per-request memory with one lifetime: everything a request decodes or builds is carved from
 * an arena and released at once by af_arena_reset, so a request path has no frees to forget.
 *
 * Ownership: the arena owns every block it hands out. Errors: af_arena_alloc returns NULL when
 * the system is out of memory or a request asks for more than AF_ARENA_LIMIT in all.
 * Thread-safety: none; one arena belongs to one request at a time. */
#ifndef AF_FLOWS_ARENA_H
#define AF_FLOWS_ARENA_H

#include "common/compiler.h"

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define AF_ARENA_INLINE 2048
/* The most one request may hold; bounds what hostile input can make a request allocate. */
#define AF_ARENA_LIMIT (16u << 20)

struct af_arena_chunk;
struct af_arena_defer;

typedef struct af_arena {
  char *cur, *end;
  size_t used;                   /* bytes in heap chunks, checked against AF_ARENA_LIMIT */
  struct af_arena_chunk *chunks; /* heap chunks, newest first */
  struct af_arena_defer *defers; /* af_arena_defer's calls, newest first */
  ProtobufCAllocator allocator;  /* hands protobuf-c this arena */
  _Alignas(16) char inline_block[AF_ARENA_INLINE];
} af_arena;

/* Prepares an arena in caller-owned storage. Never fails. */
void af_arena_init(af_arena *a);
/* size bytes aligned to 16; NULL on failure (see above). A block too big for the current chunk's
 * room gets a chunk of its own when that wastes less (always from 8 KiB), so later small
 * blocks still fill the current chunk. */
void *af_arena_alloc(af_arena *a, size_t size) AF_MUST_USE;
/* Block p (old_size bytes, from this arena; NULL: none) made new_size bytes, its first old_size
 * bytes kept: in place when p is the latest block of the current chunk and the chunk has room,
 * moved by realloc (the old copy freed) when p fills a chunk of its own, else copied to a new
 * block (the old one then stays until reset). Growing a buffer this way leaves no trail of old
 * copies. Never shrinks. NULL on failure (see above), p then unchanged. */
void *af_arena_grow(af_arena *a, void *p, size_t old_size, size_t new_size) AF_MUST_USE;
/* A NUL-terminated copy of s[0..len); NULL on failure. */
char *af_arena_strndup(af_arena *a, const char *s, size_t len) AF_MUST_USE;
/* A piece of text for af_arena_join: s[0..len). AF_PIECE spells a string literal's. */
typedef struct af_piece {
  const char *s;
  size_t len;
} af_piece;
#define AF_PIECE(lit) ((af_piece){"" lit, sizeof(lit) - 1})
/* parts[0..n) end to end, NUL-terminated: ARNs and the like are copied, as printf's parsing of
 * its format cost more than the copies; NULL on failure. */
char *af_arena_join(af_arena *a, const af_piece *parts, size_t n) AF_MUST_USE;
/* The text fmt makes (printf), NUL-terminated; NULL on failure. */
char *af_arena_printf(af_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) AF_MUST_USE;
char *af_arena_vprintf(af_arena *a, const char *fmt, va_list ap) AF_MUST_USE;
/* Has reset (or destroy) call fn(ctx) before it frees the blocks: for what a request holds
 * that is not the arena's, such as references to shared memos. Calls run newest first. False
 * when out of memory (fn will then not be called). */
bool af_arena_defer(af_arena *a, void (*fn)(void *ctx), void *ctx) AF_MUST_USE;
/* Releases everything handed out; the arena stays usable. */
void af_arena_reset(af_arena *a);
/* Releases everything; the arena must be re-initialised before further use. NULL is fine. */
void af_arena_destroy(af_arena *a);

#endif
