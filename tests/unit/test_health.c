#include "grpc/health.h"

#include "grpc/health/v1/health.pb-c.h"

#include <criterion/criterion.h>
#include <string.h>

#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

static af_err status_of(const char *service, bool serving, bool watch, int *status, af_error *err,
                        af_arena *a) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)service;
  uint8_t buf[512];
  size_t n = grpc__health__v1__health_check_request__pack(&req, buf);
  return af_health_status(buf, n, serving, watch, a, status, err);
}

Test(health, known_services_follow_serving) {
  af_arena a;
  af_arena_init(&a);
  af_error err;
  int st = -1;
  cr_expect_eq(status_of("", true, false, &st, &err, &a), AF_OK);
  cr_expect_eq(st, ST(SERVING));
  cr_expect_eq(status_of("appflow.v1.AppFlowService", true, true, &st, &err, &a), AF_OK);
  cr_expect_eq(st, ST(SERVING));
  cr_expect_eq(status_of("appflow.v1.AppFlowService", false, false, &st, &err, &a), AF_OK);
  cr_expect_eq(st, ST(NOT_SERVING));
  af_arena_destroy(&a);
}

Test(health, unknown_service) {
  af_arena a;
  af_arena_init(&a);
  af_error err;
  int st = -1;
  cr_expect_eq(status_of("nope.Service", true, false, &st, &err, &a), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect(strstr(err.message, "unknown service nope.Service") != NULL, "%s", err.message);
  cr_expect_eq(status_of("nope.Service", true, true, &st, &err, &a), AF_OK);
  cr_expect_eq(st, ST(SERVICE_UNKNOWN));
  af_arena_destroy(&a);
}

Test(health, bad_request_and_response_encoding) {
  af_arena a;
  af_arena_init(&a);
  af_error err;
  int st;
  cr_expect_eq(af_health_status((const uint8_t *)"\x0a\x05"
                                                 "ab",
                                4, true, false, &a, &st, &err),
               AF_ERR_SERIALIZATION);
  uint8_t *out;
  size_t len;
  cr_assert_eq(af_health_response(ST(NOT_SERVING), &a, &out, &len, &err), AF_OK);
  cr_expect_eq(len, 2);
  cr_expect_arr_eq(out, "\x08\x02", 2); /* status = NOT_SERVING (2) */
  af_arena_destroy(&a);
}
