#!/usr/bin/env python3
"""Runs the Node client scenarios against the daemon.

Each scenario (fivebeans.js, jackd.js, ...) runs twice, each time against a
fresh daemon on a free loopback port: once in memory mode and once with a
store in a fresh temporary directory (-b DIR). The binary comes from
$BEANSTALKD (default: ./beanstalkd at the top of the tree), so the same
scenarios run against stock beanstalkd with BEANSTALKD=/usr/bin/beanstalkd;
add BS_REFERENCE=1 then, as for the protocol tests: stock 1.12 now and then
misses a reserved job's ttr deadline, which only a reference run tolerates
(common.js, reserveAfterTtr).

    python3 tests/clients/node/run_node.py [SCENARIO ...]

Run tests/clients/node/setup.sh first (make check-clients-node does). A
scenario whose libraries are not installed, or a run without node, counts as
skipped. The last line is "node clients: N passed, N failed, N skipped"; the
exit status is 1 when anything failed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(TOP, "tests", "protocol"))
import bstest  # noqa: E402  (Server: free port, readiness by polling)

SCENARIOS = ["fivebeans", "jackd", "node_beanstalk", "beanstalkd"]
MODES = ["memory", "store"]
TIMEOUT = 60          # seconds per scenario run; each takes a few
SKIP_STATUS = 77      # common.js exits with it when a library is missing


def run_one(node, scenario, mode):
    """Returns ("passed"|"failed"|"skipped", seconds, output)."""
    store = None
    args = []
    if mode == "store":
        store = tempfile.mkdtemp(prefix="bs-node-")
        args = ["-b", store]
    t0 = time.monotonic()
    server = None
    try:
        server = bstest.Server(*args)
        proc = subprocess.run(
            [node, os.path.join(HERE, scenario + ".js"), str(server.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
        out = proc.stdout.decode(errors="replace")
        if proc.returncode == SKIP_STATUS:
            status = "skipped"
        elif proc.returncode == 0:
            status = "passed"
        else:
            status = "failed"
        if server.proc.poll() is not None:
            status = "failed"
            out += "\nserver exited %d during the scenario:\n%s" % (
                server.proc.returncode, server.stderr_text())
    except subprocess.TimeoutExpired as e:
        status = "failed"
        out = (e.stdout or b"").decode(errors="replace") + \
            "\nscenario still running after %d s, killed" % TIMEOUT
    except Exception as e:  # a server that would not start, for one
        status = "failed"
        out = "%s: %s" % (type(e).__name__, e)
    finally:
        if server is not None:
            server.stop()
        if store:
            shutil.rmtree(store, ignore_errors=True)
    return status, time.monotonic() - t0, out


def main(argv):
    # bstest.Server would add a store to every server when this is set; the
    # modes here are chosen explicitly.
    os.environ.pop("BS_STORE_ARGS", None)
    scenarios = argv or SCENARIOS
    for s in scenarios:
        if s not in SCENARIOS:
            print("unknown scenario %r; known: %s" % (s, " ".join(SCENARIOS)))
            return 2
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    node = shutil.which("node")
    print("node clients against %s" % bstest.BINARY)
    for scenario in scenarios:
        for mode in MODES:
            name = "%s (%s)" % (scenario, mode)
            if node is None:
                status, secs, out = "skipped", 0.0, "node is not installed"
            else:
                status, secs, out = run_one(node, scenario, mode)
            counts[status] += 1
            print("%-7s %-28s %5.1fs" % (status.upper(), name, secs))
            for line in out.rstrip().splitlines():
                # A passing run shows only its notes (a tolerated stock quirk).
                if status != "passed" or os.environ.get("VERBOSE") or "note [" in line:
                    print("    " + line)
    print("node clients: %d passed, %d failed, %d skipped"
          % (counts["passed"], counts["failed"], counts["skipped"]))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
