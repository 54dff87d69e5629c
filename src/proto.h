/* The protocol layer: turns bytes from a client into queue operations and
 * formats the replies. It knows nothing of sockets (the connection layer
 * feeds it bytes and sends what it leaves in the session's output buffer)
 * nor of the store (it only calls the queue core). */
#ifndef BS_PROTO_H
#define BS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

/* Where a session is in its input. */
enum session_state {
    SS_LINE,            /* expecting a command line */
    SS_DISCARD_LINE,    /* skipping an over-long line up to its CRLF */
    SS_BODY,            /* reading a put body */
    SS_DISCARD_BODY,    /* skipping a body, then replying */
    SS_WAIT,            /* blocked in reserve */
    SS_CLOSE,           /* quit: close once the output is sent */
};

typedef struct session {
    client cl;
    buf out;
    enum session_state state;
    int prev_cr;                /* SS_DISCARD_LINE: last byte seen was \r */
    /* SS_BODY */
    uint32_t put_pri, put_size;
    int64_t put_delay, put_ttr;
    char *body;                 /* put_size + 2 bytes, when the body spans reads */
    size_t have;
    /* SS_DISCARD_BODY */
    uint64_t discard_left;
    const char *discard_reply;
} session;

/* Command counters, in the order of stats output. */
enum {
    OP_PUT, OP_PEEK, OP_PEEK_READY, OP_PEEK_DELAYED, OP_PEEK_BURIED,
    OP_RESERVE, OP_RESERVE_TIMEOUT, OP_DELETE, OP_RELEASE, OP_USE, OP_WATCH,
    OP_IGNORE, OP_BURY, OP_KICK, OP_TOUCH, OP_STATS, OP_STATS_JOB,
    OP_STATS_TUBE, OP_LIST_TUBES, OP_LIST_TUBE_USED, OP_LIST_TUBES_WATCHED,
    OP_PAUSE_TUBE, OP_RESERVE_JOB, OP_KICK_JOB, OP_QUIT, OP_COUNT
};

typedef struct proto {
    queue *q;
    uint32_t max_job_size;
    volatile int draining;
    uint64_t op_ct[OP_COUNT];
    uint64_t cur_conns, total_conns;
    int64_t started_at;                 /* monotonic ns */
    char instance_id[17];               /* random hex, per process */
    /* What stats reports under beanstalkd's binlog-* keys. */
    struct {
        uint64_t oldest_index, current_index, records_migrated;
        uint64_t max_size;
    } binlog;
    /* binlog-records-written: the store's record writes, when there is one. */
    uint64_t (*store_writes)(void *ctx);
    /* Stats keys that depend on the server's store; NULL without one. */
    void (*store_stats)(void *ctx, buf *out);
    void *store_ctx;
} proto;

int proto_init(proto *p, queue *q);

/* A new session on the default tube; -1 when memory runs out. */
int session_open(proto *p, session *s, void *owner);
void session_close(proto *p, session *s, int64_t now);

/* Process as much of data as the session can take now and return the bytes
 * consumed. It stops early when the session blocks (reserve), closes (quit)
 * or has more than OUTPUT_HIGH_WATER bytes of replies queued. */
size_t proto_feed(proto *p, session *s, const char *data, size_t len, int64_t now);

/* SS_BODY with s->body: the caller wrote n more body bytes at s->body + s->have. */
void proto_body_read(proto *p, session *s, size_t n, int64_t now);

/* The queue woke a waiting session: write its reply. */
void proto_wake(proto *p, session *s, job *j, enum wake_reason why);

/* A session stops taking input while this much output is unsent, so a client
 * that never reads costs bounded memory. */
#define OUTPUT_HIGH_WATER (256 * 1024)

static inline int
session_blocked(const session *s)
{
    return s->state == SS_WAIT || s->state == SS_CLOSE ||
           buf_pending(&s->out) > OUTPUT_HIGH_WATER;
}

#endif
