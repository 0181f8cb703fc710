/* The AWS REST-JSON door without sockets: one request (method, request-target, body) in, one
 * reply out. Routes map AWS's HTTP routes (the requestUri of AppFlow's AWS model, also each
 * RPC's google.api.http option) to the service's RPCs; the body is transcoded generically and
 * members carried by the path or query are set by name, so a new operation is one row in the
 * route table.
 *
 * Ownership: the reply's body lives in the arena. Errors: every failure becomes an error reply
 * (status, AWS error type, {"message": ...}); af_bridge_handle itself cannot fail.
 * Thread-safety: reentrant; svc as af_flows allows (any thread). A reply may be completed on
 * another thread (a database store's), through the done callback. */
#ifndef AF_BRIDGE_ROUTE_H
#define AF_BRIDGE_ROUTE_H

#include "bridge/transcode.h"
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

#define AF_BRIDGE_MAX_QUERY 2  /* query parameters one route binds */
#define AF_BRIDGE_MAX_LABELS 2 /* labels one path template holds */

/* A query parameter that carries a request member. */
typedef struct af_bridge_query {
  const char *name;   /* as on the wire: "tagKeys" */
  const char *member; /* AWS member name */
} af_bridge_query;

/* One AWS route. A template's segments are literals or {label}s; a label matches exactly one
 * non-empty segment, percent-decoded, and sets the member its name names. */
typedef struct af_bridge_route {
  const char *method;                         /* "POST" */
  const char *path;                           /* template: "/tags/{resourceArn}" */
  const char *rpc;                            /* af_rpc name: "TagResource" */
  af_bridge_query query[AF_BRIDGE_MAX_QUERY]; /* unused entries have a NULL name */
} af_bridge_route;

/* Every route the door serves; af_bridge_route_count entries. Read-only. */
extern const af_bridge_route af_bridge_routes[];
extern const size_t af_bridge_route_count;

/* What a request-target names: its route and the members its path and query carry. */
typedef struct af_bridge_match {
  const af_bridge_route *route;
  af_bridge_binding bindings[AF_BRIDGE_MAX_LABELS + AF_BRIDGE_MAX_QUERY];
  size_t nbindings;
  const char *allow; /* with AF_ERR_METHOD_NOT_ALLOWED: the path's methods, "DELETE, GET, POST" */
} af_bridge_match;

/* Finds the route of method and target, the request-target exactly as sent (path, then an
 * optional ?query, still percent-encoded), and decodes its labels and bound query parameters.
 * Labels decode %XX only ('+' stays '+'); query names and values also read '+' as a space, as
 * AWS's servers do (botocore itself sends a space as %20). Query parameters the route does not
 * bind are ignored, as AWS ignores them. Errors: AF_ERR_UNKNOWN_OPERATION when no template fits
 * the path; AF_ERR_METHOD_NOT_ALLOWED (m->allow set) when templates fit but none with method;
 * AF_ERR_SERIALIZATION when a label or bound value has a bad %-escape or decodes to a NUL or to
 * bytes that are not UTF-8; AF_ERR_INTERNAL_SERVER when the arena is exhausted. Decoded values
 * live in the arena. */
af_err af_bridge_match_route(const char *method, const char *target, af_arena *arena,
                             af_bridge_match *m, af_error *err);

/* Called once *out is filled; the caller must not touch arena or out before. */
typedef void (*af_bridge_done)(void *ctx);

/* Answers one request into *out, then calls done(ctx) - before returning, or later on a store
 * thread; target as for af_bridge_match_route. An empty body is {}, whatever the method; a body
 * sent with GET or DELETE is read like any other. method, target and body must stay valid until
 * done runs. */
void af_bridge_handle(af_flows *svc, const char *method, const char *target, const char *body,
                      size_t body_len, af_arena *arena, af_bridge_reply *out, af_bridge_done done,
                      void *ctx);
/* af_bridge_handle, waiting for the reply (tests and fuzzers; never on a door thread). */
void af_bridge_handle_sync(af_flows *svc, const char *method, const char *target, const char *body,
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
