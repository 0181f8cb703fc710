/* src/grpc/abseil.cc: Abseil's lock-order check, on in Debian's build, is off once the server
 * chooses production settings. The check is seen from gpr_mu, which is an absl::Mutex. */
#include "grpc/abseil.h"

#include <criterion/criterion.h>
#include <grpc/support/sync.h>
#include <signal.h>

/* Takes two mutexes in one order and then in the other: a cycle in Abseil's lock-order graph,
 * though one thread alone never deadlocks on it. */
static void take_in_both_orders(void) {
  gpr_mu a, b;
  gpr_mu_init(&a);
  gpr_mu_init(&b);
  gpr_mu_lock(&a);
  gpr_mu_lock(&b);
  gpr_mu_unlock(&b);
  gpr_mu_unlock(&a);
  gpr_mu_lock(&b);
  gpr_mu_lock(&a);
  gpr_mu_unlock(&a);
  gpr_mu_unlock(&b);
  gpr_mu_destroy(&a);
  gpr_mu_destroy(&b);
}

/* The premise: as Debian builds Abseil, the check runs (and aborts on the cycle). */
Test(abseil, debians_build_checks_every_lock_order, .signal = SIGABRT) { take_in_both_orders(); }

Test(abseil, production_settings_skip_the_check) {
  af_grpc_abseil_production();
  take_in_both_orders();
}
