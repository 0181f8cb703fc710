/* UUIDs in their text form, as AWS writes request and execution ids.
 * Thread-safety: af_uuid_format is pure; af_uuid_random may be called from any thread. */
#ifndef AF_COMMON_UUID_H
#define AF_COMMON_UUID_H

#include <stdint.h>

/* Writes hi:lo as a version 4, RFC 4122 variant UUID (36 characters and a NUL) into out;
 * the version and variant bits overwrite 6 of the 128. */
void af_uuid_format(uint64_t hi, uint64_t lo, char out[37]);

/* A random version 4 UUID: 122 bits from the kernel's generator (getrandom), so no id tells
 * anything of another. Bytes are drawn a pool at a time per thread, so most ids cost no system
 * call, and every byte is used once. */
void af_uuid_random(char out[37]);

#endif
