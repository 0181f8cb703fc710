#include "common/uuid.h"

void af_uuid_format(uint64_t hi, uint64_t lo, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  hi = (hi & ~0xf000ull) | 0x4000ull;           /* version 4 */
  lo = (lo & ~(0xcull << 60)) | (0x8ull << 60); /* RFC 4122 variant */
  int o = 0;
  for (int i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20)
      out[o++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    out[o++] = hex[(word >> (60 - 4 * (i % 16))) & 15];
  }
  out[o] = '\0';
}
