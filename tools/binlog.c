/* Legacy beanstalkd binlog codec.  See binlog.h for the contract and
 * legacy-binlog-format.md for the format.
 *
 * Everything on disk is decoded byte by byte as little-endian; no struct is
 * read raw, so the host's layout does not matter.  Every length taken from a
 * file is checked against what the file actually holds before it is used:
 * nothing is allocated from a length field, and bodies are not read during
 * replay at all (only their position is kept), so a corrupt length costs
 * nothing. */
#include "binlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    REC7 = 80,              /* Jobrec, x86-64 */
    REC5 = 77,              /* Jobrec5: REC7 without the tail padding */
    MAX_WARNINGS = 1000,    /* stored; more are only counted */
    MAX_GAP_WARNINGS = 100, /* missing files warned one by one up to this */
    FD_CACHE_MAX = 64,
};

/* ---- little-endian fields ---- */

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* The fields of a Jobrec, whatever the version.  Times are ns. */
typedef struct jobrec {
    uint64_t id;
    uint32_t pri;
    int64_t delay, ttr;
    int32_t body_size;
    int64_t created, deadline;
    uint32_t ct[5];         /* reserve, timeout, release, bury, kick */
    uint8_t state;
} jobrec;

static void
decode_rec7(const unsigned char *b, jobrec *r)
{
    r->id = get64(b);
    r->pri = get32(b + 8);
    r->delay = (int64_t)get64(b + 16);
    r->ttr = (int64_t)get64(b + 24);
    r->body_size = (int32_t)get32(b + 32);
    r->created = (int64_t)get64(b + 40);
    r->deadline = (int64_t)get64(b + 48);
    for (int i = 0; i < 5; i++)
        r->ct[i] = get32(b + 56 + 4 * i);
    r->state = b[76];
}

/* Version 5 has the same offsets, times in microseconds as uint64.  Stock
 * multiplies by 1000 in uint64 (wrapping) and stores into int64. */
static void
decode_rec5(const unsigned char *b, jobrec *r)
{
    decode_rec7(b, r);
    r->delay = (int64_t)(get64(b + 16) * 1000u);
    r->ttr = (int64_t)(get64(b + 24) * 1000u);
    r->created = (int64_t)(get64(b + 40) * 1000u);
    r->deadline = (int64_t)(get64(b + 48) * 1000u);
}

static void
encode_rec7(unsigned char *b, const jobrec *r)
{
    memset(b, 0, REC7);
    put64(b, r->id);
    put32(b + 8, r->pri);
    put64(b + 16, (uint64_t)r->delay);
    put64(b + 24, (uint64_t)r->ttr);
    put32(b + 32, (uint32_t)r->body_size);
    put64(b + 40, (uint64_t)r->created);
    put64(b + 48, (uint64_t)r->deadline);
    for (int i = 0; i < 5; i++)
        put32(b + 56 + 4 * i, r->ct[i]);
    b[76] = r->state;
}

/* ---- errors ---- */

const char *
binlog_strerror(int code)
{
    switch (code) {
    case BINLOG_OK: return "success";
    case BINLOG_ENOTDIR: return "not a readable directory";
    case BINLOG_ENOFILES: return "not a binlog directory";
    case BINLOG_EIO: return "I/O error";
    case BINLOG_EVERSION: return "unsupported binlog version";
    case BINLOG_ELOCKED: return "directory locked by another process";
    case BINLOG_ENOMEM: return "out of memory";
    case BINLOG_EINVAL: return "invalid argument";
    case BINLOG_ETOOBIG: return "job too big for the target";
    case BINLOG_EEXIST: return "directory already holds binlog files";
    case BINLOG_ECHANGED: return "binlog file changed while reading";
    }
    return "unknown error";
}

__attribute__((format(printf, 3, 4)))
static int
fail(binlog_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int
nomem(binlog_error *err)
{
    return fail(err, BINLOG_ENOMEM, "out of memory");
}

/* Grow *p (elements of size sz) so that it holds at least n. */
static int
grow(void *pp, size_t *cap, size_t n, size_t sz)
{
    void **p = pp;
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < n) {
        if (c > SIZE_MAX / 2 / sz)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * sz);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- id -> index map (open addressing; id 0 never occurs) ---- */

typedef struct idmap {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap;             /* power of two, or 0 */
    size_t len;
} idmap;

static size_t
idhash(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (size_t)x;
}

static int
idmap_get(const idmap *m, uint64_t id, uint32_t *val)
{
    if (!m->cap)
        return 0;
    for (size_t i = idhash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == id) {
            if (val)
                *val = m->vals[i];
            return 1;
        }
        if (m->keys[i] == 0)
            return 0;
    }
}

static int
idmap_put(idmap *m, uint64_t id, uint32_t val)
{
    if ((m->len + 1) * 4 > m->cap * 3) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        uint64_t *nk = calloc(nc, sizeof *nk);
        uint32_t *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t k = idhash(m->keys[i]) & (nc - 1);
            while (nk[k])
                k = (k + 1) & (nc - 1);
            nk[k] = m->keys[i];
            nv[k] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t i = idhash(id) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->len++;
    m->keys[i] = id;
    m->vals[i] = val;
    return 0;
}

/* Removal by backward shift, so no tombstones are needed. */
static void
idmap_del(idmap *m, uint64_t id)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = idhash(id) & mask;
    while (m->keys[i] != id) {
        if (!m->keys[i])
            return;
        i = (i + 1) & mask;
    }
    m->len--;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = idhash(m->keys[j]) & mask;
        /* Move j into the hole at i unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
}

static void
idmap_free(idmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- reader ---- */

/* A job during replay: what stock keeps in its Job, minus the body, plus
 * where the body is. */
typedef struct rjob {
    uint64_t id;
    uint64_t order;
    int64_t delay, ttr, created, deadline;
    int64_t body_off;       /* offset of the stored body in files[file] */
    uint32_t pri, ct[5];
    int32_t body_size;      /* stored body size (with CRLF) */
    uint32_t tube;
    uint32_t file;          /* index into files[] */
    uint8_t state;          /* raw state byte of the newest record */
    uint8_t live;
} rjob;

typedef struct tube {
    char *name;             /* NUL-terminated */
    size_t len;
} tube;

typedef struct fmeta {
    char *path;
    dev_t dev;
    ino_t ino;
} fmeta;

struct binlog_reader {
    char *dir;
    int lockfd;
    binlog_read_opts o;

    rjob *jobs;
    size_t njobs, capjobs;
    uint32_t *freelist;
    size_t nfree, capfree;
    idmap map;

    tube *tubes;
    size_t ntubes, captubes;
    uint32_t *tslots;       /* tube hash: index + 1, 0 = empty */
    size_t tcap;

    binlog_file_info *files;
    fmeta *fmeta;
    size_t nfiles, capfiles, capfmeta;

    binlog_warning *warn;
    size_t nwarn, capwarn, suppressed;

    uint64_t next_id;       /* stock's */
    uint64_t max_seen;
    uint64_t order;
    int stock_err;

    uint32_t *sorted;       /* live jobs by id */
    size_t nsorted, pos;
    unsigned char *body;
    size_t bodycap;
    int *fds;               /* per file, -1 if closed */
    size_t nopen;
};

__attribute__((format(printf, 6, 7)))
static int
warn(binlog_reader *r, int stock, int lost, int file, int64_t off,
     const char *fmt, ...)
{
    if (r->nwarn >= MAX_WARNINGS) {
        r->suppressed++;
        return 0;
    }
    if (grow(&r->warn, &r->capwarn, r->nwarn + 1, sizeof *r->warn))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    binlog_warning *w = &r->warn[r->nwarn++];
    w->stock = stock;
    w->lost = lost;
    w->file = file;
    w->offset = off;
    w->msg = msg;
    return 0;
}

/* Shorthand for warnings tied to a position in files[fi]. */
#define FWARN(r, fi, stock, lost, off, ...) \
    warn((r), (stock), (lost), (r)->files[fi].n, (off), __VA_ARGS__)

static size_t
strhash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return (size_t)h;
}

int
binlog_tube_name_valid(const char *name, size_t len)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789-+/;.$_()";
    if (!name || len < 1 || len > BINLOG_MAX_TUBE_NAME || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name[i] || !strchr(ok, name[i]))
            return 0;
    return 1;
}

/* Index of tube `name` (n bytes, no NUL inside), added if new. */
static int
tube_intern(binlog_reader *r, const char *name, size_t n, uint32_t *out)
{
    if ((r->ntubes + 1) * 2 > r->tcap) {
        size_t nc = r->tcap ? r->tcap * 2 : 64;
        uint32_t *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < r->ntubes; i++) {
            size_t k = strhash(r->tubes[i].name, r->tubes[i].len) & (nc - 1);
            while (ns[k])
                k = (k + 1) & (nc - 1);
            ns[k] = (uint32_t)i + 1;
        }
        free(r->tslots);
        r->tslots = ns;
        r->tcap = nc;
    }
    size_t k = strhash(name, n) & (r->tcap - 1);
    for (; r->tslots[k]; k = (k + 1) & (r->tcap - 1)) {
        tube *t = &r->tubes[r->tslots[k] - 1];
        if (t->len == n && memcmp(t->name, name, n) == 0) {
            *out = r->tslots[k] - 1;
            return 0;
        }
    }
    if (grow(&r->tubes, &r->captubes, r->ntubes + 1, sizeof *r->tubes))
        return -1;
    char *s = malloc(n + 1);
    if (!s)
        return -1;
    memcpy(s, name, n);
    s[n] = '\0';
    r->tubes[r->ntubes] = (tube){s, n};
    r->tslots[k] = (uint32_t)r->ntubes + 1;
    *out = (uint32_t)r->ntubes++;
    return 1;
}

/* A sequential reader over one file that knows the file's size, so a
 * length field can be checked before anything is done with it. */
typedef struct frd {
    int fd;
    int64_t size;
    int64_t pos;            /* logical position */
    unsigned char buf[65536];
    size_t len, off;        /* buffered bytes buf[off..len) are at pos */
} frd;

/* Read up to n bytes; *got < n only at end of file.  -errno on error. */
static int
fr_read(frd *f, void *dst, size_t n, size_t *got)
{
    unsigned char *d = dst;
    *got = 0;
    while (*got < n) {
        if (f->off == f->len) {
            ssize_t k;
            do
                k = read(f->fd, f->buf, sizeof f->buf);
            while (k < 0 && errno == EINTR);
            if (k < 0)
                return -errno;
            if (k == 0)
                return 0;
            f->len = (size_t)k;
            f->off = 0;
        }
        size_t c = f->len - f->off;
        if (c > n - *got)
            c = n - *got;
        memcpy(d + *got, f->buf + f->off, c);
        f->off += c;
        *got += c;
        f->pos += (int64_t)c;
    }
    return 0;
}

/* Skip n bytes, or to the end of file if fewer remain; *got = skipped. */
static int
fr_skip(frd *f, int64_t n, int64_t *got)
{
    int64_t avail = f->size - f->pos;
    if (avail < 0)
        avail = 0;
    *got = n < avail ? n : avail;
    size_t inbuf = f->len - f->off;
    if ((uint64_t)*got <= inbuf) {
        f->off += (size_t)*got;
        f->pos += *got;
        return 0;
    }
    f->pos += *got;
    f->off = f->len = 0;
    if (lseek(f->fd, f->pos, SEEK_SET) < 0)
        return -errno;
    return 0;
}

static int
all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Offset of the first non-zero byte from the current position, or -1. */
static int
fr_find_nonzero(frd *f, int64_t *where)
{
    unsigned char b[4096];
    *where = -1;
    for (;;) {
        int64_t at = f->pos;
        size_t got;
        int rc = fr_read(f, b, sizeof b, &got);
        if (rc)
            return rc;
        for (size_t i = 0; i < got; i++) {
            if (b[i]) {
                *where = at + (int64_t)i;
                return 0;
            }
        }
        if (got < sizeof b)
            return 0;
    }
}

static int
new_job(binlog_reader *r, uint32_t *out)
{
    if (r->nfree) {
        *out = r->freelist[--r->nfree];
        return 0;
    }
    if (r->njobs >= UINT32_MAX)
        return -1;
    if (grow(&r->jobs, &r->capjobs, r->njobs + 1, sizeof *r->jobs))
        return -1;
    *out = (uint32_t)r->njobs++;
    return 0;
}

/* Stock's job_free(): the job leaves the map and the replay list. */
static int
drop_job(binlog_reader *r, uint32_t idx)
{
    rjob *j = &r->jobs[idx];
    idmap_del(&r->map, j->id);
    j->live = 0;
    if (grow(&r->freelist, &r->capfree, r->nfree + 1, sizeof *r->freelist))
        return -1;
    r->freelist[r->nfree++] = idx;
    return 0;
}

static void
saw_id(binlog_reader *r, uint64_t id)
{
    if (id > r->max_seen)
        r->max_seen = id;
}

/* Replay the records of files[fi] (header already read), following stock's
 * readrec()/readrec5() (file.c) step by step.  Returns 0 when the file is
 * done, cleanly or not (warnings record why), or a BINLOG_E* code. */
static int
replay_file(binlog_reader *r, size_t fi, frd *f, int ver,
            binlog_error *err)
{
    const int v5 = ver == 5;
    const size_t nlsz = v5 ? 8 : 4;
    const size_t recsz = v5 ? REC5 : REC7;
    const char *pfx = v5 ? "v5 " : "";
    const char *path = r->fmeta[fi].path;
    unsigned char b[REC7];
    char name[BINLOG_MAX_TUBE_NAME + 1];
    size_t got;
    int rc;

#define RD(dst, n)                                                        \
    do {                                                                  \
        if ((rc = fr_read(f, (dst), (n), &got)) < 0)                      \
            return fail(err, BINLOG_EIO, "%s: read: %s", path,            \
                        strerror(-rc));                                   \
    } while (0)
#define W(...)                                                            \
    do {                                                                  \
        if (FWARN(r, fi, __VA_ARGS__))                                    \
            return nomem(err);                                            \
    } while (0)

    for (;;) {
        int64_t recpos = f->pos;
        int64_t namelen;

        RD(b, nlsz);
        if (got < nlsz) {
            /* Stock stops silently, even on 1-3 stray bytes. */
            if (got && !all_zero(b, got))
                W(0, 1, recpos, "%s: %zu stray bytes at offset %" PRId64
                  " ignored (too short for a record)", path, got, recpos);
            return 0;
        }
        if (v5) {
            uint64_t v = get64(b);
            if (v > BINLOG_MAX_TUBE_NAME) {
                r->stock_err = 1;
                W(1, 1, recpos, "%s:%" PRId64 ": namelen %" PRIu64
                  " exceeds maximum of %d", path, recpos, v,
                  BINLOG_MAX_TUBE_NAME);
                return 0;
            }
            namelen = (int64_t)v;
        } else {
            int32_t v = (int32_t)get32(b);
            if (v > BINLOG_MAX_TUBE_NAME) {
                r->stock_err = 1;
                W(1, 1, recpos, "%s:%" PRId64 ": namelen %" PRId32
                  " exceeds maximum of %d", path, recpos, v,
                  BINLOG_MAX_TUBE_NAME);
                return 0;
            }
            if (v < 0) {
                r->stock_err = 1;
                W(1, 1, recpos, "%s:%" PRId64 ": namelen %" PRId32
                  " is negative", path, recpos, v);
                return 0;
            }
            namelen = v;
        }

        if (namelen) {
            RD(name, (size_t)namelen);
            if (got < (size_t)namelen) {
                r->stock_err = 1;
                W(1, 1, f->pos - (int64_t)got, "%s:%" PRId64
                  ": unexpected EOF reading %d bytes (got %zu): %stube name",
                  path, f->pos - (int64_t)got, (int)namelen, got, pfx);
                return 0;
            }
        }
        name[namelen] = '\0';

        int64_t jrpos = f->pos;
        RD(b, recsz);
        if (got < recsz) {
            r->stock_err = 1;
            /* Zero padding shorter than a record: stock warns, but nothing
             * is lost. */
            int benign = namelen == 0 && all_zero(b, got);
            W(1, !benign, jrpos, "%s:%" PRId64
              ": unexpected EOF reading %zu bytes (got %zu): %sjob struct",
              path, jrpos, recsz, got, pfx);
            return 0;
        }
        jobrec jr;
        if (v5)
            decode_rec5(b, &jr);
        else
            decode_rec7(b, &jr);

        if (jr.id == 0) {
            /* End of data: stock reads no further in this file. */
            int64_t nz;
            if ((rc = fr_find_nonzero(f, &nz)) < 0)
                return fail(err, BINLOG_EIO, "%s: read: %s", path,
                            strerror(-rc));
            if (!(namelen == 0 && all_zero(b, recsz)) || nz >= 0)
                W(0, nz >= 0, recpos, "%s:%" PRId64 ": record with job id 0"
                  " ends the file%s", path, recpos,
                  nz >= 0 ? "; non-zero bytes after it are ignored, as"
                            " stock ignores them" : "");
            return 0;
        }

        uint32_t idx;
        int known = idmap_get(&r->map, jr.id, &idx);
        saw_id(r, jr.id);
        if (!known && !namelen) {
            /* A short record whose full record was in a file that GC
             * deleted (or that comes before it): ignored, any state. */
            continue;
        }

        uint8_t raw = jr.state;
        uint8_t st = raw == BINLOG_RESERVED ? BINLOG_READY : raw;
        switch (st) {
        case BINLOG_READY:
        case BINLOG_BURIED:
        case BINLOG_DELAYED: {
            if (!known) {
                /* (size_t)body_size: a negative size is "too big". */
                if (jr.body_size < 0 ||
                    (uint64_t)jr.body_size > (uint64_t)r->o.size_limit) {
                    r->stock_err = 1;
                    W(1, 1, jrpos, "%s:%" PRId64 ": job %" PRIu64
                      " is too big (%" PRId32 " > %zu)", path, jrpos, jr.id,
                      jr.body_size, r->o.size_limit);
                    return 0;
                }
                size_t tlen = strlen(name);
                uint32_t t;
                int isnew = tube_intern(r, name, tlen, &t);
                if (isnew < 0)
                    return nomem(err);
                if (tlen < (size_t)namelen)
                    W(0, 0, recpos, "%s:%" PRId64 ": job %" PRIu64 ": tube"
                      " name cut at a NUL after %zu of %d bytes, as stock"
                      " cuts it", path, recpos, jr.id, tlen, (int)namelen);
                if (isnew && !binlog_tube_name_valid(name, tlen))
                    W(0, 0, recpos, "%s:%" PRId64 ": job %" PRIu64 ": tube"
                      " name is not valid in the protocol", path, recpos,
                      jr.id);
                if (new_job(r, &idx) || idmap_put(&r->map, jr.id, idx))
                    return nomem(err);
                rjob *j = &r->jobs[idx];
                memset(j, 0, sizeof *j);
                j->id = jr.id;
                j->tube = t;
                j->order = r->order++;
                j->live = 1;
                j->body_size = jr.body_size;
                if (jr.id >= r->next_id)
                    r->next_id = jr.id + 1;     /* wraps like stock */
            }
            rjob *j = &r->jobs[idx];
            if (known && namelen) {
                const tube *ot = &r->tubes[j->tube];
                if (strcmp(ot->name, name) != 0)
                    W(0, 0, recpos, "%s:%" PRId64 ": job %" PRIu64 " moved"
                      " with tube name \"%s\"; it stays in \"%s\" as in"
                      " stock", path, recpos, jr.id, name, ot->name);
            }
            if (!namelen && jr.body_size != j->body_size)
                W(0, 0, jrpos, "%s:%" PRId64 ": job %" PRIu64 ": update"
                  " record has body_size %" PRId32 ", full record %" PRId32
                  "; the body of the full record is kept", path, jrpos,
                  jr.id, jr.body_size, j->body_size);
            j->pri = jr.pri;
            j->delay = jr.delay;
            j->ttr = jr.ttr;
            j->created = jr.created;
            j->deadline = jr.deadline;
            memcpy(j->ct, jr.ct, sizeof j->ct);
            j->state = raw;

            if (namelen) {
                int64_t bodypos = f->pos, skipped;
                if (jr.body_size <= 0) {
                    /* Stock's read of 0 bytes counts as failed (and a
                     * negative size on a known job would be a wild read in
                     * stock): the job is dropped, the file ends. */
                    r->stock_err = 1;
                    W(0, 1, jrpos, "%s:%" PRId64 ": job %" PRIu64 " has"
                      " body_size %" PRId32 "; job dropped and rest of file"
                      " ignored, as stock does", path, jrpos, jr.id,
                      jr.body_size);
                    if (drop_job(r, idx))
                        return nomem(err);
                    return 0;
                }
                if (known && jr.body_size != j->body_size)
                    W(0, 0, jrpos, "%s:%" PRId64 ": job %" PRIu64 ": full"
                      " record changes body_size from %" PRId32 " to %"
                      PRId32 " (stock would overrun its buffer); the new"
                      " body is used", path, jrpos, jr.id, j->body_size,
                      jr.body_size);
                if ((rc = fr_skip(f, jr.body_size, &skipped)) < 0)
                    return fail(err, BINLOG_EIO, "%s: seek: %s", path,
                                strerror(-rc));
                if (skipped < jr.body_size) {
                    r->stock_err = 1;
                    W(1, 1, bodypos, "%s:%" PRId64 ": unexpected EOF reading"
                      " %" PRId32 " bytes (got %" PRId64 "): %sjob body",
                      path, bodypos, jr.body_size, skipped, pfx);
                    if (drop_job(r, idx))
                        return nomem(err);
                    return 0;
                }
                j->body_size = jr.body_size;
                j->body_off = bodypos;
                j->file = (uint32_t)fi;
            }
            continue;
        }
        case BINLOG_INVALID:
            /* Delete.  A full record's body is NOT skipped: stock parses
             * it as the next record, and so do we. */
            if (known && drop_job(r, idx))
                return nomem(err);
            continue;
        default:
            r->stock_err = 1;
            W(0, 1, jrpos, "%s:%" PRId64 ": job %" PRIu64 " has invalid"
              " state %u; %srest of file ignored, as stock does", path,
              jrpos, jr.id, (unsigned)raw, known ? "job dropped and " : "");
            if (known && drop_job(r, idx))
                return nomem(err);
            return 0;
        }
    }
#undef RD
#undef W
}

static int64_t
wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *
path_join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* Stock's walscandir() parses the suffix with strtol into an int: leading
 * spaces and a sign are accepted, and "binlog." alone counts as 0. */
static int
scan_number(const char *name, int *n)
{
    static const char base[] = "binlog.";
    if (strncmp(name, base, sizeof base - 1) != 0)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(name + sizeof base - 1, &end, 10);
    if (*end != '\0')
        return 0;
    *n = (int)v;        /* truncated as stock truncates (gcc: modulo 2^32) */
    return 1;
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int
lock_dir(binlog_reader *r, const char *dir, binlog_error *err)
{
    char *p = path_join(dir, "lock");
    if (!p)
        return nomem(err);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        int rc = 0;
        if (e != ENOENT)    /* no lock file: no server ever ran here */
            rc = fail(err, BINLOG_EIO, "cannot open %s to check that no"
                      " server uses %s: %s (BINLOG_NO_LOCK skips the check)",
                      p, dir, strerror(e));
        free(p);
        return rc;
    }
    /* A read lock conflicts with the write lock a server holds, and keeps
     * a server from starting while we read. */
    struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) < 0) {
        int e = errno;
        struct flock q = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        char who[48] = "";
        if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
            snprintf(who, sizeof who, " by pid %ld", (long)q.l_pid);
        close(fd);
        int rc;
        if (e == EAGAIN || e == EACCES)
            rc = fail(err, BINLOG_ELOCKED, "%s is locked%s: a beanstalkd is"
                      " probably running on %s; stop it first", p, who, dir);
        else
            rc = fail(err, BINLOG_EIO, "%s: lock: %s", p, strerror(e));
        free(p);
        return rc;
    }
    free(p);
    r->lockfd = fd;
    return 0;
}

static const char *
version_hint(int32_t v)
{
    switch (v) {
    case 1: return " (written by beanstalkd 1.2/1.3, which 1.12 cannot read)";
    case 2: case 3: case 4: case 6:
        return " (a development format 1.12 cannot read)";
    case 0x05000000: case 0x07000000:
        return " (a big-endian file; only little-endian is supported)";
    }
    return "";
}

/* Open, check and replay binlog.N (an entry of files[fi]). */
static int
read_one(binlog_reader *r, size_t fi, frd *f, binlog_error *err)
{
    const char *path = r->fmeta[fi].path;
    binlog_file_info *fin = &r->files[fi];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            fin->read = 0;
            return warn(r, 1, 0, fin->n, -1, "open %s: %s", path,
                        strerror(e)) ? nomem(err) : 0;
        }
        return fail(err, BINLOG_EIO, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(err, BINLOG_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, BINLOG_EIO, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, 0);
    r->fmeta[fi].dev = st.st_dev;
    r->fmeta[fi].ino = st.st_ino;
    fin->size = st.st_size;
    fin->version = -1;
    fin->read = 0;
    f->fd = fd;
    f->size = st.st_size;
    f->pos = 0;
    f->len = f->off = 0;

    unsigned char h[4];
    size_t got;
    int rc = fr_read(f, h, 4, &got);
    if (rc < 0) {
        close(fd);
        return fail(err, BINLOG_EIO, "%s: read: %s", path, strerror(-rc));
    }
    if (got < 4) {
        close(fd);
        r->stock_err = 1;
        return warn(r, 1, 0, fin->n, 0, "%s:0: unexpected EOF reading 4"
                    " bytes (got %zu): version", path, got) ? nomem(err) : 0;
    }
    int32_t v = (int32_t)get32(h);
    fin->version = v;
    if (v == 5 || v == 7) {
        fin->read = 1;
        rc = replay_file(r, fi, f, v, err);
        close(fd);
        return rc;
    }
    /* A file of zeros is a server killed between creating and writing the
     * header: nothing can be lost. */
    int64_t nz = -1;
    if (v == 0 && (rc = fr_find_nonzero(f, &nz)) < 0) {
        close(fd);
        return fail(err, BINLOG_EIO, "%s: read: %s", path, strerror(-rc));
    }
    close(fd);
    int harmless = v == 0 && nz < 0;
    if (!harmless && !(r->o.flags & BINLOG_SKIP_BAD_VERSION))
        return fail(err, BINLOG_EVERSION, "%s: unknown binlog version %" PRId32
                    "%s; stock 1.12 reads versions 5 and 7 (it would skip"
                    " this file, then delete it)", path, v, version_hint(v));
    r->stock_err = 1;
    return warn(r, 1, !harmless, fin->n, 0, "%s: unknown version: %" PRId32,
                path, v) ? nomem(err) : 0;
}

static int
scan_and_replay(binlog_reader *r, const char *dir, binlog_error *err)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return fail(err, BINLOG_ENOTDIR, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(err, BINLOG_ENOTDIR, "%s: not a directory", dir);
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, BINLOG_ENOTDIR, "%s: %s", dir, strerror(errno));

    int *nums = NULL, *canon = NULL;
    size_t nn = 0, cn = 0, capn = 0, capc = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        int n;
        if (!scan_number(e->d_name, &n))
            continue;
        char want[32];
        snprintf(want, sizeof want, "binlog.%d", n);
        if (grow(&nums, &capn, nn + 1, sizeof *nums)) {
            rc = nomem(err);
            break;
        }
        nums[nn++] = n;
        if (strcmp(want, e->d_name) == 0) {
            if (grow(&canon, &capc, cn + 1, sizeof *canon)) {
                rc = nomem(err);
                break;
            }
            canon[cn++] = n;
        } else if (warn(r, 0, 1, -1, -1, "%s/%s: counted by stock's scan as"
                        " %d, but stock opens %s, so this file is never read",
                        dir, e->d_name, n, want)) {
            rc = nomem(err);
            break;
        }
        errno = 0;
    }
    if (!rc && errno)
        rc = fail(err, BINLOG_ENOTDIR, "%s: readdir: %s", dir,
                  strerror(errno));
    closedir(d);
    if (!rc && nn == 0)
        rc = fail(err, BINLOG_ENOFILES, "%s: no binlog.N files: not a"
                  " beanstalkd binlog directory", dir);
    if (rc) {
        free(nums);
        free(canon);
        return rc;
    }

    /* Stock opens binlog.%d for every number from min to max. */
    qsort(nums, nn, sizeof *nums, cmp_int);
    if (cn)
        qsort(canon, cn, sizeof *canon, cmp_int);
    int64_t lo = nums[0], hi = nums[nn - 1];
    free(nums);

    frd *f = malloc(sizeof *f);
    if (!f) {
        free(canon);
        return nomem(err);
    }
    int64_t expect = lo;
    for (size_t i = 0; i <= cn && !rc; i++) {
        int64_t next = i < cn ? canon[i] : hi + 1;
        if (i > 0 && next == canon[i - 1])
            continue;
        /* Files missing between expect and next. */
        int64_t gap = next - expect;
        if (gap > MAX_GAP_WARNINGS) {
            if (warn(r, 0, 0, -1, -1, "open %s/binlog.%" PRId64 " ..."
                     " binlog.%" PRId64 ": No such file or directory (%" PRId64
                     " files; stock warns for each)", dir, expect, next - 1,
                     gap))
                rc = nomem(err);
        } else {
            for (int64_t k = expect; k < next && !rc; k++)
                if (warn(r, 1, 0, (int)k, -1, "open %s/binlog.%" PRId64
                         ": No such file or directory", dir, k))
                    rc = nomem(err);
        }
        if (rc || i == cn)
            break;
        expect = next + 1;

        if (grow(&r->files, &r->capfiles, r->nfiles + 1, sizeof *r->files) ||
            grow(&r->fmeta, &r->capfmeta, r->nfiles + 1, sizeof *r->fmeta)) {
            rc = nomem(err);
            break;
        }
        size_t fi = r->nfiles;
        char nm[32];
        snprintf(nm, sizeof nm, "binlog.%" PRId64, next);
        memset(&r->files[fi], 0, sizeof r->files[fi]);
        memset(&r->fmeta[fi], 0, sizeof r->fmeta[fi]);
        r->files[fi].n = (int)next;
        r->fmeta[fi].path = path_join(dir, nm);
        r->nfiles++;
        if (!r->fmeta[fi].path) {
            rc = nomem(err);
            break;
        }
        rc = read_one(r, fi, f, err);
    }
    free(f);
    free(canon);
    return rc;
}

static int
cmp_job_id(const void *a, const void *b, void *ctx)
{
    const rjob *jobs = ctx;
    uint64_t x = jobs[*(const uint32_t *)a].id, y = jobs[*(const uint32_t *)b].id;
    return (x > y) - (x < y);
}

int
binlog_open(binlog_reader **out, const char *dir,
            const binlog_read_opts *opts, binlog_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    if (!out)
        return fail(err, BINLOG_EINVAL, "binlog_open: no result pointer");
    *out = NULL;
    if (!dir || !*dir)
        return fail(err, BINLOG_EINVAL, "binlog_open: no directory");
    binlog_reader *r = calloc(1, sizeof *r);
    if (!r)
        return nomem(err);
    r->lockfd = -1;
    r->next_id = 1;
    if (opts)
        r->o = *opts;
    if (!r->o.size_limit)
        r->o.size_limit = BINLOG_STOCK_SIZE_LIMIT_MAX;
    if (!r->o.now_ns)
        r->o.now_ns = wall_ns();
    r->dir = strdup(dir);
    int rc = r->dir ? 0 : nomem(err);
    if (!rc && !(r->o.flags & BINLOG_NO_LOCK)) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            rc = lock_dir(r, dir, err);
    }
    if (!rc)
        rc = scan_and_replay(r, dir, err);
    if (!rc && r->suppressed &&
        warn(r, 0, 0, -1, -1, "%zu more warnings not stored", r->suppressed))
        rc = nomem(err);

    if (!rc) {
        size_t live = r->map.len;
        r->sorted = malloc((live ? live : 1) * sizeof *r->sorted);
        r->fds = malloc((r->nfiles ? r->nfiles : 1) * sizeof *r->fds);
        if (!r->sorted || !r->fds)
            rc = nomem(err);
        else {
            for (size_t i = 0; i < r->nfiles; i++)
                r->fds[i] = -1;
            for (size_t i = 0; i < r->njobs; i++)
                if (r->jobs[i].live)
                    r->sorted[r->nsorted++] = (uint32_t)i;
            qsort_r(r->sorted, r->nsorted, sizeof *r->sorted, cmp_job_id,
                    r->jobs);
        }
    }
    if (rc) {
        binlog_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

static void
close_fds(binlog_reader *r)
{
    if (!r->fds)
        return;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (r->fds[i] >= 0)
            close(r->fds[i]);
        r->fds[i] = -1;
    }
    r->nopen = 0;
}

/* An fd for files[fi], checked to be the file that was replayed. */
static int
file_fd(binlog_reader *r, size_t fi, binlog_error *err)
{
    if (r->fds[fi] >= 0)
        return r->fds[fi];
    if (r->nopen >= FD_CACHE_MAX)
        close_fds(r);
    const char *path = r->fmeta[fi].path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errno == ENOENT ? BINLOG_ECHANGED : BINLOG_EIO,
                    "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_dev != r->fmeta[fi].dev ||
        st.st_ino != r->fmeta[fi].ino) {
        close(fd);
        return fail(err, BINLOG_ECHANGED, "%s was replaced after replay",
                    path);
    }
    r->fds[fi] = fd;
    r->nopen++;
    return fd;
}

int
binlog_next(binlog_reader *r, binlog_job *job, binlog_error *err)
{
    if (!r || !job)
        return fail(err, BINLOG_EINVAL, "binlog_next: NULL argument");
    if (r->pos >= r->nsorted)
        return 0;
    const rjob *j = &r->jobs[r->sorted[r->pos]];
    size_t sz = (size_t)j->body_size;
    if (grow(&r->body, &r->bodycap, sz, 1))
        return nomem(err);
    int fd = file_fd(r, j->file, err);
    if (fd < 0)
        return fd;
    size_t done = 0;
    while (done < sz) {
        ssize_t k = pread(fd, r->body + done, sz - done,
                          (off_t)(j->body_off + (int64_t)done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return fail(err, BINLOG_EIO, "%s: read: %s",
                        r->fmeta[j->file].path, strerror(errno));
        if (k == 0)
            return fail(err, BINLOG_ECHANGED, "%s shrank after replay (job %"
                        PRIu64 ")", r->fmeta[j->file].path, j->id);
        done += (size_t)k;
    }

    memset(job, 0, sizeof *job);
    job->id = j->id;
    job->tube = r->tubes[j->tube].name;
    job->tube_len = r->tubes[j->tube].len;
    job->pri = j->pri;
    job->delay_ns = j->delay;
    job->ttr_ns = j->ttr;
    job->created_ns = j->created;
    job->deadline_ns = j->deadline;
    job->reserves = j->ct[0];
    job->timeouts = j->ct[1];
    job->releases = j->ct[2];
    job->buries = j->ct[3];
    job->kicks = j->ct[4];
    job->stored_state = j->state;
    /* prot_replay(): buried jobs go through bury_job(), which counts one
     * more bury; a delayed job is delayed only if its deadline is still
     * ahead; everything else (ready, reserved) is ready. */
    switch (j->state) {
    case BINLOG_BURIED:
        job->state = BINLOG_BURIED;
        job->buries++;
        break;
    case BINLOG_DELAYED:
        job->state = r->o.now_ns < j->deadline ? BINLOG_DELAYED : BINLOG_READY;
        break;
    default:
        job->state = BINLOG_READY;
    }
    job->body = r->body;
    job->body_len = sz >= 2 ? sz - 2 : 0;
    job->body_crlf = sz >= 2 && r->body[sz - 2] == '\r' && r->body[sz - 1] == '\n';
    job->format = r->files[j->file].version;
    job->file = r->files[j->file].n;
    job->order = j->order;
    r->pos++;
    return 1;
}

void
binlog_rewind(binlog_reader *r)
{
    if (r)
        r->pos = 0;
}

int
binlog_foreach(binlog_reader *r, int (*fn)(const binlog_job *, void *),
               void *ctx, binlog_error *err)
{
    binlog_job job;
    int rc;
    if (!fn)
        return fail(err, BINLOG_EINVAL, "binlog_foreach: no callback");
    while ((rc = binlog_next(r, &job, err)) == 1) {
        int k = fn(&job, ctx);
        if (k)
            return k;
    }
    return rc;
}

size_t
binlog_job_count(const binlog_reader *r)
{
    return r ? r->nsorted : 0;
}

uint64_t
binlog_stock_next_id(const binlog_reader *r)
{
    return r ? r->next_id : 0;
}

uint64_t
binlog_safe_next_id(const binlog_reader *r)
{
    if (!r)
        return 0;
    uint64_t n = r->max_seen + 1 > r->max_seen ? r->max_seen + 1 : r->max_seen;
    return r->next_id > n ? r->next_id : n;
}

int
binlog_stock_errors(const binlog_reader *r)
{
    return r ? r->stock_err : 0;
}

size_t
binlog_warning_count(const binlog_reader *r)
{
    return r ? r->nwarn : 0;
}

const binlog_warning *
binlog_get_warning(const binlog_reader *r, size_t i)
{
    return r && i < r->nwarn ? &r->warn[i] : NULL;
}

size_t
binlog_file_count(const binlog_reader *r)
{
    return r ? r->nfiles : 0;
}

const binlog_file_info *
binlog_get_file(const binlog_reader *r, size_t i)
{
    return r && i < r->nfiles ? &r->files[i] : NULL;
}

void
binlog_close(binlog_reader *r)
{
    if (!r)
        return;
    close_fds(r);
    if (r->lockfd >= 0)
        close(r->lockfd);
    for (size_t i = 0; i < r->nwarn; i++)
        free((char *)r->warn[i].msg);
    for (size_t i = 0; i < r->ntubes; i++)
        free(r->tubes[i].name);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->fmeta[i].path);
    free(r->warn);
    free(r->tubes);
    free(r->tslots);
    free(r->files);
    free(r->fmeta);
    free(r->jobs);
    free(r->freelist);
    free(r->sorted);
    free(r->body);
    free(r->fds);
    idmap_free(&r->map);
    free(r->dir);
    free(r);
}

/* ---- writer ---- */

struct binlog_writer {
    char *dir;
    binlog_write_opts o;
    int fd;                 /* current temporary file, or -1 */
    int nfiles;             /* temporary files .binlog-tmp.1 .. nfiles */
    int64_t cur_size;
    unsigned char *buf;     /* pending bytes of the current file */
    size_t blen, bcap;
    idmap ids;
    uint64_t max_id;
};

static char *
tmp_name(const binlog_writer *w, int n)
{
    char *p = NULL;
    if (asprintf(&p, "%s/.binlog-tmp.%d", w->dir, n) < 0)
        return NULL;
    return p;
}

static int
w_flush(binlog_writer *w, binlog_error *err)
{
    size_t done = 0;
    while (done < w->blen) {
        ssize_t k = write(w->fd, w->buf + done, w->blen - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return fail(err, BINLOG_EIO, "%s/.binlog-tmp.%d: write: %s",
                        w->dir, w->nfiles, strerror(errno));
        done += (size_t)k;
    }
    w->blen = 0;
    return 0;
}

static int
w_close_file(binlog_writer *w, binlog_error *err)
{
    if (w->fd < 0)
        return 0;
    int rc = w_flush(w, err);
    if (!rc && fsync(w->fd) < 0)
        rc = fail(err, BINLOG_EIO, "%s/.binlog-tmp.%d: fsync: %s", w->dir,
                  w->nfiles, strerror(errno));
    if (close(w->fd) < 0 && !rc)
        rc = fail(err, BINLOG_EIO, "%s/.binlog-tmp.%d: close: %s", w->dir,
                  w->nfiles, strerror(errno));
    w->fd = -1;
    return rc;
}

static int
w_new_file(binlog_writer *w, binlog_error *err)
{
    int rc = w_close_file(w, err);
    if (rc)
        return rc;
    char *p = tmp_name(w, w->nfiles + 1);
    if (!p)
        return nomem(err);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = fail(err, BINLOG_EIO, "%s: %s", p, strerror(errno));
        free(p);
        return rc;
    }
    free(p);
    w->fd = fd;
    w->nfiles++;
    unsigned char h[4];
    put32(h, 7);
    memcpy(w->buf, h, 4);
    w->blen = 4;
    w->cur_size = 4;
    return 0;
}

/* Append one record of n bytes made of the given pieces. */
static int
w_append(binlog_writer *w, const void *const *piece, const size_t *len,
         int npiece, binlog_error *err)
{
    int64_t n = 0;
    for (int i = 0; i < npiece; i++)
        n += (int64_t)len[i];
    if (w->fd < 0 || (w->cur_size > 4 && w->cur_size + n > w->o.file_size)) {
        int rc = w_new_file(w, err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < npiece; i++) {
        const unsigned char *p = piece[i];
        size_t left = len[i];
        while (left) {
            if (w->blen == w->bcap) {
                int rc = w_flush(w, err);
                if (rc)
                    return rc;
            }
            size_t c = w->bcap - w->blen;
            if (c > left)
                c = left;
            memcpy(w->buf + w->blen, p, c);
            w->blen += c;
            p += c;
            left -= c;
        }
    }
    w->cur_size += n;
    return 0;
}

static void
w_remove_tmp(binlog_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    for (int i = 1; i <= w->nfiles; i++) {
        char *p = tmp_name(w, i);
        if (p)
            unlink(p);
        free(p);
    }
    w->nfiles = 0;
}

static void
w_free(binlog_writer *w)
{
    idmap_free(&w->ids);
    free(w->buf);
    free(w->dir);
    free(w);
}

int
binlog_writer_open(binlog_writer **out, const char *dir,
                   const binlog_write_opts *opts, binlog_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    if (!out)
        return fail(err, BINLOG_EINVAL, "binlog_writer_open: no result"
                    " pointer");
    *out = NULL;
    if (!dir || !*dir)
        return fail(err, BINLOG_EINVAL, "binlog_writer_open: no directory");
    binlog_write_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.size_limit)
        o.size_limit = BINLOG_STOCK_SIZE_LIMIT;
    if (!o.file_size)
        o.file_size = BINLOG_STOCK_FILE_SIZE;
    if (o.size_limit > BINLOG_STOCK_SIZE_LIMIT_MAX)
        return fail(err, BINLOG_EINVAL, "size limit %zu is above stock's"
                    " largest -z (%d)", o.size_limit,
                    BINLOG_STOCK_SIZE_LIMIT_MAX);
    if (o.file_size < 0)
        return fail(err, BINLOG_EINVAL, "negative file size");

    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || mkdir(dir, 0755) < 0)
            return fail(err, BINLOG_ENOTDIR, "%s: %s", dir, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return fail(err, BINLOG_ENOTDIR, "%s: not a directory", dir);
    }
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, BINLOG_ENOTDIR, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        int n;
        if (scan_number(e->d_name, &n)) {
            rc = fail(err, BINLOG_EEXIST, "%s already holds %s; stock would"
                      " replay it with the new files: use an empty"
                      " directory", dir, e->d_name);
            break;
        }
    }
    closedir(d);
    if (rc)
        return rc;

    /* Refuse a directory a server has locked. */
    binlog_reader probe = {.lockfd = -1};
    rc = lock_dir(&probe, dir, err);
    if (probe.lockfd >= 0)
        close(probe.lockfd);
    if (rc)
        return rc;

    binlog_writer *w = calloc(1, sizeof *w);
    if (!w)
        return nomem(err);
    w->fd = -1;
    w->o = o;
    w->bcap = 1 << 16;
    w->buf = malloc(w->bcap);
    w->dir = strdup(dir);
    if (!w->buf || !w->dir) {
        w_free(w);
        return nomem(err);
    }
    *out = w;
    return 0;
}

static int
w_record(binlog_writer *w, const char *tube, size_t tlen, const jobrec *jr,
         const unsigned char *body, size_t blen, binlog_error *err)
{
    unsigned char nl[4], rec[REC7];
    put32(nl, (uint32_t)tlen);
    encode_rec7(rec, jr);
    if (!tlen) {
        const void *pc[] = {nl, rec};
        const size_t ln[] = {4, REC7};
        return w_append(w, pc, ln, 2, err);
    }
    static const unsigned char crlf[2] = {'\r', '\n'};
    const void *pc[] = {nl, tube, rec, body ? (const void *)body : crlf, crlf};
    const size_t ln[] = {4, tlen, REC7, body ? blen : 0, 2};
    return w_append(w, pc, ln, 5, err);
}

int
binlog_writer_add(binlog_writer *w, const binlog_job *job, binlog_error *err)
{
    if (!w || !job)
        return fail(err, BINLOG_EINVAL, "binlog_writer_add: NULL argument");
    if (job->id == 0)
        return fail(err, BINLOG_EINVAL, "job id 0 is not allowed");
    if (idmap_get(&w->ids, job->id, NULL))
        return fail(err, BINLOG_EINVAL, "job %" PRIu64 " written twice",
                    job->id);
    size_t tlen = job->tube ? job->tube_len : 0;
    if (!binlog_tube_name_valid(job->tube, tlen))
        return fail(err, BINLOG_EINVAL, "job %" PRIu64 ": tube name is not"
                    " valid in the protocol", job->id);
    uint8_t st;
    switch (job->state) {
    case BINLOG_READY: case BINLOG_RESERVED: st = BINLOG_READY; break;
    case BINLOG_BURIED: st = BINLOG_BURIED; break;
    case BINLOG_DELAYED: st = BINLOG_DELAYED; break;
    default:
        return fail(err, BINLOG_EINVAL, "job %" PRIu64 ": state %d cannot be"
                    " written", job->id, job->state);
    }
    if (job->body_len && !job->body)
        return fail(err, BINLOG_EINVAL, "job %" PRIu64 ": no body", job->id);
    if (job->body_len > (size_t)INT32_MAX - 2 ||
        job->body_len + 2 > w->o.size_limit)
        return fail(err, BINLOG_ETOOBIG, "job %" PRIu64 ": body of %zu bytes"
                    " needs -z %zu or more; the target allows %zu (stock would"
                    " drop it and the rest of its file)", job->id,
                    job->body_len, job->body_len + 2, w->o.size_limit);

    jobrec jr = {
        .id = job->id,
        .pri = job->pri,
        .delay = job->delay_ns,
        .ttr = job->ttr_ns,
        .body_size = (int32_t)(job->body_len + 2),
        .created = job->created_ns,
        .deadline = job->deadline_ns,
        .ct = {job->reserves, job->timeouts, job->releases, job->buries,
               job->kicks},
        .state = st,
    };
    /* Stock adds one bury when it replays a buried job. Its counts are 32
     * bits and wrap, so take one off always: 0 is written as 4294967295 and
     * reads back as 0. */
    if (st == BINLOG_BURIED)
        jr.ct[3]--;
    int rc = w_record(w, job->tube, tlen, &jr, job->body, job->body_len, err);
    if (rc)
        return rc;
    if (idmap_put(&w->ids, job->id, 0))
        return nomem(err);
    if (job->id > w->max_id)
        w->max_id = job->id;
    return 0;
}

int
binlog_writer_finish(binlog_writer *w, uint64_t next_id, binlog_error *err)
{
    if (!w)
        return fail(err, BINLOG_EINVAL, "binlog_writer_finish: NULL writer");
    int rc = 0;
    if (next_id && next_id <= w->max_id)
        rc = fail(err, BINLOG_EINVAL, "next id %" PRIu64 " is not above the"
                  " largest job id %" PRIu64, next_id, w->max_id);
    if (!rc && w->fd < 0)
        rc = w_new_file(w, err);    /* binlog.1 with only a header */
    if (!rc && next_id > w->max_id + 1) {
        /* Stock continues at 1 + the largest id of a full record: write a
         * placeholder with id next_id - 1 and delete it at once. */
        jobrec jr = {
            .id = next_id - 1,
            .ttr = 1000000000,
            .body_size = 2,
            .created = 0,   /* deterministic output; the job never lives */
            .state = BINLOG_READY,
        };
        rc = w_record(w, "default", 7, &jr, NULL, 0, err);
        jr.state = BINLOG_INVALID;
        if (!rc)
            rc = w_record(w, "", 0, &jr, NULL, 0, err);
    }
    if (!rc)
        rc = w_close_file(w, err);
    int renamed = 0;
    for (int i = 1; i <= w->nfiles && !rc; i++) {
        char *from = tmp_name(w, i), *to = NULL;
        if (!from || asprintf(&to, "%s/binlog.%d", w->dir, i) < 0) {
            free(from);
            rc = nomem(err);
            break;
        }
        if (rename(from, to) < 0)
            rc = fail(err, BINLOG_EIO, "rename %s: %s", to, strerror(errno));
        else
            renamed = i;
        free(from);
        free(to);
    }
    if (!rc) {
        int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
            rc = fail(err, BINLOG_EIO, "%s: fsync: %s", w->dir,
                      strerror(errno));
        if (dfd >= 0)
            close(dfd);
    }
    if (rc) {
        for (int i = 1; i <= renamed; i++) {
            char *to = NULL;
            if (asprintf(&to, "%s/binlog.%d", w->dir, i) >= 0)
                unlink(to);
            free(to);
        }
        w_remove_tmp(w);
    }
    w_free(w);
    return rc;
}

void
binlog_writer_abort(binlog_writer *w)
{
    if (!w)
        return;
    w_remove_tmp(w);
    w_free(w);
}
