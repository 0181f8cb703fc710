"""Hostile input against the real binary: each case gets its exact answer, the server stays up,
and no flow changes (the marker flow `kept` is Active throughout; a last StopFlow of it logs
its one transition)."""
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FLOWS = [h.flow("kept", "Scheduled", "Active"), h.flow("target", "Scheduled", "Suspended")]


def raw(port, data, read_timeout=5.0):
    """Sends bytes on a new connection and returns everything the server sends back."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h.start_http_server(FLOWS, "--http-timeout", "2")

    @classmethod
    def tearDownClass(cls):
        # No flow changed: the marker's only transition is the one made here.
        r = h.aws_stop_flow(cls.srv.http_port, "kept")
        assert r.status == 200, r.body
        h.wait_until(lambda: cls.srv.transitions_of("kept"), what="kept's transition")
        assert len(cls.srv.transitions_of("kept")) == 1, cls.srv.lines()
        cls.srv.check_stopped_cleanly()

    def expect(self, reply, status, error_type):
        self.assertEqual(reply.status, status, reply.body)
        self.assertEqual(reply.header("x-amzn-ErrorType"), error_type)
        self.assertIsInstance(json.loads(reply.body)["message"], str)

    def still_serving(self):
        r = h.aws_stop_flow(self.srv.http_port, "target")
        self.assertEqual(r.status, 200, r.body)

    def test_deep_nesting(self):
        deep = b'{"flowName":"kept","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
        self.expect(h.aws_request(self.srv.http_port, deep), 400, "SerializationException")
        # Within jansson's limit an unknown member is skipped whole: the request goes through.
        ok = b'{"flowName":"target","x":' + b"[" * 100 + b"]" * 100 + b"}"
        self.assertEqual(h.aws_request(self.srv.http_port, ok).status, 200)
        self.still_serving()

    def test_huge_numbers(self):
        for body in (b'{"flowName": 1e999}', b'{"flowName":"kept","n":' + b"9" * 400 + b"}",
                     b'{"flowName": -123456789012345678901234567890}'):
            with self.subTest(body=body[:40]):
                self.expect(h.aws_request(self.srv.http_port, body), 400,
                            "SerializationException")
        self.still_serving()

    def test_nul_and_invalid_utf8_in_flow_name(self):
        for body in (b'{"flowName":"ke\\u0000pt"}', b'{"flowName":"ke\xffpt"}',
                     b'{"flowName":"\xc3\x28"}'):
            with self.subTest(body=body):
                self.expect(h.aws_request(self.srv.http_port, body), 400,
                            "SerializationException")

    def test_name_of_257_characters(self):
        r = h.aws_stop_flow(self.srv.http_port, "k" * 257)
        self.expect(r, 400, "ValidationException")
        self.assertIn("less than or equal to 256", json.loads(r.body)["message"])

    def test_duplicate_keys(self):
        self.expect(h.aws_request(self.srv.http_port, b'{"flowName":"target","flowName":"kept"}'),
                    400, "SerializationException")

    def test_content_type_is_not_required(self):
        # AWS clients send application/json; appflowd reads the body as JSON whatever the type
        # says, so a missing or odd Content-Type changes nothing (documented in SECURITY.md).
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            with self.subTest(ctype=ctype):
                headers = {"Content-Type": ctype} if ctype else {}
                r = h.aws_request(self.srv.http_port, b'{"flowName":"target"}', headers=headers)
                self.assertEqual(r.status, 200, r.body)

    def test_http_1_0_without_keep_alive(self):
        body = b'{"flowName":"target"}'
        reply = raw(self.srv.http_port, b"POST /stop-flow HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body))
        head, _, payload = reply.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(json.loads(payload)["flowStatus"], "Suspended")  # and the server closed

    def test_a_request_cannot_write_a_log_line_of_its_own(self):
        """The debug log quotes the request-target escaped: a %0A in it (which the HTTP layer
        decodes to a newline) cannot start a forged line."""
        srv = h.start_http_server(FLOWS, "--log-level", "debug")
        try:
            forged = "appflowd: info: flow forged: FLOW_STATUS_ACTIVE -> FLOW_STATUS_SUSPENDED"
            path = "/stop-flow%0A" + forged.replace(" ", "%20").replace(">", "%3E")
            self.expect(h.aws_request(srv.http_port, b"{}", path=path), 404,
                        "UnknownOperationException")
            line = srv.wait_for_line(re.compile(r"^appflowd: debug: .*forged.*"
                                                r"UnknownOperationException$")).group(0)
            self.assertIn("\\x0a" + "appflowd: info: flow forged", line)
            self.assertFalse([l for l in srv.lines() if l.startswith(forged)], srv.lines())
        finally:
            srv.stop()

    def test_garbage_and_truncated_requests(self):
        for data in (b"\x00\x01\x02garbage\r\n\r\n", b"POST /stop-flow HTTP/1.1\r\nContent-Len",
                     b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01"):
            with self.subTest(data=data[:20]):
                raw(self.srv.http_port, data, read_timeout=3)
        self.still_serving()
        # and on the gRPC door: a preface followed by a truncated frame, then garbage
        raw(self.srv.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x10\x04\x00", read_timeout=3)
        raw(self.srv.port, os.urandom(4096), read_timeout=3)
        s = h.stubs()
        stub = s.appflow_pb2_grpc.AppFlowServiceStub(h.channel(self.srv.port))
        stub.StopFlow(s.appflow_pb2.StopFlowRequest(flow_name="target"), timeout=10)

    def test_silent_client_is_cut_off_and_others_go_on(self):
        with socket.create_connection(("127.0.0.1", self.srv.http_port), timeout=10) as s:
            s.sendall(b"POST /stop-flow HTTP/1.1\r\nHost: x\r\n")  # then nothing
            t0 = time.monotonic()
            self.still_serving()  # a stalled client holds nobody up
            self.assertEqual(s.recv(1024), b"")  # closed by the server...
            self.assertLess(time.monotonic() - t0, 2 + 4)  # ...after --http-timeout 2

    def test_trickling_client_is_cut_off_and_starves_no_one(self):
        # One header byte every 0.2 s never leaves the connection silent, so only the deadline
        # on a whole request (--http-timeout 2) ends it.
        outcome = {}

        def trickle():
            with socket.create_connection(("127.0.0.1", self.srv.http_port), timeout=10) as s:
                t0 = time.monotonic()
                for b in b"POST /stop-flow HTTP/1.1\r\nX-Slow: " + b"a" * 200:
                    try:
                        s.send(bytes([b]))
                    except OSError:
                        break
                    time.sleep(0.2)
                    if time.monotonic() - t0 > 20:
                        break
                outcome["after"] = time.monotonic() - t0

        t = threading.Thread(target=trickle)
        t.start()
        try:
            for _ in range(20):
                self.still_serving()
        finally:
            t.join(30)
        self.assertLess(outcome["after"], 2 + 3, "a trickling client was not cut off")

    def test_a_thousand_idle_connections(self):
        idle = []
        try:
            for port in [self.srv.http_port] * 500 + [self.srv.port] * 500:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            t0 = time.monotonic()
            for _ in range(20):
                self.still_serving()
            s = h.stubs()
            stub = s.appflow_pb2_grpc.AppFlowServiceStub(h.channel(self.srv.port))
            stub.StopFlow(s.appflow_pb2.StopFlowRequest(flow_name="target"), timeout=10)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            for s in idle:
                s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
