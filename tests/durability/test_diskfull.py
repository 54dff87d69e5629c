"""Near a full disk: new puts get OUT_OF_MEMORY while deletes keep working,
and puts succeed again once space returns. The free space the server sees
comes from an LD_PRELOAD (diskfull/fakefree.c) that the test controls."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import bstest

HERE = os.path.dirname(os.path.abspath(__file__))


@unittest.skipIf(bstest.REFERENCE, "our store only")
@unittest.skipUnless(shutil.which("cc"), "needs a C compiler for the preload")
class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bsdiskfull-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.lib = os.path.join(self.tmp, "fakefree.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-o", self.lib, os.path.join(HERE, "diskfull", "fakefree.c"), "-ldl"],
                       check=True)
        self.free_file = os.path.join(self.tmp, "free")
        self.set_free(10 << 30)
        env = dict(os.environ, LD_PRELOAD=self.lib, FAKEFREE_FILE=self.free_file)
        self.server = bstest.Server("-b", os.path.join(self.tmp, "store"), env=env)
        self.addCleanup(self.server.stop)
        self.c = self.server.client()
        self.addCleanup(self.c.close)

    def set_free(self, n):
        with open(self.free_file + ".new", "w") as f:
            f.write("%d\n" % n)
        os.replace(self.free_file + ".new", self.free_file)
        # The store asks statvfs at most every 100 ms while space looks
        # ample (it is asked on every put): let that window pass. A time
        # the server documents, not a guess at readiness.
        time.sleep(0.25)

    def test_puts_refused_near_full_deletes_work_puts_resume(self):
        c = self.c
        ids = [c.put_id(b"x" * 100) for _ in range(3)]
        self.set_free(1 << 20)                      # 1 MiB left: below the headroom
        self.assertEqual(c.put(b"refused"), "OUT_OF_MEMORY")
        self.assertEqual(c.put(b""), "OUT_OF_MEMORY")
        self.assertEqual(c.cmd("delete %d" % ids[0]), "DELETED")
        head, body = c.body_reply("reserve-with-timeout 0")
        self.assertEqual(head.split()[0], "RESERVED")
        self.assertEqual(c.cmd("bury %s 5" % head.split()[1]), "BURIED")
        self.assertEqual(c.cmd("kick 1"), "KICKED 1")
        self.assertEqual(c.yaml("stats")["current-jobs-ready"], "2")
        self.set_free(10 << 30)                     # space is back
        new = c.put_id(b"accepted again")
        self.assertGreater(new, ids[-1])
        # Nothing refused was stored: after a restart the store holds the
        # two survivors and the new job only.
        self.server.stop()
        s2 = bstest.Server("-b", os.path.join(self.tmp, "store"))
        self.addCleanup(s2.stop)
        c2 = s2.client()
        self.addCleanup(c2.close)
        self.assertEqual(c2.yaml("stats")["current-jobs-ready"], "3")
        self.assertEqual(c2.cmd("peek %d" % ids[0]), "NOT_FOUND")

    def test_a_big_put_needs_room_for_itself(self):
        # 38 MiB free: a small put fits above the 32 MiB headroom, a 4 MiB
        # body (which needs twice its size above the headroom) does not.
        self.server.stop()
        env = dict(os.environ, LD_PRELOAD=self.lib, FAKEFREE_FILE=self.free_file)
        s = bstest.Server("-b", os.path.join(self.tmp, "store2"), "-z", str(8 << 20), env=env)
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.set_free(38 << 20)
        self.assertTrue(c.put(b"small").startswith("INSERTED "))
        self.assertEqual(c.put(b"y" * (4 << 20)), "OUT_OF_MEMORY")


if __name__ == "__main__":
    unittest.main()
