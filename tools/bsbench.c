/*
 * bsbench - load generator for beanstalkd-compatible work-queue servers.
 *
 * One thread, one epoll loop driving every connection.  Every reply is
 * checked as it arrives; anything unexpected is printed and the program
 * exits with status 1.  A run prints one machine-readable line on stdout
 * (key=value pairs) and one human-readable line on stderr.
 *
 * Build:
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE tools/bsbench*.c \
 *      -o bsbench -lpthread
 *
 * See usage() below and docs/benchmarks.md for the workloads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Constants                                                            */

/* Tubes are named after the process so that runs sharing a server never
 * see each other's jobs: "bsb-PID" for the single-tube workloads and
 * "bsb-PID.0" .. "bsb-PID.(T-1)" for the others. */
#define TUBE_MAIN UINT32_MAX     /* tube index meaning "bsb-PID"        */
#define TUBE_DEFAULT (UINT32_MAX - 1)

#define PUT_PRI 1024
#define PUT_TTR 120
#define SCALE_DELAY 86400        /* delayed jobs of `scale` never ripen */

#define PREFILL_WINDOW 256       /* puts in flight while pre-filling    */
#define MAX_UNCONFIRMED 64       /* connections opened but not answered */
#define MAX_LINE 1024            /* longest reply line we accept        */
#define MAX_EVENTS 256

/* Body layout (when the body is at least BODY_STAMPED bytes):
 *   "bsb:" 16 hex digits of CLOCK_MONOTONIC ns ":" then 'x' padding.
 * Shorter bodies are all 'x'.                                            */
#define BODY_MAGIC "bsb:"
#define BODY_STAMPED 21
#define STAMP_OFF 4

/* ------------------------------------------------------------------ */
/* Latency histogram: log-linear buckets over nanoseconds, 128 linear  */
/* sub-buckets per power of two (relative error below 1%).              */

#define HSUB 128u
#define HBUCKETS (2 * HSUB + 56 * HSUB)

struct hist {
    uint64_t b[HBUCKETS];
    uint64_t n;
    uint64_t max;
};

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HSUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 7u;
    return 2 * HSUB + (shift - 1) * HSUB + (unsigned)((v >> shift) - HSUB);
}

static uint64_t hist_value(unsigned i)
{
    if (i < 2 * HSUB)
        return i;
    unsigned k = i - 2 * HSUB;
    unsigned shift = k / HSUB + 1;
    uint64_t top = k % HSUB + HSUB;
    return (top << shift) + ((UINT64_C(1) << shift) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const struct hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t cum = 0;
    for (unsigned i = 0; i < HBUCKETS; i++) {
        cum += h->b[i];
        if (cum >= rank) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------------ */
/* Types                                                                */

enum workload { W_PUT, W_RESERVE, W_PIPELINE, W_PPUT, W_CONNS, W_TUBES, W_SCALE };

static const char *const workload_names[] = {
    "put", "reserve", "pipeline", "pipelined-put", "connections", "tubes", "scale",
};

enum role { R_PRODUCER, R_CONSUMER, R_ROUNDS, R_WATCHER, R_IDLE };

static const char *const role_names[] = {
    "producer", "consumer", "rounds", "watcher", "idle",
};

enum cstate { S_NEW, S_CONNECTING, S_SETUP, S_READY, S_RUN };

enum xkind { X_INSERTED, X_USING, X_WATCHING, X_DELETED, X_RESERVED };

static const char *const xkind_names[] = {
    "INSERTED <id>", "USING <tube>", "WATCHING <n>", "DELETED", "RESERVED <id> <bytes>",
};

/* what a reply belongs to */
enum xphase { P_SETUP, P_PREFILL, P_RUN, P_NEVER };

struct pend {
    uint8_t kind;
    uint8_t phase;
    uint32_t arg;     /* tube index for USING, count for WATCHING      */
    uint64_t t0;      /* when the command was queued                    */
};

struct conn {
    int fd;
    int id;
    uint8_t role;
    uint8_t state;
    bool confirmed;   /* received at least one reply                    */
    bool dirty;       /* on the dirty list                              */
    bool want_out;    /* EPOLLOUT registered                            */
    bool parked;      /* producer waiting for backlog/rate permission   */
    bool sync;        /* consumer: reserve, wait, delete, wait          */

    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_off, out_len, out_cap;

    struct pend *pq;
    uint32_t pq_head, pq_cnt, pq_cap;

    uint32_t tube;        /* tube of the watcher / current used tube      */
    uint32_t nwatch;      /* watch-list size the server should report     */
    uint32_t inflight;    /* producer: puts awaiting INSERTED             */
    uint32_t window;      /* producer: max puts in flight                 */
    uint32_t rr;          /* producer: next tube (tubes workload)         */
    uint64_t prefill;     /* puts still to send during setup              */
    uint32_t prefill_delay;
    uint64_t rounds;      /* rounds role: rounds still to do              */
    uint64_t round_t0;
    struct conn *next_dirty;
};

struct cfg {
    const char *host;
    const char *port;
    const char *upath;
    enum workload w;
    uint64_t n;          /* 0: not given */
    double t;            /* 0: not given */
    int c;
    size_t s;
    uint32_t T;
    uint32_t P;
    int I;
    uint32_t D;
    uint64_t B;          /* backlog cap, 0 = default, UINT64_MAX none */
    double R;            /* total put rate, 0 = unlimited */
    double watchdog;     /* seconds without any reply before giving up */
    long server_pid;     /* -S: measure this process's CPU time        */
    bool quiet;
    bool gate;           /* -G: connections: connect all before timing */
};

static struct cfg C = {
    .host = "127.0.0.1",
    .port = "11300",
    .c = 10,
    .s = 100,
    .T = 10,
    .P = 100,
    .watchdog = 30,
};

static struct {
    int ep;
    pid_t pid;
    struct sockaddr_storage addr;
    socklen_t addrlen;

    struct conn *conns;
    int nconns;
    int next_open;
    int unconfirmed;
    int ready;

    struct conn **producers;
    int nproducers;
    int nparked;

    bool barrier;        /* wait for all connections' setup before run */
    bool running;
    bool finished;
    bool draining;       /* measurement over: issue nothing new        */
    bool stamped;        /* bodies carry a timestamp, latency = e2e    */
    uint64_t now;
    uint64_t t_start, t_end, deadline;
    uint64_t last_progress;

    uint64_t put_left;   /* puts that may still be issued (run phase)  */
    uint64_t res_left;   /* reserves that may still be issued          */
    uint64_t put_sent;   /* run-phase puts sent                         */
    uint64_t reserved;   /* run-phase jobs reserved                     */
    uint64_t ops;        /* completed operations                        */
    uint64_t target;     /* stop when ops reaches this (0: time only)   */
    uint64_t backlog;    /* max put_sent - reserved (UINT64_MAX: none)  */
    uint64_t rate_next;
    uint64_t rate_step;

    char *put_tmpl;      /* "put ...\r\n<body>\r\n"                    */
    size_t put_len, put_hdr;
    char *dput_tmpl;     /* delayed put, same body                      */
    size_t dput_len, dput_hdr;
    char *body;          /* expected body with a zero stamp             */

    struct hist h;
    const char *lat_kind;
    struct rusage ru0;
    int64_t srv_cpu0;
    struct conn *dirty_head;
} G;

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bsbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory (%zu bytes)", n);
    return q;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Print a reply (or any bytes) with control characters escaped. */
static void escape(char *dst, size_t cap, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r') {
            dst[j++] = '\\';
            dst[j++] = 'r';
        } else if (ch == '\n') {
            dst[j++] = '\\';
            dst[j++] = 'n';
        } else if (ch < 32 || ch >= 127) {
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", ch);
        } else {
            dst[j++] = (char)ch;
        }
    }
    if (n > 0 && j + 5 >= cap && cap > 4) {
        j = cap - 4;
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = 0;
}

static void tube_name(uint32_t idx, char *buf, size_t cap)
{
    if (idx == TUBE_MAIN)
        snprintf(buf, cap, "bsb-%ld", (long)G.pid);
    else if (idx == TUBE_DEFAULT)
        snprintf(buf, cap, "default");
    else
        snprintf(buf, cap, "bsb-%ld.%" PRIu32, (long)G.pid, idx);
}

static void conn_fail(struct conn *c, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

static void conn_fail(struct conn *c, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("connection %d (%s): %s", c->id, role_names[c->role], msg);
}

/* ------------------------------------------------------------------ */
/* Output side                                                          */

static void mark_dirty(struct conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = G.dirty_head;
        G.dirty_head = c;
    }
}

static char *out_reserve(struct conn *c, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 1024;
            while (cap < c->out_len + n)
                cap *= 2;
            c->out = xrealloc(c->out, cap);
            c->out_cap = cap;
        }
    }
    char *p = c->out + c->out_len;
    c->out_len += n;
    mark_dirty(c);
    return p;
}

static void pq_push(struct conn *c, uint8_t kind, uint8_t phase, uint32_t arg, uint64_t t0)
{
    if (c->pq_cnt == c->pq_cap) {
        uint32_t cap = c->pq_cap ? c->pq_cap * 2 : 8;
        struct pend *q = xrealloc(NULL, cap * sizeof *q);
        for (uint32_t i = 0; i < c->pq_cnt; i++)
            q[i] = c->pq[(c->pq_head + i) % c->pq_cap];
        free(c->pq);
        c->pq = q;
        c->pq_cap = cap;
        c->pq_head = 0;
    }
    struct pend *p = &c->pq[(c->pq_head + c->pq_cnt) % c->pq_cap];
    p->kind = kind;
    p->phase = phase;
    p->arg = arg;
    p->t0 = t0;
    c->pq_cnt++;
}

static void cmd_text(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    memcpy(out_reserve(c, n), s, n);
}

static void send_use(struct conn *c, uint32_t tube, uint8_t phase)
{
    char name[64], buf[96];
    tube_name(tube, name, sizeof name);
    snprintf(buf, sizeof buf, "use %s\r\n", name);
    cmd_text(c, buf);
    pq_push(c, X_USING, phase, tube, G.now);
    c->tube = tube;
}

static void send_watch(struct conn *c, uint32_t tube, uint8_t phase)
{
    char name[64], buf[96];
    tube_name(tube, name, sizeof name);
    snprintf(buf, sizeof buf, "watch %s\r\n", name);
    cmd_text(c, buf);
    c->nwatch++;
    pq_push(c, X_WATCHING, phase, c->nwatch, G.now);
}

static void send_ignore_default(struct conn *c, uint8_t phase)
{
    cmd_text(c, "ignore default\r\n");
    c->nwatch--;
    pq_push(c, X_WATCHING, phase, c->nwatch, G.now);
}

static void hex16(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        p[i] = digits[v & 15];
        v >>= 4;
    }
}

static void send_put(struct conn *c, uint8_t phase, bool delayed)
{
    const char *tmpl = delayed ? G.dput_tmpl : G.put_tmpl;
    size_t len = delayed ? G.dput_len : G.put_len;
    size_t hdr = delayed ? G.dput_hdr : G.put_hdr;
    char *p = out_reserve(c, len);
    memcpy(p, tmpl, len);
    uint64_t t = G.now;
    if (G.stamped) {
        t = now_ns();
        hex16(p + hdr + STAMP_OFF, t);
    }
    pq_push(c, X_INSERTED, phase, 0, t);
}

static void send_reserve(struct conn *c, uint8_t phase)
{
    cmd_text(c, "reserve\r\n");
    pq_push(c, X_RESERVED, phase, 0, G.now);
}

static void send_delete(struct conn *c, uint64_t id, uint64_t t0)
{
    char buf[48];
    int n = snprintf(buf, sizeof buf, "delete %" PRIu64 "\r\n", id);
    memcpy(out_reserve(c, (size_t)n), buf, (size_t)n);
    pq_push(c, X_DELETED, P_RUN, 0, t0);
}

static void set_events(struct conn *c, bool want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c };
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = want_out;
}

static void flush_conn(struct conn *c)
{
    if (c->state == S_CONNECTING || c->fd < 0)
        return;
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, true);
            return;
        }
        conn_fail(c, "write failed: %s", w < 0 ? strerror(errno) : "short write");
    }
    c->out_off = c->out_len = 0;
    set_events(c, false);
}

static void flush_dirty(void)
{
    while (G.dirty_head) {
        struct conn *c = G.dirty_head;
        G.dirty_head = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        flush_conn(c);
    }
}

/* ------------------------------------------------------------------ */
/* Roles                                                                */

static bool put_permitted(void)
{
    if (G.put_left == 0)
        return false;
    if (G.backlog != UINT64_MAX && G.put_sent - G.reserved >= G.backlog)
        return false;
    if (G.rate_step && G.now < G.rate_next)
        return false;
    return true;
}

/* Keep a producer's window full while puts are permitted. */
static void producer_fill(struct conn *c)
{
    if (c->state != S_RUN || G.draining)
        return;
    while (c->inflight < c->window) {
        if (!put_permitted()) {
            if (G.put_left > 0 && !c->parked) {
                c->parked = true;
                G.nparked++;
            }
            return;
        }
        if (C.w == W_TUBES) {
            send_use(c, c->rr, P_RUN);
            c->rr = (c->rr + 1) % C.T;
        }
        send_put(c, P_RUN, false);
        c->inflight++;
        G.put_sent++;
        if (G.put_left != UINT64_MAX)
            G.put_left--;
        if (G.rate_step)
            G.rate_next += G.rate_step;
    }
    if (c->parked) {
        c->parked = false;
        G.nparked--;
    }
}

static void unpark_producers(void)
{
    for (int i = 0; i < G.nproducers && G.nparked > 0; i++) {
        struct conn *c = G.producers[i];
        if (c->parked)
            producer_fill(c);
        if (!put_permitted())
            break;
    }
}

static void consumer_next(struct conn *c)
{
    if (G.res_left == 0 || G.draining)
        return;
    if (G.res_left != UINT64_MAX)
        G.res_left--;
    send_reserve(c, P_RUN);
}

static void rounds_next(struct conn *c)
{
    if (c->rounds == 0 || G.draining)
        return;
    if (c->rounds != UINT64_MAX)
        c->rounds--;
    c->round_t0 = G.now;
    send_put(c, P_RUN, false);
}

/* Queue the one-time commands of a freshly connected connection. */
static void conn_setup(struct conn *c)
{
    c->nwatch = 1; /* every connection starts watching "default" */
    c->tube = TUBE_DEFAULT;
    switch ((enum role)c->role) {
    case R_PRODUCER:
        send_use(c, C.w == W_TUBES ? 0 : TUBE_MAIN, P_SETUP);
        break;
    case R_CONSUMER:
        if (C.w == W_TUBES) {
            for (uint32_t i = 0; i < C.T; i++)
                send_watch(c, i, P_SETUP);
        } else {
            send_watch(c, TUBE_MAIN, P_SETUP);
        }
        send_ignore_default(c, P_SETUP);
        if (c->prefill)
            send_use(c, TUBE_MAIN, P_SETUP);
        break;
    case R_ROUNDS:
        send_use(c, TUBE_MAIN, P_SETUP);
        send_watch(c, TUBE_MAIN, P_SETUP);
        send_ignore_default(c, P_SETUP);
        break;
    case R_WATCHER:
        send_use(c, (uint32_t)c->rr, P_SETUP);
        send_watch(c, (uint32_t)c->rr, P_SETUP);
        send_ignore_default(c, P_SETUP);
        break;
    case R_IDLE:
        cmd_text(c, "list-tube-used\r\n");
        pq_push(c, X_USING, P_SETUP, TUBE_DEFAULT, G.now);
        break;
    }
    for (uint64_t i = 0; i < PREFILL_WINDOW && c->prefill > 0; i++) {
        c->prefill--;
        send_put(c, P_PREFILL, c->prefill_delay != 0);
    }
}

static void start_run(void);

static void conn_start(struct conn *c)
{
    c->state = S_RUN;
    switch ((enum role)c->role) {
    case R_PRODUCER:
        producer_fill(c);
        break;
    case R_CONSUMER:
        consumer_next(c);
        break;
    case R_ROUNDS:
        rounds_next(c);
        break;
    case R_WATCHER:
        /* blocks for the whole run: the tube has only delayed jobs */
        send_reserve(c, P_NEVER);
        break;
    case R_IDLE:
        break;
    }
}

static void setup_done(struct conn *c)
{
    c->state = S_READY;
    if (!G.barrier) {
        conn_start(c);
        return;
    }
    if (++G.ready == G.nconns)
        start_run();
}

/* ------------------------------------------------------------------ */
/* Reply handling                                                       */

static bool parse_u64(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    *pp = p;
    *out = v;
    return true;
}

static bool starts(const char *line, size_t n, const char *word)
{
    size_t k = strlen(word);
    return n >= k && memcmp(line, word, k) == 0;
}

static void unexpected(struct conn *c, const struct pend *p, const char *line, size_t n, const char *why)
{
    char esc[700];
    escape(esc, sizeof esc, line, n);
    conn_fail(c, "expected %s, got \"%s\"%s%s", xkind_names[p->kind], esc, why ? ": " : "", why ? why : "");
}

static uint64_t unhex16(const char *p, bool *ok)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = p[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else {
            *ok = false;
            return 0;
        }
        v = v << 4 | d;
    }
    *ok = true;
    return v;
}

static void check_body(struct conn *c, const struct pend *p, const char *body, size_t n, const char *line, size_t ll,
                       uint64_t *stamp)
{
    if (n != C.s)
        unexpected(c, p, line, ll, "body size differs from the bodies bsbench puts");
    if (n >= BODY_STAMPED) {
        bool ok = true;
        if (memcmp(body, BODY_MAGIC, 4) != 0 || body[STAMP_OFF + 16] != ':' ||
            memcmp(body + STAMP_OFF + 17, G.body + STAMP_OFF + 17, n - STAMP_OFF - 17) != 0)
            ok = false;
        bool hex_ok;
        uint64_t t = unhex16(body + STAMP_OFF, &hex_ok);
        if (!ok || !hex_ok) {
            char esc[200];
            escape(esc, sizeof esc, body, n);
            conn_fail(c, "RESERVED job body is not one bsbench put: \"%s\"", esc);
        }
        *stamp = t;
    } else if (n > 0 && memcmp(body, G.body, n) != 0) {
        char esc[200];
        escape(esc, sizeof esc, body, n);
        conn_fail(c, "RESERVED job body is not one bsbench put: \"%s\"", esc);
    }
}

static void progress_op(uint64_t lat)
{
    G.ops++;
    if (lat != UINT64_MAX)
        hist_add(&G.h, lat);
}

/*
 * Handle one complete reply.  `line` excludes the CRLF; for RESERVED,
 * `body` points at the job body of `blen` bytes.
 */
static void on_reply(struct conn *c, const char *line, size_t ll, const char *body, size_t blen, uint64_t id)
{
    struct pend p = c->pq[c->pq_head];
    c->pq_head = (c->pq_head + 1) % c->pq_cap;
    c->pq_cnt--;

    if (!c->confirmed) {
        c->confirmed = true;
        G.unconfirmed--;
    }
    G.last_progress = G.now;

    if (p.phase == P_NEVER)
        conn_fail(c, "a reserve on a tube holding only delayed jobs was answered: %.*s", (int)ll, line);

    if (p.phase == P_SETUP || p.phase == P_PREFILL) {
        if (p.kind == X_INSERTED && c->prefill > 0) {
            c->prefill--;
            send_put(c, P_PREFILL, c->prefill_delay != 0);
        }
        if (c->pq_cnt == 0 && c->prefill == 0 && c->state == S_SETUP)
            setup_done(c);
        return;
    }

    switch (p.kind) {
    case X_USING:
    case X_WATCHING:
        return;
    case X_INSERTED:
        if (c->role == R_PRODUCER) {
            c->inflight--;
            if (C.w == W_PUT || C.w == W_PPUT)
                progress_op(G.now - p.t0);
            producer_fill(c);
        } else if (c->role == R_ROUNDS) {
            send_reserve(c, P_RUN);
        }
        return;
    case X_RESERVED: {
        uint64_t stamp = 0;
        check_body(c, &p, body, blen, line, ll, &stamp);
        G.reserved++;
        if (c->role == R_ROUNDS) {
            send_delete(c, id, c->round_t0);
            return;
        }
        if (G.stamped) {
            if (stamp > G.now)
                conn_fail(c, "job timestamp lies in the future");
            hist_add(&G.h, G.now - stamp);
        }
        if (c->sync) {
            send_delete(c, id, p.t0);
        } else {
            send_delete(c, id, UINT64_MAX);
            consumer_next(c);
        }
        if (G.nparked)
            unpark_producers();
        return;
    }
    case X_DELETED:
        if (c->role == R_ROUNDS) {
            progress_op(G.now - p.t0);
            rounds_next(c);
            return;
        }
        progress_op(c->sync ? G.now - p.t0 : UINT64_MAX);
        if (c->sync)
            consumer_next(c);
        return;
    }
}

/* Check each complete reply in the input buffer against what we expect
 * and act on it; returns the number of bytes consumed. */
static size_t parse_replies(struct conn *c)
{
    size_t off = 0;
    while (off < c->in_len) {
        const char *line = c->in + off;
        size_t avail = c->in_len - off;
        const char *nl = memchr(line, '\n', avail);
        if (!nl) {
            if (avail > MAX_LINE) {
                char esc[200];
                escape(esc, sizeof esc, line, 100);
                conn_fail(c, "reply line longer than %d bytes: \"%s\"", MAX_LINE, esc);
            }
            break;
        }
        size_t ll = (size_t)(nl - line);
        if (c->pq_cnt == 0) {
            char esc[700];
            escape(esc, sizeof esc, line, ll + 1);
            conn_fail(c, "reply without a command: \"%s\"", esc);
        }
        const struct pend *p = &c->pq[c->pq_head];
        if (ll == 0 || line[ll - 1] != '\r')
            unexpected(c, p, line, ll + 1, "line not terminated by CRLF");
        ll--; /* drop '\r' */
        const char *end = line + ll;
        size_t used = ll + 2;
        const char *q;
        uint64_t v = 0, id = 0;
        const char *body = NULL;
        size_t blen = 0;
        char name[64];

        switch ((enum xkind)p->kind) {
        case X_INSERTED:
            q = line + 9;
            if (!starts(line, ll, "INSERTED ") || !parse_u64(&q, end, &v) || q != end || v == 0)
                unexpected(c, p, line, ll, NULL);
            break;
        case X_DELETED:
            if (ll != 7 || memcmp(line, "DELETED", 7) != 0)
                unexpected(c, p, line, ll, NULL);
            break;
        case X_USING:
            tube_name(p->arg, name, sizeof name);
            if (!starts(line, ll, "USING ") || ll - 6 != strlen(name) || memcmp(line + 6, name, ll - 6) != 0)
                unexpected(c, p, line, ll, NULL);
            break;
        case X_WATCHING:
            q = line + 9;
            if (!starts(line, ll, "WATCHING ") || !parse_u64(&q, end, &v) || q != end)
                unexpected(c, p, line, ll, NULL);
            if (v != p->arg) {
                char why[64];
                snprintf(why, sizeof why, "watch list should hold %" PRIu32 " tubes", p->arg);
                unexpected(c, p, line, ll, why);
            }
            break;
        case X_RESERVED:
            q = line + 9;
            if (!starts(line, ll, "RESERVED ") || !parse_u64(&q, end, &id) || q >= end || *q != ' ')
                unexpected(c, p, line, ll, NULL);
            q++;
            if (!parse_u64(&q, end, &v) || q != end || v > (1u << 30))
                unexpected(c, p, line, ll, NULL);
            if (avail < used + v + 2) {
                /* body incomplete: make sure the buffer can hold it */
                size_t need = used + v + 2;
                if (need > c->in_cap - off) {
                    if (off > 0)
                        goto out;
                    size_t cap = c->in_cap;
                    while (cap < need)
                        cap *= 2;
                    c->in = xrealloc(c->in, cap);
                    c->in_cap = cap;
                }
                goto out;
            }
            body = line + used;
            blen = (size_t)v;
            if (body[blen] != '\r' || body[blen + 1] != '\n')
                unexpected(c, p, line, ll, "job body not followed by CRLF");
            used += blen + 2;
            break;
        }
        on_reply(c, line, ll, body, blen, id);
        off += used;
    }
out:
    return off;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 512) {
            c->in_cap *= 2;
            c->in = xrealloc(c->in, c->in_cap);
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t r = read(c->fd, c->in + c->in_len, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_fail(c, "read failed: %s", strerror(errno));
        }
        if (r == 0) {
            char esc[200];
            escape(esc, sizeof esc, c->in, c->in_len < 100 ? c->in_len : 100);
            conn_fail(c, "server closed the connection (%" PRIu32 " replies outstanding%s%s)", c->pq_cnt,
                      c->in_len ? ", partial reply: " : "", esc);
        }
        c->in_len += (size_t)r;
        G.now = now_ns();
        size_t used = parse_replies(c);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
        if ((size_t)r < room)
            return;
    }
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static void conn_open(struct conn *c)
{
    int fd = socket(G.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s (open connections: %d; raise ulimit -n?)", strerror(errno), G.next_open);
    if (G.addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->fd = fd;
    c->in_cap = 4096;
    c->in = xrealloc(NULL, c->in_cap);
    int r = connect(fd, (struct sockaddr *)&G.addr, G.addrlen);
    if (r < 0 && errno != EINPROGRESS)
        die("connect to server: %s%s", strerror(errno),
            errno == EAGAIN ? " (the server's listen backlog is full)" : "");
    c->state = S_CONNECTING;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    c->want_out = true;
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    G.unconfirmed++;
    conn_setup(c); /* queued; written once the connect completes */
    c->state = S_CONNECTING;
}

static void open_more(void)
{
    while (G.next_open < G.nconns && G.unconfirmed < MAX_UNCONFIRMED)
        conn_open(&G.conns[G.next_open++]);
}

static void conn_event(struct conn *c, uint32_t ev)
{
    if (c->state == S_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            die("connect to server: %s", strerror(err));
        c->state = S_SETUP;
        flush_conn(c);
    }
    if (ev & EPOLLOUT)
        flush_conn(c);
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c);
}

/* ------------------------------------------------------------------ */
/* Run control                                                          */

static int64_t proc_cpu_ns(long pid);

static void start_run(void)
{
    G.now = now_ns();
    G.t_start = G.now;
    G.last_progress = G.now;
    if (C.t > 0)
        G.deadline = G.t_start + (uint64_t)(C.t * 1e9);
    G.rate_next = G.now;
    getrusage(RUSAGE_SELF, &G.ru0);
    if (C.server_pid)
        G.srv_cpu0 = proc_cpu_ns(C.server_pid);
    G.running = true;
    for (int i = 0; i < G.nconns; i++)
        if (G.conns[i].state == S_READY)
            conn_start(&G.conns[i]);
}

/*
 * CPU time (ns) used so far by every thread of process `pid`, from
 * /proc/PID/task/TID/schedstat; falls back to /proc/PID/stat (clock
 * ticks).  Returns -1 if the process cannot be read.
 */
static int64_t proc_cpu_ns(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    int64_t sum = 0;
    int found = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            char p2[128];
            snprintf(p2, sizeof p2, "/proc/%ld/task/%.20s/schedstat", pid, e->d_name);
            FILE *f = fopen(p2, "r");
            unsigned long long ns;
            if (f && fscanf(f, "%llu", &ns) == 1) {
                sum += (int64_t)ns;
                found++;
            }
            if (f)
                fclose(f);
        }
        closedir(d);
    }
    if (found)
        return sum;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

static double tv_secs(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void report(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char srv[128] = "";
    if (C.server_pid) {
        int64_t t = proc_cpu_ns(C.server_pid);
        if (t >= 0 && G.srv_cpu0 >= 0 && G.t_end > G.t_start && G.ops > 0)
            snprintf(srv, sizeof srv, " srv_cpu_pct=%.0f srv_cpu_us_per_op=%.2f",
                     100.0 * (double)(t - G.srv_cpu0) / (double)(G.t_end - G.t_start),
                     (double)(t - G.srv_cpu0) / 1e3 / (double)G.ops);
    }
    double secs = (double)(G.t_end - G.t_start) / 1e9;
    double cpu = tv_secs(ru.ru_utime) - tv_secs(G.ru0.ru_utime) + tv_secs(ru.ru_stime) - tv_secs(G.ru0.ru_stime);
    double rate = secs > 0 ? (double)G.ops / secs : 0;
    char lat[512] = "";
    if (G.h.n > 0) {
        snprintf(lat, sizeof lat,
                 " lat=%s p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f", G.lat_kind,
                 (double)hist_pct(&G.h, 0.50) / 1e3, (double)hist_pct(&G.h, 0.90) / 1e3,
                 (double)hist_pct(&G.h, 0.99) / 1e3, (double)hist_pct(&G.h, 0.999) / 1e3,
                 (double)G.h.max / 1e3);
    }
    printf("workload=%s conns=%d total_conns=%d body=%zu ops=%" PRIu64 " secs=%.3f ops_per_sec=%.0f%s "
           "client_cpu_pct=%.0f%s\n",
           workload_names[C.w], C.c, G.nconns, C.s, G.ops, secs, rate, lat, secs > 0 ? 100 * cpu / secs : 0, srv);
    fflush(stdout);
    if (!C.quiet) {
        fprintf(stderr, "bsbench: %s: %d connections, %" PRIu64 " ops in %.3f s = %.0f ops/s", workload_names[C.w],
                G.nconns, G.ops, secs, rate);
        if (G.h.n > 0)
            fprintf(stderr, "; %s latency p50 %.0f us, p99 %.0f us, max %.0f us", G.lat_kind,
                    (double)hist_pct(&G.h, 0.50) / 1e3, (double)hist_pct(&G.h, 0.99) / 1e3,
                    (double)G.h.max / 1e3);
        fprintf(stderr, "; client cpu %.0f%%\n", secs > 0 ? 100 * cpu / secs : 0);
    }
}

static void check_done(void)
{
    if (!G.running || G.finished)
        return;
    if ((G.target && G.ops >= G.target) || (G.deadline && G.now >= G.deadline)) {
        G.finished = true;
        G.t_end = G.now;
    }
}

static int loop_timeout_ms(void)
{
    uint64_t wake = G.now + 1000000000u; /* watchdog granularity */
    if (G.deadline && G.deadline < wake)
        wake = G.deadline;
    if (G.nparked && G.rate_step && G.rate_next < wake)
        wake = G.rate_next;
    if (wake <= G.now)
        return 0;
    uint64_t ms = (wake - G.now + 999999) / 1000000;
    return (int)ms;
}

/* Replies still owed that the server must send without further help
 * (everything but reserves, which may block for good). */
static uint64_t owed_replies(void)
{
    uint64_t owed = 0;
    for (int i = 0; i < G.next_open; i++) {
        struct conn *c = &G.conns[i];
        for (uint32_t k = 0; k < c->pq_cnt; k++)
            if (c->pq[(c->pq_head + k) % c->pq_cap].kind != X_RESERVED)
                owed++;
    }
    return owed;
}

/*
 * After the measurement: send nothing new, collect the replies still in
 * flight (for at most a second) and close every connection, so that the
 * server sees orderly closes rather than resets.
 */
static void drain_and_close(void)
{
    struct epoll_event evs[MAX_EVENTS];
    G.draining = true;
    uint64_t until = now_ns() + 1000000000u;
    flush_dirty();
    while (owed_replies() > 0) {
        G.now = now_ns();
        if (G.now >= until)
            break;
        int k = epoll_wait(G.ep, evs, MAX_EVENTS, (int)((until - G.now) / 1000000) + 1);
        if (k < 0 && errno != EINTR)
            break;
        G.now = now_ns();
        for (int i = 0; i < k; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
        flush_dirty();
    }
    for (int i = 0; i < G.next_open; i++)
        if (G.conns[i].fd >= 0)
            close(G.conns[i].fd);
}

static void run(void)
{
    struct epoll_event evs[MAX_EVENTS];
    G.now = now_ns();
    G.last_progress = G.now;
    if (!G.barrier)
        start_run();
    while (!G.finished) {
        open_more();
        flush_dirty();
        int k = epoll_wait(G.ep, evs, MAX_EVENTS, loop_timeout_ms());
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        G.now = now_ns();
        for (int i = 0; i < k && !G.finished; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
        if (G.nparked && !G.finished)
            unpark_producers();
        check_done();
        if (!G.finished && G.now - G.last_progress > (uint64_t)(C.watchdog * 1e9)) {
            uint64_t pending = 0;
            for (int i = 0; i < G.next_open; i++)
                pending += G.conns[i].pq_cnt;
            die("no reply from the server for %.0f s (%s phase, %" PRIu64 " replies outstanding, %d of %d "
                "connections ready, %" PRIu64 " ops done)",
                C.watchdog, G.running ? "run" : "setup", pending, G.ready, G.nconns, G.ops);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bsbench [-h HOST] [-p PORT] [-U UNIX_PATH] -w WORKLOAD [-n COUNT] [-t SECONDS]\n"
            "               [-c CONNS] [-s BODY_BYTES] [-T TUBES] [-P DEPTH] [-I IDLE_CONNS]\n"
            "               [-D DELAYED_PER_TUBE] [-B BACKLOG] [-R PUTS_PER_SEC] [-W WATCHDOG_SECS]\n"
            "               [-S SERVER_PID] [-q] [-G]\n"
            "workloads:\n"
            "  put            C connections, each: put, wait INSERTED, repeat\n"
            "  reserve        pre-fill COUNT jobs, then C connections: reserve, delete, repeat\n"
            "  pipeline       C producers and C consumers at once; put->reserve latency\n"
            "  pipelined-put  C connections, each keeping DEPTH puts in flight\n"
            "  connections    C connections (e.g. 1000), each doing put/reserve/delete rounds\n"
            "                 (-G: open all of them before timing starts)\n"
            "  tubes          C producers spread jobs over T tubes, C consumers watch all T\n"
            "  scale          T tubes each with a blocked watcher and D delayed jobs, I idle\n"
            "                 connections, and C producer/consumer pairs on one busy tube\n"
            "-n COUNT is the number of operations (jobs; rounds for `connections`), default 100000\n"
            "(connections: 5 rounds per connection); with -t alone the run lasts SECONDS; with both,\n"
            "whichever ends first.  -B caps jobs put but not yet reserved in pipeline/tubes/scale\n"
            "(default: C; 0 = no cap).  -R limits the total put rate (pipeline/tubes/scale/put).\n"
            "-S PID: also report the CPU time that process (the server) used during the run.\n"
            "Output: one key=value line on stdout; exit status 1 on any unexpected reply.\n");
}

static uint64_t arg_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        die("option %s: bad value \"%s\" (want %" PRIu64 "..%" PRIu64 ")", opt, s, min, max);
    return (uint64_t)v;
}

static double arg_double(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1e7)
        die("option %s: bad value \"%s\"", opt, s);
    return v;
}

static void resolve(void)
{
    memset(&G.addr, 0, sizeof G.addr);
    if (C.upath) {
        struct sockaddr_un *un = (struct sockaddr_un *)&G.addr;
        if (strlen(C.upath) >= sizeof un->sun_path)
            die("unix socket path too long: %s", C.upath);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, C.upath);
        G.addrlen = sizeof *un;
        return;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    int r = getaddrinfo(C.host, C.port, &hints, &res);
    if (r != 0)
        die("cannot resolve %s port %s: %s", C.host, C.port, gai_strerror(r));
    memcpy(&G.addr, res->ai_addr, res->ai_addrlen);
    G.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "bsbench: warning: open-file limit %llu is below the %d connections asked for\n",
                (unsigned long long)rl.rlim_cur, need);
}

static void build_templates(void)
{
    G.body = xrealloc(NULL, C.s + 1);
    memset(G.body, 'x', C.s);
    if (C.s >= BODY_STAMPED) {
        memcpy(G.body, BODY_MAGIC, 4);
        memset(G.body + STAMP_OFF, '0', 16);
        G.body[STAMP_OFF + 16] = ':';
    }
    G.body[C.s] = 0;

    char hdr[96];
    int h = snprintf(hdr, sizeof hdr, "put %d 0 %d %zu\r\n", PUT_PRI, PUT_TTR, C.s);
    G.put_hdr = (size_t)h;
    G.put_len = (size_t)h + C.s + 2;
    G.put_tmpl = xrealloc(NULL, G.put_len);
    memcpy(G.put_tmpl, hdr, (size_t)h);
    memcpy(G.put_tmpl + h, G.body, C.s);
    memcpy(G.put_tmpl + h + C.s, "\r\n", 2);

    h = snprintf(hdr, sizeof hdr, "put %d %d %d %zu\r\n", PUT_PRI, SCALE_DELAY, PUT_TTR, C.s);
    G.dput_hdr = (size_t)h;
    G.dput_len = (size_t)h + C.s + 2;
    G.dput_tmpl = xrealloc(NULL, G.dput_len);
    memcpy(G.dput_tmpl, hdr, (size_t)h);
    memcpy(G.dput_tmpl + h, G.body, C.s);
    memcpy(G.dput_tmpl + h + C.s, "\r\n", 2);
}

static struct conn *add_conn(int role)
{
    struct conn *c = &G.conns[G.nconns];
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->id = G.nconns;
    c->role = (uint8_t)role;
    c->state = S_NEW;
    c->window = 1;
    G.nconns++;
    if (role == R_PRODUCER)
        G.producers[G.nproducers++] = c;
    return c;
}

static void plan(void)
{
    bool n_given = C.n > 0, t_given = C.t > 0;
    uint64_t n = n_given ? C.n : 100000;
    uint64_t lim = n_given || !t_given ? n : UINT64_MAX;
    int total;

    switch (C.w) {
    case W_PUT:
    case W_PPUT:
    case W_RESERVE:
        total = C.c;
        break;
    case W_PIPELINE:
    case W_TUBES:
        total = 2 * C.c;
        break;
    case W_CONNS:
        total = C.c;
        break;
    case W_SCALE:
        total = 2 * C.c + (int)C.T + C.I;
        break;
    default:
        total = 0;
    }
    if (C.w != W_SCALE && C.I > 0)
        total += C.I;
    G.conns = xrealloc(NULL, (size_t)total * sizeof *G.conns);
    G.producers = xrealloc(NULL, (size_t)total * sizeof *G.producers);
    raise_nofile(total);

    G.barrier = true;
    G.backlog = UINT64_MAX;
    G.lat_kind = "rtt";
    switch (C.w) {
    case W_PUT:
    case W_PPUT:
        for (int i = 0; i < C.c; i++)
            add_conn(R_PRODUCER)->window = C.w == W_PPUT ? C.P : 1;
        G.put_left = lim;
        G.target = lim == UINT64_MAX ? 0 : lim;
        G.lat_kind = C.w == W_PUT ? "put_rtt" : "put_rtt_pipelined";
        break;
    case W_RESERVE:
        /* the reserve workload always needs a job count: the pre-fill */
        for (int i = 0; i < C.c; i++) {
            struct conn *c = add_conn(R_CONSUMER);
            c->sync = true;
            c->prefill = n / (uint64_t)C.c + ((uint64_t)i < n % (uint64_t)C.c ? 1 : 0);
        }
        G.res_left = n;
        G.target = n;
        G.lat_kind = "reserve_delete_rtt";
        break;
    case W_PIPELINE:
    case W_TUBES:
    case W_SCALE:
        if (C.w == W_SCALE) {
            for (uint32_t i = 0; i < C.T; i++) {
                struct conn *c = add_conn(R_WATCHER);
                c->rr = i;
                c->prefill = C.D;
                c->prefill_delay = SCALE_DELAY;
            }
        }
        for (int i = 0; i < C.c; i++)
            add_conn(R_PRODUCER)->rr = (uint32_t)i % C.T;
        for (int i = 0; i < C.c; i++)
            add_conn(R_CONSUMER);
        G.put_left = G.res_left = lim;
        G.target = lim == UINT64_MAX ? 0 : lim;
        G.backlog = C.B == 0 ? (uint64_t)C.c : C.B;
        G.stamped = true;
        G.lat_kind = "put_to_reserve";
        break;
    case W_CONNS: {
        uint64_t per = n_given ? (C.n + (uint64_t)C.c - 1) / (uint64_t)C.c : (t_given ? UINT64_MAX : 5);
        uint64_t left = n_given ? C.n : per * (uint64_t)C.c;
        for (int i = 0; i < C.c; i++) {
            struct conn *c = add_conn(R_ROUNDS);
            c->rounds = per == UINT64_MAX ? UINT64_MAX : (left < per ? left : per);
            if (per != UINT64_MAX)
                left -= c->rounds;
        }
        G.target = per == UINT64_MAX ? 0 : (n_given ? C.n : per * (uint64_t)C.c);
        /* Connecting is part of what is measured, unless -G asks to time
         * only the rounds of all C connections at once. */
        G.barrier = C.gate;
        G.lat_kind = "round_rtt";
        break;
    }
    }
    for (int i = 0; i < C.I; i++)
        add_conn(R_IDLE);
    if (C.B == UINT64_MAX)
        G.backlog = UINT64_MAX;
    if (C.R > 0) {
        G.rate_step = (uint64_t)(1e9 / C.R);
        if (G.rate_step == 0)
            G.rate_step = 1;
    }
}

int main(int argc, char **argv)
{
    int opt;
    const char *wname = NULL;
    bool have_s = false, have_c = false;
    while ((opt = getopt(argc, argv, "h:p:U:w:n:t:c:s:T:P:I:D:B:R:W:S:qG")) != -1) {
        switch (opt) {
        case 'h':
            C.host = optarg;
            break;
        case 'p':
            arg_u64("-p", optarg, 1, 65535);
            C.port = optarg;
            break;
        case 'U':
            C.upath = optarg;
            break;
        case 'w':
            wname = optarg;
            break;
        case 'n':
            C.n = arg_u64("-n", optarg, 1, UINT64_MAX / 4);
            break;
        case 't':
            C.t = arg_double("-t", optarg);
            break;
        case 'c':
            C.c = (int)arg_u64("-c", optarg, 1, 100000);
            have_c = true;
            break;
        case 's':
            C.s = (size_t)arg_u64("-s", optarg, 0, 1u << 24);
            have_s = true;
            break;
        case 'T':
            C.T = (uint32_t)arg_u64("-T", optarg, 1, 1000000);
            break;
        case 'P':
            C.P = (uint32_t)arg_u64("-P", optarg, 1, 1000000);
            break;
        case 'I':
            C.I = (int)arg_u64("-I", optarg, 0, 1000000);
            break;
        case 'D':
            C.D = (uint32_t)arg_u64("-D", optarg, 0, 100000000);
            break;
        case 'B': {
            uint64_t b = arg_u64("-B", optarg, 0, UINT64_MAX / 4);
            C.B = b == 0 ? UINT64_MAX : b;
            break;
        }
        case 'R':
            C.R = arg_double("-R", optarg);
            break;
        case 'W':
            C.watchdog = arg_double("-W", optarg);
            break;
        case 'S':
            C.server_pid = (long)arg_u64("-S", optarg, 1, INT32_MAX);
            break;
        case 'q':
            C.quiet = true;
            break;
        case 'G':
            C.gate = true;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !wname) {
        usage(stderr);
        return 2;
    }
    bool found = false;
    for (size_t i = 0; i < sizeof workload_names / sizeof *workload_names; i++) {
        if (strcmp(wname, workload_names[i]) == 0) {
            C.w = (enum workload)i;
            found = true;
        }
    }
    if (!found)
        die("unknown workload \"%s\" (run without arguments for the list)", wname);
    if (C.w == W_CONNS && !have_c)
        C.c = 1000;
    if (C.w == W_SCALE && !have_c)
        C.c = 1;
    if ((C.w == W_PIPELINE || C.w == W_TUBES || C.w == W_SCALE) && C.s < BODY_STAMPED) {
        if (have_s)
            fprintf(stderr, "bsbench: note: body size raised to %d bytes to carry a timestamp\n", BODY_STAMPED);
        C.s = BODY_STAMPED;
    }

    signal(SIGPIPE, SIG_IGN);
    G.pid = getpid();
    resolve();
    build_templates();
    plan();
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    run();
    report();
    drain_and_close();
    return 0;
}
