/* Packing a protobuf-c message with each nested message sized once.
 *
 * protobuf-c packs in two walks: protobuf_c_message_get_packed_size, then
 * protobuf_c_message_pack, which packs each nested message behind a one-byte length guess and
 * moves it along when its length takes more bytes (the flows of a ListFlows page, each over 127
 * bytes, are moved once per level above them), and which measures every string again. Here one
 * sizing pass records the size of each nested message, packed array and string in the order it
 * meets them, and one writing pass takes them in the same order, writing every length before what
 * it measures: nothing is sized twice, nothing moves, and the common field (proto2 optional) takes
 * a short path in both.
 *
 * The bytes are protobuf_c_message_pack's (protobuf-c 1.4.1), for every message: fields in
 * descriptor order, then unknown fields; its presence rules (required: always; oneof: the
 * member its case names, and for a string or message only when set and not the default;
 * optional: has_ for scalars and bytes, a pointer other than NULL and the default for strings
 * and messages; proto3 unlabeled: not zero, "" or NULL; repeated: each element, packed when
 * the descriptor says); negative int32 and enum values in ten bytes; a NULL required string or
 * message as an empty one. tests/unit/test_encode.c compares the two on every message type.
 * Where protobuf-c would crash (a NULL element of a repeated string or message) the encoder
 * writes an empty one instead.
 *
 * Ownership: the caller owns the encoder and the message; the encoder keeps its sizes (grown,
 *   never shrunk) from one message to the next until af_encoder_free.
 * Errors: af_encode_size returns false when the sizes cannot grow (out of memory).
 * Thread-safety: an encoder serves one thread at a time; the message must not change between
 *   the two passes. */
#ifndef AF_COMMON_ENCODE_H
#define AF_COMMON_ENCODE_H

#include "common/compiler.h"
#include "common/pbc.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_encoder {
  size_t *sizes; /* the nested messages', packed arrays' and strings' sizes, in the order both
                    passes meet them */
  size_t n;      /* entries the last sizing pass recorded */
  size_t cap;    /* room in sizes */
  size_t next;   /* the writing pass's next entry */
  bool oom;      /* the last sizing pass could not record every size */
  bool borrowed; /* sizes is the caller's room (af_encoder_init_on), never freed or grown */
  /* Set by the caller before a sizing pass, NULL for none: messages that come packed (nested
   * ones, or the message itself), whose bytes both passes take as they are. */
  const af_pbc_ready *ready;
  size_t ready_next; /* the next of ready's items either pass may meet */
} af_encoder;

/* An empty encoder; it allocates on first use. Never fails. */
void af_encoder_init(af_encoder *e);
/* An encoder whose sizes start in the caller's room for cap of them (on its stack, say), so a
 * message that fits costs no allocation; a larger one moves them to the heap. Never fails. */
void af_encoder_init_on(af_encoder *e, size_t *room, size_t cap);
/* Frees the sizes; the encoder must be initialised again before further use. */
void af_encoder_free(af_encoder *e);

/* The sizes af_encode_alloc keeps on its stack: a flow's definition takes some dozens (a nested
 * message, a packed array or a string each); a message with more moves them to the heap. */
#define AF_ENCODE_STACK_SIZES 128

/* Both passes at once: a block from alloc(ctx, before + len + after) (never asked for 0 bytes)
 * holding msg's len packed bytes at offset before, *len set; NULL when alloc fails or the sizes
 * cannot grow. The block is the caller's, to free as alloc's memory is freed. */
void *af_encode_alloc(const ProtobufCMessage *msg, size_t before, size_t after,
                      void *(*alloc)(void *ctx, size_t size), void *ctx, size_t *len) AF_MUST_USE;

/* The sizing pass: *len = the bytes msg packs to (protobuf_c_message_get_packed_size's
 * answer), with every nested size recorded for af_encode_write. False when out of memory. */
bool af_encode_size(af_encoder *e, const ProtobufCMessage *msg, size_t *len) AF_MUST_USE;
/* The writing pass: packs msg, which af_encode_size has just sized, into out (room for *len
 * bytes); returns the bytes written, which are that *len. */
size_t af_encode_write(af_encoder *e, const ProtobufCMessage *msg, uint8_t *out);

#endif
