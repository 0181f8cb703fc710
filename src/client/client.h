/* The appflowd C client: calls appflow.v1.AppFlowService over gRPC core with nanopb messages
 * whose strings and lists the AWS model bounds are fixed arrays (gen/nanopb/appflow.options);
 * unbounded ones are callback fields. af_client_call allocates only the request's bytes.
 *
 * Errors: a call returns 0, or -1 with af_client_error filled: the gRPC status, the server's
 * message, and the AWS error type recovered from grpc-status-details-bin (google.rpc.ErrorInfo
 * reason), or "" when the server sent none.
 * Lifecycle: grpc_init() before af_client_new, grpc_shutdown() after af_client_free.
 * Thread-safety: one af_client is used by one thread at a time. */
#ifndef AF_CLIENT_CLIENT_H
#define AF_CLIENT_CLIENT_H

#include "appflow/v1/appflow.pb.h"
#include "common/compiler.h"

typedef struct af_client af_client;

typedef struct af_client_error {
  int grpc_code;      /* grpc_status_code */
  char type[64];      /* AWS error type, e.g. "ResourceNotFoundException"; "" if unknown */
  char message[2048]; /* the server's message, or what went wrong locally */
} af_client_error;

/* PEM texts for TLS, borrowed for the call to af_client_new. */
typedef struct af_client_tls {
  const char *root_certs;  /* CAs to trust; NULL: the system's */
  const char *cert_chain;  /* client certificate for mutual TLS, or NULL */
  const char *private_key; /* its key, or NULL */
} af_client_tls;

/* A client for target "HOST:PORT", plaintext when tls is NULL. NULL when out of memory;
 * connecting is lazy, so a bad or unreachable target (or a failed TLS handshake) shows as
 * UNAVAILABLE on the first call. */
af_client *af_client_new(const char *target, const af_client_tls *tls) AF_MUST_USE;
/* NULL is fine. */
void af_client_free(af_client *c);

/* Calls the unary RPC method ("/appflow.v1.AppFlowService/CreateFlow") with req, a nanopb
 * message of req_fields, and decodes the reply into resp (a message of resp_fields) with
 * pb_decode, which keeps the callbacks bound in resp. Callback fields of req are called twice
 * (to size the request, then to write it). The request is encoded before anything is sent: a
 * request that cannot be encoded is a local error (INVALID_ARGUMENT) and no call is made.
 * timeout_seconds > 0. Returns 0, or -1 with err filled. */
int af_client_call(af_client *c, const char *method, const pb_msgdesc_t *req_fields,
                   const void *req, const pb_msgdesc_t *resp_fields, void *resp,
                   double timeout_seconds, af_client_error *err) AF_MUST_USE;

/* Calls StopFlow. flow_name is NUL-terminated, at most 256 bytes (longer is a local
 * INVALID_ARGUMENT error). timeout_seconds > 0. On success fills resp and returns 0. */
int af_client_stop_flow(af_client *c, const char *flow_name, double timeout_seconds,
                        appflow_v1_StopFlowResponse *resp, af_client_error *err) AF_MUST_USE;

#endif
