/* Integers as decimal text, written by hand: snprintf was a sixth of a ListFlows page's JSON
 * (bench/RESULTS.md). Two digits at a time from a table, which halves the divisions (a page has
 * hundreds of timestamps). Inline, as the JSON writer calls it per number. Thread-safety: pure. */
#ifndef AF_COMMON_DECIMAL_H
#define AF_COMMON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The most bytes af_decimal_i64 writes: a sign and 20 digits. No NUL is written. */
#define AF_DECIMAL_MAX 21

/* v in decimal at b (room for 20 bytes); returns the length. */
static inline size_t af_decimal_u64(char *b, uint64_t v) {
  static const char two_digits[201] = /* "00" "01" ... "99" */
      "0001020304050607080910111213141516171819"
      "2021222324252627282930313233343536373839"
      "4041424344454647484950515253545556575859"
      "6061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char tmp[20];
  size_t n = sizeof tmp;
  while (v >= 100) {
    size_t d = (size_t)(v % 100) * 2;
    v /= 100;
    tmp[--n] = two_digits[d + 1];
    tmp[--n] = two_digits[d];
  }
  if (v >= 10) {
    tmp[--n] = two_digits[v * 2 + 1];
    tmp[--n] = two_digits[v * 2];
  } else {
    tmp[--n] = (char)('0' + v);
  }
  memcpy(b, tmp + n, sizeof tmp - n);
  return sizeof tmp - n;
}

/* v in decimal at b (room for AF_DECIMAL_MAX bytes); returns the length. */
static inline size_t af_decimal_i64(char *b, int64_t v) {
  if (v >= 0)
    return af_decimal_u64(b, (uint64_t)v);
  b[0] = '-';
  return 1 + af_decimal_u64(b + 1, 0 - (uint64_t)v); /* unsigned negation: INT64_MIN too */
}

#endif
