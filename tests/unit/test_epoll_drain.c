/* src/bridge/epoll_drain.c: on a marked thread the wait after a full batch returns at once;
 * every other wait is the C library's. A wait that should not block but does hangs the test
 * until its timeout, which fails it. */
#include "bridge/epoll_drain.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define READY 3

typedef struct {
  int ep;
  int ready[READY]; /* readable, each reported once (edge-triggered) */
  int later;        /* made readable by another thread while the test waits */
  pthread_t writer;
} set;

static int readable_eventfd(void) {
  int fd = eventfd(1, EFD_NONBLOCK);
  cr_assert(fd >= 0);
  return fd;
}

static void add(int ep, int fd) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
  cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
}

static void set_up(set *s) {
  s->ep = epoll_create1(0);
  cr_assert(s->ep >= 0);
  for (int i = 0; i < READY; i++) {
    s->ready[i] = readable_eventfd();
    add(s->ep, s->ready[i]);
  }
  s->later = eventfd(0, EFD_NONBLOCK);
  cr_assert(s->later >= 0);
  add(s->ep, s->later);
}

static void *write_later(void *arg) {
  const set *s = arg;
  uint64_t one = 1;
  cr_assert_eq(write(s->later, &one, sizeof one), (ssize_t)sizeof one);
  return NULL;
}

/* Waits with no timeout while another thread makes s->later readable: the wait returns that. */
static void assert_blocks_until_an_event(set *s) {
  cr_assert_eq(pthread_create(&s->writer, NULL, write_later, s), 0);
  struct epoll_event got[READY + 1];
  int n = epoll_wait(s->ep, got, READY + 1, -1);
  pthread_join(s->writer, NULL);
  cr_assert_eq(n, 1, "the wait returned %d events, not the one it waited for", n);
  cr_assert_eq(got[0].data.fd, s->later);
}

Test(epoll_drain, a_marked_thread_does_not_block_after_a_full_batch, .timeout = 60) {
  set s;
  set_up(&s);
  af_epoll_drain_mark_thread();
  struct epoll_event got[READY];
  cr_assert_eq(epoll_wait(s.ep, got, READY, -1), READY);
  cr_assert_eq(epoll_wait(s.ep, got, READY, -1), 0, "nothing more is ready, and no wait");
  /* That wait was not full: the next one blocks as asked. */
  assert_blocks_until_an_event(&s);
}

Test(epoll_drain, a_marked_thread_blocks_after_a_batch_that_was_not_full, .timeout = 60) {
  set s;
  set_up(&s);
  af_epoll_drain_mark_thread();
  struct epoll_event got[READY + 1];
  cr_assert_eq(epoll_wait(s.ep, got, READY + 1, -1), READY);
  assert_blocks_until_an_event(&s);
}

Test(epoll_drain, other_threads_wait_as_the_c_library_does, .timeout = 60) {
  set s;
  set_up(&s);
  struct epoll_event got[READY];
  cr_assert_eq(epoll_wait(s.ep, got, READY, -1), READY);
  assert_blocks_until_an_event(&s);
}
