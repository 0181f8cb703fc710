/* A keyed 64-bit hash of bytes, for hash tables and integrity checks on our own tokens.
 *
 * Not a MAC: with the key secret it spreads names so clients cannot aim them at one bucket,
 * and it tells a garbled token from one we issued; it does not stop a determined forger.
 * Thread-safety: pure. */
#ifndef AF_COMMON_HASH_H
#define AF_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t af_hash64(uint64_t key, const void *data, size_t len);

/* A random 64-bit value from the kernel (the clock if that fails, which it does not after
 * boot). */
uint64_t af_random64(void);

#endif
