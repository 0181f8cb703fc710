#include "common/hash.h"

#include <sys/random.h>
#include <time.h>

/* FNV-1a keyed by `key`, then a 64-bit finaliser (from MurmurHash3) so the top bits, which
 * the flow table's shards use, depend on every byte. */
uint64_t af_hash64(uint64_t key, const void *data, size_t len) {
  const unsigned char *s = data;
  uint64_t h = 0xcbf29ce484222325ull ^ key;
  for (size_t i = 0; i < len; i++) {
    h ^= s[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t af_random64(void) {
  uint64_t v;
  if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
    return v;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
}
