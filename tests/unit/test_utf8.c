#include "common/utf8.h"

#include <criterion/criterion.h>
#include <string.h>

static int valid(const char *s) { return af_utf8_valid(s, strlen(s)); }

Test(utf8, accepts_every_length) {
  cr_expect(valid("a\xc3\xb6\xe2\x82\xac\xf0\x9f\x98\x80"));
  cr_expect(valid("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
  cr_expect(valid("\xed\x9f\xbf"));     /* U+D7FF, just below the surrogates */
  cr_expect(af_utf8_valid("", 0));
}

Test(utf8, rejects_malformed) {
  static const char *bad[] = {
      "\xff",         "\x80",         "\xc0\xaf",         "\xc1\xbf",         "\xe0\x80\xaf",
      "\xe0\x9f\xbf", "\xed\xa0\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
      "\xc3",         "\xe2\x82",     "\xc3\x28"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_not(valid(bad[i]), "case %zu", i);
}

Test(utf8, sequence_length_says_truncated_apart_from_malformed) {
  const char euro[] = "\xe2\x82\xac", broken[] = "\xe2\x28\xac", ascii[] = "A";
  cr_expect_eq(af_utf8_seq_len(euro, euro + 3), 3);
  cr_expect_eq(af_utf8_seq_len(euro, euro + 2), -1);
  cr_expect_eq(af_utf8_seq_len(broken, broken + 3), 0);
  cr_expect_eq(af_utf8_seq_len(ascii, ascii + 1), 1);
  cr_expect_eq(af_utf8_lead_len(0xf0), 4);
  cr_expect_eq(af_utf8_lead_len(0x80), 1);
}

/* The definition, one sequence at a time: what af_utf8_valid must answer however it scans. */
static int valid_by_sequences(const char *s, size_t len) {
  for (const char *end = s + len; s < end;) {
    int n = af_utf8_seq_len(s, end);
    if (n <= 0)
      return 0;
    s += n;
  }
  return 1;
}

/* af_utf8_valid reads ASCII eight bytes at a time: every sequence, good or bad, at every offset
 * of that scan, with ASCII (and a NUL) on both sides of it, answers as the definition does. */
Test(utf8, every_offset_answers_as_the_definition) {
  static const char *seqs[] = {"\xc3\xb6", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\x80",
                               "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "\xe2\x82",
                               "\xc3\x28", "\x7f",         "\xf0\x9f\x98"};
  char buf[64];
  for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
    size_t n = strlen(seqs[k]);
    for (size_t before = 0; before <= 17; before++) {
      for (size_t after = 0; after <= 9; after++) {
        memset(buf, 'a', sizeof buf);
        buf[before / 2] = '\0'; /* a NUL is ASCII, and valid */
        memcpy(buf + before, seqs[k], n);
        size_t len = before + n + after;
        cr_expect_eq(af_utf8_valid(buf, len), valid_by_sequences(buf, len),
                     "sequence %zu after %zu bytes, %zu after it", k, before, after);
      }
    }
  }
}
