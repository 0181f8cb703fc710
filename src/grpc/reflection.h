/* gRPC server reflection (grpc.reflection.v1 and v1alpha: the same messages on the wire),
 * answered from a serialized google.protobuf.FileDescriptorSet made by protoc at build time
 * (protoc --include_imports), so clients such as grpcurl and buf curl can discover and call
 * appflowd with nothing but its address.
 *
 * One request message in, one response message out, both serialized: the gRPC door only moves
 * bytes. Answers: list_services (the services given at creation), file_by_filename and
 * file_containing_symbol (the file and every file it imports, transitively), and
 * file_containing_extension / all_extension_numbers_of_type (from the extensions the files
 * declare); anything unknown gets an error_response (NOT_FOUND, or INVALID_ARGUMENT for an empty
 * request) rather than a failed call.
 *
 * Ownership: af_reflection copies what it needs; answers live in the caller's arena.
 * Thread-safety: af_reflection_answer may run on many threads at once (the index is read-only
 * after af_reflection_new). */
#ifndef AF_GRPC_REFLECTION_H
#define AF_GRPC_REFLECTION_H

#include "common/compiler.h"
#include "flows/arena.h"
#include "flows/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct af_reflection af_reflection;

/* Indexes the FileDescriptorSet fdset[0..len) (borrowed for the call). services lists the
 * full names of the services the server answers (e.g. "appflow.v1.AppFlowService"), ending
 * with NULL. NULL with err set when the set cannot be decoded or memory runs out. */
af_reflection *af_reflection_new(const uint8_t *fdset, size_t len, const char *const *services,
                                 af_error *err) AF_MUST_USE;
/* NULL is fine. */
void af_reflection_free(af_reflection *r);

/* Answers one serialized ServerReflectionRequest with a serialized ServerReflectionResponse in
 * *out (arena memory). AF_ERR_SERIALIZATION when the request cannot be decoded, with a message;
 * AF_ERR_INTERNAL_SERVER when the arena is exhausted. */
af_err af_reflection_answer(const af_reflection *r, const uint8_t *req, size_t len, af_arena *arena,
                            uint8_t **out, size_t *out_len, af_error *err) AF_MUST_USE;

#endif
