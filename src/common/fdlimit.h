/* The process's limit on open file descriptors (RLIMIT_NOFILE). Every connection on either door
 * holds one, and the soft limit a shell leaves (often 1024) is far below what 10,000
 * connections need, while the hard limit usually allows them.
 *
 * Thread-safety: call at start-up, before threads that open descriptors start. */
#ifndef AF_COMMON_FDLIMIT_H
#define AF_COMMON_FDLIMIT_H

/* Where the limit stands: soft is the one in force, hard the most it may be raised to
 * (AF_FD_UNLIMITED when the kernel's own ceiling is the only one). */
typedef struct af_fd_limit {
  unsigned long long soft, hard;
} af_fd_limit;

#define AF_FD_UNLIMITED (~0ULL)

/* Raises the soft limit as far as the hard limit allows (to the kernel's ceiling on open files
 * per process when the hard limit is unlimited), never lowering it, and reports where it
 * stands after in *out. Returns 0, or -1 with *out as it stands when it cannot be read or
 * raised (errno says why). */
int af_fd_limit_raise(af_fd_limit *out);

#endif
