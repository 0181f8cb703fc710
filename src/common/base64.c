#include "common/base64.h"

static const char *alphabet(af_base64_kind kind) {
  return kind == AF_BASE64_URL ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

size_t af_base64_encoded_len(size_t n, af_base64_kind kind) {
  return kind == AF_BASE64_URL ? n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) : (n + 2) / 3 * 4;
}

void af_base64_encode(const uint8_t *in, size_t n, char *out, af_base64_kind kind) {
  const char *abc = alphabet(kind);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t q = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    size_t chars = n - i >= 3 ? 4 : n - i + 1;
    for (size_t k = 0; k < 4; k++) {
      if (k < chars)
        *out++ = abc[(q >> (18 - 6 * k)) & 63];
      else if (kind == AF_BASE64_STD)
        *out++ = '=';
    }
  }
}

static int digit(unsigned char c, af_base64_kind kind) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == (kind == AF_BASE64_URL ? '-' : '+'))
    return 62;
  return c == (kind == AF_BASE64_URL ? '_' : '/') ? 63 : -1;
}

long af_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap, af_base64_kind kind) {
  if (kind == AF_BASE64_STD) { /* whole groups; up to two '=' end the last */
    if (n % 4 != 0)
      return -1;
    if (n > 0 && s[n - 1] == '=')
      n -= s[n - 2] == '=' ? 2 : 1;
  }
  if (n % 4 == 1)
    return -1;
  size_t len = 0;
  for (size_t i = 0; i < n; i += 4) {
    size_t chars = n - i >= 4 ? 4 : n - i;
    uint32_t q = 0;
    for (size_t k = 0; k < 4; k++) {
      int v = k < chars ? digit((unsigned char)s[i + k], kind) : 0;
      if (v < 0)
        return -1;
      q = q << 6 | (uint32_t)v;
    }
    size_t bytes = chars - 1;
    if (bytes < 3 && (q & ((1u << (24 - 8 * bytes)) - 1)) != 0)
      return -1; /* bits a short group does not use must be zero */
    if (len + bytes > cap)
      return -1;
    for (size_t k = 0; k < bytes; k++)
      out[len++] = (uint8_t)(q >> (16 - 8 * k));
  }
  return (long)len;
}
