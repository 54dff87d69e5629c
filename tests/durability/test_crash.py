"""Crash tests: kill -9 under concurrent load, many times, and check the store.

For each durability mode (default, -f 50, -F; a killed process must lose
nothing in any of them), one store directory lives through many cycles of:
start a daemon, check everything it gives back against what clients were
told, then run producers (put), workers (reserve, then delete, release or
bury) and a janitor (deletes buried jobs) on their own connections, and kill
the daemon with SIGKILL at a random moment while they run.

Clients record an acknowledgement only when its reply arrived; a command
whose reply never came may have happened or not. After each restart:
  - every acknowledged put is there (body, tube, TTR, priority) unless a
    delete of it was acknowledged; no acknowledged delete came back;
  - priorities and buried state follow the last acknowledged release/bury
    (or any unacknowledged one after it); kicked jobs do not come back buried;
  - every job present is accounted for (an acknowledged put, or an
    unacknowledged put with that exact body, at most once), and the server's
    job counts equal the number of jobs found;
  - the next put gets an id above every id a client ever saw.

The run is driven by a seed, printed with any failure; set BS_CRASH_SEED to
replay its choices (the kill moments are then the same, the interleaving of
threads is not). BS_CRASH_CYCLES and BS_CRASH_BUDGET (seconds per mode)
bound the run; under CI the default is fewer cycles.
"""
import itertools
import os
import random
import socket
import threading
import time
import unittest

from crashlib import MODES, StoreDir, batch, job_stats, peek_bodies

SEED = int(os.environ.get("BS_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
CYCLES = int(os.environ.get("BS_CRASH_CYCLES") or (10 if os.environ.get("CI") else 15))
BUDGET = float(os.environ.get("BS_CRASH_BUDGET") or 17.0)
MIN_CYCLES = 4
VERBOSE = os.environ.get("BS_CRASH_VERBOSE") == "1"

TUBES = ("default", "crash-a", "crash-b")
PRODUCERS, WORKERS = 3, 3
PUTS_PER_PRODUCER = 250         # per cycle: the load is bounded
LOAD_MAX = 0.6                  # seconds of load before the kill, at most
PRIS = (0, 1, 512, 1023, 1024, 5000, 65536, 2 ** 31, 2 ** 32 - 1)
REPLY_TIMEOUT = 10.0

_seq = itertools.count(1)       # orders commands on one job; next() is atomic


class LoadError(Exception):
    pass


class Put:
    __slots__ = ("body", "pri", "tube", "ttr", "delay")

    def __init__(self, body, pri, tube, ttr, delay):
        self.body, self.pri, self.tube, self.ttr, self.delay = body, pri, tube, ttr, delay


class Op:
    """A release, bury or delete sent for one job; acked once its reply came."""
    __slots__ = ("seq", "id", "kind", "pri", "delay", "acked")

    def __init__(self, jid, kind, pri=None, delay=0):
        self.seq = next(_seq)
        self.id, self.kind, self.pri, self.delay, self.acked = jid, kind, pri, delay, False


class Log:
    """What one load thread sent and what it was told; merged after the kill."""

    def __init__(self):
        self.acked_puts = {}        # id -> Put
        self.pending_puts = []      # Put, sent, no reply
        self.seen = {}              # id -> body handed out by reserve/peek
        self.ops = []               # Op
        self.error = None


def _run(log, fn):
    try:
        fn()
    except (EOFError, ConnectionError):
        pass                        # the daemon was killed: the normal end
    except socket.timeout:
        log.error = "no reply for %.0f s from a live daemon" % REPLY_TIMEOUT
    except OSError as e:
        log.error = "socket error %r" % e
    except LoadError as e:
        log.error = str(e)
    except Exception as e:          # a bug in the load itself: fail loudly
        log.error = "%s: %s" % (type(e).__name__, e)


def producer(c, log, rng, stop, cycle, n, kill_at=None, trigger=None):
    tube = TUBES[n % len(TUBES)]
    if c.cmd("use " + tube) != "USING " + tube:
        raise LoadError("use failed")
    for k in itertools.count():
        if stop.is_set() or len(log.acked_puts) >= PUTS_PER_PRODUCER:
            return
        burst = []
        for _ in range(rng.choice((1, 1, 2, 4, 8))):
            size = rng.choice((0, 1, 10, 100, 300, 1000, 5000)) if rng.random() < 0.97 else 60000
            tag = b"%d.%d.%d.%d|" % (cycle, n, k, len(burst))
            body = tag + rng.randbytes(min(size, 64)) * (size // 64 + 1)
            body = body[:max(size, len(tag))]
            p = Put(body, rng.choice(PRIS), tube, rng.choice((30, 60, 120)),
                    1 if rng.random() < 0.1 else 0)
            burst.append(p)
        log.pending_puts.extend(burst)
        c.send(b"".join(b"put %d %d %d %d\r\n%s\r\n" % (p.pri, p.delay, p.ttr, len(p.body), p.body)
                        for p in burst))
        for p in burst:
            r = c.line()
            if not r.startswith("INSERTED "):
                raise LoadError("put refused: %r" % r)
            log.acked_puts[int(r.split()[1])] = p
            log.pending_puts.remove(p)
            if trigger and len(log.acked_puts) >= kill_at:
                trigger.set()           # time for the crash, in mid-burst


def worker(c, log, rng, stop):
    for t in TUBES[1:]:
        c.cmd("watch " + t)
    while not stop.is_set():
        c.send("reserve-with-timeout 1\r\n")
        head = c.line()
        if head in ("TIMED_OUT", "DEADLINE_SOON"):
            continue
        parts = head.split()
        if parts[0] != "RESERVED":
            raise LoadError("reserve: %r" % head)
        jid = int(parts[1])
        log.seen[jid] = c.exact(int(parts[2]) + 2)[:-2]
        r = rng.random()
        if r < 0.62:
            op, line, want = Op(jid, "delete"), "delete %d" % jid, "DELETED"
        elif r < 0.80:
            op = Op(jid, "release", rng.choice(PRIS), 1 if rng.random() < 0.15 else 0)
            line, want = "release %d %d %d" % (jid, op.pri, op.delay), "RELEASED"
        elif r < 0.95:
            op = Op(jid, "bury", rng.choice(PRIS))
            line, want = "bury %d %d" % (jid, op.pri), "BURIED"
        else:
            continue                # keep it reserved: it must come back ready
        log.ops.append(op)
        got = c.cmd(line)
        if got != want:
            raise LoadError("%s: %r" % (line, got))
        op.acked = True


def janitor(c, log, rng, stop):
    """Deletes buried jobs, found with peek-buried, from its own connection."""
    while not stop.is_set():
        for t in TUBES:
            if c.cmd("use " + t) != "USING " + t:
                raise LoadError("use %s failed" % t)
            c.send("peek-buried\r\n")
            head = c.line()
            if head == "NOT_FOUND":
                continue
            parts = head.split()
            if parts[0] != "FOUND":
                raise LoadError("peek-buried: %r" % head)
            jid = int(parts[1])
            log.seen[jid] = c.exact(int(parts[2]) + 2)[:-2]
            op = Op(jid, "delete")
            log.ops.append(op)
            got = c.cmd("delete %d" % jid)
            if got != "DELETED":
                raise LoadError("delete %d (buried): %r" % (jid, got))
            op.acked = True
        # Pacing for the load generator only: nothing waits on this.
        time.sleep(rng.uniform(0.005, 0.03))


class Job:
    __slots__ = ("body", "pri", "tube", "ttr")

    def __init__(self, body, pri, tube, ttr):
        self.body, self.pri, self.tube, self.ttr = body, pri, tube, ttr


class Model:
    """What the clients know, carried from one restart to the next."""

    def __init__(self):
        self.jobs = {}              # id -> Job, present and not buried at load start
        self.deleted = set()        # acknowledged deletes, ever
        self.max_seen = 0           # highest id any client was given
        self.scan_from = 1          # ids below were all accounted for
        self.acked_puts = self.acked_dels = self.adopted = 0
        self.unacked_puts = self.unacked_ops = self.recovery_kills = 0


class CrashTest(unittest.TestCase):

    def run_mode(self, mode):
        rng = random.Random("%d/%s" % (SEED, mode))
        store = StoreDir(self, MODES[mode], prefix="bscrash-")
        model = Model()
        t0 = time.monotonic()
        cycles = 0
        info = {"cycle": 0}
        try:
            store.start()
            while cycles < CYCLES and (cycles < MIN_CYCLES or time.monotonic() - t0 < BUDGET):
                info["cycle"] = cycles
                self.check_and_kick(store, model, [])
                logs = self.load_and_kill(store, rng, cycles)
                if rng.random() < 0.25:
                    # Killed again while it opens the store (replaying the
                    # journal, in -f mode): recovery must be restartable.
                    store.start(wait=False)
                    time.sleep(rng.uniform(0, 0.02))    # the random moment
                    store.kill()
                    model.recovery_kills += 1
                store.start()
                self.check_and_kick(store, model, logs)
                cycles += 1
                if cycles < CYCLES:
                    store.kill()
                    store.start()
            # A clean stop at the end keeps everything too.
            info["cycle"] = "final"
            rc = store.term()
            self.assertEqual(rc, 0, "clean shutdown exited %r" % rc)
            store.start()
            self.check_and_kick(store, model, [], full=True)
            rc = store.term()
            self.assertEqual(rc, 0, "clean shutdown exited %r" % rc)
        except Exception as e:
            # Also a daemon that will not start on the store after a crash
            # (RuntimeError from bstest) or one that drops the connection.
            running = store.server is not None
            info["log"] = store.server.stderr_text() if running else store.last_log()
            what = "" if isinstance(e, AssertionError) else type(e).__name__ + ": "
            raise AssertionError("mode %s, cycle %s, seed %d (rerun with BS_CRASH_SEED=%d): %s%s\n"
                                 "log of the last daemon:\n%s"
                                 % (mode, info["cycle"], SEED, SEED, what, e,
                                    info.get("log", "")[-2000:])) from e
        if VERBOSE:
            print("\n%s: %d cycles in %.1f s, seed %d: %d puts and %d deletes acknowledged; "
                  "%d puts and %d other commands unanswered at a kill (%d of those puts "
                  "found after the restart); %d kills during recovery"
                  % (mode, cycles, time.monotonic() - t0, SEED, model.acked_puts, model.acked_dels,
                     model.unacked_puts, model.unacked_ops, model.adopted, model.recovery_kills))
        # The load really ran: the test could have failed.
        self.assertGreaterEqual(cycles, MIN_CYCLES)
        self.assertGreater(model.acked_puts, 100, "seed %d: too little load" % SEED)
        self.assertGreater(model.acked_dels, 20, "seed %d: too few deletes" % SEED)

    def load_and_kill(self, store, rng, cycle):
        """Start the load, kill -9 the daemon at a random moment, collect logs."""
        stop, trigger = threading.Event(), threading.Event()
        # Half the kills come when the first producer has its kill_at-th put
        # acknowledged (while the others are mid-put); half at a random time
        # (often after the producers are done, with workers busy).
        kill_at = rng.randint(1, PUTS_PER_PRODUCER - 1) if rng.random() < 0.5 else None
        threads, logs, clients = [], [], []
        roles = ([("producer", i) for i in range(PRODUCERS)] +
                 [("worker", i) for i in range(WORKERS)] + [("janitor", 0)])
        for role, i in roles:
            c = store.client(timeout=REPLY_TIMEOUT)
            clients.append(c)
            log = Log()
            logs.append(log)
            trng = random.Random(rng.getrandbits(64))
            if role == "producer":
                arm = (kill_at, trigger) if i == 0 and kill_at else ()
                fn = (lambda c=c, log=log, r=trng, i=i, arm=arm: producer(c, log, r, stop, cycle, i, *arm))
            elif role == "worker":
                fn = (lambda c=c, log=log, r=trng: worker(c, log, r, stop))
            else:
                fn = (lambda c=c, log=log, r=trng: janitor(c, log, r, stop))
            threads.append(threading.Thread(target=_run, args=(log, fn), daemon=True))
        # Mostly in the thick of it; sometimes at once, before much happens.
        after = rng.uniform(0, 0.03) if rng.random() < 0.15 else rng.uniform(0.03, LOAD_MAX)
        for t in threads:
            t.start()
        if kill_at:
            trigger.wait(REPLY_TIMEOUT)
        else:
            time.sleep(after)       # the random moment of the crash
        store.kill()
        stop.set()
        for t in threads:
            t.join(REPLY_TIMEOUT + 5)
        for c in clients:
            c.close()
        hung = [r for (r, _), t in zip(roles, threads) if t.is_alive()]
        self.assertFalse(hung, "load threads still running after the kill: %s" % hung)
        errors = [e.error for e in logs if e.error]
        self.assertFalse(errors, "load errors while the daemon ran: %s" % errors)
        return logs

    def check_and_kick(self, store, model, logs, full=False):
        """Check the restarted daemon against the model, then kick every
        buried job (acknowledged: they must not come back buried)."""
        c = store.client(timeout=30)
        try:
            self._check(c, model, logs, full)
        finally:
            c.close()

    def _check(self, c, model, logs, full):
        acked_puts, pending, seen, ops = {}, {}, {}, {}
        for log in logs:
            acked_puts.update(log.acked_puts)
            for p in log.pending_puts:
                pending[p.body] = p
            for jid, body in log.seen.items():
                seen.setdefault(jid, body)
                self.assertEqual(seen[jid], body, "job %d handed out with two bodies" % jid)
            for op in log.ops:
                ops.setdefault(op.id, []).append(op)
        model.acked_puts += len(acked_puts)
        model.unacked_puts += len(pending)
        model.unacked_ops += sum(not o.acked for l in ops.values() for o in l)
        for jid, body in seen.items():
            if jid in acked_puts:
                self.assertEqual(body, acked_puts[jid].body, "job %d: reserve gave another body "
                                 "than its put" % jid)
        everyone = set(model.jobs) | set(acked_puts) | set(seen) | set(ops)
        top_known = max(everyone | {model.max_seen})

        # The id of the next put must be above every id any client was given
        # (checked below, after the jobs: a lost job says more than a
        # reused id); every id below it is looked at.
        probe = c.put_id(b"probe", pri=0)
        self.assertEqual(c.cmd("delete %d" % probe), "DELETED")
        model.deleted.add(probe)

        scan = set(range(1 if full else model.scan_from, probe)) | everyone
        ids = sorted(scan)
        bodies = peek_bodies(c, ids)
        stats = job_stats(c, [i for i in ids if bodies[i] is not None])
        present = {i for i in ids if bodies[i] is not None}

        deleted_before = set(model.deleted)
        new_jobs, buried = {}, []
        used_pending = set()
        for jid in ids:
            body = bodies[jid]
            if body is not None and jid in deleted_before:
                self.fail("job %d: its delete was acknowledged in an earlier cycle, and it is back" % jid)
            # What the job must be, from the state at load start plus this
            # cycle's acknowledged (and unacknowledged) commands.
            if jid in model.jobs:
                base, allowed = model.jobs[jid], {"live"}
            elif jid in acked_puts:
                p = acked_puts[jid]
                base, allowed = Job(p.body, p.pri, p.tube, p.ttr), {"live"}
            elif body is not None or jid in seen:
                # Not acknowledged to its producer: an unacknowledged put
                # with exactly this body, or nothing.
                b = body if body is not None else seen[jid]
                p = pending.get(b)
                self.assertIsNotNone(p, "job %d (body %r...) matches no put any client sent"
                                     % (jid, b[:40]))
                self.assertNotIn(b, used_pending, "two jobs from one unacknowledged put (job %d)" % jid)
                used_pending.add(b)
                base, allowed = Job(p.body, p.pri, p.tube, p.ttr), {"live", "absent"}
                if body is not None:
                    model.adopted += 1
            else:
                continue                # an id burnt by a put that never happened
            pris = {base.pri}
            for op in sorted(ops.get(jid, ()), key=lambda o: o.seq):
                if op.kind == "delete":
                    allowed = {"absent"} if op.acked else allowed | {"absent"}
                    if op.acked:
                        model.deleted.add(jid)
                        model.acked_dels += 1
                    continue
                if op.acked:
                    pris = {op.pri}
                    allowed = {"buried"} if op.kind == "bury" else {"live"}
                else:
                    pris.add(op.pri)
                    allowed = {"live", "buried"} if op.kind == "bury" else {"live"}
            if body is None:
                self.assertIn("absent", allowed,
                              "job %d lost: acknowledged put%s, no acknowledged delete"
                              % (jid, "" if jid in acked_puts else " (earlier cycle)"))
                continue
            st = stats[jid]
            self.assertIsNotNone(st, "job %d: peek found it, stats-job did not" % jid)
            self.assertEqual(body, base.body, "job %d: body differs" % jid)
            self.assertEqual(st["tube"], base.tube, "job %d: tube" % jid)
            self.assertEqual(int(st["ttr"]), base.ttr, "job %d: ttr" % jid)
            self.assertIn(int(st["pri"]), pris, "job %d: priority %s, acknowledged/possible %s"
                          % (jid, st["pri"], sorted(pris)))
            state = st["state"]
            self.assertNotEqual(state, "reserved", "job %d reserved right after a restart" % jid)
            kind = "buried" if state == "buried" else "live"
            self.assertIn(kind, allowed, "job %d is %s; by the acknowledged commands it must be %s"
                          % (jid, state, " or ".join(sorted(allowed))))
            new_jobs[jid] = Job(body, int(st["pri"]), base.tube, base.ttr)
            if kind == "buried":
                buried.append(jid)

        # Nothing else is there: the server's own count equals what we found.
        s = c.yaml("stats")
        total = sum(int(s["current-jobs-" + k]) for k in ("ready", "delayed", "buried", "reserved"))
        if total != len(new_jobs):
            extra = [i for i in range(1, probe) if i not in new_jobs
                     and c.cmd("peek %d" % i).startswith("FOUND")]
            self.fail("server holds %d jobs, %d accounted for; unaccounted ids %s (acknowledged "
                      "deletes among them: %s)" % (total, len(new_jobs), extra[:20],
                                                   sorted(set(extra) & model.deleted)[:20]))
        self.assertEqual(int(s["current-jobs-reserved"]), 0)
        self.assertEqual(int(s["current-jobs-buried"]), len(buried))

        self.assertGreater(probe, top_known, "id %d reused: ids up to %d were given before the "
                           "crash" % (probe, top_known))

        # Kick every buried job; the kicks are acknowledged, so from now on
        # these jobs must never come back buried.
        # (kick-job, not kick: kick takes delayed jobs when none is buried.)
        kicks = batch(c, ["kick-job %d" % j for j in buried])
        self.assertEqual([h for h, _ in kicks], ["KICKED"] * len(buried))
        self.assertEqual(c.yaml("stats")["current-jobs-buried"], "0")
        model.jobs = new_jobs
        model.max_seen = max(top_known, probe)
        model.scan_from = probe + 1

    def test_crash_default(self):
        self.run_mode("default")

    def test_crash_interval(self):
        self.run_mode("f50")

    def test_crash_never_sync(self):
        self.run_mode("F")


if __name__ == "__main__":
    unittest.main()
