/* Unit tests of the protocol layer (src/proto.c, with src/stats.c): bytes in,
 * exact reply bytes out, no sockets. A small harness plays the connection's
 * part: it keeps the input proto_feed did not consume and feeds it again,
 * as the connection layer does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "parse.h"
#include "proto.h"
#include "stats.h"
#include "util.h"

#define SEC(n) ((int64_t)(n) * NS_PER_SEC)
#define LIT(s) s, sizeof(s) - 1

/* ---- harness ---- */

typedef struct sess {
    session s;
    int open;
    char *in;               /* input not consumed yet */
    size_t in_len, in_cap;
} sess;

typedef struct px {
    queue q;
    proto p;
    int64_t t0;             /* "now" at the start; also the proto's start time */
    sess a, b;
} px;

static void
on_wake(void *ctx, client *c, job *j, enum wake_reason why)
{
    px *x = ctx;
    proto_wake(&x->p, c->owner, j, why);
}

static void
open_sess(px *x, sess *s)
{
    assert_int_equal(session_open(&x->p, &s->s, &s->s), 0);
    s->open = 1;
}

static void
close_sess(px *x, sess *s, int64_t now)
{
    if (!s->open)
        return;
    session_close(&x->p, &s->s, now);
    free(s->in);
    s->in = NULL;
    s->in_len = s->in_cap = 0;
    s->open = 0;
}

static int
setup(void **state)
{
    px *x = calloc(1, sizeof *x);
    if (!x || queue_init(&x->q) < 0 || proto_init(&x->p, &x->q) < 0)
        return -1;
    x->q.on_wake = on_wake;
    x->q.wake_ctx = x;
    x->t0 = x->p.started_at;
    if (session_open(&x->p, &x->a.s, &x->a.s) < 0 ||
        session_open(&x->p, &x->b.s, &x->b.s) < 0)
        return -1;
    x->a.open = x->b.open = 1;
    *state = x;
    return 0;
}

static int
teardown(void **state)
{
    px *x = *state;
    close_sess(x, &x->a, x->t0);
    close_sess(x, &x->b, x->t0);
    queue_free(&x->q);
    free(x);
    return 0;
}

/* Feed what the session can take now; keep the rest. */
static void
pump(px *x, sess *s, int64_t now)
{
    while (s->in_len && !session_blocked(&s->s)) {
        size_t used = proto_feed(&x->p, &s->s, s->in, s->in_len, now);
        assert_true(used <= s->in_len);
        if (used == 0)
            break;
        memmove(s->in, s->in + used, s->in_len - used);
        s->in_len -= used;
    }
}

static void
feed_at(px *x, sess *s, const void *data, size_t len, int64_t now)
{
    if (s->in_len + len > s->in_cap) {
        size_t cap = s->in_len + len + 64;
        char *n = realloc(s->in, cap);
        assert_non_null(n);
        s->in = n;
        s->in_cap = cap;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    pump(x, s, now);
}

static void
feed(px *x, sess *s, const char *str)
{
    feed_at(x, s, str, strlen(str), x->t0);
}

/* Feed one byte at a time. */
static void
trickle(px *x, sess *s, const char *data, size_t len, int64_t now)
{
    for (size_t i = 0; i < len; i++)
        feed_at(x, s, data + i, 1, now);
}

static void
print_escaped(const char *label, const char *d, size_t n)
{
    char out[2048];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '\r') {
            out[k++] = '\\';
            out[k++] = 'r';
        } else if (c == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else if (c < 32 || c > 126) {
            k += (size_t)snprintf(out + k, sizeof out - k, "\\x%02x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k] = '\0';
    print_error("%s (%zu bytes): \"%s\"%s\n", label, n, out, k + 8 >= sizeof out ? "..." : "");
}

/* The session's pending output must be exactly want; it is then consumed. */
static void
expect_n_at(sess *s, const char *want, size_t n, const char *file, int line)
{
    buf *o = &s->s.out;
    size_t have = buf_pending(o);
    const char *d = o->data ? o->data + o->off : "";
    if (have != n || memcmp(d, want, n) != 0) {
        print_escaped("want", want, n);
        print_escaped("got ", d, have);
        _fail(file, line);
    }
    if (have)
        buf_consume(o, have);
}

#define EXPECT(s, str) expect_n_at(s, str, strlen(str), __FILE__, __LINE__)
#define EXPECT_N(s, d, n) expect_n_at(s, d, n, __FILE__, __LINE__)

/* "OK <len>\r\n<doc>\r\n" */
static void
expect_yaml_at(sess *s, const char *doc, const char *file, int line)
{
    char *want = NULL;
    size_t n = strlen(doc);
    char head[32];
    int h = snprintf(head, sizeof head, "OK %zu\r\n", n);
    want = malloc((size_t)h + n + 2);
    assert_non_null(want);
    memcpy(want, head, (size_t)h);
    memcpy(want + h, doc, n);
    memcpy(want + h + n, "\r\n", 2);
    expect_n_at(s, want, (size_t)h + n + 2, file, line);
    free(want);
}

#define EXPECT_YAML(s, doc) expect_yaml_at(s, doc, __FILE__, __LINE__)

/* ---- the output buffer ---- */

static void
test_buf(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(buf_pending(&b), 0);
    assert_int_equal(buf_append(&b, "hello ", 6), 0);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(buf_pending(&b), 10);
    assert_memory_equal(b.data, "hello 42-x", 10);
    assert_int_equal(b.cap, 256);
    buf_consume(&b, 6);
    assert_int_equal(buf_pending(&b), 4);
    assert_memory_equal(b.data + b.off, "42-x", 4);
    /* A long printf (past its 256-byte scratch) is complete. */
    char big[1500];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(buf_pending(&b), 4 + 1501);
    assert_memory_equal(b.data + b.off, "42-x[bbb", 8);
    assert_int_equal(b.data[b.off + 4 + 1500], ']');
    assert_int_equal(b.cap, 2048);
    /* Emptied: a buffer over 1024 bytes is freed... */
    buf_consume(&b, buf_pending(&b));
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    /* ...one of 1024 or less is kept for reuse. */
    char kb[1000];
    memset(kb, 'k', sizeof kb);
    assert_int_equal(buf_append(&b, kb, sizeof kb), 0);
    assert_int_equal(b.cap, 1024);
    buf_consume(&b, sizeof kb);
    assert_non_null(b.data);
    assert_int_equal(b.cap, 1024);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    buf_consume(&b, 3);
    assert_int_equal(b.cap, 256);
    /* Unsent bytes slide to the front rather than grow the buffer. */
    char chunk[200];
    memset(chunk, 'c', sizeof chunk);
    assert_int_equal(buf_append(&b, chunk, 200), 0);
    buf_consume(&b, 150);
    assert_int_equal(buf_append(&b, chunk, 150), 0);
    assert_int_equal(b.cap, 256);
    assert_int_equal(b.off, 0);
    assert_int_equal(buf_pending(&b), 200);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

/* ---- commands, one by one ---- */

static void
test_put_reserve_delete(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "put 0 0 10 5\r\nhello\r\n");
    EXPECT(a, "INSERTED 1\r\n");
    feed(x, a, "put 4294967295 0 10 0\r\n\r\n");
    EXPECT(a, "INSERTED 2\r\n");
    feed(x, a, "reserve\r\n");
    EXPECT(a, "RESERVED 1 5\r\nhello\r\n");
    feed(x, a, "reserve\r\n");
    EXPECT(a, "RESERVED 2 0\r\n\r\n");
    feed(x, a, "delete 1\r\n");
    EXPECT(a, "DELETED\r\n");
    feed(x, a, "delete 1\r\n");
    EXPECT(a, "NOT_FOUND\r\n");
    /* Another session cannot delete a job a holds. */
    feed(x, &x->b, "delete 2\r\n");
    EXPECT(&x->b, "NOT_FOUND\r\n");
    feed(x, a, "delete 2\r\n");
    EXPECT(a, "DELETED\r\n");
    assert_int_equal(x->p.op_ct[OP_PUT], 2);
    assert_int_equal(x->p.op_ct[OP_RESERVE], 2);
    assert_int_equal(x->p.op_ct[OP_DELETE], 4);
    assert_int_equal(x->q.st.total_jobs, 2);
    assert_int_equal(x->q.jobs.count, 0);
    assert_int_equal(x->q.st.producers, 1);
    assert_int_equal(x->q.st.workers, 1);
}

static void
test_binary_body(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    /* A body may hold any byte, CRLF and NUL included. */
    static const char cmd[] = "put 1 0 10 6\r\na\r\n\0b\xff\r\n";
    feed_at(x, a, cmd, sizeof cmd - 1, x->t0);
    EXPECT(a, "INSERTED 1\r\n");
    feed(x, a, "peek 1\r\n");
    static const char want[] = "FOUND 1 6\r\na\r\n\0b\xff\r\n";
    EXPECT_N(a, want, sizeof want - 1);
}

static void
test_peek(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "peek-ready\r\npeek-delayed\r\npeek-buried\r\npeek 1\r\n");
    EXPECT(a, "NOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
    feed(x, a, "put 5 0 10 1\r\nr\r\nput 1 0 10 1\r\ns\r\nput 0 30 10 1\r\nd\r\n");
    EXPECT(a, "INSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\n");
    feed(x, a, "peek-ready\r\n");
    EXPECT(a, "FOUND 2 1\r\ns\r\n");
    feed(x, a, "peek-delayed\r\n");
    EXPECT(a, "FOUND 3 1\r\nd\r\n");
    feed(x, a, "peek 1\r\npeek 3\r\npeek 4\r\n");
    EXPECT(a, "FOUND 1 1\r\nr\r\nFOUND 3 1\r\nd\r\nNOT_FOUND\r\n");
    feed(x, a, "reserve\r\nbury 2 9\r\npeek-buried\r\n");
    EXPECT(a, "RESERVED 2 1\r\ns\r\nBURIED\r\nFOUND 2 1\r\ns\r\n");
    /* Peeks look at the used tube, not the watched ones. */
    feed(x, a, "use other\r\npeek-ready\r\npeek-buried\r\npeek-delayed\r\npeek 1\r\n");
    EXPECT(a, "USING other\r\nNOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\nFOUND 1 1\r\nr\r\n");
    assert_int_equal(x->p.op_ct[OP_PEEK], 5);
    assert_int_equal(x->p.op_ct[OP_PEEK_READY], 3);
    assert_int_equal(x->p.op_ct[OP_PEEK_DELAYED], 3);
    assert_int_equal(x->p.op_ct[OP_PEEK_BURIED], 3);
}

static void
test_release_bury_kick_touch(void **state)
{
    px *x = *state;
    sess *a = &x->a, *b = &x->b;
    int64_t t = x->t0;
    feed(x, a, "put 0 0 10 3\r\nabc\r\nreserve\r\n");
    EXPECT(a, "INSERTED 1\r\nRESERVED 1 3\r\nabc\r\n");
    feed(x, b, "release 1 0 0\r\nbury 1 0\r\ntouch 1\r\n");
    EXPECT(b, "NOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
    feed(x, a, "touch 1\r\ntouch 2\r\n");
    EXPECT(a, "TOUCHED\r\nNOT_FOUND\r\n");
    feed(x, a, "release 1 5 0\r\n");
    EXPECT(a, "RELEASED\r\n");
    assert_int_equal(queue_find(&x->q, 1)->pri, 5);
    feed(x, a, "release 1 5 0\r\n");
    EXPECT(a, "NOT_FOUND\r\n");
    feed(x, a, "reserve\r\nbury 1 7\r\nbury 1 7\r\n");
    EXPECT(a, "RESERVED 1 3\r\nabc\r\nBURIED\r\nNOT_FOUND\r\n");
    feed(x, a, "kick 10\r\nkick 10\r\n");
    EXPECT(a, "KICKED 1\r\nKICKED 0\r\n");
    feed(x, a, "reserve\r\nrelease 1 0 10\r\n");
    EXPECT(a, "RESERVED 1 3\r\nabc\r\nRELEASED\r\n");
    assert_int_equal(queue_find(&x->q, 1)->state, JOB_DELAYED);
    feed(x, a, "kick-job 1\r\nkick-job 1\r\nkick-job 99\r\n");
    EXPECT(a, "KICKED\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
    feed(x, a, "reserve\r\nbury 1 0\r\nkick-job 1\r\n");
    EXPECT(a, "RESERVED 1 3\r\nabc\r\nBURIED\r\nKICKED\r\n");
    /* A released job with a delay comes back at the tick. */
    feed(x, a, "reserve\r\nrelease 1 0 2\r\npeek-delayed\r\n");
    EXPECT(a, "RESERVED 1 3\r\nabc\r\nRELEASED\r\nFOUND 1 3\r\nabc\r\n");
    queue_tick(&x->q, t + SEC(2));
    feed_at(x, a, LIT("peek-ready\r\n"), t + SEC(2));
    EXPECT(a, "FOUND 1 3\r\nabc\r\n");
    const job *j = queue_find(&x->q, 1);
    assert_int_equal(j->releases, 3);
    assert_int_equal(j->buries, 2);
    assert_int_equal(j->kicks, 3);
    assert_int_equal(x->p.op_ct[OP_RELEASE], 5);
    assert_int_equal(x->p.op_ct[OP_BURY], 4);
    assert_int_equal(x->p.op_ct[OP_KICK], 2);
    assert_int_equal(x->p.op_ct[OP_KICK_JOB], 4);
    assert_int_equal(x->p.op_ct[OP_TOUCH], 3);
}

static void
test_reserve_variants(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "reserve-with-timeout 0\r\n");
    EXPECT(a, "TIMED_OUT\r\n");
    feed(x, a, "put 0 0 1 2\r\nhi\r\nput 0 0 10 2\r\nho\r\n");
    EXPECT(a, "INSERTED 1\r\nINSERTED 2\r\n");
    feed(x, a, "reserve-job 2\r\nreserve-job 2\r\nreserve-job 3\r\n");
    EXPECT(a, "RESERVED 2 2\r\nho\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
    feed(x, a, "reserve-with-timeout 0\r\n");
    EXPECT(a, "RESERVED 1 2\r\nhi\r\n");
    /* Job 1 has TTR 1 s: its deadline is within the safety margin at once. */
    feed(x, a, "reserve-with-timeout 0\r\nreserve-with-timeout 5\r\nreserve\r\n");
    EXPECT(a, "DEADLINE_SOON\r\nDEADLINE_SOON\r\nDEADLINE_SOON\r\n");
    assert_int_equal(a->s.state, SS_LINE);
    assert_int_equal(x->p.op_ct[OP_RESERVE_TIMEOUT], 4);
    assert_int_equal(x->p.op_ct[OP_RESERVE_JOB], 3);
    assert_int_equal(x->p.op_ct[OP_RESERVE], 1);
}

static void
test_tube_commands(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "list-tube-used\r\n");
    EXPECT(a, "USING default\r\n");
    feed(x, a, "use foo\r\n");
    EXPECT(a, "USING foo\r\n");
    feed(x, a, "list-tube-used\r\n");
    EXPECT(a, "USING foo\r\n");
    feed(x, a, "watch foo\r\nwatch bar\r\nwatch foo\r\n");
    EXPECT(a, "WATCHING 2\r\nWATCHING 3\r\nWATCHING 3\r\n");
    feed(x, a, "list-tubes-watched\r\n");
    EXPECT_YAML(a, "---\n- default\n- foo\n- bar\n");
    feed(x, a, "list-tubes\r\n");
    EXPECT_YAML(a, "---\n- default\n- foo\n- bar\n");
    feed(x, a, "ignore bar\r\nignore nope\r\nignore default\r\n");
    EXPECT(a, "WATCHING 2\r\nWATCHING 2\r\nWATCHING 1\r\n");
    feed(x, a, "ignore foo\r\n");
    EXPECT(a, "NOT_IGNORED\r\n");
    feed(x, a, "list-tubes-watched\r\nlist-tubes\r\n");
    EXPECT(a, "OK 10\r\n---\n- foo\n\r\nOK 20\r\n---\n- default\n- foo\n\r\n");
    /* A name of exactly 200 bytes is fine. */
    char cmd[300];
    memcpy(cmd, "use ", 4);
    memset(cmd + 4, 'n', 200);
    memcpy(cmd + 204, "\r\n", 3);
    feed(x, a, cmd);
    char want[300];
    memcpy(want, "USING ", 6);
    memset(want + 6, 'n', 200);
    memcpy(want + 206, "\r\n", 3);
    EXPECT(a, want);
    assert_int_equal(x->p.op_ct[OP_USE], 2);
    assert_int_equal(x->p.op_ct[OP_WATCH], 3);
    assert_int_equal(x->p.op_ct[OP_IGNORE], 4);
    assert_int_equal(x->p.op_ct[OP_LIST_TUBES], 2);
    assert_int_equal(x->p.op_ct[OP_LIST_TUBE_USED], 2);
    assert_int_equal(x->p.op_ct[OP_LIST_TUBES_WATCHED], 2);
}

static void
test_stats_tube_and_pause(void **state)
{
    px *x = *state;
    sess *a = &x->a, *b = &x->b;
    int64_t t = x->t0;
    feed(x, a, "stats-tube default\r\n");
    EXPECT_YAML(a, "---\n"
                   "name: \"default\"\n"
                   "current-jobs-urgent: 0\n"
                   "current-jobs-ready: 0\n"
                   "current-jobs-reserved: 0\n"
                   "current-jobs-delayed: 0\n"
                   "current-jobs-buried: 0\n"
                   "total-jobs: 0\n"
                   "current-using: 2\n"
                   "current-watching: 2\n"
                   "current-waiting: 0\n"
                   "cmd-delete: 0\n"
                   "cmd-pause-tube: 0\n"
                   "pause: 0\n"
                   "pause-time-left: 0\n");
    feed(x, a, "stats-tube nosuch\r\npause-tube nosuch 5\r\n");
    EXPECT(a, "NOT_FOUND\r\nNOT_FOUND\r\n");
    feed(x, a, "use foo\r\nput 1 0 100 1\r\na\r\nput 2000 0 10 1\r\nb\r\n"
               "put 1 20 10 1\r\nc\r\nput 1 0 10 1\r\nd\r\nput 1 0 10 1\r\ne\r\n");
    EXPECT(a, "USING foo\r\nINSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\nINSERTED 4\r\n"
              "INSERTED 5\r\n");
    feed(x, b, "watch foo\r\nignore default\r\nreserve\r\nreserve\r\nbury 4 1\r\ndelete 5\r\n");
    EXPECT(b, "WATCHING 2\r\nWATCHING 1\r\nRESERVED 1 1\r\na\r\nRESERVED 4 1\r\nd\r\n"
              "BURIED\r\nDELETED\r\n");
    feed(x, a, "pause-tube foo 30\r\n");
    EXPECT(a, "PAUSED\r\n");
    /* Job 2 is ready, but foo is paused: b waits. */
    feed(x, b, "reserve-with-timeout 100\r\n");
    assert_int_equal(b->s.state, SS_WAIT);
    EXPECT(b, "");
    feed_at(x, a, LIT("stats-tube foo\r\n"), t + SEC(10));
    EXPECT_YAML(a, "---\n"
                   "name: \"foo\"\n"
                   "current-jobs-urgent: 0\n"
                   "current-jobs-ready: 1\n"
                   "current-jobs-reserved: 1\n"
                   "current-jobs-delayed: 1\n"
                   "current-jobs-buried: 1\n"
                   "total-jobs: 5\n"
                   "current-using: 1\n"
                   "current-watching: 1\n"
                   "current-waiting: 1\n"
                   "cmd-delete: 1\n"
                   "cmd-pause-tube: 1\n"
                   "pause: 30\n"
                   "pause-time-left: 20\n");
    /* The pause ends at t+30 and the waiter gets the best ready job: the
     * delayed job 3 came ready at t+20 with priority 1, before job 2. */
    queue_tick(&x->q, t + SEC(20));
    queue_tick(&x->q, t + SEC(30) - 1);
    EXPECT(b, "");
    queue_tick(&x->q, t + SEC(30));
    EXPECT(b, "RESERVED 3 1\r\nc\r\n");
    assert_int_equal(b->s.state, SS_LINE);
    /* "pause-tube" needs no space before the name, as in beanstalkd. */
    feed(x, a, "pause-tubefoo 0\r\npause-tube  foo  7\r\n");
    EXPECT(a, "PAUSED\r\nPAUSED\r\n");
    assert_int_equal(x->p.op_ct[OP_PAUSE_TUBE], 4);
    assert_int_equal(x->p.op_ct[OP_STATS_TUBE], 3);
}

static void
test_stats_job(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    int64_t t = x->t0;
    feed(x, a, "put 5 0 10 1\r\nx\r\n");
    EXPECT(a, "INSERTED 1\r\n");
    feed(x, a, "stats-job 1\r\n");
    EXPECT_YAML(a, "---\n"
                   "id: 1\n"
                   "tube: \"default\"\n"
                   "state: ready\n"
                   "pri: 5\n"
                   "age: 0\n"
                   "delay: 0\n"
                   "ttr: 10\n"
                   "time-left: 0\n"
                   "file: 0\n"
                   "reserves: 0\n"
                   "timeouts: 0\n"
                   "releases: 0\n"
                   "buries: 0\n"
                   "kicks: 0\n");
    feed_at(x, a, LIT("reserve\r\n"), t + SEC(3));
    EXPECT(a, "RESERVED 1 1\r\nx\r\n");
    feed_at(x, a, LIT("stats-job 1\r\n"), t + SEC(5));
    EXPECT_YAML(a, "---\n"
                   "id: 1\n"
                   "tube: \"default\"\n"
                   "state: reserved\n"
                   "pri: 5\n"
                   "age: 5\n"
                   "delay: 0\n"
                   "ttr: 10\n"
                   "time-left: 8\n"
                   "file: 0\n"
                   "reserves: 1\n"
                   "timeouts: 0\n"
                   "releases: 0\n"
                   "buries: 0\n"
                   "kicks: 0\n");
    feed_at(x, a, LIT("release 1 7 60\r\n"), t + SEC(5));
    EXPECT(a, "RELEASED\r\n");
    feed_at(x, a, LIT("stats-job 1\r\n"), t + SEC(5));
    EXPECT_YAML(a, "---\n"
                   "id: 1\n"
                   "tube: \"default\"\n"
                   "state: delayed\n"
                   "pri: 7\n"
                   "age: 5\n"
                   "delay: 60\n"
                   "ttr: 10\n"
                   "time-left: 60\n"
                   "file: 0\n"
                   "reserves: 1\n"
                   "timeouts: 0\n"
                   "releases: 1\n"
                   "buries: 0\n"
                   "kicks: 0\n");
    feed(x, a, "stats-job 2\r\n");
    EXPECT(a, "NOT_FOUND\r\n");
    assert_int_equal(x->p.op_ct[OP_STATS_JOB], 4);
}

static void
test_quit(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "quit\r\nlist-tube-used\r\n");
    assert_int_equal(a->s.state, SS_CLOSE);
    assert_true(session_blocked(&a->s));
    EXPECT(a, "");
    assert_int_equal(a->in_len, strlen("list-tube-used\r\n"));
    /* Nothing more is taken. */
    assert_int_equal(proto_feed(&x->p, &a->s, a->in, a->in_len, x->t0), 0);
    /* "quit" is a prefix: anything after it still quits. */
    feed(x, &x->b, "quitting\r\n");
    assert_int_equal(x->b.s.state, SS_CLOSE);
    assert_int_equal(x->p.op_ct[OP_QUIT], 2);
}

/* ---- input framing ---- */

static const char pipeline[] =
    "put 3 0 10 5\r\nfirst\r\n"
    "put 1 0 10 6\r\nsecond\r\n"
    "use tube2\r\n"
    "put 2 0 10 0\r\n\r\n"
    "watch tube2\r\n"
    "reserve\r\n"
    "reserve-with-timeout 0\r\n"
    "peek-ready\r\n"
    "delete 2\r\n"
    "bogus\r\n"
    "list-tube-used\r\n";

static const char pipeline_reply[] =
    "INSERTED 1\r\n"
    "INSERTED 2\r\n"
    "USING tube2\r\n"
    "INSERTED 3\r\n"
    "WATCHING 2\r\n"
    "RESERVED 2 6\r\nsecond\r\n"
    "RESERVED 3 0\r\n\r\n"
    "NOT_FOUND\r\n"
    "DELETED\r\n"
    "UNKNOWN_COMMAND\r\n"
    "USING tube2\r\n";

static void
test_pipelined(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    size_t n = sizeof pipeline - 1;
    /* One feed with everything: proto_feed takes it all at once. */
    assert_int_equal(proto_feed(&x->p, &a->s, pipeline, n, x->t0), n);
    EXPECT(a, pipeline_reply);
}

static void
test_one_byte_feeds(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    trickle(x, a, pipeline, sizeof pipeline - 1, x->t0);
    EXPECT(a, pipeline_reply);
    assert_int_equal(a->in_len, 0);
    assert_null(a->s.body);
}

static void
test_split_everywhere(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    /* Every split point of a put with its body, then a command. */
    static const char cmd[] = "put 0 0 10 4\r\nab\r\n\r\nlist-tube-used\r\n";
    size_t n = sizeof cmd - 1;
    for (size_t cut = 1; cut < n; cut++) {
        feed_at(x, a, cmd, cut, x->t0);
        feed_at(x, a, cmd + cut, n - cut, x->t0);
        char want[64];
        snprintf(want, sizeof want, "INSERTED %zu\r\nUSING default\r\n", cut);
        EXPECT(a, want);
        assert_int_equal(a->in_len, 0);
    }
    feed(x, a, "peek 7\r\n");
    EXPECT(a, "FOUND 7 4\r\nab\r\n\r\n");
}

static void
test_body_in_pieces(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "put 0 0 10 10\r\n0123");
    EXPECT(a, "");
    assert_int_equal(a->s.state, SS_BODY);
    assert_non_null(a->s.body);             /* the body spans feeds */
    assert_int_equal(a->s.have, 4);
    feed(x, a, "456");
    EXPECT(a, "");
    feed(x, a, "789\r");
    EXPECT(a, "");
    assert_int_equal(a->s.have, 11);
    feed(x, a, "\nlist-tube-used\r\n");
    EXPECT(a, "INSERTED 1\r\nUSING default\r\n");
    assert_null(a->s.body);
    assert_int_equal(a->s.state, SS_LINE);
    feed(x, a, "peek 1\r\n");
    EXPECT(a, "FOUND 1 10\r\n0123456789\r\n");
    /* The body after the line, in the same feed but split from its CRLF. */
    feed(x, a, "put 0 0 10 3\r\nxyz");
    feed(x, a, "\r\n");
    EXPECT(a, "INSERTED 2\r\n");
    /* proto_body_read: the caller writes into s->body itself, as the
     * connection does for a body that spans reads. */
    feed(x, a, "put 0 0 10 5\r\nab");
    assert_non_null(a->s.body);
    memcpy(a->s.body + a->s.have, "cde\r\n", 5);
    proto_body_read(&x->p, &a->s, 5, x->t0);
    EXPECT(a, "INSERTED 3\r\n");
    assert_null(a->s.body);
    feed(x, a, "peek 3\r\n");
    EXPECT(a, "FOUND 3 5\r\nabcde\r\n");
}

static void
test_expected_crlf(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    feed(x, a, "put 0 0 10 3\r\nabcXYpeek-ready\r\n");
    EXPECT(a, "EXPECTED_CRLF\r\nNOT_FOUND\r\n");
    /* The body is exactly size + 2 bytes: a longer body leaves its tail to
     * be read as a command. */
    feed(x, a, "put 0 0 10 3\r\nabcd\r\n");
    EXPECT(a, "EXPECTED_CRLF\r\n");
    assert_int_equal(a->s.state, SS_LINE);
    feed(x, a, "\r\n");
    EXPECT(a, "UNKNOWN_COMMAND\r\n");
    /* Only CR, or only LF. */
    feed(x, a, "put 0 0 10 1\r\na\rX");
    EXPECT(a, "EXPECTED_CRLF\r\n");
    feed(x, a, "put 0 0 10 1\r\naX\n");
    EXPECT(a, "EXPECTED_CRLF\r\n");
    /* Split across feeds too. */
    feed(x, a, "put 0 0 10 2\r\nab");
    feed(x, a, "\n\n");
    EXPECT(a, "EXPECTED_CRLF\r\n");
    assert_null(a->s.body);
    assert_int_equal(x->q.st.total_jobs, 0);
    assert_int_equal(x->q.jobs.count, 0);
    assert_int_equal(x->p.op_ct[OP_PUT], 5);
    /* Each bad body used up an id, as in beanstalkd, which numbers a job
     * when its command line arrives. */
    feed(x, a, "put 0 0 10 1\r\nz\r\n");
    EXPECT(a, "INSERTED 6\r\n");
}

static void
test_job_too_big(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    x->p.max_job_size = 10;
    /* Exactly the limit is fine. */
    feed(x, a, "put 0 0 10 10\r\n0123456789\r\n");
    EXPECT(a, "INSERTED 1\r\n");
    /* One more is skipped, body and all, even if it looks like commands. */
    feed(x, a, "put 0 0 10 11\r\nstats\r\npeek\r\nlist-tube-used\r\n");
    EXPECT(a, "JOB_TOO_BIG\r\nUSING default\r\n");
    /* In pieces. */
    feed(x, a, "put 0 0 10 20\r\n0123456789");
    EXPECT(a, "");
    assert_int_equal(a->s.state, SS_DISCARD_BODY);
    feed(x, a, "0123456789\r");
    EXPECT(a, "");
    feed(x, a, "\npeek-ready\r\n");
    EXPECT(a, "JOB_TOO_BIG\r\nFOUND 1 10\r\n0123456789\r\n");
    /* One byte at a time. */
    static const char big[] = "put 0 0 10 12\r\nABCDEFGHIJKL\r\nlist-tube-used\r\n";
    trickle(x, a, big, sizeof big - 1, x->t0);
    EXPECT(a, "JOB_TOO_BIG\r\nUSING default\r\n");
    /* The size is checked before the rest of the line, as beanstalkd does. */
    feed(x, a, "put 0 0 10 11 junk\r\nhello world\r\nlist-tube-used\r\n");
    EXPECT(a, "JOB_TOO_BIG\r\nUSING default\r\n");
    assert_int_equal(x->q.st.total_jobs, 1);
    assert_int_equal(x->p.op_ct[OP_PUT], 5);
    /* A body too big uses up no id (beanstalkd refuses it before it makes
     * the job). */
    feed(x, a, "put 0 0 10 1\r\nz\r\n");
    EXPECT(a, "INSERTED 2\r\n");
}

static void
test_draining(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    x->p.draining = 1;
    feed(x, a, "put 0 0 10 2\r\nhi\r\nlist-tube-used\r\n");
    EXPECT(a, "DRAINING\r\nUSING default\r\n");
    assert_int_equal(x->q.jobs.count, 0);
    assert_int_equal(x->q.st.total_jobs, 0);
    /* The refused put used up an id, as in beanstalkd. */
    x->p.draining = 0;
    feed(x, a, "put 0 0 10 2\r\nhi\r\n");
    EXPECT(a, "INSERTED 2\r\n");
}

/* Bad lines: each reply, and the session carries on. */
static void
test_bad_format_vs_unknown(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"delete\r\n", "UNKNOWN_COMMAND\r\n"},
        {"touch\r\n", "UNKNOWN_COMMAND\r\n"},
        {"kick\r\n", "UNKNOWN_COMMAND\r\n"},
        {"use\r\n", "UNKNOWN_COMMAND\r\n"},
        {"put\r\n", "UNKNOWN_COMMAND\r\n"},
        {"bogus\r\n", "UNKNOWN_COMMAND\r\n"},
        {"PUT 0 0 1 1\r\n", "UNKNOWN_COMMAND\r\n"},
        {" reserve\r\n", "UNKNOWN_COMMAND\r\n"},
        {"\r\n", "UNKNOWN_COMMAND\r\n"},
        {"reservex\r\n", "BAD_FORMAT\r\n"},
        {"reserve \r\n", "BAD_FORMAT\r\n"},
        {"reserve-with-timeout\r\n", "BAD_FORMAT\r\n"},
        {"reserve-with-timeout x\r\n", "BAD_FORMAT\r\n"},
        {"reserve-job\r\n", "BAD_FORMAT\r\n"},
        {"reserve-job 1 \r\n", "BAD_FORMAT\r\n"},
        {"put 1 2 3\r\n", "BAD_FORMAT\r\n"},
        {"put \r\n", "BAD_FORMAT\r\n"},
        {"put 1 2 3 x\r\n", "BAD_FORMAT\r\n"},
        {"put 0 0 10 4294967296\r\n", "BAD_FORMAT\r\n"},
        {"put -1 0 10 1\r\n", "BAD_FORMAT\r\n"},
        {"delete 1 \r\n", "BAD_FORMAT\r\n"},
        {"delete x\r\n", "BAD_FORMAT\r\n"},
        {"delete -1\r\n", "BAD_FORMAT\r\n"},
        {"delete 18446744073709551616\r\n", "BAD_FORMAT\r\n"},
        {"delete 18446744073709551615\r\n", "NOT_FOUND\r\n"},
        {"delete   1\r\n", "NOT_FOUND\r\n"},
        {"release 1 2\r\n", "BAD_FORMAT\r\n"},
        {"release 1 2 3 \r\n", "BAD_FORMAT\r\n"},
        {"bury 1\r\n", "BAD_FORMAT\r\n"},
        {"touch 1 \r\n", "BAD_FORMAT\r\n"},
        {"kick x\r\n", "BAD_FORMAT\r\n"},
        {"kick-job\r\n", "UNKNOWN_COMMAND\r\n"},
        {"kick-job x\r\n", "BAD_FORMAT\r\n"},
        {"peek\r\n", "UNKNOWN_COMMAND\r\n"},
        {"peek x\r\n", "BAD_FORMAT\r\n"},
        {"peek-ready \r\n", "BAD_FORMAT\r\n"},
        {"peek-readyx\r\n", "BAD_FORMAT\r\n"},
        {"stats \r\n", "BAD_FORMAT\r\n"},
        {"stats-job\r\n", "BAD_FORMAT\r\n"},
        {"stats-job 1 \r\n", "BAD_FORMAT\r\n"},
        {"stats-tube default \r\n", "BAD_FORMAT\r\n"},
        {"list-tubes \r\n", "BAD_FORMAT\r\n"},
        {"list-tube-used \r\n", "BAD_FORMAT\r\n"},
        {"list-tubes-watched \r\n", "BAD_FORMAT\r\n"},
        {"use \r\n", "BAD_FORMAT\r\n"},
        {"use foo \r\n", "BAD_FORMAT\r\n"},
        {"use  foo\r\n", "BAD_FORMAT\r\n"},
        {"use foo bar\r\n", "BAD_FORMAT\r\n"},
        {"use -foo\r\n", "BAD_FORMAT\r\n"},
        {"use foo*\r\n", "BAD_FORMAT\r\n"},
        {"watch foo \r\n", "BAD_FORMAT\r\n"},
        {"ignore -x\r\n", "BAD_FORMAT\r\n"},
        {"pause-tube\r\n", "BAD_FORMAT\r\n"},
        {"pause-tube default\r\n", "BAD_FORMAT\r\n"},
        {"pause-tube default 1 \r\n", "BAD_FORMAT\r\n"},
        {"pause-tube -x 1\r\n", "BAD_FORMAT\r\n"},
        {"pause-tube default x\r\n", "BAD_FORMAT\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        feed(x, a, cases[i].in);
        if (buf_pending(&a->s.out) != strlen(cases[i].want))
            print_error("case %zu: %s", i, cases[i].in);
        EXPECT(a, cases[i].want);
        assert_int_equal(a->s.state, SS_LINE);
        assert_int_equal(a->in_len, 0);
    }
    /* A name of 201 bytes. */
    char cmd[300];
    memcpy(cmd, "use ", 4);
    memset(cmd + 4, 'n', 201);
    memcpy(cmd + 205, "\r\n", 3);
    feed(x, a, cmd);
    EXPECT(a, "BAD_FORMAT\r\n");
    /* Malformed lines count no command; the valid ones do. */
    assert_int_equal(x->p.op_ct[OP_PUT], 0);
    assert_int_equal(x->p.op_ct[OP_DELETE], 2);
    assert_int_equal(x->p.op_ct[OP_USE], 0);
    assert_int_equal(x->p.op_ct[OP_RESERVE], 0);
    assert_int_equal(x->p.op_ct[OP_STATS], 0);
    assert_int_equal(x->p.op_ct[OP_PAUSE_TUBE], 1);     /* "-x" parses, then fails */
    assert_int_equal(x->q.tubes.len, 1);
    feed(x, a, "list-tube-used\r\n");
    EXPECT(a, "USING default\r\n");
}

static void
test_trailing_garbage_put_reads_body_as_command(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    /* A malformed put with a valid size leaves its body to be read as a
     * command line, as beanstalkd does. */
    feed(x, a, "put 0 0 10 14 \r\nlist-tube-used\r\n");
    EXPECT(a, "BAD_FORMAT\r\nUSING default\r\n");
    assert_int_equal(x->q.jobs.count, 0);
    /* No id was used up. */
    feed(x, a, "put 0 0 10 1\r\nz\r\n");
    EXPECT(a, "INSERTED 1\r\n");
}

static void
test_nul_in_line(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    static const char l1[] = "delete 1\0\r\n";
    static const char l2[] = "\0reserve\r\n";
    static const char l3[] = "stats\0\r\n";
    static const char l4[] = "use fo\0o\r\n";
    feed(x, a, "put 0 0 10 1\r\nx\r\n");
    EXPECT(a, "INSERTED 1\r\n");
    feed_at(x, a, l1, sizeof l1 - 1, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    feed_at(x, a, l2, sizeof l2 - 1, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    feed_at(x, a, l3, sizeof l3 - 1, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    feed_at(x, a, l4, sizeof l4 - 1, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    feed(x, a, "peek 1\r\nlist-tube-used\r\n");
    EXPECT(a, "FOUND 1 1\r\nx\r\nUSING default\r\n");
    assert_int_equal(x->p.op_ct[OP_DELETE], 0);
    assert_int_equal(x->p.op_ct[OP_RESERVE], 0);
    assert_int_equal(x->p.op_ct[OP_STATS], 0);
}

/* "delete" + spaces + "1": a valid command line of total bytes, CRLF
 * included. */
static char *
long_delete(size_t total)
{
    char *l = malloc(total + 1);
    assert_non_null(l);
    size_t body = total - 2;
    memcpy(l, "delete ", 7);
    memset(l + 7, ' ', body - 8);
    l[body - 1] = '1';
    memcpy(l + body, "\r\n", 3);
    assert_int_equal(strlen(l), total);
    return l;
}

static void
test_line_limit(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    assert_int_equal(LINE_MAX_BYTES, 224);
    feed(x, a, "put 0 0 10 1\r\nx\r\n");
    EXPECT(a, "INSERTED 1\r\n");

    /* 225 bytes with its CRLF: too long; the next command still runs. */
    char *l225 = long_delete(225);
    feed(x, a, l225);
    feed(x, a, "peek 1\r\n");
    EXPECT(a, "BAD_FORMAT\r\nFOUND 1 1\r\nx\r\n");
    /* Same, in one feed with the next command. */
    feed_at(x, a, l225, 225, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    /* Same, one byte at a time (its CR is byte 224, its LF arrives later). */
    trickle(x, a, l225, 225, x->t0);
    EXPECT(a, "BAD_FORMAT\r\n");
    trickle(x, a, "peek 1\r\n", 8, x->t0);
    EXPECT(a, "FOUND 1 1\r\nx\r\n");
    assert_int_equal(x->p.op_ct[OP_DELETE], 0);

    /* 224 bytes with its CRLF: accepted. */
    char *l224 = long_delete(224);
    feed(x, a, l224);
    EXPECT(a, "DELETED\r\n");
    feed(x, a, "put 0 0 10 1\r\ny\r\n");
    EXPECT(a, "INSERTED 2\r\n");
    l224[222 - 1] = '2';
    trickle(x, a, l224, 224, x->t0);
    EXPECT(a, "DELETED\r\n");
    assert_int_equal(x->p.op_ct[OP_DELETE], 2);

    /* Much longer, fed in chunks: one BAD_FORMAT for the whole line. */
    char big[3000];
    memset(big, 'z', sizeof big);
    for (size_t off = 0; off < sizeof big; off += 700)
        feed_at(x, a, big + off, sizeof big - off < 700 ? sizeof big - off : 700, x->t0);
    EXPECT(a, "");
    assert_int_equal(a->s.state, SS_DISCARD_LINE);
    feed(x, a, "zz\r");
    EXPECT(a, "");
    feed(x, a, "\nlist-tube-used\r\n");
    EXPECT(a, "BAD_FORMAT\r\nUSING default\r\n");
    /* A lone CR inside a long line is not its end. */
    big[500] = '\r';
    memcpy(big + 2000, "\r\nlist-tube-used\r\n", 18);
    feed_at(x, a, big, 2018, x->t0);
    EXPECT(a, "BAD_FORMAT\r\nUSING default\r\n");
    free(l224);
    free(l225);
}

static void
test_stats(void **state)
{
    px *x = *state;
    sess *a = &x->a, *b = &x->b;
    /* A third connection came and went. */
    sess gone = {0};
    open_sess(x, &gone);
    close_sess(x, &gone, x->t0);
    feed(x, a, "put 0 0 10 1\r\nx\r\nput 2000 5 10 1\r\ny\r\nput 10 0 10 1\r\nz\r\n");
    EXPECT(a, "INSERTED 1\r\nINSERTED 2\r\nINSERTED 3\r\n");
    feed(x, b, "reserve\r\nuse foo\r\nstats\r\n");
    buf *o = &b->s.out;
    const char *d = o->data + o->off;
    size_t n = buf_pending(o);
    const char *head = "RESERVED 1 1\r\nx\r\nUSING foo\r\n";
    assert_true(n > strlen(head));
    assert_memory_equal(d, head, strlen(head));
    d += strlen(head);
    n -= strlen(head);

    /* "OK <len>\r\n" with len the exact length of the document. */
    char *doc = NULL;
    unsigned long len = strtoul(d + 3, &doc, 10);
    assert_memory_equal(d, "OK ", 3);
    assert_memory_equal(doc, "\r\n", 2);
    doc += 2;
    assert_int_equal((size_t)(doc - d) + len + 2, n);
    assert_memory_equal(doc + len, "\r\n", 2);
    assert_memory_equal(doc, "---\ncurrent-jobs-urgent: 1\ncurrent-jobs-ready: 1\n", 49);

    /* Every key, in beanstalkd's order. */
    static const char *keys[] = {
        "current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved",
        "current-jobs-delayed", "current-jobs-buried", "cmd-put", "cmd-peek",
        "cmd-peek-ready", "cmd-peek-delayed", "cmd-peek-buried", "cmd-reserve",
        "cmd-reserve-with-timeout", "cmd-delete", "cmd-release", "cmd-use",
        "cmd-watch", "cmd-ignore", "cmd-bury", "cmd-kick", "cmd-touch", "cmd-stats",
        "cmd-stats-job", "cmd-stats-tube", "cmd-list-tubes", "cmd-list-tube-used",
        "cmd-list-tubes-watched", "cmd-pause-tube", "job-timeouts", "total-jobs",
        "max-job-size", "current-tubes", "current-connections", "current-producers",
        "current-workers", "current-waiting", "total-connections", "pid", "version",
        "rusage-utime", "rusage-stime", "uptime", "binlog-oldest-index",
        "binlog-current-index", "binlog-records-migrated", "binlog-records-written",
        "binlog-max-size", "draining", "id", "hostname", "os", "platform",
    };
    enum { NKEYS = sizeof keys / sizeof keys[0] };
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, doc, len);
    copy[len] = '\0';
    assert_memory_equal(copy, "---\n", 4);
    assert_int_equal(copy[len - 1], '\n');
    char *vals[NKEYS];
    size_t k = 0;
    char *save = NULL;
    for (char *l = strtok_r(copy + 4, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *colon = strstr(l, ": ");
        assert_non_null(colon);
        *colon = '\0';
        assert_true(k < NKEYS);
        if (strcmp(l, keys[k]) != 0)
            print_error("key %zu: got %s, want %s\n", k, l, keys[k]);
        assert_string_equal(l, keys[k]);
        vals[k++] = colon + 2;
    }
    assert_int_equal(k, NKEYS);

    /* Some values. */
    static const struct {
        const char *key, *val;
    } want[] = {
        {"current-jobs-urgent", "1"}, {"current-jobs-ready", "1"},
        {"current-jobs-reserved", "1"}, {"current-jobs-delayed", "1"},
        {"current-jobs-buried", "0"}, {"cmd-put", "3"}, {"cmd-reserve", "1"},
        {"cmd-use", "1"}, {"cmd-stats", "1"}, {"job-timeouts", "0"},
        {"total-jobs", "3"}, {"max-job-size", "65535"}, {"current-tubes", "2"},
        {"current-connections", "2"}, {"current-producers", "1"},
        {"current-workers", "1"}, {"current-waiting", "0"},
        {"total-connections", "3"}, {"version", "\"" BS_VERSION "\""},
        {"uptime", "0"}, {"binlog-oldest-index", "0"}, {"binlog-max-size", "0"},
        {"binlog-records-written", "0"},
        {"draining", "false"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t j = 0;
        while (j < NKEYS && strcmp(keys[j], want[i].key) != 0)
            j++;
        assert_true(j < NKEYS);
        if (strcmp(vals[j], want[i].val) != 0)
            print_error("%s: got %s, want %s\n", want[i].key, vals[j], want[i].val);
        assert_string_equal(vals[j], want[i].val);
    }
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    assert_string_equal(vals[36], pid);
    assert_string_equal(vals[47], x->p.instance_id);
    assert_int_equal(strlen(x->p.instance_id), 16);
    free(copy);
    buf_consume(o, buf_pending(o));

    /* The stats reflect later changes, and the store's keys come last. */
    x->p.draining = 1;
    feed(x, b, "stats\r\n");
    d = o->data + o->off;
    n = buf_pending(o);
    assert_non_null(memmem(d, n, LIT("\ncmd-stats: 2\n")));
    assert_non_null(memmem(d, n, LIT("\ndraining: true\n")));
    buf_consume(o, n);
}

static void
store_stats(void *ctx, buf *out)
{
    assert_ptr_equal(ctx, (void *)0x1234);
    buf_printf(out, "store-extra: %d\n", 42);
}

static uint64_t
store_writes(void *ctx)
{
    assert_ptr_equal(ctx, (void *)0x1234);
    return 987;
}

static void
test_stats_store_keys(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    x->p.store_stats = store_stats;
    x->p.store_writes = store_writes;
    x->p.store_ctx = (void *)0x1234;
    feed(x, a, "stats\r\n");
    buf *o = &a->s.out;
    const char *d = o->data + o->off;
    size_t n = buf_pending(o);
    char *doc;
    unsigned long len = strtoul(d + 3, &doc, 10);
    doc += 2;
    assert_int_equal((size_t)(doc - d) + len + 2, n);
    static const char tail[] = "\nstore-extra: 42\n\r\n";
    assert_memory_equal(d + n - (sizeof tail - 1), tail, sizeof tail - 1);
    const char *plat = memmem(doc, len, LIT("\nplatform: "));
    const char *extra = memmem(doc, len, LIT("\nstore-extra: "));
    assert_non_null(plat);
    assert_non_null(extra);
    assert_true(plat < extra);
    assert_non_null(memmem(doc, len, LIT("\nbinlog-records-written: 987\n")));
    buf_consume(o, n);
}

/* ---- blocking and waking ---- */

static void
test_wake_through_proto(void **state)
{
    px *x = *state;
    sess *a = &x->a, *b = &x->b;
    int64_t t = x->t0;
    /* a blocks in reserve; what it pipelined after waits its turn. */
    feed(x, a, "reserve\r\nlist-tube-used\r\n");
    assert_int_equal(a->s.state, SS_WAIT);
    assert_true(session_blocked(&a->s));
    EXPECT(a, "");
    assert_int_equal(a->in_len, strlen("list-tube-used\r\n"));
    assert_int_equal(x->q.st.waiting, 1);

    feed(x, b, "put 0 0 5 3\r\njob\r\n");
    EXPECT(b, "INSERTED 1\r\n");
    EXPECT(a, "RESERVED 1 3\r\njob\r\n");
    assert_int_equal(a->s.state, SS_LINE);
    pump(x, a, t);
    EXPECT(a, "USING default\r\n");

    /* A reserve timeout ends at the tick. */
    feed(x, a, "reserve-with-timeout 2\r\n");
    assert_int_equal(a->s.state, SS_WAIT);
    queue_tick(&x->q, t + SEC(2) - 1);
    EXPECT(a, "");
    /* Job 1's TTR ends at t+5; t+4 is within the margin, but t+2 is not. */
    queue_tick(&x->q, t + SEC(2));
    EXPECT(a, "TIMED_OUT\r\n");
    assert_int_equal(a->s.state, SS_LINE);

    /* Waiting with a job whose TTR is about to end: DEADLINE_SOON. */
    feed_at(x, a, LIT("reserve\r\n"), t + SEC(3));
    assert_int_equal(a->s.state, SS_WAIT);
    assert_true(queue_next_deadline(&x->q) == t + SEC(4));
    queue_tick(&x->q, t + SEC(4));
    EXPECT(a, "DEADLINE_SOON\r\n");
    feed_at(x, a, LIT("reserve-with-timeout 0\r\n"), t + SEC(4));
    EXPECT(a, "DEADLINE_SOON\r\n");
    /* The TTR runs out: the job goes to a waiting b. */
    feed_at(x, b, LIT("reserve-with-timeout 10\r\n"), t + SEC(4));
    assert_int_equal(b->s.state, SS_WAIT);
    queue_tick(&x->q, t + SEC(5));
    EXPECT(b, "RESERVED 1 3\r\njob\r\n");
    EXPECT(a, "");
    assert_int_equal(x->q.st.timeouts, 1);
    feed_at(x, a, LIT("delete 1\r\n"), t + SEC(5));
    EXPECT(a, "NOT_FOUND\r\n");
    feed_at(x, b, LIT("delete 1\r\n"), t + SEC(5));
    EXPECT(b, "DELETED\r\n");
}

static void
test_close_while_waiting_or_mid_body(void **state)
{
    px *x = *state;
    sess *a = &x->a, *b = &x->b;
    feed(x, a, "reserve\r\n");
    assert_int_equal(a->s.state, SS_WAIT);
    close_sess(x, a, x->t0);
    assert_int_equal(x->q.st.waiting, 0);
    assert_int_equal(x->p.cur_conns, 1);
    assert_int_equal(x->p.total_conns, 2);
    /* A put whose body spans feeds holds memory until the session ends. */
    feed(x, b, "put 0 0 10 100\r\n0123456789");
    assert_non_null(b->s.body);
    close_sess(x, b, x->t0);
    assert_int_equal(x->q.jobs.count, 0);
    assert_int_equal(x->p.cur_conns, 0);
    assert_int_equal(x->q.default_tube->using_ct, 0);
    /* A job reserved by a closed session is ready again. */
    sess c = {0};
    open_sess(x, &c);
    feed(x, &c, "put 0 0 10 1\r\nz\r\nreserve\r\n");
    EXPECT(&c, "INSERTED 1\r\nRESERVED 1 1\r\nz\r\n");
    close_sess(x, &c, x->t0);
    assert_int_equal(queue_find(&x->q, 1)->state, JOB_READY);
    assert_int_equal(x->p.total_conns, 3);
}

static void
test_output_high_water(void **state)
{
    px *x = *state;
    sess *a = &x->a;
    char *cmd = malloc(65535 + 64);
    assert_non_null(cmd);
    int h = sprintf(cmd, "put 0 0 10 65535\r\n");
    memset(cmd + h, 'q', 65535);
    memcpy(cmd + h + 65535, "\r\n", 2);
    feed_at(x, a, cmd, (size_t)h + 65537, x->t0);
    EXPECT(a, "INSERTED 1\r\n");
    /* Each FOUND is 65552 bytes: after the fourth the session stops taking
     * input until its output drains. */
    static const char peeks[] = "peek 1\r\npeek 1\r\npeek 1\r\npeek 1\r\npeek 1\r\npeek 1\r\n";
    feed(x, a, peeks);
    assert_true(session_blocked(&a->s));
    assert_true(buf_pending(&a->s.out) > OUTPUT_HIGH_WATER);
    assert_int_equal(buf_pending(&a->s.out), 4 * (size_t)(15 + 65537));
    assert_int_equal(a->in_len, 2 * 8);
    assert_int_equal(proto_feed(&x->p, &a->s, a->in, a->in_len, x->t0), 0);
    buf_consume(&a->s.out, buf_pending(&a->s.out));
    assert_false(session_blocked(&a->s));
    pump(x, a, x->t0);
    assert_int_equal(a->in_len, 0);
    assert_int_equal(buf_pending(&a->s.out), 2 * (size_t)(15 + 65537));
    assert_memory_equal(a->s.out.data + a->s.out.off, "FOUND 1 65535\r\nqqq", 18);
    buf_consume(&a->s.out, buf_pending(&a->s.out));
    /* 65536 is over the default limit. */
    sprintf(cmd, "put 0 0 10 65536\r\n");
    feed(x, a, cmd);
    assert_int_equal(a->s.state, SS_DISCARD_BODY);
    memset(cmd, 'q', 65536);
    memcpy(cmd + 65536, "\r\n", 2);
    feed_at(x, a, cmd, 65538, x->t0);
    EXPECT(a, "JOB_TOO_BIG\r\n");
    free(cmd);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        T(test_put_reserve_delete),
        T(test_binary_body),
        T(test_peek),
        T(test_release_bury_kick_touch),
        T(test_reserve_variants),
        T(test_tube_commands),
        T(test_stats_tube_and_pause),
        T(test_stats_job),
        T(test_quit),
        T(test_pipelined),
        T(test_one_byte_feeds),
        T(test_split_everywhere),
        T(test_body_in_pieces),
        T(test_expected_crlf),
        T(test_job_too_big),
        T(test_draining),
        T(test_bad_format_vs_unknown),
        T(test_trailing_garbage_put_reads_body_as_command),
        T(test_nul_in_line),
        T(test_line_limit),
        T(test_stats),
        T(test_stats_store_keys),
        T(test_wake_through_proto),
        T(test_close_while_waiting_or_mid_body),
        T(test_output_high_water),
    };
#undef T
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
