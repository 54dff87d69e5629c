"""A thousand hostile connections at once (garbage, endless lines, half
bodies, oversized bodies; see attacker.py) against one well-behaved worker.

The worker's throughput under attack must be at least RATIO of its
throughput alone, both measured in this test as the best of short windows.
Every reply the worker gets is checked, and so is every reply each hostile
connection gets: the protocol's error, in order, on a connection that stays
open and in step (our server closes none of them, nor does stock beanstalkd
for these inputs).
"""
import multiprocessing
import os
import sys
import unittest

import attacker
import bstest
import hostlib

KB = hostlib.KB
MB = hostlib.MB

RATIO = 0.8
PER_KIND = 250                  # x 4 kinds = 1,000 connections
JOB_MAX = 65535                 # -z
LINE_LEN = 2 * MB + 5           # each endless line
HALF_SIZE = 60000               # a half body's declared size (< -z)
BIG_SIZE = 512 * KB             # an oversized body's declared size (> -z)
OPENING = 384 * KB              # sent on each endless and oversized one at once
# Bytes/s streamed over the endless and oversized ones meanwhile.
RATE = int(float(os.environ.get("HOSTILE_RATE_MB", "32")) * MB)
LINES = 5000                    # junk lines/s over the garbage connections
WINDOW = 0.25                   # seconds per throughput window
ALONE_WINDOWS = 8
MIN_WINDOWS, MAX_WINDOWS = 8, 32        # under attack
ROUNDS = 3


class AttackTest(bstest.ServerTest):
    server_args = ("-z", str(JOB_MAX))

    def start_attack(self):
        ctx = multiprocessing.get_context("fork")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=attacker.main,
                           args=(theirs, self.server.port, PER_KIND, LINE_LEN,
                                 HALF_SIZE, BIG_SIZE, OPENING, RATE, LINES))
        proc.start()
        theirs.close()

        def stop():
            if proc.is_alive():
                proc.kill()
            proc.join(10)
        self.addCleanup(stop)
        return proc, ours

    def receive(self, pipe, want, timeout):
        self.assertTrue(pipe.poll(timeout), "attacker silent for %d s (waiting for %s)" % (timeout, want))
        what, payload = pipe.recv()
        if what == "error":
            self.fail("attacker failed:\n" + payload)
        self.assertEqual(what, want)
        return payload

    def test_thousand_hostile_connections_do_not_slow_a_worker(self):
        side = self.side()
        w = hostlib.Worker(self.c)
        for _ in range(200):                    # warm up both ends
            w.cycle()
        # The machine is shared: a busy spell of other work that spans a
        # whole measurement could fail a round, so there are up to ROUNDS
        # (alone, then under a fresh attack); one within the bound passes.
        # Every round's replies must be right.
        results = []
        for _ in range(ROUNDS):
            alone, attacked = self.round(side, w)
            results.append("%.0f alone, %.0f under attack (%.2fx)" % (alone, attacked, attacked / alone))
            if attacked >= RATIO * alone:
                break
        print("  rounds: " + "; ".join(results), file=sys.stderr)
        self.assertGreaterEqual(attacked, RATIO * alone,
                                "worker cycles/s in each round: " + "; ".join(results))

    def round(self, side, w):
        """Alone, then under attack; returns the two best rates."""
        alone = w.best_rate(ALONE_WINDOWS, WINDOW)
        proc, pipe = self.start_attack()
        n = self.receive(pipe, "ready", 60)
        self.assertEqual(n, 4 * PER_KIND)
        # Every hostile connection accepted, every put line among them parsed
        # (the worker's puts counted too; more oversized ones may follow).
        puts = int(side.yaml("stats")["cmd-put"])
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == str(n + 2)
                               and int(side.yaml("stats")["cmd-put"]) >= puts + 2 * PER_KIND, 30)
        s = side.yaml("stats")
        self.assertTrue(ok, "server did not take in the attack: %s connections, cmd-put %s"
                        % (s["current-connections"], s["cmd-put"]))
        rss_under = hostlib.rss_kb(self.server.proc.pid)

        # Best of several windows (noise only ever slows us down), more of
        # them while the best is short of the bound, up to MAX_WINDOWS.
        rates = [w.rate(WINDOW) for _ in range(MIN_WINDOWS)]
        while max(rates) < RATIO * alone and len(rates) < MAX_WINDOWS:
            rates.append(w.rate(WINDOW))
        attacked = max(rates)
        pipe.send("finish")
        report = self.receive(pipe, "done", 120)
        proc.join(30)

        for _ in range(50):
            w.cycle()                           # still right after the attack
        self.assertEqual(side.yaml("stats-tube default")["total-jobs"], "0",
                         "a hostile put created a job")
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == "2", 30)
        self.assertTrue(ok, "hostile connections not closed: %s" % side.yaml("stats")["current-connections"])
        print("\n  worker alone %.0f cycles/s, under attack %.0f cycles/s (%.2fx, best of %d windows)\n"
              "  attack: %.0f MiB in %.1f s while measured (%.0f MiB in all), attacker CPU %.1f s; "
              "server RSS %d KiB under attack"
              % (alone, attacked, attacked / alone, len(rates), report["streamed"] / MB,
                 report["seconds"], report["sent"] / MB, report["cpu"], rss_under), file=sys.stderr)
        print("  hostile replies: %s" % report["replies"], file=sys.stderr)

        self.assertEqual(report["problem_count"], 0,
                         "hostile connections got wrong replies:\n  " + "\n  ".join(report["problems"]))
        self.assertEqual(report["closed"], 0)
        r = report["replies"]
        for kind, error, least in (("endless", "BAD_FORMAT", PER_KIND),
                                   ("half", "EXPECTED_CRLF", PER_KIND),
                                   ("oversize", "JOB_TOO_BIG", PER_KIND),
                                   ("garbage", "UNKNOWN_COMMAND", 1),
                                   ("garbage", "BAD_FORMAT", 1)):
            self.assertGreaterEqual(r[kind].get(error, 0), least, "%s: %s" % (kind, r[kind]))
        for kind in attacker.KINDS:
            self.assertEqual(r[kind].get("USING default"), PER_KIND, "%s: %s" % (kind, r[kind]))
        self.assertIsNone(self.server.proc.poll())
        return alone, attacked


_saved = None


def setUpModule():
    global _saved
    _saved, soft = hostlib.raise_nofile(4 * PER_KIND + 256)
    if soft < 4 * PER_KIND + 64:
        raise unittest.SkipTest("open-file limit %d is too low for %d connections" % (soft, 4 * PER_KIND))


def tearDownModule():
    hostlib.restore_nofile(_saved)


if __name__ == "__main__":
    unittest.main()
