#include "common/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Reads fp to its end into a buffer grown as needed (sized from fstat when it can be). */
static int read_all(FILE *fp, size_t max, char **out, size_t *out_len) {
  struct stat st;
  size_t cap = 1 << 16, len = 0;
  /* A regular file's size plus one, so the read that meets end of file needs no growth. */
  if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (uint64_t)st.st_size < max)
    cap = (size_t)st.st_size + 1;
  char *buf = malloc(cap + 1);
  if (buf == NULL)
    return ENOMEM;
  for (;;) {
    if (len == cap) {
      char *bigger = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2 + 1);
      if (bigger == NULL) {
        free(buf);
        return ENOMEM;
      }
      buf = bigger;
      cap *= 2;
    }
    errno = 0;
    size_t n = fread(buf + len, 1, cap - len, fp);
    len += n;
    if (n == 0 && ferror(fp)) {
      int e = errno != 0 ? errno : EIO;
      free(buf);
      return e;
    }
    if (len > max) {
      free(buf);
      return EFBIG;
    }
    if (n == 0)
      break;
  }
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  return 0;
}

int af_read_file(const char *path, size_t max, char **out, size_t *len, bool *opened) {
  FILE *fp = fopen(path, "rb");
  if (opened != NULL)
    *opened = fp != NULL;
  if (fp == NULL)
    return errno != 0 ? errno : EIO;
  int e = read_all(fp, max, out, len);
  fclose(fp);
  return e;
}
