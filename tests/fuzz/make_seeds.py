#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/.

    python3 tests/fuzz/make_seeds.py [BINLOG_SAMPLES_DIR]

The seeds are committed; run this again only to change them. The binlog
seeds are copies of the shared sample directories (default:
../shared/binlog-samples beside the repository, or /work/shared/...).
The input formats are described at the top of each harness."""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_proto ----

FEED, BODY = 0, 1


def piece_codes(n):
    """Script length codes that add up to n bytes."""
    codes = []
    while n:
        k = min(n, 24)
        codes.append(k - 1)
        n -= k
    return codes


class Script:
    """A session script: steps and the stream they read from."""

    def __init__(self):
        self.steps = bytearray()
        self.stream = bytearray()

    def feed(self, sess, data, how=FEED):
        if isinstance(data, str):
            data = data.encode()
        for code in piece_codes(len(data)):
            self.steps.append(code << 3 | sess << 2 | how)
        self.stream += data
        return self

    def trickle(self, sess, data, how=FEED):
        if isinstance(data, str):
            data = data.encode()
        for b in data:
            self.steps.append(0 << 3 | sess << 2 | how)
            self.stream.append(b)
        return self

    def wait(self, step):
        self.steps.append(step << 2 | 2)
        return self

    def event(self, sess, ev):
        self.steps.append(sess << 5 | ev << 2 | 3)
        return self

    def bytes(self, tail=b""):
        assert len(self.steps) < 256, len(self.steps)
        return bytes([len(self.steps)]) + bytes(self.steps) + bytes(self.stream) + tail


A, B = 0, 1
HANG_UP, DROP, DRAIN, JOBSIZE, DEAF, BIG_PUT = 0, 1, 2, 3, 4, 5
NEXT_DEADLINE = 63


def plain(text):
    """A session with no script: all of it goes to session A."""
    return b"\x00" + (text.encode() if isinstance(text, str) else text)


def proto_seeds():
    s = {}
    s["put-reserve-delete"] = plain(
        "put 0 0 10 5\r\nhello\r\nput 4294967295 0 10 0\r\n\r\n"
        "reserve\r\nreserve\r\ndelete 1\r\ndelete 1\r\ndelete 2\r\n")
    s["binary-body"] = plain(b"put 1 0 10 6\r\na\r\n\x00b\xff\r\npeek 1\r\n")
    s["peeks"] = plain(
        "peek-ready\r\npeek-delayed\r\npeek-buried\r\npeek 1\r\n"
        "put 5 0 10 1\r\nr\r\nput 1 0 10 1\r\ns\r\nput 0 30 10 1\r\nd\r\n"
        "peek-ready\r\npeek-delayed\r\npeek 3\r\nreserve\r\nbury 2 9\r\n"
        "peek-buried\r\nuse other\r\npeek-ready\r\npeek 1\r\n")
    s["release-bury-kick-touch"] = plain(
        "put 0 0 10 3\r\nabc\r\nreserve\r\ntouch 1\r\ntouch 2\r\n"
        "release 1 5 0\r\nrelease 1 5 0\r\nreserve\r\nbury 1 7\r\nbury 1 7\r\n"
        "kick 10\r\nkick 10\r\nreserve\r\nrelease 1 0 10\r\nkick-job 1\r\n"
        "kick-job 1\r\nkick-job 99\r\nreserve\r\nbury 1 0\r\nkick-job 1\r\n"
        "kick -1\r\nkick 99999999999\r\n")
    s["reserve-variants"] = plain(
        "reserve-with-timeout 0\r\nput 0 0 1 2\r\nhi\r\nput 0 0 10 2\r\nho\r\n"
        "reserve-job 2\r\nreserve-job 2\r\nreserve-job 3\r\n"
        "reserve-with-timeout 0\r\nreserve-with-timeout 0\r\n"
        "reserve-with-timeout 5\r\nreserve\r\n")
    s["tubes"] = plain(
        "list-tube-used\r\nlist-tubes\r\nlist-tubes-watched\r\nuse foo\r\n"
        "watch foo\r\nwatch bar\r\nignore default\r\nignore foo\r\n"
        "ignore bar\r\nlist-tubes-watched\r\nuse default\r\n"
        "watch " + "a" * 200 + "\r\nwatch " + "a" * 201 + "\r\n"
        "use -bad\r\nuse ok+/;.$_()\r\nstats-tube foo\r\nstats-tube nope\r\n")
    s["stats"] = plain(
        "put 0 0 10 3\r\nabc\r\nstats\r\nstats-job 1\r\nstats-job 2\r\n"
        "stats-tube default\r\nstats x\r\nstats-job\r\nstats-job x\r\n")
    s["pause"] = plain(
        "put 0 0 10 1\r\nx\r\npause-tube default 0\r\npause-tube default 1\r\n"
        "pause-tubedefault 2\r\npause-tube nope 1\r\npause-tube default\r\n"
        "reserve-with-timeout 0\r\nstats-tube default\r\n")
    s["bad-input"] = plain(
        b"\r\nfoo\r\ndelete\r\ndelete x\r\ndelete 1 2\r\nput 0 0 10\r\n"
        b"put 0 0 10 x\r\n"
        b"put 0 0 10 2 junk\r\nab\r\nput 0 0 10 2\r\nabc\r\n"
        b"peek 1\x002\r\nreservex\r\nreserve-foo\r\npeek-ready \r\n"
        b"release 1\r\nbury 1\r\ntouch\r\n" + b"x" * 300 + b"\r\n"
        b"put 0 0 10 18446744073709551616\r\nput -1 0 10 1\r\n"
        b"reserve-with-timeout 4294967295\r\nreserve-with-timeout 2147483648\r\n"
        b"put 0 0 10 70000\r\nthe body of a job too big is skipped\r\n")
    s["job-too-big"] = (Script().event(A, JOBSIZE).event(A, JOBSIZE)
                        .feed(A, "put 0 0 10 11 junk\r\nhello world\r\n")
                        .feed(A, "put 0 0 10 10\r\n0123456789\r\n").bytes())
    s["quit"] = plain("put 0 0 10 1\r\na\r\nquitting\r\nput 0 0 10 1\r\nb\r\n")
    s["quit-then-more"] = (Script()
                           .feed(A, "use t\r\nquit\r\n").feed(A, "list-tube-used\r\n")
                           .bytes())

    # Two sessions: a waiting reserve woken by the other's put.
    s["two-sessions-wake"] = (Script()
                              .feed(B, "watch w\r\nreserve\r\n")
                              .feed(A, "use w\r\nput 0 0 10 4\r\nwake\r\n")
                              .feed(B, "delete 1\r\nreserve-with-timeout 1\r\n")
                              .wait(17)
                              .feed(B, "stats\r\n").bytes())
    # A reserved job times out (TTR 1) and goes to the other session.
    s["ttr-timeout"] = (Script()
                        .feed(A, "put 0 0 1 1\r\nx\r\nreserve\r\n")
                        .feed(B, "reserve\r\n")
                        .wait(NEXT_DEADLINE)
                        .feed(A, "delete 1\r\n").feed(B, "delete 1\r\n").bytes())
    # Delays and pauses run out.
    s["delay-pause"] = (Script()
                        .feed(A, "put 0 2 10 1\r\nd\r\npause-tube default 3\r\n")
                        .feed(B, "reserve-with-timeout 10\r\n")
                        .wait(NEXT_DEADLINE).wait(NEXT_DEADLINE).wait(NEXT_DEADLINE)
                        .feed(B, "peek-delayed\r\nstats-job 1\r\n").bytes())
    # A body that spans reads, written straight into its buffer.
    body = b"0123456789" * 7
    sc = Script().feed(A, b"put 3 0 60 70\r\n")
    sc.feed(A, body[:5], BODY).feed(A, body[5:50], BODY).feed(A, body[50:] + b"\r\n", BODY)
    sc.feed(A, "peek 1\r\n")
    s["body-direct"] = sc.bytes()
    # The same body trickled a byte at a time through proto_feed, CRLF split.
    sc = Script().trickle(A, b"put 0 0 10 3\r\nabc\r")
    sc.trickle(A, b"\nreserve\r\n")
    s["trickle"] = sc.bytes()
    # Hang-ups: while waiting, mid-body, holding a job.
    s["hang-ups"] = (Script()
                     .feed(A, "put 0 0 10 1\r\na\r\nreserve\r\n")
                     .feed(B, "reserve\r\n").event(B, HANG_UP)
                     .feed(B, "put 0 0 10 100\r\nhalf").event(B, DROP)
                     .event(A, HANG_UP)
                     .feed(B, "reserve\r\n").bytes())
    s["drain-jobsize"] = (Script()
                          .event(A, DRAIN).feed(A, "put 0 0 10 1\r\na\r\n")
                          .event(A, DRAIN).event(A, JOBSIZE).event(A, JOBSIZE)
                          .feed(A, "put 0 0 10 11\r\nhello world\r\nput 0 0 10 10\r\n0123456789\r\n")
                          .bytes())
    s["deaf-client"] = (Script()
                        .event(A, DEAF).feed(A, "put 0 0 10 1\r\na\r\nstats\r\nlist-tubes\r\n")
                        .event(A, DEAF).feed(A, "peek 1\r\n").bytes())
    # A client that stops reading while big replies pile up past
    # OUTPUT_HIGH_WATER, then reads again; the other session goes on.
    s["output-high-water"] = (Script()
                              .event(A, BIG_PUT).event(A, DEAF)
                              .feed(A, "peek 1\r\n" * 6 + "stats\r\n")
                              .feed(B, "peek 1\r\nreserve\r\n")
                              .event(A, DEAF).feed(B, "delete 1\r\n").bytes())
    # A long line cut at the limit, with its CRLF split across reads.
    long = b"x" * 223 + b"\r"
    s["long-line-split"] = (Script().feed(A, long).feed(A, b"\nstats-job 1\r\n").bytes())
    for k, v in s.items():
        write("fuzz_proto", k, v)


# ---- fuzz_record ----

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def job_record(state, tube, pri=0, created=1700000000 * 10**9, delay=0,
               ttr=60 * 10**9, deadline=0, size=5, counts=(0, 0, 0, 0, 0)):
    tube = tube.encode()
    return (struct.pack(">BBHIqqqqI5I", state, 0, len(tube), pri, created,
                        delay, ttr, deadline, size, *counts) + tube)


def journal_record(seq, db, key, val=b"", delete=False):
    rest = struct.pack(">QBH", seq, db | (0x80 if delete else 0), len(key)) + key + val
    return struct.pack(">II", len(rest) + 4, crc32c(rest)) + rest


def record_seeds():
    ready = job_record(1, "default")
    buried = job_record(3, "t", pri=4294967295, deadline=1700000001 * 10**9,
                        counts=(1, 2, 3, 4, 5))
    delayed = job_record(4, "a" * 200, delay=3600 * 10**9,
                         deadline=1700003600 * 10**9, size=0)
    odd = job_record(1, "x", created=-1, delay=-(2**63), ttr=2**63 - 1,
                     deadline=-(2**63))
    for name, rec in [("job-ready", ready), ("job-buried", buried),
                      ("job-delayed", delayed), ("job-extreme-times", odd)]:
        write("fuzz_record", name, b"\x00" + rec)
    key = lambda i: struct.pack(">Q", i)
    turn = (journal_record(1, 1, key(1), ready) +
            journal_record(2, 2, key(1), b"hello\r\n") +
            journal_record(3, 0, b"next-id", key(2)) +
            journal_record(4, 3, b"default", struct.pack(">qq", 10**9, 1700000001 * 10**9)) +
            journal_record(5, 1, key(1), delete=True) +
            journal_record(6, 2, key(1), delete=True))
    write("fuzz_record", "journal-turn", b"\x00" + turn)
    # Replay after seq 2 (flags 2 << 1), then a torn tail.
    write("fuzz_record", "journal-after-2-torn", bytes([2 << 1]) + turn + turn[:13])
    # A gap: 1, 2, 4.
    gap = (journal_record(1, 1, key(1), buried) + journal_record(2, 1, key(2), delayed) +
           journal_record(4, 1, key(3), ready))
    write("fuzz_record", "journal-gap", b"\x00" + gap)
    # Checksums wrong on purpose; flags & 1 makes the harness fix them.
    bad = bytearray(turn)
    bad[4] ^= 0xff
    write("fuzz_record", "journal-fix-crc", b"\x01" + bytes(bad))
    write("fuzz_record", "journal-bad-crc", b"\x00" + bytes(bad))


# ---- fuzz_store ----

def store_entry(job_id, rec, body):
    return struct.pack(">QB", job_id, len(rec)) + rec + bytes([len(body)]) + body


def store_seeds():
    now = 1700000000 * 10**9
    jobs = (store_entry(1, job_record(1, "default", size=5, created=now), b"hello") +
            store_entry(2, job_record(3, "t", size=0, created=now, deadline=now + 5,
                                      counts=(1, 0, 0, 1, 0)), b"") +
            store_entry(3, job_record(3, "t", size=1, created=now, deadline=now + 1), b"x") +
            store_entry(7, job_record(4, "later", size=2, created=now, delay=3600 * 10**9,
                                      deadline=4 * now), b"ab"))
    write("fuzz_store", "ready-buried-delayed", jobs)
    # A body whose stored length disagrees with the record's body size.
    write("fuzz_store", "body-size-mismatch",
          store_entry(5, job_record(1, "default", size=50, created=now), b"short"))
    # A record bs_job_decode refuses (state 2) is skipped.
    write("fuzz_store", "refused-record",
          store_entry(9, job_record(2, "default", created=now), b"hello") + jobs)


# ---- fuzz_binlog ----

SEP = b"\n--next-binlog-file--\n"


def binlog_seeds(samples):
    # flags: bits 0-1 first number (0: 1, 1: 4), bit 7 round trip.
    picks = [
        ("01-ready-default", ["binlog.1"], 0x80),
        ("02-tubes-priorities", ["binlog.1"], 0x80),
        ("03-buried-kicked-deleted", ["binlog.1"], 0x80),
        ("04-delayed", ["binlog.1"], 0x80 | 0x40),
        ("05-reserved-at-shutdown", ["binlog.1"], 0x80),
        ("07-rotation-compaction",
         ["binlog.4", "binlog.5", "binlog.6", "binlog.7", "binlog.8"], 0x81),
        ("09-truncated-tail", ["binlog.1"], 0x80),
        ("10-legacy-v5-upgrade", ["binlog.1", "binlog.2", "binlog.3"], 0x80),
    ]
    for d, files, flags in picks:
        parts = []
        for f in files:
            with open(os.path.join(samples, d, f), "rb") as fh:
                parts.append(fh.read())
        write("fuzz_binlog", d, bytes([flags]) + SEP.join(parts))
    # Sample 08's first file (ids with gaps) and its zero-filled last one.
    with open(os.path.join(samples, "08-kill9-mid-put", "binlog.1"), "rb") as fh:
        first = fh.read()
    with open(os.path.join(samples, "08-kill9-mid-put", "binlog.4"), "rb") as fh:
        zeros = fh.read()
    write("fuzz_binlog", "08-kill9-first-and-zero-file", b"\x84" + first + SEP + zeros)
    # Sample 10 again with a missing file between each two and stock's -z.
    with open(os.path.join(CORPUS, "fuzz_binlog", "10-legacy-v5-upgrade"), "rb") as fh:
        ten = fh.read()
    write("fuzz_binlog", "10-gaps-size-limit", bytes([0x80 | 0x04 | 0x08]) + ten[1:])
    write("fuzz_binlog", "bad-version", b"\x00\x06\x00\x00\x00")
    write("fuzz_binlog", "bad-version-skipped", b"\x10\x01\x00\x00\x00" + SEP + b"\x07\x00\x00\x00")


def main():
    samples = sys.argv[1] if len(sys.argv) > 1 else None
    if not samples:
        for c in (os.path.join(HERE, "..", "..", "..", "shared", "binlog-samples"),
                  "/work/shared/binlog-samples"):
            if os.path.isdir(c):
                samples = c
                break
    proto_seeds()
    record_seeds()
    store_seeds()
    if samples:
        binlog_seeds(samples)
    else:
        print("binlog samples not found: fuzz_binlog seeds not written", file=sys.stderr)


if __name__ == "__main__":
    main()
