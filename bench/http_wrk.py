#!/usr/bin/python3
"""Load the AWS door (POST /stop-flow) of a running target with wrk; one JSON line per
connection count on stdout, as bench/FORMAT.md says.

    /usr/bin/python3 bench/http_wrk.py --target appflowd --port 8080 --scenario success \\
        [--flow NAME] [--conns 1,16,64] [--duration 10] [--threads 1]

The target (appflowd --http-listen, bench/peers/node_http_server.js, nginx with
bench/nginx.conf) must already be serving on 127.0.0.1:PORT with the bench seed file loaded:
`success` and `success-1m` stop the already suspended scheduled flow bench_suspended (200,
nothing changes), `notfound` a flow that does not exist (404 ResourceNotFoundException).

Each run is checked twice:
- before the load, one real request with http.client: status, Content-Type application/json,
  x-amzn-RequestId present, and the body (success: exactly the expected JSON; notfound:
  x-amzn-ErrorType ResourceNotFoundException and the message). A target that fails this gets
  no measurement (exit 1);
- during the load, bench/http_wrk.lua counts every response by status and compares its body
  with the pre-checked bytes. `ok` = responses with the expected status and body; `errors` =
  the other responses plus wrk's socket errors (connect, read, write, timeout). `rps` counts
  `ok` only, so a run with errors never passes off failures as throughput.

p50/p99 are wrk's own percentiles, and wrk 4 corrects them for coordinated omission: one
stall of S ms, with requests expected every I ms per connection, adds S/I samples from I up
to S. At 1 connection (I of a few tens of microseconds) a single stall of the server, or of
the machine, shows up in p99 even when nearly every request took tens of microseconds; `rps`
(and `requests`) are plain counts.

wrk runs 1 thread by default (--threads): the bench machine has 2 cores and the server under
test needs them; one wrk thread keeps up with 64 keep-alive connections here, and a second
would only take CPU from the server. wrk sends one request at a time per connection, so
`streams` is 1. wrk failing to run, or printing nothing parseable, exits 1.
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "http_wrk.lua")
PATH = "/stop-flow"
DEFAULT_FLOWS = {"success": "bench_suspended", "success-1m": "bench_suspended",
                 "notfound": "bench_missing"}


def log(msg):
    sys.stderr.write("http_wrk: %s\n" % msg)
    sys.stderr.flush()


def precheck(args):
    """One real request; returns (expected status, expected body bytes, description)."""
    body = json.dumps({"flowName": args.flow}).encode()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
    try:
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    except OSError as e:
        raise SystemExit("http_wrk: %s: cannot reach %s:%d: %s" % (args.target, args.host,
                                                                 args.port, e))
    finally:
        conn.close()
    problems = []
    ctype = resp.getheader("Content-Type", "")
    if ctype.split(";")[0].strip() != "application/json":
        problems.append("Content-Type is %r, not application/json" % ctype)
    rid = resp.getheader("x-amzn-RequestId")
    if not rid:
        problems.append("no x-amzn-RequestId")
    try:
        got = json.loads(data)
    except ValueError:
        got = None
    if args.scenario in ("success", "success-1m"):
        want_status = 200
        want = {"flowArn": "arn:aws:appflow:%s:%s:flow/%s" % (args.region, args.account,
                                                               args.flow),
                "flowStatus": "Suspended"}
        if got != want:
            problems.append("body %r is not %s" % (data[:300], json.dumps(want)))
        what = "200 body == %s (%d B)" % (json.dumps(want, separators=(",", ":")), len(data))
    else:
        want_status = 404
        etype = resp.getheader("x-amzn-ErrorType")
        if etype != "ResourceNotFoundException":
            problems.append("x-amzn-ErrorType is %r, not ResourceNotFoundException" % etype)
        want = {"message": "Flow %s does not exist" % args.flow}
        if got != want:
            problems.append("body %r is not %s" % (data[:300], json.dumps(want)))
        what = "404 ResourceNotFoundException, body == %s (%d B)" % (
            json.dumps(want, separators=(",", ":")), len(data))
    if resp.status != want_status:
        problems.append("status %d, not %d" % (resp.status, want_status))
    if problems:
        raise SystemExit("http_wrk: %s fails the pre-check for %s: %s"
                         % (args.target, args.scenario, "; ".join(problems)))
    return want_status, data, "pre-check: %s, x-amzn-RequestId present" % what


def run_wrk(args, conns, want_status, want_body):
    threads = max(1, min(args.threads, conns))
    url = "http://%s:%d%s" % (args.host, args.port, PATH)
    cmd = [args.wrk, "-t", str(threads), "-c", str(conns), "-d", "%gs" % args.duration,
           "--latency", "-s", LUA, url, "--", args.flow, want_body.decode()]
    log("%s: %s" % (args.target, " ".join(cmd[:-1]) + " '<expected body>'"))
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SystemExit("http_wrk: wrk did not run: %s" % e)
    if res.returncode != 0:
        raise SystemExit("http_wrk: wrk exited %d: %s" % (res.returncode,
                                                          (res.stderr or res.stdout).strip()))
    line = next((l for l in res.stdout.splitlines() if l.startswith("appflow-wrk ")), None)
    if line is None:
        raise SystemExit("http_wrk: no result line from wrk:\n" + res.stdout + res.stderr)
    r = json.loads(line[len("appflow-wrk "):])
    rps_line = next((l for l in res.stdout.splitlines() if l.startswith("Requests/sec:")), "")
    log("%s c=%d: %s" % (args.target, conns, rps_line.strip() or "(no Requests/sec line)"))

    seconds = r["duration_us"] / 1e6
    responses = sum(r["statuses"].values())
    ok = min(r["statuses"].get(str(want_status), 0), r["body_ok"])
    sock = r["errors"]
    sock_errors = sock["connect"] + sock["read"] + sock["write"] + sock["timeout"]
    errors = responses - ok + sock_errors
    counts = ", ".join("%s: %d" % kv for kv in sorted(r["statuses"].items()))
    verified = "wrk: %d/%d responses %d with body == pre-checked %d B (statuses {%s}" % (
        ok, responses, want_status, len(want_body), counts)
    if sock_errors:
        verified += "; socket errors connect %d read %d write %d timeout %d" % (
            sock["connect"], sock["read"], sock["write"], sock["timeout"])
    verified += ")"
    return {
        "door": "http", "target": args.target, "scenario": args.scenario,
        "conns": conns, "streams": 1, "requests": responses,
        "seconds": round(seconds, 3), "rps": round(ok / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(r["p50_us"] / 1000.0, 3), "p99_ms": round(r["p99_us"] / 1000.0, 3),
        "ok": ok, "errors": errors, "verified": verified,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--target", required=True,
                    help="name in the results: appflowd, node-http, nginx, ...")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(DEFAULT_FLOWS))
    ap.add_argument("--flow", help="flow name (default: bench_suspended, or bench_missing "
                                   "for notfound)")
    ap.add_argument("--conns", default="1,16,64", help="comma-separated connection counts")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (capped at conns)")
    ap.add_argument("--region", default="us-east-1", help="of the expected ARN")
    ap.add_argument("--account", default="000000000000", help="of the expected ARN")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = ap.parse_args()
    args.flow = args.flow or DEFAULT_FLOWS[args.scenario]
    try:
        conns = [int(c) for c in args.conns.split(",") if c.strip()]
    except ValueError:
        ap.error("--conns takes comma-separated integers")
    if not conns or min(conns) < 1 or args.duration <= 0:
        ap.error("--conns must be positive integers and --duration positive")

    want_status, want_body, pre = precheck(args)
    log("%s %s" % (args.target, pre))
    for c in conns:
        row = run_wrk(args, c, want_status, want_body)
        row["verified"] = "%s; %s" % (pre, row["verified"])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
