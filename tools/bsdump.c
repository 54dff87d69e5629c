/* bsdump: inspect a store offline, export it as legacy binlog files, or
 * back it up, whether or not a server is running on it.
 *
 * Everything goes through the store layer's offline API (store_offline.h):
 * a read-only view that takes no lock and never blocks the server.  Each
 * report comes from one read transaction, so it is a consistent snapshot.
 * While a snapshot is open the server cannot reuse the pages it frees, so a
 * report is never written straight into a pipe or a terminal (a pager left
 * open would hold the snapshot for hours and let data.mdb grow): it is
 * spooled to a temporary file and copied out after the transaction ends.
 *
 * Exit status: 0 ok, 1 error (one line on stderr), 2 bad usage. */
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
#define PREVIEW 40              /* body bytes shown by --list */

static const char *prog = "bsdump";

enum mode { M_SUMMARY, M_LIST, M_JOB, M_BINLOG, M_BACKUP };
enum body_fmt { B_ESCAPED, B_RAW, B_BASE64 };

typedef struct opts {
    const char *dir;
    enum mode mode;
    int json;
    const char *tube;           /* --tube filter */
    int state;                  /* --state filter: 0 or BS_STORED_* */
    uint64_t from, to;          /* --ids */
    int filtered;               /* a --list filter was given */
    uint64_t job;               /* --job */
    enum body_fmt body;
    int body_given;
    const char *out;            /* --binlog / --backup destination */
    size_t max_job_size;        /* --binlog: the target's -z */
    int64_t file_size;          /* --binlog: the target's -s */
} opts;

/* ---- small helpers ---- */

static int
is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 if dir holds a binlog.N file (a legacy beanstalkd -b directory). */
static int
has_binlog(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return 0;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        found = strncmp(n, "binlog.", 7) == 0 && n[7] &&
                strspn(n + 7, "0123456789") == strlen(n + 7);
    }
    closedir(d);
    return found;
}

/* -1 if the directory cannot be read, else the number of entries besides
 * . and .. (0 if it does not exist). */
static int
dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static off_t
file_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* "3d4h", "2h5m", "4m10s", "12s": the two largest units, for people. */
static const char *
fmt_dur(char *buf, size_t len, int64_t ns)
{
    int64_t s = ns / NS;
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, len, "%" PRId64 "s", s);
    return buf;
}

/* "45 s", or "3600 s (1h0m)" from a minute on. */
static const char *
fmt_secs(char *buf, size_t len, int64_t ns)
{
    char d[32];
    if (ns < 60 * NS)
        snprintf(buf, len, "%" PRId64 " s", ns / NS);
    else
        snprintf(buf, len, "%" PRId64 " s (%s)", ns / NS, fmt_dur(d, sizeof d, ns));
    return buf;
}

/* Wall-clock ns as "2026-11-22 10:44:34 UTC". */
static const char *
fmt_wall(char *buf, size_t len, int64_t ns)
{
    time_t t = (time_t)(ns / NS);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "%" PRId64 " ns since the epoch", ns);
    return buf;
}

/* Bytes as C-like escapes: printable ASCII as is, \\ \" \r \n \t \0 and
 * \xHH for the rest.  At most max input bytes; returns how many were used. */
static size_t
put_escaped(FILE *f, const unsigned char *p, size_t n, size_t max)
{
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = p[i];
        switch (c) {
        case '\\': fputs("\\\\", f); break;
        case '"': fputs("\\\"", f); break;
        case '\r': fputs("\\r", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\0': fputs("\\0", f); break;
        default:
            if (c >= 0x20 && c < 0x7f)
                fputc(c, f);
            else
                fprintf(f, "\\x%02x", c);
        }
    }
    return i;
}

static void
put_base64(FILE *f, const unsigned char *p, size_t n, int wrap)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63],
                     i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        fwrite(q, 1, 4, f);
        col += 4;
        if (wrap && col >= 76 && i + 3 < n) {
            fputc('\n', f);
            col = 0;
        }
    }
}

/* A JSON string.  Bytes >= 0x80 are passed through when the string is
 * valid UTF-8, else escaped as \u00XX, so the line is always valid JSON. */
static int
utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                 : (c & 0xf8) == 0xf0 ? 3 : 9;
        if (k == 9 || i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

static void
put_json_str(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int raw_high = utf8_valid(p, n);
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !raw_high))
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The state the server gives the job when it loads the store now: a
 * delayed job whose deadline has passed is ready. */
static int
live_state(const bs_job_record *r, int64_t now)
{
    if (r->state == BS_STORED_DELAYED && r->deadline <= now)
        return BS_STORED_READY;
    return r->state;
}

static int64_t
time_left(const bs_job_record *r, int64_t now)
{
    return live_state(r, now) == BS_STORED_DELAYED ? bs_span(r->deadline, now) : 0;
}

static int64_t
age(const bs_job_record *r, int64_t now)
{
    return now > r->created_at ? bs_span(now, r->created_at) : 0;
}

/* ---- output spooling ---- */

/* Where a report goes while the snapshot is open: stdout itself when it is
 * a regular file (or /dev/null), else a temporary file copied out later. */
static FILE *
spool_open(void)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) &&
        !isatty(STDOUT_FILENO))
        return stdout;
    FILE *f = tmpfile();
    return f ? f : stdout;
}

static int
spool_close(FILE *f)
{
    if (f == stdout)
        return 0;
    char buf[65536];
    size_t n;
    int rc = 0;
    rewind(f);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, stdout) != n) {
            rc = -1;
            break;
        }
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

/* ---- opening ---- */

static store_view *
open_store(const char *dir)
{
    char err[1024];
    struct stat st;
    if (stat(dir, &st) < 0) {
        log_warn("%s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_warn("%s is not a directory", dir);
        return NULL;
    }
    store_view *v = sv_open(dir, SV_READ, err, sizeof err);
    if (v)
        return v;
    if (has_binlog(dir) && file_size(dir, "data.mdb") < 0)
        log_warn("%s is a legacy beanstalkd binlog directory, not a store; "
              "import it with `bsimport %s NEWDIR`", dir, dir);
    else
        log_warn("%s", err);
    return NULL;
}

/* Turns sv_foreach's result into a message; rc > 0 are the callbacks' own
 * stops, reported by them. */
static int
foreach_failed(const opts *o, int rc, uint64_t last_id)
{
    if (rc == -2)
        log_warn("%s: corrupt job record after job %" PRIu64 "; the store is damaged (what "
              "comes before it can be listed; --ids can skip past it)", o->dir, last_id);
    else if (rc < 0)
        log_warn("%s: cannot read the store", o->dir);
    return 1;
}

/* ---- the summary ---- */

/* Counts by live state: [1] ready, [3] buried, [4] delayed. */
typedef tally_entry tube_count;

typedef struct summary {
    int64_t now;
    tube_count *tubes;          /* open addressing, cap a power of two */
    size_t ntubes, cap;
    uint64_t total, n[5], body_bytes;
    uint64_t oldest_id, last_id;
    int64_t oldest_created;
    int oom;
} summary;

static tube_count *
tube_slot(summary *s, const char *name, size_t len)
{
    return tally_get(&s->tubes, &s->ntubes, &s->cap, name, len);
}

static int
count_job(void *ctx, const store_job *j)
{
    summary *s = ctx;
    int st = live_state(&j->rec, s->now);
    tube_count *t = tube_slot(s, j->rec.tube, j->rec.tube_len);
    if (!t) {
        s->oom = 1;
        return 1;
    }
    t->n[st]++;
    s->n[st]++;
    s->total++;
    s->body_bytes += j->rec.body_size;
    if (!s->oldest_id || j->rec.created_at < s->oldest_created) {
        s->oldest_id = j->id;
        s->oldest_created = j->rec.created_at;
    }
    s->last_id = j->id;
    return 0;
}

static int
cmp_tube(const void *a, const void *b)
{
    const tube_count *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

typedef struct pause_list {
    FILE *f;
    int json, n;
    int64_t now;
} pause_list;

static int
show_pause(void *ctx, const char *name, size_t len, int64_t pause, int64_t until)
{
    pause_list *p = ctx;
    char a[32], b[32];
    if (until <= p->now)
        return 0;               /* ended: the server ignores it */
    if (p->json) {
        fputs(p->n ? "," : "", p->f);
        fputs("{\"tube\":", p->f);
        put_json_str(p->f, name, len);
        fprintf(p->f, ",\"pause\":%" PRId64 ",\"time_left\":%" PRId64 ",\"pause_ns\":%" PRId64
                ",\"until_ns\":%" PRId64 "}", pause / NS, (until - p->now) / NS, pause, until);
    } else {
        fprintf(p->f, "%s%.*s (pause %s, %s left)", p->n ? ", " : "", (int)len, name,
                fmt_dur(a, sizeof a, pause), fmt_dur(b, sizeof b, until - p->now));
    }
    p->n++;
    return 0;
}

static int
report_summary(const opts *o, store_view *v, summary *s)
{
    store_info info;
    int rc = sv_foreach(v, 0, UINT64_MAX, 0, count_job, s);
    if (s->oom) {
        log_warn("out of memory");
        return 1;
    }
    if (rc)
        return foreach_failed(o, rc, s->last_id);
    /* After the pass, so next_id is at least as new as what was counted. */
    if (sv_info(v, &info) < 0) {
        log_warn("%s: cannot read the store", o->dir);
        return 1;
    }
    if (info.next_id <= s->last_id)
        info.next_id = s->last_id + 1;
    off_t journal = file_size(o->dir, "journal");

    tube_count *list = malloc((s->ntubes ? s->ntubes : 1) * sizeof *list);
    if (!list) {
        log_warn("out of memory");
        return 1;
    }
    size_t nt = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tubes[i].name)
            list[nt++] = s->tubes[i];
    qsort(list, nt, sizeof *list, cmp_tube);

    FILE *f = stdout;
    pause_list pl = {.f = f, .json = o->json, .now = s->now};
    char a[32], b[32], c[64];
    if (o->json) {
        fputs("{\"dir\":", f);
        put_json_str(f, o->dir, strlen(o->dir));
        fprintf(f, ",\"schema_version\":%" PRIu32 ",\"used_bytes\":%zu,\"file_bytes\":%zu"
                ",\"jobs\":%" PRIu64 ",\"ready\":%" PRIu64 ",\"delayed\":%" PRIu64
                ",\"buried\":%" PRIu64 ",\"body_bytes\":%" PRIu64 ",\"next_id\":%" PRIu64,
                info.version, info.used_bytes, info.file_bytes, s->total,
                s->n[BS_STORED_READY], s->n[BS_STORED_DELAYED], s->n[BS_STORED_BURIED],
                s->body_bytes, info.next_id);
        if (s->oldest_id)
            fprintf(f, ",\"oldest\":{\"id\":%" PRIu64 ",\"age\":%" PRId64 ",\"created_ns\":%" PRId64 "}",
                    s->oldest_id, (s->now > s->oldest_created ? bs_span(s->now, s->oldest_created) : 0) / NS,
                    s->oldest_created);
        else
            fputs(",\"oldest\":null", f);
        fputs(",\"tubes\":{", f);
        for (size_t i = 0; i < nt; i++) {
            tube_count *t = &list[i];
            fputs(i ? "," : "", f);
            put_json_str(f, t->name, t->len);
            fprintf(f, ":{\"ready\":%" PRIu64 ",\"delayed\":%" PRIu64 ",\"buried\":%" PRIu64
                    ",\"total\":%" PRIu64 "}", t->n[BS_STORED_READY], t->n[BS_STORED_DELAYED],
                    t->n[BS_STORED_BURIED],
                    t->n[BS_STORED_READY] + t->n[BS_STORED_DELAYED] + t->n[BS_STORED_BURIED]);
        }
        fputs("},\"paused\":[", f);
        rc = sv_foreach_pause(v, show_pause, &pl);
        fprintf(f, "],\"journal_bytes\":%lld}\n", (long long)(journal > 0 ? journal : 0));
    } else {
        fprintf(f, "store        %s\n", o->dir);
        fprintf(f, "schema       version %" PRIu32 "\n", info.version);
        fprintf(f, "size         %s used, data.mdb %s\n", tool_fmt_size(a, sizeof a, info.used_bytes),
                tool_fmt_size(b, sizeof b, info.file_bytes));
        fprintf(f, "jobs         %" PRIu64 " (ready %" PRIu64 ", delayed %" PRIu64
                ", buried %" PRIu64 "), bodies %s\n", s->total, s->n[BS_STORED_READY],
                s->n[BS_STORED_DELAYED], s->n[BS_STORED_BURIED], tool_fmt_size(c, sizeof c, s->body_bytes));
        if (s->oldest_id)
            fprintf(f, "oldest job   %" PRIu64 ", age %s (put %s)\n", s->oldest_id,
                    fmt_dur(a, sizeof a, bs_span(s->now, s->oldest_created)),
                    fmt_wall(c, sizeof c, s->oldest_created));
        else
            fputs("oldest job   none\n", f);
        fprintf(f, "next id      %" PRIu64 "\n", info.next_id);
        fputs("paused tubes ", f);
        rc = sv_foreach_pause(v, show_pause, &pl);
        fputs(pl.n ? "\n" : "none\n", f);
        if (journal > 0)
            fprintf(f, "journal      %lld bytes of changes not yet in the store (a server in "
                    "-f mode is running, or was stopped without a final commit); "
                    "not counted above\n", (long long)journal);
        if (nt) {
            int w = 4;
            for (size_t i = 0; i < nt; i++)
                if (list[i].len > (size_t)w)
                    w = (int)list[i].len;
            fprintf(f, "\n%-*s %10s %10s %10s %10s\n", w, "TUBE", "READY", "DELAYED", "BURIED",
                    "TOTAL");
            for (size_t i = 0; i < nt; i++) {
                tube_count *t = &list[i];
                fprintf(f, "%-*.*s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                        w, (int)t->len, t->name, t->n[BS_STORED_READY], t->n[BS_STORED_DELAYED],
                        t->n[BS_STORED_BURIED],
                        t->n[BS_STORED_READY] + t->n[BS_STORED_DELAYED] + t->n[BS_STORED_BURIED]);
            }
        }
    }
    free(list);
    if (rc) {
        log_warn("%s: cannot read the paused tubes", o->dir);
        return 1;
    }
    return 0;
}

static int
do_summary(const opts *o, store_view *v)
{
    summary s = {.now = tool_wall_now()};
    int rc = report_summary(o, v, &s);
    for (size_t i = 0; i < s.cap; i++)
        free(s.tubes[i].name);
    free(s.tubes);
    return rc;
}

/* ---- jobs ---- */

static void
job_json(FILE *f, const store_job *j, int64_t now)
{
    const bs_job_record *r = &j->rec;
    fprintf(f, "{\"id\":%" PRIu64 ",\"tube\":", j->id);
    put_json_str(f, r->tube, r->tube_len);
    fprintf(f, ",\"state\":\"%s\",\"stored_state\":\"%s\",\"pri\":%" PRIu32
            ",\"ttr\":%" PRId64 ",\"delay\":%" PRId64 ",\"time_left\":%" PRId64
            ",\"age\":%" PRId64 ",\"reserves\":%" PRIu32 ",\"timeouts\":%" PRIu32
            ",\"releases\":%" PRIu32 ",\"buries\":%" PRIu32 ",\"kicks\":%" PRIu32
            ",\"ttr_ns\":%" PRId64 ",\"delay_ns\":%" PRId64 ",\"created_ns\":%" PRId64
            ",\"deadline_ns\":%" PRId64 ",\"body_len\":%" PRIu32 ",\"body_b64\":\"",
            tool_state_name(live_state(r, now)), tool_state_name(r->state), r->pri, r->ttr / NS,
            r->delay / NS, time_left(r, now) / NS, age(r, now) / NS, r->reserves, r->timeouts,
            r->releases, r->buries, r->kicks, r->ttr, r->delay, r->created_at, r->deadline,
            r->body_size);
    put_base64(f, j->body, j->body_len, 0);
    fputs("\"}\n", f);
}

typedef struct lister {
    const opts *o;
    FILE *f;
    int64_t now;
    uint64_t shown, last_id, bad_id;
    size_t tube_len;
} lister;

/* A body the store lost or that disagrees with its record. */
static int
body_ok(lister *l, const store_job *j)
{
    if ((j->body || !j->rec.body_size) && j->body_len == j->rec.body_size)
        return 1;
    l->bad_id = j->id;
    return 0;
}

static int
list_job(void *ctx, const store_job *j)
{
    lister *l = ctx;
    const bs_job_record *r = &j->rec;
    const opts *o = l->o;
    int st = live_state(r, l->now);
    l->last_id = j->id;
    if (o->state && st != o->state)
        return 0;
    if (o->tube && (r->tube_len != l->tube_len || memcmp(r->tube, o->tube, l->tube_len)))
        return 0;
    if (!body_ok(l, j))
        return 1;
    l->shown++;
    if (o->json) {
        job_json(l->f, j, l->now);
        return 0;
    }
    char ttr[32], delay[32], left[32], agebuf[32];
    fmt_dur(ttr, sizeof ttr, r->ttr);
    if (r->delay)
        fmt_dur(delay, sizeof delay, r->delay);
    else
        strcpy(delay, "-");
    if (st == BS_STORED_DELAYED)
        fmt_dur(left, sizeof left, time_left(r, l->now));
    else
        strcpy(left, "-");
    fmt_dur(agebuf, sizeof agebuf, age(r, l->now));
    fprintf(l->f, "%10" PRIu64 " %-16.*s %-7s %10" PRIu32 " %7s %7s %6s %7s %3" PRIu32 " %3"
            PRIu32 " %3" PRIu32 " %3" PRIu32 " %3" PRIu32 " %8" PRIu32 " \"", j->id,
            (int)r->tube_len, r->tube, tool_state_name(st), r->pri, delay, left, ttr, agebuf,
            r->reserves, r->timeouts, r->releases, r->buries, r->kicks, r->body_size);
    size_t used = put_escaped(l->f, j->body, j->body_len, PREVIEW);
    fputs(used < j->body_len ? "\"...\n" : "\"\n", l->f);
    return 0;
}

static int
do_list(const opts *o, store_view *v)
{
    lister l = {.o = o, .now = tool_wall_now(), .tube_len = o->tube ? strlen(o->tube) : 0};
    l.f = spool_open();
    if (!o->json)
        fprintf(l.f, "%10s %-16s %-7s %10s %7s %7s %6s %7s %3s %3s %3s %3s %3s %8s %s\n", "ID",
                "TUBE", "STATE", "PRI", "DELAY", "LEFT", "TTR", "AGE", "RES", "TMO", "REL",
                "BUR", "KIK", "SIZE", "BODY");
    int rc = sv_foreach(v, o->from, o->to, 1, list_job, &l);
    if (spool_close(l.f) < 0) {
        log_warn("cannot write the listing: %s", strerror(errno));
        return 1;
    }
    if (rc == 1) {
        log_warn("%s: job %" PRIu64 " has a missing or damaged body in the store", o->dir, l.bad_id);
        return 1;
    }
    if (rc)
        return foreach_failed(o, rc, l.last_id);
    return 0;
}

static int
show_job(void *ctx, const store_job *j)
{
    lister *l = ctx;
    const bs_job_record *r = &j->rec;
    FILE *f = l->f;
    int64_t now = l->now;
    char a[32], b[64];
    l->shown++;
    if (!body_ok(l, j))
        return 1;
    if (l->o->json) {
        job_json(f, j, now);
        return 0;
    }
    if (l->o->body == B_RAW) {
        fwrite(j->body, 1, j->body_len, f);
        return 0;
    }
    int st = live_state(r, now);
    fprintf(f, "id           %" PRIu64 "\n", j->id);
    fprintf(f, "tube         %.*s\n", (int)r->tube_len, r->tube);
    fprintf(f, "state        %s", tool_state_name(st));
    if (st != r->state)
        fprintf(f, " (stored as %s; its delay ended %s ago)", tool_state_name(r->state),
                fmt_dur(a, sizeof a, now - r->deadline));
    fprintf(f, "\npriority     %" PRIu32 "\n", r->pri);
    if (r->state == BS_STORED_BURIED && r->deadline > 0)
        fprintf(f, "buried at    %s (%s ago)\n", fmt_wall(b, sizeof b, r->deadline),
                fmt_dur(a, sizeof a, now - r->deadline));
    fprintf(f, "delay        %s\n", fmt_secs(b, sizeof b, r->delay));
    if (st == BS_STORED_DELAYED)
        fprintf(f, "time-left    %" PRId64 " s (ready at %s)\n", time_left(r, now) / NS,
                fmt_wall(b, sizeof b, r->deadline));
    fprintf(f, "ttr          %s\n", fmt_secs(b, sizeof b, r->ttr));
    fprintf(f, "age          %" PRId64 " s (put %s)\n", age(r, now) / NS,
            fmt_wall(b, sizeof b, r->created_at));
    fprintf(f, "reserves     %" PRIu32 "\ntimeouts     %" PRIu32 "\nreleases     %" PRIu32
            "\nburies       %" PRIu32 "\nkicks        %" PRIu32 "\n", r->reserves, r->timeouts,
            r->releases, r->buries, r->kicks);
    fprintf(f, "body-size    %" PRIu32 "\n", r->body_size);
    if (l->o->body == B_BASE64) {
        fputs("body (base64):\n", f);
        put_base64(f, j->body, j->body_len, 1);
    } else {
        fputs("body (escaped):\n", f);
        put_escaped(f, j->body, j->body_len, SIZE_MAX);
    }
    fputc('\n', f);
    return 0;
}

static int
do_job(const opts *o, store_view *v)
{
    lister l = {.o = o, .now = tool_wall_now()};
    l.f = spool_open();
    int rc = sv_foreach(v, o->job, o->job, 1, show_job, &l);
    if (spool_close(l.f) < 0) {
        log_warn("cannot write the job: %s", strerror(errno));
        return 1;
    }
    if (rc == 1) {
        log_warn("%s: job %" PRIu64 " has a missing or damaged body in the store", o->dir, o->job);
        return 1;
    }
    if (rc)
        return foreach_failed(o, rc, o->job ? o->job - 1 : 0);
    if (!l.shown) {
        log_warn("%s: no job %" PRIu64 " in the store", o->dir, o->job);
        return 1;
    }
    return 0;
}

/* ---- --binlog: write legacy binlog files stock beanstalkd loads ---- */

/* Stock fills each tube's buried list in file order when it loads, so the
 * buried jobs are written last, in the order this server kicks them: by
 * the time they were buried (the record's deadline field), then id.  They
 * are set aside in a temporary file during the snapshot and sorted after. */
typedef struct held {
    int64_t buried_at;
    uint64_t id;
    off_t off;                  /* in the spool: binlog_job, tube, body */
} held;

typedef struct exporter {
    const opts *o;
    binlog_writer *w;
    binlog_error err;
    int64_t now;
    uint64_t n[5], total, max_id, last_id, bad_id;
    int failed;                 /* the writer refused a job */
    FILE *spool;                /* buried jobs */
    held *held;
    size_t nheld, capheld;
    int spool_err;
} exporter;

/* Writes one job; state is the one it is counted under in the report. */
static int
export_add(exporter *x, const binlog_job *b, int state)
{
    if (binlog_writer_add(x->w, b, &x->err) < 0) {
        x->failed = 1;
        return 2;
    }
    x->n[state]++;
    x->total++;
    if (b->id > x->max_id)
        x->max_id = b->id;
    return 0;
}

static int
hold_buried(exporter *x, const binlog_job *b, int64_t buried_at)
{
    if (!x->spool && !(x->spool = tmpfile()))
        return -1;
    if (x->nheld == x->capheld) {
        size_t nc = x->capheld ? x->capheld * 2 : 256;
        held *n = realloc(x->held, nc * sizeof *n);
        if (!n)
            return -1;
        x->held = n;
        x->capheld = nc;
    }
    off_t off = ftello(x->spool);
    if (off < 0 || fwrite(b, sizeof *b, 1, x->spool) != 1 ||
        fwrite(b->tube, 1, b->tube_len, x->spool) != b->tube_len ||
        fwrite(b->body, 1, b->body_len, x->spool) != b->body_len)
        return -1;
    x->held[x->nheld++] = (held){buried_at, b->id, off};
    return 0;
}

static int
export_job(void *ctx, const store_job *j)
{
    exporter *x = ctx;
    const bs_job_record *r = &j->rec;
    x->last_id = j->id;
    if ((!j->body && r->body_size) || j->body_len != r->body_size) {
        x->bad_id = j->id;
        return 1;
    }
    /* A delayed job keeps its stored deadline: if it has passed when stock
     * loads the files, stock makes it ready, as this server does. */
    binlog_job b = {
        .id = j->id,
        .tube = r->tube,
        .tube_len = r->tube_len,
        .state = r->state == BS_STORED_BURIED ? BINLOG_BURIED
               : r->state == BS_STORED_DELAYED ? BINLOG_DELAYED : BINLOG_READY,
        .pri = r->pri,
        .delay_ns = r->delay,
        .ttr_ns = r->ttr,
        .created_ns = r->created_at,
        .deadline_ns = r->state == BS_STORED_DELAYED ? r->deadline : 0,
        .reserves = r->reserves,
        .timeouts = r->timeouts,
        .releases = r->releases,
        .buries = r->buries,
        .kicks = r->kicks,
        .body = j->body,
        .body_len = j->body_len,
    };
    if (r->state != BS_STORED_BURIED)
        return export_add(x, &b, live_state(r, x->now));
    if (hold_buried(x, &b, r->deadline) < 0) {
        x->spool_err = errno ? errno : ENOMEM;
        return 3;
    }
    return 0;
}

static int
cmp_held(const void *a, const void *b)
{
    const held *x = a, *y = b;
    if (x->buried_at != y->buried_at)
        return x->buried_at < y->buried_at ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The set-aside buried jobs into the writer, in kick order. */
static int
export_buried(exporter *x)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    if (!x->nheld)
        return 0;
    qsort(x->held, x->nheld, sizeof *x->held, cmp_held);
    for (size_t i = 0; i < x->nheld && !rc; i++) {
        binlog_job b;
        if (fseeko(x->spool, x->held[i].off, SEEK_SET) < 0 || fread(&b, sizeof b, 1, x->spool) != 1) {
            rc = 3;
            break;
        }
        size_t need = b.tube_len + b.body_len + 1;
        if (need > cap) {
            unsigned char *n = realloc(buf, need);
            if (!n) {
                rc = 3;
                break;
            }
            buf = n;
            cap = need;
        }
        /* tube, NUL, body */
        if (fread(buf, 1, b.tube_len, x->spool) != b.tube_len ||
            fread(buf + b.tube_len + 1, 1, b.body_len, x->spool) != b.body_len) {
            rc = 3;
            break;
        }
        buf[b.tube_len] = '\0';
        b.tube = (const char *)buf;
        b.body = buf + b.tube_len + 1;
        rc = export_add(x, &b, BS_STORED_BURIED);
    }
    if (rc == 3)
        x->spool_err = errno ? errno : EIO;
    free(buf);
    return rc;
}

typedef struct pause_count {
    int64_t now;
    int n;
} pause_count;

static int
count_pause(void *ctx, const char *name, size_t len, int64_t pause, int64_t until)
{
    pause_count *p = ctx;
    (void)name, (void)len, (void)pause;
    if (until > p->now)
        p->n++;
    return 0;
}

static int
count_binlogs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "binlog.", 7) == 0 && e->d_name[7] &&
            strspn(e->d_name + 7, "0123456789") == strlen(e->d_name + 7))
            n++;
    closedir(d);
    return n;
}

static int
do_binlog(const opts *o, store_view *v)
{
    const char *out = o->out;
    int existed = is_dir(out);
    if (file_size(out, "data.mdb") >= 0) {
        log_warn("%s holds a store (data.mdb); write the binlog files into a new or empty "
              "directory", out);
        return 1;
    }
    binlog_write_opts wo = {.size_limit = o->max_job_size, .file_size = o->file_size};
    exporter x = {.o = o, .now = tool_wall_now()};
    if (binlog_writer_open(&x.w, out, &wo, &x.err) < 0) {
        log_warn("%s", x.err.msg);
        return 1;
    }
    int rc = sv_foreach(v, 0, UINT64_MAX, 1, export_job, &x);
    store_info info;
    if (!rc)
        rc = export_buried(&x);
    if (!rc && sv_info(v, &info) < 0)
        rc = -1;
    if (x.spool)
        fclose(x.spool);
    free(x.held);
    if (rc) {
        binlog_writer_abort(x.w);
        if (!existed)
            rmdir(out);
        if (rc == 3)
            log_warn("cannot set the buried jobs aside in a temporary file: %s; nothing was "
                  "written", strerror(x.spool_err));
        else if (rc == 1)
            log_warn("%s: job %" PRIu64 " has a missing or damaged body in the store; nothing "
                  "was written", o->dir, x.bad_id);
        else if (x.failed && x.err.code == BINLOG_ETOOBIG)
            log_warn("%s; nothing was written. Start stock beanstalkd with -z N, N at least the "
                  "largest body + 2, and pass --max-job-size N", x.err.msg);
        else if (x.failed)
            log_warn("%s; nothing was written", x.err.msg);
        else
            foreach_failed(o, rc, x.last_id);
        return 1;
    }
    uint64_t next = info.next_id > x.max_id ? info.next_id : x.max_id + 1;
    if (binlog_writer_finish(x.w, next, &x.err) < 0) {
        if (!existed)
            rmdir(out);
        log_warn("%s; nothing was written", x.err.msg);
        return 1;
    }
    int files = count_binlogs(out);
    pause_count pc = {.now = x.now};
    sv_foreach_pause(v, count_pause, &pc);
    size_t z = o->max_job_size ? o->max_job_size : BINLOG_STOCK_SIZE_LIMIT;
    if (o->json) {
        fputs("{\"binlog_dir\":", stdout);
        put_json_str(stdout, out, strlen(out));
        printf(",\"jobs\":%" PRIu64 ",\"ready\":%" PRIu64 ",\"delayed\":%" PRIu64
               ",\"buried\":%" PRIu64 ",\"next_id\":%" PRIu64 ",\"files\":%d"
               ",\"max_job_size\":%zu,\"paused_tubes_dropped\":%d}\n", x.total,
               x.n[BS_STORED_READY], x.n[BS_STORED_DELAYED], x.n[BS_STORED_BURIED], next, files,
               z, pc.n);
    } else {
        printf("wrote %" PRIu64 " jobs (ready %" PRIu64 ", delayed %" PRIu64 ", buried %" PRIu64
               ") to %s as %d binlog file%s; stock beanstalkd continues at id %" PRIu64 "\n",
               x.total, x.n[BS_STORED_READY], x.n[BS_STORED_DELAYED], x.n[BS_STORED_BURIED], out,
               files, files == 1 ? "" : "s", next);
        printf("start stock beanstalkd 1.12 on it with: beanstalkd -b %s", out);
        if (z != BINLOG_STOCK_SIZE_LIMIT)
            printf(" -z %zu", z);
        printf("\n(it deletes and adds binlog files there as it runs; keep a copy if you "
               "need one)\n");
    }
    if (pc.n)
        fprintf(stderr, "%s: note: %d paused tube%s: stock beanstalkd does not keep pauses "
                "across a restart, so they are not exported\n", prog, pc.n, pc.n == 1 ? "" : "s");
    return 0;
}

/* ---- --backup ---- */

/* Copies DIR/journal (changes a -f server has not committed yet) to
 * dest/journal; the server applies it when started on the copy.  0 when
 * there is nothing to copy. */
static int
copy_journal(const char *dir, const char *dest)
{
    char from[4096], to[4096], buf[65536];
    snprintf(from, sizeof from, "%s/journal", dir);
    snprintf(to, sizeof to, "%s/journal", dest);
    FILE *in = fopen(from, "rb");
    if (!in)
        return errno == ENOENT ? 0 : -1;
    FILE *out = fopen(to, "wbx");
    if (!out) {
        fclose(in);
        return -1;
    }
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (ferror(in) || fflush(out) || fsync(fileno(out)))
        rc = -1;
    fclose(in);
    if (fclose(out))
        rc = -1;
    return rc;
}

static void
remove_backup(const char *dest, int existed)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    unlink(path);
    snprintf(path, sizeof path, "%s/journal", dest);
    unlink(path);
    if (!existed)
        rmdir(dest);
}

static int
do_backup(const opts *o, store_view *v)
{
    const char *dest = o->out;
    char err[1024];
    struct stat st;
    int existed = stat(dest, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) {
        log_warn("%s exists and is not a directory", dest);
        return 1;
    }
    int n = dir_entries(dest);
    if (n < 0) {
        log_warn("%s: %s", dest, strerror(errno));
        return 1;
    }
    if (n > 0) {
        log_warn("%s is not an empty directory; back up into a new or empty one", dest);
        return 1;
    }
    if (!existed && mkdir(dest, 0700) < 0) {
        log_warn("cannot create %s: %s", dest, strerror(errno));
        return 1;
    }
    /* The journal first, then the snapshot: what the journal holds either
     * is in the snapshot too (its records are then skipped at start-up) or
     * is not yet committed, and then the journal brings it back. */
    if (copy_journal(o->dir, dest) < 0) {
        log_warn("cannot copy %s/journal to %s: %s", o->dir, dest, strerror(errno));
        remove_backup(dest, existed);
        return 1;
    }
    if (sv_backup(v, dest, err, sizeof err) < 0) {
        log_warn("%s", err);
        remove_backup(dest, existed);
        return 1;
    }
    store_view *b = sv_open(dest, SV_READ, err, sizeof err);
    store_info info;
    if (!b || sv_info(b, &info) < 0) {
        log_warn("the backup in %s cannot be read back: %s", dest, b ? "sv_info failed" : err);
        sv_close(b);
        remove_backup(dest, existed);
        return 1;
    }
    sv_close(b);
    off_t journal = file_size(dest, "journal");
    char a[32];
    if (o->json) {
        fputs("{\"backup_dir\":", stdout);
        put_json_str(stdout, dest, strlen(dest));
        printf(",\"jobs\":%" PRIu64 ",\"next_id\":%" PRIu64 ",\"file_bytes\":%zu"
               ",\"journal_bytes\":%lld}\n", info.jobs, info.next_id, info.file_bytes,
               (long long)(journal > 0 ? journal : 0));
        return 0;
    }
    printf("backed up %s to %s: %" PRIu64 " jobs, next id %" PRIu64 ", data.mdb %s%s\n", o->dir,
           dest, info.jobs, info.next_id, tool_fmt_size(a, sizeof a, info.file_bytes),
           journal > 0 ? ", plus the server's uncommitted journal" : "");
    printf("To restore it, stop the server, then either\n"
           "  start it on the backup:   beanstalkd -b %s ...\n"
           "or put the backup in place of the store and start as before:\n"
           "  rm -f %s/data.mdb %s/lock.mdb %s/journal && cp -p %s/* %s/\n"
           "(if the server runs as another user, then: chown -R USER %s)\n",
           dest, o->dir, o->dir, o->dir, dest, o->dir, o->dir);
    return 0;
}

/* ---- options ---- */

static void
usage(FILE *f)
{
    fprintf(f,
"usage: bsdump DIR [--format text|json]                  summary of the store\n"
"       bsdump DIR --list [--tube NAME] [--state ready|delayed|buried] [--ids A-B]\n"
"       bsdump DIR --job ID [--body escaped|base64|raw]\n"
"       bsdump DIR --binlog OUTDIR [--max-job-size N] [--file-size N]\n"
"       bsdump DIR --backup DEST\n"
"Reads a beanstalkd store (-b DIR) without locking it; safe while the server runs.\n"
"  -l, --list           one line per job (id, tube, state, priority, delay, time\n"
"                       left, TTR, age, counters, size, body preview)\n"
"  -t, --tube NAME      --list: only jobs of tube NAME\n"
"  -s, --state STATE    --list: only ready, delayed or buried jobs\n"
"  -i, --ids A-B        --list: only ids A to B (also A, A- and -B)\n"
"  -j, --job ID         one job in full\n"
"  -b, --body FMT       --job: body as escaped text (default), base64, or raw\n"
"                       bytes (raw prints the body alone, nothing else)\n"
"  -f, --format FMT     text (default) or json: one JSON object per line,\n"
"                       bodies in base64\n"
"      --binlog OUTDIR  write the jobs as binlog files stock beanstalkd 1.12\n"
"                       loads with -b OUTDIR\n"
"  -z, --max-job-size N --binlog: the -z of the stock server that will load\n"
"                       the files (default 65535); a bigger job is refused\n"
"      --file-size N    --binlog: start a new binlog file at N bytes (stock -s,\n"
"                       default 10485760)\n"
"      --backup DEST    consistent compacted copy of the store into an empty DEST\n"
"  -h, --help           this text\n"
"Exit status: 0 ok, 1 error, 2 bad usage.\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* A-B, A, A- or -B. */
static int
parse_ids(const char *s, uint64_t *from, uint64_t *to)
{
    const char *dash = strchr(s, '-');
    char a[32];
    if (!dash)
        return parse_u64(s, from) < 0 ? -1 : (*to = *from, 0);
    size_t n = (size_t)(dash - s);
    if (n >= sizeof a)
        return -1;
    memcpy(a, s, n);
    a[n] = '\0';
    *from = 0;
    *to = UINT64_MAX;
    if (n && parse_u64(a, from) < 0)
        return -1;
    if (dash[1] && parse_u64(dash + 1, to) < 0)
        return -1;
    if (!n && !dash[1])
        return -1;
    return *from <= *to ? 0 : -1;
}

enum { O_BINLOG = 256, O_BACKUP, O_FILE_SIZE };

static int
parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"list", no_argument, NULL, 'l'},
        {"tube", required_argument, NULL, 't'},
        {"state", required_argument, NULL, 's'},
        {"ids", required_argument, NULL, 'i'},
        {"job", required_argument, NULL, 'j'},
        {"body", required_argument, NULL, 'b'},
        {"format", required_argument, NULL, 'f'},
        {"binlog", required_argument, NULL, O_BINLOG},
        {"max-job-size", required_argument, NULL, 'z'},
        {"file-size", required_argument, NULL, O_FILE_SIZE},
        {"backup", required_argument, NULL, O_BACKUP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, modes = 0, binlog_opts = 0;
    uint64_t n;
    o->from = 0;
    o->to = UINT64_MAX;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":lt:s:i:j:b:f:z:h", lo, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->mode = M_LIST;
            modes++;
            break;
        case 't':
            if (!*optarg || strlen(optarg) > BS_TUBE_NAME_MAX)
                return tool_bad_usage("bad tube name '%s'", optarg);
            o->tube = optarg;
            o->filtered = 1;
            break;
        case 's':
            if (!strcmp(optarg, "ready"))
                o->state = BS_STORED_READY;
            else if (!strcmp(optarg, "delayed"))
                o->state = BS_STORED_DELAYED;
            else if (!strcmp(optarg, "buried"))
                o->state = BS_STORED_BURIED;
            else
                return tool_bad_usage("bad state '%s' (ready, delayed or buried)", optarg);
            o->filtered = 1;
            break;
        case 'i':
            if (parse_ids(optarg, &o->from, &o->to) < 0)
                return tool_bad_usage("bad id range '%s' (A-B, A, A- or -B)", optarg);
            o->filtered = 1;
            break;
        case 'j':
            if (parse_u64(optarg, &o->job) < 0 || !o->job)
                return tool_bad_usage("bad job id '%s'", optarg);
            o->mode = M_JOB;
            modes++;
            break;
        case 'b':
            if (!strcmp(optarg, "escaped"))
                o->body = B_ESCAPED;
            else if (!strcmp(optarg, "base64"))
                o->body = B_BASE64;
            else if (!strcmp(optarg, "raw"))
                o->body = B_RAW;
            else
                return tool_bad_usage("bad body format '%s' (escaped, base64 or raw)", optarg);
            o->body_given = 1;
            break;
        case 'f':
            if (!strcmp(optarg, "json"))
                o->json = 1;
            else if (!strcmp(optarg, "text"))
                o->json = 0;
            else
                return tool_bad_usage("bad format '%s' (text or json)", optarg);
            break;
        case O_BINLOG:
            o->mode = M_BINLOG;
            o->out = optarg;
            modes++;
            break;
        case 'z':
            if (parse_u64(optarg, &n) < 0 || n < 2 || n > BINLOG_STOCK_SIZE_LIMIT_MAX)
                return tool_bad_usage("bad --max-job-size '%s' (2 to 1073741824, as stock's -z)",
                                 optarg);
            o->max_job_size = (size_t)n;
            binlog_opts = 1;
            break;
        case O_FILE_SIZE:
            if (parse_u64(optarg, &n) < 0 || n < 1024 || n > INT64_MAX)
                return tool_bad_usage("bad --file-size '%s' (at least 1024 bytes)", optarg);
            o->file_size = (int64_t)n;
            binlog_opts = 1;
            break;
        case O_BACKUP:
            o->mode = M_BACKUP;
            o->out = optarg;
            modes++;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            return tool_bad_usage("option %s needs an argument", argv[optind - 1]);
        default:
            return tool_bad_usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return tool_bad_usage("%s", "no store directory given");
    if (optind + 1 < argc)
        return tool_bad_usage("unexpected argument '%s' (one store directory only)", argv[optind + 1]);
    o->dir = argv[optind];
    if (modes > 1)
        return tool_bad_usage("%s", "--list, --job, --binlog and --backup exclude each other");
    if (o->filtered && o->mode != M_LIST)
        return tool_bad_usage("%s", "--tube, --state and --ids go with --list");
    if (o->body_given && o->mode != M_JOB)
        return tool_bad_usage("%s", "--body goes with --job");
    if (o->body == B_RAW && o->json)
        return tool_bad_usage("%s", "--body raw cannot go into JSON (bodies there are base64)");
    if (binlog_opts && o->mode != M_BINLOG)
        return tool_bad_usage("%s", "--max-job-size and --file-size go with --binlog");
    if (o->out && !*o->out)
        return tool_bad_usage("%s", "empty destination directory");
    return 0;
}

int
main(int argc, char **argv)
{
    progname = prog;           /* log_warn() names the tool */
    opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    store_view *v = open_store(o.dir);
    if (!v)
        return 1;
    switch (o.mode) {
    case M_SUMMARY: rc = do_summary(&o, v); break;
    case M_LIST: rc = do_list(&o, v); break;
    case M_JOB: rc = do_job(&o, v); break;
    case M_BINLOG: rc = do_binlog(&o, v); break;
    case M_BACKUP: rc = do_backup(&o, v); break;
    }
    sv_close(v);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_warn("cannot write the output: %s", strerror(errno));
        return 1;
    }
    return rc;
}
