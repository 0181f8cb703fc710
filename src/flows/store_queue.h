/* The bounded queue in front of a database store's threads: doors push ops without waiting,
 * store threads pop them (one at a time, or a whole group to commit together).
 *
 * Errors: push refuses (false) when the queue is full or closing; the caller then completes the
 * op as AF_STORE_BUSY or AF_STORE_UNAVAILABLE. Thread-safety: every function is thread-safe
 * between init and fini. */
#ifndef AF_FLOWS_STORE_QUEUE_H
#define AF_FLOWS_STORE_QUEUE_H

#include "common/compiler.h"
#include "flows/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct af_store_queue {
  pthread_mutex_t lock;
  pthread_cond_t ready; /* an op arrived, or the queue is closing */
  af_store_op *head, **tail;
  size_t n, cap;
  bool closing;
} af_store_queue;

typedef enum af_queue_push_rc { AF_QUEUE_PUSHED, AF_QUEUE_FULL, AF_QUEUE_CLOSED } af_queue_push_rc;

void af__queue_init(af_store_queue *q, size_t cap);
void af__queue_fini(af_store_queue *q);
/* Appends op (stamping op->queued_ms). A deferred op (a seed's insert) is taken past cap: the
 * bound is for requests, and the seeder bounds how many of its own are in flight. */
af_queue_push_rc af__queue_push(af_store_queue *q, af_store_op *op) AF_MUST_USE;
/* Appends op, or completes it at once: BUSY when the queue is full, UNAVAILABLE when closing. */
void af__queue_submit(af_store_queue *q, af_store_op *op);
/* Appends ops[0..n) (stamping each) in one hold of the lock, in order, as push would take each;
 * completes the ones that do not fit BUSY, every one UNAVAILABLE when closing. */
void af__queue_submit_all(af_store_queue *q, af_store_op **ops, size_t n);
/* Waits for ops and takes up to max of them, oldest first, linked through queue_next; NULL only
 * once the queue is closing and empty. */
af_store_op *af__queue_pop(af_store_queue *q, size_t max);
/* Wakes every waiting thread; pops then drain what is left and return NULL. */
void af__queue_close(af_store_queue *q);

#endif
