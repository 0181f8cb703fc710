/* src/common/accesslog.c: every line is one JSON object with every member, hostile strings
 * escaped inside it, lines from many threads whole, a failed write counted and dropped. */
#include "common/accesslog.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/appflowd-accesslog-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/access.log", dir);
}

static void teardown(void) {
  unlink(path);
  rmdir(dir);
}

TestSuite(accesslog, .init = setup, .fini = teardown);

static af_access_log *open_log(const char *p) {
  char msg[256];
  af_access_log *l = af_access_log_open(p, msg, sizeof msg);
  cr_assert_not_null(l, "%s", msg);
  return l;
}

static af_access_entry entry(void) {
  return (af_access_entry){.request_id = "4f0c1a2b-0000-4000-8000-000000000001",
                           .door = "aws",
                           .operation = "DescribeFlow",
                           .account = "000000000000",
                           .region = "us-east-1",
                           .http_status = 404,
                           .error_type = "ResourceNotFoundException",
                           .duration_us = 1234,
                           .peer = "127.0.0.1:5555",
                           .bytes_in = 19,
                           .bytes_out = 38,
                           .method = "POST",
                           .path = "/describe-flow",
                           .path_len = 14,
                           .user_agent = "Boto3/1.26"};
}

/* The file's lines, each parsed; asserts every line is a JSON object. */
static size_t read_lines(json_t **out, size_t max) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  char line[8192];
  size_t n = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    size_t len = strlen(line);
    cr_assert(len > 0 && line[len - 1] == '\n', "a whole line: %s", line);
    json_error_t e;
    json_t *v = json_loads(line, 0, &e);
    cr_assert(v != NULL && json_is_object(v), "not a JSON object: %s (%s)", line, e.text);
    if (n < max)
      out[n] = v;
    else
      json_decref(v);
    n++;
  }
  fclose(f);
  return n;
}

Test(accesslog, a_line_has_every_member) {
  af_access_log *l = open_log(path);
  af_access_entry e = entry();
  af_access_log_write(l, &e);
  e.door = "grpc";
  e.http_status = 0;
  e.grpc_status = "OK";
  e.error_type = NULL;
  e.user_agent = NULL;
  af_access_log_write(l, &e);
  af_access_log_close(l);
  json_t *v[2];
  cr_assert_eq(read_lines(v, 2), 2);
  static const char *const members[] = {"time",        "request_id", "door",      "operation",
                                        "account",     "region",     "status",    "error_type",
                                        "duration_us", "peer",       "bytes_in",  "bytes_out",
                                        "method",      "path",       "user_agent"};
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
    cr_expect_not_null(json_object_get(v[0], members[i]), "%s", members[i]);
  cr_expect_eq(json_object_size(v[0]), sizeof members / sizeof members[0]);
  cr_expect_eq(json_integer_value(json_object_get(v[0], "status")), 404);
  cr_expect_str_eq(json_string_value(json_object_get(v[0], "error_type")),
                   "ResourceNotFoundException");
  cr_expect_eq(json_integer_value(json_object_get(v[0], "duration_us")), 1234);
  cr_expect_str_eq(json_string_value(json_object_get(v[1], "status")), "OK");
  cr_expect(json_is_null(json_object_get(v[1], "error_type")));
  cr_expect(json_is_null(json_object_get(v[1], "user_agent")));
  regex_t rx;
  cr_assert_eq(regcomp(&rx, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                       REG_EXTENDED | REG_NOSUB),
               0);
  const char *t = json_string_value(json_object_get(v[0], "time"));
  cr_expect_eq(regexec(&rx, t, 0, NULL, 0), 0, "RFC 3339 UTC with milliseconds: %s", t);
  regfree(&rx);
  json_decref(v[0]);
  json_decref(v[1]);
}

Test(accesslog, what_a_caller_sends_stays_inside_its_string) {
  af_access_log *l = open_log(path);
  af_access_entry e = entry();
  static const char hostile[] = "/tags/a\"b\n{\"door\":\"x\"}\\%0A\xff\xfe";
  e.path = hostile;
  e.path_len = sizeof hostile - 1;
  e.user_agent = "ua\r\n\"injected\": 1";
  af_access_log_write(l, &e);
  af_access_log_close(l);
  json_t *v[2];
  cr_assert_eq(read_lines(v, 2), 1, "one line, whatever the input holds");
  cr_expect_str_eq(json_string_value(json_object_get(v[0], "path")),
                   "/tags/a\"b\n{\"door\":\"x\"}\\%0A\\xff\\xfe");
  cr_expect_str_eq(json_string_value(json_object_get(v[0], "user_agent")), "ua\r\n\"injected\": 1");
  cr_expect_str_eq(json_string_value(json_object_get(v[0], "door")), "aws");
  json_decref(v[0]);
}

Test(accesslog, a_huge_value_is_cut_and_the_line_stays_whole) {
  af_access_log *l = open_log(path);
  af_access_entry e = entry();
  char *big = malloc(100000);
  cr_assert_not_null(big);
  memset(big, '\n', 100000);
  e.path = big;
  e.path_len = 100000;
  e.user_agent = big;
  big[99999] = '\0';
  af_access_log_write(l, &e);
  af_access_log_close(l);
  free(big);
  json_t *v[1];
  cr_assert_eq(read_lines(v, 1), 1);
  cr_expect_lt(strlen(json_string_value(json_object_get(v[0], "path"))), 1024);
  json_decref(v[0]);
}

#define THREADS 8
#define LINES 2000

static void *writer(void *arg) {
  af_access_entry e = entry();
  char ua[600];
  memset(ua, 'a' + (int)(long)((void **)arg)[1], sizeof ua - 1);
  ua[sizeof ua - 1] = '\0';
  e.user_agent = ua;
  for (int i = 0; i < LINES; i++)
    af_access_log_write(((void **)arg)[0], &e);
  return NULL;
}

/* Lines from many threads at once never interleave: each parses, and each holds one thread's
 * user agent whole. */
Test(accesslog, lines_from_many_threads_are_whole) {
  af_access_log *l = open_log(path);
  pthread_t t[THREADS];
  void *args[THREADS][2];
  for (long i = 0; i < THREADS; i++) {
    args[i][0] = l;
    args[i][1] = (void *)i;
    cr_assert_eq(pthread_create(&t[i], NULL, writer, args[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  cr_expect_eq(af_access_log_dropped(l), 0);
  af_access_log_close(l);
  cr_expect_eq(read_lines(NULL, 0), THREADS * LINES);
}

/* A full disk: every line is dropped and counted; nothing blocks or crashes. */
Test(accesslog, a_full_disk_drops_and_counts) {
  af_access_log *l = open_log("/dev/full");
  af_access_entry e = entry();
  for (int i = 0; i < 5; i++)
    af_access_log_write(l, &e);
  cr_expect_eq(af_access_log_dropped(l), 5);
  af_access_log_close(l);
}

/* Standard output that is a pipe nobody reads: writes fail at once (the log's own descriptor is
 * non-blocking) and are counted, and the process's standard output is left blocking. */
Test(accesslog, a_pipe_nobody_reads_never_blocks) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  int saved = dup(STDOUT_FILENO);
  cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
  af_access_log *l = open_log("-");
  dup2(saved, STDOUT_FILENO);
  close(saved);
  cr_expect_eq(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0, "the inherited descriptor is unchanged");
  af_access_entry e = entry();
  for (int i = 0; i < 2000; i++) /* well past a pipe's 64 KiB */
    af_access_log_write(l, &e);
  uint64_t full = af_access_log_dropped(l);
  cr_expect_gt(full, 0);
  cr_expect_lt(full, 2000, "lines went through until the pipe was full");
  signal(SIGPIPE, SIG_IGN); /* as appflowd does */
  close(p[0]);              /* the reader is gone: EPIPE */
  af_access_log_write(l, &e);
  cr_expect_eq(af_access_log_dropped(l), full + 1);
  af_access_log_close(l);
  close(p[1]);
}

Test(accesslog, a_file_that_cannot_be_opened_says_why) {
  char msg[256];
  cr_expect_null(af_access_log_open("/nonexistent-dir/x.log", msg, sizeof msg));
  cr_expect_str_eq(msg, "/nonexistent-dir/x.log: No such file or directory");
  cr_expect_null(af_access_log_open(dir, msg, sizeof msg), "a directory");
  af_access_log_write(NULL, NULL); /* a NULL log is off */
  cr_expect_eq(af_access_log_dropped(NULL), 0);
}
