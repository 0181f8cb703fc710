#!/usr/bin/python3
"""A peer for the benchmarks: StopFlow over gRPC, written the ordinary Python way.

This is what a team would write instead of appflowd with Debian's python3-grpcio: stubs
generated from proto/appflow/v1/appflow.proto, a servicer class, and
grpc.server(futures.ThreadPoolExecutor(max_workers=N)). The flow table is a dict guarded by
one lock. It serves the same StopFlow semantics as appflowd (src/flows/service.c): the same
validation, state machine, gRPC codes and messages, and grpc-status-details-bin carrying a
google.rpc.Status whose ErrorInfo.reason is the AWS error type.

    /usr/bin/python3 bench/peers/python_grpc_server.py --port 0 --flows FILE [--workers 10]

Prints "python-grpcio listening: port=N flows=M workers=W" on stderr when ready; SIGTERM or
SIGINT stops it (exit 0). A bad seed file exits 2.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"

NAME_MAX = 256
DOMAIN = "appflow.amazonaws.com"
NAME_RE = re.compile(rb"[a-zA-Z0-9][a-zA-Z0-9_!@#.-]+")  # [\w!@#.-] with \w = ASCII word

# The proto's enum values, kept here as numbers so the table holds small ints only.
TRIGGERS = {"Scheduled": 1, "Event": 2, "OnDemand": 3}
ON_DEMAND = 3
STATUSES = {"Active": 1, "Deprecated": 2, "Deleted": 3, "Draft": 4, "Errored": 5, "Suspended": 6}
STATUS_AWS = {v: k for k, v in STATUSES.items()}
ACTIVE, ERRORED, SUSPENDED = 1, 5, 6


def generate_stubs():
    """protoc into a temporary directory (removed at exit); returns that directory."""
    out = tempfile.mkdtemp(prefix="appflow-py-peer-")
    cmd = [
        "protoc", "-I", PROTO_DIR, "-I", GOOGLEAPIS,
        "--python_out=" + out, "--grpc_python_out=" + out,
        "--plugin=protoc-gen-grpc_python=" + GRPC_PYTHON_PLUGIN,
        "appflow/v1/appflow.proto", "appflow/v1/options.proto",
        "google/api/annotations.proto", "google/api/http.proto",
        "google/rpc/status.proto", "google/rpc/error_details.proto",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        sys.exit("python-grpcio: protoc failed: " + res.stderr.strip())
    return out


def escape(raw):
    """Bytes outside printable ASCII, and the backslash, as \\xNN (af_escape)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else "\\x%02x" % b for b in raw)


def load_flows(path):
    """The seed file as {name: trigger << 4 | status}: a million flows in ~100 MB. Each entry
    is a CreateFlow request in AWS JSON plus flowStatus (README "The seed file"); StopFlow
    needs its flowName, triggerConfig.triggerType and flowStatus."""
    try:
        with open(path, "rb") as f:
            flows = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write("python-grpcio: %s: %s\n" % (path, e))
        sys.exit(2)
    if not isinstance(flows, list):
        sys.stderr.write("python-grpcio: %s: expected a JSON array of flows\n" % path)
        sys.exit(2)
    table = {}
    for i, fl in enumerate(flows):
        try:
            name, st = fl["flowName"], STATUSES[fl["flowStatus"]]
            trig = TRIGGERS[fl["triggerConfig"]["triggerType"]]
            raw = name.encode("utf-8")
            if len(raw) > NAME_MAX or not NAME_RE.fullmatch(raw):
                raise ValueError("invalid flowName %r" % name)
            if name in table:
                raise ValueError("duplicate flowName %r" % name)
        except KeyError as e:
            sys.stderr.write("python-grpcio: %s: flow %d: missing or unknown %s\n"
                             % (path, i, e))
            sys.exit(2)
        except (TypeError, AttributeError, ValueError) as e:
            sys.stderr.write("python-grpcio: %s: flow %d: %s\n" % (path, i, e))
            sys.exit(2)
        table[name] = trig << 4 | st
    return table


class StopFlowError(Exception):
    def __init__(self, aws_type, code, message):
        super().__init__(message)
        self.aws_type, self.code, self.message = aws_type, code, message


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--flows", required=True, help="seed file: a JSON array of flows")
    ap.add_argument("--workers", type=int, default=10,
                    help="ThreadPoolExecutor max_workers (10, as gRPC's Python examples)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="000000000000")
    args = ap.parse_args()

    table = load_flows(args.flows)
    lock = threading.Lock()

    stub_dir = generate_stubs()
    sys.path.insert(0, stub_dir)
    import grpc  # noqa: E402  (after the stubs exist)
    from appflow.v1 import appflow_pb2, appflow_pb2_grpc  # noqa: E402
    from google.rpc import error_details_pb2, status_pb2  # noqa: E402

    arn_prefix = "arn:aws:appflow:%s:%s:flow/" % (args.region, args.account)
    codes = {
        "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
        "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
        "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
        "ABORTED": grpc.StatusCode.ABORTED,
        "INTERNAL": grpc.StatusCode.INTERNAL,
    }

    def fail(aws_type, code, message):
        raise StopFlowError(aws_type, codes[code], message)

    def stop_flow(name):
        """The rules of src/flows/service.c; returns the ARN or raises StopFlowError."""
        if "\x00" in name:  # appflowd's gRPC decoder refuses these before the service sees them
            fail("SerializationException", "INVALID_ARGUMENT",
                 "field flow_name contains a NUL byte, which no AppFlow string may hold")
        raw = name.encode("utf-8", "surrogatepass")
        if not raw:
            fail("ValidationException", "INVALID_ARGUMENT",
                 "1 validation error detected: Value null at 'flowName' failed to satisfy "
                 "constraint: Member must not be null")
        if len(raw) > NAME_MAX:
            fail("ValidationException", "INVALID_ARGUMENT",
                 "1 validation error detected: Value at 'flowName' failed to satisfy "
                 "constraint: Member must have length less than or equal to %d" % NAME_MAX)
        if not NAME_RE.fullmatch(raw):
            fail("ValidationException", "INVALID_ARGUMENT",
                 "1 validation error detected: Value '%s' at 'flowName' failed to satisfy "
                 "constraint: Member must satisfy regular expression pattern: "
                 "[a-zA-Z0-9][\\w!@#.-]+" % escape(raw))
        changed = None
        with lock:
            v = table.get(name)
            if v is None:
                fail("ResourceNotFoundException", "NOT_FOUND", "Flow %s does not exist" % name)
            trig, st = v >> 4, v & 15
            if trig == ON_DEMAND:
                fail("UnsupportedOperationException", "FAILED_PRECONDITION",
                     "Flow %s is an on-demand flow: StopFlow applies only to scheduled and "
                     "event-triggered flows" % name)
            if st in (ACTIVE, ERRORED):
                table[name] = trig << 4 | SUSPENDED
                changed = st
            elif st != SUSPENDED:
                fail("ConflictException", "ABORTED",
                     "Flow %s is in %s state and cannot be stopped: only Active or Errored "
                     "flows can be" % (name, STATUS_AWS[st]))
        if changed is not None:
            sys.stderr.write("python-grpcio: info: flow %s: %s -> FLOW_STATUS_SUSPENDED\n"
                             % (name, appflow_pb2.FlowStatus.Name(changed)))
        return arn_prefix + name

    class AppFlowService(appflow_pb2_grpc.AppFlowServiceServicer):
        def StopFlow(self, request, context):
            try:
                arn = stop_flow(request.flow_name)
            except StopFlowError as e:
                info = error_details_pb2.ErrorInfo(reason=e.aws_type, domain=DOMAIN)
                st = status_pb2.Status(code=e.code.value[0], message=e.message)
                st.details.add().Pack(info)
                context.set_trailing_metadata((("grpc-status-details-bin",
                                                st.SerializeToString()),))
                context.abort(e.code, e.message)
            return appflow_pb2.StopFlowResponse(
                flow_arn=arn, flow_status=appflow_pb2.FLOW_STATUS_SUSPENDED)

    # so_reuseport off: a taken port fails instead of silently sharing it (as appflowd does).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         options=[("grpc.so_reuseport", 0)])
    appflow_pb2_grpc.add_AppFlowServiceServicer_to_server(AppFlowService(), server)
    try:
        port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    except RuntimeError as e:
        shutil.rmtree(stub_dir, ignore_errors=True)
        sys.stderr.write("python-grpcio: cannot listen on %s:%d: %s\n" % (args.host, args.port, e))
        sys.exit(1)
    if port == 0:
        shutil.rmtree(stub_dir, ignore_errors=True)
        sys.stderr.write("python-grpcio: cannot listen on %s:%d\n" % (args.host, args.port))
        sys.exit(1)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    sys.stderr.write("python-grpcio listening: port=%d flows=%d workers=%d\n"
                     % (port, len(table), args.workers))
    sys.stderr.flush()
    while not stop.wait(3600):
        pass
    server.stop(grace=2).wait()
    shutil.rmtree(stub_dir, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
