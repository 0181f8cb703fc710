/* What appflowd asks of the compiler beyond C11 (gcc and clang, the two it builds with).
 *
 * AF_MUST_USE goes on the declaration of a function whose result says whether it worked (an
 * af_err, a 0/-1 int, a bool that is false on failure, a pointer that is NULL on failure): with
 * -Werror, a caller that drops the result does not build. Not on functions that only make an
 * error to return (af_error_set and kin), whose callers may set the error and answer another
 * way. Where dropping a result is right, AF_IGNORE says so, next to a comment saying why (gcc
 * does not take a cast to void as using the result). Header-only; no state. */
#ifndef AF_COMMON_COMPILER_H
#define AF_COMMON_COMPILER_H

#define AF_MUST_USE __attribute__((warn_unused_result))

/* Drops the result of a call to an AF_MUST_USE function on purpose. */
#define AF_IGNORE(call) ((void)!(call))

#endif
