#include "common/hash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t load_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

typedef struct sip {
  uint64_t v0, v1, v2, v3;
} sip;

static inline void round_(sip *s) {
  s->v0 += s->v1;
  s->v1 = rotl(s->v1, 13);
  s->v1 ^= s->v0;
  s->v0 = rotl(s->v0, 32);
  s->v2 += s->v3;
  s->v3 = rotl(s->v3, 16);
  s->v3 ^= s->v2;
  s->v0 += s->v3;
  s->v3 = rotl(s->v3, 21);
  s->v3 ^= s->v0;
  s->v2 += s->v1;
  s->v1 = rotl(s->v1, 17);
  s->v1 ^= s->v2;
  s->v2 = rotl(s->v2, 32);
}

static inline void absorb(sip *s, uint64_t m) {
  s->v3 ^= m;
  round_(s);
  round_(s);
  s->v0 ^= m;
}

uint64_t af_hash64(const af_hash_key *key, const void *data, size_t len) {
  const unsigned char *p = data;
  sip s = {key->k0 ^ 0x736f6d6570736575ull, key->k1 ^ 0x646f72616e646f6dull,
           key->k0 ^ 0x6c7967656e657261ull, key->k1 ^ 0x7465646279746573ull};
  size_t whole = len & ~(size_t)7;
  for (size_t i = 0; i < whole; i += 8)
    absorb(&s, load_le64(p + i));
  unsigned char tail[8] = {0};
  if (len > whole)
    memcpy(tail, p + whole, len - whole);
  tail[7] = (unsigned char)len; /* the length's low byte, as the reference pads */
  absorb(&s, load_le64(tail));
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; i++)
    round_(&s);
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

af_hash_key af_hash_key_random(void) { return (af_hash_key){af_random64(), af_random64()}; }

uint64_t af_random64(void) {
  uint64_t v;
  if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
    return v;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
}
