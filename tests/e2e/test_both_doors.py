"""One server, both doors, one flow table: a flow stopped through one door reads as Suspended
through the other with its transition logged once; the same failure carries the same AWS error
type and message on both (gRPC ErrorInfo reason == x-amzn-ErrorType, status message == body
message); and clients hammering both doors at once change each flow exactly once."""

import os
import random
import sys
import threading
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
SUSPENDED = pb.FLOW_STATUS_SUSPENDED

NFLOWS = 200
NTHREADS = 8  # per door

FLOWS = [
    h.flow("http_first", "Scheduled", "Active"),
    h.flow("grpc_first", "Event", "Errored"),
    h.flow("both_suspended", "Scheduled", "Suspended"),
    h.flow("both_ondemand", "OnDemand", "Active"),
    h.flow("both_draft", "Event", "Draft"),
    h.flow("both_deprecated", "Scheduled", "Deprecated"),
    h.flow("both_deleted", "Event", "Deleted"),
    h.flow("t" * 256, "Scheduled", "Active"),
]


arn = h.arn


run_threads = h.run_threads


class BothDoorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels()
        cls.server = h.start_http_server(FLOWS + cls.sentinels.flows())
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    def barrier(self):
        self.sentinels.barrier(self.server, self.stub)

    def grpc_stop(self, name):
        return self.stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)

    def assertGrpcSuspended(self, name):
        r = self.grpc_stop(name)
        self.assertEqual((r.flow_arn, r.flow_status), (arn(name), SUSPENDED))

    def assertHttpSuspended(self, name):
        r = h.aws_stop_flow(self.port, name)
        self.assertEqual(r.status, 200, repr(r))
        self.assertIsNone(r.error_type)
        self.assertEqual(r.json(), {"flowArn": arn(name), "flowStatus": "Suspended"})

    def assertTransitions(self, name, expected):
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), expected, f"transitions of {name}")

    def test_startup_line_names_both_ports(self):
        self.assertIsNotNone(self.server.http_port)
        self.assertNotEqual(self.server.http_port, self.server.port)
        self.assertIn(" http=127.0.0.1:0 ", self.server.startup.group(0))

    def test_stopped_over_http_reads_suspended_over_grpc(self):
        self.assertHttpSuspended("http_first")
        self.assertTransitions("http_first", ["FLOW_STATUS_ACTIVE"])
        self.assertGrpcSuspended("http_first")
        self.assertHttpSuspended("http_first")
        self.assertTransitions("http_first", ["FLOW_STATUS_ACTIVE"])

    def test_stopped_over_grpc_reads_suspended_over_http(self):
        self.assertGrpcSuspended("grpc_first")
        self.assertTransitions("grpc_first", ["FLOW_STATUS_ERRORED"])
        self.assertHttpSuspended("grpc_first")
        self.assertGrpcSuspended("grpc_first")
        self.assertTransitions("grpc_first", ["FLOW_STATUS_ERRORED"])

    def test_already_suspended_on_both(self):
        self.assertHttpSuspended("both_suspended")
        self.assertGrpcSuspended("both_suspended")
        self.assertTransitions("both_suspended", [])

    def test_same_error_on_both_doors(self):
        cases = [
            ("both_ondemand", "UnsupportedOperationException",
             h.aws_msg_on_demand("both_ondemand")),
            ("both_draft", "ConflictException", h.aws_msg_cannot_stop("both_draft", "Draft")),
            ("both_deprecated", "ConflictException",
             h.aws_msg_cannot_stop("both_deprecated", "Deprecated")),
            ("both_deleted", None, None),  # Deleted: the same on both, whatever
            ("both_missing", "ResourceNotFoundException", h.aws_msg_not_found("both_missing")),
            ("my flow", "ValidationException", h.aws_msg_name_pattern("my flow")),
            ("fl\u00f6w", "ValidationException", h.aws_msg_name_pattern("fl\\xc3\\xb6w")),
            # "" is a present value (proto2 presence): it fails the pattern; only an absent
            # flowName (None: {} and a StopFlowRequest without flow_name) is null.
            ("", "ValidationException", h.AWS_MSG_NAME_EMPTY),
            (None, "ValidationException", h.AWS_MSG_NAME_NULL),
            ("t" * 257, "ValidationException", h.aws_msg_name_too_long("t" * 257)),
            ("t" * 256 + "\u00f6", "ValidationException",
             h.aws_msg_name_too_long("t" * 256 + "\u00f6")),
        ]
        for name, etype, message in cases:
            with self.subTest(name=None if name is None else name[:40]):
                if name is None:
                    r = h.aws_request(self.port, {}, path="/stop-flow")
                    with self.assertRaises(grpc.RpcError) as cm:
                        self.stub.StopFlow(pb.StopFlowRequest(), timeout=10)
                else:
                    r = h.aws_stop_flow(self.port, name)
                    with self.assertRaises(grpc.RpcError) as cm:
                        self.grpc_stop(name)
                code, details, reason, domain = h.error_parts(cm.exception)
                if etype is not None:
                    self.assertEqual(r.error_type, etype, repr(r))
                    self.assertEqual(r.message, message)
                self.assertIsNotNone(r.error_type, repr(r))
                self.assertEqual(r.status, h.AWS_HTTP_STATUS[r.error_type])
                self.assertEqual(reason, r.error_type, "ErrorInfo reason == x-amzn-ErrorType")
                self.assertEqual(domain, h.ERROR_DOMAIN)
                self.assertEqual(code, h.AWS_GRPC_CODE[r.error_type], details)
                self.assertEqual(details, r.message, "the same message on both doors")
        for name in ("both_ondemand", "both_draft", "both_deprecated", "both_deleted", "t" * 256):
            self.assertTransitions(name, [])

    def test_cancel_on_both_doors(self):
        """CancelFlowExecutions: validated first, then answered by the service, the same on
        both doors."""
        for name, etype in (("no_such_flow", "ResourceNotFoundException"),
                            ("my flow", "ValidationException")):
            with self.subTest(name=name):
                r = h.aws_request(self.port, {"flowName": name, "executionIds": ["e1"]},
                                  path="/cancel-flow-executions")
                with self.assertRaises(grpc.RpcError) as cm:
                    self.stub.CancelFlowExecutions(pb.CancelFlowExecutionsRequest(
                        flow_name=name, execution_ids=["e1"]), timeout=10)
                code, details, reason, domain = h.error_parts(cm.exception)
                self.assertEqual((r.status, r.error_type), (h.AWS_HTTP_STATUS[etype], etype),
                                 repr(r))
                if etype == "ValidationException":
                    self.assertEqual(r.message, h.aws_msg_name_pattern(name))
                self.assertEqual((code, reason, domain),
                                 (h.AWS_GRPC_CODE[etype], etype, h.ERROR_DOMAIN), details)
                self.assertEqual(details, r.message, "the same message on both doors")


class ConcurrencyTest(h.ServerTestCase):
    def test_both_doors_stop_the_same_flows_at_once(self):
        flows, before = [], {}
        for i in range(NFLOWS):
            name = f"conc_{i:03d}"
            status = "Errored" if i % 3 == 0 else "Active"
            flows.append(h.flow(name, "Scheduled" if i % 2 else "Event", status))
            before[name] = "FLOW_STATUS_" + status.upper()
        srv = h.start_http_server(flows, threads=2, http_threads=2)
        self.addCleanup(srv.stop)  # only if the test fails before its own checked stop
        names = list(before)
        bad = []  # (door, thread, name, what) for every wrong answer
        counts = {}

        def http_client(i):
            order = names[:]
            random.Random(2000 + i).shuffle(order)
            conn = h.http_connection(srv.http_port, timeout=30)
            try:
                for name in order:
                    r = h.aws_stop_flow(srv.http_port, name, conn)
                    if r.status != 200 or r.json() != {"flowArn": arn(name),
                                                       "flowStatus": "Suspended"}:
                        bad.append(("http", i, name, repr(r)))
                    counts[("http", i)] = counts.get(("http", i), 0) + 1
            finally:
                conn.close()

        def grpc_client(i):
            order = names[:]
            random.Random(3000 + i).shuffle(order)
            with h.channel(srv.port) as ch:
                stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
                for name in order:
                    try:
                        r = stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=30)
                    except grpc.RpcError as e:
                        bad.append(("grpc", i, name, f"{e.code()}: {e.details()}"))
                        continue
                    if (r.flow_arn, r.flow_status) != (arn(name), SUSPENDED):
                        bad.append(("grpc", i, name, str(r)))
                    counts[("grpc", i)] = counts.get(("grpc", i), 0) + 1

        def client(i):
            (http_client if i % 2 == 0 else grpc_client)(i // 2)

        errors = run_threads(2 * NTHREADS, client)
        self.assertEqual(errors, [])
        self.assertEqual(bad[:10], [], f"{len(bad)} wrong answers")
        self.assertEqual(sorted(counts.values()), [NFLOWS] * (2 * NTHREADS))

        srv.check_stopped_cleanly()  # all output read: the log is complete
        seen = {}
        for name, b in srv.transitions():
            seen.setdefault(name, []).append(b)
        self.assertEqual(sorted(seen), sorted(names), "one transition line per flow")
        dup = {n: b for n, b in seen.items() if len(b) != 1}
        self.assertEqual(dup, {}, "flows with more than one transition")
        self.assertEqual({n: b[0] for n, b in seen.items()}, before)
        self.assertEqual(len(srv.transitions()), NFLOWS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
