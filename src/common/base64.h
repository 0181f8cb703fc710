/* Base64 (RFC 4648): the standard alphabet with '=' padding, as JSON carries protobuf bytes,
 * and the URL-safe alphabet without padding, as appflowd's ListFlows tokens are written.
 *
 * Decoding is strict: only the kind's alphabet, padding exactly as the kind has it, and the
 * bits a short last group leaves unused must be zero, so each byte string has one spelling.
 * Thread-safety: pure. */
#ifndef AF_COMMON_BASE64_H
#define AF_COMMON_BASE64_H

#include "common/compiler.h"

#include <stddef.h>
#include <stdint.h>

typedef enum af_base64_kind {
  AF_BASE64_STD, /* A-Z a-z 0-9 + /, padded with '=' */
  AF_BASE64_URL, /* A-Z a-z 0-9 - _, not padded */
} af_base64_kind;

/* The characters encoding n bytes takes. */
size_t af_base64_encoded_len(size_t n, af_base64_kind kind);
/* Writes af_base64_encoded_len(n, kind) characters (no NUL) of in[0..n) to out. */
void af_base64_encode(const uint8_t *in, size_t n, char *out, af_base64_kind kind);
/* Decodes s[0..n) into out (room for cap bytes): the decoded length, or -1 when s is not
 * strictly of the kind or does not fit. */
long af_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap,
                      af_base64_kind kind) AF_MUST_USE;

#endif
