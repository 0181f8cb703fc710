/* Hexadecimal digits, as percent-escapes (the AWS door, SigV4) and JSON \u escapes (the seed
 * file) spell bytes. Thread-safety: pure. */
#ifndef AF_COMMON_HEX_H
#define AF_COMMON_HEX_H

/* The value of hex digit c (either case), or -1 when c is not one. */
static inline int af_hex_value(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

#endif
