"""StopFlow over the AWS REST-JSON door with boto3 (Debian's python3-boto3), in process: every
row of docs/ARCHITECTURE.md's StopFlow semantics table as botocore parses it — the output members, and for
each error its code (from x-amzn-ErrorType), message (from the body), HTTP status and request
id (x-amzn-RequestId, a UUID distinct per call) — and that every change is logged once."""

import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def isolate_from_aws_config():
    """botocore reads AWS_* variables and ~/.aws: make this process see none of them."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    env = h.aws_client_env()
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"):
        os.environ[k] = env[k]


isolate_from_aws_config()
import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

S = h.stubs()

NAME_256 = "L" + "o" * 254 + "n"
NAME_256_KEPT = "K" + "e" * 254 + "p"
# The server's --max-request-bytes: small, so that a 70000-byte body is over it.
LIMIT = 64 * 1024

FLOWS = [
    h.flow("sched_active", "Scheduled", "Active"),
    h.flow("event_active", "Event", "Active"),
    h.flow("sched_errored", "Scheduled", "Errored"),
    h.flow("event_errored", "Event", "Errored"),
    h.flow("sched_suspended", "Scheduled", "Suspended"),
    h.flow("event_suspended", "Event", "Suspended"),
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
    h.flow("CaseKept", "Scheduled", "Active"),
    h.flow("ab", "Scheduled", "Active"),
    h.flow("ids_flow", "Scheduled", "Active"),
]


arn = h.arn


def client(port, region="us-east-1"):
    return boto3.session.Session().client(
        "appflow", region_name=region, endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(
            # one attempt: an error is the server's answer, never a retry's
            retries={"mode": "standard", "total_max_attempts": 1},
            proxies={}, connect_timeout=5, read_timeout=10))


class Boto3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels()
        cls.server = h.start_http_server(FLOWS + cls.sentinels.flows(),
                                         "--max-request-bytes", str(LIMIT))
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)
        cls.client = client(cls.server.http_port)
        cls.addClassCleanup(cls.client.close)

    # ---- helpers ----

    def barrier(self):
        self.sentinels.barrier(self.server, self.stub)

    def assertMetadata(self, md, status):
        self.assertEqual(md["HTTPStatusCode"], status)
        self.assertRegex(md["RequestId"], h.UUID_RE)
        self.assertEqual(md["RequestId"], md["HTTPHeaders"].get("x-amzn-requestid"))
        self.assertEqual(md["HTTPHeaders"].get("content-type"), "application/json")
        self.assertEqual(md["RetryAttempts"], 0)
        return md["RequestId"]

    def stop(self, name):
        """A successful StopFlow: the output members and metadata. Returns the request id."""
        resp = self.client.stop_flow(flowName=name)
        self.assertEqual(resp["flowArn"], arn(name))
        self.assertEqual(resp["flowStatus"], "Suspended")
        self.assertEqual(set(resp), {"flowArn", "flowStatus", "ResponseMetadata"})
        rid = self.assertMetadata(resp["ResponseMetadata"], 200)
        self.assertNotIn("x-amzn-errortype", resp["ResponseMetadata"]["HTTPHeaders"])
        return rid

    def assertStopError(self, name, code, message, status=None):
        """StopFlow(name) raises a ClientError with this code, message, HTTP status (the table's
        unless given) and a request id; modeled errors raise the client's own exception class."""
        with self.assertRaises(botocore.exceptions.ClientError,
                               msg=f"StopFlow({name[:40]!r}): expected {code}") as cm:
            self.client.stop_flow(flowName=name)
        e = cm.exception
        err = e.response["Error"]
        self.assertEqual(err["Code"], code, f"{name[:40]!r}: {err}")
        self.assertEqual(err["Message"], message, f"{name[:40]!r}")
        md = e.response["ResponseMetadata"]
        rid = self.assertMetadata(md, status or h.AWS_HTTP_STATUS[code])
        self.assertEqual(md["HTTPHeaders"].get("x-amzn-errortype"), code)
        modeled = getattr(self.client.exceptions, code, None)
        if code in ("ConflictException", "ResourceNotFoundException",
                    "UnsupportedOperationException", "ValidationException"):
            self.assertIsNotNone(modeled, f"{code} is in AppFlow's model")
            self.assertIsInstance(e, modeled)
        self.assertEqual(e.operation_name, "StopFlow")
        return rid

    def assertStopped(self, name, before):
        """A first stop logs one transition from before; a second succeeds and logs none."""
        self.stop(name)
        self.stop(name)
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), [before], f"transitions of {name}")

    def assertUnchanged(self, name):
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), [], f"{name} must not change")

    # ---- the rows ----

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
                    self.stop(name)
                self.assertUnchanged(name)

    def test_on_demand_any_status(self):
        for status in ("active", "suspended", "errored", "draft", "deprecated"):
            name = f"ondemand_{status}"
            with self.subTest(name=name):
                for _ in range(2):
                    self.assertStopError(name, "UnsupportedOperationException",
                                         h.aws_msg_on_demand(name))
                self.assertUnchanged(name)

    def test_draft_and_deprecated_conflict(self):
        for name, status in (("sched_draft", "Draft"), ("event_draft", "Draft"),
                             ("sched_deprecated", "Deprecated"),
                             ("event_deprecated", "Deprecated")):
            with self.subTest(name=name):
                for _ in range(2):
                    self.assertStopError(name, "ConflictException",
                                         h.aws_msg_cannot_stop(name, status))
                self.assertUnchanged(name)

    def test_deleted_is_refused(self):
        # Deleted: whatever the error, one StopFlow declares, and the flow
        # does not come back as Suspended.
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client.stop_flow(flowName="sched_deleted")
        err = cm.exception.response["Error"]
        expected = {"ConflictException": h.aws_msg_cannot_stop("sched_deleted", "Deleted"),
                    "ResourceNotFoundException": h.aws_msg_not_found("sched_deleted")}
        self.assertIn(err["Code"], expected)
        self.assertEqual(err["Message"], expected[err["Code"]])
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"],
                         h.AWS_HTTP_STATUS[err["Code"]])
        self.assertUnchanged("sched_deleted")

    def test_no_such_flow(self):
        for name in ("no_such_flow", "z" * 256, "casekept", "CASEKEPT", "CaseKep", "CaseKept_"):
            with self.subTest(name=name[:40]):
                self.assertStopError(name, "ResourceNotFoundException", h.aws_msg_not_found(name))
        self.assertUnchanged("CaseKept")

    def test_invalid_names(self):
        cases = [
            ("", h.AWS_MSG_NAME_EMPTY),  # present (proto2 presence), so the pattern's error
            ("a", h.aws_msg_name_pattern("a")),
            ("my flow", h.aws_msg_name_pattern("my flow")),
            ("_flow", h.aws_msg_name_pattern("_flow")),
            ("-flow", h.aws_msg_name_pattern("-flow")),
            ("a/b", h.aws_msg_name_pattern("a/b")),
            ('a"b', h.aws_msg_name_pattern('a"b')),
            ("a\\b", h.aws_msg_name_pattern("a\\x5cb")),
            ("fl\u00f6w", h.aws_msg_name_pattern("fl\\xc3\\xb6w")),
            ("\u6d41\u308c", h.aws_msg_name_pattern("\\xe6\\xb5\\x81\\xe3\\x82\\x8c")),
            ("ab\n", h.aws_msg_name_pattern("ab\\x0a")),
            ("x" * 257, h.aws_msg_name_too_long("x" * 257)),
            (NAME_256_KEPT + "x", h.aws_msg_name_too_long(NAME_256_KEPT + "x")),
            ("x" * 300 + " ", h.aws_msg_name_too_long("x" * 300 + " ")),  # both errors
        ]
        for name, message in cases:
            with self.subTest(name=name[:40]):
                self.assertStopError(name, "ValidationException", message)
        self.assertUnchanged("ab")
        self.assertUnchanged(NAME_256_KEPT)

    def test_body_over_64_kib(self):
        # Over --max-request-bytes (LIMIT here): 413 ValidationException naming the limit.
        self.assertStopError("ab" * 35000, "ValidationException", h.aws_msg_too_large(LIMIT),
                             status=413)
        self.assertUnchanged("ab")

    def test_names_at_the_limits(self):
        self.assertStopped(NAME_256, "FLOW_STATUS_ACTIVE")
        self.assertStopped("p!@#.-_q", "FLOW_STATUS_ACTIVE")
        self.assertStopped("CaseFlow", "FLOW_STATUS_ACTIVE")

    def test_request_ids_are_distinct(self):
        ids = [self.stop("ids_flow") for _ in range(5)]
        ids += [self.assertStopError("ids_missing", "ResourceNotFoundException",
                                     h.aws_msg_not_found("ids_missing")) for _ in range(5)]
        ids += [self.assertStopError("ondemand_active", "UnsupportedOperationException",
                                     h.aws_msg_on_demand("ondemand_active")) for _ in range(3)]
        self.assertEqual(len(set(ids)), len(ids), f"repeated request ids: {ids}")


class ConfigTest(h.ServerTestCase):
    def test_region_and_account_from_the_server(self):
        srv = self.start_http([h.flow("regional", "Event", "Active")], "--region", "eu-west-2",
                              "--account", "123456789012")
        # a request acts in the region it is signed for: the seed file's flows are in
        # --region's, and a client of another region finds none of them
        other = client(srv.http_port)
        self.addCleanup(other.close)
        with self.assertRaises(other.exceptions.ResourceNotFoundException):
            other.stop_flow(flowName="regional")
        c = client(srv.http_port, "eu-west-2")
        self.addCleanup(c.close)
        resp = c.stop_flow(flowName="regional")
        self.assertEqual(resp["flowArn"], "arn:aws:appflow:eu-west-2:123456789012:flow/regional")
        self.assertEqual(resp["flowStatus"], "Suspended")


if __name__ == "__main__":
    unittest.main(verbosity=2)
