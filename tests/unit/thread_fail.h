/* Makes pthread_create fail on demand for the threads this program's own code starts (never a
 * library's: gRPC, libmicrohttpd and Criterion start theirs as usual), to show that every place
 * appflowd starts a thread reports pthread_create's error from its return value. A refused call
 * returns EAGAIN and leaves errno set to EPERM, so a message made from errno says "Operation
 * not permitted" where the right one says "Resource temporarily unavailable".
 *
 * It defines pthread_create itself, so calls made from this program (the core is linked in
 * statically) come here and the real one is reached through the dynamic linker. Header-only:
 * a test file includes it first, before any system header (it needs _GNU_SOURCE). Arm it with
 * thread_fail_arm from the test's own thread while none of its threads start; thread-safe
 * after that. */
#ifndef AF_TESTS_THREAD_FAIL_H
#define AF_TESTS_THREAD_FAIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* Of this program's threads asked for since thread_fail_arm: how many, and which to refuse
 * ([from, to); to == 0: none). */
static atomic_int thread_fail_seen, thread_fail_from, thread_fail_to;

/* Lets the next `skip` threads this program's code starts run, then refuses `n`. */
static inline void thread_fail_arm(int skip, int n) {
  atomic_store(&thread_fail_to, 0); /* nothing refused while the bounds change */
  atomic_store(&thread_fail_seen, 0);
  atomic_store(&thread_fail_from, skip);
  atomic_store(&thread_fail_to, skip + n);
}

/* Refuses nothing from now on. */
static inline void thread_fail_disarm(void) { atomic_store(&thread_fail_to, 0); }

/* How many threads this program's code asked for since thread_fail_arm. */
static inline int thread_fail_calls(void) { return atomic_load(&thread_fail_seen); }

/* Whether fn lies in this program's own image, not in a shared library's. */
static inline bool thread_fail_ours(void *(*fn)(void *)) {
  Dl_info mine, theirs;
  return dladdr((void *)thread_fail_arm, &mine) != 0 && dladdr((void *)fn, &theirs) != 0 &&
         mine.dli_fbase == theirs.dli_fbase;
}

/* What a report of a refused thread must quote: strerror of pthread_create's EAGAIN. */
static inline const char *thread_fail_reason(void) { return strerror(EAGAIN); }

int pthread_create(pthread_t *restrict thread, const pthread_attr_t *restrict attr,
                   void *(*start)(void *), void *restrict arg) {
  if (atomic_load(&thread_fail_to) > 0 && thread_fail_ours(start)) {
    int k = atomic_fetch_add(&thread_fail_seen, 1);
    if (k >= atomic_load(&thread_fail_from) && k < atomic_load(&thread_fail_to)) {
      errno = EPERM; /* what a report made from errno would wrongly quote */
      return EAGAIN;
    }
  }
  int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  void *sym = dlsym(RTLD_NEXT, "pthread_create");
  memcpy(&real, &sym, sizeof real); /* a data pointer to a function pointer, as POSIX allows */
  return real != NULL ? real(thread, attr, start, arg) : EAGAIN;
}

#endif
