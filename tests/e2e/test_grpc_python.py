"""StopFlow over gRPC with Python grpcio stubs: every row of docs/ARCHITECTURE.md's StopFlow semantics
table, the error model (code, message, grpc-status-details-bin with google.rpc.ErrorInfo), and
requests the door must refuse (unknown method, undecodable bytes, NUL, bad UTF-8, too large)."""

import os
import sys
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
SUSPENDED = pb.FLOW_STATUS_SUSPENDED
C = grpc.StatusCode

NAME_256 = "L" + "o" * 254 + "n"
assert len(NAME_256) == 256
NAME_256_KEPT = "K" + "e" * 254 + "p"  # never stopped: a 257-char name must not reach it

# One flow per row of the semantics table (plus a few more), all in one server.
FLOWS = [
    h.flow("sched_active", "Scheduled", "Active", description="a scheduled flow",
           tags={"team": "data", "env": "test"}),
    h.flow("event_active", "Event", "Active"),
    h.flow("sched_errored", "Scheduled", "Errored"),
    h.flow("event_errored", "Event", "Errored", description="errored, event"),
    h.flow("sched_suspended", "Scheduled", "Suspended"),
    h.flow("event_suspended", "Event", "Suspended", tags={"k": "v"}),
    h.flow("sched_draft", "Scheduled", "Draft"),
    h.flow("event_draft", "Event", "Draft"),
    h.flow("sched_deprecated", "Scheduled", "Deprecated"),
    h.flow("event_deprecated", "Event", "Deprecated"),
    h.flow("sched_deleted", "Scheduled", "Deleted"),
    h.flow("ondemand_active", "OnDemand", "Active"),
    h.flow("ondemand_suspended", "OnDemand", "Suspended"),
    h.flow("ondemand_errored", "OnDemand", "Errored"),
    h.flow("ondemand_draft", "OnDemand", "Draft"),
    h.flow("ondemand_deprecated", "OnDemand", "Deprecated"),
    h.flow(NAME_256, "Scheduled", "Active"),
    h.flow(NAME_256_KEPT, "Scheduled", "Active"),
    h.flow("p!@#.-_q", "Event", "Active"),
    h.flow("CaseFlow", "Scheduled", "Active"),
    h.flow("ab", "Scheduled", "Active"),
    h.flow("unknown_fields", "Scheduled", "Active"),
    h.flow("after_abuse", "Scheduled", "Active"),
    h.flow("x1", "Scheduled", "Active"),
    h.flow("gzipped", "Event", "Errored"),
]


arn = h.arn


class StopFlowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels()
        # --max-request-bytes 64 KiB (default 1 MiB): test_request_too_large's sizes stay small
        cls.server = h.start_server(FLOWS + cls.sentinels.flows(),
                                    "--max-request-bytes", str(64 * 1024))
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)
        cls.raw = h.raw_stop_flow(cls.channel)

    # ---- helpers ----

    def stop(self, name):
        return self.stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)

    def barrier(self):
        """After this, every line the server logged for earlier calls has been read."""
        self.sentinels.barrier(self.server, self.stub)

    def assertError(self, call, code, reason, mentions=(), what=""):
        """Runs call(), expects a grpc.RpcError with this code, a non-empty message containing
        each of mentions, and ErrorInfo{reason, domain=appflow.amazonaws.com}."""
        with self.assertRaises(grpc.RpcError, msg=f"{what}: expected {code}") as cm:
            call()
        got_code, details, got_reason, domain = h.error_parts(cm.exception)
        self.assertEqual(got_code, code, f"{what}: {details!r}")
        self.assertTrue(details, f"{what}: empty status message")
        for m in mentions:
            self.assertIn(m, details, f"{what}: message should mention {m!r}")
        self.assertEqual(got_reason, reason, f"{what}: ErrorInfo reason ({details!r})")
        self.assertEqual(domain, h.ERROR_DOMAIN, f"{what}: ErrorInfo domain")
        return details

    def assertStopError(self, name, code, reason, mentions=()):
        return self.assertError(lambda: self.stop(name), code, reason, mentions, f"StopFlow({name!r})")

    def assertRawError(self, payload, code, reason, mentions=()):
        return self.assertError(lambda: self.raw(payload, timeout=10), code, reason, mentions,
                                f"StopFlow(raw {payload[:24]!r}...)")

    def assertInvalidName(self, name, mentions=("flowName",)):
        return self.assertStopError(name, C.INVALID_ARGUMENT, "ValidationException", mentions)

    def assertStopped(self, name, before):
        """A successful first stop: response, and exactly one logged transition from before."""
        resp = self.stop(name)
        self.assertEqual(resp.flow_arn, arn(name))
        self.assertEqual(resp.flow_status, SUSPENDED)
        self.server.wait_for_line(lambda l: l == f"appflowd: info: flow {name}: {before} -> "
                                                  "FLOW_STATUS_SUSPENDED")
        # The change is visible to the next call: it succeeds without another transition.
        resp2 = self.stop(name)
        self.assertEqual((resp2.flow_arn, resp2.flow_status), (arn(name), SUSPENDED))
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), [before],
                         f"exactly one transition of {name}")

    def assertNoTransition(self, name):
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), [], f"{name} must not change")

    # ---- invalid names: INVALID_ARGUMENT / ValidationException ----

    def test_missing_name(self):
        details = self.assertError(lambda: self.stub.StopFlow(pb.StopFlowRequest(), timeout=10),
                                   C.INVALID_ARGUMENT, "ValidationException", ("flowName",),
                                   "StopFlow({})")
        self.assertIn("null", details)

    def test_empty_name(self):
        self.assertInvalidName("")
        # Present on the wire but empty (field 1, length 0) is the same as missing.
        self.assertRawError(h.encode_flow_name(b""), C.INVALID_ARGUMENT, "ValidationException",
                            ("flowName",))

    def test_one_character_name(self):
        self.assertInvalidName("a", ("flowName", "'a'"))
        self.assertInvalidName("7", ("flowName",))

    def test_257_character_name(self):
        self.assertInvalidName("x" * 257, ("flowName", "256"))
        # Too long even though the name's first 256 characters are a seeded flow.
        self.assertInvalidName(NAME_256_KEPT + "x", ("flowName", "256"))
        self.assertNoTransition(NAME_256_KEPT)

    def test_name_with_space(self):
        self.assertInvalidName("my flow", ("flowName", "my flow"))
        self.assertInvalidName("sched_active ", ("flowName",))
        self.assertNoTransition("sched_active")

    def test_non_ascii_name(self):
        self.assertInvalidName("flöw", ("flowName",))
        self.assertInvalidName("flow\u00e9", ("flowName",))
        self.assertInvalidName("流れ", ("flowName",))

    def test_first_character_must_be_alphanumeric(self):
        for name in ("_flow", "-flow", ".flow", "!flow", "@flow", "#flow"):
            with self.subTest(name=name):
                self.assertInvalidName(name, ("flowName",))

    def test_other_characters_refused(self):
        for name in ("a/b", "a:b", "a$b", "a%b", "a\tb", "a+b", "a*b", "a'b", 'a"b', "a\\b"):
            with self.subTest(name=name):
                self.assertInvalidName(name, ("flowName",))

    def test_allowed_punctuation_is_accepted(self):
        # A valid name that does not exist: NOT_FOUND (not INVALID_ARGUMENT) for each of !@#.-_
        for p in "!@#.-_":
            name = f"x{p}y{p}"
            with self.subTest(name=name):
                self.assertStopError(name, C.NOT_FOUND, "ResourceNotFoundException", (name,))
        # and one that exists is stopped, with the punctuation intact in its ARN.
        self.assertStopped("p!@#.-_q", "FLOW_STATUS_ACTIVE")

    # ---- existing names ----

    def test_256_character_name_that_exists(self):
        self.assertStopped(NAME_256, "FLOW_STATUS_ACTIVE")

    def test_unknown_flow(self):
        self.assertStopError("no_such_flow", C.NOT_FOUND, "ResourceNotFoundException",
                             ("no_such_flow",))
        self.assertStopError("z" * 256, C.NOT_FOUND, "ResourceNotFoundException", ("z" * 256,))

    def test_names_are_case_sensitive(self):
        self.assertStopError("caseflow", C.NOT_FOUND, "ResourceNotFoundException", ("caseflow",))
        self.assertStopError("CASEFLOW", C.NOT_FOUND, "ResourceNotFoundException", ("CASEFLOW",))
        self.assertNoTransition("CaseFlow")
        self.assertStopped("CaseFlow", "FLOW_STATUS_ACTIVE")

    def test_on_demand_any_status(self):
        for status in ("active", "suspended", "errored", "draft", "deprecated"):
            name = f"ondemand_{status}"
            with self.subTest(name=name):
                self.assertStopError(name, C.FAILED_PRECONDITION, "UnsupportedOperationException",
                                     (name,))
                # Nothing changed: the same answer again.
                self.assertStopError(name, C.FAILED_PRECONDITION, "UnsupportedOperationException",
                                     (name,))
                self.assertNoTransition(name)

    def test_scheduled_active(self):
        self.assertStopped("sched_active", "FLOW_STATUS_ACTIVE")

    def test_event_active(self):
        self.assertStopped("event_active", "FLOW_STATUS_ACTIVE")

    def test_scheduled_errored(self):
        self.assertStopped("sched_errored", "FLOW_STATUS_ERRORED")

    def test_event_errored(self):
        self.assertStopped("event_errored", "FLOW_STATUS_ERRORED")

    def test_already_suspended_is_idempotent(self):
        for name in ("sched_suspended", "event_suspended"):
            with self.subTest(name=name):
                for _ in range(3):
                    resp = self.stop(name)
                    self.assertEqual(resp.flow_arn, arn(name))
                    self.assertEqual(resp.flow_status, SUSPENDED)
                self.assertNoTransition(name)

    def test_draft_and_deprecated_conflict(self):
        for name, status in (("sched_draft", "Draft"), ("event_draft", "Draft"),
                             ("sched_deprecated", "Deprecated"),
                             ("event_deprecated", "Deprecated")):
            with self.subTest(name=name):
                self.assertStopError(name, C.ABORTED, "ConflictException", (name,))
                # Still refused: the flow did not change.
                self.assertStopError(name, C.ABORTED, "ConflictException", (name,))
                self.assertNoTransition(name)

    def test_deleted_is_refused(self):
        # Deleted (a status only a seed file gives): whatever the error, a deleted flow must
        # not come back as Suspended, and the error must be one StopFlow's model declares.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stop("sched_deleted")
        code, details, reason, domain = h.error_parts(cm.exception)
        expected = {"ConflictException": C.ABORTED, "ResourceNotFoundException": C.NOT_FOUND}
        self.assertIn(reason, expected, details)
        self.assertEqual(code, expected[reason])
        self.assertEqual(domain, h.ERROR_DOMAIN)
        self.assertIn("sched_deleted", details)
        self.assertNoTransition("sched_deleted")

    # ---- the door: what never reaches the service ----

    def test_unknown_method_on_same_channel(self):
        nope = self.channel.unary_unary("/appflow.v1.AppFlowService/Nope",
                                        request_serializer=h.identity,
                                        response_deserializer=h.identity)
        with self.assertRaises(grpc.RpcError) as cm:
            nope(pb.StopFlowRequest(flow_name="x1").SerializeToString(), timeout=10)
        self.assertEqual(cm.exception.code(), C.UNIMPLEMENTED, cm.exception.details())
        other = self.channel.unary_unary("/other.Service/StopFlow", request_serializer=h.identity,
                                         response_deserializer=h.identity)
        with self.assertRaises(grpc.RpcError) as cm:
            other(b"", timeout=10)
        self.assertEqual(cm.exception.code(), C.UNIMPLEMENTED, cm.exception.details())
        # The channel still works for the real method.
        self.assertStopped("x1", "FLOW_STATUS_ACTIVE")

    def test_garbage_bytes(self):
        for payload in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x0f", b"\x0a\xff\xff\xff\xff\xff\xff"
                        b"\xff\xff\xff\xff\x01", b"\x0b\x0c"):
            with self.subTest(payload=payload):
                self.assertRawError(payload, C.INVALID_ARGUMENT, "SerializationException")

    def test_nul_byte_in_name(self):
        self.assertRawError(h.encode_flow_name(b"ab\x00cd"), C.INVALID_ARGUMENT,
                            "SerializationException", ("flow_name",))
        self.assertRawError(h.encode_flow_name(b"ab\x00"), C.INVALID_ARGUMENT,
                            "SerializationException")
        # "ab" exists and was not stopped: its first stop now logs the transition.
        self.assertNoTransition("ab")
        self.assertStopped("ab", "FLOW_STATUS_ACTIVE")

    def test_invalid_utf8_in_name(self):
        for raw in (b"a\xffb", b"ab\xc3", b"a\xc0\xafb", b"a\xed\xa0\x80b", b"a\xf4\x90\x80\x80",
                    b"a\x80b"):
            with self.subTest(raw=raw):
                self.assertRawError(h.encode_flow_name(raw), C.INVALID_ARGUMENT,
                                    "SerializationException", ("flow_name",))

    def test_no_request_message(self):
        # A client that half-closes without sending the one request message.
        call = self.channel.stream_unary(h.METHOD, request_serializer=h.identity,
                                         response_deserializer=h.identity)
        self.assertError(lambda: call(iter(()), timeout=10), C.INVALID_ARGUMENT,
                         "SerializationException", (), "StopFlow(no message)")

    def test_compressed_request(self):
        resp = self.stub.StopFlow(pb.StopFlowRequest(flow_name="gzipped"),
                                  compression=grpc.Compression.Gzip, timeout=10)
        self.assertEqual((resp.flow_arn, resp.flow_status), (arn("gzipped"), SUSPENDED))
        # and a compressed request the service refuses still gets the full error
        self.assertError(lambda: self.stub.StopFlow(pb.StopFlowRequest(flow_name="gz_missing"),
                                                    compression=grpc.Compression.Gzip,
                                                    timeout=10),
                         C.NOT_FOUND, "ResourceNotFoundException", ("gz_missing",), "gzip")

    def test_unknown_fields_are_ignored(self):
        # proto3: a field the server does not know (2, varint; 15, bytes) is skipped.
        payload = h.encode_flow_name(b"unknown_fields") + b"\x10\x01" + b"\x7a\x02hi"
        resp = pb.StopFlowResponse.FromString(self.raw(payload, timeout=10))
        self.assertEqual((resp.flow_arn, resp.flow_status), (arn("unknown_fields"), SUSPENDED))

    def test_request_too_large(self):
        # gRPC itself refuses it (--max-request-bytes, 64 KiB here), so no ErrorInfo is
        # required.
        with self.assertRaises(grpc.RpcError) as cm:
            self.raw(h.encode_flow_name(b"a" * 100 * 1024), timeout=10)
        self.assertEqual(cm.exception.code(), C.RESOURCE_EXHAUSTED, cm.exception.details())
        # Under the limit, a long name is the service's to refuse.
        self.assertRawError(h.encode_flow_name(b"a" * 60 * 1024), C.INVALID_ARGUMENT,
                            "ValidationException", ("flowName", "256"))

    def test_zz_still_serving_after_abuse(self):
        # Runs last (alphabetical order): everything above left the server answering normally.
        for payload in (b"\xff\xff", h.encode_flow_name(b"a\x00"),
                        h.encode_flow_name(b"b" * 100 * 1024)):
            with self.assertRaises(grpc.RpcError):
                self.raw(payload, timeout=10)
        self.assertStopped("after_abuse", "FLOW_STATUS_ACTIVE")
        self.assertTrue(self.server.running())


class ConfigTest(h.ServerTestCase):
    def test_region_and_account_change_the_arn(self):
        srv = self.start([h.flow("regional", "Event", "Active")], "--region", "eu-west-2",
                         "--account", "123456789012")
        self.assertEqual(srv.startup.group("region"), "eu-west-2")
        with h.channel(srv.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            resp = stub.StopFlow(pb.StopFlowRequest(flow_name="regional"), timeout=10)
            self.assertEqual(resp.flow_arn, "arn:aws:appflow:eu-west-2:123456789012:flow/regional")
            self.assertEqual(resp.flow_status, SUSPENDED)

    def test_default_region_and_account(self):
        srv = self.start([h.flow("plain", "Scheduled", "Errored")])
        self.assertEqual(srv.startup.group("region"), "us-east-1")
        with h.channel(srv.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            resp = stub.StopFlow(pb.StopFlowRequest(flow_name="plain"), timeout=10)
            self.assertEqual(resp.flow_arn, arn("plain"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
