"""The metrics endpoint (--metrics [HOST:]PORT): Prometheus text on
/metrics whose numbers agree with stats, stats-tube and the store's stats
keys (also while load runs), /healthz for probes, and clear refusals of a
bad or taken address."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

import bstest

SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value}; also checks the format: every
    sample's family has HELP and TYPE lines before it."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        assert name in typed or base in typed, "no TYPE before %s" % name
        lab = frozenset(tuple(kv.split("=", 1)) for kv in labels.split(",")) if labels else frozenset()
        out[(name, lab)] = float(value)
    return out


def stats_dict(c, cmd="stats"):
    return c.yaml(cmd)


@unittest.skipIf(bstest.REFERENCE, "stock beanstalkd has no metrics endpoint")
class MetricsTest(bstest.ServerTest):
    def setUp(self):
        self.mport = bstest.free_port()
        self.server_args = ("--metrics", str(self.mport))
        super().setUp()

    def get(self, path="/metrics"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.mport, path), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def scrape(self):
        status, ctype, body = self.get()
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        return parse(body)

    def test_numbers_agree_with_stats(self):
        c = self.c
        c.cmd("use metrics-a")
        for pri in (5, 2000, 7):
            c.put(b"job", pri=pri)
        c.put(b"later", delay=100)
        c.cmd("use metrics-b")
        for _ in range(3):
            c.put(b"b")
        c.cmd("watch metrics-b")
        c.cmd("ignore default")
        rid = c.body_reply("reserve")[0].split()[1]
        self.assertEqual(c.cmd("bury %s 10" % rid), "BURIED")
        c.body_reply("reserve")         # stays reserved
        s = stats_dict(self.side())
        m = self.scrape()
        for state in ("ready", "reserved", "delayed", "buried"):
            self.assertEqual(m[("beanstalkd_jobs", frozenset({("state", '"%s"' % state)}))],
                             int(s["current-jobs-" + state]), state)
        self.assertEqual(m[("beanstalkd_jobs_urgent", frozenset())], int(s["current-jobs-urgent"]))
        self.assertEqual(m[("beanstalkd_jobs_total", frozenset())], int(s["total-jobs"]))
        for cmd in ("put", "reserve", "bury", "use", "watch", "ignore"):
            self.assertEqual(m[("beanstalkd_commands_total", frozenset({("command", '"%s"' % cmd)}))],
                             int(s["cmd-" + cmd]), cmd)
        self.assertEqual(m[("beanstalkd_connections", frozenset())], int(s["current-connections"]))
        self.assertEqual(m[("beanstalkd_connections_total", frozenset())],
                         int(s["total-connections"]))
        self.assertEqual(m[("beanstalkd_tubes", frozenset())], int(s["current-tubes"]))
        for tube in ("default", "metrics-a", "metrics-b"):
            t = stats_dict(self.side(), "stats-tube " + tube)
            lab = ("tube", '"%s"' % tube)
            for state in ("ready", "reserved", "delayed", "buried"):
                self.assertEqual(m[("beanstalkd_tube_jobs", frozenset({lab, ("state", '"%s"' % state)}))],
                                 int(t["current-jobs-" + state]), (tube, state))
            self.assertEqual(m[("beanstalkd_tube_jobs_total", frozenset({lab}))], int(t["total-jobs"]))
            for role in ("using", "watching", "waiting"):
                self.assertEqual(m[("beanstalkd_tube_clients", frozenset({lab, ("role", '"%s"' % role)}))],
                                 int(t["current-" + role]), (tube, role))
        if "store-commits" in s:
            # Nothing changed since the stats command: the store agrees too.
            self.assertEqual(m[("beanstalkd_store_commits_total", frozenset())], int(s["store-commits"]))
            self.assertEqual(m[("beanstalkd_store_syncs_total", frozenset())], int(s["store-syncs"]))
            self.assertEqual(m[("beanstalkd_store_size_bytes", frozenset())], int(s["store-size"]))
        else:
            self.assertFalse(any(k[0].startswith("beanstalkd_store") for k in m))

    def test_pause_is_reported(self):
        self.c.cmd("use paused")
        self.c.put(b"x")
        self.assertEqual(self.c.cmd("pause-tube paused 100"), "PAUSED")
        m = self.scrape()
        left = m[("beanstalkd_tube_paused_seconds", frozenset({("tube", '"paused"')}))]
        self.assertTrue(98 <= left <= 100, left)
        self.assertEqual(m[("beanstalkd_tube_paused_seconds", frozenset({("tube", '"default"')}))], 0)

    def test_scrapes_during_load(self):
        """Scrapes while producers and a consumer work: counters never go
        back, gauges stay consistent, and once the load stops the final
        scrape agrees with stats."""
        stop = threading.Event()
        errors = []

        def producer():
            try:
                c = self.server.client()
                c.cmd("use load")
                while not stop.is_set():
                    if not c.put(b"payload" * 10).startswith("INSERTED"):
                        errors.append("put failed")
                c.close()
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))

        def consumer():
            try:
                c = self.server.client()
                c.cmd("watch load")
                while not stop.is_set():
                    r = c.body_reply("reserve-with-timeout 0")[0]
                    if r.startswith("RESERVED"):
                        c.cmd("delete " + r.split()[1])
                c.close()
            except Exception as e:      # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=producer) for _ in range(2)] + [threading.Thread(target=consumer)]
        for t in threads:
            t.start()
        try:
            last = {}
            put_key = ("beanstalkd_commands_total", frozenset({("command", '"put"')}))
            for _ in range(15):
                m = self.scrape()
                for k, v in m.items():
                    if k[0].endswith("_total") or k[0].endswith("_count") or k[0].endswith("_bucket"):
                        self.assertGreaterEqual(v, last.get(k, 0), k)
                total = sum(v for k, v in m.items() if k[0] == "beanstalkd_jobs")
                self.assertGreaterEqual(total, 0)
                last = m
                self.assertTrue(bstest.wait_until(lambda: self.scrape()[put_key] > last[put_key], 10),
                                "puts should go on")
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        self.assertEqual(errors, [])
        s = stats_dict(self.side())
        m = self.scrape()
        self.assertGreater(int(s["cmd-put"]), 15)
        self.assertEqual(m[("beanstalkd_commands_total", frozenset({("command", '"put"')}))], int(s["cmd-put"]))
        self.assertEqual(m[("beanstalkd_commands_total", frozenset({("command", '"delete"')}))],
                         int(s["cmd-delete"]))
        self.assertEqual(m[("beanstalkd_jobs", frozenset({("state", '"ready"')}))],
                         int(s["current-jobs-ready"]))
        if "store-commits" in s:
            count = m[("beanstalkd_store_commit_seconds_count", frozenset())]
            inf = m[("beanstalkd_store_commit_seconds_bucket", frozenset({("le", '"+Inf"')}))]
            self.assertEqual(count, inf)
            self.assertGreater(count, 0)
            buckets = sorted((float(dict(k[1])["le"].strip('"')), v) for k, v in m.items()
                             if k[0] == "beanstalkd_store_commit_seconds_bucket"
                             and dict(k[1])["le"] != '"+Inf"')
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), "buckets are cumulative")
            # Commit gathering: a client heard during a wait was awaited in it.
            waits = m[("beanstalkd_store_gather_waits_total", frozenset())]
            gathered = m[("beanstalkd_store_gathered_total", frozenset())]
            self.assertGreaterEqual(waits, 0)
            self.assertGreaterEqual(gathered, 0)
            if s["store-sync-mode"].strip('"') != "always":
                self.assertEqual((waits, gathered), (0, 0), "only zero-loss commits wait")

    def test_healthz_and_other_paths(self):
        status, ctype, body = self.get("/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        self.server.signal(signal.SIGUSR1)
        self.assertTrue(bstest.wait_until(lambda: self.get("/healthz")[2] == "ok draining\n", 10))
        m = self.scrape()
        self.assertEqual(m[("beanstalkd_draining", frozenset())], 1)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.get("/nothing-here")
        self.assertEqual(cm.exception.code, 404)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.mport, data=b"",
                                     method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        # libevent answers a method it was told to refuse with 501.
        self.assertIn(cm.exception.code, (405, 501))
        self.assertAlive(self.c)

    def test_garbage_on_the_metrics_port_harms_nobody(self):
        for junk in (b"\x00\xff" * 5000, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                     b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n"):
            with socket.create_connection(("127.0.0.1", self.mport), timeout=10) as s:
                try:
                    s.sendall(junk)
                    s.recv(4096)
                except OSError:
                    pass
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertAlive(self.c)

    def test_listens_on_loopback_by_default(self):
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f][1:]
        local = [r[1] for r in rows if r[3] == "0A" and int(r[1].rsplit(":", 1)[1], 16) == self.mport]
        self.assertEqual(local, ["0100007F:%04X" % self.mport])
        # The start-up line is written just after the listeners open.
        line = "metrics on http://127.0.0.1:%d/metrics" % self.mport
        bstest.wait_until(lambda: line in self.server.stderr_text(), 10)
        self.assertIn(line, self.server.stderr_text())


@unittest.skipIf(bstest.REFERENCE, "stock beanstalkd has no metrics endpoint")
class MetricsOptionTest(unittest.TestCase):
    def run_bad(self, *args):
        r = subprocess.run([bstest.BINARY, "-l", "127.0.0.1", "-p", str(bstest.free_port())] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return r.returncode, r.stderr.decode()

    def test_bad_addresses_are_refused(self):
        for spec in ("abc", "0", "70000", "host:", ":80", "[::1]80", "1.2.3.4:x"):
            rc, err = self.run_bad("--metrics", spec)
            self.assertEqual(rc, 5, spec)
            self.assertIn("invalid --metrics address", err)
        rc, err = self.run_bad("--metrics")
        self.assertEqual(rc, 5)
        rc, err = self.run_bad("--metric=80")
        self.assertEqual(rc, 5)
        self.assertIn("unknown option: --metric=80", err)

    def test_taken_port_is_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            rc, err = self.run_bad("--metrics=127.0.0.1:%d" % s.getsockname()[1])
        finally:
            s.close()
        self.assertEqual(rc, 111)
        self.assertIn("cannot listen for metrics", err)

    def test_ipv6_address(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError:
            self.skipTest("no ::1 here")
        port = bstest.free_port()
        srv = bstest.Server("--metrics", "[::1]:%d" % port)
        self.addCleanup(srv.stop)
        conn = socket.create_connection(("::1", port), timeout=10)
        conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        conn.close()
        self.assertTrue(data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"), data)
        self.assertTrue(data.endswith(b"ok\n"))


if __name__ == "__main__":
    unittest.main()
