"""stats, stats-tube, stats-job and the list-* commands: every key of
beanstalkd 1.13 in its exact order, the exact byte framing, and values that
are right after a known sequence of commands.
"""
import os
import re
import subprocess
import time
import unittest

import bstest

# Key orders copied from STATS_FMT, STATS_TUBE_FMT and STATS_JOB_FMT in
# beanstalkd 1.13's prot.c. Clients parse by key, but monitoring scripts
# diff and grep the raw text, so the order is part of the protocol.
# True when the suite runs our server with a durable store (make check-store).
STORE_MODE = os.environ.get("BS_STORE_ARGS") is not None

STATS_KEYS = """
current-jobs-urgent current-jobs-ready current-jobs-reserved
current-jobs-delayed current-jobs-buried cmd-put cmd-peek cmd-peek-ready
cmd-peek-delayed cmd-peek-buried cmd-reserve cmd-reserve-with-timeout
cmd-delete cmd-release cmd-use cmd-watch cmd-ignore cmd-bury cmd-kick
cmd-touch cmd-stats cmd-stats-job cmd-stats-tube cmd-list-tubes
cmd-list-tube-used cmd-list-tubes-watched cmd-pause-tube job-timeouts
total-jobs max-job-size current-tubes current-connections current-producers
current-workers current-waiting total-connections pid version rusage-utime
rusage-stime uptime binlog-oldest-index binlog-current-index
binlog-records-migrated binlog-records-written binlog-max-size draining id
hostname os platform
""".split()

STATS_TUBE_KEYS = """
name current-jobs-urgent current-jobs-ready current-jobs-reserved
current-jobs-delayed current-jobs-buried total-jobs current-using
current-watching current-waiting cmd-delete cmd-pause-tube pause
pause-time-left
""".split()

STATS_JOB_KEYS = """
id tube state pri age delay ttr time-left file reserves timeouts releases
buries kicks
""".split()

CMD_KEYS = [k for k in STATS_KEYS if k.startswith("cmd-")]

# Keys whose values are strings; 1.13 quotes them, 1.12 only quotes version.
STATS_STRINGS = ("version", "hostname", "os", "platform")


wait_until = bstest.wait_until

def unquote(v):
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


class StatsBase(bstest.ServerTest):

    def raw(self, line, c=None):
        """Send a command answered with "OK <n>\\r\\n<n bytes>\\r\\n"; check the
        framing byte by byte and return the n-byte body."""
        c = c or self.c
        c.send(line + "\r\n")
        head = c.line()
        m = re.fullmatch(r"OK (\d+)", head)
        self.assertIsNotNone(m, "%r answered %r" % (line, head))
        n = int(m.group(1))
        data = c.exact(n + 2)
        body, trailer = data[:n], data[n:]
        self.assertEqual(trailer, b"\r\n", "%r: body is not exactly %d bytes then CRLF" % (line, n))
        self.assertTrue(body.startswith(b"---\n"), body[:20])
        self.assertTrue(body.endswith(b"\n"), body[-20:])
        self.assertNotIn(b"\r", body)
        # Nothing extra follows: the next reply is the next command's.
        self.assertEqual(c.cmd("list-tube-used")[:6], "USING ")
        return body

    def ordered(self, line, c=None):
        """The reply of a stats command as a list of (key, raw value)."""
        body = self.raw(line, c).decode("latin-1")
        lines = body.split("\n")
        self.assertEqual(lines[0], "---")
        self.assertEqual(lines[-1], "")
        out = []
        for l in lines[1:-1]:
            m = re.fullmatch(r"([a-z-]+): (.*)", l)
            self.assertIsNotNone(m, "bad YAML line %r in %r" % (l, line))
            out.append((m.group(1), m.group(2)))
        return out

    def stats(self, line="stats", c=None):
        return {k: unquote(v) for k, v in self.ordered(line, c)}

    def wait_stat(self, key, value, c=None, timeout=5.0):
        c = c or self.c
        ok = wait_until(lambda: c.yaml("stats")[key] == str(value), timeout)
        self.assertTrue(ok, "stats %s stayed %s, expected %s" % (key, c.yaml("stats")[key], value))


class StatsFormatTest(StatsBase):

    def test_stats_keys_in_order(self):
        keys = [k for k, _ in self.ordered("stats")]
        # With a durable store our server reports it in keys of its own,
        # after every 1.13 key (run with BS_STORE_ARGS).
        if STORE_MODE:
            extra = keys[len(STATS_KEYS):]
            self.assertTrue(extra and all(k.startswith("store-") for k in extra), extra)
            keys = keys[:len(STATS_KEYS)]
        self.assertEqual(keys, STATS_KEYS)

    def test_stats_tube_keys_in_order(self):
        self.assertEqual([k for k, _ in self.ordered("stats-tube default")], STATS_TUBE_KEYS)

    def test_stats_job_keys_in_order(self):
        jid = self.c.put_id()
        self.assertEqual([k for k, _ in self.ordered("stats-job %d" % jid)], STATS_JOB_KEYS)

    def test_stats_value_syntax(self):
        for k, v in self.ordered("stats"):
            if k == "version":
                self.assertRegex(v, r'^"[^"\n]+"$', "version is a quoted string")
            elif k in STATS_STRINGS:
                self.assertTrue(unquote(v), k)
            elif k in ("rusage-utime", "rusage-stime"):
                self.assertRegex(v, r"^\d+\.\d{6}$", k)
            elif k == "draining":
                self.assertEqual(v, "false")
            elif k == "id":
                self.assertRegex(v, r"^[0-9a-f]{16}$", k)
            elif k == "store-changes-per-commit":
                self.assertRegex(v, r"^\d+\.\d\d$", k)
            elif k == "store-sync-mode":
                self.assertIn(v, ('"always"', '"interval"', '"never"'), k)
            else:
                self.assertRegex(v, r"^\d+$", k)

    def test_stats_identity_values(self):
        s = self.stats()
        self.assertEqual(int(s["pid"]), self.server.proc.pid)
        u = os.uname()
        self.assertEqual(s["hostname"], u.nodename)
        self.assertEqual(s["os"], u.version)
        self.assertEqual(s["platform"], u.machine)
        # The instance id is fixed for the life of the process.
        self.assertEqual(self.stats()["id"], s["id"])
        self.assertEqual(s["draining"], "false")
        self.assertEqual(s["max-job-size"], "65535")
        # No -b: the binlog counters are zero.
        for k in ("binlog-oldest-index", "binlog-current-index",
                  "binlog-records-migrated", "binlog-records-written"):
            self.assertEqual(s[k], "0", k)

    def test_version_matches_dash_v(self):
        out = subprocess.run([bstest.BINARY, "-v"], capture_output=True, timeout=10).stdout.decode()
        self.assertIn(self.stats()["version"], out)

    # beanstalkd 1.13 quotes every string value; 1.12 (the Debian package the
    # reference runs use) leaves hostname, os, platform, name and tube bare.
    @unittest.skipIf(bstest.REFERENCE, "stock 1.12 does not quote hostname/os/platform/name/tube")
    def test_strings_quoted_as_in_1_13(self):
        u = os.uname()
        body = self.raw("stats")
        self.assertIn(b'\nversion: "', body)
        self.assertIn(('\nhostname: "%s"\n' % u.nodename).encode(), body)
        self.assertIn(('\nos: "%s"\n' % u.version).encode(), body)
        self.assertIn(('\nplatform: "%s"\n' % u.machine).encode(), body)
        self.assertIn(b'---\nname: "default"\n', self.raw("stats-tube default"))
        jid = self.c.put_id()
        self.assertIn(b'\ntube: "default"\n', self.raw("stats-job %d" % jid))

    def test_fresh_server_counters_zero(self):
        s = self.stats()
        for k in CMD_KEYS:
            self.assertEqual(s[k], "1" if k == "cmd-stats" else "0", k)
        for k in ("current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved",
                  "current-jobs-delayed", "current-jobs-buried", "job-timeouts",
                  "total-jobs", "current-waiting"):
            self.assertEqual(s[k], "0", k)
        self.assertEqual(s["current-tubes"], "1")

    def test_list_tubes_raw(self):
        self.assertEqual(self.raw("list-tubes"), b"---\n- default\n")
        self.c.cmd("use alpha")
        self.c.cmd("watch beta")
        self.assertEqual(self.raw("list-tubes"), b"---\n- default\n- alpha\n- beta\n")
        self.assertEqual(self.raw("list-tubes-watched"), b"---\n- default\n- beta\n")
        self.assertEqual(self.c.cmd("list-tube-used"), "USING alpha")
        self.c.cmd("ignore default")
        self.assertEqual(self.raw("list-tubes-watched"), b"---\n- beta\n")
        # A tube nobody uses, watches or fills disappears.
        self.c.cmd("use default")
        self.assertEqual(self.raw("list-tubes"), b"---\n- default\n- beta\n")
        self.assertEqual(self.c.yaml("list-tubes"), ["default", "beta"])

    def test_list_tubes_exact_length_with_long_names(self):
        name = "n" * 200
        self.assertEqual(self.c.cmd("use " + name), "USING " + name)
        body = self.raw("list-tubes")
        self.assertEqual(body, b"---\n- default\n- " + name.encode() + b"\n")

    def test_stats_tube_and_job_not_found(self):
        self.assertEqual(self.c.cmd("stats-tube nosuch"), "NOT_FOUND")
        self.assertEqual(self.c.cmd("stats-job 99"), "NOT_FOUND")


class StatsValuesTest(StatsBase):
    server_args = ("-z", "4096")

    def test_known_sequence(self):
        c = self.c
        base = self.stats()  # cmd-stats 1
        self.assertEqual(base["max-job-size"], "4096")
        self.assertEqual(c.cmd("use t1"), "USING t1")                      # use 1
        j1 = c.put_id(b"one", pri=0)                                       # put 1
        j2 = c.put_id(b"two", pri=1023)                                    # put 2
        j3 = c.put_id(b"three", pri=1024)                                  # put 3
        j4 = c.put_id(b"four", pri=5, delay=100)                           # put 4
        self.assertEqual(c.put(b"x" * 4097), "JOB_TOO_BIG")               # put 5
        self.assertEqual(c.cmd("watch t1"), "WATCHING 2")                  # watch 1
        self.assertEqual(c.cmd("ignore default"), "WATCHING 1")            # ignore 1
        self.assertEqual(c.body_reply("peek %d" % j3)[1], b"three")        # peek 1
        self.assertEqual(c.body_reply("peek-ready")[0], "FOUND %d 3" % j1)  # peek-ready 1
        self.assertEqual(c.body_reply("peek-delayed")[0], "FOUND %d 4" % j4)  # peek-delayed 1
        self.assertEqual(c.cmd("peek-buried"), "NOT_FOUND")                # peek-buried 1
        self.assertEqual(c.body_reply("reserve")[0], "RESERVED %d 3" % j1)  # reserve 1
        self.assertEqual(c.body_reply("reserve-with-timeout 0")[0], "RESERVED %d 3" % j2)  # rwt 1
        self.assertEqual(c.cmd("release %d 1023 0" % j2), "RELEASED")      # release 1
        self.assertEqual(c.body_reply("reserve")[0], "RESERVED %d 3" % j2)  # reserve 2
        self.assertEqual(c.cmd("bury %d 1023" % j2), "BURIED")             # bury 1
        self.assertEqual(c.cmd("touch %d" % j1), "TOUCHED")                # touch 1
        self.assertEqual(c.cmd("delete %d" % j1), "DELETED")               # delete 1
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")                      # kick 1
        self.assertEqual(c.cmd("pause-tube t1 100"), "PAUSED")             # pause-tube 1

        job = self.stats("stats-job %d" % j2)                               # stats-job 1
        tube = self.stats("stats-tube t1")                                  # stats-tube 1
        self.assertEqual(self.raw("list-tubes"), b"---\n- default\n- t1\n")  # list-tubes 1
        self.assertEqual(self.raw("list-tubes-watched"), b"---\n- t1\n")   # list-tubes-watched 1
        # self.raw() sends a list-tube-used after each framed reply: 5 so far.
        s = self.stats()                                                    # stats 2
        expect = {
            "cmd-put": 5, "cmd-peek": 1, "cmd-peek-ready": 1, "cmd-peek-delayed": 1,
            "cmd-peek-buried": 1, "cmd-reserve": 2, "cmd-reserve-with-timeout": 1,
            "cmd-delete": 1, "cmd-release": 1, "cmd-use": 1, "cmd-watch": 1,
            "cmd-ignore": 1, "cmd-bury": 1, "cmd-kick": 1, "cmd-touch": 1,
            "cmd-stats": 2, "cmd-stats-job": 1, "cmd-stats-tube": 1,
            "cmd-list-tubes": 1, "cmd-list-tube-used": 5, "cmd-list-tubes-watched": 1,
            "cmd-pause-tube": 1,
        }
        self.assertEqual(sorted(expect), sorted(CMD_KEYS))
        self.assertEqual({k: s[k] for k in CMD_KEYS}, {k: str(v) for k, v in expect.items()})
        # j1 deleted; j2 ready (kicked) pri 1023: urgent; j3 ready pri 1024:
        # not urgent; j4 delayed.
        self.assertEqual(s["current-jobs-urgent"], "1")
        self.assertEqual(s["current-jobs-ready"], "2")
        self.assertEqual(s["current-jobs-reserved"], "0")
        self.assertEqual(s["current-jobs-delayed"], "1")
        self.assertEqual(s["current-jobs-buried"], "0")
        self.assertEqual(s["total-jobs"], "4")
        self.assertEqual(s["job-timeouts"], "0")
        self.assertEqual(s["current-tubes"], "2")
        self.assertEqual(s["current-producers"], "1")
        self.assertEqual(s["current-workers"], "1")
        self.assertEqual(s["current-waiting"], "0")
        self.assertEqual(s["max-job-size"], "4096")

        self.assertEqual(job["id"], str(j2))
        self.assertEqual(job["tube"], "t1")
        self.assertEqual(job["state"], "ready")
        self.assertEqual(job["pri"], "1023")
        self.assertEqual(job["delay"], "0")
        self.assertEqual(job["ttr"], "60")
        self.assertEqual(job["time-left"], "0")
        self.assertEqual(job["file"], "0")
        self.assertEqual(job["reserves"], "2")
        self.assertEqual(job["timeouts"], "0")
        self.assertEqual(job["releases"], "1")
        self.assertEqual(job["buries"], "1")
        self.assertEqual(job["kicks"], "1")
        self.assertTrue(0 <= int(job["age"]) <= 5, job["age"])

        self.assertEqual(tube["name"], "t1")
        self.assertEqual(tube["current-jobs-urgent"], "1")
        self.assertEqual(tube["current-jobs-ready"], "2")
        self.assertEqual(tube["current-jobs-reserved"], "0")
        self.assertEqual(tube["current-jobs-delayed"], "1")
        self.assertEqual(tube["current-jobs-buried"], "0")
        self.assertEqual(tube["total-jobs"], "4")
        self.assertEqual(tube["current-using"], "1")
        self.assertEqual(tube["current-watching"], "1")
        self.assertEqual(tube["current-waiting"], "0")
        self.assertEqual(tube["cmd-delete"], "1")
        self.assertEqual(tube["cmd-pause-tube"], "1")
        self.assertEqual(tube["pause"], "100")
        self.assertTrue(96 <= int(tube["pause-time-left"]) <= 100, tube["pause-time-left"])

        d = self.stats("stats-tube default")
        self.assertEqual(d["current-using"], "0")
        self.assertEqual(d["current-watching"], "0")
        self.assertEqual(d["total-jobs"], "0")

        dj = self.stats("stats-job %d" % j4)
        self.assertEqual(dj["state"], "delayed")
        self.assertEqual(dj["delay"], "100")
        self.assertTrue(96 <= int(dj["time-left"]) <= 100, dj["time-left"])

    def test_reserved_job_stats(self):
        jid = self.c.put_id(b"r", pri=77, ttr=60)
        self.assertEqual(self.c.body_reply("reserve")[0], "RESERVED %d 1" % jid)
        st = self.stats("stats-job %d" % jid)
        self.assertEqual(st["state"], "reserved")
        self.assertEqual(st["pri"], "77")
        self.assertTrue(56 <= int(st["time-left"]) <= 60, st["time-left"])
        self.assertEqual(st["reserves"], "1")
        s = self.stats()
        self.assertEqual(s["current-jobs-reserved"], "1")
        self.assertEqual(s["current-jobs-urgent"], "0")  # only ready jobs count
        self.assertEqual(self.stats("stats-tube default")["current-jobs-reserved"], "1")
        self.assertEqual(self.c.cmd("bury %d 2000" % jid), "BURIED")
        st = self.stats("stats-job %d" % jid)
        self.assertEqual((st["state"], st["pri"], st["time-left"]), ("buried", "2000", "0"))
        s = self.stats()
        self.assertEqual(s["current-jobs-buried"], "1")
        self.assertEqual(s["current-jobs-reserved"], "0")

    def test_urgent_threshold(self):
        for pri in (0, 1, 1023, 1024, 1025, 4294967295):
            self.c.put_id(pri=pri)
        s = self.stats()
        self.assertEqual(s["current-jobs-urgent"], "3")
        self.assertEqual(s["current-jobs-ready"], "6")
        self.assertEqual(self.stats("stats-tube default")["current-jobs-urgent"], "3")
        # Reserving an urgent job takes it off the urgent count.
        self.c.body_reply("reserve")
        self.assertEqual(self.stats()["current-jobs-urgent"], "2")

    def test_what_the_counters_count(self):
        c = self.c
        # Commands answered NOT_FOUND still count; malformed ones do not.
        self.assertEqual(c.cmd("peek 999"), "NOT_FOUND")
        self.assertEqual(c.cmd("delete 999"), "NOT_FOUND")
        self.assertEqual(c.cmd("stats-job 999"), "NOT_FOUND")
        self.assertEqual(c.cmd("stats-tube nosuch"), "NOT_FOUND")
        self.assertEqual(c.cmd("touch 999"), "NOT_FOUND")
        self.assertEqual(c.cmd("reserve-with-timeout 0"), "TIMED_OUT")
        self.assertEqual(c.cmd("peek x"), "BAD_FORMAT")
        self.assertEqual(c.cmd("delete x"), "BAD_FORMAT")
        self.assertEqual(c.cmd("stats-job x"), "BAD_FORMAT")
        self.assertEqual(c.cmd("put x"), "BAD_FORMAT")
        self.assertEqual(c.cmd("use -bad"), "BAD_FORMAT")
        s = self.stats()
        self.assertEqual(s["cmd-peek"], "1")
        self.assertEqual(s["cmd-delete"], "1")
        self.assertEqual(s["cmd-stats-job"], "1")
        self.assertEqual(s["cmd-stats-tube"], "1")
        self.assertEqual(s["cmd-touch"], "1")
        self.assertEqual(s["cmd-reserve-with-timeout"], "1")
        self.assertEqual(s["cmd-put"], "0")
        self.assertEqual(s["cmd-use"], "0")
        self.assertEqual(s["current-workers"], "1")   # reserve-with-timeout made it a worker
        self.assertEqual(s["current-producers"], "0")  # no put was accepted
        # tube cmd-delete counts only successful deletes.
        jid = c.put_id()
        c.cmd("delete %d" % jid)
        self.assertEqual(self.stats("stats-tube default")["cmd-delete"], "1")

    def test_job_too_big_put_counts_but_makes_no_job(self):
        self.assertEqual(self.c.put(b"x" * 4097), "JOB_TOO_BIG")
        s = self.stats()
        self.assertEqual(s["cmd-put"], "1")
        self.assertEqual(s["total-jobs"], "0")
        self.assertEqual(self.c.put(b"x" * 4096)[:9], "INSERTED ")

    def test_connection_gauges(self):
        base = self.stats()
        t0 = int(base["total-connections"])
        producer, worker, idle = self.conn(), self.conn(), self.conn()
        producer.put_id()
        worker.cmd("watch other")
        worker.send("reserve-with-timeout 100\r\n")
        # The worker reserves the producer's job at once (it watches default);
        # a second reserve then waits.
        head = worker.line()
        self.assertTrue(head.startswith("RESERVED "), head)
        worker.exact(3)
        worker.send("reserve\r\n")
        self.wait_stat("current-waiting", 1)
        s = self.stats()
        self.assertEqual(s["current-connections"], "4")
        self.assertEqual(s["current-producers"], "1")
        self.assertEqual(s["current-workers"], "1")
        self.assertEqual(s["current-waiting"], "1")
        self.assertEqual(int(s["total-connections"]), t0 + 3)
        self.assertEqual(s["current-tubes"], "2")
        t = self.stats("stats-tube other")
        self.assertEqual((t["current-watching"], t["current-waiting"], t["current-using"]), ("1", "1", "0"))
        worker.close()
        idle.close()
        self.wait_stat("current-connections", 2)
        s = self.stats()
        self.assertEqual(s["current-workers"], "0")
        self.assertEqual(s["current-waiting"], "0")
        self.assertEqual(s["current-producers"], "1")
        self.assertEqual(int(s["total-connections"]), t0 + 3)
        self.assertEqual(s["current-jobs-ready"], "1")  # the worker's job came back
        self.assertEqual(s["current-tubes"], "1")       # "other" went with it

    def test_current_tubes_follow_references(self):
        c = self.c
        c.cmd("use a")
        self.assertEqual(self.stats()["current-tubes"], "2")
        c.put_id()
        c.cmd("use b")
        c.cmd("watch c")
        self.assertEqual(self.stats()["current-tubes"], "4")
        c.cmd("use default")
        c.cmd("ignore c")
        # a holds a job; b and c are unreferenced and gone.
        self.assertEqual(self.stats()["current-tubes"], "2")
        self.assertEqual(c.yaml("list-tubes"), ["default", "a"])
        self.assertEqual(c.cmd("stats-tube b"), "NOT_FOUND")

    def test_timeouts_and_uptime(self):
        c = self.c
        u0 = int(self.stats()["uptime"])
        jid = c.put_id(ttr=1)
        self.assertEqual(c.body_reply("reserve")[0], "RESERVED %d 1" % jid)
        # The holder polls (see STOCK_TTR_BUG in test_timing.py).
        ok = wait_until(lambda: c.yaml("stats")["job-timeouts"] == "1", timeout=5.0)
        self.assertTrue(ok, "job-timeouts never reached 1")
        self.assertEqual(c.yaml("stats-job %d" % jid)["timeouts"], "1")
        ok = wait_until(lambda: int(c.yaml("stats")["uptime"]) > u0, timeout=3.0)
        self.assertTrue(ok, "uptime did not grow")
        self.assertLess(int(c.yaml("stats")["uptime"]), u0 + 10)


if __name__ == "__main__":
    unittest.main()
