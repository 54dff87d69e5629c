"""Shared helpers for the restart and crash tests (test_restart.py, test_crash.py).

A StoreDir is one store directory and the daemon currently running on it;
it stops a daemon by SIGTERM (clean) or SIGKILL (crash), always by PID, and
starts the next one on the same directory. Batch sends many commands at
once and reads their replies in order, so checking hundreds of jobs after a
restart takes one round trip per batch, not one per job.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import bstest

# The three durability modes. A killed process must lose nothing in any of
# them: only a power cut may cost -f or -F anything.
MODES = {
    "default": (),
    "f50": ("-f", "50"),
    "F": ("-F",),
}


class StoreDir:
    """A store directory plus the daemon (if any) running on it."""

    def __init__(self, test, mode_args=(), prefix="bsdur-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.mode_args = tuple(mode_args)
        self.server = None
        self.logs = []          # stderr of every daemon that ran here
        # Cleanups run last-in first-out: stop the daemon, then remove DIR.
        test.addCleanup(shutil.rmtree, self.dir, True)
        test.addCleanup(self.stop_any)

    def start(self, *extra, wait=True):
        """Start a daemon on this directory; it listens when this returns
        (unless wait is false: then it may still be opening the store)."""
        assert self.server is None, "a daemon is already running here"
        self.server = bstest.Server("-b", self.dir, *(self.mode_args + tuple(extra)), wait=wait)
        return self.server

    def client(self, timeout=10.0):
        return self.server.client(timeout)

    def _finish(self):
        srv, self.server = self.server, None
        self.logs.append(srv.stderr_text())
        srv.stop()              # closes its stderr file; the process is gone
        return srv

    def kill(self):
        """kill -9 the daemon and wait until it is gone (its lock with it)."""
        p = self.server.proc
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        self._finish()

    def term(self):
        """SIGTERM: a clean shutdown. Returns the exit status."""
        p = self.server.proc
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            self._finish()
            raise AssertionError("daemon ignored SIGTERM for 10 s")
        self._finish()
        return rc

    def stop(self, how):
        if how == "kill":
            self.kill()
        else:
            rc = self.term()
            assert rc == 0, "clean shutdown exited %r; stderr:\n%s" % (rc, self.logs[-1])

    def stop_any(self):
        if self.server is not None:
            self.kill()

    def last_log(self):
        return self.logs[-1] if self.logs else ""


def run_refused(args, timeout=10.0):
    """Run a daemon that is expected to refuse to start: (status, stderr).

    It gets a free port of its own, so a refusal cannot be mistaken for a
    port clash. If it starts serving instead, it is killed (by PID) and the
    status is None."""
    port = bstest.free_port()
    cmd = [bstest.BINARY, "-l", "127.0.0.1", "-p", str(port)] + list(args)
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            rc = None
        err.seek(0)
        return rc, err.read().decode(errors="replace")


def read_reply(c):
    """One reply from a bstest.Client: (head line, body or None)."""
    head = c.line()
    parts = head.split()
    n = None
    if parts and parts[0] == "OK" and len(parts) == 2:
        n = int(parts[1])
    elif parts and parts[0] in ("FOUND", "RESERVED") and len(parts) == 3:
        n = int(parts[2])
    if n is None:
        return head, None
    return head, c.exact(n + 2)[:-2]


def batch(c, lines, chunk=200):
    """Send command lines in chunks and return their replies, in order."""
    out = []
    for i in range(0, len(lines), chunk):
        part = lines[i:i + chunk]
        c.send("".join(l + "\r\n" for l in part))
        for _ in part:
            out.append(read_reply(c))
    return out


def job_stats(c, ids):
    """{id: stats-job dict or None} for every id, pipelined."""
    res = {}
    for i, (head, body) in zip(ids, batch(c, ["stats-job %d" % i for i in ids])):
        if head == "NOT_FOUND":
            res[i] = None
        else:
            assert head.startswith("OK "), "stats-job %d: %r" % (i, head)
            res[i] = bstest.parse_yaml(body.decode())
    return res


def peek_bodies(c, ids):
    """{id: body bytes or None} for every id, pipelined."""
    res = {}
    for i, (head, body) in zip(ids, batch(c, ["peek %d" % i for i in ids])):
        if head == "NOT_FOUND":
            res[i] = None
        else:
            assert head.split()[:2] == ["FOUND", str(i)], "peek %d: %r" % (i, head)
            res[i] = body
    return res


def wait_for(fn, timeout=10.0, step=0.01):
    """Poll fn until it returns something true; that value, or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)
