#!/usr/bin/env python3
"""Run every tests/protocol/test_*.py and print one closing summary line."""
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
suite = unittest.defaultTestLoader.discover(here, pattern=pattern)
result = unittest.TextTestRunner(verbosity=1 if os.environ.get("CI") else 2).run(suite)
# Count tests, not subtests: a test with failing subtests fails once.
failed = len({getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors})
skipped = len(result.skipped)
passed = result.testsRun - failed - skipped
print("protocol: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
