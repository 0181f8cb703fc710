#include "common/latch.h"

void af_latch_init(af_latch *l) {
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->cond, NULL);
  l->open = false;
}

void af_latch_open(af_latch *l) {
  pthread_mutex_lock(&l->lock);
  l->open = true;
  pthread_cond_signal(&l->cond);
  /* The waiter cannot see `open` before this unlock, so it frees nothing still in use. */
  pthread_mutex_unlock(&l->lock);
}

void af_latch_wait(af_latch *l) {
  pthread_mutex_lock(&l->lock);
  while (!l->open)
    pthread_cond_wait(&l->cond, &l->lock);
  pthread_mutex_unlock(&l->lock);
  pthread_mutex_destroy(&l->lock);
  pthread_cond_destroy(&l->cond);
}
