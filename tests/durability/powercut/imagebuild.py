#!/usr/bin/env python3
"""Build the file images a power cut could leave, from a shim.c log.

The model (per file, as a disk with a volatile write cache sees it):
  * every write or truncate that a completed fsync/fdatasync of that file
    covers (it was issued before the sync began) is on the disk;
  * a write through an O_DSYNC descriptor (or pwritev2 with RWF_DSYNC) that
    returned is on the disk, in full, when it returns;
  * every other write or truncate, i.e. everything issued after the file's
    last completed sync and not made durable on its own, may or may not have
    reached the disk, in any order and in pieces: the builder picks, per
    file, none of them, a prefix of them (in issue order), a random subset,
    or a subset in which some writes are torn at 512-byte sector
    granularity (each sector of the write new or old independently).
  * a write that failed is taken as not made; a short one as its prefix.
Applying the chosen operations in issue order gives the image, so a newer
durable write always wins over an older one at the same place.

Variants:
  synced   only what the syncs made durable (nothing of the tail)
  all      everything that was written (what a plain process crash leaves)
  prefix   a random prefix of each file's tail
  subset   a random subset of each file's tail
  torn     a random subset, some writes torn by sector
  For a file truncated since its last sync (the -f journal), these three
  keep what was written up to its last truncate and vary what follows;
  prefix-any, subset-any and torn-any vary the whole unsynced history.
  violate  NOT a power cut: the last durability event of the whole log (the
           last completed sync or O_DSYNC write) is taken as not having
           happened, and nothing of the tail is kept. A checker must find
           damage in it; that is how the test proves it can fail.

Usage as a program:
  imagebuild.py LOG OUTDIR VARIANT [SEED] [--init DIR]
"""
import os
import random
import shutil
import struct
import sys

HDR = struct.Struct("<IiQQQ")
NAME, OPEN, WRITE, WRITEZ, RESULT, TRUNC, SYNC, SYNCERR, SFR, CLOSE = range(1, 11)
F_DSYNC = 0x100
SECTOR = 512
VARIANTS = ("synced", "all", "prefix", "subset", "torn", "prefix-any", "subset-any", "torn-any",
            "violate")


class Op:
    __slots__ = ("idx", "file", "kind", "off", "length", "data", "dsync", "result", "t_ns",
                 "durable")

    def __init__(self, idx, file, kind, off, length, data, dsync, t_ns):
        self.idx, self.file, self.kind = idx, file, kind
        self.off, self.length, self.data = off, length, data
        self.dsync, self.t_ns = dsync, t_ns
        self.result = None          # None: the call was under way at the kill
        self.durable = False

    def bytes(self):
        n = self.applied_length()
        if self.data is None:
            return bytes(n)
        return self.data[:n]

    def applied_length(self):
        if self.result is None or self.result < 0:
            return self.length
        return min(self.length, self.result)

    def failed(self):
        return self.result is not None and self.result < 0


class Trace:
    """A parsed log: per file, its operations in issue order."""

    def __init__(self, path, drop_last_durable=False):
        with open(path, "rb") as f:
            raw = f.read()
        self.raw = memoryview(raw)
        self.names = {}
        self.ops = {}               # file index -> [Op]
        self.by_idx = {}
        self.syncs = []             # (record index, file or -1, covers-before, t_ns)
        self.records = 0
        self.torn_tail = False
        self.opened = set()
        pos, idx, n = 0, 0, len(raw)
        while pos + HDR.size <= n:
            typ, file, a, b, t = HDR.unpack_from(raw, pos)
            kind = typ & 0xff
            plen = b if kind in (NAME, WRITE) else 0
            if pos + HDR.size + plen > n:
                break               # cut short by the kill: never issued
            payload = self.raw[pos + HDR.size:pos + HDR.size + plen]
            pos += HDR.size + plen
            if kind == NAME:
                self.names[file] = bytes(payload).decode()
                self.ops.setdefault(file, [])
            elif kind in (WRITE, WRITEZ):
                op = Op(idx, file, "w", a, b, payload if kind == WRITE else None,
                        bool(typ & F_DSYNC), t)
                self.ops[file].append(op)
                self.by_idx[idx] = op
            elif kind == TRUNC:
                op = Op(idx, file, "t", a, 0, None, False, t)
                self.ops[file].append(op)
                self.by_idx[idx] = op
            elif kind == RESULT:
                op = self.by_idx.get(a)
                if op is not None:
                    op.result = struct.unpack("<q", struct.pack("<Q", b))[0]
                    if op.kind == "t" and op.result > 0:
                        op.result = 0
            elif kind == SYNC:
                self.syncs.append((idx, file, a, t))
            elif kind == OPEN:
                self.opened.add(file)
            idx += 1
        self.records = idx
        self.torn_tail = pos != n
        self._mark_durable(drop_last_durable)

    def _mark_durable(self, drop_last):
        # Durability events: completed syncs and completed O_DSYNC writes.
        events = [("sync", i, f, before) for (i, f, before, _t) in self.syncs]
        for ops in self.ops.values():
            for op in ops:
                if op.kind == "w" and op.dsync and op.result is not None and op.result > 0:
                    events.append(("dsync", op.idx, op.file, op))
        events.sort(key=lambda e: e[1])
        self.dropped_event = None
        if drop_last and events:
            self.dropped_event = events.pop()
        self.last_sync_before = {f: 0 for f in self.ops}
        for kind, i, f, x in events:
            if kind == "sync":
                for g in (self.ops if f == -1 else [f]):
                    self.last_sync_before[g] = max(self.last_sync_before.get(g, 0), x)
        dsync_durable = {x.idx for kind, i, f, x in events if kind == "dsync"}
        for f, ops in self.ops.items():
            lim = self.last_sync_before.get(f, 0)
            for op in ops:
                op.durable = (op.idx < lim or op.idx in dsync_durable) and not op.failed()

    def tail(self, f):
        """The operations of file f not covered by its last sync."""
        lim = self.last_sync_before.get(f, 0)
        return [op for op in self.ops[f] if op.idx >= lim]

    def last_durable_ns(self):
        """Monotonic time of the last durability event (0 if none)."""
        t = 0
        for (_i, _f, _b, ts) in self.syncs:
            t = max(t, ts)
        for ops in self.ops.values():
            for op in ops:
                if op.durable and op.dsync:
                    t = max(t, op.t_ns)
        return t

    def stats(self):
        out = {}
        for f, ops in self.ops.items():
            tail = self.tail(f)
            out[self.names[f]] = {
                "ops": len(ops),
                "tail": len(tail),
                "tail_volatile": sum(1 for op in tail if not op.durable),
            }
        return out


def apply(img, op, torn_rng=None, sectors=None):
    """Apply op to bytearray img; with torn_rng, each sector new or old at
    random; with sectors (a set of absolute sector numbers), only those new."""
    if op.failed():
        return
    if op.kind == "t":
        if op.off < len(img):
            del img[op.off:]
        else:
            img.extend(bytes(op.off - len(img)))
        return
    data = op.bytes()
    n = len(data)
    if n == 0:
        return
    off = op.off
    if torn_rng is None and sectors is None:
        if off > len(img):
            img.extend(bytes(off - len(img)))
        img[off:off + n] = data
        return
    first, last = off // SECTOR, (off + n - 1) // SECTOR
    for s in range(first, last + 1):
        if (s not in sectors) if sectors is not None else torn_rng.random() < 0.5:
            continue                    # this sector keeps its old content
        lo = max(off, s * SECTOR)
        hi = min(off + n, (s + 1) * SECTOR)
        if lo > len(img):
            img.extend(bytes(lo - len(img)))
        img[lo:hi] = data[lo - off:hi - off]


class Builder:
    """Images of one trace. Each file's durable base is computed once."""

    def __init__(self, trace, init_dir=None):
        self.trace = trace
        self.init_dir = init_dir
        self.base = {}
        for f, ops in trace.ops.items():
            name = trace.names[f]
            img = bytearray()
            if init_dir and os.path.exists(os.path.join(init_dir, name)):
                with open(os.path.join(init_dir, name), "rb") as fh:
                    img = bytearray(fh.read())
            lim = trace.last_sync_before.get(f, 0)
            for op in ops:
                if op.idx >= lim:
                    break
                apply(img, op)
            self.base[f] = bytes(img)

    def file_image(self, f, variant, rng):
        img = bytearray(self.base[f])
        tail = self.trace.tail(f)
        volatile = [op for op in tail if not op.durable]
        # A file rewritten from the start after a truncate (the -f journal)
        # has a long unsynced history; the plain variants keep everything
        # up to its last truncate and vary what follows, the -any variants
        # vary the whole unsynced history.
        last_t = 0
        for i, op in enumerate(volatile):
            if op.kind == "t":
                last_t = i
        base, rest = volatile, volatile
        if not variant.endswith("-any"):
            base, rest = volatile[:last_t], volatile[last_t:]
        else:
            base = []
        kind = variant[:-4] if variant.endswith("-any") else variant
        keep = set()
        torn = set()
        if kind in ("prefix", "subset", "torn"):
            keep = {op.idx for op in base}
        if kind == "all":
            keep = {op.idx for op in volatile}
        elif kind == "prefix":
            k = rng.randint(0, len(rest))
            keep |= {op.idx for op in rest[:k]}
        elif kind == "subset":
            keep |= {op.idx for op in rest if rng.random() < 0.5}
        elif kind == "torn":
            for op in rest:
                r = rng.random()
                if r < 0.4:
                    keep.add(op.idx)
                    if op.kind == "w":
                        torn.add(op.idx)
                elif r < 0.7:
                    keep.add(op.idx)
        elif kind not in ("synced", "violate"):
            raise ValueError("unknown variant %r" % variant)
        for op in tail:
            if op.durable or op.idx in keep:
                apply(img, op, rng if op.idx in torn else None)
        return bytes(img)

    def build(self, outdir, variant, seed=0):
        """Write the image of every file into outdir (created). Returns a
        description of what was chosen."""
        rng = random.Random("%s/%s" % (seed, variant))
        os.makedirs(outdir, exist_ok=True)
        if self.init_dir:
            for name in os.listdir(self.init_dir):
                src = os.path.join(self.init_dir, name)
                if os.path.isfile(src) and name not in self.trace.names.values():
                    shutil.copyfile(src, os.path.join(outdir, name))
        sizes = {}
        for f in sorted(self.trace.ops):
            name = self.trace.names[f]
            data = self.file_image(f, variant, rng)
            path = os.path.join(outdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            sizes[name] = len(data)
        return sizes

    def build_chosen(self, outdir, decide):
        """An image chosen op by op: decide(name, op) is called for each
        operation not made durable and returns False (not on disk), True (on
        disk) or a set of sector numbers (torn: only those sectors new).
        For tests that need one particular power-cut outcome."""
        os.makedirs(outdir, exist_ok=True)
        if self.init_dir:
            for name in os.listdir(self.init_dir):
                src = os.path.join(self.init_dir, name)
                if os.path.isfile(src) and name not in self.trace.names.values():
                    shutil.copyfile(src, os.path.join(outdir, name))
        for f in sorted(self.trace.ops):
            name = self.trace.names[f]
            img = bytearray(self.base[f])
            for op in self.trace.tail(f):
                if op.durable:
                    apply(img, op)
                    continue
                d = decide(name, op)
                if d is True:
                    apply(img, op)
                elif d:
                    apply(img, op, sectors=set(d))
            with open(os.path.join(outdir, name), "wb") as fh:
                fh.write(img)


def main(argv):
    args = [a for a in argv if not a.startswith("--init")]
    init = None
    for i, a in enumerate(argv):
        if a == "--init" and i + 1 < len(argv):
            init = argv[i + 1]
            args.remove(init)
    if len(args) < 3 or args[2] not in VARIANTS:
        sys.stderr.write(__doc__)
        return 2
    log, out, variant = args[:3]
    seed = args[3] if len(args) > 3 else "0"
    trace = Trace(log, drop_last_durable=(variant == "violate"))
    sizes = Builder(trace, init).build(out, variant, seed)
    for name, size in sorted(sizes.items()):
        print("%s %d" % (name, size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
