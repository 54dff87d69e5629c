"""Hostile and broken clients: endless lines, garbage, oversized bodies,
disconnects mid-body, clients that never read, a thousand idle connections,
and every malformed command. Each gets its error (or is dropped) and nobody
else notices.
"""
import random
import resource
import select
import socket
import struct
import time
import unittest

import bstest

MB = 1024 * 1024


wait_until = bstest.wait_until

def rss_kb(pid):
    """Resident set size of a process, in KiB (Linux /proc)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def abort(c):
    """Close with a RST, unread data and all."""
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


class BadInputTest(bstest.ServerTest):

    def alive(self, c=None):
        """The server still answers c (default: self.c) promptly and correctly."""
        c = c or self.c
        self.assertEqual(c.cmd("list-tube-used"), "USING default")

    def round_trip(self, c):
        jid = c.put_id(b"still here")
        self.assertEqual(c.body_reply("reserve-with-timeout 0"), ("RESERVED %d 10" % jid, b"still here"))
        self.assertEqual(c.cmd("delete %d" % jid), "DELETED")

    def wait_stat(self, key, value, timeout=5.0):
        ok = wait_until(lambda: self.c.yaml("stats")[key] == str(value), timeout)
        self.assertTrue(ok, "stats %s stayed %s, expected %s" % (key, self.c.yaml("stats")[key], value))

    # ---- endless lines and garbage -------------------------------------------

    def test_endless_line_then_crlf(self):
        c = self.c
        other = self.conn()
        before = rss_kb(self.server.proc.pid)
        # 8 MiB + 5 bytes with no CRLF. (The length avoids leaving the CR as
        # the last byte of a 224-byte discard window, where stock beanstalkd
        # would lose it.)
        chunk = b"x" * MB
        for i in range(8):
            c.send(chunk)
            if i == 3:
                self.round_trip(other)  # others are served meanwhile
        c.send(b"xxxxx")
        grown = rss_kb(self.server.proc.pid) - before
        c.send(b"\r\n")
        self.assertEqual(c.line(), "BAD_FORMAT")
        self.alive()
        self.round_trip(c)
        self.assertLess(grown, 4096, "server grew %d KiB buffering one endless line" % grown)

    def test_endless_line_followed_by_pipelined_commands(self):
        c = self.c
        c.send(b"y" * (MB + 1) + b"\r\nlist-tube-used\r\nuse t\r\n")
        self.assertEqual(c.line(), "BAD_FORMAT")
        self.assertEqual(c.line(), "USING default")
        self.assertEqual(c.line(), "USING t")

    def test_line_just_over_limit(self):
        # A command line longer than any valid one (beanstalkd allows 224
        # bytes with the CRLF) is BAD_FORMAT, not UNKNOWN_COMMAND.
        self.assertEqual(self.c.cmd("use " + "a" * 400), "BAD_FORMAT")
        self.alive()

    def test_garbage_lines(self):
        c = self.c
        rnd = random.Random(1234)
        # High bytes and control characters, no NUL, CR or LF: unknown commands.
        alphabet = bytes(b for b in range(1, 256) if b not in (10, 13) and not (32 <= b < 127))
        lines = [bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 100))) for _ in range(50)]
        c.send(b"".join(l + b"\r\n" for l in lines))
        for l in lines:
            self.assertEqual(c.line(), "UNKNOWN_COMMAND", l)
        self.alive()

    def test_nul_bytes_in_line(self):
        c = self.c
        for line in (b"\x00", b"stats\x00", b"\x00stats", b"use a\x00b", b"put 0 0 1 1\x00"):
            c.send(line + b"\r\n")
            self.assertEqual(c.line(), "BAD_FORMAT", line)
        self.alive()

    def test_random_binary_stream_then_recovery(self):
        # Arbitrary bytes, CRLFs included: whatever the replies, the server
        # stays up, answers others, and this connection still works after a
        # final CRLF (unless the stream happened to say "quit").
        rnd = random.Random(99)
        blob = bytes(rnd.randrange(256) for _ in range(64 * 1024)).replace(b"quit", b"QUIT")
        c = self.c
        c.send(blob + b"\r\n")
        other = self.conn()
        self.round_trip(other)
        c.send(b"list-tube-used\r\n")
        # Replies to the garbage come first; find ours.
        deadline = time.monotonic() + 10
        while True:
            l = c.line()
            if l.startswith("USING "):
                break
            self.assertLess(time.monotonic(), deadline, "no answer after garbage")
        self.assertIsNone(self.server.proc.poll())

    def test_bare_lf_does_not_end_a_line(self):
        c = self.c
        c.send(b"foo\nbar\r\n")
        self.assertEqual(c.line(), "UNKNOWN_COMMAND")
        self.alive()

    # ---- disconnects -------------------------------------------------------------

    def test_disconnect_mid_body(self):
        for i in range(20):
            p = self.conn()
            p.send(b"put 0 0 60 1000\r\n" + b"z" * 500)
            if i % 2:
                abort(p)
            else:
                p.close()
        self.wait_stat("current-connections", 1)
        s = self.c.yaml("stats")
        self.assertEqual(s["total-jobs"], "0")
        self.assertEqual(s["current-jobs-ready"], "0")
        self.assertEqual(s["current-producers"], "0")
        self.round_trip(self.c)

    def test_disconnect_mid_line_and_mid_reply(self):
        p = self.conn()
        p.send(b"put 0 0 60")
        p.close()
        big = self.conn()
        jid = big.put_id(b"b" * 60000)
        r = self.conn()
        r.send(b"peek %d\r\n" % jid * 50)
        abort(r)
        self.wait_stat("current-connections", 2)
        self.alive()
        self.assertEqual(big.body_reply("peek %d" % jid)[1], b"b" * 60000)

    def test_disconnect_while_waiting_and_holding(self):
        jid = self.c.put_id()
        h = self.conn()
        self.assertEqual(h.body_reply("reserve")[0], "RESERVED %d 1" % jid)
        h.send("reserve\r\n")
        abort(h)
        ok = wait_until(lambda: self.c.yaml("stats-job %d" % jid)["state"] == "ready")
        self.assertTrue(ok, "the aborted holder's job never came back")
        self.wait_stat("current-waiting", 0)
        self.assertEqual(self.c.cmd("delete %d" % jid), "DELETED")
        self.round_trip(self.c)

    # ---- many connections ------------------------------------------------------------

    def test_thousand_idle_connections(self):
        n = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 100:
            self.skipTest("RLIMIT_NOFILE soft limit %d too low (see setUpModule)" % soft)
        conns = []
        try:
            for _ in range(n):
                conns.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=5))
            self.wait_stat("current-connections", n + 1, timeout=20)
            # A normal client, old and new, still works.
            self.round_trip(self.c)
            fresh = self.conn()
            self.round_trip(fresh)
            # Some of the idle ones are alive too.
            for s in conns[::250]:
                s.sendall(b"list-tube-used\r\n")
                self.assertEqual(s.recv(100), b"USING default\r\n")
        finally:
            for s in conns:
                s.close()
        self.wait_stat("current-connections", 2, timeout=20)
        self.round_trip(self.c)

    def test_connection_churn(self):
        # Many short-lived connections, some closed with a RST, some with a
        # command in flight: afterwards the counts are back and all is well.
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            if i % 3 == 1:
                s.sendall(b"list-tubes\r\n")
            if i % 3 == 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.wait_stat("current-connections", 1, timeout=20)
        self.round_trip(self.c)

    # ---- every malformed command -------------------------------------------------------

    MALFORMED = [
        (b"", "UNKNOWN_COMMAND"),
        (b"foo", "UNKNOWN_COMMAND"),
        (b"PUT 0 0 60 1", "UNKNOWN_COMMAND"),
        (b"Stats", "UNKNOWN_COMMAND"),
        (b"put", "UNKNOWN_COMMAND"),
        (b"put 0 0 60", "BAD_FORMAT"),
        (b"put a b c d", "BAD_FORMAT"),
        (b"put 0 0 60 -1", "BAD_FORMAT"),
        (b"put 0 0 60 99999999999", "BAD_FORMAT"),
        (b"put 4294967296 0 60 1", "BAD_FORMAT"),
        (b"peek", "UNKNOWN_COMMAND"),
        (b"peek x", "BAD_FORMAT"),
        (b"peek -1", "BAD_FORMAT"),
        (b"peek-ready x", "BAD_FORMAT"),
        (b"delete", "UNKNOWN_COMMAND"),
        (b"delete x", "BAD_FORMAT"),
        (b"release 1", "BAD_FORMAT"),
        (b"release 1 0", "BAD_FORMAT"),
        (b"release x 0 0", "BAD_FORMAT"),
        (b"bury 1", "BAD_FORMAT"),
        (b"bury x 0", "BAD_FORMAT"),
        (b"touch x", "BAD_FORMAT"),
        (b"kick", "UNKNOWN_COMMAND"),
        (b"kick x", "BAD_FORMAT"),
        (b"kick-job x", "BAD_FORMAT"),
        (b"stats-job x", "BAD_FORMAT"),
        (b"stats-tube -x", "BAD_FORMAT"),
        (b"stats-tube a!b", "BAD_FORMAT"),
        (b"use", "UNKNOWN_COMMAND"),
        (b"use -x", "BAD_FORMAT"),
        (b"use a b", "BAD_FORMAT"),
        (b"use " + b"a" * 201, "BAD_FORMAT"),
        (b"watch a!", "BAD_FORMAT"),
        (b"ignore -x", "BAD_FORMAT"),
        (b"reserve x", "BAD_FORMAT"),
        (b"reserve-job x", "BAD_FORMAT"),
        (b"pause-tube default", "BAD_FORMAT"),
        (b"pause-tube default x", "BAD_FORMAT"),
        (b"pause-tube -x 1", "BAD_FORMAT"),
        (b"stats x", "BAD_FORMAT"),
        (b"list-tubes x", "BAD_FORMAT"),
        (b"list-tube-used x", "BAD_FORMAT"),
        (b"list-tubes-watched x", "BAD_FORMAT"),
        (b"\x00stats", "BAD_FORMAT"),
    ]

    def test_malformed_commands_one_by_one(self):
        c = self.c
        for line, want in self.MALFORMED:
            c.send(line + b"\r\n")
            self.assertEqual(c.line(), want, line)
            self.assertEqual(c.cmd("list-tube-used"), "USING default", "after %r" % line)
        self.assertEqual(c.yaml("stats")["total-jobs"], "0")
        self.round_trip(c)

    def test_malformed_commands_pipelined(self):
        c = self.c
        c.send(b"".join(line + b"\r\n" for line, _ in self.MALFORMED) + b"list-tube-used\r\n")
        got = [c.line() for _ in self.MALFORMED]
        self.assertEqual(got, [want for _, want in self.MALFORMED])
        self.assertEqual(c.line(), "USING default")

    # beanstalkd 1.13 reads the timeout with read_u32 (#607): anything but
    # digits is BAD_FORMAT. Stock 1.12 used strtol, so "x" meant 0 (an
    # immediate TIMED_OUT) and "-1" meant no timeout at all (it blocks).
    @unittest.skipIf(bstest.REFERENCE, "stock 1.12 parses the reserve-with-timeout argument with strtol")
    def test_malformed_reserve_timeout_1_13(self):
        c = self.c
        # (1.13 still ignores trailing garbage after the digits: "1x" is 1.)
        for line in ("reserve-with-timeout x", "reserve-with-timeout -1",
                     "reserve-with-timeout 4294967296"):
            self.assertEqual(c.cmd(line), "BAD_FORMAT", line)
            self.alive()

    def test_body_without_crlf(self):
        c = self.c
        c.send(b"put 0 0 60 3\r\nabcXY")
        self.assertEqual(c.line(), "EXPECTED_CRLF")
        self.alive()
        c.send(b"put 0 0 60 3\r\nabcde\r\n")  # two bytes too many
        self.assertEqual(c.line(), "EXPECTED_CRLF")
        # The "\r\n" after the 5 body bytes is an empty command line.
        self.assertEqual(c.line(), "UNKNOWN_COMMAND")
        self.alive()
        self.assertEqual(c.yaml("stats")["total-jobs"], "0")


class OversizeTest(bstest.ServerTest):
    server_args = ("-z", "1000")

    def test_huge_body_discarded_then_job_too_big(self):
        c = self.c
        # 3 MiB of body made of valid commands: if any of it were taken as
        # commands, jobs would appear and extra replies would come back.
        piece = b"put 0 0 1 1\r\nx\r\n"
        body = piece * (3 * MB // len(piece))
        c.send(b"put 0 0 60 %d\r\n" % len(body))
        other = self.conn()
        for i in range(0, len(body), MB):
            c.send(body[i:i + MB])
            if i == MB:
                self.assertEqual(other.cmd("list-tube-used"), "USING default")
        c.send(b"\r\nlist-tube-used\r\n")
        self.assertEqual(c.line(), "JOB_TOO_BIG")
        self.assertEqual(c.line(), "USING default")
        s = c.yaml("stats")
        self.assertEqual(s["total-jobs"], "0")
        self.assertEqual(s["cmd-put"], "1")
        self.assertEqual(c.put(b"x" * 1000)[:9], "INSERTED ")

    def test_too_big_reply_waits_for_body(self):
        # JOB_TOO_BIG comes after the declared body has been read, so a client
        # that sends header and body together reads exactly one reply for it.
        c = self.c
        c.send(b"put 0 0 60 5000\r\n" + b"q" * 2500)
        r, _, _ = select.select([c.sock], [], [], 0.3)
        early = bool(r)
        c.send(b"q" * 2500 + b"\r\nlist-tube-used\r\n")
        self.assertEqual(c.line(), "JOB_TOO_BIG")
        self.assertEqual(c.line(), "USING default")
        self.assertFalse(early, "JOB_TOO_BIG sent before the body was read")

    def test_disconnect_mid_discard(self):
        p = self.conn()
        p.send(b"put 0 0 60 100000\r\n" + b"d" * 5000)
        abort(p)
        self.assertEqual(self.c.put(b"ok"), "INSERTED 1")
        ok = wait_until(lambda: self.c.yaml("stats")["current-connections"] == "1")
        self.assertTrue(ok)


class SlowReaderTest(bstest.ServerTest):
    JOB = 512 * 1024
    server_args = ("-z", str(JOB))

    def test_client_that_never_reads(self):
        c = self.c
        jid = c.put_id(b"L" * self.JOB)
        pid = self.server.proc.pid
        before = rss_kb(pid)
        hog = self.conn()
        # 300 peeks of a 512 KiB job: 150 MiB of replies nobody reads.
        hog.send(b"peek %d\r\n" % jid * 300)
        peak = before
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            # Meanwhile everyone else is served promptly.
            t0 = time.monotonic()
            self.assertEqual(c.cmd("list-tube-used"), "USING default")
            self.assertLess(time.monotonic() - t0, 3.0)
            peak = max(peak, rss_kb(pid))
            time.sleep(0.05)
        self.round_trip_other()
        grown = peak - before
        self.assertLess(grown, 64 * 1024, "server grew %d KiB for one client that never reads" % grown)
        # The hog's replies are intact when it does read.
        hog.sock.settimeout(10)
        for _ in range(3):
            head = hog.line()
            self.assertEqual(head, "FOUND %d %d" % (jid, self.JOB))
            self.assertEqual(hog.exact(self.JOB + 2), b"L" * self.JOB + b"\r\n")
        abort(hog)
        self.assertEqual(c.cmd("list-tube-used"), "USING default")
        self.assertIsNone(self.server.proc.poll())

    def round_trip_other(self):
        o = self.conn()
        jid = o.put_id(b"small")
        self.assertEqual(o.cmd("delete %d" % jid), "DELETED")


_saved_nofile = None


def setUpModule():
    # Room for 1000 client sockets here and 1000 in the server (which
    # inherits this limit when it is started).
    global _saved_nofile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _saved_nofile = (soft, hard)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def tearDownModule():
    if _saved_nofile:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, _saved_nofile)
        except (ValueError, OSError):
            pass


if __name__ == "__main__":
    unittest.main()
