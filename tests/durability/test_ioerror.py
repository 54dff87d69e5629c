"""I/O errors in the store: a failed commit, sync or journal write is never
ignored. Nothing of the failing turn is acknowledged, the server says what
failed and exits non-zero, and it serves nothing after the error; a restart
without the fault finds every put acknowledged before the exit.

Faults are injected with libfiu (Debian packages fiu-utils and libfiu0, the
latter pulled in by the former; libfiu-dev is not needed): the daemon runs
with libfiu's POSIX preload library, and `fiu-ctrl` switches a failure point
on in the running process once the load is under way, so every call of that
function from then on fails with the given errno (failinfo), or, for the
".../reduce" points, writes fewer bytes than asked. libfiu cannot tell
descriptors apart: a failing write() also fails the replies to clients,
which only closes those connections; pwrite, writev and fdatasync are called
only by the store. Without libfiu the tests are skipped.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import bstest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "powercut"))
import workload  # noqa: E402

FIU_LIB = os.environ.get("FIU_LIB", "/usr/lib/fiu")
FIU_RUN = os.path.join(FIU_LIB, "fiu_run_preload.so")
FIU_POSIX = os.path.join(FIU_LIB, "fiu_posix_preload.so")
FIU_CTRL = shutil.which("fiu-ctrl")
HAVE_FIU = os.path.exists(FIU_RUN) and os.path.exists(FIU_POSIX) and FIU_CTRL is not None

EIO, ENOSPC = 5, 28
EIO_TEXT, ENOSPC_TEXT = os.strerror(EIO), os.strerror(ENOSPC)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.005)


@unittest.skipIf(bstest.REFERENCE, "stock beanstalkd has no LMDB store")
@unittest.skipUnless(HAVE_FIU, "libfiu not installed (apt-get install fiu-utils): "
                     "I/O-error tests skipped")
class IOErrorTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ioerror-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "store")
        self.ctl = os.path.join(self.tmp, "fiu")

    def fiu_env(self):
        env = dict(os.environ)
        env.pop("BS_STORE_ARGS", None)
        env["LD_PRELOAD"] = FIU_RUN + " " + FIU_POSIX
        env["FIU_CTRL_FIFO"] = self.ctl
        env["FIU_ENABLE"] = ""
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        return env

    def fiu(self, pid, command):
        r = subprocess.run([FIU_CTRL, "-f", self.ctl, "-c", command, str(pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = r.stdout.decode(errors="replace")
        self.assertEqual((r.returncode, "error" in out.lower()), (0, False),
                         "fiu-ctrl %r: %s" % (command, out))

    def start_loaded(self, mode, **wl_kwargs):
        srv = bstest.Server("-b", self.store, *mode, env=self.fiu_env())
        self.addCleanup(self.stop, srv)
        wait_for(lambda: os.path.exists("%s-%d.in" % (self.ctl, srv.proc.pid)), 10,
                 "libfiu's control FIFO")
        wl = workload.Workload(srv.port, 1, **wl_kwargs)
        self.addCleanup(wl.join)
        wl.start()
        wait_for(lambda: len(wl.acked_puts) >= 40 and wl.acked_deletes or wl.live_errors, 20,
                 "the load to get under way")
        self.assertEqual(wl.live_errors, [])
        return srv, wl

    def stop(self, srv):
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
        srv.stop()

    def restart_and_check(self, mode, wl):
        """Without the fault, every acknowledged put is there (unless a
        delete of it was sent) and no acknowledged delete is undone."""
        env = dict(os.environ)
        env.pop("BS_STORE_ARGS", None)
        srv = bstest.Server("-b", self.store, *mode, wait=False, env=env)
        try:
            try:
                srv.wait_ready()
            except RuntimeError as e:
                self.fail("the store did not open after the I/O error: %s" % e)
            problems, info = workload.check(srv.port, wl)
        finally:
            srv.stop()
        self.assertEqual(problems, [], "after a restart without the fault")
        return info

    def fail_and_exit(self, mode, point, errno=None, message=None, strict=True):
        """Load the server, switch point on, and expect it to stop with
        message in its log; strict: no put sent after the switch (so handled
        after it) may have been acknowledged."""
        srv, wl = self.start_loaded(mode)
        cmd = "enable name=%s" % point + (",failinfo=%d" % errno if errno else "")
        self.fiu(srv.proc.pid, cmd)
        enabled_at = time.monotonic()
        # libfiu fails the point for every descriptor, client sockets too:
        # the load's connections can die on failed replies before the server
        # has another change to write. Keep a change coming from a fresh
        # connection (its reply is never read, so it counts as nothing
        # acknowledged) until the server stops.
        # The ".../reduce" points sometimes shorten a write by nothing, so
        # such a put can be committed: it is recorded as sent (never as
        # acknowledged) so the restart check knows its body.
        rc = None
        nudges = 0
        while rc is None and time.monotonic() - enabled_at < 15:
            nudges += 1
            token = b"nudge-%d" % nudges
            body = workload.body_for(token, 40)
            with wl.lock:
                wl.sent[token] = body
                wl.sent_after[token] = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=1) as s:
                    s.sendall(b"put %d 0 60 %d\r\n%s\r\n"
                              % (workload.pri_for(token), len(body), body))
            except OSError:
                pass
            try:
                rc = srv.proc.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
        if rc is None:
            self.fail("the server kept running for 15 s with %s failing" % point)
        wl.join()
        log = srv.stderr_text()
        self.assertGreater(rc, 0, "the server should exit non-zero (not by a signal) when %s "
                           "fails; exit %s, log:\n%s" % (point, rc, log))
        self.assertIn("stopping without acknowledging", log)
        if message:
            self.assertIn(message, log)
        after = sorted(jid for jid, (token, t) in wl.acked_puts.items()
                       if wl.sent_after[token] > enabled_at)
        if strict:
            self.assertEqual(after, [], "puts sent after %s began failing were acknowledged"
                             % point)
        info = self.restart_and_check(mode, wl)
        sys.stderr.write("ioerror %s %s: exit %d after %.2f s, %d puts acknowledged (%d sent "
                         "after the fault), %d on restart\n"
                         % (" ".join(mode) or "default", cmd, rc, time.monotonic() - enabled_at,
                            len(wl.acked_puts), len(after), info["found"]))
        return log

    # ---- the commit's data pages (writev, or pwrite for one page) ----

    def test_writev_eio(self):
        self.fail_and_exit((), "posix/io/rw/writev", EIO, "store commit failed: " + EIO_TEXT,
                           strict=False)

    def test_writev_enospc(self):
        self.fail_and_exit((), "posix/io/rw/writev", ENOSPC,
                           "store commit failed: " + ENOSPC_TEXT, strict=False)

    def test_writev_short(self):
        self.fail_and_exit((), "posix/io/rw/writev/reduce", None, "store commit failed",
                           strict=False)

    # ---- pwrite: the meta page (every commit) and single data pages ----

    def test_pwrite_eio(self):
        self.fail_and_exit((), "posix/io/rw/pwrite", EIO, "store commit failed: " + EIO_TEXT)

    def test_pwrite_enospc(self):
        self.fail_and_exit(("-f", "0"), "posix/io/rw/pwrite", ENOSPC,
                           "store commit failed: " + ENOSPC_TEXT)

    def test_pwrite_short(self):
        # The reduce point shortens a write by a random amount, sometimes by
        # nothing, so a commit may still succeed after the switch.
        self.fail_and_exit((), "posix/io/rw/pwrite/reduce", None, "store commit failed",
                           strict=False)

    def test_pwrite_eio_never_sync(self):
        # -F skips the syncs, not the error checks.
        self.fail_and_exit(("-F",), "posix/io/rw/pwrite", EIO, "store commit failed: " + EIO_TEXT)

    # ---- the sync ----

    def test_fdatasync_eio(self):
        self.fail_and_exit((), "posix/io/sync/fdatasync", EIO, "store commit failed: " + EIO_TEXT)

    def test_fdatasync_eio_interval(self):
        # -f MS: the timed commit's sync fails; the turns since the last
        # commit were acknowledged from the journal and must survive.
        self.fail_and_exit(("-f", "50"), "posix/io/sync/fdatasync", EIO,
                           "store commit failed: " + EIO_TEXT, strict=False)

    # ---- the -f MS journal ----

    def test_journal_write_eio(self):
        # write() also carries the replies, so a reply may fail first and
        # only close its connection; the next turn with a change fails in
        # the journal.
        self.fail_and_exit(("-f", "100"), "posix/io/rw/write", EIO,
                           "journal write failed: " + EIO_TEXT)

    def test_journal_write_enospc(self):
        self.fail_and_exit(("-f", "100"), "posix/io/rw/write", ENOSPC,
                           "journal write failed: " + ENOSPC_TEXT)

    def test_journal_truncate_eio(self):
        self.fail_and_exit(("-f", "50"), "posix/io/rw/ftruncate", EIO,
                           "cannot empty the journal: " + EIO_TEXT, strict=False)

    def test_journal_short_writes_are_completed(self):
        """A short write is not an error: the rest is written. With every
        write shortened for a while, the server must go on, and after a
        crash (SIGKILL, no power cut) the journal must give back every
        acknowledged change."""
        mode = ("-f", "60000")
        srv, wl = self.start_loaded(mode)
        before = len(wl.acked_puts)
        self.fiu(srv.proc.pid, "enable name=posix/io/rw/write/reduce")
        wait_for(lambda: len(wl.acked_puts) >= before + 200 or wl.live_errors
                 or srv.proc.poll() is not None, 30, "puts under short writes")
        self.fiu(srv.proc.pid, "disable name=posix/io/rw/write/reduce")
        self.assertIsNone(srv.proc.poll(), "the server stopped on short writes:\n"
                          + srv.stderr_text())
        self.assertEqual(wl.live_errors, [])
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        wl.join()
        info = self.restart_and_check(mode, wl)
        sys.stderr.write("ioerror -f 60000 short journal writes: %d puts acknowledged, %d found "
                         "after a crash\n" % (len(wl.acked_puts), info["found"]))


if __name__ == "__main__":
    unittest.main()
