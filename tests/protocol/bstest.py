"""Shared harness for the protocol tests.

Every test talks to a real server over a real socket. The server binary comes
from $BEANSTALKD (default: ./beanstalkd at the top of the tree); setting it to
/usr/bin/beanstalkd runs the same tests against stock beanstalkd, which is how
the tests themselves are proven right. $BS_REFERENCE=1 marks such a run so the
few tests that check our documented differences can skip themselves.
"""
import os
import socket
import subprocess
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("BEANSTALKD", os.path.join(TOP, "beanstalkd"))
REFERENCE = os.environ.get("BS_REFERENCE") == "1"
# Set by `make check-asan`: a sanitizer report or a leak makes the test fail.
SANITIZED = os.environ.get("BS_SANITIZED") == "1"


def free_port():
    """A loopback TCP port nobody listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One daemon on a free loopback port, started and stopped by the test."""

    def __init__(self, *args, port=None, addr="127.0.0.1", wait=True, env=None, preexec_fn=None):
        self.port = port or free_port()
        self.addr = addr
        self.args = list(args)
        # BS_STORE_ARGS (e.g. "-f 0") runs every test with a durable store in
        # a fresh directory, so the whole protocol is checked in store mode.
        self.tmpdir = None
        store_args = os.environ.get("BS_STORE_ARGS")
        if store_args is not None and "-b" not in self.args:
            self.tmpdir = tempfile.TemporaryDirectory(prefix="bstest-")
            if "-u" in self.args:
                # As an operator would: the store belongs to the -u user
                # (an unknown user is left for the server to refuse).
                import pwd
                try:
                    pw = pwd.getpwnam(self.args[self.args.index("-u") + 1])
                    os.chown(self.tmpdir.name, pw.pw_uid, pw.pw_gid)
                except KeyError:
                    pass
            self.args += ["-b", self.tmpdir.name] + store_args.split()
        cmd = [BINARY, "-l", addr, "-p", str(self.port)] + self.args
        # stderr goes to a file, not a pipe: a pipe nobody reads could fill
        # and stall the server.
        self.errfile = tempfile.TemporaryFile()
        # preexec_fn runs in the child before exec: e.g. resource limits.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.errfile, env=env, preexec_fn=preexec_fn)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        """Poll until the port accepts a connection: a readiness check, not a sleep."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited %d: %s" % (self.proc.returncode, self.stderr_text()))
            if self._listening():
                return
            time.sleep(0.01)
        raise RuntimeError("server did not start listening")

    def _listening(self):
        """True once our process (not another that took the port first)
        has a listening socket on the port: /proc says whose it is."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == self.port:
                            inodes.add(parts[9])
            except OSError:
                pass
        if not inodes:
            return False
        try:
            fds = os.listdir("/proc/%d/fd" % self.proc.pid)
        except OSError:
            return False
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
        return False

    def client(self, timeout=5.0):
        return Client(self.addr, self.port, timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stderr_text(self):
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.errfile.closed:
            return                      # stopped already
        err = self.stderr_text()
        self.errfile.close()
        if self.tmpdir:
            self.tmpdir.cleanup()
        if SANITIZED and ("Sanitizer" in err or "runtime error" in err):
            raise AssertionError("sanitizer report from the server:\n" + err)


class Client:
    """A raw protocol client: send bytes, read lines and exact byte counts."""

    def __init__(self, addr, port, timeout=5.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def line(self):
        """Next reply line without its CRLF, as str."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, line):
        """Send one command line and return the reply line."""
        self.send(line + "\r\n")
        return self.line()

    def body_reply(self, line):
        """Send a command whose reply carries a body (OK/FOUND/RESERVED)."""
        self.send(line + "\r\n")
        head = self.line()
        parts = head.split()
        if parts[0] in ("OK",):
            return head, self.exact(int(parts[1]) + 2)[:-2]
        if parts[0] in ("FOUND", "RESERVED"):
            return head, self.exact(int(parts[2]) + 2)[:-2]
        return head, None

    def put(self, body=b"x", pri=0, delay=0, ttr=60):
        if isinstance(body, str):
            body = body.encode()
        self.send(b"put %d %d %d %d\r\n" % (pri, delay, ttr, len(body)) + body + b"\r\n")
        return self.line()

    def put_id(self, *a, **kw):
        r = self.put(*a, **kw)
        assert r.startswith("INSERTED "), r
        return int(r.split()[1])

    def yaml(self, line):
        """Send a stats-like command and parse its flat YAML dict or list."""
        head, body = self.body_reply(line)
        assert head.startswith("OK "), head
        return parse_yaml(body.decode())

    def closed_by_peer(self, timeout=2.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def wait_until(fn, timeout=5.0, step=0.02):
    """Poll fn() until it returns a true value (a readiness check, not a
    sleep); return that value, or None once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def parse_yaml(text):
    lines = text.split("\n")
    assert lines[0] == "---", text
    items = [l for l in lines[1:] if l]
    if items and items[0].startswith("- "):
        return [l[2:] for l in items]
    out = {}
    for l in items:
        k, v = l.split(": ", 1)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        out[k] = v
    return out


class ServerTest(unittest.TestCase):
    """A test case with a fresh server per test (cheap: it starts in ms)."""
    server_args = ()

    def setUp(self):
        self.server = Server(*self.server_args)
        self.addCleanup(self.server.stop)
        self.c = self.conn()

    def conn(self):
        c = self.server.client()
        self.addCleanup(c.close)
        return c

    def side(self):
        """A spare connection, made once per test, for barriers and checks."""
        if not hasattr(self, "_side"):
            self._side = self.conn()
        return self._side

    def barrier(self):
        """Two round trips on another connection. Bytes sent earlier on any
        connection have then almost surely been read by the server; used only
        before checks that can never fail falsely for a correct server."""
        s = self.side()
        for _ in range(2):
            self.assertTrue(s.cmd("list-tube-used").startswith("USING "))

    def assertQuiet(self, c):
        """The server has sent nothing more on c (yet)."""
        self.barrier()
        self.assertEqual(c.buf, b"")
        c.sock.setblocking(False)
        try:
            data = c.sock.recv(4096)
        except BlockingIOError:
            data = b""
        finally:
            c.sock.settimeout(5.0)
        self.assertEqual(data, b"", "unexpected reply")

    def assertAlive(self, c, tube="default"):
        self.assertEqual(c.cmd("list-tube-used"), "USING " + tube)
