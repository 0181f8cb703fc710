/* Settings of Abseil, the library under the gRPC C core, that the server chooses for itself.
 *
 * Ownership: nothing to own. Errors: none. Thread-safety: call before grpc_init, from one
 * thread, while no other thread uses gRPC. */
#ifndef AF_GRPC_ABSEIL_H
#define AF_GRPC_ABSEIL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Stops Abseil checking every mutex acquisition against its graph of lock orders (see
 * abseil.cc): the check is Abseil's debug mode, which Debian's build leaves on. */
void af_grpc_abseil_production(void);

#ifdef __cplusplus
}
#endif

#endif
