/* A client connection: its socket, events, unprocessed input, and the
 * protocol session that the bytes feed. */
#ifndef BS_CONN_H
#define BS_CONN_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct server;

typedef struct conn {
    session s;
    struct server *srv;
    int fd;
    struct event *rev, *wev;
    char *in;                   /* input received but not yet processed */
    size_t in_len, in_cap;
    uint8_t reading, writing;   /* events currently added */
    uint8_t eof, closed;
    uint8_t out_stalled;        /* output went over the mark since the last drain */
    uint8_t on_dirty;
    /* With a store, replies leave only once the turn that produced them is
     * committed. Positions count every output byte the connection ever had:
     * sent is what went out, released what may. */
    uint64_t sent, released;
    uint64_t gather_mark;       /* see gather.h */
    struct conn *next_dirty;    /* server's list of conns to process and flush */
    struct conn *next_flush;    /* this turn's conns with replies to send */
    struct conn *next_dead;     /* server's list of closed conns to free */
    struct conn *prev_all, *next_all;   /* every open conn, for shutdown */
} conn;

/* Unprocessed input a blocked connection may hold before we stop reading
 * from its socket. */
#define INPUT_MAX (64 * 1024)

conn *conn_open(struct server *srv, int fd);
/* Feed buffered input, if the session can take it; 1 if it made progress. */
int conn_resume(conn *c, int64_t now);
/* Send buffered output; closes the connection when it is finished. */
void conn_flush(conn *c);
void conn_close(conn *c);
void conn_free(conn *c);

#endif
