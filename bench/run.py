#!/usr/bin/python3
"""make bench: every benchmark, one after another, on loopback; results as ratios in one run.

Starts each server (appflowd, the canned C-core limit, nginx, the Python and Node peers) on a
free port, drives it with the same driver as the others (h2load and grpcload for gRPC, wrk for
HTTP; see bench/FORMAT.md), stops it by PID, and writes every measurement as a JSON line to
bench/results/run-<time>.jsonl plus a Markdown table (bench/results/run-<time>.md).

The lifecycle suite measures DescribeFlow, ListFlows, StartFlow and a CreateFlow+DeleteFlow
churn on both doors against limits that answer the same bytes: appflowd's replies are captured
first (bench/lifecycle.py), then bench/canned_server and nginx serve them.

usage: bench/run.py BUILD_DIR [--quick] [--only grpc,http,scale,lifecycle]
"""
import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

import lifecycle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PY = "/usr/bin/python3"
NODE = "node"

SUCCESS_FLOW = "bench_suspended"
MIX_NAMES = "bench_:10000"
MILLION_NAMES = "bench_:1000000"


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
        deadline = time.monotonic() + 120
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
    def __init__(self, build, quick):
        self.build = build
        self.quick = quick
        self.rows = []
        self.notes = {}
        self.tmp = tempfile.mkdtemp(prefix="appflowd-bench-")
        self.levels = "1x1,4x32,16x64"
        self.duration = "3" if quick else "10"
        self.peer_duration = "3" if quick else "5"
        # The lifecycle adds 32 runs: shorter ones keep `make bench` within a few minutes more.
        self.life_duration = "2" if quick else "5"
        self.life_levels = "1x1,4x32"
        self.life_conns = "1,16"

    def add(self, rows, **extra):
        for r in rows:
            r.update(extra)
            self.rows.append(r)

    # ---- servers ----

    def appflowd(self, seed, http=False):
        argv = [os.path.join(self.build, "appflowd"), "--grpc-listen", "127.0.0.1:0", "--flows",
                seed, "--log-level", "warn", "--threads", "2"]
        if http:
            argv += ["--http-listen", "127.0.0.1:0", "--http-threads", "2"]
        return Server(argv, r" port=(\d+)(?: http=\S+ http_port=(\d+))?", "appflowd")

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

    def mix(self, target, port, names=MIX_NAMES, scenario="mix", levels=None, duration=None):
        self.add(run_driver([
            PY, os.path.join(BENCH, "grpc_mix.py"), "--grpcload",
            os.path.join(self.build, "bench", "grpcload"), "--target", target, "--port", str(port),
            "--levels", levels or self.levels, "--duration", duration or self.duration,
            "--names", names, "--scenario", scenario]))

    def wrk(self, target, port, scenario, conns="1,16,64", duration=None, extra=()):
        self.add(run_driver([
            PY, os.path.join(BENCH, "http_wrk.py"), "--target", target, "--port", str(port),
            "--scenario", scenario, "--conns", conns, "--duration", duration or self.duration]
            + list(extra)))

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
            "debian": {pkg: version(["dpkg-query", "-W", "-f=${Version}", pkg], r"(\S+)")
                       for pkg in ("libgrpc-dev", "libmicrohttpd-dev", "libjansson-dev",
                                   "libprotobuf-c-dev", "gcc-12")}}


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    ap.add_argument("--only", default="grpc,http,lifecycle,scale")
    args = ap.parse_args()
    b = Bench(os.path.abspath(args.build), args.quick)
    seed = os.path.join(b.tmp, "flows-10k.json")
    write_seed(seed, MIX_NAMES)
    suites = args.only.split(",")
    if "grpc" in suites:
        b.grpc(seed)
    if "http" in suites:
        b.http(seed)
    if "lifecycle" in suites:
        b.lifecycle(seed)
    if "scale" in suites:
        b.scale()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    base = os.path.join(BENCH, "results", f"run-{stamp}")
    with open(base + ".jsonl", "w") as f:
        for r in b.rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"notes": b.notes}) + "\n")
    b.notes["machine"] = machine(b.build)
    report = f"{table(b.rows)}\n\n{ratios(b.rows)}\n\nnotes: {json.dumps(b.notes)}\n"
    with open(base + ".md", "w") as f:
        f.write(report)
    print(report)
    log(f"results in {base}.jsonl and {base}.md")


if __name__ == "__main__":
    main()
