/* The error table must say exactly what docs/ARCHITECTURE.md's "One error model" table says. */
#include "flows/error.h"

#include <criterion/criterion.h>
#include <string.h>

static void expect(af_err e, const char *type, int http, enum af_rpc_code rpc) {
  cr_expect_str_eq(af_err_type(e), type);
  cr_expect_eq(af_err_http_status(e), http, "%s: http %d", type, af_err_http_status(e));
  cr_expect_eq(af_err_rpc_code(e), rpc, "%s: rpc %d", type, (int)af_err_rpc_code(e));
}

Test(error, table_matches_design) {
  expect(AF_ERR_VALIDATION, "ValidationException", 400, AF_RPC_INVALID_ARGUMENT);
  expect(AF_ERR_UNSUPPORTED_OPERATION, "UnsupportedOperationException", 400,
         AF_RPC_FAILED_PRECONDITION);
  expect(AF_ERR_RESOURCE_NOT_FOUND, "ResourceNotFoundException", 404, AF_RPC_NOT_FOUND);
  expect(AF_ERR_CONFLICT, "ConflictException", 409, AF_RPC_ABORTED);
  expect(AF_ERR_NAME_TAKEN, "ConflictException", 409, AF_RPC_ALREADY_EXISTS);
  expect(AF_ERR_SERVICE_QUOTA_EXCEEDED, "ServiceQuotaExceededException", 402,
         AF_RPC_RESOURCE_EXHAUSTED);
  expect(AF_ERR_THROTTLING, "ThrottlingException", 429, AF_RPC_UNAVAILABLE);
  expect(AF_ERR_ACCESS_DENIED, "AccessDeniedException", 403, AF_RPC_PERMISSION_DENIED);
  expect(AF_ERR_INTERNAL_SERVER, "InternalServerException", 500, AF_RPC_INTERNAL);
  expect(AF_ERR_SERIALIZATION, "SerializationException", 400, AF_RPC_INVALID_ARGUMENT);
  expect(AF_ERR_UNKNOWN_OPERATION, "UnknownOperationException", 404, AF_RPC_UNIMPLEMENTED);
  expect(AF_ERR_METHOD_NOT_ALLOWED, "MethodNotAllowedException", 405, AF_RPC_UNIMPLEMENTED);
  expect(AF_ERR_NOT_IMPLEMENTED, "NotImplementedException", 501, AF_RPC_UNIMPLEMENTED);
  /* AppFlow's type for a request it cannot take, with HTTP's status for a body too large. */
  expect(AF_ERR_REQUEST_TOO_LARGE, "ValidationException", 413, AF_RPC_RESOURCE_EXHAUSTED);
  expect(AF_ERR_UNAVAILABLE, "ServiceUnavailableException", 503, AF_RPC_UNAVAILABLE);
  /* The caller's deadline ran out: the type and status the AWS SDKs retry. */
  expect(AF_ERR_REQUEST_TIMEOUT, "RequestTimeoutException", 504, AF_RPC_DEADLINE_EXCEEDED);
  expect(AF_OK, "", 200, AF_RPC_OK);
}

Test(error, set_formats_and_truncates) {
  af_error err;
  cr_expect_eq(af_error_set(&err, AF_ERR_CONFLICT, "flow %s is %d", "x", 3), AF_ERR_CONFLICT);
  cr_expect_eq(err.code, AF_ERR_CONFLICT);
  cr_expect_str_eq(err.message, "flow x is 3");
  char big[AF_ERROR_MESSAGE_MAX * 2];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  af_error_set(&err, AF_ERR_VALIDATION, "%s", big);
  cr_expect_eq(strlen(err.message), AF_ERROR_MESSAGE_MAX - 1);
  cr_expect_eq(af_error_set(NULL, AF_ERR_THROTTLING, "ignored"), AF_ERR_THROTTLING);
}

Test(error, escape_quotes_untrusted_bytes) {
  char out[64];
  cr_expect_str_eq(af_escape(out, sizeof out, "ok_name", 7), "ok_name");
  cr_expect_str_eq(af_escape(out, sizeof out, "a\0b\n\\", 5), "a\\x00b\\x0a\\x5c");
  cr_expect_str_eq(af_escape(out, sizeof out, "fl\xc3\xb6w", 5), "fl\\xc3\\xb6w");
  /* Never splits an escape, always terminates. */
  cr_expect_str_eq(af_escape(out, 6, "ab\x01", 3), "ab");
  cr_expect_str_eq(af_escape(out, 1, "abc", 3), "");
}
