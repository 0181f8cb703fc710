"""A flow's runs as code that waits on them meets them: StartFlow starts a run that stays
InProgress for --run-duration seconds and then succeeds; DescribeFlowExecutionRecords lists runs
newest first in pages (what Apache Airflow's AppFlow operators poll); CancelFlowExecutions
cancels runs in progress (CancelStarted, then Canceled) and names the ids it could not cancel;
DescribeFlow follows the latest run; runs survive a restart on sqlite:."""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.isolate_boto3_env()
import botocore.exceptions  # noqa: E402
import grpc  # noqa: E402


def records(client, name, **kw):
    return client.describe_flow_execution_records(flowName=name, **kw)["flowExecutions"]


def record(client, name, execution_id):
    for r in records(client, name, maxResults=100):
        if r["executionId"] == execution_id:
            return r
    raise AssertionError(f"run {execution_id} of {name} is not listed")


class RunsTest(h.ServerTestCase):
    def server(self, duration, *extra):
        srv = self.start_http(None, "--run-duration", str(duration), *extra)
        return srv, h.boto3_appflow(srv.http_port)

    def cancel(self, port, name, ids=None):
        body = {"flowName": name}
        if ids is not None:
            body["executionIds"] = ids
        # this botocore's model predates CancelFlowExecutions: the request is sent as is
        return h.aws_request(port, body, path="/cancel-flow-executions")

    def test_airflow_like_wait(self):
        """start_flow, then poll describe_flow_execution_records until the run succeeds."""
        srv, c = self.server(1)
        c.create_flow(**h.s3_flow("waited"))
        before = time.time()
        run_id = c.start_flow(flowName="waited")["executionId"]
        done = h.wait_until(lambda: record(c, "waited", run_id)["executionStatus"] in
                            ("Successful", "Error"), timeout=30, interval=0.2,
                            what="the run to end")
        self.assertTrue(done)
        r = record(c, "waited", run_id)
        self.assertEqual(r["executionStatus"], "Successful")
        started, updated = r["startedAt"].timestamp(), r["lastUpdatedAt"].timestamp()
        self.assertGreaterEqual(started, before - 1)
        self.assertAlmostEqual(updated - started, 1.0, delta=0.01, msg="--run-duration 1")
        self.assertEqual(r["executionResult"]["recordsProcessed"], 0)
        d = c.describe_flow(flowName="waited")["lastRunExecutionDetails"]
        self.assertEqual(d["mostRecentExecutionStatus"], "Successful")

    def test_in_progress_and_cancel(self):
        srv, c = self.server(600)
        c.create_flow(**h.s3_flow("long"))
        first = c.start_flow(flowName="long")["executionId"]
        self.assertEqual(record(c, "long", first)["executionStatus"], "InProgress")
        self.assertEqual(c.describe_flow(flowName="long")["lastRunExecutionDetails"]
                         ["mostRecentExecutionStatus"], "InProgress")
        r = self.cancel(srv.http_port, "long", [first, "no-such-run"])
        self.assertEqual((r.status, r.json()), (200, {"invalidExecutions": ["no-such-run"]}), r)
        self.assertIn(record(c, "long", first)["executionStatus"], ("CancelStarted", "Canceled"))
        h.wait_until(lambda: record(c, "long", first)["executionStatus"] == "Canceled",
                     timeout=30, interval=0.1, what="CancelStarted to become Canceled")
        # no longer in progress: invalid now
        r = self.cancel(srv.http_port, "long", [first])
        self.assertEqual(r.json(), {"invalidExecutions": [first]})
        # none named: every run in progress
        ids = [c.start_flow(flowName="long")["executionId"] for _ in range(3)]
        r = self.cancel(srv.http_port, "long")
        self.assertEqual((r.status, r.json().get("invalidExecutions", [])), (200, []))
        for i in ids:
            self.assertIn(record(c, "long", i)["executionStatus"], ("CancelStarted", "Canceled"))
        r = self.cancel(srv.http_port, "nope")
        self.assertEqual((r.status, r.error_type), (404, "ResourceNotFoundException"))
        # gRPC: the same operation
        pb = h.stubs().appflow_pb2
        stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))
        g = stub.CancelFlowExecutions(pb.CancelFlowExecutionsRequest(
            flow_name="long", execution_ids=[first]), timeout=10)
        self.assertEqual(list(g.invalid_executions), [first])

    def test_records_page_newest_first(self):
        srv, c = self.server(0)
        c.create_flow(**h.s3_flow("paged"))
        ids = [c.start_flow(flowName="paged")["executionId"] for _ in range(25)]
        seen, token, pages = [], None, 0
        while True:
            kw = {"maxResults": 10, **({"nextToken": token} if token else {})}
            resp = c.describe_flow_execution_records(flowName="paged", **kw)
            seen += resp["flowExecutions"]
            pages += 1
            token = resp.get("nextToken")
            if not token:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(sorted(r["executionId"] for r in seen), sorted(ids))
        starts = [r["startedAt"] for r in seen]
        self.assertEqual(starts, sorted(starts, reverse=True), "newest first")
        self.assertTrue(all(r["executionStatus"] == "Successful" for r in seen))
        # each run pulls from where the one before it stopped
        for newer, older in zip(seen, seen[1:]):
            self.assertEqual(newer["dataPullStartTime"], older["dataPullEndTime"])
        self.assertEqual(len(records(c, "paged")), 20, "AppFlow's default page is 20")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.describe_flow_execution_records(flowName="paged", nextToken="bm9wZQ")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.describe_flow_execution_records(flowName="nope")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        c.create_flow(**h.s3_flow("never_run", "Scheduled"))
        self.assertEqual(records(c, "never_run"), [])
        pb = h.stubs().appflow_pb2
        stub = h.stubs().appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))
        g = stub.DescribeFlowExecutionRecords(pb.DescribeFlowExecutionRecordsRequest(
            flow_name="paged", max_results=5), timeout=10)
        self.assertEqual([e.execution_id for e in g.flow_executions],
                         [r["executionId"] for r in seen[:5]])
        self.assertTrue(g.next_token)

    def test_runs_survive_a_restart_on_sqlite(self):
        """A run the stopped server had in progress is kept, and ends as interrupted: no other
        appflowd was serving the store to carry it on."""
        url = h.new_store_url("sqlite")
        srv, c = self.server(600, "--store", url)
        c.create_flow(**h.s3_flow("kept_runs"))
        run_id = c.start_flow(flowName="kept_runs")["executionId"]
        self.assertExitedCleanly(srv)
        again, c = self.server(600, "--store", url)
        r = record(c, "kept_runs", run_id)
        self.assertEqual(r["executionStatus"], "Error")
        self.assertIn("interrupted", r["executionResult"]["errorInfo"]["executionMessage"])
        again.wait_for_line(lambda l: "restart: 1 run(s) left in progress ended as interrupted" in l)


if __name__ == "__main__":
    unittest.main()
