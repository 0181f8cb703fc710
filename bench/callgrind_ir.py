#!/usr/bin/python3
"""Instructions (callgrind's Ir) appflowd spends per gRPC call, for one RPC at a time.

Starts appflowd under `valgrind --tool=callgrind` with a seed file, makes --warmup calls, zeroes
callgrind's counters (callgrind_control -z), makes --calls calls one after another from this
process (grpcio), dumps the counters (callgrind_control -d) and prints the Ir of the server's
whole process divided by --calls. Everything the server did in between counts: gRPC's
transport, decoding, the service, the store, encoding. Instruction counts, unlike wall clock,
hardly move with the load of a shared machine, so runs minutes or commits apart compare.

  list      ListFlows{max_results: --page}, then each next page in turn (starting again
            after the last one): every reply must hold exactly --page flows or be the last page.
  describe  DescribeFlow{flow_name: PREFIX + index}, cycling through --names PREFIX:COUNT; the
            reply's flow_name must be the name sent.
  stop      StopFlow of bench_suspended, an already suspended scheduled flow (make bench's gRPC
            success scenario); with --missing, of bench_missing, which does not exist (notfound).
  start     StartFlow of the lifecycle's on-demand flow (bench/lifecycle.py, made first with its
            connector profile), a new clientToken per call as the AWS SDKs send; every reply
            must carry a new executionId. Its run log fills up (100 runs, 64 tokens) in the
            warm-up when --warmup is at least 100.
  churn     CreateFlow of the lifecycle's on-demand flow under a new name, then DeleteFlow of it
            (two calls; Ir per pair).
  update    UpdateFlow of bench_updated with its own definition, the operations suite's
            request (bench/lifecycle.py's operations()); the reply must be the first one's.

Example (bench/RESULTS.md, "gRPC encode and read locks"):
  bench/grpc_mix.py --write-seed build-rel/seed.json --names bench_:10000
  bench/callgrind_ir.py --appflowd build-rel/appflowd --seed build-rel/seed.json --rpc list
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402  (the e2e tests' generated stubs and channel)
import lifecycle  # noqa: E402  (bench/lifecycle.py: the lifecycle's flows and requests)

PORT_RE = re.compile(r"^appflowd \S+ listening: grpc=\S+ port=(\d+)")
START_TIMEOUT_S = 600  # loading 10,000 flows under valgrind takes a while


def start(args, out_dir):
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.out.%p",
            args.appflowd, "--grpc-listen", "127.0.0.1:0", "--threads", str(args.threads),
            "--flows", args.seed, "--log-level", "warn"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    port = []
    found = threading.Event()

    def read():  # keeps reading, so the pipe never fills and stalls the server
        for line in proc.stderr:
            m = PORT_RE.match(line)
            if m and not port:
                port.append(int(m.group(1)))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(START_TIMEOUT_S) or not port:
        proc.kill()
        sys.exit("callgrind_ir: appflowd did not start")
    return proc, port[0]


def caller(args, chan):
    s = harness.stubs()
    stub = s.appflow_pb2_grpc.AppFlowServiceStub(chan)
    prefix, count = args.names.split(":")
    count = int(count)
    width = max(5, len(str(count - 1)))
    state = {"i": 0, "token": None}

    def list_call():
        req = s.appflow_pb2.ListFlowsRequest(max_results=args.page)
        if state["token"]:
            req.next_token = state["token"]
        r = stub.ListFlows(req, timeout=120)
        if r.next_token and len(r.flows) != args.page:
            sys.exit(f"callgrind_ir: a page of {len(r.flows)} flows, not {args.page}")
        state["token"] = r.next_token or None

    def describe_call():
        name = f"{prefix}{state['i'] % count:0{width}d}"
        state["i"] += 1
        r = stub.DescribeFlow(s.appflow_pb2.DescribeFlowRequest(flow_name=name), timeout=120)
        if r.flow_name != name:
            sys.exit(f"callgrind_ir: DescribeFlow({name}) answered {r.flow_name}")

    def raw(rpc, request):
        return chan.unary_unary(lifecycle.SERVICE + rpc, request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)(request, timeout=120)

    def stop_call():
        name = "bench_missing" if args.missing else "bench_suspended"
        try:
            r = stub.StopFlow(s.appflow_pb2.StopFlowRequest(flow_name=name), timeout=120)
        except harness.grpc.RpcError as e:
            if args.missing and e.code() == harness.grpc.StatusCode.NOT_FOUND:
                return
            raise
        if args.missing or not r.flow_arn:
            sys.exit(f"callgrind_ir: StopFlow({name}) answered {r}")

    def start_call():
        state["i"] += 1
        r = stub.StartFlow(s.appflow_pb2.StartFlowRequest(
            flow_name=lifecycle.ON_DEMAND, client_token=f"callgrind-{state['i']}"), timeout=120)
        if not r.execution_id or r.execution_id == state["token"]:
            sys.exit(f"callgrind_ir: StartFlow answered execution id {r.execution_id!r} again")
        state["token"] = r.execution_id

    tail = lifecycle.to_proto("CreateFlowRequest", {
        k: v for k, v in lifecycle.churn_body("x").items() if k != "flowName"})

    def churn_call():
        name = f"churn_{state['i']}"
        state["i"] += 1
        raw("CreateFlow", lifecycle.string_field(1, name) + tail)
        raw("DeleteFlow", lifecycle.string_field(1, name))

    update = next(lifecycle.to_proto(op[0] + "Request", op[4])
                  for op in lifecycle.operations() if op[0] == "UpdateFlow")

    def update_call():
        r = raw("UpdateFlow", update)
        if state["token"] not in (None, r):
            sys.exit(f"callgrind_ir: UpdateFlow answered {r!r}, then {state['token']!r}")
        state["token"] = r

    if args.rpc in ("start", "churn", "update"):
        raw("CreateConnectorProfile",
            lifecycle.to_proto("CreateConnectorProfileRequest", lifecycle.PROFILE))
        raw("CreateFlow", lifecycle.to_proto("CreateFlowRequest",
                                             lifecycle.churn_body(lifecycle.ON_DEMAND)))
        raw("CreateFlow", lifecycle.to_proto("CreateFlowRequest",
                                             lifecycle.churn_body(lifecycle.UPDATED)))
    return {"list": list_call, "describe": describe_call, "stop": stop_call, "start": start_call,
            "churn": churn_call, "update": update_call}[args.rpc]


def total_ir(path):
    with open(path, encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit(f"callgrind_ir: no totals in {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--appflowd", required=True)
    p.add_argument("--seed", required=True, help="a seed file (bench/grpc_mix.py --write-seed)")
    p.add_argument("--rpc", choices=["list", "describe", "stop", "start", "churn",
                                          "update"], required=True)
    p.add_argument("--missing", action="store_true", help="stop: a flow that does not exist")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--page", type=int, default=100, help="ListFlows max_results")
    p.add_argument("--names", default="bench_:10000", help="PREFIX:COUNT of the seeded flows")
    p.add_argument("--threads", type=int, default=2, help="appflowd --threads")
    p.add_argument("--keep", help="copy callgrind's dump here (for callgrind_annotate)")
    args = p.parse_args()
    out_dir = tempfile.mkdtemp(prefix="callgrind-ir-")
    proc, port = start(args, out_dir)
    try:
        chan = harness.channel(port)
        call = caller(args, chan)
        for _ in range(args.warmup):
            call()
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(args.calls):
            call()
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        chan.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    dumps = sorted(glob.glob(f"{out_dir}/callgrind.out.{proc.pid}.*"))
    if not dumps:
        sys.exit("callgrind_ir: callgrind wrote no dump")
    ir = total_ir(dumps[0])
    if args.keep:
        shutil.copyfile(dumps[0], args.keep)
    shutil.rmtree(out_dir, ignore_errors=True)
    print(f"{args.rpc}: {args.calls} calls, {ir} Ir, {ir / args.calls:.0f} Ir per call")


if __name__ == "__main__":
    main()
