#include "common/listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int af_listen_split(const char *addr, char *host, size_t hostsz, int *port) {
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || colon == addr)
    return -1;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
    return -1;
  const char *h = addr;
  size_t hl = (size_t)(colon - addr);
  if (addr[0] == '[') {
    if (hl < 3 || colon[-1] != ']')
      return -1;
    h++;
    hl -= 2;
  } else if (memchr(addr, ':', hl) != NULL) {
    return -1; /* a bare IPv6 address needs brackets */
  }
  if (hl == 0 || hl >= hostsz)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)p;
  return 0;
}

int af_listen_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *why,
                      size_t whysz) {
  char host[256], service[8];
  int port;
  if (af_listen_split(addr, host, sizeof host, &port) != 0) {
    snprintf(why, whysz, "expected HOST:PORT, like 127.0.0.1:8080");
    return -1;
  }
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(host, service, &hints, &ai);
  if (rc != 0) {
    snprintf(why, whysz, "%s", gai_strerror(rc));
    return -1;
  }
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

void af_listen_explain(const char *addr, char *why, size_t whysz) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (af_listen_resolve(addr, &ss, &len, why, whysz) != 0)
    return;
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) != 0)
    snprintf(why, whysz, "%s", strerror(errno));
  else
    snprintf(why, whysz, "the address could not be used");
  if (fd >= 0)
    close(fd);
}
