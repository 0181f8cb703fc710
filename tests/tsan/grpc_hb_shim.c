/* LD_PRELOAD shim for the TSan appflowd: tells ThreadSanitizer about the one happens-before
 * edge appflowd relies on gRPC for.
 *
 * gRPC's contract: everything a thread does before starting an operation with a tag
 * (grpc_call_start_batch, grpc_server_request_[registered_]call,
 * grpc_server_shutdown_and_notify) happens before the completion-queue event carrying that
 * tag is returned by grpc_completion_queue_next, on whichever thread polls it. appflowd's
 * per-slot state relies on exactly this to move a call between its poll threads without a
 * lock. Debian's libgrpc is not built with TSan and hands the tag over through its own
 * atomics and absl::Mutex (futex-based, invisible to TSan's interceptors), so without this
 * every slot handoff is reported as a race in src/grpc/server.c.
 *
 * Each wrapper does a __tsan_release on the tag before calling gRPC, and
 * grpc_completion_queue_next does a __tsan_acquire on the tag it returns: no report is
 * suppressed, and any access to slot state that is NOT ordered by that handoff (another
 * thread, a lock missing) is still reported. Built uninstrumented by tests/tsan/run.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>

/* Weak: if the shim ever lands in a process without TSan, it only forwards. */
void __tsan_acquire(void *addr) __attribute__((weak));
void __tsan_release(void *addr) __attribute__((weak));

static void release(void *tag) {
  if (__tsan_release != NULL)
    __tsan_release(tag);
}

static void acquire(void *tag) {
  if (__tsan_acquire != NULL)
    __tsan_acquire(tag);
}

static void *real(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    fprintf(stderr, "grpc_hb_shim: %s not found\n", name);
    abort();
  }
  return f;
}

#define REAL(name)                                                                                 \
  static __typeof__(&name) real_##name;                                                            \
  if (real_##name == NULL)                                                                         \
  real_##name = (__typeof__(&name))real(#name)

grpc_call_error grpc_call_start_batch(grpc_call *call, const grpc_op *ops, size_t nops, void *tag,
                                      void *reserved) {
  REAL(grpc_call_start_batch);
  release(tag);
  return real_grpc_call_start_batch(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(grpc_server *server, grpc_call **call,
                                         grpc_call_details *details,
                                         grpc_metadata_array *request_metadata,
                                         grpc_completion_queue *cq_bound_to_call,
                                         grpc_completion_queue *cq_for_notification, void *tag) {
  REAL(grpc_server_request_call);
  release(tag);
  return real_grpc_server_request_call(server, call, details, request_metadata, cq_bound_to_call,
                                       cq_for_notification, tag);
}

grpc_call_error grpc_server_request_registered_call(grpc_server *server, void *registered_method,
                                                    grpc_call **call, gpr_timespec *deadline,
                                                    grpc_metadata_array *request_metadata,
                                                    grpc_byte_buffer **optional_payload,
                                                    grpc_completion_queue *cq_bound_to_call,
                                                    grpc_completion_queue *cq_for_notification,
                                                    void *tag) {
  REAL(grpc_server_request_registered_call);
  release(tag);
  return real_grpc_server_request_registered_call(server, registered_method, call, deadline,
                                                  request_metadata, optional_payload,
                                                  cq_bound_to_call, cq_for_notification, tag);
}

void grpc_server_shutdown_and_notify(grpc_server *server, grpc_completion_queue *cq, void *tag) {
  REAL(grpc_server_shutdown_and_notify);
  release(tag);
  real_grpc_server_shutdown_and_notify(server, cq, tag);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue *cq, gpr_timespec deadline,
                                      void *reserved) {
  REAL(grpc_completion_queue_next);
  grpc_event ev = real_grpc_completion_queue_next(cq, deadline, reserved);
  if (ev.type == GRPC_OP_COMPLETE)
    acquire(ev.tag);
  return ev;
}
