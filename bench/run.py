#!/usr/bin/python3
"""make bench: every benchmark, one after another, on loopback; results as ratios in one run.

Starts each server (appflowd, the canned C-core limit, nginx, the Python and Node peers) on a
free port, drives it with the same driver as the others (h2load and grpcload for gRPC, wrk for
HTTP; see bench/FORMAT.md), stops it by PID, and writes every measurement as a JSON line to
bench/results/run-<time>.jsonl plus a Markdown table (bench/results/run-<time>.md).

usage: bench/run.py BUILD_DIR [--quick] [--only grpc,http,scale]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

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

    def canned(self, answer="ok"):
        return Server([os.path.join(self.build, "bench", "canned_server"), "--listen",
                       "127.0.0.1:0", "--threads", "2", "--answer", answer], r"port=(\d+)",
                      "canned")

    def peer(self, script, seed, name):
        runner = PY if script.endswith(".py") else NODE
        return Server([runner, os.path.join(BENCH, "peers", script), "--port", "0", "--flows",
                       seed], r"port=(\d+)", name)

    def nginx(self):
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(BENCH, "nginx.conf")) as f:
            conf = f.read()
        port = free_port()
        conf = conf.replace("@DIR@", d).replace("@PORT@", str(port))
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

    def h2load(self, target, port, scenario, levels=None, duration=None, flow=None):
        argv = [PY, os.path.join(BENCH, "grpc_h2load.py"), "--target", target, "--port", str(port),
                "--scenario", scenario, "--levels", levels or self.levels,
                "--duration", duration or self.duration]
        if flow:
            argv += ["--flow", flow]
        self.add(run_driver(argv))

    def mix(self, target, port, names=MIX_NAMES, scenario="mix", levels=None, duration=None):
        self.add(run_driver([
            PY, os.path.join(BENCH, "grpc_mix.py"), "--grpcload",
            os.path.join(self.build, "bench", "grpcload"), "--target", target, "--port", str(port),
            "--levels", levels or self.levels, "--duration", duration or self.duration,
            "--names", names, "--scenario", scenario]))

    def wrk(self, target, port, scenario, conns="1,16,64", duration=None):
        self.add(run_driver([
            PY, os.path.join(BENCH, "http_wrk.py"), "--target", target, "--port", str(port),
            "--scenario", scenario, "--conns", conns, "--duration", duration or self.duration]))

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
    ap.add_argument("--only", default="grpc,http,scale")
    args = ap.parse_args()
    b = Bench(os.path.abspath(args.build), args.quick)
    seed = os.path.join(b.tmp, "flows-10k.json")
    write_seed(seed, MIX_NAMES)
    suites = args.only.split(",")
    if "grpc" in suites:
        b.grpc(seed)
    if "http" in suites:
        b.http(seed)
    if "scale" in suites:
        b.scale()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    base = os.path.join(BENCH, "results", f"run-{stamp}")
    with open(base + ".jsonl", "w") as f:
        for r in b.rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"notes": b.notes}) + "\n")
    report = f"{table(b.rows)}\n\n{ratios(b.rows)}\n\nscale: {json.dumps(b.notes)}\n"
    with open(base + ".md", "w") as f:
        f.write(report)
    print(report)
    log(f"results in {base}.jsonl and {base}.md")


if __name__ == "__main__":
    main()
