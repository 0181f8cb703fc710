#include "common/uuid.h"

#include "common/hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Random bytes per refill: 16 ids a system call. */
#define POOL 256

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
