/* src/grpc/server.c: starting the gRPC door when a completion-queue thread cannot start - the
 * start fails saying why in pthread_create's own words, and whatever had started is stopped
 * (the door's serving is covered end to end by tests/e2e). */
#include "thread_fail.h" /* first: it defines pthread_create */

#include "grpc/server.h"

#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>

static af_flows *svc;

static void setup(void) {
  grpc_init();
  af_error err;
  svc = af_flows_new(&(af_flows_config){0}, &err);
  cr_assert_not_null(svc, "%s", err.message);
}

static void teardown(void) {
  af_flows_free(svc);
  grpc_shutdown();
}

TestSuite(grpc_server, .init = setup, .fini = teardown);

Test(grpc_server, a_thread_that_cannot_start_fails_the_start_saying_why) {
  char want[256];
  snprintf(want, sizeof want, "cannot start thread: %s", thread_fail_reason());
  const int threads = 3;
  for (int skip = 0; skip < threads; skip++) { /* the first thread, or one after others run */
    af_error err = {AF_OK, ""};
    thread_fail_arm(skip, 1);
    af_grpc_server *s = af_grpc_server_start(
        &(af_grpc_config){.listen = "127.0.0.1:0", .threads = threads}, svc, &err);
    thread_fail_disarm();
    cr_expect_null(s, "thread %d refused", skip);
    cr_expect_eq(err.code, AF_ERR_INTERNAL_SERVER);
    cr_expect_str_eq(err.message, want);
    cr_expect_eq(thread_fail_calls(), skip + 1);
    af_grpc_server_stop(s, 0);
  }
  af_error err;
  af_grpc_server *s =
      af_grpc_server_start(&(af_grpc_config){.listen = "127.0.0.1:0", .threads = 2}, svc, &err);
  cr_expect_not_null(s, "%s", err.message);
  af_grpc_server_stop(s, 0);
}
