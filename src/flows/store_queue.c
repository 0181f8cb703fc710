#include "flows/store_queue.h"

void af__queue_init(af_store_queue *q, size_t cap) {
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->ready, NULL);
  q->head = NULL;
  q->tail = &q->head;
  q->n = 0;
  q->cap = cap > 0 ? cap : 1;
  q->closing = false;
}

void af__queue_fini(af_store_queue *q) {
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->ready);
}

/* What the bound leaves for ops that are not deferred (lock held). */
static size_t room_of(const af_store_queue *q) { return q->n < q->cap ? q->cap - q->n : 0; }

/* Whether op may join q (lock held) with room left under the bound: a deferred op (a seed's
 * insert) always may, until the queue closes. */
static bool fits(const af_store_queue *q, const af_store_op *op, size_t room) {
  return !q->closing && (op->deferred || room > 0);
}

/* Appends the n ops linked from first, the last one's queue_next at tail (lock held). */
static void append(af_store_queue *q, af_store_op *first, af_store_op **tail, size_t n) {
  *q->tail = first;
  q->tail = tail;
  q->n += n;
  pthread_cond_signal(&q->ready);
}

af_queue_push_rc af__queue_push(af_store_queue *q, af_store_op *op) {
  op->queue_next = NULL;
  op->queued_ms = af_store_now_ms();
  pthread_mutex_lock(&q->lock);
  af_queue_push_rc rc = q->closing                ? AF_QUEUE_CLOSED
                        : fits(q, op, room_of(q)) ? AF_QUEUE_PUSHED
                                                  : AF_QUEUE_FULL;
  if (rc == AF_QUEUE_PUSHED)
    append(q, op, &op->queue_next, 1);
  pthread_mutex_unlock(&q->lock);
  return rc;
}

void af__queue_submit(af_store_queue *q, af_store_op *op) {
  switch (af__queue_push(q, op)) {
  case AF_QUEUE_PUSHED:
    return;
  case AF_QUEUE_FULL:
    op->done(op, AF_STORE_BUSY);
    return;
  case AF_QUEUE_CLOSED:
    op->done(op, AF_STORE_UNAVAILABLE);
    return;
  }
}

void af__queue_submit_all(af_store_queue *q, af_store_op **ops, size_t n) {
  int64_t now = af_store_now_ms();
  for (size_t i = 0; i < n; i++)
    ops[i]->queued_ms = now;
  af_store_op *in = NULL, **in_tail = &in, *away = NULL, **away_tail = &away;
  size_t taken = 0;
  pthread_mutex_lock(&q->lock);
  bool closing = q->closing;
  size_t room = room_of(q);
  for (size_t i = 0; i < n; i++) { /* in order: what fits, linked for the queue; the rest */
    af_store_op *op = ops[i];
    if (!fits(q, op, room)) {
      *away_tail = op;
      away_tail = &op->queue_next;
      continue;
    }
    room -= !op->deferred;
    taken++;
    *in_tail = op;
    in_tail = &op->queue_next;
  }
  *in_tail = *away_tail = NULL;
  if (taken > 0)
    append(q, in, in_tail, taken);
  pthread_mutex_unlock(&q->lock);
  while (away != NULL) {
    af_store_op *op = away;
    away = op->queue_next;
    op->done(op, closing ? AF_STORE_UNAVAILABLE : AF_STORE_BUSY);
  }
}

af_store_op *af__queue_pop(af_store_queue *q, size_t max) {
  pthread_mutex_lock(&q->lock);
  while (q->head == NULL && !q->closing)
    pthread_cond_wait(&q->ready, &q->lock);
  af_store_op *first = q->head;
  if (q->n <= max) { /* all of them: no walk through the list under the lock */
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
  } else {
    af_store_op *last = first;
    for (size_t n = 1; n < max; n++)
      last = last->queue_next;
    q->head = last->queue_next;
    last->queue_next = NULL;
    q->n -= max;
  }
  pthread_mutex_unlock(&q->lock);
  return first;
}

void af__queue_close(af_store_queue *q) {
  pthread_mutex_lock(&q->lock);
  q->closing = true;
  pthread_cond_broadcast(&q->ready);
  pthread_mutex_unlock(&q->lock);
}
