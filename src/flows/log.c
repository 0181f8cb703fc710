#include "flows/log.h"

#include <stdarg.h>
#include <string.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int af_log_level_parse(const char *s, af_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (af_log_level)i;
      return 0;
    }
  }
  return -1;
}

int af_log_enabled(const af_log *log, af_log_level level) {
  return log != NULL && log->out != NULL && level <= log->level;
}

void af_log_printf(const af_log *log, af_log_level level, const char *fmt, ...) {
  if (!af_log_enabled(log, level))
    return;
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* One fprintf per line: stdio's stream lock keeps lines from different threads whole. */
  fprintf(log->out, "appflowd: %s: %s\n", level_names[level], line);
  fflush(log->out);
}
