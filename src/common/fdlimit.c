#include "common/fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

/* The kernel's ceiling on a process's open files (fs.nr_open), which an unlimited hard limit
 * leaves as the real one; 0 when it cannot be read. */
static unsigned long long kernel_ceiling(void) {
  FILE *f = fopen("/proc/sys/fs/nr_open", "r");
  unsigned long long n = 0;
  if (f != NULL) {
    if (fscanf(f, "%llu", &n) != 1)
      n = 0;
    fclose(f);
  }
  return n;
}

static unsigned long long as_count(rlim_t v) {
  return v == RLIM_INFINITY ? AF_FD_UNLIMITED : (unsigned long long)v;
}

int af_fd_limit_raise(af_fd_limit *out) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    *out = (af_fd_limit){0, 0};
    return -1;
  }
  rlim_t want = r.rlim_max;
  if (want == RLIM_INFINITY) {
    unsigned long long ceiling = kernel_ceiling();
    want = ceiling > 0 ? (rlim_t)ceiling : r.rlim_cur;
  }
  int rc = 0;
  if (r.rlim_cur != RLIM_INFINITY && want > r.rlim_cur) {
    struct rlimit raised = {want, r.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      r.rlim_cur = want;
    else
      rc = -1;
  }
  *out = (af_fd_limit){as_count(r.rlim_cur), as_count(r.rlim_max)};
  return rc;
}
