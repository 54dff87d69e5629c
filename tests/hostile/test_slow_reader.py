"""Clients that pipeline many commands and never read a reply.

The bound (src/proto.h, src/conn.c): a connection's replies are queued in
its output buffer; once more than OUTPUT_HIGH_WATER (256 KiB) is unsent the
server processes no more of its commands and reads at most INPUT_MAX
(64 KiB) more of its input, then stops reading its socket altogether.
Past the bound the client's own sends fill the kernel's buffers and block;
nothing is dropped and nothing grows. When it reads its replies and the
output drains below the mark, the server reads and answers the rest, in
order. So such a client costs at most about INPUT_MAX + OUTPUT_HIGH_WATER
+ one reply (a peek of the biggest job) of server memory, plus whatever the
kernel buffers, and other clients are served as before.
"""
import select
import socket
import sys
import time
import unittest

import bstest
import hostlib

KB = hostlib.KB
MB = hostlib.MB

JOB = 200 * KB                  # the big job the peek hogs ask for, again and again
PEEK_HOGS = 4
PEEKS = 300                     # per peek hog: 60 MB of replies each
STATS_HOGS = 4
OFFER = 64 * MB                 # "stats\r\n" a stats hog tries to send
INPUT_MAX = 64 * KB
OUTPUT_HIGH_WATER = 256 * KB
RATIO = 0.8
WINDOW = 0.25                   # seconds per throughput window
MIN_WINDOWS, MAX_WINDOWS = 8, 32
ROUNDS = 3
PIPELINED = 300                 # test_drained_client_gets_the_rest: 60 MB of replies
NUDGE_AFTER = 0.05              # s without a reply before a peek hog nudges
STALL = 3                       # seconds without a reply that count as a hang


def send_until_stalled(sock, data, quiet=1.0, limit=60.0):
    """Send as much of data as the peer takes; return the bytes sent once
    the socket has stayed unwritable for quiet seconds (or all is sent)."""
    sock.setblocking(False)
    view = memoryview(data)
    sent = 0
    p = select.poll()
    p.register(sock, select.POLLOUT)
    end = time.monotonic() + limit
    while sent < len(data) and time.monotonic() < end:
        if not p.poll(int(quiet * 1000)):
            break                               # the peer stopped reading
        try:
            sent += sock.send(view[sent:sent + 1 * MB])
        except BlockingIOError:
            pass
    return sent


class SlowReaderTest(bstest.ServerTest):
    server_args = ("-z", str(JOB))

    def hog(self):
        """A client whose kernel receive buffer is small (so the kernel
        holds little of what it does not read, and the server must)."""
        s = hostlib.connect(self.server.port, rcvbuf=16 * KB)
        self.addCleanup(s.close)
        return s

    def test_clients_that_never_read(self):
        pid = self.server.proc.pid
        side = self.side()
        jid = side.put_id(b"P" * JOB)
        w = hostlib.Worker(self.c)
        for _ in range(200):
            w.cycle()
        # The machine is shared: a busy spell of other work that spans a
        # whole measurement could fail a round, so there are up to ROUNDS,
        # each alone and then with fresh hogs; one within the bound passes.
        results = []
        for attempt in range(ROUNDS):
            alone = w.best_rate(MIN_WINDOWS, WINDOW)
            anon0 = hostlib.rss_anon_kb(pid)
            st = side.yaml("stats")
            peeks0, stats0 = int(st["cmd-peek"]), int(st["cmd-stats"])

            peek_hogs = [self.hog() for _ in range(PEEK_HOGS)]
            for h in peek_hogs:
                h.sendall(b"peek %d\r\n" % jid * PEEKS)
            stats_hogs = [self.hog() for _ in range(STATS_HOGS)]
            offered = b"stats\r\n" * (OFFER // 7)
            sent = [send_until_stalled(h, offered) for h in stats_hogs]
            # The server stopped reading each of them long before the end.
            for n in sent:
                self.assertLess(n, len(offered) // 4,
                                "the server kept reading a client that never reads (%d bytes taken)" % n)
            # The peek hogs' first replies are queued.
            ok = bstest.wait_until(lambda: int(side.yaml("stats")["cmd-peek"]) >= peeks0 + PEEK_HOGS * 2, 10)
            self.assertTrue(ok, "peeks not processed")

            # Best of several windows (noise only ever slows us down), more
            # of them while short of the bound.
            rates = [w.rate(WINDOW) for _ in range(MIN_WINDOWS)]
            while max(rates) < RATIO * alone and len(rates) < MAX_WINDOWS:
                rates.append(w.rate(WINDOW))
            during = max(rates)
            results.append("%.0f alone, %.0f with hogs (%.2fx)" % (alone, during, during / alone))
            if during >= RATIO * alone or attempt == ROUNDS - 1:
                break
            for h in peek_hogs + stats_hogs:
                hostlib.abort(h)
            ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == "2", 10)
            self.assertTrue(ok)
        anon1 = hostlib.rss_anon_kb(pid)
        peeks_done = int(side.yaml("stats")["cmd-peek"]) - peeks0
        stats_done = int(side.yaml("stats")["cmd-stats"]) - stats0

        hogs = PEEK_HOGS + STATS_HOGS
        per_hog = (anon1 - anon0) / hogs
        # Per hog: its input (INPUT_MAX) and its output past the mark by
        # one reply, in a buffer that grows in 64 KiB steps past 128 KiB
        # (so one step more at most), and slack for the allocator.
        bound_kb = (INPUT_MAX + OUTPUT_HIGH_WATER + JOB + 64 + 64 * KB + 64 * KB) / KB
        print("\n  worker alone %.0f cycles/s, with %d hogs %.0f (%.2fx); stats hogs got %s KiB "
              "in before stalling; %d peeks and %d stats answered of %d and %d sent; "
              "server RssAnon %d -> %d KiB, %.0f KiB per hog (bound %.0f)"
              % (alone, hogs, during, during / alone, [n // KB for n in sent], peeks_done,
                 stats_done, PEEK_HOGS * PEEKS, sum(sent) // 7, anon0, anon1, per_hog, bound_kb),
              file=sys.stderr)
        self.assertLess(per_hog, bound_kb)
        self.assertGreaterEqual(during, RATIO * alone,
                                "worker cycles/s in each round: " + "; ".join(results))
        # Processing stopped near the mark: a peek hog got a few peeks
        # answered (what its kernel buffers and the mark hold), not 300.
        self.assertLess(peeks_done, PEEK_HOGS * PEEKS // 2)

        # A hog that reads drains, and the server then answers the rest of
        # its commands, every one in order and intact. (A hog that sends
        # nothing more used to wait forever for the rest: the bug that
        # test_drained_client_gets_the_rest guards. A hog that has waited a
        # while still sends one more command; a nudge sent when the server
        # was merely slow costs nothing but one more reply.)
        total_nudges = 0
        for h in peek_hogs:
            c = hostlib.as_client(h, timeout=NUDGE_AFTER)
            nudges = 0

            def line():
                nonlocal nudges
                while True:
                    try:
                        return c.line()
                    except socket.timeout:
                        c.send(b"list-tube-used\r\n")
                        nudges += 1
            for i in range(PEEKS):
                self.assertEqual(line(), "FOUND %d %d" % (jid, JOB), "peek %d" % i)
                self.assertEqual(c.exact(JOB + 2), b"P" * JOB + b"\r\n")
            while nudges:
                self.assertEqual(line(), "USING default")
                nudges -= 1
                total_nudges += 1
            c.sock.settimeout(10)
            self.assertEqual(c.cmd("list-tube-used"), "USING default")
            self.assertEqual(c.buf, b"")
        print("  rounds: " + "; ".join(results), file=sys.stderr)
        print("  the peek hogs read all %d replies each, after %d nudges in all"
              % (PEEKS, total_nudges), file=sys.stderr)
        for h in stats_hogs:
            hostlib.abort(h)
        w.best_rate(1, WINDOW)
        self.assertIsNone(self.server.proc.poll())
        ok = bstest.wait_until(lambda: side.yaml("stats")["current-connections"] == str(2 + PEEK_HOGS), 10)
        self.assertTrue(ok)


    def test_drained_client_gets_the_rest(self):
        """Regression test for a bug found here: a client pipelines
        PIPELINED peeks of a big job at once, then reads. The server stops
        at the mark with the rest of the commands in its input buffer; when
        the output drained it never went back to them (src/conn.c
        conn_flush took "was blocked" at each call, and the call in which
        the output fell below OUTPUT_HIGH_WATER ended on EAGAIN before it
        queued the connection). Nothing new arrived on the socket, so the
        client waited forever for the last replies. Stock beanstalkd
        answers all of them, and so do we now."""
        side = self.side()
        jid = side.put_id(b"Q" * JOB)
        h = self.hog()
        h.sendall(b"peek %d\r\n" % jid * PIPELINED)
        # Let the server reach the mark (it answers a few, then stops).
        ok = bstest.wait_until(lambda: int(side.yaml("stats")["cmd-peek"]) >= 2, 10)
        self.assertTrue(ok)
        c = hostlib.as_client(h, timeout=STALL)
        got = 0
        try:
            for _ in range(PIPELINED):
                self.assertEqual(c.line(), "FOUND %d %d" % (jid, JOB))
                self.assertEqual(c.exact(JOB + 2), b"Q" * JOB + b"\r\n")
                got += 1
        except socket.timeout:
            pass
        self.assertEqual(got, PIPELINED, "only %d of %d pipelined peeks answered; nothing for %d s"
                         % (got, PIPELINED, STALL))


if __name__ == "__main__":
    unittest.main()
