"""bsimport: legacy binlog directories into the store.

* Every sample in ../shared/binlog-samples (from the repo top) imports to
  exactly its expected.json, read back through `bsdump --format json`; the
  daemon started on the imported store serves the same jobs; stock
  beanstalkd serves them again from `bsdump --binlog`; store -> binlog ->
  store is the identity.
* Refusals (not a binlog directory, a store that holds jobs, a binlog
  directory given as the store, a locked directory, a store in use), --merge
  renumbering, --dry-run, damaged binlogs (never a crash, never a
  half-written store), a killed import (all or nothing).

The samples are never touched: every test works on a copy.  Tests that need
them skip when they are absent ($BINLOG_SAMPLES overrides the location);
tests that need stock beanstalkd skip when /usr/bin/beanstalkd (or
$BS_STOCK_BEANSTALKD) is absent.  The binaries come from the repo top
($BSDUMP, $BSIMPORT and $BEANSTALKD override them).

This module also holds the helpers test_bsdump.py uses.
"""
import base64
import hashlib
import json
import os
import pty
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, 'tests', 'protocol'))
import bstest  # noqa: E402

SAMPLES = os.environ.get('BINLOG_SAMPLES') or os.path.join(TOP, '..', 'shared', 'binlog-samples')
BSDUMP = os.environ.get('BSDUMP', os.path.join(TOP, 'bsdump'))
BSIMPORT = os.environ.get('BSIMPORT', os.path.join(TOP, 'bsimport'))
DAEMON = os.environ.get('BEANSTALKD', os.path.join(TOP, 'beanstalkd'))
STOCK = os.environ.get('BS_STOCK_BEANSTALKD', '/usr/bin/beanstalkd')
NS = 1000000000
STOCK_Z = 65535


# ---- helpers (shared with test_bsdump.py) ----

def have_samples():
    return os.path.isdir(SAMPLES) and bool(sample_names())


def sample_names():
    try:
        return sorted(n for n in os.listdir(SAMPLES)
                      if os.path.isfile(os.path.join(SAMPLES, n, 'expected.json')))
    except OSError:
        return []


def needs_samples(fn):
    return unittest.skipUnless(have_samples(), 'binlog samples not found at %s' % SAMPLES)(fn)


def needs_stock(fn):
    return unittest.skipUnless(os.access(STOCK, os.X_OK), 'stock beanstalkd not installed at %s' % STOCK)(fn)


def expected(name):
    with open(os.path.join(SAMPLES, name, 'expected.json')) as f:
        return json.load(f)


def copy_sample(name, dst):
    """The sample's binlog files and lock, writable, in a new dst."""
    src = os.path.join(SAMPLES, name)
    os.makedirs(dst)
    for n in os.listdir(src):
        if n.startswith('binlog.') or n == 'lock':
            shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
            os.chmod(os.path.join(dst, n), 0o600)
    return dst


def run(tool, *args, check=None, timeout=120):
    """Runs a tool; returns (returncode, stdout bytes, stderr str).  check=0
    (or another code) asserts the exit status."""
    p = subprocess.run([tool] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    err = p.stderr.decode(errors='replace')
    if p.returncode < 0:
        raise AssertionError('%s %s died of signal %d: %s' % (tool, args, -p.returncode, err))
    if check is not None and p.returncode != check:
        raise AssertionError('%s %s: exit %d, wanted %d\nstdout: %s\nstderr: %s'
                             % (os.path.basename(tool), ' '.join(map(str, args)), p.returncode,
                                check, p.stdout.decode(errors='replace')[:2000], err))
    return p.returncode, p.stdout, err


def bsimport(*args, check=0):
    return run(BSIMPORT, *args, check=check)


def bsdump(*args, check=0):
    return run(BSDUMP, *args, check=check)


def dump_jobs(store, *extra):
    """Every job of the store as bsdump --list --format json gives it."""
    _, out, _ = bsdump(store, '--list', '--format', 'json', *extra)
    return [json.loads(line) for line in out.decode().splitlines()]


def dump_summary(store):
    _, out, _ = bsdump(store, '--format', 'json')
    lines = out.decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def comparable(jobs):
    """Jobs without what depends on the clock of the reading: age and time
    left, the stored state, and the deadline of jobs that are not delayed."""
    out = {}
    for j in jobs:
        j = dict(j)
        for k in ('age', 'time_left', 'stored_state'):
            j.pop(k, None)
        if j['state'] != 'delayed':
            j.pop('deadline_ns', None)
        out[j['id']] = j
    return out


def tree_state(path):
    """Names and hashes of every file under path (None if absent), but
    LMDB's lock.mdb."""
    if not os.path.exists(path):
        return None
    state = {}
    for root, _, files in os.walk(path):
        for n in files:
            if n == 'lock.mdb':
                continue        # LMDB's reader table: every reader writes it
            p = os.path.join(root, n)
            with open(p, 'rb') as f:
                state[os.path.relpath(p, path)] = hashlib.sha256(f.read()).hexdigest()
    return state


def start_server(binary, *args):
    """A daemon (ours or stock) on a free loopback port."""
    saved = bstest.BINARY
    bstest.BINARY = binary
    try:
        return bstest.Server(*[str(a) for a in args])
    finally:
        bstest.BINARY = saved


def stats_job(c, jid):
    head, body = c.body_reply('stats-job %d' % jid)
    if not head.startswith('OK'):
        return None
    return bstest.parse_yaml(body.decode())


def peek(c, jid):
    head, body = c.body_reply('peek %d' % jid)
    return body if head.startswith('FOUND') else None


def job_v7(jid, tube, body, state=1, pri=0, delay=0, ttr=60 * NS, created=None,
           deadline=0, counts=(0, 0, 0, 0, 0)):
    """One full version-7 binlog record, as stock 1.12 writes it."""
    if isinstance(tube, str):
        tube = tube.encode()
    created = created if created is not None else time.time_ns()
    rec = struct.pack('<QI4xqqi4xqqIIIIIB3x', jid, pri, delay, ttr, len(body) + 2, created,
                      deadline, *counts, state)
    return struct.pack('<i', len(tube)) + tube + rec + body + b'\r\n'


def write_binlog(path, records, version=7):
    with open(path, 'wb') as f:
        f.write(struct.pack('<i', version))
        for r in records:
            f.write(r)


# ---- the samples ----

def expected_state(e, t_lo, t_hi):
    """The states a job of expected.json may have after an import at some
    wall-clock time in [t_lo, t_hi]: a delayed job is delayed only while its
    stored deadline is ahead."""
    if 'state_rule' not in e:
        return {e['state']}
    dl = e['deadline']['unix_ns']
    if dl > t_hi:
        return {'delayed'}
    if dl <= t_lo:
        return {'ready'}
    return {'ready', 'delayed'}


FIELDS = (('tube', 'tube'), ('priority', 'pri'), ('ttr', 'ttr'), ('delay', 'delay'),
          ('body_len', 'body_len'), ('body_b64', 'body_b64'), ('reserves', 'reserves'),
          ('timeouts', 'timeouts'), ('releases', 'releases'), ('buries', 'buries'),
          ('kicks', 'kicks'), ('created_at_unix_ns', 'created_ns'))


class Samples(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def imported(self, name, *extra):
        """Copy, import; returns (store, stderr, t_lo)."""
        src = copy_sample(name, os.path.join(self.tmp, name + '-binlog'))
        store = os.path.join(self.tmp, name + '-store')
        t_lo = time.time_ns()
        _, _, err = bsimport(src, store, *extra)
        return src, store, err, t_lo

    def check_jobs(self, exp_jobs, absent, got, t_lo, t_hi):
        by_id = {j['id']: j for j in got}
        self.assertEqual(sorted(by_id), [e['id'] for e in exp_jobs])
        for e in exp_jobs:
            g = by_id[e['id']]
            for ke, kg in FIELDS:
                self.assertEqual(g[kg], e[ke], 'job %d: %s' % (e['id'], ke))
            self.assertIn(g['state'], expected_state(e, t_lo, t_hi), 'job %d' % e['id'])
            if g['state'] == 'delayed':
                self.assertEqual(g['deadline_ns'], e['deadline']['unix_ns'])
                left = (e['deadline']['unix_ns'] - time.time_ns()) // NS
                self.assertLessEqual(abs(g['time_left'] - left), 2)
        for a in absent:
            self.assertNotIn(a, by_id)

    @needs_samples
    def test_every_sample_imports_to_its_expected_json(self):
        for name in sample_names():
            with self.subTest(sample=name):
                exp = expected(name)
                src, store, err, t_lo = self.imported(name)
                jobs = dump_jobs(store)
                summ = dump_summary(store)
                t_hi = time.time_ns()
                self.check_jobs(exp['jobs'], exp['absent_ids'], jobs, t_lo, t_hi)
                self.assertEqual(summ['jobs'], exp['job_count'])
                ref = exp['reference_load']
                # Never below stock's next id (ours is the safe one, above
                # every id any record used).
                self.assertGreaterEqual(summ['next_id'], ref['next_job_id'])
                self.assertGreater(summ['next_id'], max([j['id'] for j in exp['jobs']] or [0]))
                # Tubes: those with jobs; stock lists "default" always.
                self.assertLessEqual(set(summ['tubes']), set(ref['list_tubes']))
                self.assertLessEqual(set(ref['list_tubes']) - {'default'}, set(summ['tubes']))
                # Every warning stock printed about a file, with the path.
                for line in ref['stderr']:
                    if line.startswith('<DIR>'):
                        self.assertIn(line.replace('<DIR>', src), err)
                if not ref['stderr']:
                    self.assertNotIn('warning', err)

    @needs_samples
    def test_size_limit_as_stock_default(self):
        """-z 65535 loads what stock with default options loads (sample 06)."""
        for name in sample_names():
            exp = expected(name)
            dflt = exp.get('reference_load_default_options')
            if not dflt or 'ids_loaded' not in dflt:
                continue
            with self.subTest(sample=name):
                src, store, err, _ = self.imported(name, '-z', STOCK_Z)
                self.assertEqual([j['id'] for j in dump_jobs(store)], dflt['ids_loaded'])
                for line in dflt['stderr']:
                    if line.startswith('<DIR>'):
                        self.assertIn(line.replace('<DIR>', src), err)
                self.assertGreaterEqual(dump_summary(store)['next_id'], dflt['next_job_id'])

    @needs_samples
    def test_daemon_serves_imported_jobs(self):
        for name in sample_names():
            with self.subTest(sample=name):
                exp = expected(name)
                _, store, _, t_lo = self.imported(name)
                next_id = dump_summary(store)['next_id']
                srv = start_server(DAEMON, '-b', store, '-z', 1 << 20)
                try:
                    c = srv.client()
                    t_hi = time.time_ns()
                    for e in exp['jobs']:
                        self.assertEqual(peek(c, e['id']), base64.b64decode(e['body_b64']))
                        st = stats_job(c, e['id'])
                        self.assertIsNotNone(st, 'job %d' % e['id'])
                        self.assertIn(st['state'], expected_state(e, t_lo, t_hi))
                        for k, ke in (('tube', 'tube'), ('pri', 'priority'), ('ttr', 'ttr'),
                                      ('delay', 'delay'), ('reserves', 'reserves'),
                                      ('timeouts', 'timeouts'), ('releases', 'releases'),
                                      ('buries', 'buries'), ('kicks', 'kicks')):
                            self.assertEqual(str(st[k]), str(e[ke]), 'job %d %s' % (e['id'], k))
                        age = (time.time_ns() - e['created_at_unix_ns']) // NS
                        self.assertLessEqual(abs(int(st['age']) - age), 2)
                    for a in exp['absent_ids']:
                        self.assertIsNone(peek(c, a), 'absent job %d' % a)
                    # Buried jobs kick in the order stock would kick them.
                    for tube, order in exp['reference_load']['buried_kick_order'].items():
                        self.assertEqual(c.cmd('use %s' % tube), 'USING %s' % tube)
                        for jid in order:
                            self.assertEqual(stats_job(c, jid)['state'], 'buried')
                            self.assertEqual(c.cmd('kick 1'), 'KICKED 1')
                            self.assertEqual(stats_job(c, jid)['state'], 'ready')
                    self.assertEqual(c.put_id('after the import'), next_id)
                    c.close()
                finally:
                    srv.stop()

    @needs_samples
    @needs_stock
    def test_stock_serves_the_export_of_an_imported_sample(self):
        """binlog -> bsimport -> bsdump --binlog -> stock 1.12: same jobs."""
        for name in sample_names():
            with self.subTest(sample=name):
                _, store, _, _ = self.imported(name)
                jobs = dump_jobs(store)
                next_id = dump_summary(store)['next_id']
                z = max([STOCK_Z] + [j['body_len'] + 2 for j in jobs])
                out = os.path.join(self.tmp, name + '-export')
                bsdump(store, '--binlog', out, '--max-job-size', z)
                srv = start_server(STOCK, '-b', out, '-z', z)
                try:
                    c = srv.client()
                    for j in jobs:
                        self.assertEqual(peek(c, j['id']), base64.b64decode(j['body_b64']))
                        st = stats_job(c, j['id'])
                        for k in ('tube', 'state', 'pri', 'ttr', 'delay', 'reserves', 'timeouts',
                                  'releases', 'buries', 'kicks'):
                            self.assertEqual(str(st[k]), str(j[k]), 'job %d %s' % (j['id'], k))
                        self.assertLessEqual(abs(int(st['age']) - j['age']), 2)
                        self.assertLessEqual(abs(int(st['time-left']) - j['time_left']), 2)
                    self.assertEqual(c.put_id('after the export'), next_id)
                    stats = c.yaml('stats')
                    self.assertEqual(sum(int(stats['current-jobs-' + s])
                                         for s in ('ready', 'delayed', 'buried')), len(jobs) + 1)
                    c.close()
                    # Stock read every record without a complaint.
                    self.assertNotIn('rror', srv.stderr_text())
                finally:
                    srv.stop()

    @needs_samples
    def test_store_to_binlog_to_store_is_the_identity(self):
        for name in sample_names():
            with self.subTest(sample=name):
                _, store, _, _ = self.imported(name)
                check_identity(self, store, os.path.join(self.tmp, name))


def buried_order(jobs):
    """Per tube, the buried jobs in the order a restarted server kicks them:
    by the time they were buried (the record's deadline field), then id."""
    order = {}
    for j in sorted((j for j in jobs if j['state'] == 'buried'),
                    key=lambda j: (j['deadline_ns'], j['id'])):
        order.setdefault(j['tube'], []).append(j['id'])
    return order


def check_identity(t, store, scratch):
    """store -> bsdump --binlog -> bsimport -> store gives the same jobs, the
    same kick order of buried jobs and the same next id."""
    before = dump_jobs(store)
    summ = dump_summary(store)
    z = max([STOCK_Z] + [j['body_len'] + 2 for j in before])
    out, back = scratch + '-rt-binlog', scratch + '-rt-store'
    bsdump(store, '--binlog', out, '-z', z)
    bsimport(out, back)
    after = dump_jobs(back)
    # A buried job's "buried at" is not in a binlog; its place in the kick
    # order is.
    strip = lambda jobs: {i: {k: v for k, v in j.items() if not (  # noqa: E731
        k == 'deadline_ns' and j['state'] == 'buried')} for i, j in comparable(jobs).items()}
    t.assertEqual(strip(after), strip(before))
    t.assertEqual(buried_order(after), buried_order(before))
    t.assertEqual(dump_summary(back)['next_id'], summ['next_id'])


def kick_order(c, tube, ids):
    """Kicks a tube's buried jobs one at a time; the ids in kick order."""
    assert c.cmd('use %s' % tube) == 'USING %s' % tube
    order = []
    for _ in ids:
        assert c.cmd('kick 1') == 'KICKED 1'
        order += [j for j in ids if j not in order and stats_job(c, j)['state'] != 'buried']
    return order


SAMPLES_AT_START = tree_state(SAMPLES) if have_samples() else None


def tearDownModule():
    """The tests only ever work on copies: the samples are as they were."""
    if SAMPLES_AT_START is not None and tree_state(SAMPLES) != SAMPLES_AT_START:
        raise AssertionError('the binlog samples in %s were changed by a test' % SAMPLES)


class DaemonStores(unittest.TestCase):
    """Stores written by the daemon itself, through the protocol."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_identity_for_a_store_the_daemon_wrote(self):
        store = os.path.join(self.tmp, 'store')
        srv = start_server(DAEMON, '-b', store)
        try:
            c = srv.client()
            c.put_id(b'ready \x00\xff\r\n', pri=7, ttr=45)
            c.put_id(b'', pri=1)
            c.cmd('use other.tube')
            c.put_id(b'delayed an hour', pri=3, delay=3600, ttr=120)
            c.put_id(b'delayed a second', delay=1)
            b = c.put_id(b'to bury', pri=9)
            k = c.put_id(b'buried then kicked')
            r = c.put_id(b'released with delay')
            c.cmd('watch other.tube')
            c.cmd('ignore default')
            for jid in (b, k, r):
                got = c.cmd('reserve-job %d' % jid)
                self.assertTrue(got.startswith('RESERVED'), got)
                c.exact(int(got.split()[2]) + 2)
            self.assertEqual(c.cmd('bury %d 99' % b), 'BURIED')
            self.assertEqual(c.cmd('bury %d 5' % k), 'BURIED')
            self.assertEqual(c.cmd('kick-job %d' % k), 'KICKED')
            self.assertEqual(c.cmd('release %d 4 600' % r), 'RELEASED')
            self.assertEqual(c.cmd('pause-tube other.tube 300'), 'PAUSED')
            d = c.put_id(b'deleted')
            self.assertEqual(c.cmd('delete %d' % d), 'DELETED')
            c.close()
        finally:
            srv.stop()
        time.sleep(1.1)         # the one-second delay is over: stored delayed, now ready
        jobs = {j['id']: j for j in dump_jobs(store)}
        self.assertEqual(jobs[b]['state'], 'buried')
        self.assertEqual(jobs[b]['buries'], 1)
        self.assertEqual(jobs[r]['releases'], 1)
        self.assertTrue(any(j['stored_state'] == 'delayed' and j['state'] == 'ready'
                            for j in jobs.values()))
        check_identity(self, store, os.path.join(self.tmp, 'x'))
        # The pause is not exported (stock does not keep pauses): said on stderr.
        _, _, err = bsdump(store, '--binlog', os.path.join(self.tmp, 'again'))
        self.assertIn('paused tube', err)


class KickOrder(unittest.TestCase):
    """Buried jobs come back to kick in the order stock would kick them, in
    both directions, even where that is not id order."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def served_order(self, binary, d, tube, ids):
        srv = start_server(binary, '-b', d)
        try:
            c = srv.client()
            order = kick_order(c, tube, ids)
            c.close()
            return order
        finally:
            srv.stop()

    def test_replay_order_is_kept(self):
        # Full records in the order 5, 3, 4, 1: stock enqueues jobs in the
        # order it first sees them, so it kicks 5, 3, 1.
        src = os.path.join(self.tmp, 'binlog')
        os.makedirs(src)
        recs = [job_v7(5, 'k', b'five', state=3, counts=(1, 0, 0, 0, 0)),
                job_v7(3, 'k', b'three', state=3),
                job_v7(4, 'k', b'four'),
                job_v7(1, 'k', b'one', state=3)]
        write_binlog(os.path.join(src, 'binlog.1'), recs)
        want = [5, 3, 1]
        if os.access(STOCK, os.X_OK):
            copy = os.path.join(self.tmp, 'stock-copy')
            shutil.copytree(src, copy)
            self.assertEqual(self.served_order(STOCK, copy, 'k', want), want)
        store = os.path.join(self.tmp, 'store')
        bsimport(src, store)
        self.assertEqual(buried_order(dump_jobs(store)), {'k': want})
        out = os.path.join(self.tmp, 'export')
        bsdump(store, '--binlog', out)
        if os.access(STOCK, os.X_OK):
            copy = os.path.join(self.tmp, 'export-copy')
            shutil.copytree(out, copy)
            self.assertEqual(self.served_order(STOCK, copy, 'k', want), want)
        back = os.path.join(self.tmp, 'back')
        bsimport(out, back)
        self.assertEqual(buried_order(dump_jobs(back)), {'k': want})
        self.assertEqual(self.served_order(DAEMON, store, 'k', want), want)

    def test_bury_order_of_the_daemon_reaches_stock(self):
        store = os.path.join(self.tmp, 'store')
        srv = start_server(DAEMON, '-b', store)
        try:
            c = srv.client()
            c.cmd('use b')
            ids = [c.put_id('job %d' % i) for i in range(4)]
            want = [ids[2], ids[0], ids[3], ids[1]]
            for jid in want:
                got = c.cmd('reserve-job %d' % jid)
                c.exact(int(got.split()[2]) + 2)
                self.assertEqual(c.cmd('bury %d 0' % jid), 'BURIED')
            c.close()
        finally:
            srv.stop()
        self.assertEqual(buried_order(dump_jobs(store)), {'b': want})
        out = os.path.join(self.tmp, 'export')
        bsdump(store, '--binlog', out)
        if os.access(STOCK, os.X_OK):
            copy = os.path.join(self.tmp, 'export-copy')
            shutil.copytree(out, copy)
            self.assertEqual(self.served_order(STOCK, copy, 'b', want), want)
        back = os.path.join(self.tmp, 'back')
        bsimport(out, back)
        self.assertEqual(self.served_order(DAEMON, back, 'b', want), want)


class Refusals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def small_binlog(self, name='binlog', ids=(1, 2, 3), tube='default'):
        d = self.path(name)
        os.makedirs(d)
        write_binlog(os.path.join(d, 'binlog.1'),
                     [job_v7(i, tube, b'body %d' % i, pri=i) for i in ids])
        return d

    def one_line_error(self, err):
        lines = [x for x in err.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('bsimport: '), err)

    def test_not_a_binlog_directory(self):
        empty = self.path('empty')
        os.makedirs(empty)
        other = self.path('other')
        os.makedirs(other)
        with open(os.path.join(other, 'notes.txt'), 'w') as f:
            f.write('hello')
        for src, what in ((empty, 'not a binlog directory'), (other, 'not a binlog directory'),
                          (self.path('missing'), 'No such file'),
                          (os.path.join(other, 'notes.txt'), 'not a directory')):
            with self.subTest(src=src):
                store = self.path('store')
                _, _, err = bsimport(src, store, check=1)
                self.assertIn(what, err)
                self.one_line_error(err)
                self.assertFalse(os.path.exists(store), 'a failed import left %s' % store)

    def test_a_store_given_as_the_binlog_directory(self):
        src = self.small_binlog()
        store = self.path('store')
        bsimport(src, store)
        _, _, err = bsimport(store, self.path('store2'), check=1)
        self.assertIn('not binlog files', err)

    def test_store_that_holds_jobs(self):
        src = self.small_binlog()
        store = self.path('store')
        bsimport(src, store)
        before = tree_state(store), dump_jobs(store)
        _, _, err = bsimport(src, store, check=1)
        self.assertIn('already holds 3 jobs', err)
        self.assertIn('--merge', err)
        self.one_line_error(err)
        self.assertEqual((tree_state(store), dump_jobs(store)), before)

    def test_binlog_directory_given_as_the_store(self):
        src = self.small_binlog()
        other = self.small_binlog('other', ids=(7,))
        before = tree_state(other)
        _, _, err = bsimport(src, other, check=1)
        self.assertIn('binlog directory, not a store', err)
        self.assertEqual(tree_state(other), before)
        _, _, err = bsimport(src, src, check=1)
        self.assertEqual(tree_state(other), before)

    def test_directory_of_other_files_as_the_store(self):
        src = self.small_binlog()
        d = self.path('photos')
        os.makedirs(d)
        with open(os.path.join(d, 'cat.jpg'), 'wb') as f:
            f.write(b'\xff\xd8')
        _, _, err = bsimport(src, d, check=1)
        self.assertIn('not empty', err)
        self.assertEqual(sorted(os.listdir(d)), ['cat.jpg'])

    def test_empty_directory_is_fine(self):
        src = self.small_binlog()
        d = self.path('empty')
        os.makedirs(d)
        bsimport(src, d)
        self.assertEqual([j['id'] for j in dump_jobs(d)], [1, 2, 3])

    def test_empty_store_is_fine(self):
        store = self.path('store')
        srv = start_server(DAEMON, '-b', store)
        srv.stop()
        bsimport(self.small_binlog(), store)
        self.assertEqual([j['id'] for j in dump_jobs(store)], [1, 2, 3])

    def test_locked_binlog_directory(self):
        """A directory a server still runs on (its lock is held)."""
        src = self.small_binlog()
        # Held by another process, as a server holds it (fcntl locks are per
        # process, so this one could not conflict with itself).
        p = subprocess.Popen([sys.executable, '-c',
                              'import fcntl,sys,time\nf=open(sys.argv[1],"w")\n'
                              'fcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\n'
                              'time.sleep(60)', os.path.join(src, 'lock')],
                             stdout=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline().strip(), b'locked')
            _, _, err = bsimport(src, self.path('store'), check=1)
            self.assertIn('locked', err)
            self.assertFalse(os.path.exists(self.path('store')))
            # The operator's word that no server runs there.
            bsimport(src, self.path('store'), '--no-lock')
            self.assertEqual(len(dump_jobs(self.path('store'))), 3)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()

    def test_store_in_use_by_a_server(self):
        store = self.path('store')
        srv = start_server(DAEMON, '-b', store)
        try:
            _, _, err = bsimport(self.small_binlog(), store, '--merge', check=1)
            self.assertIn('in use', err)
            c = srv.client()
            self.assertEqual(c.put_id('still serving'), 1)
            c.close()
        finally:
            srv.stop()

    def test_store_with_an_unapplied_journal(self):
        """A -f server killed before its commit leaves changes only in its
        journal; an import beside them could collide with them."""
        store = self.path('store')
        srv = start_server(DAEMON, '-b', store, '-f', 600000)
        try:
            c = srv.client()
            c.put_id('only in the journal')
            c.close()
            srv.signal(signal.SIGKILL)
            srv.proc.wait()
        finally:
            srv.stop()
        self.assertGreater(os.path.getsize(os.path.join(store, 'journal')), 0)
        before = tree_state(store)
        _, _, err = bsimport(self.small_binlog(), store, '--merge', check=1)
        self.assertIn('journal', err)
        self.assertEqual(tree_state(store), before)
        # Once a server has applied it, the import goes ahead.
        srv = start_server(DAEMON, '-b', store)
        srv.stop()
        bsimport(self.small_binlog('again'), store, '--merge')
        self.assertEqual(len(dump_jobs(store)), 4)

    def test_bad_usage(self):
        src = self.small_binlog()
        for args in ((), (src,), (src, 'a', 'b'), (src, self.path('s'), '--bogus'),
                     (src, self.path('s'), '-z', 'x'), (src, self.path('s'), '-z', '1'),
                     (src, self.path('s'), '-q', '-v')):
            with self.subTest(args=args):
                _, _, err = bsimport(*args, check=2)
                self.assertIn('Try `bsimport --help`', err)
        self.assertFalse(os.path.exists(self.path('s')))
        _, out, _ = bsimport('--help', check=0)
        self.assertIn(b'--merge', out)

    def test_unknown_version_file(self):
        src = self.small_binlog()
        write_binlog(os.path.join(src, 'binlog.2'), [job_v7(9, 'default', b'v1 job')], version=1)
        _, _, err = bsimport(src, self.path('store'), check=1)
        self.assertIn('--skip-bad-version', err)
        self.assertFalse(os.path.exists(self.path('store')))
        _, _, err = bsimport(src, self.path('store'), '--skip-bad-version')
        self.assertIn('unknown version: 1', err)
        self.assertEqual([j['id'] for j in dump_jobs(self.path('store'))], [1, 2, 3])

    def test_invalid_tube_name_refused_whole(self):
        """Stock loads any tube name from its binlog; the protocol (and this
        server) allows fewer.  The import is refused as a whole."""
        src = self.path('bad')
        os.makedirs(src)
        write_binlog(os.path.join(src, 'binlog.1'),
                     [job_v7(1, 'good', b'a'), job_v7(2, 'bad tube!', b'b'), job_v7(3, 'good', b'c')])
        store = self.path('store')
        _, _, err = bsimport(src, store, check=1)
        self.assertIn('bad tube!', err)
        self.assertIn('nothing was imported', err)
        self.assertFalse(os.path.exists(store))


class Merge(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def binlog(self, name, ids, tube):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        write_binlog(os.path.join(d, 'binlog.1'),
                     [job_v7(i, tube, ('%s %d' % (tube, i)).encode(), pri=i) for i in ids])
        return d

    def test_merge_renumbers_taken_ids_and_reports_them(self):
        store = os.path.join(self.tmp, 'store')
        bsimport(self.binlog('a', (1, 2, 3, 10), 'first'), store)
        self.assertEqual(dump_summary(store)['next_id'], 11)
        _, out, _ = bsimport(self.binlog('b', (2, 5, 10, 12), 'second'), store, '--merge')
        out = out.decode()
        # Taken: 2 and 10.  Fresh ids start above both stores' next ids (11, 13).
        self.assertIn('2 -> 13', out)
        self.assertIn('10 -> 14', out)
        self.assertEqual(len([x for x in out.splitlines() if x.startswith('  ') and ' -> ' in x]), 2)
        jobs = {j['id']: j for j in dump_jobs(store)}
        self.assertEqual(sorted(jobs), [1, 2, 3, 5, 10, 12, 13, 14])
        body = lambda j: base64.b64decode(jobs[j]['body_b64'])  # noqa: E731
        self.assertEqual(body(2), b'first 2')
        self.assertEqual(body(10), b'first 10')
        self.assertEqual(body(13), b'second 2')
        self.assertEqual(body(14), b'second 10')
        self.assertEqual(body(12), b'second 12')
        self.assertEqual(jobs[13]['pri'], 2)
        self.assertEqual(dump_summary(store)['next_id'], 15)
        # The daemon agrees.
        srv = start_server(DAEMON, '-b', store)
        try:
            c = srv.client()
            self.assertEqual(peek(c, 14), b'second 10')
            self.assertEqual(c.put_id('new'), 15)
            c.close()
        finally:
            srv.stop()

    def test_merge_dry_run_reports_and_writes_nothing(self):
        store = os.path.join(self.tmp, 'store')
        bsimport(self.binlog('a', (1, 2), 'first'), store)
        before = tree_state(store)
        _, out, _ = bsimport(self.binlog('b', (2, 3), 'second'), store, '--merge', '--dry-run')
        self.assertIn(b'would import 2 jobs', out)
        self.assertIn(b'2 -> 4', out)
        self.assertEqual(tree_state(store), before)


class DryRun(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @needs_samples
    def test_dry_run_writes_nothing(self):
        for name in sample_names():
            with self.subTest(sample=name):
                src = copy_sample(name, os.path.join(self.tmp, name))
                src_before = tree_state(src)
                store = os.path.join(self.tmp, name + '-store')
                _, out, _ = bsimport(src, store, '--dry-run', '--verbose')
                self.assertFalse(os.path.exists(store))
                n = expected(name)['job_count']
                self.assertIn(('would import %d job' % n).encode(), out)
                self.assertEqual(out.count(b'would import job'), n)
                self.assertEqual(tree_state(src), src_before)
                empty = os.path.join(self.tmp, name + '-empty')
                os.makedirs(empty)
                bsimport(src, empty, '-n')
                self.assertEqual(os.listdir(empty), [])


class Damage(unittest.TestCase):
    """Damaged binlogs: never a crash, never a half-written store."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_outcome(self, src, store, before):
        code, _, err = run(BSIMPORT, src, store, '--merge')
        self.assertIn(code, (0, 1), err)
        if code == 1:
            # Nothing changed, and one clear message.
            self.assertEqual(tree_state(store), before[0])
            self.assertIn('bsimport: ', err)
        if os.path.exists(store):
            jobs = dump_jobs(store)
            if code == 1:
                self.assertEqual(jobs, before[1])
            for j in jobs:
                self.assertEqual(len(base64.b64decode(j['body_b64'])), j['body_len'])
        return code

    @needs_samples
    def test_truncated_and_flipped_samples(self):
        rng = random.Random(1234)
        codes = []
        for name in sample_names():
            src0 = os.path.join(SAMPLES, name)
            files = sorted(n for n in os.listdir(src0) if n.startswith('binlog.'))
            for trial in range(8):
                with self.subTest(sample=name, trial=trial):
                    case = os.path.join(self.tmp, '%s-%d' % (name, trial))
                    src = copy_sample(name, case + '-binlog')
                    victim = os.path.join(src, rng.choice(files))
                    size = os.path.getsize(victim)
                    if trial % 2 == 0:
                        os.truncate(victim, rng.randrange(0, max(size, 1)))
                    else:
                        with open(victim, 'r+b') as f:
                            for _ in range(rng.randrange(1, 6)):
                                f.seek(rng.randrange(0, max(size, 1)))
                                f.write(bytes([rng.randrange(256)]))
                    # A store that already holds jobs: a failure must leave
                    # it exactly as it was.
                    store, seed = case + '-store', case + '-seed'
                    os.makedirs(seed)
                    write_binlog(os.path.join(seed, 'binlog.1'),
                                 [job_v7(1000000 + i, 'seed', b'seed') for i in range(3)])
                    bsimport(seed, store)
                    before = (tree_state(store), dump_jobs(store))
                    codes.append(self.check_outcome(src, store, before))
                    shutil.rmtree(case + '-store')
        self.assertIn(0, codes)

    def test_failure_mid_import_leaves_the_store_as_it_was(self):
        """The second job's tube is refused after the first was written into
        the transaction: the import is rolled back."""
        store = os.path.join(self.tmp, 'store')
        seed = os.path.join(self.tmp, 'seed')
        os.makedirs(seed)
        write_binlog(os.path.join(seed, 'binlog.1'), [job_v7(i, 'seed', b'seed') for i in (1, 2)])
        bsimport(seed, store)
        before = (tree_state(store), dump_jobs(store), dump_summary(store)['next_id'])
        bad = os.path.join(self.tmp, 'bad')
        os.makedirs(bad)
        write_binlog(os.path.join(bad, 'binlog.1'),
                     [job_v7(i, 'fine', b'x' * 5000) for i in range(1, 200)] +
                     [job_v7(500, 'no good', b'y')])
        _, _, err = bsimport(bad, store, '--merge', check=1)
        self.assertIn('nothing was imported', err)
        self.assertEqual((tree_state(store), dump_jobs(store), dump_summary(store)['next_id']),
                         before)
        # Into a new directory: no directory is left behind.
        _, _, err = bsimport(bad, os.path.join(self.tmp, 'new'), check=1)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'new')))
        # Into an empty one: it stays empty.
        empty = os.path.join(self.tmp, 'empty')
        os.makedirs(empty)
        bsimport(bad, empty, check=1)
        self.assertEqual(os.listdir(empty), [])

    def test_killed_import_is_all_or_nothing(self):
        src = os.path.join(self.tmp, 'big')
        os.makedirs(src)
        n = 150000
        now = time.time_ns()
        write_binlog(os.path.join(src, 'binlog.1'),
                     [job_v7(i, 'bulk', b'%064d' % i, pri=i % 1000, created=now) for i in range(1, n + 1)])
        store = os.path.join(self.tmp, 'store')
        p = subprocess.Popen([BSIMPORT, src, store, '--verbose'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        seen = 0
        for line in p.stdout:
            if line.startswith(b'import job'):
                seen += 1
                if seen == n // 2:
                    break
        p.kill()
        p.wait()
        p.stdout.close()
        self.assertEqual(seen, n // 2, 'the import ended before it could be killed')
        self.assertEqual(dump_summary(store)['jobs'], 0)
        # The store is sound, and the import can simply be run again.
        bsimport(src, store, '--quiet')
        summ = dump_summary(store)
        self.assertEqual(summ['jobs'], n)
        self.assertEqual(summ['next_id'], n + 1)

    def test_body_without_crlf_is_imported_as_stock_serves_it(self):
        src = os.path.join(self.tmp, 'nocrlf')
        os.makedirs(src)
        rec = bytearray(job_v7(1, 'default', b'abcdef'))
        rec[-2:] = b'XY'
        write_binlog(os.path.join(src, 'binlog.1'), [bytes(rec), job_v7(2, 'default', b'ok')])
        store = os.path.join(self.tmp, 'store')
        _, _, err = bsimport(src, store)
        self.assertIn('job 1', err)
        self.assertIn('CR LF', err)
        jobs = dump_jobs(store)
        self.assertEqual(base64.b64decode(jobs[0]['body_b64']), b'abcdef')


class Progress(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='bsimport-test-')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_progress_only_on_a_terminal(self):
        src = os.path.join(self.tmp, 'big')
        os.makedirs(src)
        write_binlog(os.path.join(src, 'binlog.1'),
                     [job_v7(i, 'bulk', b'x' * 200) for i in range(1, 3001)])
        # stderr a pipe: no progress, but the summary on stdout.
        _, out, err = bsimport(src, os.path.join(self.tmp, 'a'))
        self.assertEqual(err, '')
        self.assertIn(b'imported 3000 jobs', out)
        self.assertIn(b'ready 3000', out)
        # stderr a terminal: progress lines.
        master, slave = pty.openpty()
        p = subprocess.Popen([BSIMPORT, src, os.path.join(self.tmp, 'b')],
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        tty = b''
        while True:
            r, _, _ = select.select([master], [], [], 30)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
        p.wait()
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b'of 3000 jobs', tty)
        self.assertIn(b'imported 3000 jobs', p.stdout.read())
        p.stdout.close()


if __name__ == '__main__':
    unittest.main()
