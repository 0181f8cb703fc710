/* Shared by the fuzz targets: invariant checks that stop the run on the first violation, so
 * libFuzzer saves the input, and a UTF-8 check written apart from src/common/utf8.c, so a bug
 * there cannot hide the same bug in the code under test. */
#ifndef AF_FUZZ_H
#define AF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): NDEBUG must not switch the oracle off. */
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Unicode table 3-7, byte by byte: no overlongs, no surrogates, nothing past U+10FFFF. */
static inline int fuzz_utf8_ok(const unsigned char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    size_t n = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || n > len - i)
      return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
    for (size_t k = 1; k < n; k++) {
      unsigned char b = s[i + k];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
        return 0;
    }
    i += n;
  }
  return 1;
}

/* A flow in every state and trigger the rules tell apart, as a seed file (fuzz_decode and
 * fuzz_transcode load it; names and ARNs in their corpora refer to these). */
/* S3 to S3 with a projection: what every seeded flow moves (a seed entry is a whole CreateFlow
 * request), then one flow in each state a test needs. */
#define FUZZ_S3_FLOW                                                                               \
  "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\":"               \
  " {\"S3\": {\"bucketName\": \"src-bucket\"}}},"                                                  \
  " \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "                                  \
  "\"destinationConnectorProperties\":"                                                            \
  " {\"S3\": {\"bucketName\": \"dst-bucket\"}}}],"                                                 \
  " \"tasks\": [{\"sourceFields\": [\"id\"], \"taskType\": \"Filter\","                            \
  " \"connectorOperator\": {\"S3\": \"PROJECTION\"}}]"
#define FUZZ_SCHEDULED                                                                             \
  "\"triggerConfig\": {\"triggerType\": \"Scheduled\", \"triggerProperties\":"                     \
  " {\"Scheduled\": {\"scheduleExpression\": \"rate(1days)\"}}}, " FUZZ_S3_FLOW
#define FUZZ_EVENT "\"triggerConfig\": {\"triggerType\": \"Event\"}, " FUZZ_S3_FLOW
#define FUZZ_SEED_FLOWS                                                                            \
  "[{\"flowName\": \"sched_active\", \"flowStatus\": \"Active\", " FUZZ_SCHEDULED ","              \
  " \"description\": \"daily\", \"tags\": {\"team\": \"data\", \"env\": \"test\"}},"               \
  " {\"flowName\": \"sched_suspended\", \"flowStatus\": \"Suspended\", " FUZZ_SCHEDULED "},"       \
  " {\"flowName\": \"sched_draft\", \"flowStatus\": \"Draft\", " FUZZ_SCHEDULED "},"               \
  " {\"flowName\": \"event_errored\", \"flowStatus\": \"Errored\", " FUZZ_EVENT "},"               \
  " {\"flowName\": \"event_deprecated\", \"flowStatus\": \"Deprecated\", " FUZZ_EVENT "},"         \
  " {\"flowName\": \"ondemand\", \"flowStatus\": \"Active\","                                      \
  " \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, " FUZZ_S3_FLOW ","                         \
  " \"tags\": {\"env\": \"test\"}}]"

static inline int fuzz_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* names[0..seen) (malloc'd, freed here with the array) must be total names, none twice. */
static inline void fuzz_check_each_once(char **names, size_t seen, size_t total) {
  CHECK(seen == total);
  qsort(names, seen, sizeof *names, fuzz_cmp_str);
  for (size_t i = 1; i < seen; i++)
    CHECK(strcmp(names[i - 1], names[i]) != 0);
  for (size_t i = 0; i < seen; i++)
    free(names[i]);
  free(names);
}

#endif
