/* AWS REST-JSON <-> protobuf-c messages, for any message: walks protobuf-c's runtime
 * descriptors, so a new RPC needs no JSON code of its own.
 *
 * Mapping (AWS "restJson1" as the AWS CLI and SDKs speak it):
 * - member name = lowerCamelCase of the proto field name (flow_name -> flowName);
 * - enums are AWS strings: the value name minus the enum's prefix, in PascalCase
 *   (FLOW_STATUS_SUSPENDED -> "Suspended", TRIGGER_TYPE_ON_DEMAND -> "OnDemand"); the prefix is
 *   the enum's short name in UPPER_SNAKE_CASE plus "_" (FlowStatus -> FLOW_STATUS_);
 * - integers and floats are JSON numbers, bools JSON booleans, bytes base64 strings, nested
 *   messages objects, repeated fields arrays, map fields objects;
 * - google.protobuf.Timestamp is epoch seconds (a JSON number, fractions allowed);
 *   google.protobuf.Struct / Value / ListValue are any JSON object / value / array;
 * - JSON null or an absent member leaves the field at its default (except a
 *   google.protobuf.Value field, where null is null_value); unknown members are ignored;
 * - on output, fields at their proto3 default (0, "", false, UNSPECIFIED, empty) are left
 *   out, as AWS leaves out members it does not set.
 *
 * Errors: AF_ERR_SERIALIZATION for a body that is not JSON, not an object, has duplicate keys,
 * nests a known member deeper than 64 (unknown members are skipped whole, within jansson's
 * own limit of 2048), or has a member of the wrong JSON type, a number out of its field's
 * range or with a fraction for an integer, bad base64, a bad map key, or two members of one
 * oneof (the message names the member); AF_ERR_VALIDATION for a string that is not one of the
 * enum's values (AWS's wording, listing the allowed values). Writing fails with
 * AF_ERR_INTERNAL_SERVER for what JSON cannot hold (NaN, infinities, invalid UTF-8, timestamps
 * out of range, nesting deeper than 64) and when the arena is exhausted.
 * Ownership: messages, strings and output text live in the arena.
 * Thread-safety: pure functions over their arguments; reentrant. */
#ifndef AF_BRIDGE_TRANSCODE_H
#define AF_BRIDGE_TRANSCODE_H

#include "flows/arena.h"
#include "flows/error.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Parses body[0..len) (an empty body is {}) into a new message of type desc. */
af_err af_bridge_json_to_message(const ProtobufCMessageDescriptor *desc, const char *body,
                                 size_t len, af_arena *arena, ProtobufCMessage **out,
                                 af_error *err);

/* Writes msg as compact JSON text (NUL-terminated, *len bytes without the NUL). */
af_err af_bridge_message_to_json(const ProtobufCMessage *msg, af_arena *arena, char **out,
                                 size_t *len, af_error *err);

/* A request member carried by the HTTP request line instead of the body: a path label
 * (/tags/{resourceArn}) or a query parameter (?tagKeys=a&tagKeys=b), already percent-decoded. */
typedef struct af_bridge_binding {
  const char *member;        /* AWS member name: "resourceArn" */
  const char *const *values; /* NUL-terminated UTF-8, in request order */
  size_t nvalues;
} af_bridge_binding;

/* Sets the bound members of msg (decoded by af_bridge_json_to_message) after its body: a
 * repeated string member takes every value, a string member the first (AWS's servers also
 * keep the first of a repeated parameter), and no value leaves the member empty. A bound
 * member is read from its binding only, as AWS's restJson1 does: whatever the body held for it
 * is replaced. The values are borrowed: they must live as long as msg (the same arena).
 * AF_ERR_INTERNAL_SERVER when msg has no such member or it is not a string or a repeated
 * string outside any oneof (a route table that disagrees with the proto), or the arena is
 * exhausted. */
af_err af_bridge_bind_members(ProtobufCMessage *msg, const af_bridge_binding *bindings, size_t n,
                              af_arena *arena, af_error *err);

/* The AWS member name of a proto field name into dst; returns its length, truncating like
 * snprintf. */
size_t af_bridge_member_name(const char *field_name, char *dst, size_t dstsz);

#endif
