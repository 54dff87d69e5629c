"""Runs one test directory's test_*.py files and prints the closing summary
line ("<suite>: N passed, N failed, N skipped"); each run.py calls it."""
import os
import sys
import unittest


def main(run_py, suite):
    here = os.path.dirname(os.path.abspath(run_py))
    sys.path.insert(0, here)
    sys.path.insert(0, os.path.join(os.path.dirname(here), "protocol"))   # bstest
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    tests = unittest.defaultTestLoader.discover(here, pattern=pattern, top_level_dir=here)
    result = unittest.TextTestRunner(verbosity=1 if os.environ.get("CI") else 2).run(tests)
    # Count tests, not subtests: a test with failing subtests fails once.
    failed = len({getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors})
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("%s: %d passed, %d failed, %d skipped" % (suite, passed, failed, skipped))
    sys.exit(1 if failed else 0)
