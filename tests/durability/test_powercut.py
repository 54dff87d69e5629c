"""Power cuts: what a store can be left as when the power fails, and whether
the server keeps its promise on every such image.

How a power cut is modelled (powercut/shim.c, powercut/imagebuild.py): the
daemon runs with an LD_PRELOAD shim that logs every write, truncate and sync
it makes to the files of its store directory, each write logged before it is
issued and each sync after it returns. The daemon is killed with SIGKILL at a
random moment under load; the kernel then holds every write it was given, of
which only those made durable by a completed fsync/fdatasync of their file
(or written through an O_DSYNC descriptor) are sure to be on a disk that
loses power. The image builder turns the log into the images a power cut
could leave: the durable writes always, and of the others none, a prefix, a
random subset, or a subset with writes torn at 512-byte sectors. The daemon
is then started, without the shim, on each image and checked against what
the clients were told:

  default and -f 0: the store opens, every acknowledged put is there with its
      body and priority unless a delete of it was sent, no acknowledged
      delete is undone, no job is one nobody sent;
  -f MS: the same, except that changes acknowledged in the last MS ms before
      the kill (plus a margin for the commit itself) may be missing;
  -F: only reported.

Two self-checks prove the checker can fail: an image that breaks the model
(the last completed sync taken back) must show a lost acknowledged put, and
an image with one job body altered must show a wrong body.

Environment: PC_SEED (default 20261122), PC_ROUNDS (rounds per mode, default
3), PC_VERBOSE=1 for a line per image.
"""
import os
import atexit
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import bstest

HERE = os.path.dirname(os.path.abspath(__file__))
PCDIR = os.path.join(HERE, "powercut")
sys.path.insert(0, PCDIR)
import imagebuild  # noqa: E402
import workload  # noqa: E402

SEED = int(os.environ.get("PC_SEED", "20261122"))
ROUNDS = int(os.environ.get("PC_ROUNDS", "3"))
VERBOSE = os.environ.get("PC_VERBOSE") == "1"
VARIANTS = ["synced", "all", "prefix", "subset", "torn", "prefix-any", "subset-any", "torn-any"]
INTERVAL_MS = 100
# Allowance on top of MS for -f MS: the commit (an fdatasync, slowed by the
# shim's logging) and scheduling on a busy two-core machine.
MARGIN_MS = 400


def report(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


_shim = {}


def build_shim():
    """Compile powercut/shim.c once per run into a temporary directory."""
    if "path" in _shim:
        return _shim["path"]
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise unittest.SkipTest("no C compiler (cc) to build the power-cut shim")
    d = tempfile.mkdtemp(prefix="pcshim-")
    atexit.register(shutil.rmtree, d, True)
    out = os.path.join(d, "shim.so")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                        os.path.join(PCDIR, "shim.c"), "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise AssertionError("building the shim failed:\n" + r.stdout.decode(errors="replace"))
    _shim["path"] = out
    _shim["dir"] = d
    return out


def shim_env(store, log):
    env = dict(os.environ)
    env.pop("BS_STORE_ARGS", None)
    env["LD_PRELOAD"] = build_shim()
    env["PC_DIR"] = store
    env["PC_LOG"] = log
    # An ASan build wants its runtime first; the shim does not care.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


def plain_env():
    env = dict(os.environ)
    env.pop("BS_STORE_ARGS", None)
    return env


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.005)


class Crash:
    """One run under the shim, ended by a SIGKILL: the store as the kernel
    had it, the shim's log, the clients' record, the kill time."""

    def __init__(self, tmp, store, log, wl, killed_at, stderr):
        self.tmp, self.store, self.log, self.wl = tmp, store, log, wl
        self.killed_at, self.stderr = killed_at, stderr


def crash_run(tmp, mode, seed, kill_after, wl_kwargs=None, stop_after_puts=None, init=None):
    """Start the daemon under the shim on a fresh store (or a copy of init),
    load it, SIGKILL it kill_after seconds into the load (or, with
    stop_after_puts, once that many puts are acknowledged and the load has
    stopped, so the server is idle)."""
    store = os.path.realpath(os.path.join(tmp, "store"))
    if init:
        shutil.copytree(init, store)
    else:
        os.mkdir(store)
    log = os.path.join(tmp, "shim.log")
    srv = bstest.Server("-b", store, *mode, env=shim_env(store, log))
    wl = workload.Workload(srv.port, seed, **(wl_kwargs or {}))
    try:
        wl.start()
        if stop_after_puts:
            wait_for(lambda: len(wl.acked_puts) >= stop_after_puts or wl.live_errors, 30,
                     "%d acknowledged puts" % stop_after_puts)
            wl.join()
        else:
            # The load is under way once something is acknowledged; the kill
            # then comes at a random moment (the point of the test, not a
            # synchronisation).
            wait_for(lambda: wl.acked_puts or wl.live_errors, 10, "the first acknowledgement")
            time.sleep(kill_after)
        killed_at = time.monotonic()
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
        wl.join()
        stderr = srv.stderr_text()
        srv.stop()
    if srv.proc.returncode != -signal.SIGKILL:
        raise AssertionError("the daemon under the shim ended with %s before the power cut:\n%s"
                             % (srv.proc.returncode, stderr))
    return Crash(tmp, store, log, wl, killed_at, stderr)


def check_image(imgdir, mode, wl, may_lose=None):
    """Start the daemon on imgdir and check it. Returns (opened, problems, info)."""
    srv = bstest.Server("-b", imgdir, *mode, wait=False, env=plain_env())
    try:
        try:
            srv.wait_ready()
        except RuntimeError as e:
            return False, ["the store did not open: %s" % str(e).strip()], {}
        try:
            problems, info = workload.check(srv.port, wl, may_lose)
        except (OSError, EOFError) as e:
            rc = srv.proc.poll()
            return True, ["the server failed while being checked (%s; exit %s): %s"
                          % (e, rc, srv.stderr_text().strip())], {}
        except ValueError as e:
            # Replies the checker cannot even parse (a damaged -F store can
            # serve anything): a problem to report, not a crash of the test.
            return True, ["unparseable reply from the server: %s" % e], {}
        if srv.proc.poll() is not None:
            problems.append("the server exited %s while being checked" % srv.proc.returncode)
        return True, problems, info
    finally:
        srv.stop()


def unexplained_differences(store, img, trace, skip=("lock.mdb",)):
    """Where the directory left by the kill and the image of everything the
    shim logged differ, beyond what the call under way at the kill explains
    (a write that SIGKILL cut short in the kernel). Empty when the shim saw
    every write."""
    out = []
    files = {name: f for f, name in trace.names.items()}
    for name in sorted(set(os.listdir(store)) | set(os.listdir(img))):
        if name in skip:
            continue
        pa, pb = os.path.join(store, name), os.path.join(img, name)
        if not (os.path.isfile(pa) and os.path.isfile(pb)):
            out.append("%s: only in one of them" % name)
            continue
        with open(pa, "rb") as fa, open(pb, "rb") as fb:
            a, b = fa.read(), fb.read()
        if a == b:
            continue
        # Ranges the last, unfinished call may have left half done.
        loose = [(op.off, op.off + op.length) for op in trace.ops.get(files.get(name), [])
                 if op.result is None and op.kind == "w"]
        n = max(len(a), len(b))
        bad = []
        for c in range(0, n, 4096):
            if a[c:c + 4096] == b[c:c + 4096]:
                continue
            bad += [i for i in range(c, min(n, c + 4096))
                    if (a[i] if i < len(a) else None) != (b[i] if i < len(b) else None)
                    and not any(lo <= i < hi for lo, hi in loose)]
        if bad:
            out.append("%s: %d bytes differ, first at %d (sizes %d and %d)"
                       % (name, len(bad), bad[0], len(a), len(b)))
    return out


@unittest.skipIf(bstest.REFERENCE, "stock beanstalkd has no LMDB store")
class PowerCutBase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        build_shim()

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="powercut-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def images(self, crash, mode, seed, may_lose=None, variants=VARIANTS):
        """Build and check every variant; returns [(variant, opened, problems, info)]."""
        trace = imagebuild.Trace(crash.log)
        builder = imagebuild.Builder(trace)
        out = []
        for v in variants:
            img = os.path.join(crash.tmp, "img-" + v)
            builder.build(img, v, seed)
            if v == "all":
                # Everything the kernel was given is exactly what the store
                # directory holds after the kill: proof that the shim saw
                # every write (lock.mdb is written through a map).
                diff = unexplained_differences(crash.store, img, trace)
                self.assertEqual(diff, [], "the shim's log misses writes")
            opened, problems, info = check_image(img, mode, crash.wl, may_lose)
            out.append((v, opened, problems, info))
            shutil.rmtree(img, True)
        return out, trace

    def run_mode(self, mode, interval_ms=None):
        rng = random.Random("%d/%s" % (SEED, " ".join(mode)))
        failures = []
        for rnd in range(ROUNDS):
            seed = rng.randrange(1 << 30)
            # -f MS: long enough a run that the loss window is a small part.
            kill_after = rng.uniform(0.8, 1.6) if interval_ms else rng.uniform(0.3, 1.3)
            tmp = self.tmpdir()
            crash = crash_run(tmp, mode, seed, kill_after)
            wl = crash.wl
            self.assertEqual(wl.live_errors, [], "wrong replies while the server ran")
            may_lose = None
            if interval_ms is not None:
                window = (interval_ms + MARGIN_MS) / 1000.0
                may_lose = lambda t, k=crash.killed_at, w=window: t > k - w  # noqa: E731
            results, trace = self.images(crash, mode, seed, may_lose)
            shutil.rmtree(crash.store, True)
            label = "%s round %d (seed %d, kill %.2fs in)" % (" ".join(mode) or "default", rnd,
                                                              seed, kill_after)
            summary = []
            for v, opened, problems, info in results:
                if not opened:
                    summary.append("%s: DID NOT OPEN" % v)
                elif problems:
                    missing = sum("is missing" in p for p in problems)
                    undone = sum("was undone" in p for p in problems)
                    other = len(problems) - missing - undone
                    summary.append("%s: %d acknowledged puts lost, %d deletes undone, %d other "
                                   "problems" % (v, missing, undone, other))
                else:
                    lost = info.get("lost_puts", 0) + info.get("undone_deletes", 0)
                    ages = info.get("lost_ages") or []
                    if ages:
                        summary.append("%s: ok, %d recent changes lost (oldest acked %.0f ms "
                                       "before the kill)" % (v, lost, 1000 * (crash.killed_at
                                                                             - min(ages))))
                    else:
                        summary.append("%s: ok" % v)
                if problems:
                    failures.append("%s, image %s:\n    %s" % (label, v, "\n    ".join(problems[:8])))
                if VERBOSE:
                    report("    %s %s %s" % (label, v, {k: x for k, x in info.items()
                                                        if k != "lost_ages"}))
            report("powercut %s: %d puts and %d deletes acknowledged, %d log records; %s"
                   % (label, len(wl.acked_puts), len(wl.acked_deletes), trace.records,
                      "; ".join(summary)))
        return failures


class PowerCutModel(PowerCutBase):
    """The shim and the builder on a hand-made sequence of calls."""

    def test_model_on_known_calls(self):
        tmp = self.tmpdir()
        store = os.path.realpath(os.path.join(tmp, "store"))
        os.mkdir(store)
        log = os.path.join(tmp, "log")
        prog = r"""
import os, signal, sys
d = sys.argv[1]
fd = os.open(d + "/f", os.O_RDWR | os.O_CREAT, 0o600)
os.pwrite(fd, b"A" * 1024, 0)
os.fsync(fd)                                 # A is durable
os.pwrite(fd, b"B" * 1024, 512)              # volatile, sectors 1 and 2
dfd = os.open(d + "/f", os.O_WRONLY | os.O_DSYNC)
os.pwrite(dfd, b"C" * 100, 2000)             # durable on its own
os.lseek(fd, 100, os.SEEK_SET)
os.writev(fd, [b"D" * 10, b"E" * 10])        # volatile, at 100
os.ftruncate(fd, 3000)                       # volatile
j = os.open(d + "/j", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.write(j, b"x" * 10)
os.write(j, b"y" * 10)
os.ftruncate(j, 0)
os.write(j, b"z" * 5)
os.fdatasync(j)                              # j = zzzzz, durable
os.write(j, b"w" * 5)                        # volatile, at 5
os.write(1, b"ready\n")
os.kill(os.getpid(), signal.SIGKILL)
"""
        env = shim_env(store, log)
        r = subprocess.run([sys.executable, "-c", prog, store], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr.decode())
        self.assertEqual(r.stdout, b"ready\n")
        trace = imagebuild.Trace(log)
        self.assertEqual(sorted(trace.names.values()), ["f", "j"])
        b = imagebuild.Builder(trace)

        def img(variant, seed=0, builder=b):
            out = os.path.join(tmp, "img-%s-%s" % (variant, seed))
            builder.build(out, variant, seed)
            with open(out + "/f", "rb") as f1, open(out + "/j", "rb") as f2:
                return f1.read(), f2.read()

        synced = b"A" * 1024 + bytes(2000 - 1024) + b"C" * 100
        self.assertEqual(img("synced"), (synced, b"zzzzz"))
        with open(store + "/f", "rb") as f1, open(store + "/j", "rb") as f2:
            self.assertEqual(img("all"), (f1.read(), f2.read()))
        # The last durable event (the fdatasync of j) taken back: j loses
        # its synced content; f keeps its own.
        bad = imagebuild.Builder(imagebuild.Trace(log, drop_last_durable=True))
        self.assertEqual(img("violate", builder=bad), (synced, b""))
        for seed in range(40):
            for v in ("prefix", "subset", "torn", "torn-any", "subset-any"):
                f, j = img(v, seed)
                self.assertEqual(f[:100], b"A" * 100, (v, seed))      # durable, never overwritten
                self.assertEqual(f[2000:2100], b"C" * 100, (v, seed))
                self.assertIn(len(f), (2100, 3000), (v, seed))
                # The volatile write of B, torn or not: each sector old or new.
                self.assertIn(f[512:1024], (b"A" * 512, b"B" * 512), (v, seed))
                self.assertIn(f[1024:1536], (bytes(512), b"B" * 512), (v, seed))
                # 20 bytes inside one sector: never half written.
                self.assertIn(f[100:120], (b"A" * 20, b"D" * 10 + b"E" * 10), (v, seed))
                self.assertIn(j, (b"zzzzz", b"zzzzzwwwww"), (v, seed))


class PowerCutSync(PowerCutBase):
    """Default mode and -f 0: nothing acknowledged is ever lost."""

    def test_default_mode(self):
        failures = self.run_mode(())
        self.assertEqual(failures, [], "\n".join(failures))

    def test_fsync_zero(self):
        failures = self.run_mode(("-f", "0"))
        self.assertEqual(failures, [], "\n".join(failures))


class PowerCutInterval(PowerCutBase):
    """-f MS: only the last MS ms (plus the commit) may be lost."""

    def test_interval_mode(self):
        failures = self.run_mode(("-f", str(INTERVAL_MS)), interval_ms=INTERVAL_MS)
        self.assertEqual(failures, [], "\n".join(failures))


class PowerCutJournalRestart(PowerCutBase):
    """-f MS: two power cuts in a row, the second soon after the restart
    that followed the first.

    At start-up the server replays the journal up to its first bad record,
    commits, and empties the journal with an ftruncate that it does not
    sync; it then numbers new records from where the replay stopped. Until
    the journal is next made durable, its file can still hold the previous
    run's records past the bad one, bearing the very sequence numbers the
    new run gives out again. This test builds one such outcome on purpose,
    each step a power cut of the model:

      run 1: puts P0, P1, P2 (journal writes at 0, 512, 1024); power cut 1
             loses P1's write (never reached the disk), keeps P2's; the
             restart replays P0 and stops at P1.
      run 2: puts Q0, Q1 (journal writes at 0 and 1024, numbered like P1
             and P2); power cut 2 keeps Q0's write and only the first sector
             of Q1's (its body record), and loses the unsynced truncates.

    The replay after cut 2 must not take P2's job record (same sequence
    number, same place) as the rest of Q1: Q1 may be lost, not altered.
    Body sizes are worked out from a put in a scratch store so the records
    fall on those offsets; the test checks that they do.
    """

    MODE = ("-f", "60000")          # no timed commit during the test

    def run_puts(self, store, log, puts, init=None):
        if init:
            shutil.copytree(init, store)
        else:
            os.mkdir(store)
        srv = bstest.Server("-b", store, *self.MODE, env=shim_env(store, log))
        out = []
        try:
            c = workload.Conn(srv.port)
            for token, size in puts:
                body = workload.body_for(token, size)
                c.send(b"put %d 0 60 %d\r\n%s\r\n" % (workload.pri_for(token), len(body), body))
                reply = c.line()
                self.assertTrue(reply.startswith(b"INSERTED "), reply)
                out.append((int(reply.split()[1]), token, body, time.monotonic()))
            c.close()
            os.kill(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait()
        finally:
            srv.stop()
        return out

    def journal_writes(self, trace, n):
        (f,) = [f for f, name in trace.names.items() if name == "journal"]
        writes = [op for op in trace.ops[f] if op.kind == "w"]
        layout = [(op.off, op.length) for op in writes]
        self.assertEqual(len(writes), n, "one journal write per put expected: %s" % layout)
        return writes, layout

    def test_stale_journal_records_are_not_replayed(self):
        tmp = os.path.realpath(self.tmpdir())
        # How many bytes a put journals besides its body (h), and how many
        # its first record, the body's, does (hb): from one put in a
        # scratch store.
        cal = self.run_puts(os.path.join(tmp, "cal"), os.path.join(tmp, "logc"), [(b"cal", 100)])
        (wc,), _ = self.journal_writes(imagebuild.Trace(os.path.join(tmp, "logc")), 1)
        h = wc.length - 100
        hb = int.from_bytes(bytes(wc.data[:4]), "big") + 4 - 100
        self.assertTrue(0 < hb < h < 400, (h, hb, cal))
        # Sizes that put P0 and P1 on one sector each, Q0 on two, and the
        # body records of P2 and Q1 on exactly one.
        p01, p2, q0 = 512 - h, 512 - hb, 1024 - h
        run1 = self.run_puts(os.path.join(tmp, "run1"), os.path.join(tmp, "log1"),
                             [(b"p0", p01), (b"p1", p01), (b"p2", p2)])
        trace1 = imagebuild.Trace(os.path.join(tmp, "log1"))
        (w0, w1, w2), layout = self.journal_writes(trace1, 3)
        self.assertEqual(layout, [(0, 512), (512, 512), (1024, p2 + h)],
                         "journal layout differs from the one this scenario is built on")
        img1 = os.path.join(tmp, "img1")
        imagebuild.Builder(trace1).build_chosen(img1, lambda name, op: op is not w1)

        run2 = self.run_puts(os.path.join(tmp, "run2"), os.path.join(tmp, "log2"),
                             [(b"q0", q0), (b"q1", p2)], init=img1)
        trace2 = imagebuild.Trace(os.path.join(tmp, "log2"))
        (v0, v1), layout = self.journal_writes(trace2, 2)
        self.assertEqual(layout, [(0, 1024), (1024, p2 + h)],
                         "journal layout differs from the one this scenario is built on")
        img2 = os.path.join(tmp, "img2")
        imagebuild.Builder(trace2, init_dir=img1).build_chosen(
            img2, lambda name, op: {2} if op is v1 else not (name == "journal" and op.kind == "t"))

        wl = workload.Workload(0, 0)
        for jid, token, body, t in run1 + run2:
            wl.sent[token] = body
            wl.puts_sent += 1
        started2 = run2[0][3] - 5.0
        wl.acked_puts = {run1[0][0]: (run1[0][1], run1[0][3])}      # P0: replayed, synced
        wl.acked_puts.update({jid: (token, t) for jid, token, body, t in run2})
        # Run 2's puts were never synced and may be lost; nothing may change.
        opened, problems, info = check_image(img2, self.MODE, wl, may_lose=lambda t: t > started2)
        report("powercut stale journal: run 1 put ids %s, run 2 put ids %s; after the second "
               "cut: %s" % ([r[0] for r in run1], [r[0] for r in run2],
                            "; ".join(problems) or ("ok, %d jobs" % info.get("found", 0))))
        self.assertTrue(opened, problems)
        self.assertEqual(problems, [], "records of the run before the restart were replayed "
                         "into this run's jobs")


class PowerCutNeverSync(PowerCutBase):
    """-F: a power cut may lose recent jobs and may damage the store; this
    only reports what happened."""

    def test_never_sync_report(self):
        self.run_mode(("-F",))


class PowerCutSelfCheck(PowerCutBase):
    """The checker must see damage that breaks the promise."""

    def idle_crash(self, puts=40):
        tmp = self.tmpdir()
        crash = crash_run(tmp, (), SEED, 0, wl_kwargs={"putters": 1, "reservers": 0},
                          stop_after_puts=puts)
        self.assertEqual(crash.wl.live_errors, [])
        return crash

    def test_taking_back_the_last_sync_is_caught(self):
        crash = self.idle_crash()
        good = os.path.join(crash.tmp, "good")
        imagebuild.Builder(imagebuild.Trace(crash.log)).build(good, "synced", SEED)
        opened, problems, _ = check_image(good, (), crash.wl)
        self.assertTrue(opened)
        self.assertEqual(problems, [], "the control image should be clean")
        bad = os.path.join(crash.tmp, "bad")
        trace = imagebuild.Trace(crash.log, drop_last_durable=True)
        imagebuild.Builder(trace).build(bad, "violate", SEED)
        opened, problems, _ = check_image(bad, (), crash.wl)
        last = max(crash.wl.acked_puts)
        self.assertTrue(any("acknowledged put %d " % last in p for p in problems),
                        "taking back the last sync (%s) should lose put %d; checker said %s"
                        % (trace.dropped_event[:2], last, problems))

    def test_altered_body_is_caught(self):
        crash = self.idle_crash()
        img = os.path.join(crash.tmp, "img")
        imagebuild.Builder(imagebuild.Trace(crash.log)).build(img, "synced", SEED)
        # Alter one job's body wherever it appears in the data file (old
        # copies of its page included): one byte of its filler.
        jid, (token, _t) = sorted(crash.wl.acked_puts.items())[len(crash.wl.acked_puts) // 2]
        body = crash.wl.sent[token]
        path = os.path.join(img, "data.mdb")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        at, n = data.find(body), 0
        while at >= 0:
            data[at + len(body) - 1] ^= 0x20
            n += 1
            at = data.find(body, at + 1)
        self.assertGreater(n, 0, "body of job %d not found in data.mdb" % jid)
        with open(path, "wb") as f:
            f.write(data)
        opened, problems, _ = check_image(img, (), crash.wl)
        self.assertTrue(opened)
        self.assertTrue(any("job %d " % jid in p and "body differs" in p for p in problems),
                        "an altered body of job %d should be caught; checker said %s"
                        % (jid, problems))


if __name__ == "__main__":
    unittest.main()
