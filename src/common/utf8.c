#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

size_t af_utf8_lead_len(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF4)
    return 4;
  if (c >= 0xE0 && c <= 0xEF)
    return 3;
  if (c >= 0xC2 && c <= 0xDF)
    return 2;
  return 1;
}

/* The second byte's range is narrower after E0, ED, F0 and F4: that is what rules out
 * overlong forms, surrogates and values past U+10FFFF. */
int af_utf8_seq_len(const char *p, const char *end) {
  unsigned char c = (unsigned char)p[0], lo = 0x80, hi = 0xBF;
  int n = (int)af_utf8_lead_len(c);
  if (n == 1)
    return c < 0x80;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  for (int i = 1; i < n; i++) {
    if (p + i >= end)
      return -1;
    unsigned char b = (unsigned char)p[i];
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
      return 0;
  }
  return n;
}

/* The bytes before the first one at or past 0x80 in s[0..len), eight at a time: what is
 * checked is mostly ASCII (names, ARNs, expressions), which then costs no call per byte. */
static size_t ascii_prefix(const char *s, size_t len) {
  size_t i = 0;
  for (uint64_t w; len - i >= sizeof w; i += sizeof w) {
    memcpy(&w, s + i, sizeof w); /* unaligned; the high bits' test reads the same either end */
    if (w & UINT64_C(0x8080808080808080))
      break;
  }
  while (i < len && (unsigned char)s[i] < 0x80)
    i++;
  return i;
}

int af_utf8_valid(const char *s, size_t len) {
  const char *end = s + len;
  while ((s += ascii_prefix(s, (size_t)(end - s))) < end) {
    int n = af_utf8_seq_len(s, end);
    if (n <= 0)
      return 0;
    s += n;
  }
  return 1;
}
