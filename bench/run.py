#!/usr/bin/python3
"""make bench: every benchmark, one after another, on loopback; results as ratios in one run.

Starts each server (appflowd, the canned C-core limit, nginx, the Python, Node and Go peers) on
a free port, drives it with the same driver as the others (h2load and grpcload for gRPC, wrk for
HTTP; see bench/FORMAT.md), stops it by PID, and writes every measurement as a JSON line to
bench/results/run-<time>.jsonl plus a Markdown table (bench/results/run-<time>.md).

The Go peers (bench/peers/go: grpc-go and net/http) are built first, by
bench/peers/go/build.sh into the run's temporary directory, and run at appflowd's own levels
and durations; the Python and Node peers at fewer and shorter ones.

The lifecycle suite measures DescribeFlow, ListFlows, StartFlow and a CreateFlow+DeleteFlow
churn on both doors against limits that answer the same bytes: appflowd's replies are captured
first (bench/lifecycle.py), then bench/canned_server and nginx serve them. The Go peers' own
DescribeFlow is measured too, each reply checked to carry the flowName, flowArn and flowStatus of
appflowd's (the drivers' --same-flow: a peer's creation time is its own).

The stores suite runs appflowd on each store (memory:, sqlite: and a PostgreSQL cluster it
starts with fsync on), all three up at once, and runs every measurement on each in turn, round
after round, reporting medians: StopFlow over 10,000 flows (no change), toggle (every call a
committed change of state), DescribeFlow; pgbench with the SQL a changing StopFlow runs, for
the PostgreSQL store's limit; and start-up with 1,000,000 flows in SQLite. See Bench.stores.

The connections suite measures new calls (ListFlows, 200 on each door) with nothing held, then
while the door holds 10,000 idle and 500 trickling connections (bench/held_latency.py); the
target is p99 under 100 ms. See Bench.connections.

usage: bench/run.py BUILD_DIR [--quick] [--only grpc,http,scale,lifecycle,stores,connections]
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import lifecycle

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
import pg_cluster  # noqa: E402  (tests/pg_cluster.py: a throwaway PostgreSQL cluster)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PY = "/usr/bin/python3"
NODE = "node"
GO_PEERS = os.path.join(BENCH, "peers", "go", "build.sh")
# The peers in the report's peers table, by door, in the order of their columns.
PEERS = {"grpc": ("python-grpcio", "node-grpc-js", "grpc-go"),
         "http": ("node-http", "go-net-http")}

SUCCESS_FLOW = "bench_suspended"
MIX_NAMES = "bench_:10000"
MILLION_NAMES = "bench_:1000000"
PG_BIN = "/usr/lib/postgresql/15/bin"
PGBENCH = os.path.join(PG_BIN, "pgbench")
STORE_CONNECTIONS = 8  # appflowd's --store-connections for PostgreSQL, and pgbench's -c
STORES = ("memory", "sqlite", "postgresql")
# The connections suite: what each door holds while new calls are measured, and the target.
HELD_IDLE, HELD_TRICKLE = 10000, 500
HELD_P99_TARGET_MS = 100
# pgbench toggles the flows appflowd's toggle at 4x32 does (bench_00000 .. bench_00127), each
# client its own eighth of them, as each grpcload slot has its own flow.
PGBENCH_ROWS = 128


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Server:
    """A server process whose port is read from a line it prints on stderr."""

    def __init__(self, argv, port_re, name, cwd=None):
        self.name = name
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, cwd=cwd)
        self.port = None
        self.startup_seconds = None
        # Seeding 1,000,000 whole CreateFlow requests (475 MB) into SQLite takes about two
        # minutes on the 2-core machine: the deadline leaves room for it.
        deadline = time.monotonic() + 600
        for line in self.proc.stderr:
            m = re.search(port_re, line)
            if m:
                self.port = int(m.group(1))
                self.http_port = int(m.group(2)) if m.lastindex and m.lastindex >= 2 else None
                self.startup_seconds = time.monotonic() - self.started
                break
            if time.monotonic() > deadline:
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{name} did not start: {' '.join(argv)}")
        # Keep draining stderr so the server never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_driver(argv):
    """Runs a driver; returns its JSON lines (see FORMAT.md)."""
    log(" ".join(argv))
    out = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    rows = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    if out.returncode != 0:
        log(f"driver exited {out.returncode}: {' '.join(argv)}")
    return rows


def write_seed(path, names):
    subprocess.run([PY, os.path.join(BENCH, "grpc_mix.py"), "--write-seed", path, "--names",
                    names], check=True)


class Bench:
    def __init__(self, build, quick, stamp=None, perf="auto"):
        self.build = build
        self.quick = quick
        self.stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        self.perf = perf  # stores suite: "auto" profiles what misses or nears a target
        self.rows = []
        self.store_rows = []  # the stores suite's, every round (medians in stores_report)
        self.profiled_rows = []  # runs made under perf: recorded, never in the medians
        self.notes = {}
        self.tmp = tempfile.mkdtemp(prefix="appflowd-bench-")
        self.levels = "1x1,4x32,16x64"
        self.duration = "3" if quick else "10"
        self.peer_duration = "3" if quick else "5"
        # The lifecycle adds 32 runs: shorter ones keep `make bench` within a few minutes more.
        self.life_duration = "2" if quick else "5"
        self.life_levels = "1x1,4x32"
        self.life_conns = "1,16"
        self.go_bins = None  # {"grpc": path, "http": path} once bench/peers/go is built

    def add(self, rows, **extra):
        for r in rows:
            r.update(extra)
            self.rows.append(r)

    # ---- servers ----

    def appflowd(self, seed, http=False, store=None, extra=(), wrap=(), build=None):
        """appflowd on loopback; seed None starts it without a seed file (a durable store's
        flows are already in it); wrap runs it under another command (perf record ... --);
        build, another build directory's appflowd (a baseline to compare with)."""
        argv = list(wrap) + [os.path.join(build or self.build, "appflowd"), "--grpc-listen",
                             "127.0.0.1:0", "--log-level", "warn", "--threads", "2"]
        if seed is not None:
            argv += ["--flows", seed]
        if http:
            argv += ["--http-listen", "127.0.0.1:0", "--http-threads", "2"]
        if store is not None:
            argv += ["--store", store]
        return Server(argv + list(extra), r" port=(\d+)(?: http=\S+ http_port=(\d+))?",
                      "appflowd")

    def canned(self, answer="ok", replies=None):
        argv = [os.path.join(self.build, "bench", "canned_server"), "--listen", "127.0.0.1:0",
                "--threads", "2", "--answer", answer]
        for method, path in (replies or {}).items():
            argv += ["--reply", f"{method}={path}"]
        return Server(argv, r"port=(\d+)", "canned")

    def peer(self, script, seed, name):
        runner = PY if script.endswith(".py") else NODE
        return Server([runner, os.path.join(BENCH, "peers", script), "--port", "0", "--flows",
                       seed], r"port=(\d+)", name)

    def go_peer(self, door, seed):
        """The Go peer of a door ("grpc": grpc-go, "http": go-net-http), built on first use."""
        if self.go_bins is None:
            out = os.path.join(self.tmp, "go-peers")
            log(f"building the Go peers: {GO_PEERS} {out}")
            started = time.monotonic()
            subprocess.run([GO_PEERS, out], check=True, stdout=subprocess.DEVNULL)
            self.notes["go_peers_build_s"] = round(time.monotonic() - started, 1)
            self.go_bins = {"grpc": os.path.join(out, "grpcserver"),
                            "http": os.path.join(out, "httpserver")}
        name = {"grpc": "grpc-go", "http": "go-net-http"}[door]
        return Server([self.go_bins[door], "--port", "0", "--flows", seed], r"port=(\d+)", name)

    def nginx(self, locations=""):
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(BENCH, "nginx.conf")) as f:
            conf = f.read()
        port = free_port()
        conf = conf.replace("@DIR@", d).replace("@PORT@", str(port))
        # Only the placeholder line: the comments name it too.
        conf = re.sub(r"(?m)^@LOCATIONS@$", lambda _: locations, conf)
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        # The config itself says `daemon off;` (nginx refuses it twice), so nginx stays our child
        # and is stopped by PID.
        proc = subprocess.Popen(["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        srv = Server.__new__(Server)
        srv.proc, srv.port, srv.name = proc, port, "nginx"
        return srv

    # ---- drivers ----

    def h2load(self, target, port, scenario, levels=None, duration=None, flow=None, extra=()):
        argv = [PY, os.path.join(BENCH, "grpc_h2load.py"), "--target", target, "--port", str(port),
                "--scenario", scenario, "--levels", levels or self.levels,
                "--duration", duration or self.duration]
        if flow:
            argv += ["--flow", flow]
        self.add(run_driver(argv + list(extra)))

    def mix(self, target, port, names=MIX_NAMES, scenario="mix", levels=None, duration=None,
            rpc="stop"):
        self.add(self.mix_rows(target, port, names, scenario, levels, duration, rpc))

    def mix_rows(self, target, port, names=MIX_NAMES, scenario="mix", levels=None, duration=None,
                 rpc="stop"):
        return run_driver([
            PY, os.path.join(BENCH, "grpc_mix.py"), "--grpcload",
            os.path.join(self.build, "bench", "grpcload"), "--target", target, "--port", str(port),
            "--levels", levels or self.levels, "--duration", duration or self.duration,
            "--names", names, "--scenario", scenario, "--rpc", rpc])

    def wrk(self, target, port, scenario, conns="1,16,64", duration=None, extra=()):
        self.add(self.wrk_rows(target, port, scenario, conns, duration, extra))

    def wrk_rows(self, target, port, scenario, conns="1,16,64", duration=None, extra=()):
        return run_driver([
            PY, os.path.join(BENCH, "http_wrk.py"), "--target", target, "--port", str(port),
            "--scenario", scenario, "--conns", conns, "--duration", duration or self.duration]
            + list(extra))

    def grpcload(self, target, port, scenario, rpc, levels, extra):
        """One grpcload run per level (the lifecycle's modes; bench/grpcload.c)."""
        for level in levels.split(","):
            conns, streams = level.split("x")
            argv = [os.path.join(self.build, "bench", "grpcload"), "--target",
                    f"127.0.0.1:{port}", "--conns", conns, "--streams", streams,
                    "--duration", self.life_duration, "--rpc", rpc, "--label", target,
                    "--scenario", scenario] + extra(level)
            self.add(run_driver(argv))

    # ---- suites ----

    def grpc(self, seed):
        srv = self.canned()
        try:
            self.h2load("canned", srv.port, "success")
            self.mix("canned", srv.port)
        finally:
            srv.stop()
        srv = self.canned("notfound")
        try:
            self.h2load("canned", srv.port, "notfound")
        finally:
            srv.stop()
        srv = self.appflowd(seed)
        try:
            self.h2load("appflowd", srv.port, "success")
            self.h2load("appflowd", srv.port, "notfound")
            self.mix("appflowd", srv.port)
        finally:
            srv.stop()
        # grpc-go at appflowd's levels and durations, the mix over the same 10,000 flows.
        srv = self.go_peer("grpc", seed)
        try:
            self.h2load("grpc-go", srv.port, "success")
            self.h2load("grpc-go", srv.port, "notfound")
            self.mix("grpc-go", srv.port)
            self.notes.setdefault("peers_rss_kib", {})["grpc-go"] = srv.rss_kib("VmHWM")
        finally:
            srv.stop()
        for script, name in (("python_grpc_server.py", "python-grpcio"),
                             ("node_grpc_server.js", "node-grpc-js")):
            srv = self.peer(script, seed, name)
            try:
                self.h2load(name, srv.port, "success", levels="1x1,4x32",
                            duration=self.peer_duration)
            finally:
                srv.stop()

    def http(self, seed):
        srv = self.nginx()
        try:
            self.wrk("nginx", srv.port, "success")
        finally:
            srv.stop()
        srv = self.appflowd(seed, http=True)
        try:
            self.wrk("appflowd", srv.http_port, "success")
            self.wrk("appflowd", srv.http_port, "notfound", conns="16")
        finally:
            srv.stop()
        srv = self.go_peer("http", seed)
        try:
            self.wrk("go-net-http", srv.port, "success")
            self.notes.setdefault("peers_rss_kib", {})["go-net-http"] = srv.rss_kib("VmHWM")
        finally:
            srv.stop()
        srv = self.peer("node_http_server.js", seed, "node-http")
        try:
            self.wrk("node-http", srv.port, "success", conns="1,16", duration=self.peer_duration)
        finally:
            srv.stop()

    # ---- the lifecycle: appflowd first (its replies are captured), then the limits ----

    def lifecycle_grpc(self, target, port, files):
        run_id = f"{target.replace('-', '')}{int(time.time())}"
        self.h2load(target, port, "describe", levels=self.life_levels,
                    duration=self.life_duration,
                    extra=["--rpc", "DescribeFlow", "--request-file", files["describe.req"],
                           "--response-file", files["describe.grpc"]])
        self.grpcload(target, port, "list", "list", self.life_levels,
                      lambda lv: ["--page", str(lifecycle.PAGE)])
        # A new clientToken per call, as the AWS SDKs send (StartFlow keeps 64 per flow).
        self.grpcload(target, port, "start", "start", self.life_levels,
                      lambda lv: ["--flow", lifecycle.ON_DEMAND,
                                  "--names", f"tok_{run_id}_{lv}_:1000000000"])
        self.grpcload(target, port, "churn", "churn", self.life_levels,
                      lambda lv: ["--tail", files["create.tail"],
                                  "--names", f"churn_{run_id}_{lv}_:1000000000"])

    def lifecycle_http(self, target, port, files):
        conns, dur = self.life_conns, self.life_duration
        self.wrk(target, port, "describe", conns=conns, duration=dur,
                 extra=["--flow", lifecycle.DESCRIBED, "--expect-file", files["describe.json"]])
        self.wrk(target, port, "list", conns=conns, duration=dur,
                 extra=["--page", str(lifecycle.PAGE)])
        self.wrk(target, port, "start", conns=conns, duration=dur,
                 extra=["--flow", lifecycle.ON_DEMAND])
        self.wrk(target, port, "churn", conns=conns, duration=dur,
                 extra=["--body-file", files["create-template.json"]])

    def lifecycle(self, seed):
        """DescribeFlow, ListFlows over the 10,000-flow seed, StartFlow and create+delete churn,
        on both doors, each with a limit answering appflowd's own bytes."""
        srv = self.appflowd(seed, http=True)
        try:
            lifecycle.create_flows(srv.http_port)
            files = lifecycle.capture(srv.port, srv.http_port, self.tmp)
            self.notes["describe_bytes"] = {"grpc": os.path.getsize(files["describe.grpc"]),
                                            "http": os.path.getsize(files["describe.json"])}
            self.notes["list_page_bytes"] = {"grpc": os.path.getsize(files["list.grpc"]),
                                             "http": os.path.getsize(files["list.json"])}
            self.lifecycle_grpc("appflowd", srv.port, files)
            self.lifecycle_http("appflowd", srv.http_port, files)
            self.notes["lifecycle_rss_kib"] = srv.rss_kib("VmRSS")
        finally:
            srv.stop()
        replies = {"DescribeFlow": files["describe.grpc"], "ListFlows": files["list.grpc"],
                   "StartFlow": files["start.grpc"], "CreateFlow": files["create.grpc"],
                   "DeleteFlow": files["delete.grpc"]}
        srv = self.canned(replies=replies)
        try:
            self.lifecycle_grpc("canned", srv.port, files)
        finally:
            srv.stop()
        srv = self.nginx(lifecycle.nginx_locations(files))
        try:
            self.lifecycle_http("nginx", srv.port, files)
        finally:
            srv.stop()
        self.lifecycle_go_peers(seed, files)

    def lifecycle_go_peers(self, seed, files):
        """DescribeFlow of the described flow on the Go peers, which serve no CreateFlow: their
        seed is the 10,000 flows plus that flow's CreateFlow request, with the status
        appflowd described it in. Their replies differ from appflowd's in the times (and
        ARNs, were the region another), so the drivers check with --same-flow that each
        decodes with appflowd's flowName, flowArn and flowStatus, then every reply in the run
        against the peer's own first one."""
        with open(files["describe.json"]) as f:
            status = json.load(f)["flowStatus"]
        with open(seed) as f:
            flows = json.load(f)
        flows.append(dict(lifecycle.described_body(), flowStatus=status))
        peer_seed = os.path.join(self.tmp, "flows-10k-described.json")
        with open(peer_seed, "w") as f:
            json.dump(flows, f)
        srv = self.go_peer("grpc", peer_seed)
        try:
            self.h2load("grpc-go", srv.port, "describe", levels=self.life_levels,
                        duration=self.life_duration,
                        extra=["--rpc", "DescribeFlow", "--request-file", files["describe.req"],
                               "--response-file", files["describe.grpc"], "--same-flow"])
        finally:
            srv.stop()
        srv = self.go_peer("http", peer_seed)
        try:
            self.wrk("go-net-http", srv.port, "describe", conns=self.life_conns,
                     duration=self.life_duration,
                     extra=["--flow", lifecycle.DESCRIBED, "--expect-file", files["describe.json"],
                            "--same-flow"])
        finally:
            srv.stop()

    def scale(self):
        """RSS and start-up with 1,000,000 flows; throughput with 1M flows vs 10."""
        big = os.path.join(self.tmp, "flows-1m.json")
        write_seed(big, MILLION_NAMES)
        self.notes["seed_1m_bytes"] = os.path.getsize(big)
        srv = self.appflowd(big)
        try:
            self.notes["startup_1m_s"] = round(srv.startup_seconds, 3)
            self.notes["rss_1m_kib"] = srv.rss_kib("VmRSS")
            self.notes["peak_rss_1m_kib"] = srv.rss_kib("VmHWM")
            self.h2load("appflowd", srv.port, "success-1m", levels="4x32")
            self.mix("appflowd", srv.port, names=MILLION_NAMES, scenario="mix-1m", levels="4x32")
        finally:
            srv.stop()
        ten = os.path.join(self.tmp, "flows-10.json")
        write_seed(ten, "bench_:9")  # 9 flows and bench_suspended
        srv = self.appflowd(ten)
        try:
            self.notes["startup_10_s"] = round(srv.startup_seconds, 3)
            self.notes["rss_10_kib"] = srv.rss_kib("VmRSS")
            self.h2load("appflowd", srv.port, "success-10", levels="4x32", flow=SUCCESS_FLOW)
            self.mix("appflowd", srv.port, names="bench_:9", scenario="mix-10", levels="4x32")
        finally:
            srv.stop()


    # ---- connections: new calls while each door holds 10,500 ----

    def connections(self, seed):
        """ListFlows on each door, with nothing held and then with 10,000 idle and 500
        trickling connections held to that door: 200 calls each (100 with --quick), p50, p99
        and max. The AWS door is given room for them (--http-max-connections) and time
        (--http-timeout), so that what is measured is serving past them, not the limit."""
        held = HELD_IDLE + HELD_TRICKLE
        srv = self.appflowd(seed, http=True, extra=[
            "--http-max-connections", str(held + 500), "--http-timeout", "3600"])
        try:
            self.add(run_driver([PY, os.path.join(BENCH, "held_latency.py"), "--port",
                                 str(srv.port), "--http-port", str(srv.http_port), "--pid",
                                 str(srv.proc.pid), "--calls", "100" if self.quick else "200",
                                 "--idle", str(HELD_IDLE), "--trickle", str(HELD_TRICKLE)]))
            self.notes["connections_rss_kib"] = {"VmRSS": srv.rss_kib("VmRSS"),
                                                 "VmHWM": srv.rss_kib("VmHWM")}
        finally:
            srv.stop()

    # ---- stores: memory:, sqlite: and postgresql, side by side ----

    def stores(self, seed):
        """Each measurement on each store in turn (memory, sqlite, postgresql, then the next
        measurement), round after round; run.py reports medians over the rounds. Servers stay
        up for all rounds (idle ones use no CPU). Rows go to self.store_rows, tagged with
        "suite": "stores", "store" and "round"."""
        rounds, dur = (1, "2") if self.quick else (3, "5")
        if not os.path.exists(PGBENCH):  # scripts/install-deps.sh bench does not install it
            raise RuntimeError(f"the stores suite needs PostgreSQL 15 ({PGBENCH}, initdb): "
                               "apt-get install postgresql, or scripts/install-deps.sh test")
        pg = pg_cluster.PgCluster(settings={"fsync": "on", "synchronous_commit": "on"})
        servers = {}
        try:
            pg.start()
            pg.psql("CREATE SCHEMA appflowd; CREATE SCHEMA pgbench;")
            urls = {"memory": "memory:",
                    "sqlite": "sqlite:" + os.path.join(self.tmp, "flows.db"),
                    "postgresql": pg.uri(options="-csearch_path=appflowd")}
            extra = {"memory": [], "sqlite": ["--store-sync", "normal"],
                     "postgresql": ["--store-connections", str(STORE_CONNECTIONS)]}
            # pgbench's table: appflowd makes and seeds it, so its rows are appflowd's own.
            self.appflowd(seed, store=pg.uri(options="-csearch_path=pgbench")).stop()
            script = self.pgbench_script()
            for name in STORES:
                servers[name] = self.appflowd(seed, http=True, store=urls[name],
                                              extra=extra[name])
                log(f"{name}: {servers[name].proc.pid} port {servers[name].port}"
                    f" http {servers[name].http_port}")
            servers["canned"] = self.canned()
            self.notes["stores"] = {
                "rounds": rounds, "seconds": float(dur), "stores": urls,
                "store_args": extra, "postgresql": {
                    "version": pg.psql("SHOW server_version;").strip(),
                    "settings": {k: pg.psql(f"SHOW {k};").strip() for k in (
                        "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers",
                        "commit_delay")}},
                "pgbench": {"argv": self.pgbench_argv(pg, script, dur, None)[:-2],
                            "script": read_text(script)}}
            plan = self.stores_plan(servers, pg, script, dur)
            for rnd in range(1, rounds + 1):
                for what, store, run in plan:
                    log(f"stores round {rnd}/{rounds}: {what} on {store}")
                    for r in run():
                        r.update(suite="stores", store=store, round=rnd)
                        self.store_rows.append(r)
            self.notes["stores"]["rss_kib"] = {
                n: {"VmRSS": servers[n].rss_kib("VmRSS"), "VmHWM": servers[n].rss_kib("VmHWM")}
                for n in STORES}
            if self.perf == "auto":
                self.profile_stores(servers, pg, plan)
        finally:
            for srv in servers.values():
                srv.stop()
            pg.stop()
        self.sqlite_million()

    # ---- profiles of what misses or nears a target (--perf auto) ----

    def profile_startup(self, name, seed, path):
        """A start-up on SQLite file path under perf record (appflowd its workload, so every
        thread is followed from the first instruction), until the start-up line and the stop."""
        data = os.path.join(self.tmp, f"perf-{name}.data")
        srv = self.appflowd(seed, store="sqlite:" + path,
                            wrap=["perf", "record", "-g", "-o", data, "--"])
        secs = srv.startup_seconds
        # srv.proc is perf: stop appflowd, its child, and perf ends with it.
        with open(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children") as f:
            for pid in f.read().split():
                os.kill(int(pid), signal.SIGTERM)
        srv.proc.wait(timeout=120)
        self.perf_report(name, data, f"perf record -g -- appflowd ..., from its start through "
                                     f"the start-up line ({secs:.2f} s under perf) and the stop")

    def perf_report(self, name, data, what):
        """perf report of data into bench/results/run-STAMP-perf-NAME.txt: by process and dso,
        by thread, then by dso and symbol (--no-children: where the samples were taken)."""
        out = os.path.join(BENCH, "results", f"run-{self.stamp}-perf-{name}.txt")
        parts = [f"# run-{self.stamp}: {what}\n"]
        for sort in ("comm,dso", "pid", "dso,sym"):
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", sort, "-g", "none", "--percent-limit", "0.4"],
                                 capture_output=True, text=True)
            parts.append(f"$ perf report --no-children --sort {sort} -g none --percent-limit 0.4\n"
                         + "\n".join(line for line in rep.stdout.splitlines()
                                     if line.strip() and not line.startswith("#")) + "\n")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write("\n".join(parts))
        self.notes.setdefault("profiles", {})[name] = os.path.relpath(out, ROOT)
        log(f"profile {name}: {out}")

    def profile(self, name, pids, run):
        """perf record -g -p PIDS while run() runs, then perf report (--no-children, by dso and
        symbol; by process and dso too) into bench/results/run-STAMP-perf-NAME.txt. The runs
        profiled are extra ones after the measured rounds: perf's cost stays out of the
        medians. Returns what run() returned."""
        data = os.path.join(self.tmp, f"perf-{name}.data")
        rec = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p",
                                ",".join(str(p) for p in pids)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            result = run()
        finally:
            rec.send_signal(signal.SIGINT)
            rec.communicate(timeout=120)
        rps = ", ".join(f"{r['rps']:.0f} req/s, {r['errors']} errors" for r in result)
        self.perf_report(name, data, f"perf record -g -p {','.join(map(str, pids))} during an "
                                     f"extra run of {name} ({rps} under perf)")
        return result

    def profile_stores(self, servers, pg, plan):
        """One more run, under perf, of each measurement whose target is missed or near (within
        20%; for memory's StopFlow against the canned limit, below 0.9, the gRPC door's own
        target): appflowd's process, and for PostgreSQL every server process as well."""
        med = store_medians(self.store_rows)
        todo = []
        for level in ("1x1", "4x32"):
            c, m = (int(x) for x in level.split("x"))
            r = ratio(med.get(("grpc", "mix", c, m, "memory")), med.get(("grpc", "mix", c, m,
                                                                         "canned")))
            if r is None or r < 0.9:
                todo += [(f"grpc mix {level}", "memory"), (f"grpc mix {level}", "canned")]
        # SQLite's mutations against memory's: the target is the gRPC door's at 4x32; the AWS
        # door's toggle at 16 connections is held to the same.
        for door, c, m, what in (("grpc", 4, 32, "grpc toggle 4x32"),
                                 ("http", 16, 1, "http toggle 16")):
            r = ratio(med.get((door, "toggle", c, m, "sqlite")),
                      med.get((door, "toggle", c, m, "memory")))
            if r is None or r < STORE_TARGETS["sqlite_toggle"] * 1.2:
                todo += [(what, "sqlite"), (what, "memory")]
        pgb = med.get(("sql", "toggle-sql", STORE_CONNECTIONS, 1, "pgbench"))
        for level in ("4x32", "16x64"):
            c, m = (int(x) for x in level.split("x"))
            r = ratio(med.get(("grpc", "toggle", c, m, "postgresql")), pgb)
            if r is None or r < STORE_TARGETS["pg_vs_pgbench"] * 1.2:
                todo += [(f"grpc toggle {level}", "postgresql"), ("pgbench toggle-sql",
                                                                   "postgresql")]
        runs = {(what, store): run for what, store, run in plan}
        for what, store in dict.fromkeys(todo):  # in order, once each
            if what.startswith("pgbench"):
                pids = postgres_pids(pg)
            else:
                pids = [servers[store].proc.pid]
                if store == "postgresql":
                    pids += postgres_pids(pg)
            name = f"{store}-{what.replace(' ', '-')}"
            for r in self.profile(name, pids, runs[(what, store)]):
                r.update(suite="stores-profiled", store=store, round=0)
                self.profiled_rows.append(r)

    def stores_plan(self, servers, pg, script, dur):
        """(what, store, run) in the order one round runs them."""
        plan = []

        def counted(store, run):
            """For PostgreSQL: what the database did meanwhile (pg_counters)."""
            if store != "postgresql":
                return run

            def wrapped():
                before = pg_counters(pg)
                rows = run()
                after = pg_counters(pg)
                for r in rows:
                    r["pg"] = {k: after[k] - before[k] for k in after}
                return rows
            return wrapped

        def grpc(store, scenario, rpc, level):
            target = "canned" if store == "canned" else "appflowd"
            return counted(store, lambda: self.mix_rows(
                target, servers[store].port, scenario=scenario, levels=level, duration=dur,
                rpc=rpc))

        def http(store, scenario):
            return counted(store, lambda: self.wrk_rows(
                "appflowd", servers[store].http_port, scenario, conns="16", duration=dur))

        for scenario, rpc in (("mix", "stop"), ("toggle", "toggle")):
            for level in ("1x1", "4x32"):
                for store in STORES + (("canned",) if rpc == "stop" else ()):
                    plan.append((f"grpc {scenario} {level}", store,
                                 grpc(store, scenario, rpc, level)))
        # PostgreSQL's toggle against its limit: pgbench, same SQL, same client count.
        plan.append(("grpc toggle 16x64", "postgresql",
                     grpc("postgresql", "toggle", "toggle", "16x64")))
        plan.append(("pgbench toggle-sql", "postgresql",
                     counted("postgresql", lambda: [self.pgbench(pg, script, dur)])))
        for level in ("1x1", "4x32"):
            for store in STORES:
                plan.append((f"grpc describe {level}", store,
                             grpc(store, "describe", "describe", level)))
        for scenario in ("toggle", "describe-mix"):
            for store in STORES:
                plan.append((f"http {scenario} 16", store, http(store, scenario)))
        return plan

    def pgbench_script(self):
        r"""What appflowd's PostgreSQL store sends for a StopFlow (or StartFlow) that changes a
        flow: the SELECT of the whole row, then the UPDATE naming the version read, both
        prepared. The status alternates between Active (1) and Suspended (6), so every UPDATE
        changes its row as appflowd's toggle does. pgbench cannot format a name, so the SELECT
        builds it with lpad from the row number; the UPDATE takes the name and version the
        SELECT returned (\gset). pgbench's \gset reads NULL as an empty string, so after the
        first UPDATE the empty columns hold '' rather than NULL."""
        path = os.path.join(self.tmp, "pgbench-toggle.sql")
        cols = ("name, version, trigger_type, status, create_status, created_ms, updated_ms, "
                "description, source_connector, destination_connector, create_token, tags, "
                "runs, created_by, updated_by, status_message, source_profile, "
                "destination_profile, definition")
        with open(path, "w") as f:
            f.write(
                f"\\set n :client_id + {STORE_CONNECTIONS} * random(0, "
                f"{PGBENCH_ROWS // STORE_CONNECTIONS - 1})\n"
                f"SELECT {cols} FROM appflowd_flows WHERE name = 'bench_' || lpad(:n, 5, '0')"
                " \\gset\n"
                "\\set new_status 7 - :status\n"
                "UPDATE appflowd_flows SET trigger_type = :trigger_type, status = :new_status, "
                "create_status = :create_status, created_ms = :created_ms, "
                "updated_ms = :updated_ms, description = :description, "
                "source_connector = :source_connector, "
                "destination_connector = :destination_connector, create_token = :create_token, "
                "tags = :tags, runs = :runs, created_by = :created_by, "
                "updated_by = :updated_by, status_message = :status_message, "
                "source_profile = :source_profile, "
                "destination_profile = :destination_profile, version = version + 1 "
                "WHERE name = :name AND version = :version\n")
        return path

    def pgbench_argv(self, pg, script, dur, log_prefix):
        argv = [PGBENCH, "-n", "-M", "prepared", "-c", str(STORE_CONNECTIONS), "-j", "2", "-T",
                dur, "-f", script]
        if log_prefix:
            argv += ["-l", "--log-prefix", log_prefix]
        return argv + ["-d", pg.uri(options="-csearch_path=pgbench")]

    def pgbench(self, pg, script, dur):
        """One pgbench run as a row of FORMAT.md: every transaction is one SELECT and one
        UPDATE; the sum of the table's versions must rise by one per transaction (each UPDATE
        found its row at the version read), or the shortfall counts as errors."""
        logdir = tempfile.mkdtemp(prefix="pgbench-", dir=self.tmp)
        versions = "SELECT sum(version) FROM pgbench.appflowd_flows;"
        before = int(pg.psql(versions))
        argv = self.pgbench_argv(pg, script, dur, os.path.join(logdir, "tx"))
        log(" ".join(argv))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=logdir)
        changed = int(pg.psql(versions)) - before

        def field(pattern):
            m = re.search(pattern, out.stdout)
            return m.group(1) if m else None
        done, failed = field(r"actually processed: (\d+)"), field(r"failed transactions: (\d+)")
        tps = field(r"tps = ([\d.]+) \(without initial connection time\)")
        if out.returncode != 0 or done is None or tps is None:
            log(f"pgbench failed ({out.returncode}): {out.stderr.strip()[-500:]}")
            return {"door": "sql", "target": "pgbench", "scenario": "toggle-sql",
                    "conns": STORE_CONNECTIONS, "streams": 1, "requests": 0, "seconds": 0,
                    "rps": 0.0, "p50_ms": 0, "p99_ms": 0, "ok": 0, "errors": 1,
                    "verified": f"pgbench exited {out.returncode}"}
        done, failed, tps = int(done), int(failed or 0), float(tps)
        lat = []
        for name in os.listdir(logdir):
            with open(os.path.join(logdir, name)) as f:
                lat += [int(line.split()[2]) for line in f if line.strip()]
        lat.sort()
        errors = failed + max(0, done - changed)
        seconds = done / tps if tps > 0 else float(dur)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] / 1000, 3) if lat else 0.0
        return {"door": "sql", "target": "pgbench", "scenario": "toggle-sql",
                "conns": STORE_CONNECTIONS, "streams": 1, "requests": done,
                "seconds": round(seconds, 3), "rps": round((done - errors) / seconds, 1),
                "p50_ms": pct(0.5), "p99_ms": pct(0.99), "ok": done - errors, "errors": errors,
                "verified": f"pgbench: {done} transactions, {failed} failed; the table's "
                            f"versions rose by {changed} (one per UPDATE that changed its row; "
                            f"a few more when -T cut transactions short after their UPDATE)"}

    def sqlite_million(self):
        """1,000,000 flows in SQLite: (a) a fresh file seeded from the 1M seed file, (b) a
        restart on that file without a seed file, (c) a restart with the seed file again (every
        flow kept). Seconds to the start-up line, VmRSS and VmHWM right after it."""
        big = os.path.join(self.tmp, "flows-1m.json")
        if not os.path.exists(big):
            write_seed(big, MILLION_NAMES)
        db = os.path.join(self.tmp, "flows-1m.db")
        out = {}
        steps = (("a_fresh_seeded", big), ("b_restart", None), ("c_restart_seeded", big))
        for step, seed in steps:
            srv = self.appflowd(seed, store="sqlite:" + db)
            try:
                out[step] = {"startup_s": round(srv.startup_seconds, 3),
                             "VmRSS_kib": srv.rss_kib("VmRSS"), "VmHWM_kib": srv.rss_kib("VmHWM")}
            finally:
                srv.stop()
            log(f"sqlite 1M {step}: {out[step]}")
        out["db_bytes"] = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
        self.notes["sqlite_1m"] = out
        if self.perf != "auto":
            return
        # Start-ups that miss or near a target, again under perf (a fresh file for the first).
        for step, seed in steps:
            x = out[step]
            if (x["startup_s"] < STORE_TARGETS["startup_1m_s"] * 0.8
                    and x["VmRSS_kib"] / 1024 < STORE_TARGETS["rss_1m_mib"] * 0.8):
                continue
            path = db if step != "a_fresh_seeded" else os.path.join(self.tmp, "flows-1m-perf.db")
            self.profile_startup(f"sqlite-1m-{step}", seed, path)

def read_text(path):
    with open(path) as f:
        return f.read()

def pg_counters(pg):
    """Cluster-wide, so far: transaction ids handed out (one per writing transaction; exact),
    WAL bytes (exact), and WAL syncs, i.e. fsyncs (pg_stat_wal: backends report it lazily, so
    a run's count is close, not exact)."""
    out = pg.psql("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
                  "pg_current_wal_lsn() - '0/0'::pg_lsn, wal_sync FROM pg_stat_wal;")
    return dict(zip(("xids", "wal_bytes", "wal_syncs"),
                    (int(float(x)) for x in out.strip().split("|"))))

def postgres_pids(pg):
    """The postmaster and every process it forked (backends, WAL writer, checkpointer...)."""
    top = pg.pid()
    pids = [top]
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if entry.isdigit() and len(fields) > 1 and int(fields[1]) == top:
            pids.append(int(entry))
    return pids

def version(argv, pattern):
    """The first match of pattern in a tool's version output, or None."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else None


def machine(build):
    """Where and with what this run was measured, recorded beside its numbers."""
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"appflowd": version([os.path.join(build, "appflowd"), "--version"], r"(\S+ \S+)"),
            "cpus": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(),
            "h2load": version(["h2load", "--version"], r"nghttp2/([\d.]+)"),
            "wrk": version(["wrk", "-v"], r"wrk (?:debian/)?([\d.]+)"),
            "nginx": version(["nginx", "-v"], r"nginx/([\d.]+)"),
            "go": version(["go", "version"], r"go version go(\S+)"),
            "debian": {pkg: version(["dpkg-query", "-W", "-f=${Version}", pkg], r"(\S+)")
                       for pkg in ("libgrpc-dev", "libmicrohttpd-dev", "libjansson-dev",
                                   "libprotobuf-c-dev", "gcc-12", "libsqlite3-0", "libpq5",
                                   "postgresql-15", "golang-google-grpc-dev",
                                   "golang-google-protobuf-dev")}}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def table(rows):
    out = ["| door | target | scenario | conns x streams | req/s | p50 ms | p99 ms | ok | errors |",
           "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['door']} | {r['target']} | {r['scenario']} | {r['conns']}x{r['streams']}"
                   f" | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['ok']} |"
                   f" {r['errors']} |")
    return "\n".join(out)


def connections_report(rows):
    """Markdown: each door's new-call latency, nothing held and held, against the target."""
    out = ["| door | held connections | calls | p50 ms | p99 ms | max ms | errors | p99 target |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        met = "met" if r["p99_ms"] < HELD_P99_TARGET_MS and r["errors"] == 0 else "NOT met"
        out.append(f"| {r['door']} | {r['conns']:,} | {r['requests']} | {r['p50_ms']:.2f} |"
                   f" {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['errors']} |"
                   f" {met} (< {HELD_P99_TARGET_MS} ms) |")
    return "\n".join(out)


def ratios(rows):
    """appflowd over each other target, for the same door, scenario family and level."""
    def key(r):
        return (r["door"], r["scenario"], r["conns"], r["streams"])
    by = {}
    for r in rows:
        by.setdefault(key(r), {})[(r["target"], r["scenario"])] = r
    out = ["| door | level | appflowd scenario | vs | ratio |", "|---|---|---|---|---:|"]
    for k, group in sorted(by.items()):
        mine = [(s, r) for (t, s), r in group.items() if t == "appflowd"]
        for s, r in mine:
            for (t, s2), other in group.items():
                if t != "appflowd" and other["rps"] > 0 and r["errors"] == 0:
                    out.append(f"| {k[0]} | {k[2]}x{k[3]} | {s} | {t} ({s2}) |"
                               f" {r['rps'] / other['rps']:.2f} |")
    # Scale: the same scenario with 1,000,000 flows loaded against 10.
    scen = {(r["scenario"], r["conns"], r["streams"]): r for r in rows if r["target"] == "appflowd"}
    for (name, c, m), r in sorted(scen.items()):
        if name.endswith("-1m") and (name[:-3] + "-10", c, m) in scen:
            small = scen[(name[:-3] + "-10", c, m)]
            if small["rps"] > 0:
                out.append(f"| grpc | {c}x{m} | {name} | appflowd ({small['scenario']}) |"
                           f" {r['rps'] / small['rps']:.2f} |")
    return "\n".join(out)


def peers_report(rows):
    """Markdown: appflowd against each peer that ran, per door, scenario and level: req/s
    (p99 ms) of each, and appflowd / peer. A run with errors gives no ratio."""
    def rate(r):
        if r is None:
            return ""
        flag = f" **{r['errors']} errors**" if r["errors"] else ""
        return f"{r['rps']:,.0f} ({r['p99_ms']:.2f}){flag}"

    by = {(r["door"], r["target"], r["scenario"], r["conns"], r["streams"]): r for r in rows}
    out = []
    for door, peers in PEERS.items():
        ran = [p for p in peers if any(k[0] == door and k[1] == p for k in by)]
        if not ran:
            continue
        order = ("success", "notfound", "mix", "describe")
        keys = sorted({k[2:] for k in by if k[0] == door and k[1] in ran},
                      key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0],
                                     k[1] * k[2]))
        out += [f"{door}: req/s (p99 ms)", "",
                "| scenario | level | appflowd | " + " | ".join(f"{p} | appflowd / {p}"
                                                             for p in ran) + " |",
                "|---|---|---:|" + "---:|---:|" * len(ran)]
        for scen, c, m in keys:
            mine = by.get((door, "appflowd", scen, c, m))
            cells = []
            for p in ran:
                other = by.get((door, p, scen, c, m))
                over = ("" if mine is None or other is None else
                        f"{mine['rps'] / other['rps']:.2f}" if not mine["errors"]
                        and not other["errors"] and other["rps"] > 0 else "n/a")
                cells += [rate(other), over]
            out.append(f"| {scen} | {c}x{m} | {rate(mine)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip("\n")


# ---- the stores suite's report ----

EARLIER_RUN = "run-20261125-004240"  # RESULTS.md's gRPC table: memory StopFlow before stores
STORE_TARGETS = {"sqlite_toggle": 0.5, "pg_vs_pgbench": 0.5, "startup_1m_s": 3.0,
                 "rss_1m_mib": 250}


def store_medians(rows):
    """{(door, scenario, conns, streams, store or target): row of medians over the rounds};
    ok and errors are summed, `rounds` says how many rows went in, `rps_all` lists them."""
    groups = {}
    for r in rows:
        who = r["target"] if r["target"] in ("canned", "pgbench") else r["store"]
        groups.setdefault((r["door"], r["scenario"], r["conns"], r["streams"], who), []).append(r)
    out = {}
    for k, rs in groups.items():
        out[k] = {"rps": statistics.median(r["rps"] for r in rs),
                  "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                  "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                  "ok": sum(r["ok"] for r in rs), "errors": sum(r["errors"] for r in rs),
                  "rounds": len(rs), "rps_all": [round(r["rps"]) for r in rs],
                  "by_round": {r["round"]: r["rps"] if r["errors"] == 0 else None for r in rs}}
    return out


def cell(m):
    if m is None:
        return ""
    flag = f" **{m['errors']} errors**" if m["errors"] else ""
    return f"{m['rps']:,.0f} ({m['p50_ms']:.2f} / {m['p99_ms']:.2f}){flag}"


def per_round(a, b):
    """a's rate over b's in each round both ran without errors: measured minutes apart at
    most, so the machine's drift (this shared machine's rates move by tens of per cent from
    one minute to the next) cancels out in each of them."""
    if a is None or b is None:
        return []
    return [a["by_round"][n] / b["by_round"][n] for n in sorted(a["by_round"])
            if a["by_round"][n] and b["by_round"].get(n)]


def ratio(a, b):
    """The median of a over b per round (per_round), or None when there is no round in which
    both ran without errors. The targets are judged on this."""
    x = per_round(a, b)
    return statistics.median(x) if x else None


def ratio_of_medians(a, b):
    if a is None or b is None or a["errors"] or b["errors"] or b["rps"] <= 0:
        return None
    return a["rps"] / b["rps"]


def ratio_detail(a, b):
    """The ratio's median, then its rounds and the ratio of the medians, for the text."""
    x = per_round(a, b)
    m = ratio_of_medians(a, b)
    return (f"per round {', '.join(f'{v:.2f}' for v in x) or 'none without errors'}; "
            f"ratio of the medians {fmt_ratio(m)}")


def fmt_ratio(x, target=None):
    if x is None:
        return "n/a"
    if target is None:
        return f"{x:.2f}"
    return f"{x:.2f} ({'met' if x >= target else 'NOT met'}, target >= {target})"


def earlier_mix():
    """appflowd's and the canned limit's mix rows from EARLIER_RUN, by level."""
    path = os.path.join(BENCH, "results", EARLIER_RUN + ".jsonl")
    out = {}
    try:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("scenario") == "mix" and r.get("door") == "grpc":
                    out[(r["target"], f"{r['conns']}x{r['streams']}")] = r["rps"]
    except OSError:
        pass
    return out


def stores_report(rows, notes):
    """Markdown: medians per store, each store over memory, and the targets."""
    med = store_medians(rows)
    st = notes.get("stores", {})
    lines = [f"### Stores: medians of {st.get('rounds')} rounds of {st.get('seconds')} s "
             "(req/s, p50 / p99 ms)", "",
             "Ratios are medians of the per-round ratios (each pair measured within a minute "
             "of each other).", "",
             "| door | scenario | level | memory | sqlite | postgresql | sqlite / memory |"
             " postgresql / memory | canned limit |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({k[:4] for k in med if k[4] in STORES},
                  key=lambda k: (k[0], ["mix", "toggle", "describe", "describe-mix"].index(k[1])
                                 if k[1] in ("mix", "toggle", "describe", "describe-mix") else 9,
                                 k[2] * k[3]))
    for k in keys:
        m = {s: med.get(k + (s,)) for s in STORES + ("canned",)}
        lines.append(f"| {k[0]} | {k[1]} | {k[2]}x{k[3]} | {cell(m['memory'])} |"
                     f" {cell(m['sqlite'])} | {cell(m['postgresql'])} |"
                     f" {fmt_ratio(ratio(m['sqlite'], m['memory']))} |"
                     f" {fmt_ratio(ratio(m['postgresql'], m['memory']))} | {cell(m['canned'])} |")
    pgb = med.get(("sql", "toggle-sql", STORE_CONNECTIONS, 1, "pgbench"))
    lines += ["", f"pgbench (same SELECT and UPDATE, -M prepared, -c {STORE_CONNECTIONS} -j 2, "
              f"fsync on): {cell(pgb)} transactions/s", ""]
    # What PostgreSQL did per writing transaction, for appflowd's toggle and pgbench.
    per = {}
    for r in rows:
        if "pg" in r and r["pg"]["xids"] > 0 and r["scenario"] in ("toggle", "toggle-sql"):
            k = (r["door"], r["scenario"], f"{r['conns']}x{r['streams']}")
            per.setdefault(k, []).append((r["pg"]["wal_syncs"] / r["pg"]["xids"],
                                          r["pg"]["wal_bytes"] / r["pg"]["xids"]))
    if per:
        lines.append("PostgreSQL per writing transaction (medians over the rounds; WAL syncs "
                     "from pg_stat_wal, which backends report lazily): " + "; ".join(
                         f"{d} {sc} {lv}: {statistics.median(x[0] for x in v):.2f} WAL syncs, "
                         f"{statistics.median(x[1] for x in v):.0f} WAL bytes"
                         for (d, sc, lv), v in sorted(per.items())))
        lines.append("")
    if notes.get("profiles"):
        lines.append("Profiles (perf, extra runs after the rounds): " + "; ".join(
            f"{k}: {v}" for k, v in notes["profiles"].items()))
        lines.append("")
    lines += ["### Stores: targets", ""]
    # Memory's StopFlow: against the canned limit in this run, and in the earlier run.
    earlier = earlier_mix()
    for level in ("1x1", "4x32"):
        c, m = (int(x) for x in level.split("x"))
        mem, can = med.get(("grpc", "mix", c, m, "memory")), med.get(("grpc", "mix", c, m,
                                                                       "canned"))
        e_mem, e_can = earlier.get(("appflowd", level)), earlier.get(("canned", level))
        then = (f"{EARLIER_RUN}: {e_mem:,.0f} / {e_can:,.0f} = {e_mem / e_can:.2f}"
                if e_mem and e_can else f"{EARLIER_RUN}: not found")
        lines.append(f"- memory StopFlow mix (10k flows) {level} over the canned limit, this run:"
                     f" {cell(mem)} / {cell(can)}: {fmt_ratio(ratio(mem, can))} "
                     f"({ratio_detail(mem, can)}); {then}")
    for door, c, m in (("grpc", 4, 32), ("http", 16, 1)):
        tog = {s: med.get((door, "toggle", c, m, s)) for s in STORES}
        x = ratio(tog["sqlite"], tog["memory"])
        lines.append(f"- SQLite toggle / memory toggle, {door} {c}x{m}: "
                     f"{fmt_ratio(x, STORE_TARGETS['sqlite_toggle'])}"
                     f" ({ratio_detail(tog['sqlite'], tog['memory'])})")
    for c, m in ((4, 32), (16, 64)):
        mine = med.get(("grpc", "toggle", c, m, "postgresql"))
        lines.append(f"- PostgreSQL toggle at {c}x{m} / pgbench: {cell(mine)} / {cell(pgb)}: "
                     f"{fmt_ratio(ratio(mine, pgb), STORE_TARGETS['pg_vs_pgbench'])} "
                     f"({ratio_detail(mine, pgb)})")
    big = notes.get("sqlite_1m")
    if big:
        for step in ("a_fresh_seeded", "b_restart", "c_restart_seeded"):
            x = big[step]
            ok = (x["startup_s"] <= STORE_TARGETS["startup_1m_s"]
                  and x["VmRSS_kib"] / 1024 <= STORE_TARGETS["rss_1m_mib"])
            lines.append(f"- 1,000,000 flows in SQLite, {step}: start-up {x['startup_s']:.2f} s, "
                         f"VmRSS {x['VmRSS_kib'] / 1024:.0f} MiB, VmHWM "
                         f"{x['VmHWM_kib'] / 1024:.0f} MiB ({'met' if ok else 'NOT met'}: "
                         f"<= {STORE_TARGETS['startup_1m_s']} s, <= "
                         f"{STORE_TARGETS['rss_1m_mib']} MB)")
    lines += ["", "Every round's rate, for the spread: " + "; ".join(
        f"{k[0]} {k[1]} {k[2]}x{k[3]} {k[4]} {v['rps_all']}" for k, v in sorted(med.items()))]
    return "\n".join(lines)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    ap.add_argument("--only", default="grpc,http,lifecycle,scale,stores,connections")
    ap.add_argument("--perf", choices=("auto", "none"), default="auto",
                    help="stores: profile what misses or nears a target, after the rounds")
    ap.add_argument("--report", metavar="JSONL",
                    help="print the stores report of an earlier run's .jsonl, and run nothing")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        notes = next((x["notes"] for x in lines if "notes" in x), {})
        print(stores_report([r for r in lines if r.get("suite") == "stores"], notes))
        return
    b = Bench(os.path.abspath(args.build), args.quick, time.strftime("%Y%m%d-%H%M%S"),
              args.perf)
    seed = os.path.join(b.tmp, "flows-10k.json")
    write_seed(seed, MIX_NAMES)
    suites = args.only.split(",")
    try:
        run_suites(b, suites, seed)
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)  # seed files, databases, perf data: GBs


def run_suites(b, suites, seed):
    if "grpc" in suites:
        b.grpc(seed)
    if "http" in suites:
        b.http(seed)
    if "lifecycle" in suites:
        b.lifecycle(seed)
    if "scale" in suites:
        b.scale()
    if "stores" in suites:
        b.stores(seed)
    if "connections" in suites:
        b.connections(seed)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    base = os.path.join(BENCH, "results", f"run-{b.stamp}")
    b.notes["machine"] = machine(b.build)  # in the .jsonl too, as FORMAT.md says
    with open(base + ".jsonl", "w") as f:
        for r in b.rows + b.store_rows + b.profiled_rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"notes": b.notes}) + "\n")
    report = ""
    if b.rows:
        report += f"{table(b.rows)}\n\n{ratios(b.rows)}\n\n"
        peers = peers_report(b.rows)
        if peers:
            report += f"### appflowd and the peers\n\n{peers}\n\n"
    if b.store_rows:
        report += f"{stores_report(b.store_rows, b.notes)}\n\n"
    held = [r for r in b.rows if "max_ms" in r]
    if held:
        report += f"{connections_report(held)}\n\n"
    report += f"notes: {json.dumps(b.notes)}\n"
    with open(base + ".md", "w") as f:
        f.write(report)
    print(report)
    log(f"results in {base}.jsonl and {base}.md")


if __name__ == "__main__":
    main()
