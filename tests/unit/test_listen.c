#include "common/listen.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int split(const char *addr, char *host, int *port) {
  return af_listen_split(addr, host, 256, port);
}

Test(listen, splits_host_and_port) {
  char host[256];
  int port;
  cr_assert_eq(split("127.0.0.1:8080", host, &port), 0);
  cr_expect_str_eq(host, "127.0.0.1");
  cr_expect_eq(port, 8080);
  cr_assert_eq(split("[::1]:0", host, &port), 0);
  cr_expect_str_eq(host, "::1");
  cr_expect_eq(port, 0);
  cr_assert_eq(split("localhost:65535", host, &port), 0);
  cr_expect_str_eq(host, "localhost");
}

Test(listen, refuses_malformed) {
  char host[256];
  int port;
  const char *bad[] = {"nonsense", ":80",   "host:",  "host:x", "host:65536",
                       "host:-1",  "::1:5", "[::1:5", "[]:5",   "host:80x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(split(bad[i], host, &port), -1, "%s", bad[i]);
  char small[4];
  cr_expect_eq(af_listen_split("localhost:1", small, sizeof small, &port), -1);
}

Test(listen, resolves_loopback) {
  struct sockaddr_storage ss;
  socklen_t len;
  char why[128];
  cr_assert_eq(af_listen_resolve("127.0.0.1:8080", &ss, &len, why, sizeof why), 0, "%s", why);
  cr_expect_eq(ss.ss_family, AF_INET);
  cr_expect_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
  cr_expect_eq(af_listen_resolve("nonsense", &ss, &len, why, sizeof why), -1);
  cr_expect(strstr(why, "HOST:PORT") != NULL, "%s", why);
}

Test(listen, explains_a_busy_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  cr_assert_eq(listen(fd, 1), 0);
  socklen_t sl = sizeof sin;
  getsockname(fd, (struct sockaddr *)&sin, &sl);
  char addr[64], why[128];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sin.sin_port));
  af_listen_explain(addr, why, sizeof why);
  cr_expect_str_eq(why, "Address already in use");
  close(fd);
}
