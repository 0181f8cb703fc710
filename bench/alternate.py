#!/usr/bin/python3
"""Alternating comparison of appflowd with its limits and peers, with CPU time per request.

`make bench` (bench/run.py) drives each server through every level before it starts the next,
so on a shared machine a change of load between them moves the ratios. This runs the same
drivers (bench/grpc_h2load.py, bench/grpc_mix.py, bench/http_wrk.py) with every server of a
scenario up at once and one driven at a time: round after round, level after level, each server
in turn (the order rotated each round, so none always goes first), and reports the median of
the rounds for each, the ratios appflowd / each other server, and each server's CPU time (user +
system of the process and its children, from /proc) per answered request, which moves less with
the machine's load than requests per second do. No warm-up is measured apart: the drivers run
without one, and the first round's figures are only one of the medians' inputs.

  grpc  StopFlow success, not-found and the mix over 10,000 flows at 1x1, 4x32, 16x64:
        appflowd, the canned C-core server, grpc-go
  http  StopFlow success at 1, 16, 64 connections: appflowd, nginx's fixed answer, Go net/http
  lifecycle  DescribeFlow, ListFlows (100 a page), StartFlow (a new clientToken each call) and
        CreateFlow+DeleteFlow churn, on gRPC at 1x1 and 4x32 against the canned C-core server
        and on the AWS door at 1 and 16 connections against nginx, both answering the bytes
        appflowd answered the same request with (bench/lifecycle.py captures them first)

  operations  the operations this round's issues added, one fixed request each
        (bench/lifecycle.py's operations(): DescribeFlowExecutionRecords, DescribeConnectors,
        DescribeConnectorProfiles, ListConnectorEntities, ListTagsForResource, TagResource,
        UpdateFlow), at the lifecycle's levels against the same limits answering appflowd's
        captured bytes

With --baseline OTHER_BUILD_DIR, the lifecycle suite also runs OTHER_BUILD_DIR's appflowd
(target "baseline", made and seeded the same way) in the same rotation: "appflowd / it" on its
rows is a change's effect, old and new binaries measured side by side.

usage: bench/alternate.py BUILD_DIR [--suite grpc,http,lifecycle,operations] [--rounds 3] [--duration 5]
                          [--baseline OTHER_BUILD_DIR] [--scenarios churn,start,...]
Writes bench/results/alternate-<time>.jsonl and .md (each round's rows, then the medians).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import lifecycle
import run

GRPC_TARGETS = ("appflowd", "canned", "grpc-go")
LIFECYCLE_SCENARIOS = ("describe", "list", "start", "churn")
APPFLOWD_TARGETS = ("appflowd", "baseline")  # the ones whose AWS door is their http_port
HTTP_TARGETS = ("appflowd", "nginx", "go-net-http")


def cpu_seconds(pid):
    """User + system time of pid and of its direct children (nginx's workers), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # a child gone between listing and reading
            return 0, None
        return int(fields[11]) + int(fields[12]), int(fields[1])

    total = own(pid)[0]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            t, ppid = own(entry)
            if ppid == pid:
                total += t
    return total / tick


def measure(srv, drive):
    """Runs drive() (a list of driver rows) against srv; adds cpu_us_per_request to each."""
    before = cpu_seconds(srv.proc.pid)
    rows = drive()
    spent = cpu_seconds(srv.proc.pid) - before
    answered = sum(r["requests"] for r in rows)
    for r in rows:  # one row per driver call here: one level at a time
        r["cpu_us_per_request"] = round(spent * 1e6 / answered, 2) if answered else None
    return rows


class Alternate:
    def __init__(self, b, rounds, duration, baseline=None, scenarios=None):
        self.b, self.rounds, self.duration, self.baseline = b, rounds, duration, baseline
        self.scenarios = scenarios
        self.rows = []

    def grpc_driver(self, scenario, target, port, level):
        b, dur = self.b, str(self.duration)
        if scenario == "mix":
            return lambda: run.run_driver([
                run.PY, os.path.join(run.BENCH, "grpc_mix.py"), "--grpcload",
                os.path.join(b.build, "bench", "grpcload"), "--target", target, "--port", str(port),
                "--levels", level, "--duration", dur, "--warmup", "0", "--names", run.MIX_NAMES,
                "--scenario", "mix", "--rpc", "stop"])
        return lambda: run.run_driver([
            run.PY, os.path.join(run.BENCH, "grpc_h2load.py"), "--target", target, "--port",
            str(port), "--scenario", scenario, "--levels", level, "--duration", dur,
            "--warmup", "0"])

    def http_driver(self, target, port, conns):
        return lambda: self.b.wrk_rows(target, port, "success", conns=conns,
                                       duration=str(self.duration))

    def fixed_grpc(self, scenario, rpc, request, reply, target, port, level):
        """grpc_h2load.py sending one fixed request (file request) whose reply must be reply's."""
        return lambda: run.run_driver([
            run.PY, os.path.join(run.BENCH, "grpc_h2load.py"), "--target", target, "--port",
            str(port), "--scenario", scenario, "--levels", level, "--duration",
            str(self.duration), "--warmup", "0", "--rpc", rpc, "--request-file", request,
            "--response-file", reply])

    def life_grpc(self, scenario, files, target, port, level):
        b, dur = self.b, str(self.duration)
        if scenario == "describe":
            return self.fixed_grpc("describe", "DescribeFlow", files["describe.req"],
                                   files["describe.grpc"], target, port, level)
        conns, streams = level.split("x")
        unique = f"{target.replace('-', '')}{time.monotonic_ns()}_"
        extra = {"list": ["--page", str(lifecycle.PAGE)],
                 "start": ["--flow", lifecycle.ON_DEMAND, "--names", f"tok_{unique}:1000000000"],
                 "churn": ["--tail", files["create.tail"], "--names",
                           f"churn_{unique}:1000000000"]}[scenario]
        return lambda: run.run_driver([
            os.path.join(b.build, "bench", "grpcload"), "--target", f"127.0.0.1:{port}",
            "--conns", conns, "--streams", streams, "--duration", dur, "--warmup", "0",
            "--rpc", scenario, "--label", target, "--scenario", scenario] + extra)

    def life_http(self, scenario, files, target, port, conns):
        extra = {"describe": ["--flow", lifecycle.DESCRIBED, "--expect-file",
                              files["describe.json"]],
                 "list": ["--page", str(lifecycle.PAGE)],
                 "start": ["--flow", lifecycle.ON_DEMAND],
                 "churn": ["--body-file", files["create-template.json"]]}[scenario]
        return lambda: self.b.wrk_rows(target, port, scenario, conns=conns,
                                       duration=str(self.duration), extra=extra)

    def alternate(self, servers, levels, driver, door="grpc"):
        """servers: {target: Server}; driver(target, port, level) -> a function running it; door
        picks appflowd's port (its gRPC or its AWS door)."""
        names = list(servers)
        for rnd in range(self.rounds):
            for level in levels:
                k = rnd % len(names)
                for target in names[k:] + names[:k]:
                    srv = servers[target]
                    port = srv.http_port if target in APPFLOWD_TARGETS and door == "http" \
                        else srv.port
                    for r in measure(srv, driver(target, port, level)):
                        r["round"] = rnd
                        self.rows.append(r)

    def grpc(self, seed):
        b = self.b
        with contextlib.ExitStack() as stack:
            servers = {"appflowd": started(stack, b.appflowd(seed)),
                       "grpc-go": started(stack, b.go_peer("grpc", seed))}
            for scenario in ("success", "notfound", "mix"):
                with contextlib.ExitStack() as limit:
                    canned = started(limit, b.canned("notfound" if scenario == "notfound"
                                                     else "ok"))
                    self.alternate(dict(servers, canned=canned), b.levels.split(","),
                                   lambda t, p, lv: self.grpc_driver(scenario, t, p, lv))

    def http(self, seed):
        b = self.b
        with contextlib.ExitStack() as stack:
            servers = {"appflowd": started(stack, b.appflowd(seed, http=True)),
                       "nginx": started(stack, b.nginx()),
                       "go-net-http": started(stack, b.go_peer("http", seed))}
            self.alternate(servers, ["1", "16", "64"], self.http_driver, door="http")

    def lifecycle(self, seed):
        b = self.b
        with contextlib.ExitStack() as stack:
            srv = started(stack, b.appflowd(seed, http=True))
            lifecycle.create_flows(srv.http_port)
            files = lifecycle.capture(srv.port, srv.http_port, b.tmp)
            ours, files_of = {"appflowd": srv}, {}
            if self.baseline is not None:  # its own captures: its flows' times differ
                base = ours["baseline"] = started(stack, b.appflowd(seed, http=True,
                                                                    build=self.baseline))
                lifecycle.create_flows(base.http_port)
                os.makedirs(os.path.join(b.tmp, "baseline"), exist_ok=True)
                files_of["baseline"] = lifecycle.capture(base.port, base.http_port,
                                                         os.path.join(b.tmp, "baseline"))
            replies = {"DescribeFlow": files["describe.grpc"], "ListFlows": files["list.grpc"],
                       "StartFlow": files["start.grpc"], "CreateFlow": files["create.grpc"],
                       "DeleteFlow": files["delete.grpc"]}
            for scenario in self.scenarios or LIFECYCLE_SCENARIOS:
                with contextlib.ExitStack() as limit:
                    canned = started(limit, b.canned(replies=replies))
                    self.alternate(dict(ours, canned=canned), ["1x1", "4x32"],
                                   lambda t, p, lv: self.life_grpc(scenario, files_of.get(t, files),
                                                                   t, p, lv))
                with contextlib.ExitStack() as limit:
                    nginx = started(limit, b.nginx(lifecycle.nginx_locations(files)))
                    self.alternate(dict(ours, nginx=nginx), ["1", "16"],
                                   lambda t, p, c: self.life_http(scenario, files_of.get(t, files),
                                                                  t, p, c),
                                   door="http")



    def op_http(self, op, captured, target, port, conns):
        name, method, path = op[:3]
        files = captured[name]
        extra = ["--operation", name, "--method", method, "--path", path, "--expect-file",
                 files["reply.json"]] + (["--body-file", files["json"]] if "json" in files else [])
        return lambda: self.b.wrk_rows(target, port, "operation", conns=conns,
                                       duration=str(self.duration), extra=extra)

    def operations(self, seed):
        """Each operation of lifecycle.operations() on both doors, against the canned server
        and nginx answering what appflowd answered (captured first, as the lifecycle's)."""
        b = self.b
        with contextlib.ExitStack() as stack:
            srv = started(stack, b.appflowd(seed, http=True))
            lifecycle.create_flows(srv.http_port)
            lifecycle.create_operation_flows(srv.http_port)
            captured = lifecycle.capture_operations(srv.port, srv.http_port, b.tmp)
            replies = {name: files["grpc"] for name, files in captured.items()}
            canned = started(stack, b.canned(replies=replies))
            nginx = started(stack, b.nginx(lifecycle.nginx_operation_locations(captured)))
            for op in lifecycle.operations():
                name = op[0]
                self.alternate({"appflowd": srv, "canned": canned}, ["1x1", "4x32"],
                               lambda t, p, lv: self.fixed_grpc(
                                   "operation", name, captured[name]["req"],
                                   captured[name]["grpc"], t, p, lv))
                self.alternate({"appflowd": srv, "nginx": nginx}, ["1", "16"],
                               lambda t, p, c: self.op_http(op, captured, t, p, c), door="http")


def started(stack, srv):
    """srv, stopped (by PID) when stack closes."""
    stack.callback(srv.stop)
    return srv


def medians(rows):
    """{(door, scenario, level): {target: (median rps, median cpu us/request, rounds, errors)}}"""
    groups = {}
    for r in rows:
        level = f"{r['conns']}x{r['streams']}" if r["door"] == "grpc" else str(r["conns"])
        groups.setdefault((r["door"], r["scenario"], level), {}).setdefault(r["target"],
                                                                            []).append(r)
    out = {}
    for key, by_target in groups.items():
        out[key] = {}
        for target, rs in by_target.items():
            cpu = [r["cpu_us_per_request"] for r in rs if r.get("cpu_us_per_request")]
            out[key][target] = (statistics.median(r["rps"] for r in rs),
                                statistics.median(cpu) if cpu else None, len(rs),
                                sum(r.get("errors", 0) for r in rs))
    return out


def report(rows, rounds, duration):
    lines = [f"Alternating, {rounds} rounds of {duration:g} s, medians: req/s (CPU us per "
             "request); ratios appflowd / other as req/s and as CPU per request (below 1: "
             "appflowd spends less)", "",
             "| door | scenario | level | target | req/s | CPU us/req | appflowd / it, req/s | "
             "appflowd / it, CPU/req | errors |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    def order(item):
        (door, scenario, level), _ = item
        return door, scenario, [int(x) for x in level.split("x")]

    for (door, scenario, level), by_target in sorted(medians(rows).items(), key=order):
        a = by_target.get("appflowd")
        for target, (rps, cpu, n, errors) in sorted(by_target.items(),
                                                    key=lambda kv: kv[0] != "appflowd"):
            rr = f"{a[0] / rps:.2f}" if a and target != "appflowd" and rps else ""
            rc = f"{a[1] / cpu:.2f}" if a and a[1] and cpu and target != "appflowd" else ""
            lines.append(f"| {door} | {scenario} | {level} | {target} | {rps:,.0f} | "
                         f"{cpu if cpu is not None else '-'} | {rr} | {rc} | {errors} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--suite", default="grpc,http")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--baseline", help="another build directory whose appflowd the lifecycle "
                    "suite runs beside this one's")
    ap.add_argument("--scenarios", help="the lifecycle scenarios to run, by name (default: "
                    + ",".join(LIFECYCLE_SCENARIOS) + ")")
    args = ap.parse_args()
    scenarios = args.scenarios.split(",") if args.scenarios else None
    if scenarios and not set(scenarios) <= set(LIFECYCLE_SCENARIOS):
        ap.error("--scenarios: each of " + ",".join(LIFECYCLE_SCENARIOS))
    b = run.Bench(os.path.abspath(args.build), False)
    baseline = os.path.abspath(args.baseline) if args.baseline else None
    alt = Alternate(b, args.rounds, args.duration, baseline, scenarios)
    seed = os.path.join(b.tmp, "flows-10k.json")
    run.write_seed(seed, run.MIX_NAMES)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        if "grpc" in args.suite.split(","):
            alt.grpc(seed)
        if "http" in args.suite.split(","):
            alt.http(seed)
        if "lifecycle" in args.suite.split(","):
            alt.lifecycle(seed)
        if "operations" in args.suite.split(","):
            alt.operations(seed)
    finally:
        run.shutil.rmtree(b.tmp, ignore_errors=True)
    text = report(alt.rows, args.rounds, args.duration)
    base = os.path.join(run.BENCH, "results", f"alternate-{stamp}")
    os.makedirs(os.path.dirname(base), exist_ok=True)
    with open(base + ".jsonl", "w") as f:
        for r in alt.rows:
            f.write(json.dumps(r) + "\n")
        f.write(json.dumps({"notes": {"machine": run.machine(b.build), "baseline": baseline,
                                      "scenarios": scenarios, "rounds": args.rounds,
                                      "duration": args.duration,
                                      "loadavg": os.getloadavg()}}) + "\n")
    with open(base + ".md", "w") as f:
        f.write(text + "\n")
    print(text)
    run.log(f"results in {base}.jsonl and {base}.md")


if __name__ == "__main__":
    sys.exit(main())
