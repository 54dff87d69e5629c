"""A flood of connects and disconnects: thousands of short connections,
closed (with a FIN or a RST) at every point of a command's life: idle,
mid-line, mid-body, holding a reserved job, waiting in reserve, with
replies unread. Afterwards the server is up, holds exactly the descriptors
it held before, and every job a vanished client held is ready again.
"""
import socket
import sys
import unittest

import bstest
import hostlib

ROUNDS = 30
BATCH = 100                     # connections open at once: 3,000 in all
JOBS = 400                      # on tube "held", for the holders to reserve
HOLD = 3                        # jobs each holder reserves before it vanishes
KINDS = ("idle", "mid-line", "mid-body", "holder", "waiter", "unread")


class ChurnTest(bstest.ServerTest):

    def open_one(self, kind):
        """A connection left in the state kind; returns (socket, ids of the
        jobs it holds)."""
        s = hostlib.connect(self.server.port)
        held = []
        if kind == "mid-line":
            s.sendall(b"put 0 0 60")
        elif kind == "mid-body":
            s.sendall(b"put 0 0 60 1000\r\n" + b"m" * 500)
        elif kind == "holder":
            c = hostlib.as_client(s)
            self.assertEqual(c.cmd("watch held"), "WATCHING 2")
            for _ in range(HOLD):
                head, body = c.body_reply("reserve-with-timeout 0")
                self.assertTrue(head.startswith("RESERVED "), head)
                held.append(int(head.split()[1]))
        elif kind == "waiter":
            s.sendall(b"watch nothing-here\r\nignore default\r\nreserve\r\n")
        elif kind == "unread":
            s.sendall(b"list-tubes\r\nstats\r\n" * 50)
        return s, held

    def test_connection_flood(self):
        pid = self.server.proc.pid
        side = self.side()
        w = hostlib.Worker(self.c)
        self.assertEqual(side.cmd("use held"), "USING held")
        ids = [side.put_id(b"held job %d" % i) for i in range(JOBS)]
        w.cycle()
        fds0 = hostlib.fd_count(pid)
        conns0 = side.yaml("stats")["current-connections"]

        held = set()
        peak_fds = fds0
        for r in range(ROUNDS):
            batch = []
            for i in range(BATCH):
                s, jobs = self.open_one(KINDS[(r + i) % len(KINDS)])
                batch.append(s)
                held.update(jobs)
            peak_fds = max(peak_fds, hostlib.fd_count(pid))
            for i, s in enumerate(batch):
                if i % 2:
                    hostlib.abort(s)
                else:
                    s.close()
            for _ in range(5):
                w.cycle()                       # served correctly meanwhile

        def settled():
            st = side.yaml("stats")
            return (st["current-connections"] == conns0 and st["current-jobs-reserved"] == "0"
                    and st["current-waiting"] == "0" and hostlib.fd_count(pid) == fds0)
        ok = bstest.wait_until(settled, 20)
        st = side.yaml("stats")
        print("\n  %d connections opened and dropped; server fds %d before, %d at peak, %d after; "
              "%d distinct jobs were held by clients that vanished"
              % (ROUNDS * BATCH, fds0, peak_fds, hostlib.fd_count(pid), len(held)), file=sys.stderr)
        self.assertTrue(ok, "not back to the start: %d fds (was %d), connections %s (was %s), "
                        "reserved %s, waiting %s" % (hostlib.fd_count(pid), fds0, st["current-connections"],
                                                     conns0, st["current-jobs-reserved"], st["current-waiting"]))
        self.assertIsNone(self.server.proc.poll())
        self.assertGreaterEqual(len(held), HOLD * (BATCH // len(KINDS)))
        self.assertEqual(side.yaml("stats-tube held")["current-jobs-ready"], str(JOBS))
        for jid in sorted(held)[::20]:
            self.assertEqual(side.yaml("stats-job %d" % jid)["state"], "ready")
        self.assertEqual(st["total-connections"], str(ROUNDS * BATCH + 2))
        # Nothing the flood sent became a job; all the held ones are intact.
        self.assertEqual(side.yaml("stats-tube default")["total-jobs"], "0")
        self.assertEqual(side.cmd("watch held"), "WATCHING 2")
        self.assertEqual(side.cmd("ignore default"), "WATCHING 1")
        got = set()
        for _ in range(JOBS):
            head, body = side.body_reply("reserve-with-timeout 0")
            jid = int(head.split()[1])
            self.assertEqual(body, b"held job %d" % ids.index(jid))
            got.add(jid)
        self.assertEqual(got, set(ids))
        for _ in range(20):
            w.cycle()


if __name__ == "__main__":
    unittest.main()
