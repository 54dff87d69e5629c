/* libFuzzer harness: the legacy beanstalkd binlog reader (tools/binlog.c),
 * and the writer on what the reader returns.
 *
 * Input: one flags byte, then the contents of one or more binlog files
 * separated by SEP (below). File k is written as binlog.(first + k * step)
 * into a scratch directory made once per process (files of the previous
 * input are removed first), so stock's number scan, gaps between files and
 * the order of replay all come from the input.
 *   flags & 3         first file number: 1, 4, 0 or 2147483646
 *   (flags >> 2) & 1  step 2 instead of 1 (a missing file between each two)
 *   (flags >> 3) & 1  size limit 65535 (stock's default -z) instead of the
 *                     codec's default (1 GiB)
 *   (flags >> 4) & 1  BINLOG_SKIP_BAD_VERSION
 *   (flags >> 5) & 1  the last file is also named binlog.0<N> (never read)
 *   (flags >> 6) & 1  lock the directory (the scratch dir holds a lock file)
 *   (flags >> 7) & 1  round trip: write the jobs back with the writer and
 *                     read them again
 *
 * Checks, beyond the sanitizers: binlog_next() hands out binlog_job_count()
 * jobs in strictly increasing id order, each with a state of ready, delayed
 * or buried, a NUL-terminated tube of tube_len bytes and a body it can read;
 * binlog_rewind() and binlog_foreach() see the same jobs again; the next-id
 * values are above every job id (unless ids wrapped); warnings and file
 * infos are readable. With the round trip, decode(write(jobs)) == jobs, as
 * binlog.h promises, and the rewritten directory continues at the id passed
 * to binlog_writer_finish(). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binlog.h"
#include "scratch.h"

#define SEP "\n--next-binlog-file--\n"
#define MAX_FILES 8
#define NOW_NS ((int64_t)1700000000 * 1000000000)   /* fixed "load time" */

static char dir_in[4096], dir_out[4096];

static _Noreturn void
die(const char *what)
{
    fprintf(stderr, "fuzz_binlog: %s\n", what);
    abort();
}

/* Empty dir but its "lock"; a missing dir is empty already. */
static void
empty_dir(const char *dir)
{
    scratch_empty(dir, "lock");
}

/* At exit: the scratch directory goes (libFuzzer exits normally when its
 * time is up). */
static void
remove_scratch(void)
{
    empty_dir(dir_out);
    rmdir(dir_out);
    char p[8192];
    snprintf(p, sizeof p, "%s/lock", dir_in);
    empty_dir(dir_in);
    unlink(p);
    rmdir(dir_in);
}

static void
setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir_in, sizeof dir_in, "%s/fuzz_binlog.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir_in))
        die("cannot create a scratch directory");
    atexit(remove_scratch);
    snprintf(dir_out, sizeof dir_out, "%s/out", dir_in);
    char p[8192];
    snprintf(p, sizeof p, "%s/lock", dir_in);
    FILE *f = fopen(p, "w");
    if (!f)
        die("cannot create the lock file");
    fclose(f);
}

static void
write_file(const char *dir, const char *name, const uint8_t *d, size_t n)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0)
        die("cannot write a binlog file");
}

/* A job with its own copies of tube and body. */
typedef struct kept {
    binlog_job j;
    char *tube;
    unsigned char *body;
} kept;

typedef struct jobs {
    kept *v;
    size_t n, cap;
} jobs;

static void
keep(jobs *js, const binlog_job *j)
{
    if (js->n == js->cap) {
        js->cap = js->cap ? js->cap * 2 : 16;
        js->v = realloc(js->v, js->cap * sizeof *js->v);
        if (!js->v)
            die("out of memory in the harness");
    }
    kept *k = &js->v[js->n++];
    k->j = *j;
    k->tube = malloc(j->tube_len + 1);
    k->body = malloc(j->body_len ? j->body_len : 1);
    if (!k->tube || !k->body)
        die("out of memory in the harness");
    memcpy(k->tube, j->tube, j->tube_len + 1);
    if (j->body_len)
        memcpy(k->body, j->body, j->body_len);
    k->j.tube = k->tube;
    k->j.body = k->body;
}

static void
jobs_free(jobs *js)
{
    for (size_t i = 0; i < js->n; i++) {
        free(js->v[i].tube);
        free(js->v[i].body);
    }
    free(js->v);
    memset(js, 0, sizeof *js);
}

static void
check_job(const binlog_job *j, uint64_t prev_id)
{
    if (j->id == 0 || j->id <= prev_id)
        die("job ids not strictly increasing");
    if (j->state != BINLOG_READY && j->state != BINLOG_DELAYED &&
        j->state != BINLOG_BURIED)
        die("job handed out in a state other than ready/delayed/buried");
    if (!j->tube || strlen(j->tube) != j->tube_len ||
        j->tube_len > BINLOG_MAX_TUBE_NAME)
        die("tube name length wrong");
    if (j->body_len && !j->body)
        die("job without its body");
    /* Touch the whole body, so ASan sees a short buffer. */
    unsigned sum = 0;
    for (size_t i = 0; i < j->body_len; i++)
        sum += j->body[i];
    (void)sum;
    if (j->format != 5 && j->format != 7)
        die("job from a file that is neither version 5 nor 7");
}

/* Read every job of an open reader, with the checks above. */
static int
read_all(binlog_reader *r, jobs *js)
{
    binlog_job j;
    binlog_error err;
    uint64_t prev = 0;
    int rc;
    while ((rc = binlog_next(r, &j, &err)) == 1) {
        check_job(&j, prev);
        prev = j.id;
        keep(js, &j);
    }
    if (rc < 0)
        return rc;
    if (js->n != binlog_job_count(r))
        die("binlog_next handed out a different number of jobs than"
            " binlog_job_count");
    return 0;
}

static int
count_job(const binlog_job *j, void *ctx)
{
    size_t *n = ctx;
    (*n)++;
    return j->id == 0;
}

static void
check_meta(binlog_reader *r, const jobs *js)
{
    for (size_t i = 0; i < binlog_warning_count(r); i++) {
        const binlog_warning *w = binlog_get_warning(r, i);
        if (!w || !w->msg || strlen(w->msg) > 100000)
            die("unreadable warning");
    }
    if (binlog_get_warning(r, binlog_warning_count(r)))
        die("warning past the end");
    for (size_t i = 0; i < binlog_file_count(r); i++) {
        const binlog_file_info *f = binlog_get_file(r, i);
        if (!f || f->size < 0 || (f->read != 0 && f->read != 1))
            die("bad file info");
    }
    if (binlog_get_file(r, binlog_file_count(r)))
        die("file info past the end");
    uint64_t stock = binlog_stock_next_id(r), safe = binlog_safe_next_id(r);
    int wrapped = stock == 0 || safe == UINT64_MAX;
    if (!wrapped) {
        if (safe < stock)
            die("safe next id below stock's");
        for (size_t i = 0; i < js->n; i++)
            if (js->v[i].j.id >= stock)
                die("a job id at or above stock's next id");
    }
    binlog_stock_errors(r);
}

static int
cmp_order(const void *a, const void *b)
{
    const kept *x = a, *y = b;
    return (x->j.order > y->j.order) - (x->j.order < y->j.order);
}

static int
cmp_id(const void *a, const void *b)
{
    const kept *x = a, *y = b;
    return (x->j.id > y->j.id) - (x->j.id < y->j.id);
}

/* qsort() must not get NULL, even for no elements. */
static void
sort_jobs(jobs *js, int (*cmp)(const void *, const void *))
{
    if (js->n)
        qsort(js->v, js->n, sizeof *js->v, cmp);
}

static void
same_job(const binlog_job *a, const binlog_job *b)
{
    if (a->id != b->id || a->tube_len != b->tube_len ||
        memcmp(a->tube, b->tube, a->tube_len) != 0)
        die("round trip: id or tube differs");
    if (a->state != b->state || a->pri != b->pri ||
        a->delay_ns != b->delay_ns || a->ttr_ns != b->ttr_ns ||
        a->created_ns != b->created_ns || a->deadline_ns != b->deadline_ns)
        die("round trip: state, priority or a time differs");
    if (a->reserves != b->reserves || a->timeouts != b->timeouts ||
        a->releases != b->releases || a->buries != b->buries ||
        a->kicks != b->kicks)
        die("round trip: a counter differs");
    if (a->body_len != b->body_len ||
        (a->body_len && memcmp(a->body, b->body, a->body_len) != 0))
        die("round trip: body differs");
}

/* Write js (in replay order, which keeps the kick order of buried jobs)
 * into dir_out, read it back and compare. */
static void
round_trip(jobs *js, uint64_t next_id)
{
    binlog_error err;
    binlog_writer *w;
    for (size_t i = 0; i < js->n; i++) {
        const binlog_job *j = &js->v[i].j;
        /* What the writer refuses by contract, not by fault. */
        if (!binlog_tube_name_valid(j->tube, j->tube_len) ||
            j->body_len + 2 > BINLOG_STOCK_SIZE_LIMIT_MAX)
            return;
    }
    empty_dir(dir_out);
    rmdir(dir_out);
    binlog_write_opts wo = {.size_limit = BINLOG_STOCK_SIZE_LIMIT_MAX, .file_size = 4096};
    if (binlog_writer_open(&w, dir_out, &wo, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        die("binlog_writer_open failed");
    }
    sort_jobs(js, cmp_order);
    for (size_t i = 0; i < js->n; i++) {
        if (binlog_writer_add(w, &js->v[i].j, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            die("binlog_writer_add refused a job the reader returned");
        }
    }
    if (binlog_writer_finish(w, next_id, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        die("binlog_writer_finish failed");
    }
    binlog_read_opts ro = {.now_ns = NOW_NS, .flags = BINLOG_NO_LOCK};
    binlog_reader *r;
    if (binlog_open(&r, dir_out, &ro, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        die("cannot read back what the writer wrote");
    }
    jobs back = {0};
    if (read_all(r, &back) != 0)
        die("cannot read a body back");
    if (binlog_warning_count(r) != 0) {
        fprintf(stderr, "%s\n", binlog_get_warning(r, 0)->msg);
        die("the writer's files give warnings");
    }
    if (back.n != js->n)
        die("round trip: a different number of jobs");
    if (binlog_stock_next_id(r) != next_id)
        die("round trip: stock would continue at another id");
    /* Same jobs, and buried jobs in the same relative replay order. */
    sort_jobs(&back, cmp_order);
    size_t bi = 0;
    for (size_t i = 0; i < js->n; i++) {
        if (js->v[i].j.state != BINLOG_BURIED)
            continue;
        while (bi < back.n && back.v[bi].j.state != BINLOG_BURIED)
            bi++;
        if (bi == back.n || back.v[bi].j.id != js->v[i].j.id)
            die("round trip: buried jobs in another order");
        bi++;
    }
    sort_jobs(js, cmp_id);
    sort_jobs(&back, cmp_id);
    for (size_t i = 0; i < js->n; i++)
        same_job(&js->v[i].j, &back.v[i].j);
    jobs_free(&back);
    binlog_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t firsts[] = {1, 4, 0, 2147483646};
    if (size == 0)
        return 0;
    if (!dir_in[0])
        setup();
    unsigned flags = data[0];
    const uint8_t *p = data + 1, *end = data + size;

    empty_dir(dir_in);
    int64_t num = firsts[flags & 3], step = (flags >> 2) & 1 ? 2 : 1;
    char name[64];
    for (int k = 0; k < MAX_FILES; k++, num += step) {
        const uint8_t *cut = memmem(p, (size_t)(end - p), SEP, sizeof SEP - 1);
        if (k == MAX_FILES - 1 || !cut)
            cut = end;
        snprintf(name, sizeof name, "binlog.%lld", (long long)num);
        write_file(dir_in, name, p, (size_t)(cut - p));
        if ((flags >> 5) & 1 && cut == end) {
            snprintf(name, sizeof name, "binlog.0%lld", (long long)num);
            write_file(dir_in, name, p, (size_t)(cut - p));
        }
        if (cut == end)
            break;
        p = cut + sizeof SEP - 1;
    }

    binlog_read_opts o = {
        .size_limit = (flags >> 3) & 1 ? BINLOG_STOCK_SIZE_LIMIT : 0,
        .now_ns = NOW_NS,
        .flags = ((flags >> 4) & 1 ? BINLOG_SKIP_BAD_VERSION : 0) |
                 ((flags >> 6) & 1 ? 0 : BINLOG_NO_LOCK),
    };
    binlog_reader *r = NULL;
    binlog_error err;
    int rc = binlog_open(&r, dir_in, &o, &err);
    if (rc != 0) {
        if (r || rc != err.code || !err.msg[0] || !binlog_strerror(rc))
            die("binlog_open failed without a proper error");
        return 0;
    }
    jobs js = {0};
    rc = read_all(r, &js);
    if (rc < 0)
        die("binlog_next failed on a directory nobody changed");
    check_meta(r, &js);

    binlog_rewind(r);
    size_t again = 0;
    if (binlog_foreach(r, count_job, &again, &err) != 0 || again != js.n)
        die("binlog_foreach after binlog_rewind saw other jobs");

    uint64_t next = binlog_safe_next_id(r);
    int wrapped = binlog_stock_next_id(r) == 0 || next == UINT64_MAX;
    binlog_close(r);
    if ((flags >> 7) & 1 && !wrapped)
        round_trip(&js, next);
    jobs_free(&js);
    return 0;
}
