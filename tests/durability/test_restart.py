"""Restart tests: what a store gives back after a clean stop or a kill -9.

Every scenario runs in each durability mode (default, -f 50, -F) and after
each kind of stop: SIGTERM (a clean shutdown) and SIGKILL (a crash; in all
three modes a killed process must lose nothing). The expectations are those
of the store's contract: ready, delayed (by wall clock) and buried jobs come
back with priority, TTR, body, counters as of their last journaled change
and age; a job reserved at the stop comes back ready; deleted jobs never
return; ids are never reused; paused tubes stay paused for the rest of
their pause; buried jobs keep their order for kick.

The refusal tests (RefusalTest) check that a store directory is never
opened by two servers, that a directory of legacy binlog files is refused
with a pointer to bsimport, and that a data.mdb full of garbage is refused
and left exactly as it was.
"""
import os
import random
import re
import selectors
import time
import unittest

from crashlib import (MODES, StoreDir, batch, job_stats, peek_bodies, run_refused,
                      wait_for)

# Fields of stats-job that a restart must keep exactly (state, age and
# time-left are checked separately).
KEPT = ("id", "tube", "pri", "delay", "ttr", "reserves", "timeouts", "releases",
        "buries", "kicks")

LONG_TUBE = "L" * 150 + "-long.tube_name(200)+" + "x" * 29      # 200 bytes
assert len(LONG_TUBE) == 200


def arrival_times(conns, timeout):
    """Wait until each client has reply bytes; {client: monotonic arrival}.

    A selector watches all of them at once, so each arrival is timed on its
    own and an early reply cannot hide behind a late one."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    got = {}
    deadline = time.monotonic() + timeout
    try:
        while len(got) < len(conns):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                now = time.monotonic()
                c = key.data
                if c not in got:
                    got[c] = now
                    sel.unregister(c.sock)
    finally:
        sel.close()
    return got


class RestartCases:
    """Scenarios run by the mode classes below; each scenario_X(how) becomes
    test_X_term and test_X_kill."""
    mode_args = ()

    def setUp(self):
        self.store = StoreDir(self, self.mode_args)
        self.store.start()

    def conn(self):
        c = self.store.client()
        self.addCleanup(c.close)
        return c

    def restart(self, how, down=0.0):
        """Stop the daemon (how: "term" or "kill"), stay down for `down`
        seconds of wall-clock time, start a new one on the same directory."""
        self.store.stop(how)
        if down:
            time.sleep(down)        # downtime being simulated, not a wait for an event
        self.store.start()
        return self.conn()

    def check_ok(self, c, line, want):
        got = c.cmd(line)
        self.assertEqual(got, want, line)

    def reserve_job(self, c, jid):
        head, _ = c.body_reply("reserve-job %d" % jid)
        self.assertTrue(head.startswith("RESERVED %d " % jid), head)

    # ---- every state and every field ----

    def scenario_fields(self, how):
        c = self.conn()
        binary = bytes(range(256)) + b"\r\n\x00end\r\nput 0 0 1 1\r\n"
        ids = {}
        ids["plain"] = c.put_id(binary, pri=10, ttr=30)
        self.check_ok(c, "use " + LONG_TUBE, "USING " + LONG_TUBE)
        ids["empty"] = c.put_id(b"", pri=5, ttr=0)         # TTR 0 is stored as 1
        self.check_ok(c, "use tb", "USING tb")
        # Buried twice, kicked once in between: reserves 2, buries 2, kicks 1.
        ids["buried"] = C = c.put_id(b"buried body", pri=100, ttr=20)
        self.reserve_job(c, C)
        self.check_ok(c, "bury %d 200" % C, "BURIED")
        self.check_ok(c, "kick-job %d" % C, "KICKED")
        self.reserve_job(c, C)
        self.check_ok(c, "bury %d 300" % C, "BURIED")
        ids["delayed"] = c.put_id(b"delayed", pri=7, delay=100, ttr=45)
        # Released once (journaled), then reserved again by a connection
        # that still holds it when the server stops.
        ids["held"] = E = c.put_id(b"released then held", pri=50, ttr=40)
        self.reserve_job(c, E)
        self.check_ok(c, "release %d 60 0" % E, "RELEASED")
        holder = self.conn()
        self.reserve_job(holder, E)
        # Released with a delay: delayed, delay 100, pri changed.
        ids["reldelay"] = F = c.put_id(b"released with a delay", pri=70, ttr=50)
        self.reserve_job(c, F)
        self.check_ok(c, "release %d 71 100" % F, "RELEASED")
        # A delayed job kicked to ready.
        ids["kicked"] = G = c.put_id(b"kicked from delayed", pri=1, delay=100, ttr=55)
        self.check_ok(c, "kick-job %d" % G, "KICKED")
        self.check_ok(c, "use default", "USING default")
        big = bytes(random.Random(7).getrandbits(8) for _ in range(65000))
        ids["big"] = c.put_id(big, pri=4294967295, ttr=3600)
        gone = [c.put_id(b"deleted while ready")]
        self.check_ok(c, "delete %d" % gone[0], "DELETED")
        gone.append(c.put_id(b"deleted while reserved"))
        self.reserve_job(c, gone[1])
        self.check_ok(c, "delete %d" % gone[1], "DELETED")
        gone.append(c.put_id(b"deleted while buried"))
        self.reserve_job(c, gone[2])
        self.check_ok(c, "bury %d 0" % gone[2], "BURIED")
        self.check_ok(c, "delete %d" % gone[2], "DELETED")
        gone.append(c.put_id(b"deleted while delayed", delay=100))
        self.check_ok(c, "delete %d" % gone[3], "DELETED")

        all_ids = sorted(ids.values())
        before = job_stats(c, all_ids)
        bodies = peek_bodies(c, all_ids)
        self.assertEqual(before[E]["state"], "reserved")     # the test's own premise
        self.assertEqual(bodies[ids["plain"]], binary)

        c = self.restart(how)
        after = job_stats(c, all_ids + gone)
        for name, jid in sorted(ids.items()):
            b, a = before[jid], after[jid]
            self.assertIsNotNone(a, "%s job %d lost by a %s restart" % (name, jid, how))
            for f in KEPT:
                if name == "held" and f == "reserves":
                    continue
                self.assertEqual(a[f], b[f], "%s job %d: %s" % (name, jid, f))
            want_state = "ready" if b["state"] == "reserved" else b["state"]
            self.assertEqual(a["state"], want_state, "%s job %d: state" % (name, jid))
            self.assertGreaterEqual(int(a["age"]), int(b["age"]), "%s job %d: age" % (name, jid))
            self.assertLessEqual(int(a["age"]), int(b["age"]) + 30, "%s job %d: age" % (name, jid))
        # The holder's reserve was never journaled: reserves is as of the
        # release (1), or 2 if a server journals reserves too.
        self.assertIn(after[E]["reserves"], ("1", "2"))
        self.assertEqual(after[E]["releases"], "1")
        self.assertEqual(after[E]["pri"], "60")
        self.assertEqual(after[ids["empty"]]["ttr"], "1")
        for jid in (ids["delayed"], F):
            left_b, left_a = int(before[jid]["time-left"]), int(after[jid]["time-left"])
            self.assertTrue(left_b - 20 <= left_a <= left_b,
                            "job %d time-left %d before, %d after" % (jid, left_b, left_a))
        for jid in gone:
            self.assertIsNone(after[jid], "deleted job %d came back" % jid)
            self.assertEqual(c.cmd("peek %d" % jid), "NOT_FOUND")
        got = peek_bodies(c, all_ids)
        for name, jid in ids.items():
            self.assertEqual(got[jid], bodies[jid], "%s job %d: body" % (name, jid))
        self.assertEqual(got[ids["big"]], big)

        # The ready jobs are usable, in priority order across tubes.
        for t in (LONG_TUBE, "tb"):
            self.check_ok(c, "watch " + t, "WATCHING %d" % (2 if t == LONG_TUBE else 3))
        for name in ("kicked", "empty", "plain", "held", "big"):
            head, body = c.body_reply("reserve-with-timeout 0")
            self.assertEqual(head, "RESERVED %d %d" % (ids[name], len(bodies[ids[name]])), name)
            self.assertEqual(body, bodies[ids[name]])
            self.check_ok(c, "delete %d" % ids[name], "DELETED")
        self.check_ok(c, "reserve-with-timeout 0", "TIMED_OUT")
        self.check_ok(c, "use tb", "USING tb")
        self.check_ok(c, "kick 10", "KICKED 1")
        head, _ = c.body_reply("reserve-with-timeout 0")
        self.assertEqual(head, "RESERVED %d 11" % C)

    # ---- stats ----

    def scenario_stats(self, how):
        c = self.conn()
        holder = self.conn()
        want = {"default": dict(ready=0, urgent=0, delayed=0, buried=0),
                "s2": dict(ready=0, urgent=0, delayed=0, buried=0)}

        def add(tube, pri=2000, delay=0, bury=False, hold=False):
            jid = c.put_id(b"%s %d %d" % (tube.encode(), pri, delay), pri=pri, delay=delay)
            w = want[tube]
            if bury:
                self.reserve_job(c, jid)
                self.check_ok(c, "bury %d %d" % (jid, pri), "BURIED")
                w["buried"] += 1
            elif delay:
                w["delayed"] += 1
            else:
                if hold:
                    self.reserve_job(holder, jid)
                w["ready"] += 1           # a held job comes back ready
                w["urgent"] += pri < 1024
            return jid

        add("default", pri=5)
        add("default")
        add("default", delay=100)
        add("default", bury=True)
        add("default", pri=7, hold=True)
        deleted = add("default")
        self.check_ok(c, "delete %d" % deleted, "DELETED")
        want["default"]["ready"] -= 1
        self.check_ok(c, "use s2", "USING s2")
        for _ in range(3):
            add("s2", pri=3000)
        add("s2", pri=0)
        add("s2", bury=True)
        add("s2", pri=9, bury=True)
        add("s2", delay=100)
        add("s2", pri=1, hold=True)
        s = c.yaml("stats")
        self.assertEqual(int(s["current-jobs-reserved"]), 2)      # premise

        c = self.restart(how)
        s = c.yaml("stats")
        for k in ("ready", "urgent", "delayed", "buried"):
            self.assertEqual(int(s["current-jobs-" + k]), sum(w[k] for w in want.values()),
                             "stats current-jobs-%s" % k)
        self.assertEqual(int(s["current-jobs-reserved"]), 0)
        self.assertEqual(int(s["current-tubes"]), 2)
        self.assertEqual(sorted(c.yaml("list-tubes")), ["default", "s2"])
        for tube, w in want.items():
            t = c.yaml("stats-tube " + tube)
            for k in ("ready", "urgent", "delayed", "buried"):
                self.assertEqual(int(t["current-jobs-" + k]), w[k],
                                 "stats-tube %s current-jobs-%s" % (tube, k))
            self.assertEqual(int(t["current-jobs-reserved"]), 0)

    # ---- ids ----

    def scenario_ids(self, how):
        c = self.conn()
        a, b, top = c.put_id(b"a"), c.put_id(b"b"), c.put_id(b"c")
        self.check_ok(c, "delete %d" % top, "DELETED")       # the highest id, deleted
        c = self.restart(how)
        n1 = c.put_id(b"after restart 1")
        self.assertGreater(n1, top, "id %d reused after a %s restart" % (n1, how))
        # Empty the store: the high-water mark alone must carry the ids.
        for jid in (a, b, n1):
            self.check_ok(c, "delete %d" % jid, "DELETED")
        self.assertEqual(c.yaml("stats")["current-jobs-ready"], "0")
        c = self.restart(how)
        c = self.restart(how)               # twice, with nothing put between
        n2 = c.put_id(b"after restart 2")
        self.assertGreater(n2, n1, "id %d reused after restarts of an empty store" % n2)
        # Many puts in one go, the highest ones deleted in one go, then the stop.
        replies = batch(c, ["put 0 0 60 1\r\nz"] * 50)
        got = [int(h.split()[1]) for h, _ in replies]
        self.assertEqual(got, sorted(got))
        dels = batch(c, ["delete %d" % j for j in got[-10:]])
        self.assertEqual([h for h, _ in dels], ["DELETED"] * 10)
        c = self.restart(how)
        n3 = c.put_id(b"after restart 3")
        self.assertGreater(n3, got[-1], "id %d reused after a %s restart" % (n3, how))
        self.assertIsNone(job_stats(c, got[-10:])[got[-1]])
        self.assertEqual(int(c.yaml("stats")["current-jobs-ready"]), 40 + 2)

    # ---- buried order ----

    def scenario_buried_order(self, how):
        c = self.conn()
        order = {}
        for tube, n, bury_seq, pris in (("bo1", 5, [2, 0, 4, 1, 3], [50, 10, 40, 30, 20]),
                                        ("bo2", 3, [2, 1, 0], [1, 2, 3])):
            self.check_ok(c, "use " + tube, "USING " + tube)
            ids = [c.put_id(b"%s-%d" % (tube.encode(), i)) for i in range(n)]
            seq = []
            # Buried in neither id order nor priority order.
            for k, p in zip(bury_seq, pris):
                self.reserve_job(c, ids[k])
                self.check_ok(c, "bury %d %d" % (ids[k], p), "BURIED")
                seq.append(ids[k])
            order[tube] = seq
        # Kicked and buried again: goes to the back of bo1's line.
        first = order["bo1"].pop(0)
        self.check_ok(c, "use bo1", "USING bo1")
        self.check_ok(c, "kick-job %d" % first, "KICKED")
        self.reserve_job(c, first)
        self.check_ok(c, "bury %d 60" % first, "BURIED")
        order["bo1"].append(first)
        # Premise: the running server kicks in bury order.
        head, _ = c.body_reply("peek-buried")
        self.assertTrue(head.startswith("FOUND %d " % order["bo1"][0]), head)

        c = self.restart(how)
        for tube, seq in sorted(order.items()):
            self.check_ok(c, "use " + tube, "USING " + tube)
            kicked = []
            for _ in seq:
                head, _ = c.body_reply("peek-buried")
                self.check_ok(c, "kick 1", "KICKED 1")
                kicked.append(int(head.split()[1]) if head.startswith("FOUND") else None)
                st = job_stats(c, [kicked[-1]])[kicked[-1]] if kicked[-1] else None
                self.assertEqual(st and st["state"], "ready", "kick 1 did not kick peek-buried's job")
            self.assertEqual(kicked, seq, "tube %s: kick order after a %s restart "
                             "(expected bury order)" % (tube, how))
            self.check_ok(c, "peek-buried", "NOT_FOUND")

    # ---- delays, pauses, age and TTR timeouts across downtime ----

    def scenario_delays(self, how):
        c = self.conn()
        # A TTR timeout (not journaled by itself), journaled by a later bury.
        T = c.put_id(b"ttr", ttr=1)
        self.reserve_job(c, T)
        self.assertTrue(wait_for(lambda: job_stats(c, [T])[T]["state"] == "ready", 10),
                        "TTR 1 job never timed out")
        self.reserve_job(c, T)
        self.check_ok(c, "bury %d 3" % T, "BURIED")
        LD = c.put_id(b"long delay", delay=100)
        jobs = {}
        for tube in ("dl", "dr", "dx", "p2", "p100", "pexp", "punp"):
            self.check_ok(c, "use " + tube, "USING " + tube)
            jobs[tube] = c.put_id(b"job in " + tube.encode())
        self.reserve_job(c, jobs["dr"])
        self.check_ok(c, "pause-tube punp 100", "PAUSED")
        self.check_ok(c, "pause-tube punp 0", "PAUSED")          # unpaused again
        for t in ("dl", "dx"):
            self.check_ok(c, "delete %d" % jobs[t], "DELETED")
        t1 = time.monotonic()
        # One burst, so every clock starts within a millisecond or two.
        replies = batch(c, ["use dl", "put 0 2 60 2\r\nD2",
                            "release %d 0 2" % jobs["dr"],
                            "use dx", "put 0 1 60 2\r\nDX",
                            "pause-tube p2 2", "pause-tube pexp 1", "pause-tube p100 100"])
        heads = [h for h, _ in replies]
        self.assertEqual(heads[2:4] + heads[5:], ["RELEASED", "USING dx", "PAUSED", "PAUSED",
                                                  "PAUSED"], heads)
        jobs["dl"], jobs["dx"] = int(heads[1].split()[1]), int(heads[4].split()[1])
        before = job_stats(c, [T, LD])

        c = self.restart(how, down=1.2)
        t_up = time.monotonic()
        self.assertGreater(t_up - t1, 1.2)
        st = job_stats(c, [T, LD, jobs["dl"], jobs["dr"], jobs["dx"]])
        for jid, v in sorted(st.items()):
            self.assertIsNotNone(v, "job %d lost by a %s restart" % (jid, how))
        # Age went on counting while the server was down.
        age_b, age_a = int(before[T]["age"]), int(st[T]["age"])
        self.assertTrue(age_b + 1 <= age_a <= age_b + 10, "age %d before, %d after" % (age_b, age_a))
        self.assertEqual((st[T]["state"], st[T]["timeouts"], st[T]["buries"], st[T]["reserves"]),
                         ("buried", "1", "1", "2"))
        left_b, left_a = int(before[LD]["time-left"]), int(st[LD]["time-left"])
        self.assertTrue(left_b - 10 <= left_a <= left_b - 1, "time-left %d before, %d after 1.2 s "
                        "down" % (left_b, left_a))
        self.assertEqual(st[jobs["dx"]]["state"], "ready", "delay ran out while down")
        for t in ("dl", "dr"):
            self.assertEqual(st[jobs[t]]["state"], "delayed", t)
        self.assertEqual(st[jobs["dr"]]["delay"], "2")
        self.assertEqual(st[jobs["dr"]]["releases"], "1")
        p100 = c.yaml("stats-tube p100")
        self.assertEqual(p100["pause"], "100")
        self.assertTrue(90 <= int(p100["pause-time-left"]) <= 99, p100["pause-time-left"])
        self.assertEqual(c.yaml("stats-tube p2")["pause"], "2")

        w = {}
        for t in ("dl", "dr", "dx", "p2", "p100", "pexp", "punp"):
            w[t] = self.conn()
            self.check_ok(w[t], "watch " + t, "WATCHING 2")
            self.check_ok(w[t], "ignore default", "WATCHING 1")
        # Ready at once: the expired delay and pause, the cancelled pause.
        for t in ("dx", "pexp", "punp"):
            head, _ = w[t].body_reply("reserve-with-timeout 0")
            self.assertTrue(head.startswith("RESERVED %d " % jobs[t]), "%s: %s" % (t, head))
        self.check_ok(w["p100"], "reserve-with-timeout 0", "TIMED_OUT")
        # Due at t1 + 2 s, as before the restart; not 2 s after the restart
        # (t1 + 3.2 s or later), not at once.
        timed = [w["dl"], w["dr"], w["p2"]]
        for x in timed:
            x.send("reserve-with-timeout 8\r\n")
        got = arrival_times(timed, 10)
        for t in ("dl", "dr", "p2"):
            x = w[t]
            self.assertIn(x, got, "%s: no reply" % t)
            at = got[x] - t1
            head = x.line()
            self.assertTrue(head.startswith("RESERVED %d " % jobs[t]), "%s: %s" % (t, head))
            x.exact(int(head.split()[2]) + 2)
            latest = max(2.0, t_up - t1) + 0.8
            self.assertTrue(1.85 <= at <= latest,
                            "%s: ready %.2f s after it was delayed/paused for 2 s "
                            "(server down 1.2 s, up again at %.2f s)" % (t, at, t_up - t1))


def _make(name, how):
    def test(self):
        getattr(self, "scenario_" + name)(how)
    test.__name__ = "test_%s_%s" % (name, how)
    test.__doc__ = "%s survives a %s restart" % (name, "SIGTERM" if how == "term" else "kill -9")
    return test


for _n in [n[len("scenario_"):] for n in dir(RestartCases) if n.startswith("scenario_")]:
    for _how in ("term", "kill"):
        setattr(RestartCases, "test_%s_%s" % (_n, _how), _make(_n, _how))


class DefaultModeRestartTest(RestartCases, unittest.TestCase):
    mode_args = MODES["default"]


class IntervalModeRestartTest(RestartCases, unittest.TestCase):
    mode_args = MODES["f50"]


class NeverSyncRestartTest(RestartCases, unittest.TestCase):
    mode_args = MODES["F"]


class JournalOnlyRestartTest(RestartCases, unittest.TestCase):
    """-f with an interval no scenario reaches: every change is still only
    in the journal when the daemon is killed, so a kill -9 restart rests
    entirely on the journal replay (with -f 50 the timer may have synced
    most of a scenario before the kill)."""
    mode_args = ("-f", "600000")


class ModeSwitchTest(unittest.TestCase):
    """A store written in one mode and killed opens in any other, whole."""

    def test_kill_then_restart_in_other_modes(self):
        store = StoreDir(self)
        names = ["f50", "default", "F", "f50", "F", "default"]
        kept = {}
        for i, name in enumerate(names):
            store.mode_args = MODES[name]
            store.start()
            c = store.client()
            got = peek_bodies(c, sorted(kept))
            for jid, body in kept.items():
                self.assertEqual(got[jid], body, "job %d lost, opened with %s after a kill -9 "
                                 "in %s mode" % (jid, name, names[i - 1]))
            for k in range(20):
                body = b"%s-%d" % (name.encode(), k)
                kept[c.put_id(body)] = body
            victim = max(kept)
            self.assertEqual(c.cmd("delete %d" % victim), "DELETED")
            del kept[victim]
            c.close()
            store.kill()
        store.start()
        c = store.client()
        self.assertGreater(c.put_id(b"last"), victim)
        self.assertEqual(int(c.yaml("stats")["current-jobs-ready"]), len(kept) + 1)
        c.close()


class RefusalTest(unittest.TestCase):

    LOCKED = re.compile(r"lock|another server|in use", re.I)

    def test_second_daemon_refused_first_keeps_serving(self):
        store = StoreDir(self)
        store.start()
        c = store.client()
        self.addCleanup(c.close)
        ids = [c.put_id(b"first %d" % i) for i in range(5)]
        for name in ("default", "f50", "F"):
            rc, err = run_refused(["-b", store.dir] + list(MODES[name]))
            self.assertIsNotNone(rc, "a second daemon (%s) started serving on a store in use" % name)
            self.assertNotEqual(rc, 0, "second daemon (%s) exited 0" % name)
            self.assertRegex(err, self.LOCKED, "second daemon's message: %r" % err)
            # The first one carries on, jobs and all.
            self.assertEqual(store.server.proc.poll(), None)
            jid = c.put_id(b"after refusal %s" % name.encode())
            ids.append(jid)
            self.assertEqual(c.body_reply("peek %d" % ids[0])[1], b"first 0")
            head, _ = c.body_reply("reserve-with-timeout 0")
            self.assertTrue(head.startswith("RESERVED %d " % ids[0]), head)
            self.assertEqual(c.cmd("release %d 0 0" % ids[0]), "RELEASED")
        self.assertEqual(c.cmd("delete %d" % ids[1]), "DELETED")
        c.close()
        self.assertEqual(store.term(), 0)
        store.start()
        c = store.client()
        self.addCleanup(c.close)
        got = peek_bodies(c, ids)
        self.assertIsNone(got[ids[1]])
        self.assertEqual(sum(v is not None for v in got.values()), len(ids) - 1)

    def test_second_daemon_leaves_unsynced_journal_alone(self):
        # In -f mode the first daemon's recent changes live in the journal
        # only; a refused second daemon must not replay or empty it.
        store = StoreDir(self, MODES["f50"])
        store.start()
        c = store.client()
        self.addCleanup(c.close)
        ids = [c.put_id(b"journaled %d" % i) for i in range(30)]
        rc, err = run_refused(["-b", store.dir, "-f", "50"])
        self.assertNotIn(rc, (0, None))
        self.assertRegex(err, self.LOCKED)
        ids += [c.put_id(b"journaled %d" % i) for i in range(30, 60)]
        store.kill()
        store.start()
        c = store.client()
        self.addCleanup(c.close)
        got = peek_bodies(c, ids)
        self.assertEqual([got[j] for j in ids], [b"journaled %d" % i for i in range(60)])

    def test_legacy_binlog_refused(self):
        store = StoreDir(self)
        path = os.path.join(store.dir, "binlog.1")
        legacy = b"\x07\x00\x00\x00" + os.urandom(500)
        with open(path, "wb") as f:
            f.write(legacy)
        for name in ("default", "f50", "F"):
            rc, err = run_refused(["-b", store.dir] + list(MODES[name]))
            self.assertNotIn(rc, (0, None), "a binlog directory was opened (%s)" % name)
            self.assertIn("bsimport", err)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), legacy)
        self.assertFalse(os.path.exists(os.path.join(store.dir, "data.mdb")),
                         "a store was created beside the legacy binlog")

    def test_binlog_beside_existing_store_refused(self):
        store = StoreDir(self)
        store.start()
        c = store.client()
        jid = c.put_id(b"kept")
        c.close()
        store.kill()
        path = os.path.join(store.dir, "binlog.1")
        open(path, "wb").close()
        rc, err = run_refused(["-b", store.dir])
        self.assertNotIn(rc, (0, None))
        self.assertIn("bsimport", err)
        os.unlink(path)
        store.start()
        c = store.client()
        self.addCleanup(c.close)
        self.assertEqual(c.body_reply("peek %d" % jid)[1], b"kept")

    def test_garbage_data_mdb_refused_untouched(self):
        rnd = random.Random(1)
        cases = {
            "text": b"this is not an LMDB file\n" * 3,
            "short": b"\x00\x01garbage",
            "random 8k": bytes(rnd.getrandbits(8) for _ in range(8192)),
            "random 1M": os.urandom(1 << 20),
            "ones": b"\xff" * 65536,
        }
        for what, data in cases.items():
            with self.subTest(garbage=what):
                store = StoreDir(self)
                path = os.path.join(store.dir, "data.mdb")
                with open(path, "wb") as f:
                    f.write(data)
                for name in ("default", "f50", "F"):
                    rc, err = run_refused(["-b", store.dir] + list(MODES[name]))
                    self.assertIsNotNone(rc, "a daemon started serving on a garbage data.mdb")
                    self.assertNotEqual(rc, 0, "garbage data.mdb accepted (%s)" % name)
                    self.assertIn("data.mdb", err)
                    with open(path, "rb") as f:
                        self.assertTrue(f.read() == data, "data.mdb was modified (%s)" % name)


if __name__ == "__main__":
    unittest.main()
