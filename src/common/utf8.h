/* UTF-8 as Unicode's table 3-7 defines it: no overlong forms, no surrogates, nothing past
 * U+10FFFF. Every untrusted string appflowd keeps is checked with these.
 * Thread-safety: pure functions. */
#ifndef AF_COMMON_UTF8_H
#define AF_COMMON_UTF8_H

#include <stddef.h>

/* Bytes in the sequence led by c: 2-4 for a lead byte, 1 for anything else (ASCII, or a byte
 * that leads nothing, which af_utf8_seq_len then rejects). */
size_t af_utf8_lead_len(unsigned char c);

/* Length of the well-formed sequence at p (p < end): 1-4, 0 if it is malformed, -1 if end
 * comes inside it. */
int af_utf8_seq_len(const char *p, const char *end);

/* True when s[0..len) is entirely well-formed UTF-8. */
int af_utf8_valid(const char *s, size_t len);

#endif
