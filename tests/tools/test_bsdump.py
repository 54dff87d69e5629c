"""bsdump: summaries, listings, single jobs, JSON lines, error reporting,
and its use on a store a running daemon is writing (reports and --backup).

The store under test is written by the daemon itself through the protocol.
Binaries come from the repo top ($BSDUMP, $BSIMPORT and $BEANSTALKD
override them); helpers live in test_bsimport.py.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_bsimport import (BSDUMP, DAEMON, NS, bsdump, bsimport, comparable,  # noqa: E402
                           dump_jobs, dump_summary, job_v7, peek, run, start_server,
                           tree_state, write_binlog)

ALL_BYTES = bytes(range(256))
HAVE_MDB_TOOLS = shutil.which('mdb_dump') and shutil.which('mdb_load')


def unescape(text):
    """Inverse of bsdump's escaped body format."""
    out = bytearray()
    i = 0
    simple = {'\\': 0x5c, '"': 0x22, 'r': 0x0d, 'n': 0x0a, 't': 0x09, '0': 0x00}
    while i < len(text):
        c = text[i]
        if c != '\\':
            out.append(ord(c))
            i += 1
        elif text[i + 1] == 'x':
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(simple[text[i + 1]])
            i += 2
    return bytes(out)


def mdb_put(store, db, key, value):
    """Overwrites one record of a database of the LMDB environment, behind
    the store's back (no server may run)."""
    text = 'VERSION=3\nformat=bytevalue\n%stype=btree\nHEADER=END\n %s\n %s\nDATA=END\n' % (
        'database=%s\n' % db if db else '', key.hex(), value.hex())
    subprocess.run(['mdb_load'] + (['-s', db] if db else []) + [store], input=text.encode(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def mdb_get(store, db, key):
    out = subprocess.run(['mdb_dump', '-s', db, store], check=True,
                         stdout=subprocess.PIPE).stdout.decode().split('HEADER=END\n', 1)[1]
    lines = [x.strip() for x in out.splitlines() if x.startswith(' ')]
    pairs = dict(zip(lines[0::2], lines[1::2]))
    return bytes.fromhex(pairs[key.hex()])


class Fixture(unittest.TestCase):
    """One store with known content, written by the daemon, then stopped."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='bsdump-test-')
        cls.store = os.path.join(cls.tmp, 'store')
        srv = start_server(DAEMON, '-b', cls.store)
        try:
            c = srv.client()
            ids = cls.ids = {}
            ids['hello'] = c.put_id(b'hello world', pri=5, ttr=30)       # 1
            ids['buried'] = c.put_id(b'to be buried', pri=7)            # 2
            c.cmd('use emails')
            ids['e1'] = c.put_id(b'mail one', pri=100)                   # 3
            ids['e2'] = c.put_id(b'mail two', pri=200)                   # 4
            ids['later'] = c.put_id(b'in an hour', delay=3600, ttr=90)  # 5
            c.cmd('use bin')
            ids['bytes'] = c.put_id(ALL_BYTES * 2)                       # 6
            ids['empty'] = c.put_id(b'')                                  # 7
            ids['long'] = c.put_id(b'L' * 1000)                           # 8
            got = c.cmd('reserve-job %d' % ids['buried'])
            c.exact(int(got.split()[2]) + 2)
            assert c.cmd('bury %d 7' % ids['buried']) == 'BURIED'
            assert c.cmd('pause-tube emails 600') == 'PAUSED'
            c.close()
        finally:
            srv.stop()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class Reports(Fixture):
    def test_summary_text(self):
        _, out, err = bsdump(self.store)
        out = out.decode()
        self.assertEqual(err, '')
        self.assertIn('schema       version 1', out)
        self.assertIn('jobs         8 (ready 6, delayed 1, buried 1)', out)
        self.assertIn('next id      9', out)
        self.assertRegex(out, r'oldest job   1, age \d+s \(put 20\d\d-')
        self.assertRegex(out, r'paused tubes emails \(pause 10m0s, (9m\d+s|10m0s) left\)')
        self.assertRegex(out, r'(?m)^default +1 +0 +1 +2$')
        self.assertRegex(out, r'(?m)^emails +2 +1 +0 +3$')
        self.assertRegex(out, r'(?m)^bin +3 +0 +0 +3$')
        self.assertRegex(out, r'size         [\d.]+ KiB used, data.mdb [\d.]+ MiB')

    def test_summary_json(self):
        s = dump_summary(self.store)
        self.assertEqual(s['schema_version'], 1)
        self.assertEqual((s['jobs'], s['ready'], s['delayed'], s['buried']), (8, 6, 1, 1))
        self.assertEqual(s['next_id'], 9)
        self.assertEqual(s['oldest']['id'], 1)
        self.assertEqual(s['tubes']['default'], {'ready': 1, 'delayed': 0, 'buried': 1, 'total': 2})
        self.assertEqual(s['tubes']['emails'], {'ready': 2, 'delayed': 1, 'buried': 0, 'total': 3})
        self.assertEqual(sorted(s['tubes']), ['bin', 'default', 'emails'])
        self.assertEqual(len(s['paused']), 1)
        self.assertEqual(s['paused'][0]['tube'], 'emails')
        self.assertEqual(s['paused'][0]['pause'], 600)
        self.assertTrue(590 <= s['paused'][0]['time_left'] <= 600)
        self.assertLessEqual(s['used_bytes'], s['file_bytes'])
        self.assertEqual(s['body_bytes'], 11 + 12 + 8 + 8 + 10 + 512 + 0 + 1000)
        self.assertEqual(s['journal_bytes'], 0)

    def test_list_text(self):
        _, out, _ = bsdump(self.store, '--list')
        lines = out.decode().splitlines()
        self.assertTrue(lines[0].split()[:4] == ['ID', 'TUBE', 'STATE', 'PRI'], lines[0])
        self.assertEqual(len(lines), 9)
        row = {int(x.split()[0]): x for x in lines[1:]}
        self.assertRegex(row[1], r'^ +1 default +ready +5 +- +- +30s +\d+s +0 +0 +0 +0 +0 +11 "hello world"$')
        self.assertRegex(row[2], r' buried +7 .* 1 +0 +0 +1 +0 +12 "to be buried"$')
        self.assertRegex(row[5], r' delayed +0 +1h0m +(59m\d+s|1h0m) +1m30s ')
        self.assertIn(r'"\0\x01\x02\x03', row[6])
        self.assertTrue(row[6].endswith('"...'))
        self.assertTrue(row[7].endswith(' 0 ""'))
        self.assertTrue(row[8].endswith('"' + 'L' * 40 + '"...'))

    def test_list_json(self):
        jobs = dump_jobs(self.store)
        self.assertEqual([j['id'] for j in jobs], list(range(1, 9)))
        by = {j['id']: j for j in jobs}
        self.assertEqual(base64.b64decode(by[6]['body_b64']), ALL_BYTES * 2)
        self.assertEqual(by[6]['body_len'], 512)
        self.assertEqual(by[1]['pri'], 5)
        self.assertEqual(by[1]['ttr'], 30)
        self.assertEqual(by[1]['ttr_ns'], 30 * NS)
        self.assertEqual(by[2]['state'], 'buried')
        self.assertEqual(by[2]['buries'], 1)
        self.assertEqual(by[2]['reserves'], 1)
        self.assertEqual(by[5]['state'], 'delayed')
        self.assertEqual(by[5]['delay'], 3600)
        self.assertTrue(3500 < by[5]['time_left'] <= 3600)
        self.assertEqual(by[5]['deadline_ns'] - by[5]['created_ns'] > 3599 * NS, True)
        self.assertEqual(by[7]['body_b64'], '')
        for j in jobs:
            self.assertLess(abs(j['created_ns'] - time.time_ns()), 600 * NS)
            self.assertGreaterEqual(j['age'], 0)

    def test_list_filters(self):
        def ids(*args):
            return [j['id'] for j in dump_jobs(self.store, *args)]

        def text_ids(*args):
            _, out, _ = bsdump(self.store, '--list', *args)
            return [int(x.split()[0]) for x in out.decode().splitlines()[1:]]

        cases = {
            ('--tube', 'emails'): [3, 4, 5],
            ('--tube', 'nosuch'): [],
            ('--state', 'ready'): [1, 3, 4, 6, 7, 8],
            ('--state', 'delayed'): [5],
            ('--state', 'buried'): [2],
            ('--ids', '2-4'): [2, 3, 4],
            ('--ids', '3'): [3],
            ('--ids', '6-'): [6, 7, 8],
            ('--ids', '-2'): [1, 2],
            ('--ids', '100-200'): [],
            ('--tube', 'emails', '--state', 'ready', '--ids', '4-9'): [4],
            ('-t', 'bin', '-s', 'ready', '-i', '1-7'): [6, 7],
        }
        for args, want in cases.items():
            with self.subTest(args=args):
                self.assertEqual(ids(*args), want)
                self.assertEqual(text_ids(*args), want)

    def test_job_in_each_body_format(self):
        body = ALL_BYTES * 2
        _, raw, _ = bsdump(self.store, '--job', 6, '--body', 'raw')
        self.assertEqual(raw, body)
        _, out, _ = bsdump(self.store, '--job', 6, '--body', 'base64')
        text = out.decode()
        self.assertIn('id           6\n', text)
        self.assertIn('tube         bin\n', text)
        self.assertIn('body-size    512\n', text)
        b64 = text.split('body (base64):\n', 1)[1]
        self.assertTrue(all(len(x) <= 76 for x in b64.splitlines()))
        self.assertEqual(base64.b64decode(b64), body)
        for args in ((), ('--body', 'escaped')):
            _, out, _ = bsdump(self.store, '-j', 6, *args)
            esc = out.decode().split('body (escaped):\n', 1)[1]
            self.assertTrue(esc.endswith('\n'))
            self.assertEqual(unescape(esc[:-1]), body)
        _, out, _ = bsdump(self.store, '--job', 6, '--format', 'json')
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertEqual(base64.b64decode(json.loads(lines[0])['body_b64']), body)
        _, raw, _ = bsdump(self.store, '--job', 7, '--body', 'raw')
        self.assertEqual(raw, b'')

    def test_job_details(self):
        _, out, _ = bsdump(self.store, '--job', 5)
        text = out.decode()
        self.assertIn('state        delayed\n', text)
        self.assertIn('delay        3600 s (1h0m)\n', text)
        self.assertRegex(text, r'time-left    3\d\d\d s \(ready at 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\)')
        self.assertIn('ttr          90 s', text)
        self.assertIn('tube         emails\n', text)
        _, out, _ = bsdump(self.store, '--job', 2)
        self.assertIn('buries       1\n', out.decode())

    def test_job_not_found(self):
        _, out, err = bsdump(self.store, '--job', 99, check=1)
        self.assertEqual(out, b'')
        self.assertEqual(err, 'bsdump: %s: no job 99 in the store\n' % self.store)

    def test_pipe_and_file_output_agree(self):
        """Through a pipe the report is spooled; the bytes are the same."""
        with tempfile.TemporaryFile() as f:
            subprocess.run([BSDUMP, self.store, '--list', '-f', 'json'], stdout=f, check=True)
            f.seek(0)
            to_file = f.read()
        _, to_pipe, _ = bsdump(self.store, '--list', '-f', 'json')
        self.assertEqual(to_file, to_pipe)

    def test_bsdump_never_writes(self):
        before = tree_state(self.store)
        for args in ((), ('--list',), ('--job', '1'), ('-f', 'json'), ('--list', '-f', 'json')):
            bsdump(self.store, *args)
        bsdump(self.store, '--binlog', os.path.join(self.tmp, 'never-writes-binlog'))
        bsdump(self.store, '--backup', os.path.join(self.tmp, 'never-writes-backup'))
        self.assertEqual(tree_state(self.store), before)


class Export(Fixture):
    def test_binlog_export_refusals(self):
        out = os.path.join(self.tmp, 'has-binlog')
        os.makedirs(out)
        write_binlog(os.path.join(out, 'binlog.3'), [job_v7(1, 'x', b'x')])
        _, _, err = bsdump(self.store, '--binlog', out, check=1)
        self.assertIn('binlog.3', err)
        self.assertEqual(os.listdir(out), ['binlog.3'])
        _, _, err = bsdump(self.store, '--binlog', self.store, check=1)
        self.assertIn('holds a store', err)

    def test_binlog_export_of_a_job_too_big_for_stock(self):
        tmp = tempfile.mkdtemp(prefix='bsdump-test-', dir=self.tmp)
        store = os.path.join(tmp, 'store')
        srv = start_server(DAEMON, '-b', store, '-z', 100000)
        try:
            c = srv.client()
            c.put_id(b'small')
            c.put_id(b'B' * 65534)
            c.close()
        finally:
            srv.stop()
        out = os.path.join(tmp, 'out')
        _, _, err = bsdump(store, '--binlog', out, check=1)
        self.assertIn('--max-job-size', err)
        self.assertIn('nothing was written', err)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertFalse(os.path.exists(out))
        _, msg, _ = bsdump(store, '--binlog', out, '--max-job-size', 65536)
        self.assertIn(b'-z 65536', msg)
        back = os.path.join(tmp, 'back')
        bsimport(out, back)
        self.assertEqual(comparable(dump_jobs(back)), comparable(dump_jobs(store)))

    def test_binlog_export_in_several_files(self):
        out = os.path.join(self.tmp, 'small-files')
        _, msg, _ = bsdump(self.store, '--binlog', out, '--file-size', 1024)
        files = sorted(n for n in os.listdir(out) if n.startswith('binlog.'))
        self.assertGreater(len(files), 1)
        self.assertIn(('as %d binlog files' % len(files)).encode(), msg)
        back = os.path.join(self.tmp, 'small-files-back')
        bsimport(out, back)
        self.assertEqual(comparable(dump_jobs(back)), comparable(dump_jobs(self.store)))
        self.assertEqual(dump_summary(back)['next_id'], 9)

    def test_json_results_of_binlog_and_backup(self):
        _, out, _ = bsdump(self.store, '--binlog', os.path.join(self.tmp, 'j1'), '-f', 'json')
        r = json.loads(out)
        self.assertEqual((r['jobs'], r['next_id'], r['buried'], r['paused_tubes_dropped']),
                         (8, 9, 1, 1))
        _, out, _ = bsdump(self.store, '--backup', os.path.join(self.tmp, 'j2'), '-f', 'json')
        r = json.loads(out)
        self.assertEqual((r['jobs'], r['next_id']), (8, 9))

    def test_backup_of_a_stopped_store(self):
        dest = os.path.join(self.tmp, 'backup')
        _, out, _ = bsdump(self.store, '--backup', dest)
        self.assertIn(b'To restore it, stop the server', out)
        self.assertIn(('-b %s' % dest).encode(), out)
        self.assertEqual(dump_jobs(dest), dump_jobs(self.store)[:0] + dump_jobs(dest))
        self.assertEqual(comparable(dump_jobs(dest)), comparable(dump_jobs(self.store)))
        self.assertEqual(dump_summary(dest)['next_id'], 9)
        # Not into a directory that holds anything.
        _, _, err = bsdump(self.store, '--backup', dest, check=1)
        self.assertIn('not an empty directory', err)
        f = os.path.join(self.tmp, 'afile')
        open(f, 'w').close()
        bsdump(self.store, '--backup', f, check=1)


class Errors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsdump-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fails(self, store, *args, want, partial=None):
        """Exit 1 with one line on stderr; nothing on stdout, or for a
        listing, the jobs before the damage (partial: their ids)."""
        _, out, err = run(BSDUMP, store, *args, check=1)
        if partial is None:
            self.assertEqual(out, b'')
        elif '-f' in args:
            self.assertEqual([json.loads(x)['id'] for x in out.splitlines()], partial)
        else:
            self.assertEqual([int(x.split()[0]) for x in out.splitlines()[1:]], partial)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith('bsdump: '), err)
        self.assertIn(want, err)

    def store(self, jobs=2):
        store = os.path.join(self.tmp, 'store')
        srv = start_server(DAEMON, '-b', store)
        try:
            c = srv.client()
            for i in range(jobs):
                c.put_id(b'job %d' % i)
            c.close()
        finally:
            srv.stop()
        return store

    def test_missing_and_foreign_directories(self):
        self.fails(os.path.join(self.tmp, 'nope'), want='No such file or directory')
        f = os.path.join(self.tmp, 'file')
        open(f, 'w').close()
        self.fails(f, want='not a directory')
        empty = os.path.join(self.tmp, 'empty')
        os.makedirs(empty)
        self.fails(empty, want='no store')
        self.assertEqual(os.listdir(empty), [])
        binlog = os.path.join(self.tmp, 'binlog')
        os.makedirs(binlog)
        write_binlog(os.path.join(binlog, 'binlog.1'), [job_v7(1, 'x', b'x')])
        self.fails(binlog, want='bsimport')
        self.assertEqual(os.listdir(binlog), ['binlog.1'])
        junk = os.path.join(self.tmp, 'junk')
        os.makedirs(junk)
        with open(os.path.join(junk, 'data.mdb'), 'wb') as fh:
            fh.write(b'not lmdb at all' * 1000)
        self.fails(junk, want='not a valid LMDB file')

    @unittest.skipUnless(HAVE_MDB_TOOLS, 'mdb_dump/mdb_load (lmdb-utils) not installed')
    def test_foreign_lmdb_environment(self):
        d = os.path.join(self.tmp, 'foreign')
        os.makedirs(d)
        mdb_put(d, None, b'key', b'value')
        self.fails(d, want='not a beanstalkd store')
        self.fails(d, '--list', want='not a beanstalkd store')

    @unittest.skipUnless(HAVE_MDB_TOOLS, 'mdb_dump/mdb_load (lmdb-utils) not installed')
    def test_newer_schema(self):
        store = self.store()
        mdb_put(store, 'meta', b'version', (99).to_bytes(4, 'big'))
        self.fails(store, want='newer')
        self.fails(store, '--list', want='newer')

    @unittest.skipUnless(HAVE_MDB_TOOLS, 'mdb_dump/mdb_load (lmdb-utils) not installed')
    def test_corrupt_job_record(self):
        store = self.store()
        key = (2).to_bytes(8, 'big')
        rec = bytearray(mdb_get(store, 'jobs', key))
        rec[0] = 9                                  # no such state
        mdb_put(store, 'jobs', key, bytes(rec))
        for args in ((), ('--binlog', os.path.join(self.tmp, 'o'))):
            with self.subTest(args=args):
                self.fails(store, *args, want='corrupt job record after job 1')
        for args in (('--list',), ('--list', '-f', 'json')):
            with self.subTest(args=args):
                self.fails(store, *args, want='corrupt job record after job 1', partial=[1])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'o')))
        # What comes before it can still be read.
        self.assertEqual([j['id'] for j in dump_jobs(store, '--ids', '1')], [1])

    @unittest.skipUnless(HAVE_MDB_TOOLS, 'mdb_dump/mdb_load (lmdb-utils) not installed')
    def test_body_that_disagrees_with_its_record(self):
        store = self.store()
        key = (1).to_bytes(8, 'big')
        rec = bytearray(mdb_get(store, 'jobs', key))
        rec[40:44] = (1000).to_bytes(4, 'big')      # body size
        mdb_put(store, 'jobs', key, bytes(rec))
        self.fails(store, '--list', want='job 1 has a missing or damaged body', partial=[])
        self.fails(store, '--job', '1', want='job 1 has a missing or damaged body')
        self.fails(store, '--binlog', os.path.join(self.tmp, 'o'), want='job 1 has a missing')

    def test_bad_usage(self):
        store = self.store(0)
        for args in ((), (store, store), (store, '--bogus'), (store, '--state', 'reserved'),
                     (store, '--ids', '5-2'), (store, '--ids', 'x'), (store, '--ids', '-'),
                     (store, '--job', '0'), (store, '--job', 'x'), (store, '--tube', 'a'),
                     (store, '--job', '1', '--state', 'ready'), (store, '--list', '--body', 'raw'),
                     (store, '--job', '1', '--body', 'raw', '-f', 'json'),
                     (store, '--list', '--job', '1'), (store, '--list', '--backup', 'x'),
                     (store, '-z', '70000'), (store, '--binlog', 'x', '-z', '1'),
                     (store, '--format', 'yaml'), (store, '--body', 'hex', '--job', '1'),
                     (store, '--job')):
            with self.subTest(args=args):
                _, out, err = run(BSDUMP, *args, check=2)
                self.assertEqual(out, b'')
                self.assertIn('Try `bsdump --help`', err)
        _, out, _ = bsdump('--help')
        self.assertIn(b'--binlog OUTDIR', out)


class Live(unittest.TestCase):
    """bsdump beside a daemon that keeps writing."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsdump-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def writer(self, srv, acked, stop, latency):
        """Puts jobs one at a time until told to stop; records each id once
        the server has acknowledged it."""
        c = srv.client(timeout=30)
        n = 0
        while not stop.is_set():
            t = time.monotonic()
            jid = c.put_id(b'live job %d ' % n + b'x' * (n % 500), pri=n % 7,
                           delay=3600 if n % 10 == 0 else 0)
            latency.append(time.monotonic() - t)
            acked.append(jid)
            n += 1
        c.close()

    def test_reports_while_the_daemon_writes(self):
        store = os.path.join(self.tmp, 'store')
        srv = start_server(DAEMON, '-b', store)
        acked, latency, stop = [], [], threading.Event()
        th = threading.Thread(target=self.writer, args=(srv, acked, stop, latency))
        th.start()
        try:
            while len(acked) < 50:
                time.sleep(0.01)
            last = 0
            for i in range(15):
                before = len(acked)
                s = dump_summary(store)
                jobs = dump_jobs(store)
                after = len(acked)
                # Everything acknowledged before the report is in it; nothing
                # beyond what was acknowledged after it (plus one in flight).
                self.assertGreaterEqual(s['jobs'], before)
                self.assertGreaterEqual(len(jobs), s['jobs'])
                self.assertLessEqual(len(jobs), after + 1)
                self.assertGreaterEqual(s['jobs'], last)
                last = s['jobs']
                self.assertLessEqual(set(acked[:before]), {j['id'] for j in jobs})
                for j in jobs:
                    self.assertEqual(len(base64.b64decode(j['body_b64'])), j['body_len'])
                _, out, _ = bsdump(store, '--list')
                self.assertGreaterEqual(len(out.splitlines()) - 1, before)
                bsdump(store, '--job', acked[0])
        finally:
            stop.set()
            th.join()
            srv.stop()
        self.assertGreater(len(acked), 100)
        # The server was never held up by the reports.
        self.assertLess(max(latency), 2.0)
        self.assertEqual([j['id'] for j in dump_jobs(store)], acked)

    def backup_under_load(self, *server_args):
        store = os.path.join(self.tmp, 'store')
        dest = os.path.join(self.tmp, 'backup')
        srv = start_server(DAEMON, '-b', store, *server_args)
        acked, latency, stop = [], [], threading.Event()
        th = threading.Thread(target=self.writer, args=(srv, acked, stop, latency))
        th.start()
        try:
            while len(acked) < 300:
                time.sleep(0.01)
            if '-f' in server_args:
                # Acknowledged but not in the last commit: in the journal.
                self.assertGreater(dump_summary(store)['journal_bytes'], 0)
                _, text, _ = bsdump(store)
                self.assertIn(b'not yet in the store', text)
            before = list(acked)
            _, out, _ = bsdump(store, '--backup', dest)
            while len(acked) < len(before) + 100:
                time.sleep(0.01)
        finally:
            stop.set()
            th.join()
            srv.stop()
        self.assertIn(b'To restore it', out)
        # Restore: start the daemon on the backup (it applies a -f journal).
        srv = start_server(DAEMON, '-b', dest)
        try:
            c = srv.client()
            for jid in (before[0], before[len(before) // 2], before[-1]):
                self.assertIsNotNone(peek(c, jid))
            c.close()
        finally:
            srv.stop()
        restored = {j['id'] for j in dump_jobs(dest)}
        missing = set(before) - restored
        self.assertFalse(missing, '%d acknowledged jobs missing from the backup' % len(missing))
        self.assertLessEqual(restored, set(acked))
        return out

    def test_backup_under_write_load(self):
        self.backup_under_load()

    def test_backup_under_write_load_interval_mode(self):
        """-f: acknowledged changes may sit in the journal, not yet in the
        store's last commit; the backup carries the journal along."""
        out = self.backup_under_load('-f', '5000')
        self.assertIn(b'uncommitted journal', out)


if __name__ == '__main__':
    unittest.main()
