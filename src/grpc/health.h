/* grpc.health.v1.Health as appflowd answers it: the whole server ("") and
 * appflow.v1.AppFlowService are SERVING until shutdown begins, then NOT_SERVING; any other
 * service name is unknown (Check: NOT_FOUND; Watch: SERVICE_UNKNOWN, as the protocol says).
 * Serialized messages in and out, so the gRPC door only moves bytes.
 *
 * Ownership: outputs live in the arena. Thread-safety: pure, reentrant. */
#ifndef AF_GRPC_HEALTH_H
#define AF_GRPC_HEALTH_H

#include "common/compiler.h"
#include "flows/arena.h"
#include "flows/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes a HealthCheckRequest and sets *status (a ServingStatus value) for its service given
 * whether the server is serving. For an unknown service: with `watch` false returns
 * AF_ERR_RESOURCE_NOT_FOUND (Check's answer), with `watch` true sets SERVICE_UNKNOWN.
 * AF_ERR_SERIALIZATION for an undecodable request. */
af_err af_health_status(const uint8_t *req, size_t len, bool serving, bool watch, af_arena *arena,
                        int *status, af_error *err) AF_MUST_USE;

/* Encodes HealthCheckResponse{status} into the arena. AF_ERR_INTERNAL_SERVER when it is full. */
af_err af_health_response(int status, af_arena *arena, uint8_t **out, size_t *len,
                          af_error *err) AF_MUST_USE;

#endif
