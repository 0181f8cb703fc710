/* The AWS REST-JSON door without sockets: one request (method, path, body) in, one reply out.
 * Routes map AWS's HTTP routes to the service's RPCs; the body is transcoded generically, so
 * a new operation is one row in the route table.
 *
 * Ownership: the reply's body lives in the arena. Errors: every failure becomes an error reply
 * (status, AWS error type, {"message": ...}); af_bridge_handle itself cannot fail.
 * Thread-safety: reentrant; svc as af_flows allows (any thread). */
#ifndef AF_BRIDGE_ROUTE_H
#define AF_BRIDGE_ROUTE_H

#include "flows/arena.h"
#include "flows/error.h"
#include "flows/service.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_bridge_reply {
  int status;             /* HTTP status */
  const char *error_type; /* AWS error type for x-amzn-ErrorType; NULL on success */
  const char *allow;      /* methods for the Allow header of a 405; else NULL */
  const char *body;       /* JSON text */
  size_t body_len;
  bool close; /* ask the client to close the connection (shutdown) */
} af_bridge_reply;

/* Answers one request. path excludes the query string. */
void af_bridge_handle(af_flows *svc, const char *method, const char *path, const char *body,
                      size_t body_len, af_arena *arena, af_bridge_reply *out);

/* Fills out with the error reply for err: its status and type, body {"message": "..."}. */
void af_bridge_error_reply(const af_error *err, af_arena *arena, af_bridge_reply *out);

/* Request ids as AWS's x-amzn-RequestId: random (version 4) UUIDs from a generator seeded
 * once from the kernel, so a request costs no system call. Not thread-safe: one generator per
 * connection (or thread). */
typedef struct af_bridge_ids {
  uint64_t s[2];
} af_bridge_ids;

/* Seeds g from the kernel's random source. */
void af_bridge_ids_init(af_bridge_ids *g);
/* Writes the next UUID (36 characters and a NUL) into out. */
void af_bridge_request_id(af_bridge_ids *g, char out[37]);

#endif
