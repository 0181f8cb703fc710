#include "grpc/health.h"

#include "grpc/decode.h"
#include "grpc/health/v1/health.pb-c.h"

#include <string.h>

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

/* "" is the server as a whole. */
static const char *const services[] = {"", "appflow.v1.AppFlowService"};

static bool known(const char *service) {
  for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
    if (strcmp(services[i], service) == 0)
      return true;
  }
  return false;
}

af_err af_health_status(const uint8_t *req, size_t len, bool serving, bool watch, af_arena *arena,
                        int *status, af_error *err) {
  ProtobufCMessage *m;
  af_err rc =
      af_grpc_decode(&grpc__health__v1__health_check_request__descriptor, req, len, arena, &m, err);
  if (rc != AF_OK)
    return rc;
  const char *service = ((Grpc__Health__V1__HealthCheckRequest *)m)->service;
  if (known(service)) {
    *status = serving ? SERVING : NOT_SERVING;
    return AF_OK;
  }
  if (watch) {
    *status = SERVICE_UNKNOWN;
    return AF_OK;
  }
  char esc[300];
  return af_error_set(err, AF_ERR_RESOURCE_NOT_FOUND,
                      "unknown service %s: appflowd reports on \"\" and "
                      "appflow.v1.AppFlowService",
                      af_escape(esc, sizeof esc, service, strlen(service)));
}

af_err af_health_response(int status, af_arena *arena, uint8_t **out, size_t *len, af_error *err) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
  *len = grpc__health__v1__health_check_response__get_packed_size(&resp);
  *out = af_arena_alloc(arena, *len);
  if (*out == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  grpc__health__v1__health_check_response__pack(&resp, *out);
  return AF_OK;
}
