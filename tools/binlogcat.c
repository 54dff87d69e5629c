/* binlogcat: print the jobs of a legacy beanstalkd binlog directory as JSON
 * lines, or write such lines back as a binlog directory.
 *
 *   binlogcat [options] DIR
 *       One JSON object per job, in id order, then a summary object
 *       ({"summary":true, "next_id":..., "warnings":[...], ...}).
 *       -z LIMIT      stock's -z for the replay (default 1073741824)
 *       --now NS      wall clock of the load, ns since the epoch (default now)
 *       --lenient     skip files with an unknown version, as stock does
 *       --no-lock     do not lock DIR/lock
 *       --no-body     leave out the bodies
 *
 *   binlogcat --write [options] OUTDIR < jobs.jsonl
 *       Reads job objects in the format printed above (a summary line gives
 *       next_id) and writes a version 7 binlog directory for stock 1.12.
 *       -z LIMIT      the target server's -z (default 65535)
 *       -s SIZE       binlog file size (default 10485760)
 *       --next-id N   id the target should give next (default: summary
 *                     line, else max id + 1)
 *       --now NS      for jobs given with time_left instead of deadline_ns
 *
 * JSON strings: bytes below 0x20, '"', '\\' and bytes from 0x7f are written
 * as \u00XX, and --write reads \u0000-\u00ff back as single bytes, so tube
 * names of any bytes survive a round trip (other code points become UTF-8).
 *
 * Exit status: 0 success (warnings included), 1 error, 2 usage. */
#include "binlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog = "binlogcat";

static void
usage(void)
{
    fprintf(stderr,
            "usage: %s [-z LIMIT] [--now NS] [--lenient] [--no-lock]"
            " [--no-body] DIR\n"
            "       %s --write [-z LIMIT] [-s SIZE] [--next-id N] [--now NS]"
            " OUTDIR < jobs.jsonl\n", prog, prog);
    exit(2);
}

static int64_t
wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

/* ---- output ---- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
put_b64(FILE *out, const unsigned char *p, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        q[0] = b64[v >> 18 & 63];
        q[1] = b64[v >> 12 & 63];
        q[2] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        fwrite(q, 1, 4, out);
    }
}

static void
put_str(FILE *out, const char *s, size_t n)
{
    putc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            fprintf(out, "\\u%04x", c);
        else
            putc(c, out);
    }
    putc('"', out);
}

static const char *
state_name(int s)
{
    switch (s) {
    case BINLOG_INVALID: return "deleted";
    case BINLOG_READY: return "ready";
    case BINLOG_RESERVED: return "reserved";
    case BINLOG_BURIED: return "buried";
    case BINLOG_DELAYED: return "delayed";
    }
    return "invalid";
}

typedef struct cat_ctx {
    FILE *out;
    int64_t now;
    int bodies;
    size_t bad_crlf;
} cat_ctx;

/* Seconds as stock's stats-job prints them: int64 ns / 1e9, truncated. */
#define SEC(ns) ((int64_t)(ns) / 1000000000)

static int
print_job(const binlog_job *j, void *vctx)
{
    cat_ctx *c = vctx;
    FILE *o = c->out;
    fprintf(o, "{\"id\":%" PRIu64 ",\"tube\":", j->id);
    put_str(o, j->tube, j->tube_len);
    fprintf(o, ",\"state\":\"%s\",\"pri\":%" PRIu32 ",\"ttr\":%" PRId64
            ",\"delay\":%" PRId64 ",\"time_left\":%" PRId64 ",\"age\":%"
            PRId64, state_name(j->state), j->pri, SEC(j->ttr_ns),
            SEC(j->delay_ns),
            j->state == BINLOG_DELAYED ? SEC(j->deadline_ns - c->now) : 0,
            SEC(c->now - j->created_ns));
    fprintf(o, ",\"reserves\":%" PRIu32 ",\"timeouts\":%" PRIu32
            ",\"releases\":%" PRIu32 ",\"buries\":%" PRIu32 ",\"kicks\":%"
            PRIu32, j->reserves, j->timeouts, j->releases, j->buries,
            j->kicks);
    fprintf(o, ",\"ttr_ns\":%" PRId64 ",\"delay_ns\":%" PRId64
            ",\"created_ns\":%" PRId64 ",\"deadline_ns\":%" PRId64,
            j->ttr_ns, j->delay_ns, j->created_ns, j->deadline_ns);
    fprintf(o, ",\"stored_state\":\"%s\",\"file\":%d,\"format\":%d,"
            "\"order\":%" PRIu64 ",\"body_crlf\":%s,\"body_len\":%zu",
            state_name(j->stored_state), j->file, j->format, j->order,
            j->body_crlf ? "true" : "false", j->body_len);
    if (c->bodies) {
        fputs(",\"body\":\"", o);
        put_b64(o, j->body, j->body_len);
        putc('"', o);
    }
    fputs("}\n", o);
    if (!j->body_crlf)
        c->bad_crlf++;
    return ferror(o) ? -1 : 0;
}

static int
cat(int argc, char **argv)
{
    binlog_read_opts o = {0};
    int bodies = 1;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strcmp(a, "-z") && i + 1 < argc) {
            if (parse_u64(argv[++i], &v) || v == 0 || v > SIZE_MAX)
                usage();
            o.size_limit = (size_t)v;
        } else if (!strcmp(a, "--now") && i + 1 < argc) {
            if (parse_u64(argv[++i], &v) || v > INT64_MAX)
                usage();
            o.now_ns = (int64_t)v;
        } else if (!strcmp(a, "--lenient")) {
            o.flags |= BINLOG_SKIP_BAD_VERSION;
        } else if (!strcmp(a, "--no-lock")) {
            o.flags |= BINLOG_NO_LOCK;
        } else if (!strcmp(a, "--no-body")) {
            bodies = 0;
        } else if (a[0] == '-' || dir) {
            usage();
        } else {
            dir = a;
        }
    }
    if (!dir)
        usage();
    if (!o.now_ns)
        o.now_ns = wall_ns();

    binlog_reader *r;
    binlog_error err;
    if (binlog_open(&r, dir, &o, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    cat_ctx c = {stdout, o.now_ns, bodies, 0};
    int rc = binlog_foreach(r, print_job, &c, &err);
    if (rc) {
        if (rc == -1 && ferror(stdout))
            fprintf(stderr, "%s: write error\n", prog);
        else
            fprintf(stderr, "%s: %s\n", prog, err.msg);
        binlog_close(r);
        return 1;
    }

    FILE *out = stdout;
    fprintf(out, "{\"summary\":true,\"dir\":");
    put_str(out, dir, strlen(dir));
    fprintf(out, ",\"jobs\":%zu,\"next_id\":%" PRIu64 ",\"safe_next_id\":%"
            PRIu64 ",\"stock_errors\":%s,\"now_ns\":%" PRId64
            ",\"bodies_without_crlf\":%zu,\"files\":[",
            binlog_job_count(r), binlog_stock_next_id(r),
            binlog_safe_next_id(r), binlog_stock_errors(r) ? "true" : "false",
            o.now_ns, c.bad_crlf);
    for (size_t i = 0; i < binlog_file_count(r); i++) {
        const binlog_file_info *f = binlog_get_file(r, i);
        fprintf(out, "%s{\"n\":%d,\"version\":%d,\"size\":%" PRId64
                ",\"read\":%s}", i ? "," : "", f->n, f->version, f->size,
                f->read ? "true" : "false");
    }
    fputs("],\"warnings\":[", out);
    for (size_t i = 0; i < binlog_warning_count(r); i++) {
        const binlog_warning *w = binlog_get_warning(r, i);
        fprintf(out, "%s{\"stock\":%s,\"lost\":%s,\"file\":%d,\"offset\":%"
                PRId64 ",\"message\":", i ? "," : "",
                w->stock ? "true" : "false", w->lost ? "true" : "false",
                w->file, w->offset);
        put_str(out, w->msg, strlen(w->msg));
        putc('}', out);
        fprintf(stderr, "%s: warning: %s\n", prog, w->msg);
    }
    fputs("]}\n", out);
    binlog_close(r);
    if (fflush(out) || ferror(out)) {
        fprintf(stderr, "%s: write error\n", prog);
        return 1;
    }
    return 0;
}

/* ---- input: one flat JSON object per line ---- */

typedef struct field {
    char key[32];
    int type;               /* 's' string, 'n' number, 'b' bool, 'z' null,
                             * 'o' nested (skipped) */
    char *val;              /* decoded string / number text (malloc) */
    size_t len;
} field;

typedef struct obj {
    field f[64];
    int n;
} obj;

static void
obj_free(obj *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->f[i].val);
    o->n = 0;
}

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int
hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        *v = *v << 4 | (unsigned)h;
    }
    return 0;
}

/* Parse a string at p (at the opening quote).  If out is non-NULL, the
 * decoded bytes go to a malloc'd buffer.  Returns the position after the
 * closing quote, or NULL. */
static const char *
parse_string(const char *p, char **out, size_t *outlen)
{
    if (*p != '"')
        return NULL;
    p++;
    size_t cap = 16, n = 0;
    char *s = out ? malloc(cap) : NULL;
    if (out && !s)
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        char tmp[4];
        size_t tn = 1;
        if (c == '\0' || c < 0x20)
            goto bad;
        if (c == '"')
            break;
        if (c == '\\') {
            p++;
            switch (*p) {
            case '"': tmp[0] = '"'; break;
            case '\\': tmp[0] = '\\'; break;
            case '/': tmp[0] = '/'; break;
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                unsigned u;
                if (hex4(p + 1, &u))
                    goto bad;
                p += 4;
                if (u >= 0xd800 && u < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
                    unsigned lo;
                    if (hex4(p + 3, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        goto bad;
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
                if (u <= 0xff) {
                    tmp[0] = (char)u;   /* a raw byte, see the top comment */
                } else if (u < 0x800) {
                    tmp[0] = (char)(0xc0 | u >> 6);
                    tmp[1] = (char)(0x80 | (u & 0x3f));
                    tn = 2;
                } else if (u < 0x10000) {
                    tmp[0] = (char)(0xe0 | u >> 12);
                    tmp[1] = (char)(0x80 | (u >> 6 & 0x3f));
                    tmp[2] = (char)(0x80 | (u & 0x3f));
                    tn = 3;
                } else {
                    tmp[0] = (char)(0xf0 | u >> 18);
                    tmp[1] = (char)(0x80 | (u >> 12 & 0x3f));
                    tmp[2] = (char)(0x80 | (u >> 6 & 0x3f));
                    tmp[3] = (char)(0x80 | (u & 0x3f));
                    tn = 4;
                }
                break;
            }
            default:
                goto bad;
            }
        } else {
            tmp[0] = (char)c;
        }
        p++;
        if (out) {
            if (n + tn + 1 > cap) {
                while (n + tn + 1 > cap)
                    cap *= 2;
                char *q = realloc(s, cap);
                if (!q)
                    goto bad;
                s = q;
            }
            memcpy(s + n, tmp, tn);
            n += tn;
        }
    }
    if (out) {
        s[n] = '\0';
        *out = s;
        *outlen = n;
    }
    return p + 1;
bad:
    free(s);
    return NULL;
}

/* Skip any JSON value; returns the position after it or NULL. */
static const char *
skip_value(const char *p, int depth)
{
    p = skip_ws(p);
    if (depth > 64)
        return NULL;
    if (*p == '"')
        return parse_string(p, NULL, NULL);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = parse_string(skip_ws(p), NULL, NULL);
                if (!p)
                    return NULL;
                p = skip_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            p = skip_value(p, depth + 1);
            if (!p)
                return NULL;
            p = skip_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == close)
                return p + 1;
            return NULL;
        }
    }
    const char *q = p;
    while (*q && strchr("+-0123456789.eEtrufalsn", *q))
        q++;
    return q > p ? q : NULL;
}

static int
parse_fields(const char *p, obj *o)
{
    p = skip_ws(p);
    if (*p++ != '{')
        return -1;
    p = skip_ws(p);
    if (*p == '}')
        return *skip_ws(p + 1) ? -1 : 0;
    for (;;) {
        char *key;
        size_t klen;
        p = parse_string(skip_ws(p), &key, &klen);
        if (!p)
            return -1;
        p = skip_ws(p);
        if (*p++ != ':' || o->n >= 64) {
            free(key);
            return -1;
        }
        field *f = &o->f[o->n];
        snprintf(f->key, sizeof f->key, "%s", key);
        free(key);
        f->val = NULL;
        f->len = 0;
        p = skip_ws(p);
        if (*p == '"') {
            f->type = 's';
            p = parse_string(p, &f->val, &f->len);
        } else {
            const char *start = p;
            p = skip_value(p, 0);
            if (!p)
                return -1;
            f->type = *start == '{' || *start == '[' ? 'o' :
                      *start == 't' || *start == 'f' ? 'b' :
                      *start == 'n' ? 'z' : 'n';
            f->len = (size_t)(p - start);
            f->val = strndup(start, f->len);
            if (!f->val)
                return -1;
        }
        if (!p)
            return -1;
        o->n++;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}')
            return *skip_ws(p + 1) ? -1 : 0;
        return -1;
    }
}

/* Parse one line into o; on failure nothing stays allocated. */
static int
parse_object(const char *p, obj *o)
{
    o->n = 0;
    if (parse_fields(p, o) == 0)
        return 0;
    obj_free(o);
    return -1;
}

static const field *
get(const obj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->f[i].key, key))
            return &o->f[i];
    return NULL;
}

static int
get_i64(const obj *o, const char *key, int64_t *v)
{
    const field *f = get(o, key);
    if (!f || f->type != 'n')
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(f->val, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 1;
}

static int
get_u64(const obj *o, const char *key, uint64_t *v)
{
    const field *f = get(o, key);
    if (!f || f->type != 'n')
        return 0;
    return parse_u64(f->val, v) ? -1 : 1;
}

static int
get_u32(const obj *o, const char *key, uint32_t *v)
{
    uint64_t x = 0;
    int k = get_u64(o, key, &x);
    if (k == 1 && x > UINT32_MAX)
        return -1;
    if (k == 1)
        *v = (uint32_t)x;
    return k;
}

static int
b64_decode(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *q;
        if (s[i] == '=')
            break;
        if (!(q = strchr(b64, s[i])) || !s[i])
            return -1;
        acc = acc << 6 | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = k;
    return 0;
}

static int
state_from(const char *s, int *st)
{
    static const struct { const char *n; int s; } t[] = {
        {"ready", BINLOG_READY}, {"reserved", BINLOG_RESERVED},
        {"buried", BINLOG_BURIED}, {"delayed", BINLOG_DELAYED},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) {
            *st = t[i].s;
            return 0;
        }
    return -1;
}

static int
sec_to_ns(int64_t s, int64_t *ns)
{
    if (s > INT64_MAX / 1000000000 || s < INT64_MIN / 1000000000)
        return -1;
    *ns = s * 1000000000;
    return 0;
}

/* Fill a job from a line; body goes to *body (malloc'd). */
static int
job_from(const obj *o, binlog_job *j, unsigned char **body, int64_t now,
         const char **why)
{
    memset(j, 0, sizeof *j);
    const field *f;
    *why = "bad or missing \"id\"";
    if (get_u64(o, "id", &j->id) != 1)
        return -1;
    *why = "bad or missing \"tube\"";
    if (!(f = get(o, "tube")) || f->type != 's')
        return -1;
    j->tube = f->val;
    j->tube_len = f->len;
    *why = "bad \"state\"";
    j->state = BINLOG_READY;
    if ((f = get(o, "state")) && (f->type != 's' || state_from(f->val, &j->state)))
        return -1;
    *why = "bad number";
    int64_t s;
    int k;
    if ((k = get_u32(o, "pri", &j->pri)) < 0)
        return -1;
    if (!k && get_u32(o, "priority", &j->pri) < 0)
        return -1;
    if ((k = get_i64(o, "ttr_ns", &j->ttr_ns)) < 0)
        return -1;
    if (!k) {
        s = 1;
        if (get_i64(o, "ttr", &s) < 0 || sec_to_ns(s, &j->ttr_ns))
            return -1;
    }
    if ((k = get_i64(o, "delay_ns", &j->delay_ns)) < 0)
        return -1;
    if (!k) {
        s = 0;
        if (get_i64(o, "delay", &s) < 0 || sec_to_ns(s, &j->delay_ns))
            return -1;
    }
    if ((k = get_i64(o, "created_ns", &j->created_ns)) < 0)
        return -1;
    if (!k)
        j->created_ns = now;
    if ((k = get_i64(o, "deadline_ns", &j->deadline_ns)) < 0)
        return -1;
    if (!k && j->state == BINLOG_DELAYED) {
        int64_t left = j->delay_ns;
        s = 0;
        if ((k = get_i64(o, "time_left", &s)) < 0 ||
            (k && sec_to_ns(s, &left)) || left > INT64_MAX - now)
            return -1;
        j->deadline_ns = now + left;
    }
    if (get_u32(o, "reserves", &j->reserves) < 0 ||
        get_u32(o, "timeouts", &j->timeouts) < 0 ||
        get_u32(o, "releases", &j->releases) < 0 ||
        get_u32(o, "buries", &j->buries) < 0 ||
        get_u32(o, "kicks", &j->kicks) < 0)
        return -1;
    *why = "bad \"body\" (base64)";
    *body = NULL;
    if (!(f = get(o, "body")))
        f = get(o, "body_b64");
    if (f) {
        if (f->type != 's')
            return -1;
        *body = malloc(f->len / 4 * 3 + 3);
        if (!*body || b64_decode(f->val, f->len, *body, &j->body_len))
            return -1;
        j->body = *body;
    }
    return 0;
}

static int
write_dir(int argc, char **argv)
{
    binlog_write_opts o = {0};
    uint64_t next_id = 0;
    int have_next = 0;
    int64_t now = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strcmp(a, "--write")) {
            continue;
        } else if (!strcmp(a, "-z") && i + 1 < argc) {
            if (parse_u64(argv[++i], &v) || v == 0 || v > SIZE_MAX)
                usage();
            o.size_limit = (size_t)v;
        } else if (!strcmp(a, "-s") && i + 1 < argc) {
            if (parse_u64(argv[++i], &v) || v == 0 || v > INT64_MAX)
                usage();
            o.file_size = (int64_t)v;
        } else if (!strcmp(a, "--next-id") && i + 1 < argc) {
            if (parse_u64(argv[++i], &next_id))
                usage();
            have_next = 1;
        } else if (!strcmp(a, "--now") && i + 1 < argc) {
            if (parse_u64(argv[++i], &v) || v > INT64_MAX)
                usage();
            now = (int64_t)v;
        } else if (a[0] == '-' || dir) {
            usage();
        } else {
            dir = a;
        }
    }
    if (!dir)
        usage();
    if (!now)
        now = wall_ns();

    binlog_writer *w;
    binlog_error err;
    if (binlog_writer_open(&w, dir, &o, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    size_t count = 0;
    obj *ob = calloc(1, sizeof *ob);
    int rc = ob ? 0 : 1;
    if (!ob)
        fprintf(stderr, "%s: out of memory\n", prog);
    while (!rc && (n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        if (*skip_ws(line) == '\0')
            continue;
        if (parse_object(line, ob)) {
            fprintf(stderr, "%s: stdin:%ld: not a flat JSON object\n", prog,
                    lineno);
            rc = 1;
            break;
        }
        const field *sf = get(ob, "summary");
        if (sf) {
            uint64_t v;
            if (!have_next && get_u64(ob, "next_id", &v) == 1) {
                next_id = v;
                have_next = 1;
            }
            obj_free(ob);
            continue;
        }
        binlog_job j;
        unsigned char *body = NULL;
        const char *why;
        if (job_from(ob, &j, &body, now, &why)) {
            fprintf(stderr, "%s: stdin:%ld: %s\n", prog, lineno, why);
            rc = 1;
        } else if (binlog_writer_add(w, &j, &err)) {
            fprintf(stderr, "%s: stdin:%ld: %s\n", prog, lineno, err.msg);
            rc = 1;
        } else {
            count++;
        }
        free(body);
        obj_free(ob);
    }
    free(line);
    free(ob);
    if (!rc && ferror(stdin)) {
        fprintf(stderr, "%s: reading stdin: %s\n", prog, strerror(errno));
        rc = 1;
    }
    if (rc) {
        binlog_writer_abort(w);
        return 1;
    }
    if (binlog_writer_finish(w, next_id, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    fprintf(stderr, "%s: wrote %zu jobs to %s\n", prog, count, dir);
    return 0;
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--write"))
            return write_dir(argc, argv);
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            usage();
    }
    return cat(argc, argv);
}
