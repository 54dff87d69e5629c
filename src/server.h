/* The server: listeners, the event loop and the end-of-turn work (timers,
 * resuming woken connections, commit, flushing replies). */
#ifndef BS_SERVER_H
#define BS_SERVER_H

#include <event2/event.h>
#include <stdint.h>

#include "conn.h"
#include "gather.h"
#include "proto.h"
#include "queue.h"
#include "store.h"

#define MAX_LISTENERS 16

typedef struct listener {
    int fd;
    struct event *ev;
} listener;

typedef struct server {
    struct event_base *base;
    queue q;
    proto p;
    listener ls[MAX_LISTENERS];
    int nls;
    struct event *timer;            /* the queue's next deadline */
    int64_t timer_at;
    struct event *accept_pause;     /* re-enables accept after EMFILE */
    struct event *sigs[4];
    conn *dirty;                    /* conns to resume and flush this turn */
    conn *dead;                     /* closed conns to free after the turn */
    conn *all;                      /* every open conn */
    store *store;                   /* NULL in memory mode */
    int stop;
    int starved;                    /* accept ran out of descriptors */
    gather gather;                  /* zero-loss store: wait for more before a commit */
} server;

/* Queue c for end-of-turn processing (idempotent). */
void server_touch(server *srv, conn *c);
void server_bury(server *srv, conn *c);
/* Memory mode: resume and flush queued connections now, so a reply (also
 * one to a reserve that another connection's put just woke) need not wait
 * for the end of the turn. Does nothing with a store. */
void server_flush_now(server *srv);

int server_init(server *srv);
int server_add_listener(server *srv, int fd);
/* Attach a loaded store: its hooks, stats and commit at every turn. */
void server_attach_store(server *srv, store *st);
/* Runs until SIGTERM or SIGINT; returns the exit status. */
int server_run(server *srv);
void server_free(server *srv);

#endif
