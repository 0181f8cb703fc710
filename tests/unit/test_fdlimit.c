/* src/common/fdlimit.c: the soft limit on open files goes up to the hard one, never down.
 * Criterion runs each test in a process of its own, so the limits a test sets end with it. */
#include "common/fdlimit.h"

#include <criterion/criterion.h>
#include <sys/resource.h>

static void set_limits(rlim_t soft, rlim_t hard) {
  struct rlimit r = {soft, hard};
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &r), 0, "setrlimit(%llu, %llu)", (unsigned long long)soft,
               (unsigned long long)hard);
}

static rlim_t soft_now(void) {
  struct rlimit r;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &r), 0);
  return r.rlim_cur;
}

Test(fdlimit, raises_the_soft_limit_to_the_hard_one) {
  set_limits(64, 300); /* lowering the hard limit needs no privilege */
  af_fd_limit got;
  cr_assert_eq(af_fd_limit_raise(&got), 0);
  cr_expect_eq(got.soft, 300);
  cr_expect_eq(got.hard, 300);
  cr_expect_eq(soft_now(), 300, "the limit in force is the one reported");
}

Test(fdlimit, leaves_a_soft_limit_at_the_hard_one_as_it_is) {
  set_limits(200, 200);
  af_fd_limit got;
  cr_assert_eq(af_fd_limit_raise(&got), 0);
  cr_expect_eq(got.soft, 200);
  cr_expect_eq(got.hard, 200);
  cr_expect_eq(soft_now(), 200);
}

Test(fdlimit, reports_the_hard_limit_it_was_given) {
  struct rlimit before;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &before), 0);
  af_fd_limit got;
  cr_assert_eq(af_fd_limit_raise(&got), 0);
  if (before.rlim_max == RLIM_INFINITY) {
    cr_expect_eq(got.hard, AF_FD_UNLIMITED);
    cr_expect_geq(got.soft, (unsigned long long)before.rlim_cur);
  } else {
    cr_expect_eq(got.hard, (unsigned long long)before.rlim_max);
    cr_expect_eq(got.soft, (unsigned long long)before.rlim_max);
  }
}
