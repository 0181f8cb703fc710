#!/usr/bin/python3
"""Load the AWS door (POST /stop-flow, or a lifecycle operation) of a running target with wrk;
one JSON line per connection count on stdout, as bench/FORMAT.md says.

    /usr/bin/python3 bench/http_wrk.py --target appflowd --port 8080 --scenario success \\
        [--flow NAME] [--conns 1,16,64] [--duration 10] [--threads 1]

The target (appflowd --http-listen, bench/peers/node_http_server.js, nginx with
bench/nginx.conf) must already be serving on 127.0.0.1:PORT with the bench seed file loaded:
`success` and `success-1m` stop the already suspended scheduled flow bench_suspended (200,
nothing changes), `notfound` a flow that does not exist (404 ResourceNotFoundException).

The lifecycle scenarios (bench/run.py sets them up; the target may also be nginx answering
appflowd's captured bodies):
- `describe`: POST /describe-flow for --flow; the body must equal --expect-file's bytes (with
  --same-flow, for the peers, whose creation times are their own: the pre-check's body must
  carry --expect-file's flowName, flowArn and flowStatus, and every body in the run must equal
  the pre-check's);
- `list`: POST /list-flows {"maxResults": --page}, each request continuing from a nextToken an
  earlier response gave (see http_wrk.lua); full pages until the last;
- `start`: POST /start-flow for the on-demand --flow with a new clientToken per request; the
  body must be the pre-checked one apart from its executionId;
- `churn`: POST /create-flow with --body-file (a CreateFlow body whose flowName is @NAME@) under
  a new name, then POST /delete-flow of that name; bodies as pre-checked, names aside.

The operations of bench/alternate.py's operations suite: `operation` sends --method (POST)
--path with --body-file's bytes (none without it) on every request; the answer must be 200 with
--expect-file's bytes, and the rows carry --operation as their scenario.

The store scenarios (bench/run.py's stores suite), over the Suspended scheduled flows of
--names PREFIX:COUNT (default bench_:10000, the seed file's):
- `toggle`: POST /start-flow, then POST /stop-flow of the same flow, and again, so that every
  request is a committed change of state. wrk cannot tell request() which connection it serves,
  so the flows go with requests in flight rather than connections: the pool is the first C + 1
  names for C connections (one wrk thread; http_wrk.lua says why one more), each in at most one
  request at a time.
  Every answer must be 200 with the pre-checked body for its operation and its flow. Before
  the run every flow of the pool is stopped (so each starts Suspended), and after it every
  flow is stopped again and read back with DescribeFlow until all say Suspended (a request
  wrk abandoned at the end may still be in the server), so runs can follow each other;
- `describe-mix`: POST /describe-flow cycling over the COUNT names; 200, and the flowName of
  each answer must be a name asked for by a request in flight.

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
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "http_wrk.lua")
PATH = "/stop-flow"
DEFAULT_FLOWS = {"success": "bench_suspended", "success-1m": "bench_suspended",
                 "notfound": "bench_missing", "describe": "bench_described",
                 "list": None, "start": "bench_ondemand", "churn": None, "toggle": None,
                 "describe-mix": None, "operation": None}
PATHS = {"describe": "/describe-flow", "list": "/list-flows", "start": "/start-flow",
         "churn": "/create-flow", "toggle": "/start-flow", "describe-mix": "/describe-flow"}
MIN_DIGITS = 5  # names as bench/grpc_mix.py writes them: PREFIX + index padded to this or more
SETTLE_SECONDS = 30  # longest the flows of a toggle pool may take to read Suspended after a run
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def log(msg):
    sys.stderr.write("http_wrk: %s\n" % msg)
    sys.stderr.flush()


def request(args, path, body, method="POST", raw=None):
    """One real request (body as JSON, or raw bytes, or none when both are None); returns
    (response, body bytes), exiting when the target is not there."""
    conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    try:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp, resp.read()
    except OSError as e:
        raise SystemExit("http_wrk: %s: cannot reach %s:%d: %s" % (args.target, args.host,
                                                                 args.port, e))
    finally:
        conn.close()


def common_problems(resp, status):
    problems = []
    ctype = resp.getheader("Content-Type", "")
    if ctype.split(";")[0].strip() != "application/json":
        problems.append("Content-Type is %r, not application/json" % ctype)
    if not resp.getheader("x-amzn-RequestId"):
        problems.append("no x-amzn-RequestId")
    if resp.status != status:
        problems.append("status %d, not %d" % (resp.status, status))
    return problems


def parse(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


def fail(args, problems):
    if problems:
        raise SystemExit("http_wrk: %s fails the pre-check for %s: %s"
                         % (args.target, args.scenario, "; ".join(problems)))


def precheck_describe(args):
    body = {"flowName": args.flow}
    resp, data = request(args, PATHS["describe"], body)
    problems = common_problems(resp, 200)
    with open(args.expect_file, "rb") as f:
        want = f.read()
    what = "pre-check: 200 body == %s (%d B)" % (os.path.basename(args.expect_file), len(data))
    if data != want and args.same_flow:
        got, exp = parse(data), parse(want)
        keys = ("flowName", "flowArn", "flowStatus")
        if not isinstance(got, dict) or any(got.get(k) != exp.get(k) for k in keys):
            problems.append("body %r lacks %s's flowName, flowArn and flowStatus" % (
                data[:200], args.expect_file))
        what = ("pre-check: 200 body with %s's flowName, flowArn and flowStatus (--same-flow; "
                "%d B, each reply must equal it)" % (os.path.basename(args.expect_file),
                                                     len(data)))
    elif data != want:
        problems.append("body %r is not the %d bytes of %s" % (data[:200], len(want),
                                                               args.expect_file))
    fail(args, problems)
    return 200, ["fixed", PATHS["describe"], json.dumps(body), data.decode()], what


def precheck_operation(args):
    body = b""
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = f.read()
    with open(args.expect_file, "rb") as f:
        want = f.read()
    resp, data = request(args, args.path, None, method=args.method, raw=body or None)
    problems = common_problems(resp, 200)
    if data != want:
        problems.append("body %r is not the %d bytes of %s" % (data[:200], len(want),
                                                               args.expect_file))
    fail(args, problems)
    return 200, ["fixed", args.path, body.decode(), data.decode(), args.method], (
        "pre-check: %s %s 200 body == %s (%d B)" % (args.method, args.path,
                                                    os.path.basename(args.expect_file), len(data)))


def precheck_list(args):
    resp, data = request(args, PATHS["list"], {"maxResults": args.page})
    problems = common_problems(resp, 200)
    got = parse(data)
    if not (isinstance(got, dict) and isinstance(got.get("flows"), list)
            and len(got["flows"]) == args.page and isinstance(got.get("nextToken"), str)):
        problems.append("not a full page of %d flows with a nextToken: %r" % (args.page,
                                                                              data[:200]))
    fail(args, problems)
    return 200, ["list", str(args.page)], (
        "pre-check: 200, %d flows and a nextToken (%d B)" % (args.page, len(data)))


def precheck_start(args):
    resp, data = request(args, PATHS["start"], {"flowName": args.flow,
                                                "clientToken": "precheck-%d" % os.getpid()})
    problems = common_problems(resp, 200)
    got = parse(data) or {}
    arn = "arn:aws:appflow:%s:%s:flow/%s" % (args.region, args.account, args.flow)
    if (got.get("flowArn") != arn or got.get("flowStatus") != "Active"
            or not UUID.fullmatch(str(got.get("executionId")))):
        problems.append("body %r lacks flowArn %s, flowStatus Active and a UUID executionId"
                        % (data[:200], arn))
    fail(args, problems)
    want = UUID.sub("UUID", data.decode(), count=1)
    return 200, ["start", args.flow, "tok%d_c{conns}_" % os.getpid(), want], (
        "pre-check: 200 body == %s (%d B)" % (want, len(data)))


def precheck_churn(args):
    with open(args.body_file) as f:
        template = f.read()
    if "@NAME@" not in template:
        raise SystemExit("http_wrk: %s has no @NAME@" % args.body_file)
    name = "precheck_%d" % os.getpid()
    resp, data = request(args, PATHS["churn"], json.loads(template.replace("@NAME@", name)))
    problems = common_problems(resp, 200)
    got = parse(data) or {}
    m = re.fullmatch(r"arn:aws:appflow:[^:]*:[0-9]+:flow/([\w!@#.-]+)", str(got.get("flowArn")))
    if not m or got.get("flowStatus") != "Active":
        problems.append("create answered %r" % data[:200])
    fail(args, problems)
    # The target's name: nginx answers one fixed ARN, appflowd the name just created.
    resp, gone = request(args, "/delete-flow", {"flowName": m.group(1)})
    problems = common_problems(resp, 200)
    if parse(gone) != {}:
        problems.append("delete answered %r, not {}" % gone[:200])
    fail(args, problems)
    want = re.sub(r'flow/[^"]*"', 'flow/NAME"', data.decode(), count=1)
    prefix = "wrk%d_c{conns}_" % os.getpid()
    return 200, ["churn", template, prefix, want, gone.decode()], (
        "pre-check: create 200 body == %s, delete 200 body == %s" % (want, gone.decode()))


def flow_names(args, first, count):
    prefix, total = args.names
    width = max(MIN_DIGITS, len(str(total - 1)))
    return ["%s%0*d" % (prefix, width, i) for i in range(first, first + count)]


class KeepAlive:
    """One keep-alive connection for the requests around a run (not measured)."""

    def __init__(self, args):
        self.args = args
        self.conn = http.client.HTTPConnection(args.host, args.port, timeout=10)

    def post(self, path, body):
        try:
            self.conn.request("POST", path, body=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            return resp.status, parse(resp.read())
        except (OSError, http.client.HTTPException) as e:
            raise SystemExit("http_wrk: %s: cannot reach %s:%d: %s" % (
                self.args.target, self.args.host, self.args.port, e))

    def close(self):
        self.conn.close()


def settle(args, names):
    """Stops every flow in names, then reads them back until all are Suspended: a request
    wrk gave up on at the end of a run may still be in the server and start a flow after its
    stop. Returns the names that are not Suspended by SETTLE_SECONDS (none if all went well)."""
    c = KeepAlive(args)
    deadline = time.monotonic() + SETTLE_SECONDS
    try:
        left = list(names)
        while left:
            for n in left:
                c.post("/stop-flow", {"flowName": n})
            left = [n for n in left
                    if (c.post("/describe-flow", {"flowName": n})[1] or {}).get("flowStatus")
                    != "Suspended"]
            if left and time.monotonic() > deadline:
                return left
        return []
    finally:
        c.close()


def arn(args, name):
    return "arn:aws:appflow:%s:%s:flow/%s" % (args.region, args.account, name)


def precheck_toggle(args):
    """Start, then stop, the pool's first flow; their bodies, NAME for the name, are what
    every answer in the run must be."""
    name = flow_names(args, 0, 1)[0]
    if settle(args, [name]):
        fail(args, ["%s does not read Suspended after StopFlow" % name])
    bodies = []
    for path, status in (("/start-flow", "Active"), ("/stop-flow", "Suspended")):
        resp, data = request(args, path, {"flowName": name})
        problems = common_problems(resp, 200)
        if parse(data) != {"flowArn": arn(args, name), "flowStatus": status}:
            problems.append("%s answered %r, not flowStatus %s with %s's ARN"
                            % (path, data[:200], status, name))
        fail(args, problems)
        if data.decode().count(name) != 1:
            fail(args, ["%s's body names %s more than once: %r" % (path, name, data[:200])])
        bodies.append(data.decode().replace(name, "NAME"))
    width = max(MIN_DIGITS, len(str(args.names[1] - 1)))
    return 200, ["toggle", args.names[0], str(width), "{per_thread}"] + bodies, (
        "pre-check: start 200 body == %s, stop 200 body == %s" % tuple(bodies))


def precheck_describe_mix(args):
    name = flow_names(args, 0, 1)[0]
    resp, data = request(args, PATHS["describe-mix"], {"flowName": name})
    problems = common_problems(resp, 200)
    got = parse(data) or {}
    if got.get("flowName") != name or got.get("flowArn") != arn(args, name):
        problems.append("describe-flow answered %r" % data[:200])
    fail(args, problems)
    width = max(MIN_DIGITS, len(str(args.names[1] - 1)))
    return 200, ["describe-mix", args.names[0], str(width), str(args.names[1])], (
        "pre-check: 200 with flowName %s and its flowArn" % name)


def precheck(args):
    """One real request (two for churn); returns (expected status, the Lua arguments,
    description)."""
    special = {"describe": precheck_describe, "list": precheck_list, "start": precheck_start,
               "churn": precheck_churn, "toggle": precheck_toggle,
               "describe-mix": precheck_describe_mix, "operation": precheck_operation}
    if args.scenario in special:
        return special[args.scenario](args)
    want_status, data, what = precheck_stop(args)
    return want_status, ["stop", args.flow, data.decode()], what


def precheck_stop(args):
    """One real StopFlow; returns (expected status, expected body bytes, description)."""
    resp, data = request(args, PATH, {"flowName": args.flow})
    got = parse(data)
    if args.scenario in ("success", "success-1m"):
        want_status = 200
        problems = common_problems(resp, want_status)
        want = {"flowArn": "arn:aws:appflow:%s:%s:flow/%s" % (args.region, args.account,
                                                               args.flow),
                "flowStatus": "Suspended"}
        what = "200 body == %s (%d B)" % (json.dumps(want, separators=(",", ":")), len(data))
    else:
        want_status = 404
        problems = common_problems(resp, want_status)
        etype = resp.getheader("x-amzn-ErrorType")
        if etype != "ResourceNotFoundException":
            problems.append("x-amzn-ErrorType is %r, not ResourceNotFoundException" % etype)
        want = {"message": "Flow %s does not exist" % args.flow}
        what = "404 ResourceNotFoundException, body == %s (%d B)" % (
            json.dumps(want, separators=(",", ":")), len(data))
    if got != want:
        problems.append("body %r is not %s" % (data[:300], json.dumps(want)))
    fail(args, problems)
    return want_status, data, "pre-check: %s, x-amzn-RequestId present" % what


def run_wrk(args, conns, want_status, lua_args):
    """One wrk run. A {conns} in a start or churn name prefix becomes this run's connection
    count, so no run reuses an earlier run's clientTokens (which would replay their answers)
    or flow names (one a run stopped before deleting would be a conflict)."""
    if lua_args[0] in ("start", "churn"):
        lua_args = lua_args[:2] + [lua_args[2].replace("{conns}", str(conns))] + lua_args[3:]
    threads = max(1, min(args.threads, conns))
    pool = []
    if lua_args[0] == "toggle":
        # wrk gives each thread conns // threads connections: a flow for each, and one more
        # for the request wrk builds on the first thread before the run and never sends.
        per_thread = conns // threads + 1
        pool = flow_names(args, 0, per_thread * threads)
        if len(pool) > args.names[1]:
            raise SystemExit("http_wrk: toggle at %d connections needs %d flows; --names has %d"
                             % (conns, len(pool), args.names[1]))
        lua_args = lua_args[:3] + [str(per_thread)] + lua_args[4:]
        stuck = settle(args, pool)
        if stuck:
            raise SystemExit("http_wrk: %s: flows not Suspended before the run: %s"
                             % (args.target, " ".join(stuck[:10])))
    path = args.path if args.scenario == "operation" else PATHS.get(args.scenario, PATH)
    url = "http://%s:%d%s" % (args.host, args.port, path)
    cmd = [args.wrk, "-t", str(threads), "-c", str(conns), "-d", "%gs" % args.duration,
           "--latency", "-s", LUA, url, "--"] + lua_args
    log("%s: %s" % (args.target, " ".join(cmd[:-len(lua_args)] + [lua_args[0], "..."])))
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

    unsettled = settle(args, pool) if pool else []
    seconds = r["duration_us"] / 1e6
    responses = sum(r["statuses"].values())
    ok = min(r["statuses"].get(str(want_status), 0), r["body_ok"])
    sock = r["errors"]
    sock_errors = sock["connect"] + sock["read"] + sock["write"] + sock["timeout"]
    errors = responses - ok + sock_errors
    counts = ", ".join("%s: %d" % kv for kv in sorted(r["statuses"].items()))
    verified = "wrk: %d/%d responses %d with the pre-checked body (statuses {%s}" % (
        ok, responses, want_status, counts)
    if sock_errors:
        verified += "; socket errors connect %d read %d write %d timeout %d" % (
            sock["connect"], sock["read"], sock["write"], sock["timeout"])
    verified += ")"
    if pool and not unsettled:
        verified += "; after the run all %d flows of the pool stopped and read Suspended" % (
            len(pool))
    elif pool:
        verified += "; %d flows of the pool NOT Suspended after the run: %s" % (
            len(unsettled), " ".join(unsettled[:10]))
        errors += len(unsettled)
    return {
        "door": "http", "target": args.target,
        "scenario": args.operation if args.scenario == "operation" else args.scenario,
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
    ap.add_argument("--flow", help="flow name (default: bench_suspended, bench_missing "
                                   "for notfound, bench_described, bench_ondemand for start)")
    ap.add_argument("--page", type=int, default=100, help="list: maxResults (1-100)")
    ap.add_argument("--expect-file", help="describe: the expected body")
    ap.add_argument("--same-flow", action="store_true",
                    help="describe: a body with --expect-file's flowName, flowArn and "
                         "flowStatus will do (the peers)")
    ap.add_argument("--body-file", help="churn: the CreateFlow body, flowName @NAME@; "
                                        "operation: the request body (none without it)")
    ap.add_argument("--operation", help="operation: its name in the rows")
    ap.add_argument("--method", default="POST", choices=["POST", "GET"], help="operation")
    ap.add_argument("--path", help="operation: the request's path")
    ap.add_argument("--names", default="bench_:10000", metavar="PREFIX:COUNT",
                    help="toggle, describe-mix: the seeded flows PREFIX + zero-padded index")
    ap.add_argument("--conns", default="1,16,64", help="comma-separated connection counts")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (capped at conns)")
    ap.add_argument("--region", default="us-east-1", help="of the expected ARN")
    ap.add_argument("--account", default="000000000000", help="of the expected ARN")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = ap.parse_args()
    args.flow = args.flow or DEFAULT_FLOWS[args.scenario]
    if args.scenario == "describe" and not args.expect_file:
        ap.error("describe needs --expect-file")
    if args.same_flow and args.scenario != "describe":
        ap.error("--same-flow goes with describe")
    if args.scenario == "operation" and not (args.operation and args.path and args.expect_file):
        ap.error("operation needs --operation, --path and --expect-file")
    if args.scenario == "churn" and not args.body_file:
        ap.error("churn needs --body-file")
    if not 1 <= args.page <= 100:
        ap.error("--page takes 1 to 100")
    prefix, sep, count = args.names.rpartition(":")
    if not sep or not prefix or not count.isdigit() or int(count) < 1:
        ap.error("--names takes PREFIX:COUNT, e.g. bench_:10000")
    args.names = (prefix, int(count))
    try:
        conns = [int(c) for c in args.conns.split(",") if c.strip()]
    except ValueError:
        ap.error("--conns takes comma-separated integers")
    if not conns or min(conns) < 1 or args.duration <= 0:
        ap.error("--conns must be positive integers and --duration positive")

    want_status, lua_args, pre = precheck(args)
    log("%s %s" % (args.target, pre))
    for c in conns:
        row = run_wrk(args, c, want_status, lua_args)
        row["verified"] = "%s; %s" % (pre, row["verified"])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
