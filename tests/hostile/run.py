#!/usr/bin/env python3
"""Run every tests/hostile/test_*.py (or those matching the pattern given)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import runner  # noqa: E402

runner.main(__file__, "hostile")
