/* Listen addresses, "HOST:PORT" or "[IPV6]:PORT", as both doors and main take them.
 * Thread-safety: reentrant. */
#ifndef AF_COMMON_LISTEN_H
#define AF_COMMON_LISTEN_H

#include "common/compiler.h"

#include <stddef.h>
#include <sys/socket.h>

/* Splits addr into host (brackets removed) and port. Returns 0, or -1 when addr is not
 * HOST:PORT with a non-empty host and a port from 0 to 65535. */
int af_listen_split(const char *addr, char *host, size_t hostsz, int *port) AF_MUST_USE;

/* Resolves addr to a socket address for binding. Returns 0, or -1 with a reason in why. */
int af_listen_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *why,
                      size_t whysz) AF_MUST_USE;

/* After a library failed to listen on addr: binds it once here to learn why ("Address already
 * in use"), since the libraries only say that they failed. Writes the reason into why. */
void af_listen_explain(const char *addr, char *why, size_t whysz);

#endif
