"""A thousand hostile connections, driven from a child process so that the
test's own well-behaved client does not share an interpreter (and its lock)
with them.

Four kinds, in equal numbers, all at once:
  garbage   lines of junk, each answered UNKNOWN_COMMAND or BAD_FORMAT;
  endless   a line with no CRLF, LINE bytes long (MiBs), then the CRLF and
            the next one: one BAD_FORMAT per line;
  half      "put" with a valid size, half the body, then silence until the
            end, when the rest comes with a wrong terminator: EXPECTED_CRLF;
  oversize  "put" with a size over -z, then the whole declared body:
            JOB_TOO_BIG once it has been read, then the next such put.

The child opens everything, says "ready", streams at a fixed rate (bytes per
second over all connections) until told to "finish", then ends every line
and body, sends "list-tube-used" on each connection (so it can tell that
the connection is still in step), checks every reply and sends back a report.
"""
import collections
import errno
import os
import random
import select
import socket
import time
import traceback

KINDS = ("garbage", "endless", "half", "oversize")
CHUNK = 64 * 1024

# Junk lines and the reply stock beanstalkd gives each (checked by the
# protocol suite against stock, tests/protocol/test_badinput.py).
FIXED_GARBAGE = [
    (b"", "UNKNOWN_COMMAND"),
    (b"foo bar", "UNKNOWN_COMMAND"),
    (b"delete", "UNKNOWN_COMMAND"),
    (b"put a b c d", "BAD_FORMAT"),
    (b"put 0 0 60 99999999999", "BAD_FORMAT"),
    (b"peek x", "BAD_FORMAT"),
    (b"kick x", "BAD_FORMAT"),
    (b"stats-tube a!b", "BAD_FORMAT"),
    (b"\x00stats", "BAD_FORMAT"),
    (b"use " + b"a" * 300, "BAD_FORMAT"),      # longer than any command line
]


def garbage_pool(seed=7, n=64):
    rnd = random.Random(seed)
    # High bytes and control characters (no NUL, CR, LF): no command starts so.
    alphabet = bytes(b for b in range(1, 256) if b not in (10, 13) and not (32 <= b < 127))
    pool = list(FIXED_GARBAGE)
    for _ in range(n):
        pool.append((bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 150))),
                     "UNKNOWN_COMMAND"))
    return pool


class HConn:
    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.out = bytearray()          # bytes still to send
        self.inbuf = b""
        self.expect = collections.deque()
        self.left = 0                   # endless / oversize: bytes left of the current line or body
        self.sent = 0
        self.closed = False


class Attack:
    def __init__(self, port, per_kind, line_len, half_size, big_size, opening, rate, lines):
        self.port = port
        self.lines = lines
        self.opening = opening
        self.per_kind = per_kind
        self.line_len = line_len
        self.half_size = half_size
        self.big_size = big_size
        self.rate = rate
        self.rnd = random.Random(42)
        self.pool = garbage_pool()
        self.conns = []
        self.byfd = {}
        self.poll = select.poll()
        self.replies = {k: collections.Counter() for k in KINDS}
        self.problems = []
        self.streamed = 0
        self.seconds = 0.0

    # ---- bookkeeping ----

    def problem(self, c, what):
        if len(self.problems) < 20:
            self.problems.append("%s fd %d: %s" % (c.kind, c.sock.fileno(), what))
        else:
            self.problems.append(None)          # counted, not kept

    def queue(self, c, data, *replies):
        c.out += data
        c.expect.extend(replies)

    def flush(self, c):
        while c.out and not c.closed:
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                return
            except OSError as e:
                self.lost(c, "send: %s" % e)
                return
            del c.out[:n]
            c.sent += n

    def lost(self, c, why):
        if not c.closed:
            c.closed = True
            self.problem(c, "connection closed (%s) with %d replies outstanding" % (why, len(c.expect)))
            self.poll.unregister(c.sock)

    def read(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.lost(c, "recv: %s" % e)
            return
        if not data:
            self.lost(c, "EOF")
            return
        c.inbuf += data
        while b"\r\n" in c.inbuf:
            line, c.inbuf = c.inbuf.split(b"\r\n", 1)
            line = line.decode("latin-1")
            self.replies[c.kind][line] += 1
            if not c.expect:
                self.problem(c, "unexpected reply %r" % line)
            else:
                want = c.expect.popleft()
                if line != want:
                    self.problem(c, "got %r, want %r" % (line, want))

    def pump(self, timeout_ms):
        for fd, ev in self.poll.poll(timeout_ms):
            c = self.byfd[fd]
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self.read(c)

    # ---- the four kinds ----

    def item_size(self, c):
        """Bytes of c's current item: an endless line, or an oversized
        body with its CRLF."""
        return self.line_len if c.kind == "endless" else self.big_size + 2

    def stream(self, c, budget):
        """Queue up to budget more bytes of c's line or body, starting the
        next one if none is under way; returns the bytes queued. c.left is
        what is left of the current item (0: none started)."""
        if c.left == 0:
            if c.kind == "oversize":
                self.queue(c, b"put 0 0 60 %d\r\n" % self.big_size)
            c.left = self.item_size(c)
        n = min(budget, c.left, CHUNK)
        self.emit(c, n)
        return n

    def emit(self, c, n):
        """Append the next n bytes of c's item, and its terminator and the
        reply it earns once the item is complete."""
        if c.kind == "endless":
            c.out += b"x" * n
        else:
            pos = self.item_size(c) - c.left          # the body's last two bytes are CRLF
            body = max(0, min(n, self.big_size - pos))
            c.out += b"b" * body + b"\r\n"[max(0, pos - self.big_size):][:n - body]
        c.left -= n
        if c.left == 0:
            if c.kind == "endless":
                self.queue(c, b"\r\n", "BAD_FORMAT")
            else:
                c.expect.append("JOB_TOO_BIG")

    def send_garbage(self, c, lines=4):
        for _ in range(lines):
            line, want = self.rnd.choice(self.pool)
            self.queue(c, line + b"\r\n", want)

    # ---- phases ----

    def open_all(self):
        for i in range(self.per_kind * len(KINDS)):
            kind = KINDS[i % len(KINDS)]
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.setblocking(False)
            c = HConn(s, kind)
            self.conns.append(c)
            self.byfd[s.fileno()] = c
            self.poll.register(s, select.POLLIN)
            if kind == "garbage":
                self.send_garbage(c)
            elif kind == "half":
                self.queue(c, b"put 0 0 60 %d\r\n" % self.half_size + b"h" * (self.half_size // 2))
            else:
                opened = 0
                while opened < self.opening:
                    opened += self.stream(c, self.opening - opened)
            self.flush(c)
        self.drain_out(10.0)

    def drain_out(self, timeout):
        deadline = time.monotonic() + timeout
        while any(c.out for c in self.conns if not c.closed):
            if time.monotonic() > deadline:
                raise RuntimeError("server stopped reading hostile input")
            for c in self.conns:
                self.flush(c)
            self.pump(10)

    def run_until(self, pipe):
        """Until the parent says finish: stream self.rate bytes/s over the
        endless and oversized connections, and self.lines junk lines/s over
        the garbage ones, round robin."""
        streamers = [c for c in self.conns if c.kind in ("endless", "oversize")]
        talkers = [c for c in self.conns if c.kind == "garbage"]
        si = ti = 0
        before = sum(c.sent for c in self.conns)
        t0 = last = time.monotonic()
        lines_done = 0
        while not pipe.poll():
            now = time.monotonic()
            budget = int(self.rate * (now - last))
            last = now
            while budget > 0:
                c = streamers[si % len(streamers)]
                si += 1
                if not c.closed:
                    budget -= self.stream(c, budget)
                    self.flush(c)
            while lines_done < self.lines * (now - t0):
                c = talkers[ti % len(talkers)]
                ti += 1
                lines_done += 4
                if not c.closed:
                    self.send_garbage(c, 4)
                    self.flush(c)
            for c in self.conns:
                if c.out:
                    self.flush(c)
            self.pump(10)
        self.streamed = sum(c.sent for c in self.conns) - before
        self.seconds = time.monotonic() - t0
        pipe.recv()

    def finish(self, timeout):
        for c in self.conns:
            if c.closed:
                continue
            if c.kind in ("endless", "oversize") and c.left:
                self.emit(c, c.left)            # end the line or body under way
            elif c.kind == "half":
                rest = self.half_size - self.half_size // 2
                self.queue(c, b"h" * rest + b"XY", "EXPECTED_CRLF")
            self.queue(c, b"list-tube-used\r\n", "USING default")
            self.flush(c)
        deadline = time.monotonic() + timeout
        while any(c.expect or c.out for c in self.conns if not c.closed):
            if time.monotonic() > deadline:
                waiting = [c for c in self.conns if not c.closed and (c.expect or c.out)]
                for c in waiting[:5]:
                    self.problem(c, "no reply in %.0f s; waiting for %s" % (timeout, list(c.expect)[:3]))
                break
            for c in self.conns:
                if c.out:
                    self.flush(c)
            self.pump(20)

    def report(self):
        return {
            "replies": {k: dict(v) for k, v in self.replies.items()},
            "problems": [p for p in self.problems if p],
            "problem_count": len(self.problems),
            "closed": sum(c.closed for c in self.conns),
            "streamed": self.streamed,
            "seconds": self.seconds,
            "cpu": sum(os.times()[:2]),
            "sent": sum(c.sent for c in self.conns),
        }


def main(pipe, port, per_kind, line_len, half_size, big_size, opening, rate, lines):
    """The child process: open, report ready, stream, finish, report."""
    try:
        a = Attack(port, per_kind, line_len, half_size, big_size, opening, rate, lines)
        a.open_all()
        pipe.send(("ready", len(a.conns)))
        a.run_until(pipe)
        a.finish(60.0)
        pipe.send(("done", a.report()))
        for c in a.conns:
            c.sock.close()
    except Exception:
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()
        os._exit(0)
