"""Every command of the beanstalkd 1.13 protocol and every reply it can give.

The suite is proven against stock beanstalkd (BEANSTALKD=/usr/bin/beanstalkd
BS_REFERENCE=1). The few checks that need 1.13 behaviour which the installed
1.12 lacks skip themselves under BS_REFERENCE and say why.

OUT_OF_MEMORY, INTERNAL_ERROR and the "BURIED <id>" reply to put/release (the
server failing to grow a heap) cannot be provoked from outside, so nothing
here tries. Error classification of malformed input lives in test_parsing.py;
timing (TTR expiry, delays running out, pause ending) in test_timing.py.
"""
import signal
import socket
import time
import unittest

import bstest

U32_MAX = 4294967295
STATS_JOB_KEYS = ["id", "tube", "state", "pri", "age", "delay", "ttr",
                  "time-left", "file", "reserves", "timeouts", "releases",
                  "buries", "kicks"]
STATS_TUBE_KEYS = ["name", "current-jobs-urgent", "current-jobs-ready",
                   "current-jobs-reserved", "current-jobs-delayed",
                   "current-jobs-buried", "total-jobs", "current-using",
                   "current-watching", "current-waiting", "cmd-delete",
                   "cmd-pause-tube", "pause", "pause-time-left"]


wait_until = bstest.wait_until

class Case(bstest.ServerTest):
    """ServerTest plus the small helpers every test below uses."""

    def reserve(self, c, line="reserve-with-timeout 0"):
        head, body = c.body_reply(line)
        self.assertTrue(head.startswith("RESERVED "), head)
        jid, size = map(int, head.split()[1:])
        self.assertEqual(size, len(body))
        return jid, body

    def job(self, c, jid):
        return c.yaml("stats-job %d" % jid)

    def state(self, c, jid):
        return self.job(c, jid)["state"]

    def tube(self, c, name):
        return c.yaml("stats-tube " + name)

    def tubes(self, c):
        return set(c.yaml("list-tubes"))

    def peek(self, c, line):
        head, body = c.body_reply(line)
        if head == "NOT_FOUND":
            return None
        self.assertTrue(head.startswith("FOUND "), head)
        jid, size = map(int, head.split()[1:])
        self.assertEqual(size, len(body))
        return jid, body

    def buried_job(self, c, body=b"b", pri=0):
        """Put a job in c's used tube and bury it (reserving it by id)."""
        jid = c.put_id(body, pri=pri)
        self.assertEqual(c.body_reply("reserve-job %d" % jid)[0],
                         "RESERVED %d %d" % (jid, len(body)))
        self.assertEqual(c.cmd("bury %d %d" % (jid, pri)), "BURIED")
        return jid


# ---------------------------------------------------------------- put

class PutTest(Case):

    def test_ids_count_up_from_one(self):
        self.assertEqual(self.c.put("a"), "INSERTED 1")
        self.assertEqual(self.c.put("b"), "INSERTED 2")
        self.assertEqual(self.conn().put("c"), "INSERTED 3")

    def test_job_goes_to_used_tube(self):
        c = self.c
        self.assertEqual(c.cmd("use jobs"), "USING jobs")
        jid = c.put_id("hello")
        self.assertEqual(self.job(c, jid)["tube"], "jobs")
        self.assertEqual(self.peek(c, "peek-ready"), (jid, b"hello"))
        other = self.conn()
        self.assertIsNone(self.peek(other, "peek-ready"))
        # the default watch list does not include "jobs"
        self.assertEqual(other.cmd("reserve-with-timeout 0"), "TIMED_OUT")

    def test_zero_length_body(self):
        c = self.c
        c.send(b"put 0 0 60 0\r\n\r\n")
        jid = int(c.line().split()[1])
        self.assertEqual(c.body_reply("peek %d" % jid), ("FOUND %d 0" % jid, b""))
        self.assertEqual(self.reserve(c), (jid, b""))
        c.send("reserve-job %d\r\n" % jid)  # own reservation: not found
        self.assertEqual(c.line(), "NOT_FOUND")
        c.send("release %d 0 0\r\n" % jid)
        self.assertEqual(c.line(), "RELEASED")
        c.send("reserve-with-timeout 0\r\n")
        self.assertEqual(c.exact(len("RESERVED %d 0\r\n\r\n" % jid)),
                         b"RESERVED %d 0\r\n\r\n" % jid)

    def test_body_containing_crlf(self):
        c = self.c
        body = b"\r\nput 0 0 1 1\r\nx\r\n\r\nquit\r\n"
        jid = c.put_id(body)
        self.assertEqual(self.peek(c, "peek %d" % jid), (jid, body))
        self.assertEqual(self.reserve(c), (jid, body))
        self.assertAlive(c)

    def test_body_with_every_byte_value(self):
        c = self.c
        body = bytes(range(256)) + bytes(range(255, -1, -1))
        jid = c.put_id(body)
        self.assertEqual(self.peek(c, "peek %d" % jid), (jid, body))
        self.assertEqual(self.reserve(c), (jid, body))

    def test_body_of_default_maximum_size(self):
        # Without -z the limit is 65535 bytes, which also forces the body
        # across many socket reads.
        c = self.c
        body = bytes(i * 7 % 256 for i in range(65535))
        jid = c.put_id(body)
        self.assertEqual(self.reserve(c), (jid, body))
        self.assertEqual(c.cmd("delete %d" % jid), "DELETED")

    def test_priority_bounds_and_values_kept(self):
        c = self.c
        a = c.put_id(pri=0)
        b = c.put_id(pri=U32_MAX)
        self.assertEqual(self.job(c, a)["pri"], "0")
        self.assertEqual(self.job(c, b)["pri"], str(U32_MAX))

    def test_delay_ttr_maximum(self):
        c = self.c
        jid = c.put_id(pri=U32_MAX, delay=U32_MAX, ttr=U32_MAX)
        st = self.job(c, jid)
        self.assertEqual((st["pri"], st["delay"], st["ttr"], st["state"]),
                         (str(U32_MAX), str(U32_MAX), str(U32_MAX), "delayed"))

    def test_delayed_put(self):
        c = self.c
        jid = c.put_id("later", delay=100)
        st = self.job(c, jid)
        self.assertEqual((st["state"], st["delay"]), ("delayed", "100"))
        self.assertIsNone(self.peek(c, "peek-ready"))
        self.assertEqual(self.peek(c, "peek-delayed"), (jid, b"later"))
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")

    def test_ttr_zero_becomes_one(self):
        c = self.c
        jid = c.put_id(ttr=0)
        self.assertEqual(self.job(c, jid)["ttr"], "1")
        jid = c.put_id(ttr=1)
        self.assertEqual(self.job(c, jid)["ttr"], "1")

    def test_expected_crlf(self):
        c = self.c
        c.send(b"put 0 0 60 3\r\nabcXY")
        self.assertEqual(c.line(), "EXPECTED_CRLF")
        self.assertIsNone(self.peek(c, "peek-ready"))
        self.assertEqual(c.yaml("stats-tube default")["total-jobs"], "0")
        self.assertAlive(c)

    def test_expected_crlf_consumes_an_id(self):
        # stock allocates the job (and its id) before checking the trailer
        c = self.c
        self.assertEqual(c.put("a"), "INSERTED 1")
        c.send(b"put 0 0 60 1\r\nbXY")
        self.assertEqual(c.line(), "EXPECTED_CRLF")
        self.assertEqual(c.put("c"), "INSERTED 3")

    def test_draining(self):
        c = self.c
        self.assertEqual(c.put("before"), "INSERTED 1")
        self.server.signal(signal.SIGUSR1)
        self.assertTrue(wait_until(lambda: c.yaml("stats")["draining"] == "true"))
        # the body is still read in full, then refused
        self.assertEqual(c.put(b"list-tube-used\r\n"), "DRAINING")
        self.assertEqual(c.put(b""), "DRAINING")
        self.assertAlive(c)
        # everything else keeps working
        self.assertEqual(self.reserve(c), (1, b"before"))
        self.assertEqual(c.cmd("delete 1"), "DELETED")
        c.send(b"put 0 0 60 2\r\nabXY")
        self.assertEqual(c.line(), "EXPECTED_CRLF")


class BodyLimitTest(Case):
    server_args = ("-z", "10")

    def test_body_of_exactly_the_limit(self):
        c = self.c
        jid = c.put_id(b"0123456789")
        self.assertEqual(self.peek(c, "peek %d" % jid), (jid, b"0123456789"))

    def test_body_one_byte_over_the_limit(self):
        c = self.c
        # If this body were parsed as commands, "quit" would close us.
        self.assertEqual(c.put(b"quit\r\nquit\r"), "JOB_TOO_BIG")
        self.assertAlive(c)
        self.assertIsNone(self.peek(c, "peek-ready"))
        self.assertEqual(c.put(b"0123456789"), "INSERTED 1")

    def test_too_big_waits_for_whole_body(self):
        c = self.c
        c.send(b"put 0 0 60 20\r\n0123456789")
        self.assertQuiet(c)
        c.send(b"0123456789\r")
        self.assertQuiet(c)
        c.send(b"\nlist-tube-used\r\n")
        self.assertEqual(c.line(), "JOB_TOO_BIG")
        self.assertEqual(c.line(), "USING default")

    def test_too_big_body_not_checked_for_crlf(self):
        # exactly <bytes>+2 bytes are thrown away, whatever they are
        c = self.c
        c.send(b"put 0 0 60 11\r\n0123456789aXYlist-tube-used\r\n")
        self.assertEqual(c.line(), "JOB_TOO_BIG")
        self.assertEqual(c.line(), "USING default")


# ---------------------------------------------------------------- use

class UseTest(Case):

    def test_default_tube_used_at_start(self):
        self.assertEqual(self.c.cmd("list-tube-used"), "USING default")

    def test_use_switches_tube(self):
        c = self.c
        self.assertEqual(c.cmd("use a"), "USING a")
        self.assertEqual(c.cmd("list-tube-used"), "USING a")
        self.assertEqual(c.cmd("use b"), "USING b")
        self.assertEqual(c.cmd("list-tube-used"), "USING b")
        self.assertEqual(c.cmd("use default"), "USING default")
        self.assertEqual(c.cmd("use default"), "USING default")
        # each connection has its own used tube
        self.assertEqual(self.conn().cmd("list-tube-used"), "USING default")

    def test_longest_name_and_every_name_character(self):
        c = self.c
        long_name = "x" * 199 + "9"
        self.assertEqual(c.cmd("use " + long_name), "USING " + long_name)
        self.assertEqual(c.cmd("list-tube-used"), "USING " + long_name)
        self.assertIn(long_name, self.tubes(c))
        chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()"
        self.assertEqual(c.cmd("use " + chars), "USING " + chars)
        jid = c.put_id()
        self.assertEqual(self.job(c, jid)["tube"], chars)
        for name in ("(", ")", "$", "_", "/", ";", ".", "+", "0", "a-"):
            self.assertEqual(c.cmd("use " + name), "USING " + name)


# ---------------------------------------------------------------- watch / ignore

class WatchIgnoreTest(Case):

    def watched(self, c):
        return set(c.yaml("list-tubes-watched"))

    def test_watch(self):
        c = self.c
        self.assertEqual(self.watched(c), {"default"})
        self.assertEqual(c.cmd("watch a"), "WATCHING 2")
        self.assertEqual(c.cmd("watch b"), "WATCHING 3")
        self.assertEqual(c.cmd("watch a"), "WATCHING 3")
        self.assertEqual(c.cmd("watch default"), "WATCHING 3")
        self.assertEqual(self.watched(c), {"default", "a", "b"})
        self.assertEqual(self.watched(self.conn()), {"default"})

    def test_ignore(self):
        c = self.c
        self.assertEqual(c.cmd("watch a"), "WATCHING 2")
        self.assertEqual(c.cmd("ignore default"), "WATCHING 1")
        self.assertEqual(self.watched(c), {"a"})
        self.assertEqual(c.cmd("ignore a"), "NOT_IGNORED")
        self.assertEqual(self.watched(c), {"a"})
        self.assertEqual(c.cmd("ignore default"), "WATCHING 1")

    def test_ignore_last_default(self):
        self.assertEqual(self.c.cmd("ignore default"), "NOT_IGNORED")
        self.assertEqual(self.watched(self.c), {"default"})

    def test_ignore_unwatched_tube_is_not_an_error(self):
        c = self.c
        self.assertEqual(c.cmd("ignore nosuch"), "WATCHING 1")
        self.assertNotIn("nosuch", self.tubes(c))
        self.assertEqual(c.cmd("watch a"), "WATCHING 2")
        self.assertEqual(c.cmd("ignore b"), "WATCHING 2")

    def test_reserve_only_from_watched_tubes(self):
        c = self.c
        p = self.conn()
        self.assertEqual(p.cmd("use a"), "USING a")
        jid = p.put_id("in a")
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        self.assertEqual(c.cmd("watch a"), "WATCHING 2")
        self.assertEqual(c.cmd("ignore default"), "WATCHING 1")
        self.assertEqual(self.reserve(c), (jid, b"in a"))


# ---------------------------------------------------------------- tube lifetime

class TubeLifetimeTest(Case):

    def test_fresh_server_has_only_default(self):
        head, body = self.c.body_reply("list-tubes")
        self.assertEqual((head, body), ("OK 14", b"---\n- default\n"))

    def test_use_creates_and_leaving_destroys(self):
        c = self.c
        c.cmd("use a")
        self.assertEqual(self.tubes(c), {"default", "a"})
        self.assertEqual(self.tube(c, "a")["current-using"], "1")
        c.cmd("use b")
        self.assertEqual(self.tubes(c), {"default", "b"})
        self.assertEqual(c.cmd("stats-tube a"), "NOT_FOUND")
        c.cmd("use default")
        self.assertEqual(self.tubes(c), {"default"})

    def test_watch_creates_and_ignore_destroys(self):
        c = self.c
        c.cmd("watch a")
        self.assertEqual(self.tubes(c), {"default", "a"})
        self.assertEqual(self.tube(c, "a")["current-watching"], "1")
        c.cmd("ignore a")
        self.assertEqual(self.tubes(c), {"default"})

    def test_tube_shared_by_two_connections(self):
        c, d = self.c, self.conn()
        c.cmd("use a")
        d.cmd("watch a")
        c.cmd("use default")
        self.assertIn("a", self.tubes(c))
        d.cmd("ignore a")
        self.assertNotIn("a", self.tubes(c))

    def test_default_survives_when_unreferenced(self):
        c = self.c
        c.cmd("use a")
        c.cmd("watch a")
        c.cmd("ignore default")
        self.assertEqual(self.tubes(c), {"default", "a"})
        # (the harness's readiness probe may not be counted out yet)
        self.assertTrue(wait_until(lambda: self.tube(c, "default")["current-using"] == "0"))
        self.assertEqual(self.tube(c, "default")["current-watching"], "0")

    def test_jobs_keep_tube_alive(self):
        c = self.c
        c.cmd("use a")
        ready = c.put_id()
        delayed = c.put_id(delay=100)
        c.cmd("use default")
        self.assertIn("a", self.tubes(c))
        self.assertEqual(c.cmd("delete %d" % ready), "DELETED")
        self.assertIn("a", self.tubes(c))
        self.assertEqual(c.cmd("delete %d" % delayed), "DELETED")
        self.assertNotIn("a", self.tubes(c))

    def test_buried_and_reserved_jobs_keep_tube_alive(self):
        c = self.c
        c.cmd("use a")
        buried = self.buried_job(c)
        jid = c.put_id()
        self.assertEqual(self.reserve(c, "reserve-job %d" % jid)[0], jid)
        c.cmd("use default")
        self.assertIn("a", self.tubes(c))
        self.assertEqual(c.cmd("delete %d" % buried), "DELETED")
        self.assertIn("a", self.tubes(c))
        st = self.tube(c, "a")
        self.assertEqual(st["current-jobs-reserved"], "1")
        self.assertEqual(c.cmd("delete %d" % jid), "DELETED")
        self.assertNotIn("a", self.tubes(c))

    def test_closing_connection_releases_its_tubes(self):
        c = self.conn()
        c.cmd("use a")
        c.cmd("watch b")
        self.assertEqual(self.tubes(self.c), {"default", "a", "b"})
        c.close()
        self.assertTrue(wait_until(lambda: self.tubes(self.c) == {"default"}))

    def test_quit_releases_tubes_and_reservations(self):
        c = self.conn()
        jid = c.put_id("r")
        c.cmd("use a")
        self.assertEqual(self.reserve(c)[0], jid)
        self.assertEqual(self.state(self.c, jid), "reserved")
        c.send("quit\r\n")
        self.assertTrue(c.closed_by_peer())
        self.assertTrue(wait_until(lambda: self.tubes(self.c) == {"default"}))
        self.assertTrue(wait_until(lambda: self.state(self.c, jid) == "ready"))

    def test_lookups_do_not_create_tubes(self):
        c = self.c
        self.assertEqual(c.cmd("stats-tube a"), "NOT_FOUND")
        self.assertEqual(c.cmd("pause-tube a 10"), "NOT_FOUND")
        self.assertEqual(c.cmd("ignore a"), "WATCHING 1")
        self.assertEqual(self.tubes(c), {"default"})


# ---------------------------------------------------------------- reserve

class ReserveTest(Case):

    def test_priority_order_then_fifo(self):
        c = self.c
        pris = [5, 0, U32_MAX, 2147483648, 2147483647, 1, 5, 1024, 1023, 0, U32_MAX - 1]
        ids = [c.put_id(str(i), pri=p) for i, p in enumerate(pris)]
        want = [jid for _, jid in sorted(zip(pris, ids))]
        got = [self.reserve(c)[0] for _ in ids]
        self.assertEqual(got, want)
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")

    def test_fifo_within_priority(self):
        c = self.c
        ids = [c.put_id(str(i), pri=7) for i in range(30)]
        self.assertEqual([self.reserve(c) for _ in ids],
                         [(jid, str(i).encode()) for i, jid in enumerate(ids)])

    def test_order_across_watched_tubes(self):
        c = self.c
        p = self.conn()
        p.cmd("use a")
        a1 = p.put_id(pri=10)
        p.cmd("use b")
        b1 = p.put_id(pri=5)
        b2 = p.put_id(pri=10)
        p.cmd("use a")
        a2 = p.put_id(pri=5)
        c.cmd("watch a")
        c.cmd("watch b")
        got = [self.reserve(c)[0] for _ in range(4)]
        self.assertEqual(got, [b1, a2, a1, b2])

    def test_reserve_returns_ready_job(self):
        c = self.c
        jid = c.put_id("job")
        self.assertEqual(c.body_reply("reserve"), ("RESERVED %d 3" % jid, b"job"))
        st = self.job(c, jid)
        self.assertEqual((st["state"], st["reserves"]), ("reserved", "1"))
        self.assertEqual(self.tube(c, "default")["current-jobs-reserved"], "1")

    def test_reserve_waits_for_a_put(self):
        c = self.c
        c.send("reserve\r\n")
        self.assertQuiet(c)
        p = self.conn()
        jid = p.put_id("wake")
        self.assertEqual(c.line(), "RESERVED %d 4" % jid)
        self.assertEqual(c.exact(6), b"wake\r\n")

    def test_reserve_with_timeout_waits_for_a_put(self):
        c = self.c
        c.send("reserve-with-timeout 30\r\n")
        self.assertQuiet(c)
        jid = self.conn().put_id("wake")
        self.assertEqual(c.line(), "RESERVED %d 4" % jid)
        self.assertEqual(c.exact(6), b"wake\r\n")

    def test_commands_after_reserve_wait_for_it(self):
        c = self.c
        c.send("reserve\r\nlist-tube-used\r\n")
        self.assertQuiet(c)
        jid = self.conn().put_id("x")
        self.assertEqual(c.line(), "RESERVED %d 1" % jid)
        self.assertEqual(c.exact(3), b"x\r\n")
        self.assertEqual(c.line(), "USING default")

    def test_reserve_with_timeout_zero(self):
        c = self.c
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        jid = c.put_id("now")
        self.assertEqual(self.reserve(c), (jid, b"now"))
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")

    def test_half_close_while_waiting_times_out(self):
        c = self.c
        c.send("reserve\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.line(), "TIMED_OUT")

    def test_deadline_soon(self):
        c = self.c
        jid = c.put_id(ttr=1)
        self.assertEqual(self.reserve(c)[0], jid)
        # the whole 1 s TTR is inside the 1 s safety margin
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "DEADLINE_SOON")
        self.assertEqual(c.cmd("delete %d" % jid), "DELETED")
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")

    def test_delayed_and_buried_jobs_are_not_reserved(self):
        c = self.c
        c.put_id(delay=100)
        self.buried_job(c)
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")


# ---------------------------------------------------------------- reserve-job

class ReserveJobTest(Case):

    def test_ready_delayed_buried(self):
        c = self.c
        ready = c.put_id("r")
        delayed = c.put_id("d", delay=100)
        buried = self.buried_job(c, b"b")
        for jid, body in ((ready, b"r"), (delayed, b"d"), (buried, b"b")):
            self.assertEqual(c.body_reply("reserve-job %d" % jid),
                             ("RESERVED %d 1" % jid, body))
            self.assertEqual(self.state(c, jid), "reserved")
        self.assertEqual(self.job(c, buried)["reserves"], "2")
        st = self.tube(c, "default")
        self.assertEqual((st["current-jobs-reserved"], st["current-jobs-ready"],
                          st["current-jobs-delayed"], st["current-jobs-buried"]),
                         ("3", "0", "0", "0"))

    def test_reserved_job_is_not_found(self):
        c, d = self.c, self.conn()
        jid = c.put_id()
        self.assertEqual(self.reserve(c, "reserve-job %d" % jid)[0], jid)
        self.assertEqual(c.cmd("reserve-job %d" % jid), "NOT_FOUND")
        self.assertEqual(d.cmd("reserve-job %d" % jid), "NOT_FOUND")

    def test_missing_job(self):
        c = self.c
        self.assertEqual(c.cmd("reserve-job 1"), "NOT_FOUND")
        jid = c.put_id()
        c.cmd("delete %d" % jid)
        self.assertEqual(c.cmd("reserve-job %d" % jid), "NOT_FOUND")
        self.assertEqual(c.cmd("reserve-job 0"), "NOT_FOUND")

    def test_ignores_watch_list_and_pause(self):
        c, p = self.c, self.conn()
        p.cmd("use a")
        jid = p.put_id("elsewhere")
        self.assertEqual(p.cmd("pause-tube a 100"), "PAUSED")
        self.assertEqual(self.reserve(c, "reserve-job %d" % jid), (jid, b"elsewhere"))
        self.assertEqual(c.cmd("release %d 0 0" % jid), "RELEASED")
        self.assertEqual(self.state(c, jid), "ready")


# ---------------------------------------------------------------- delete

class DeleteTest(Case):

    def test_delete_in_each_state(self):
        c = self.c
        ready = c.put_id()
        delayed = c.put_id(delay=100)
        buried = self.buried_job(c)
        reserved = c.put_id()
        self.assertEqual(self.reserve(c)[0], ready)
        # ready is now reserved; reserve the other by id
        self.assertEqual(self.reserve(c, "reserve-job %d" % reserved)[0], reserved)
        self.assertEqual(c.cmd("release %d 0 0" % ready), "RELEASED")
        for jid in (ready, delayed, buried, reserved):
            self.assertEqual(c.cmd("delete %d" % jid), "DELETED")
            self.assertEqual(c.cmd("peek %d" % jid), "NOT_FOUND")
            self.assertEqual(c.cmd("stats-job %d" % jid), "NOT_FOUND")
            self.assertEqual(c.cmd("delete %d" % jid), "NOT_FOUND")
        self.assertEqual(self.tube(c, "default")["cmd-delete"], "4")

    def test_job_reserved_by_another_connection(self):
        c, d = self.c, self.conn()
        jid = c.put_id()
        self.assertEqual(self.reserve(d)[0], jid)
        self.assertEqual(c.cmd("delete %d" % jid), "NOT_FOUND")
        self.assertEqual(self.state(c, jid), "reserved")
        self.assertEqual(d.cmd("delete %d" % jid), "DELETED")

    def test_missing(self):
        self.assertEqual(self.c.cmd("delete 1"), "NOT_FOUND")
        self.assertEqual(self.c.cmd("delete 0"), "NOT_FOUND")
        self.assertEqual(self.c.cmd("delete 18446744073709551615"), "NOT_FOUND")


# ---------------------------------------------------------------- release / bury / touch

class ReleaseTest(Case):

    def test_release_to_ready_with_new_priority(self):
        c = self.c
        first = c.put_id("1", pri=10)
        second = c.put_id("2", pri=10)
        self.assertEqual(self.reserve(c)[0], first)
        self.assertEqual(self.reserve(c)[0], second)
        self.assertEqual(c.cmd("release %d 20 0" % first), "RELEASED")
        self.assertEqual(c.cmd("release %d 5 0" % second), "RELEASED")
        st = self.job(c, second)
        self.assertEqual((st["state"], st["pri"], st["releases"], st["reserves"]),
                         ("ready", "5", "1", "1"))
        self.assertEqual(self.reserve(c)[0], second)
        self.assertEqual(self.reserve(c)[0], first)

    def test_release_with_delay(self):
        c = self.c
        jid = c.put_id()
        self.reserve(c)
        self.assertEqual(c.cmd("release %d 3 100" % jid), "RELEASED")
        st = self.job(c, jid)
        self.assertEqual((st["state"], st["delay"], st["pri"]), ("delayed", "100", "3"))
        self.assertEqual(self.peek(c, "peek-delayed")[0], jid)

    def test_only_by_the_reserving_connection(self):
        c, d = self.c, self.conn()
        jid = c.put_id()
        self.assertEqual(c.cmd("release %d 0 0" % jid), "NOT_FOUND")  # ready
        self.reserve(c)
        self.assertEqual(d.cmd("release %d 0 0" % jid), "NOT_FOUND")
        self.assertEqual(self.state(c, jid), "reserved")
        self.assertEqual(c.cmd("release %d 0 0" % jid), "RELEASED")
        self.assertEqual(c.cmd("release %d 0 0" % jid), "NOT_FOUND")
        self.assertEqual(c.cmd("release 999 0 0"), "NOT_FOUND")


class BuryTest(Case):

    def test_bury(self):
        c = self.c
        jid = c.put_id(pri=4)
        self.reserve(c)
        self.assertEqual(c.cmd("bury %d 9" % jid), "BURIED")
        st = self.job(c, jid)
        self.assertEqual((st["state"], st["pri"], st["buries"]), ("buried", "9", "1"))
        self.assertEqual(self.tube(c, "default")["current-jobs-buried"], "1")
        self.assertEqual(c.cmd("bury %d 9" % jid), "NOT_FOUND")

    def test_only_by_the_reserving_connection(self):
        c, d = self.c, self.conn()
        jid = c.put_id()
        self.assertEqual(c.cmd("bury %d 0" % jid), "NOT_FOUND")  # ready
        self.reserve(c)
        self.assertEqual(d.cmd("bury %d 0" % jid), "NOT_FOUND")
        self.assertEqual(self.state(c, jid), "reserved")
        self.assertEqual(c.cmd("bury 999 0"), "NOT_FOUND")
        self.assertEqual(c.cmd("bury %d 0" % jid), "BURIED")

    def test_buried_list_is_fifo_by_bury_time(self):
        c = self.c
        a, b, x = c.put_id(pri=0), c.put_id(pri=0), c.put_id(pri=0)
        for jid in (b, x, a):
            self.assertEqual(self.reserve(c, "reserve-job %d" % jid)[0], jid)
            # a lower priority must not reorder the buried list
            self.assertEqual(c.cmd("bury %d %d" % (jid, 100 - jid)), "BURIED")
        self.assertEqual(self.peek(c, "peek-buried")[0], b)
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")
        self.assertEqual(self.peek(c, "peek-buried")[0], x)
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")
        self.assertEqual(self.peek(c, "peek-buried")[0], a)


class TouchTest(Case):

    def test_touch(self):
        c, d = self.c, self.conn()
        jid = c.put_id()
        self.assertEqual(c.cmd("touch %d" % jid), "NOT_FOUND")  # ready
        self.reserve(c)
        self.assertEqual(c.cmd("touch %d" % jid), "TOUCHED")
        self.assertEqual(c.cmd("touch %d" % jid), "TOUCHED")
        self.assertEqual(d.cmd("touch %d" % jid), "NOT_FOUND")
        self.assertEqual(c.cmd("touch 999"), "NOT_FOUND")
        st = self.job(c, jid)
        self.assertEqual((st["state"], st["reserves"]), ("reserved", "1"))
        c.cmd("bury %d 0" % jid)
        self.assertEqual(c.cmd("touch %d" % jid), "NOT_FOUND")


# ---------------------------------------------------------------- peek

class PeekTest(Case):

    def test_empty(self):
        c = self.c
        for line in ("peek 1", "peek-ready", "peek-delayed", "peek-buried"):
            self.assertEqual(c.cmd(line), "NOT_FOUND", line)

    def test_peek_by_id_any_tube_any_state(self):
        c, p = self.c, self.conn()
        p.cmd("use a")
        ready = p.put_id("ready")
        delayed = p.put_id("delayed", delay=100)
        buried = self.buried_job(p, b"buried")
        reserved = p.put_id("reserved")
        self.assertEqual(self.reserve(p, "reserve-job %d" % reserved)[0], reserved)
        for jid, body in ((ready, b"ready"), (delayed, b"delayed"),
                          (buried, b"buried"), (reserved, b"reserved")):
            self.assertEqual(c.body_reply("peek %d" % jid),
                             ("FOUND %d %d" % (jid, len(body)), body))
        self.assertEqual(self.state(c, reserved), "reserved")
        self.assertEqual(self.state(c, ready), "ready")

    def test_peek_ready_picks_next_to_reserve(self):
        c = self.c
        c.put_id("a", pri=5)
        b = c.put_id("b", pri=1)
        c.put_id("c", pri=1)
        self.assertEqual(self.peek(c, "peek-ready"), (b, b"b"))
        self.assertEqual(self.peek(c, "peek-ready"), (b, b"b"))
        self.assertEqual(self.reserve(c)[0], b)

    def test_peek_delayed_picks_soonest(self):
        c = self.c
        c.put_id("late", delay=200)
        soon = c.put_id("soon", delay=100)
        c.put_id("later", delay=300)
        self.assertEqual(self.peek(c, "peek-delayed"), (soon, b"soon"))

    def test_peek_buried(self):
        c = self.c
        first = self.buried_job(c, b"first")
        self.buried_job(c, b"second")
        self.assertEqual(self.peek(c, "peek-buried"), (first, b"first"))

    def test_only_the_used_tube(self):
        c = self.c
        c.cmd("use a")
        c.put_id("r")
        c.put_id("d", delay=100)
        self.buried_job(c)
        c.cmd("use b")
        for line in ("peek-ready", "peek-delayed", "peek-buried"):
            self.assertEqual(c.cmd(line), "NOT_FOUND", line)
        # watching does not matter either
        c.cmd("watch a")
        self.assertEqual(c.cmd("peek-ready"), "NOT_FOUND")
        c.cmd("use a")
        for line in ("peek-ready", "peek-delayed", "peek-buried"):
            self.assertIsNotNone(self.peek(c, line), line)


# ---------------------------------------------------------------- kick / kick-job

class KickTest(Case):

    def test_empty(self):
        self.assertEqual(self.c.cmd("kick 10"), "KICKED 0")
        self.assertEqual(self.c.cmd("kick 0"), "KICKED 0")

    def test_kick_buried_up_to_bound(self):
        c = self.c
        ids = [self.buried_job(c) for _ in range(3)]
        self.assertEqual(c.cmd("kick 0"), "KICKED 0")
        self.assertEqual(c.cmd("kick 2"), "KICKED 2")
        self.assertEqual([self.state(c, j) for j in ids], ["ready", "ready", "buried"])
        self.assertEqual(self.job(c, ids[0])["kicks"], "1")
        self.assertEqual(c.cmd("kick 5"), "KICKED 1")
        self.assertEqual(c.cmd("kick 5"), "KICKED 0")

    def test_buried_before_delayed(self):
        c = self.c
        delayed = [c.put_id(delay=100) for _ in range(2)]
        buried = [self.buried_job(c) for _ in range(2)]
        self.assertEqual(c.cmd("kick 10"), "KICKED 2")
        self.assertEqual([self.state(c, j) for j in buried], ["ready", "ready"])
        self.assertEqual([self.state(c, j) for j in delayed], ["delayed", "delayed"])
        self.assertEqual(c.cmd("kick 10"), "KICKED 2")
        self.assertEqual([self.state(c, j) for j in delayed], ["ready", "ready"])
        self.assertEqual(c.cmd("kick 10"), "KICKED 0")

    def test_delayed_kicked_soonest_first(self):
        c = self.c
        late = c.put_id(delay=300)
        soon = c.put_id(delay=100)
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")
        self.assertEqual((self.state(c, soon), self.state(c, late)), ("ready", "delayed"))
        self.assertEqual(self.job(c, soon)["kicks"], "1")

    def test_only_the_used_tube(self):
        c = self.c
        c.cmd("use a")
        self.buried_job(c)
        c.put_id(delay=100)
        c.cmd("use b")
        c.cmd("watch a")
        self.assertEqual(c.cmd("kick 10"), "KICKED 0")
        c.cmd("use a")
        self.assertEqual(c.cmd("kick 10"), "KICKED 1")
        self.assertEqual(c.cmd("kick 10"), "KICKED 1")


class KickJobTest(Case):

    def test_buried_and_delayed(self):
        c = self.c
        buried = self.buried_job(c)
        delayed = c.put_id(delay=100)
        self.assertEqual(c.cmd("kick-job %d" % buried), "KICKED")
        self.assertEqual(c.cmd("kick-job %d" % delayed), "KICKED")
        for jid in (buried, delayed):
            st = self.job(c, jid)
            self.assertEqual((st["state"], st["kicks"]), ("ready", "1"))

    def test_not_kickable(self):
        c = self.c
        ready = c.put_id()
        reserved = c.put_id()
        self.reserve(c, "reserve-job %d" % reserved)
        self.assertEqual(c.cmd("kick-job %d" % ready), "NOT_FOUND")
        self.assertEqual(c.cmd("kick-job %d" % reserved), "NOT_FOUND")
        self.assertEqual(self.conn().cmd("kick-job %d" % reserved), "NOT_FOUND")
        self.assertEqual(c.cmd("kick-job 999"), "NOT_FOUND")
        self.assertEqual(self.state(c, ready), "ready")
        self.assertEqual(self.state(c, reserved), "reserved")

    def test_any_tube(self):
        c, p = self.c, self.conn()
        p.cmd("use a")
        jid = self.buried_job(p)
        self.assertEqual(c.cmd("kick-job %d" % jid), "KICKED")
        self.assertEqual(self.state(c, jid), "ready")


# ---------------------------------------------------------------- stats-job / stats-tube

def raw_keys(body):
    text = body.decode()
    assert text.startswith("---\n") and text.endswith("\n"), text
    return [line.split(": ", 1)[0] for line in text[4:-1].split("\n")]


class StatsJobTest(Case):

    def test_fields(self):
        c = self.c
        c.cmd("use work")
        jid = c.put_id("x", pri=1234, delay=0, ttr=0)
        head, body = c.body_reply("stats-job %d" % jid)
        self.assertEqual(head, "OK %d" % len(body))
        self.assertEqual(raw_keys(body), STATS_JOB_KEYS)
        st = bstest.parse_yaml(body.decode())
        want = {"id": str(jid), "tube": "work", "state": "ready", "pri": "1234",
                "delay": "0", "ttr": "1", "time-left": "0", "file": "0",
                "reserves": "0", "timeouts": "0", "releases": "0",
                "buries": "0", "kicks": "0"}
        self.assertEqual({k: st[k] for k in want}, want)
        self.assertTrue(st["age"].isdigit())

    def test_counters_and_states(self):
        c = self.c
        jid = c.put_id(ttr=100)
        self.reserve(c)
        st = self.job(c, jid)
        self.assertEqual(st["state"], "reserved")
        self.assertIn(st["time-left"], ("99", "100", "98"))
        c.cmd("release %d 1 0" % jid)
        self.reserve(c)
        c.cmd("bury %d 2" % jid)
        self.assertEqual(self.state(c, jid), "buried")
        c.cmd("kick 1")
        self.reserve(c)
        c.cmd("release %d 3 100" % jid)
        st = self.job(c, jid)
        self.assertEqual(st["state"], "delayed")
        self.assertTrue(0 < int(st["time-left"]) <= 100, st["time-left"])
        c.cmd("kick-job %d" % jid)
        st = self.job(c, jid)
        self.assertEqual({k: st[k] for k in ("reserves", "releases", "buries",
                                             "kicks", "timeouts", "pri", "state")},
                         {"reserves": "3", "releases": "2", "buries": "1",
                          "kicks": "2", "timeouts": "0", "pri": "3", "state": "ready"})

    def test_missing(self):
        self.assertEqual(self.c.cmd("stats-job 1"), "NOT_FOUND")
        self.assertEqual(self.c.cmd("stats-job 18446744073709551615"), "NOT_FOUND")

    @unittest.skipIf(bstest.REFERENCE, "1.12 does not quote the tube name; 1.13 does")
    def test_tube_is_quoted(self):
        c = self.c
        jid = c.put_id()
        head, body = c.body_reply("stats-job %d" % jid)
        self.assertIn(b'\ntube: "default"\n', body)
        self.assertIn(b"\nstate: ready\n", body)


class StatsTubeTest(Case):

    def test_fields(self):
        c = self.c
        # the harness's readiness probe may not be counted out yet
        self.assertTrue(wait_until(lambda: self.tube(c, "default")["current-using"] == "1"))
        head, body = c.body_reply("stats-tube default")
        self.assertEqual(head, "OK %d" % len(body))
        self.assertEqual(raw_keys(body), STATS_TUBE_KEYS)
        st = bstest.parse_yaml(body.decode())
        self.assertEqual(st["name"], "default")
        for k in STATS_TUBE_KEYS[1:]:
            want = "1" if k in ("current-using", "current-watching") else "0"
            self.assertEqual(st[k], want, k)

    def test_job_counts(self):
        c, d = self.c, self.conn()
        c.cmd("use t")
        c.put_id(pri=1023)                      # urgent, ready
        c.put_id(pri=1024)                      # ready
        c.put_id(delay=100)                     # delayed
        self.buried_job(c)                      # buried
        jid = c.put_id(pri=0)
        self.reserve(c, "reserve-job %d" % jid)  # reserved
        d.cmd("watch t")
        st = self.tube(c, "t")
        got = {k: st[k] for k in STATS_TUBE_KEYS[1:10]}
        self.assertEqual(got, {"current-jobs-urgent": "1", "current-jobs-ready": "2",
                               "current-jobs-reserved": "1", "current-jobs-delayed": "1",
                               "current-jobs-buried": "1", "total-jobs": "5",
                               "current-using": "1", "current-watching": "1",
                               "current-waiting": "0"})
        self.assertEqual(c.cmd("delete %d" % jid), "DELETED")
        self.assertEqual(self.tube(c, "t")["cmd-delete"], "1")

    def test_waiting(self):
        c = self.c
        w = self.conn()
        w.send("reserve\r\n")
        self.assertTrue(wait_until(lambda: self.tube(c, "default")["current-waiting"] == "1"))
        jid = c.put_id()
        self.assertEqual(w.line(), "RESERVED %d 1" % jid)
        self.assertEqual(self.tube(c, "default")["current-waiting"], "0")

    def test_missing(self):
        self.assertEqual(self.c.cmd("stats-tube nosuch"), "NOT_FOUND")

    @unittest.skipIf(bstest.REFERENCE, "1.12 does not quote the tube name; 1.13 does")
    def test_name_is_quoted(self):
        head, body = self.c.body_reply("stats-tube default")
        self.assertTrue(body.startswith(b'---\nname: "default"\n'), body)


# ---------------------------------------------------------------- list-*

class ListTest(Case):

    def test_list_tubes_format(self):
        c = self.c
        c.cmd("use aa")
        head, body = c.body_reply("list-tubes")
        self.assertEqual(head, "OK %d" % len(body))
        self.assertTrue(body.startswith(b"---\n"))
        self.assertEqual(sorted(body[4:].split(b"\n")), [b"", b"- aa", b"- default"])

    def test_list_tubes_watched_format(self):
        c = self.c
        self.assertEqual(c.body_reply("list-tubes-watched"), ("OK 14", b"---\n- default\n"))
        c.cmd("watch bb")
        c.cmd("ignore default")
        self.assertEqual(c.body_reply("list-tubes-watched"), ("OK 9", b"---\n- bb\n"))
        c.cmd("watch c")
        self.assertEqual(set(c.yaml("list-tubes-watched")), {"bb", "c"})

    def test_list_tube_used(self):
        c = self.c
        self.assertEqual(c.cmd("list-tube-used"), "USING default")
        c.cmd("use q")
        self.assertEqual(c.cmd("list-tube-used"), "USING q")
        self.assertEqual(c.cmd("list-tube-used"), "USING q")


# ---------------------------------------------------------------- pause-tube

class PauseTubeTest(Case):

    def test_replies(self):
        c = self.c
        self.assertEqual(c.cmd("pause-tube default 100"), "PAUSED")
        self.assertEqual(c.cmd("pause-tube nosuch 100"), "NOT_FOUND")
        c.cmd("use other")
        self.assertEqual(c.cmd("pause-tube other 0"), "PAUSED")
        self.assertEqual(c.cmd("pause-tube other %d" % U32_MAX), "PAUSED")
        st = self.tube(c, "default")
        self.assertEqual((st["pause"], st["cmd-pause-tube"]), ("100", "1"))
        self.assertTrue(0 < int(st["pause-time-left"]) <= 100)
        st = self.tube(c, "other")
        self.assertEqual((st["pause"], st["cmd-pause-tube"]), (str(U32_MAX), "2"))

    def test_paused_tube_is_not_reserved_from(self):
        c = self.c
        jid = c.put_id()
        self.assertEqual(c.cmd("pause-tube default 100"), "PAUSED")
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        # other commands still see the job
        self.assertEqual(self.peek(c, "peek-ready")[0], jid)
        self.assertEqual(self.reserve(c, "reserve-job %d" % jid)[0], jid)


# ---------------------------------------------------------------- quit

class QuitTest(Case):

    def test_quit(self):
        c = self.c
        c.send("quit\r\n")
        self.assertTrue(c.closed_by_peer())
        self.assertAlive(self.conn())

    def test_nothing_after_quit_is_run(self):
        c = self.c
        c.send("use gone\r\nquit\r\nuse x\r\nput 0 0 60 1\r\nx\r\n")
        self.assertEqual(c.line(), "USING gone")
        self.assertTrue(c.closed_by_peer())
        d = self.conn()
        self.assertEqual(d.cmd("peek 1"), "NOT_FOUND")
        self.assertNotIn("x", self.tubes(d))


# ---------------------------------------------------------------- pipelining and split writes

class PipelineTest(Case):

    def test_many_commands_in_one_write(self):
        c = self.c
        n = 300
        data = b"use pipe\r\nwatch pipe\r\nignore default\r\n"
        for i in range(n):
            body = b"job %d\r\n" % i
            data += b"put %d 0 60 %d\r\n%s\r\n" % (i % 3, len(body), body)
        data += b"list-tube-used\r\nstats-job 1\r\npeek-ready\r\n"
        data += b"reserve\r\n" * 3
        data += b"delete 1\r\nkick 10\r\nbogus\r\nquit\r\n"
        c.send(data)
        self.assertEqual(c.line(), "USING pipe")
        self.assertEqual(c.line(), "WATCHING 2")
        self.assertEqual(c.line(), "WATCHING 1")
        for i in range(n):
            self.assertEqual(c.line(), "INSERTED %d" % (i + 1))
        self.assertEqual(c.line(), "USING pipe")
        head = c.line()
        self.assertTrue(head.startswith("OK "), head)
        stats = bstest.parse_yaml(c.exact(int(head[3:]) + 2)[:-2].decode())
        self.assertEqual((stats["id"], stats["tube"]), ("1", "pipe"))
        self.assertEqual(c.line(), "FOUND 1 7")
        self.assertEqual(c.exact(9), b"job 0\r\n\r\n")
        for jid in (1, 4, 7):   # priority 0 jobs in id order
            body = b"job %d\r\n" % (jid - 1)
            self.assertEqual(c.line(), "RESERVED %d %d" % (jid, len(body)))
            self.assertEqual(c.exact(len(body) + 2), body + b"\r\n")
        self.assertEqual(c.line(), "DELETED")
        self.assertEqual(c.line(), "KICKED 0")
        self.assertEqual(c.line(), "UNKNOWN_COMMAND")
        self.assertTrue(c.closed_by_peer())

    def test_replies_in_order_across_blocking_reserve(self):
        c = self.c
        c.send("put 5 0 60 1\r\na\r\nput 1 0 60 1\r\nb\r\nreserve\r\nreserve\r\n"
               "reserve\r\nlist-tube-used\r\n")
        self.assertEqual(c.line(), "INSERTED 1")
        self.assertEqual(c.line(), "INSERTED 2")
        self.assertEqual(c.line(), "RESERVED 2 1")
        self.assertEqual(c.exact(3), b"b\r\n")
        self.assertEqual(c.line(), "RESERVED 1 1")
        self.assertEqual(c.exact(3), b"a\r\n")
        self.assertQuiet(c)
        self.conn().put("c")
        self.assertEqual(c.line(), "RESERVED 3 1")
        self.assertEqual(c.exact(3), b"c\r\n")
        self.assertEqual(c.line(), "USING default")


class SplitWriteTest(Case):

    def setUp(self):
        super().setUp()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def trickle(self, data, sync=True):
        """Send data one byte per write; with sync, make sure (as far as a
        client can) that the server reads each byte on its own."""
        for i in range(len(data)):
            self.c.send(data[i:i + 1])
            if sync:
                self.barrier()

    def test_put_byte_by_byte(self):
        c = self.c
        body = b"ab\r\ncd"
        self.trickle(b"put 1 0 60 %d\r\n%s\r\n" % (len(body), body))
        self.assertEqual(c.line(), "INSERTED 1")
        self.trickle(b"reserve\r\n")
        self.assertEqual(c.line(), "RESERVED 1 6")
        self.assertEqual(c.exact(8), body + b"\r\n")

    def test_commands_byte_by_byte(self):
        c = self.c
        self.trickle(b"use split\r\n")
        self.assertEqual(c.line(), "USING split")
        self.trickle(b"watch split\r\nlist-tube-used\r\n", sync=False)
        self.assertEqual(c.line(), "WATCHING 2")
        self.assertEqual(c.line(), "USING split")

    def test_no_reply_before_line_end(self):
        c = self.c
        c.send(b"list-tube-used")
        self.assertQuiet(c)
        c.send(b"\r")
        self.assertQuiet(c)
        c.send(b"\n")
        self.assertEqual(c.line(), "USING default")

    def test_no_reply_before_body_end(self):
        c = self.c
        c.send(b"put 0 0 60 4\r\nab")
        self.assertQuiet(c)
        c.send(b"cd\r")
        self.assertQuiet(c)
        c.send(b"\nput 0 0 60 1\r")
        self.assertEqual(c.line(), "INSERTED 1")
        c.send(b"\nz\r\n")
        self.assertEqual(c.line(), "INSERTED 2")
        self.assertEqual(self.peek(c, "peek 1"), (1, b"abcd"))

    def test_body_split_in_chunks(self):
        c = self.c
        body = bytes(range(256)) * 40
        data = b"put 0 0 60 %d\r\n%s\r\n" % (len(body), body)
        for i in range(0, len(data), 997):
            c.send(data[i:i + 997])
        self.assertEqual(c.line(), "INSERTED 1")
        self.assertEqual(self.reserve(c), (1, body))


if __name__ == "__main__":
    unittest.main()
