#!/usr/bin/env python3
"""Run the client-library scenarios against the daemon.

Each scenario is a script of ours that drives a real, unmodified client
library (installed from Debian by `make check-clients`) against a server on
127.0.0.1:PORT and exits 0 only if every assertion held. For each scenario
this driver starts a fresh daemon on a free port, once in memory mode and
once with a store (-b in a fresh temporary directory), runs the script with
the port as its one argument, and checks its exit status and that the
daemon is still running afterwards.

    python3 tests/clients/run.py                      # all, both modes
    python3 tests/clients/run.py beaneater --mode store
    BEANSTALKD=/usr/bin/beanstalkd python3 tests/clients/run.py   # stock
    python3 tests/clients/run.py --binary /usr/bin/beanstalkd     # same

A scenario whose interpreter or library is not installed is skipped (a
failure with --strict, which `make check-clients` uses after installing).
The last line is "clients: N passed, N failed, N skipped"; the exit status
is non-zero if anything failed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "protocol"))
import bstest  # noqa: E402  (the protocol tests' Server: free port, readiness)

# One row per scenario: its name, the command to run from tests/clients/
# (the port is appended), and what must be installed for it to run: commands
# looked up on PATH, or absolute paths. A client is added with one row.
SCENARIOS = [
    ("php/pheanstalk", ["php", "php/pheanstalk.php"],
     ["php", "/usr/share/php/Pheanstalk/autoload.php"]),
    ("php/symfony-messenger", ["php", "php/symfony_messenger.php"],
     ["php", "/usr/share/php/Symfony/Component/Messenger/Bridge/Beanstalkd/autoload.php"]),
    ("ruby/beaneater", ["ruby", "ruby/beaneater.rb"],
     ["ruby", "/usr/lib/ruby/vendor_ruby/beaneater.rb"]),
]

MODES = ("memory", "store")


def missing(needs):
    """The prerequisites of a scenario that are not installed."""
    out = []
    for n in needs:
        if os.path.isabs(n):
            if not os.path.exists(n):
                out.append(n)
        elif shutil.which(n) is None:
            out.append(n)
    return out


def indent(text, limit=60):
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = ["... (%d lines cut)" % (len(lines) - limit)] + lines[-limit:]
    return "".join("      | %s\n" % line for line in lines)


def run_one(name, cmd, mode, timeout, verbose):
    """Runs one scenario in one mode; returns (passed, seconds, detail)."""
    store = None
    args = []
    if mode == "store":
        store = tempfile.TemporaryDirectory(prefix="bsclients-")
        args = ["-b", store.name]
    t0 = time.monotonic()
    srv = None
    try:
        srv = bstest.Server(*args)
        try:
            proc = subprocess.run(cmd + [str(srv.port)], cwd=HERE, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.output or b"").decode(errors="replace")
            return False, time.monotonic() - t0, "timed out after %ds\n%s" % (timeout, out)
        out = proc.stdout.decode(errors="replace")
        alive = srv.proc.poll() is None
        ok = proc.returncode == 0 and alive
        detail = ""
        if not ok or verbose:
            detail = out
            if proc.returncode != 0:
                detail += "exit status %d\n" % proc.returncode
            if not alive:
                detail += "server exited (%d) during the scenario: %s\n" % (
                    srv.proc.returncode, srv.stderr_text())
        return ok, time.monotonic() - t0, detail
    except Exception as e:  # the server did not start, and the like
        return False, time.monotonic() - t0, "%s: %s\n" % (type(e).__name__, e)
    finally:
        if srv is not None:
            srv.stop()
        if store is not None:
            store.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="*",
                    help="run only scenarios whose name contains one of these")
    ap.add_argument("--binary", help="daemon to test (default: $BEANSTALKD or ./beanstalkd)")
    ap.add_argument("--mode", choices=MODES, action="append",
                    help="memory or store (default: both)")
    ap.add_argument("--timeout", type=int, default=60, help="seconds per scenario run")
    ap.add_argument("--strict", action="store_true",
                    help="a scenario whose client is not installed fails instead of skipping")
    ap.add_argument("-v", "--verbose", action="store_true", help="show every scenario's output")
    opts = ap.parse_args()

    if opts.binary:
        bstest.BINARY = os.path.abspath(opts.binary)
    # Memory mode means no store: a BS_STORE_ARGS meant for the protocol
    # tests must not give the server one behind our back.
    os.environ.pop("BS_STORE_ARGS", None)
    if not os.access(bstest.BINARY, os.X_OK):
        print("clients: no daemon at %s (build it, or set BEANSTALKD / --binary)" % bstest.BINARY)
        return 2
    modes = opts.mode or list(MODES)
    chosen = [s for s in SCENARIOS
              if not opts.patterns or any(p in s[0] for p in opts.patterns)]
    if not chosen:
        print("clients: no scenario matches %s" % " ".join(opts.patterns))
        return 2

    print("clients: %s" % bstest.BINARY)
    passed = failed = skipped = 0
    t_all = time.monotonic()
    for name, cmd, needs in chosen:
        absent = missing(needs)
        for mode in modes:
            label = "%s [%s]" % (name, mode)
            if absent:
                if opts.strict:
                    failed += 1
                    print("FAIL  %s  (not installed: %s)" % (label, ", ".join(absent)))
                else:
                    skipped += 1
                    print("SKIP  %s  (not installed: %s)" % (label, ", ".join(absent)))
                continue
            ok, secs, detail = run_one(name, cmd, mode, opts.timeout, opts.verbose)
            if ok:
                passed += 1
            else:
                failed += 1
            print("%s  %-36s %5.1fs" % ("PASS" if ok else "FAIL", label, secs))
            if detail:
                sys.stdout.write(indent(detail))
            sys.stdout.flush()
    print("clients: %.1fs in all" % (time.monotonic() - t_all))
    print("clients: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
