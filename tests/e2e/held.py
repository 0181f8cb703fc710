"""Many connections held open to one port from one process: non-blocking sockets and one
selector, no thread per connection. Used by tests/e2e/test_connections.py and, as a process of
its own, by bench/run.py's connections suite.

Two kinds of connection, for either door:
  idle       connected and silent after the protocol's opening: on the AWS door (HTTP/1.1)
             nothing at all; on the gRPC door (HTTP/2) the client preface and SETTINGS, the
             server's SETTINGS acknowledged, as a real client's idle channel
  trickling  a request sent a byte at a time (every `interval` seconds, by a thread of the
             Holder's own) and never finished: on the AWS door a ListFlows whose headers never
             end, on the gRPC door a HEADERS frame whose header block never ends

Holder(port, kind, idle, trickle):
  open(timeout)     connects them all, a batch at a time (a batch is let through the server's
                    listen queue before the next is sent, so it never overflows)
  start_trickle(interval) / stop_trickle()
  closed()          how many of them the server has closed so far (end of stream or reset)
  sockets           the idle ones, in the order they were opened
  close()

As a program (bench/run.py): held.py --port P --kind http|grpc --idle N --trickle M opens
them, prints "held idle=N trickle=M" on stdout, trickles until its stdin ends, and answers
each line "closed" on stdin with the count of closed connections.

The caller raises its own limit on open files first (raise_fd_limit)."""

import argparse
import errno
import resource
import selectors
import socket
import sys
import threading
import time

BATCH = 256
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS, H2_HEADERS = 0x4, 0x1
H2_ACK, H2_END_HEADERS = 0x1, 0x4
# The request a trickling connection sends: long enough never to end while it is held (at 5
# bytes a second, half an hour), short enough for the AWS door's header pool (~6 KiB) and
# gRPC's metadata limit (8 KiB).
TRICKLE_VALUE = 4000


def raise_fd_limit(need):
    """Raises this process's soft limit on open files to its hard limit; returns whether that
    reaches need (else nothing is changed beyond what the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def http_trickle():
    return (b"POST /list-flows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Trickle: " + b"a" * TRICKLE_VALUE)


def grpc_trickle():
    """A HEADERS frame for a ListFlows call whose one literal field's value is long: HPACK is
    parsed as it arrives, so every prefix of this is a valid unfinished header block."""
    def literal(name, value):  # literal without indexing, new name, no Huffman coding
        return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value
    block = (literal(b":method", b"POST") + literal(b":scheme", b"http")
             + literal(b":path", b"/appflow.v1.AppFlowService/ListFlows")
             + literal(b"content-type", b"application/grpc") + literal(b"te", b"trailers")
             + literal(b"x-trickle", b"a" * TRICKLE_VALUE))
    return h2_frame(H2_HEADERS, H2_END_HEADERS, 1, block)


class Conn:
    __slots__ = ("sock", "trickle", "sent", "closed", "inbox")

    def __init__(self, sock, trickle):
        self.sock, self.trickle, self.sent, self.closed, self.inbox = sock, trickle, 0, False, b""


class Holder:
    def __init__(self, port, kind, idle, trickle, host="127.0.0.1"):
        if kind not in ("http", "grpc"):
            raise ValueError(f"kind must be http or grpc, not {kind!r}")
        self.addr, self.kind = (host, port), kind
        self.n_idle, self.n_trickle = idle, trickle
        self.conns = []
        self.sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()  # the trickle thread and closed() share the sockets

    @property
    def sockets(self):
        return [c.sock for c in self.conns if c.trickle is None]

    def open(self, timeout=60):
        deadline = time.monotonic() + timeout
        body = http_trickle() if self.kind == "http" else grpc_trickle()
        want = [None] * self.n_idle + [body] * self.n_trickle
        for i in range(0, len(want), BATCH):
            self._open_batch(want[i:i + BATCH], deadline)
        for c in self.conns:
            self.sel.register(c.sock, selectors.EVENT_READ, c)
        return self

    def _open_batch(self, trickles, deadline):
        batch = []
        for t in trickles:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(self.addr)
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                raise OSError(rc, f"connect to {self.addr}: {errno.errorcode.get(rc, rc)}")
            batch.append(Conn(s, t))
        self._wait_all(batch, selectors.EVENT_WRITE, deadline, "to connect")
        for c in batch:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {self.addr}: {errno.errorcode.get(err, err)}")
        if self.kind == "grpc":
            for c in batch:
                c.sock.send(PREFACE + h2_frame(H2_SETTINGS, 0, 0))
            self._wait_all(batch, selectors.EVENT_READ, deadline, "for the server's SETTINGS",
                           until=self._got_settings)
            for c in batch:
                c.sock.send(h2_frame(H2_SETTINGS, H2_ACK, 0))
        self.conns.extend(batch)

    @staticmethod
    def _got_settings(c):
        """Reads what the server sent; true once its first frame (its SETTINGS) is whole."""
        data = c.sock.recv(65536)
        if not data:
            raise ConnectionError("the gRPC door closed a new connection")
        c.inbox += data
        if len(c.inbox) < 9:
            return False
        if c.inbox[3] != H2_SETTINGS or c.inbox[4] & H2_ACK:
            raise ConnectionError(f"the gRPC door's first frame is not SETTINGS: {c.inbox[:9]!r}")
        return len(c.inbox) >= 9 + int.from_bytes(c.inbox[:3], "big")

    def _wait_all(self, batch, event, deadline, what, until=None):
        """Waits until every socket of batch is ready for event (and until(conn), when given,
        is true for it)."""
        sel = selectors.DefaultSelector()
        try:
            for c in batch:
                sel.register(c.sock, event, c)
            left = len(batch)
            while left:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise TimeoutError(f"{left} of {len(batch)} connections still waiting {what}")
                for key, _ in sel.select(min(wait, 1.0)):
                    if until is None or until(key.data):
                        sel.unregister(key.fileobj)
                        left -= 1
        finally:
            sel.close()

    def start_trickle(self, interval=0.2):
        """Sends each trickling connection its request's next byte every interval seconds."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._trickle, args=(interval,), daemon=True)
        self._thread.start()

    def _trickle(self, interval):
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                for c in self.conns:
                    if c.trickle is None or c.closed or c.sent >= len(c.trickle) - 1:
                        continue  # the last byte is never sent: the request never ends
                    try:
                        c.sent += c.sock.send(c.trickle[c.sent:c.sent + 1])
                    except BlockingIOError:
                        pass
                    except OSError:
                        c.closed = True
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop_trickle(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def trickled(self):
        """Bytes sent so far on every trickling connection (least, most)."""
        sent = [c.sent for c in self.conns if c.trickle is not None]
        return (min(sent), max(sent)) if sent else (0, 0)

    def closed(self):
        """How many held connections the server has closed: each readable socket is read, and
        one at its end (or reset) counts. What the server sends on an open one is dropped."""
        with self._lock:
            for key, _ in self.sel.select(0):
                c = key.data
                try:
                    while True:
                        data = c.sock.recv(65536)
                        if not data:
                            c.closed = True
                            break
                except BlockingIOError:
                    pass
                except OSError:
                    c.closed = True
                if c.closed:
                    self.sel.unregister(c.sock)
            return sum(c.closed for c in self.conns)

    def close(self):
        self.stop_trickle()
        for c in self.conns:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        self.conns = []
        self.sel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", choices=("http", "grpc"), required=True)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--trickle", type=int, default=500)
    ap.add_argument("--interval", type=float, default=0.2)
    args = ap.parse_args()
    need = args.idle + args.trickle + 64
    if not raise_fd_limit(need):
        sys.exit(f"held.py: the limit on open files ({resource.getrlimit(resource.RLIMIT_NOFILE)})"
                 f" is below the {need} needed")
    holder = Holder(args.port, args.kind, args.idle, args.trickle).open()
    holder.start_trickle(args.interval)
    print(f"held idle={args.idle} trickle={args.trickle}", flush=True)
    for line in sys.stdin:
        if line.strip() == "closed":
            print(f"closed={holder.closed()}", flush=True)
    holder.close()


if __name__ == "__main__":
    main()
