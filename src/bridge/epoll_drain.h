/* A work-around for libmicrohttpd's epoll loop, which the AWS door's threads run.
 *
 * libmicrohttpd (0.9.75, Debian 12's, through 1.0.1; Karlson2k/libmicrohttpd
 * src/microhttpd/daemon.c, MHD_epoll) drains its epoll set in batches of 128 (MAX_EVENTS):
 * while a wait returns a full batch it waits again, with the whole timeout, before it handles
 * any of the batches it has. So when exactly 128 (or 256, ...) connections become ready at
 * once and then nothing else happens on that thread, their requests go unanswered and their
 * closes unseen until the next event or the earliest connection timeout (--http-timeout).
 *
 * This module defines epoll_wait. An executable's definitions come before its libraries' in
 * the dynamic linker's search, so libmicrohttpd's calls land here: on a thread marked with
 * af_epoll_drain_mark_thread, the wait after a full batch does not block (it returns what is
 * ready, perhaps nothing, which every caller of epoll_wait must accept anyway); everywhere
 * else, and on a marked thread otherwise, epoll_wait is the C library's, unchanged.
 *
 * Thread-safety: the state is per thread; any thread may call either function. */
#ifndef AF_BRIDGE_EPOLL_DRAIN_H
#define AF_BRIDGE_EPOLL_DRAIN_H

/* Marks the calling thread as one that runs libmicrohttpd's epoll loop. Idempotent. */
void af_epoll_drain_mark_thread(void);

#endif
