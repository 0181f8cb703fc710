"""StopFlow over gRPC from Node: @grpc/grpc-js + @grpc/proto-loader (pinned in
tests/package.json, installed in tests/node_modules by `npm ci`) loading
proto/appflow/v1/appflow.proto at run time. node_stop_flow.js makes every call in one Node
process (Node starts slowly); each test checks one row of docs/ARCHITECTURE.md's StopFlow semantics table
as grpc-js reports it: the response members with their JSON (camelCase) names, or the gRPC
code, the message and the google.rpc.ErrorInfo in grpc-status-details-bin (decoded in Node
with protobufjs). The internal-failure row cannot be provoked from outside and is not here."""

import json
import os
import shutil
import subprocess
import sys
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
C = grpc.StatusCode
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "node_stop_flow.js")
MODULES = os.path.join(HERE, "..", "node_modules")
PINNED = {"@grpc/grpc-js": "1.14.7", "@grpc/proto-loader": "0.8.1"}

NAME_256 = "N" + "o" * 254 + "d"
NAME_257 = "n" * 257

# One flow per row of the semantics table.
FLOWS = [
    h.flow("node_sched_active", "Scheduled", "Active"),
    h.flow("node_event_active", "Event", "Active"),
    h.flow("node_sched_errored", "Scheduled", "Errored"),
    h.flow("node_event_errored", "Event", "Errored"),
    h.flow("node_suspended", "Scheduled", "Suspended"),
    h.flow("node_ondemand_active", "OnDemand", "Active"),
    h.flow("node_ondemand_suspended", "OnDemand", "Suspended"),
    h.flow("node_draft", "Scheduled", "Draft"),
    h.flow("node_deprecated", "Event", "Deprecated"),
    h.flow(NAME_256, "Event", "Active"),
]

# (key, flowName): the calls, in order, all in one Node process.
CALLS = [
    ("sched_active", "node_sched_active"),
    ("event_active", "node_event_active"),
    ("sched_errored", "node_sched_errored"),
    ("event_errored", "node_event_errored"),
    ("suspended", "node_suspended"),
    ("sched_active_again", "node_sched_active"),
    ("name_256", NAME_256),
    ("ondemand_active", "node_ondemand_active"),
    ("ondemand_suspended", "node_ondemand_suspended"),
    ("draft", "node_draft"),
    ("deprecated", "node_deprecated"),
    ("missing", "node_missing"),
    ("pattern", "my flow"),
    ("empty", ""),
    ("absent", None),  # no flowName at all: node_stop_flow.js --no-name
    ("one_char", "x"),
    ("too_long", NAME_257),
]


arn = h.arn


def node_path():
    node = shutil.which("node", path=os.environ.get("PATH", ""))
    if node is None:
        raise SystemExit("node is required (Debian's nodejs)")
    for pkg in PINNED:
        if not os.path.exists(os.path.join(MODULES, pkg, "package.json")):
            raise SystemExit(f"{pkg} is missing from tests/node_modules: run `cd tests && npm ci`")
    return node


class NodeGrpcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        node = node_path()
        cls.sentinels = h.Sentinels(n=16)
        cls.server = h.start_server(FLOWS + cls.sentinels.flows())
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)
        argv = [node, SCRIPT, f"127.0.0.1:{cls.server.port}", h.SOURCE_DIR]
        argv += ["--no-name" if name is None else name for _, name in CALLS]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": h.tempdir(),
               "LANG": "C.UTF-8"}  # no proxy variables: grpc-js honours them
        # cwd elsewhere: the packages must resolve from the script's place, not the cwd
        cls.node = subprocess.run(argv, env=env, cwd=h.tempdir(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=120)
        cls.lines = h.json_lines(cls.node.stdout)
        cls.by_key = dict(zip((k for k, _ in CALLS), cls.lines))

    # ---- helpers ----

    def result(self, key):
        """The call's line, after checking that the script ran to the end."""
        self.assertEqual(self.node.returncode, 0,
                         f"node exited {self.node.returncode}; stdout:\n{self.node.stdout[-3000:]}"
                         f"\nstderr:\n{self.node.stderr[-3000:]}")
        self.assertEqual(len(self.lines), len(CALLS), f"stdout:\n{self.node.stdout[-3000:]}\n"
                                                      f"stderr:\n{self.node.stderr[-3000:]}")
        r = self.by_key[key]
        self.assertEqual(r.get("input"), dict(CALLS)[key], "lines out of order")
        return r

    def assertSuccess(self, key, name):
        r = self.result(key)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["codeName"], "OK")
        self.assertEqual((r["flowArn"], r["flowStatus"]), (arn(name), "FLOW_STATUS_SUSPENDED"))
        self.assertIsNone(r["reason"])

    def assertError(self, key, code, reason, message):
        r = self.result(key)
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["code"], r["codeName"]), (code.value[0], code.name), r)
        self.assertEqual(r["details"], message, r)
        # grpc-status-details-bin agrees with the status itself and holds the ErrorInfo
        self.assertEqual(r["statusCode"], code.value[0], r)
        self.assertEqual(r["statusMessage"], message, r)
        self.assertEqual(r["detailTypes"], ["type.googleapis.com/google.rpc.ErrorInfo"], r)
        self.assertEqual((r["reason"], r["domain"]), (reason, h.ERROR_DOMAIN), r)
        self.assertIsNone(r["flowArn"])

    def assertTransitions(self, name, expected):
        self.sentinels.barrier(self.server, self.stub)
        self.assertEqual(self.server.transitions_of(name), expected, f"transitions of {name}")

    # ---- the rows ----

    def test_scheduled_and_event_active_are_suspended(self):
        self.assertSuccess("sched_active", "node_sched_active")
        self.assertSuccess("event_active", "node_event_active")
        self.assertSuccess("name_256", NAME_256)
        self.assertTransitions("node_sched_active", ["FLOW_STATUS_ACTIVE"])
        self.assertTransitions("node_event_active", ["FLOW_STATUS_ACTIVE"])

    def test_errored_is_suspended(self):
        self.assertSuccess("sched_errored", "node_sched_errored")
        self.assertSuccess("event_errored", "node_event_errored")
        self.assertTransitions("node_event_errored", ["FLOW_STATUS_ERRORED"])

    def test_already_suspended_is_idempotent(self):
        self.assertSuccess("suspended", "node_suspended")
        self.assertSuccess("sched_active_again", "node_sched_active")
        self.assertTransitions("node_suspended", [])
        self.assertTransitions("node_sched_active", ["FLOW_STATUS_ACTIVE"])

    def test_on_demand_is_unsupported(self):
        for key, name in (("ondemand_active", "node_ondemand_active"),
                          ("ondemand_suspended", "node_ondemand_suspended")):
            with self.subTest(name=name):
                self.assertError(key, C.FAILED_PRECONDITION, "UnsupportedOperationException",
                                 h.aws_msg_on_demand(name))
        self.assertTransitions("node_ondemand_active", [])

    def test_draft_and_deprecated_conflict(self):
        self.assertError("draft", C.ABORTED, "ConflictException",
                         h.aws_msg_cannot_stop("node_draft", "Draft"))
        self.assertError("deprecated", C.ABORTED, "ConflictException",
                         h.aws_msg_cannot_stop("node_deprecated", "Deprecated"))
        self.assertTransitions("node_draft", [])

    def test_no_such_flow(self):
        self.assertError("missing", C.NOT_FOUND, "ResourceNotFoundException",
                         h.aws_msg_not_found("node_missing"))

    def test_invalid_names(self):
        self.assertError("pattern", C.INVALID_ARGUMENT, "ValidationException",
                         h.aws_msg_name_pattern("my flow"))
        # "" is a present value (proto2 presence) and fails the pattern; null is for absent.
        self.assertError("empty", C.INVALID_ARGUMENT, "ValidationException", h.AWS_MSG_NAME_EMPTY)
        self.assertError("absent", C.INVALID_ARGUMENT, "ValidationException", h.AWS_MSG_NAME_NULL)
        self.assertError("one_char", C.INVALID_ARGUMENT, "ValidationException",
                         h.aws_msg_name_pattern("x"))
        self.assertError("too_long", C.INVALID_ARGUMENT, "ValidationException",
                         h.aws_msg_name_too_long(NAME_257))

    def test_same_answers_as_python(self):
        """grpc-js and grpcio see the same code, message and reason for every error."""
        for key, name in CALLS:
            r = self.result(key)
            if r["ok"]:
                continue
            with self.subTest(name=None if name is None else name[:40]):
                req = S.appflow_pb2.StopFlowRequest()
                if name is not None:
                    req.flow_name = name
                with self.assertRaises(grpc.RpcError) as cm:
                    self.stub.StopFlow(req, timeout=10)
                code, details, reason, domain = h.error_parts(cm.exception)
                self.assertEqual((r["code"], r["details"], r["reason"], r["domain"]),
                                 (code.value[0], details, reason, domain))

    def test_pinned_versions(self):
        for pkg, version in PINNED.items():
            with open(os.path.join(MODULES, pkg, "package.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f)["version"], version,
                                 f"{pkg}: tests/node_modules is stale: npm ci")


if __name__ == "__main__":
    unittest.main(verbosity=2)
