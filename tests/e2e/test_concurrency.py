"""Many clients at once: every StopFlow answered right, every flow changes state exactly once
(one transition line each), and the server still exits cleanly (under ASan: no races that
corrupt memory, no leaks)."""

import os
import random
import sys
import threading
import unittest

import grpc

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
C = grpc.StatusCode

NFLOWS = 300
NTHREADS = 16


arn = h.arn


run_threads = h.run_threads


class ConcurrencyTest(h.ServerTestCase):
    def test_16_clients_stop_300_flows(self):
        flows, before = [], {}
        for i in range(NFLOWS):
            name = f"conc_{i:03d}"
            status = "Errored" if i % 3 == 0 else "Active"
            flows.append(h.flow(name, "Scheduled" if i % 2 else "Event", status))
            before[name] = "FLOW_STATUS_" + status.upper()
        srv = h.start_server(flows, threads=2)
        self.addCleanup(srv.stop)  # only if the test fails before its own checked stop
        self.assertEqual(srv.startup.group("flows"), str(NFLOWS))
        names = list(before)
        bad = []  # (thread, name, what) for every wrong answer
        counts = [0] * NTHREADS

        def client(i):
            order = names[:]
            random.Random(1000 + i).shuffle(order)
            with h.channel(srv.port) as ch:
                stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
                for name in order:
                    try:
                        r = stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=30)
                    except grpc.RpcError as e:
                        bad.append((i, name, f"{e.code()}: {e.details()}"))
                        continue
                    if r.flow_status != pb.FLOW_STATUS_SUSPENDED or r.flow_arn != arn(name):
                        bad.append((i, name, str(r)))
                    counts[i] += 1

        errors = run_threads(NTHREADS, client)
        self.assertEqual(errors, [])
        self.assertEqual(bad[:10], [], f"{len(bad)} wrong answers")
        self.assertEqual(counts, [NFLOWS] * NTHREADS)

        srv.check_stopped_cleanly()  # all output read: the log is complete
        seen = {}
        for name, b in srv.transitions():
            seen.setdefault(name, []).append(b)
        self.assertEqual(sorted(seen), sorted(names), "one transition line per flow")
        dup = {n: b for n, b in seen.items() if len(b) != 1}
        self.assertEqual(dup, {}, "flows with more than one transition")
        self.assertEqual({n: b[0] for n, b in seen.items()}, before)
        self.assertEqual(len(srv.transitions()), NFLOWS)

    def test_mixed_answers_on_one_shared_channel(self):
        # Every kind of answer at once, from 8 threads sharing one channel (one connection).
        kinds = {}
        flows = []
        for i in range(20):
            for trig, status, kind in (("Scheduled", "Active", "ok"), ("Event", "Errored", "ok"),
                                       ("Event", "Suspended", "ok"),
                                       ("OnDemand", "Active", C.FAILED_PRECONDITION),
                                       ("Scheduled", "Draft", C.ABORTED),
                                       ("Event", "Deprecated", C.ABORTED)):
                name = f"mix_{trig}_{status}_{i}"
                flows.append(h.flow(name, trig, status))
                kinds[name] = kind
            kinds[f"mix_missing_{i}"] = C.NOT_FOUND
            kinds[f"mix bad {i}"] = C.INVALID_ARGUMENT
        srv = self.start(flows, threads=2)
        names = list(kinds)
        bad = []
        with h.channel(srv.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)

            def client(i):
                order = names * 2
                random.Random(i).shuffle(order)
                for name in order:
                    try:
                        r = stub.StopFlow(pb.StopFlowRequest(flow_name=name), timeout=30)
                        got = "ok" if (r.flow_status, r.flow_arn) == (
                            pb.FLOW_STATUS_SUSPENDED, arn(name)) else str(r)
                    except grpc.RpcError as e:
                        got = e.code()
                    if got != kinds[name]:
                        bad.append((name, got, kinds[name]))

            errors = run_threads(8, client)
        self.assertEqual(errors, [])
        self.assertEqual(bad[:10], [], f"{len(bad)} wrong answers")
        srv.check_stopped_cleanly()
        changed = sorted(n for n, _ in srv.transitions())
        self.assertEqual(changed, sorted(n for n in names if "_Active_" in n and "Scheduled" in n
                                         or "_Errored_" in n))

    def test_burst_beyond_requested_calls(self):
        # 400 calls in flight at once on one channel: more than the server keeps requested per
        # method, so some wait in gRPC's queue; all must be answered.
        flows = [h.flow(f"burst_{i:03d}", "Scheduled", "Active") for i in range(400)]
        srv = self.start(flows, threads=2)
        with h.channel(srv.port) as ch:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(ch)
            futures = [(f["flowName"], stub.StopFlow.future(
                pb.StopFlowRequest(flow_name=f["flowName"]), timeout=60)) for f in flows]
            for name, fut in futures:
                r = fut.result()
                self.assertEqual((r.flow_arn, r.flow_status), (arn(name), pb.FLOW_STATUS_SUSPENDED))
        srv.check_stopped_cleanly()
        self.assertEqual(sorted(n for n, _ in srv.transitions()), [f["flowName"] for f in flows])


if __name__ == "__main__":
    unittest.main(verbosity=2)
