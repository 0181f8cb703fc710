#!/usr/bin/python3
"""Runs grpcload (bench/grpcload.c) at several load levels, or writes the seed file it needs.

Load:
  grpc_mix.py --grpcload PATH --target NAME --port P --levels 1x1,4x32,16x64 --duration S
              [--host 127.0.0.1] [--names bench_:10000] [--scenario mix] [--expect ok]
              [--warmup S] [--threads T] [--rpc stop|toggle|describe]
  runs grpcload once per level CONNSxSTREAMS against HOST:P and passes its JSON line (one per
  level, bench/FORMAT.md) through to stdout unchanged, after checking that it parses and has
  every field. NAME is the "target" label in those lines (appflowd, canned, ...). --rpc picks
  grpcload's mode: stop (StopFlow of the next name, the default), toggle (each call slot starts
  and stops a flow of its own, so every call changes a flow's state; the slots take the first
  CONNS x STREAMS names) or describe (DescribeFlow of the next name). grpcload's stderr passes
  through. Exit status 1 if a run fails or prints anything else.

Seed:
  grpc_mix.py --write-seed FILE [--names bench_:10000] [--status Suspended]
  writes COUNT Scheduled flows named PREFIX + zero-padded index with flowStatus --status, plus
  a Suspended Scheduled flow "bench_suspended" for the fixed-body (h2load) runs. Each entry is
  a whole CreateFlow request in AWS JSON plus "flowStatus" (README "The seed file"): a
  rate(1hours) schedule, an S3-to-S3 copy with one destination and a projection task, the
  least AppFlow's rules accept (about 450 bytes a flow, written compactly). The index is
  padded to max(5, digits in COUNT-1), the rule grpcload uses: COUNT <= 100000 gives
  bench_00000 .. bench_99999, COUNT = 1000000 gives bench_000000 .. bench_999999. Written in
  chunks from string templates, so a million flows (475 MB) take about two seconds.
"""

import argparse
import json
import re
import subprocess
import sys

MIN_DIGITS = 5  # keep in step with MIN_DIGITS in grpcload.c
FLOW_NAME_MAX = 256
FLOW_NAME = re.compile(r"[a-zA-Z0-9][\w!@#.-]+\Z", re.ASCII)
STATUSES = ("Active", "Deprecated", "Deleted", "Draft", "Errored", "Suspended")
FIELDS = {"door": str, "target": str, "scenario": str, "conns": int, "streams": int,
          "requests": int, "seconds": (int, float), "rps": (int, float),
          "p50_ms": (int, float), "p99_ms": (int, float), "ok": int, "errors": int,
          "verified": str}
CHUNK = 10000  # flows per write: large enough to be fast, small enough to stay streamed


def name_width(count):
    return max(MIN_DIGITS, len(str(count - 1)))


def names_arg(text):
    prefix, sep, count = text.rpartition(":")
    if not sep or not prefix or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected PREFIX:COUNT (e.g. bench_:10000), not {text!r}")
    count = int(count)
    last = f"{prefix}{count - 1:0{name_width(count)}d}"
    if len(last) > FLOW_NAME_MAX or not FLOW_NAME.match(last):
        raise argparse.ArgumentTypeError(f"{last!r} is not a valid flow name")
    return prefix, count


def levels_arg(text):
    levels = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)x(\d+)", part.strip())
        if not m or int(m[1]) < 1 or int(m[2]) < 1:
            raise argparse.ArgumentTypeError(
                f"expected CONNSxSTREAMS,... (e.g. 4x32), not {part!r}")
        levels.append((int(m[1]), int(m[2])))
    return levels


# One seed entry (README "The seed file": CreateFlow's request in AWS JSON plus flowStatus), the
# smallest a Scheduled flow can be under AppFlow's rules: an S3-to-S3 copy with a schedule, one
# destination and a projection task. Written compactly from string templates: json.dumps per
# entry would take a million flows from about a second to several.
FLOW_BODY = ('"triggerConfig":{"triggerType":"Scheduled","triggerProperties":{"Scheduled":'
             '{"scheduleExpression":"rate(1hours)"}}},'
             '"sourceFlowConfig":{"connectorType":"S3","sourceConnectorProperties":'
             '{"S3":{"bucketName":"src"}}},'
             '"destinationFlowConfigList":[{"connectorType":"S3","destinationConnectorProperties":'
             '{"S3":{"bucketName":"dst"}}}],'
             '"tasks":[{"sourceFields":["a"],"taskType":"Filter",'
             '"connectorOperator":{"S3":"PROJECTION"}}]}')


def seed_entry(name, status):
    """One flow of the seed file as compact JSON text (name and status need no escaping)."""
    return f'{{"flowName":"{name}","flowStatus":"{status}",{FLOW_BODY}'


def write_seed(path, prefix, count, status):
    width = name_width(count)
    head = '{"flowName":"'
    tail = f'","flowStatus":"{status}",{FLOW_BODY},\n'
    with open(path, "w", encoding="ascii") as f:
        f.write("[\n")
        for start in range(0, count, CHUNK):
            f.write("".join(f"{head}{prefix}{i:0{width}d}{tail}"
                            for i in range(start, min(start + CHUNK, count))))
        f.write(seed_entry("bench_suspended", "Suspended") + "\n]\n")
    print(f"grpc_mix: wrote {count + 1} flows to {path} "
          f"({prefix}{0:0{width}d} .. {prefix}{count - 1:0{width}d}, bench_suspended)",
          file=sys.stderr)


def check_line(line):
    """The parsed line, or raises ValueError saying what is wrong with it."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for key, kind in FIELDS.items():
        if not isinstance(obj.get(key), kind) or isinstance(obj.get(key), bool):
            raise ValueError(f"field {key!r} missing or of the wrong type")
    return obj


def run_level(args, conns, streams):
    cmd = [args.grpcload, "--target", f"{args.host}:{args.port}", "--conns", str(conns),
           "--streams", str(streams), "--duration", str(args.duration),
           "--names", f"{args.names[0]}:{args.names[1]}", "--expect", args.expect,
           "--label", args.target, "--scenario", args.scenario, "--rpc", args.rpc]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 1:
        sys.exit(f"grpc_mix: {' '.join(cmd)}: exit status {proc.returncode}, "
                 f"{len(lines)} lines on stdout (expected 1)")
    try:
        check_line(lines[0])
    except ValueError as e:
        sys.exit(f"grpc_mix: grpcload printed a bad line ({e}): {lines[0]}")
    print(lines[0], flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write-seed", metavar="FILE", help="write a seed file and exit")
    p.add_argument("--status", choices=STATUSES, default="Suspended",
                   help="flowStatus of the seeded PREFIX flows (default Suspended)")
    p.add_argument("--grpcload", metavar="PATH", help="the grpcload binary")
    p.add_argument("--target", metavar="NAME", help='the JSON "target" label, e.g. appflowd')
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--levels", type=levels_arg, metavar="CxM,...")
    p.add_argument("--duration", type=float, metavar="S", help="measured seconds per level")
    p.add_argument("--warmup", type=float, metavar="S", help="warm-up seconds (grpcload: 1)")
    p.add_argument("--threads", type=int, metavar="T", help="grpcload threads (grpcload: 1)")
    p.add_argument("--names", type=names_arg, default=("bench_", 10000), metavar="PREFIX:COUNT",
                   help="flow names PREFIX + zero-padded index (default bench_:10000)")
    p.add_argument("--scenario", default="mix")
    p.add_argument("--expect", choices=("ok", "notfound"), default="ok")
    p.add_argument("--rpc", choices=("stop", "toggle", "describe"), default="stop",
                   help="grpcload's mode (default stop)")
    args = p.parse_args()
    if args.write_seed is None:
        missing = [flag for flag in ("grpcload", "target", "port", "levels", "duration")
                   if getattr(args, flag) is None]
        if missing:
            p.error("without --write-seed, these are required: "
                    + ", ".join("--" + m for m in missing))
    return args


def main():
    args = parse_args()
    if args.write_seed is not None:
        write_seed(args.write_seed, args.names[0], args.names[1], args.status)
        return
    for conns, streams in args.levels:
        run_level(args, conns, streams)


if __name__ == "__main__":
    main()
