"""Shared helpers for appflowd's end-to-end tests.

Environment (set by ctest, see tests/CMakeLists.txt):
  APPFLOWD       path of the appflowd binary under test
  APPFLOWCTL     path of the appflowctl binary under test
  AF_SOURCE_DIR  the source tree (for proto/)

What is here:
  stubs()               the Python protobuf/gRPC modules, generated once per process
  Server / start_server a running appflowd on 127.0.0.1:<free port>, its stderr captured
  error_parts(e)        (grpc code, details, ErrorInfo reason, ErrorInfo domain) of an RpcError
  write_seed(...)       a seed file in a temporary directory
  ServerTestCase        a TestCase whose servers are stopped (and checked) after each test

Stores (--store):
  E2E_STORE             AF_E2E_STORE: memory (default), sqlite or postgresql; every server a
                        test starts without its own --store gets a new, empty store of that kind
                        (ctest runs the lifecycle tests once per store)
  new_store_url(kind)   a URL for a new, empty store of a kind
  pg_cluster()          this process's throwaway PostgreSQL cluster (tests/pg_cluster.py),
                        started on first use and stopped at exit

For the AWS REST-JSON door (--http-listen):
  start_http_server     start_server with the AWS door on 127.0.0.1:<free port> (.http_port)
  aws_request / HttpReply   one raw HTTP/1.1 request (http.client) and its reply
  AWS_HTTP_STATUS, AWS_GRPC_CODE, aws_msg_*   the error table and the service's messages
  aws_client_env(...)   a clean environment for AWS clients run as processes (CLI, Node)

For the flow lifecycle (CreateFlow ... ListTagsForResource):
  s3_flow(...)          CreateFlow's members for a realistic S3 -> S3 flow (AWS JSON shape)
  to_proto_json(...)    those members in protobuf's JSON mapping (for json_format.ParseDict)
  aws_data_path(...)    a botocore data directory whose AppFlow model has clientToken
  isolate_boto3_env()   this process's AWS_* environment, clean, before importing boto3
  boto3_appflow(...)    a boto3 AppFlow client for 127.0.0.1:<port>
  grpc_error_of(...)    (code, details, reason) of a gRPC call that must fail
  tampered(token, at)   a token with one character changed
  package_dir(name)     where an installed Python package lives, without importing it
"""

import atexit
import datetime
import importlib.util
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest

import grpc

APPFLOWD = os.environ.get("APPFLOWD", "")
APPFLOWCTL = os.environ.get("APPFLOWCTL", "")
SOURCE_DIR = os.environ.get(
    "AF_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
GOOGLEAPIS = "/usr/share/gocode/src/github.com/gogo/googleapis"
ERROR_DOMAIN = "appflow.amazonaws.com"
METHOD = "/appflow.v1.AppFlowService/StopFlow"

# Generous for ASan on a loaded 2-core machine; reached only when something is wrong.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
LOG_TIMEOUT = 10.0

# Other doors may add their own key=value pairs (e.g. http=... http_port=...).
STARTUP_RE = re.compile(
    r"^appflowd (?P<version>\S+) listening: grpc=(?P<listen>\S+) port=(?P<port>\d+)"
    r"(?: \w+=\S+)*? flows=(?P<flows>\d+) threads=(?P<threads>\d+) region=(?P<region>\S+)"
    r"(?: \w+=\S+)*$"
)
TRANSITION_RE = re.compile(
    r"^appflowd: info: flow (?P<name>\S+): (?P<before>FLOW_STATUS_[A-Z]+) -> FLOW_STATUS_SUSPENDED$"
)

_tempdirs = []


def _cleanup_tempdirs():
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup_tempdirs)


def tempdir(prefix="appflowd-e2e-"):
    """A temporary directory removed when the process exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def require_binaries(*names):
    """Fails loudly (rather than skipping) when the binaries under test are not given."""
    for name in names:
        path = os.environ.get(name, "")
        if not path or not os.access(path, os.X_OK):
            raise SystemExit(f"{name} must name an executable (got {path!r})")


# ---------------------------------------------------------------------------------------------
# Generated Python modules

_stubs = None
_stubs_lock = threading.Lock()


def stubs():
    """Generates the Python modules for the contract and google.rpc once per process, into a
    temporary directory appended to sys.path (Debian's `google` is a namespace package, so the
    generated google/api and google/rpc join it; appending keeps google.protobuf Debian's).
    Returns a namespace with appflow_pb2, appflow_pb2_grpc, status_pb2, error_details_pb2."""
    global _stubs
    with _stubs_lock:
        if _stubs is not None:
            return _stubs
        out = tempdir("appflowd-e2e-stubs-")
        cmd = [
            "protoc",
            "-I", os.path.join(SOURCE_DIR, "proto"),
            "-I", GOOGLEAPIS,
            "-I", "/usr/include",
            "--python_out=" + out,
            "--grpc_python_out=" + out,
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
            "appflow/v1/appflow.proto",
            "appflow/v1/options.proto",
            "google/api/annotations.proto",
            "google/api/http.proto",
            "google/rpc/status.proto",
            "google/rpc/error_details.proto",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"protoc failed ({r.returncode}): {r.stderr}")
        sys.path.append(out)
        import google.protobuf  # must still be Debian's, not shadowed by the generated dir
        from appflow.v1 import appflow_pb2, appflow_pb2_grpc, options_pb2
        from google.rpc import error_details_pb2, status_pb2

        if not google.protobuf.__file__ or out in google.protobuf.__file__:
            raise RuntimeError("generated modules shadow google.protobuf")
        _stubs = types.SimpleNamespace(
            dir=out,
            appflow_pb2=appflow_pb2,
            appflow_pb2_grpc=appflow_pb2_grpc,
            options_pb2=options_pb2,
            status_pb2=status_pb2,
            error_details_pb2=error_details_pb2,
        )
        return _stubs


def error_parts(e):
    """(grpc.StatusCode, details, ErrorInfo reason, ErrorInfo domain) of a grpc.RpcError.
    reason and domain are None when grpc-status-details-bin is absent or holds no ErrorInfo.
    Raises AssertionError when the details trailer is present but inconsistent with the call's
    own status (code or message differ), since clients may read either."""
    s = stubs()
    code, details = e.code(), e.details()
    reason = domain = None
    for key, value in e.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        st = s.status_pb2.Status()
        st.ParseFromString(value)
        if st.code != code.value[0]:
            raise AssertionError(f"google.rpc.Status code {st.code} != gRPC status {code}")
        if st.message != details:
            raise AssertionError(f"google.rpc.Status message {st.message!r} != details {details!r}")
        for any_ in st.details:
            info = s.error_details_pb2.ErrorInfo()
            if any_.Is(info.DESCRIPTOR):
                any_.Unpack(info)
                reason, domain = info.reason, info.domain
    return code, details, reason, domain


def channel(port):
    """A plaintext channel to 127.0.0.1:port that ignores any proxy settings."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])


def identity(b):
    return b


def raw_stop_flow(chan):
    """StopFlow on chan taking and returning raw bytes (for hand-encoded requests)."""
    return chan.unary_unary(METHOD, request_serializer=identity, response_deserializer=identity)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_flow_name(raw):
    """A StopFlowRequest with field 1 (flow_name) holding exactly the bytes raw."""
    return b"\x0a" + varint(len(raw)) + raw


# ---------------------------------------------------------------------------------------------
# Seeds

def flow(name, trigger="Scheduled", status="Active", **extra):
    """A seed entry: a whole CreateFlow request (S3 to S3, see s3_flow) with this trigger, plus
    its flowStatus; extra members (description, tags, ...) replace or add to it."""
    d = s3_flow(name, trigger)
    d["flowStatus"] = status
    d.update(extra)
    return d


def write_seed(flows, directory=None, name="flows.json", text=None):
    """Writes flows (a list of dicts) as a JSON seed file, or text as is; returns its path."""
    directory = directory or tempdir()
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        if text is not None:
            f.write(text)
        else:
            json.dump(flows, f, indent=1, ensure_ascii=False)
    return path


# ---------------------------------------------------------------------------------------------
# The server

_live = []  # servers not yet stopped, killed at exit as a last resort


def _kill_leftovers():
    for s in list(_live):
        try:
            s.stop()
        except Exception:  # pragma: no cover - last resort
            pass


atexit.register(_kill_leftovers)


class ServerExitedError(AssertionError):
    pass


class Server:
    """A running appflowd. stderr is read by a background thread into a list of lines."""

    def __init__(self, argv, env=None, stdout=subprocess.PIPE):
        """stdout: where the server's standard output goes; read into stdout_lines() only when
        it is a pipe of ours (the default)."""
        self.argv = argv
        self._lines = []
        self._out = []
        self._cond = threading.Condition()
        self._eof = False
        self.status = None
        self.killed = False
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
        )
        _live.append(self)
        self.pid = self.proc.pid
        self._err_thread = threading.Thread(target=self._read, args=(self.proc.stderr, True),
                                            daemon=True)
        self._out_thread = threading.Thread(target=self._read, args=(self.proc.stdout, False),
                                            daemon=True) if self.proc.stdout else None
        self._err_thread.start()
        if self._out_thread:
            self._out_thread.start()
        self.port = None
        self.startup = None

    def _read(self, pipe, is_err):
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                (self._lines if is_err else self._out).append(line)
                self._cond.notify_all()
        pipe.close()
        if is_err:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def lines(self):
        """A copy of the stderr lines read so far."""
        with self._cond:
            return list(self._lines)

    def stdout_lines(self):
        with self._cond:
            return list(self._out)

    def stderr_text(self):
        return "\n".join(self.lines())

    def wait_for_line(self, pred, timeout=LOG_TIMEOUT, start=0):
        """Waits until a stderr line (index >= start) satisfies pred (a callable or a compiled
        regex); returns it (or the match). Raises AssertionError on timeout or end of output."""
        if isinstance(pred, re.Pattern):
            rx = pred
            pred = rx.search
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self._lines):
                    m = pred(self._lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if self._eof:
                    raise ServerExitedError(
                        f"appflowd's stderr ended without the expected line:\n{self.stderr_text_locked()}")
                if left <= 0:
                    raise AssertionError(
                        f"no expected line after {timeout}s; stderr so far:\n{self.stderr_text_locked()}")
                self._cond.wait(left)

    def stderr_text_locked(self):
        return "\n".join(self._lines)

    def wait_started(self, timeout=START_TIMEOUT):
        try:
            m = self.wait_for_line(STARTUP_RE, timeout)
        except AssertionError:
            status = self.stop()
            raise AssertionError(
                f"appflowd did not start (exit status {status}); argv {self.argv}\n"
                f"stderr:\n{self.stderr_text()}") from None
        self.startup = m
        self.port = int(m.group("port"))
        return self

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit status, or raises subprocess.TimeoutExpired."""
        status = self.proc.wait(timeout)
        self._finish()
        return status

    def _finish(self):
        self._err_thread.join(10)
        if self._out_thread:
            self._out_thread.join(10)
        self.status = self.proc.returncode
        if self in _live:
            _live.remove(self)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stops the server (sig, then SIGKILL after timeout as a last resort) and returns its
        exit status (negative: killed by that signal). Safe to call more than once."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait()
        self._finish()
        return self.status

    def check_stopped_cleanly(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stops the server and raises AssertionError with its stderr unless it exited 0."""
        status = self.stop(sig, timeout)
        if self.killed:
            raise AssertionError(
                f"appflowd (pid {self.pid}) did not exit within {timeout}s of "
                f"{signal.Signals(sig).name} and was killed; stderr:\n{self.stderr_text()}")
        if status != 0:
            raise AssertionError(
                f"appflowd (pid {self.pid}) exited with status {status}, not 0; stderr:\n"
                f"{self.stderr_text()}")
        return status

    def transitions(self):
        """[(name, before)] of every state transition logged so far, in order."""
        out = []
        for line in self.lines():
            m = TRANSITION_RE.match(line)
            if m:
                out.append((m.group("name"), m.group("before")))
        return out

    def transitions_of(self, name):
        return [b for n, b in self.transitions() if n == name]

    @property
    def http_port(self):
        """The AWS REST-JSON door's port (http_port=N on the start-up line); None when the
        server was started without --http-listen or has not started yet."""
        if self.startup is None:
            return None
        m = HTTP_PORT_RE.search(self.startup.group(0))
        return int(m.group("http_port")) if m else None

    @property
    def admin_port(self):
        """The admin listener's port (admin_port=N on the start-up line); None without
        --admin-listen."""
        if self.startup is None:
            return None
        m = ADMIN_PORT_RE.search(self.startup.group(0))
        return int(m.group("admin_port")) if m else None

    def control(self, path, body=None, method="POST", headers=None):
        """Calls the emulator control API (needs --admin-listen): (status, decoded JSON).
        headers add to the request's (x-amz-account-id, say)."""
        data = b"" if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=120)
        try:
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json", **(headers or {})})
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        return r.status, json.loads(raw) if raw else None

    def advance(self, seconds):
        """Moves the emulator's clock on by seconds; the control API's answer."""
        status, out = self.control("/emulator/clock", {"advanceSeconds": seconds})
        if status != 200:
            raise AssertionError(f"POST /emulator/clock: {status} {out}")
        return out


# ---------------------------------------------------------------------------------------------
# Stores

E2E_STORE = os.environ.get("AF_E2E_STORE", "") or "memory"
_pg = None
_pg_lock = threading.Lock()


def pg_cluster():
    """This process's PostgreSQL cluster (a PgCluster), started on first use, stopped at exit."""
    global _pg
    with _pg_lock:
        if _pg is None:
            sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))
            from pg_cluster import PgCluster

            cluster = PgCluster()
            cluster.start()
            atexit.register(cluster.stop)
            _pg = cluster
        return _pg


def _memory_run_only(why):
    """A test class the SQLite and PostgreSQL runs (AF_E2E_STORE) would only repeat: it runs
    once, on the memory store's run."""
    return unittest.skipUnless(E2E_STORE == "memory",
                               f"{why}: runs once, on the memory store's run")


# A test class whose processes never open a store (run_appflowd without --store).
store_independent = _memory_run_only("opens no store")
# A test class of a door's own race, whose servers' stores sit idle while it runs.
door_only = _memory_run_only("a door's own race, the store idle")


def new_store_url(kind=None):
    """A URL for a new, empty store: memory:, a database file in a temporary directory, or a new
    schema in this process's PostgreSQL cluster."""
    kind = kind or E2E_STORE
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return "sqlite:" + os.path.join(tempdir("appflowd-e2e-sqlite-"), "flows.db")
    if kind == "postgresql":
        pg = pg_cluster()
        return pg.uri(options=f"-csearch_path={pg.create_schema()}")
    raise ValueError(f"AF_E2E_STORE must be memory, sqlite or postgresql, not {kind!r}")


def server_argv(flows_path=None, *extra, threads=2, listen="127.0.0.1:0"):
    argv = [APPFLOWD, "--grpc-listen", listen, "--threads", str(threads)]
    if flows_path is not None:
        argv += ["--flows", flows_path]
    if E2E_STORE != "memory" and "--store" not in extra:
        argv += ["--store", new_store_url()]
    if "--run-duration" not in extra:  # runs end as they start, unless a test says otherwise
        argv += ["--run-duration", "0"]
    return argv + list(extra)


def start_server(flows=None, *extra, threads=2, flows_path=None):
    """Starts appflowd seeded with flows (a list of dicts) or flows_path, plus extra flags,
    and waits for its start-up line. Returns the Server (its .port is set)."""
    require_binaries("APPFLOWD")
    if flows is not None and flows_path is None:
        flows_path = write_seed(flows)
    return Server(server_argv(flows_path, *extra, threads=threads)).wait_started()


def run_appflowd(*args, timeout=STOP_TIMEOUT):
    """Runs appflowd to completion (for flags that make it exit); returns CompletedProcess."""
    require_binaries("APPFLOWD")
    return subprocess.run([APPFLOWD, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def wait_until(cond, timeout=LOG_TIMEOUT, interval=0.01, what="condition"):
    """Polls cond() until it is true; raises AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Sentinels:
    """Seeded Scheduled/Active flows used as log barriers: stopping one logs a transition, and
    stderr is written in order, so once that line is read every line logged before it has been
    read too. This lets a test check that something was NOT logged without sleeping."""

    def __init__(self, prefix="sentinel", n=64):
        self.names = [f"{prefix}_{i:03d}" for i in range(n)]
        self._next = 0
        self._lock = threading.Lock()

    def flows(self):
        return [flow(n) for n in self.names]

    def barrier(self, server, stub):
        with self._lock:
            name = self.names[self._next]
            self._next += 1
        s = stubs()
        stub.StopFlow(s.appflow_pb2.StopFlowRequest(flow_name=name), timeout=10)
        server.wait_for_line(lambda l: (m := TRANSITION_RE.match(l)) and m.group("name") == name)


class ServerTestCase(unittest.TestCase):
    """Servers started with self.start() are stopped after the test, and the test fails (with
    the server's stderr) unless each exited with status 0."""

    def start(self, flows=None, *extra, threads=2, flows_path=None):
        srv = start_server(flows, *extra, threads=threads, flows_path=flows_path)
        self.addCleanup(srv.check_stopped_cleanly)
        return srv

    def start_http(self, flows=None, *extra, threads=2, http_threads=2, flows_path=None):
        """Like start(), with the AWS REST-JSON door too (the Server's .http_port)."""
        srv = start_http_server(flows, *extra, threads=threads, http_threads=http_threads,
                                flows_path=flows_path)
        self.addCleanup(srv.check_stopped_cleanly)
        return srv

    def assertExitedCleanly(self, server, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        try:
            server.check_stopped_cleanly(sig, timeout)
        except AssertionError as e:
            self.fail(str(e))


# ---------------------------------------------------------------------------------------------
# The AWS REST-JSON door

HTTP_PORT_RE = re.compile(r" http=(?P<http>\S+) http_port=(?P<http_port>\d+)(?= |$)")
ADMIN_PORT_RE = re.compile(r" admin=(?P<admin>\S+) admin_port=(?P<admin_port>\d+)(?= |$)")
# x-amzn-RequestId: a random (version 4) UUID, lower-case as the server writes it.
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# --max-request-bytes's default, on both doors; tests that probe the limit start their server
# with a smaller one and use aws_msg_too_large(limit).
MAX_BODY = 1024 * 1024

# The error table of docs/ARCHITECTURE.md (README adds the door's own refusals).
AWS_HTTP_STATUS = {
    "ValidationException": 400,
    "SerializationException": 400,
    "UnsupportedOperationException": 400,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "AccessDeniedException": 403,
    "UnknownOperationException": 404,
    "MethodNotAllowedException": 405,
    "InternalServerException": 500,
    "NotImplementedException": 501,
    "ServiceUnavailableException": 503,
    "RequestTimeoutException": 504,
}
AWS_GRPC_CODE = {
    "ValidationException": grpc.StatusCode.INVALID_ARGUMENT,
    "SerializationException": grpc.StatusCode.INVALID_ARGUMENT,
    "UnsupportedOperationException": grpc.StatusCode.FAILED_PRECONDITION,
    "ResourceNotFoundException": grpc.StatusCode.NOT_FOUND,
    "ConflictException": grpc.StatusCode.ABORTED,
    "ServiceQuotaExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ThrottlingException": grpc.StatusCode.UNAVAILABLE,
    "AccessDeniedException": grpc.StatusCode.PERMISSION_DENIED,
    "InternalServerException": grpc.StatusCode.INTERNAL,
    "NotImplementedException": grpc.StatusCode.UNIMPLEMENTED,
    "ServiceUnavailableException": grpc.StatusCode.UNAVAILABLE,
    "RequestTimeoutException": grpc.StatusCode.DEADLINE_EXCEEDED,
}


# The service's messages (src/flows/service.c, call.c; src/bridge/http.c), as every client
# shows them.
def aws_msg_not_found(name):
    return f"Flow {name} does not exist"


def aws_msg_on_demand(name):
    return (f"Flow {name} is an on-demand flow: StopFlow applies only to scheduled and "
            "event-triggered flows")


def aws_msg_cannot_stop(name, status):
    """status in AWS spelling: Draft, Deprecated, Deleted."""
    return (f"Flow {name} is in {status} state and cannot be stopped: only Active or Errored "
            "flows can be")


# flowName absent (a present "" is a value: it fails the pattern, see AWS_MSG_NAME_EMPTY).
AWS_MSG_NAME_NULL = ("1 validation error detected: Value null at 'flowName' failed to satisfy "
                     "constraint: Member must not be null")
NAME_PATTERN = "[a-zA-Z0-9][\\w!@#.-]+"
# A value quoted in a validation message is cut at this many bytes of its escaped text.
QUOTE_MAX = 256


def aws_shown(value, limit=QUOTE_MAX):
    """value (str or bytes) as a validation message quotes it: bytes outside printable ASCII and
    the backslash as \\xNN, cut before the escape that would pass limit bytes."""
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    out = []
    n = 0
    for b in raw:
        piece = chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}"
        if n + len(piece) > limit:
            break
        out.append(piece)
        n += len(piece)
    return "".join(out)


def _name_error_pattern(shown):
    return (f"Value '{shown}' at 'flowName' failed to satisfy constraint: Member must satisfy "
            f"regular expression pattern: {NAME_PATTERN}")


def aws_msg_name_pattern(shown):
    """shown: the name as the message quotes it (bytes outside printable ASCII as \\xNN)."""
    return "1 validation error detected: " + _name_error_pattern(shown)


AWS_MSG_NAME_EMPTY = aws_msg_name_pattern("")


def name_matches_pattern(name):
    """Whether name matches flowName's pattern as Java's matches() (\\w is ASCII there)."""
    return re.fullmatch(r"[a-zA-Z0-9][\w!@#.-]+", name, re.ASCII) is not None


def aws_msg_name_too_long(name):
    """A flowName over 256 characters: the value quoted (its first 256 escaped bytes); a name
    that breaks the pattern too gets both errors, the pattern's first."""
    shown = aws_shown(name)
    length = (f"Value '{shown}' at 'flowName' failed to satisfy constraint: Member must have "
              "length less than or equal to 256")
    if name_matches_pattern(name):
        return "1 validation error detected: " + length
    return f"2 validation errors detected: {_name_error_pattern(shown)}; {length}"


def aws_msg_too_large(limit=MAX_BODY):
    """The AWS door's 413 ValidationException for a body over --max-request-bytes=limit."""
    return (f"The request body is over appflowd's limit of {limit} bytes "
            "(--max-request-bytes)")


AWS_MSG_TOO_LARGE = aws_msg_too_large()


def start_http_server(flows=None, *extra, threads=2, http_threads=2, flows_path=None):
    """start_server with the AWS REST-JSON door on 127.0.0.1:0 too; .http_port is its port."""
    srv = start_server(flows, "--http-listen", "127.0.0.1:0", "--http-threads",
                       str(http_threads), *extra, threads=threads, flows_path=flows_path)
    if srv.http_port is None:
        srv.stop()
        raise AssertionError(f"no http_port= on the start-up line: {srv.startup.group(0)!r}")
    return srv


class HttpReply:
    """One HTTP reply: status, reason, headers (list of (name, value) as sent), body (bytes),
    and sockname, the client's local address the request went out on."""

    def __init__(self, status, reason, headers, body, sockname=None):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.sockname = sockname

    def header_values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name):
        """The header's only value; None when absent. AssertionError when sent more than once."""
        vals = self.header_values(name)
        if len(vals) > 1:
            raise AssertionError(f"header {name} sent {len(vals)} times: {vals}")
        return vals[0] if vals else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def request_id(self):
        return self.header("x-amzn-RequestId")

    @property
    def error_type(self):
        return self.header("x-amzn-ErrorType")

    @property
    def message(self):
        """The error body's "message"; AssertionError unless the body is {"message": str}."""
        body = self.json()
        if not isinstance(body, dict) or list(body) != ["message"] or not isinstance(
                body["message"], str):
            raise AssertionError(f"error body is not {{\"message\": str}}: {self.body!r}")
        return body["message"]

    def __repr__(self):
        return f"HttpReply({self.status}, {self.headers!r}, {self.body[:300]!r})"


def http_connection(port, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def aws_request(port, body=b"{}", method="POST", path="/stop-flow", headers=None, conn=None,
                timeout=10, chunked=False):
    """Sends one request to the AWS door on 127.0.0.1:port and reads the whole reply.
    body: bytes, str, a dict/list (sent as JSON) or None (no body); headers replace the
    default Content-Type: application/json. conn: an http.client.HTTPConnection to reuse (kept
    open, for keep-alive); else a new connection is opened and closed. chunked: send the body
    with Transfer-Encoding: chunked (in 8 KiB chunks) instead of a Content-Length."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    hdrs = {"Content-Type": "application/json"} if headers is None else dict(headers)
    own = conn is None
    conn = conn or http_connection(port, timeout)
    try:
        if chunked:
            chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)]
            conn.request(method, path, body=iter(chunks), headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        sockname = conn.sock.getsockname() if conn.sock is not None else None
        r = conn.getresponse()
        data = r.read()
        return HttpReply(r.status, r.reason, r.getheaders(), data, sockname)
    finally:
        if own:
            conn.close()


def aws_stop_flow(port, name, conn=None):
    """StopFlow over the AWS door: POST /stop-flow {"flowName": name}."""
    return aws_request(port, {"flowName": name}, conn=conn)


def aws_client_env(**more):
    """A clean environment for AWS clients run as processes (AWS CLI, Node): dummy
    credentials, region us-east-1, empty config and credentials files and HOME in a temporary
    directory, no pager, no instance metadata, no proxy; PATH from this process."""
    home = tempdir("appflowd-e2e-awshome-")
    config = os.path.join(home, "config")
    creds = os.path.join(home, "credentials")
    for p in (config, creds):
        open(p, "w").close()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": config,
        "AWS_SHARED_CREDENTIALS_FILE": creds,
        "AWS_PAGER": "",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(more)
    return env


# ---------------------------------------------------------------------------------------------
# The platform services: grpc.health.v1 and grpc.reflection (v1alpha and v1)

GRPC_PROTO = "/usr/share/grpc-proto"
_platform = None


def platform_stubs():
    """Python modules for grpc.health.v1.Health and grpc.reflection.{v1alpha,v1}.ServerReflection,
    generated once per process from Debian's grpc-proto. Modules generated as grpc/health/...
    would shadow the grpc package (docs/ARCHITECTURE.md), so the .proto files are copied under the root
    `afplatform/` first: the packages on the wire (grpc.health.v1 ...) are unchanged, only the
    Python module names differ. Returns a namespace with health_pb2, health_pb2_grpc,
    reflection_pb2, reflection_pb2_grpc (v1alpha), reflection_v1_pb2, reflection_v1_pb2_grpc."""
    global _platform
    with _stubs_lock:
        if _platform is not None:
            return _platform
        src = tempdir("appflowd-e2e-platform-src-")
        out = tempdir("appflowd-e2e-platform-")
        os.makedirs(os.path.join(src, "afplatform"))
        copies = {
            "grpc/health/v1/health.proto": "afplatform/health.proto",
            "grpc/reflection/v1alpha/reflection.proto": "afplatform/reflection.proto",
            "grpc/reflection/v1/reflection.proto": "afplatform/reflection_v1.proto",
        }
        for orig, copy in copies.items():
            shutil.copyfile(os.path.join(GRPC_PROTO, orig), os.path.join(src, copy))
        cmd = ["protoc", "-I", src, "--python_out=" + out, "--grpc_python_out=" + out,
               "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin", *copies.values()]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"protoc failed ({r.returncode}): {r.stderr}")
        sys.path.append(out)
        from afplatform import health_pb2, health_pb2_grpc
        from afplatform import reflection_pb2, reflection_pb2_grpc
        from afplatform import reflection_v1_pb2, reflection_v1_pb2_grpc

        _platform = types.SimpleNamespace(
            dir=out,
            health_pb2=health_pb2,
            health_pb2_grpc=health_pb2_grpc,
            reflection_pb2=reflection_pb2,
            reflection_pb2_grpc=reflection_pb2_grpc,
            reflection_v1_pb2=reflection_v1_pb2,
            reflection_v1_pb2_grpc=reflection_v1_pb2_grpc,
        )
        return _platform


def _status_name(status):
    return platform_stubs().health_pb2.HealthCheckResponse.ServingStatus.Name(status)


class HealthWatcher:
    """A grpc.health.v1 Health.Watch call (stub: a HealthStub of platform_stubs()) read by a
    background thread: the statuses it received (with the time each arrived), then how it ended
    (the RpcError and when)."""

    def __init__(self, stub, service, timeout=60):
        self.service = service
        self.call = stub.Watch(platform_stubs().health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        self.statuses = []
        self.times = []
        self.error = None
        self.ended_at = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        err = None
        try:
            for resp in self.call:
                with self._cond:
                    self.statuses.append(resp.status)
                    self.times.append(time.monotonic())
                    self._cond.notify_all()
        except grpc.RpcError as e:
            err = e
        with self._cond:
            self.error = err
            self.ended_at = time.monotonic()
            self._cond.notify_all()

    def wait_statuses(self, n, timeout=10):
        """Waits for n statuses; returns them. AssertionError on timeout or an early end."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.statuses) >= n or self.ended_at, timeout)
            if len(self.statuses) < n:
                how = f"ended: {self.error!r}" if self.ended_at else f"none after {timeout}s"
                raise AssertionError(
                    f"watch({self.service!r}): {len(self.statuses)} of {n} statuses "
                    f"{[_status_name(s) for s in self.statuses]} ({how})")
            return list(self.statuses)

    def wait_for(self, status, timeout=30):
        """Waits until the latest status received is `status`; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(
                    lambda: (self.statuses and self.statuses[-1] == status) or self.ended_at,
                    timeout) or not self.statuses or self.statuses[-1] != status:
                raise AssertionError(
                    f"watch({self.service!r}): no {_status_name(status)} after {timeout}s; "
                    f"statuses {[_status_name(s) for s in self.statuses]}, end {self.error!r}")

    def wait_end(self, timeout=10):
        with self._cond:
            if not self._cond.wait_for(lambda: self.ended_at is not None, timeout):
                raise AssertionError(
                    f"watch({self.service!r}) still open after {timeout}s; statuses "
                    f"{[_status_name(s) for s in self.statuses]}")
        self._thread.join(5)
        return self.error

    def cancel(self):
        self.call.cancel()
        err = self.wait_end()
        if err is None or err.code() != grpc.StatusCode.CANCELLED:
            raise AssertionError(f"cancelled watch ended with {err!r}")


def buf_path():
    """tests/node_modules/.bin/buf (pinned in tests/package.json); SystemExit when missing."""
    path = os.path.join(SOURCE_DIR, "tests", "node_modules", ".bin", "buf")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} is missing: run `cd tests && npm ci`")
    return path


def own_channel(port):
    """A plaintext channel to 127.0.0.1:port on a connection of its own. grpcio shares a
    connection between channels with the same target and options (its global subchannel
    pool); a local pool keeps this one's separate, so closing it closes its connection."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1)])


# ---- shared by several test files ----

def arn(name, region="us-east-1", account="000000000000"):
    """The ARN appflowd gives a flow (its defaults for region and account)."""
    return f"arn:aws:appflow:{region}:{account}:flow/{name}"


def run_threads(n, target):
    """Runs target(i) in n threads started together; returns the exceptions they raised."""
    errors = []
    start = threading.Barrier(n)

    def body(i):
        try:
            start.wait(30)
            target(i)
        except BaseException as e:  # reported by the test
            errors.append((i, e))

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        errors.append(("join", AssertionError(f"threads still running after 120s: {alive}")))
    return errors


def json_lines(text):
    """One JSON object per line of a client script's output; {"unparsed": line} where not."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"unparsed": line})
    return out


# ---------------------------------------------------------------------------------------------
# The flow lifecycle: CreateFlow, DescribeFlow, ListFlows, StartFlow, DeleteFlow and tags

# DeleteFlow's refusal of an active scheduled or event-triggered flow, word for word as AWS.
AWS_MSG_DELETE_ACTIVE = ("Flow is in active state, please set forceDelete to true or deactivate "
                         "the flow")

S3_SOURCE = {"connectorType": "S3",
             "sourceConnectorProperties": {"S3": {"bucketName": "src", "bucketPrefix": "in"}}}
S3_DESTINATIONS = [{"connectorType": "S3",
                    "destinationConnectorProperties": {"S3": {"bucketName": "dst"}}}]
S3_TASKS = [{"sourceFields": ["a"], "taskType": "Filter",
             "connectorOperator": {"S3": "PROJECTION"}},
            {"sourceFields": ["a"], "taskType": "Map", "destinationField": "a",
             "connectorOperator": {"S3": "NO_OP"},
             "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}}]


def trigger(kind="OnDemand", schedule="rate(1hours)", **scheduled):
    """A TriggerConfig (AWS JSON): kind is Scheduled, Event or OnDemand; a Scheduled trigger
    gets triggerProperties.Scheduled with schedule and the other members in scheduled."""
    cfg = {"triggerType": kind}
    if kind == "Scheduled":
        cfg["triggerProperties"] = {"Scheduled": {"scheduleExpression": schedule, **scheduled}}
    return cfg


def s3_flow(name, kind="OnDemand", **members):
    """CreateFlow's members in AWS JSON for an S3 -> S3 flow triggered by kind; members add to
    or replace any of them (a value of None removes that member). Fresh copies every call."""
    d = {"flowName": name, "triggerConfig": trigger(kind),
         "sourceFlowConfig": json.loads(json.dumps(S3_SOURCE)),
         "destinationFlowConfigList": json.loads(json.dumps(S3_DESTINATIONS)),
         "tasks": json.loads(json.dumps(S3_TASKS))}
    d.update(members)
    return {k: v for k, v in d.items() if v is not None}


def _rfc3339(epoch):
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _aws_value(enum_value):
    """The AWS string of a proto enum value: its (appflow.v1.aws_value) option."""
    return enum_value.GetOptions().Extensions[stubs().options_pb2.aws_value]


def aws_enum(enum, number):
    """The AWS string of a proto enum type's value (aws_enum(pb.FlowStatus, 1) == "Active")."""
    return _aws_value(enum.DESCRIPTOR.values_by_number[number])


def _to_proto_value(field, v):
    FD = field.__class__
    if field.type == FD.TYPE_ENUM and isinstance(v, str):
        for ev in field.enum_type.values:
            if ev.number != 0 and _aws_value(ev) == v:
                return ev.name
        return v  # unknown: ParseDict refuses it, as the server would
    if field.type == FD.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _rfc3339(v) if isinstance(v, (int, float)) else v
        return _to_proto_dict(field.message_type, v)
    return v


def _to_proto_dict(desc, members):
    if not isinstance(members, dict):
        return members
    by_json = {f.json_name: f for f in desc.fields}
    out = {}
    for k, v in members.items():
        f = by_json.get(k)
        if f is None:
            out[k] = v
            continue
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[k] = {mk: _to_proto_value(vf, mv) for mk, mv in v.items()} \
                if isinstance(v, dict) else v
        elif f.label == f.LABEL_REPEATED and isinstance(v, list):
            out[k] = [_to_proto_value(f, x) for x in v]
        else:
            out[k] = _to_proto_value(f, v)
    return out


def to_proto_json(members, message="CreateFlowRequest"):
    """A request's members (AWS JSON) in protobuf's JSON mapping, for json_format.ParseDict:
    the names are the same (every field's json_name is the AWS member name); enum strings
    become the values whose (appflow.v1.aws_value) they are, and epoch-second timestamps
    RFC 3339, at every depth."""
    desc = getattr(stubs().appflow_pb2, message).DESCRIPTOR
    return _to_proto_dict(desc, json.loads(json.dumps(members)))


def _from_proto_value(field, v):
    FD = field.__class__
    if field.type == FD.TYPE_ENUM:
        return _aws_value(field.enum_type.values_by_number[v])
    if field.type == FD.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return v.seconds + v.nanos / 1e9
        return to_aws(v)
    return v


def to_aws(msg):
    """A message as AWS JSON: the members it has (presence kept), enums as AWS strings,
    timestamps as epoch seconds."""
    out = {}
    for f, v in msg.ListFields():
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[f.json_name] = {k: _from_proto_value(vf, x) for k, x in v.items()}
        elif f.label == f.LABEL_REPEATED:
            out[f.json_name] = [_from_proto_value(f, x) for x in v]
        else:
            out[f.json_name] = _from_proto_value(f, v)
    return out


def aws_data_path(botocore_data):
    """A directory for AWS_DATA_PATH holding AppFlow's model from botocore_data (a botocore
    `data` directory) with `clientToken` on CreateFlowRequest and StartFlowRequest, as AWS's
    current model has them (an idempotency token the client fills with a UUID when not given),
    and on UpdateFlowRequest. Debian's botocore and AWS CLI v2.9 predate that member. A model
    that has it is copied as is."""
    src = os.path.join(botocore_data, "appflow", "2020-08-23")
    out = tempdir("appflowd-e2e-models-")
    dst = os.path.join(out, "appflow", "2020-08-23")
    os.makedirs(dst)
    for f in os.listdir(src):
        if f.endswith(".json"):
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    path = os.path.join(dst, "service-2.json")
    with open(path, encoding="utf-8") as f:
        model = json.load(f)
    shapes = model["shapes"]
    shapes.setdefault("ClientToken", {"type": "string", "max": 256, "min": 1,
                                      "pattern": "[ -~]+"})
    for req in ("CreateFlowRequest", "StartFlowRequest", "UpdateFlowRequest"):
        if req in shapes:
            shapes[req]["members"].setdefault("clientToken", {"shape": "ClientToken",
                                                              "idempotencyToken": True})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(model, f)
    return out


def package_dir(name):
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the Python package {name} is required")
    return list(spec.submodule_search_locations)[0]


def isolate_boto3_env():
    """Makes this process's botocore see no AWS_* variable and no ~/.aws of the user's, and
    the AppFlow model with clientToken (aws_data_path). Call before importing boto3."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    env = aws_client_env()
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"):
        os.environ[k] = env[k]
    os.environ["AWS_DATA_PATH"] = aws_data_path(os.path.join(package_dir("botocore"), "data"))


def boto3_appflow(port, validate=True, region="us-east-1"):
    """A boto3 AppFlow client for the AWS door on 127.0.0.1:port with dummy credentials and one
    attempt per call (an error is the server's answer, never a retry's). validate=False turns
    botocore's own checks off, so values below a model minimum reach the server. region is the
    one it signs for, and so the one its calls act in."""
    import boto3
    import botocore.config

    return boto3.session.Session().client(
        "appflow", region_name=region, endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(
            retries={"mode": "standard", "total_max_attempts": 1}, proxies={},
            connect_timeout=5, read_timeout=30, parameter_validation=validate))


def grpc_error_of(call):
    """Runs call(), which must raise grpc.RpcError; returns (code, details, ErrorInfo reason)
    and checks the ErrorInfo's domain. AssertionError if the call succeeds."""
    try:
        result = call()
    except grpc.RpcError as e:
        code, details, reason, domain = error_parts(e)
        if reason is not None and domain != ERROR_DOMAIN:
            raise AssertionError(f"ErrorInfo domain {domain!r}, not {ERROR_DOMAIN!r}")
        return code, details, reason
    raise AssertionError(f"expected a gRPC error, got {result!r}")


def tampered(token, at):
    """token with its character at index at changed to another of the same kind (letter to the
    next letter of the same case, digit to the next digit), so that a hex, base64 or base64url
    decoder reads different bytes. Characters that are neither are skipped forwards."""
    for i in range(at, len(token)):
        c = token[i]
        if c.isascii() and c.isdigit():
            r = "0" if c == "9" else chr(ord(c) + 1)
        elif c.isascii() and c.isalpha():
            r = chr(ord(c) - 1) if c in "zZ" else chr(ord(c) + 1)
        else:
            continue
        return token[:i] + r + token[i + 1:]
    raise ValueError(f"no letter or digit at or after {at} in {token!r}")
