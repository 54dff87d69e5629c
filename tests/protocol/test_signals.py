"""Signals: SIGUSR1 puts the server in drain mode; SIGTERM and SIGINT stop it."""
import os
import signal
import socket
import struct
import subprocess
import time
import unittest

import bstest


wait_until = bstest.wait_until

class DrainTest(bstest.ServerTest):

    def drain(self):
        self.server.signal(signal.SIGUSR1)
        ok = wait_until(lambda: self.c.yaml("stats")["draining"] == "true")
        self.assertTrue(ok, "stats never said draining: true after SIGUSR1")

    def test_drain_mode(self):
        c = self.c
        before = c.put_id(b"before")
        self.assertEqual(c.yaml("stats")["draining"], "false")
        self.drain()
        # put is refused, but only after its body has been read: a body that
        # looks like commands must not be run.
        body = b"put 0 0 60 1\r\nx\r\nuse evil"
        self.assertEqual(c.put(body), "DRAINING")
        self.assertEqual(c.cmd("list-tube-used"), "USING default")
        s = c.yaml("stats")
        self.assertEqual(s["total-jobs"], "1")
        self.assertEqual(s["current-jobs-ready"], "1")
        self.assertEqual(s["draining"], "true")
        # Workers carry on: reserve, release, bury, kick, delete all work.
        head, got = c.body_reply("reserve")
        self.assertEqual((head, got), ("RESERVED %d 6" % before, b"before"))
        self.assertEqual(c.cmd("release %d 0 0" % before), "RELEASED")
        self.assertEqual(c.body_reply("reserve-with-timeout 0")[0], "RESERVED %d 6" % before)
        self.assertEqual(c.cmd("bury %d 0" % before), "BURIED")
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")
        self.assertEqual(c.body_reply("reserve-with-timeout 0")[0], "RESERVED %d 6" % before)
        self.assertEqual(c.cmd("delete %d" % before), "DELETED")
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        # Still draining; still refusing; other connections too.
        other = self.conn()
        self.assertEqual(other.put(b"late"), "DRAINING")
        other.cmd("use elsewhere")
        self.assertEqual(other.put(b"late"), "DRAINING")
        self.assertEqual(other.yaml("stats")["draining"], "true")
        self.assertEqual(other.yaml("stats")["total-jobs"], "1")

    def test_drain_mode_put_pipelined(self):
        self.drain()
        c = self.c
        c.send(b"put 0 0 60 3\r\nabc\r\nput 0 0 60 3\r\ndef\r\nlist-tube-used\r\n")
        self.assertEqual(c.line(), "DRAINING")
        self.assertEqual(c.line(), "DRAINING")
        self.assertEqual(c.line(), "USING default")

    def test_drain_mode_second_signal_harmless(self):
        self.drain()
        self.server.signal(signal.SIGUSR1)
        self.assertEqual(self.c.put(b"x"), "DRAINING")
        self.assertIsNone(self.server.proc.poll())
        self.assertEqual(self.c.yaml("stats")["draining"], "true")


class StopTest(unittest.TestCase):

    def start(self):
        s = bstest.Server()
        self.addCleanup(s.stop)
        return s

    def stop_with(self, sig):
        """Start a busy server, send sig, and return its exit status."""
        s = self.start()
        busy = s.client()
        busy.put_id(b"job")
        self.assertTrue(busy.body_reply("reserve")[0].startswith("RESERVED"))
        waiter = s.client()
        waiter.send("reserve\r\n")
        partial = s.client()
        partial.send("put 0 0 60 100\r\nhalf a bo")
        idle = s.client()
        self.assertEqual(idle.cmd("list-tube-used"), "USING default")
        pid = s.proc.pid
        s.signal(sig)
        try:
            rc = s.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.fail("server still running 10 s after signal %d" % sig)
        # It is gone: reaped, and nobody listens on its port any more.
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        for cl in (busy, waiter, partial, idle):
            self.assertTrue(cl.closed_by_peer(2.0))
            cl.close()
        return rc

    def test_sigterm_stops(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint_stops(self):
        self.stop_with(signal.SIGINT)

    # Stock beanstalkd does not handle SIGTERM/SIGINT (unless it is pid 1), so
    # it dies of the signal (status -15 / -2 here); ours exits cleanly.
    @unittest.skipIf(bstest.REFERENCE, "stock dies of the signal instead of exiting 0")
    def test_sigterm_exit_status_zero(self):
        self.assertEqual(self.stop_with(signal.SIGTERM), 0)

    @unittest.skipIf(bstest.REFERENCE, "stock dies of the signal instead of exiting 0")
    def test_sigint_exit_status_zero(self):
        self.assertEqual(self.stop_with(signal.SIGINT), 0)

    def test_sigterm_idle_server(self):
        s = self.start()
        s.signal(signal.SIGTERM)
        try:
            s.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.fail("idle server still running 10 s after SIGTERM")
        self.assertIsNotNone(s.proc.poll())

    def test_sigpipe_ignored(self):
        # A client that goes away while a large reply is on its way must not
        # kill the server with SIGPIPE.
        s = bstest.Server("-z", "1000000")
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        c.put_id(b"x" * 1000000)
        for _ in range(5):
            k = s.client()
            k.send("peek 1\r\n" * 20)
            k.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            k.close()  # RST with replies pending
        self.assertEqual(c.cmd("list-tube-used"), "USING default")
        self.assertIsNone(s.proc.poll())


if __name__ == "__main__":
    unittest.main()
