#include "common/json.h"

#include "common/utf8.h"

#include <string.h>

const char *af_json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "a value";
}

/* The escape of one ASCII byte that JSON (or a log reader) must not see as is, into out; its
 * length, or 0 when c may be written plain. */
static size_t ascii_escape(unsigned char c, char out[8]) {
  static const char hex[] = "0123456789abcdef";
  const char *two = c == '"'    ? "\\\""
                    : c == '\\' ? "\\\\"
                    : c == '\n' ? "\\n"
                    : c == '\r' ? "\\r"
                    : c == '\t' ? "\\t"
                                : NULL;
  if (two != NULL) {
    memcpy(out, two, 2);
    return 2;
  }
  if (c >= 0x20 && c != 0x7f)
    return 0;
  memcpy(out, "\\u00", 4);
  out[4] = hex[c >> 4];
  out[5] = hex[c & 15];
  return 6;
}

/* The escape of s[0..len), one well-formed character or one stray byte, into out (at most 7
 * bytes); its length. */
static size_t escape_char(const unsigned char *s, int len, char out[8]) {
  static const char hex[] = "0123456789abcdef";
  if (len <= 0) { /* a byte that is not UTF-8: the text \xNN */
    memcpy(out, "\\\\x", 3);
    out[3] = hex[s[0] >> 4];
    out[4] = hex[s[0] & 15];
    return 5;
  }
  if (len == 1) {
    size_t n = ascii_escape(s[0], out);
    if (n == 0)
      out[n++] = (char)s[0];
    return n;
  }
  /* U+2028 and U+2029 end a line for JavaScript and some log viewers */
  if (len == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9)) {
    memcpy(out, s[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
    return 6;
  }
  memcpy(out, s, (size_t)len);
  return (size_t)len;
}

size_t af_json_quote(char *dst, size_t cap, const char *s, size_t n) {
  if (cap < 2)
    return 0;
  size_t o = 0;
  dst[o++] = '"';
  const char *end = s + n;
  while (s < end) {
    char esc[8];
    int len = af_utf8_seq_len(s, end);
    size_t w = escape_char((const unsigned char *)s, len, esc);
    if (o + w + 1 > cap) /* room for the closing quote */
      break;
    memcpy(dst + o, esc, w);
    o += w;
    s += len > 0 ? len : 1;
  }
  dst[o++] = '"';
  return o;
}
