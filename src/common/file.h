/* Whole files read into memory: the seed file, TLS material, SigV4 credentials.
 * Thread-safety: reentrant. */
#ifndef AF_COMMON_FILE_H
#define AF_COMMON_FILE_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stddef.h>

/* Reads the file at path into *out (malloc'd, NUL-terminated; *len bytes before the NUL; the
 * caller frees it). Returns 0, or an errno value: EFBIG when the file holds more than max
 * bytes, otherwise why opening or reading failed. *opened (may be NULL) says whether the file
 * could be opened, so callers can say which step failed. */
int af_read_file(const char *path, size_t max, char **out, size_t *len, bool *opened) AF_MUST_USE;

#endif
