#include "flows/arena.h"

#include "appflow/v1/appflow.pb-c.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

Test(arena, aligned_and_distinct) {
  af_arena a;
  af_arena_init(&a);
  char *p = af_arena_alloc(&a, 3);
  char *q = af_arena_alloc(&a, 1);
  cr_assert_not_null(p);
  cr_assert_not_null(q);
  cr_expect_eq((uintptr_t)p % 16, 0);
  cr_expect_eq((uintptr_t)q % 16, 0);
  cr_expect(q >= p + 3);
  af_arena_destroy(&a);
}

Test(arena, grows_past_inline_block_and_resets) {
  af_arena a;
  af_arena_init(&a);
  /* Fill well past the inline block; every byte stays writable (ASan checks). */
  for (int i = 0; i < 100; i++) {
    char *p = af_arena_alloc(&a, 1000);
    cr_assert_not_null(p);
    memset(p, i, 1000);
  }
  cr_expect(a.chunks != NULL);
  af_arena_reset(&a);
  cr_expect(a.chunks == NULL);
  cr_expect_eq(a.cur, a.inline_block);
  cr_expect_not_null(af_arena_alloc(&a, 64));
  af_arena_destroy(&a);
}

Test(arena, refuses_more_than_the_limit) {
  af_arena a;
  af_arena_init(&a);
  cr_expect_null(af_arena_alloc(&a, AF_ARENA_LIMIT + 1));
  cr_expect_not_null(af_arena_alloc(&a, AF_ARENA_LIMIT / 2));
  cr_expect_not_null(af_arena_alloc(&a, AF_ARENA_LIMIT / 4));
  cr_expect_null(af_arena_alloc(&a, AF_ARENA_LIMIT / 2));
  af_arena_destroy(&a);
}

Test(arena, strndup_copies_and_terminates) {
  af_arena a;
  af_arena_init(&a);
  char *s = af_arena_strndup(&a, "abcdef", 3);
  cr_expect_str_eq(s, "abc");
  af_arena_destroy(&a);
}

Test(arena, join_puts_pieces_end_to_end) {
  af_arena a;
  af_arena_init(&a);
  char big[3000];
  memset(big, 'x', sizeof big);
  af_piece parts[] = {AF_PIECE("arn:"), {"", 0}, {big, sizeof big}, AF_PIECE(":end")};
  char *s = af_arena_join(&a, parts, 4);
  cr_assert_not_null(s);
  cr_expect_eq(strlen(s), 4 + sizeof big + 4);
  cr_expect_eq(strncmp(s, "arn:xxx", 7), 0);
  cr_expect_str_eq(s + 4 + sizeof big, ":end");
  cr_expect_str_eq(af_arena_join(&a, parts, 0), "");
  af_piece huge = {big, AF_ARENA_LIMIT};
  cr_expect_null(af_arena_join(&a, &huge, 1)); /* refused before anything is copied */
  af_arena_destroy(&a);
}

Test(arena, serves_protobuf_c_unpack) {
  af_arena a;
  af_arena_init(&a);
  static const uint8_t wire[] = {0x0a, 0x04, 'd', 'e', 'm', 'o'};
  Appflow__V1__StopFlowRequest *r =
      appflow__v1__stop_flow_request__unpack(&a.allocator, sizeof wire, wire);
  cr_assert_not_null(r);
  cr_expect_str_eq(r->flow_name, "demo");
  cr_expect((char *)r >= a.inline_block && (char *)r < a.inline_block + AF_ARENA_INLINE);
  af_arena_destroy(&a); /* nothing to free one by one: ASan would see a leak otherwise */
}

Test(arena, big_block_keeps_the_current_chunk) {
  af_arena a;
  af_arena_init(&a);
  char *first = af_arena_alloc(&a, 100);
  char *big = af_arena_alloc(&a, 3 * 8192); /* past CHUNK_MIN: a chunk of its own */
  char *next = af_arena_alloc(&a, 100);
  cr_assert_not_null(first);
  cr_assert_not_null(big);
  cr_assert_not_null(next);
  memset(big, 1, 3 * 8192);
  /* the small blocks go on filling the inline block, right after each other */
  cr_expect_eq(next, first + 112);
  cr_expect((char *)next < a.inline_block + AF_ARENA_INLINE);
  cr_expect_eq(a.used, 3 * 8192, "the big block's chunk is exactly its size: %zu", a.used);
  af_arena_destroy(&a);
}

Test(arena, nearly_full_chunk_gives_way_to_a_new_one) {
  af_arena a;
  af_arena_init(&a);
  cr_assert_not_null(af_arena_alloc(&a, AF_ARENA_INLINE - 32)); /* 32 bytes left inline */
  char *p = af_arena_alloc(&a, 1000);
  char *q = af_arena_alloc(&a, 1000);
  cr_assert_not_null(p);
  cr_assert_not_null(q);
  cr_expect_eq(q, p + 1008, "the new chunk became the current one");
  af_arena_destroy(&a);
}

Test(arena, grow_in_place_at_the_end) {
  af_arena a;
  af_arena_init(&a);
  char *p = af_arena_alloc(&a, 100);
  memset(p, 'x', 100);
  char *g = af_arena_grow(&a, p, 100, 1000);
  cr_expect_eq(g, p);
  cr_expect_eq(a.cur, p + 1008);
  char *after = af_arena_alloc(&a, 16);
  cr_expect_eq(after, p + 1008);
  /* not the latest block any more: copied, contents kept */
  char *h = af_arena_grow(&a, g, 1000, 1500);
  cr_assert_not_null(h);
  cr_expect_neq(h, g);
  for (int i = 0; i < 100; i++)
    cr_expect_eq(h[i], 'x');
  cr_expect_eq(af_arena_grow(&a, h, 1500, 10), h, "never shrinks");
  af_arena_destroy(&a);
}

/* A buffer doubled from 256 bytes to 1 MiB, as the JSON writer grows its output: the arena ends
 * up holding about the final size, not the final size plus every old copy. */
Test(arena, growing_buffer_leaves_no_old_copies) {
  af_arena a;
  af_arena_init(&a);
  cr_assert_not_null(af_arena_alloc(&a, 40)); /* something before it, as in a request */
  size_t cap = 256;
  char *buf = af_arena_alloc(&a, cap);
  cr_assert_not_null(buf);
  memset(buf, 'a', cap);
  char *small = NULL;
  while (cap < (1u << 20)) {
    buf = af_arena_grow(&a, buf, cap, cap * 2);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < cap; i += 97)
      cr_assert_eq(buf[i], 'a', "byte %zu of %zu", i, cap);
    memset(buf + cap, 'a', cap);
    cap *= 2;
    if (small == NULL) /* other blocks come and go meanwhile */
      cr_assert_not_null(small = af_arena_alloc(&a, 64));
  }
  cr_expect_leq(a.used, (1u << 20) + 2 * 8192, "%zu bytes held for a 1 MiB buffer", a.used);
  af_arena_destroy(&a);
}

Test(arena, grow_refuses_more_than_the_limit) {
  af_arena a;
  af_arena_init(&a);
  char *p = af_arena_alloc(&a, 64 * 1024);
  cr_assert_not_null(p);
  cr_expect_null(af_arena_grow(&a, p, 64 * 1024, AF_ARENA_LIMIT + 1));
  char *q = af_arena_grow(&a, p, 64 * 1024, AF_ARENA_LIMIT);
  cr_expect_not_null(q, "a block of its own may take the whole limit");
  cr_expect_eq(a.used, AF_ARENA_LIMIT);
  cr_expect_null(af_arena_alloc(&a, 16 * 1024));
  af_arena_destroy(&a);
}

Test(arena, grow_of_null_allocates) {
  af_arena a;
  af_arena_init(&a);
  char *p = af_arena_grow(&a, NULL, 0, 10);
  cr_expect_eq(p, a.inline_block);
  af_arena_destroy(&a);
}

static char order[8];
static size_t norder;

static void note(void *ctx) { order[norder++] = *(const char *)ctx; }

/* Deferred calls run at reset and at destroy, newest first, once each, and not before. */
Test(arena, deferred_calls_run_at_reset_and_destroy) {
  af_arena a;
  af_arena_init(&a);
  norder = 0;
  cr_assert(af_arena_defer(&a, note, "a"));
  for (int i = 0; i < 10; i++) /* past the inline block: the calls survive new chunks */
    cr_assert_not_null(af_arena_alloc(&a, 4000));
  cr_assert(af_arena_defer(&a, note, "b"));
  cr_expect_eq(norder, 0);
  af_arena_reset(&a);
  cr_expect_eq(norder, 2);
  cr_expect_arr_eq(order, "ba", 2);
  af_arena_reset(&a);
  cr_expect_eq(norder, 2, "a reset runs each call once");
  cr_assert(af_arena_defer(&a, note, "c"));
  af_arena_destroy(&a);
  cr_expect_eq(norder, 3);
  cr_expect_eq(order[2], 'c');
}
