/* LD_PRELOAD shim that lets Criterion (2.4, BoxFort 0.1) start under ThreadSanitizer.
 *
 * BoxFort's bxf_arena_init maps Criterion's "inheritable arena" with MAP_FIXED at
 *   0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB,
 * and gives up on the first failed mmap. Almost all of that window is TSan's shadow/metadata
 * or memory TSan refuses to map, so the runner aborts with "Could not initialize inheritable
 * arena: Resource temporarily unavailable" (Snaipe/Criterion#274, still open). The only
 * application range TSan allows inside the window is the PIE range 0x550000000000 -
 * 0x568000000000. This shim answers rand_r calls made from libcriterion with offsets inside
 * that range (walking through it, so BoxFort's "already mapped?" msync probe finds a free
 * spot); every other caller gets glibc's rand_r. Built uninstrumented by tests/tsan/run.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define PIE_FIRST 0x350000u /* (0x550000000000 - 0x200000000000) >> 24 */
#define PIE_SLOTS 0x17000u  /* up to 0x567000000000: leaves room for a growing arena */

static int from_criterion(void *ret) {
  Dl_info info;
  return dladdr(ret, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, "libcriterion") != NULL;
}

int rand_r(unsigned int *seedp) {
  if (from_criterion(__builtin_return_address(0))) {
    /* An LCG step on the caller's seed keeps successive tries at different addresses. */
    *seedp = *seedp * 1103515245u + 12345u;
    return (int)(PIE_FIRST + (*seedp >> 8) % PIE_SLOTS);
  }
  static int (*real)(unsigned int *);
  if (real == NULL)
    real = (int (*)(unsigned int *))dlsym(RTLD_NEXT, "rand_r");
  return real(seedp);
}
