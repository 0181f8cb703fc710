"""appflowd's process life: flags and usage errors, seed-file errors with their positions, a
busy port, the start-up line, and shutdown on SIGTERM/SIGINT (under load, with a grace period)."""

import collections
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
C = grpc.StatusCode


@h.store_independent
class FlagsTest(unittest.TestCase):
    def assertUsageError(self, *args, mentions=()):
        r = h.run_appflowd(*args)
        self.assertEqual(r.returncode, 2, f"{args}: stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "", args)
        self.assertIn("usage: appflowd", r.stderr, args)
        for m in mentions:
            self.assertIn(m, r.stderr, args)
        self.assertNotIn("listening", r.stderr, args)
        return r

    def test_help(self):
        r = h.run_appflowd("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("usage: appflowd"), r.stdout)
        for flag in ("--grpc-listen", "--flows", "--region", "--account", "--threads",
                     "--shutdown-grace", "--log-level", "--help", "--version"):
            self.assertIn(flag, r.stdout)
        self.assertEqual(r.stderr, "")

    def test_version(self):
        r = h.run_appflowd("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^appflowd \d+\.\d+\.\d+\n$")
        self.assertEqual(r.stderr, "")

    def test_unknown_flag(self):
        self.assertUsageError("--bogus", mentions=("--bogus",))
        self.assertUsageError("-x")

    def test_missing_flag_argument(self):
        for flag in ("--threads", "--flows", "--grpc-listen", "--log-level", "--shutdown-grace",
                     "--region", "--account"):
            with self.subTest(flag=flag):
                self.assertUsageError(flag, mentions=(flag,))

    def test_unexpected_argument(self):
        self.assertUsageError("--grpc-listen", "127.0.0.1:0", "extra", mentions=("extra",))

    def test_bad_listen_address(self):
        for v in ("nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:port"):
            with self.subTest(listen=v):
                self.assertUsageError("--grpc-listen", v, mentions=("--grpc-listen",))

    def test_bad_threads(self):
        for v in ("0", "-1", "257", "abc", "", "2x", "1.5"):
            with self.subTest(threads=v):
                self.assertUsageError("--grpc-listen", "127.0.0.1:0", "--threads", v,
                                      mentions=("--threads",))

    def test_bad_log_level(self):
        for v in ("verbose", "", "INFO", "trace"):
            with self.subTest(level=v):
                self.assertUsageError("--grpc-listen", "127.0.0.1:0", "--log-level", v,
                                      mentions=("--log-level",))

    def test_bad_shutdown_grace(self):
        for v in ("-1", "abc", "", "3601", "nan"):
            with self.subTest(grace=v):
                self.assertUsageError("--grpc-listen", "127.0.0.1:0", "--shutdown-grace", v,
                                      mentions=("--shutdown-grace",))

    def test_bad_region_and_account(self):
        for args, word in ((("--region", "US_EAST"), "region"), (("--region", ""), "region"),
                           (("--account", "12"), "account"),
                           (("--account", "12345678901x"), "account")):
            with self.subTest(args=args):
                r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(word, r.stderr)
                self.assertNotIn("listening", r.stderr)


# Entries of a seed past the 4 MiB from which appflowd reads it in two parts at start-up.
LARGE_SEED = 12000


@h.store_independent
class SeedErrorTest(unittest.TestCase):
    """A bad seed file stops start-up with exit 2 and "FILE:LINE:COLUMN: message"."""

    def run_seed(self, text):
        path = h.write_seed(None, text=text)
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--flows", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertNotIn("listening", r.stderr)
        return path, r.stderr

    def assertPosition(self, text, line, column, mentions=()):
        path, err = self.run_seed(text)
        prefix = f"{path}:{line}:{column}: "
        self.assertTrue(err.startswith(prefix), f"expected {prefix!r}..., got {err!r}")
        for m in mentions:
            self.assertIn(m, err)
        return err

    @staticmethod
    def column_of(text, line, marker):
        """1-based column, in characters, of marker on 1-based line of text."""
        return text.split("\n")[line - 1].index(marker) + 1

    @staticmethod
    def entry(name, trigger="Event", **changes):
        """One seed entry (a whole CreateFlow request, harness.flow) as JSON on one line;
        changes replace members (None removes one)."""
        d = h.flow(name, trigger, "Active")
        d.update(changes)
        return json.dumps({k: v for k, v in d.items() if v is not None})

    def test_syntax_error(self):
        # A missing comma inside a flow: reported where jansson stops, on its line.
        text = '[\n  {"flowName": "ok_1" "flowStatus": "Active"}\n]\n'
        start = self.column_of(text, 2, '"flowStatus"')
        path, err = self.run_seed(text)
        m = re.match(re.escape(path) + r":2:(\d+): ", err)
        self.assertTrue(m, err)
        self.assertIn(int(m.group(1)), range(start, start + len('"flowStatus"')), err)

    def test_unterminated_array(self):
        text = "[\n  " + self.entry("ok_1") + "\n"
        # The error is at the end of the file: line 3 (after the last newline), column 1.
        self.assertPosition(text, 3, 1)

    def test_unknown_trigger_type(self):
        # A flow CreateFlow refuses is reported at its '{', with CreateFlow's message.
        text = ("[\n  " + self.entry("ok_1") + ",\n  " +
                self.entry("bad", triggerConfig={"triggerType": "Hourly"}) + "\n]\n")
        self.assertPosition(text, 3, 3, ("Value 'Hourly' at 'triggerConfig.triggerType'",
                                         "Member must satisfy enum value set"))

    def test_unknown_flow_status(self):
        text = "[" + self.entry("ok_1", flowStatus="Running") + "]"
        self.assertPosition(text, 1, 2, ("flowStatus must be one of Active",))

    def test_duplicate_name(self):
        text = ("[\n  " + self.entry("dup") + ",\n  " + self.entry("other") + ",\n  " +
                self.entry("dup", "Scheduled", flowStatus="Draft") + "\n]\n")
        err = self.assertPosition(text, 4, 3, ("duplicate flowName 'dup'",))
        self.assertIn("first defined at line 2", err)

    def test_invalid_flow_name_in_seed(self):
        text = "[\n " + self.entry("bad name") + "\n]"
        self.assertPosition(text, 2, 2, ("flow 'bad name'", "Value 'bad name' at 'flowName'"))

    def test_missing_member(self):
        text = "[\n  " + self.entry("nosource", sourceFlowConfig=None) + "\n]"
        self.assertPosition(text, 2, 3, ("Value null at 'sourceFlowConfig' failed to satisfy "
                                         "constraint: Member must not be null",))

    def test_column_counts_characters_not_bytes(self):
        # Non-ASCII before the error on the same line: column in characters (code points).
        text = '[{"flowName": "ab", "description": "\u00e9\u00e9\u00e9\u00e9\\q"}]'
        col = self.column_of(text, 1, "\\q") + 1  # jansson stops on the escape's letter
        self.assertPosition(text, 1, col, ("invalid escape",))

    def test_a_name_given_twice_in_a_large_seed(self):
        # 4 MiB and more load in two parts side by side at start-up (src/bridge/seed.h); the
        # error is still the one the file gives read in order, at the later of the two.
        entries = [self.entry(f"big_{i:05d}") for i in range(LARGE_SEED)]
        entries[-1] = self.entry("big_00000", "Scheduled", flowStatus="Draft")
        text = "[\n  " + ",\n  ".join(entries) + "\n]\n"
        self.assertGreater(len(text), 4 << 20)
        path, err = self.run_seed(text)
        # the parts found it, the store was emptied (an info line says so), and reading in
        # order said where
        lines = err.splitlines()
        self.assertRegex(lines[0], r"^appflowd: info: reset: removed \d+ flows")
        self.assertEqual(lines[1:], [f"{path}:{LARGE_SEED + 1}:3: duplicate flowName "
                                     "'big_00000' (first defined at line 2)"])

    def test_missing_file(self):
        path = os.path.join(h.tempdir(), "no-such-file.json")
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--flows", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.startswith(f"{path}: "), r.stderr)
        self.assertIn("No such file or directory", r.stderr)
        self.assertNotRegex(r.stderr, re.escape(path) + r":\d+:\d+:")

    def test_directory_instead_of_file(self):
        path = h.tempdir()
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--flows", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.startswith(f"{path}: "), r.stderr)


class StartupTest(h.ServerTestCase):
    def test_startup_line_counts_flows(self):
        flows = [h.flow(f"count_{i}", ["Scheduled", "Event", "OnDemand"][i % 3], "Active",
                        description=f"flow number {i}", tags={"n": str(i)})
                 for i in range(17)]
        srv = self.start(flows, threads=3)
        m = srv.startup
        self.assertEqual(m.group("flows"), "17")
        self.assertEqual(m.group("threads"), "3")
        self.assertEqual(m.group("listen"), "127.0.0.1:0")
        self.assertGreater(srv.port, 0)
        self.assertEqual(m.group("version"), h.run_appflowd("--version").stdout.split()[1])
        # The printed port is the one serving.
        with h.channel(srv.port) as ch:
            r = S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                pb.StopFlowRequest(flow_name="count_16"), timeout=10)  # Event
            self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)
            with self.assertRaises(grpc.RpcError) as cm:
                S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                    pb.StopFlowRequest(flow_name="count_17"), timeout=10)
            self.assertEqual(cm.exception.code(), C.NOT_FOUND)

    def test_a_large_seed_loads_whole(self):
        # Read in two parts at start-up: every flow is there, from either side of the middle.
        flows = [h.flow(f"big_{i:05d}", "Event", "Suspended") for i in range(LARGE_SEED)]
        path = h.write_seed(None, text="[\n" + ",\n".join(json.dumps(f) for f in flows) +
                            "\n]\n")
        self.assertGreater(os.path.getsize(path), 4 << 20)
        srv = self.start(None, flows_path=path)
        self.assertEqual(srv.startup.group("flows"), str(LARGE_SEED))
        with h.channel(srv.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            for i in (0, LARGE_SEED // 2 - 1, LARGE_SEED // 2, LARGE_SEED - 1):
                r = stub.DescribeFlow(pb.DescribeFlowRequest(flow_name=f"big_{i:05d}"),
                                      timeout=10)
                self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)
        self.assertFalse([line for line in srv.lines() if "reset:" in line],
                         "loaded in two parts, not again in order")

    def test_no_flows(self):
        srv = h.Server(h.server_argv(None)).wait_started()
        self.addCleanup(srv.check_stopped_cleanly)
        self.assertEqual(srv.startup.group("flows"), "0")
        srv2 = self.start([])
        self.assertEqual(srv2.startup.group("flows"), "0")

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            r = h.run_appflowd("--grpc-listen", f"127.0.0.1:{port}", "--threads", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Address already in use", r.stderr)
        self.assertIn(f"127.0.0.1:{port}", r.stderr)
        self.assertNotIn("listening", r.stderr)

    def test_log_level_error_keeps_startup_line(self):
        srv = self.start([h.flow("quiet", "Event", "Active")], "--log-level", "error")
        with h.channel(srv.port) as ch:
            S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                pb.StopFlowRequest(flow_name="quiet"), timeout=10)
        self.assertExitedCleanly(srv)
        self.assertEqual(srv.transitions(), [], "info lines are below --log-level error")
        self.assertFalse([l for l in srv.lines() if l.startswith("appflowd: info:")])


class ShutdownTest(h.ServerTestCase):
    NFLOWS = 100

    def load_server(self, *extra):
        flows = [h.flow(f"load_{i:03d}", "Scheduled" if i % 2 else "Event", "Active")
                 for i in range(self.NFLOWS)]
        srv = h.start_server(flows, *extra, threads=2)
        self.addCleanup(srv.stop)  # only matters if the test fails early
        return srv

    def test_sigterm_under_load(self):
        srv = self.load_server()
        stop = threading.Event()
        lock = threading.Lock()
        ok = [0]
        after_exit = [0]  # calls started after the server had exited
        codes = []
        slow = []

        def client(i):
            rnd = random.Random(i)
            with h.channel(srv.port) as ch:
                stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
                while not stop.is_set():
                    exited = not srv.running()
                    name = f"load_{rnd.randrange(self.NFLOWS):03d}"
                    t0 = time.monotonic()
                    try:
                        r = stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=5)
                        good = r.flow_status == pb.FLOW_STATUS_SUSPENDED
                        with lock:
                            ok[0] += 1
                            if not good:
                                codes.append(("bad response", str(r)))
                    except grpc.RpcError as e:
                        with lock:
                            codes.append((e.code(), e.details()))
                    took = time.monotonic() - t0
                    with lock:
                        if exited:
                            after_exit[0] += 1
                        if took > 5.5:
                            slow.append(took)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        try:
            h.wait_until(lambda: ok[0] >= 200, 30, what="200 successful calls")
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            try:
                status = srv.wait(15)
            except Exception:
                status = None
            elapsed = time.monotonic() - t0
            # Let the clients run into the closed server a few times each.
            h.wait_until(lambda: after_exit[0] >= 16, 20, what="calls after exit")
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertFalse([t for t in threads if t.is_alive()], "a client hung")
        self.assertEqual(status, 0, f"exit status; stderr:\n{srv.stderr_text()}")
        self.assertLess(elapsed, 8, "server took too long to exit")
        self.assertEqual(slow, [], "calls that took longer than their timeout")
        wrong = [c for c in codes if c[0] not in (C.UNAVAILABLE, C.CANCELLED)]
        self.assertEqual(wrong, [], "failures other than UNAVAILABLE/CANCELLED")
        self.assertTrue(codes, "calls after exit must have failed")
        if os.environ.get("AF_E2E_VERBOSE"):
            print(f"\n  ok={ok[0]} failures={collections.Counter(c[0] for c in codes)} "
                  f"exit after {elapsed:.2f}s", file=sys.stderr)
        self.assertTrue(any(l.startswith("appflowd: info: Terminated: shutting down")
                            for l in srv.lines()), srv.stderr_text())

    def test_sigint(self):
        srv = self.load_server()
        with h.channel(srv.port) as ch:
            S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                pb.StopFlowRequest(flow_name="load_001"), timeout=10)
        self.assertExitedCleanly(srv, signal.SIGINT)
        self.assertTrue(any("Interrupt: shutting down" in l for l in srv.lines()),
                        srv.stderr_text())

    def test_sigterm_idle(self):
        srv = self.load_server()
        t0 = time.monotonic()
        self.assertExitedCleanly(srv)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(srv.lines()[-1], "appflowd: info: stopped")

    def test_idle_client_does_not_delay_shutdown(self):
        # A client that keeps its connection open but has no call running: nothing is in
        # flight, so the grace period has nothing to wait for (with no client at all the
        # server exits in well under a second, see test_sigterm_idle).
        srv = self.load_server("--shutdown-grace", "4")
        ch = h.channel(srv.port)
        self.addCleanup(ch.close)
        r = S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
            pb.StopFlowRequest(flow_name="load_003"), timeout=10)
        self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        status = srv.wait(20)
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 0, srv.stderr_text())
        self.assertEqual([l for l in srv.lines() if "still running" in l], [],
                         f"no call was running (exited after {elapsed:.2f}s)")
        self.assertLess(elapsed, 3, "an idle connection held shutdown for the grace period")

    REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    LIST_SERVICES = b"\x3a\x00"  # ServerReflectionRequest{list_services: ""}

    def hanging_call(self, srv):
        """A reflection stream the server holds open: headers sent, its one request held back
        until the returned Event is set, then the stream half-closed. Returns (responses,
        release, channel); responses is the call's iterator. (A unary call is handed to the
        server only with its message, see test_unary_call_whose_message_is_late_at_sigterm.)"""
        release = threading.Event()

        def requests():
            release.wait(30)
            yield self.LIST_SERVICES

        ch = h.channel(srv.port)
        self.addCleanup(ch.close)
        self.addCleanup(release.set)
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
        # A complete call first, so the connection is up before the stuck call starts...
        stub.StopFlow(pb.StopFlowRequest(flow_name="load_001"), timeout=10)
        call = ch.stream_stream(self.REFLECTION, request_serializer=h.identity,
                                response_deserializer=h.identity)
        responses = call(requests(), timeout=30)
        # ...and one after it on the same connection: its answer means the server has read
        # the frames sent before it, the stuck call's headers included (and a stream is
        # handed over on its headers).
        stub.StopFlow(pb.StopFlowRequest(flow_name="load_002"), timeout=10)
        return responses, release, ch

    def test_shutdown_grace_cancels_stuck_calls(self):
        srv = self.load_server("--shutdown-grace", "1.5")
        responses, _, _ = self.hanging_call(srv)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        status = srv.wait(20)
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 0, srv.stderr_text())
        self.assertIn("appflowd: info: Terminated: shutting down (grace 1.5s)", srv.lines())
        self.assertIn("appflowd: warn: 1 call still running after 1.5s: cancelling them",
                      srv.lines())
        self.assertGreaterEqual(elapsed, 1.2, "the grace period was not waited for")
        self.assertLess(elapsed, 1.5 + 6)
        with self.assertRaises(grpc.RpcError) as cm:
            list(responses)
        self.assertIn(cm.exception.code(), (C.UNAVAILABLE, C.CANCELLED))

    def test_call_in_flight_at_sigterm_finishes_within_grace(self):
        # --help: "seconds in-flight calls get to finish on SIGINT/SIGTERM". A stream the
        # server holds when SIGTERM arrives is in flight: its request, arriving within the
        # grace period, is answered and the stream ends OK.
        srv = self.load_server("--shutdown-grace", "10")
        responses, release, ch = self.hanging_call(srv)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        srv.wait_for_line(lambda l: l.startswith("appflowd: info: Terminated: shutting down"))
        # The scenario, not synchronisation: the message arrives half a second into the
        # 10-second grace period (a slow client or network).
        timer = threading.Timer(0.5, release.set)
        timer.start()
        self.addCleanup(timer.cancel)
        try:
            got = list(responses)
            outcome = "OK" if len(got) == 1 and b"appflow.v1.AppFlowService" in got[0] \
                else f"unexpected replies {got!r}"
        except grpc.RpcError as e:
            outcome = f"{e.code()}: {e.details()}"
        outcome_at = time.monotonic() - t0
        ch.close()  # nothing of ours keeps the server waiting
        status = srv.wait(20)
        self.assertEqual(status, 0, srv.stderr_text())
        exited_at = time.monotonic() - t0
        self.assertEqual(outcome, "OK",
                         f"a call in flight at SIGTERM was not allowed to finish in the grace "
                         f"period (answered after {outcome_at:.2f}s)")
        self.assertLess(exited_at, 8, "should exit once the last call is answered")

    def test_unary_call_whose_message_is_late_at_sigterm(self):
        # A unary call is handed to appflowd with its request message, as gRPC C++ servers
        # register unary methods (one batch fewer per call). One whose headers came before
        # SIGTERM but whose message had not is not yet a call of ours: gRPC refuses it with
        # UNAVAILABLE (which clients retry elsewhere) at once, and shutdown does not wait.
        srv = self.load_server("--shutdown-grace", "10")
        release = threading.Event()
        self.addCleanup(release.set)

        def body():
            release.wait(30)
            yield pb.StopFlowRequest(flow_name="load_000").SerializeToString()

        ch = h.channel(srv.port)
        self.addCleanup(ch.close)
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
        stub.StopFlow(pb.StopFlowRequest(flow_name="load_001"), timeout=10)
        call = ch.stream_unary(h.METHOD, request_serializer=h.identity,
                               response_deserializer=h.identity)
        fut = call.future(body(), timeout=30)
        stub.StopFlow(pb.StopFlowRequest(flow_name="load_002"), timeout=10)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        with self.assertRaises(grpc.RpcError) as cm:
            fut.result(15)
        self.assertEqual(cm.exception.code(), C.UNAVAILABLE, cm.exception.details())
        status = srv.wait(20)
        self.assertEqual(status, 0, srv.stderr_text())
        self.assertLess(time.monotonic() - t0, 5, "shutdown waited for a call not yet ours")
        self.assertEqual([l for l in srv.lines() if "still running" in l], [])
        self.assertIn("appflowd: info: flow load_002: FLOW_STATUS_ACTIVE -> "
                      "FLOW_STATUS_SUSPENDED", srv.lines())
        self.assertNotIn("appflowd: info: flow load_000: FLOW_STATUS_ACTIVE -> "
                         "FLOW_STATUS_SUSPENDED", srv.lines(), "half a call was applied")

    def test_shutdown_grace_zero(self):
        srv = self.load_server("--shutdown-grace", "0")
        responses, _, _ = self.hanging_call(srv)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        status = srv.wait(20)
        self.assertEqual(status, 0, srv.stderr_text())
        self.assertLess(time.monotonic() - t0, 5)
        with self.assertRaises(grpc.RpcError) as cm:
            list(responses)
        self.assertIn(cm.exception.code(), (C.UNAVAILABLE, C.CANCELLED))


if __name__ == "__main__":
    unittest.main(verbosity=2)
