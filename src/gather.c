#include "gather.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include "util.h"

static void
on_fire(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    UNUSED(what);
    UNUSED(arg);
    /* Only wakes the loop: gather_wait looks at the clock. Reading clears
     * the expiry so the descriptor is not readable again. */
    if (read(fd, &n, sizeof n) < 0)
        return;
}

int
gather_init(gather *g, struct event_base *base)
{
    g->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g->tfd < 0)
        return -1;
    g->ev = event_new(base, g->tfd, EV_READ | EV_PERSIST, on_fire, NULL);
    if (!g->ev || event_add(g->ev, NULL) < 0)
        return -1;
    return 0;
}

void
gather_free(gather *g)
{
    if (g->ev)
        event_free(g->ev);
    if (g->tfd >= 0)
        close(g->tfd);
    g->ev = NULL;
    g->tfd = -1;
}

void
gather_begin(gather *g)
{
    g->gen++;
    g->awaiting = 0;
}

void
gather_mark(gather *g, uint64_t *mark)
{
    if (*mark != g->gen) {
        *mark = g->gen;
        g->awaiting++;
    }
}

void
gather_heard(gather *g, uint64_t *mark)
{
    if (*mark && *mark == g->gen) {
        g->awaiting--;
        if (g->in_wait)
            g->gathered++;
    }
    *mark = 0;
}

static void
arm(gather *g, int64_t ns)
{
    struct itimerspec its = {{0, 0}, {(time_t)(ns / 1000000000), (long)(ns % 1000000000)}};
    timerfd_settime(g->tfd, 0, &its, NULL);
}

void
gather_wait(gather *g, struct event_base *base, int64_t budget_ns)
{
    if (!g->awaiting || budget_ns <= 0)
        return;
    if (g->skip) {
        g->skip--;
        return;
    }
    if (budget_ns > GATHER_MAX_NS)
        budget_ns = GATHER_MAX_NS;
    int64_t heard = now_ns(), end = heard + budget_ns;
    g->waits++;
    g->in_wait = 1;
    uint64_t caught = g->gathered;
    while (g->awaiting) {
        int64_t now = now_ns();
        int64_t until = heard + GATHER_GAP_NS < end ? heard + GATHER_GAP_NS : end;
        if (until <= now)
            break;
        int before = g->awaiting;
        arm(g, until - now);
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            break;
        if (g->awaiting != before)
            heard = now_ns();
    }
    arm(g, 0);                  /* disarm; this also clears an expiry not yet read */
    g->in_wait = 0;
    if (g->gathered > caught) {
        g->backoff = 0;
    } else {
        g->backoff = g->backoff ? g->backoff * 2 : 1;
        if (g->backoff > GATHER_BACKOFF_MAX)
            g->backoff = GATHER_BACKOFF_MAX;
        g->skip = g->backoff;
    }
}
