"""appflowd on PostgreSQL while the database goes away, hangs or is slow: calls on both doors end
with a clean ServiceUnavailableException (503 / UNAVAILABLE), DEADLINE_EXCEEDED when the caller's
gRPC deadline passes first, or ThrottlingException (429) when the queue before the store is full,
never another error and never a hang; health and reflection answer at once all along, health
says NOT_SERVING while the store cannot serve and Watch streams the change; and when the
database is back, service resumes without a restart. At start-up, an unreachable database is
exit status 1 and one from a newer appflowd exit status 2, each with a clear message."""

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
import storm  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
pb = S.appflow_pb2
RESP = P.health_pb2.HealthCheckResponse
SERVING, NOT_SERVING = RESP.SERVING, RESP.NOT_SERVING
C = grpc.StatusCode
FLOWS = [h.flow(f"load_{i}", "Scheduled", "Active") for i in range(20)]
PROMPT = 2.0  # health and reflection answer within this, whatever the database does (ASan)
HANG_LIMIT = 8.0  # no call takes longer than this: the store's timeout is 1 s


class Load:
    """Threads calling StartFlow, StopFlow and DescribeFlow on both doors, sorting each outcome:
    ok, unavailable (ServiceUnavailableException / UNAVAILABLE), or anything else (wrong), with
    the longest a call took."""

    def __init__(self, srv, threads=4):
        self.srv = srv
        self.stop_event = threading.Event()
        self.lock = threading.Condition()
        self.ok = self.unavailable = 0
        self.streak = 0  # successes in a row, across all threads
        self.wrong = []
        self.longest = 0.0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def wait(self, pred, what, timeout=60):
        with self.lock:
            if not self.lock.wait_for(lambda: pred(self) or self.wrong, timeout):
                raise AssertionError(f"no {what} after {timeout}s: ok {self.ok}, unavailable "
                                     f"{self.unavailable}, streak {self.streak}")

    def _record(self, outcome, took):
        with self.lock:
            self.longest = max(self.longest, took)
            if outcome == "ok":
                self.ok += 1
                self.streak += 1
            elif outcome == "unavailable":
                self.unavailable += 1
                self.streak = 0
            else:
                self.wrong.append(outcome)
            self.lock.notify_all()

    def _run(self, i):
        door = storm.GrpcDoor(self.srv.port) if i % 2 else storm.HttpDoor(self.srv.http_port)
        n = 0
        while not self.stop_event.is_set():
            name = f"load_{(i * 5 + n) % 20}"
            n += 1
            t0 = time.monotonic()
            try:
                r = [door.start, door.stop, door.describe][n % 3](name)
                wrong = None if r is None or not isinstance(r, storm.Result) or r.ok else r
                outcome = f"{door.name}: {wrong}" if wrong else "ok"
            except storm.Down as e:
                msg = str(e)
                outcome = "unavailable" if ("ServiceUnavailable" in msg or "UNAVAILABLE" in msg
                                            or " 503 " in msg) else f"{door.name}: {msg}"
            self._record(outcome, time.monotonic() - t0)
        door.close()


class PgOutageTest(h.ServerTestCase):
    def setUp(self):
        self.pg = h.pg_cluster()
        if not self.pg.running():
            self.pg.start_server()
        self.url = h.new_store_url("postgresql")

    def start_pg(self, *extra):
        srv = self.start_http(FLOWS, "--store", self.url, "--store-timeout", "1", *extra)
        chan = h.channel(srv.port)
        self.addCleanup(chan.close)
        srv.health = P.health_pb2_grpc.HealthStub(chan)
        srv.reflection = P.reflection_v1_pb2_grpc.ServerReflectionStub(chan)
        srv.flows = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        return srv

    def assert_prompt_health(self, srv, want):
        t0 = time.monotonic()
        got = srv.health.Check(P.health_pb2.HealthCheckRequest(service=""), timeout=PROMPT).status
        self.assertEqual(got, want)
        req = P.reflection_v1_pb2.ServerReflectionRequest(list_services="")
        replies = list(srv.reflection.ServerReflectionInfo(iter([req]), timeout=PROMPT))
        names = [s.name for s in replies[0].list_services_response.service]
        self.assertIn("appflow.v1.AppFlowService", names)
        self.assertLess(time.monotonic() - t0, PROMPT)

    def test_a_restart_of_the_database_under_load(self):
        srv = self.start_pg()
        watch = h.HealthWatcher(srv.health, "", timeout=120)
        self.addCleanup(watch.call.cancel)
        self.assertEqual(watch.wait_statuses(1), [SERVING])
        load = Load(srv).start()
        self.addCleanup(load.stop)
        load.wait(lambda l: l.ok >= 100, "100 calls served")
        self.pg.stop_server()
        load.wait(lambda l: l.unavailable >= 20, "503/UNAVAILABLE while the database is down")
        watch.wait_for(NOT_SERVING)
        self.assert_prompt_health(srv, NOT_SERVING)
        self.pg.start_server()
        watch.wait_for(SERVING)
        load.wait(lambda l: l.streak >= 300, "300 calls served in a row after the restart")
        load.stop()
        self.assertEqual(load.wrong, [], "only successes and clean 503/UNAVAILABLE")
        self.assertLess(load.longest, HANG_LIMIT)
        self.assert_prompt_health(srv, SERVING)

    def test_a_hung_database_gives_deadlines_and_503s_not_hangs(self):
        srv = self.start_pg()
        self.assertEqual(srv.flows.StopFlow(pb.StopFlowRequest(flow_name="load_1"), timeout=10)
                         .flow_status, pb.FLOW_STATUS_SUSPENDED)
        self.pg.freeze()  # every server process stopped: connections open, nothing answers
        self.addCleanup(self.pg.thaw)
        t0 = time.monotonic()
        code, _, _ = h.grpc_error_of(
            lambda: srv.flows.StopFlow(pb.StopFlowRequest(flow_name="load_2"), timeout=0.5))
        self.assertEqual(code, C.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - t0, PROMPT)
        code, details, reason = h.grpc_error_of(
            lambda: srv.flows.DescribeFlow(pb.DescribeFlowRequest(flow_name="load_3"), timeout=30))
        self.assertEqual((code, reason), (C.UNAVAILABLE, "ServiceUnavailableException"), details)
        r = h.aws_request(srv.http_port, {"flowName": "load_4"}, path="/stop-flow", timeout=30)
        self.assertEqual((r.status, r.error_type), (503, "ServiceUnavailableException"), r)
        self.assertLess(time.monotonic() - t0, HANG_LIMIT)
        self.assert_prompt_health(srv, NOT_SERVING)
        self.pg.thaw()
        h.HealthWatcher(srv.health, "", timeout=60).wait_for(SERVING)
        self.assertEqual(srv.flows.StopFlow(pb.StopFlowRequest(flow_name="load_2"), timeout=10)
                         .flow_status, pb.FLOW_STATUS_SUSPENDED)

    def test_a_full_queue_answers_throttling(self):
        srv = self.start_pg("--store-connections", "1", "--store-queue", "2")
        self.pg.psql("SELECT 1")  # the cluster answers before the lock below is taken
        blocker = self.pg.hold_lock(self.url, "appflowd_flows")  # a slow database: calls wait
        self.addCleanup(blocker.release)
        results = []
        lock = threading.Lock()

        def call(i):
            r = h.aws_request(srv.http_port, {"flowName": f"load_{i % 20}"}, path="/stop-flow",
                              timeout=30)
            with lock:
                results.append((r.status, r.error_type))

        errors = h.run_threads(20, call)
        self.assertEqual(errors, [])
        statuses = sorted(results)
        self.assertGreaterEqual(statuses.count((429, "ThrottlingException")), 15, statuses)
        self.assertTrue(all(s in [(429, "ThrottlingException"), (503, "ServiceUnavailableException")]
                            for s in statuses), statuses)
        blocker.release()
        h.HealthWatcher(srv.health, "", timeout=60).wait_for(SERVING)
        r = h.aws_request(srv.http_port, {"flowName": "load_1"}, path="/stop-flow")
        self.assertEqual(r.status, 200, r)


class PgStartUpTest(h.ServerTestCase):
    def test_an_unreachable_database_stops_start_up_with_status_1(self):
        with socket.socket() as sock:  # a port nothing listens on once closed
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"postgresql://appflowd:sekret@127.0.0.1:{port}/flows"
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", url, "--store-timeout", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"cannot reach the database at postgresql://appflowd@127.0.0.1:{port}/flows",
                      r.stderr)
        self.assertNotIn("sekret", r.stderr, "the password is never shown")

    def test_a_database_from_a_newer_appflowd_stops_start_up_with_status_2(self):
        pg = h.pg_cluster()
        schema = pg.create_schema()
        url = pg.uri(options=f"-csearch_path={schema}")
        self.assertExitedCleanly(self.start(None, "--store", url))
        pg.psql(f"UPDATE {schema}.appflowd_meta SET value = convert_to('5', 'UTF8') "
                "WHERE key = 'schema_version'")
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", url)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("has appflowd schema version 5, newer than this appflowd's 4", r.stderr)
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", "postgresql://[::1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bad PostgreSQL URI", r.stderr)


if __name__ == "__main__":
    h.require_binaries("APPFLOWD")
    unittest.main(verbosity=2)
