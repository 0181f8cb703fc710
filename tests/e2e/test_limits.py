"""The gRPC door's production limits: --max-request-bytes (both doors), --max-concurrent-streams,
--max-connection-idle, --keepalive-min-ping and --keepalive-max-strikes. Their ranges at
start-up (exit status 2 with usage outside them), and their effect, seen by grpcio and, where
the effect is on the HTTP/2 connection itself (SETTINGS, PING, GOAWAY), by a minimal HTTP/2
client written here over a plain socket (client preface, SETTINGS and their ack, PING,
HEADERS with literal HPACK fields, DATA, RST_STREAM; every frame read is parsed)."""

import os
import socket
import sys
import threading
import time
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import held  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
pb = S.appflow_pb2
C = grpc.StatusCode

# ---------------------------------------------------------------------------------------------
# A minimal HTTP/2 client (RFC 9113), enough to see what the server does to a connection.

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
NO_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x8, 0xB
LIST_SERVICES = P.reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()


# HTTP/2 frames and HPACK integers, as the held-connections tool writes them
frame = held.h2_frame
hpack_int = held.hpack_int


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman coding."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


class Goaway(Exception):
    def __init__(self, last_stream, code, debug):
        super().__init__(f"GOAWAY last_stream={last_stream} code={code:#x} debug={debug!r}")
        self.last_stream, self.code, self.debug = last_stream, code, debug


class H2Conn:
    """One HTTP/2 connection to 127.0.0.1:port, prior knowledge (h2c). Frames are read into
    self.frames as (type, flags, stream, payload); GOAWAY frames also into self.goaways."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.frames = []
        self.goaways = []
        self.server_settings = None
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def close(self):
        self.sock.close()

    def _read_exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        head = self._read_exact(9)
        length = int.from_bytes(head[:3], "big")
        f = (head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF,
             self._read_exact(length))
        self.frames.append(f)
        if f[0] == GOAWAY:
            pl = f[3]
            self.goaways.append(Goaway(int.from_bytes(pl[:4], "big") & 0x7FFFFFFF,
                                       int.from_bytes(pl[4:8], "big"), pl[8:]))
        if f[0] == SETTINGS and not f[1] & ACK:
            self.sock.sendall(frame(SETTINGS, ACK, 0))
            if self.server_settings is None:
                pl = f[3]
                self.server_settings = {int.from_bytes(pl[i:i + 2], "big"):
                                        int.from_bytes(pl[i + 2:i + 6], "big")
                                        for i in range(0, len(pl), 6)}
        return f

    def read_until(self, pred):
        """Reads frames until pred(frame) is true; returns that frame. EOFError if the
        connection closes first."""
        while True:
            f = self.read_frame()
            if pred(f):
                return f

    def handshake(self):
        """Waits for the server's SETTINGS and its ack of ours; returns the server's settings."""
        self.read_until(lambda f: f[0] == SETTINGS and f[1] & ACK)
        while self.server_settings is None:
            self.read_frame()
        return self.server_settings

    def round_trip(self):
        """A SETTINGS frame and its ack: once it is back, every frame the server queued in
        answer to what was sent before it has been read."""
        self.sock.sendall(frame(SETTINGS, 0, 0))
        self.read_until(lambda f: f[0] == SETTINGS and f[1] & ACK)

    def ping(self, n):
        """Sends PING n, waits for its ack and a round trip. Returns the GOAWAYs received
        meanwhile (those the PING caused)."""
        before = len(self.goaways)
        opaque = n.to_bytes(8, "big")
        self.sock.sendall(frame(PING, 0, 0, opaque))
        try:
            self.read_until(lambda f: f[0] == PING and f[1] & ACK and f[3] == opaque)
            self.round_trip()
        except EOFError:
            if len(self.goaways) == before:  # closed without a word
                raise
        return self.goaways[before:]

    def start_call(self, stream, path, message=b"", end=True):
        """Opens a gRPC call on stream: HEADERS, then one message in a DATA frame that ends the
        client's side when `end`."""
        fields = ((":method", "POST"), (":scheme", "http"), (":path", path),
                  (":authority", f"127.0.0.1:{self.port}"), ("content-type", "application/grpc"),
                  ("te", "trailers"))
        block = b"".join(hpack_literal(k, v) for k, v in fields)
        msg = b"\x00" + len(message).to_bytes(4, "big") + message
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, block) +
                          frame(DATA, END_STREAM if end else 0, stream, msg))

    def start_open_call(self, stream):
        """A call that stays open: ServerReflectionInfo with one list_services request and the
        client's side left open; returns once the answer (DATA) is in. (A reflection stream,
        not a health watch: it ends when its connection does, with nothing left to race with
        shutdown.)"""
        self.start_call(stream, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                        LIST_SERVICES, end=False)
        self.read_until(lambda f: f[0] == DATA and f[2] == stream)

    def reset(self, stream):
        self.sock.sendall(frame(RST_STREAM, 0, stream, CANCEL.to_bytes(4, "big")))


def h2(test, server, timeout=10):
    """An H2Conn to server that has exchanged SETTINGS, closed after the test."""
    conn = H2Conn(server.port, timeout)
    test.addCleanup(conn.close)
    conn.handshake()
    return conn


# ---------------------------------------------------------------------------------------------

class LimitFlagsTest(unittest.TestCase):
    """Each limit's documented range: accepted at its ends, refused just outside."""

    RANGES = {
        "--max-request-bytes": (("1024", "67108864"),
                                ("1023", "67108865", "0", "-1", "", "abc", "2k", "1.5e3")),
        "--max-concurrent-streams": (("1", "100000"), ("0", "100001", "-1", "", "x", "2.0")),
        "--keepalive-min-ping": (("0", "0.5", "86400"), ("-1", "86401", "", "nan", "1s")),
        "--keepalive-max-strikes": (("0", "1000"), ("-1", "1001", "", "1.5", "many")),
        "--max-connection-idle": (("0", "0.5", "2073600"), ("-0.5", "2073601", "", "inf")),
    }

    def assertUsageError(self, *args, mentions=()):
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", *args)
        self.assertEqual(r.returncode, 2, f"{args}: stderr {r.stderr!r}")
        self.assertIn("usage: appflowd", r.stderr, args)
        self.assertNotIn("listening", r.stderr, args)
        for m in mentions:
            self.assertIn(m, r.stderr, args)

    def test_help_lists_the_limits(self):
        r = h.run_appflowd("--help")
        self.assertEqual(r.returncode, 0)
        for flag in self.RANGES:
            self.assertIn(flag, r.stdout)

    def test_out_of_range_refused(self):
        for flag, (_, bad) in self.RANGES.items():
            for v in bad:
                with self.subTest(flag=flag, value=v):
                    self.assertUsageError(flag, v, mentions=(flag, f"'{v}'"))
            with self.subTest(flag=flag, value=None):
                self.assertUsageError(flag, mentions=(flag,))  # no argument at all

    def test_range_ends_accepted(self):
        for i in range(3):
            flags = []
            for flag, (good, _) in self.RANGES.items():
                flags += [flag, good[min(i, len(good) - 1)]]
            with self.subTest(flags=flags):
                srv = h.start_server([h.flow("limits_ok")], *flags)
                try:
                    with h.channel(srv.port) as ch:
                        r = S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                            pb.StopFlowRequest(flow_name="limits_ok"), timeout=10)
                    self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)
                finally:
                    srv.check_stopped_cleanly()


class MaxRequestBytesTest(h.ServerTestCase):
    def test_requests_over_the_limit_are_refused(self):
        srv = self.start([h.flow("recv_ok")], "--max-request-bytes", "2048")
        with h.channel(srv.port) as ch:
            raw = h.raw_stop_flow(ch)

            def call(total):
                """A StopFlowRequest of exactly `total` bytes."""
                n = total - 1 - len(h.varint(total))
                req = h.encode_flow_name(b"a" * n)
                self.assertEqual(len(req), total)
                with self.assertRaises(grpc.RpcError) as cm:
                    raw(req, timeout=10)
                return cm.exception

            for total in (2049, 3000, 70000):
                with self.subTest(bytes=total):
                    e = call(total)
                    self.assertEqual(e.code(), C.RESOURCE_EXHAUSTED, e.details())
                    self.assertIn("2048", e.details())
            for total in (1500, 2048):  # these reach the service: the name is over 256
                with self.subTest(bytes=total):
                    code, details, reason, _ = h.error_parts(call(total))
                    self.assertEqual((code, reason), (C.INVALID_ARGUMENT, "ValidationException"))
                    self.assertRegex(details, r"^1 validation error detected: Value 'a{256}' "
                                              r"at 'flowName' failed to satisfy constraint: "
                                              r"Member must have length less than or equal "
                                              r"to 256$")
            r = S.appflow_pb2_grpc.AppFlowServiceStub(ch).StopFlow(
                pb.StopFlowRequest(flow_name="recv_ok"), timeout=10)
            self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)


class MaxConcurrentStreamsTest(h.ServerTestCase):
    NFLOWS = 40

    def setUp(self):
        self.server = self.start([h.flow(f"streams_{i:02d}") for i in range(self.NFLOWS)],
                                 "--max-concurrent-streams", "2")

    def test_settings_frame_says_2(self):
        conn = h2(self, self.server)
        self.assertEqual(conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 2,
                         conn.server_settings)

    def test_default_is_100(self):
        srv = self.start([])
        conn = h2(self, srv)
        self.assertEqual(conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 100,
                         conn.server_settings)

    def test_many_calls_on_one_channel_all_complete(self):
        with h.channel(self.server.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            futures = [stub.StopFlow.future(pb.StopFlowRequest(flow_name=f"streams_{i:02d}"),
                                            timeout=30) for i in range(self.NFLOWS)]
            for i, f in enumerate(futures):
                r = f.result()
                self.assertEqual(r.flow_arn,
                                 f"arn:aws:appflow:us-east-1:000000000000:flow/streams_{i:02d}")

    def test_third_call_waits_for_a_free_stream(self):
        """Two open watches use the connection's two streams: a third call on the same channel
        waits (the client queues it) until one ends, while other connections are unaffected."""
        with h.own_channel(self.server.port) as ch, h.own_channel(self.server.port) as other:
            health = P.health_pb2_grpc.HealthStub(ch)
            watches = [health.Watch(P.health_pb2.HealthCheckRequest(), timeout=30)
                       for _ in range(2)]
            for w in watches:
                self.assertEqual(next(w).status, P.health_pb2.HealthCheckResponse.SERVING)
            check = health.Check.future(P.health_pb2.HealthCheckRequest(), timeout=30)
            # other connections have their own streams
            self.assertEqual(P.health_pb2_grpc.HealthStub(other).Check(
                P.health_pb2.HealthCheckRequest(), timeout=10).status,
                P.health_pb2.HealthCheckResponse.SERVING)
            with self.assertRaises(grpc.FutureTimeoutError):
                check.result(timeout=1.0)  # queued behind the watches
            watches[0].cancel()
            self.assertEqual(check.result(timeout=10).status,
                             P.health_pb2.HealthCheckResponse.SERVING)
            # stopped with the other watch open: it ends the designed way
            self.server.check_stopped_cleanly()
            self.assertEqual(next(watches[1]).status,
                             P.health_pb2.HealthCheckResponse.NOT_SERVING)
            with self.assertRaises(grpc.RpcError) as cm:
                next(watches[1])
            self.assertEqual(cm.exception.code(), C.UNAVAILABLE)


class MaxConnectionIdleTest(h.ServerTestCase):
    def test_idle_connection_gets_goaway(self):
        srv = self.start([], "--max-connection-idle", "1")
        conn = h2(self, srv)
        t0 = time.monotonic()
        conn.start_call(1, "/grpc.health.v1.Health/Check")
        conn.read_until(lambda f: f[0] == HEADERS and f[2] == 1 and f[1] & END_STREAM)
        try:
            conn.read_until(lambda f: f[0] == GOAWAY)
        except EOFError:
            self.fail(f"closed without GOAWAY; frames {conn.frames}")
        took = time.monotonic() - t0
        g = conn.goaways[0]
        self.assertEqual(g.last_stream, 1, g)  # the call it served
        self.assertGreaterEqual(took, 0.9, f"GOAWAY after {took:.2f}s of a 1s idle limit")
        self.assertLess(took, 6, f"GOAWAY after {took:.2f}s of a 1s idle limit")
        with self.assertRaises(EOFError):  # and the server closes the connection
            conn.read_until(lambda f: False)

    def test_connection_with_a_call_is_not_idle(self):
        srv = self.start([], "--max-connection-idle", "1")
        conn = h2(self, srv)
        conn.start_open_call(1)
        conn.sock.settimeout(3.0)  # three idle periods with a call open: nothing may come
        with self.assertRaises(socket.timeout):
            conn.read_until(lambda f: f[0] == GOAWAY)
        conn.sock.settimeout(10)
        conn.reset(1)  # the call ends: now the connection is idle
        t0 = time.monotonic()
        conn.read_until(lambda f: f[0] == GOAWAY)
        self.assertLess(time.monotonic() - t0, 6)

    def test_channel_reconnects_after_idle_close(self):
        srv = self.start([h.flow("idle_1"), h.flow("idle_2")], "--max-connection-idle", "1")
        states = []
        cond = threading.Condition()

        def on_state(s):
            with cond:
                states.append(s)
                cond.notify_all()

        with h.channel(srv.port) as ch:
            ch.subscribe(on_state, try_to_connect=False)
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            self.assertEqual(stub.StopFlow(pb.StopFlowRequest(flow_name="idle_1"),
                                           timeout=10).flow_status, pb.FLOW_STATUS_SUSPENDED)
            with cond:  # READY, then the server's GOAWAY/close makes the channel leave READY
                ok = cond.wait_for(
                    lambda: grpc.ChannelConnectivity.READY in states and
                    states[-1] != grpc.ChannelConnectivity.READY, timeout=10)
            self.assertTrue(ok, f"channel states {states}")
            r = stub.StopFlow(pb.StopFlowRequest(flow_name="idle_2"), timeout=10)
            self.assertEqual(r.flow_status, pb.FLOW_STATUS_SUSPENDED)
            with cond:  # the callback thread may report the second READY after the call returns
                ok = cond.wait_for(
                    lambda: states.count(grpc.ChannelConnectivity.READY) >= 2, timeout=10)
            ch.unsubscribe(on_state)
        self.assertTrue(ok, f"channel states {states}")


class KeepaliveTest(h.ServerTestCase):
    """gRPC counts a PING as a strike when it comes sooner than allowed (without calls: any
    PING but the first; during a call: sooner than --keepalive-min-ping after the last), and
    after more than --keepalive-max-strikes strikes sends GOAWAY ENHANCE_YOUR_CALM
    "too_many_pings" and closes the connection."""

    def pings_until_goaway(self, conn, n, spacing=0.0):
        """Sends up to n PINGs (spacing seconds apart); returns (the number of the PING that
        caused a GOAWAY, that GOAWAY), or (None, None)."""
        for k in range(1, n + 1):
            if k > 1 and spacing:
                time.sleep(spacing)  # the spacing is what is under test
            try:
                got = conn.ping(k)
            except EOFError:
                self.fail(f"connection closed at PING {k} without GOAWAY; {conn.frames[-5:]}")
            if got:
                return k, got[0]
        return None, None

    def assertTooManyPings(self, g):
        self.assertEqual(g.code, ENHANCE_YOUR_CALM, g)
        self.assertEqual(g.debug, b"too_many_pings", g)

    def test_rapid_pings_without_calls(self):
        for strikes in (1, 2, 5):
            with self.subTest(strikes=strikes):
                srv = self.start([], "--keepalive-max-strikes", str(strikes))
                conn = h2(self, srv)
                k, g = self.pings_until_goaway(conn, strikes + 5)
                # the first PING is free; each later one is a strike; one too many ends it
                self.assertEqual(k, strikes + 2, f"GOAWAY at PING {k}")
                self.assertTooManyPings(g)
                self.assertEqual(g.last_stream, 0)
                with self.assertRaises(EOFError):
                    conn.read_until(lambda f: False)

    def test_default_strikes_is_2(self):
        srv = self.start([])
        k, g = self.pings_until_goaway(h2(self, srv), 8)
        self.assertEqual(k, 4, f"GOAWAY at PING {k}")
        self.assertTooManyPings(g)

    def test_zero_strikes_means_no_limit(self):
        srv = self.start([], "--keepalive-max-strikes", "0")
        conn = h2(self, srv)
        self.assertEqual(self.pings_until_goaway(conn, 40), (None, None))
        conn.start_call(1, "/grpc.health.v1.Health/Check")  # and the connection still works
        conn.read_until(lambda f: f[0] == HEADERS and f[2] == 1 and f[1] & END_STREAM)

    def test_min_ping_during_a_call(self):
        srv = self.start([], "--keepalive-min-ping", "0.2", "--keepalive-max-strikes", "1")
        conn = h2(self, srv)
        conn.start_open_call(1)
        self.assertEqual(self.pings_until_goaway(conn, 4, spacing=0.4), (None, None),
                         "PINGs spaced over --keepalive-min-ping were punished")
        k, g = self.pings_until_goaway(conn, 8)
        self.assertIsNotNone(k, "rapid PINGs during a call were not punished")
        self.assertTooManyPings(g)
        self.assertEqual(g.last_stream, 1, g)  # the watch's stream was processed

    def test_min_ping_without_calls_as_documented(self):
        """`--help`: "--keepalive-min-ping S  clients may ping at most every S seconds without
        calls". A client keeping to that, with no call open, must not be sent away."""
        srv = self.start([], "--keepalive-min-ping", "0.2", "--keepalive-max-strikes", "1")
        conn = h2(self, srv)
        k, g = self.pings_until_goaway(conn, 4, spacing=0.4)
        self.assertIsNone(k, f"PINGs 0.4s apart (--keepalive-min-ping 0.2, no call) got {g} "
                             f"at PING {k}")

    def test_min_ping_zero_is_no_stricter_than_a_millisecond(self):
        """0 is in the accepted range (0 to 86400): it cannot be stricter than 0.001."""
        results = {}
        for v in ("0.001", "0"):
            srv = self.start([], "--keepalive-min-ping", v, "--keepalive-max-strikes", "1")
            conn = h2(self, srv)
            conn.start_open_call(1)
            results[v] = self.pings_until_goaway(conn, 4, spacing=0.05)[0]
        self.assertIsNone(results["0.001"], results)
        self.assertIsNone(results["0"], f"--keepalive-min-ping 0 punished PINGs 50ms apart "
                                         f"during a call (GOAWAY at PING {results['0']}) that "
                                         f"--keepalive-min-ping 0.001 allows")

    def test_grpc_client_keepalive_within_limits(self):
        """A grpcio channel pinging every second during a call, against
        --keepalive-min-ping 0.5 and one strike allowed: the call and the connection last
        (with the default minimum of 10s, the same client is sent away: "Too many pings")."""
        srv = self.start([], "--keepalive-min-ping", "0.5", "--keepalive-max-strikes", "1")
        opts = [("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1),
                ("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 5000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.http2.min_time_between_pings_ms", 1000)]
        states = []
        cond = threading.Condition()
        ready = grpc.ChannelConnectivity.READY

        def on_state(st):
            with cond:
                states.append(st)
                cond.notify_all()

        with grpc.insecure_channel(f"127.0.0.1:{srv.port}", options=opts) as ch:
            ch.subscribe(on_state, try_to_connect=False)
            w = P.health_pb2_grpc.HealthStub(ch).Watch(P.health_pb2.HealthCheckRequest(),
                                                       timeout=30)
            self.assertEqual(next(w).status, P.health_pb2.HealthCheckResponse.SERVING)
            with cond:  # the callback thread may report READY after the first answer
                self.assertTrue(cond.wait_for(lambda: ready in states, timeout=10), states)
            time.sleep(3.2)  # three keepalive PINGs go out meanwhile: that is what is under test
            self.assertFalse(w.done(), f"the watch ended: {w.code() if w.done() else ''} "
                                       f"{w.details() if w.done() else ''}")
            with cond:  # read before unsubscribing: a state change after it is not seen
                seen = list(states)
            ch.unsubscribe(on_state)
            srv.check_stopped_cleanly()  # with the watch open: it ends the designed way
        self.assertEqual(seen.count(ready), 1, seen)
        self.assertEqual(seen[-1], ready, seen)

if __name__ == "__main__":
    unittest.main(verbosity=2)
