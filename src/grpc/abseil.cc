// The one C++ file: Abseil's settings can only be set through its C++ API.
//
// Debian builds Abseil without NDEBUG, so its mutexes run in debug mode: every lock taken by the
// gRPC C core (absl::Mutex under grpc_core::Mutex and gpr_mu) is checked for lock-order cycles
// against a process-wide graph, under a process-wide lock. callgrind gave that check (Abseil's
// graphcycles and synchronization code) 8 to 11% of the server's instructions per gRPC call
// (bench/RESULTS.md). gRPC's own builds define NDEBUG, where the check is off: this gives the
// server the same.
#include "grpc/abseil.h"

#include <absl/synchronization/mutex.h>

extern "C" void af_grpc_abseil_production(void) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
