/* Unit tests of the queue core (src/queue.c) without sockets. Time is passed
 * in, so every timer is driven by calling queue_tick with later values of
 * now: nothing here sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue.h"
#include "util.h"

/* Allocation failures, for the paths that handle them: in the plain build
 * this file's realloc stands in for the C library's (the core objects are
 * linked into this program, so their calls land here) and can be told to
 * fail; it passes everything else to glibc's __libc_realloc. Under ASan,
 * which owns the allocator, and off glibc, those tests are skipped. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(BS_ASAN) || !defined(__GLIBC__)
#define CAN_FAIL_REALLOC 0
static int realloc_failures;
#else
#define CAN_FAIL_REALLOC 1
extern void *__libc_realloc(void *p, size_t n);
static int realloc_failures;        /* fail the next n calls */
void *
realloc(void *p, size_t n)
{
    if (realloc_failures > 0) {
        realloc_failures--;
        return NULL;
    }
    return __libc_realloc(p, n);
}
#endif

#define SEC(n) ((int64_t)(n) * NS_PER_SEC)
#define T0 SEC(1000)            /* an arbitrary start on the monotonic clock */
#define FOREVER ((int64_t)-1)

/* ---- field checks that name the field and the caller's line ---- */

static void
eq_field(const char *what, uint64_t got, uint64_t want, const char *file, int line)
{
    if (got != want) {
        print_error("%s: got %llu, want %llu\n", what,
                    (unsigned long long)got, (unsigned long long)want);
        _fail(file, line);
    }
}

#define EQ(what, got, want) eq_field(what, (uint64_t)(got), (uint64_t)(want), file, line)

typedef struct qst {
    uint64_t ready, urgent, reserved, delayed, buried, total, timeouts, waiting;
} qst;

static void
check_stats_at(const queue *q, qst w, const char *file, int line)
{
    EQ("st.ready", q->st.ready, w.ready);
    EQ("st.urgent", q->st.urgent, w.urgent);
    EQ("st.reserved", q->st.reserved, w.reserved);
    EQ("st.delayed", q->st.delayed, w.delayed);
    EQ("st.buried", q->st.buried, w.buried);
    EQ("st.total_jobs", q->st.total_jobs, w.total);
    EQ("st.timeouts", q->st.timeouts, w.timeouts);
    EQ("st.waiting", q->st.waiting, w.waiting);
    /* The job table holds exactly the jobs in some state. */
    EQ("jobs.count", q->jobs.count, w.ready + w.reserved + w.delayed + w.buried);
}

#define CHECK_STATS(q, ...) check_stats_at(q, (qst){__VA_ARGS__}, __FILE__, __LINE__)

typedef struct tst {
    uint64_t ready, urgent, reserved, delayed, buried, total, waiting, watching,
        using, deletes;
} tst;

static void
check_tube_at(const tube *t, tst w, const char *file, int line)
{
    if (!t) {
        print_error("tube is NULL\n");
        _fail(file, line);
        return;
    }
    EQ("tube ready", t->ready.len, w.ready);
    EQ("tube urgent", t->urgent_ct, w.urgent);
    EQ("tube reserved", t->reserved_ct, w.reserved);
    EQ("tube delayed", t->delay.len, w.delayed);
    EQ("tube buried", t->buried_ct, w.buried);
    EQ("tube total_jobs", t->total_jobs, w.total);
    EQ("tube waiting", t->waiting_ct, w.waiting);
    EQ("tube watching", t->watching_ct, w.watching);
    EQ("tube using", t->using_ct, w.using);
    EQ("tube deletes", t->deletes, w.deletes);
}

#define CHECK_TUBE(t, ...) check_tube_at(t, (tst){__VA_ARGS__}, __FILE__, __LINE__)

/* ---- wake-ups ---- */

typedef struct wake_rec {
    client *c;
    job *j;
    uint64_t id;
    enum wake_reason why;
} wake_rec;

#define MAX_WAKES 64

typedef struct fx {
    queue q;
    client c[3];
    int live[3];
    wake_rec wakes[MAX_WAKES];
    int nwakes;
} fx;

static void
on_wake(void *ctx, client *c, job *j, enum wake_reason why)
{
    fx *f = ctx;
    /* The client has stopped waiting by the time it hears the outcome. */
    assert_false(c->waiting);
    assert_int_equal(c->wpos, SIZE_MAX);
    if (why == WAKE_RESERVED) {
        assert_non_null(j);
        assert_int_equal(j->state, JOB_RESERVED);
        assert_ptr_equal(j->reserver, c);
    } else {
        assert_null(j);
    }
    assert_true(f->nwakes < MAX_WAKES);
    f->wakes[f->nwakes++] = (wake_rec){c, j, j ? j->id : 0, why};
}

static int
setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f || queue_init(&f->q) < 0)
        return -1;
    f->q.on_wake = on_wake;
    f->q.wake_ctx = f;
    for (int i = 0; i < 3; i++) {
        if (client_init(&f->q, &f->c[i], &f->c[i]) < 0)
            return -1;
        f->live[i] = 1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 3; i++)
        if (f->live[i])
            client_release(&f->q, &f->c[i], T0);
    queue_free(&f->q);
    free(f);
    return 0;
}

static void
release_client(fx *f, int i, int64_t now)
{
    assert_true(f->live[i]);
    client_release(&f->q, &f->c[i], now);
    f->live[i] = 0;
}

/* ---- helpers ---- */

static uint64_t
put_at(queue *q, client *c, uint32_t pri, int64_t delay, int64_t ttr, const char *body,
       int64_t now)
{
    char data[256];
    size_t n = strlen(body);
    assert_true(n + 2 <= sizeof data);
    memcpy(data, body, n);
    memcpy(data + n, "\r\n", 2);
    uint64_t id = 0;
    assert_int_equal(queue_put(q, c, pri, delay, ttr, data, (uint32_t)n, now, &id), Q_OK);
    assert_true(id > 0);
    return id;
}

static job *
reserve_ok(queue *q, client *c, int64_t now)
{
    job *j = NULL;
    assert_int_equal(queue_reserve(q, c, 0, now, &j), Q_OK);
    assert_non_null(j);
    assert_int_equal(j->state, JOB_RESERVED);
    assert_ptr_equal(j->reserver, c);
    return j;
}

static tube *
find_tube(queue *q, const char *name)
{
    return tube_find(&q->tubes, name, strlen(name));
}

/* ---- tests ---- */

static void
test_init_state(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    assert_int_equal(q->tubes.len, 1);
    assert_ptr_equal(find_tube(q, "default"), q->default_tube);
    assert_int_equal(q->next_id, 1);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    CHECK_STATS(q, 0);
    CHECK_TUBE(q->default_tube, .watching = 3, .using = 3);
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(f->c[i].use, q->default_tube);
        assert_int_equal(f->c[i].nwatch, 1);
        assert_ptr_equal(f->c[i].watches[0]->tube, q->default_tube);
        assert_ptr_equal(f->c[i].owner, &f->c[i]);
    }
    assert_int_equal(q->st.producers, 0);
    assert_int_equal(q->st.workers, 0);
}

static void
test_put_reserve_order(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    /* Priority first, then id. */
    uint64_t id1 = put_at(q, a, 5, 0, SEC(10), "one", T0);
    uint64_t id2 = put_at(q, a, 1, 0, SEC(10), "two", T0);
    uint64_t id3 = put_at(q, a, 5, 0, SEC(10), "three", T0);
    uint64_t id4 = put_at(q, a, 1, 0, SEC(10), "four", T0);
    uint64_t id5 = put_at(q, a, 4294967295u, 0, SEC(10), "last", T0);
    assert_int_equal(id1, 1);
    assert_int_equal(id2, 2);
    assert_int_equal(id3, 3);
    assert_int_equal(id4, 4);
    assert_int_equal(id5, 5);
    CHECK_STATS(q, .ready = 5, .urgent = 4, .total = 5);
    CHECK_TUBE(q->default_tube, .ready = 5, .urgent = 4, .total = 5, .watching = 3, .using = 3);

    job *j = queue_find(q, id3);
    assert_non_null(j);
    assert_int_equal(j->state, JOB_READY);
    assert_int_equal(j->pri, 5);
    assert_int_equal(j->body_size, 5);
    assert_int_equal(j->ttr_s, 10);
    assert_true(j->created_at == T0);
    assert_ptr_equal(j->tube, q->default_tube);
    assert_memory_equal(queue_body(q, j), "three\r\n", 7);

    static const uint64_t want[] = {2, 4, 1, 3, 5};
    for (int i = 0; i < 5; i++) {
        j = reserve_ok(q, a, T0 + SEC(1));
        assert_int_equal(j->id, want[i]);
        assert_int_equal(j->reserves, 1);
        assert_true(j->deadline == T0 + SEC(1) + SEC(10));
    }
    CHECK_STATS(q, .reserved = 5, .total = 5);
    CHECK_TUBE(q->default_tube, .reserved = 5, .total = 5, .watching = 3, .using = 3);
    assert_int_equal(a->reserved.len, 5);
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(1), &j), Q_TIMED_OUT);
    assert_int_equal(q->st.workers, 1);
}

static void
test_reserve_across_tubes(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    size_t n = 0;
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);
    uint64_t f1 = put_at(q, a, 5, 0, SEC(10), "f1", T0);
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    uint64_t d2 = put_at(q, a, 5, 0, SEC(10), "d2", T0);
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);
    uint64_t f3 = put_at(q, a, 1, 0, SEC(10), "f3", T0);
    /* b watches only default at first. */
    assert_int_equal(reserve_ok(q, b, T0)->id, d2);
    job *j;
    assert_int_equal(queue_reserve(q, b, 0, T0, &j), Q_TIMED_OUT);
    assert_int_equal(queue_watch(q, b, "foo", 3, &n), Q_OK);
    assert_int_equal(n, 2);
    assert_int_equal(reserve_ok(q, b, T0)->id, f3);
    assert_int_equal(reserve_ok(q, b, T0)->id, f1);
    CHECK_TUBE(find_tube(q, "foo"), .reserved = 2, .total = 2, .watching = 1, .using = 1);
}

static void
test_ttr_minimum(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    uint64_t id = put_at(q, &f->c[0], 0, 0, 0, "x", T0);
    job *j = queue_find(q, id);
    assert_int_equal(j->ttr_s, 1);
    id = put_at(q, &f->c[0], 0, 0, SEC(1) - 1, "y", T0);
    assert_int_equal(queue_find(q, id)->ttr_s, 1);
    /* A TTR of 1 s means a deadline 1 s after the reserve. */
    job *r = reserve_ok(q, &f->c[0], T0 + SEC(2));
    assert_true(r->deadline == T0 + SEC(3));
}

static void
test_delayed(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    uint64_t id = put_at(q, a, 0, SEC(10), SEC(5), "later", T0);
    job *j = queue_find(q, id);
    assert_int_equal(j->state, JOB_DELAYED);
    assert_true(j->deadline == T0 + SEC(10));
    assert_int_equal(j->delay_s, 10);
    CHECK_STATS(q, .delayed = 1, .total = 1);
    CHECK_TUBE(q->default_tube, .delayed = 1, .total = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == T0 + SEC(10));

    job *r = NULL;
    assert_int_equal(queue_reserve(q, a, 0, T0, &r), Q_TIMED_OUT);
    queue_tick(q, T0 + SEC(10) - 1);
    assert_int_equal(j->state, JOB_DELAYED);
    CHECK_STATS(q, .delayed = 1, .total = 1);
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(10) - 1, &r), Q_TIMED_OUT);

    queue_tick(q, T0 + SEC(10));
    assert_int_equal(j->state, JOB_READY);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .total = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_ptr_equal(reserve_ok(q, a, T0 + SEC(10)), j);
}

static void
test_delayed_order(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    uint64_t late = put_at(q, a, 0, SEC(30), SEC(5), "late", T0);
    uint64_t early = put_at(q, a, 9, SEC(10), SEC(5), "early", T0);
    uint64_t mid = put_at(q, a, 0, SEC(20), SEC(5), "mid", T0);
    assert_true(queue_next_deadline(q) == T0 + SEC(10));
    /* One tick far in the future moves all three; they then come out by
     * priority and id, not by deadline. */
    queue_tick(q, T0 + SEC(100));
    CHECK_STATS(q, .ready = 3, .urgent = 3, .total = 3);
    assert_int_equal(reserve_ok(q, a, T0 + SEC(100))->id, late);
    assert_int_equal(reserve_ok(q, a, T0 + SEC(100))->id, mid);
    assert_int_equal(reserve_ok(q, a, T0 + SEC(100))->id, early);
}

static void
test_next_deadline(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    assert_true(queue_next_deadline(q) == INT64_MAX);
    put_at(q, a, 0, SEC(50), SEC(100), "d", T0);
    assert_true(queue_next_deadline(q) == T0 + SEC(50));
    put_at(q, a, 0, 0, SEC(40), "r", T0);
    reserve_ok(q, a, T0);                                /* TTR at T0+40 */
    assert_true(queue_next_deadline(q) == T0 + SEC(40));
    assert_int_equal(queue_pause(q, "default", 7, SEC(30), T0), Q_OK);
    assert_true(queue_next_deadline(q) == T0 + SEC(30));
    job *j = NULL;
    assert_int_equal(queue_reserve(q, b, SEC(20), T0, &j), Q_WAITING);
    assert_true(queue_next_deadline(q) == T0 + SEC(20));

    queue_tick(q, T0 + SEC(20));                        /* b times out */
    assert_int_equal(f->nwakes, 1);
    assert_int_equal(f->wakes[0].why, WAKE_TIMED_OUT);
    assert_true(queue_next_deadline(q) == T0 + SEC(30));
    queue_tick(q, T0 + SEC(30));                        /* pause ends */
    assert_true(queue_next_deadline(q) == T0 + SEC(40));
    queue_tick(q, T0 + SEC(40));                        /* TTR runs out */
    assert_true(queue_next_deadline(q) == T0 + SEC(50));
    queue_tick(q, T0 + SEC(50));                        /* delay ends */
    assert_true(queue_next_deadline(q) == INT64_MAX);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .total = 2, .timeouts = 1);
}

static void
test_ttr_expiry(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "work", T0);
    job *j = reserve_ok(q, a, T0);
    assert_int_equal(j->id, id);
    assert_true(j->deadline == T0 + SEC(5));
    assert_true(queue_next_deadline(q) == T0 + SEC(5));
    CHECK_STATS(q, .reserved = 1, .total = 1);
    CHECK_TUBE(q->default_tube, .reserved = 1, .total = 1, .watching = 3, .using = 3);

    queue_tick(q, T0 + SEC(5) - 1);
    assert_int_equal(j->state, JOB_RESERVED);
    assert_int_equal(j->timeouts, 0);

    queue_tick(q, T0 + SEC(5));
    assert_int_equal(j->state, JOB_READY);
    assert_null(j->reserver);
    assert_int_equal(j->timeouts, 1);
    assert_int_equal(a->reserved.len, 0);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1, .timeouts = 1);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .total = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);

    /* a no longer holds it: it cannot release, bury, touch or delete it as
     * a reserved job. b can reserve it. */
    assert_int_equal(queue_release(q, a, id, 0, 0, T0 + SEC(6)), Q_NOT_FOUND);
    assert_int_equal(queue_touch(q, a, id, T0 + SEC(6)), Q_NOT_FOUND);
    assert_ptr_equal(reserve_ok(q, b, T0 + SEC(6)), j);
    assert_int_equal(j->reserves, 2);
    queue_tick(q, T0 + SEC(11));
    assert_int_equal(j->timeouts, 2);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1, .timeouts = 2);
}

static void
test_touch(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "t", T0);
    uint64_t other = put_at(q, a, 0, 0, SEC(7), "u", T0);
    job *j = reserve_ok(q, a, T0);
    job *k = reserve_ok(q, a, T0);
    assert_int_equal(j->id, id);
    assert_int_equal(k->id, other);
    /* j's TTR comes first; touching it at T0+3 moves it to T0+8, after k's. */
    assert_ptr_equal(heap_top(&a->reserved), j);
    assert_int_equal(queue_touch(q, a, id, T0 + SEC(3)), Q_OK);
    assert_true(j->deadline == T0 + SEC(8));
    assert_ptr_equal(heap_top(&a->reserved), k);
    assert_true(queue_next_deadline(q) == T0 + SEC(7));

    queue_tick(q, T0 + SEC(7));
    assert_int_equal(k->state, JOB_READY);
    assert_int_equal(j->state, JOB_RESERVED);       /* would have expired at T0+5 */
    queue_tick(q, T0 + SEC(8) - 1);
    assert_int_equal(j->state, JOB_RESERVED);
    queue_tick(q, T0 + SEC(8));
    assert_int_equal(j->state, JOB_READY);
    assert_int_equal(j->timeouts, 1);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .total = 2, .timeouts = 2);

    /* Only the holder of a reserved job can touch it. */
    j = reserve_ok(q, a, T0 + SEC(9));
    assert_int_equal(queue_touch(q, b, j->id, T0 + SEC(9)), Q_NOT_FOUND);
    assert_int_equal(queue_touch(q, a, other, T0 + SEC(9)), Q_NOT_FOUND);   /* ready */
    assert_int_equal(queue_touch(q, a, 999, T0 + SEC(9)), Q_NOT_FOUND);
    assert_true(j->deadline == T0 + SEC(14));
}

static void
test_release(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    uint64_t id = put_at(q, a, 10, 0, SEC(5), "r", T0);
    job *j = reserve_ok(q, a, T0);

    /* Not the holder, not reserved, no such job. */
    assert_int_equal(queue_release(q, b, id, 0, 0, T0), Q_NOT_FOUND);
    assert_int_equal(queue_release(q, a, id + 1, 0, 0, T0), Q_NOT_FOUND);

    /* Without delay: back to ready with the new priority (now not urgent). */
    assert_int_equal(queue_release(q, a, id, 2000, 0, T0 + SEC(1)), Q_OK);
    assert_int_equal(j->state, JOB_READY);
    assert_int_equal(j->pri, 2000);
    assert_int_equal(j->releases, 1);
    assert_null(j->reserver);
    assert_int_equal(a->reserved.len, 0);
    CHECK_STATS(q, .ready = 1, .urgent = 0, .total = 1);
    CHECK_TUBE(q->default_tube, .ready = 1, .total = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(queue_release(q, a, id, 0, 0, T0), Q_NOT_FOUND);    /* ready now */

    /* With delay: delayed until now + delay, then ready again. */
    assert_ptr_equal(reserve_ok(q, a, T0 + SEC(2)), j);
    assert_int_equal(queue_release(q, a, id, 7, SEC(4), T0 + SEC(2)), Q_OK);
    assert_int_equal(j->state, JOB_DELAYED);
    assert_true(j->deadline == T0 + SEC(6));
    assert_int_equal(j->delay_s, 4);
    assert_int_equal(j->releases, 2);
    CHECK_STATS(q, .delayed = 1, .total = 1);
    CHECK_TUBE(q->default_tube, .delayed = 1, .total = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == T0 + SEC(6));
    queue_tick(q, T0 + SEC(6) - 1);
    assert_int_equal(j->state, JOB_DELAYED);
    queue_tick(q, T0 + SEC(6));
    assert_int_equal(j->state, JOB_READY);
    assert_int_equal(j->pri, 7);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
    assert_int_equal(j->timeouts, 0);
    assert_int_equal(q->st.timeouts, 0);
}

static void
test_bury_kick(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    tube *t = q->default_tube;
    uint64_t id[4];
    job *j[4];
    for (int i = 0; i < 4; i++)
        id[i] = put_at(q, a, 0, 0, SEC(60), "b", T0);
    for (int i = 0; i < 4; i++)
        j[i] = reserve_ok(q, a, T0);

    assert_int_equal(queue_bury(q, b, id[0], 0), Q_NOT_FOUND);     /* not b's */
    /* Bury in the order 3, 1, 4, 2 with a new priority. */
    assert_int_equal(queue_bury(q, a, id[2], 50), Q_OK);
    assert_int_equal(queue_bury(q, a, id[0], 51), Q_OK);
    assert_int_equal(queue_bury(q, a, id[3], 52), Q_OK);
    assert_int_equal(queue_bury(q, a, id[1], 2000), Q_OK);
    assert_int_equal(queue_bury(q, a, id[1], 0), Q_NOT_FOUND);     /* buried now */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(j[i]->state, JOB_BURIED);
        assert_int_equal(j[i]->buries, 1);
    }
    assert_int_equal(j[2]->pri, 50);
    assert_int_equal(j[1]->pri, 2000);
    CHECK_STATS(q, .buried = 4, .total = 4);
    CHECK_TUBE(t, .buried = 4, .total = 4, .watching = 3, .using = 3);
    assert_ptr_equal(t->buried_head, j[2]);
    assert_ptr_equal(t->buried_tail, j[1]);
    assert_true(queue_next_deadline(q) == INT64_MAX);   /* no TTR runs */

    /* A delayed job too: kick takes buried jobs first, oldest burial first,
     * and leaves the delayed job alone while any is buried. */
    uint64_t d = put_at(q, a, 0, SEC(100), SEC(60), "d", T0);
    assert_int_equal(queue_kick(q, t, 2, T0), 2);
    assert_int_equal(j[2]->state, JOB_READY);
    assert_int_equal(j[0]->state, JOB_READY);
    assert_int_equal(j[3]->state, JOB_BURIED);
    assert_int_equal(j[1]->state, JOB_BURIED);
    assert_int_equal(j[2]->kicks, 1);
    assert_int_equal(j[3]->kicks, 0);
    assert_ptr_equal(t->buried_head, j[3]);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .buried = 2, .delayed = 1, .total = 5);

    assert_int_equal(queue_kick(q, t, 10, T0), 2);     /* only the buried */
    assert_int_equal(j[1]->state, JOB_READY);
    assert_int_equal(queue_find(q, d)->state, JOB_DELAYED);
    assert_null(t->buried_head);
    assert_null(t->buried_tail);
    CHECK_STATS(q, .ready = 4, .urgent = 3, .delayed = 1, .total = 5);
    CHECK_TUBE(t, .ready = 4, .urgent = 3, .delayed = 1, .total = 5, .watching = 3, .using = 3);

    /* Kicked jobs keep their burial priority. */
    static const uint64_t order[] = {3, 1, 4, 2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(reserve_ok(q, a, T0)->id, order[i]);
}

static void
test_kick_delayed(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    tube *t = q->default_tube;
    uint64_t late = put_at(q, a, 0, SEC(30), SEC(5), "l", T0);
    uint64_t early = put_at(q, a, 0, SEC(10), SEC(5), "e", T0);
    uint64_t mid = put_at(q, a, 0, SEC(20), SEC(5), "m", T0);
    assert_int_equal(queue_kick(q, t, 0, T0), 0);
    CHECK_STATS(q, .delayed = 3, .total = 3);
    /* No buried job: kick takes delayed jobs, soonest first. */
    assert_int_equal(queue_kick(q, t, 1, T0), 1);
    assert_int_equal(queue_find(q, early)->state, JOB_READY);
    assert_int_equal(queue_find(q, early)->kicks, 1);
    assert_true(queue_next_deadline(q) == T0 + SEC(20));
    assert_int_equal(queue_kick(q, t, 1, T0), 1);
    assert_int_equal(queue_find(q, mid)->state, JOB_READY);
    assert_int_equal(queue_find(q, late)->state, JOB_DELAYED);
    assert_int_equal(queue_kick(q, t, 5, T0), 1);
    assert_int_equal(queue_find(q, late)->state, JOB_READY);
    assert_int_equal(queue_kick(q, t, 5, T0), 0);
    CHECK_STATS(q, .ready = 3, .urgent = 3, .total = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    /* A tube with nothing to kick. */
    size_t n;
    assert_int_equal(queue_watch(q, a, "empty", 5, &n), Q_OK);
    assert_int_equal(queue_kick(q, find_tube(q, "empty"), 3, T0), 0);
}

static void
test_kick_job(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    uint64_t r = put_at(q, a, 0, 0, SEC(5), "r", T0);
    uint64_t b = put_at(q, a, 0, 0, SEC(5), "b", T0);
    uint64_t d = put_at(q, a, 0, SEC(9), SEC(5), "d", T0);
    uint64_t ready = put_at(q, a, 0, 0, SEC(5), "x", T0);
    assert_int_equal(reserve_ok(q, a, T0)->id, r);
    assert_int_equal(reserve_ok(q, a, T0)->id, b);
    assert_int_equal(queue_bury(q, a, b, 0), Q_OK);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 1, .delayed = 1, .buried = 1, .total = 4);

    assert_int_equal(queue_kick_job(q, r, T0), Q_NOT_FOUND);        /* reserved */
    assert_int_equal(queue_kick_job(q, ready, T0), Q_NOT_FOUND);    /* ready */
    assert_int_equal(queue_kick_job(q, 999, T0), Q_NOT_FOUND);
    assert_int_equal(queue_kick_job(q, 0, T0), Q_NOT_FOUND);

    assert_int_equal(queue_kick_job(q, b, T0), Q_OK);
    assert_int_equal(queue_find(q, b)->state, JOB_READY);
    assert_int_equal(queue_find(q, b)->kicks, 1);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .reserved = 1, .delayed = 1, .total = 4);
    assert_int_equal(queue_kick_job(q, d, T0), Q_OK);
    assert_int_equal(queue_find(q, d)->state, JOB_READY);
    CHECK_STATS(q, .ready = 3, .urgent = 3, .reserved = 1, .total = 4);
    assert_true(queue_next_deadline(q) == T0 + SEC(5));     /* only r's TTR */
    assert_int_equal(queue_kick_job(q, d, T0), Q_NOT_FOUND);        /* ready now */
}

static void
test_delete_each_state(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    tube *t = q->default_tube;
    uint64_t ready = put_at(q, a, 0, 0, SEC(5), "ready", T0);
    uint64_t res = put_at(q, a, 0, 0, SEC(5), "res", T0);
    uint64_t bur = put_at(q, a, 0, 0, SEC(5), "bur", T0);
    uint64_t del = put_at(q, a, 0, SEC(10), SEC(5), "del", T0);
    job *j;
    assert_int_equal(queue_reserve_job(q, a, res, T0, &j), Q_OK);
    assert_int_equal(queue_reserve_job(q, a, bur, T0, &j), Q_OK);
    assert_int_equal(queue_bury(q, a, bur, 0), Q_OK);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 1, .delayed = 1, .buried = 1, .total = 4);

    /* Another client's reserved job cannot be deleted. */
    assert_int_equal(queue_delete(q, b, res), Q_NOT_FOUND);
    assert_int_equal(queue_find(q, res)->state, JOB_RESERVED);
    assert_int_equal(queue_delete(q, a, 12345), Q_NOT_FOUND);
    assert_int_equal(t->deletes, 0);

    /* Anyone may delete ready, delayed and buried jobs. */
    assert_int_equal(queue_delete(q, b, ready), Q_OK);
    assert_null(queue_find(q, ready));
    CHECK_STATS(q, .reserved = 1, .delayed = 1, .buried = 1, .total = 4);
    assert_int_equal(queue_delete(q, b, del), Q_OK);
    assert_null(queue_find(q, del));
    CHECK_STATS(q, .reserved = 1, .buried = 1, .total = 4);
    assert_true(queue_next_deadline(q) == T0 + SEC(5));     /* the delay timer went */
    assert_int_equal(queue_delete(q, b, bur), Q_OK);
    assert_null(t->buried_head);
    CHECK_STATS(q, .reserved = 1, .total = 4);
    assert_int_equal(queue_delete(q, a, res), Q_OK);
    assert_int_equal(a->reserved.len, 0);
    CHECK_STATS(q, .total = 4);
    CHECK_TUBE(t, .total = 4, .watching = 3, .using = 3, .deletes = 4);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(queue_delete(q, a, res), Q_NOT_FOUND);
    /* Nothing fires for the deleted jobs. */
    queue_tick(q, T0 + SEC(100));
    CHECK_STATS(q, .total = 4);
    assert_int_equal(f->nwakes, 0);
}

static void
test_reserve_job(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    uint64_t r = put_at(q, a, 5, 0, SEC(5), "r", T0);
    uint64_t d = put_at(q, a, 5, SEC(50), SEC(6), "d", T0);
    uint64_t x = put_at(q, a, 5, 0, SEC(7), "x", T0);
    job *j = NULL;
    /* A ready job that is not the best one. */
    assert_int_equal(queue_reserve_job(q, a, x, T0, &j), Q_OK);
    assert_int_equal(j->id, x);
    assert_ptr_equal(j->reserver, a);
    assert_true(j->deadline == T0 + SEC(7));
    assert_int_equal(q->st.workers, 1);
    /* A reserved job, even one's own, is NOT_FOUND. */
    assert_int_equal(queue_reserve_job(q, a, x, T0, &j), Q_NOT_FOUND);
    assert_int_equal(queue_reserve_job(q, b, x, T0, &j), Q_NOT_FOUND);
    assert_int_equal(queue_reserve_job(q, b, 77, T0, &j), Q_NOT_FOUND);
    /* A delayed job leaves the delay timers. */
    assert_int_equal(queue_reserve_job(q, b, d, T0 + SEC(1), &j), Q_OK);
    assert_int_equal(j->state, JOB_RESERVED);
    assert_true(j->deadline == T0 + SEC(7));
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 2, .total = 3);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .reserved = 2, .total = 3,
               .watching = 3, .using = 3);
    /* A buried job. */
    assert_int_equal(reserve_ok(q, a, T0 + SEC(1))->id, r);
    assert_int_equal(queue_bury(q, a, r, 1), Q_OK);
    assert_int_equal(queue_reserve_job(q, b, r, T0 + SEC(2), &j), Q_OK);
    assert_int_equal(j->reserves, 2);
    assert_null(q->default_tube->buried_head);
    CHECK_STATS(q, .reserved = 3, .total = 3);
    /* The TTRs: x at T0+7, d at T0+7 too (T0+1 + 6), r at T0+7 (T0+2 + 5). */
    queue_tick(q, T0 + SEC(7));
    CHECK_STATS(q, .ready = 3, .urgent = 3, .total = 3, .timeouts = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(q->st.workers, 2);
}

static void
test_reserve_timeout_zero(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    job *j = NULL;
    assert_int_equal(queue_reserve(q, a, 0, T0, &j), Q_TIMED_OUT);
    assert_null(j);
    assert_false(a->waiting);
    CHECK_STATS(q, 0);
    CHECK_TUBE(q->default_tube, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(q->st.workers, 1);
    /* A put afterwards does not reach a client that is not waiting. */
    put_at(q, a, 0, 0, SEC(5), "x", T0);
    assert_int_equal(f->nwakes, 0);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
}

static void
test_waiters_fifo(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1], *c = &f->c[2];
    job *j = NULL;
    /* b waits first, then c, then a. */
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    assert_int_equal(queue_reserve(q, c, FOREVER, T0 + 1, &j), Q_WAITING);
    assert_int_equal(queue_reserve(q, a, SEC(100), T0 + 2, &j), Q_WAITING);
    assert_null(j);
    assert_true(b->waiting && c->waiting && a->waiting);
    CHECK_STATS(q, .waiting = 3);
    CHECK_TUBE(q->default_tube, .waiting = 3, .watching = 3, .using = 3);
    /* Waiting forever sets no timer; a's timeout does. */
    assert_true(queue_next_deadline(q) == T0 + 2 + SEC(100));
    assert_int_equal(f->nwakes, 0);

    uint64_t id1 = put_at(q, a, 0, 0, SEC(10), "1", T0 + SEC(1));
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    assert_int_equal(f->wakes[0].why, WAKE_RESERVED);
    assert_int_equal(f->wakes[0].id, id1);
    assert_ptr_equal(f->wakes[0].j, queue_find(q, id1));
    assert_true(f->wakes[0].j->deadline == T0 + SEC(11));
    assert_false(b->waiting);
    CHECK_STATS(q, .reserved = 1, .total = 1, .waiting = 2);
    CHECK_TUBE(q->default_tube, .reserved = 1, .total = 1, .waiting = 2, .watching = 3, .using = 3);

    uint64_t id2 = put_at(q, b, 0, 0, SEC(10), "2", T0 + SEC(1));
    assert_int_equal(f->nwakes, 2);
    assert_ptr_equal(f->wakes[1].c, c);
    assert_int_equal(f->wakes[1].id, id2);

    uint64_t id3 = put_at(q, b, 0, 0, SEC(10), "3", T0 + SEC(1));
    assert_int_equal(f->nwakes, 3);
    assert_ptr_equal(f->wakes[2].c, a);
    assert_int_equal(f->wakes[2].id, id3);
    CHECK_STATS(q, .reserved = 3, .total = 3, .waiting = 0);
    /* a's reserve timer is gone with its wait. */
    assert_true(queue_next_deadline(q) == T0 + SEC(11));

    /* Nobody waits any more: the next job stays ready. */
    put_at(q, b, 0, 0, SEC(10), "4", T0 + SEC(1));
    assert_int_equal(f->nwakes, 3);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 3, .total = 4);
    assert_int_equal(q->st.workers, 3);
    /* A delayed put wakes nobody until its delay ends. */
    assert_int_equal(reserve_ok(q, a, T0 + SEC(2))->id, 4);
    assert_int_equal(queue_reserve(q, c, FOREVER, T0 + SEC(2), &j), Q_WAITING);
    uint64_t id5 = put_at(q, a, 0, SEC(3), SEC(10), "5", T0 + SEC(2));
    assert_int_equal(f->nwakes, 3);
    queue_tick(q, T0 + SEC(5));
    assert_int_equal(f->nwakes, 4);
    assert_ptr_equal(f->wakes[3].c, c);
    assert_int_equal(f->wakes[3].why, WAKE_RESERVED);
    assert_int_equal(f->wakes[3].id, id5);
    CHECK_STATS(q, .reserved = 5, .total = 5);
}

static void
test_waiter_on_two_tubes(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    size_t n;
    job *j = NULL;
    assert_int_equal(queue_watch(q, b, "foo", 3, &n), Q_OK);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    tube *foo = find_tube(q, "foo");
    CHECK_TUBE(foo, .waiting = 1, .watching = 1);
    CHECK_TUBE(q->default_tube, .waiting = 1, .watching = 3, .using = 3);
    CHECK_STATS(q, .waiting = 1);
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);
    uint64_t id = put_at(q, a, 0, 0, SEC(10), "f", T0);
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    assert_int_equal(f->wakes[0].id, id);
    /* b left both tubes' waiting lists. */
    CHECK_TUBE(foo, .reserved = 1, .total = 1, .waiting = 0, .watching = 1, .using = 1);
    CHECK_TUBE(q->default_tube, .waiting = 0, .watching = 3, .using = 2);
    assert_null(foo->wait_head);
    assert_null(q->default_tube->wait_head);
    CHECK_STATS(q, .reserved = 1, .total = 1);
    /* A later put in default does not reach b. */
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    put_at(q, a, 0, 0, SEC(10), "d", T0);
    assert_int_equal(f->nwakes, 1);
}

static void
test_wait_timeout(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j = NULL;
    assert_int_equal(queue_reserve(q, a, SEC(5), T0, &j), Q_WAITING);
    assert_int_equal(queue_reserve(q, b, SEC(3), T0, &j), Q_WAITING);
    assert_true(queue_next_deadline(q) == T0 + SEC(3));
    queue_tick(q, T0 + SEC(3) - 1);
    assert_int_equal(f->nwakes, 0);
    queue_tick(q, T0 + SEC(3));
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    assert_int_equal(f->wakes[0].why, WAKE_TIMED_OUT);
    assert_null(f->wakes[0].j);
    CHECK_STATS(q, .waiting = 1);
    CHECK_TUBE(q->default_tube, .waiting = 1, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == T0 + SEC(5));
    queue_tick(q, T0 + SEC(5));
    assert_int_equal(f->nwakes, 2);
    assert_ptr_equal(f->wakes[1].c, a);
    assert_int_equal(f->wakes[1].why, WAKE_TIMED_OUT);
    CHECK_STATS(q, 0);
    CHECK_TUBE(q->default_tube, .watching = 3, .using = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    /* A job put after the timeout stays ready. */
    put_at(q, a, 0, 0, SEC(5), "late", T0 + SEC(6));
    assert_int_equal(f->nwakes, 2);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
}

static void
test_cancel_wait(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j = NULL;
    assert_int_equal(queue_reserve(q, a, SEC(5), T0, &j), Q_WAITING);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    queue_cancel_wait(q, a);
    assert_false(a->waiting);
    CHECK_STATS(q, .waiting = 1);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    queue_tick(q, T0 + SEC(10));
    assert_int_equal(f->nwakes, 0);                 /* no reply is due to a */
    /* The job goes to b, the only one still waiting. */
    put_at(q, a, 0, 0, SEC(5), "x", T0 + SEC(10));
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    queue_cancel_wait(q, a);                        /* harmless when not waiting */
    CHECK_STATS(q, .reserved = 1, .total = 1);
}

static void
test_deadline_soon_immediate(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    job *j = NULL;
    put_at(q, a, 0, 0, SEC(3), "x", T0);
    reserve_ok(q, a, T0);                   /* TTR ends at T0+3 */
    /* More than the safety margin left: an ordinary reserve. */
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(2) - 1, &j), Q_TIMED_OUT);
    /* Within the margin: DEADLINE_SOON, with or without a timeout. */
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(2), &j), Q_DEADLINE_SOON);
    assert_int_equal(queue_reserve(q, a, FOREVER, T0 + SEC(2), &j), Q_DEADLINE_SOON);
    assert_int_equal(queue_reserve(q, a, SEC(10), T0 + SEC(3) - 1, &j), Q_DEADLINE_SOON);
    assert_false(a->waiting);
    CHECK_STATS(q, .reserved = 1, .total = 1);
    /* A ready job still wins over DEADLINE_SOON. */
    uint64_t id = put_at(q, a, 0, 0, SEC(3), "y", T0 + SEC(2));
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(2), &j), Q_OK);
    assert_int_equal(j->id, id);
    /* Another client is not affected by a's deadline. */
    put_at(q, a, 0, 0, SEC(3), "z", T0 + SEC(2));
    assert_int_equal(queue_reserve(q, &f->c[1], 0, T0 + SEC(2), &j), Q_OK);
}

static void
test_deadline_soon_while_waiting(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    job *j = NULL;
    uint64_t id = put_at(q, a, 0, 0, SEC(10), "x", T0);
    job *held = reserve_ok(q, a, T0);          /* TTR ends at T0+10 */
    assert_int_equal(queue_reserve(q, a, FOREVER, T0 + SEC(1), &j), Q_WAITING);
    CHECK_STATS(q, .reserved = 1, .total = 1, .waiting = 1);
    /* It wakes a second before the TTR runs out. */
    assert_true(queue_next_deadline(q) == T0 + SEC(9));
    queue_tick(q, T0 + SEC(9) - 1);
    assert_int_equal(f->nwakes, 0);
    queue_tick(q, T0 + SEC(9));
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, a);
    assert_int_equal(f->wakes[0].why, WAKE_DEADLINE_SOON);
    assert_null(f->wakes[0].j);
    assert_int_equal(held->state, JOB_RESERVED);
    CHECK_STATS(q, .reserved = 1, .total = 1);
    /* The job itself times out at T0+10. */
    queue_tick(q, T0 + SEC(10));
    assert_int_equal(held->state, JOB_READY);
    assert_int_equal(held->id, id);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1, .timeouts = 1);

    /* A reserve timeout shorter than the margin point times out plainly. */
    held = reserve_ok(q, a, T0 + SEC(20));     /* TTR ends at T0+30 */
    assert_int_equal(queue_reserve(q, a, SEC(3), T0 + SEC(20), &j), Q_WAITING);
    assert_true(queue_next_deadline(q) == T0 + SEC(23));
    queue_tick(q, T0 + SEC(23));
    assert_int_equal(f->nwakes, 2);
    assert_int_equal(f->wakes[1].why, WAKE_TIMED_OUT);
    /* One that reaches past it would end at the margin point, T0+29; a job
     * that arrives first is handed out instead. */
    assert_int_equal(queue_reserve(q, a, SEC(100), T0 + SEC(24), &j), Q_WAITING);
    assert_true(queue_next_deadline(q) == T0 + SEC(29));
    uint64_t id2 = put_at(q, &f->c[1], 0, 0, SEC(10), "y", T0 + SEC(25));
    assert_int_equal(f->nwakes, 3);
    assert_int_equal(f->wakes[2].why, WAKE_RESERVED);
    assert_int_equal(f->wakes[2].id, id2);
    CHECK_STATS(q, .reserved = 2, .total = 2, .timeouts = 1);
    /* Waiting again: DEADLINE_SOON comes at T0+29 for the older job. */
    assert_int_equal(queue_reserve(q, a, SEC(100), T0 + SEC(26), &j), Q_WAITING);
    assert_true(queue_next_deadline(q) == T0 + SEC(29));
    queue_tick(q, T0 + SEC(29));
    assert_int_equal(f->nwakes, 4);
    assert_int_equal(f->wakes[3].why, WAKE_DEADLINE_SOON);
    assert_ptr_equal(f->wakes[3].c, a);
    CHECK_STATS(q, .reserved = 2, .total = 2, .timeouts = 1);
    /* And from then on at once. */
    assert_int_equal(queue_reserve(q, a, FOREVER, T0 + SEC(29), &j), Q_DEADLINE_SOON);
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(29), &j), Q_DEADLINE_SOON);
}

static void
test_pause_tube(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    tube *t = q->default_tube;
    job *j = NULL;
    assert_int_equal(queue_pause(q, "nosuch", 6, SEC(10), T0), Q_NOT_FOUND);
    assert_null(find_tube(q, "nosuch"));

    uint64_t id = put_at(q, a, 0, 0, SEC(5), "p", T0);
    assert_int_equal(queue_pause(q, "default", 7, SEC(10), T0), Q_OK);
    assert_true(t->pause == SEC(10));
    assert_true(t->unpause_at == T0 + SEC(10));
    assert_int_equal(t->pause_ct, 1);
    assert_true(queue_next_deadline(q) == T0 + SEC(10));
    /* Nothing is handed out while paused, not even with a job ready. */
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(1), &j), Q_TIMED_OUT);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0 + SEC(1), &j), Q_WAITING);
    uint64_t id2 = put_at(q, a, 0, 0, SEC(5), "q", T0 + SEC(2));
    assert_int_equal(f->nwakes, 0);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .total = 2, .waiting = 1);
    CHECK_TUBE(t, .ready = 2, .urgent = 2, .total = 2, .waiting = 1, .watching = 3, .using = 3);
    queue_tick(q, T0 + SEC(10) - 1);
    assert_int_equal(f->nwakes, 0);
    assert_true(t->pause != 0);

    /* The pause ends at the tick: the waiter gets the best job. */
    queue_tick(q, T0 + SEC(10));
    assert_true(t->pause == 0);
    assert_int_equal(t->pause_ct, 1);
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    assert_int_equal(f->wakes[0].why, WAKE_RESERVED);
    assert_int_equal(f->wakes[0].id, id);
    assert_true(f->wakes[0].j->deadline == T0 + SEC(15));
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 1, .total = 2);
    assert_true(queue_next_deadline(q) == T0 + SEC(15));
    assert_int_equal(reserve_ok(q, a, T0 + SEC(10))->id, id2);
    assert_int_equal(q->paused.len, 0);
}

static void
test_pause_again_and_zero(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    tube *t = q->default_tube;
    job *j = NULL;
    size_t n;
    put_at(q, a, 0, 0, SEC(5), "p", T0);
    assert_int_equal(queue_watch(q, a, "other", 5, &n), Q_OK);
    assert_int_equal(queue_pause(q, "other", 5, SEC(5), T0), Q_OK);
    assert_int_equal(queue_pause(q, "default", 7, SEC(60), T0), Q_OK);
    assert_int_equal(q->paused.len, 2);
    assert_true(queue_next_deadline(q) == T0 + SEC(5));
    /* A second pause replaces the first: here it ends sooner. */
    assert_int_equal(queue_pause(q, "default", 7, SEC(2), T0 + SEC(1)), Q_OK);
    assert_int_equal(q->paused.len, 2);
    assert_int_equal(t->pause_ct, 2);
    assert_true(queue_next_deadline(q) == T0 + SEC(3));
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(2), &j), Q_TIMED_OUT);
    queue_tick(q, T0 + SEC(3));
    assert_int_equal(q->paused.len, 1);
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(3), &j), Q_OK);
    /* Pause 0 still pauses, for the shortest time. */
    put_at(q, a, 0, 0, SEC(5), "z", T0 + SEC(3));
    assert_int_equal(queue_pause(q, "default", 7, 0, T0 + SEC(4)), Q_OK);
    assert_true(t->pause > 0);
    assert_true(t->unpause_at > T0 + SEC(4));
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(4), &j), Q_TIMED_OUT);
    queue_tick(q, T0 + SEC(4) + 1);
    assert_true(t->pause == 0);
    assert_int_equal(queue_reserve(q, a, 0, T0 + SEC(4) + 1, &j), Q_OK);
    queue_tick(q, T0 + SEC(5));
    assert_int_equal(q->paused.len, 0);
}

static void
test_pause_other_tube_still_served(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    size_t n;
    job *j = NULL;
    assert_int_equal(queue_watch(q, b, "foo", 3, &n), Q_OK);
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);
    uint64_t in_foo = put_at(q, a, 0, 0, SEC(5), "foo", T0);
    assert_int_equal(queue_pause(q, "foo", 3, SEC(10), T0), Q_OK);
    /* b watches paused foo and running default: it gets default's job even
     * though foo's is better. */
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    uint64_t in_def = put_at(q, a, 100, 0, SEC(60), "def", T0);
    assert_int_equal(reserve_ok(q, b, T0)->id, in_def);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    queue_tick(q, T0 + SEC(10));
    assert_int_equal(f->nwakes, 1);
    assert_int_equal(f->wakes[0].id, in_foo);
}

static void
test_use_watch_ignore(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    size_t n = 0;
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);
    tube *foo = find_tube(q, "foo");
    assert_non_null(foo);
    assert_ptr_equal(a->use, foo);
    assert_int_equal(q->tubes.len, 2);
    CHECK_TUBE(foo, .using = 1);
    CHECK_TUBE(q->default_tube, .watching = 3, .using = 2);
    assert_int_equal(queue_use(q, a, "foo", 3), Q_OK);     /* again: no change */
    CHECK_TUBE(foo, .using = 1);

    assert_int_equal(queue_watch(q, a, "foo", 3, &n), Q_OK);
    assert_int_equal(n, 2);
    CHECK_TUBE(foo, .using = 1, .watching = 1);
    assert_int_equal(queue_watch(q, a, "foo", 3, &n), Q_OK);   /* no duplicate */
    assert_int_equal(n, 2);
    CHECK_TUBE(foo, .using = 1, .watching = 1);
    assert_int_equal(queue_watch(q, a, "bar", 3, &n), Q_OK);
    assert_int_equal(n, 3);
    assert_int_equal(q->tubes.len, 3);

    /* Ignoring a tube not watched changes nothing and creates nothing. */
    assert_int_equal(queue_ignore(q, a, "nope", 4, &n), Q_OK);
    assert_int_equal(n, 3);
    assert_null(find_tube(q, "nope"));

    assert_int_equal(queue_ignore(q, a, "default", 7, &n), Q_OK);
    assert_int_equal(n, 2);
    CHECK_TUBE(q->default_tube, .watching = 2, .using = 2);
    /* ignore swapped the last watch into the freed slot */
    assert_ptr_equal(a->watches[0]->tube, find_tube(q, "bar"));
    assert_ptr_equal(a->watches[1]->tube, foo);
    assert_int_equal(queue_ignore(q, a, "bar", 3, &n), Q_OK);
    assert_int_equal(n, 1);
    assert_null(find_tube(q, "bar"));          /* nothing refers to it now */
    assert_int_equal(queue_ignore(q, a, "foo", 3, &n), Q_NOT_IGNORED);
    assert_int_equal(a->nwatch, 1);
    CHECK_TUBE(foo, .using = 1, .watching = 1);
    /* The last tube can be swapped for another by watching first. */
    assert_int_equal(queue_watch(q, a, "default", 7, &n), Q_OK);
    assert_int_equal(queue_ignore(q, a, "foo", 3, &n), Q_OK);
    assert_int_equal(n, 1);
    assert_non_null(find_tube(q, "foo"));      /* still used */
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    assert_null(find_tube(q, "foo"));
    assert_int_equal(q->tubes.len, 1);
}

static void
test_tube_lifetime(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    size_t n;

    /* Jobs keep their tube alive. */
    assert_int_equal(queue_use(q, a, "jobs", 4), Q_OK);
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "j", T0);
    uint64_t id2 = put_at(q, a, 0, SEC(5), SEC(5), "k", T0);
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    tube *t = find_tube(q, "jobs");
    assert_non_null(t);
    CHECK_TUBE(t, .ready = 1, .urgent = 1, .delayed = 1, .total = 2);
    assert_int_equal(queue_delete(q, a, id), Q_OK);
    assert_non_null(find_tube(q, "jobs"));
    /* Reserving it from the tube and deleting it drops the last reference. */
    assert_int_equal(queue_watch(q, b, "jobs", 4, &n), Q_OK);
    assert_int_equal(queue_ignore(q, b, "jobs", 4, &n), Q_OK);
    assert_non_null(find_tube(q, "jobs"));
    job *j;
    assert_int_equal(queue_reserve_job(q, b, id2, T0, &j), Q_OK);
    assert_int_equal(queue_delete(q, b, id2), Q_OK);
    assert_null(find_tube(q, "jobs"));
    assert_int_equal(q->tubes.len, 1);

    /* A paused tube that loses its last reference leaves the pause timers. */
    assert_int_equal(queue_watch(q, a, "p", 1, &n), Q_OK);
    assert_int_equal(queue_pause(q, "p", 1, SEC(10), T0), Q_OK);
    assert_int_equal(q->paused.len, 1);
    assert_int_equal(queue_ignore(q, a, "p", 1, &n), Q_OK);
    assert_null(find_tube(q, "p"));
    assert_int_equal(q->paused.len, 0);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    queue_tick(q, T0 + SEC(20));

    /* "default" stays when no client uses or watches it. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(queue_watch(q, &f->c[i], "x", 1, &n), Q_OK);
        assert_int_equal(queue_ignore(q, &f->c[i], "default", 7, &n), Q_OK);
        assert_int_equal(queue_use(q, &f->c[i], "x", 1), Q_OK);
    }
    CHECK_TUBE(q->default_tube, 0);
    assert_ptr_equal(find_tube(q, "default"), q->default_tube);
    assert_int_equal(q->default_tube->refs, 1);
    for (int i = 0; i < 3; i++)
        release_client(f, i, T0);
    assert_int_equal(q->tubes.len, 1);
    assert_ptr_equal(q->tubes.list[0], q->default_tube);
    assert_null(find_tube(q, "x"));
}

static void
test_tube_list_order(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    size_t n;
    assert_int_equal(queue_watch(q, a, "t1", 2, &n), Q_OK);
    assert_int_equal(queue_watch(q, a, "t2", 2, &n), Q_OK);
    assert_int_equal(queue_watch(q, a, "t3", 2, &n), Q_OK);
    assert_int_equal(q->tubes.len, 4);
    assert_ptr_equal(q->tubes.list[1], find_tube(q, "t1"));
    assert_ptr_equal(q->tubes.list[3], find_tube(q, "t3"));
    /* Removing t1 moves the last tube into its slot. */
    assert_int_equal(queue_ignore(q, a, "t1", 2, &n), Q_OK);
    assert_int_equal(q->tubes.len, 3);
    assert_ptr_equal(q->tubes.list[1], find_tube(q, "t3"));
    assert_ptr_equal(q->tubes.list[2], find_tube(q, "t2"));
    for (size_t i = 0; i < q->tubes.len; i++)
        assert_int_equal(q->tubes.list[i]->index, i);
    /* Many tubes: the registry grows and still finds each one. */
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many%d", i);
        assert_int_equal(queue_watch(q, a, name, strlen(name), &n), Q_OK);
    }
    assert_int_equal(q->tubes.len, 303);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many%d", i);
        tube *t = find_tube(q, name);
        assert_non_null(t);
        assert_int_equal(t->watching_ct, 1);
    }
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof name, "many%d", i);
        assert_int_equal(queue_ignore(q, a, name, strlen(name), &n), Q_OK);
        assert_null(find_tube(q, name));
    }
    assert_int_equal(q->tubes.len, 153);
    for (size_t i = 0; i < q->tubes.len; i++)
        assert_int_equal(q->tubes.list[i]->index, i);
}

static void
test_client_release_returns_jobs(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1], *c = &f->c[2];
    job *j = NULL;
    uint64_t id1 = put_at(q, b, 0, 0, SEC(10), "1", T0);
    uint64_t id2 = put_at(q, b, 0, 0, SEC(10), "2", T0);
    put_at(q, b, 0, 0, SEC(10), "3", T0);
    client_mark_producer(q, b);
    assert_int_equal(reserve_ok(q, a, T0)->id, id1);
    assert_int_equal(reserve_ok(q, a, T0)->id, id2);
    reserve_ok(q, b, T0);
    assert_int_equal(queue_reserve(q, c, FOREVER, T0, &j), Q_WAITING);
    CHECK_STATS(q, .reserved = 3, .total = 3, .waiting = 1);
    assert_int_equal(q->st.workers, 3);
    assert_int_equal(q->st.producers, 1);

    /* a hangs up: its jobs return to ready, the first goes straight to c. */
    release_client(f, 0, T0 + SEC(1));
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, c);
    assert_int_equal(f->wakes[0].why, WAKE_RESERVED);
    assert_int_equal(f->wakes[0].id, id1);
    job *j2 = queue_find(q, id2);
    assert_int_equal(j2->state, JOB_READY);
    assert_null(j2->reserver);
    assert_int_equal(j2->timeouts, 0);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 2, .total = 3);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .reserved = 2, .total = 3,
               .watching = 2, .using = 2);
    assert_int_equal(q->st.workers, 2);
    assert_int_equal(q->st.producers, 1);
    /* No timer for a's jobs is left behind. */
    assert_true(queue_next_deadline(q) == T0 + SEC(10));

    release_client(f, 1, T0 + SEC(2));
    assert_int_equal(q->st.producers, 0);
    assert_int_equal(q->st.workers, 1);
    CHECK_STATS(q, .ready = 2, .urgent = 2, .reserved = 1, .total = 3);
    release_client(f, 2, T0 + SEC(2));
    CHECK_STATS(q, .ready = 3, .urgent = 3, .total = 3);
    assert_int_equal(q->st.workers, 0);
    CHECK_TUBE(q->default_tube, .ready = 3, .urgent = 3, .total = 3);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(q->st.timeouts, 0);
}

static void
test_client_release_waiting(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    size_t n;
    job *j = NULL;
    assert_int_equal(queue_watch(q, a, "w", 1, &n), Q_OK);
    assert_int_equal(queue_use(q, a, "u", 1), Q_OK);
    assert_int_equal(queue_reserve(q, a, SEC(5), T0, &j), Q_WAITING);
    CHECK_STATS(q, .waiting = 1);
    release_client(f, 0, T0);
    CHECK_STATS(q, 0);
    assert_null(find_tube(q, "w"));
    assert_null(find_tube(q, "u"));
    CHECK_TUBE(q->default_tube, .watching = 2, .using = 2);
    assert_true(queue_next_deadline(q) == INT64_MAX);
    queue_tick(q, T0 + SEC(10));
    assert_int_equal(f->nwakes, 0);
    assert_int_equal(q->st.workers, 0);
}

static void
test_producers_workers(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j;
    client_mark_producer(q, a);
    client_mark_producer(q, a);
    assert_int_equal(q->st.producers, 1);
    assert_int_equal(q->st.workers, 0);
    assert_int_equal(queue_reserve(q, a, 0, T0, &j), Q_TIMED_OUT);
    assert_int_equal(queue_reserve(q, a, 0, T0, &j), Q_TIMED_OUT);
    assert_int_equal(q->st.workers, 1);
    assert_int_equal(queue_reserve(q, b, 0, T0, &j), Q_TIMED_OUT);
    assert_int_equal(q->st.workers, 2);
    release_client(f, 0, T0);
    assert_int_equal(q->st.producers, 0);
    assert_int_equal(q->st.workers, 1);
}

static void
test_urgent_threshold(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    put_at(q, a, 1023, 0, SEC(5), "u", T0);
    put_at(q, a, 1024, 0, SEC(5), "n", T0);
    CHECK_STATS(q, .ready = 2, .urgent = 1, .total = 2);
    CHECK_TUBE(q->default_tube, .ready = 2, .urgent = 1, .total = 2, .watching = 3, .using = 3);
    job *u = reserve_ok(q, a, T0);
    assert_int_equal(u->pri, 1023);
    CHECK_STATS(q, .ready = 1, .reserved = 1, .total = 2);
    CHECK_TUBE(q->default_tube, .ready = 1, .reserved = 1, .total = 2, .watching = 3, .using = 3);
    job *n = reserve_ok(q, a, T0);
    /* Released with the priorities swapped. */
    assert_int_equal(queue_release(q, a, u->id, 5000, 0, T0), Q_OK);
    assert_int_equal(queue_release(q, a, n->id, 0, 0, T0), Q_OK);
    CHECK_STATS(q, .ready = 2, .urgent = 1, .total = 2);
    CHECK_TUBE(q->default_tube, .ready = 2, .urgent = 1, .total = 2, .watching = 3, .using = 3);
    assert_ptr_equal(reserve_ok(q, a, T0), n);
    assert_int_equal(queue_bury(q, a, n->id, 0), Q_OK);
    CHECK_STATS(q, .ready = 1, .buried = 1, .total = 2);
    assert_int_equal(queue_kick(q, q->default_tube, 1, T0), 1);
    CHECK_STATS(q, .ready = 2, .urgent = 1, .total = 2);
    assert_int_equal(queue_delete(q, a, n->id), Q_OK);
    CHECK_STATS(q, .ready = 1, .urgent = 0, .total = 2);
    CHECK_TUBE(q->default_tube, .ready = 1, .total = 2, .watching = 3, .using = 3, .deletes = 1);
}

static void
test_many_jobs(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    enum { N = 5000 };
    /* Enough jobs to grow the id table several times. */
    for (int i = 0; i < N; i++) {
        int64_t delay = i % 3 == 0 ? SEC(1 + i % 7) : 0;
        assert_int_equal(put_at(q, a, (uint32_t)(i % 5), delay, SEC(30), "m", T0), (uint64_t)i + 1);
    }
    assert_int_equal(q->jobs.count, N);
    for (uint64_t id = 1; id <= N; id++) {
        job *j = queue_find(q, id);
        assert_non_null(j);
        assert_int_equal(j->id, id);
    }
    assert_null(queue_find(q, N + 1));
    assert_null(queue_find(q, 0));
    /* Reserve everything after the delays: priority then id order. */
    queue_tick(q, T0 + SEC(10));
    CHECK_STATS(q, .ready = N, .urgent = N, .total = N);
    job *prev = NULL;
    for (int i = 0; i < N; i++) {
        job *j = reserve_ok(q, a, T0 + SEC(10));
        if (prev)
            assert_true(job_pri_less(prev, j));
        prev = j;
    }
    CHECK_STATS(q, .reserved = N, .total = N);
    /* Delete every other one; the rest time out together. */
    for (uint64_t id = 1; id <= N; id += 2)
        assert_int_equal(queue_delete(q, a, id), Q_OK);
    queue_tick(q, T0 + SEC(40));
    CHECK_STATS(q, .ready = N / 2, .urgent = N / 2, .total = N, .timeouts = N / 2);
    for (uint64_t id = 1; id <= N; id++)
        assert_true((queue_find(q, id) != NULL) == (id % 2 == 0));
}

/* ---- the store hooks ---- */

enum { S_PUT = 1, S_UPDATE, S_REMOVE, S_PAUSE };

typedef struct srec {
    int op;
    uint64_t id;
    int state;
    int64_t deadline;
    uint32_t pri;
    int64_t pause;
} srec;

#define MAX_SREC 64
#define MAX_SJOBS 16

typedef struct fake_store {
    srec log[MAX_SREC];
    int n;
    int fail_put, fail_update, fail_remove, fail_pause;
    int no_room;            /* room() answers 0 */
    int room_calls;
    uint64_t room_size;
    char bodies[MAX_SJOBS][64];
} fake_store;

static void
slog(fake_store *s, srec r)
{
    assert_true(s->n < MAX_SREC);
    s->log[s->n++] = r;
}

static int
s_put(void *ctx, const job *j, const char *body)
{
    fake_store *s = ctx;
    assert_false(j->has_body);          /* the store owns the body */
    assert_true(j->id < MAX_SJOBS && j->body_size + 2 <= 64);
    memcpy(s->bodies[j->id], body, (size_t)j->body_size + 2);
    slog(s, (srec){S_PUT, j->id, j->state, j->deadline, j->pri, 0});
    return s->fail_put ? -1 : 0;
}

static int
s_update(void *ctx, const job *j)
{
    fake_store *s = ctx;
    slog(s, (srec){S_UPDATE, j->id, j->state, j->deadline, j->pri, 0});
    return s->fail_update ? -1 : 0;
}

static int
s_remove(void *ctx, const job *j)
{
    fake_store *s = ctx;
    slog(s, (srec){S_REMOVE, j->id, j->state, j->deadline, j->pri, 0});
    return s->fail_remove ? -1 : 0;
}

static int
s_pause(void *ctx, const tube *t)
{
    fake_store *s = ctx;
    assert_true(t->pause > 0);
    slog(s, (srec){S_PAUSE, 0, 0, t->unpause_at, 0, t->pause});
    return s->fail_pause ? -1 : 0;
}

static const char *
s_body(void *ctx, const job *j)
{
    fake_store *s = ctx;
    return j->id < MAX_SJOBS ? s->bodies[j->id] : NULL;
}

static int
s_room(void *ctx, uint64_t size)
{
    fake_store *s = ctx;
    s->room_calls++;
    s->room_size = size;
    return !s->no_room;
}

static const store_ops fake_ops = {
    .put = s_put, .update = s_update, .remove = s_remove, .pause = s_pause, .body = s_body,
    .room = s_room,
};

#define ANY INT64_MIN        /* a deadline that does not matter in that state */

static void
check_rec_at(const fake_store *s, int i, int op, uint64_t id, int st, int64_t deadline,
             const char *file, int line)
{
    EQ("store log length", s->n > i, 1);
    const srec *r = &s->log[i];
    EQ("store op", r->op, op);
    EQ("store job id", r->id, id);
    EQ("store job state", r->state, st);
    if (deadline != ANY)
        EQ("store deadline", r->deadline, deadline);
}

#define CHECK_REC(s, i, op, id, st, deadline) \
    check_rec_at(s, i, op, id, st, deadline, __FILE__, __LINE__)

static void
test_store_journal(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    static fake_store s;
    memset(&s, 0, sizeof s);
    q->store = &fake_ops;
    q->store_ctx = &s;
    job *j = NULL;

    /* put: journaled with the state the job enters. */
    uint64_t r = put_at(q, a, 3, 0, SEC(10), "ready", T0);
    uint64_t d = put_at(q, a, 4, SEC(20), SEC(10), "delayed", T0);
    assert_int_equal(s.n, 2);
    CHECK_REC(&s, 0, S_PUT, r, JOB_READY, ANY);
    CHECK_REC(&s, 1, S_PUT, d, JOB_DELAYED, T0 + SEC(20));
    assert_memory_equal(s.bodies[r], "ready\r\n", 7);
    assert_int_equal(s.log[0].pri, 3);
    /* The body comes back from the store. */
    assert_memory_equal(queue_body(q, queue_find(q, d)), "delayed\r\n", 9);
    assert_int_equal(queue_find(q, r)->state, JOB_READY);

    /* reserve, touch, the TTR running out and the delay ending: none. */
    assert_int_equal(reserve_ok(q, a, T0)->id, r);
    assert_int_equal(queue_touch(q, a, r, T0 + SEC(1)), Q_OK);
    queue_tick(q, T0 + SEC(11));
    assert_int_equal(queue_find(q, r)->state, JOB_READY);
    assert_int_equal(q->st.timeouts, 1);
    queue_tick(q, T0 + SEC(20));
    assert_int_equal(queue_find(q, d)->state, JOB_READY);
    assert_int_equal(queue_reserve_job(q, a, d, T0 + SEC(20), &j), Q_OK);
    assert_int_equal(s.n, 2);

    /* release, with and without delay. */
    assert_int_equal(queue_release(q, a, d, 9, SEC(5), T0 + SEC(21)), Q_OK);
    assert_int_equal(s.n, 3);
    CHECK_REC(&s, 2, S_UPDATE, d, JOB_DELAYED, T0 + SEC(26));
    assert_int_equal(s.log[2].pri, 9);
    assert_int_equal(reserve_ok(q, a, T0 + SEC(21))->id, r);
    assert_int_equal(queue_release(q, a, r, 1, 0, T0 + SEC(21)), Q_OK);
    assert_int_equal(s.n, 4);
    CHECK_REC(&s, 3, S_UPDATE, r, JOB_READY, ANY);
    assert_int_equal(s.log[3].pri, 1);

    /* bury, kick, kick-job. */
    assert_int_equal(reserve_ok(q, a, T0 + SEC(22))->id, r);
    assert_int_equal(queue_bury(q, a, r, 2), Q_OK);
    assert_int_equal(s.n, 5);
    CHECK_REC(&s, 4, S_UPDATE, r, JOB_BURIED, ANY);
    assert_int_equal(s.log[4].pri, 2);
    assert_int_equal(queue_kick(q, q->default_tube, 1, T0 + SEC(22)), 1);
    assert_int_equal(s.n, 6);
    CHECK_REC(&s, 5, S_UPDATE, r, JOB_READY, ANY);
    assert_int_equal(queue_kick(q, q->default_tube, 1, T0 + SEC(22)), 1);   /* delayed d */
    assert_int_equal(s.n, 7);
    CHECK_REC(&s, 6, S_UPDATE, d, JOB_READY, ANY);
    assert_int_equal(reserve_ok(q, a, T0 + SEC(22))->id, r);
    assert_int_equal(queue_bury(q, a, r, 2), Q_OK);
    assert_int_equal(queue_kick_job(q, r, T0 + SEC(22)), Q_OK);
    assert_int_equal(s.n, 9);
    CHECK_REC(&s, 7, S_UPDATE, r, JOB_BURIED, ANY);
    CHECK_REC(&s, 8, S_UPDATE, r, JOB_READY, ANY);
    /* Failed operations journal nothing. */
    assert_int_equal(queue_kick_job(q, r, T0 + SEC(22)), Q_NOT_FOUND);
    assert_int_equal(queue_release(q, b, r, 0, 0, T0 + SEC(22)), Q_NOT_FOUND);
    assert_int_equal(queue_bury(q, b, r, 0), Q_NOT_FOUND);
    assert_int_equal(queue_pause(q, "nosuch", 6, SEC(1), T0), Q_NOT_FOUND);
    assert_int_equal(s.n, 9);

    /* pause. */
    assert_int_equal(queue_pause(q, "default", 7, SEC(30), T0 + SEC(22)), Q_OK);
    assert_int_equal(s.n, 10);
    assert_int_equal(s.log[9].op, S_PAUSE);
    assert_true(s.log[9].pause == SEC(30));
    assert_true(s.log[9].deadline == T0 + SEC(52));
    queue_tick(q, T0 + SEC(52));                /* the pause ending: none */
    assert_int_equal(s.n, 10);

    /* Waiting, timing out, use/watch/ignore, a client leaving with a job:
     * none. */
    size_t n;
    assert_int_equal(queue_use(q, b, "other", 5), Q_OK);
    assert_int_equal(queue_watch(q, b, "other", 5, &n), Q_OK);
    assert_int_equal(queue_ignore(q, b, "other", 5, &n), Q_OK);
    assert_int_equal(reserve_ok(q, b, T0 + SEC(52))->id, r);     /* pri 2 */
    assert_int_equal(queue_reserve(q, a, SEC(1), T0 + SEC(52), &j), Q_OK);
    assert_int_equal(j->id, d);
    assert_int_equal(queue_reserve(q, a, SEC(1), T0 + SEC(52), &j), Q_WAITING);
    queue_tick(q, T0 + SEC(53));
    assert_int_equal(f->nwakes, 1);
    assert_int_equal(f->wakes[0].why, WAKE_TIMED_OUT);
    release_client(f, 1, T0 + SEC(53));
    assert_int_equal(queue_find(q, r)->state, JOB_READY);
    assert_int_equal(s.n, 10);

    /* delete, in any state. */
    assert_int_equal(queue_delete(q, a, r), Q_OK);
    assert_int_equal(queue_delete(q, a, d), Q_OK);             /* reserved by a */
    assert_int_equal(s.n, 12);
    CHECK_REC(&s, 10, S_REMOVE, r, JOB_READY, ANY);
    CHECK_REC(&s, 11, S_REMOVE, d, JOB_RESERVED, T0 + SEC(62));
    assert_int_equal(queue_delete(q, a, d), Q_NOT_FOUND);
    assert_int_equal(s.n, 12);
    CHECK_STATS(q, .total = 2, .timeouts = 1);
}

static void
test_store_put_failure(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    static fake_store s;
    memset(&s, 0, sizeof s);
    q->store = &fake_ops;
    q->store_ctx = &s;
    s.fail_put = 1;
    job *j = NULL;

    size_t n;
    assert_int_equal(queue_use(q, a, "fail", 4), Q_OK);
    assert_int_equal(queue_watch(q, b, "fail", 4, &n), Q_OK);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    tube *t = find_tube(q, "fail");
    assert_int_equal(t->refs, 2);
    uint64_t id = 0;
    assert_int_equal(queue_put(q, a, 0, 0, SEC(5), "x\r\n", 1, T0, &id), Q_NO_MEMORY);
    assert_int_equal(queue_put(q, a, 0, SEC(5), SEC(5), "y\r\n", 1, T0, &id), Q_NO_MEMORY);
    assert_int_equal(s.n, 2);
    /* No job is left behind, in the table, a tube, a heap or the counters. */
    assert_int_equal(q->jobs.count, 0);
    assert_null(queue_find(q, s.log[0].id));
    assert_null(queue_find(q, s.log[1].id));
    CHECK_STATS(q, .waiting = 1);
    CHECK_TUBE(t, .using = 1, .watching = 1, .waiting = 1);
    assert_int_equal(t->refs, 2);               /* no reference left by a job */
    assert_true(queue_next_deadline(q) == INT64_MAX);
    assert_int_equal(f->nwakes, 0);

    s.fail_put = 0;
    id = put_at(q, a, 0, 0, SEC(5), "ok", T0);
    assert_int_equal(f->nwakes, 1);
    assert_int_equal(f->wakes[0].id, id);
    assert_ptr_equal(f->wakes[0].c, b);
    CHECK_STATS(q, .reserved = 1, .total = 1);
    assert_int_equal(t->refs, 3);
    assert_int_equal(queue_delete(q, b, id), Q_OK);
    assert_int_equal(queue_use(q, a, "default", 7), Q_OK);
    assert_int_equal(queue_ignore(q, b, "fail", 4, &n), Q_OK);
    assert_null(find_tube(q, "fail"));
}

/* A store without room for the body refuses the put before anything
 * else happens. */
static void
test_store_no_room(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    static fake_store s;
    memset(&s, 0, sizeof s);
    q->store = &fake_ops;
    q->store_ctx = &s;
    job *j = NULL;
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    s.no_room = 1;
    uint64_t id = 0;
    assert_int_equal(queue_put(q, a, 0, 0, SEC(5), "abc\r\n", 3, T0, &id), Q_NO_MEMORY);
    assert_int_equal(s.room_calls, 1);
    assert_int_equal(s.room_size, 3);
    assert_int_equal(s.n, 0);                   /* the put hook never ran */
    assert_int_equal(q->jobs.count, 0);
    CHECK_STATS(q, .waiting = 1);
    assert_int_equal(f->nwakes, 0);
    s.no_room = 0;
    id = put_at(q, a, 0, 0, SEC(5), "abcd", T0);
    assert_int_equal(s.room_calls, 2);
    assert_int_equal(s.room_size, 4);
    assert_int_equal(s.n, 1);
    assert_int_equal(f->nwakes, 1);
    assert_int_equal(f->wakes[0].id, id);
    CHECK_STATS(q, .reserved = 1, .total = 1);
}

static void
test_store_update_failure(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    static fake_store s;
    memset(&s, 0, sizeof s);
    q->store = &fake_ops;
    q->store_ctx = &s;
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "x", T0);
    s.fail_update = s.fail_remove = s.fail_pause = 1;
    /* The change happens in memory; the caller hears it was not recorded. */
    reserve_ok(q, a, T0);
    assert_int_equal(queue_release(q, a, id, 0, 0, T0), Q_INTERNAL);
    assert_int_equal(queue_find(q, id)->state, JOB_READY);
    reserve_ok(q, a, T0);
    assert_int_equal(queue_bury(q, a, id, 0), Q_INTERNAL);
    assert_int_equal(queue_find(q, id)->state, JOB_BURIED);
    assert_int_equal(queue_kick_job(q, id, T0), Q_INTERNAL);
    assert_int_equal(queue_find(q, id)->state, JOB_READY);
    assert_int_equal(queue_pause(q, "default", 7, SEC(3), T0), Q_INTERNAL);
    assert_true(q->default_tube->pause == SEC(3));
    assert_int_equal(queue_delete(q, a, id), Q_INTERNAL);
    assert_null(queue_find(q, id));
    CHECK_STATS(q, .total = 1);
    assert_int_equal(s.n, 6);
}

/* ---- running out of memory ---- */

#define NEED_REALLOC_HOOK()                                              \
    do {                                                                 \
        if (!CAN_FAIL_REALLOC)                                           \
            skip();                                                      \
    } while (0)

/* The ready heap cannot grow: the new job is buried, not lost. */
static void
test_oom_put_buries(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    assert_int_equal(queue_use(q, a, "oom", 3), Q_OK);
    tube *t = find_tube(q, "oom");
    uint64_t id = 0;
    realloc_failures = 1;
    assert_int_equal(queue_put(q, a, 0, 0, SEC(5), "x\r\n", 1, T0, &id), Q_BURIED);
    assert_int_equal(realloc_failures, 0);
    assert_true(id > 0);
    job *j = queue_find(q, id);
    assert_non_null(j);
    assert_int_equal(j->state, JOB_BURIED);
    CHECK_STATS(q, .buried = 1, .total = 1);
    CHECK_TUBE(t, .buried = 1, .total = 1, .using = 1);
    assert_int_equal(queue_kick(q, t, 1, T0), 1);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
    /* A delayed put whose delay heap cannot grow: buried as well. */
    realloc_failures = 1;
    assert_int_equal(queue_put(q, a, 0, SEC(5), SEC(5), "y\r\n", 1, T0, &id), Q_BURIED);
    assert_int_equal(queue_find(q, id)->state, JOB_BURIED);
    assert_int_equal(t->delay.len, 0);
    assert_int_equal(q->delays.len, 0);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .buried = 1, .total = 2);
    assert_true(queue_next_deadline(q) == INT64_MAX);
}

static void
test_oom_reserve(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j = NULL;
    /* a's reserved heap cannot grow. */
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "x", T0);
    realloc_failures = 1;
    assert_int_equal(queue_reserve(q, a, 0, T0, &j), Q_NO_MEMORY);
    assert_int_equal(realloc_failures, 0);
    job *x = queue_find(q, id);
    assert_int_equal(x->state, JOB_READY);
    assert_int_equal(x->reserves, 0);
    assert_null(x->reserver);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .total = 1);
    assert_int_equal(a->reserved.len, 0);
    assert_int_equal(q->ttrs.len, 0);
    assert_ptr_equal(reserve_ok(q, a, T0), x);

    /* The queue's TTR heap cannot grow (b fills its 8 slots), while a's
     * own heap has room. */
    assert_int_equal(queue_release(q, a, id, 9, 0, T0), Q_OK);
    for (int i = 0; i < 8; i++)
        put_at(q, b, 5, 0, SEC(5), "b", T0);     /* before x, at priority 9 */
    for (int i = 0; i < 8; i++)
        reserve_ok(q, b, T0);
    assert_int_equal(q->ttrs.len, q->ttrs.cap);
    assert_true(a->reserved.cap > 0);
    realloc_failures = 1;
    assert_int_equal(queue_reserve(q, a, 0, T0, &j), Q_NO_MEMORY);
    assert_int_equal(x->state, JOB_READY);
    assert_int_equal(a->reserved.len, 0);
    assert_int_equal(q->ttrs.len, 8);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .reserved = 8, .total = 9);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .reserved = 8, .total = 9,
               .watching = 3, .using = 3);
    assert_ptr_equal(reserve_ok(q, a, T0), x);
}

/* A waiter cannot take the job handed to it: it hears TIMED_OUT and the
 * job is buried (put back to ready, it would be handed out again at once). */
static void
test_oom_dispatch(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j = NULL;
    uint64_t first = put_at(q, a, 0, 0, SEC(5), "x", T0);   /* grows the ready heap */
    assert_int_equal(queue_delete(q, a, first), Q_OK);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    realloc_failures = 1;
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "y", T0);
    assert_int_equal(realloc_failures, 0);
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, b);
    assert_int_equal(f->wakes[0].why, WAKE_TIMED_OUT);
    assert_int_equal(queue_find(q, id)->state, JOB_BURIED);
    assert_false(b->waiting);
    CHECK_STATS(q, .buried = 1, .total = 2);
    CHECK_TUBE(q->default_tube, .buried = 1, .total = 2, .watching = 3, .using = 3,
               .deletes = 1);
}

static void
test_oom_release_with_delay(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    /* The tube's delay heap cannot grow. */
    uint64_t id = put_at(q, a, 0, 0, SEC(5), "x", T0);
    reserve_ok(q, a, T0);
    realloc_failures = 1;
    assert_int_equal(queue_release(q, a, id, 3, SEC(10), T0), Q_BURIED);
    job *j = queue_find(q, id);
    assert_int_equal(j->state, JOB_BURIED);
    assert_int_equal(j->pri, 3);
    CHECK_STATS(q, .buried = 1, .total = 1);
    assert_true(queue_next_deadline(q) == INT64_MAX);

    /* The tube's delay heap has room but the queue's, shared by all tubes
     * and full with 8 jobs of "other", cannot grow. */
    assert_int_equal(queue_use(q, b, "other", 5), Q_OK);
    for (int i = 0; i < 7; i++)
        put_at(q, b, 0, SEC(100), SEC(5), "o", T0);
    uint64_t grow = put_at(q, a, 0, SEC(100), SEC(5), "g", T0);  /* default's heap */
    assert_int_equal(q->delays.len, 8);
    assert_int_equal(q->delays.len, q->delays.cap);
    assert_int_equal(queue_kick_job(q, id, T0), Q_OK);
    assert_int_equal(queue_delete(q, a, grow), Q_OK);
    put_at(q, b, 0, SEC(100), SEC(5), "o", T0);
    assert_int_equal(q->delays.len, 8);
    assert_true(q->default_tube->delay.cap > 0);
    assert_int_equal(q->default_tube->delay.len, 0);
    reserve_ok(q, a, T0);
    realloc_failures = 1;
    assert_int_equal(queue_release(q, a, id, 4, SEC(10), T0), Q_BURIED);
    assert_int_equal(j->state, JOB_BURIED);
    assert_int_equal(q->default_tube->delay.len, 0);
    assert_int_equal(q->delays.len, 8);
    for (size_t i = 0; i < q->delays.len; i++)
        assert_int_equal(((job *)q->delays.data[i])->tpos, i);
    CHECK_STATS(q, .buried = 1, .delayed = 8, .total = 10);
}

/* Regression (queue_reserve_job): when reserving a delayed job failed for
 * want of memory, the job went back to its delay computed from a deadline
 * that to_reserved() had already set to now + ttr, so its delay became its
 * TTR. A job delayed until T0+100 (TTR 5 s) must stay delayed until T0+100. */
static void
test_oom_reserve_job_keeps_delay(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    job *j = NULL;
    uint64_t id = put_at(q, a, 0, SEC(100), SEC(5), "d", T0);
    realloc_failures = 1;
    assert_int_equal(queue_reserve_job(q, a, id, T0 + SEC(10), &j), Q_NO_MEMORY);
    job *d = queue_find(q, id);
    assert_int_equal(d->state, JOB_DELAYED);
    CHECK_STATS(q, .delayed = 1, .total = 1);
    /* Still delayed until T0+100, not T0+10+ttr. */
    assert_true(queue_next_deadline(q) == T0 + SEC(100));
    assert_true(d->deadline == T0 + SEC(100));
    queue_tick(q, T0 + SEC(15));
    assert_int_equal(d->state, JOB_DELAYED);
}

/* Reserving a buried or ready job by id that fails leaves it where it was. */
static void
test_oom_reserve_job(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    job *j = NULL;
    uint64_t r = put_at(q, a, 0, 0, SEC(5), "r", T0);
    uint64_t x = put_at(q, a, 0, 0, SEC(5), "x", T0);
    reserve_ok(q, b, T0);
    assert_int_equal(queue_bury(q, b, r, 0), Q_OK);
    realloc_failures = 1;
    assert_int_equal(queue_reserve_job(q, a, r, T0, &j), Q_NO_MEMORY);
    assert_int_equal(queue_find(q, r)->state, JOB_BURIED);
    assert_ptr_equal(q->default_tube->buried_head, queue_find(q, r));
    realloc_failures = 1;
    assert_int_equal(queue_reserve_job(q, a, x, T0, &j), Q_NO_MEMORY);
    assert_int_equal(queue_find(q, x)->state, JOB_READY);
    CHECK_STATS(q, .ready = 1, .urgent = 1, .buried = 1, .total = 2);
    assert_int_equal(a->reserved.len, 0);
}

/* ---- start-up from a store ---- */

static job *
stored_job(uint64_t id, int state, uint32_t pri, int64_t deadline, const char *body)
{
    size_t n = strlen(body);
    job *j = calloc(1, sizeof *j + n + 2);
    assert_non_null(j);
    j->id = id;
    j->state = (uint8_t)state;
    j->pri = pri;
    j->deadline = deadline;
    j->ttr_s = 10;
    j->body_size = (uint32_t)n;
    j->has_body = 1;
    memcpy(j->body, body, n);
    memcpy(j->body + n, "\r\n", 2);
    return j;
}

static void
test_restore(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0];
    size_t n;
    int64_t now = T0;
    assert_int_equal(queue_restore(q, stored_job(10, JOB_READY, 5, 0, "ten"), "r", 1, now), 0);
    assert_int_equal(queue_restore(q, stored_job(3, JOB_DELAYED, 5, now + SEC(5), "three"),
                                   "r", 1, now), 0);
    assert_int_equal(queue_restore(q, stored_job(7, JOB_DELAYED, 5, now - 1, "seven"),
                                   "r", 1, now), 0);     /* its delay has passed */
    assert_int_equal(queue_restore(q, stored_job(8, JOB_BURIED, 5, 0, "eight"), "r", 1, now), 0);
    assert_int_equal(queue_restore(q, stored_job(9, JOB_RESERVED, 1, now + SEC(3), "nine"),
                                   "r", 1, now), 0);     /* nobody holds it now */
    assert_int_equal(queue_restore(q, stored_job(2, JOB_READY, 0, 0, "two"), "default", 7, now),
                     0);
    /* New ids continue after the highest restored one. */
    assert_int_equal(q->next_id, 11);
    tube *r = find_tube(q, "r");
    assert_non_null(r);
    CHECK_TUBE(r, .ready = 3, .urgent = 3, .delayed = 1, .buried = 1);
    CHECK_TUBE(q->default_tube, .ready = 1, .urgent = 1, .watching = 3, .using = 3);
    assert_int_equal(q->st.ready, 4);
    assert_int_equal(q->st.delayed, 1);
    assert_int_equal(q->st.buried, 1);
    assert_int_equal(q->jobs.count, 6);
    assert_true(queue_next_deadline(q) == now + SEC(5));
    assert_memory_equal(queue_body(q, queue_find(q, 3)), "three\r\n", 7);

    /* A pause read back from the store. */
    queue_restore_pause(q, "nosuch", 6, SEC(10), now + SEC(2));
    assert_null(find_tube(q, "nosuch"));
    queue_restore_pause(q, "r", 1, SEC(10), now + SEC(2));
    assert_true(r->pause == SEC(10));
    assert_true(r->unpause_at == now + SEC(2));
    assert_int_equal(q->paused.len, 1);
    queue_restore_pause(q, "r", 1, SEC(50), now + SEC(40));     /* already paused */
    assert_true(r->unpause_at == now + SEC(2));
    assert_int_equal(q->paused.len, 1);
    assert_true(queue_next_deadline(q) == now + SEC(2));

    assert_int_equal(queue_watch(q, a, "r", 1, &n), Q_OK);
    assert_int_equal(queue_ignore(q, a, "default", 7, &n), Q_OK);
    job *j = NULL;
    assert_int_equal(queue_reserve(q, a, 0, now, &j), Q_TIMED_OUT);    /* paused */
    queue_tick(q, now + SEC(5));
    assert_true(r->pause == 0);
    CHECK_TUBE(r, .ready = 4, .urgent = 4, .buried = 1, .watching = 1);
    static const uint64_t order[] = {9, 3, 7, 10};
    for (int i = 0; i < 4; i++)
        assert_int_equal(reserve_ok(q, a, now + SEC(5))->id, order[i]);
    assert_int_equal(put_at(q, a, 0, 0, SEC(1), "new", now), 11);

    /* A pause of 0 read back still pauses, for the shortest time. */
    queue_restore_pause(q, "default", 7, 0, now + SEC(6));
    assert_true(q->default_tube->pause > 0);
}

/* ---- clients watching many tubes ---- */

static void
watch_ok(queue *q, client *c, const char *name)
{
    size_t n;
    assert_int_equal(queue_watch(q, c, name, strlen(name), &n), Q_OK);
    assert_int_equal(n, c->nwatch);
}

static void
ignore_ok(queue *q, client *c, const char *name)
{
    size_t n;
    assert_int_equal(queue_ignore(q, c, name, strlen(name), &n), Q_OK);
    assert_int_equal(n, c->nwatch);
}

static void
check_best(const client *c)
{
    assert_int_equal(queue_check_client(c), 0);
    assert_ptr_equal(queue_best_ready(c), queue_best_ready_scan(c));
}

static uint64_t
put_in(queue *q, client *c, const char *name, uint32_t pri, int64_t delay, int64_t now)
{
    assert_int_equal(queue_use(q, c, name, strlen(name)), Q_OK);
    return put_at(q, c, pri, delay, SEC(60), "m", now);
}

/* Past the threshold a client keeps a heap of its tubes; it answers as the
 * scan does, across pauses, and goes back to scanning at half the
 * threshold. */
static void
test_many_tubes(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    char name[16];
    int64_t now = T0;
    uint64_t id[24];

    for (int i = 0; i < QUEUE_MANY_TUBES; i++) {
        snprintf(name, sizeof name, "m%d", i);
        watch_ok(q, a, name);
    }
    /* default and QUEUE_MANY_TUBES more: over the threshold. */
    assert_true(a->many);
    assert_int_equal(a->nwatch, QUEUE_MANY_TUBES + 1);
    check_best(a);
    assert_null(queue_best_ready(a));

    /* Jobs spread over the tubes, the best ones in the middle. */
    for (int i = 0; i < QUEUE_MANY_TUBES; i++) {
        snprintf(name, sizeof name, "m%d", i);
        id[i] = put_in(q, b, name, (uint32_t)(10 + (i % 3)), 0, now);
        check_best(a);
    }
    id[20] = put_in(q, b, "m3", 5, 0, now);
    id[21] = put_in(q, b, "m5", 5, 0, now);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[20]);

    /* m3 paused: its jobs are out of reach; m5's is next. */
    assert_int_equal(queue_pause(q, "m3", 2, SEC(10), now), Q_OK);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[21]);
    assert_int_equal(reserve_ok(q, a, now)->id, id[21]);
    check_best(a);
    /* Priority 10 next: m0, m3 (paused), m6 in id order. */
    assert_int_equal(reserve_ok(q, a, now)->id, id[0]);
    check_best(a);
    /* Released at a better priority, it is the best again. */
    assert_int_equal(queue_release(q, a, id[0], 1, 0, now), Q_OK);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[0]);
    assert_int_equal(queue_bury(q, a, reserve_ok(q, a, now)->id, 1), Q_OK);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[6]);
    assert_int_equal(queue_delete(q, b, id[6]), Q_OK);    /* a ready job */
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[1]);
    tube *m0 = find_tube(q, "m0");
    assert_int_equal(queue_kick(q, m0, 1, now), 1);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[0]);
    assert_int_equal(queue_delete(q, a, reserve_ok(q, a, now)->id), Q_OK);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[1]);

    /* Unpaused, m3's job at priority 5 leads. */
    now += SEC(10);
    queue_tick(q, now);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[20]);

    /* A delayed job becoming ready at the best priority leads. */
    id[22] = put_in(q, b, "m7", 0, SEC(1), now);
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[20]);
    queue_tick(q, now + SEC(1));
    check_best(a);
    assert_int_equal(queue_best_ready(a)->id, id[22]);

    /* Ignoring down to the threshold keeps the heap; half of it drops it. */
    for (int i = QUEUE_MANY_TUBES - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "m%d", i);
        ignore_ok(q, a, name);
        check_best(a);
        assert_int_equal(a->many, a->nwatch > QUEUE_MANY_TUBES / 2);
    }
    assert_false(a->many);
    assert_null(a->tops);
    /* And a tube remembers no many-tube watchers once they are gone. */
    for (size_t i = 0; i < q->tubes.len; i++)
        assert_int_equal(q->tubes.list[i]->nmany, 0);
}

/* A many-tube client waits like any other and is served first when it came
 * first; its heap is empty while it waits. */
static void
test_many_tubes_wait(void **state)
{
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1], *p = &f->c[2];
    char name[16];
    job *j = NULL;
    uint64_t id;
    int64_t now = T0;

    for (int i = 0; i < 2 * QUEUE_MANY_TUBES; i++) {
        snprintf(name, sizeof name, "w%d", i);
        watch_ok(q, a, name);
    }
    watch_ok(q, b, "w3");
    assert_true(a->many);
    assert_int_equal(queue_reserve(q, a, FOREVER, T0, &j), Q_WAITING);
    assert_int_equal(queue_reserve(q, b, FOREVER, T0, &j), Q_WAITING);
    id = put_in(q, p, "w3", 1, 0, now);
    assert_int_equal(f->nwakes, 1);
    assert_ptr_equal(f->wakes[0].c, a);
    assert_int_equal(f->wakes[0].id, id);
    check_best(a);
    id = put_in(q, p, "w3", 1, 0, now);
    assert_int_equal(f->nwakes, 2);
    assert_ptr_equal(f->wakes[1].c, b);
    assert_int_equal(f->wakes[1].id, id);
    check_best(a);
    /* a hangs up holding a job: the job is ready again, and a is gone from
     * the tube's list of many-tube watchers. */
    release_client(f, 0, now);
    CHECK_TUBE(find_tube(q, "w3"), .ready = 1, .urgent = 1, .reserved = 1, .total = 2,
               .watching = 1, .using = 1);
    assert_int_equal(find_tube(q, "w3")->nmany, 0);
}

/* Out of memory while switching to a heap, the client goes on scanning with
 * the same answers and switches at a later watch or reserve. */
static void
test_many_tubes_oom(void **state)
{
    NEED_REALLOC_HOOK();
    fx *f = *state;
    queue *q = &f->q;
    client *a = &f->c[0], *b = &f->c[1];
    char name[16];
    int64_t now = T0;

    for (int i = 0; i < QUEUE_MANY_TUBES; i++) {
        snprintf(name, sizeof name, "o%d", i);
        put_in(q, b, name, 7, 0, now);          /* ids 1.. in tubes o0.. */
        watch_ok(q, a, name);
    }
    assert_true(a->many);
    /* Back to scanning, then up to the threshold again: the watch list has
     * room by now, so the next watch's only realloc is the heap's. */
    for (int i = QUEUE_MANY_TUBES - 1; a->many; i--) {
        snprintf(name, sizeof name, "o%d", i);
        ignore_ok(q, a, name);
    }
    for (int i = (int)a->nwatch - 1; a->nwatch < QUEUE_MANY_TUBES; i++) {
        snprintf(name, sizeof name, "o%d", i);
        watch_ok(q, a, name);
    }
    assert_false(a->many);
    realloc_failures = 1;
    snprintf(name, sizeof name, "o%d", QUEUE_MANY_TUBES - 1);
    watch_ok(q, a, name);
    assert_int_equal(realloc_failures, 0);
    assert_int_equal(a->nwatch, QUEUE_MANY_TUBES + 1);
    assert_false(a->many);      /* the heap could not be had */
    check_best(a);
    assert_int_equal(reserve_ok(q, a, now)->id, 1);
    assert_true(a->many);       /* the reserve tried again */
    check_best(a);

    /* A many-tube client's watch that cannot get room fails cleanly. */
    size_t n, before = a->nwatch;
    a->captops = (uint32_t)a->nwatch;       /* so the next watch must grow it */
    realloc_failures = 1;
    assert_int_equal(queue_watch(q, a, "o-new", 5, &n), Q_NO_MEMORY);
    assert_int_equal(realloc_failures, 0);
    assert_int_equal(a->nwatch, before);
    assert_null(find_tube(q, "o-new"));
    check_best(a);
    watch_ok(q, a, "o-new");
    check_best(a);
    assert_int_equal(reserve_ok(q, a, now)->id, 2);
}

/* Random operations by many clients over many tubes: after every one, each
 * client's heap (or scan) agrees with a scan of its tubes, and every
 * reserve takes the job the scan names. */
#define R_TUBES 40
#define R_CLIENTS 10

typedef struct rfx {
    queue q;
    client c[R_CLIENTS];
    uint64_t rng;
    unsigned wakes;
} rfx;

static uint32_t
rnd(rfx *r, uint32_t n)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (uint32_t)((r->rng >> 11) % n);
}

static void
r_on_wake(void *ctx, client *c, job *j, enum wake_reason why)
{
    rfx *r = ctx;
    assert_false(c->waiting);
    if (why == WAKE_RESERVED) {
        assert_non_null(j);
        assert_ptr_equal(j->reserver, c);
    }
    r->wakes++;
}

static void
r_check_all(rfx *r)
{
    size_t many_watches = 0, listed = 0;
    for (int i = 0; i < R_CLIENTS; i++) {
        client *c = &r->c[i];
        check_best(c);
        if (c->many)
            many_watches += c->nwatch;
        /* A waiting client has nothing ready in its running tubes. */
        if (c->waiting)
            assert_null(queue_best_ready_scan(c));
    }
    for (size_t i = 0; i < r->q.tubes.len; i++)
        listed += r->q.tubes.list[i]->nmany;
    assert_int_equal(listed, many_watches);
    queue_stats *s = &r->q.st;
    assert_int_equal(r->q.jobs.count, s->ready + s->reserved + s->delayed + s->buried);
}

static job *
r_held(rfx *r, client *c)
{
    return c->reserved.len ? c->reserved.data[rnd(r, (uint32_t)c->reserved.len)] : NULL;
}

static void
random_run(uint64_t seed, int ops)
{
    rfx *r = calloc(1, sizeof *r);
    assert_non_null(r);
    queue *q = &r->q;
    assert_int_equal(queue_init(q), 0);
    q->on_wake = r_on_wake;
    q->wake_ctx = r;
    r->rng = seed;
    for (int i = 0; i < R_CLIENTS; i++)
        assert_int_equal(client_init(q, &r->c[i], &r->c[i]), 0);

    int64_t now = T0;
    unsigned reserves = 0, many_reserves = 0, transitions = 0;
    char name[16];
    for (int op = 0; op < ops; op++) {
        client *c = &r->c[rnd(r, R_CLIENTS)];
        int ci = (int)(c - r->c);
        int was_many = c->many;
        snprintf(name, sizeof name, "r%u", rnd(r, R_TUBES));
        size_t len = strlen(name);
        uint32_t what = rnd(r, 100);
        size_t n;
        job *j = NULL;

        if (c->waiting) {
            /* A blocked connection sends nothing; it may hang up. */
            if (what < 3) {
                client_release(q, c, now);
                assert_int_equal(client_init(q, c, c), 0);
            }
        } else if (what < 15) {                             /* put */
            assert_int_equal(queue_use(q, c, name, len), Q_OK);
            uint64_t id;
            int64_t delay = rnd(r, 5) == 0 ? SEC(1 + rnd(r, 4)) : 0;
            assert_int_equal(queue_put(q, c, rnd(r, 4), delay, SEC(1 + rnd(r, 10)), "x\r\n",
                                       1, now, &id), Q_OK);
        } else if (what < 40) {                             /* reserve */
            job *want = queue_best_ready_scan(c);
            int64_t timeout = rnd(r, 4) == 0 ? (rnd(r, 2) ? FOREVER : SEC(rnd(r, 3))) : 0;
            int res = queue_reserve(q, c, timeout, now, &j);
            reserves++;
            many_reserves += c->many;
            if (want) {
                assert_int_equal(res, Q_OK);
                assert_ptr_equal(j, want);
            } else {
                assert_true(res == Q_TIMED_OUT || res == Q_DEADLINE_SOON ||
                            res == Q_WAITING);
            }
        } else if (what < 45) {                             /* release */
            if ((j = r_held(r, c)))
                assert_int_equal(queue_release(q, c, j->id, rnd(r, 4),
                                               rnd(r, 4) == 0 ? SEC(1) : 0, now), Q_OK);
        } else if (what < 48) {                             /* bury */
            if ((j = r_held(r, c)))
                assert_int_equal(queue_bury(q, c, j->id, rnd(r, 4)), Q_OK);
        } else if (what < 62) {                             /* delete */
            /* a held job; any ready job of a tube, top or not; any id */
            tube *t = tube_find(&q->tubes, name, len);
            if (rnd(r, 2) && (j = r_held(r, c)))
                assert_int_equal(queue_delete(q, c, j->id), Q_OK);
            else if (t && t->ready.len)
                assert_int_equal(queue_delete(q, c, ((job *)t->ready.data[
                                     rnd(r, (uint32_t)t->ready.len)])->id), Q_OK);
            else if (q->next_id > 1)
                queue_delete(q, c, 1 + rnd(r, (uint32_t)(q->next_id - 1)));
        } else if (what < 65) {                             /* touch */
            if ((j = r_held(r, c)))
                assert_int_equal(queue_touch(q, c, j->id, now), Q_OK);
        } else if (what < 69) {                             /* kick */
            tube *t = tube_find(&q->tubes, name, len);
            if (t)
                queue_kick(q, t, 1 + rnd(r, 3), now);
        } else if (what < 71) {                             /* kick-job */
            if (q->next_id > 1)
                queue_kick_job(q, 1 + rnd(r, (uint32_t)(q->next_id - 1)), now);
        } else if (what < 74) {                             /* pause-tube */
            queue_pause(q, name, len, SEC(rnd(r, 4)), now);
        } else if (what < 88 && (ci < R_CLIENTS / 2 || rnd(r, 3) == 0)) {
            /* watch: half the clients gather tubes, the rest stay with few */
            assert_int_equal(queue_watch(q, c, name, len, &n), Q_OK);
        } else if (what < 96) {                             /* ignore */
            if (c->nwatch > 1) {
                tube *t = c->watches[rnd(r, (uint32_t)c->nwatch)]->tube;
                assert_int_equal(queue_ignore(q, c, t->name, t->name_len, &n), Q_OK);
            }
        } else if (what < 99) {                             /* time passes */
            now += rnd(r, 3) ? SEC(1) / 2 : SEC(2);
            queue_tick(q, now);
        } else {                                            /* hang up */
            client_release(q, c, now);
            assert_int_equal(client_init(q, c, c), 0);
        }
        transitions += was_many != c->many;
        r_check_all(r);
    }
    /* The run went through both ways of finding a job and the switches. */
    assert_true(many_reserves > reserves / 10);
    assert_true(many_reserves < reserves);
    assert_true(transitions > 4);
    assert_true(r->wakes > 0);
    for (int i = 0; i < R_CLIENTS; i++)
        client_release(q, &r->c[i], now);
    assert_int_equal(q->st.waiting, 0);
    queue_free(q);
    free(r);
}

static void
test_many_tubes_random(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {0x9e3779b97f4a7c15ULL, 12345, 0xdeadbeefcafeULL};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        random_run(seeds[i], 20000);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_state),
        T(test_put_reserve_order),
        T(test_reserve_across_tubes),
        T(test_ttr_minimum),
        T(test_delayed),
        T(test_delayed_order),
        T(test_next_deadline),
        T(test_ttr_expiry),
        T(test_touch),
        T(test_release),
        T(test_bury_kick),
        T(test_kick_delayed),
        T(test_kick_job),
        T(test_delete_each_state),
        T(test_reserve_job),
        T(test_reserve_timeout_zero),
        T(test_waiters_fifo),
        T(test_waiter_on_two_tubes),
        T(test_wait_timeout),
        T(test_cancel_wait),
        T(test_deadline_soon_immediate),
        T(test_deadline_soon_while_waiting),
        T(test_pause_tube),
        T(test_pause_again_and_zero),
        T(test_pause_other_tube_still_served),
        T(test_use_watch_ignore),
        T(test_tube_lifetime),
        T(test_tube_list_order),
        T(test_client_release_returns_jobs),
        T(test_client_release_waiting),
        T(test_producers_workers),
        T(test_urgent_threshold),
        T(test_many_jobs),
        T(test_store_journal),
        T(test_store_put_failure),
        T(test_store_no_room),
        T(test_store_update_failure),
        T(test_oom_put_buries),
        T(test_oom_reserve),
        T(test_oom_dispatch),
        T(test_oom_release_with_delay),
        T(test_oom_reserve_job),
        T(test_oom_reserve_job_keeps_delay),
        T(test_restore),
        T(test_many_tubes),
        T(test_many_tubes_wait),
        T(test_many_tubes_oom),
        cmocka_unit_test(test_many_tubes_random),
    };
#undef T
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
