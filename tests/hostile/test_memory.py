"""What a connection costs the server in memory, idle and at worst, measured
with CONNS connections as the growth of the server's anonymous resident
memory (RssAnon: heap and buffers, not the mapped binary).

The bounds come from the source:
  idle   an idle connection holds its conn struct, session and two libevent
         events; no input buffer (reads go through one shared 64 KiB
         buffer, src/conn.c) and no output buffer (freed once empty and over
         KEEP_CAP, src/buf.c). IDLE_BOUND is generous.
  worst  a client that sends commands with big replies and never reads:
         its input buffer holds INPUT_MAX (64 KiB) of commands, its output
         buffer OUTPUT_HIGH_WATER (256 KiB) plus the one reply that crossed
         the mark (a peek of a JOB-byte job), in a buffer that grows by
         doubling only up to 128 KiB and by 64 KiB steps past that
         (src/buf.c), so at most one step more than the data.
Everything the kernel buffers for the sockets is outside RSS. The server
listens on a unix socket here, not TCP: over loopback TCP the kernel grows
each server socket's send buffer to tcp_wmem's 4 MiB, and a thousand of
them would push the whole (shared) machine into TCP memory pressure; a unix
socket's buffer stays at wmem_default. The server's own memory, what is
measured, is the same for both (src/conn.c knows no difference).
"""
import os
import socket
import sys
import tempfile
import time
import unittest

import bstest
import hostlib

KB = hostlib.KB
MB = hostlib.MB

CONNS = 1000
JOB = 60000
INPUT_MAX = 64 * KB
OUTPUT_HIGH_WATER = 256 * KB
IDLE_BOUND = 8 * KB
STEP = 64 * KB
WORST_BOUND = INPUT_MAX + OUTPUT_HIGH_WATER + JOB + 64 + STEP + 32 * KB
OFFER = 192 * KB                # peek commands each client tries to send


class MemoryTest(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="bshostile-")
        self.addCleanup(tmp.cleanup)
        self.path = os.path.join(tmp.name, "bs.sock")
        self.server = bstest.Server("-z", str(JOB), addr="unix:" + self.path, wait=False)
        self.addCleanup(self.server.stop)
        ok = bstest.wait_until(self.reachable, 10)
        self.assertTrue(ok, "server not listening on %s: %s" % (self.path, self.server.stderr_text()))

    def reachable(self):
        self.assertIsNone(self.server.proc.poll(), self.server.stderr_text())
        try:
            hostlib.connect_unix(self.path).close()
            return True
        except OSError:
            return False

    def conn(self, rcvbuf=None):
        s = hostlib.connect_unix(self.path, rcvbuf=rcvbuf)
        self.addCleanup(s.close)
        return s

    def stable(self, fn, polls=3, step=0.2, timeout=60):
        """fn()'s value once it has not changed for polls polls in a row
        (the server has finished what it can do), or fail after timeout."""
        deadline = time.monotonic() + timeout
        last, same = fn(), 0
        while same < polls:
            self.assertLess(time.monotonic(), deadline, "server never settled")
            time.sleep(step)
            v = fn()
            same = same + 1 if v == last else 0
            last = v
        return last

    def test_memory_per_connection(self):
        pid = self.server.proc.pid
        side = hostlib.as_client(self.conn())
        jid = side.put_id(b"J" * JOB)
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == "1", 10)
        self.assertTrue(ok)         # the readiness probes are gone
        anon0 = hostlib.rss_anon_kb(pid)

        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(CONNS):
            socks.append(hostlib.connect_unix(self.path))
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == str(CONNS + 1), 30)
        self.assertTrue(ok)
        anon_idle = hostlib.rss_anon_kb(pid)
        idle = (anon_idle - anon0) * KB / CONNS

        # Worst case: every one pipelines peeks of the job and never reads.
        cmds = b"peek %d\r\n" % jid * (OFFER // len(b"peek %d\r\n" % jid))
        sent = [0] * CONNS
        for s in socks:
            s.setblocking(False)

        def send_pass():
            progress = 0
            for i, s in enumerate(socks):
                try:
                    n = s.send(cmds[sent[i]:]) if sent[i] < len(cmds) else 0
                except BlockingIOError:
                    continue
                sent[i] += n
                progress += n
            return progress
        # Until nothing more is taken, even after a round trip elsewhere
        # (which gives the server time to read): it has stopped reading.
        while send_pass() or (side.cmd("list-tube-used") and send_pass()):
            pass
        peeks = self.stable(lambda: side.yaml("stats")["cmd-peek"])
        anon_full = self.stable(lambda: hostlib.rss_anon_kb(pid))
        worst = (anon_full - anon_idle) * KB / CONNS
        # Still serving others meanwhile.
        w = hostlib.Worker(hostlib.as_client(self.conn()))
        for _ in range(50):
            w.cycle()

        for s in socks:
            hostlib.abort(s)
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == "2", 30)
        # (side and the worker)
        self.assertTrue(ok)
        anon_after = hostlib.rss_anon_kb(pid)
        print("\n  RssAnon %d KiB before, %d with %d idle connections, %d with all at worst, %d after they left\n"
              "  per idle connection %.2f KiB (bound %.0f); per connection at worst %.0f KiB "
              "(bound %.0f; input %d + output %d + a reply %d); %s peeks answered, "
              "%.0f KiB of commands sent per connection"
              % (anon0, anon_idle, CONNS, anon_full, anon_after, idle / KB, IDLE_BOUND / KB,
                 worst / KB, WORST_BOUND / KB, INPUT_MAX // KB, OUTPUT_HIGH_WATER // KB, JOB // KB,
                 peeks, sum(sent) / CONNS / KB), file=sys.stderr)
        self.assertLess(idle, IDLE_BOUND)
        self.assertLess(worst, WORST_BOUND)
        # The worst case really was reached: every output buffer past the mark.
        self.assertGreater(worst, OUTPUT_HIGH_WATER)
        self.assertIsNone(self.server.proc.poll())


_saved = None


def setUpModule():
    global _saved
    _saved, soft = hostlib.raise_nofile(CONNS + 256)
    if soft < CONNS + 64:
        raise unittest.SkipTest("open-file limit %d is too low for %d connections" % (soft, CONNS))


def tearDownModule():
    hostlib.restore_nofile(_saved)


if __name__ == "__main__":
    unittest.main()
