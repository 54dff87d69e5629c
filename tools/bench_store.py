#!/usr/bin/env python3
"""Store benchmarks against stock beanstalkd, in one run, alternating:

  memory   anonymous RAM (RssAnon) per stored 100-byte job, ours with -b vs
           stock with -b (the map of our store is file-backed and not counted)
  startup  time from start to the first answered command with N stored
           jobs: ours loading its store vs stock replaying its binlog

usage: tools/bench_store.py OURS STOCK [JOBS]   (default JOBS = 1000000)

Throughput with a store is measured by tools/bench.sh with BENCH_SERVER_ARGS
(see docs/benchmarks.md). Every server is started here on a free loopback
port and stopped by its pid.
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BSBENCH = os.path.join(TOP, "bsbench")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def answered(port, timeout=600):
    """Seconds until the server answers a command on port."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            s.sendall(b"list-tube-used\r\n")
            data = s.recv(64)
            s.close()
            if data.startswith(b"USING"):
                return time.monotonic() - t0
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("server never answered")


class Server:
    def __init__(self, binary, datadir):
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(self.port), "-b", datadir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ready_after = answered(self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fill(port, jobs):
    subprocess.run([BSBENCH, "-p", str(port), "-w", "pipelined-put", "-c", "4", "-P", "200",
                    "-n", str(jobs), "-s", "100", "-q"], check=True, stdout=subprocess.DEVNULL)


def measure(name, binary, jobs):
    d = tempfile.mkdtemp(prefix="bench-store-")
    try:
        s = Server(binary, d)
        base = rss_anon(s.proc.pid)
        t0 = time.monotonic()
        fill(s.port, jobs)
        fill_secs = time.monotonic() - t0
        per_job = (rss_anon(s.proc.pid) - base) / jobs
        s.stop()
        s2 = Server(binary, d)
        startup = s2.ready_after
        s2.stop()
        print("bench-store: %-5s jobs=%d fill=%.1fs ram_per_job=%.1f bytes startup=%.3fs"
              % (name, jobs, fill_secs, per_job, startup), file=sys.stderr)
        return per_job, startup
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours, stock = sys.argv[1], sys.argv[2]
    jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    results = {"ours": [], "stock": []}
    for _ in range(rounds):
        results["ours"].append(measure("ours", ours, jobs))
        results["stock"].append(measure("stock", stock, jobs))
    o_mem = statistics.median(r[0] for r in results["ours"])
    s_mem = statistics.median(r[0] for r in results["stock"])
    o_up = statistics.median(r[1] for r in results["ours"])
    s_up = statistics.median(r[1] for r in results["stock"])
    print("%-22s %12s %12s %8s" % ("store (%d jobs)" % jobs, "ours", "stock", "ratio"))
    print("%-22s %12.1f %12.1f %8.2f" % ("RAM bytes per job", o_mem, s_mem, o_mem / s_mem))
    print("%-22s %12.3f %12.3f %8.2f" % ("start-up seconds", o_up, s_up, o_up / s_up))
    print("(medians of %d rounds; ratio = ours/stock, lower is better; targets: RAM <= 0.5, "
          "start-up <= 0.33)" % rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
