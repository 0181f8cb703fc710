"""StopFlow over the AWS REST-JSON door with the AWS SDK for JavaScript v3
(@aws-sdk/client-appflow, pinned in tests/package.json, installed in tests/node_modules by
`npm ci`). js_stop_flow.mjs makes every call in one Node process (Node starts slowly); each
test checks one row of docs/ARCHITECTURE.md's StopFlow semantics table as the SDK reports it: output
members, or error.name, $metadata.httpStatusCode, $metadata.requestId and the message, against
what was on the wire (status, x-amzn-ErrorType, x-amzn-RequestId)."""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "js_stop_flow.mjs")
SDK = os.path.join(HERE, "..", "node_modules", "@aws-sdk", "client-appflow", "package.json")
PINNED = "3.1048.0"

NAME_257 = "s" * 257
NAME_70K = "j" * 70000
# The server's --max-request-bytes: small, so that NAME_70K's body is over it.
LIMIT = 64 * 1024

FLOWS = [
    h.flow("js_sched_active", "Scheduled", "Active"),
    h.flow("js_event_errored", "Event", "Errored"),
    h.flow("js_suspended", "Event", "Suspended"),
    h.flow("js_ondemand", "OnDemand", "Suspended"),
    h.flow("js_draft", "Scheduled", "Draft"),
    h.flow("js_deprecated", "Event", "Deprecated"),
    h.flow("s" * 256, "Scheduled", "Active"),
]

# (key, flowName): the calls, in order, all in one Node process.
CALLS = [
    ("sched_active", "js_sched_active"),
    ("event_errored", "js_event_errored"),
    ("suspended", "js_suspended"),
    ("sched_active_again", "js_sched_active"),
    ("ondemand", "js_ondemand"),
    ("draft", "js_draft"),
    ("deprecated", "js_deprecated"),
    ("missing", "js_missing"),
    ("pattern", "my flow"),
    ("non_ascii", "fl\u00f6w"),
    ("empty", ""),
    ("absent", None),  # no flowName at all: js_stop_flow.mjs --no-name
    ("too_long", NAME_257),
    ("too_large", NAME_70K),
]


arn = h.arn


def node_path():
    node = shutil.which("node", path=os.environ.get("PATH", ""))
    if node is None:
        raise SystemExit("node is required (Debian's nodejs)")
    if not os.path.exists(SDK):
        raise SystemExit(f"{SDK} is missing: run `cd tests && npm ci`")
    return node


class JsSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        node = node_path()
        cls.sentinels = h.Sentinels()
        cls.server = h.start_http_server(FLOWS + cls.sentinels.flows(),
                                         "--max-request-bytes", str(LIMIT))
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)
        argv = [node, SCRIPT, f"http://127.0.0.1:{cls.server.http_port}"]
        argv += ["--no-name" if name is None else name for _, name in CALLS]
        # cwd elsewhere: the SDK must resolve from the script's place, not the cwd
        cls.node = subprocess.run(argv, env=h.aws_client_env(), cwd=h.tempdir(),
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=120)
        cls.lines = h.json_lines(cls.node.stdout)
        cls.by_key = dict(zip((k for k, _ in CALLS), cls.lines))

    # ---- helpers ----

    def result(self, key):
        """The call's line, after checking that the script ran to the end."""
        self.assertEqual(self.node.returncode, 0,
                         f"node exited {self.node.returncode}; stderr:\n{self.node.stderr[-3000:]}")
        self.assertEqual(len(self.lines), len(CALLS), f"stdout:\n{self.node.stdout[-3000:]}\n"
                                                      f"stderr:\n{self.node.stderr[-3000:]}")
        r = self.by_key[key]
        self.assertEqual(r.get("input"), dict(CALLS)[key], "lines out of order")
        return r

    def barrier(self):
        self.sentinels.barrier(self.server, self.stub)

    def assertSuccess(self, key, name):
        r = self.result(key)
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["flowArn"], r["flowStatus"]), (arn(name), "Suspended"))
        self.assertEqual(r["httpStatusCode"], 200)
        self.assertEqual(r["wireStatus"], 200)
        self.assertRegex(r["requestId"] or "", h.UUID_RE)
        self.assertEqual(r["requestId"], r["wireRequestId"])
        self.assertIsNone(r["wireErrorType"])
        self.assertEqual(r["attempts"], 1)

    def assertError(self, key, etype, message, status=None):
        r = self.result(key)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["name"], etype, r)
        self.assertEqual(r["httpStatusCode"], status or h.AWS_HTTP_STATUS[etype], r)
        self.assertEqual(r["wireStatus"], r["httpStatusCode"])
        self.assertEqual(r["wireErrorType"], etype)
        self.assertEqual(r["message"], message)
        self.assertRegex(r["requestId"] or "", h.UUID_RE)
        self.assertEqual(r["requestId"], r["wireRequestId"])
        self.assertEqual(r["attempts"], 1, "maxAttempts 1: no retry")
        self.assertIsNone(r["flowArn"])

    def assertTransitions(self, name, expected):
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), expected, f"transitions of {name}")

    # ---- the rows ----

    def test_scheduled_active_is_suspended_once(self):
        self.assertSuccess("sched_active", "js_sched_active")
        self.assertSuccess("sched_active_again", "js_sched_active")
        self.assertTransitions("js_sched_active", ["FLOW_STATUS_ACTIVE"])

    def test_event_errored_is_suspended(self):
        self.assertSuccess("event_errored", "js_event_errored")
        self.assertTransitions("js_event_errored", ["FLOW_STATUS_ERRORED"])

    def test_already_suspended_is_idempotent(self):
        self.assertSuccess("suspended", "js_suspended")
        self.assertTransitions("js_suspended", [])

    def test_on_demand_is_unsupported(self):
        self.assertError("ondemand", "UnsupportedOperationException",
                         h.aws_msg_on_demand("js_ondemand"))
        self.assertTransitions("js_ondemand", [])

    def test_draft_conflicts(self):
        self.assertError("draft", "ConflictException", h.aws_msg_cannot_stop("js_draft", "Draft"))
        self.assertTransitions("js_draft", [])

    def test_deprecated_conflicts(self):
        self.assertError("deprecated", "ConflictException",
                         h.aws_msg_cannot_stop("js_deprecated", "Deprecated"))
        self.assertTransitions("js_deprecated", [])

    def test_no_such_flow(self):
        self.assertError("missing", "ResourceNotFoundException", h.aws_msg_not_found("js_missing"))

    def test_invalid_names(self):
        self.assertError("pattern", "ValidationException", h.aws_msg_name_pattern("my flow"))
        self.assertError("non_ascii", "ValidationException",
                         h.aws_msg_name_pattern("fl\\xc3\\xb6w"))
        # "" is a present value (proto2 presence) and fails the pattern; null is for absent.
        self.assertError("empty", "ValidationException", h.AWS_MSG_NAME_EMPTY)
        self.assertError("absent", "ValidationException", h.AWS_MSG_NAME_NULL)
        self.assertError("too_long", "ValidationException", h.aws_msg_name_too_long(NAME_257))
        self.assertTransitions("s" * 256, [])

    def test_body_over_64_kib(self):
        # Over --max-request-bytes (LIMIT here): 413 ValidationException naming the limit.
        self.assertError("too_large", "ValidationException", h.aws_msg_too_large(LIMIT),
                         status=413)

    def test_request_ids_are_distinct(self):
        ids = [self.result(k)["requestId"] for k, _ in CALLS]
        self.assertEqual(len(set(ids)), len(ids), f"repeated request ids: {ids}")

    def test_pinned_sdk_version(self):
        with open(SDK, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["version"], PINNED, "tests/node_modules is stale: npm ci")


if __name__ == "__main__":
    unittest.main(verbosity=2)
