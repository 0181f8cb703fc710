"""The SQLite store through the real binary: flows outlive a restart, the seed file adds only what
is new, every change a client saw acknowledged survives SIGKILL (20 rounds of a mutation storm on
both doors, each killed at a random moment) and nothing is ever half applied; and a store that
cannot be used stops appflowd at start-up with a clear message and the right exit status."""

import os
import random
import signal
import sqlite3
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import storm  # noqa: E402

ROUNDS = 20


def db_url(path):
    return "sqlite:" + path


class DurableSqliteTest(h.ServerTestCase):
    def setUp(self):
        self.dir = h.tempdir("appflowd-e2e-durable-")
        self.path = os.path.join(self.dir, "flows.db")

    def start_db(self, *extra, flows=None):
        return self.start_http(flows, "--store", db_url(self.path), *extra)

    def test_flows_outlive_a_restart_and_the_seed_adds_only_what_is_new(self):
        seed = [h.flow("kept_a"), h.flow("kept_b", "Event", "Suspended")]
        srv = self.start_db(flows=seed)
        self.assertIn(f"store=sqlite:{self.path}", srv.startup.group(0))
        self.assertIn("seed_added=2 seed_kept=0", srv.startup.group(0))
        g = storm.GrpcDoor(srv.port)
        self.assertEqual(g.stop("kept_a").status, "Suspended")
        self.assertTrue(g.create("made", "OnDemand", {"team": "data"}).ok)
        g.close()
        self.assertExitedCleanly(srv)
        srv = self.start_db(flows=seed + [h.flow("new_c")])
        self.assertIn("flows=3", srv.startup.group(0))
        self.assertIn("seed_added=1 seed_kept=2", srv.startup.group(0))
        d = storm.HttpDoor(srv.http_port)
        self.assertEqual(d.describe("kept_a"), ("Suspended", {}), "the seed did not reset it")
        self.assertEqual(d.describe("made"), ("Active", {"team": "data"}))
        self.assertEqual(d.describe("new_c"), ("Active", {}))
        d.close()

    def test_full_sync_is_accepted_and_durable(self):
        srv = self.start_db("--store-sync", "full")
        self.assertTrue(storm.GrpcDoor(srv.port).create("full1", "Scheduled", {}).ok)
        self.assertExitedCleanly(srv)
        srv = self.start_db()
        self.assertEqual(storm.GrpcDoor(srv.port).describe("full1"), ("Draft", {}))

    def test_every_acknowledged_change_survives_sigkill(self):
        seed = int(os.environ.get("AF_STORM_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        everything = []
        for r in range(ROUNDS):
            with self.subTest(round=r, seed=seed):
                srv = h.start_http_server(None, "--store", db_url(self.path), "--http-threads", "2")
                doors = [storm.GrpcDoor(srv.port), storm.GrpcDoor(srv.port),
                         storm.HttpDoor(srv.http_port), storm.HttpDoor(srv.http_port)]
                s = storm.Storm(doors, f"r{r}", flows_per_door=8, seed=rng.randrange(1 << 30))
                s.start()
                s.wait_acked(rng.randint(10, 250))  # a random moment, reached as an event
                srv.stop(signal.SIGKILL)
                s.stop()
                for d in doors:
                    d.close()
                self.assertEqual(s.problems, [], "changes refused while the server was up")
                everything += s.models
                srv = self.start_http(None, "--store", db_url(self.path))
                door = storm.GrpcDoor(srv.port)
                problems = storm.verify(door, everything)
                door.close()
                self.assertEqual(problems, [], f"round {r} (AF_STORM_SEED={seed})")
                self.assertExitedCleanly(srv)

    def test_a_database_from_a_newer_appflowd_is_refused(self):
        srv = self.start_db()
        self.assertExitedCleanly(srv)
        db = sqlite3.connect(self.path)  # closed after, or appflowd finds the file in use
        with db:
            db.execute("UPDATE appflowd_meta SET value = CAST('7' AS BLOB) "
                       "WHERE key = 'schema_version'")
        db.close()
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", db_url(self.path))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("schema version 7, newer than this appflowd's 4", r.stderr)

    def test_a_second_appflowd_on_the_same_file_is_refused(self):
        self.start_db()
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", db_url(self.path),
                           "--store-timeout", "0.5")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{self.path} is in use by another process", r.stderr)

    def test_a_store_that_cannot_be_opened_is_a_clear_error(self):
        missing = os.path.join(self.dir, "no", "such", "dir", "flows.db")
        r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", db_url(missing))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("appflowd: --store: cannot open " + missing, r.stderr)
        for bad, what in [("sqlite:", "needs a file name"), ("mysql://x", "unknown store"),
                          ("memory:x", "unknown store")]:
            r = h.run_appflowd("--grpc-listen", "127.0.0.1:0", "--store", bad)
            self.assertEqual(r.returncode, 2, f"{bad}: {r.stderr}")
            self.assertIn(what, r.stderr)
        r = h.run_appflowd("--store-sync", "sometimes")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--store-sync takes normal or full, not 'sometimes'", r.stderr)


if __name__ == "__main__":
    h.require_binaries("APPFLOWD")
    unittest.main(verbosity=2)
