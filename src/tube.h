/* Tubes: named queues, each with its ready heap, delay heap, buried list and
 * the clients waiting on it; and the registry that finds them by name. */
#ifndef BS_TUBE_H
#define BS_TUBE_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "job.h"

#define TUBE_NAME_MAX 200

struct client;

/* One client watching one tube. While the client waits in reserve, the node
 * is also linked into the tube's FIFO of waiters. */
typedef struct watch {
    struct tube *tube;
    struct client *client;
    struct watch *wprev, *wnext;
    int linked;
} watch;

typedef struct tube {
    heap ready;                 /* by priority, then id */
    heap delay;                 /* by deadline, then id */
    job *buried_head, *buried_tail;
    size_t buried_ct;
    watch *wait_head, *wait_tail;
    size_t waiting_ct;
    size_t refs;                /* users, watchers, jobs, the registry's default */
    uint32_t using_ct, watching_ct;
    uint64_t urgent_ct, reserved_ct, total_jobs, deletes, pause_ct;
    int64_t pause;              /* ns requested by pause-tube; 0 = running */
    int64_t unpause_at;         /* monotonic ns */
    size_t ppos;                /* index in the queue's paused heap */
    size_t index;               /* index in the registry's list */
    struct tube *hnext;
    size_t name_len;
    char name[];
} tube;

/* Tubes in creation order (list-tubes shows them so; a removed tube's slot
 * takes the last one, as beanstalkd does) and by name. */
typedef struct tube_registry {
    tube **list;
    size_t len, cap;
    tube **buckets;
    size_t nbuckets;
} tube_registry;

/* A valid name: 1..200 bytes of letters, digits and -+/;.$_() with no
 * leading hyphen. */
int tube_name_valid(const char *name, size_t len);

tube *tube_find(const tube_registry *r, const char *name, size_t len);
/* NULL when memory runs out. */
tube *tube_find_or_make(tube_registry *r, const char *name, size_t len);
/* Unlinks and frees t; the caller checked that nothing refers to it. */
void tube_destroy(tube_registry *r, tube *t);
void tube_registry_free(tube_registry *r);

void tube_buried_append(tube *t, job *j);
void tube_buried_remove(tube *t, job *j);

#endif
