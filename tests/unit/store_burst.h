/* Many inserts submitted at once without waiting for any, then waited for together: how the
 * store tests see ops in flight together (group commit, full queues). Header-only: each test
 * file that needs it includes it. Not thread-safe: one burst at a time per caller. */
#ifndef AF_TESTS_STORE_BURST_H
#define AF_TESTS_STORE_BURST_H

#include "flows/store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct burst {
  pthread_mutex_t lock;
  pthread_cond_t all_done;
  int left, ok, exists, busy, unavailable;
} burst;

typedef struct burst_op {
  af_store_op op; /* first: done gets it back */
  burst *b;
  char name[24];
  af_flow_record rec;
  af_store_rc rc; /* how it ended */
  int answers;    /* how many times it was answered: 1 */
} burst_op;

static inline void burst_done(af_store_op *op, af_store_rc rc) {
  burst_op *o = (burst_op *)op;
  burst *b = o->b;
  pthread_mutex_lock(&b->lock);
  o->rc = rc;
  o->answers++;
  b->ok += rc == AF_STORE_OK;
  b->exists += rc == AF_STORE_EXISTS;
  b->busy += rc == AF_STORE_BUSY;
  b->unavailable += rc == AF_STORE_UNAVAILABLE;
  if (--b->left == 0)
    pthread_cond_signal(&b->all_done);
  pthread_mutex_unlock(&b->lock);
}

/* Makes ops[0..n) inserts of flows PREFIX0 .. PREFIX(n-1), counted into b as they end; submits
 * none. */
static inline void burst_prepare(const char *prefix, burst_op *ops, int n, burst *b) {
  *b = (burst){.left = n};
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->all_done, NULL);
  for (int i = 0; i < n; i++) {
    burst_op *o = &ops[i];
    snprintf(o->name, sizeof o->name, "%s%d", prefix, i);
    o->b = b;
    o->rec = (af_flow_record){.name = o->name, .name_len = strlen(o->name), .status = 1};
    o->op = (af_store_op){
        .key = o->name, .key_len = o->rec.name_len, .record = &o->rec, .done = burst_done};
  }
}

/* Submits inserts of flows PREFIX0 .. PREFIX(n-1) into s without waiting for any; b counts
 * how they end. ops: room for n. */
static inline void burst_submit(af_store *s, const char *prefix, burst_op *ops, int n, burst *b) {
  burst_prepare(prefix, ops, n, b);
  for (int i = 0; i < n; i++)
    af_store_insert(s, &ops[i].op);
}

/* Waits until every insert of the burst has ended. */
static inline void burst_wait(burst *b) {
  pthread_mutex_lock(&b->lock);
  while (b->left > 0)
    pthread_cond_wait(&b->all_done, &b->lock);
  pthread_mutex_unlock(&b->lock);
  pthread_mutex_destroy(&b->lock);
  pthread_cond_destroy(&b->all_done);
}

/* burst_submit, then burst_wait. */
static inline void burst_insert(af_store *s, const char *prefix, burst_op *ops, int n, burst *b) {
  burst_submit(s, prefix, ops, n, b);
  burst_wait(b);
}

#endif
