#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

/* One read buffer shared by all connections: an idle connection holds no
 * input memory, only the tail of a partial command when there is one. */
#define READ_SIZE (64 * 1024)
static char scratch[READ_SIZE];

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static void
set_reading(conn *c, int on)
{
    if (on == c->reading)
        return;
    c->reading = (uint8_t)on;
    if (on)
        event_add(c->rev, NULL);
    else
        event_del(c->rev);
}

static void
set_writing(conn *c, int on)
{
    if (on == c->writing)
        return;
    c->writing = (uint8_t)on;
    if (on)
        event_add(c->wev, NULL);
    else
        event_del(c->wev);
}

/* Read when the session can use more input: not after EOF or quit, not while
 * the client ignores its replies, and only up to INPUT_MAX while blocked. */
static void
update_reading(conn *c)
{
    int want = !c->eof && c->s.state != SS_CLOSE &&
               buf_pending(&c->s.out) <= OUTPUT_HIGH_WATER && c->in_len < INPUT_MAX;
    set_reading(c, want);
}

conn *
conn_open(server *srv, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->fd = fd;
    c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    if (!c->rev || !c->wev || session_open(&srv->p, &c->s, c) < 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        free(c);
        return NULL;
    }
    set_reading(c, 1);
    return c;
}

/* Keep the unprocessed tail of data (which may be c->in itself). */
static int
keep_input(conn *c, const char *data, size_t len)
{
    if (len == 0) {
        c->in_len = 0;
        if (c->in_cap > 4096) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        return 0;
    }
    if (data != c->in && len > c->in_cap) {
        char *n = realloc(c->in, len);
        if (!n)
            return -1;
        c->in = n;
        c->in_cap = len;
    }
    memmove(c->in, data, len);
    c->in_len = len;
    return 0;
}

int
conn_resume(conn *c, int64_t now)
{
    if (c->closed)
        return 0;
    int progress = 0;
    if (c->in_len && !session_blocked(&c->s)) {
        size_t used = proto_feed(&c->srv->p, &c->s, c->in, c->in_len, now);
        if (used) {
            progress = 1;
            keep_input(c, c->in + used, c->in_len - used);
        }
    }
    if (c->eof) {
        if (c->s.state == SS_WAIT) {
            /* The peer hung up while it waited for a job: give up the wait
             * with the TIMED_OUT beanstalkd sends a half-closed waiter. */
            queue_cancel_wait(&c->srv->q, &c->s.cl);
            proto_wake(&c->srv->p, &c->s, NULL, WAKE_TIMED_OUT);
            c->s.state = SS_CLOSE;
            progress = 1;
        } else if (!session_blocked(&c->s)) {
            /* Everything complete that it sent is answered; what is left is
             * a partial command that can never finish. */
            c->s.state = SS_CLOSE;
        }
    }
    return progress;
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    server *srv = c->srv;
    UNUSED(what);
    int64_t now = now_ns();
    ssize_t n;

    gather_heard(&srv->gather, &c->gather_mark);
    if (c->s.state == SS_BODY && c->s.body) {
        /* A body that spans reads goes straight into its buffer. */
        size_t need = (size_t)c->s.put_size + 2 - c->s.have;
        n = read(fd, c->s.body + c->s.have, need);
        if (n > 0)
            proto_body_read(&srv->p, &c->s, (size_t)n, now);
    } else if (c->in_len == 0 && !session_blocked(&c->s)) {
        n = read(fd, scratch, sizeof scratch);
        if (n > 0) {
            size_t used = proto_feed(&srv->p, &c->s, scratch, (size_t)n, now);
            if (keep_input(c, scratch + used, (size_t)n - used) < 0) {
                conn_close(c);
                return;
            }
        }
    } else {
        size_t room = c->in_len >= INPUT_MAX ? 0 : INPUT_MAX - c->in_len;
        if (c->in_cap < c->in_len + room) {
            char *b = realloc(c->in, c->in_len + room);
            if (!b) {
                conn_close(c);
                return;
            }
            c->in = b;
            c->in_cap = c->in_len + room;
        }
        n = room ? read(fd, c->in + c->in_len, room) : 0;
        if (room == 0)
            n = -2;                     /* nothing read; not an EOF */
        if (n > 0) {
            c->in_len += (size_t)n;
            conn_resume(c, now);
        }
    }

    if (n == 0) {
        c->eof = 1;
        conn_resume(c, now);
        /* Release its tubes and jobs now, as beanstalkd does, rather than at
         * the end of the turn: the next command may be about them. */
        if (c->s.state == SS_CLOSE && !buf_pending(&c->s.out)) {
            conn_close(c);
            return;
        }
    } else if (n == -1 && errno != EAGAIN && errno != EINTR) {
        conn_close(c);
        return;
    }
    server_touch(srv, c);
    update_reading(c);
    /* Without a store nothing needs committing first: reply now rather than
     * at the end of the turn, or a busy turn would hold every early reply
     * (and every reserve this read woke) until the last connection's
     * command is done. c may be closed after this. */
    server_flush_now(srv);
}

void
conn_flush(conn *c)
{
    if (c->closed)
        return;
    buf *out = &c->s.out;
    /* Over the mark, the session takes no more commands: remember that, so
     * whichever flush brings it back under goes round again for them. */
    if (buf_pending(out) > OUTPUT_HIGH_WATER)
        c->out_stalled = 1;
    /* With a store, only what its commit has made safe may go. */
    int held = c->srv->store != NULL;
    for (;;) {
        size_t len = buf_pending(out);
        if (held && c->released - c->sent < len)
            len = (size_t)(c->released - c->sent);
        if (!len)
            break;
        ssize_t n = write(c->fd, out->data + out->off, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                set_writing(c, 1);
                break;
            }
            conn_close(c);
            return;
        }
        buf_consume(out, (size_t)n);
        c->sent += (uint64_t)n;
    }
    if (!buf_pending(out)) {
        set_writing(c, 0);
        if (c->s.state == SS_CLOSE) {
            conn_close(c);
            return;
        }
    }
    if (c->out_stalled && !session_blocked(&c->s)) {
        c->out_stalled = 0;
        if (c->in_len)
            server_touch(c->srv, c);
    }
    update_reading(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    UNUSED(fd);
    UNUSED(what);
    conn_flush(c);
}

void
conn_close(conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    gather_heard(&c->srv->gather, &c->gather_mark);
    set_reading(c, 0);
    set_writing(c, 0);
    close(c->fd);
    if (verbosity)
        log_info("close %d", c->fd);
    session_close(&c->srv->p, &c->s, now_ns());
    server_bury(c->srv, c);
}

void
conn_free(conn *c)
{
    event_free(c->rev);
    event_free(c->wev);
    free(c->in);
    free(c);
}
