/* A one-shot latch: one thread waits until another opens it. The waiting forms of appflowd's
 * asynchronous calls (tests, tools, start-up) use it to wait for a completion callback that
 * may run on another thread, or before the call that starts it returns.
 *
 * Ownership: the caller's storage. Thread-safety: open and wait may race; each latch is opened
 * once and waited on by one thread. */
#ifndef AF_COMMON_LATCH_H
#define AF_COMMON_LATCH_H

#include <pthread.h>
#include <stdbool.h>

typedef struct af_latch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool open;
} af_latch;

void af_latch_init(af_latch *l);
/* Opens the latch: the waiter goes on. l may be freed by the waiter once this returns. */
void af_latch_open(af_latch *l);
/* Waits until the latch is open, then frees what init made (the latch is done with). */
void af_latch_wait(af_latch *l);

#endif
