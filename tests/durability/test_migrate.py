"""Schema versions: frozen stores of every released version open and serve
their jobs; a newer or foreign store is refused and left untouched."""
import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

import bstest

FIXTURES = os.path.join(bstest.TOP, "tests", "fixtures")


def have_lmdb_utils():
    return shutil.which("mdb_dump") and shutil.which("mdb_load")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@unittest.skipIf(bstest.REFERENCE, "our store only")
class FixtureTest(unittest.TestCase):
    def copy_fixture(self, name):
        d = tempfile.mkdtemp(prefix="bsfixture-")
        self.addCleanup(shutil.rmtree, d)
        shutil.copy(os.path.join(FIXTURES, name, "data.mdb"), d)
        return d

    def start(self, d):
        s = bstest.Server("-b", d)
        self.addCleanup(s.stop)
        return s, s.client()

    def test_v1_store_opens_and_serves_its_jobs(self):
        s, c = self.start(self.copy_fixture("v1-store"))
        want = {
            1: ("default", "ready", "10", "30", b"ready job one"),
            2: ("default", "buried", "99", "5", b"binary \x00\x01\xff\r\n body"),
            3: ("fixture-tube", "delayed", "200", "60", b"delayed a long time"),
            4: ("fixture-tube", "ready", "7", "120", b"to be buried"),
        }
        for jid, (tube, state, pri, ttr, body) in want.items():
            st = c.yaml("stats-job %d" % jid)
            self.assertEqual((st["tube"], st["state"], st["pri"], st["ttr"]),
                             (tube, state, pri, ttr), jid)
            head, got = c.body_reply("peek %d" % jid)
            self.assertEqual(got, body, jid)
        self.assertEqual(c.cmd("peek 5"), "NOT_FOUND")
        self.assertEqual(c.yaml("stats-job 2")["buries"], "1")
        self.assertGreater(int(c.yaml("stats-tube fixture-tube")["pause-time-left"]), 3000000000)
        self.assertGreater(c.put_id("new"), 5)

    @unittest.skipUnless(have_lmdb_utils(), "needs lmdb-utils (mdb_dump, mdb_load)")
    def test_newer_schema_is_refused_untouched(self):
        d = self.copy_fixture("v1-store")
        dump = subprocess.run(["mdb_dump", "-s", "meta", d], check=True,
                              capture_output=True, text=True).stdout
        # the value after the key "version" (hex 76657273696f6e) becomes 99
        lines = dump.split("\n")
        i = lines.index(" 76657273696f6e")
        lines[i + 1] = " 00000063"
        subprocess.run(["mdb_load", "-s", "meta", d], input="\n".join(lines),
                       check=True, text=True)
        before = digest(os.path.join(d, "data.mdb"))
        s = bstest.Server("-b", d, wait=False)
        self.addCleanup(s.stop)
        self.assertNotEqual(s.proc.wait(10), 0)
        self.assertIn("newer", s.stderr_text())
        self.assertEqual(digest(os.path.join(d, "data.mdb")), before)

    @unittest.skipUnless(have_lmdb_utils(), "needs lmdb-utils (mdb_dump, mdb_load)")
    def test_foreign_lmdb_environment_is_refused_untouched(self):
        d = tempfile.mkdtemp(prefix="bsforeign-")
        self.addCleanup(shutil.rmtree, d)
        src = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6b6579\n 76616c7565\nDATA=END\n"
        subprocess.run(["mdb_load", d], input=src, check=True, text=True)
        before = digest(os.path.join(d, "data.mdb"))
        s = bstest.Server("-b", d, wait=False)
        self.addCleanup(s.stop)
        self.assertNotEqual(s.proc.wait(10), 0)
        self.assertIn("not a beanstalkd store", s.stderr_text())
        self.assertEqual(digest(os.path.join(d, "data.mdb")), before)


if __name__ == "__main__":
    unittest.main()
