"""Three appflowd replicas on one PostgreSQL database (a throwaway cluster of the test's own),
driven through both doors of all three at once. Every AppFlow rule holds across them: a name is
created once; a clientToken retry gets the first result on any replica; each state change is
applied and logged exactly once however many replicas race to make it; ListFlows pages and their
tokens work on any replica and after a restart; DeleteFlow frees a name everywhere; and a replica
SIGKILLed in a storm loses nothing another replica acknowledged or it acknowledged itself."""

import concurrent.futures
import os
import random
import re
import signal
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import storm  # noqa: E402

S = h.stubs()
pb = S.appflow_pb2
REPLICAS = 3
CHANGE_RE = re.compile(r"^appflowd: info: flow (?P<name>\S+): (?P<before>FLOW_STATUS_[A-Z]+) -> "
                       r"(?P<after>FLOW_STATUS_[A-Z]+)$")


class ReplicasTest(h.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = h.pg_cluster()

    def setUp(self):
        self.url = h.new_store_url("postgresql")  # a new schema: a database of this test's own
        self.sentinels = h.Sentinels(n=64)
        self.replicas = [self.start_replica() for _ in range(REPLICAS)]

    def start_replica(self):
        srv = self.start_http(self.sentinels.flows(), "--store", self.url)
        self.assertIn("store=postgresql://postgres@127.0.0.1:", srv.startup.group(0))
        return srv

    def doors(self):
        """Both doors of every replica: [grpc0, http0, grpc1, http1, ...]."""
        out = []
        for srv in self.replicas:
            out += [storm.GrpcDoor(srv.port), storm.HttpDoor(srv.http_port)]
        self.addCleanup(lambda: [d.close() for d in out])
        return out

    def barrier(self):
        """Once this returns, every line each replica logged before it has been read."""
        for srv in self.replicas:
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))
            self.sentinels.barrier(srv, stub)

    def changes(self, name):
        """Every "before -> after" line any replica logged for flow name."""
        out = []
        for srv in self.replicas:
            for line in srv.lines():
                m = CHANGE_RE.match(line)
                if m and m.group("name") == name:
                    out.append((m.group("before"), m.group("after")))
        return out

    @staticmethod
    def race(doors, call, repeat=1):
        """call(door) from every door at once (repeat times each); the results in door order."""
        gate = threading.Barrier(len(doors) * repeat)

        def one(door):
            gate.wait(30)
            return call(door)

        with concurrent.futures.ThreadPoolExecutor(len(doors) * repeat) as ex:
            return list(ex.map(one, [d for d in doors for _ in range(repeat)]))

    # ---- the rules ----

    def test_a_name_is_created_once(self):
        doors = self.doors()
        for i in range(10):
            name = f"contested_{i}"
            results = self.race(doors, lambda d: d.create(name, "Scheduled", {"by": d.name}))
            won = [r for r in results if r.ok]
            self.assertEqual(len(won), 1, f"{name}: {results}")
            self.assertTrue(all(r.error == "ConflictException" for r in results if not r.ok),
                            results)
            self.assertEqual(won[0].status, "Draft")
        self.barrier()

    def test_a_client_token_retry_gets_the_first_result_on_any_replica(self):
        doors = self.doors()
        first = doors[0].create("tokened", "OnDemand", {"t": "1"}, token="create-token-1")
        self.assertTrue(first.ok, first)
        for d in doors[1:]:
            again = d.create("tokened", "OnDemand", {"t": "1"}, token="create-token-1")
            self.assertTrue(again.ok, f"{d.name}: {again}")
            self.assertEqual(again.status, first.status)
            other = d.create("tokened", "OnDemand", {"t": "2"}, token="create-token-1")
            self.assertEqual(other.error, "ConflictException", f"{d.name}: {other}")
        run = doors[1].start("tokened", token="start-token-1")
        self.assertTrue(run.ok and run.execution_id, run)
        retries = self.race(doors, lambda d: d.start("tokened", token="start-token-1"))
        self.assertEqual({r.execution_id for r in retries}, {run.execution_id},
                         "one run, whichever replica the retry reached")
        racers = self.race(doors, lambda d: d.start("tokened", token="start-token-2"))
        self.assertEqual(len({r.execution_id for r in racers}), 1, racers)

    def test_each_change_is_applied_and_logged_exactly_once(self):
        doors = self.doors()
        names = [f"raced_{i}" for i in range(20)]
        for n in names:
            self.assertTrue(doors[0].create(n, "Scheduled", {}).ok)
        for round_ in range(2):
            starts = self.race(doors, lambda d: [d.start(n) for n in names])
            stops = self.race(doors, lambda d: [d.stop(n) for n in names])
            for r in sum(starts, []):
                self.assertEqual(r.status, "Active", r)
            for r in sum(stops, []):
                self.assertEqual(r.status, "Suspended", r)
        self.barrier()
        for n in names:  # each replica's log is in order; across replicas, compare as a set
            self.assertEqual(sorted(self.changes(n)), sorted([
                ("FLOW_STATUS_DRAFT", "FLOW_STATUS_ACTIVE"),
                ("FLOW_STATUS_ACTIVE", "FLOW_STATUS_SUSPENDED"),
                ("FLOW_STATUS_SUSPENDED", "FLOW_STATUS_ACTIVE"),
                ("FLOW_STATUS_ACTIVE", "FLOW_STATUS_SUSPENDED"),
            ]), f"{n}: across {REPLICAS} replicas")

    def list_page(self, srv, door, token, size=7):
        if door == "grpc":
            stub = S.appflow_pb2_grpc.AppFlowServiceStub(h.channel(srv.port))
            resp = stub.ListFlows(pb.ListFlowsRequest(max_results=size, next_token=token or ""),
                                  timeout=10)
            return [f.flow_name for f in resp.flows], resp.next_token or None
        body = {"maxResults": size}
        if token:
            body["nextToken"] = token
        r = h.aws_request(srv.http_port, body, path="/list-flows")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        return [f["flowName"] for f in j["flows"]], j.get("nextToken")

    def test_list_pages_work_on_any_replica_and_after_a_restart(self):
        doors = self.doors()
        for i in range(30):
            self.assertTrue(doors[i % len(doors)].create(f"listed_{i:02d}", "OnDemand", {}).ok)
        expected = sorted([f"listed_{i:02d}" for i in range(30)] + self.sentinels.names)
        seen, token, k = [], None, 0
        while True:
            if k == 3:  # a token outlives the replica that made it
                old = self.replicas.pop(0)
                self.assertExitedCleanly(old)
                self.replicas.append(self.start_replica())
            srv = self.replicas[k % REPLICAS]
            names, token = self.list_page(srv, "grpc" if k % 2 else "http", token)
            seen += names
            k += 1
            if not token:
                break
        self.assertEqual(sorted(seen), expected, "every flow exactly once")

    def test_delete_frees_the_name_everywhere(self):
        doors = self.doors()
        self.assertTrue(doors[0].create("moving", "Scheduled", {}).ok)
        self.assertTrue(doors[2].start("moving").ok)
        self.assertEqual(doors[4].delete("moving", force=False).error, "ConflictException")
        self.assertTrue(doors[3].delete("moving", force=True).ok)
        for d in doors:
            self.assertIsNone(d.describe("moving"), d.name)
        self.assertEqual(doors[1].delete("moving").error, "ResourceNotFoundException")
        self.assertTrue(doors[5].create("moving", "OnDemand", {}).ok, "the name is free again")
        self.assertEqual(doors[0].describe("moving"), ("Active", {}))

    def test_a_killed_replica_loses_nothing_acknowledged(self):
        seed = int(os.environ.get("AF_STORM_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        victim = h.start_http_server(self.sentinels.flows(), "--store", self.url)
        self.addCleanup(victim.stop)
        doors = self.doors() + [storm.GrpcDoor(victim.port), storm.HttpDoor(victim.http_port)]
        s = storm.Storm(doors, "storm", flows_per_door=6, seed=rng.randrange(1 << 30))
        s.start()
        s.wait_acked(rng.randint(50, 300))  # a random moment, reached as an event
        victim.stop(signal.SIGKILL)
        s.wait_acked(s.acked + 100)  # the others keep serving
        s.stop()
        for d in doors[-2:]:
            d.close()
        self.assertEqual(s.problems, [], f"AF_STORM_SEED={seed}")
        self.replicas.append(self.start_replica())  # and one that starts after the crash
        for srv in self.replicas:
            door = storm.HttpDoor(srv.http_port)
            self.assertEqual(storm.verify(door, s.models), [], f"AF_STORM_SEED={seed}")
            door.close()


if __name__ == "__main__":
    h.require_binaries("APPFLOWD")
    unittest.main(verbosity=2)
