"""-u USER: the server opens its sockets, then drops to USER's uid and gid
(and, with -b, creates its store as that user)."""
import os
import pwd
import shutil
import tempfile
import unittest

import bstest


def ids_of(pid):
    """(real uid, real gid) of a running process, from /proc."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


@unittest.skipUnless(os.geteuid() == 0, "dropping privileges needs root")
@unittest.skipUnless(nobody(), "needs the user nobody")
class UserTest(unittest.TestCase):
    def test_drops_to_user_after_binding(self):
        pw = nobody()
        s = bstest.Server("-u", "nobody")
        self.addCleanup(s.stop)
        self.assertEqual(ids_of(s.proc.pid), (pw.pw_uid, pw.pw_gid))
        c = s.client()
        self.addCleanup(c.close)
        self.assertTrue(c.put(b"as nobody").startswith("INSERTED "))

    @unittest.skipIf(bstest.REFERENCE, "our store")
    def test_store_is_created_as_the_user(self):
        pw = nobody()
        d = tempfile.mkdtemp(prefix="bsuser-")
        self.addCleanup(shutil.rmtree, d)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        s = bstest.Server("-u", "nobody", "-b", os.path.join(d, "store"))
        self.addCleanup(s.stop)
        c = s.client()
        self.addCleanup(c.close)
        self.assertTrue(c.put(b"durable").startswith("INSERTED "))
        st = os.stat(os.path.join(d, "store", "data.mdb"))
        self.assertEqual(st.st_uid, pw.pw_uid)

    def test_unknown_user_is_refused(self):
        s = bstest.Server("-u", "no-such-user-here", wait=False)
        self.addCleanup(s.stop)
        self.assertNotEqual(s.proc.wait(10), 0)
        self.assertIn("no-such-user-here", s.stderr_text())


if __name__ == "__main__":
    unittest.main()
