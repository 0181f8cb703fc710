/* Audits the locks (mutexes and read-write locks, counted together) code under test initialises
 * and destroys inside one block of memory, to show that a structure that fails half way through
 * being made destroys exactly the locks it initialised (destroying one never initialised is
 * undefined behaviour that glibc lets pass silently on zeroed memory, so no sanitizer sees it).
 * It can also make the n-th lock initialisation fail.
 *
 * It defines pthread_mutex_init, pthread_mutex_destroy, pthread_rwlock_init and
 * pthread_rwlock_destroy themselves, so calls made from this program (the core is linked in
 * statically) come here and the real ones are reached through the dynamic linker; only locks
 * inside the audited block are counted. Header-only: a test
 * file includes it first, before any system header (it needs _GNU_SOURCE). Not thread-safe: the
 * test's own thread starts, reads and stops an audit while the audited code runs on it. */
#ifndef AF_TESTS_MUTEX_AUDIT_H
#define AF_TESTS_MUTEX_AUDIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MUTEX_AUDIT_MAX 1024

static struct mutex_audit {
  bool on;
  const char *lo, *hi;               /* the audited block: [lo, hi) */
  const void *live[MUTEX_AUDIT_MAX]; /* initialised and not destroyed yet */
  size_t nlive;
  int inits, destroys, strays, overflow; /* strays: destroys of a mutex not live */
  int fail_init;                         /* the n-th init (from 1) fails; 0: none */
} mutex_audit;

/* Starts an audit of the next block set with mutex_audit_block; the fail_init-th init in it
 * fails (0: none). */
static inline void mutex_audit_start(int fail_init) {
  memset(&mutex_audit, 0, sizeof mutex_audit);
  mutex_audit.on = true;
  mutex_audit.fail_init = fail_init;
}

/* The block to audit (the first one an allocator hands out once the audit started, say). */
static inline void mutex_audit_block(const void *p, size_t size) {
  if (mutex_audit.on && mutex_audit.lo == NULL) {
    mutex_audit.lo = p;
    mutex_audit.hi = (const char *)p + size;
  }
}

static inline void mutex_audit_stop(void) { mutex_audit.on = false; }

static inline bool mutex_audited(const void *m) {
  return mutex_audit.on && mutex_audit.lo != NULL && (const char *)m >= mutex_audit.lo &&
         (const char *)m < mutex_audit.hi;
}

static inline void *mutex_audit_real(const char *name) { return dlsym(RTLD_NEXT, name); }

/* An initialisation of the lock at m: false when the audit makes it fail. */
static inline bool mutex_audit_init(const void *m) {
  if (!mutex_audited(m))
    return true;
  if (++mutex_audit.inits == mutex_audit.fail_init)
    return false;
  if (mutex_audit.nlive < MUTEX_AUDIT_MAX)
    mutex_audit.live[mutex_audit.nlive++] = m;
  else
    mutex_audit.overflow++;
  return true;
}

static inline void mutex_audit_destroy(const void *m) {
  if (!mutex_audited(m))
    return;
  mutex_audit.destroys++;
  size_t i = 0;
  while (i < mutex_audit.nlive && mutex_audit.live[i] != m)
    i++;
  if (i == mutex_audit.nlive)
    mutex_audit.strays++;
  else
    mutex_audit.live[i] = mutex_audit.live[--mutex_audit.nlive];
}

int pthread_mutex_init(pthread_mutex_t *restrict m, const pthread_mutexattr_t *restrict attr) {
  if (!mutex_audit_init(m))
    return EAGAIN;
  int (*real)(pthread_mutex_t *, const pthread_mutexattr_t *);
  void *sym = mutex_audit_real("pthread_mutex_init");
  memcpy(&real, &sym, sizeof real);
  return real != NULL ? real(m, attr) : EINVAL;
}

int pthread_mutex_destroy(pthread_mutex_t *m) {
  mutex_audit_destroy(m);
  int (*real)(pthread_mutex_t *);
  void *sym = mutex_audit_real("pthread_mutex_destroy");
  memcpy(&real, &sym, sizeof real);
  return real != NULL ? real(m) : EINVAL;
}

int pthread_rwlock_init(pthread_rwlock_t *restrict l, const pthread_rwlockattr_t *restrict attr) {
  if (!mutex_audit_init(l))
    return EAGAIN;
  int (*real)(pthread_rwlock_t *, const pthread_rwlockattr_t *);
  void *sym = mutex_audit_real("pthread_rwlock_init");
  memcpy(&real, &sym, sizeof real);
  return real != NULL ? real(l, attr) : EINVAL;
}

int pthread_rwlock_destroy(pthread_rwlock_t *l) {
  mutex_audit_destroy(l);
  int (*real)(pthread_rwlock_t *);
  void *sym = mutex_audit_real("pthread_rwlock_destroy");
  memcpy(&real, &sym, sizeof real);
  return real != NULL ? real(l) : EINVAL;
}

#endif
