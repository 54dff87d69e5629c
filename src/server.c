#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

void
server_touch(server *srv, conn *c)
{
    if (c->on_dirty || c->closed)
        return;
    c->on_dirty = 1;
    c->next_dirty = srv->dirty;
    srv->dirty = c;
}

void
server_bury(server *srv, conn *c)
{
    c->next_dead = srv->dead;
    srv->dead = c;
}

/* The queue handed a waiting client its outcome. */
static void
on_wake(void *ctx, client *cl, job *j, enum wake_reason why)
{
    server *srv = ctx;
    conn *c = cl->owner;
    proto_wake(&srv->p, &c->s, j, why);
    server_touch(srv, c);
}

/* ---- accepting ---- */

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    UNUSED(what);
    /* Take a bounded batch so a connection flood cannot starve the loop. */
    for (int i = 0; i < 64; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather
                 * than spin on a listener that stays readable. Existing
                 * connections keep working. Said once per episode, not at
                 * every retry. */
                if (!srv->starved) {
                    struct rlimit rl = {0};
                    getrlimit(RLIMIT_NOFILE, &rl);
                    log_warn("accept: %s (fd limit %llu): new connections wait in the listen "
                             "queue until others close; existing ones keep working",
                             strerror(errno), (unsigned long long)rl.rlim_cur);
                    srv->starved = 1;
                }
                for (int k = 0; k < srv->nls; k++)
                    event_del(srv->ls[k].ev);
                struct timeval tv = {0, 100000};
                evtimer_add(srv->accept_pause, &tv);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_errno("accept");
            }
            return;
        }
        if (srv->starved) {
            srv->starved = 0;
            log_info("accepting connections again");
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = conn_open(srv, cfd);
        if (!c) {
            log_warn("out of memory accepting a connection");
            close(cfd);
            continue;
        }
        c->next_all = srv->all;
        if (srv->all)
            srv->all->prev_all = c;
        srv->all = c;
        if (verbosity)
            log_info("accept %d", cfd);
    }
}

static void
on_accept_pause_end(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    UNUSED(fd);
    UNUSED(what);
    for (int k = 0; k < srv->nls; k++)
        event_add(srv->ls[k].ev, NULL);
}

int
server_add_listener(server *srv, int fd)
{
    if (srv->nls == MAX_LISTENERS)
        return -1;
    listener *l = &srv->ls[srv->nls];
    l->fd = fd;
    l->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_accept, srv);
    if (!l->ev || event_add(l->ev, NULL) < 0)
        return -1;
    srv->nls++;
    return 0;
}

/* ---- signals and timers ---- */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *srv = arg;
    UNUSED(what);
    if (sig == SIGUSR1) {
        srv->p.draining = 1;
        log_info("entering drain mode: new jobs are refused");
        return;
    }
    srv->stop = 1;
    event_base_loopbreak(srv->base);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    UNUSED(fd);
    UNUSED(what);
    /* The end of every turn runs the queue's timers. libevent measures
     * timeouts on the coarse monotonic clock, which lags ours by a few ms,
     * so this may fire just before the deadline with nothing due yet: forget
     * what was armed so that end_of_turn arms the timer again. */
    srv->timer_at = INT64_MIN;
}

static void
arm_timer(server *srv, int64_t now)
{
    int64_t at = queue_next_deadline(&srv->q);
    if (srv->store) {
        int64_t st = store_next_tick(srv->store);
        if (st < at)
            at = st;
    }
    if (at == srv->timer_at)
        return;
    srv->timer_at = at;
    if (at == INT64_MAX) {
        evtimer_del(srv->timer);
        return;
    }
    int64_t d = at > now ? at - now : 0;
    /* Round up to the microsecond so the timer never fires a hair early. */
    int64_t us = (d + 999) / 1000;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    evtimer_add(srv->timer, &tv);
}

int
server_init(server *srv)
{
    memset(srv, 0, sizeof *srv);
    srv->gather.tfd = -1;       /* so server_free never closes fd 0 */
    /* No EVENT_BASE_FLAG_PRECISE_TIMER: it costs a timerfd_settime per loop
     * turn, and the queue's deadlines are whole seconds; epoll's millisecond
     * timeout (libevent rounds it up) is precise enough. */
    srv->base = event_base_new();
    if (!srv->base)
        return -1;
    if (queue_init(&srv->q) < 0 || proto_init(&srv->p, &srv->q) < 0)
        return -1;
    srv->q.on_wake = on_wake;
    srv->q.wake_ctx = srv;
    srv->timer = evtimer_new(srv->base, on_timer, srv);
    srv->accept_pause = evtimer_new(srv->base, on_accept_pause_end, srv);
    srv->timer_at = INT64_MAX;
    if (gather_init(&srv->gather, srv->base) < 0)
        return -1;
    int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        srv->sigs[i] = evsignal_new(srv->base, sigs[i], on_signal, srv);
        if (!srv->sigs[i] || evsignal_add(srv->sigs[i], NULL) < 0)
            return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    return srv->timer && srv->accept_pause ? 0 : -1;
}

void
server_attach_store(server *srv, store *st)
{
    srv->store = st;
    srv->q.store = &store_hooks;
    srv->q.store_ctx = st;
    srv->p.store_stats = store_stats;
    srv->p.store_ctx = st;
    srv->p.store_writes = store_writes;
}

/* Let every queued connection go on with its buffered input (woken ones
 * included, as they appear); returns them as a list to flush. */
static conn *
resume_dirty(server *srv, int64_t now)
{
    conn *flush = NULL;
    while (srv->dirty) {
        conn *c = srv->dirty;
        srv->dirty = c->next_dirty;
        c->on_dirty = 0;
        if (c->closed)
            continue;
        while (conn_resume(c, now))
            ;
        c->next_flush = flush;
        flush = c;
    }
    return flush;
}

static void
flush_all(conn *flush)
{
    while (flush) {
        conn *c = flush;
        flush = c->next_flush;
        if (!c->closed)
            conn_flush(c);
    }
}

void
server_flush_now(server *srv)
{
    /* Only without a store: with one, replies wait for the turn's commit. */
    if (!srv->store)
        flush_all(resume_dirty(srv, now_ns()));
}

/* The end of a loop turn: run due timers, let woken or unblocked
 * connections go on with their buffered input, then send every reply
 * produced in this turn. A durable store commits between the two, so
 * replies leave only after their changes are safe. */
static void
end_of_turn(server *srv)
{
    int64_t now = now_ns();
    queue_tick(&srv->q, now);
    conn *flush = resume_dirty(srv, now);

    /* Group commit: every change of this turn, from every connection, in
     * one transaction and one sync, before any reply that acknowledges one
     * of them is sent. An I/O error here means nothing of the turn may be
     * acknowledged: stop, with the replies unsent. Only then is the turn's
     * output released: a write event that fires during the next turn must
     * not send a reply whose change is not committed yet. */
    if (srv->store) {
        int acks = store_turn_pending(srv->store);
        if (store_tick(srv->store, now) < 0 || store_end_turn(srv->store) < 0) {
            log_warn("store: %s; stopping without acknowledging this turn's changes",
                     store_error(srv->store));
            exit(1);
        }
        if (acks)
            gather_begin(&srv->gather);
        for (conn *c = flush; c; c = c->next_flush)
            if (!c->closed) {
                c->released = c->sent + buf_pending(&c->s.out);
                if (acks)
                    gather_mark(&srv->gather, &c->gather_mark);
            }
    }
    flush_all(flush);

    conn *later = NULL;
    while (srv->dead) {
        conn *c = srv->dead;
        srv->dead = c->next_dead;
        if (c->on_dirty) {
            /* Still queued for the next turn, which skips it as closed and
             * unqueues it: free it after that, rather than search the
             * queue for it now. */
            c->next_dead = later;
            later = c;
            continue;
        }
        if (c->prev_all)
            c->prev_all->next_all = c->next_all;
        else
            srv->all = c->next_all;
        if (c->next_all)
            c->next_all->prev_all = c->prev_all;
        conn_free(c);
    }
    srv->dead = later;
    arm_timer(srv, now);
}

int
server_run(server *srv)
{
    while (!srv->stop) {
        if (event_base_loop(srv->base, EVLOOP_ONCE) < 0) {
            log_warn("event loop failed");
            return 1;
        }
        /* A zero-loss commit is two flushes: let the clients the last one
         * answered add their next change to it first (gather.h). */
        if (srv->store && store_turn_pending(srv->store))
            gather_wait(&srv->gather, srv->base, store_last_commit_ns(srv->store));
        end_of_turn(srv);
        /* Woken connections may have more to do before we sleep again. */
        while (srv->dirty && !srv->stop)
            end_of_turn(srv);
    }
    return 0;
}

void
server_free(server *srv)
{
    for (conn *c = srv->all; c; c = c->next_all)
        conn_close(c);
    while (srv->all) {
        conn *c = srv->all;
        srv->all = c->next_all;
        conn_free(c);
    }
    srv->dead = NULL;
    if (srv->store) {
        if (store_flush(srv->store) < 0)
            log_warn("store: %s", store_error(srv->store));
        store_close(srv->store);
        srv->store = NULL;
    }
    for (int i = 0; i < srv->nls; i++) {
        event_free(srv->ls[i].ev);
        close(srv->ls[i].fd);
    }
    for (int i = 0; i < 3; i++)
        if (srv->sigs[i])
            event_free(srv->sigs[i]);
    if (srv->timer)
        event_free(srv->timer);
    if (srv->accept_pause)
        event_free(srv->accept_pause);
    gather_free(&srv->gather);
    queue_free(&srv->q);
    if (srv->base)
        event_base_free(srv->base);
}
