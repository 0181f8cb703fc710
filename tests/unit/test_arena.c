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
