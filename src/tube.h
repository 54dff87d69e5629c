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
 * is also linked into the tube's FIFO of waiters (it is linked when wprev is
 * set or it is the head). For a client that watches many tubes (queue.h,
 * QUEUE_MANY_TUBES) the node is also in the tube's `many` list, and in the
 * client's heap of tubes while the tube runs and has a ready job. One node
 * exists per client and tube, so it stays at five words. */
typedef struct watch {
    struct tube *tube;
    struct client *client;
    struct watch *wprev, *wnext;
    uint32_t hpos;              /* index in the client's tube heap, or WATCH_NO_POS */
    uint32_t mpos;              /* index in tube->many (many-tube clients only) */
} watch;

#define WATCH_NO_POS UINT32_MAX

typedef struct tube {
    heap ready;                 /* by priority, then id */
    heap delay;                 /* by deadline, then id */
    job *buried_head, *buried_tail;
    size_t buried_ct;
    watch *wait_head, *wait_tail;
    size_t waiting_ct;
    watch **many;               /* watch nodes of many-tube clients */
    uint32_t nmany, capmany;
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
