/* The AWS REST-JSON door without sockets: one request (method, request-target, headers, body)
 * in, one reply out. The routes are AppFlow's AWS model's (af_model_operations: each
 * operation's method and requestUri, also each RPC's google.api.http option); the body is
 * transcoded from the model's tables and members carried by the path, query or headers are set
 * by their location names, so a new operation needs no code here, only its RPC in the service.
 *
 * Ownership: the reply's body lives in the arena. Errors: every failure becomes an error reply
 * (status, AWS error type, {"message": ...}); af_bridge_handle itself cannot fail.
 * Thread-safety: reentrant; svc as af_flows allows (any thread). A reply may be completed on
 * another thread (a database store's), through the done callback. */
#ifndef AF_BRIDGE_ROUTE_H
#define AF_BRIDGE_ROUTE_H

#include "appflow_model.h"
#include "bridge/transcode.h"
#include "common/compiler.h"
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
  /* For metrics and the access log: the operation the request was routed to (NULL: none, it
   * was answered before it matched one) and the outcome (AF_OK, or the error replied). */
  const af_model_operation *op;
  af_err code;
} af_bridge_reply;

#define AF_BRIDGE_MAX_LABELS 2  /* labels one path template holds */
#define AF_BRIDGE_MAX_QUERY 4   /* query-string members one operation's input holds */
#define AF_BRIDGE_MAX_HEADERS 4 /* header members one operation's input holds */
#define AF_BRIDGE_MAX_BINDINGS (AF_BRIDGE_MAX_LABELS + AF_BRIDGE_MAX_QUERY + AF_BRIDGE_MAX_HEADERS)

/* What a request-target names: its operation and the members its path and query carry. */
typedef struct af_bridge_match {
  const af_model_operation *op; /* an entry of af_model_operations */
  af_bridge_binding bindings[AF_BRIDGE_MAX_BINDINGS];
  size_t nbindings;
  const char *allow; /* with AF_ERR_METHOD_NOT_ALLOWED: the path's methods, "DELETE, GET, POST" */
} af_bridge_match;

/* Finds the operation of method and target, the request-target exactly as sent (path, then an
 * optional ?query, still percent-encoded), among af_model_operations (each one's method and
 * uri template; a template's segments are literals or {label}s, a label matching exactly one
 * non-empty segment), and decodes its labels (bound as AF_MODEL_URI by the label's name) and
 * the query parameters its input's AF_MODEL_QUERY members name (by location_name; every one is
 * bound, with no values when absent). Labels decode %XX only ('+' stays '+'); query names and
 * values also read '+' as a space, as AWS's servers do (botocore itself sends a space as %20).
 * Query parameters the operation does not bind are ignored, as AWS ignores them. Errors:
 * AF_ERR_UNKNOWN_OPERATION when no template fits the path; AF_ERR_METHOD_NOT_ALLOWED (m->allow
 * set) when templates fit but none with method; AF_ERR_SERIALIZATION when a label or bound value
 * has a bad %-escape or decodes to a NUL or to bytes that are not UTF-8; AF_ERR_INTERNAL_SERVER
 * when the arena is exhausted or an operation binds more than the limits above. Decoded values
 * live in the arena. */
af_err af_bridge_match_route(const char *method, const char *target, af_arena *arena,
                             af_bridge_match *m, af_error *err) AF_MUST_USE;

/* The request's headers, for members the model carries in a header (AF_MODEL_HEADER): get
 * returns the value of the header name (case-insensitive), or NULL when the request has none.
 * The value must stay valid until the reply's done has run. */
typedef struct af_bridge_context {
  const char *(*get)(void *ctx, const char *name); /* a request header by name, or NULL */
  void *ctx;
  const char *principal; /* the caller's principal ARN (SigV4), NULL: the account's root */
  const char *account;   /* the account and region the request acts in (SigV4's), NULL: the */
  const char *region;    /* service's (--account, --region) */
  int64_t deadline_ms;   /* af_store_now_ms() by which the request must be answered; 0: none */
} af_bridge_context;

/* Called once *out is filled; the caller must not touch arena or out before. */
typedef void (*af_bridge_done)(void *ctx);

/* Answers one request into *out, then calls done(ctx) - before returning, or later on a store
 * thread; target as for af_bridge_match_route. The operation runs as the service's RPC of the
 * same name (af_flows_rpc_named); one the service lacks, or has no handler for, is answered
 * 501 NotImplementedException, "appflowd does not implement <Operation> yet". The body is read
 * with the operation's input structure, members bound to the path, query and headers (headers
 * may be NULL: no header members) are set from the request, and the response is written with
 * its output structure (transcode.h). An empty body is {}, whatever the method; a body sent
 * with GET or DELETE is read like any other. method, target, headers and body must stay valid
 * until done runs; body (NULL when body_len is 0) is the request's to rewrite: its strings are
 * read in place (af_json_read_in_place), so the door keeps no copy and makes none. */
void af_bridge_handle(af_flows *svc, const char *method, const char *target,
                      const af_bridge_context *headers, char *body, size_t body_len,
                      af_arena *arena, af_bridge_reply *out, af_bridge_done done, void *ctx);
/* af_bridge_handle, waiting for the reply, on a copy of body in the arena (tests and fuzzers,
 * whose bodies may be literals; never on a door thread). */
void af_bridge_handle_sync(af_flows *svc, const char *method, const char *target,
                           const af_bridge_context *headers, const char *body, size_t body_len,
                           af_arena *arena, af_bridge_reply *out);

/* Fills out with the error reply for err: its status and type, body {"message": "..."}. */
void af_bridge_error_reply(const af_error *err, af_arena *arena, af_bridge_reply *out);

/* s[0..n) percent-decoded into *out in the arena ('+' a space when plus_space),
 * NUL-terminated. AF_ERR_SERIALIZATION when it has a bad escape, decodes to a NUL or is not
 * UTF-8; what names the part for the message ("path's label {resourceArn}"). */
af_err af_bridge_percent_decode(const char *s, size_t n, bool plus_space, const char *what,
                                af_arena *arena, const char **out, af_error *err) AF_MUST_USE;

#endif
