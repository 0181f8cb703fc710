"""The admin listener's operator endpoints, end to end: GET /metrics parsed with Prometheus's own
Python parser (Debian's python3-prometheus-client) after a known sequence of calls on both doors,
every count checked exactly (go-grpc-prometheus's grpc_server_* families for every method the
gRPC door serves, the AWS door's appflowd_http_*, the store's operations, the census of flows
and runs, the answers the memory store keeps, the process); --metrics-histograms off drops
every histogram; /healthz and /readyz, 503 while a PostgreSQL store is down and while the
server drains at shutdown.

Nothing sleeps: a count is read after the reply that made it (the doors record before they
answer), and what changes with time (a cancelled run, the store's health, shutdown) is polled
for with a deadline."""

import http.client
import json
import os
import signal
import socket
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from prometheus_client.process_collector import ProcessCollector  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
pb = S.appflow_pb2
C = grpc.StatusCode
ADMIN = ("--admin-listen", "127.0.0.1:0")
APPFLOW = "appflow.v1.AppFlowService"
HEALTH = "grpc.health.v1.Health"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# grpc-go's names of the status codes, as go-grpc-prometheus writes grpc_code.
CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
         "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
         "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]
DEFAULT_BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                   "+Inf"]
HISTOGRAMS = ["grpc_server_handling_seconds", "appflowd_http_request_duration_seconds",
              "appflowd_store_operation_seconds"]
SEEDS = [h.flow(n, "Scheduled", "Active") for n in ("sched_a", "sched_b", "sched_c")]


def admin_get(srv, path, method="GET"):
    """(status, headers dict (lower-case names), body text) of one request to the admin port."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.admin_port, timeout=60)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


class Scrape:
    """One GET /metrics, parsed: samples by (name, labels) and the families' names and types."""

    def __init__(self, srv):
        status, headers, text = admin_get(srv, "/metrics")
        if status != 200:
            raise AssertionError(f"GET /metrics: {status} {text[:500]}")
        self.content_type = headers.get("content-type")
        self.text = text
        self.samples = {}
        self.types = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                self.types[s.name] = fam.type
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name, **match):
        """{labels dict as a sorted tuple: value} of every sample of name whose labels include
        match."""
        return {k[1]: v for k, v in self.samples.items()
                if k[0] == name and all(dict(k[1]).get(a) == b for a, b in match.items())}

    def names(self):
        return {k[0] for k in self.samples}


def create_request(name):
    return json_format.ParseDict(h.to_proto_json(h.s3_flow(name)), pb.CreateFlowRequest())


class MetricsTest(h.ServerTestCase):
    def start_metrics(self, *extra, flows=SEEDS):
        srv = self.start_http(flows, *ADMIN, "--run-duration", "3600", *extra)
        chan = h.channel(srv.port)
        self.addCleanup(chan.close)
        srv.stub = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        srv.health = P.health_pb2_grpc.HealthStub(chan)
        srv.chan = chan
        return srv

    def grpc_calls(self, srv):
        """The gRPC door's part of the known sequence; the flows' statuses CreateFlow gave."""
        statuses = [srv.stub.CreateFlow(create_request(f"grpc_{i}"), timeout=10).flow_status
                    for i in range(3)]
        for name in ("missing_1", "missing_2"):
            code, _, _ = h.grpc_error_of(
                lambda n=name: srv.stub.DescribeFlow(pb.DescribeFlowRequest(flow_name=n),
                                                     timeout=10))
            self.assertEqual(code, C.NOT_FOUND)
        code, _, _ = h.grpc_error_of(lambda: h.raw_stop_flow(srv.chan)(b"\xff\xff", timeout=10))
        self.assertEqual(code, C.INVALID_ARGUMENT, "a malformed request")
        ids = [srv.stub.StartFlow(pb.StartFlowRequest(flow_name="grpc_0"), timeout=10).execution_id
               for _ in range(2)]
        srv.stub.StopFlow(pb.StopFlowRequest(flow_name="sched_a"), timeout=10)
        srv.health.Check(P.health_pb2.HealthCheckRequest(service=""), timeout=10)
        return statuses, ids

    def aws_calls(self, srv, cancel_id):
        """The AWS door's part of the known sequence; the statuses CreateFlow gave."""
        port = srv.http_port
        statuses = []
        for name in ("aws_0", "aws_1"):
            r = h.aws_request(port, h.s3_flow(name), path="/create-flow")
            self.assertEqual(r.status, 200, r)
            statuses.append(r.json()["flowStatus"])
        r = h.aws_request(port, {"flowName": "missing_3"}, path="/describe-flow")
        self.assertEqual((r.status, r.error_type), (404, "ResourceNotFoundException"))
        r = h.aws_request(port, b"{", path="/describe-flow")
        self.assertEqual((r.status, r.error_type), (400, "SerializationException"))
        r = h.aws_request(port, b"{}", path="/no-such-operation")
        self.assertEqual((r.status, r.error_type), (404, "UnknownOperationException"))
        self.assertEqual(h.aws_stop_flow(port, "sched_b").status, 200)
        r = h.aws_request(port, {"flowName": "grpc_0", "executionIds": [cancel_id]},
                          path="/cancel-flow-executions")
        self.assertEqual(r.status, 200, r)
        return statuses

    def test_counts_after_a_known_sequence_on_both_doors(self):
        srv = self.start_metrics()
        grpc_statuses, ids = self.grpc_calls(srv)
        aws_statuses = self.aws_calls(srv, ids[0])
        m = Scrape(srv)
        self.assertEqual(m.content_type, CONTENT_TYPE)
        self.check_grpc(m)
        self.check_http(m)
        self.check_store(m)
        # Flows: three seeded Active, two of them stopped; five created (as CreateFlow said).
        created = [pb.FlowStatus.Name(s) for s in grpc_statuses] + aws_statuses
        self.assertEqual(created.count("FLOW_STATUS_ACTIVE") + created.count("Active"), 5,
                         f"on-demand flows are Active once created: {created}")
        want = {"Active": 1 + 5, "Suspended": 2, "Draft": 0, "Errored": 0, "Deprecated": 0,
                "Deleted": 0}
        got = {dict(k)["status"]: v for k, v in m.series("appflowd_flows").items()}
        self.assertEqual(got, want)
        for k in m.series("appflowd_flows"):
            self.assertEqual(dict(k)["account"], "000000000000")
            self.assertEqual(dict(k)["region"], "us-east-1")
        # Runs: two started (an hour long), one cancelled: CancelStarted, then Canceled.
        runs = self.wait_runs(srv, lambda r: r["Canceled"] == 1)
        self.assertEqual(runs, {"InProgress": 1, "Successful": 0, "Error": 0, "CancelStarted": 0,
                                "Canceled": 1})
        self.assertEqual(m.types["appflowd_executions_total"], "gauge")
        self.assertIn("each keeps its latest 100 runs", m.text)
        self.check_process(srv, m)

    def wait_runs(self, srv, pred):
        box = {}

        def runs():
            got = {dict(k)["status"]: v
                   for k, v in Scrape(srv).series("appflowd_executions_total").items()}
            box["runs"] = got
            return pred(got)

        h.wait_until(runs, timeout=15, what="the cancelled run to be Canceled")
        return box["runs"]

    def check_grpc(self, m):
        started = m.series("grpc_server_started_total")
        methods = {(d["grpc_service"], d["grpc_method"]): d["grpc_type"]
                   for d in map(dict, started)}
        self.assertEqual(sum(1 for s, _ in methods if s == APPFLOW), 25, "every AWS operation")
        self.assertEqual(methods[(HEALTH, "Check")], "unary")
        self.assertEqual(methods[(HEALTH, "Watch")], "server_stream")
        for v in ("grpc.reflection.v1.ServerReflection",
                  "grpc.reflection.v1alpha.ServerReflection"):
            self.assertEqual(methods[(v, "ServerReflectionInfo")], "bidi_stream")
        for emu in ("SendEvent", "SetOutcomes", "AdvanceClock"):
            self.assertEqual(methods[("appflowd.emulator.v1.EmulatorService", emu)], "unary")
        want_started = {(APPFLOW, "CreateFlow"): 3, (APPFLOW, "DescribeFlow"): 2,
                        (APPFLOW, "StopFlow"): 2, (APPFLOW, "StartFlow"): 2, (HEALTH, "Check"): 1}
        for labels, v in started.items():
            d = dict(labels)
            key = (d["grpc_service"], d["grpc_method"])
            self.assertEqual(v, want_started.get(key, 0), f"started {key}")
        want_handled = {(APPFLOW, "CreateFlow", "OK"): 3, (APPFLOW, "DescribeFlow", "NotFound"): 2,
                        (APPFLOW, "StopFlow", "InvalidArgument"): 1, (APPFLOW, "StopFlow", "OK"): 1,
                        (APPFLOW, "StartFlow", "OK"): 2, (HEALTH, "Check", "OK"): 1}
        handled = m.series("grpc_server_handled_total")
        self.assertEqual(len(handled), len(methods) * len(CODES), "every method with every code")
        for labels, v in handled.items():
            d = dict(labels)
            self.assertIn(d["grpc_code"], CODES)
            key = (d["grpc_service"], d["grpc_method"], d["grpc_code"])
            self.assertEqual(v, want_handled.get(key, 0), f"handled {key}")
        for (service, method), grpc_type in methods.items():
            labels = dict(grpc_type=grpc_type, grpc_service=service, grpc_method=method)
            total = sum(v for k, v in handled.items()
                        if dict(k)["grpc_method"] == method and dict(k)["grpc_service"] == service)
            self.assertEqual(m.get("grpc_server_handling_seconds_count", **labels), total,
                             f"histogram count of {method}")
            les = [dict(k)["le"] for k in m.series("grpc_server_handling_seconds_bucket",
                                                   grpc_method=method, grpc_service=service)]
            self.assertEqual(sorted(les, key=float), DEFAULT_BUCKETS)
        self.assertEqual(m.types["grpc_server_handling_seconds_bucket"], "histogram")

    def check_http(self, m):
        want = {("CreateFlow", "200", ""): 2,
                ("DescribeFlow", "404", "ResourceNotFoundException"): 1,
                ("DescribeFlow", "400", "SerializationException"): 1,
                ("none", "404", "UnknownOperationException"): 1,
                ("StopFlow", "200", ""): 1,
                ("CancelFlowExecutions", "200", ""): 1}
        got = {(d["operation"], d["code"], d["error_type"]): v
               for d, v in ((dict(k), v) for k, v in m.series("appflowd_http_requests_total").items())}
        self.assertEqual(got, want)
        per_op = {}
        for (op, _, _), v in want.items():
            per_op[op] = per_op.get(op, 0) + v
        counts = {dict(k)["operation"]: v
                  for k, v in m.series("appflowd_http_request_duration_seconds_count").items()}
        self.assertEqual(len(counts), 26, "every operation, and none")
        for op, v in counts.items():
            self.assertEqual(v, per_op.get(op, 0), f"duration count of {op}")

    def check_store(self, m):
        for op in ("insert", "modify", "scan"):
            n = m.get("appflowd_store_operation_seconds_count", store=h.E2E_STORE, op=op)
            self.assertIsNotNone(n, f"store op {op}")
            self.assertGreater(n, 0, f"store op {op}")
            self.assertGreater(m.get("appflowd_store_operation_seconds_sum", store=h.E2E_STORE,
                                     op=op), 0)

    def check_process(self, srv, m):
        """The process_* metrics, against what Prometheus's Python client reads of the same pid
        (its own process collector)."""
        theirs = {}
        for fam in ProcessCollector(pid=lambda: srv.pid, registry=None).collect():
            for s in fam.samples:
                theirs[s.name] = s.value
        ours = {k[0]: v for k, v in m.samples.items() if k[0].startswith("process_")}
        self.assertEqual(set(ours), set(theirs))
        self.assertAlmostEqual(ours["process_start_time_seconds"],
                               theirs["process_start_time_seconds"], places=6)
        self.assertEqual(ours["process_max_fds"], theirs["process_max_fds"])
        self.assertLessEqual(abs(ours["process_open_fds"] - theirs["process_open_fds"]), 8)
        self.assertGreater(ours["process_resident_memory_bytes"], 4 << 20)
        self.assertLess(ours["process_resident_memory_bytes"],
                        2 * theirs["process_resident_memory_bytes"])
        self.assertLessEqual(ours["process_cpu_seconds_total"],
                             theirs["process_cpu_seconds_total"])

    def test_memo_bytes_grow_with_answers_and_go_with_the_change(self):
        """DescribeFlow and ListFlows keep their answers with the flow's version (memory store):
        the gauge grows with them and falls back to zero when the flows change."""
        srv = self.start_metrics()
        keeps = h.E2E_STORE == "memory"
        self.assertEqual(Scrape(srv).get("appflowd_store_memo_bytes"), 0, "nothing asked yet")
        for _ in range(2):
            srv.stub.DescribeFlow(pb.DescribeFlowRequest(flow_name="sched_c"), timeout=10)
        described = Scrape(srv).get("appflowd_store_memo_bytes")
        self.assertTrue(described > 0 if keeps else described == 0, described)
        srv.stub.ListFlows(pb.ListFlowsRequest(), timeout=10)
        listed = Scrape(srv).get("appflowd_store_memo_bytes")
        self.assertTrue(listed > described if keeps else listed == 0, (described, listed))
        for name in ("sched_a", "sched_b", "sched_c"):
            srv.stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=10)
        self.assertEqual(Scrape(srv).get("appflowd_store_memo_bytes"), 0,
                         "every flow changed: no answer of an older version is kept")

    def test_histograms_off_drops_every_histogram(self):
        srv = self.start_metrics("--metrics-histograms", "off")
        srv.stub.StopFlow(pb.StopFlowRequest(flow_name="sched_a"), timeout=10)
        self.assertEqual(h.aws_stop_flow(srv.http_port, "sched_b").status, 200)
        m = Scrape(srv)
        for name in HISTOGRAMS:
            self.assertFalse([n for n in m.names() if n.startswith(name)], name)
            self.assertNotIn(name, m.text)
        self.assertEqual(m.get("grpc_server_handled_total", grpc_type="unary",
                               grpc_service=APPFLOW, grpc_method="StopFlow", grpc_code="OK"), 1)
        self.assertEqual(m.get("appflowd_http_requests_total", operation="StopFlow", code="200",
                               error_type=""), 1)
        on = Scrape(self.start_metrics())
        for name in HISTOGRAMS:
            self.assertIn(f"# TYPE {name} histogram", on.text)

    def test_the_flags_say_what_is_wrong(self):
        r = h.run_appflowd("--metrics-histograms", "off")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--metrics-histograms needs --admin-listen", r.stderr)
        r = h.run_appflowd(*ADMIN, "--metrics-histograms", "sometimes")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--metrics-histograms takes on or off, not 'sometimes'", r.stderr)

    def test_healthz_readyz_and_other_methods(self):
        srv = self.start_metrics()
        status, headers, body = admin_get(srv, "/healthz")
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))
        self.assertEqual(headers["content-type"], "application/json")
        status, _, body = admin_get(srv, "/readyz")
        self.assertEqual((status, json.loads(body)),
                         (200, {"status": "ok", "store": "ok", "doors": "serving"}))
        for path in ("/healthz", "/readyz", "/metrics"):
            for method in ("POST", "DELETE", "PUT"):
                status, headers, body = admin_get(srv, path, method)
                self.assertEqual(status, 405, f"{method} {path}")
                self.assertEqual(headers.get("allow"), "GET")
                self.assertEqual(json.loads(body),
                                 {"__type": "MethodNotAllowedException",
                                  "message": f"{path} takes GET, not {method}"})
        status, _, body = admin_get(srv, "/metricsx")
        self.assertEqual(status, 404, "other paths are the control API's, which knows none")

    def test_readyz_is_503_while_draining_at_shutdown(self):
        srv = self.start_metrics("--shutdown-grace", "60")
        # A request whose body has not come: the AWS door counts it in flight once its headers
        # are read, which the 100 Continue says; stopping waits for it (the grace period).
        sock = socket.create_connection(("127.0.0.1", srv.http_port), timeout=30)
        self.addCleanup(sock.close)
        sock.sendall(b"POST /stop-flow HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n")
        self.assertTrue(sock.recv(64).startswith(b"HTTP/1.1 100"))
        srv.send_signal(signal.SIGTERM)

        def draining():
            status, _, body = admin_get(srv, "/readyz")
            return status == 503 and json.loads(body) == {"status": "unavailable", "store": "ok",
                                                           "doors": "draining"}

        h.wait_until(draining, timeout=20, what="/readyz to say the doors are draining")
        status, _, _ = admin_get(srv, "/healthz")
        self.assertEqual(status, 200, "alive while draining")
        sock.sendall(b"{}")  # the request ends; so does the server
        self.assertExitedCleanly(srv)


class PgReadyzTest(h.ServerTestCase):
    def setUp(self):
        self.pg = h.pg_cluster()
        if not self.pg.running():
            self.pg.start_server()
        self.addCleanup(lambda: self.pg.running() or self.pg.start_server())

    def test_readyz_is_503_while_the_database_is_down(self):
        srv = self.start_http(SEEDS, *ADMIN, "--store", h.new_store_url("postgresql"),
                              "--store-timeout", "1")
        stub = S.appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))

        def readyz():
            status, _, body = admin_get(srv, "/readyz")
            return status, json.loads(body)

        self.assertEqual(readyz(), (200, {"status": "ok", "store": "ok", "doors": "serving"}))
        self.assertIn("appflowd_flows{", Scrape(srv).text)
        self.pg.stop_server()

        def down():
            try:  # a call finds the database gone (the store notices on use)
                stub.DescribeFlow(pb.DescribeFlowRequest(flow_name="sched_a"), timeout=5)
            except grpc.RpcError:
                pass
            return readyz() == (503, {"status": "unavailable", "store": "unavailable",
                                      "doors": "serving"})

        h.wait_until(down, timeout=30, what="/readyz 503 with the database down")
        m = Scrape(srv)  # the scrape still answers; only the census, which needs the store, is out
        self.assertNotIn("appflowd_flows", m.text)
        self.assertIn("grpc_server_started_total", m.text)
        status, _, _ = admin_get(srv, "/healthz")
        self.assertEqual(status, 200)
        self.pg.start_server()
        h.wait_until(lambda: readyz()[0] == 200, timeout=60, what="/readyz 200 once it is back")
        # A connection of the store's that died with the database is replaced on its next use:
        # the census comes back within a few scrapes.
        h.wait_until(lambda: "appflowd_flows{" in Scrape(srv).text, timeout=30,
                     what="the census once the database is back")


if __name__ == "__main__":
    unittest.main()
