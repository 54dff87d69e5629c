/* A job and the table that finds one by id. */
#ifndef BS_JOB_H
#define BS_JOB_H

#include <stddef.h>
#include <stdint.h>

struct tube;
struct client;

enum job_state {
    JOB_READY = 1,
    JOB_RESERVED,
    JOB_BURIED,
    JOB_DELAYED,
};

typedef struct job {
    uint64_t id;
    int64_t created_at;     /* monotonic ns */
    int64_t deadline;       /* monotonic ns: end of delay, or of TTR when reserved */
    uint32_t delay_s;       /* seconds, as last given by put or release */
    uint32_t ttr_s;         /* seconds, at least one */
    uint32_t pri;
    uint32_t body_size;     /* bytes, without the trailing CRLF */
    uint32_t reserves, timeouts, releases, buries, kicks;
    uint32_t pos;           /* index in the tube's ready or delay heap, or in
                             * the reserving client's heap */
    uint32_t tpos;          /* index in the queue's delays or ttrs heap */
    uint8_t state;
    uint8_t has_body;       /* body[] holds body_size + 2 bytes (memory mode) */
    struct tube *tube;
    struct job *hnext;      /* id table chain */
    /* A job is either buried (in its tube's list) or reserved, never both:
     * the two share their memory, which with a store is most of a job's RAM. */
    union {
        struct {
            struct job *prev, *next;        /* the tube's buried list */
        };
        struct client *reserver;
    };
    char body[];            /* body and CRLF, when has_body */
} job;

const char *job_state_name(const job *j);

/* Jobs by id: chained hash table that doubles as it fills. */
typedef struct job_table {
    job **buckets;
    size_t nbuckets;        /* power of two, or 0 */
    size_t count;
} job_table;

void job_table_free(job_table *t);
int job_table_add(job_table *t, job *j);   /* 0 or -1 (no memory) */
job *job_table_find(const job_table *t, uint64_t id);
void job_table_remove(job_table *t, job *j);


/* Callbacks for heaps of jobs (heap.h): ready order, timer order, and the
 * two position fields (pos for tube and client heaps, tpos for the queue's
 * delays and ttrs heaps). */
int job_heap_pri_less(const void *a, const void *b);
int job_heap_deadline_less(const void *a, const void *b);
void job_heap_setpos(void *x, size_t pos);
void job_heap_settpos(void *x, size_t pos);

/* Ready order: lower priority value first, then lower id (FIFO). */
static inline int
job_pri_less(const job *x, const job *y)
{
    return x->pri != y->pri ? x->pri < y->pri : x->id < y->id;
}

/* Timer order: earlier deadline first, then lower id. */
static inline int
job_deadline_less(const job *x, const job *y)
{
    return x->deadline != y->deadline ? x->deadline < y->deadline : x->id < y->id;
}

#endif
