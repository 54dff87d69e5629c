/* Unit tests of commit gathering (src/gather.c): who is awaited, when a
 * wait ends (everyone heard, a silent gap, the budget), that each commit
 * starts a new set, and the back-off after waits that caught nobody. The loop is a real libevent base; a client
 * "sends" by writing to one end of a socketpair whose read callback hears
 * it, as a connection's read event would. Time bounds are one-sided or
 * generous: a busy machine may make a wait longer, never shorter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "gather.h"
#include "util.h"

typedef struct fake_client {
    gather *g;
    uint64_t mark;
    int fd[2];
    struct event *ev;
    int heard;
} fake_client;

static void
on_client_input(evutil_socket_t fd, short what, void *arg)
{
    fake_client *c = arg;
    char b[16];
    (void)what;
    if (read(fd, b, sizeof b) > 0) {
        c->heard++;
        gather_heard(c->g, &c->mark);
    }
}

static void
client_open(fake_client *c, gather *g, struct event_base *base)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->fd), 0);
    c->ev = event_new(base, c->fd[0], EV_READ | EV_PERSIST, on_client_input, c);
    assert_non_null(c->ev);
    assert_int_equal(event_add(c->ev, NULL), 0);
}

static void
client_send(fake_client *c)
{
    assert_int_equal(write(c->fd[1], "x", 1), 1);
}

static void
client_close(fake_client *c)
{
    event_free(c->ev);
    close(c->fd[0]);
    close(c->fd[1]);
}

typedef struct fixture {
    struct event_base *base;
    gather g;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(gather_init(&f->g, f->base), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    gather_free(&f->g);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Nobody awaited: no wait at all, whatever the budget. */
static void
test_nothing_awaited(void **state)
{
    fixture *f = *state;
    gather_begin(&f->g);
    int64_t t0 = now_ns();
    gather_wait(&f->g, f->base, GATHER_MAX_NS);
    assert_true(now_ns() - t0 < GATHER_GAP_NS);
    assert_int_equal(f->g.waits, 0);
}

/* Marking twice in one commit counts once; hearing twice uncounts once;
 * a mark from an earlier commit is not awaited in the next. */
static void
test_marks_per_commit(void **state)
{
    fixture *f = *state;
    uint64_t a = 0, b = 0;
    gather_begin(&f->g);
    gather_mark(&f->g, &a);
    gather_mark(&f->g, &a);
    gather_mark(&f->g, &b);
    assert_int_equal(f->g.awaiting, 2);
    gather_heard(&f->g, &a);
    gather_heard(&f->g, &a);
    assert_int_equal(f->g.awaiting, 1);
    gather_begin(&f->g);
    assert_int_equal(f->g.awaiting, 0);
    gather_heard(&f->g, &b);            /* marked by the previous commit */
    assert_int_equal(f->g.awaiting, 0);
    gather_mark(&f->g, &b);
    assert_int_equal(f->g.awaiting, 1);
    assert_int_equal(f->g.gathered, 0);  /* nothing was heard inside a wait */
}

/* Clients that answer end the wait as soon as the last one is heard, and
 * each counts as gathered. */
static void
test_wait_ends_when_all_heard(void **state)
{
    fixture *f = *state;
    fake_client c[3];
    gather_begin(&f->g);
    for (int i = 0; i < 3; i++) {
        client_open(&c[i], &f->g, f->base);
        gather_mark(&f->g, &c[i].mark);
        client_send(&c[i]);
    }
    gather_wait(&f->g, f->base, GATHER_MAX_NS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].heard, 1);
    assert_int_equal(f->g.awaiting, 0);
    assert_int_equal(f->g.waits, 1);
    assert_int_equal(f->g.gathered, 3);
    for (int i = 0; i < 3; i++)
        client_close(&c[i]);
}

/* A client that stays silent costs one gap (not the whole budget), and the
 * timer leaves nothing behind that would wake a later turn. */
static void
test_silent_client_costs_one_gap(void **state)
{
    fixture *f = *state;
    fake_client quiet, talker;
    client_open(&quiet, &f->g, f->base);
    client_open(&talker, &f->g, f->base);
    gather_begin(&f->g);
    gather_mark(&f->g, &quiet.mark);
    gather_mark(&f->g, &talker.mark);
    client_send(&talker);
    int64_t t0 = now_ns();
    gather_wait(&f->g, f->base, GATHER_MAX_NS);
    int64_t took = now_ns() - t0;
    assert_int_equal(talker.heard, 1);
    assert_int_equal(quiet.heard, 0);
    assert_int_equal(f->g.awaiting, 1);
    assert_true(took >= GATHER_GAP_NS);
    assert_true(took < 2 * NS_PER_SEC);
    /* The disarmed timer must not be readable: a non-blocking turn finds
     * nothing to do. */
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
    client_close(&quiet);
    client_close(&talker);
}

/* The budget bounds the wait even when the gap would allow more. */
static void
test_budget_bounds_the_wait(void **state)
{
    fixture *f = *state;
    fake_client quiet;
    client_open(&quiet, &f->g, f->base);
    gather_begin(&f->g);
    gather_mark(&f->g, &quiet.mark);
    int64_t t0 = now_ns();
    gather_wait(&f->g, f->base, GATHER_GAP_NS / 4);
    int64_t took = now_ns() - t0;
    assert_true(took >= GATHER_GAP_NS / 4);
    assert_true(took < 2 * NS_PER_SEC);
    assert_int_equal(f->g.waits, 1);
    /* A budget of nothing means no wait. */
    gather_wait(&f->g, f->base, 0);
    assert_int_equal(f->g.waits, 1);
    client_close(&quiet);
}

/* A wait that catches nobody makes the next chances pass (1, then 2, 4
 * ...): a steady trickle of clients is not delayed by a gap at every
 * commit. A wait that catches somebody ends the back-off. */
static void
test_useless_waits_back_off(void **state)
{
    fixture *f = *state;
    fake_client quiet, talker;
    client_open(&quiet, &f->g, f->base);
    client_open(&talker, &f->g, f->base);
    uint64_t expect_waits = 0;
    unsigned expect_skip[] = {1, 2, 4};
    for (int round = 0; round < 3; round++) {
        gather_begin(&f->g);
        gather_mark(&f->g, &quiet.mark);
        gather_wait(&f->g, f->base, GATHER_MAX_NS);
        assert_int_equal(f->g.waits, ++expect_waits);
        assert_int_equal(f->g.skip, expect_skip[round]);
        /* The chances that pass: no wait, however long the budget. */
        for (unsigned k = 0; k < expect_skip[round]; k++) {
            gather_begin(&f->g);
            gather_mark(&f->g, &quiet.mark);
            int64_t t0 = now_ns();
            gather_wait(&f->g, f->base, GATHER_MAX_NS);
            assert_true(now_ns() - t0 < GATHER_GAP_NS);
            assert_int_equal(f->g.waits, expect_waits);
        }
        assert_int_equal(f->g.skip, 0);
    }
    /* A useful wait: the talker answers; the back-off is over. */
    gather_begin(&f->g);
    gather_mark(&f->g, &quiet.mark);
    gather_mark(&f->g, &talker.mark);
    client_send(&talker);
    gather_wait(&f->g, f->base, GATHER_MAX_NS);
    assert_int_equal(f->g.waits, expect_waits + 1);
    assert_int_equal(talker.heard, 1);
    assert_int_equal(f->g.backoff, 0);
    assert_int_equal(f->g.skip, 0);
    /* The back-off is bounded. */
    for (int i = 0; i < 12; i++) {
        f->g.skip = 0;
        gather_begin(&f->g);
        gather_mark(&f->g, &quiet.mark);
        gather_wait(&f->g, f->base, GATHER_GAP_NS / 8);
    }
    assert_int_equal(f->g.backoff, GATHER_BACKOFF_MAX);
    client_close(&quiet);
    client_close(&talker);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_awaited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marks_per_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_all_heard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_client_costs_one_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_bounds_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_useless_waits_back_off, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
