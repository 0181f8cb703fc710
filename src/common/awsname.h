/* Names for people: AWS spellings of protobuf names and gRPC code names, shared by the server's AWS
 * door and the client: an enum value FLOW_STATUS_ON_DEMAND of prefix FLOW_STATUS_ is "OnDemand" on
 * the AWS wire. Thread-safety: pure functions. */
#ifndef AF_COMMON_AWSNAME_H
#define AF_COMMON_AWSNAME_H

#include "common/compiler.h"

#include <stddef.h>

/* Writes the AWS string of enum value `value` (e.g. "FLOW_STATUS_SUSPENDED") whose values all
 * start with `prefix` ("FLOW_STATUS_") into dst: the rest in PascalCase ("Suspended").
 * Returns 0, or -1 when value lacks the prefix or dst (dstsz bytes) is too small. */
int af_aws_enum_string(const char *prefix, const char *value, char *dst, size_t dstsz) AF_MUST_USE;

/* The name of a gRPC status code ("NOT_FOUND"), for people and logs; "UNKNOWN" for a number
 * gRPC does not define. Never NULL. */
const char *af_rpc_code_name(int code);

#endif
