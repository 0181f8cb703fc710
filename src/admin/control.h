/* The emulator control API as JSON over HTTP: which control RPC a request names and its body as
 * that RPC's request message, and the answer as JSON. The admin listener (admin/server.h) serves
 * it; the fuzzers drive it directly.
 *
 *   POST /emulator/flows/{flowName}/events    SendEvent     body: none, or any JSON object
 *   POST /emulator/flows/{flowName}/outcomes  SetOutcomes   {"outcomes": [{"executionStatus":
 *        "Successful"|"Error", "message": S, "durationSeconds": N, "recordsProcessed": N}]}
 *   POST /emulator/clock                      AdvanceClock  {"advanceSeconds": N}
 *
 * Ownership: everything made lives in the caller's arena. Errors: af_err with a message a person
 * can act on (an unknown path is RESOURCE_NOT_FOUND, a known path with another method
 * METHOD_NOT_ALLOWED, a bad body VALIDATION or SERIALIZATION). Thread-safety: reentrant. */
#ifndef AF_ADMIN_CONTROL_H
#define AF_ADMIN_CONTROL_H

#include "common/compiler.h"
#include "flows/service.h"

#include <stddef.h>

/* Decodes one request: path is the request-target (a query is refused), body[0..len) may be
 * empty. On AF_OK, *rpc is the emulator RPC to call and *req its request in the arena. */
af_err af_control_decode(af_flows *svc, const char *method, const char *path, const char *body,
                         size_t len, af_arena *arena, const af_rpc **rpc, ProtobufCMessage **req,
                         af_error *err) AF_MUST_USE;
/* The answer to rpc as a JSON object (NUL-terminated, in the arena); NULL when out of memory. */
char *af_control_encode(const af_rpc *rpc, const ProtobufCMessage *resp,
                        af_arena *arena) AF_MUST_USE;
/* An error as the JSON object {"__type": ..., "message": ...}, in the arena; NULL when out of
 * memory. */
char *af_control_error(const af_error *err, af_arena *arena) AF_MUST_USE;

#endif
