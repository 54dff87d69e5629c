"""Running out of file descriptors.

The server is started with a hard and soft limit of LIMIT descriptors (it
raises its soft limit to the hard one at start-up, so both are set, and it
warns that the limit is low). More clients than that connect. What the
server does (src/server.c on_accept): accept4 fails with EMFILE, it logs
"accept: Too many open files" once for the episode (not at every retry),
stops accepting for 100 ms and tries again, and says when it accepts again;
the kernel holds the extra connections in the listen backlog, so to those
clients the connection is open but nothing is ever answered. Connections
already accepted keep working; once some close, the waiting ones are
accepted and answered, in the order the kernel queued them.
"""
import resource
import select
import sys
import unittest

import bstest
import hostlib

LIMIT = 64
EXTRA = 20                      # clients beyond what the limit lets in
FREED = 10                      # accepted clients that then leave


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def answered(socks, timeout):
    """The sockets among socks that have something to read within timeout."""
    if not socks:
        return []
    r, _, _ = select.select(socks, [], [], timeout)
    return r


@unittest.skipIf(bstest.REFERENCE, "the log message is ours")
class FdExhaustionTest(unittest.TestCase):

    def setUp(self):
        self.server = bstest.Server(preexec_fn=low_limit)
        self.addCleanup(self.server.stop)

    def test_out_of_descriptors(self):
        pid = self.server.proc.pid
        self.assertIn("open-file limit is %d" % LIMIT, self.server.stderr_text())
        c = self.server.client()
        self.addCleanup(c.close)
        w = hostlib.Worker(c)
        w.cycle()
        base = hostlib.fd_count(pid)

        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(LIMIT - base + EXTRA):
            s = hostlib.connect(self.server.port)
            s.sendall(b"list-tube-used\r\n")
            socks.append(s)
        # Every descriptor taken, and the server says why it takes no more.
        ok = bstest.wait_until(lambda: hostlib.fd_count(pid) == LIMIT
                               and "accept: Too many open files" in self.server.stderr_text(), 10)
        self.assertTrue(ok, "fds %d of %d; log: %r" % (hostlib.fd_count(pid), LIMIT, self.server.stderr_text()))
        accepted = int(c.yaml("stats")["current-connections"]) - 1
        self.assertEqual(accepted, LIMIT - base)

        # The accepted ones are answered; the rest, queued in the kernel, not.
        served, waiting = [], list(socks)
        while len(served) < accepted:
            r = answered(waiting, 10)
            self.assertTrue(r, "only %d of %d accepted clients answered" % (len(served), accepted))
            for s in r:
                self.assertEqual(s.recv(100), b"USING default\r\n")
                served.append(s)
                waiting.remove(s)
        self.assertEqual(len(waiting), EXTRA)
        # (One more round trip on a served one: the waiting ones had time.)
        served[0].sendall(b"list-tube-used\r\n")
        self.assertEqual(served[0].recv(100), b"USING default\r\n")
        self.assertEqual(answered(waiting, 0.2), [], "a client beyond the limit was answered")

        # Existing connections keep working, the worker among them.
        for s in served[::7]:
            s.sendall(b"stats-tube default\r\n")
            self.assertTrue(s.recv(4096).startswith(b"OK "))
        for _ in range(100):
            w.cycle()
        self.assertIsNone(self.server.proc.poll())

        # Some leave: as many waiting ones are accepted and answered.
        for s in served[:FREED]:
            s.close()
        late = []
        while len(late) < FREED:
            r = answered(waiting, 10)
            self.assertTrue(r, "only %d of %d waiting clients accepted after %d left" % (len(late), FREED, FREED))
            for s in r:
                self.assertEqual(s.recv(100), b"USING default\r\n")
                late.append(s)
                waiting.remove(s)
        ok = bstest.wait_until(lambda: hostlib.fd_count(pid) == LIMIT, 5)
        self.assertTrue(ok)
        for _ in range(20):
            w.cycle()
        log = self.server.stderr_text()
        complaints = log.count("accept: Too many open files")
        # Once per episode: running out, then out again once the freed
        # descriptors are taken by waiting clients; not once per retry.
        self.assertIn("accepting connections again", log)
        self.assertLessEqual(complaints, 3, log)

        # All leave: back to where we started, and new clients get in.
        for s in socks:
            s.close()
        ok = bstest.wait_until(lambda: hostlib.fd_count(pid) == base, 10)
        self.assertTrue(ok, "%d fds after all closed, %d before" % (hostlib.fd_count(pid), base))
        fresh = self.server.client()
        self.addCleanup(fresh.close)
        self.assertEqual(fresh.cmd("list-tube-used"), "USING default")
        print("\n  limit %d: %d fds before clients, %d clients accepted, %d held in the backlog; "
              "%d accepted after %d left; %d 'accept: Too many open files' lines logged"
              % (LIMIT, base, accepted, EXTRA, FREED, FREED, complaints), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
