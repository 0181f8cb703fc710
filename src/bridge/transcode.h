/* AWS REST-JSON <-> protobuf-c messages, driven by the AWS model's tables (common/awsmodel.h,
 * gen/model/appflow_model.h): a structure's af_model_struct names its members and their shapes,
 * its protobuf-c descriptor says where each is stored, so a new operation needs no JSON code.
 *
 * Mapping (AWS "restJson1" as the AWS CLI and SDKs speak it):
 * - member name = af_model_member.name ("flowName", "Scheduled", "SAPOData"); only members the
 *   model places in the body (location AF_MODEL_BODY) travel in JSON: labels, query parameters
 *   and headers are set by af_bridge_bind_members, and are neither read from nor written to JSON;
 * - enums are AWS strings: shape->enum_values[number] is the string of proto enum number;
 *   a map key is a proto string whatever its shape, taken as it is;
 * - integers and doubles are JSON numbers, booleans JSON booleans, bytes base64 strings,
 *   structures objects, lists arrays, maps objects; a list that is a map's value is a wrapper
 *   message (af_model_struct.list_wrapper) whose "items" are the JSON array;
 * - timestamps (google.protobuf.Timestamp) are epoch seconds (a JSON number, fractions allowed);
 * - presence is proto2's: reading marks every member present in the JSON (has_ flags set,
 *   pointers set, even for 0, "" or false); an absent member or JSON null leaves it absent (has_
 *   0, pointer NULL, no entries). Unknown members are ignored, never stored;
 * - writing puts out the members present (has_ set, pointer non-NULL, a list or map with
 *   entries), at any value; EXCEPT the map members of an operation's output structure (a
 *   top-level message whose shape is some af_model_operations[k].output), which are written
 *   as {} when empty, as AWS writes "tags": {} for an untagged flow. Decided from the tables:
 *   no flag to pass.
 *
 * Errors: AF_ERR_SERIALIZATION for a body that is not JSON, not an object, has duplicate keys,
 * nests a known member deeper than 64 (unknown members are skipped whole, within jansson's
 * own limit of 2048), or has a member of the wrong JSON type, a number out of its field's
 * range or with a fraction for an integer, or bad base64 (the message names the member by its
 * AWS path). AF_ERR_VALIDATION, in AWS's words, for strings that are not one of their enum's
 * values: every bad value of the request is collected (depth first, in member order) into one
 * message, "2 validation errors detected: Value 'X' at 'tasks.1.member.taskType' failed to
 * satisfy constraint: Member must satisfy enum value set: [Arithmetic, Filter, ...]; Value ..."
 * (paths: members joined by '.', a list element as <list>.<1-based index>.member, a map value
 * as <map>.<key>, and <map>.<key>.member when the value is a structure or list, as the
 * model's checks write them); a message longer than AF_ERROR_MESSAGE_MAX is cut at a whole error
 * (the count stays the total). A serialization error wins over validation errors. Writing fails
 * with AF_ERR_INTERNAL_SERVER for what JSON or the model cannot hold (NaN, infinities, invalid
 * UTF-8, timestamps out of range, an enum number without an AWS string, nesting deeper than 64)
 * and when the arena is exhausted. Both fail with AF_ERR_INTERNAL_SERVER when shape and
 * message disagree (a table out of step with the descriptors).
 * Ownership: messages, strings and output text live in the arena; shapes are static tables.
 * Thread-safety: pure functions over their arguments, reentrant; but for the kept texts of
 *   af_bridge_message_to_json_kept, which any number of threads fill and read atomically. */
#ifndef AF_BRIDGE_TRANSCODE_H
#define AF_BRIDGE_TRANSCODE_H

#include "bridge/jsonread.h"
#include "common/awsmodel.h"
#include "common/compiler.h"
#include "common/pbc.h"
#include "flows/arena.h"
#include "flows/error.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Parses body[0..len) (an empty body is {}) into a new message of shape->descriptor. */
af_err af_bridge_json_to_message(const af_model_struct *shape, const char *body, size_t len,
                                 af_arena *arena, ProtobufCMessage **out,
                                 af_error *err) AF_MUST_USE;
/* af_bridge_json_to_message over a body the caller lets the reader rewrite (strings stay where
 * they are, af_json_read_in_place): the message's strings may then point into body, which must
 * live as long as the message. */
af_err af_bridge_json_to_message_in_place(const af_model_struct *shape, char *body, size_t len,
                                          af_arena *arena, ProtobufCMessage **out,
                                          af_error *err) AF_MUST_USE;

/* af_bridge_json_to_message for JSON already parsed (with JSON_REJECT_DUPLICATES), which the
 * caller keeps and frees: for a reader that also wants other members of the same object. */
af_err af_bridge_json_tree_to_message(const af_model_struct *shape, json_t *root, af_arena *arena,
                                      ProtobufCMessage **out, af_error *err) AF_MUST_USE;

/* af_bridge_json_to_message for a tree read by af_json_read (bridge/jsonread.h): the message
 * points at the tree's strings, so the tree's arena must outlive it. */
af_err af_bridge_jv_to_message(const af_model_struct *shape, const af_jv *root, af_arena *arena,
                               ProtobufCMessage **out, af_error *err) AF_MUST_USE;

/* Writes msg (of shape->descriptor) as compact JSON text (NUL-terminated, *len bytes without
 * the NUL). */
af_err af_bridge_message_to_json(const af_model_struct *shape, const ProtobufCMessage *msg,
                                 af_arena *arena, char **out, size_t *len,
                                 af_error *err) AF_MUST_USE;
/* ... where ready (NULL: none) lists nested messages whose JSON is kept with them (the service's
 * memos, af_pbc_packed.text): each is written from its kept text, or written and its text kept
 * for the next response (the slots are shared between threads: filled once, atomically). */
af_err af_bridge_message_to_json_kept(const af_model_struct *shape, const ProtobufCMessage *msg,
                                      const af_pbc_ready *ready, af_arena *arena, char **out,
                                      size_t *len, af_error *err) AF_MUST_USE;

/* A request member carried outside the body: a path label (/tags/{resourceArn}), a query
 * parameter (?tagKeys=a&tagKeys=b) or a header, already decoded. */
typedef struct af_bridge_binding {
  af_model_location location; /* AF_MODEL_URI, AF_MODEL_QUERY or AF_MODEL_HEADER */
  const char *name;           /* the member's location_name: "resourceArn", "tagKeys" */
  const char *const *values;  /* NUL-terminated UTF-8, in request order */
  size_t nvalues;
} af_bridge_binding;

/* Sets the members of msg (of shape, decoded by af_bridge_json_to_message) that the bindings
 * carry, each matched by location and location_name (a header's name case-insensitively): a
 * repeated string member takes every value, a string member the first (AWS's servers also keep
 * the first of a repeated parameter), and no value leaves the member absent. A bound member is
 * read from its binding only, as AWS's restJson1 does: the body never sets it. The values are
 * borrowed: they must live as long as msg (the same arena). AF_ERR_INTERNAL_SERVER when shape
 * has no such member or it is not a string or a list of strings (a route that disagrees with
 * the model), or the arena is exhausted. */
af_err af_bridge_bind_members(const af_model_struct *shape, ProtobufCMessage *msg,
                              const af_bridge_binding *bindings, size_t n, af_arena *arena,
                              af_error *err) AF_MUST_USE;

#endif
