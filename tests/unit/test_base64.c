/* src/common/base64.c: both kinds round-trip every length, and decoding is strict. */
#include "common/base64.h"

#include <criterion/criterion.h>
#include <string.h>

static void round_trip(af_base64_kind kind) {
  uint8_t in[16], out[16];
  char text[32];
  for (size_t n = 0; n <= sizeof in; n++) {
    for (size_t i = 0; i < n; i++)
      in[i] = (uint8_t)(0xf7 * (i + 1) + n);
    size_t len = af_base64_encoded_len(n, kind);
    af_base64_encode(in, n, text, kind);
    cr_assert_eq(af_base64_decode(text, len, out, sizeof out, kind), (long)n, "n=%zu", n);
    cr_assert_eq(memcmp(in, out, n), 0, "n=%zu", n);
  }
}

Test(base64, round_trips) {
  round_trip(AF_BASE64_STD);
  round_trip(AF_BASE64_URL);
}

static long decode(const char *s, af_base64_kind kind) {
  uint8_t out[16];
  return af_base64_decode(s, strlen(s), out, sizeof out, kind);
}

Test(base64, known_spellings) {
  static const uint8_t bytes[] = {0xfb, 0xff};
  char text[8] = {0};
  af_base64_encode(bytes, 2, text, AF_BASE64_STD);
  cr_expect_str_eq(text, "+/8=");
  memset(text, 0, sizeof text);
  af_base64_encode(bytes, 2, text, AF_BASE64_URL);
  cr_expect_str_eq(text, "-_8");
}

Test(base64, strict) {
  cr_expect_eq(decode("QQ==", AF_BASE64_STD), 1);
  cr_expect_eq(decode("QR==", AF_BASE64_STD), -1, "unused bits set");
  cr_expect_eq(decode("QQ", AF_BASE64_STD), -1, "padding missing");
  cr_expect_eq(decode("Q===", AF_BASE64_STD), -1);
  cr_expect_eq(decode("Q=Q=", AF_BASE64_STD), -1);
  cr_expect_eq(decode("-_8=", AF_BASE64_STD), -1, "other alphabet");
  cr_expect_eq(decode("QQ", AF_BASE64_URL), 1);
  cr_expect_eq(decode("QR", AF_BASE64_URL), -1, "unused bits set");
  cr_expect_eq(decode("QQ==", AF_BASE64_URL), -1, "no padding in url");
  cr_expect_eq(decode("Q", AF_BASE64_URL), -1);
  cr_expect_eq(decode("+/8", AF_BASE64_URL), -1, "other alphabet");
  uint8_t small[1];
  cr_expect_eq(af_base64_decode("QUI", 3, small, sizeof small, AF_BASE64_URL), -1, "too big");
  cr_expect_eq(decode("", AF_BASE64_STD), 0);
}
