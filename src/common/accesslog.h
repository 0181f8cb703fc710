/* The access log (--access-log FILE|-): one JSON object per line per call, on both doors.
 *
 * Each line is formatted into a buffer of its own and written with one write(2) of at most
 * PIPE_BUF bytes to a descriptor opened for append, so lines from many threads never interleave
 * (the kernel appends each write whole to a file, and a pipe takes a write of PIPE_BUF or less
 * whole). Standard output is written through a descriptor of the log's own, opened
 * non-blocking: a reader that stops reading costs lines, never a thread. A write that fails
 * (a full disk, a closed pipe, a reader too slow) drops its line and counts it; the server goes
 * on. Every string is JSON-escaped (common/json.h), so what a caller sends can neither end a
 * line nor break the JSON; credentials are never given to the log at all.
 *
 * Ownership: the log owns its descriptor; an entry's strings are borrowed for the call.
 * Thread-safety: af_access_log_write and af_access_log_dropped from any thread; open and close
 * from one. */
#ifndef AF_COMMON_ACCESSLOG_H
#define AF_COMMON_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct af_access_log af_access_log;

/* One call, as the line says it (names are the JSON members). NULL strings are written as
 * null. */
typedef struct af_access_entry {
  const char *request_id; /* request_id: x-amzn-RequestId (either door) */
  const char *door;       /* door: "grpc" or "aws" */
  const char *operation;  /* operation: the AWS operation, or the gRPC method's name */
  const char *account;    /* account and region the call acted in */
  const char *region;
  int http_status;         /* status on the AWS door (a number) ... */
  const char *grpc_status; /* ... or on the gRPC door, the code's name ("NotFound"); used when
                              http_status is 0 */
  const char *error_type;  /* error_type: the AWS error type; NULL on success */
  int64_t duration_us;     /* duration_us: from the call's arrival to its answer */
  const char *peer;        /* peer: the client's address:port */
  uint64_t bytes_in;       /* bytes_in, bytes_out: the request's and the reply's bodies */
  uint64_t bytes_out;      /*   (gRPC: messages) */
  const char *method;      /* method: the HTTP method */
  const char *path;        /* path: the request-target's path as sent (never its query), or
                              the gRPC method's path; path_len bytes, any bytes */
  size_t path_len;
  const char *user_agent; /* user_agent: as sent; any bytes */
} af_access_entry;

/* Opens the log: "-" is standard output, anything else a file opened for append (created
 * 0640 if missing). NULL with a message a person can act on in msg when it cannot be opened. */
af_access_log *af_access_log_open(const char *path, char *msg, size_t msgsz);
/* Closes it. NULL is fine. No write may be running. */
void af_access_log_close(af_access_log *l);
/* Writes e's line, stamped with the time now (RFC 3339, UTC, milliseconds); on failure drops
 * it and counts it. l may be NULL (nothing happens). */
void af_access_log_write(af_access_log *l, const af_access_entry *e);
/* Lines dropped so far because they could not be written. */
uint64_t af_access_log_dropped(const af_access_log *l);

#endif
