/* src/common/json.c: af_json_quote writes any bytes as one JSON string that ends where it
 * should: escapes for quotes, backslashes and control characters, UTF-8 kept, bytes that are not
 * UTF-8 as the text \xNN, and a value too long for its room cut at a whole character. */
#include "common/json.h"

#include <criterion/criterion.h>
#include <string.h>

/* s quoted into a buffer of cap bytes, NUL-terminated for comparing. */
static const char *quoted(const char *s, size_t n, size_t cap) {
  static char out[512];
  cr_assert(cap < sizeof out);
  size_t len = af_json_quote(out, cap, s, n);
  cr_assert(len <= cap);
  out[len] = '\0';
  return out;
}

#define Q(lit) quoted(lit, sizeof lit - 1, 256)

Test(json, plain_text_is_quoted_as_is) {
  cr_expect_str_eq(Q("CreateFlow"), "\"CreateFlow\"");
  cr_expect_str_eq(Q(""), "\"\"");
  cr_expect_str_eq(Q("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

Test(json, quotes_backslashes_and_control_characters_are_escaped) {
  cr_expect_str_eq(Q("a\"b\\c"), "\"a\\\"b\\\\c\"");
  cr_expect_str_eq(Q("line\nnext\r\tend"), "\"line\\nnext\\r\\tend\"");
  cr_expect_str_eq(Q("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
  cr_expect_str_eq(Q("nul\0here"), "\"nul\\u0000here\"");
  cr_expect_str_eq(Q("%0A stays"), "\"%0A stays\"");
  cr_expect_str_eq(Q("a\xe2\x80\xa8"
                     "b\xe2\x80\xa9"),
                   "\"a\\u2028b\\u2029\"");
}

Test(json, bytes_that_are_not_utf8_become_their_hex_text) {
  cr_expect_str_eq(Q("\xff"), "\"\\\\xff\"");
  cr_expect_str_eq(Q("a\xc3"), "\"a\\\\xc3\"", "a sequence cut short");
  cr_expect_str_eq(Q("\xc0\xaf"), "\"\\\\xc0\\\\xaf\"", "an overlong slash");
  cr_expect_str_eq(Q("\xed\xa0\x80"), "\"\\\\xed\\\\xa0\\\\x80\"", "a surrogate");
}

Test(json, a_long_value_is_cut_at_a_whole_character_and_closed) {
  cr_expect_str_eq(quoted("abcdef", 6, 5), "\"abc\"");
  cr_expect_str_eq(quoted("a\nb", 3, 4), "\"a\"", "never half an escape");
  cr_expect_str_eq(quoted("\xe2\x82\xac\xe2\x82\xac", 6, 6), "\"\xe2\x82\xac\"",
                   "never half a character");
  cr_expect_str_eq(quoted("\xff", 1, 6), "\"\"", "never half a \\xNN");
  cr_expect_str_eq(quoted("abc", 3, 2), "\"\"");
  char out[4] = "xyz";
  cr_expect_eq(af_json_quote(out, 1, "abc", 3), 0, "no room for the quotes");
  cr_expect_str_eq(out, "xyz", "nothing written");
}
