/* The seed-file loader (src/flows/seed.h): a hand-written streaming JSON reader, the kind of
 * parser that overreads. Input: the whole file, into a fresh service each run (the loader
 * fills a table, and a table carried over would turn every name into a duplicate).
 *
 * Oracle: success loads exactly *count flows; failure points at a line and column inside the
 * input (line 0 is only for I/O errors, which a buffer cannot have) with a NUL-terminated,
 * non-empty message. err starts as garbage so a field left unset shows. */
#include "fuzz.h"

#include "flows/seed.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  af_error e;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &e);
  CHECK(svc != NULL);
  af_seed_error err;
  memset(&err, 0xAA, sizeof err);
  size_t count = (size_t)-1;
  int rc = af_seed_load_buffer(svc, (const char *)data, size, &count, &err);
  size_t loaded = af_table_count(af_flows_table(svc));
  if (rc == 0) {
    CHECK(count == loaded);
  } else {
    CHECK(rc == -1);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
      lines += data[i] == '\n';
    CHECK(err.line >= 1 && (size_t)err.line <= lines);
    CHECK(err.column >= 1 && (size_t)err.column <= size + 1);
    CHECK(memchr(err.message, 0, sizeof err.message) != NULL && err.message[0] != '\0');
  }
  af_flows_free(svc);
  return 0;
}
