"""Command-line options, as beanstalkd takes them: -p, -l (IPv4, IPv6, unix:),
-z, -v, -h, -V, the removed -c and -n, errors for bad options, and systemd
socket activation (LISTEN_PID/LISTEN_FDS with the socket at fd 3).
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import bstest

BIN = bstest.BINARY


def run_cli(*args, timeout=10):
    """Run the binary with args that should make it exit at once. A -l/-p on
    loopback goes first so that a server which wrongly starts serving does so
    on loopback only; it is killed after timeout."""
    cmd = [BIN, "-l", "127.0.0.1", "-p", str(bstest.free_port())] + list(args)
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%r did not exit within %ds" % (args, timeout))


wait_until = bstest.wait_until

class SockClient(bstest.Client):
    """bstest.Client over an already connected socket (AF_UNIX, say)."""

    def __init__(self, sock, timeout=5.0):
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""


def unix_connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return SockClient(s, timeout)


def ipv6_loopback_usable():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


class Proc:
    """A server started by hand (for addresses the harness cannot wait on)."""

    def __init__(self, test, argv, **kw):
        self.err = tempfile.TemporaryFile()
        test.addCleanup(self.stop)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err, **kw)

    def stderr_text(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class ListenTest(unittest.TestCase):

    @unittest.skipIf(bstest.REFERENCE, "stock beanstalkd prints no start-up line")
    def test_port_zero_reports_the_port_it_got(self):
        p = Proc(self, [BIN, "-l", "127.0.0.1", "-p", "0"])
        line = wait_until(lambda: p.stderr_text(), 10)
        self.assertTrue(line, "no start-up line")
        port = int(line.split(" port ", 1)[1].split(";", 1)[0])
        self.assertNotEqual(port, 0)
        c = bstest.Client("127.0.0.1", port)
        self.addCleanup(c.close)
        self.assertEqual(int(c.yaml("stats")["pid"]), p.proc.pid)

    def check_serves(self, c, pid=None):
        self.assertEqual(c.put(b"hello"), "INSERTED 1")
        self.assertEqual(c.body_reply("reserve"), ("RESERVED 1 5", b"hello"))
        self.assertEqual(c.cmd("delete 1"), "DELETED")
        if pid is not None:
            self.assertEqual(int(c.yaml("stats")["pid"]), pid)

    def test_port(self):
        port = bstest.free_port()
        s = bstest.Server(port=port)
        self.addCleanup(s.stop)
        c = bstest.Client("127.0.0.1", port)
        self.addCleanup(c.close)
        self.check_serves(c, s.proc.pid)

    def test_port_in_use_fails(self):
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        p = subprocess.run([BIN, "-l", "127.0.0.1", "-p", str(port)], capture_output=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip(), "no message on stderr")

    def test_listen_ipv4_loopback_only(self):
        s = bstest.Server(addr="127.0.0.1")
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.assertEqual(c.sock.getpeername(), ("127.0.0.1", s.port))
        self.check_serves(c, s.proc.pid)
        # Bound to 127.0.0.1 only: another loopback address is refused.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.2", s.port), timeout=2).close()

    @unittest.skipUnless(ipv6_loopback_usable(), "IPv6 loopback (::1) is not available here")
    def test_listen_ipv6_loopback(self):
        s = bstest.Server(addr="::1")
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.assertEqual(c.sock.family, socket.AF_INET6)
        self.assertEqual(c.sock.getpeername()[:2], ("::1", s.port))
        self.check_serves(c, s.proc.pid)

    def unix_dir(self):
        d = tempfile.mkdtemp(prefix="bs-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start_unix(self, path):
        p = Proc(self, [BIN, "-l", "unix:" + path])

        def attempt():
            if p.proc.poll() is not None:
                self.fail("server exited %d: %s" % (p.proc.returncode, p.stderr_text()))
            try:
                return unix_connect(path)
            except OSError:
                return None
        c = wait_until(attempt, timeout=10)
        self.assertIsNotNone(c, "nothing listening on " + path)
        self.addCleanup(c.close)
        return p, c

    def test_listen_unix_socket(self):
        path = os.path.join(self.unix_dir(), "bs.sock")
        p, c = self.start_unix(path)
        self.check_serves(c, p.proc.pid)
        # A second client on the same socket, and a waiting reserve woken.
        c2 = unix_connect(path)
        self.addCleanup(c2.close)
        c2.send("reserve\r\n")
        self.assertTrue(wait_until(lambda: c.yaml("stats")["current-waiting"] == "1"))
        jid = c.put_id(b"over unix")
        self.assertEqual(c2.line(), "RESERVED %d 9" % jid)
        self.assertEqual(c2.exact(11), b"over unix\r\n")

    def test_listen_unix_replaces_stale_socket(self):
        path = os.path.join(self.unix_dir(), "bs.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays behind, as after a crash
        self.assertTrue(os.path.exists(path))
        p, c = self.start_unix(path)
        self.check_serves(c, p.proc.pid)

    def test_listen_unix_refuses_to_replace_regular_file(self):
        path = os.path.join(self.unix_dir(), "precious")
        with open(path, "w") as f:
            f.write("keep me\n")
        try:
            p = subprocess.run([BIN, "-l", "unix:" + path], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("server started on top of a regular file")
        self.assertNotEqual(p.returncode, 0)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me\n")


class MaxJobSizeTest(bstest.ServerTest):
    server_args = ("-z", "10")

    def test_z_limit(self):
        c = self.c
        self.assertEqual(c.yaml("stats")["max-job-size"], "10")
        self.assertEqual(c.put(b"0123456789")[:9], "INSERTED ")
        self.assertEqual(c.put(b"0123456789A"), "JOB_TOO_BIG")
        self.assertEqual(c.put(b"")[:9], "INSERTED ")
        self.assertEqual(c.cmd("list-tube-used"), "USING default")
        self.assertEqual(c.yaml("stats")["total-jobs"], "2")


class MaxJobSizeZeroTest(bstest.ServerTest):
    server_args = ("-z", "0")

    def test_z_zero(self):
        self.assertEqual(self.c.yaml("stats")["max-job-size"], "0")
        self.assertEqual(self.c.put(b"")[:9], "INSERTED ")
        self.assertEqual(self.c.put(b"x"), "JOB_TOO_BIG")


class OptionTest(unittest.TestCase):

    def serve(self, *args):
        s = bstest.Server(*args)
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.assertEqual(c.put(b"ok")[:9], "INSERTED ")
        return s, c

    def test_z_attached_argument(self):
        s, c = self.serve("-z100")
        self.assertEqual(c.yaml("stats")["max-job-size"], "100")

    def test_z_above_maximum_is_clamped(self):
        s, c = self.serve("-z", "2000000000")
        self.assertEqual(c.yaml("stats")["max-job-size"], "1073741824")

    def test_version(self):
        p = run_cli("-v")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertRegex(out, r"^beanstalkd \S+")
        self.assertEqual(out.count("\n"), 1, "one line: %r" % out)

    def test_help(self):
        p = run_cli("-h")
        self.assertEqual(p.returncode, 0, p.stderr)
        text = (p.stdout + p.stderr).decode()
        for flag in ("-b", "-f", "-F", "-l", "-p", "-u", "-z", "-s", "-v", "-V", "-h"):
            self.assertIn(flag, text)

    def check_error(self, args, token):
        p = run_cli(*args)
        self.assertNotEqual(p.returncode, 0, "%r exited 0" % (args,))
        lines = [l for l in p.stderr.decode(errors="replace").splitlines() if l.strip()]
        self.assertTrue(lines, "%r: nothing on stderr" % (args,))
        self.assertIn(token, lines[0], "%r: the first stderr line should name the problem" % (args,))

    def test_unknown_option(self):
        self.check_error(["-X"], "-X")

    def test_unknown_argument(self):
        self.check_error(["stray"], "stray")

    def test_bad_size(self):
        self.check_error(["-z", "abc"], "abc")
        self.check_error(["-z", "10x"], "10x")
        self.check_error(["-s", "big"], "big")
        self.check_error(["-f", "often"], "often")

    def test_missing_argument(self):
        self.check_error(["-p"], "-p")
        self.check_error(["-z"], "-z")
        self.check_error(["-l"], "-l")

    def test_verbose_accepted(self):
        self.serve("-V")

    def test_removed_c_and_n_accepted(self):
        self.serve("-c")
        self.serve("-n")

    def test_fsync_options_accepted_without_binlog(self):
        self.serve("-F")
        self.serve("-f", "100")


class SocketActivationTest(unittest.TestCase):

    def activated(self, lsock, extra_env=None):
        """Start the server with lsock at fd 3, LISTEN_FDS=1 and LISTEN_PID
        set to the child's own pid (set between fork and exec)."""
        fd = lsock.fileno()
        # A loopback -l/-p as well: ignored under activation, but if the
        # server ignored the passed socket instead it still stays on loopback.
        argv = [BIN, "-l", "127.0.0.1", "-p", str(bstest.free_port())]
        env = dict(os.environ, LISTEN_FDS="1")
        env.pop("LISTEN_FDNAMES", None)
        if extra_env:
            env.update(extra_env)

        def child():
            if fd != 3:
                os.dup2(fd, 3)
            os.set_inheritable(3, True)
            e = dict(env)
            e.setdefault("LISTEN_PID", str(os.getpid()))
            os.execve(BIN, argv, e)

        p = Proc(self, argv, preexec_fn=child)
        lsock.close()  # only the server holds it now
        return p

    def test_inherited_tcp_socket(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        p = self.activated(lsock)
        c = bstest.Client("127.0.0.1", port)
        self.addCleanup(c.close)
        self.assertEqual(c.put(b"activated"), "INSERTED 1")
        self.assertEqual(int(c.yaml("stats")["pid"]), p.proc.pid)
        c2 = bstest.Client("127.0.0.1", port)
        self.addCleanup(c2.close)
        self.assertEqual(c2.body_reply("reserve"), ("RESERVED 1 9", b"activated"))

    def test_inherited_unix_socket(self):
        d = tempfile.mkdtemp(prefix="bs-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "act.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(16)
        p = self.activated(lsock)
        c = unix_connect(path)
        self.addCleanup(c.close)
        self.assertEqual(c.put(b"x"), "INSERTED 1")
        self.assertEqual(int(c.yaml("stats")["pid"]), p.proc.pid)

    @unittest.skipIf(bstest.REFERENCE, "stock beanstalkd serves whatever it is given")
    def test_passed_descriptor_that_is_not_a_listening_socket(self):
        # A socket that is bound but not listening stands in for a wrong
        # descriptor: the server says so and exits 111, as for a failed bind.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        p = self.activated(s)
        self.assertEqual(p.proc.wait(10), 111)
        self.assertIn("descriptor 3 is not a listening socket", p.stderr_text())

    def test_listen_pid_of_another_process_ignored(self):
        # LISTEN_PID names someone else: the variables are not for us, and
        # the server binds its -l/-p address as usual.
        env = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="1")
        s = bstest.Server(env=env)
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.assertEqual(c.put(b"x"), "INSERTED 1")


if __name__ == "__main__":
    unittest.main()
