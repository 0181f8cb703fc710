/* An af_allocator for tests that fails once its budget of allocations is spent, to show what
 * running out of memory does. Header-only: each test file that needs it includes it. */
#ifndef AF_TESTS_BUDGET_ALLOC_H
#define AF_TESTS_BUDGET_ALLOC_H

#include "flows/store.h"

#include <stdlib.h>

struct budget {
  int left; /* allocations still allowed */
};

static void *budget_alloc(void *ctx, size_t size) {
  struct budget *b = ctx;
  if (b->left <= 0)
    return NULL;
  b->left--;
  return malloc(size);
}

static void budget_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

/* The allocator spending b's budget. */
static inline af_allocator budget_allocator(struct budget *b) {
  return (af_allocator){budget_alloc, budget_free, b};
}

#endif
