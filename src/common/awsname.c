#include "common/awsname.h"

#include <ctype.h>
#include <string.h>

int af_aws_enum_string(const char *prefix, const char *value, char *dst, size_t dstsz) {
  size_t plen = strlen(prefix);
  if (strncmp(value, prefix, plen) != 0 || value[plen] == '\0')
    return -1;
  size_t o = 0;
  int word_start = 1;
  for (const char *p = value + plen; *p != '\0'; p++) {
    if (*p == '_') {
      word_start = 1;
      continue;
    }
    if (o + 1 >= dstsz)
      return -1;
    dst[o++] = (char)(word_start ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    word_start = 0;
  }
  if (o >= dstsz)
    return -1;
  dst[o] = '\0';
  return 0;
}

const char *af_rpc_code_name(int code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
    return "UNKNOWN";
  return names[code];
}
