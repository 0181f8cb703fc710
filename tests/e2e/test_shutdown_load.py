"""SIGTERM while both doors are under sustained load: every request either completes normally
or gets a clean refusal (gRPC UNAVAILABLE; HTTP 503 ServiceUnavailableException as JSON, or a
connection the server no longer accepts), nothing hangs, and the server exits 0."""
import http.client
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import grpc  # noqa: E402

FLOWS = [h.flow("load_suspended", "Scheduled", "Suspended")]
WORKERS = 6
# What a client may see once shutdown has begun, besides a normal answer.
CONNECTION_GONE = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                   http.client.RemoteDisconnected, http.client.CannotSendRequest)


class Outcomes:
    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}
        self.bad = []

    def add(self, kind, detail=None):
        with self.lock:
            self.seen[kind] = self.seen.get(kind, 0) + 1
            if detail is not None:
                self.bad.append(detail)


def http_worker(port, stop, out, signalled):
    conn = None
    while not stop.is_set():
        try:
            conn = conn or h.http_connection(port, timeout=10)
            r = h.aws_stop_flow(port, "load_suspended", conn=conn)
        except CONNECTION_GONE as e:
            conn = None
            if signalled.is_set():
                out.add("http-gone")
                time.sleep(0.01)
                continue
            out.add("http-bad", f"connection lost before SIGTERM: {e!r}")
            return
        except Exception as e:  # a timeout is a hang
            out.add("http-bad", f"{type(e).__name__}: {e}")
            return
        if r.status == 200 and json.loads(r.body)["flowStatus"] == "Suspended":
            out.add("http-ok")
        elif (r.status == 503 and r.header("x-amzn-ErrorType") == "ServiceUnavailableException"
              and "message" in json.loads(r.body)):
            out.add("http-503")
            conn = None  # the server asked to close it
        else:
            out.add("http-bad", f"{r.status} {r.body[:200]!r}")
            return


def grpc_worker(port, stop, out, signalled):
    s = h.stubs()
    stub = s.appflow_pb2_grpc.AppFlowServiceStub(h.channel(port))
    req = s.appflow_pb2.StopFlowRequest(flow_name="load_suspended")
    while not stop.is_set():
        try:
            stub.StopFlow(req, timeout=10)
            out.add("grpc-ok")
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) \
                    and signalled.is_set():
                out.add("grpc-unavailable")
                time.sleep(0.01)
            else:
                out.add("grpc-bad", f"{e.code()}: {e.details()}")
                return


class ShutdownUnderLoadTest(unittest.TestCase):
    def test_sigterm_under_load_on_both_doors(self):
        srv = h.start_http_server(FLOWS, "--shutdown-grace", "5", "--log-level", "warn")
        out, stop, signalled = Outcomes(), threading.Event(), threading.Event()
        threads = [threading.Thread(target=http_worker, args=(srv.http_port, stop, out, signalled))
                   for _ in range(WORKERS)]
        threads += [threading.Thread(target=grpc_worker, args=(srv.port, stop, out, signalled))
                    for _ in range(WORKERS)]
        try:
            for t in threads:
                t.start()
            h.wait_until(lambda: out.seen.get("http-ok", 0) > 200 and
                         out.seen.get("grpc-ok", 0) > 200, timeout=30, what="load")
            signalled.set()
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            status = srv.wait(20)
            took = time.monotonic() - t0
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertFalse([t for t in threads if t.is_alive()], "a client hung")
        self.assertEqual(out.bad, [], f"outcomes: {out.seen}")
        self.assertEqual(status, 0, srv.stderr_text())
        self.assertLess(took, 5 + 3, "shutdown overran the grace period")
        print(f"\noutcomes: {out.seen}; stopped in {took:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
