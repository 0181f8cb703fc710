/* src/bridge/http.c: starting the AWS door when its watchdog thread (which holds
 * --http-timeout) cannot start - the start fails saying why in pthread_create's own words,
 * instead of serving without the limit, and the daemon it had started is stopped (the door's
 * serving is covered end to end by tests/e2e). */
#include "thread_fail.h" /* first: it defines pthread_create */

#include "bridge/http.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(http, a_watchdog_that_cannot_start_fails_the_start_saying_why) {
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &err);
  cr_assert_not_null(svc, "%s", err.message);
  af_bridge_config cfg = {.listen = "127.0.0.1:0", .threads = 2};
  thread_fail_arm(0, 1);
  af_bridge_server *s = af_bridge_server_start(&cfg, svc, &err);
  thread_fail_disarm();
  cr_expect_null(s);
  cr_expect_eq(thread_fail_calls(), 1, "the watchdog was asked for once");
  char want[256];
  snprintf(want, sizeof want, "cannot start the AWS door's watchdog thread: %s",
           thread_fail_reason());
  cr_expect_str_eq(err.message, want);
  af_bridge_server_stop(s, 0);
  s = af_bridge_server_start(&cfg, svc, &err);
  cr_expect_not_null(s, "%s", err.message);
  af_bridge_server_stop(s, 0);
  af_flows_free(svc);
}
