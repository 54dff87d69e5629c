/* bsimport: bring a stock beanstalkd binlog directory (-b DIR of beanstalkd
 * 1.4 to 1.13) into a store, the way stock 1.12 would load it.
 *
 * The legacy codec (binlog.h) replays the directory as stock does: same job
 * set, states, priorities, bodies, delays, reserved-at-shutdown treatment,
 * torn tails.  The jobs then go into the store through the store layer's
 * offline API in ONE import transaction: the store gets all of them or none
 * (a failure, a kill or a power cut mid-way leaves it as it was).
 *
 * Choices:
 *  - next id: binlog_safe_next_id(), above every id any accepted record
 *    used, so no id a client has seen is handed out again (stock's own
 *    rule can reuse ids; see binlog.h);
 *  - wall-clock times (created, delay deadline) go into the records as they
 *    are; the server turns them into its clock when it starts;
 *  - a buried job's record holds when it was buried, and a restart gives
 *    the buried jobs back to kick in that order.  A binlog does not record
 *    it, and stock kicks a tube's buried jobs, after a load, in replay
 *    order (binlog_job.order): so the import stamps them one nanosecond
 *    apart in that order, just before the import began;
 *  - a job whose tube name stock tolerated but the protocol refuses cannot
 *    be served by this server: the import is refused, nothing written;
 *  - the store must be new or empty, unless --merge: then a job whose id is
 *    taken gets a fresh id above everything in use, and each change is
 *    reported.
 *
 * Exit status: 0 ok, 1 error (nothing imported), 2 bad usage. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "binlog.h"
#include "toolutil.h"
#include "util.h"
#include "schema.h"
#include "store_offline.h"

#define NS ((int64_t)1000000000)

static const char *prog = "bsimport";

typedef struct opts {
    const char *src, *dst;
    int merge, dry_run, quiet, verbose, strict, tty;
    size_t size_limit;          /* -z: as stock's -z; 0 = the codec's default */
    unsigned flags;             /* BINLOG_SKIP_BAD_VERSION, BINLOG_NO_LOCK */
} opts;

/* What the destination directory holds before the import. */
typedef struct dest {
    int exists;                 /* the directory exists */
    int empty;                  /* it exists and holds nothing, or only a lock file */
    int store;                  /* it holds data.mdb */
    int had_lock, had_lockmdb;  /* lock, lock.mdb were there before */
    uint64_t jobs, next_id;     /* of that store */
    uint64_t *ids;              /* --merge: ids in the store, ascending */
    size_t nids, capids;
} dest;

typedef struct remap {
    uint64_t from, to;
} remap;

typedef tally_entry tube_stat;

typedef struct import {
    const opts *o;
    store_view *v;              /* NULL for --dry-run */
    dest *d;
    uint64_t fresh;             /* next id to give a remapped job */
    uint64_t max_id;            /* largest id written */
    remap *remaps;
    size_t nremaps, capremaps;
    tube_stat *tubes;           /* open addressing */
    size_t ntubes, captubes;
    uint64_t total, n[5], bytes, no_crlf;
    size_t expected;            /* jobs the codec will hand out */
    int progress;
    int64_t started, last_progress;
    int64_t buried_base;        /* wall clock: "buried at" of replay order 0 */
    char err[1024];
} import;

static int64_t
mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int
path_exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int
is_binlog_name(const char *n)
{
    return strncmp(n, "binlog.", 7) == 0 && n[7] && strspn(n + 7, "0123456789") == strlen(n + 7);
}

/* ---- the destination ---- */

static int
collect_id(void *ctx, const store_job *j)
{
    dest *d = ctx;
    if (d->nids == d->capids) {
        size_t nc = d->capids ? d->capids * 2 : 1024;
        uint64_t *n = realloc(d->ids, nc * sizeof *n);
        if (!n)
            return 1;
        d->ids = n;
        d->capids = nc;
    }
    d->ids[d->nids++] = j->id;
    return 0;
}

/* Reads what the store in v holds: job count, next id and, for --merge,
 * its ids. */
static int
read_store(const opts *o, store_view *v, dest *d)
{
    store_info info;
    if (sv_info(v, &info) < 0) {
        log_warn("%s: cannot read the store", o->dst);
        return -1;
    }
    d->jobs = info.jobs;
    d->next_id = info.next_id ? info.next_id : 1;
    d->nids = 0;
    if (!o->merge || !d->jobs)
        return 0;
    int rc = sv_foreach(v, 0, UINT64_MAX, 0, collect_id, d);
    if (rc == 1)
        log_warn("out of memory");
    else if (rc == -2)
        log_warn("%s: the store holds a corrupt job record; refusing to merge into it", o->dst);
    else if (rc)
        log_warn("%s: cannot read the store", o->dst);
    if (rc)
        return -1;
    if (d->nids && d->ids[d->nids - 1] >= d->next_id)
        d->next_id = d->ids[d->nids - 1] + 1;
    return 0;
}

/* Looks at STOREDIR without changing it: refuses a binlog directory, a
 * directory of unrelated files, a store with an unapplied journal, and a
 * store that holds jobs (unless --merge). */
static int
check_dest(const opts *o, dest *d)
{
    struct stat st;
    if (stat(o->dst, &st) < 0) {
        if (errno != ENOENT) {
            log_warn("%s: %s", o->dst, strerror(errno));
            return -1;
        }
        d->next_id = 1;
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_warn("%s exists and is not a directory", o->dst);
        return -1;
    }
    d->exists = 1;
    DIR *dir = opendir(o->dst);
    if (!dir) {
        log_warn("%s: %s", o->dst, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int binlog = 0, other = 0;
    char other_name[256] = "";
    while ((e = readdir(dir))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (!strcmp(n, "lock")) {
            d->had_lock = 1;
            continue;
        }
        if (!strcmp(n, "lock.mdb"))
            d->had_lockmdb = 1;
        if (is_binlog_name(n))
            binlog = 1;
        else if (!strcmp(n, "data.mdb"))
            d->store = 1;
        else if (strcmp(n, "lock.mdb") && strcmp(n, "journal") && !other++)
            snprintf(other_name, sizeof other_name, "%s", n);
    }
    closedir(dir);
    if (binlog) {
        log_warn("%s holds binlog.N files: it is a binlog directory, not a store; give a new "
              "or empty directory for the store", o->dst);
        return -1;
    }
    if (!d->store && other) {
        log_warn("%s is not empty (it holds %s) and holds no store; give a new or empty "
              "directory", o->dst, other_name);
        return -1;
    }
    d->empty = !d->store && !other;
    char path[4096];
    snprintf(path, sizeof path, "%s/journal", o->dst);
    if (stat(path, &st) == 0 && st.st_size > 0) {
        log_warn("%s/journal holds changes a server in -f mode has not committed to the store "
              "yet (is it running, or was it killed?); stop the server, start it on %s once "
              "without clients and stop it, then import", o->dst, o->dst);
        return -1;
    }
    if (!d->store) {
        d->next_id = 1;
        return 0;
    }
    char err[1024];
    store_view *v = sv_open(o->dst, SV_READ, err, sizeof err);
    if (!v) {
        log_warn("%s", err);
        return -1;
    }
    int rc = read_store(o, v, d);
    sv_close(v);
    if (rc)
        return -1;
    if (d->jobs && !o->merge) {
        log_warn("%s already holds %" PRIu64 " job%s; import into a new or empty directory, or "
              "pass --merge to add the binlog's jobs to them", o->dst, d->jobs,
              d->jobs == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

/* After a failed import into a directory that was new or empty: take away
 * the empty store sv_open created, so the directory is as it was. */
static void
undo_new_store(const opts *o, const dest *d)
{
    char path[4096];
    if (d->store || (d->exists && !d->empty))
        return;
    snprintf(path, sizeof path, "%s/data.mdb", o->dst);
    unlink(path);
    if (!d->had_lockmdb) {
        snprintf(path, sizeof path, "%s/lock.mdb", o->dst);
        unlink(path);
    }
    if (!d->had_lock) {
        snprintf(path, sizeof path, "%s/lock", o->dst);
        unlink(path);
    }
    if (!d->exists)
        rmdir(o->dst);
}

static int
id_taken(const dest *d, uint64_t id)
{
    size_t lo = 0, hi = d->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->ids[mid] == id)
            return 1;
        if (d->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* ---- per-tube counts ---- */

static tube_stat *
tube_slot(import *im, const char *name, size_t len)
{
    return tally_get(&im->tubes, &im->ntubes, &im->captubes, name, len);
}

static int
cmp_tube(const void *a, const void *b)
{
    const tube_stat *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* ---- the import ---- */

static void
show_progress(import *im, int final)
{
    int64_t now = mono_now();
    if (!im->progress || (!final && now - im->last_progress < NS / 4))
        return;
    im->last_progress = now;
    char a[32];
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    fprintf(stderr, "\r%s: %" PRIu64 " of %zu jobs (%zu%%), %s, %.1f s\033[K", prog, im->total,
            im->expected, im->expected ? (size_t)(im->total * 100 / im->expected) : 100,
            tool_fmt_size(a, sizeof a, im->bytes), (double)(now - im->started) / NS);
}

/* A printable copy of a tube name that may hold any byte but NUL. */
static void
put_name(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

static int
import_job(const binlog_job *b, void *ctx)
{
    import *im = ctx;
    const opts *o = im->o;
    if (!binlog_tube_name_valid(b->tube, b->tube_len)) {
        show_progress(im, 1);
        fprintf(stderr, "%s: job %" PRIu64 " is in tube \"", prog, b->id);
        put_name(stderr, b->tube, b->tube_len);
        fprintf(stderr, "\", a name stock beanstalkd tolerates in its binlog but the protocol "
                "does not allow; this server cannot serve it\n");
        return 2;
    }
    uint64_t id = b->id;
    if (im->d->nids && id_taken(im->d, id)) {
        if (im->nremaps == im->capremaps) {
            size_t nc = im->capremaps ? im->capremaps * 2 : 64;
            remap *n = realloc(im->remaps, nc * sizeof *n);
            if (!n)
                return 3;
            im->remaps = n;
            im->capremaps = nc;
        }
        id = im->fresh++;
        im->remaps[im->nremaps++] = (remap){b->id, id};
    }
    int st = b->state == BINLOG_BURIED ? BS_STORED_BURIED
           : b->state == BINLOG_DELAYED ? BS_STORED_DELAYED : BS_STORED_READY;
    if (!b->body_crlf) {
        im->no_crlf++;
        show_progress(im, 1);
        fprintf(stderr, "%s: warning: job %" PRIu64 ": its stored body does not end in CR LF; "
                "imported as stock serves it (the first %zu bytes)\n", prog, b->id, b->body_len);
    }
    if (b->body_len > UINT32_MAX) {
        show_progress(im, 1);
        fprintf(stderr, "%s: job %" PRIu64 ": body of %zu bytes is too big for the store\n",
                prog, b->id, b->body_len);
        return 2;
    }
    bs_job_record rec = {
        .state = (uint8_t)st,
        .pri = b->pri,
        .created_at = b->created_ns,
        .delay = b->delay_ns,
        .ttr = b->ttr_ns,
        .deadline = st == BS_STORED_DELAYED ? b->deadline_ns
                  : st == BS_STORED_BURIED ? im->buried_base + (int64_t)b->order : 0,
        .body_size = (uint32_t)b->body_len,
        .reserves = b->reserves,
        .timeouts = b->timeouts,
        .releases = b->releases,
        .buries = b->buries,
        .kicks = b->kicks,
        .tube_len = (uint16_t)b->tube_len,
        .tube = b->tube,
    };
    if (im->v && sv_import_job(im->v, id, &rec, b->body, b->body_len, im->err,
                               sizeof im->err) < 0)
        return 4;
    tube_stat *t = tube_slot(im, b->tube, b->tube_len);
    if (!t)
        return 3;
    t->n[st]++;
    im->n[st]++;
    im->total++;
    im->bytes += b->body_len;
    if (id > im->max_id)
        im->max_id = id;
    if (o->verbose)
        printf("%s job %" PRIu64 "%s tube %s %s pri %" PRIu32 " body %zu bytes\n",
               o->dry_run ? "would import" : "import", b->id, id != b->id ? " (as new id)" : "",
               b->tube, tool_state_name(st), b->pri, b->body_len);
    show_progress(im, 0);
    return 0;
}

static void
print_warnings(const binlog_reader *r)
{
    size_t n = binlog_warning_count(r);
    for (size_t i = 0; i < n; i++) {
        const binlog_warning *w = binlog_get_warning(r, i);
        fprintf(stderr, "%s: warning: %s%s\n", prog, w->msg,
                w->lost ? "" : " (nothing lost)");
    }
    if (binlog_stock_errors(r))
        fprintf(stderr, "%s: warning: stock beanstalkd would report \"Errors reading one or "
                "more WAL files\" here and go on with what it could read; so does this import\n",
                prog);
}

static int
lost_data(const binlog_reader *r)
{
    for (size_t i = 0; i < binlog_warning_count(r); i++)
        if (binlog_get_warning(r, i)->lost)
            return 1;
    return 0;
}

/* Bytes the import may need in the store: the binlog files hold every
 * body at most once per full record, so their sizes bound it. */
static size_t
size_hint(const binlog_reader *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < binlog_file_count(r); i++) {
        const binlog_file_info *f = binlog_get_file(r, i);
        if (f->read && f->size > 0)
            n += (uint64_t)f->size;
    }
    n += (uint64_t)binlog_job_count(r) * (BS_JOB_RECORD_MAX + 64);
    return n > SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)n;
}

static void
print_summary(const opts *o, import *im, const binlog_reader *r, uint64_t next_id)
{
    char a[32];
    double secs = (double)(mono_now() - im->started) / NS;
    size_t nfiles = binlog_file_count(r), nread = 0;
    for (size_t i = 0; i < nfiles; i++)
        nread += binlog_get_file(r, i)->read != 0;
    printf("%s %" PRIu64 " job%s from %s (%zu binlog file%s, %zu read) %s %s in %.2f s\n",
           o->dry_run ? "would import" : "imported", im->total, im->total == 1 ? "" : "s", o->src,
           nfiles, nfiles == 1 ? "" : "s", nread, "into", o->dst, secs);
    printf("  ready %" PRIu64 ", delayed %" PRIu64 ", buried %" PRIu64 "; %zu tube%s; %s of "
           "bodies; next id %" PRIu64 "\n", im->n[BS_STORED_READY], im->n[BS_STORED_DELAYED],
           im->n[BS_STORED_BURIED], im->ntubes, im->ntubes == 1 ? "" : "s",
           tool_fmt_size(a, sizeof a, im->bytes), next_id);
    if (im->ntubes) {
        tube_stat *list = malloc(im->ntubes * sizeof *list);
        if (list) {
            size_t k = 0;
            int w = 4;
            for (size_t i = 0; i < im->captubes; i++)
                if (im->tubes[i].name) {
                    list[k++] = im->tubes[i];
                    if ((int)im->tubes[i].len > w)
                        w = (int)im->tubes[i].len;
                }
            qsort(list, k, sizeof *list, cmp_tube);
            printf("  %-*s %10s %10s %10s\n", w, "TUBE", "READY", "DELAYED", "BURIED");
            for (size_t i = 0; i < k; i++)
                printf("  %-*s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", w, list[i].name,
                       list[i].n[BS_STORED_READY], list[i].n[BS_STORED_DELAYED],
                       list[i].n[BS_STORED_BURIED]);
            free(list);
        }
    }
    if (im->nremaps) {
        printf("%s %zu job%s whose id%s already in use in %s (old -> new):\n",
               o->dry_run ? "would renumber" : "renumbered", im->nremaps,
               im->nremaps == 1 ? "" : "s", im->nremaps == 1 ? " was" : "s were", o->dst);
        for (size_t i = 0; i < im->nremaps; i++)
            printf("  %" PRIu64 " -> %" PRIu64 "\n", im->remaps[i].from, im->remaps[i].to);
    }
    size_t nw = binlog_warning_count(r);
    if (nw)
        printf("%zu warning%s (on stderr)\n", nw, nw == 1 ? "" : "s");
    if (im->no_crlf)
        printf("%" PRIu64 " bod%s without the trailing CR LF\n", im->no_crlf,
               im->no_crlf == 1 ? "y" : "ies");
    if (!o->dry_run)
        printf("start the server with: beanstalkd -b %s\n", o->dst);
}

static int
open_binlog(const opts *o, binlog_reader **r)
{
    binlog_error err;
    binlog_read_opts ro = {.size_limit = o->size_limit, .flags = o->flags};
    if (path_exists(o->src, "data.mdb")) {
        log_warn("%s holds a store of this server (data.mdb), not binlog files; to copy a store "
              "use bsdump --backup", o->src);
        return -1;
    }
    if (o->tty)
        fprintf(stderr, "%s: replaying %s ...", prog, o->src);
    int rc = binlog_open(r, o->src, &ro, &err);
    if (o->tty)
        fputs("\r\033[K", stderr);
    if (!rc)
        return 0;
    switch (rc) {
    case BINLOG_ENOFILES:
        log_warn("%s is not a binlog directory: it holds no binlog.N file", o->src);
        break;
    case BINLOG_EVERSION:
        log_warn("%s (pass --skip-bad-version to skip such files as stock does)", err.msg);
        break;
    default:
        log_warn("%s", err.msg);
    }
    return -1;
}

static int
run(const opts *o)
{
    dest d = {0};
    binlog_reader *r = NULL;
    import im = {.o = o, .d = &d, .started = mono_now()};
    int status = 1, created = 0;
    char err[1024];

    if (check_dest(o, &d) < 0 || open_binlog(o, &r) < 0)
        goto out;
    print_warnings(r);
    if (o->strict && lost_data(r)) {
        log_warn("the binlog is damaged and stock would lose data loading it (see the warnings); "
              "not importing because of --strict");
        goto out;
    }
    if (!o->dry_run) {
        /* Takes the store's lock (refused while a server runs on it) and
         * creates an empty store in a new directory.  Look again under the
         * lock: a server may have run in between. */
        im.v = sv_open(o->dst, SV_WRITE, err, sizeof err);
        if (!im.v) {
            log_warn("%s", err);
            goto out;
        }
        created = !d.store;
        if (read_store(o, im.v, &d) < 0)
            goto out;
        if (d.jobs && !o->merge) {
            log_warn("%s already holds %" PRIu64 " jobs; pass --merge to add to them", o->dst,
                  d.jobs);
            goto out;
        }
    }
    uint64_t safe = binlog_safe_next_id(r);
    im.fresh = safe > d.next_id ? safe : d.next_id;
    im.expected = binlog_job_count(r);
    im.progress = o->tty;
    im.last_progress = 0;       /* the first job shows it at once */
    im.buried_base = tool_wall_now() - NS;

    if (im.v && sv_import_begin(im.v, size_hint(r), err, sizeof err) < 0) {
        log_warn("%s", err);
        goto out;
    }
    binlog_error berr;
    int rc = binlog_foreach(r, import_job, &im, &berr);
    show_progress(&im, 1);
    if (rc) {
        if (rc < 0)
            log_warn("%s", berr.msg);
        else if (rc == 3)
            log_warn("out of memory");
        else if (rc == 4)
            log_warn("%s", im.err);
        if (im.v) {
            sv_import_abort(im.v);
            log_warn("nothing was imported; %s is as it was", o->dst);
        }
        goto out;
    }
    uint64_t next_id = im.fresh > safe ? im.fresh : safe;
    if (next_id < d.next_id)
        next_id = d.next_id;
    if (im.v && sv_import_commit(im.v, next_id, err, sizeof err) < 0) {
        log_warn("%s", err);
        goto out;
    }
    if (!o->quiet)
        print_summary(o, &im, r, next_id);
    status = 0;
out:
    if (im.v) {
        sv_close(im.v);
        if (status && created)
            undo_new_store(o, &d);
    }
    binlog_close(r);
    for (size_t i = 0; i < im.captubes; i++)
        free(im.tubes[i].name);
    free(im.tubes);
    free(im.remaps);
    free(d.ids);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_warn("cannot write the report: %s", strerror(errno));
        status = 1;
    }
    return status;
}

/* ---- options ---- */

static void
usage(FILE *f)
{
    fprintf(f,
"usage: bsimport BINLOGDIR STOREDIR [options]\n"
"Imports the jobs of a stock beanstalkd binlog directory (its -b DIR) into a\n"
"new or empty store, as stock beanstalkd 1.12 would load them, in one\n"
"transaction: the store gets all of them or none.  Stop the old server first.\n"
"  -n, --dry-run           show what would be imported; write nothing\n"
"  -m, --merge             import into a store that already holds jobs; a job\n"
"                          whose id is taken gets a new id (each one reported)\n"
"  -z, --max-job-size N    load as a stock server with -z N would: a job whose\n"
"                          body + 2 exceeds N ends its file's replay (default:\n"
"                          keep every job some stock configuration could load)\n"
"      --skip-bad-version  skip binlog files of an unknown version, as stock\n"
"                          does (default: refuse, since stock deletes them)\n"
"      --strict            refuse a damaged binlog that stock would load with losses\n"
"      --no-lock           do not take BINLOGDIR/lock (when it cannot be opened);\n"
"                          make sure no server runs on BINLOGDIR\n"
"  -v, --verbose           one line per job\n"
"  -q, --quiet             no progress and no summary; warnings and errors only\n"
"  -h, --help              this text\n"
"Exit status: 0 imported, 1 error (nothing imported), 2 bad usage.\n");
}

enum { O_SKIP_BAD_VERSION = 256, O_STRICT, O_NO_LOCK };

static int
parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"merge", no_argument, NULL, 'm'},
        {"max-job-size", required_argument, NULL, 'z'},
        {"skip-bad-version", no_argument, NULL, O_SKIP_BAD_VERSION},
        {"strict", no_argument, NULL, O_STRICT},
        {"no-lock", no_argument, NULL, O_NO_LOCK},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":nmz:vqh", lo, NULL)) != -1) {
        switch (c) {
        case 'n': o->dry_run = 1; break;
        case 'm': o->merge = 1; break;
        case 'z': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg || *optarg == '-' || v < 2 ||
                v > BINLOG_STOCK_SIZE_LIMIT_MAX)
                return tool_bad_usage("bad --max-job-size '%s' (2 to 1073741824, as stock's -z)",
                                 optarg);
            o->size_limit = (size_t)v;
            break;
        }
        case O_SKIP_BAD_VERSION: o->flags |= BINLOG_SKIP_BAD_VERSION; break;
        case O_STRICT: o->strict = 1; break;
        case O_NO_LOCK: o->flags |= BINLOG_NO_LOCK; break;
        case 'v': o->verbose = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            return tool_bad_usage("option %s needs an argument", argv[optind - 1]);
        default:
            return tool_bad_usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return tool_bad_usage("%s", "give a binlog directory and a store directory");
    o->src = argv[optind];
    o->dst = argv[optind + 1];
    if (!*o->src || !*o->dst)
        return tool_bad_usage("%s", "empty directory name");
    if (o->quiet && o->verbose)
        return tool_bad_usage("%s", "--quiet and --verbose exclude each other");
    o->tty = !o->quiet && !o->verbose && isatty(STDERR_FILENO);
    return 0;
}

int
main(int argc, char **argv)
{
    progname = prog;           /* log_warn() names the tool */
    opts o = {0};
    int rc = parse_args(argc, argv, &o);
    return rc ? rc : run(&o);
}
