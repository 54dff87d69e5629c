/* libFuzzer harness: the command parser and connection state machine
 * (src/proto.c) over a real queue core in memory mode, driven the way the
 * connection layer drives it, without sockets.
 *
 * Input: one byte N, then N script bytes, then the stream. Each script byte
 * is one step; steps that feed take their bytes from the front of the
 * stream, so the stream reads as plain protocol text (seeds and dictionary
 * words stay intact) while the script decides where it is cut, which of two
 * sessions gets each piece and what happens in between. Whatever stream is
 * left when the script ends goes to session A.
 *
 * Script byte s:
 *   s & 3 == 0  feed L bytes to session (s >> 2) & 1 through proto_feed
 *   s & 3 == 1  the same, but a body that spans reads is written straight
 *               into s->body and handed over with proto_body_read, as
 *               conn.c's on_read does
 *   s & 3 == 2  advance the clock by step (s >> 2) and fire the queue's
 *               timers (63: jump to the queue's next deadline)
 *   s & 3 == 3  event (s >> 2) & 7 on session (s >> 5) & 1:
 *               0 peer hangs up (conn.c's EOF path), session reopened
 *               1 connection dropped at once (session_close), reopened
 *               2 toggle drain mode
 *               3 cycle the maximum job size (65535, 0, 10, 300)
 *               4 toggle "client does not read its replies" for the session
 *               5 the session sends a put of a 65535-byte job (its own
 *                 bytes, not the stream's), so a few peeks to a client
 *                 that does not read pass OUTPUT_HIGH_WATER
 *               6, 7 nothing
 *   L = (s >> 3) + 1 for s >> 3 < 24; then 32, 64, 224, 225, 1024, 4096,
 *   and 31 = the rest of the stream.
 *
 * Checks, beyond the sanitizers: proto_feed never consumes more than it was
 * given; every reply is one of the protocol's words and every reply that
 * carries data (RESERVED, FOUND, OK) carries exactly the announced bytes and
 * a CRLF; INTERNAL_ERROR and OUT_OF_MEMORY never appear (nothing fails in
 * memory mode); each session's new job ids only go up; the queue's counters always add up to its job count and
 * agree with its heaps, the tubes' counts and buried lists; after
 * every session is closed no job is reserved and no client waits. Sessions
 * A session that quit is closed and opened again once its replies are
 * read, as a client would reconnect. Sessions
 * and the queue are freed at the end, so LeakSanitizer sees every leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "queue.h"
#include "util.h"

#define NSESS 2

typedef struct fsess {
    session s;
    int open;
    int deaf;               /* the client does not read its replies */
    char *in;               /* input proto_feed did not take yet */
    size_t in_len, in_cap;
    char name;              /* 'A' or 'B', for the trace */
    /* Ids of a session's new jobs only go up: its last INSERTED or BURIED
     * <id>. (Across sessions, replies are read at different times.) */
    uint64_t last_new_id;
} fsess;

/* FUZZ_TRACE=1 prints every reply on stderr, to read what an input does. */
static int trace = -1;

typedef struct world {
    queue q;
    proto p;
    int64_t now;
    fsess ss[NSESS];
    unsigned size_idx;
} world;

static _Noreturn void
die(const char *what)
{
    fprintf(stderr, "fuzz_proto: %s\n", what);
    abort();
}

static void
on_wake(void *ctx, client *c, job *j, enum wake_reason why)
{
    world *w = ctx;
    proto_wake(&w->p, c->owner, j, why);
}

/* ---- reply checking ---- */

static const char *const plain_words[] = {
    "INSERTED", "BURIED", "EXPECTED_CRLF", "JOB_TOO_BIG", "DRAINING",
    "NOT_FOUND", "DELETED", "RELEASED", "TOUCHED", "KICKED", "USING",
    "WATCHING", "NOT_IGNORED", "PAUSED", "DEADLINE_SOON", "TIMED_OUT",
    "BAD_FORMAT", "UNKNOWN_COMMAND",
};

static int
word_is(const char *line, size_t wlen, const char *w)
{
    return strlen(w) == wlen && memcmp(line, w, wlen) == 0;
}

/* A decimal number at *p (before end), ending at a space or at end. */
static int
read_num(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *v = n;
    return 0;
}

/* The bytes a session left in its output must be whole, well-formed
 * replies (proto.c appends each reply whole). */
static void
check_replies(const char *d, size_t n, uint64_t *last_new_id)
{
    const char *end = d + n;
    while (d < end) {
        const char *eol = NULL;
        for (const char *c = d; c + 1 < end; c++) {
            if (c[0] == '\r' && c[1] == '\n') {
                eol = c;
                break;
            }
        }
        if (!eol)
            die("reply without CRLF");
        const char *sp = memchr(d, ' ', (size_t)(eol - d));
        size_t wlen = (size_t)((sp ? sp : eol) - d);
        uint64_t id = 0, len = 0;
        const char *a = sp ? sp + 1 : eol;
        if (word_is(d, wlen, "RESERVED") || word_is(d, wlen, "FOUND")) {
            if (read_num(&a, eol, &id) < 0 || a >= eol || *a++ != ' ' ||
                read_num(&a, eol, &len) < 0 || a != eol)
                die("malformed RESERVED/FOUND line");
            if (id == 0)
                die("job id 0 in a reply");
        } else if (word_is(d, wlen, "OK")) {
            if (read_num(&a, eol, &len) < 0 || a != eol)
                die("malformed OK line");
        } else {
            size_t i;
            for (i = 0; i < sizeof plain_words / sizeof plain_words[0]; i++)
                if (word_is(d, wlen, plain_words[i]))
                    break;
            if (i == sizeof plain_words / sizeof plain_words[0]) {
                fprintf(stderr, "fuzz_proto: reply \"%.*s\"\n",
                        (int)(eol - d), d);
                die("unexpected reply word");
            }
            if ((word_is(d, wlen, "INSERTED") || word_is(d, wlen, "BURIED")) &&
                sp) {
                if (read_num(&a, eol, &id) < 0 || a != eol)
                    die("malformed INSERTED/BURIED line");
                if (id <= *last_new_id)
                    die("new job id not above the session's previous one");
                *last_new_id = id;
            }
            d = eol + 2;
            continue;
        }
        d = eol + 2;
        if ((uint64_t)(end - d) < len + 2)
            die("reply data shorter than announced");
        if (d[len] != '\r' || d[len + 1] != '\n')
            die("reply data not followed by CRLF");
        d += len + 2;
    }
}

/* The client reads everything the session has sent. */
static void
drain(fsess *f)
{
    buf *o = &f->s.out;
    size_t n = buf_pending(o);
    if (!n)
        return;
    if (trace)
        fprintf(stderr, "[%c] %.*s", f->name, (int)n, o->data + o->off);
    check_replies(o->data + o->off, n, &f->last_new_id);
    buf_consume(o, n);
}

/* The queue's counters against its heaps, lists and tubes. */
static void
check_counts(const queue *q)
{
    const queue_stats *st = &q->st;
    if (st->ready + st->reserved + st->delayed + st->buried != q->jobs.count)
        die("job state counters do not add up to the job count");
    if (st->urgent > st->ready)
        die("more urgent jobs than ready jobs");
    if (q->delays.len != st->delayed || q->ttrs.len != st->reserved)
        die("delay or TTR heap size differs from the counters");
    if (q->wakeups.len > st->waiting)
        die("more wake-up timers than waiting clients");
    uint64_t ready = 0, delayed = 0, buried = 0, reserved = 0, urgent = 0;
    for (size_t i = 0; i < q->tubes.len; i++) {
        const tube *t = q->tubes.list[i];
        if (t->index != i)
            die("tube registry index wrong");
        if (t->refs == 0)
            die("tube without references still registered");
        size_t n = 0;
        for (const job *j = t->buried_head; j; j = j->next) {
            if (j->state != JOB_BURIED || j->tube != t || ++n > t->buried_ct)
                die("buried list inconsistent");
        }
        if (n != t->buried_ct)
            die("buried list shorter than its count");
        ready += t->ready.len;
        delayed += t->delay.len;
        buried += t->buried_ct;
        reserved += t->reserved_ct;
        urgent += t->urgent_ct;
    }
    if (ready != st->ready || delayed != st->delayed || buried != st->buried ||
        reserved != st->reserved || urgent != st->urgent)
        die("per-tube counts do not add up to the queue's");
}

/* ---- driving sessions ---- */

static void
sess_open(world *w, fsess *f)
{
    if (session_open(&w->p, &f->s, &f->s) < 0)
        die("session_open failed");
    f->open = 1;
    f->deaf = 0;
}

static void
sess_close(world *w, fsess *f)
{
    if (!f->open)
        return;
    if (!f->deaf)
        drain(f);
    session_close(&w->p, &f->s, w->now);
    free(f->in);
    f->in = NULL;
    f->in_len = f->in_cap = 0;
    f->open = 0;
}

/* conn_resume(): give the session what it can take of its pending input. */
static void
pump(world *w, fsess *f)
{
    while (f->in_len && !session_blocked(&f->s)) {
        size_t used = proto_feed(&w->p, &f->s, f->in, f->in_len, w->now);
        if (used > f->in_len)
            die("proto_feed consumed more than it was given");
        if (used == 0)
            break;
        memmove(f->in, f->in + used, f->in_len - used);
        f->in_len -= used;
    }
    if (!f->deaf)
        drain(f);
}

static void
append_input(fsess *f, const uint8_t *d, size_t n)
{
    if (!n)
        return;
    if (f->in_len + n > f->in_cap) {
        size_t cap = f->in_len + n + 256;
        char *b = realloc(f->in, cap);
        if (!b)
            die("out of memory in the harness");
        f->in = b;
        f->in_cap = cap;
    }
    memcpy(f->in + f->in_len, d, n);
    f->in_len += n;
}

static void
feed(world *w, fsess *f, const uint8_t *d, size_t n, int direct_body)
{
    session *s = &f->s;
    if (direct_body && f->in_len == 0 && s->state == SS_BODY && s->body) {
        /* on_read: a body that spans reads goes straight into its buffer. */
        size_t need = (size_t)s->put_size + 2 - s->have;
        size_t k = n < need ? n : need;
        memcpy(s->body + s->have, d, k);
        proto_body_read(&w->p, s, k, w->now);
        d += k;
        n -= k;
    }
    append_input(f, d, n);
    pump(w, f);
}

/* on_read's EOF: a waiting session gives up with TIMED_OUT, anything else
 * finishes what it can and closes. */
static void
hang_up(world *w, fsess *f)
{
    pump(w, f);
    if (f->s.state == SS_WAIT) {
        queue_cancel_wait(&w->q, &f->s.cl);
        proto_wake(&w->p, &f->s, NULL, WAKE_TIMED_OUT);
    }
    sess_close(w, f);
}

static void
advance(world *w, unsigned step)
{
    static const int64_t ms = NS_PER_MS;
    int64_t d;
    if (step == 63) {
        int64_t at = queue_next_deadline(&w->q);
        d = at == INT64_MAX || at <= w->now ? 0 : at - w->now;
    } else if (step < 16) {
        d = (int64_t)step * 100 * ms;
    } else if (step < 32) {
        d = (int64_t)(step - 15) * NS_PER_SEC;
    } else if (step < 48) {
        d = (int64_t)(step - 31) * 60 * NS_PER_SEC;
    } else {
        d = (int64_t)(step - 47) * 3600 * NS_PER_SEC;
    }
    w->now += d;
    queue_tick(&w->q, w->now);
    /* A woken session may take more of its input now. */
    for (int i = 0; i < NSESS; i++)
        pump(w, &w->ss[i]);
}

static void
big_put(world *w, fsess *f)
{
    static char cmd[32 + 65535 + 2];
    static size_t len;
    if (!len) {
        len = (size_t)snprintf(cmd, sizeof cmd, "put 0 0 60 65535\r\n");
        memset(cmd + len, 'b', 65535);
        len += 65535;
        memcpy(cmd + len, "\r\n", 2);
        len += 2;
    }
    feed(w, f, (const uint8_t *)cmd, len, 0);
}

static size_t
chunk_len(unsigned code, size_t left)
{
    static const size_t big[] = {32, 64, 224, 225, 1024, 4096};
    size_t n;
    if (code < 24)
        n = code + 1;
    else if (code < 30)
        n = big[code - 24];
    else
        n = left;
    return n < left ? n : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sizes[] = {65535, 0, 10, 300};
    if (size == 0)
        return 0;
    size_t nscript = data[0];
    if (nscript > size - 1)
        nscript = size - 1;
    const uint8_t *script = data + 1;
    const uint8_t *in = script + nscript;
    size_t left = size - 1 - nscript;

    world *w = calloc(1, sizeof *w);
    if (!w || queue_init(&w->q) < 0 || proto_init(&w->p, &w->q) < 0)
        die("setup failed");
    w->q.on_wake = on_wake;
    w->q.wake_ctx = w;
    w->now = w->p.started_at;
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") && *getenv("FUZZ_TRACE") == '1';
    for (int i = 0; i < NSESS; i++) {
        w->ss[i].name = (char)('A' + i);
        sess_open(w, &w->ss[i]);
    }

    for (size_t i = 0; i < nscript; i++) {
        unsigned s = script[i];
        fsess *f = &w->ss[(s >> 2) & 1];
        switch (s & 3) {
        case 0:
        case 1: {
            size_t n = chunk_len(s >> 3, left);
            feed(w, f, in, n, (s & 3) == 1);
            in += n;
            left -= n;
            break;
        }
        case 2:
            advance(w, s >> 2);
            break;
        case 3:
            f = &w->ss[(s >> 5) & 1];
            switch ((s >> 2) & 7) {
            case 0:
                hang_up(w, f);
                sess_open(w, f);
                break;
            case 1:
                sess_close(w, f);
                sess_open(w, f);
                break;
            case 2:
                w->p.draining = !w->p.draining;
                break;
            case 3:
                w->size_idx = (w->size_idx + 1) % 4;
                w->p.max_job_size = sizes[w->size_idx];
                break;
            case 4:
                f->deaf = !f->deaf;
                pump(w, f);
                break;
            case 5:
                big_put(w, f);
                break;
            default:
                break;
            }
            break;
        }
        /* conn.c closes a session that quit once its replies are out;
         * the client connects again. */
        for (int k = 0; k < NSESS; k++) {
            if (w->ss[k].s.state == SS_CLOSE && !w->ss[k].deaf) {
                sess_close(w, &w->ss[k]);
                sess_open(w, &w->ss[k]);
            }
        }
        check_counts(&w->q);
    }
    if (left)
        feed(w, &w->ss[0], in, left, 0);
    check_counts(&w->q);

    for (int i = 0; i < NSESS; i++) {
        w->ss[i].deaf = 0;
        hang_up(w, &w->ss[i]);
    }
    check_counts(&w->q);
    if (w->q.st.reserved != 0)
        die("jobs still reserved after every session closed");
    if (w->q.st.waiting != 0)
        die("clients still waiting after every session closed");
    if (w->p.cur_conns != 0)
        die("cur_conns is not 0 after every session closed");
    queue_free(&w->q);
    free(w);
    return 0;
}
