/* A logger passed explicitly to whatever logs: one line per event on one stream.
 *
 * Thread-safety: af_log_printf may be called from any thread once the logger is set up
 * (stdio locks the stream per call, so lines never interleave). */
#ifndef AF_FLOWS_LOG_H
#define AF_FLOWS_LOG_H

#include "common/compiler.h"

#include <stdio.h>

typedef enum af_log_level {
  AF_LOG_ERROR = 0,
  AF_LOG_WARN = 1,
  AF_LOG_INFO = 2,
  AF_LOG_DEBUG = 3
} af_log_level;

typedef struct af_log {
  af_log_level level; /* lines above this level are dropped */
  FILE *out;          /* not owned */
} af_log;

/* Parses "error", "warn", "info" or "debug". Returns 0, or -1 for anything else. */
int af_log_level_parse(const char *s, af_log_level *out) AF_MUST_USE;
/* True when a line at `level` would be written; lets callers skip building one. log may be
 * NULL (then nothing is ever written). */
int af_log_enabled(const af_log *log, af_log_level level);
/* Writes "appflowd: <level>: <message>\n" when enabled. */
void af_log_printf(const af_log *log, af_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
