"""grpc.health.v1.Health with Python stubs generated from Debian's grpc-proto: Check for the
server ("") and appflow.v1.AppFlowService (SERVING) and for unknown services (NOT_FOUND);
Watch, which streams SERVING, SERVICE_UNKNOWN for unknown services, and at shutdown
NOT_SERVING followed by the end of the stream (UNAVAILABLE) at once, not after the grace
period; watches cancelled by the client give their slot back (the server keeps 16)."""

import os
import signal
import sys
import time
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
HC = P.health_pb2.HealthCheckRequest
RESP = P.health_pb2.HealthCheckResponse
SERVING, NOT_SERVING, SERVICE_UNKNOWN = RESP.SERVING, RESP.NOT_SERVING, RESP.SERVICE_UNKNOWN
C = grpc.StatusCode
SERVICE = "appflow.v1.AppFlowService"
WATCH_SLOTS = 16  # HEALTH_WATCH_CALLS in src/grpc/server.c

GRACE = 10  # long, so that anything waiting for it shows
WATCH_END_LIMIT = 3.0  # the watch stream ends this soon after SIGTERM
EXIT_LIMIT = 6.0  # and the server exits this soon (ASan), well before GRACE

FLOWS = [h.flow("health_sched", "Scheduled", "Active"), h.flow("health_event", "Event", "Active")]


def name_of(status):
    return RESP.ServingStatus.Name(status)


Watcher = h.HealthWatcher


class HealthTest(h.ServerTestCase):
    def setUp(self):
        self.server = self.start(FLOWS, "--shutdown-grace", str(GRACE))
        self.channel = h.channel(self.server.port)
        self.addCleanup(self.channel.close)
        self.health = P.health_pb2_grpc.HealthStub(self.channel)
        self.flows = S.appflow_pb2_grpc.AppFlowServiceStub(self.channel)
        # Stop (and check) the server while its clients are still there: open watches then
        # end the designed way (NOT_SERVING), never by clients leaving as SIGTERM arrives,
        # which ShutdownRaceTest covers on its own. Runs before the cleanups above.
        self.addCleanup(self.server.check_stopped_cleanly)

    def watch(self, service=""):
        """A Watcher on the test's channel; the server's stop ends it if the test does not."""
        return Watcher(self.health, service)

    def check(self, service):
        return self.health.Check(HC(service=service), timeout=10).status

    def assertStillServing(self):
        self.assertEqual(self.check(""), SERVING)
        r = self.flows.StopFlow(S.appflow_pb2.StopFlowRequest(flow_name="health_sched"), timeout=10)
        self.assertEqual(r.flow_status, S.appflow_pb2.FLOW_STATUS_SUSPENDED)

    def sigterm_and_time_exit(self):
        """SIGTERM; returns (time sent, seconds until the server exited). Asserts status 0."""
        t0 = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        try:
            status = self.server.wait(GRACE + 10)
        except Exception:
            self.fail(f"appflowd did not exit within {GRACE + 10}s of SIGTERM:\n"
                      f"{self.server.stderr_text()}")
        took = time.monotonic() - t0
        self.assertEqual(status, 0, self.server.stderr_text())
        return t0, took

    # ---- Check ----

    def test_check_server_and_service(self):
        self.assertEqual(self.check(""), SERVING)
        self.assertEqual(self.check(SERVICE), SERVING)

    def test_check_unknown_service(self):
        for service in ("nope", "appflow.v1.Nope", "grpc.health.v1.Health "):
            with self.subTest(service=service):
                with self.assertRaises(grpc.RpcError) as cm:
                    self.check(service)
                self.assertEqual(cm.exception.code(), C.NOT_FOUND, cm.exception.details())
        self.assertEqual(self.check(SERVICE), SERVING)  # the server is still fine

    # ---- Watch ----

    def test_watch_serving_until_shutdown(self):
        w = self.watch("")
        self.assertEqual(w.wait_statuses(1), [SERVING])
        t0, took = self.sigterm_and_time_exit()
        err = w.wait_end(timeout=WATCH_END_LIMIT + 5)
        self.assertEqual(w.statuses, [SERVING, NOT_SERVING],
                         [name_of(s) for s in w.statuses])
        self.assertIsNotNone(err, "the stream ended with OK")
        self.assertEqual(err.code(), C.UNAVAILABLE, err)
        self.assertIn("shutting down", err.details())
        self.assertLess(w.times[1] - t0, WATCH_END_LIMIT, "NOT_SERVING came late")
        self.assertLess(w.ended_at - t0, WATCH_END_LIMIT, "the stream ended late")
        self.assertLess(took, EXIT_LIMIT,
                        f"exit took {took:.1f}s with a watcher (grace {GRACE}s):\n"
                        f"{self.server.stderr_text()}")

    def test_watch_service_by_name(self):
        w = self.watch(SERVICE)
        self.assertEqual(w.wait_statuses(1), [SERVING])
        self.assertStillServing()  # other calls while the watch is open
        self.assertEqual(w.statuses, [SERVING], "a status sent without a change")
        t0, took = self.sigterm_and_time_exit()
        err = w.wait_end(timeout=WATCH_END_LIMIT + 5)
        self.assertEqual(w.statuses, [SERVING, NOT_SERVING])
        self.assertEqual(err.code(), C.UNAVAILABLE)
        self.assertLess(took, EXIT_LIMIT)

    def test_watch_unknown_service(self):
        w = self.watch("nope")
        self.assertEqual(w.wait_statuses(1), [SERVICE_UNKNOWN])
        self.assertStillServing()
        self.assertIsNone(w.ended_at, "the protocol keeps an unknown service's watch open")
        self.assertEqual(w.statuses, [SERVICE_UNKNOWN])

    def test_cancelled_watches_free_their_slots(self):
        # One after another, more watches than the server has slots: a slot kept by a
        # cancelled watch would leave a later watch waiting (and time out).
        for i in range(WATCH_SLOTS + 4):
            w = Watcher(self.health, "" if i % 2 else SERVICE, timeout=15)
            self.assertEqual(w.wait_statuses(1, timeout=15), [SERVING], f"watch {i}")
            w.cancel()
        # Every slot at once, twice: only possible if none leaked.
        for round_ in range(2):
            ws = [self.watch("" if i % 2 else SERVICE) for i in range(WATCH_SLOTS)]
            for i, w in enumerate(ws):
                self.assertEqual(w.wait_statuses(1, timeout=15), [SERVING],
                                 f"round {round_}, concurrent watch {i}")
            self.assertStillServing()
            if round_ == 0:
                for w in ws:
                    w.cancel()
        # the last 16 are open at shutdown: all hear NOT_SERVING
        t0, took = self.sigterm_and_time_exit()
        for i, w in enumerate(ws):
            self.assertEqual(w.wait_end().code(), C.UNAVAILABLE, f"watch {i}")
            self.assertEqual(w.statuses, [SERVING, NOT_SERVING], f"watch {i}")
        self.assertLess(took, EXIT_LIMIT)

    def test_watches_cancelled_at_once_free_their_slots(self):
        # Regression: a watch cancelled while its first status was being sent stayed in its
        # slot for good; after WATCH_SLOTS such races no new watch was ever answered.
        for i in range(WATCH_SLOTS * 4):
            call = self.health.Watch(HC(service=""), timeout=15)
            call.cancel()
        h.wait_until(lambda: self.fresh_watch_answers(), timeout=15, interval=0.2,
                     what="a new watch answered after many cancelled at once")
        ws = [self.watch("") for _ in range(WATCH_SLOTS)]  # every slot is free again
        for i, w in enumerate(ws):
            self.assertEqual(w.wait_statuses(1, timeout=15), [SERVING], f"watch {i}")

    def fresh_watch_answers(self):
        w = Watcher(self.health, "", timeout=2)
        try:
            return w.wait_statuses(1, timeout=2) == [SERVING]
        except AssertionError:
            return False
        finally:
            w.cancel()

    def test_client_leaving_without_cancel(self):
        """A watcher whose connection closes (the client process goes away) frees its slot
        too."""
        for i in range(WATCH_SLOTS + 2):
            ch = h.own_channel(self.server.port)
            w = Watcher(P.health_pb2_grpc.HealthStub(ch), "", timeout=15)
            self.assertEqual(w.wait_statuses(1, timeout=15), [SERVING], f"watch {i}")
            ch.close()
            err = w.wait_end()
            self.assertIsNotNone(err)
        self.assertStillServing()
        ws = [self.watch("") for _ in range(WATCH_SLOTS)]
        for i, w in enumerate(ws):
            self.assertEqual(w.wait_statuses(1, timeout=15), [SERVING], f"concurrent watch {i}")

    def test_many_watchers_all_hear_not_serving(self):
        ws = [self.watch("" if i % 2 else SERVICE) for i in range(10)]
        for w in ws:
            self.assertEqual(w.wait_statuses(1), [SERVING])
        unknown = self.watch("nope")
        self.assertEqual(unknown.wait_statuses(1), [SERVICE_UNKNOWN])
        t0, took = self.sigterm_and_time_exit()
        for i, w in enumerate(ws):
            err = w.wait_end(timeout=WATCH_END_LIMIT + 5)
            self.assertEqual(w.statuses, [SERVING, NOT_SERVING], f"watcher {i}")
            self.assertEqual(err.code(), C.UNAVAILABLE, f"watcher {i}: {err!r}")
            self.assertLess(w.ended_at - t0, WATCH_END_LIMIT, f"watcher {i} ended late")
        # the unknown service's watch ends too (what it last hears is not specified)
        self.assertIsNotNone(unknown.wait_end(timeout=WATCH_END_LIMIT + 5))
        self.assertLess(took, EXIT_LIMIT, self.server.stderr_text())

    def test_watchers_on_many_connections(self):
        ws = []
        chans = [h.own_channel(self.server.port) for _ in range(6)]
        for ch in chans:
            self.addCleanup(ch.close)
            ws.append(Watcher(P.health_pb2_grpc.HealthStub(ch), ""))
        self.addCleanup(self.server.check_stopped_cleanly)  # before the channels close
        for w in ws:
            self.assertEqual(w.wait_statuses(1), [SERVING])
        t0, took = self.sigterm_and_time_exit()
        for w in ws:
            self.assertEqual(w.wait_end(timeout=WATCH_END_LIMIT + 5).code(), C.UNAVAILABLE)
            self.assertEqual(w.statuses, [SERVING, NOT_SERVING])
        self.assertLess(took, EXIT_LIMIT)


@h.door_only
class ShutdownRaceTest(unittest.TestCase):
    TRIALS = 30

    def test_watchers_leaving_as_shutdown_begins(self):
        """Watch clients that go away at the moment SIGTERM arrives (their cancellations
        reach the server while it starts telling watchers NOT_SERVING): the server still
        exits 0. Each trial cancels 16 watches and sends SIGTERM at once."""
        failures = []
        for trial in range(self.TRIALS):
            srv = h.start_server(FLOWS, "--shutdown-grace", str(GRACE))
            try:
                with h.own_channel(srv.port) as ch:
                    stub = P.health_pb2_grpc.HealthStub(ch)
                    calls = [stub.Watch(HC(service=""), timeout=30) for _ in range(WATCH_SLOTS)]
                    for c in calls:
                        self.assertEqual(next(c).status, SERVING)
                    for c in calls:
                        c.cancel()
                    srv.send_signal(signal.SIGTERM)
                    status = srv.wait(GRACE + 10)
            finally:
                srv.stop(signal.SIGKILL)
            if status != 0:
                failures.append((trial, status, srv.stderr_text()))
        if failures:
            trial, status, stderr = failures[0]
            self.fail(f"{len(failures)} of {self.TRIALS} trials exited non-zero; the first "
                      f"(trial {trial}) with status {status}, stderr:\n{stderr}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
