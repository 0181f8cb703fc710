/* The admin listener's state routes, for test suites that snapshot and restore the emulator:
 *
 *   GET  /state   every account and region's connector registrations, profiles and flows as
 *                 one seed file (a JSON array, README's "Seed file"), credentials left out
 *   POST /reset   every account's state removed, then the seed file (--flows) loaded again;
 *                 answers {"removed": {...}, "seeded": {...}}
 *
 * Another method on either path is a 405 MethodNotAllowedException.
 * Ownership: answers live in the caller's arena. Errors: an af_err with its message, which the
 * server encodes as the control API's errors. Thread-safety: reentrant; a reset is not atomic
 * (README says what calls running meanwhile see). */
#ifndef AF_ADMIN_STATE_H
#define AF_ADMIN_STATE_H

#include "flows/service.h"

#include <stdbool.h>

/* Whether path (the request-target) is one of the state routes. */
bool af_admin_state_route(const char *path);

/* Answers method on path (a state route): AF_OK with the JSON answer (status 200) in *json, in
 * the arena, or the error. seed_path is the --flows file, or NULL for none. Waits for the
 * store. */
af_err af_admin_state_answer(af_flows *svc, const char *seed_path, const char *method,
                             const char *path, af_arena *arena, char **json, af_error *err);

#endif
