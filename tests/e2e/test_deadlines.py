"""A call's deadline bounds its work, on both doors, against a store that is slow: PostgreSQL
with the flows table locked so that reads go on and writes wait (LOCK TABLE ... IN SHARE MODE,
held by a session of the test's own).

- gRPC: a StopFlow with a 0.5 s deadline ends DEADLINE_EXCEEDED; the AWS door: a StopFlow past
  --http-request-timeout (1 s) ends 504 RequestTimeoutException, from appflowd itself. The
  write each was waiting on is abandoned, not applied later: once the database has let go of
  the abandoned statements and the lock is released, both flows are as they were, and the
  store is still healthy (a caller in a hurry does not make it unavailable for everyone).
- When the store's own --store-timeout comes first, the answer stays 503
  ServiceUnavailableException: the deadline error is for the caller's deadline only.

Nothing here sleeps: each step waits for its answer, or polls the database's own view of its
sessions (pg_stat_activity) until no statement waits on a lock."""

import os
import sys
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
P = h.platform_stubs()
pb = S.appflow_pb2
SERVING = P.health_pb2.HealthCheckResponse.SERVING
FLOWS = [h.flow(f"due_{i}", "Scheduled", "Active") for i in range(4)]


class DeadlineTest(h.ServerTestCase):
    def setUp(self):
        self.pg = h.pg_cluster()
        if not self.pg.running():
            self.pg.start_server()
        self.url = h.new_store_url("postgresql")

    def serve(self, *extra):
        srv = self.start_http(FLOWS, "--store", self.url, *extra)
        chan = h.channel(srv.port)
        self.addCleanup(chan.close)
        srv.flows = S.appflow_pb2_grpc.AppFlowServiceStub(chan)
        srv.health = P.health_pb2_grpc.HealthStub(chan)
        return srv

    def health(self, srv):
        return srv.health.Check(P.health_pb2.HealthCheckRequest(service=""), timeout=30).status

    def status(self, srv, name):
        return srv.flows.DescribeFlow(pb.DescribeFlowRequest(flow_name=name),
                                      timeout=30).flow_status

    def writes_wait(self):
        """Locks the flows table against writes (reads go on); returns the held lock."""
        self.pg.psql("SELECT 1")  # the cluster answers before the lock is taken
        blocker = self.pg.hold_lock(self.url, "appflowd_flows", mode="SHARE")
        self.addCleanup(blocker.release)
        return blocker

    def no_statement_waits(self):
        out = self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock';")
        return int(out.strip()) == 0

    def test_past_the_callers_deadline_a_call_ends_with_the_deadline_and_changes_nothing(self):
        srv = self.serve("--http-request-timeout", "1")
        blocker = self.writes_wait()
        self.assertEqual(self.status(srv, "due_0"), pb.FLOW_STATUS_ACTIVE, "reads go on")
        code, details, _ = h.grpc_error_of(
            lambda: srv.flows.StopFlow(pb.StopFlowRequest(flow_name="due_0"), timeout=0.5))
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        r = h.aws_request(srv.http_port, {"flowName": "due_1"}, path="/stop-flow", timeout=30)
        self.assertEqual((r.status, r.error_type), (504, "RequestTimeoutException"), r)
        self.assertRegex(r.request_id, h.UUID_RE)
        self.assertEqual(r.message, "StopFlow did not complete within its deadline; a change it "
                         "asked for may or may not have been made: check, or retry it (with the "
                         "same clientToken, if it has one), with a longer deadline if this "
                         "recurs")
        # The abandoned statements end (their client has gone) before the lock is let go: had
        # either been left to run, it would change its flow once the lock is released.
        h.wait_until(self.no_statement_waits, timeout=30, interval=0.1,
                     what="no statement waiting on the lock")
        self.assertEqual(self.health(srv), SERVING, "a caller's deadline is not an outage")
        blocker.release()
        self.assertEqual(self.status(srv, "due_0"), pb.FLOW_STATUS_ACTIVE)
        self.assertEqual(self.status(srv, "due_1"), pb.FLOW_STATUS_ACTIVE)
        # The store stayed healthy: the same calls, given time, go through.
        resp = srv.flows.StopFlow(pb.StopFlowRequest(flow_name="due_0"), timeout=30)
        self.assertEqual(resp.flow_status, pb.FLOW_STATUS_SUSPENDED)
        r = h.aws_request(srv.http_port, {"flowName": "due_1"}, path="/stop-flow", timeout=30)
        self.assertEqual((r.status, r.json()["flowStatus"]), (200, "Suspended"), r)

    def test_the_stores_own_timeout_first_is_still_service_unavailable(self):
        srv = self.serve("--store-timeout", "1", "--http-request-timeout", "20")
        blocker = self.writes_wait()
        r = h.aws_request(srv.http_port, {"flowName": "due_2"}, path="/stop-flow", timeout=30)
        self.assertEqual((r.status, r.error_type), (503, "ServiceUnavailableException"), r)
        h.wait_until(self.no_statement_waits, timeout=30, interval=0.1,
                     what="no statement waiting on the lock")
        blocker.release()
        # The store's timeout is an outage: health says so until the database answers again.
        h.HealthWatcher(srv.health, "", timeout=60).wait_for(SERVING)
        self.assertEqual(self.status(srv, "due_2"), pb.FLOW_STATUS_ACTIVE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
