"""`make install` and the systemd units of tools/systemd/.

- what `make install DESTDIR=... PREFIX=...` puts where, with the service's
  @BINDIR@ replaced by the installed daemon's path;
- `systemd-analyze verify` and `security` on the installed units, the
  sysusers.d file through `systemd-sysusers --root`, and the service's
  SystemCallFilter= against every system call the daemon makes (skipped
  when the tool is missing);
- the installed daemon started the way systemd starts the installed
  service: the test binds the listening sockets itself (as the socket unit
  makes systemd do), passes them from fd 3 on with LISTEN_FDS, LISTEN_PID
  (the child's own pid) and LISTEN_FDNAMES, runs the unit's ExecStart line,
  and checks the daemon serves them and listens on nothing else; a
  connection made while the service is down waits in the socket for the
  next instance; as root, -u nobody and a daemon started as the service
  user (User=, StateDirectory=) own their store.

tests/protocol/test_options.py (SocketActivationTest) and test_user.py
cover the plain LISTEN_FDS and -u cases with -l/-p; this file adds what the
units rely on.
"""
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "protocol"))
import bstest  # noqa: E402

UNIT_SRC = os.path.join(TOP, "tools", "systemd")
STORE_IN_UNIT = "/var/lib/beanstalkd/store"
wait_until = bstest.wait_until


def make_install(*assignments):
    """`make install VAR=value...` in the top directory; MAKEFLAGS of an
    outer make (`make check-tools`) are not passed on."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "-C", TOP, "install"] + list(assignments), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if p.returncode != 0:
        raise AssertionError("make install %s failed:\n%s" % (" ".join(assignments),
                                                             p.stdout.decode(errors="replace")))


def unit_settings(path):
    """{(section, key): [values in order]} of a unit file (no line
    continuations: our units use none)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.setdefault((section, key), []).append(value)
    return out


# One installed tree for the whole file: DESTDIR install with PREFIX=/usr.
DEST = None


def setUpModule():
    global DEST
    DEST = tempfile.mkdtemp(prefix="bs-install-")
    os.chmod(DEST, 0o755)          # a daemon started as nobody runs from it
    make_install("DESTDIR=" + DEST, "PREFIX=/usr")


def tearDownModule():
    shutil.rmtree(DEST, ignore_errors=True)


def dest(path):
    return DEST + path


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


class InstallTest(unittest.TestCase):

    def assertInstalled(self, path, mode, same_as=None):
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), mode, path)
        if same_as:
            with open(path, "rb") as a, open(same_as, "rb") as b:
                self.assertTrue(a.read() == b.read(), "%s differs from %s" % (path, same_as))

    def test_binaries_man_pages_units(self):
        for prog in ("beanstalkd", "bsdump", "bsimport"):
            self.assertInstalled(dest("/usr/bin/" + prog), 0o755, os.path.join(TOP, prog))
        for page in ("beanstalkd.1", "bsdump.1", "bsimport.1"):
            self.assertInstalled(dest("/usr/share/man/man1/" + page), 0o644,
                                 os.path.join(TOP, "docs", page))
        units = dest("/usr/lib/systemd/system/")
        self.assertInstalled(units + "beanstalkd.socket", 0o644,
                             os.path.join(UNIT_SRC, "beanstalkd.socket"))
        self.assertInstalled(units + "beanstalkd.service", 0o644)
        self.assertInstalled(dest("/usr/lib/sysusers.d/beanstalkd.conf"), 0o644,
                             os.path.join(UNIT_SRC, "beanstalkd.sysusers"))
        # Nothing outside PREFIX (no /etc, no /var: systemd makes those).
        self.assertEqual(os.listdir(DEST), ["usr"])

    def test_service_names_the_installed_daemon(self):
        path = dest("/usr/lib/systemd/system/beanstalkd.service")
        with open(path) as f:
            text = f.read()
        self.assertIsNone(re.search(r"@[A-Z_]+@", text), "a placeholder was left unreplaced")
        self.assertNotIn(DEST, text, "DESTDIR leaked into the unit")
        exec_start = unit_settings(path)[("Service", "ExecStart")]
        self.assertEqual(len(exec_start), 1)
        self.assertEqual(exec_start[0].split()[0], "/usr/bin/beanstalkd")
        # The rest of the file is the source, unchanged.
        with open(os.path.join(UNIT_SRC, "beanstalkd.service")) as f:
            self.assertEqual(text, f.read().replace("@BINDIR@", "/usr/bin"))
        p = subprocess.run([dest("/usr/bin/beanstalkd"), "-v"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"beanstalkd "))

    def test_default_prefix_and_unit_dir_override(self):
        d = tempfile.mkdtemp(prefix="bs-install-")
        self.addCleanup(shutil.rmtree, d, True)
        make_install("DESTDIR=" + d)
        svc = d + "/usr/local/lib/systemd/system/beanstalkd.service"
        self.assertEqual(unit_settings(svc)[("Service", "ExecStart")][0].split()[0],
                         "/usr/local/bin/beanstalkd")
        self.assertTrue(os.path.exists(d + "/usr/local/bin/beanstalkd"))
        self.assertTrue(os.path.exists(d + "/usr/local/share/man/man1/beanstalkd.1"))
        self.assertTrue(os.path.exists(d + "/usr/local/lib/sysusers.d/beanstalkd.conf"))
        d2 = tempfile.mkdtemp(prefix="bs-install-")
        self.addCleanup(shutil.rmtree, d2, True)
        make_install("DESTDIR=" + d2, "PREFIX=/opt/bs", "SYSTEMD_UNIT_DIR=/etc/systemd/system")
        svc = d2 + "/etc/systemd/system/beanstalkd.service"
        self.assertEqual(unit_settings(svc)[("Service", "ExecStart")][0].split()[0],
                         "/opt/bs/bin/beanstalkd")
        self.assertTrue(os.path.exists(d2 + "/etc/systemd/system/beanstalkd.socket"))

    def test_what_the_units_promise(self):
        sock = unit_settings(dest("/usr/lib/systemd/system/beanstalkd.socket"))
        self.assertEqual(sock[("Socket", "ListenStream")], ["127.0.0.1:11300"])
        self.assertEqual(sock.get(("Socket", "Accept"), ["no"]), ["no"])
        self.assertEqual(sock[("Install", "WantedBy")], ["sockets.target"])
        svc = unit_settings(dest("/usr/lib/systemd/system/beanstalkd.service"))
        one = lambda key: svc[("Service", key)][-1]  # noqa: E731
        self.assertIn("beanstalkd.socket", svc[("Unit", "Requires")][0].split())
        self.assertEqual(one("User"), "beanstalkd")
        self.assertEqual(one("StateDirectory"), "beanstalkd")
        self.assertEqual(one("EnvironmentFile"), "-/etc/default/beanstalkd")
        argv = one("ExecStart").split()
        self.assertEqual(argv[1:], ["-b", STORE_IN_UNIT, "$BEANSTALKD_OPTS"])
        self.assertEqual(one("Restart"), "on-failure")
        for key, value in (("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                           ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                           ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
                           ("LockPersonality", "yes"),
                           ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")):
            self.assertEqual(one(key), value, key)
        self.assertEqual(svc[("Service", "SystemCallFilter")][0], "@system-service")


def service_filter():
    """The service's SystemCallFilter= lines: (allowed, denied) group lists."""
    svc = unit_settings(dest("/usr/lib/systemd/system/beanstalkd.service"))
    allow, deny = [], []
    for v in svc[("Service", "SystemCallFilter")]:
        (deny if v.startswith("~") else allow).extend(v.lstrip("~").split())
    return allow, deny


def syscall_groups():
    """{"@group": [members]} from `systemd-analyze syscall-filter`."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                         timeout=60).stdout.decode()
    groups, cur = {}, None
    for line in out.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not line[0].isspace() and s.startswith("@"):
            cur = groups.setdefault(s, [])
        elif cur is not None:
            cur.append(s)
    return groups


def expand(names, groups):
    out = set()
    for n in names:
        out |= expand(groups[n], groups) if n.startswith("@") else {n}
    return out


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class SystemdToolsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # PREFIX inside a temporary directory, no DESTDIR: ExecStart then
        # names a daemon that exists, which verify checks.
        cls.tmp = tempfile.mkdtemp(prefix="bs-units-")
        make_install("PREFIX=" + cls.tmp + "/usr")
        cls.units = cls.tmp + "/usr/lib/systemd/system"
        # Our directory first, then systemd's own (trailing colon), so that
        # targets resolve and a host's Debian beanstalkd units do not win.
        cls.env = dict(os.environ, SYSTEMD_UNIT_PATH=cls.units + ":", SYSTEMD_LOG_COLOR="0")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args), env=self.env,
                              capture_output=True, timeout=120)

    def test_verify(self):
        p = self.analyze("verify", self.units + "/beanstalkd.socket",
                         self.units + "/beanstalkd.service")
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("beanstalkd", out, "warnings about our units:\n" + out)

    def test_verify_catches_a_missing_daemon(self):
        # The check above means something: a unit naming a daemon that is
        # not there fails it.
        os.rename(self.tmp + "/usr/bin/beanstalkd", self.tmp + "/usr/bin/beanstalkd.away")
        try:
            p = self.analyze("verify", self.units + "/beanstalkd.service")
        finally:
            os.rename(self.tmp + "/usr/bin/beanstalkd.away", self.tmp + "/usr/bin/beanstalkd")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not executable", (p.stdout + p.stderr).decode(errors="replace"))

    def test_security_exposure(self):
        p = self.analyze("security", "--offline=yes", "--no-pager",
                         self.units + "/beanstalkd.service")
        out = (p.stdout + p.stderr).decode(errors="replace")
        if "--offline" in out and p.returncode != 0:
            self.skipTest("systemd-analyze security --offline needs systemd 250 or later")
        m = re.search(r"Overall exposure level for beanstalkd\.service: ([0-9.]+)", out)
        self.assertTrue(m, out)
        self.assertLessEqual(float(m.group(1)), 2.0, out)

    @unittest.skipUnless(shutil.which("systemd-sysusers"), "systemd-sysusers is not installed")
    def test_sysusers_creates_the_service_user(self):
        root = tempfile.mkdtemp(prefix="bs-sysroot-")
        self.addCleanup(shutil.rmtree, root, True)
        os.makedirs(root + "/etc")
        os.makedirs(root + "/usr/lib/sysusers.d")
        shutil.copy(self.tmp + "/usr/lib/sysusers.d/beanstalkd.conf", root + "/usr/lib/sysusers.d/")
        p = subprocess.run(["systemd-sysusers", "--root=" + root], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(root + "/etc/passwd") as f:
            users = {l.split(":")[0]: l.strip().split(":") for l in f}
        self.assertIn("beanstalkd", users)
        u = users["beanstalkd"]
        self.assertLess(int(u[2]), 1000, "a system user")
        self.assertTrue(u[6].endswith("nologin"), u)
        svc = unit_settings(self.units + "/beanstalkd.service")
        self.assertEqual(svc[("Service", "User")], ["beanstalkd"])

    @unittest.skipUnless(shutil.which("strace"), "strace is not installed")
    def test_system_call_filter_allows_what_the_daemon_uses(self):
        """Runs the daemon under strace, socket-activated, through every
        store mode and the commands that touch the store, drain and
        SIGTERM; every system call it makes after its exec must pass the
        service's SystemCallFilter= (or the service would get EPERM)."""
        groups = syscall_groups()
        allow, deny = service_filter()
        allowed = expand(allow, groups) - expand(deny, groups)
        daemon = self.tmp + "/usr/bin/beanstalkd"
        used = set()
        for mode in ([], ["-f", "20"], ["-F"]):
            with self.subTest(mode=mode):
                used |= self.traced_syscalls(daemon, mode)
        self.assertIn("fdatasync", used, "the trace saw no store activity")
        self.assertEqual(sorted(used - allowed), [],
                         "system calls the service's filter would refuse")

    def traced_syscalls(self, daemon, mode):
        work = tempfile.mkdtemp(prefix="bs-strace-")
        self.addCleanup(shutil.rmtree, work, True)
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        self.addCleanup(lsock.close)
        port = lsock.getsockname()[1]
        trace = os.path.join(work, "trace")

        def child():
            os.dup2(lsock.fileno(), 3)
            os.set_inheritable(3, True)
        # sh sets LISTEN_PID to its own pid, which exec keeps for the daemon.
        cmd = ["strace", "-f", "-qq", "-o", trace, "sh", "-c",
               'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=beanstalkd.socket exec "$@"',
               "sh", daemon, "-b", os.path.join(work, "store")] + mode
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        p = subprocess.Popen(cmd, preexec_fn=child, close_fds=False, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            c = bstest.Client("127.0.0.1", port, timeout=20)
            c2 = bstest.Client("127.0.0.1", port, timeout=20)
            for _ in range(20):
                self.assertTrue(c.put(b"x" * 1000).startswith("INSERTED "))
            self.assertEqual(c.cmd("use other"), "USING other")
            self.assertTrue(c.put(b"later", delay=1).startswith("INSERTED "))
            jid = int(c2.body_reply("reserve")[0].split()[1])
            self.assertEqual(c2.cmd("release %d 5 0" % jid), "RELEASED")
            jid = int(c2.body_reply("reserve")[0].split()[1])
            self.assertEqual(c2.cmd("bury %d 1" % jid), "BURIED")
            self.assertEqual(c2.cmd("kick 1"), "KICKED 1")
            jid = int(c2.body_reply("reserve")[0].split()[1])
            self.assertEqual(c2.cmd("delete %d" % jid), "DELETED")
            self.assertEqual(c.cmd("pause-tube other 1"), "PAUSED")
            c.yaml("stats")
            c.yaml("stats-job 1")
            self.assertEqual(c2.body_reply("peek-ready")[0].split()[0], "FOUND")
            pid = int(c.yaml("stats")["pid"])
            os.kill(pid, signal.SIGUSR1)
            self.assertTrue(wait_until(lambda: c.yaml("stats")["draining"] == "true"))
            # A -f 20 commit and the delay's end happen on timers.
            self.assertTrue(wait_until(lambda: c.yaml("stats")["current-jobs-delayed"] == "0"))
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(p.wait(20), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        names, after_exec = set(), False
        with open(trace) as f:
            for line in f:
                line = re.sub(r"^\d+\s+", "", line)
                if not after_exec:
                    after_exec = line.startswith('execve("%s"' % daemon) and "= 0" in line
                    continue
                m = re.match(r"<\.\.\. (\w+) resumed>", line) or re.match(r"(\w+)\(", line)
                if m:
                    names.add(m.group(1))
        self.assertTrue(after_exec, "the daemon's exec is not in the trace")
        return names


def socket_inode(sock):
    return os.fstat(sock.fileno()).st_ino


def listening_inodes(pid):
    """Inodes of the listening sockets process pid holds."""
    listening = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A":
                        listening.add(int(parts[9]))
        except OSError:
            pass
    with open("/proc/%d/net/unix" % pid) as f:
        next(f)
        for line in f:
            parts = line.split()
            if int(parts[3], 16) & 0x10000:             # __SO_ACCEPTCON
                listening.add(int(parts[6]))
    held = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            held.add(int(link[8:-1]))
    return held & listening


def fd_inode(pid, fd):
    link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    return int(link[8:-1]) if link.startswith("socket:[") else None


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


class Activated:
    """The installed daemon started as systemd starts beanstalkd.service:
    the listening sockets at fd 3, 4, ...; LISTEN_FDS, LISTEN_PID (set
    between fork and exec, so it is the daemon's pid) and LISTEN_FDNAMES;
    the unit's ExecStart line with $BEANSTALKD_OPTS expanded and the store
    path moved into a temporary directory (as StateDirectory= provides
    one). A loopback -l/-p on a free port comes last: ignored under
    activation, and a daemon that wrongly bound its own socket would bind
    loopback, not 0.0.0.0:11300. With user, the ids are dropped before the
    exec, as User= does."""

    def __init__(self, test, socks, store, opts=(), user=None):
        svc = unit_settings(dest("/usr/lib/systemd/system/beanstalkd.service"))
        argv = []
        for word in svc[("Service", "ExecStart")][0].split():
            if word == "$BEANSTALKD_OPTS":
                argv += list(opts)
            else:
                argv.append(store if word == STORE_IN_UNIT else word)
        argv[0] = dest(argv[0])
        self.guard_port = bstest.free_port()
        argv += ["-l", "127.0.0.1", "-p", str(self.guard_port)]
        self.argv = argv
        fds = [s.fileno() for s in socks]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        env["LISTEN_FDS"] = str(len(fds))
        env["LISTEN_FDNAMES"] = ":".join(["beanstalkd.socket"] * len(fds))

        def child():
            # Move the sockets out of the way first, then into 3, 4, ...
            tmp = [os.dup(fd) for fd in fds]
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i)
                os.set_inheritable(3 + i, True)
            if user:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
                os.umask(0o077)
            env["LISTEN_PID"] = str(os.getpid())
            os.execve(argv[0], argv, env)

        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, preexec_fn=child, stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        test.addCleanup(self.stop)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SocketActivationTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bs-act-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.store = os.path.join(self.dir, "store")

    def tcp_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        return s

    def unix_socket(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        path = os.path.join(self.dir, "beanstalkd.sock")
        s.bind(path)
        os.chmod(path, 0o666)      # as systemd makes it (SocketMode=0666)
        s.listen(128)
        return s, path

    def tcp_client(self, sock):
        # The socket listens before the daemon runs: connecting always
        # works, the first reply shows the daemon is serving.
        c = bstest.Client(*sock.getsockname(), timeout=10)
        self.addCleanup(c.close)
        return c

    def unix_client(self, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        c = bstest.Client.__new__(bstest.Client)
        c.sock, c.buf = s, b""
        self.addCleanup(c.close)
        return c

    def stop(self, d):
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0, d.log())

    def assertOnlyListensOn(self, d, socks):
        want = {socket_inode(s) for s in socks}
        self.assertEqual(listening_inodes(d.pid), want,
                         "the daemon listens on sockets it was not given")
        self.assertEqual({fd_inode(d.pid, 3 + i) for i in range(len(socks))}, want)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", d.guard_port), timeout=2).close()

    def test_serves_the_passed_socket_and_binds_nothing(self):
        lsock = self.tcp_socket()
        d = Activated(self, [lsock], self.store)
        c = self.tcp_client(lsock)
        self.assertEqual(c.put(b"activated"), "INSERTED 1")
        self.assertEqual(int(c.yaml("stats")["pid"]), d.pid)
        c2 = self.tcp_client(lsock)
        self.assertEqual(c2.body_reply("reserve"), ("RESERVED 1 9", b"activated"))
        self.assertEqual(c2.cmd("delete 1"), "DELETED")
        self.assertOnlyListensOn(d, [lsock])
        self.assertEqual(c.yaml("stats")["store-sync-mode"], "always")
        self.stop(d)
        log = d.log()
        self.assertIn("listening on 1 socket(s) passed by the service manager", log)
        self.assertIn("store %s: every acknowledgement waits for a sync" % self.store, log)
        self.assertTrue(os.path.exists(os.path.join(self.store, "data.mdb")))

    def test_options_from_beanstalkd_opts(self):
        # BEANSTALKD_OPTS="-z 100 -f 20" from /etc/default/beanstalkd.
        lsock = self.tcp_socket()
        d = Activated(self, [lsock], self.store, opts=shlex.split("-z 100 -f 20"))
        c = self.tcp_client(lsock)
        s = c.yaml("stats")
        self.assertEqual((s["max-job-size"], s["store-sync-mode"]), ("100", "interval"))
        self.assertEqual(c.put(b"x" * 101), "JOB_TOO_BIG")
        self.stop(d)

    def test_tcp_and_unix_sockets_together(self):
        # A socket unit with two ListenStream= lines passes LISTEN_FDS=2.
        lsock = self.tcp_socket()
        usock, path = self.unix_socket()
        d = Activated(self, [lsock, usock], self.store)
        c = self.tcp_client(lsock)
        u = self.unix_client(path)
        self.assertEqual(c.put(b"over tcp"), "INSERTED 1")
        self.assertEqual(u.body_reply("reserve"), ("RESERVED 1 8", b"over tcp"))
        self.assertEqual(u.put(b"over unix"), "INSERTED 2")
        self.assertEqual(int(u.yaml("stats")["pid"]), d.pid)
        self.assertOnlyListensOn(d, [lsock, usock])
        self.stop(d)
        self.assertIn("listening on 2 socket(s)", d.log())

    def test_connection_waits_in_the_socket_across_a_restart(self):
        # systemd keeps the socket open while the service stops and starts
        # again (systemctl restart, Restart=on-failure): a client that
        # connects in between is served by the next instance, and the
        # store carries the jobs over.
        lsock = self.tcp_socket()
        d = Activated(self, [lsock], self.store)
        c = self.tcp_client(lsock)
        self.assertEqual(c.put(b"kept"), "INSERTED 1")
        c.close()
        self.stop(d)
        waiting = self.tcp_client(lsock)               # nobody serves now
        waiting.send(b"put 0 0 60 6\r\nwaited\r\n")
        d2 = Activated(self, [lsock], self.store)
        self.assertEqual(waiting.line(), "INSERTED 2")
        self.assertEqual(waiting.body_reply("reserve"), ("RESERVED 1 4", b"kept"))
        self.assertEqual(int(waiting.yaml("stats")["pid"]), d2.pid)
        self.stop(d2)
        self.assertIn("loaded 1 ready", d2.log())

    @unittest.skipUnless(os.geteuid() == 0, "changing user needs root")
    @unittest.skipUnless(nobody(), "needs the user nobody")
    def test_u_nobody_under_activation(self):
        pw = nobody()
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)        # where nobody may create the store
        lsock = self.tcp_socket()
        d = Activated(self, [lsock], self.store, opts=["-u", "nobody", "-f", "20"])
        c = self.tcp_client(lsock)
        self.assertEqual(c.put(b"as nobody"), "INSERTED 1")
        self.assertRunsAs(d.pid, pw)
        self.assertOnlyListensOn(d, [lsock])
        self.assertStoreOwnedBy(pw, ("data.mdb", "lock.mdb", "lock", "journal"))
        self.stop(d)

    @unittest.skipUnless(os.geteuid() == 0, "changing user needs root")
    @unittest.skipUnless(nobody(), "needs the user nobody")
    def test_started_as_the_service_user(self):
        # What the unit does: User= switches ids before the exec, and
        # StateDirectory= hands the user a directory of mode 0700.
        pw = nobody()
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        lsock = self.tcp_socket()
        d = Activated(self, [lsock], self.store, user=pw)
        c = self.tcp_client(lsock)
        self.assertEqual(c.put(b"unprivileged"), "INSERTED 1")
        self.assertRunsAs(d.pid, pw)
        self.assertStoreOwnedBy(pw, ("data.mdb", "lock.mdb", "lock"))
        for name in ("data.mdb", "lock.mdb", "lock"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.store, name)).st_mode)
            self.assertEqual(mode & 0o077, 0, "%s is readable by others: %o" % (name, mode))
        self.stop(d)
        self.assertRegex(d.log(), r"fd limit \d+")

    def assertRunsAs(self, pid, pw):
        st = proc_status(pid)
        self.assertEqual(st["Uid"], [str(pw.pw_uid)] * 4, "real, effective, saved, fs uid")
        self.assertEqual(st["Gid"], [str(pw.pw_gid)] * 4, "real, effective, saved, fs gid")
        self.assertEqual(st.get("Groups", []), [], "supplementary groups kept")

    def assertStoreOwnedBy(self, pw, names):
        st = os.stat(self.store)
        self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), self.store)
        for name in names:
            st = os.stat(os.path.join(self.store, name))
            self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), name)


if __name__ == "__main__":
    unittest.main()
