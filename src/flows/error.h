/* The one error model of appflowd: every failure a caller can see is one af_err, defined once
 * in AF_ERR_MAP with its AWS error type, HTTP status and gRPC status code, so both doors report
 * the same failure the same way (docs/ARCHITECTURE.md, "One error model").
 *
 * Thread-safety: all functions are pure or touch only the af_error they are given. */
#ifndef AF_FLOWS_ERROR_H
#define AF_FLOWS_ERROR_H

#include <stddef.h>

/* gRPC status codes (google.rpc.Code). The gRPC door checks at compile time that these equal
 * grpc_status_code, so the core need not include grpc.h. */
enum af_rpc_code {
  AF_RPC_OK = 0,
  AF_RPC_INVALID_ARGUMENT = 3,
  AF_RPC_DEADLINE_EXCEEDED = 4,
  AF_RPC_NOT_FOUND = 5,
  AF_RPC_ALREADY_EXISTS = 6,
  AF_RPC_PERMISSION_DENIED = 7,
  AF_RPC_RESOURCE_EXHAUSTED = 8,
  AF_RPC_FAILED_PRECONDITION = 9,
  AF_RPC_ABORTED = 10,
  AF_RPC_UNIMPLEMENTED = 12,
  AF_RPC_INTERNAL = 13,
  AF_RPC_UNAVAILABLE = 14
};

/* XX(name, AWS error type, HTTP status, gRPC code). SERIALIZATION is a request that cannot be
 * decoded at all (bad protobuf or JSON), the type AWS's REST-JSON services use for it;
 * UNKNOWN_OPERATION, METHOD_NOT_ALLOWED and REQUEST_TOO_LARGE are the doors' own refusals
 * (no such method or path, a known path with the wrong HTTP method, a body over the limit: a
 * ValidationException, AppFlow's type for a request it cannot take, with HTTP's 413);
 * NOT_IMPLEMENTED is an operation of AppFlow's model that appflowd does not serve yet;
 * UNAVAILABLE is a server on its way down. REQUEST_TIMEOUT is a call whose caller's deadline
 * (gRPC's, or the AWS door's --http-request-timeout) ran out before it was answered: the type
 * and status the AWS SDKs retry (RequestTimeoutException by name in aws-sdk-go-v2's,
 * botocore's standard and the JavaScript SDK's retry rules; 504 by status in those and in
 * botocore's legacy mode, which retries no 408). */
#define AF_ERR_MAP(XX)                                                                             \
  XX(VALIDATION, "ValidationException", 400, AF_RPC_INVALID_ARGUMENT)                              \
  XX(SERIALIZATION, "SerializationException", 400, AF_RPC_INVALID_ARGUMENT)                        \
  XX(UNSUPPORTED_OPERATION, "UnsupportedOperationException", 400, AF_RPC_FAILED_PRECONDITION)      \
  XX(RESOURCE_NOT_FOUND, "ResourceNotFoundException", 404, AF_RPC_NOT_FOUND)                       \
  XX(CONFLICT, "ConflictException", 409, AF_RPC_ABORTED)                                           \
  XX(NAME_TAKEN, "ConflictException", 409, AF_RPC_ALREADY_EXISTS)                                  \
  XX(SERVICE_QUOTA_EXCEEDED, "ServiceQuotaExceededException", 402, AF_RPC_RESOURCE_EXHAUSTED)      \
  XX(THROTTLING, "ThrottlingException", 429, AF_RPC_UNAVAILABLE)                                   \
  XX(ACCESS_DENIED, "AccessDeniedException", 403, AF_RPC_PERMISSION_DENIED)                        \
  XX(UNAVAILABLE, "ServiceUnavailableException", 503, AF_RPC_UNAVAILABLE)                          \
  XX(REQUEST_TIMEOUT, "RequestTimeoutException", 504, AF_RPC_DEADLINE_EXCEEDED)                    \
  XX(UNKNOWN_OPERATION, "UnknownOperationException", 404, AF_RPC_UNIMPLEMENTED)                    \
  XX(NOT_IMPLEMENTED, "NotImplementedException", 501, AF_RPC_UNIMPLEMENTED)                        \
  XX(METHOD_NOT_ALLOWED, "MethodNotAllowedException", 405, AF_RPC_UNIMPLEMENTED)                   \
  XX(REQUEST_TOO_LARGE, "ValidationException", 413, AF_RPC_RESOURCE_EXHAUSTED)                     \
  XX(MISSING_AUTHENTICATION_TOKEN, "MissingAuthenticationTokenException", 403,                     \
     AF_RPC_PERMISSION_DENIED)                                                                     \
  XX(INCOMPLETE_SIGNATURE, "IncompleteSignatureException", 400, AF_RPC_INVALID_ARGUMENT)           \
  XX(UNRECOGNIZED_CLIENT, "UnrecognizedClientException", 403, AF_RPC_PERMISSION_DENIED)            \
  XX(INVALID_SIGNATURE, "InvalidSignatureException", 403, AF_RPC_PERMISSION_DENIED)                \
  XX(INTERNAL_SERVER, "InternalServerException", 500, AF_RPC_INTERNAL)

typedef enum af_err {
  AF_OK = 0,
#define XX(name, type, http, rpc) AF_ERR_##name,
  AF_ERR_MAP(XX)
#undef XX
} af_err;

/* Longest message a caller sees: room for several validation errors, each quoting a value of
 * up to 256 characters escaped 4 bytes a byte; longer messages are cut at a whole error. */
#define AF_ERROR_MESSAGE_MAX 4096

/* An error as a caller sees it: its kind and a message a person can act on. Lives on the
 * stack of whoever handles one request; owns no heap memory. */
typedef struct af_error {
  af_err code;
  char message[AF_ERROR_MESSAGE_MAX];
} af_error;

/* Starts *err as code with an empty message. Not `= {code, ""}`: C fills the rest of the
 * message, 4 KiB zeroed, which on a request path cost more than most of the request's work. */
static inline void af_error_start(af_error *err, af_err code) {
  err->code = code;
  err->message[0] = '\0';
}

/* The AWS error type ("ValidationException"); "" for AF_OK. Never NULL. */
const char *af_err_type(af_err code);
/* The HTTP status of the AWS REST-JSON door; 200 for AF_OK. */
int af_err_http_status(af_err code);
/* The gRPC status code; AF_RPC_OK for AF_OK. */
enum af_rpc_code af_err_rpc_code(af_err code);

/* Sets err->code and formats err->message (truncated to fit). Returns code, so a failing
 * function can `return af_error_set(err, ...)`. err may be NULL (then only returns code). */
af_err af_error_set(af_error *err, af_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes src[0..len) into dst (size dstsz, always NUL-terminated) with every byte outside
 * printable ASCII, and the backslash, as \xNN, so untrusted names can be quoted in messages
 * and logs. Returns dst. */
char *af_escape(char *dst, size_t dstsz, const char *src, size_t len);

#endif
