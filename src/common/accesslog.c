/* Access log lines: formatted on the caller's stack, written with one write(2) each. */
#include "common/accesslog.h"

#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One line at most: a pipe takes a write this size whole. */
#define LINE_MAX_BYTES PIPE_BUF
/* The most each string takes of a line, escaped and quoted: together with the names and numbers
 * (under 300 bytes) they fit in LINE_MAX_BYTES, so every line ends with its "}\n". */
#define PATH_MAX_BYTES 1024
#define AGENT_MAX_BYTES 512
#define FIELD_MAX_BYTES 128
_Static_assert(300 + 11 * FIELD_MAX_BYTES + PATH_MAX_BYTES + AGENT_MAX_BYTES < LINE_MAX_BYTES,
               "an access log line fits one atomic write");

struct af_access_log {
  int fd;
  _Atomic uint64_t dropped;
};

/* Standard output through a descriptor of the log's own (a new open file description of the
 * same pipe, terminal or file), so making it non-blocking leaves the descriptor the process
 * inherited, and whoever else shares it, as they were. A socket cannot be reopened: then a
 * duplicate, which blocks if its reader stops. -1 with errno when stdout is not open. */
static int open_stdout(void) {
  if (fcntl(STDOUT_FILENO, F_GETFD) < 0)
    return -1;
  int fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
  return fd >= 0 ? fd : fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
}

af_access_log *af_access_log_open(const char *path, char *msg, size_t msgsz) {
  bool out = strcmp(path, "-") == 0;
  int fd =
      out ? open_stdout() : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (fd < 0) {
    snprintf(msg, msgsz, "%s: %s", out ? "standard output" : path, strerror(errno));
    return NULL;
  }
  af_access_log *l = malloc(sizeof *l);
  if (l == NULL) {
    close(fd);
    snprintf(msg, msgsz, "out of memory");
    return NULL;
  }
  l->fd = fd;
  atomic_init(&l->dropped, 0);
  return l;
}

void af_access_log_close(af_access_log *l) {
  if (l == NULL)
    return;
  close(l->fd);
  free(l);
}

uint64_t af_access_log_dropped(const af_access_log *l) {
  return l ? atomic_load_explicit(&l->dropped, memory_order_relaxed) : 0;
}

/* A line being built; it cannot overflow (every field is bounded), but put checks anyway. */
typedef struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
} line;

static void put(line *l, const char *s) {
  size_t n = strlen(s);
  if (n > sizeof l->buf - l->len)
    n = sizeof l->buf - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

/* "name": after a comma unless it is the first member */
static void member(line *l, const char *name) {
  put(l, l->len > 1 ? ",\"" : "\"");
  put(l, name);
  put(l, "\":");
}

/* A string member, escaped and cut at max bytes; null for NULL. */
static void string_member(line *l, const char *name, const char *s, size_t n, size_t max) {
  member(l, name);
  if (s == NULL) {
    put(l, "null");
    return;
  }
  size_t room = sizeof l->buf - l->len;
  l->len += af_json_quote(l->buf + l->len, room < max ? room : max, s, n);
}

static void str(line *l, const char *name, const char *s, size_t max) {
  string_member(l, name, s, s ? strlen(s) : 0, max);
}

static void number(line *l, const char *name, int64_t v) {
  char n[24];
  snprintf(n, sizeof n, "%" PRId64, v);
  member(l, name);
  put(l, n);
}

/* Now as RFC 3339, UTC, with milliseconds: 2024-05-01T12:00:00.123Z. The seconds are formatted
 * once a second per thread: glibc's gmtime_r takes a process-wide lock. */
static void now_rfc3339(char out[48]) {
  static _Thread_local time_t sec = -1;
  static _Thread_local char whole[24];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(whole, sizeof whole, "%Y-%m-%dT%H:%M:%S", &tm);
    sec = ts.tv_sec;
  }
  snprintf(out, 48, "%.23s.%03dZ", whole, (int)(ts.tv_nsec / 1000000));
}

static void format(line *l, const af_access_entry *e) {
  char when[48];
  now_rfc3339(when);
  l->len = 0;
  put(l, "{");
  str(l, "time", when, FIELD_MAX_BYTES);
  str(l, "request_id", e->request_id, FIELD_MAX_BYTES);
  str(l, "door", e->door, FIELD_MAX_BYTES);
  str(l, "operation", e->operation, FIELD_MAX_BYTES);
  str(l, "account", e->account, FIELD_MAX_BYTES);
  str(l, "region", e->region, FIELD_MAX_BYTES);
  if (e->http_status != 0)
    number(l, "status", e->http_status);
  else
    str(l, "status", e->grpc_status, FIELD_MAX_BYTES);
  str(l, "error_type", e->error_type, FIELD_MAX_BYTES);
  number(l, "duration_us", e->duration_us);
  str(l, "peer", e->peer, FIELD_MAX_BYTES);
  number(l, "bytes_in", (int64_t)e->bytes_in);
  number(l, "bytes_out", (int64_t)e->bytes_out);
  str(l, "method", e->method, FIELD_MAX_BYTES);
  string_member(l, "path", e->path, e->path ? e->path_len : 0, PATH_MAX_BYTES);
  str(l, "user_agent", e->user_agent, AGENT_MAX_BYTES);
  put(l, "}\n");
}

void af_access_log_write(af_access_log *lg, const af_access_entry *e) {
  if (lg == NULL)
    return;
  line l;
  format(&l, e);
  ssize_t w;
  do
    w = write(lg->fd, l.buf, l.len);
  while (w < 0 && errno == EINTR);
  if (w == (ssize_t)l.len)
    return;
  /* Not written whole: EAGAIN (a full pipe), EPIPE (no reader), ENOSPC, EIO... A file that took
   * part of it (a disk filling up) gets its newline, so the next line starts a line of its own. */
  if (w > 0)
    (void)!write(lg->fd, "\n", 1);
  atomic_fetch_add_explicit(&lg->dropped, 1, memory_order_relaxed);
}
