/* The gRPC face of an af_error: status code, message, and grpc-status-details-bin holding a
 * google.rpc.Status whose details carry google.rpc.ErrorInfo{reason: <AWS error type>, domain:
 * "appflow.amazonaws.com"}, so any gRPC client can recover the AWS error type.
 *
 * Ownership: the encoded bytes live in the arena. Thread-safety: pure, reentrant. */
#ifndef AF_GRPC_STATUS_H
#define AF_GRPC_STATUS_H

#include "common/compiler.h"
#include "flows/arena.h"
#include "flows/error.h"

#include <stddef.h>
#include <stdint.h>

#define AF_ERROR_DOMAIN "appflow.amazonaws.com"

/* Encodes the google.rpc.Status for err into the arena. Returns 0, or -1 when out of memory. */
int af_grpc_status_details(const af_error *err, af_arena *arena, uint8_t **out,
                           size_t *len) AF_MUST_USE;

#endif
