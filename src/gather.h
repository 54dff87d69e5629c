/* Commit gathering: with a zero-loss store every commit costs two device
 * flushes, so a change that arrives a moment after a commit started waits
 * for the next one. Clients whose replies the last commit released tend to
 * send their next command right away; before committing, the loop waits a
 * little for those that have not yet, so their changes share this commit.
 *
 * The wait ends as soon as every awaited client has been heard from, when
 * none has been heard from for GATHER_GAP_NS, or at the budget the caller
 * gives (the last commit's duration), whichever comes first. Clients that
 * stay silent cost at most one gap, once: each commit starts a new set.
 * When clients come at a steady low rate a wait catches nobody and only
 * adds latency, so after a wait that caught nobody the next 1, 2, 4 ...
 * GATHER_BACKOFF_MAX chances to wait are skipped; one that catches
 * somebody ends the back-off. */
#ifndef BS_GATHER_H
#define BS_GATHER_H

#include <event2/event.h>
#include <stdint.h>

#define GATHER_GAP_NS (200 * 1000)
#define GATHER_MAX_NS (1000 * 1000)
#define GATHER_BACKOFF_MAX 64

typedef struct gather {
    int tfd;                    /* a timerfd: libevent's own timers round to ms */
    struct event *ev;
    int in_wait;                /* inside gather_wait */
    unsigned backoff, skip;     /* after useless waits: chances to let pass */
    uint64_t gen;               /* the commit whose clients are awaited */
    int awaiting;               /* of those, not heard from yet */
    uint64_t waits, gathered;   /* for stats: waits made, clients they caught */
} gather;

int gather_init(gather *g, struct event_base *base);
void gather_free(gather *g);
/* A committed turn is about to release its replies: a new set begins. */
void gather_begin(gather *g);
/* A client whose replies this commit releases; mark is its own word. */
void gather_mark(gather *g, uint64_t *mark);
/* Input arrived from (or the end came for) a client. */
void gather_heard(gather *g, uint64_t *mark);
/* Run the loop until the awaited clients are heard or the wait ends. */
void gather_wait(gather *g, struct event_base *base, int64_t budget_ns);

#endif
