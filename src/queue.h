/* The queue core: jobs, tubes, clients and every state change between them,
 * with the timers for delays, TTRs, reserve timeouts and paused tubes.
 *
 * It knows neither sockets nor the store's format. Time is passed in by the
 * caller (monotonic ns), so unit tests drive it without sleeping. Every
 * journaled change (put, release, bury, kick, kick-job, delete, pause) goes
 * through the optional store_ops hooks; without a store the queue is purely
 * in memory. Cost per event is O(log n) in the jobs concerned: nothing here
 * walks all tubes, clients or jobs. */
#ifndef BS_QUEUE_H
#define BS_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "job.h"
#include "tube.h"

#define URGENT_THRESHOLD 1024
/* A waiting reserve answers DEADLINE_SOON this long before a TTR runs out. */
#define SAFETY_MARGIN_NS ((int64_t)1000000000)

typedef struct queue queue;

/* Reserve finds a client's best ready job by looking at each watched tube's
 * top while the client watches at most this many tubes (as fast as it gets
 * for a few tubes, and no bookkeeping on put). A client watching more keeps
 * a heap of its watched tubes that run and have a ready job, keyed by that
 * job, so reserve reads the heap's top; every change of a tube's top ready
 * job then costs O(log W) for each such client watching it. A client goes
 * back to scanning when it drops to half the threshold, so watch/ignore
 * around the threshold does not rebuild the heap each time. */
#ifndef QUEUE_MANY_TUBES
#define QUEUE_MANY_TUBES 8
#endif

/* An entry of a many-tube client's heap: a watched tube (through its watch
 * node) and its top ready job, the key. */
typedef struct tube_slot {
    job *top;
    watch *w;
} tube_slot;

/* A protocol session: what a connection uses, watches and holds. */
typedef struct client {
    tube *use;
    watch **watches;            /* in watch order; ignore swaps in the last */
    size_t nwatch, capwatch;
    tube_slot *tops;            /* many-tube clients: heap by top ready job; */
    uint32_t ntops, captops;    /* captops >= nwatch, so it never grows later */
    heap reserved;              /* jobs held, by TTR deadline */
    int waiting;                /* blocked in reserve */
    int64_t wait_until;         /* reserve timeout, or INT64_MAX */
    int64_t wake_at;            /* when the wait ends by itself */
    size_t wpos;                /* index in the wakeups heap, or SIZE_MAX */
    uint8_t producer, worker;
    uint8_t many;               /* watches more than QUEUE_MANY_TUBES tubes */
    void *owner;                /* the connection, for the wake callback */
} client;

enum wake_reason { WAKE_RESERVED, WAKE_TIMED_OUT, WAKE_DEADLINE_SOON };

/* Results of the operations below. */
enum {
    Q_OK = 0,
    Q_NOT_FOUND,
    Q_NO_MEMORY,
    Q_INTERNAL,
    Q_NOT_IGNORED,
    Q_DEADLINE_SOON,
    Q_TIMED_OUT,
    Q_WAITING,
    Q_BURIED,           /* the job could not be queued and was buried */
};

/* Hooks of a durable store. Each returns 0, or -1 when the change could not
 * be recorded (the caller answers OUT_OF_MEMORY or INTERNAL_ERROR). */
typedef struct store_ops {
    int (*put)(void *ctx, const job *j, const char *body);
    int (*update)(void *ctx, const job *j);
    int (*remove)(void *ctx, const job *j);
    int (*pause)(void *ctx, const tube *t);
    /* The body and its CRLF, valid until the end of the loop turn. */
    const char *(*body)(void *ctx, const job *j);
    /* Whether a new job of size bytes fits (disk headroom); 1 or 0. */
    int (*room)(void *ctx, uint64_t size);
} store_ops;

typedef struct queue_stats {
    uint64_t ready, urgent, reserved, delayed, buried;
    uint64_t total_jobs, timeouts, waiting, producers, workers;
} queue_stats;

struct queue {
    job_table jobs;
    uint64_t next_id;
    tube_registry tubes;
    tube *default_tube;
    heap delays;                /* delayed jobs of all tubes, by deadline */
    heap ttrs;                  /* reserved jobs, by TTR deadline */
    heap wakeups;               /* waiting clients, by wake_at */
    heap paused;                /* paused tubes, by unpause_at */
    queue_stats st;
    void (*on_wake)(void *ctx, client *c, job *j, enum wake_reason why);
    void *wake_ctx;
    const store_ops *store;
    void *store_ctx;
};

int queue_init(queue *q);
void queue_free(queue *q);

int client_init(queue *q, client *c, void *owner);
/* The connection is gone: stop waiting, return reserved jobs to ready,
 * let go of tubes. */
void client_release(queue *q, client *c, int64_t now);
void client_mark_producer(queue *q, client *c);

/* body points at size bytes followed by "\r\n". */
int queue_put(queue *q, client *c, uint32_t pri, int64_t delay, int64_t ttr,
              const char *body, uint32_t size, int64_t now, uint64_t *id);
/* A put whose body turned out bad still used up an id in beanstalkd (it
 * numbers a job when the command line arrives); so do we. */
static inline void
queue_skip_id(queue *q)
{
    q->next_id++;
}

/* timeout < 0 waits forever. Q_OK sets *out; Q_WAITING means on_wake will
 * be called later with the outcome. */
int queue_reserve(queue *q, client *c, int64_t timeout, int64_t now, job **out);
int queue_reserve_job(queue *q, client *c, uint64_t id, int64_t now, job **out);
int queue_delete(queue *q, client *c, uint64_t id);
int queue_release(queue *q, client *c, uint64_t id, uint32_t pri, int64_t delay, int64_t now);
int queue_bury(queue *q, client *c, uint64_t id, uint32_t pri);
int queue_touch(queue *q, client *c, uint64_t id, int64_t now);
unsigned queue_kick(queue *q, tube *t, unsigned n, int64_t now);
int queue_kick_job(queue *q, uint64_t id, int64_t now);
int queue_use(queue *q, client *c, const char *name, size_t len);
/* *count receives the number of watched tubes after the change. */
int queue_watch(queue *q, client *c, const char *name, size_t len, size_t *count);
int queue_ignore(queue *q, client *c, const char *name, size_t len, size_t *count);
int queue_pause(queue *q, const char *name, size_t len, int64_t delay, int64_t now);

/* For tests: the job a reserve by c would take now (NULL if none), as its
 * heap or scan finds it; the same found by scanning every watched tube; and
 * a check of c's many-tube bookkeeping, 0 when it is consistent. */
job *queue_best_ready(const client *c);
job *queue_best_ready_scan(const client *c);
int queue_check_client(const client *c);

/* A waiting client gives up (its connection hung up): no reply is due. */
void queue_cancel_wait(queue *q, client *c);

/* Fire every timer due at now. */
void queue_tick(queue *q, int64_t now);
/* Monotonic ns of the next timer, or INT64_MAX. */
int64_t queue_next_deadline(const queue *q);

static inline job *
queue_find(const queue *q, uint64_t id)
{
    return job_table_find(&q->jobs, id);
}

/* The body of j with its CRLF, body_size + 2 bytes; NULL if unreadable. */
const char *queue_body(const queue *q, const job *j);

/* Insert a job read back from a store at start-up, in the state it carries. */
int queue_restore(queue *q, job *j, const char *tube_name, size_t len, int64_t now);
/* Resume a pause read back from a store (the tube exists). */
void queue_restore_pause(queue *q, const char *name, size_t len, int64_t pause, int64_t until);

#endif
