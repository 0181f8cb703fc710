#!/usr/bin/python3
"""Instructions per request on the AWS door, counted by callgrind: what a change to the door
costs or saves, free of the shared machine's noise (wall-clock moves by 15% here; Ir do not).

  aws_ir.py BUILD_DIR [--requests 2000] [--flows 10000] [--signed | --verify] [--keep DIR]
            [--whole] [--cache]

Starts BUILD_DIR/appflowd under valgrind --tool=callgrind, collecting only inside the door's
request handler (bridge/http.c on_request: routing, SigV4 scope, transcoding both ways and the
service; not libmicrohttpd's own parsing and sending), with the lifecycle bench's flows (a seed
of FLOWS suspended flows, a described Salesforce-to-S3 flow). For each request kind it zeroes
the counters, sends the requests one after another on one keep-alive connection, dumps, and
prints the dump's Ir divided by the requests (by the pairs, for CreateFlow+DeleteFlow). --signed
signs every request with SigV4 (botocore), as the AWS CLI and SDKs do: appflowd, without
--aws-credentials, only reads the signature's scope. --verify also starts appflowd with --aws-credentials, so every signature is
checked. --keep leaves the dumps in DIR for callgrind_annotate. --whole counts the whole
process instead: libmicrohttpd's reading and sending too (and the idle threads' polling).
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lifecycle  # noqa: E402  (bench/lifecycle.py: the described flow and its profile)

# (label, [(method, path, body), ...]): each request kind is its steps sent in turn. StopFlow
# of a suspended scheduled flow (idempotent, the full work every time), DescribeFlow of the
# described flow, the first ListFlows page of 100, StartFlow of the on-demand flow (no
# clientToken, so each call records a new run; its run log is full after the first 100), and the
# lifecycle's churn: CreateFlow of its on-demand flow, then DeleteFlow of it (counted per pair).
CHURN = "bench_churn_ir"
KINDS = [
    ("StopFlow", [("POST", "/stop-flow", {"flowName": "bench_suspended"})]),
    ("DescribeFlow", [("POST", "/describe-flow", {"flowName": lifecycle.DESCRIBED})]),
    ("ListFlows(100)", [("POST", "/list-flows", {"maxResults": lifecycle.PAGE})]),
    ("StartFlow", [("POST", "/start-flow", {"flowName": lifecycle.ON_DEMAND})]),
    ("CreateFlow+DeleteFlow", [("POST", "/create-flow", lifecycle.churn_body(CHURN)),
                               ("POST", "/delete-flow", {"flowName": CHURN})]),
]


def wait_ports(proc):
    """The (grpc, http) ports of appflowd's start-up line on stderr (valgrind's own lines come
    first); the rest of stderr is drained on a thread so neither ever blocks on the pipe."""
    for line in proc.stderr:
        m = re.search(r" port=(\d+) .* http_port=(\d+)", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return int(m.group(1)), int(m.group(2))
    raise RuntimeError(f"appflowd exited before it listened (exit {proc.wait()})")


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def dump_events(outdir, label):
    """{event: total} of the dump callgrind_control --dump=label wrote (Ir; with --cache also
    the simulated cache's events, D1mr and DLmr among them)."""
    for name in sorted(os.listdir(outdir)):
        path = os.path.join(outdir, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if re.search(rf"^desc: Trigger: (?:Client Request: )?dump {re.escape(label)}$", text, re.M):
            events = re.search(r"^events: (.*)$", text, re.M).group(1).split()
            totals = re.search(r"^(?:summary|totals): (.*)$", text, re.M).group(1).split()
            return dict(zip(events, map(int, totals)))
    raise RuntimeError(f"no dump labelled {label} in {outdir}")


KEY_ID, SECRET = "AKIDBENCHAWSIR000000", "bench-secret"  # --signed: the one key in the file


def credentials_file(outdir):
    path = os.path.join(outdir, "credentials")
    with open(path, "w", encoding="ascii") as f:
        f.write(f"[bench]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    return path


def signer(port):
    """A function adding SigV4 headers to a request's, as botocore signs for the AWS CLI."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    auth = SigV4Auth(Credentials(KEY_ID, SECRET), "appflow", "us-east-1")

    def sign(method, path, data, headers):
        req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}", data=data,
                         headers=headers)
        auth.add_auth(req)
        return dict(req.headers.items())
    return sign


def send(port, steps, n, sign=None):
    """Sends steps, each (method, path, body), n times over on one connection; the last reply's
    length."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    steps = [(m, path, json.dumps(body).encode() if body is not None else None)
             for m, path, body in steps]
    headers = {"Content-Type": "application/json"}
    for _ in range(n):
        for method, path, data in steps:
            if sign is not None:
                headers = sign(method, path, data, {"Content-Type": "application/json"})
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            reply = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {reply[:300]!r}")
    conn.close()
    return len(reply)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("build")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--flows", type=int, default=10000)
    p.add_argument("--signed", action="store_true", help="send SigV4 signatures")
    p.add_argument("--verify", action="store_true", help="send and check SigV4 signatures")
    p.add_argument("--keep", help="leave the callgrind dumps in this directory")
    p.add_argument("--cache", action="store_true",
                   help="also simulate the caches (valgrind's model of this CPU's L1 and last "
                        "level) and report data read misses per request: what a change to memory "
                        "layout does, which instructions do not show")
    p.add_argument("--operations", action="store_true",
                   help="also count the operations suite's requests (bench/lifecycle.py's "
                        "operations()), unsigned")
    p.add_argument("--whole", action="store_true",
                   help="count the whole process (libmicrohttpd's reading and sending, the "
                        "idle threads), not only the request handler")
    args = p.parse_args()
    outdir = args.keep or tempfile.mkdtemp(prefix="aws_ir.")
    os.makedirs(outdir, exist_ok=True)
    seed = os.path.join(outdir, "seed.json")
    subprocess.run([sys.executable, os.path.join(HERE, "grpc_mix.py"), "--write-seed", seed,
                    "--names", f"bench_:{args.flows}", "--status", "Suspended"], check=True,
                   stderr=subprocess.DEVNULL)
    collect = [] if args.whole else ["--toggle-collect=on_request"]
    if args.cache:
        collect.append("--cache-sim=yes")
    cmd = ["valgrind", "--tool=callgrind", *collect,
           f"--callgrind-out-file={outdir}/callgrind.out.%p",
           os.path.join(args.build, "appflowd"), "--grpc-listen", "127.0.0.1:0",
           "--http-listen", "127.0.0.1:0", "--flows", seed, "--log-level", "warn"]
    args.signed = args.signed or args.verify
    if args.operations and args.signed:
        p.error("--operations goes unsigned")
    if args.verify:
        cmd += ["--aws-credentials", credentials_file(outdir)]
    print("$", " ".join(cmd), file=sys.stderr)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, http_port = wait_ports(proc)
        sign = signer(http_port) if args.signed else None
        # lifecycle.create_flows, signed when need be
        send(http_port, [("POST", "/create-connector-profile", lifecycle.PROFILE)], 1, sign)
        send(http_port, [("POST", "/create-flow", lifecycle.described_body())], 1, sign)
        send(http_port, [("POST", "/create-flow", lifecycle.churn_body(lifecycle.ON_DEMAND))], 1,
             sign)
        kinds = list(KINDS)
        if args.operations:
            lifecycle.create_operation_flows(http_port)
            kinds += [(op[0], [op[1:4]]) for op in lifecycle.operations()]
        cache = " D1 read misses/request | LL read misses/request |" if args.cache else ""
        print("| request | Ir/request | reply bytes |" + cache)
        print("|---|---:|---:|" + ("---:|---:|" if args.cache else ""))
        for label, steps in kinds:
            send(http_port, steps, 1, sign)  # warm: first use is not per request
            control(proc.pid, "--zero")
            size = send(http_port, steps, args.requests, sign)
            tag = re.sub(r"\W", "", label)
            control(proc.pid, f"--dump={tag}")
            ev = dump_events(outdir, tag)
            n = args.requests
            row = f"| {label} | {ev['Ir'] / n:,.0f} | {size} |"
            if args.cache:
                row += f" {ev['D1mr'] / n:,.0f} | {ev['DLmr'] / n:,.0f} |"
            print(row, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    if args.keep:
        print(f"dumps in {outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
