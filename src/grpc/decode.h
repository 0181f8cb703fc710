/* Decoding a gRPC request payload into its protobuf-c message: bytes in, message or error out,
 * no sockets, so tests and fuzzers feed it bytes directly.
 *
 * protobuf-c keeps strings as C strings, so a NUL inside a string field would silently cut it
 * (a request for "ab\0cd" would act on "ab"), and it does not check UTF-8, which proto3
 * requires of strings. af_grpc_decode decodes as protobuf_c_message_unpack does (the same
 * message from the same bytes, the same bytes refused) and refuses both as it goes.
 *
 * Ownership: the message and its strings live in the arena. Errors: AF_ERR_SERIALIZATION with
 * a message naming the field. Thread-safety: pure, reentrant. */
#ifndef AF_GRPC_DECODE_H
#define AF_GRPC_DECODE_H

#include "common/compiler.h"
#include "flows/arena.h"
#include "flows/error.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

af_err af_grpc_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      af_arena *arena, ProtobufCMessage **out, af_error *err) AF_MUST_USE;

#endif
