"""appflowctl, the C client (nanopb on gRPC core), against a real appflowd: AWS CLI-style
output on success, `An error occurred (<Type>) when calling the StopFlow operation: <message>`
on service errors (exit 1), usage errors (exit 2), local limits and unreachable servers."""

import json
import os
import socket
import subprocess
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

NAME_256 = "n" * 255 + "9"
FLOWS = [
    h.flow("cli_sched_active", "Scheduled", "Active", description="for the cli"),
    h.flow("cli_event_active", "Event", "Active"),
    h.flow("cli_errored", "Event", "Errored"),
    h.flow("cli_suspended", "Scheduled", "Suspended"),
    h.flow("cli_draft", "Scheduled", "Draft"),
    h.flow("cli_deprecated", "Event", "Deprecated"),
    h.flow("cli_ondemand", "OnDemand", "Active"),
    h.flow("cli_ondemand_suspended", "OnDemand", "Suspended"),
    h.flow(NAME_256, "Event", "Errored"),
    h.flow("cli.p!@#-_", "Scheduled", "Active"),
]


def ctl(*args, timeout=30):
    h.require_binaries("APPFLOWCTL")
    return subprocess.run([h.APPFLOWCTL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StopFlowCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels(n=8)
        cls.server = h.start_server(FLOWS + cls.sentinels.flows())
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.addr = f"127.0.0.1:{cls.server.port}"
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    def stop(self, name, *extra):
        return ctl("--server", self.addr, *extra, "stop-flow", name)

    def assertSuccess(self, name):
        r = self.stop(name)
        self.assertEqual(r.returncode, 0, f"stderr: {r.stderr}")
        self.assertEqual(r.stderr, "")
        out = json.loads(r.stdout, object_pairs_hook=lambda pairs: pairs)
        self.assertEqual(out, [("flowArn", f"arn:aws:appflow:us-east-1:000000000000:flow/{name}"),
                               ("flowStatus", "Suspended")])
        # Printed the way the AWS CLI prints JSON: 4-space indent, one member a line.
        self.assertEqual(r.stdout, json.dumps(dict(out), indent=4, ensure_ascii=False) + "\n")
        return r

    def server_message(self, name):
        """What the server answers over gRPC for name (for calls that change nothing)."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)
        code, details, reason, domain = h.error_parts(cm.exception)
        return reason, details

    def assertServiceError(self, name, aws_type, mentions=()):
        r = self.stop(name)
        self.assertEqual(r.returncode, 1, f"stdout {r.stdout!r} stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        reason, message = self.server_message(name)
        self.assertEqual(reason, aws_type)
        self.assertEqual(
            r.stderr, f"An error occurred ({aws_type}) when calling the StopFlow operation: "
                      f"{message}\n")
        for m in mentions:
            self.assertIn(m, r.stderr)

    # ---- success ----

    def test_stop_scheduled_active(self):
        self.assertSuccess("cli_sched_active")
        self.assertSuccess("cli_sched_active")  # again: idempotent
        self.sentinels.barrier(self.server, self.stub)  # every earlier log line is read
        self.assertEqual(self.server.transitions_of("cli_sched_active"), ["FLOW_STATUS_ACTIVE"])

    def test_stop_event_active(self):
        self.assertSuccess("cli_event_active")

    def test_stop_errored(self):
        self.assertSuccess("cli_errored")

    def test_stop_suspended(self):
        self.assertSuccess("cli_suspended")

    def test_stop_256_character_name(self):
        self.assertSuccess(NAME_256)

    def test_stop_name_with_punctuation(self):
        self.assertSuccess("cli.p!@#-_")

    # ---- service errors ----

    def test_unknown_flow(self):
        self.assertServiceError("cli_nope", "ResourceNotFoundException", ("cli_nope",))

    def test_on_demand(self):
        self.assertServiceError("cli_ondemand", "UnsupportedOperationException", ("cli_ondemand",))
        self.assertServiceError("cli_ondemand_suspended", "UnsupportedOperationException")

    def test_draft_and_deprecated(self):
        self.assertServiceError("cli_draft", "ConflictException", ("cli_draft",))
        self.assertServiceError("cli_deprecated", "ConflictException", ("cli_deprecated",))

    def test_invalid_names(self):
        for name in ("a", "my flow", "flöw", "_x", "a/b", ""):
            with self.subTest(name=name):
                self.assertServiceError(name, "ValidationException", ("flowName",))

    def test_timeout_flag_with_live_server(self):
        r = self.stop("cli_nope2", "--timeout", "5")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("An error occurred (ResourceNotFoundException) when "
                                            "calling the StopFlow operation: "), r.stderr)

    # ---- local checks ----

    def test_257_character_name_refused_locally(self):
        name = "n" * 257
        r = self.stop(name)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("256", r.stderr)
        self.assertIn("StopFlow", r.stderr)
        # Refused before any call: the same answer with nothing listening.
        r2 = ctl("--server", f"127.0.0.1:{closed_port()}", "--timeout", "2", "stop-flow", name)
        self.assertEqual(r2.returncode, 1, r2.stderr)
        self.assertIn("256", r2.stderr)


class UsageTest(unittest.TestCase):
    def assertUsageError(self, *args):
        r = ctl(*args)
        self.assertEqual(r.returncode, 2, f"{args}: stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "", args)
        self.assertTrue(r.stderr, args)
        return r

    def test_no_arguments(self):
        r = self.assertUsageError()
        self.assertIn("usage: appflowctl", r.stderr)

    def test_unknown_command(self):
        r = self.assertUsageError("start-flow", "x1")
        self.assertIn("usage: appflowctl", r.stderr)
        self.assertUsageError("describe-flow")

    def test_stop_flow_argument_count(self):
        self.assertUsageError("stop-flow")
        self.assertUsageError("stop-flow", "a1", "a2")

    def test_bad_timeout(self):
        for t in ("abc", "0", "-1", "", "3601", "1s", "nan"):
            with self.subTest(timeout=t):
                r = self.assertUsageError("--timeout", t, "stop-flow", "x1")
                self.assertIn("--timeout", r.stderr)

    def test_unknown_option_and_missing_argument(self):
        self.assertUsageError("--bogus", "stop-flow", "x1")
        self.assertUsageError("--server")
        self.assertUsageError("stop-flow", "x1", "--timeout")

    def test_help_and_version(self):
        r = ctl("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: appflowctl", r.stdout)
        self.assertIn("stop-flow", r.stdout)
        r = ctl("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^appflowctl \d+\.\d+\.\d+\n$")


class UnreachableTest(unittest.TestCase):
    def test_closed_port_fails_within_timeout(self):
        t0 = time.monotonic()
        r = ctl("--server", f"127.0.0.1:{closed_port()}", "--timeout", "2", "stop-flow", "x1",
                timeout=20)
        elapsed = time.monotonic() - t0
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("StopFlow", r.stderr)
        self.assertLess(elapsed, 2 + 3, "must give up within --timeout (plus start-up slack)")

    def test_silent_server_times_out(self):
        # Accepts connections but never speaks HTTP/2: only the deadline ends the call.
        lst = socket.socket()
        self.addCleanup(lst.close)
        lst.bind(("127.0.0.1", 0))
        lst.listen(16)
        conns = []
        stop = threading.Event()

        def accept():
            lst.settimeout(0.2)
            while not stop.is_set():
                try:
                    conns.append(lst.accept()[0])
                except (socket.timeout, OSError):
                    pass

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        try:
            t0 = time.monotonic()
            r = ctl("--server", f"127.0.0.1:{lst.getsockname()[1]}", "--timeout", "2",
                    "stop-flow", "x1", timeout=30)
            elapsed = time.monotonic() - t0
        finally:
            stop.set()
            t.join(5)
            for c in conns:
                c.close()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("StopFlow", r.stderr)
        self.assertGreaterEqual(elapsed, 1.5, "gave up before --timeout")
        self.assertLess(elapsed, 2 + 4, "did not give up at --timeout")


if __name__ == "__main__":
    unittest.main(verbosity=2)
