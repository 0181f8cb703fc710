/* A keyed 64-bit hash of bytes for hash tables: SipHash-2-4 (Aumasson and Bernstein), so a
 * caller who does not know the key cannot choose names that meet in one bucket or shard.
 * Tokens a caller may forge are sealed with HMAC-SHA256 instead (flows/list.c); this is not a
 * MAC for those. Thread-safety: pure. */
#ifndef AF_COMMON_HASH_H
#define AF_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash's 128-bit key. */
typedef struct af_hash_key {
  uint64_t k0, k1;
} af_hash_key;

/* SipHash-2-4 of data[0..len) under key (the reference's output for its test key). */
uint64_t af_hash64(const af_hash_key *key, const void *data, size_t len);

/* A key from the kernel's random source. */
af_hash_key af_hash_key_random(void);

/* A random 64-bit value from the kernel (the clock if that fails, which it does not after
 * boot). */
uint64_t af_random64(void);

#endif
