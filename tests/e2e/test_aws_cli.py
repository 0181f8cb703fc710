"""The AWS REST-JSON door as the AWS CLI and a raw HTTP client see it.

AwsCliTest: Debian's AWS CLI v2 (/usr/bin/aws, never whatever `aws` comes first on PATH), in a
clean environment with dummy credentials, runs `aws appflow stop-flow` once per row of
docs/ARCHITECTURE.md's StopFlow semantics table: the success output, and for each error the exact line
`An error occurred (<Type>) when calling the StopFlow operation: <message>` with the message the
server sends (fetched with a raw request too) and exit status 254. One call goes through a
recording TCP relay to prove the request the CLI sends is SigV4-signed, sent once, and answered.

AwsWireTest: http.client against the door: headers on every reply (Content-Type, a distinct
x-amzn-RequestId UUID, x-amzn-ErrorType on errors), JSON error bodies, bad JSON, wrong JSON
types, duplicate keys, missing members, unknown members, bodies over --max-request-bytes (64 KiB
here), unknown paths, wrong methods, keep-alive, and that no refused request changes a flow."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2

AWS = "/usr/bin/aws"  # Debian's awscli (v2.9); the one first on PATH may be another
CLI_SERVICE_ERROR = 254  # AWS CLI v2's exit status for an error the service returned

NAME_257 = "n" * 257
NAME_70K = "b" * 70000  # a body over LIMIT: the CLI does not check flowName's length
# The servers' --max-request-bytes: 64 KiB, so that the sizes below stay small.
LIMIT = 64 * 1024
TOO_LARGE = h.aws_msg_too_large(LIMIT)  # its 413 ValidationException's message


arn = h.arn


def cli_env():
    # AWS_MAX_ATTEMPTS=1 would turn every error line into "... operation (reached max retries:
    # 0): ...". The CLI's standard mode retries only 5xx, 429/throttling and connection errors,
    # none of which a correct server sends here; 2 attempts keep a broken server's retry short
    # and make its error line show "(reached max retries: 1)", which the tests refuse.
    return h.aws_client_env(AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="2")


def run_cli(port, name, env, timeout=60):
    argv = [AWS, "appflow", "stop-flow", "--flow-name", name,
            "--endpoint-url", f"http://127.0.0.1:{port}",
            "--cli-read-timeout", "10", "--cli-connect-timeout", "5"]
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# A recording TCP relay: what the CLI really sent and got back.

class Relay:
    """Listens on 127.0.0.1:<free port> and relays each connection to 127.0.0.1:target,
    recording the bytes each way. Use as a context manager; after the client is done,
    finish() waits for every relayed connection to end and returns [(sent, received)]."""

    def __init__(self, target):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.records = []  # [sent bytearray, received bytearray]
        self.threads = []
        self.socks = []
        self.lock = threading.Lock()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # listener shut down
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            upstream.settimeout(None)
            rec = [bytearray(), bytearray()]
            pumps = [threading.Thread(target=self._pump, args=(client, upstream, rec[0]),
                                      daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client, rec[1]),
                                      daemon=True)]
            with self.lock:
                self.records.append(rec)
                self.socks += [client, upstream]
                self.threads += pumps
            for t in pumps:
                t.start()

    @staticmethod
    def _pump(src, dst, buf):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def finish(self, timeout=20):
        """Stops accepting, waits for the relayed connections to end (the client has exited,
        so each ends once the server closes its side), and returns the records."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.acceptor.join(timeout)
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError(f"relayed connection still open after {timeout}s")
        with self.lock:
            return [(bytes(a), bytes(b)) for a, b in self.records]

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            for s in self.socks:
                s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_messages(data):
    """Splits HTTP/1.1 messages with Content-Length bodies: [(start line, {lower name: value},
    body)]. Raises AssertionError on anything else (chunked, truncated)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"truncated HTTP message: {data[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.lower() in headers:
                raise AssertionError(f"header {k} sent twice")
            headers[k.lower()] = v.strip()
        if "transfer-encoding" in headers:
            raise AssertionError(f"unexpected Transfer-Encoding in {lines[0]!r}")
        n = int(headers.get("content-length", "0"))
        if len(rest) < n:
            raise AssertionError(f"body shorter than Content-Length {n}")
        out.append((lines[0], headers, rest[:n]))
        data = rest[n:]
    return out


def check_sigv4(testcase, request_line, headers, body, port):
    """The request carries a SigV4 Authorization for the dummy credentials, and the signature is
    right: botocore, given the same request and time, computes the same one."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    auth = headers.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=test/(\d{8})/us-east-1/appflow/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    testcase.assertTrue(m, f"not a SigV4 Authorization for key 'test': {auth!r}")
    date, signed, signature = m.groups()
    amz_date = headers.get("x-amz-date", "")
    testcase.assertRegex(amz_date, r"^\d{8}T\d{6}Z$")
    testcase.assertEqual(date, amz_date[:8], "credential scope date != X-Amz-Date")
    signed = signed.split(";")
    testcase.assertIn("host", signed)
    testcase.assertIn("x-amz-date", signed)
    testcase.assertEqual(headers.get("host"), f"127.0.0.1:{port}")

    method, path, _ = request_line.split(" ")
    req = botocore.awsrequest.AWSRequest(
        method=method, url=f"http://127.0.0.1:{port}{path}", data=body,
        headers={k: headers[k] for k in signed if k != "host"})
    req.context["timestamp"] = amz_date
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"),
                                     "appflow", "us-east-1")
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    testcase.assertEqual(signature, expected, f"signature does not verify; canonical request:\n"
                                              f"{canonical}")


# ---------------------------------------------------------------------------------------------

CLI_FLOWS = [
    h.flow("cli_sched_active", "Scheduled", "Active"),
    h.flow("cli_event_errored", "Event", "Errored"),
    h.flow("cli_suspended", "Scheduled", "Suspended"),
    h.flow("cli_ondemand", "OnDemand", "Active"),
    h.flow("cli_draft", "Scheduled", "Draft"),
    h.flow("cli_deprecated", "Event", "Deprecated"),
    h.flow("cli_signed", "Event", "Active"),
    h.flow("n" * 256, "Scheduled", "Active"),  # a 257-character name must not reach it
]


class DoorTestCase(unittest.TestCase):
    """One server with both doors for the whole class; sentinels as log barriers (over gRPC)."""

    FLOWS = []

    @classmethod
    def setUpClass(cls):
        cls.sentinels = h.Sentinels()
        cls.server = h.start_http_server(cls.FLOWS + cls.sentinels.flows(),
                                         "--max-request-bytes", str(LIMIT))
        cls.addClassCleanup(cls.server.check_stopped_cleanly)
        cls.port = cls.server.http_port
        cls.channel = h.channel(cls.server.port)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = S.appflow_pb2_grpc.AppFlowServiceStub(cls.channel)

    def barrier(self):
        """After this, every line the server logged for earlier calls has been read."""
        self.sentinels.barrier(self.server, self.stub)

    def assertTransitions(self, name, expected):
        self.barrier()
        self.assertEqual(self.server.transitions_of(name), expected, f"transitions of {name}")

    def assertRawError(self, reply, etype, message=None, what="", status=None):
        """An AWS error reply: status (the table's unless given), x-amzn-ErrorType, JSON
        Content-Type, a request id, body {"message": ...} (equal to message when given).
        Returns the message."""
        self.assertEqual(reply.error_type, etype, f"{what}: {reply!r}")
        self.assertEqual(reply.status, status or h.AWS_HTTP_STATUS[etype], f"{what}: {reply!r}")
        self.assertEqual(reply.header("Content-Type"), "application/json", what)
        self.assertRegex(reply.request_id or "", h.UUID_RE, what)
        self.assertEqual(reply.header("Content-Length"), str(len(reply.body)), what)
        msg = reply.message
        self.assertTrue(msg, f"{what}: empty message")
        if message is not None:
            self.assertEqual(msg, message, what)
        return msg

    def assertRawSuccess(self, reply, name, what=""):
        self.assertEqual(reply.status, 200, f"{what}: {reply!r}")
        self.assertIsNone(reply.error_type, what)
        self.assertEqual(reply.header("Content-Type"), "application/json", what)
        self.assertRegex(reply.request_id or "", h.UUID_RE, what)
        self.assertEqual(reply.header("Content-Length"), str(len(reply.body)), what)
        self.assertEqual(reply.json(), {"flowArn": arn(name), "flowStatus": "Suspended"}, what)


class AwsCliTest(DoorTestCase):
    FLOWS = CLI_FLOWS

    @classmethod
    def setUpClass(cls):
        if not os.access(AWS, os.X_OK):
            raise SystemExit(f"{AWS} (Debian's awscli) is required")
        super().setUpClass()
        cls.env = cli_env()

    def cli(self, name, port=None):
        return run_cli(port or self.port, name, self.env)

    def assertCliSuccess(self, r, name):
        self.assertEqual(r.returncode, 0, f"aws exited {r.returncode}; stderr:\n{r.stderr}")
        self.assertEqual(json.loads(r.stdout), {"flowArn": arn(name), "flowStatus": "Suspended"})
        self.assertEqual(r.stderr.strip(), "", "no warnings or errors")

    def assertCliError(self, r, etype, message):
        self.assertEqual(r.returncode, CLI_SERVICE_ERROR, f"stderr:\n{r.stderr}")
        self.assertEqual(r.stdout, "")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(lines, [f"An error occurred ({etype}) when calling the StopFlow "
                                 f"operation: {message}"])

    def assertCliRow(self, name, etype, message, status=None):
        """The server's own answer (raw HTTP) is the expected error, and the CLI shows it."""
        self.assertRawError(h.aws_stop_flow(self.port, name), etype, message, f"raw {name[:40]}",
                            status)
        self.assertCliError(self.cli(name), etype, message)

    # ---- rows of the semantics table ----

    def test_scheduled_active_is_suspended(self):
        self.assertCliSuccess(self.cli("cli_sched_active"), "cli_sched_active")
        self.assertTransitions("cli_sched_active", ["FLOW_STATUS_ACTIVE"])
        # now Suspended: stopping again succeeds and changes nothing
        self.assertRawSuccess(h.aws_stop_flow(self.port, "cli_sched_active"), "cli_sched_active")
        self.assertTransitions("cli_sched_active", ["FLOW_STATUS_ACTIVE"])

    def test_event_errored_is_suspended(self):
        self.assertCliSuccess(self.cli("cli_event_errored"), "cli_event_errored")
        self.assertTransitions("cli_event_errored", ["FLOW_STATUS_ERRORED"])

    def test_already_suspended_is_idempotent(self):
        self.assertCliSuccess(self.cli("cli_suspended"), "cli_suspended")
        self.assertTransitions("cli_suspended", [])

    def test_on_demand_is_unsupported(self):
        self.assertCliRow("cli_ondemand", "UnsupportedOperationException",
                          h.aws_msg_on_demand("cli_ondemand"))
        self.assertTransitions("cli_ondemand", [])

    def test_draft_conflicts(self):
        self.assertCliRow("cli_draft", "ConflictException",
                          h.aws_msg_cannot_stop("cli_draft", "Draft"))
        self.assertTransitions("cli_draft", [])

    def test_deprecated_conflicts(self):
        self.assertCliRow("cli_deprecated", "ConflictException",
                          h.aws_msg_cannot_stop("cli_deprecated", "Deprecated"))
        self.assertTransitions("cli_deprecated", [])

    def test_no_such_flow(self):
        self.assertCliRow("cli_missing", "ResourceNotFoundException",
                          h.aws_msg_not_found("cli_missing"))

    def test_name_not_matching_the_pattern(self):
        self.assertCliRow("my flow", "ValidationException", h.aws_msg_name_pattern("my flow"))

    def test_name_over_256_characters(self):
        self.assertCliRow(NAME_257, "ValidationException", h.aws_msg_name_too_long(NAME_257))
        self.assertTransitions("n" * 256, [])

    def test_body_over_64_kib(self):
        # Over --max-request-bytes: 413 ValidationException naming the limit.
        self.assertCliRow(NAME_70K, "ValidationException", TOO_LARGE, status=413)

    # ---- what went over the wire ----

    def test_signed_request_sent_once_and_answered(self):
        with Relay(self.port) as relay:
            r = self.cli("cli_signed", port=relay.port)
            records = relay.finish()
        self.assertCliSuccess(r, "cli_signed")
        sent = parse_messages(b"".join(a for a, _ in records))
        got = parse_messages(b"".join(b for _, b in records))
        self.assertEqual(len(sent), 1, f"the CLI sent {len(sent)} requests: {sent}")
        self.assertEqual(len(got), 1)
        line, headers, body = sent[0]
        self.assertEqual(line, "POST /stop-flow HTTP/1.1")
        self.assertEqual(json.loads(body), {"flowName": "cli_signed"})
        check_sigv4(self, line, headers, body, relay.port)
        status, rheaders, rbody = got[0]
        self.assertRegex(status, r"^HTTP/1\.1 200 ")
        self.assertRegex(rheaders.get("x-amzn-requestid", ""), h.UUID_RE)
        self.assertEqual(json.loads(rbody), {"flowArn": arn("cli_signed"),
                                             "flowStatus": "Suspended"})
        self.assertTransitions("cli_signed", ["FLOW_STATUS_ACTIVE"])

    def test_error_is_not_retried(self):
        with Relay(self.port) as relay:
            r = self.cli("cli_draft", port=relay.port)
            records = relay.finish()
        msg = h.aws_msg_cannot_stop("cli_draft", "Draft")
        self.assertCliError(r, "ConflictException", msg)
        sent = parse_messages(b"".join(a for a, _ in records))
        self.assertEqual(len(sent), 1, f"the CLI sent {len(sent)} requests")
        status, rheaders, rbody = parse_messages(b"".join(b for _, b in records))[0]
        self.assertRegex(status, r"^HTTP/1\.1 409 ")
        self.assertEqual(rheaders.get("x-amzn-errortype"), "ConflictException")
        self.assertEqual(json.loads(rbody), {"message": msg})


# ---------------------------------------------------------------------------------------------

WIRE_FLOWS = [h.flow(n, "Scheduled", "Active") for n in (
    "wire_ok", "wire_ids", "wire_unknown", "wire_query", "wire_edge", "wire_chunked",
    "wire_chunked_edge", "wire_ka_1", "wire_ka_2", "wire_kept_malformed", "wire_kept_types",
    "wire_kept_dup", "wire_kept_missing", "wire_kept_big", "wire_kept_chunked_big",
    "wire_kept_path", "wire_kept_method")] + [
    h.flow("wire_ondemand", "OnDemand", "Active"),
    h.flow("wire_draft", "Event", "Draft"),
]


def padded(name, size):
    """A JSON body of exactly size bytes naming flow name, padded with an unknown member."""
    head = json.dumps({"flowName": name, "pad": ""}).encode()
    body = head[:-2] + b"x" * (size - len(head)) + b'"}'
    assert len(body) == size and json.loads(body)["flowName"] == name
    return body


class AwsWireTest(DoorTestCase):
    FLOWS = WIRE_FLOWS

    def stop(self, name, conn=None):
        return h.aws_stop_flow(self.port, name, conn)

    def assertStopsOnce(self, name, before="FLOW_STATUS_ACTIVE"):
        """name was not changed so far: stopping it now logs its one transition."""
        self.assertTransitions(name, [])
        self.assertRawSuccess(self.stop(name), name, f"stop {name}")
        self.assertTransitions(name, [before])

    def assertSerialization(self, body, mentions=(), what=None, **kw):
        r = h.aws_request(self.port, body, **kw)
        msg = self.assertRawError(r, "SerializationException", None, what or repr(body)[:80])
        for m in mentions:
            self.assertIn(m, msg, what or repr(body)[:80])
        return msg

    # ---- every reply ----

    def test_success_reply(self):
        r = self.stop("wire_ok")
        self.assertRawSuccess(r, "wire_ok")
        self.assertEqual(r.body, json.dumps({"flowArn": arn("wire_ok"), "flowStatus": "Suspended"},
                                            separators=(",", ":")).encode())
        self.assertEqual(r.header_values("x-amzn-ErrorType"), [])
        self.assertTransitions("wire_ok", ["FLOW_STATUS_ACTIVE"])

    def test_request_ids_are_distinct(self):
        ids = []
        replies = [self.stop("wire_ids"), self.stop("wire_ids"), self.stop("wire_missing"),
                   self.stop("wire_ondemand"), self.stop("wire_draft"), self.stop("a b"),
                   h.aws_request(self.port, b"{"), h.aws_request(self.port, path="/nope"),
                   h.aws_request(self.port, None, method="GET"),
                   h.aws_request(self.port, padded("wire_ids", LIMIT + 1))]
        replies += [self.stop("wire_ids") for _ in range(10)]
        for r in replies:
            self.assertEqual(r.header("Content-Type"), "application/json", repr(r))
            self.assertRegex(r.request_id or "", h.UUID_RE, repr(r))
            ids.append(r.request_id)
        self.assertEqual(len(set(ids)), len(ids), f"repeated request ids: {ids}")

    def test_each_error_kind_on_the_wire(self):
        cases = [
            ({"flowName": "wire_missing"}, "/stop-flow", "POST", "ResourceNotFoundException",
             h.aws_msg_not_found("wire_missing")),
            ({"flowName": "wire_ondemand"}, "/stop-flow", "POST", "UnsupportedOperationException",
             h.aws_msg_on_demand("wire_ondemand")),
            ({"flowName": "wire_draft"}, "/stop-flow", "POST", "ConflictException",
             h.aws_msg_cannot_stop("wire_draft", "Draft")),
            ({"flowName": "a"}, "/stop-flow", "POST", "ValidationException",
             h.aws_msg_name_pattern("a")),
            ({"flowName": 'q"\\\u00e9\n'}, "/stop-flow", "POST", "ValidationException",
             h.aws_msg_name_pattern('q"\\x5c\\xc3\\xa9\\x0a')),
            (b"[", "/stop-flow", "POST", "SerializationException", None),
            (b"{}", "/stop", "POST", "UnknownOperationException", None),
            (None, "/stop-flow", "GET", "MethodNotAllowedException", None),
            (padded("wire_missing", LIMIT + 1), "/stop-flow", "POST",
             "ValidationException", TOO_LARGE),  # 413: over --max-request-bytes
        ]
        for body, path, method, etype, message in cases:
            with self.subTest(etype=etype, body=repr(body)[:40]):
                r = h.aws_request(self.port, body, method=method, path=path)
                status = 413 if message == TOO_LARGE else None
                self.assertRawError(r, etype, message, status=status)

    # ---- the body ----

    def test_malformed_json(self):
        for body in (b"{", b'{"flowName": "wire_kept_malformed"', b"nope",
                     b"{'flowName': 'wire_kept_malformed'}", b'{"flowName": wire_kept_malformed}',
                     b'{"flowName": "wire_kept_malformed"} x',
                     b'{"flowName": "wire_kept_malformed",}',
                     b'{"flowName": "wire_kept_malformed"}{}',
                     b'{"flowName": "wire_kept_malformed\xff"}',
                     b'{"flowName": "wire_kept_malformed\\u0000"}',
                     b'{"flowName": "wire_kept_malformed\\ud800"}',
                     b"\xef\xbb\xbf" + b'{"flowName": "wire_kept_malformed"}'):
            with self.subTest(body=body):
                self.assertSerialization(body, ("not valid JSON",))
        for body, kind in ((b"[]", "array"), (b'"wire_kept_malformed"', "string"),
                           (b"1", "number"), (b"null", "null"), (b"true", "true")):
            with self.subTest(body=body):
                self.assertSerialization(body, ("must be a JSON object",))
        self.assertStopsOnce("wire_kept_malformed")

    def test_wrong_json_type_for_flow_name(self):
        for value in (7, 1.5, -0, True, False, ["wire_kept_types"], {"name": "wire_kept_types"},
                      []):
            with self.subTest(value=value):
                self.assertSerialization({"flowName": value}, ("flowName", "must be a string"))
        # null means absent: the member is missing, which is the service's to refuse
        r = h.aws_request(self.port, {"flowName": None})
        msg = self.assertRawError(r, "ValidationException", h.AWS_MSG_NAME_NULL)
        self.assertIn("flowName", msg)
        self.assertStopsOnce("wire_kept_types")

    def test_duplicate_keys(self):
        for body in (b'{"flowName": "wire_kept_dup", "flowName": "wire_kept_dup"}',
                     b'{"flowName": "wire_kept_dup", "flowName": "other"}',
                     b'{"flowName": "wire_kept_dup", "x": 1, "x": 2}',
                     b'{"flowName": "wire_kept_dup", "x": {"a": 1, "a": 1}}'):
            with self.subTest(body=body):
                self.assertSerialization(body, ("duplicate",))
        self.assertStopsOnce("wire_kept_dup")

    def test_missing_flow_name(self):
        for body in (b"{}", b"", None, b" \r\n\t ", {"flowname": "wire_kept_missing"},
                     {"FlowName": "wire_kept_missing"}, {"flow_name": "wire_kept_missing"},
                     {"flowName": None}):
            with self.subTest(body=body):
                r = h.aws_request(self.port, body)
                msg = self.assertRawError(r, "ValidationException", h.AWS_MSG_NAME_NULL)
                self.assertIn("'flowName'", msg)
        # "" is not missing: it is a present value (proto2 presence) and fails the pattern.
        r = h.aws_request(self.port, {"flowName": ""})
        self.assertRawError(r, "ValidationException", h.AWS_MSG_NAME_EMPTY)
        self.assertStopsOnce("wire_kept_missing")

    def test_unknown_members_are_ignored(self):
        body = {"clientToken": "abc", "flowName": "wire_unknown", "n": 1.5, "t": True,
                "nested": {"a": [1, {"b": None}], "flowName": "x y"}, "z": None}
        self.assertRawSuccess(h.aws_request(self.port, body), "wire_unknown")
        self.assertTransitions("wire_unknown", ["FLOW_STATUS_ACTIVE"])

    def test_query_string_is_not_part_of_the_route(self):
        r = h.aws_request(self.port, {"flowName": "wire_query"}, path="/stop-flow?x=1&flowName=no")
        self.assertRawSuccess(r, "wire_query")
        self.assertTransitions("wire_query", ["FLOW_STATUS_ACTIVE"])

    # ---- the 64 KiB limit (--max-request-bytes LIMIT) ----

    def test_body_of_exactly_64_kib_is_accepted(self):
        self.assertRawSuccess(h.aws_request(self.port, padded("wire_edge", LIMIT)),
                              "wire_edge")
        self.assertTransitions("wire_edge", ["FLOW_STATUS_ACTIVE"])

    def test_body_over_64_kib(self):
        # (Larger bodies: test_declared_length_over_64_kib_is_refused_before_the_body; a client
        # still sending when the server closes cannot always read the reply.)
        for size in (LIMIT + 1, 70000):
            with self.subTest(size=size):
                r = h.aws_request(self.port, padded("wire_kept_big", size))
                self.assertRawError(r, "ValidationException", TOO_LARGE, status=413)
        self.assertStopsOnce("wire_kept_big")

    def test_declared_length_over_64_kib_is_refused_before_the_body(self):
        # The declared length alone is refused: a 413 (no 100 Continue) with no byte of the
        # body sent.
        for expect, size in ((False, LIMIT + 1), (True, 70000), (False, 1024 * 1024 + 1)):
            with self.subTest(expect=expect, size=size):
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(b"POST /stop-flow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/json\r\n"
                              + (b"Expect: 100-continue\r\n" if expect else b"")
                              + b"Content-Length: %d\r\n\r\n" % size)
                    data = b""
                    while True:  # the server answers, then closes the connection
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                replies = parse_messages(data)
                self.assertEqual(len(replies), 1, data)
                status, headers, body = replies[0]
                self.assertRegex(status, r"^HTTP/1\.1 413 ")
                self.assertEqual(headers.get("x-amzn-errortype"), "ValidationException")
                self.assertEqual(headers.get("content-type"), "application/json")
                self.assertRegex(headers.get("x-amzn-requestid", ""), h.UUID_RE)
                self.assertEqual(json.loads(body), {"message": TOO_LARGE})

    def test_chunked_body_within_the_limit(self):
        self.assertRawSuccess(h.aws_request(self.port, padded("wire_chunked", 20000),
                                            chunked=True), "wire_chunked")
        self.assertRawSuccess(h.aws_request(self.port, padded("wire_chunked_edge", LIMIT),
                                            chunked=True), "wire_chunked_edge")
        self.assertTransitions("wire_chunked", ["FLOW_STATUS_ACTIVE"])
        self.assertTransitions("wire_chunked_edge", ["FLOW_STATUS_ACTIVE"])

    def test_chunked_body_over_64_kib(self):
        # No Content-Length: the limit is found while reading; the reply must still be a 413.
        outcome = {}
        for size in (LIMIT + 1, 70000):
            try:
                outcome[size] = h.aws_request(self.port, padded("wire_kept_chunked_big", size),
                                              chunked=True)
            except (ConnectionError, OSError) as e:  # http.client.RemoteDisconnected included
                outcome[size] = e
        self.assertStopsOnce("wire_kept_chunked_big")
        for size, r in outcome.items():
            with self.subTest(size=size):
                if isinstance(r, Exception):
                    self.fail(f"chunked body of {size} bytes: no reply, the server closed the "
                              f"connection ({r!r}); expected 413 ValidationException")
                self.assertRawError(r, "ValidationException", TOO_LARGE, status=413)

    # ---- routes and methods ----

    def test_unknown_path(self):
        for path in ("/nope", "/stop-flow/", "/Stop-Flow", "/", "/stop-flow2", "/stopflow",
                     "/stop-flow/wire_kept_path", "//stop-flow"):
            for method in ("POST", "GET"):
                with self.subTest(path=path, method=method):
                    r = h.aws_request(self.port, {"flowName": "wire_kept_path"}, method=method,
                                      path=path)
                    msg = self.assertRawError(r, "UnknownOperationException")
                    self.assertIn(path, msg)
        self.assertStopsOnce("wire_kept_path")

    def test_wrong_method(self):
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                body = None if method == "GET" else {"flowName": "wire_kept_method"}
                r = h.aws_request(self.port, body, method=method)
                self.assertRawError(r, "MethodNotAllowedException", "/stop-flow takes POST only")
                self.assertEqual(r.header("Allow"), "POST")
        self.assertStopsOnce("wire_kept_method")

    # ---- connections ----

    def test_keep_alive(self):
        conn = h.http_connection(self.port)
        self.addCleanup(conn.close)
        replies = [
            self.stop("wire_ka_1", conn),
            self.stop("wire_ka_missing", conn),
            h.aws_request(self.port, b"{", conn=conn),
            h.aws_request(self.port, {"flowName": "wire_ka_2"}, path="/nope", conn=conn),
            h.aws_request(self.port, None, method="GET", conn=conn),
            self.stop("wire_ka_1", conn),
            self.stop("wire_ka_2", conn),
        ]
        expected = [200, 404, 400, 404, 405, 200, 200]
        self.assertEqual([r.status for r in replies], expected)
        socknames = [r.sockname for r in replies]
        self.assertEqual(len(set(socknames)), 1,
                         f"requests went out on several connections: {socknames}")
        for r in replies:
            self.assertNotIn("close", (r.header("Connection") or "").lower(), repr(r))
        self.assertEqual(len({r.request_id for r in replies}), len(replies))
        self.assertRawSuccess(replies[-1], "wire_ka_2")
        self.assertTransitions("wire_ka_1", ["FLOW_STATUS_ACTIVE"])
        self.assertTransitions("wire_ka_2", ["FLOW_STATUS_ACTIVE"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
