/* The wait after a full batch does not block, on libmicrohttpd's threads: see epoll_drain.h. */
#include "bridge/epoll_drain.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/epoll.h>

static _Thread_local bool marked;    /* this thread runs libmicrohttpd's loop */
static _Thread_local bool last_full; /* its last wait returned as many events as it could */

void af_epoll_drain_mark_thread(void) { marked = true; }

/* epoll_pwait with no signal mask is epoll_wait (epoll_wait(2)), and is not this function. */
int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
  if (!marked)
    return epoll_pwait(epfd, events, maxevents, timeout, NULL);
  int n = epoll_pwait(epfd, events, maxevents, last_full ? 0 : timeout, NULL);
  last_full = n == maxevents;
  return n;
}
