#!/usr/bin/python3
"""Loads a gRPC server's StopFlow (or another RPC with one fixed request) with h2load and prints
one JSON line per level (FORMAT.md).

  /usr/bin/python3 bench/grpc_h2load.py --target appflowd --port 50051 --scenario success \
      [--flow NAME] [--levels 1x1,4x32,16x64] [--duration 10] [--warmup 2]
  /usr/bin/python3 bench/grpc_h2load.py --target appflowd --port 50051 --scenario describe \
      --rpc DescribeFlow --request-file REQ --response-file REPLY [--same-flow] [...]
  /usr/bin/python3 bench/grpc_h2load.py --target appflowd --port 50051 --scenario operation \
      --rpc DescribeConnectors --request-file REQ --response-file REPLY [...]
      (the same, each row's scenario the RPC's name: bench/alternate.py's operations suite)

Each level CxM runs h2load with C connections and M streams in flight per connection, all
sending the same pre-framed request: StopFlowRequest{flow_name: --flow}, or with --rpc the
packed request in --request-file, whose expected reply is the packed message in
--response-file (bench/run.py captures both from appflowd). h2load counts any HTTP 200 as a success, even one
carrying grpc-status NOT_FOUND, so outcomes are checked twice: the data bytes received must be
the expected gRPC response's per successful request (none for notfound), and one call made with
grpcio before the runs must return the expected status and bytes. A run that fails either check
is reported with ok=0 and every request as an error, never as throughput.

--same-flow (for the peers, which answer DescribeFlow from a seed file with creation times of
their own): the grpcio call's reply need not be --response-file's bytes, but must decode as the
RPC's response message (gen/appflow.protoset) with the same flowName, flowArn and flowStatus;
the runs then count bytes against that reply's size. appflowd and the limits keep the exact
check.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import grpc

import lifecycle  # bench/lifecycle.py: the messages of gen/appflow.protoset

ARN_PREFIX = "arn:aws:appflow:us-east-1:000000000000:flow/"  # appflowd's default region, account
FLOW_STATUS_SUSPENDED = 6


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string_field(number, text):
    data = text.encode()
    return bytes([number << 3 | 2]) + varint(len(data)) + data


def stop_flow_request(flow):
    return string_field(1, flow)


def stop_flow_response(flow):
    """What appflowd answers for an already suspended flow: its ARN, then status SUSPENDED."""
    return string_field(1, ARN_PREFIX + flow) + bytes([2 << 3, FLOW_STATUS_SUSPENDED])


def grpc_frame(message):
    """gRPC's length prefix: not compressed, then the length big-endian."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="appflowd, canned, ... (FORMAT.md)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", required=True,
                   choices=["success", "notfound", "success-1m", "success-10", "describe",
                            "operation"],
                   help="operation: --rpc's fixed request, reported under the RPC's name")
    p.add_argument("--rpc", help="an AppFlowService method other than StopFlow (with the files)")
    p.add_argument("--request-file", help="with --rpc: the packed request")
    p.add_argument("--response-file", help="with --rpc: the packed reply expected")
    p.add_argument("--same-flow", action="store_true",
                   help="with --rpc: a reply that decodes with --response-file's flowName, "
                        "flowArn and flowStatus will do (the peers)")
    p.add_argument("--flow", help="default bench_suspended, or bench_missing for notfound")
    p.add_argument("--levels", default="1x1,4x32,16x64", help="CONNSxSTREAMS,...")
    p.add_argument("--duration", type=float, default=10, help="seconds measured per level")
    p.add_argument("--warmup", type=float, default=2, help="seconds before measuring")
    a = p.parse_args()
    if (a.rpc is None) != (a.request_file is None) or (a.rpc is None) != (a.response_file is None):
        p.error("--rpc, --request-file and --response-file go together")
    if a.same_flow and a.rpc is None:
        p.error("--same-flow goes with --rpc")
    if a.scenario == "operation" and a.rpc is None:
        p.error("operation needs --rpc")
    a.method = "/appflow.v1.AppFlowService/" + (a.rpc or "StopFlow")
    if a.rpc:
        with open(a.request_file, "rb") as f:
            a.request = f.read()
        with open(a.response_file, "rb") as f:
            a.response = f.read()
    if a.flow is None:
        a.flow = "bench_missing" if a.scenario == "notfound" else "bench_suspended"
    if not a.rpc:
        a.request, a.response = stop_flow_request(a.flow), stop_flow_response(a.flow)
    try:
        a.levels = [tuple(int(n) for n in lv.split("x")) for lv in a.levels.split(",")]
    except ValueError:
        p.error("--levels takes CONNSxSTREAMS pairs, e.g. 1x1,4x32")
    if any(len(lv) != 2 or min(lv) < 1 for lv in a.levels):
        p.error("--levels takes CONNSxSTREAMS pairs of positive numbers, e.g. 1x1,4x32")
    return a


SAME_FLOW = ("flow_name", "flow_arn", "flow_status")


def same_flow(args, reply):
    """--same-flow: (passed, what was seen) for a reply that is not --response-file's bytes."""
    message = args.rpc + "Response"
    want = lifecycle.decode(message, args.response)
    try:
        got = lifecycle.decode(message, reply)
    except Exception as e:  # google.protobuf.message.DecodeError, or a bad UTF-8 string
        return False, f"grpcio OK but the reply does not decode as {message}: {e}"
    differ = [f for f in SAME_FLOW if getattr(got, f) != getattr(want, f)]
    if differ:
        seen = "; ".join(f"{f} {getattr(got, f)!r}, not {getattr(want, f)!r}" for f in differ)
        return False, f"grpcio OK but {seen}"
    return True, (f"grpcio OK, a {len(reply)}-byte {message} with the expected flowName, "
                  f"flowArn and flowStatus (--same-flow)")


def client_check(port, args, expect_success):
    """One real gRPC call; returns (passed, what was seen). With --same-flow, a reply that
    passes becomes args.response, what the runs' bytes are counted against."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stop = channel.unary_unary(
            args.method, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        try:
            reply = stop(args.request, timeout=10)
        except grpc.RpcError as e:
            return (not expect_success and e.code() == grpc.StatusCode.NOT_FOUND,
                    f"grpcio {e.code().name}")
    if not expect_success:
        return False, "grpcio OK, expected NOT_FOUND"
    if reply != args.response:
        if not args.same_flow:
            return False, f"grpcio OK but {len(reply)} unexpected response bytes"
        passed, seen = same_flow(args, reply)
        if passed:
            args.response = reply
        return passed, seen
    return True, "grpcio OK and response bytes match"


def run_h2load(port, conns, streams, args, body_file, log_file):
    cmd = ["h2load", "-c", str(conns), "-m", str(streams),
           "-D", f"{args.duration:g}", "--warm-up-time", f"{args.warmup:g}",
           # One h2load thread: the machine has 2 cores and the server under test needs them;
           # a second client thread would take a core from the server and measure the contest.
           "-t", str(min(conns, 1)),
           "-d", body_file, "-H", "content-type: application/grpc", "-H", "te: trailers",
           "--log-file", log_file, f"http://127.0.0.1:{port}{args.method}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    # A server it cannot reach leaves h2load exiting 0 with nothing done: that is no run either.
    if r.returncode != 0 or not re.search(r"started, [1-9]\d* done", r.stdout):
        sys.stderr.write(r.stdout + r.stderr)
        sys.exit(f"grpc_h2load: h2load failed (exit {r.returncode}): {' '.join(cmd)}")
    return r.stdout


def parse_summary(out):
    """h2load's summary: request counts, req/s and the data bytes received."""
    req = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed",
                    out)
    fin = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)  # its time includes warm-up
    data = re.search(r"traffic: .*\((\d+)\) data", out)
    if not (req and fin and data):
        sys.stderr.write(out)
        sys.exit("grpc_h2load: cannot read h2load's summary")
    return {"succeeded": int(req[1]), "failed": int(req[2]), "rps": float(fin[1]),
            "data": int(data[1])}


def percentiles(log_file):
    """p50 and p99 in ms from the per-request log: start, HTTP status (-1 if not done), us."""
    with open(log_file) as f:
        us = sorted(int(cols[2]) for cols in (line.split() for line in f)
                    if len(cols) >= 3 and cols[1] != "-1")
    if not us:
        return None, None
    rank = lambda p: us[max(0, math.ceil(p * len(us)) - 1)] / 1000
    return round(rank(0.50), 3), round(rank(0.99), 3)


def verify_bytes(s, expected, args, conns, streams):
    """Data bytes received against the expected gRPC response bytes. h2load's traffic line also
    counts the warm-up's bytes (its request counts do not), so with a warm-up a success run must
    bring at least `expected` bytes per success, and no more than a warm-up five times faster
    than the measured run (plus the calls in flight at the end) could add."""
    if s["succeeded"] == 0:
        return False, "no successful requests"
    if expected == 0:
        ok = s["data"] == 0
        return ok, f"data bytes {s['data']} {'==' if ok else '!='} expected 0 (status only)"
    per = s["data"] / s["succeeded"]
    if args.warmup == 0:
        ok = round(per) == expected
        return ok, f"bytes/response {per:.1f} {'==' if ok else '!='} expected {expected}"
    most = expected * (s["succeeded"] * (1 + 5 * args.warmup / args.duration) + conns * streams)
    ok = expected * s["succeeded"] <= s["data"] <= most
    return ok, (f"data bytes = {s['data'] / expected:.1f} x {expected}-byte responses, "
                f"{'' if ok else 'not '}{s['succeeded']} succeeded + warm-up")


def measure(args, conns, streams, client, tmp):
    expect_success = args.scenario != "notfound"
    body = os.path.join(tmp, "request.bin")
    with open(body, "wb") as f:
        f.write(grpc_frame(args.request))
    log = os.path.join(tmp, f"h2load-{conns}x{streams}.log")
    s = parse_summary(run_h2load(args.port, conns, streams, args, body, log))
    expected = len(grpc_frame(args.response)) if expect_success else 0
    bytes_ok, bytes_note = verify_bytes(s, expected, args, conns, streams)
    passed = bytes_ok and client[0]
    if not passed:
        print(f"grpc_h2load: {args.target} {args.scenario} {conns}x{streams}: wrong outcome "
              f"({bytes_note}; {client[1]}): {s['rps']:.0f} req/s reported as errors",
              file=sys.stderr)
    p50, p99 = percentiles(log)
    scenario = args.rpc if args.scenario == "operation" else args.scenario
    return {"door": "grpc", "target": args.target, "scenario": scenario,
            "conns": conns, "streams": streams, "requests": s["succeeded"],
            "seconds": args.duration, "rps": s["rps"] if passed else 0.0,
            "p50_ms": p50, "p99_ms": p99,
            "ok": s["succeeded"] if passed else 0,
            "errors": s["failed"] if passed else s["succeeded"] + s["failed"],
            "verified": f"{bytes_note}; {client[1]}"}


def main():
    args = parse_args()
    client = client_check(args.port, args, args.scenario != "notfound")
    with tempfile.TemporaryDirectory(prefix="grpc_h2load.") as tmp:
        for conns, streams in args.levels:
            print(json.dumps(measure(args, conns, streams, client, tmp)), flush=True)


if __name__ == "__main__":
    main()
