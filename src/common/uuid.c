#include "common/uuid.h"

#include "common/hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Random bytes per refill: 16 ids a system call. */
#define POOL 256

/* A byte at a time, each to its two places, with the dashes put in once: every AWS-door reply
 * carries a new id, and the loop it replaces tested and shifted for each of the 32 digits. */
void af_uuid_format(uint64_t hi, uint64_t lo, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  /* where byte i's two digits go in 8-4-4-4-12 */
  static const unsigned char at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  hi = (hi & ~0xf000ull) | 0x4000ull;           /* version 4 */
  lo = (lo & ~(0xcull << 60)) | (0x8ull << 60); /* RFC 4122 variant */
  for (int i = 0; i < 8; i++) {
    unsigned h = (unsigned)(hi >> (56 - 8 * i)) & 0xff, l = (unsigned)(lo >> (56 - 8 * i)) & 0xff;
    out[at[i]] = hex[h >> 4];
    out[at[i] + 1] = hex[h & 15];
    out[at[i + 8]] = hex[l >> 4];
    out[at[i + 8] + 1] = hex[l & 15];
  }
  out[8] = out[13] = out[18] = out[23] = '-';
  out[36] = '\0';
}

/* n bytes from getrandom (up to 256 bytes never come back short once the pool is ready, but
 * a signal may interrupt the wait for it at boot); af_random64 if the call is refused. */
static void fill(uint8_t *b, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, 0);
    if (r > 0) {
      got += (size_t)r;
    } else if (r < 0 && errno != EINTR) {
      for (; got < n; got += 8) {
        uint64_t v = af_random64();
        memcpy(b + got, &v, n - got < 8 ? n - got : 8);
      }
    }
  }
}

void af_uuid_random(char out[37]) {
  /* Per thread, so no lock: each pool is drawn from once and refilled when spent. */
  static _Thread_local struct {
    uint8_t bytes[POOL];
    size_t used;
  } pool = {.used = POOL};
  if (pool.used + 16 > POOL) {
    fill(pool.bytes, POOL);
    pool.used = 0;
  }
  uint64_t hi, lo;
  memcpy(&hi, pool.bytes + pool.used, 8);
  memcpy(&lo, pool.bytes + pool.used + 8, 8);
  memset(pool.bytes + pool.used, 0, 16); /* an id's bytes do not outlive their use */
  pool.used += 16;
  af_uuid_format(hi, lo, out);
}
