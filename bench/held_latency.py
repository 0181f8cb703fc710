#!/usr/bin/python3
"""New calls while each door holds thousands of connections: the latency of ListFlows on the
AWS door and on the gRPC door, first with nothing held, then while 10,000 idle and 500
trickling connections are held open to that door (tests/e2e/held.py, run as a process of its
own so that holding them costs this process nothing). One JSON line per door and case on
stdout, as bench/FORMAT.md says, with `max_ms` besides p50 and p99.

    /usr/bin/python3 bench/held_latency.py --port GRPC_PORT --http-port HTTP_PORT --pid PID \\
        [--calls 200] [--idle 10000] [--trickle 500]

appflowd (PID) must already serve both doors on 127.0.0.1 with --http-max-connections above
idle + trickle, and --http-timeout longer than the run, so nothing held is cut.

- AWS door: each call is a new connection (connect, POST /list-flows {}, the whole reply,
  close), as a new client's first call would be: the server must accept it past the held ones.
- gRPC door: one new channel, connected before the clock starts, then `calls` unary ListFlows
  one after another.

Every reply is checked: HTTP 200 and a page of 100 flows with a nextToken (the bench seed
holds 10,000); gRPC OK and the same page. After the held case, the holder says how many of its
connections the server closed; any is an error. Between cases the held connections are let go
and the run waits until the server's open descriptors are back where they were.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import grpc

import lifecycle

BENCH = os.path.dirname(os.path.abspath(__file__))
HELD = os.path.join(os.path.dirname(BENCH), "tests", "e2e", "held.py")
PY = "/usr/bin/python3"
LIST_FLOWS = (b"POST /list-flows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
PAGE = 100


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def http_call(port):
    """One ListFlows on a new connection; true when the reply is a full page."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(LIST_FLOWS)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        return False
    reply = json.loads(body)
    return len(reply.get("flows", [])) == PAGE and bool(reply.get("nextToken"))


class GrpcCaller:
    def __init__(self, port):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(self.channel).result(timeout=60)
        self.call = self.channel.unary_unary(lifecycle.SERVICE + "ListFlows",
                                             request_serializer=lambda b: b,
                                             response_deserializer=lambda b: b)

    def __call__(self):
        reply = lifecycle._message("ListFlowsResponse")
        reply.ParseFromString(self.call(b"", timeout=30))
        return len(reply.flows) == PAGE and bool(reply.next_token)

    def close(self):
        self.channel.close()


def measure(call, calls):
    """(latencies in ms, ok, errors) of `calls` calls one after another."""
    lat, ok, errors = [], 0, 0
    for _ in range(calls):
        t0 = time.perf_counter()
        try:
            good = call()
        except (OSError, ValueError, grpc.RpcError):
            good = False
        lat.append((time.perf_counter() - t0) * 1000)
        ok += good
        errors += not good
    return lat, ok, errors


def row(door, scenario, held, lat, ok, errors, verified):
    lat_sorted = sorted(lat)
    p99 = lat_sorted[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
    seconds = sum(lat) / 1000
    return {"door": door, "target": "appflowd", "scenario": scenario, "conns": held,
            "streams": 1, "requests": len(lat), "seconds": round(seconds, 3),
            "rps": ok / seconds if seconds > 0 else 0, "p50_ms": statistics.median(lat),
            "p99_ms": p99, "max_ms": lat_sorted[-1], "ok": ok, "errors": errors,
            "verified": verified}


def hold(port, kind, idle, trickle):
    proc = subprocess.Popen([PY, HELD, "--port", str(port), "--kind", kind, "--idle", str(idle),
                             "--trickle", str(trickle)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("held "):
        proc.kill()
        raise RuntimeError(f"held.py did not hold the connections: {line!r}")
    return proc


def let_go(proc, pid, before):
    """Asks how many held connections the server closed, lets them all go, and waits until the
    server has closed its ends."""
    proc.stdin.write("closed\n")
    proc.stdin.flush()
    closed = int(proc.stdout.readline().strip().split("=")[1])
    proc.stdin.close()
    proc.wait(120)
    deadline = time.monotonic() + 300
    while fd_count(pid) > before + 16:
        if time.monotonic() > deadline:
            raise RuntimeError("appflowd did not close the connections let go within 300 s")
        time.sleep(0.1)
    return closed


def door_rows(door, port, pid, args):
    kind = "http" if door == "http" else "grpc"
    verified = ("each call a new connection: HTTP 200, a page of 100 flows and a nextToken"
                if door == "http" else
                "one new channel, calls in sequence: OK, a page of 100 flows and a nextToken")
    caller = (lambda: http_call(port)) if door == "http" else GrpcCaller(port)
    rows = [row(door, "new-call", 0, *measure(caller, args.calls), verified)]
    if door == "grpc":
        caller.close()
    before = fd_count(pid)
    proc = hold(port, kind, args.idle, args.trickle)
    try:
        caller = (lambda: http_call(port)) if door == "http" else GrpcCaller(port)
        lat, ok, errors = measure(caller, args.calls)
        if door == "grpc":
            caller.close()
    finally:
        closed = let_go(proc, pid, before)
    held = args.idle + args.trickle
    rows.append(row(door, f"new-call-held-{args.idle}+{args.trickle}", held, lat, ok,
                    errors + closed,
                    f"{verified}; {args.idle} idle and {args.trickle} trickling connections "
                    f"held, {closed} of them closed by the server"))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="the gRPC door")
    ap.add_argument("--http-port", type=int, required=True, help="the AWS door")
    ap.add_argument("--pid", type=int, required=True, help="appflowd's")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--trickle", type=int, default=500)
    args = ap.parse_args()
    for door, port in (("http", args.http_port), ("grpc", args.port)):
        for r in door_rows(door, port, args.pid, args):
            print(json.dumps(r), flush=True)
            print(f"held_latency: {r['door']} {r['scenario']}: p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms, {r['ok']} ok, "
                  f"{r['errors']} errors", file=sys.stderr)


if __name__ == "__main__":
    main()
