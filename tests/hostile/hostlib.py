"""Helpers shared by the hostile-load tests: what the server process costs
(/proc), a well-behaved worker whose throughput is the yardstick, and the
descriptor limit of the test process itself.

Timing on these machines is noisy (two cores, shared with other work), so
throughput is always compared with a figure measured in the same test, and
taken as the best of several short windows.
"""
import os
import resource
import socket
import struct
import time

KB = 1024
MB = 1024 * 1024


def proc_status_kb(pid, key):
    """A "kB" field of /proc/PID/status (VmRSS, RssAnon, ...), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (key, pid))


def rss_kb(pid):
    return proc_status_kb(pid, "VmRSS")


def rss_anon_kb(pid):
    """Anonymous resident memory: the heap, without the mapped binary and
    libraries; what buffers and connection state cost."""
    return proc_status_kb(pid, "RssAnon")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def raise_nofile(want):
    """Raise this process's soft descriptor limit to want (or the hard
    limit, if lower); return (old limits, new soft limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return (soft, hard), max(soft, target)


def restore_nofile(saved):
    if saved:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, saved)
        except (ValueError, OSError):
            pass


def abort(sock):
    """Close a socket with a RST (SO_LINGER 0), unread data and all."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def connect(port, timeout=5.0, rcvbuf=None):
    """A raw loopback socket; rcvbuf (set before connecting, so the window
    is small from the start) caps how much the kernel holds for us."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def connect_unix(path, timeout=5.0, rcvbuf=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(path)
    return s


def as_client(sock, timeout=5.0):
    """A bstest.Client around a socket opened here (a unix one, say)."""
    import bstest
    c = bstest.Client.__new__(bstest.Client)
    c.sock, c.buf = sock, b""
    sock.settimeout(timeout)
    return c


class Worker:
    """A well-behaved producer and consumer on its own tube: put, reserve,
    delete, one at a time, checking every reply. rate() counts complete
    cycles per second; any wrong reply raises AssertionError at once."""

    def __init__(self, client, tube="worker"):
        self.c = client
        self.tube = tube
        self.n = 0
        self.last_id = 0
        self.cycles = 0
        assert self.c.cmd("use " + tube) == "USING " + tube
        assert self.c.cmd("watch " + tube) == "WATCHING 2"
        assert self.c.cmd("ignore default") == "WATCHING 1"

    def cycle(self):
        self.n += 1
        body = b"worker job %d" % self.n
        r = self.c.put(body, pri=self.n % 1000, ttr=60)
        assert r.startswith("INSERTED "), "put: %r" % r
        jid = int(r.split()[1])
        # Ids only grow (a refused put may use one up, so not always by 1).
        assert jid > self.last_id, "put: id %d after %d" % (jid, self.last_id)
        self.last_id = jid
        head, got = self.c.body_reply("reserve-with-timeout 0")
        assert head == "RESERVED %d %d" % (jid, len(body)), "reserve: %r (want job %d)" % (head, jid)
        assert got == body, "reserve: body %r, want %r" % (got, body)
        r = self.c.cmd("delete %d" % jid)
        assert r == "DELETED", "delete %d: %r" % (jid, r)
        self.cycles += 1

    def rate(self, seconds):
        """Cycles per second over about seconds."""
        n = 0
        t0 = time.monotonic()
        end = t0 + seconds
        while True:
            self.cycle()
            n += 1
            if n % 16 == 0 and time.monotonic() >= end:
                break
        return n / (time.monotonic() - t0)

    def best_rate(self, windows, seconds):
        """The best of several windows: noise only ever slows us down."""
        return max(self.rate(seconds) for _ in range(windows))
