#!/usr/bin/python3
"""Debian's AWS CLI v2 (/usr/bin/aws), run many times without paying its start-up each time.

    cli = AwsCli()
    proc = cli.run(["appflow", "list-flows", "--endpoint-url", url], env, timeout=120)
    proc.returncode, proc.stdout, proc.stderr      # as subprocess.run(..., text=True) gives
    cli.close()

/usr/bin/aws is a script whose whole work is `awscli.clidriver.main()`, which runs
AWSCLIEntryPoint().main(argv) and exits with what it returns. A call here runs that same entry
point, with the call's argv and environment, in a worker process that imported the CLI once:
importing awscli and botocore is ~1 s of CPU of each ~1.15 s invocation, and the end-to-end
tests make some eighty of them. Each call still builds a new driver and session (config file,
credentials, the service model), so nothing a call reads is left over from the one before.
Workers are started as calls need them (one per call running at once) and reused; a call that
outlives its timeout kills its worker and raises subprocess.TimeoutExpired.

Run as `aws_cli.py --worker`, it is one worker: requests and answers are JSON lines on its
standard input and output.
"""

import importlib
import io
import json
import os
import queue
import select
import subprocess
import sys
import threading

PYTHON = "/usr/bin/python3"  # Debian's, which has awscli


class AwsCli:
    def __init__(self):
        self._idle = queue.LifoQueue()
        self._lock = threading.Lock()
        self._workers = []

    def run(self, argv, env, timeout):
        """Runs `aws ARGV` with env as its whole environment and no standard input; returns a
        subprocess.CompletedProcess whose stdout and stderr are text."""
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = self._start()
        try:
            reply = worker.call({"argv": list(argv), "env": dict(env)}, timeout)
        except BaseException:
            worker.kill()
            raise
        self._idle.put(worker)
        return subprocess.CompletedProcess(["aws", *argv], reply["rc"], reply["stdout"],
                                           reply["stderr"])

    def close(self):
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.close()

    def _start(self):
        w = _Worker()
        with self._lock:
            self._workers.append(w)
        return w


class _Worker:
    def __init__(self):
        self.proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._pending = b""

    def call(self, request, timeout):
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        line = self._read_line(request["argv"], timeout)
        return json.loads(line)

    def _read_line(self, argv, timeout):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(["aws", *argv], timeout)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the AWS CLI worker exited ({self.proc.wait()}) running "
                                   f"aws {' '.join(argv)[:300]}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def kill(self):
        self.proc.kill()
        self.close()

    def close(self):
        """Closing its input ends a worker (a killed one has ended already); both pipes close."""
        self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()


# ---- the worker ----

def _text(stream):
    """What a text-mode pipe reader would get from what was written to stream (universal
    newlines)."""
    stream.flush()
    data = stream.detach().getvalue()
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()


def _one_call(awscli, request):
    os.environ.clear()
    os.environ.update(request["env"])
    if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as /usr/bin/aws does before its import
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    # The package's own code reads the environment as it is imported (it puts its data folder
    # into AWS_DATA_PATH, after the caller's): run it again, as a new process would.
    importlib.reload(awscli)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(), out, err
    try:
        rc = awscli.clidriver.AWSCLIEntryPoint().main(request["argv"])
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return {"rc": rc, "stdout": _text(out), "stderr": _text(err)}


def _serve():
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # the CLI sees no standard input, as subprocess.DEVNULL gave it
    os.dup2(null, 1)  # anything written below sys.stdout would otherwise corrupt the answers
    import awscli.clidriver  # the point of a worker: imported once
    for line in requests:
        answers.write(json.dumps(_one_call(awscli, json.loads(line))).encode() + b"\n")
        answers.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _serve()
