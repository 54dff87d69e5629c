"""Client-side load and store checker shared by test_powercut and test_ioerror.

Workload drives a running server from several connections (putters and
reserve+delete workers) and records, client-side, every change whose
acknowledgement arrived: a put only once its INSERTED line was read, a
delete only once its DELETED line was read, each with the monotonic time the
reply arrived. Every body carries a token that names it; the priority is a
function of the token, so any job found later can be checked on its own.

check() then inspects a server started on a recovered store and lists what
is wrong with it.
"""
import hashlib
import random
import socket
import threading
import time
import zlib


def body_for(token, size):
    """Deterministic body of about size bytes that starts with token."""
    head = token + b"|"
    fill = hashlib.sha256(token).hexdigest().encode()
    n = max(0, size - len(head))
    return head + (fill * (n // len(fill) + 1))[:n]


def pri_for(token):
    return zlib.crc32(token) & 0xffffffff


def token_of(body):
    return body.split(b"|", 1)[0]


class Conn:
    """A minimal blocking protocol connection (bstest.Client has no timeouts
    per call that suit a connection cut by a SIGKILL)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class Workload:
    def __init__(self, port, seed, tag=b"r", putters=3, reservers=2,
                 tubes=(b"pc-a", b"pc-b"), max_body=40000, reserve_timeout=1):
        self.port = port
        self.seed = seed
        self.tag = tag
        self.putters = putters
        self.reservers = reservers
        self.tubes = tubes
        self.max_body = max_body
        self.reserve_timeout = reserve_timeout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}              # token -> body (every put sent, acked or not)
        self.puts_sent = 0
        self.acked_puts = {}        # id -> (token, t_ack)
        self.acked_deletes = {}     # id -> t_ack
        self.deletes_sent = set()   # ids a delete was sent for (acked or not)
        self.sent_after = {}        # token -> time the put was sent
        self.live_errors = []       # wrong replies seen while the server ran
        self.threads = []
        self.ended = []             # why each thread stopped

    # ---- running ----

    def start(self):
        for i in range(self.putters):
            t = threading.Thread(target=self._run, args=(self._putter, i), daemon=True)
            self.threads.append(t)
        for i in range(self.reservers):
            t = threading.Thread(target=self._run, args=(self._reserver, i), daemon=True)
            self.threads.append(t)
        for t in self.threads:
            t.start()

    def join(self, timeout=30.0):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self.threads if t.is_alive()]
        if alive:
            raise AssertionError("%d load threads did not stop" % len(alive))

    def _run(self, fn, i):
        try:
            fn(i)
            self.ended.append("stopped")
        except (OSError, EOFError) as e:
            self.ended.append(type(e).__name__)

    def _size(self, rng):
        r = rng.random()
        if r < 0.7:
            return rng.randint(10, 300)
        if r < 0.9:
            return rng.randint(300, 4000)
        return rng.randint(4000, self.max_body)

    def _putter(self, i):
        rng = random.Random("%s/put/%d" % (self.seed, i))
        c = Conn(self.port)
        try:
            tube = self.tubes[i % len(self.tubes)]
            c.send(b"use " + tube + b"\r\n")
            if c.line() != b"USING " + tube:
                self.live_errors.append("use failed")
                return
            seq = 0
            while not self.stop.is_set():
                seq += 1
                token = b"%s-%d-%d" % (self.tag, i, seq)
                body = body_for(token, self._size(rng))
                with self.lock:
                    self.sent[token] = body
                    self.puts_sent += 1
                    self.sent_after[token] = time.monotonic()
                c.send(b"put %d 0 60 %d\r\n%s\r\n" % (pri_for(token), len(body), body))
                reply = c.line()
                t = time.monotonic()
                if reply.startswith(b"INSERTED "):
                    self.acked_puts[int(reply.split()[1])] = (token, t)
                else:
                    self.live_errors.append("put: %r" % reply)
                    return
        finally:
            c.close()

    def _reserver(self, i):
        c = Conn(self.port, timeout=self.reserve_timeout + 10)
        try:
            for tube in self.tubes:
                c.send(b"watch " + tube + b"\r\n")
                c.line()
            while not self.stop.is_set():
                c.send(b"reserve-with-timeout %d\r\n" % self.reserve_timeout)
                reply = c.line()
                if reply in (b"TIMED_OUT", b"DEADLINE_SOON"):
                    continue
                if not reply.startswith(b"RESERVED "):
                    self.live_errors.append("reserve: %r" % reply)
                    return
                _, jid, n = reply.split()
                jid, n = int(jid), int(n)
                body = c.exact(n + 2)[:-2]
                want = self.sent.get(token_of(body))
                if want != body:
                    self.live_errors.append("reserved job %d has a body we never sent" % jid)
                self.deletes_sent.add(jid)
                c.send(b"delete %d\r\n" % jid)
                reply = c.line()
                t = time.monotonic()
                if reply == b"DELETED":
                    self.acked_deletes[jid] = t
                else:
                    self.live_errors.append("delete %d: %r" % (jid, reply))
                    return
        finally:
            c.close()

    def id_bound(self):
        """No job id can be above this: ids are given out from 1, one per put."""
        top = max(self.acked_puts) if self.acked_puts else 0
        return max(top, self.puts_sent) + 8


def probe(port, last_id, timeout=20.0):
    """Peek and stats-job every id 1..last_id (pipelined). Returns
    ({id: (body, pri)}, total jobs from stats, [odd replies])."""
    c = Conn(port, timeout=timeout)
    found, odd = {}, []
    try:
        step = 256
        for lo in range(1, last_id + 1, step):
            ids = range(lo, min(last_id, lo + step - 1) + 1)
            c.send(b"".join(b"peek %d\r\nstats-job %d\r\n" % (j, j) for j in ids))
            for j in ids:
                head = c.line()
                body = None
                if head.startswith(b"FOUND "):
                    _, jid, n = head.split()
                    body = c.exact(int(n) + 2)[:-2]
                    if int(jid) != j:
                        odd.append("peek %d answered job %s" % (j, jid))
                elif head != b"NOT_FOUND":
                    odd.append("peek %d: %r" % (j, head))
                head = c.line()
                pri = None
                if head.startswith(b"OK "):
                    yaml = c.exact(int(head.split()[1]) + 2)[:-2].decode("latin-1")
                    for l in yaml.split("\n"):
                        if l.startswith("pri: "):
                            pri = int(l[5:])
                elif head != b"NOT_FOUND":
                    odd.append("stats-job %d: %r" % (j, head))
                if body is not None or pri is not None:
                    found[j] = (body, pri)
        c.send(b"stats\r\n")
        head = c.line()
        stats = c.exact(int(head.split()[1]) + 2).decode("latin-1")
        total = 0
        for l in stats.split("\n"):
            k = l.split(": ")[0]
            if k in ("current-jobs-ready", "current-jobs-reserved", "current-jobs-delayed",
                     "current-jobs-buried"):
                total += int(l.split(": ")[1])
    finally:
        c.close()
    return found, total, odd


def check(port, wl, may_lose=None):
    """What is wrong with the store a server on port recovered, given the
    workload's acknowledgements. may_lose(t_ack) says whether a change
    acknowledged at t_ack may be missing (None: nothing may be).
    Returns (problems, info)."""
    may_lose = may_lose or (lambda t: False)
    found, total, odd = probe(port, wl.id_bound())
    problems = list(odd)
    info = {"found": len(found), "acked_puts": len(wl.acked_puts),
            "acked_deletes": len(wl.acked_deletes), "lost_puts": 0,
            "undone_deletes": 0, "lost_ages": []}
    seen = {}
    for jid, (body, pri) in sorted(found.items()):
        if body is None or pri is None:
            problems.append("job %d: peek and stats-job disagree (body %s, pri %s)"
                            % (jid, body is not None, pri is not None))
            continue
        token = token_of(body)
        want = wl.sent.get(token)
        if want is None:
            problems.append("job %d has a body no client sent: %r" % (jid, body[:60]))
            continue
        if body != want:
            problems.append("job %d (%s): body differs from the one sent (%d bytes, sent %d)"
                            % (jid, token.decode(errors="replace"), len(body), len(want)))
        if pri != pri_for(token):
            problems.append("job %d (%s): priority %d, sent %d" % (jid, token.decode(errors="replace"), pri,
                                                                  pri_for(token)))
        if token in seen:
            problems.append("jobs %d and %d hold the same put (%s)" % (seen[token], jid,
                                                                      token.decode(errors="replace")))
        seen[token] = jid
    if total != len(found):
        problems.append("stats count %d jobs but %d were found among ids 1..%d"
                        % (total, len(found), wl.id_bound()))
    for jid, (token, t) in sorted(wl.acked_puts.items()):
        got = found.get(jid)
        if got and got[0] is not None and token_of(got[0]) != token:
            problems.append("acknowledged put %d (%s) holds another job (%s)"
                            % (jid, token.decode(errors="replace"), token_of(got[0]).decode(errors="replace")))
        # A delete whose reply never arrived may still have been made.
        if got is None and jid not in wl.deletes_sent:
            if may_lose(t):
                info["lost_puts"] += 1
                info["lost_ages"].append(t)
            else:
                problems.append("acknowledged put %d (%s) is missing" % (jid, token.decode(errors="replace")))
    for jid, t in sorted(wl.acked_deletes.items()):
        if jid in found:
            if may_lose(t):
                info["undone_deletes"] += 1
                info["lost_ages"].append(t)
            else:
                problems.append("acknowledged delete of job %d was undone" % jid)
    return problems, info
