/* src/common/uuid.c: random ids are version 4 UUIDs in AWS's text form, never repeat, and
 * differ between threads. */
#include "common/uuid.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void expect_uuid4(const char *a) {
  cr_assert_eq(strlen(a), 36, "%s", a);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      cr_assert_eq(a[i], '-', "%s", a);
    else
      cr_assert(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]), "%s", a);
  }
  cr_assert(a[14] == '4' && strchr("89ab", a[19]) != NULL, "%s", a);
}

static int compare(const void *a, const void *b) { return strcmp(a, b); }

Test(uuid, format_sets_version_and_variant) {
  char a[37];
  af_uuid_format(0, 0, a);
  cr_expect_str_eq(a, "00000000-0000-4000-8000-000000000000");
  af_uuid_format(~0ull, ~0ull, a);
  cr_expect_str_eq(a, "ffffffff-ffff-4fff-bfff-ffffffffffff");
  /* every digit in its place, most significant first */
  af_uuid_format(0x0123456789abcdefull, 0xfedcba9876543210ull, a);
  cr_expect_str_eq(a, "01234567-89ab-4def-bedc-ba9876543210");
}

/* Many ids, more than one pool's worth, all well formed and all different. */
Test(uuid, random_ids_are_uuid4_and_unique) {
  enum { N = 5000 };
  char(*ids)[37] = malloc(N * sizeof *ids);
  cr_assert_not_null(ids);
  for (int i = 0; i < N; i++) {
    af_uuid_random(ids[i]);
    expect_uuid4(ids[i]);
  }
  qsort(ids, N, sizeof *ids, compare);
  for (int i = 1; i < N; i++)
    cr_assert_str_neq(ids[i - 1], ids[i]);
  free(ids);
}

/* Bits are spread: over many ids each of the 122 random bits is set about half the time (a
 * counter or a fixed pattern would leave some always 0 or always 1). */
Test(uuid, random_bits_are_spread) {
  enum { N = 4096 };
  int set[36] = {0};
  for (int i = 0; i < N; i++) {
    char a[37];
    af_uuid_random(a);
    for (int j = 0; j < 36; j++)
      if (j != 8 && j != 13 && j != 18 && j != 23 && j != 14)
        set[j] += (a[j] >= '0' && a[j] <= '9' ? a[j] - '0' : a[j] - 'a' + 10) & 1;
  }
  for (int j = 0; j < 36; j++) {
    if (j == 8 || j == 13 || j == 18 || j == 23 || j == 14)
      continue;
    cr_expect(set[j] > N / 2 - 300 && set[j] < N / 2 + 300, "digit %d odd %d of %d", j, set[j], N);
  }
}

static void *draw(void *arg) {
  af_uuid_random(arg);
  return NULL;
}

/* Each thread draws from a pool of its own: two threads' first ids differ. */
Test(uuid, threads_draw_different_ids) {
  char a[37], b[37];
  pthread_t t1, t2;
  cr_assert_eq(pthread_create(&t1, NULL, draw, a), 0);
  cr_assert_eq(pthread_create(&t2, NULL, draw, b), 0);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  expect_uuid4(a);
  expect_uuid4(b);
  cr_expect_str_neq(a, b);
}
