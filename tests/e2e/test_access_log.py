"""The access log (--access-log FILE|-), end to end: one JSON object per line per call on both
doors with every field, request_id equal to the AWS door's x-amzn-RequestId and to the gRPC
door's x-amzn-requestid response header; hostile input (quotes, backslashes, %0A, control
characters and bytes that are not UTF-8, in paths, methods and headers) only ever inside an
escaped JSON string; a signed request's Authorization header, signature, secret key and session
token in no log at all, stderr included; whole lines from many threads; and a log that cannot be
written (a full disk, a pipe nobody reads or nobody holds) costing lines, counted on /metrics,
never a call.

Lines are written before the reply goes out, so a test reads the log after the reply without
waiting; standard output is read by a thread, so those lines are waited for."""

import datetime
import http.client
import json
import os
import re
import socket
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import boto3  # noqa: E402
import botocore.config  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
C = grpc.StatusCode
FIELDS = {"time", "request_id", "door", "operation", "account", "region", "status", "error_type",
          "duration_us", "peer", "bytes_in", "bytes_out", "method", "path", "user_agent"}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEEDS = [h.flow(f"seed_{i}", "Scheduled", "Active") for i in range(4)]
KEY_ID, SECRET = "AKIDLOGTEST0000001", "log/secret+key=VERYSECRET"
SESSION_TOKEN = "FQoGZXIvYXdzSESSIONTOKENNEVERLOGGED"
CREDS = f"""[tester]
aws_access_key_id = {KEY_ID}
aws_secret_access_key = {SECRET}
"""


def parse_lines(data):
    """Every line of data (bytes) as a JSON object; AssertionError naming a line that is not one
    object or does not end with a newline."""
    if data and not data.endswith(b"\n"):
        raise AssertionError(f"the log ends mid-line: {data[-200:]!r}")
    out = []
    for raw in data.split(b"\n")[:-1]:
        if not raw.startswith(b'{"time":"'):
            raise AssertionError(f"a line that is not an entry: {raw!r}")
        v = json.loads(raw.decode("utf-8"))  # strict UTF-8: nothing a caller sent is raw
        if not isinstance(v, dict) or set(v) != FIELDS:
            raise AssertionError(f"not every field: {raw!r}")
        out.append(v)
    return out


def read_log(path):
    with open(path, "rb") as f:
        return f.read()


def grpc_create(stub, name):
    req = json_format.ParseDict(h.to_proto_json(h.s3_flow(name)), pb.CreateFlowRequest())
    resp, call = stub.CreateFlow.with_call(req, timeout=10)
    return req, resp, call


def header(md, name):
    vals = [v for k, v in md or () if k == name]
    if len(vals) != 1:
        raise AssertionError(f"{name} sent {len(vals)} times: {md}")
    return vals[0]


def raw_http(port, data):
    """Sends data as is on a new connection; the status of the reply (0: no reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", reply)
    return int(m.group(1)) if m else 0


def dropped(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.admin_port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    m = re.search(r"^appflowd_access_log_dropped_total (\S+)$", text, re.M)
    if m is None:
        raise AssertionError("no appflowd_access_log_dropped_total")
    return float(m.group(1))


class AccessLogTest(h.ServerTestCase):
    def start_logged(self, target=None, *extra, flows=SEEDS):
        path = target or os.path.join(h.tempdir(), "access.log")
        srv = self.start_http(flows, "--access-log", path, *extra)
        srv.log_path = path
        chan = h.channel(srv.port)
        self.addCleanup(chan.close)
        srv.chan = chan
        srv.stub = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        return srv

    def both_doors(self, srv):
        """Calls on both doors: {request_id: what the line must say}."""
        want = {}
        req, resp, call = grpc_create(srv.stub, "grpc_flow")
        want[header(call.initial_metadata(), "x-amzn-requestid")] = {
            "door": "grpc", "operation": "CreateFlow", "status": "OK", "error_type": None,
            "method": "POST", "path": "/appflow.v1.AppFlowService/CreateFlow",
            "bytes_in": len(req.SerializeToString()), "bytes_out": len(resp.SerializeToString())}
        try:
            srv.stub.DescribeFlow(pb.DescribeFlowRequest(flow_name="nope"), timeout=10)
            raise AssertionError("DescribeFlow of a missing flow answered")
        except grpc.RpcError as e:
            self.assertEqual(e.code(), C.NOT_FOUND)
            want[header(e.initial_metadata(), "x-amzn-requestid")] = {
                "door": "grpc", "operation": "DescribeFlow", "status": "NotFound",
                "error_type": "ResourceNotFoundException", "bytes_out": 0}
        conn = h.http_connection(srv.http_port)
        self.addCleanup(conn.close)
        body = json.dumps(h.s3_flow("aws_flow")).encode()
        r = h.aws_request(srv.http_port, body, path="/create-flow", conn=conn)
        self.assertEqual(r.status, 200, r)
        want[r.request_id] = {
            "door": "aws", "operation": "CreateFlow", "status": 200, "error_type": None,
            "method": "POST", "path": "/create-flow", "bytes_in": len(body),
            "bytes_out": len(r.body), "peer": "%s:%d" % r.sockname}
        r = h.aws_request(srv.http_port, None, method="GET", conn=conn,
                          path="/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A000000000000%3Aflow%2Fnope"
                               "?tagKeys=ignored")
        self.assertEqual(r.status, 404, r)
        want[r.request_id] = {
            "door": "aws", "operation": "ListTagsForResource", "status": 404,
            "error_type": "ResourceNotFoundException", "method": "GET",
            "path": "/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A000000000000%3Aflow%2Fnope"}
        return want

    def check_lines(self, lines, want):
        self.assertEqual(len(lines), len(want), lines)
        now = datetime.datetime.now(datetime.timezone.utc)
        for line in lines:
            self.assertIn(line["request_id"], want, line)
            self.assertRegex(line["request_id"], h.UUID_RE)
            for k, v in want[line["request_id"]].items():
                self.assertEqual(line[k], v, f"{k} of {line}")
            self.assertRegex(line["time"], TIME_RE)
            when = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc)
            self.assertLess(abs((now - when).total_seconds()), 120)
            self.assertEqual((line["account"], line["region"]), ("000000000000", "us-east-1"))
            self.assertIsInstance(line["duration_us"], int)
            self.assertGreaterEqual(line["duration_us"], 0)
            self.assertRegex(line["peer"], r"^127\.0\.0\.1:\d+$")
            if line["door"] == "grpc":
                self.assertIn("grpc-python", line["user_agent"])
            else:
                self.assertIsNone(line["user_agent"], "http.client sends none")

    def test_a_file_gets_a_line_per_call_on_both_doors(self):
        srv = self.start_logged()
        want = self.both_doors(srv)
        self.check_lines(parse_lines(read_log(srv.log_path)), want)
        self.assertNotIn("ignored", read_log(srv.log_path).decode(), "a query is never logged")

    def test_a_log_that_cannot_be_opened_stops_start_up(self):
        r = h.run_appflowd("--access-log", "/nonexistent-dir/access.log")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("appflowd: --access-log /nonexistent-dir/access.log: No such file or "
                      "directory", r.stderr)
        r = h.run_appflowd("--access-log", "")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--access-log takes a file name, or - for standard output", r.stderr)

    def test_standard_output(self):
        srv = self.start_logged("-")
        want = self.both_doors(srv)
        h.wait_until(lambda: len(srv.stdout_lines()) >= len(want), what="the lines on stdout")
        self.check_lines(parse_lines("".join(l + "\n" for l in srv.stdout_lines()).encode()),
                         want)

    def test_off_by_default(self):
        srv = self.start_http(SEEDS)
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))
        _, call = stub.StopFlow.with_call(pb.StopFlowRequest(flow_name="seed_0"), timeout=10)
        self.assertNotIn("x-amzn-requestid", [k for k, _ in call.initial_metadata() or ()])
        self.assertEqual(h.aws_stop_flow(srv.http_port, "seed_1").status, 200)
        srv.stop()
        self.assertEqual(srv.stdout_lines(), [])

    def test_what_a_caller_sends_is_only_ever_escaped(self):
        srv = self.start_logged()
        port = srv.http_port
        hostile_path = b'/tags/a"b\\c%0A%22%5C\xff\xfe\x80{"door":"x"}'
        sent = [
            raw_http(port, b"GET " + hostile_path + b" HTTP/1.1\r\nHost: x\r\n"
                           b'User-Agent: ua"quote\\back\xff\x01\x7f}\r\n\r\n'),
            raw_http(port, b'POST /create-flow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n'
                           b'User-Agent: \xc3\xa9t\xc3\xa9 \xe2\x80\xa8 end\r\n\r\n{}'),
            raw_http(port, b"GET /%0A%0D%00x HTTP/1.1\r\nHost: x\r\n\r\n"),
            raw_http(port, b'FOO"\\ /stop-flow HTTP/1.1\r\nHost: x\r\n\r\n'),
        ]
        answered = [s for s in sent if s != 0]
        self.assertGreaterEqual(len(answered), 3, sent)
        # A flow name with a quote, a newline and a backslash in a body (the log never holds
        # bodies) and in a path.
        name = 'bad"name\nwith\\'
        r = h.aws_request(port, {"flowName": name}, path="/describe-flow")
        self.assertEqual(r.status, 400)
        # The gRPC door: a user agent and a method of the caller's choosing.
        chan = grpc.insecure_channel(f"127.0.0.1:{srv.port}",
                                     options=[("grpc.enable_http_proxy", 0),
                                              ("grpc.primary_user_agent", 'evil"ua\\x')])
        self.addCleanup(chan.close)
        code, _, _ = h.grpc_error_of(
            lambda: chan.unary_unary('/evil"svc\\x.S/M%0A')(b"", timeout=10))
        self.assertEqual(code, C.UNIMPLEMENTED)
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        code, _, _ = h.grpc_error_of(
            lambda: stub.DescribeFlow(pb.DescribeFlowRequest(flow_name=name), timeout=10))
        self.assertEqual(code, C.INVALID_ARGUMENT)
        data = read_log(srv.log_path)
        lines = parse_lines(data)  # every line one entry, strictly UTF-8
        self.assertEqual(len(lines), len(answered) + 3, "one line per answered call")
        self.assertNotIn(b"\xff", data)
        self.assertNotIn(b"\x01", data)
        self.assertNotIn(b'a"b', data, "a quote is escaped")
        self.assertNotIn(b"\n" + b"with", data)
        paths = [l["path"] for l in lines]
        self.assertIn('/tags/a"b\\c%0A%22%5C\\xff\\xfe\\x80{"door":"x"}', paths)
        self.assertIn('/evil"svc\\x.S/M%0A', paths)
        agents = [l["user_agent"] for l in lines]
        self.assertIn('ua"quote\\back\\xff\x01\x7f}', agents)
        self.assertIn("\u00e9t\u00e9 \u2028 end", agents, "UTF-8 is kept")
        self.assertTrue(any(a and a.startswith('evil"ua\\x') for a in agents), agents)
        unknown = [l for l in lines if l["path"].startswith("/evil")][0]
        self.assertEqual((unknown["operation"], unknown["status"], unknown["door"]),
                         ("none", "Unimplemented", "grpc"))
        self.assertEqual({l["door"] for l in lines}, {"aws", "grpc"})
        self.assertTrue(all(l["door"] in ("aws", "grpc") for l in lines))

    def test_credentials_are_never_logged(self):
        creds = os.path.join(h.tempdir(), "credentials")
        with open(creds, "w") as f:
            f.write(CREDS)
        srv = self.start_logged(None, "--aws-credentials", creds, "--log-level", "debug")
        sent = []
        for token in (None, SESSION_TOKEN):
            client = boto3.session.Session().client(
                "appflow", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{srv.http_port}",
                aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=token,
                config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                              proxies={}))
            client.meta.events.register("before-send",
                                        lambda request, **kw: sent.append(dict(request.headers)))
            try:
                client.describe_flow(flowName="seed_0")
            except client.exceptions.ClientError:
                pass
        # A signature in the query (a presigned URL) and a made-up Authorization header.
        fake_sig = "f" * 64
        raw_http(srv.http_port, b"POST /describe-flow?X-Amz-Signature=" + fake_sig.encode() +
                 b"&X-Amz-Security-Token=" + SESSION_TOKEN.encode() +
                 b" HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" +
                 KEY_ID.encode() + b"/20240101/us-east-1/appflow/aws4_request, SignedHeaders=host,"
                 b" Signature=" + fake_sig.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(len(sent), 2)
        secrets = [SECRET, SESSION_TOKEN, fake_sig]
        for headers in sent:
            auth = headers["Authorization"]
            auth = auth.decode() if isinstance(auth, bytes) else auth
            secrets += [auth, auth.split("Signature=")[1]]
        srv.stop()
        logs = read_log(srv.log_path).decode() + srv.stderr_text()
        self.assertEqual(len(parse_lines(read_log(srv.log_path))), 3)
        for s in secrets:
            self.assertNotIn(s, logs)

    def test_lines_from_many_threads_are_whole(self):
        srv = self.start_logged()
        ids = []
        lock = threading.Lock()

        def body(i):
            conn = h.http_connection(srv.http_port)
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(srv.chan)
            try:
                for n in range(30):
                    if (i + n) % 2:
                        r = h.aws_stop_flow(srv.http_port, "seed_1", conn=conn)
                        got = r.request_id
                    else:
                        _, call = stub.StopFlow.with_call(
                            pb.StopFlowRequest(flow_name="seed_2"), timeout=30)
                        got = header(call.initial_metadata(), "x-amzn-requestid")
                    with lock:
                        ids.append(got)
            finally:
                conn.close()

        errors = h.run_threads(8, body)
        self.assertEqual(errors, [])
        lines = parse_lines(read_log(srv.log_path))
        self.assertEqual(len(lines), 8 * 30)
        self.assertEqual(sorted(l["request_id"] for l in lines), sorted(ids))
        self.assertEqual(len(set(ids)), len(ids), "every id is new")

    def test_a_log_that_cannot_be_written_costs_lines_never_calls(self):
        srv = self.start_logged("/dev/full", "--admin-listen", "127.0.0.1:0")
        for i in range(20):
            self.assertEqual(h.aws_stop_flow(srv.http_port, "seed_0").status, 200)
        srv.stub.StopFlow(pb.StopFlowRequest(flow_name="seed_0"), timeout=10)
        self.assertEqual(dropped(srv), 21, "a full disk: every line dropped and counted")

    def test_a_pipe_nobody_reads_then_nobody_holds(self):
        r, w = os.pipe()
        still_open = [r, w]

        def close(fd):
            still_open.remove(fd)
            os.close(fd)

        self.addCleanup(lambda: [os.close(fd) for fd in still_open])
        argv = h.server_argv(h.write_seed(SEEDS), "--http-listen", "127.0.0.1:0",
                             "--admin-listen", "127.0.0.1:0", "--access-log", "-")
        srv = h.Server(argv, stdout=w).wait_started()
        self.addCleanup(srv.check_stopped_cleanly)
        close(w)  # the server holds the only write end
        conn = h.http_connection(srv.http_port)
        self.addCleanup(conn.close)
        for _ in range(400):  # well past what a pipe holds: the server does not wait for it
            self.assertEqual(h.aws_stop_flow(srv.http_port, "seed_0", conn=conn).status, 200)
        full = dropped(srv)
        self.assertGreater(full, 0)
        self.assertLess(full, 400, "lines went through until the pipe was full")
        close(r)  # nobody holds the pipe now: every write fails
        for _ in range(10):
            self.assertEqual(h.aws_stop_flow(srv.http_port, "seed_0", conn=conn).status, 200)
        self.assertEqual(dropped(srv), full + 10)


if __name__ == "__main__":
    unittest.main()
