#!/usr/bin/python3
"""A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, a server on a
free loopback port, and nothing left behind once it is stopped.

    with PgCluster() as pg:
        uri = pg.uri()                 # postgresql://postgres@127.0.0.1:PORT/postgres
        schema = pg.create_schema()    # a fresh schema to isolate one test
        pg.kill(); pg.start_server()   # a crash and a restart: same data, same port
        pg.freeze(); pg.thaw()         # a hung server: connections stay open, nothing answers
        with pg.hold_lock(uri, "t"):   # a slow one: statements that need table t wait
            ...

    /usr/bin/python3 tests/pg_cluster.py -- CMD ARGS...

runs CMD with AF_TEST_PG_URI set to a fresh cluster's uri(), removes the cluster (also on
Ctrl-C or SIGTERM) and exits with CMD's status.

PostgreSQL refuses to run as root, so when this runs as root (as CI does) the temporary
directory is given to the `postgres` user and every server binary runs through
`runuser -u postgres --`. Stdlib only: run it with Debian's /usr/bin/python3. The binaries come
from AF_PG_BIN, or else the newest /usr/lib/postgresql/N/bin.
"""

import ctypes
import os
import pwd
import secrets
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse

PG_ROOT = "/usr/lib/postgresql"
START_TRIES = 5  # a free port can be taken between picking it and the server binding it
WAIT_SECONDS = 60


class PgClusterError(RuntimeError):
    pass


def _pg_bin():
    if os.environ.get("AF_PG_BIN"):
        return os.environ["AF_PG_BIN"]
    try:
        versions = sorted((int(v) for v in os.listdir(PG_ROOT) if v.isdigit()), reverse=True)
    except FileNotFoundError:
        versions = []
    for v in versions:
        path = os.path.join(PG_ROOT, str(v), "bin")
        if os.path.exists(os.path.join(path, "initdb")):
            return path
    raise PgClusterError(f"no PostgreSQL server under {PG_ROOT}: install the postgresql package")


def _become_subreaper():
    """Makes this process the parent of the postmaster pg_ctl leaves behind, so it can reap it:
    in a container whose PID 1 never reaps, a stopped server would stay a zombie."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pids):
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # not ours to reap: someone else's child, or reaped already


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env():
    # PGDATA, PGPORT, PGOPTIONS... from the caller's shell must not steer the test cluster.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _children(pid):
    """The PIDs whose parent is pid."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _wait_gone(fds, seconds):
    """Waits until every process behind the pidfds has exited (a pidfd turns readable)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    left = set(fds)
    deadline = seconds * 1000
    while left:
        events = poller.poll(deadline)
        if not events:
            raise PgClusterError(f"{len(left)} server processes still alive after {seconds} s")
        for fd, _ in events:
            poller.unregister(fd)
            left.discard(fd)


class HeldLock:
    """A table lock held by a psql session of its own until release() (or the with block's
    end); releasing twice is fine."""

    def __init__(self, proc):
        self._proc = proc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.write("COMMIT;\n\\q\n")
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the session is gone, and its lock with it
        try:
            proc.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


class PgCluster:
    def __init__(self, settings=None):
        self.settings = dict(settings or {})
        self.dir = None
        self.port = None
        self._running = False
        self._frozen = []
        self._bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def log(self):
        return os.path.join(self.dir, "server.log")

    # ---- running the server binaries ----

    def _server_cmd(self, name, *args):
        cmd = [os.path.join(self._bin, name), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else cmd

    def _run(self, name, *args):
        # cwd: the postgres user may not be allowed into the caller's working directory.
        return subprocess.run(self._server_cmd(name, *args), cwd=self.dir, env=_clean_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=WAIT_SECONDS * 2)

    def _log_since(self, offset):
        try:
            with open(self.log, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return ""

    def _log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def _options(self):
        opts = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": self.dir,
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "on",
        }
        opts.update({k: str(v) for k, v in self.settings.items()})
        # pg_ctl hands -o to a shell, hence the quoting.
        return " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in opts.items())

    def _pg_ctl_start(self):
        """True once the server accepts connections; False when its port was taken."""
        offset = self._log_size()
        r = self._run("pg_ctl", "-w", "-t", str(WAIT_SECONDS), "-D", self.data, "-l", self.log,
                      "-o", self._options(), "start")
        if r.returncode == 0:
            self._running = True
            return True
        log = self._log_since(offset)
        self._kill_leftover()
        if "Address already in use" in log or "could not bind" in log:
            return False
        raise PgClusterError(f"pg_ctl start failed:\n{r.stdout}\n{log}")

    def _kill_leftover(self):
        # pg_ctl -w can give up on a postmaster that is still starting: never leave it behind.
        if self.pid() is not None and self._alive(self.pid()):
            self.kill()

    @staticmethod
    def _alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    # ---- the public interface ----

    def start(self):
        if self.dir is not None:
            raise PgClusterError("the cluster is started already")
        _become_subreaper()
        self.dir = tempfile.mkdtemp(prefix="appflowd-pg-")
        try:
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            r = self._run("initdb", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                          "--no-locale", "-D", self.data)
            if r.returncode != 0:
                raise PgClusterError(f"initdb failed:\n{r.stdout}")
            for _ in range(START_TRIES):
                self.port = _free_port()
                if self._pg_ctl_start():
                    return self
            raise PgClusterError(f"no free port after {START_TRIES} tries")
        except BaseException:
            self.stop()
            raise

    def uri(self, dbname="postgres", **params):
        uri = f"postgresql://postgres@127.0.0.1:{self.port}/{urllib.parse.quote(dbname, safe='')}"
        if params:
            uri += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="")
        return uri

    def pid(self):
        """The postmaster's PID, or None when it has no postmaster.pid."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (FileNotFoundError, ValueError):
            return None

    def running(self):
        """Whether the server was started and not stopped or killed since (frozen counts)."""
        return self._running

    def stop_server(self):
        self.thaw()
        pid = self.pid()
        r = self._run("pg_ctl", "-w", "-t", str(WAIT_SECONDS), "-D", self.data, "-m", "fast",
                      "stop")
        if r.returncode != 0:
            raise PgClusterError(f"pg_ctl stop failed:\n{r.stdout}")
        self._running = False
        _reap([pid] if pid is not None else [])

    def start_server(self):
        if not self._pg_ctl_start():
            raise PgClusterError(f"port {self.port} was taken while the server was down")

    def freeze(self):
        """SIGSTOPs the postmaster and every child: connections stay open, nothing answers."""
        pid = self.pid()
        if pid is None or not self._alive(pid) or self._frozen:
            return
        os.kill(pid, signal.SIGSTOP)  # first, so that it forks no child the listing misses
        self._frozen = [pid]
        for kid in _children(pid):
            try:
                os.kill(kid, signal.SIGSTOP)
                self._frozen.append(kid)
            except ProcessLookupError:
                pass

    def thaw(self):
        """Undoes freeze(); fine when not frozen."""
        frozen, self._frozen = self._frozen, []
        for p in reversed(frozen):
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def hold_lock(self, url, table, mode="ACCESS EXCLUSIVE"):
        """Takes LOCK TABLE table IN mode MODE in a transaction of its own, in the database (and
        search_path) url names, and returns once it holds it: a HeldLock, to release()."""
        proc = subprocess.Popen([os.path.join(self._bin, "psql"), "-X", "-q", "-v",
                                 "ON_ERROR_STOP=1", "-d", url],
                                env=_clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        held = HeldLock(proc)
        try:
            proc.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN {mode} MODE;\n\\echo locked\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # psql has exited already: stderr says why
        ready = select.select([proc.stdout], [], [], WAIT_SECONDS)[0]
        if ready and proc.stdout.readline().strip() == "locked":
            return held
        proc.kill()
        err = proc.stderr.read().strip()
        held.release()
        raise PgClusterError(f"cannot lock {table}: {err or 'no answer'}")

    def kill(self):
        """SIGKILLs the postmaster and its children (a crash) and waits until they are gone."""
        self._frozen = []  # SIGKILL ends stopped processes as well
        pid = self.pid()
        if pid is None or not self._alive(pid):
            self._running = False
            return
        fd = _pidfd(pid)
        # Stopped, the postmaster cannot fork a child that the listing below would miss.
        os.kill(pid, signal.SIGSTOP)
        kids = _children(pid)
        fds = [f for f in [fd, *map(_pidfd, kids)] if f is not None]
        try:
            for p in [pid, *kids]:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _wait_gone(fds, WAIT_SECONDS)
            _reap([pid, *kids])
        finally:
            for f in fds:
                os.close(f)
        self._running = False

    def psql(self, sql, dbname="postgres"):
        r = subprocess.run([os.path.join(self._bin, "psql"), "-X", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", dbname],
                           input=sql, env=_clean_env(), capture_output=True, text=True,
                           timeout=WAIT_SECONDS * 2)
        if r.returncode != 0:
            raise PgClusterError(f"psql failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def create_schema(self):
        name = "t_" + secrets.token_hex(6)
        self.psql(f"CREATE SCHEMA {name};")
        return name

    def stop(self):
        if self.dir is None:
            return
        try:
            self.thaw()
            if self._running:
                try:
                    self.stop_server()
                except (PgClusterError, subprocess.TimeoutExpired):
                    self.kill()
            self._kill_leftover()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


# ---- the command line ----

class _Signalled(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_signal(signum, _frame):
    raise _Signalled(signum)


def _end_child(child, signum):
    if child is None or child.poll() is not None:
        return
    child.send_signal(signum)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        print(f"usage: {argv[0]} -- CMD ARGS...", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_signal)
    signal.signal(signal.SIGHUP, _raise_signal)
    cluster = PgCluster()
    child = None
    status = 1
    try:
        cluster.start()
        env = dict(os.environ, AF_TEST_PG_URI=cluster.uri())
        child = subprocess.Popen(argv[2:], env=env)
        status = child.wait()
    except FileNotFoundError as e:
        print(f"pg_cluster: {e}", file=sys.stderr)
        status = 127
    except (_Signalled, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, _Signalled) else signal.SIGINT
        _end_child(child, signum)
        status = -signum
    finally:
        # A second Ctrl-C must not leave the server or the directory behind.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        cluster.stop()
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
