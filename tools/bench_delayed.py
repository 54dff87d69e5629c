#!/usr/bin/env python3
"""Delayed-job benchmark (part of `make bench`): put N delayed jobs with
deadlines spread over a window, then measure the server's CPU while idle
(timers only) and while they ripen, per ripened job. Ours and stock.

  python3 tools/bench_delayed.py OURS [STOCK]
  env: DELAYED_JOBS (1000000), DELAYED_IDLE_SECONDS (10)
"""
import os
import socket
import subprocess
import sys
import time

N = int(os.environ.get("DELAYED_JOBS", "1000000"))
IDLE = float(os.environ.get("DELAYED_IDLE_SECONDS", "10"))
TICK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_store import free_port  # noqa: E402


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def stats(sock):
    sock.sendall(b"stats\r\n")
    data = b""
    while b"\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n", 1)
    n = int(head.split()[1]) + 2
    while len(rest) < n:
        rest += sock.recv(65536)
    return dict(l.split(": ", 1) for l in rest.decode().splitlines()[1:] if ": " in l)


def run(binary):
    port = free_port()
    proc = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.02)
        # Deadlines: a spread from 60 s to 60 s + RIPEN over the jobs, so
        # the idle phase sees none ripen and the ripening phase a steady flow.
        ripen = 20
        t0 = time.monotonic()
        buf = b""
        got = 0
        batch = 2000
        for start in range(0, N, batch):
            n = min(batch, N - start)
            sock.sendall(b"".join(b"put 0 %d 60 3\r\nabc\r\n"
                                  % (60 + ((start + k) * 7919 % N) * ripen // N)
                                  for k in range(n)))
            # Read this batch's replies before sending more: a client that
            # does not read is not read either.
            while got < start + n:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                buf += chunk
                got += buf.count(b"\r\n")
                buf = buf[buf.rfind(b"\r\n") + 2:] if b"\r\n" in buf else buf
        fill = time.monotonic() - t0
        st = stats(sock)
        assert int(st["current-jobs-delayed"]) == N, st["current-jobs-delayed"]
        c0 = cpu(proc.pid)
        time.sleep(IDLE)
        idle_cpu = cpu(proc.pid) - c0
        # Wait for every job to ripen; count the CPU it took.
        start_left = int(stats(sock)["current-jobs-delayed"])
        c1 = cpu(proc.pid)
        t1 = time.monotonic()
        while int(stats(sock)["current-jobs-delayed"]) > 0 and time.monotonic() - t1 < 120:
            time.sleep(0.5)
        ripen_cpu = cpu(proc.pid) - c1
        ripened = start_left - int(stats(sock)["current-jobs-delayed"])
        rss = 0
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        sock.close()
        return fill, idle_cpu, ripen_cpu, ripened, rss
    finally:
        proc.terminate()
        proc.wait()


def main():
    bins = sys.argv[1:] or ["./beanstalkd"]
    print("delayed: %s, %d delayed jobs, %g s idle" % (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), N, IDLE))
    print("%-24s %9s %14s %18s %10s" % ("server", "fill s", "idle cpu %", "cpu us/ripened", "rss MiB"))
    for b in bins:
        fill, idle_cpu, ripen_cpu, ripened, rss = run(b)
        print("%-24s %9.1f %14.3f %18.2f %10.0f" % (
            os.path.basename(b) + (" (ours)" if b == bins[0] else ""), fill,
            100.0 * idle_cpu / IDLE, 1e6 * ripen_cpu / max(ripened, 1), rss / 1024))


if __name__ == "__main__":
    main()
