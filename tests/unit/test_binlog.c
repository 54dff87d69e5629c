/* Unit tests of the legacy binlog codec (tools/binlog.c): hand-made and
 * corrupt files (truncated headers, bad versions, garbage records, zero
 * tails, huge length fields), every truncation point of a small log, seeded
 * random byte flips of the shared samples, and the writer.  Whatever the
 * input: no crash, no read out of bounds (run it under ASan+UBSan too), and
 * either a clean result with warnings or a clear error code and message.
 *
 * The samples are looked for in $BINLOG_SAMPLES, else ../shared/binlog-samples
 * from the current directory (the repo top under make); the sample tests are
 * skipped when they are absent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../tools/binlog.h"

#define NS 1000000000LL
#define T0 1795320841315592000LL    /* some wall-clock ns, 2026 */

/* ---- scratch directories ---- */

static char *
mkscratch(void)
{
    char tmpl[] = "/tmp/test_binlog.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void
rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p;
        assert_true(asprintf(&p, "%s/%s", dir, e->d_name) > 0);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmtree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- building files ---- */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void
b_put(buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void
b_u32(buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    b_put(b, x, 4);
}

static void
b_u64(buf *b, uint64_t v)
{
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

static void
b_zero(buf *b, size_t n)
{
    while (n--)
        b_put(b, "", 1);
}

typedef struct spec {
    uint64_t id;
    const char *tube;
    int state;
    uint32_t pri;
    int64_t delay, ttr, created, deadline;
    uint32_t ct[5];
    const char *body;       /* client body; CRLF is added */
    int32_t body_size;      /* the stored size field, if set_size */
    int set_size;
} spec;

static int32_t
stored_size(const spec *s)
{
    return s->set_size ? s->body_size : (int32_t)strlen(s->body ? s->body : "") + 2;
}

/* Jobrec: v7 80 bytes in ns, v5 77 bytes in microseconds. */
static void
b_rec(buf *b, const spec *s, int v5)
{
    int64_t k = v5 ? 1000 : 1;
    b_u64(b, s->id);
    b_u32(b, s->pri);
    b_zero(b, 4);
    b_u64(b, (uint64_t)(s->delay / k));
    b_u64(b, (uint64_t)(s->ttr / k));
    b_u32(b, (uint32_t)stored_size(s));
    b_zero(b, 4);
    b_u64(b, (uint64_t)(s->created / k));
    b_u64(b, (uint64_t)(s->deadline / k));
    for (int i = 0; i < 5; i++)
        b_u32(b, s->ct[i]);
    unsigned char st = (unsigned char)s->state;
    b_put(b, &st, 1);
    if (!v5)
        b_zero(b, 3);
}

static void
full(buf *b, const spec *s, int v5)
{
    size_t n = strlen(s->tube);
    if (v5)
        b_u64(b, n);
    else
        b_u32(b, (uint32_t)n);
    b_put(b, s->tube, n);
    b_rec(b, s, v5);
    const char *body = s->body ? s->body : "";
    b_put(b, body, strlen(body));
    b_put(b, "\r\n", 2);
}

static void
shortrec(buf *b, const spec *s, int v5)
{
    if (v5)
        b_u64(b, 0);
    else
        b_u32(b, 0);
    b_rec(b, s, v5);
}

static void
header(buf *b, uint32_t v)
{
    b->len = 0;
    b_u32(b, v);
}

static void
write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    free(path);
}

static spec
job(uint64_t id, const char *tube, int state, const char *body)
{
    spec s = {.id = id, .tube = tube, .state = state, .pri = (uint32_t)id * 10,
              .ttr = 60 * NS, .created = T0 + (int64_t)id, .body = body};
    return s;
}

/* ---- reading results ---- */

typedef struct got {
    uint64_t id;
    char tube[256];
    int state, stored_state, file, format, crlf;
    uint32_t pri, ct[5];
    int64_t delay, ttr, created, deadline;
    char body[512];
    size_t body_len;
    uint64_t order;
} got;

typedef struct result {
    int rc;
    binlog_error err;
    got jobs[64];
    size_t n;
    uint64_t next_id, safe_next_id;
    int stock_err;
    size_t nwarn;
    char warns[16][512];
    int warn_stock[16], warn_lost[16];
} result;

static void
load(const char *dir, const binlog_read_opts *o, result *res)
{
    binlog_reader *r = NULL;
    memset(res, 0, sizeof *res);
    res->rc = binlog_open(&r, dir, o, &res->err);
    if (res->rc) {
        assert_null(r);
        assert_true(res->rc < 0);
        assert_int_equal(res->err.code, res->rc);
        assert_true(strlen(res->err.msg) > 0);
        return;
    }
    binlog_job j;
    int k;
    uint64_t last = 0;
    while ((k = binlog_next(r, &j, &res->err)) == 1) {
        assert_true(j.id > last);       /* id order */
        last = j.id;
        if (res->n < 64) {
            got *g = &res->jobs[res->n];
            g->id = j.id;
            snprintf(g->tube, sizeof g->tube, "%s", j.tube);
            assert_int_equal(strlen(j.tube), j.tube_len);
            g->state = j.state;
            g->stored_state = j.stored_state;
            g->file = j.file;
            g->format = j.format;
            g->crlf = j.body_crlf;
            g->pri = j.pri;
            g->ct[0] = j.reserves;
            g->ct[1] = j.timeouts;
            g->ct[2] = j.releases;
            g->ct[3] = j.buries;
            g->ct[4] = j.kicks;
            g->delay = j.delay_ns;
            g->ttr = j.ttr_ns;
            g->created = j.created_ns;
            g->deadline = j.deadline_ns;
            g->order = j.order;
            g->body_len = j.body_len;
            if (j.body_len < sizeof g->body) {
                memcpy(g->body, j.body, j.body_len);
                g->body[j.body_len] = '\0';
            }
        }
        res->n++;
    }
    assert_int_equal(k, 0);
    assert_int_equal(res->n, binlog_job_count(r));
    res->next_id = binlog_stock_next_id(r);
    res->safe_next_id = binlog_safe_next_id(r);
    res->stock_err = binlog_stock_errors(r);
    res->nwarn = binlog_warning_count(r);
    for (size_t i = 0; i < res->nwarn && i < 16; i++) {
        const binlog_warning *w = binlog_get_warning(r, i);
        snprintf(res->warns[i], sizeof res->warns[i], "%s", w->msg);
        res->warn_stock[i] = w->stock;
        res->warn_lost[i] = w->lost;
    }
    assert_null(binlog_get_warning(r, res->nwarn));
    binlog_close(r);
}

static const got *
find(const result *res, uint64_t id)
{
    for (size_t i = 0; i < res->n && i < 64; i++)
        if (res->jobs[i].id == id)
            return &res->jobs[i];
    return NULL;
}

static int
has_warning(const result *res, const char *needle)
{
    for (size_t i = 0; i < res->nwarn && i < 16; i++)
        if (strstr(res->warns[i], needle))
            return 1;
    return 0;
}

static binlog_read_opts
at(int64_t now)
{
    binlog_read_opts o = {.now_ns = now};
    return o;
}

/* ---- directory level ---- */

static void
test_missing_and_not_dir(void **state)
{
    (void)state;
    result res;
    load("/nonexistent/binlog/dir", NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOTDIR);
    assert_non_null(strstr(res.err.msg, "/nonexistent/binlog/dir"));

    char *d = mkscratch();
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOFILES);
    assert_non_null(strstr(res.err.msg, "not a beanstalkd binlog directory"));

    write_file(d, "binlog.1", "\7\0\0\0", 4);
    char *f;
    assert_true(asprintf(&f, "%s/binlog.1", d) > 0);
    load(f, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOTDIR);
    free(f);

    /* Names stock does not count, and a name it counts but never opens. */
    rmtree(d);
    free(d);
    d = mkscratch();
    write_file(d, "binlog.3.bak", "\7\0\0\0", 4);
    write_file(d, "binlogs.1", "\7\0\0\0", 4);
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOFILES);
    write_file(d, "binlog.007", "\7\0\0\0", 4);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_true(has_warning(&res, "never read"));
    assert_true(has_warning(&res, "open "));     /* binlog.7 is missing */
    rmtree(d);
    free(d);

    assert_int_equal(binlog_open(NULL, "/tmp", NULL, NULL), BINLOG_EINVAL);
    binlog_reader *r = (binlog_reader *)&res;
    assert_int_equal(binlog_open(&r, "", NULL, NULL), BINLOG_EINVAL);
    assert_null(r);
}

static void
test_header_only_and_short_headers(void **state)
{
    (void)state;
    char *d = mkscratch();
    result res;
    write_file(d, "binlog.1", "\7\0\0\0", 4);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 0);
    assert_int_equal(res.nwarn, 0);
    assert_int_equal(res.next_id, 1);
    assert_false(res.stock_err);

    for (size_t n = 0; n < 4; n++) {
        write_file(d, "binlog.1", "\7\0\0", n);
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 0);
        assert_true(res.stock_err);
        assert_true(has_warning(&res, ":0: unexpected EOF reading 4 bytes"));
        assert_true(has_warning(&res, ": version"));
    }
    rmtree(d);
    free(d);
}

static void
test_bad_versions(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    result res;
    spec s = job(1, "default", BINLOG_READY, "kept");
    header(&b, 7);
    full(&b, &s, 0);
    write_file(d, "binlog.2", b.p, b.len);

    static const struct { uint32_t v; const char *hint; } bad[] = {
        {1, "1.2/1.3"}, {6, "development"}, {0x07000000, "big-endian"},
        {0x05000000, "big-endian"}, {0xffffffff, "unknown binlog version -1"},
        {8, "unknown binlog version 8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf h = {0};
        header(&h, bad[i].v);
        b_zero(&h, 200);
        write_file(d, "binlog.1", h.p, h.len);
        free(h.p);
        load(d, NULL, &res);
        assert_int_equal(res.rc, BINLOG_EVERSION);
        assert_non_null(strstr(res.err.msg, bad[i].hint));
        assert_non_null(strstr(res.err.msg, "binlog.1"));

        binlog_read_opts o = {.flags = BINLOG_SKIP_BAD_VERSION};
        load(d, &o, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 1);     /* the next file is still read */
        assert_true(res.stock_err);
        assert_true(has_warning(&res, "unknown version"));
        assert_true(res.warn_lost[0]);
    }

    /* A file of zeros (killed before the header was written) is harmless. */
    buf z = {0};
    b_zero(&z, 4096);
    write_file(d, "binlog.1", z.p, z.len);
    free(z.p);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 1);
    assert_true(has_warning(&res, "unknown version: 0"));
    assert_false(res.warn_lost[0]);
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_not_regular_files(void **state)
{
    (void)state;
    char *d = mkscratch();
    char *p;
    result res;
    write_file(d, "binlog.1", "\7\0\0\0", 4);
    assert_true(asprintf(&p, "%s/binlog.2", d) > 0);
    assert_int_equal(mkdir(p, 0700), 0);
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_EIO);
    assert_non_null(strstr(res.err.msg, "not a regular file"));
    rmdir(p);
    assert_int_equal(mkfifo(p, 0600), 0);   /* must not block */
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_EIO);
    free(p);
    rmtree(d);
    free(d);
}

/* The worked example of the format doc, section 11. */
static void
test_worked_example(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec j1 = job(1, "default", BINLOG_READY, "hi");
    j1.pri = 10;
    j1.ttr = 30 * NS;
    full(&b, &j1, 0);
    spec j2 = job(2, "t1", BINLOG_DELAYED, "later");
    j2.pri = 4294967295u;
    j2.delay = 60 * NS;
    j2.ttr = 120 * NS;
    j2.deadline = j2.created + 60 * NS;
    full(&b, &j2, 0);
    j1.state = BINLOG_INVALID;
    shortrec(&b, &j1, 0);
    assert_int_equal(b.len, 0x114);
    b_zero(&b, 8192 - b.len);
    write_file(d, "binlog.1", b.p, b.len);

    result res;
    binlog_read_opts o = at(j2.created + 1 * NS);
    load(d, &o, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.nwarn, 0);
    assert_int_equal(res.next_id, 3);
    const got *g = find(&res, 2);
    assert_non_null(g);
    assert_string_equal(g->tube, "t1");
    assert_int_equal(g->state, BINLOG_DELAYED);
    assert_int_equal(g->pri, 4294967295u);
    assert_int_equal(g->delay, 60 * NS);
    assert_int_equal(g->ttr, 120 * NS);
    assert_int_equal(g->deadline, j2.deadline);
    assert_string_equal(g->body, "later");
    assert_int_equal(g->body_len, 5);
    assert_true(g->crlf);
    assert_int_equal(g->file, 1);
    assert_int_equal(g->format, 7);

    o = at(j2.deadline);    /* deadline reached: ready */
    load(d, &o, &res);
    assert_int_equal(find(&res, 2)->state, BINLOG_READY);
    assert_int_equal(find(&res, 2)->stored_state, BINLOG_DELAYED);
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_states_and_counters(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec a = job(1, "a", BINLOG_READY, "one");
    spec c = job(2, "a", BINLOG_READY, "two");
    spec e = job(3, "b", BINLOG_READY, "three");
    spec r = job(4, "b", BINLOG_RESERVED, "four");      /* compaction */
    full(&b, &a, 0);
    full(&b, &c, 0);
    full(&b, &e, 0);
    full(&b, &r, 0);
    c.state = BINLOG_BURIED;    /* buried first, yet kicked after job 1 */
    c.pri = 7;
    c.ct[3] = 1;
    shortrec(&b, &c, 0);
    a.state = BINLOG_BURIED;
    a.ct[3] = 4;
    shortrec(&b, &a, 0);
    e.state = BINLOG_DELAYED;
    e.deadline = T0 + 3600 * NS;
    e.delay = 3600 * NS;
    e.ct[2] = 1;
    shortrec(&b, &e, 0);
    write_file(d, "binlog.1", b.p, b.len);

    result res;
    binlog_read_opts o = at(T0);
    load(d, &o, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 4);
    const got *g1 = find(&res, 1), *g2 = find(&res, 2);
    assert_int_equal(g1->state, BINLOG_BURIED);
    assert_int_equal(g1->ct[3], 5);     /* stock adds one on replay */
    assert_int_equal(g2->state, BINLOG_BURIED);
    assert_int_equal(g2->ct[3], 2);
    assert_int_equal(g2->pri, 7);
    assert_true(g1->order < g2->order); /* replay order = first seen */
    assert_int_equal(find(&res, 3)->state, BINLOG_DELAYED);
    assert_int_equal(find(&res, 3)->ct[2], 1);
    assert_int_equal(find(&res, 4)->state, BINLOG_READY);
    assert_int_equal(find(&res, 4)->stored_state, BINLOG_RESERVED);
    free(b.p);
    rmtree(d);
    free(d);
}

/* Delete records for jobs whose full record is gone are ignored; they count
 * for the safe next id only.  A moved job keeps its first tube. */
static void
test_stale_deletes_and_moves(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec gone = job(40, "x", BINLOG_INVALID, "");
    shortrec(&b, &gone, 0);
    spec m = job(5, "first", BINLOG_READY, "old body");
    full(&b, &m, 0);
    write_file(d, "binlog.4", b.p, b.len);

    header(&b, 7);
    m.tube = "second";
    m.body = "new body";    /* same size */
    m.ct[0] = 3;
    full(&b, &m, 0);
    write_file(d, "binlog.5", b.p, b.len);

    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 1);
    const got *g = find(&res, 5);
    assert_string_equal(g->tube, "first");
    assert_string_equal(g->body, "new body");
    assert_int_equal(g->file, 5);
    assert_int_equal(g->ct[0], 3);
    assert_int_equal(res.next_id, 6);
    assert_int_equal(res.safe_next_id, 41);
    assert_true(has_warning(&res, "stays in \"first\""));
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_gap_in_files(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec s = job(1, "default", BINLOG_READY, "a");
    full(&b, &s, 0);
    write_file(d, "binlog.1", b.p, b.len);
    header(&b, 7);
    s = job(2, "default", BINLOG_READY, "b");
    full(&b, &s, 0);
    write_file(d, "binlog.3", b.p, b.len);
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.nwarn, 1);
    assert_true(res.warn_stock[0]);
    assert_true(has_warning(&res, "binlog.2: No such file or directory"));
    assert_false(res.stock_err);

    /* A huge gap is summarised, not walked. */
    write_file(d, "binlog.2000000000", "\7\0\0\0", 4);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 2);
    assert_true(res.nwarn <= 3);
    assert_true(has_warning(&res, "1999999996 files"));
    free(b.p);
    rmtree(d);
    free(d);
}

/* ---- record level damage ---- */

static void
test_bad_namelen(void **state)
{
    (void)state;
    char *d = mkscratch();
    static const int32_t bad[] = {201, -1, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b = {0};
        header(&b, 7);
        spec s = job(1, "default", BINLOG_READY, "before");
        full(&b, &s, 0);
        char where[64];
        snprintf(where, sizeof where, "binlog.1:%zu: namelen", b.len);
        b_u32(&b, (uint32_t)bad[i]);
        s = job(2, "default", BINLOG_READY, "after");
        b_rec(&b, &s, 0);
        write_file(d, "binlog.1", b.p, b.len);
        header(&b, 7);
        s = job(3, "default", BINLOG_READY, "next file");
        full(&b, &s, 0);
        write_file(d, "binlog.2", b.p, b.len);
        free(b.p);

        result res;
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 2);
        assert_non_null(find(&res, 1));
        assert_non_null(find(&res, 3));
        assert_true(res.stock_err);
        assert_true(has_warning(&res, bad[i] > 0 ? "exceeds maximum of 200" :
                                                   "is negative"));
        assert_true(has_warning(&res, where));
    }

    /* Version 5: an 8-byte namelen of 2^63. */
    buf b = {0};
    header(&b, 5);
    spec s = job(1, "default", BINLOG_READY, "v5");
    full(&b, &s, 1);
    b_u64(&b, 1ull << 63);
    b_zero(&b, 100);
    write_file(d, "binlog.1", b.p, b.len);
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 2);
    assert_true(has_warning(&res, "namelen 9223372036854775808 exceeds"));
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_invalid_states(void **state)
{
    (void)state;
    char *d = mkscratch();
    static const int bad[] = {5, 9, 255};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b = {0};
        header(&b, 7);
        spec s1 = job(1, "default", BINLOG_READY, "keep");
        spec s2 = job(2, "default", BINLOG_READY, "dropped");
        full(&b, &s1, 0);
        full(&b, &s2, 0);
        s2.state = bad[i];
        shortrec(&b, &s2, 0);     /* known job, bad state: dropped */
        spec s3 = job(3, "default", BINLOG_READY, "ignored");
        full(&b, &s3, 0);
        write_file(d, "binlog.1", b.p, b.len);
        free(b.p);
        result res;
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 1);
        assert_non_null(find(&res, 1));
        assert_true(res.stock_err);
        assert_true(has_warning(&res, "invalid state"));
        assert_int_equal(res.next_id, 3);
    }
    rmtree(d);
    free(d);
}

/* A full record with state 0: its body is parsed as the next record. */
static void
test_full_record_state_zero(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf inner = {0};
    spec hidden = job(9, "hidden", BINLOG_READY, "inside a body");
    full(&inner, &hidden, 0);
    /* The "body" of the state-0 record is itself a complete record. */
    buf b = {0};
    header(&b, 7);
    spec z = job(1, "default", BINLOG_INVALID, NULL);
    z.body_size = (int32_t)inner.len;
    z.set_size = 1;
    b_u32(&b, 7);
    b_put(&b, "default", 7);
    b_rec(&b, &z, 0);
    b_put(&b, inner.p, inner.len);
    write_file(d, "binlog.1", b.p, b.len);
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 1);
    assert_string_equal(find(&res, 9)->tube, "hidden");
    assert_int_equal(res.next_id, 10);
    free(inner.p);
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_body_sizes(void **state)
{
    (void)state;
    char *d = mkscratch();
    result res;

    /* Too big for -z: job and rest of file ignored, id not counted. */
    buf b = {0};
    header(&b, 7);
    spec s1 = job(1, "default", BINLOG_READY, "ok");
    spec s2 = job(2, "default", BINLOG_READY, "0123456789");
    spec s3 = job(3, "default", BINLOG_READY, "after");
    full(&b, &s1, 0);
    full(&b, &s2, 0);
    full(&b, &s3, 0);
    write_file(d, "binlog.1", b.p, b.len);
    binlog_read_opts o = {.size_limit = 11};
    load(d, &o, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.next_id, 2);
    assert_true(has_warning(&res, "job 2 is too big (12 > 11)"));
    o.size_limit = 12;
    load(d, &o, &res);
    assert_int_equal(res.n, 3);

    /* Huge and negative sizes: nothing is allocated from them. */
    static const struct { int32_t size; uint64_t next; } sizes[] = {
        {INT32_MAX, 2}, {1000000, 3}, {-1, 2}, {INT32_MIN, 2}, {0, 3},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        header(&b, 7);
        full(&b, &s1, 0);
        spec h = job(2, "default", BINLOG_READY, "short");
        h.body_size = sizes[i].size;
        h.set_size = 1;
        full(&b, &h, 0);
        full(&b, &s3, 0);
        write_file(d, "binlog.1", b.p, b.len);
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 1);
        assert_non_null(find(&res, 1));
        assert_true(res.stock_err);
        /* Created (and counted) only when the size passed the limit. */
        assert_int_equal(res.next_id, sizes[i].next);
    }

    /* A body without CRLF: kept, flagged; the client sees size - 2. */
    header(&b, 7);
    b_u32(&b, 1);
    b_put(&b, "t", 1);
    spec n = job(1, "t", BINLOG_READY, NULL);
    n.body_size = 4;
    n.set_size = 1;
    b_rec(&b, &n, 0);
    b_put(&b, "abcd", 4);
    write_file(d, "binlog.1", b.p, b.len);
    load(d, NULL, &res);
    assert_int_equal(res.n, 1);
    assert_false(res.jobs[0].crlf);
    assert_string_equal(res.jobs[0].body, "ab");
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_zero_tails(void **state)
{
    (void)state;
    char *d = mkscratch();
    result res;
    for (size_t tail = 0; tail < 300; tail++) {
        buf b = {0};
        header(&b, 7);
        spec s = job(1, "default", BINLOG_READY, "x");
        full(&b, &s, 0);
        b_zero(&b, tail);
        write_file(d, "binlog.1", b.p, b.len);
        free(b.p);
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.n, 1);
        for (size_t i = 0; i < res.nwarn; i++)
            assert_false(res.warn_lost[i]);
        /* Stock warns only when 4 <= tail < 84. */
        assert_int_equal(res.stock_err, tail >= 4 && tail < 84);
    }

    /* Non-zero bytes after the end marker are reported (stock ignores). */
    buf b = {0};
    header(&b, 7);
    spec s = job(1, "default", BINLOG_READY, "x");
    full(&b, &s, 0);
    b_zero(&b, 84);
    s = job(2, "default", BINLOG_READY, "lost");
    full(&b, &s, 0);
    write_file(d, "binlog.1", b.p, b.len);
    load(d, NULL, &res);
    assert_int_equal(res.n, 1);
    assert_false(res.stock_err);
    assert_true(has_warning(&res, "non-zero bytes after it"));
    free(b.p);
    rmtree(d);
    free(d);
}

/* Cut a small log at every byte: never a crash; known outcomes at the
 * interesting points. */
static void
test_every_truncation(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec s1 = job(1, "default", BINLOG_READY, "first");
    spec s2 = job(2, "tube-2", BINLOG_READY, "second");
    full(&b, &s1, 0);
    size_t end1 = b.len;
    full(&b, &s2, 0);
    size_t end2 = b.len;
    s1.state = BINLOG_INVALID;
    shortrec(&b, &s1, 0);
    size_t end3 = b.len;
    for (size_t cut = 0; cut <= b.len; cut++) {
        write_file(d, "binlog.1", b.p, cut);
        result res;
        load(d, NULL, &res);
        assert_int_equal(res.rc, 0);
        int has1 = find(&res, 1) != NULL, has2 = find(&res, 2) != NULL;
        if (cut < 4)
            assert_int_equal(res.n, 0);
        else if (cut < end1)
            assert_int_equal(res.n, 0);
        else if (cut < end2)
            assert_true(has1 && !has2);
        else if (cut < end3)
            assert_true(has1 && has2);  /* torn delete: job 1 comes back */
        else
            assert_true(!has1 && has2);
        /* 1-3 stray bytes after a record end silently, as in stock. */
        if ((cut > end1 && cut < end1 + 4) || (cut > end2 && cut < end2 + 4))
            assert_false(res.stock_err);
        if (cut > end1 + 4 && cut < end2)
            assert_true(res.stock_err);
        if (cut > end1 && cut < end2)
            assert_int_equal(res.next_id, cut >= end1 + 4 + 6 + 80 ? 3 : 2);
    }
    free(b.p);
    rmtree(d);
    free(d);
}

static void
test_tube_names(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    b_u32(&b, 5);
    b_put(&b, "ab\0cd", 5);
    spec s = job(1, "x", BINLOG_READY, "nul");
    b_rec(&b, &s, 0);
    b_put(&b, "nul\r\n", 5);
    spec t = job(2, "has space", BINLOG_READY, "sp");
    full(&b, &t, 0);
    write_file(d, "binlog.1", b.p, b.len);
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.n, 2);
    assert_string_equal(find(&res, 1)->tube, "ab");     /* cut as stock */
    assert_string_equal(find(&res, 2)->tube, "has space");
    assert_true(has_warning(&res, "cut at a NUL"));
    assert_true(has_warning(&res, "not valid in the protocol"));
    assert_true(binlog_tube_name_valid("Z9-+/;.$_()", 11));
    assert_false(binlog_tube_name_valid("-lead", 5));
    assert_false(binlog_tube_name_valid("", 0));
    assert_false(binlog_tube_name_valid("a b", 3));
    char big[202];
    memset(big, 'a', sizeof big);
    assert_true(binlog_tube_name_valid(big, 200));
    assert_false(binlog_tube_name_valid(big, 201));
    free(b.p);
    rmtree(d);
    free(d);
}

/* Version 5: 8-byte namelen, 77-byte record, microseconds; mixed with v7. */
static void
test_version5_and_upgrade(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 5);
    spec a = job(1, "legacy", BINLOG_READY, "old");
    a.delay = 0;
    a.ttr = 120 * NS;
    a.created = 1795320000123456000LL;  /* whole microseconds */
    spec c = job(2, "legacy", BINLOG_DELAYED, "delayed");
    c.delay = 86400 * NS;
    c.created = 1795320000000001000LL;
    c.deadline = c.created + c.delay;
    full(&b, &a, 1);
    full(&b, &c, 1);
    write_file(d, "binlog.1", b.p, b.len);
    header(&b, 7);
    a.state = BINLOG_BURIED;
    a.ct[3] = 1;
    shortrec(&b, &a, 0);            /* a v7 update of a v5 job */
    write_file(d, "binlog.2", b.p, b.len);

    result res;
    binlog_read_opts o = at(c.created);
    load(d, &o, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 2);
    const got *g = find(&res, 1);
    assert_int_equal(g->state, BINLOG_BURIED);
    assert_int_equal(g->ct[3], 2);
    assert_int_equal(g->ttr, 120 * NS);
    assert_int_equal(g->created, a.created);
    assert_int_equal(g->format, 5);
    assert_int_equal(g->file, 1);
    g = find(&res, 2);
    assert_int_equal(g->state, BINLOG_DELAYED);
    assert_int_equal(g->deadline, c.deadline);
    assert_int_equal(g->delay, 86400 * NS);
    assert_string_equal(g->body, "delayed");

    /* Torn v5 record. */
    header(&b, 5);
    full(&b, &a, 1);
    write_file(d, "binlog.1", b.p, b.len - 3);
    load(d, &o, &res);
    assert_true(has_warning(&res, "v5 job body"));
    free(b.p);
    rmtree(d);
    free(d);
}

/* ---- lock ---- */

static void
test_locked_directory(void **state)
{
    (void)state;
    char *d = mkscratch();
    write_file(d, "binlog.1", "\7\0\0\0", 4);
    write_file(d, "lock", "", 0);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A stand-in for a running server: write lock on DIR/lock. */
        char *p;
        if (asprintf(&p, "%s/lock", d) < 0)
            _exit(1);
        int fd = open(p, O_WRONLY);
        struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLK, &lk) < 0)
            _exit(1);
        char c = 'x';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ELOCKED);
    assert_non_null(strstr(res.err.msg, "locked"));
    binlog_read_opts o = {.flags = BINLOG_NO_LOCK};
    load(d, &o, &res);
    assert_int_equal(res.rc, 0);
    /* the writer also refuses a locked target */
    char *p;
    assert_true(asprintf(&p, "%s/binlog.1", d) > 0);
    unlink(p);
    binlog_writer *w = NULL;
    binlog_error err;
    assert_int_equal(binlog_writer_open(&w, d, NULL, &err), BINLOG_ELOCKED);
    assert_null(w);
    write_file(d, "binlog.1", "\7\0\0\0", 4);
    free(p);

    assert_int_equal(write(go[1], "x", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    rmtree(d);
    free(d);
}

/* A file replaced between replay and body reads is detected. */
static void
test_file_changed_after_replay(void **state)
{
    (void)state;
    char *d = mkscratch();
    buf b = {0};
    header(&b, 7);
    spec s = job(1, "default", BINLOG_READY, "body");
    full(&b, &s, 0);
    write_file(d, "binlog.1", b.p, b.len);
    binlog_reader *r;
    binlog_error err;
    binlog_read_opts o = {.flags = BINLOG_NO_LOCK};
    assert_int_equal(binlog_open(&r, d, &o, &err), 0);
    char *p;
    assert_true(asprintf(&p, "%s/binlog.1", d) > 0);
    unlink(p);
    write_file(d, "binlog.1", b.p, 10);
    binlog_job j;
    int rc = binlog_next(r, &j, &err);
    assert_true(rc == BINLOG_ECHANGED);
    assert_non_null(strstr(err.msg, "binlog.1"));
    binlog_close(r);
    binlog_close(NULL);
    free(p);
    free(b.p);
    rmtree(d);
    free(d);
}

/* ---- random input ---- */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Load with every option combination; must never fail except for the
 * documented codes. */
static void
load_any(const char *dir)
{
    static const unsigned flags[] = {0, BINLOG_SKIP_BAD_VERSION};
    for (size_t i = 0; i < 2; i++) {
        binlog_read_opts o = {.flags = flags[i] | BINLOG_NO_LOCK,
                              .size_limit = i ? 65535 : 0};
        result res;
        load(dir, &o, &res);
        if (res.rc)
            assert_true(res.rc == BINLOG_EVERSION && !(flags[i] & BINLOG_SKIP_BAD_VERSION));
    }
}

static void
test_random_garbage(void **state)
{
    (void)state;
    char *d = mkscratch();
    rng_state = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 300; round++) {
        buf b = {0};
        header(&b, round % 3 == 0 ? 5 : 7);
        size_t n = rnd() % 2000;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = rnd();
            /* mostly small values, so records parse some of the way */
            unsigned char c = (unsigned char)(v % 5 == 0 ? v >> 8 : v % 4);
            b_put(&b, &c, 1);
        }
        write_file(d, "binlog.1", b.p, b.len);
        free(b.p);
        load_any(d);
    }
    rmtree(d);
    free(d);
}

static char *
samples_dir(void)
{
    const char *env = getenv("BINLOG_SAMPLES");
    const char *p = env ? env : "../shared/binlog-samples";
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return strdup(p);
    return NULL;
}

static int
read_whole(const char *path, buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    b->len = 0;
    char tmp[8192];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
        b_put(b, tmp, k);
    fclose(f);
    return 0;
}

/* Seeded random byte flips of every sample file: bounded count. */
static void
test_sample_byte_flips(void **state)
{
    (void)state;
    char *root = samples_dir();
    if (!root)
        skip();
    DIR *sd = opendir(root);
    assert_non_null(sd);
    rng_state = 20261122;
    struct dirent *e;
    int samples = 0;
    char *scratch = mkscratch();
    while ((e = readdir(sd))) {
        if (e->d_name[0] == '.')
            continue;
        char *sdir;
        assert_true(asprintf(&sdir, "%s/%s", root, e->d_name) > 0);
        DIR *fd = opendir(sdir);
        if (!fd) {
            free(sdir);
            continue;
        }
        samples++;
        /* Copy the binlog files; then mutate one at a time. */
        char *names[16];
        buf data[16];
        int nf = 0;
        struct dirent *f;
        while ((f = readdir(fd)) && nf < 16) {
            if (strncmp(f->d_name, "binlog.", 7) != 0)
                continue;
            char *p;
            assert_true(asprintf(&p, "%s/%s", sdir, f->d_name) > 0);
            data[nf] = (buf){0};
            assert_int_equal(read_whole(p, &data[nf]), 0);
            names[nf++] = strdup(f->d_name);
            free(p);
        }
        closedir(fd);
        char *work;
        assert_true(asprintf(&work, "%s/%s", scratch, e->d_name) > 0);
        assert_int_equal(mkdir(work, 0700), 0);
        for (int i = 0; i < nf; i++)
            write_file(work, names[i], data[i].p, data[i].len);
        load_any(work);                 /* unmodified */
        for (int round = 0; round < 40 && nf; round++) {
            int k = (int)(rnd() % (uint64_t)nf);
            buf m = {0};
            b_put(&m, data[k].p, data[k].len);
            /* Aim at the data, not the zero padding. */
            size_t used = m.len;
            while (used && !m.p[used - 1])
                used--;
            used = used + 84 < m.len ? used + 84 : m.len;
            int flips = 1 + (int)(rnd() % 4);
            for (int x = 0; x < flips && used; x++)
                m.p[rnd() % used] ^= (unsigned char)(1 + rnd() % 255);
            if (round % 10 == 9)        /* and some truncations */
                m.len = (size_t)(rnd() % (m.len + 1));
            write_file(work, names[k], m.p, m.len);
            load_any(work);
            write_file(work, names[k], data[k].p, data[k].len);
            free(m.p);
        }
        for (int i = 0; i < nf; i++) {
            free(names[i]);
            free(data[i].p);
        }
        free(work);
        free(sdir);
    }
    closedir(sd);
    assert_true(samples > 0);
    rmtree(scratch);
    free(scratch);
    free(root);
}

/* ---- writer ---- */

static binlog_job
wjob(uint64_t id, const char *tube, int state, const char *body)
{
    binlog_job j = {.id = id, .tube = tube, .tube_len = strlen(tube),
                    .state = state, .pri = (uint32_t)id, .ttr_ns = 60 * NS,
                    .created_ns = T0 + (int64_t)id,
                    .body = (const unsigned char *)body,
                    .body_len = strlen(body)};
    return j;
}

static void
test_writer_round_trip(void **state)
{
    (void)state;
    char *d = mkscratch();
    char *out;
    assert_true(asprintf(&out, "%s/out", d) > 0);      /* created */
    binlog_writer *w;
    binlog_error err;
    binlog_write_opts wo = {.file_size = 300};          /* several files */
    assert_int_equal(binlog_writer_open(&w, out, &wo, &err), 0);
    binlog_job js[6] = {
        wjob(7, "b", BINLOG_BURIED, "buried first"),
        wjob(3, "b", BINLOG_BURIED, "buried second"),
        wjob(1, "default", BINLOG_READY, ""),
        wjob(2, "x", BINLOG_RESERVED, "was reserved"),
        wjob(5, "later", BINLOG_DELAYED, "in an hour"),
        wjob(6, "gone", BINLOG_DELAYED, "deadline passed"),
    };
    js[0].buries = 3;
    js[1].buries = 1;
    js[4].deadline_ns = T0 + 3600 * NS;
    js[4].delay_ns = 3600 * NS;
    js[5].deadline_ns = T0 - 1;
    js[3].reserves = 9;
    for (int i = 0; i < 6; i++)
        assert_int_equal(binlog_writer_add(w, &js[i], &err), 0);
    assert_int_equal(binlog_writer_finish(w, 100, &err), 0);

    result res;
    binlog_read_opts o = at(T0);
    load(out, &o, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.nwarn, 0);
    assert_int_equal(res.n, 6);
    assert_int_equal(res.next_id, 100);
    assert_null(find(&res, 99));
    assert_int_equal(find(&res, 7)->ct[3], 3);
    assert_int_equal(find(&res, 3)->ct[3], 1);
    assert_true(find(&res, 7)->order < find(&res, 3)->order);
    assert_int_equal(find(&res, 2)->state, BINLOG_READY);
    assert_int_equal(find(&res, 2)->ct[0], 9);
    assert_int_equal(find(&res, 5)->state, BINLOG_DELAYED);
    assert_int_equal(find(&res, 5)->deadline, T0 + 3600 * NS);
    assert_int_equal(find(&res, 6)->state, BINLOG_READY);
    assert_string_equal(find(&res, 1)->body, "");
    assert_true(find(&res, 1)->crlf);
    assert_string_equal(find(&res, 6)->body, "deadline passed");
    assert_true(find(&res, 6)->file > 1);

    /* No temporary files are left; the directory cannot be reused. */
    DIR *dd = opendir(out);
    struct dirent *e;
    while ((e = readdir(dd)))
        assert_null(strstr(e->d_name, "tmp"));
    closedir(dd);
    assert_int_equal(binlog_writer_open(&w, out, NULL, &err), BINLOG_EEXIST);
    free(out);
    rmtree(d);
    free(d);
}

static void
test_writer_refusals(void **state)
{
    (void)state;
    char *d = mkscratch();
    binlog_writer *w;
    binlog_error err;
    assert_int_equal(binlog_writer_open(&w, d, NULL, &err), 0);
    binlog_job j = wjob(1, "default", BINLOG_READY, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), 0);
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);   /* dup */
    j = wjob(0, "default", BINLOG_READY, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    j = wjob(2, "bad name", BINLOG_READY, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    j = wjob(2, "", BINLOG_READY, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    j = wjob(2, "default", BINLOG_INVALID, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    j = wjob(2, "default", 9, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    static char big[65534];
    memset(big, 'z', sizeof big);
    j = wjob(2, "default", BINLOG_READY, "");
    j.body = (unsigned char *)big;
    j.body_len = 65534;                 /* 65536 > -z 65535 */
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_ETOOBIG);
    assert_non_null(strstr(err.msg, "65536"));
    j.body_len = 65533;
    assert_int_equal(binlog_writer_add(w, &j, &err), 0);
    j = wjob(3, "default", BINLOG_READY, "");
    j.body = NULL;
    j.body_len = 1;
    assert_int_equal(binlog_writer_add(w, &j, &err), BINLOG_EINVAL);
    assert_int_equal(binlog_writer_finish(w, 2, &err), BINLOG_EINVAL);
    /* finish failed: nothing was left behind */
    result res;
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOFILES);

    /* abort leaves nothing either */
    assert_int_equal(binlog_writer_open(&w, d, NULL, &err), 0);
    j = wjob(1, "default", BINLOG_READY, "x");
    assert_int_equal(binlog_writer_add(w, &j, &err), 0);
    binlog_writer_abort(w);
    binlog_writer_abort(NULL);
    load(d, NULL, &res);
    assert_int_equal(res.rc, BINLOG_ENOFILES);

    /* empty job set: a header-only binlog.1, next id as asked */
    assert_int_equal(binlog_writer_open(&w, d, NULL, &err), 0);
    assert_int_equal(binlog_writer_finish(w, 0, &err), 0);
    load(d, NULL, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.n, 0);
    assert_int_equal(res.next_id, 1);

    binlog_write_opts bad = {.size_limit = (size_t)BINLOG_STOCK_SIZE_LIMIT_MAX + 1};
    assert_int_equal(binlog_writer_open(&w, "/tmp/x", &bad, &err), BINLOG_EINVAL);
    write_file(d, "plainfile", "", 0);
    char *p;
    assert_true(asprintf(&p, "%s/plainfile", d) > 0);
    assert_int_equal(binlog_writer_open(&w, p, NULL, &err), BINLOG_ENOTDIR);
    free(p);
    rmtree(d);
    free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_and_not_dir),
        cmocka_unit_test(test_header_only_and_short_headers),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_not_regular_files),
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_states_and_counters),
        cmocka_unit_test(test_stale_deletes_and_moves),
        cmocka_unit_test(test_gap_in_files),
        cmocka_unit_test(test_bad_namelen),
        cmocka_unit_test(test_invalid_states),
        cmocka_unit_test(test_full_record_state_zero),
        cmocka_unit_test(test_body_sizes),
        cmocka_unit_test(test_zero_tails),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_tube_names),
        cmocka_unit_test(test_version5_and_upgrade),
        cmocka_unit_test(test_locked_directory),
        cmocka_unit_test(test_file_changed_after_replay),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_sample_byte_flips),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
