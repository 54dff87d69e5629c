"""Several connections at once: waking blocked workers, sharing jobs out,
choosing across watched tubes, what happens to a closing connection's
reservations and wait, and which commands work on another connection's jobs.
"""
import select
import socket
import time
import unittest

import bstest


wait_until = bstest.wait_until

def readable(c, timeout):
    """True when c has reply bytes to read within timeout."""
    if c.buf:
        return True
    r, _, _ = select.select([c.sock], [], [], timeout)
    return bool(r)


class MultiTest(bstest.ServerTest):

    def stat(self, key, c=None):
        return (c or self.c).yaml("stats")[key]

    def wait_stat(self, key, value, c=None, timeout=5.0):
        """Poll stats until key == value; fail with the last value otherwise."""
        c = c or self.c
        got = wait_until(lambda: c.yaml("stats")[key] == str(value), timeout)
        self.assertTrue(got, "stats %s stayed %s, expected %s" % (key, self.stat(key, c), value))

    def wait_job_state(self, jid, state, timeout=5.0):
        """Poll stats-job until the job is in state; its stats, or None."""
        def probe():
            st = self.c.yaml("stats-job %d" % jid)
            return st if st["state"] == state else None
        return wait_until(probe, timeout)

    def read_reserved(self, c):
        head = c.line()
        parts = head.split()
        self.assertEqual(parts[0], "RESERVED", head)
        body = c.exact(int(parts[2]) + 2)
        self.assertEqual(body[-2:], b"\r\n")
        return int(parts[1]), body[:-2]

    # ---- waking waiters ----------------------------------------------------

    def test_blocking_reserve_woken_by_other_put(self):
        worker = self.conn()
        worker.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        self.assertFalse(readable(worker, 0.1), "reserve answered with nothing ready")
        jid = self.c.put_id(b"wake up")
        self.assertTrue(readable(worker, 5.0), "waiting worker not woken by a put")
        self.assertEqual(self.read_reserved(worker), (jid, b"wake up"))
        s = self.c.yaml("stats")
        self.assertEqual(s["current-waiting"], "0")
        self.assertEqual(s["current-jobs-reserved"], "1")
        self.assertEqual(s["current-jobs-ready"], "0")
        self.assertEqual(self.c.yaml("stats-job %d" % jid)["state"], "reserved")

    def test_several_waiters_each_get_one_job(self):
        workers = [self.conn() for _ in range(4)]
        for w in workers:
            w.send("reserve\r\n")
        self.wait_stat("current-waiting", 4)
        self.assertEqual(self.c.yaml("stats-tube default")["current-waiting"], "4")
        ids = [self.c.put_id(b"job%d" % i) for i in range(3)]

        def three_woken():
            woken = [w for w in workers if readable(w, 0)]
            return woken if len(woken) >= 3 else None
        woken = wait_until(three_woken, timeout=5.0)
        self.assertIsNotNone(woken, "three puts did not wake three waiters")
        self.assertEqual(len(woken), 3)
        got = [self.read_reserved(w)[0] for w in woken]
        self.assertEqual(sorted(got), ids, "each job to exactly one waiter")
        s = self.c.yaml("stats")
        self.assertEqual(s["current-waiting"], "1")
        self.assertEqual(s["current-jobs-reserved"], "3")
        self.assertEqual(s["current-workers"], "4")
        # The fourth gets the next job.
        last = self.c.put_id(b"last")
        taken = []
        for w in workers:
            if readable(w, 0.2):
                taken.append(self.read_reserved(w)[0])
        self.assertEqual(taken, [last])

    def test_each_job_delivered_once_with_pipelined_waiters(self):
        # Many workers and many jobs: every job reaches exactly one worker.
        workers = [self.conn() for _ in range(10)]
        ids = [self.c.put_id(b"%d" % i) for i in range(25)]
        got = []
        for _ in range(3):
            for w in workers:
                w.send("reserve-with-timeout 0\r\n")
            for w in workers:
                head = w.line()
                if head == "TIMED_OUT":
                    continue
                self.assertTrue(head.startswith("RESERVED "), head)
                w.exact(int(head.split()[2]) + 2)
                got.append(int(head.split()[1]))
        self.assertEqual(sorted(got), ids)

    def test_release_bury_kick_and_waiting_worker(self):
        jid = self.c.put_id(b"rk")
        self.assertEqual(self.c.body_reply("reserve")[0], "RESERVED %d 2" % jid)
        w = self.conn()
        w.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        # bury does not make the job ready: the worker keeps waiting.
        self.assertEqual(self.c.cmd("bury %d 0" % jid), "BURIED")
        self.assertFalse(readable(w, 0.2), "woken by a bury")
        # kick does.
        self.assertEqual(self.c.cmd("kick 1"), "KICKED 1")
        self.assertTrue(readable(w, 5.0), "waiting worker not woken by a kick")
        self.assertEqual(self.read_reserved(w), (jid, b"rk"))
        # And a release by the holder wakes the next waiter.
        self.c.send("reserve\r\n")
        self.wait_stat("current-waiting", 1, c=self.conn())
        self.assertEqual(w.cmd("release %d 0 0" % jid), "RELEASED")
        self.assertTrue(readable(self.c, 5.0), "waiting worker not woken by a release")
        self.assertEqual(self.read_reserved(self.c), (jid, b"rk"))

    def test_kick_job_of_delayed_wakes_waiting_worker(self):
        jid = self.c.put_id(b"later", delay=100)
        w = self.conn()
        w.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        self.assertEqual(self.c.cmd("kick-job %d" % jid), "KICKED")
        self.assertTrue(readable(w, 5.0), "waiting worker not woken by kick-job")
        self.assertEqual(self.read_reserved(w), (jid, b"later"))

    def test_worker_watching_several_tubes_gets_best_job(self):
        c = self.c
        c.cmd("use a")
        a_job = c.put_id(b"a", pri=10)
        c.cmd("use b")
        b_job = c.put_id(b"b", pri=5)
        c.cmd("use c")
        c_job = c.put_id(b"c", pri=5)
        c.cmd("use d")
        d_job = c.put_id(b"d", pri=0)  # not watched
        w = self.conn()
        for t in ("a", "b", "c"):
            w.cmd("watch " + t)
        self.assertEqual(w.cmd("ignore default"), "WATCHING 3")
        order = []
        for _ in range(3):
            head, body = w.body_reply("reserve-with-timeout 0")
            self.assertTrue(head.startswith("RESERVED "), head)
            order.append(int(head.split()[1]))
        # Lowest priority first, ties by lowest id; d is not watched.
        self.assertEqual(order, [b_job, c_job, a_job])
        self.assertEqual(w.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        self.assertEqual(c.yaml("stats-job %d" % d_job)["state"], "ready")

    def test_waiting_worker_on_several_tubes_woken_by_any(self):
        w = self.conn()
        w.cmd("watch x")
        w.cmd("watch y")
        w.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        for t in ("default", "x", "y"):
            self.assertEqual(self.c.yaml("stats-tube " + t)["current-waiting"], "1")
        self.c.cmd("use z")
        z_job = self.c.put_id(b"z")
        self.assertFalse(readable(w, 0.2), "woken by a put into an unwatched tube")
        self.c.cmd("use y")
        y_job = self.c.put_id(b"y")
        self.assertTrue(readable(w, 5.0))
        self.assertEqual(self.read_reserved(w), (y_job, b"y"))
        self.assertEqual(self.c.yaml("stats-job %d" % z_job)["state"], "ready")
        for t in ("default", "x", "y"):
            self.assertEqual(self.c.yaml("stats-tube " + t)["current-waiting"], "0")

    # ---- closing connections -------------------------------------------------

    def test_closed_connection_reserved_jobs_come_back_ready(self):
        ids = [self.c.put_id(b"r%d" % i) for i in range(3)]
        w = self.conn()
        for _ in ids:
            head, _ = w.body_reply("reserve")
            self.assertTrue(head.startswith("RESERVED "), head)
        self.assertEqual(self.stat("current-jobs-reserved"), "3")
        w.close()
        for jid in ids:
            st = self.wait_job_state(jid, "ready")
            self.assertIsNotNone(st, "job %d still reserved after its holder closed" % jid)
            # Coming back from a closed connection is not a timeout.
            self.assertEqual(st["timeouts"], "0")
            self.assertEqual(st["reserves"], "1")
        s = self.c.yaml("stats")
        self.assertEqual(s["current-jobs-reserved"], "0")
        self.assertEqual(s["current-jobs-ready"], "3")
        self.assertEqual(s["job-timeouts"], "0")
        self.assertEqual(s["current-workers"], "0")
        # And they are reservable again, in the old order.
        got = [int(self.c.body_reply("reserve-with-timeout 0")[0].split()[1]) for _ in ids]
        self.assertEqual(got, ids)

    def test_closed_connection_jobs_go_to_waiting_worker(self):
        jid = self.c.put_id(b"handover")
        holder = self.conn()
        head, _ = holder.body_reply("reserve")
        self.assertEqual(head, "RESERVED %d 8" % jid)
        waiter = self.conn()
        waiter.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        holder.close()
        self.assertTrue(readable(waiter, 5.0), "waiting worker not given the released job")
        self.assertEqual(self.read_reserved(waiter), (jid, b"handover"))

    def test_closed_waiting_connection_no_longer_counted(self):
        w = self.conn()
        w.cmd("watch other")
        w.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        self.assertEqual(self.c.yaml("stats-tube other")["current-waiting"], "1")
        w.close()
        self.wait_stat("current-waiting", 0)
        self.wait_stat("current-connections", 1)
        self.assertEqual(self.c.yaml("stats-tube default")["current-waiting"], "0")
        self.assertEqual(self.stat("current-workers"), "0")
        # The tube it watched went away with it (nothing else refers to it).
        self.assertNotIn("other", self.c.yaml("list-tubes"))
        # A job put now is not handed to the dead waiter: it stays ready.
        jid = self.c.put_id(b"nobody")
        self.assertEqual(self.c.yaml("stats-job %d" % jid)["state"], "ready")
        head, body = self.c.body_reply("reserve-with-timeout 0")
        self.assertEqual((head, body), ("RESERVED %d 6" % jid, b"nobody"))

    def test_closed_reserve_with_timeout_connection_no_longer_counted(self):
        w = self.conn()
        w.send("reserve-with-timeout 100\r\n")
        self.wait_stat("current-waiting", 1)
        w.sock.shutdown(socket.SHUT_RDWR)
        w.close()
        self.wait_stat("current-waiting", 0)
        jid = self.c.put_id()
        self.assertEqual(self.c.yaml("stats-job %d" % jid)["state"], "ready")

    def test_half_closed_waiting_connection(self):
        # A worker that shuts down its sending side while waiting gets
        # TIMED_OUT, then the server closes the connection.
        w = self.conn()
        w.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        w.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(w.line(), "TIMED_OUT")
        self.assertTrue(w.closed_by_peer(5.0))
        self.wait_stat("current-waiting", 0)
        self.wait_stat("current-connections", 1)

    def test_many_waiters_some_close(self):
        ws = [self.conn() for _ in range(6)]
        for w in ws:
            w.send("reserve\r\n")
        self.wait_stat("current-waiting", 6)
        for w in ws[:3]:
            w.close()
        self.wait_stat("current-waiting", 3)
        ids = [self.c.put_id(b"%d" % i) for i in range(3)]
        got = sorted(self.read_reserved(w)[0] for w in ws[3:] if readable(w, 5.0))
        self.assertEqual(got, ids)
        self.assertEqual(self.stat("current-jobs-ready"), "0")

    # ---- commands on another connection's jobs ----------------------------------

    def test_peek_by_another_connection(self):
        jid = self.c.put_id(b"look")
        other = self.conn()
        self.assertEqual(other.body_reply("peek %d" % jid), ("FOUND %d 4" % jid, b"look"))
        self.assertEqual(other.body_reply("peek-ready"), ("FOUND %d 4" % jid, b"look"))
        # Still visible while a third connection holds it.
        holder = self.conn()
        self.assertEqual(holder.body_reply("reserve")[0], "RESERVED %d 4" % jid)
        self.assertEqual(other.body_reply("peek %d" % jid), ("FOUND %d 4" % jid, b"look"))
        self.assertEqual(other.cmd("peek-ready"), "NOT_FOUND")
        self.assertEqual(other.yaml("stats-job %d" % jid)["state"], "reserved")
        # peek-* look at the tube in use, whoever put the job.
        self.assertEqual(holder.cmd("bury %d 3" % jid), "BURIED")
        self.assertEqual(other.body_reply("peek-buried"), ("FOUND %d 4" % jid, b"look"))
        other.cmd("use elsewhere")
        self.assertEqual(other.cmd("peek-buried"), "NOT_FOUND")

    def test_commands_on_another_connections_reserved_job(self):
        jid = self.c.put_id(b"mine")
        holder = self.conn()
        self.assertEqual(holder.body_reply("reserve")[0], "RESERVED %d 4" % jid)
        other = self.conn()
        self.assertEqual(other.cmd("delete %d" % jid), "NOT_FOUND")
        self.assertEqual(other.cmd("release %d 0 0" % jid), "NOT_FOUND")
        self.assertEqual(other.cmd("bury %d 0" % jid), "NOT_FOUND")
        self.assertEqual(other.cmd("touch %d" % jid), "NOT_FOUND")
        self.assertEqual(other.cmd("kick-job %d" % jid), "NOT_FOUND")
        self.assertEqual(other.cmd("reserve-job %d" % jid), "NOT_FOUND")
        st = other.yaml("stats-job %d" % jid)
        self.assertEqual(st["state"], "reserved")
        self.assertEqual(st["releases"], "0")
        self.assertEqual(st["buries"], "0")
        self.assertEqual(holder.cmd("delete %d" % jid), "DELETED")
        self.assertEqual(other.cmd("peek %d" % jid), "NOT_FOUND")

    def test_delete_ready_job_of_another_connection(self):
        # Only reserved jobs belong to a connection: ready, buried and delayed
        # jobs can be deleted by anyone.
        ready = self.c.put_id()
        delayed = self.c.put_id(delay=100)
        other = self.conn()
        self.assertEqual(other.cmd("delete %d" % ready), "DELETED")
        self.assertEqual(other.cmd("delete %d" % delayed), "DELETED")
        self.assertEqual(self.stat("current-jobs-ready"), "0")

    def test_producers_and_workers_counted_per_connection(self):
        p1, p2, w1 = self.conn(), self.conn(), self.conn()
        p1.put_id()
        p1.put_id()
        p2.put_id()
        self.assertEqual(w1.cmd("reserve-with-timeout 0")[:8], "RESERVED")
        w1.exact(3)
        self.wait_stat("current-connections", 4)
        s = self.c.yaml("stats")
        self.assertEqual(s["current-producers"], "2")
        self.assertEqual(s["current-workers"], "1")
        p1.close()
        w1.close()
        self.wait_stat("current-connections", 2)
        s = self.c.yaml("stats")
        self.assertEqual(s["current-producers"], "1")
        self.assertEqual(s["current-workers"], "0")
        self.assertEqual(s["current-jobs-ready"], "3")


if __name__ == "__main__":
    unittest.main()
