#include "queue.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---- heap glue ---- */

static int
wake_less(const void *a, const void *b)
{
    return ((const client *)a)->wake_at < ((const client *)b)->wake_at;
}

static void client_setpos(void *x, size_t pos) { ((client *)x)->wpos = pos; }

static int
paused_less(const void *a, const void *b)
{
    return ((const tube *)a)->unpause_at < ((const tube *)b)->unpause_at;
}

static void tube_setppos(void *x, size_t pos) { ((tube *)x)->ppos = pos; }

/* ---- tube references ---- */

static void
tube_ref(tube *t)
{
    t->refs++;
}

static void
tube_unref(queue *q, tube *t)
{
    if (--t->refs > 0)
        return;
    if (t->pause)
        heap_remove(&q->paused, t->ppos);
    tube_destroy(&q->tubes, t);
}

/* ---- many-tube clients' heaps of tubes ----
 * A small binary heap written out here rather than heap.c's: the entries
 * carry their key, and the heap's memory is reserved up front (captops >=
 * nwatch), so keeping it in step with the tubes can never fail. */

static int
slot_less(const tube_slot *a, const tube_slot *b)
{
    return job_pri_less(a->top, b->top);
}

static void
slot_set(client *c, uint32_t i, tube_slot s)
{
    c->tops[i] = s;
    s.w->hpos = i;
}

static void
tops_up(client *c, uint32_t i)
{
    tube_slot s = c->tops[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!slot_less(&s, &c->tops[p]))
            break;
        slot_set(c, i, c->tops[p]);
        i = p;
    }
    slot_set(c, i, s);
}

static void
tops_down(client *c, uint32_t i)
{
    tube_slot s = c->tops[i];
    for (;;) {
        uint32_t l = 2 * i + 1, best = l;
        if (l >= c->ntops)
            break;
        if (l + 1 < c->ntops && slot_less(&c->tops[l + 1], &c->tops[l]))
            best = l + 1;
        if (!slot_less(&c->tops[best], &s))
            break;
        slot_set(c, i, c->tops[best]);
        i = best;
    }
    slot_set(c, i, s);
}

static void
tops_fix(client *c, uint32_t i)
{
    if (i > 0 && slot_less(&c->tops[i], &c->tops[(i - 1) / 2]))
        tops_up(c, i);
    else
        tops_down(c, i);
}

static void
tops_remove(client *c, uint32_t i)
{
    c->tops[i].w->hpos = WATCH_NO_POS;
    if (i < --c->ntops) {
        slot_set(c, i, c->tops[c->ntops]);
        tops_fix(c, i);
    }
}

/* What a watcher of t can get from it: its top ready job while it runs. */
static job *
tube_offer(const tube *t)
{
    return t->pause ? NULL : heap_top(&t->ready);
}

/* Put w's tube where it belongs in its client's heap. */
static void
tops_update(watch *w, job *top)
{
    client *c = w->client;
    if (!top) {
        if (w->hpos != WATCH_NO_POS)
            tops_remove(c, w->hpos);
    } else if (w->hpos == WATCH_NO_POS) {
        uint32_t i = c->ntops++;
        c->tops[i] = (tube_slot){top, w};
        tops_up(c, i);
    } else {
        c->tops[w->hpos].top = top;
        tops_fix(c, w->hpos);
    }
}

/* t's top ready job, or whether t runs, has changed: move t in the heap of
 * every many-tube client watching it. Nothing to do for other clients. */
static inline void
tube_changed(tube *t)
{
    if (t->nmany) {
        job *top = tube_offer(t);
        for (uint32_t i = 0; i < t->nmany; i++)
            tops_update(t->many[i], top);
    }
}

/* Room for n entries in c's heap; 0 or -1. */
static int
tops_reserve(client *c, size_t n)
{
    if (n <= c->captops)
        return 0;
    size_t cap = c->captops ? c->captops : QUEUE_MANY_TUBES;
    while (cap < n)
        cap *= 2;
    if (cap > WATCH_NO_POS)
        return -1;
    tube_slot *d = realloc(c->tops, cap * sizeof *d);
    if (!d)
        return -1;
    c->tops = d;
    c->captops = (uint32_t)cap;
    return 0;
}

/* Room for one more entry in t's many list; 0 or -1. */
static int
many_reserve(tube *t)
{
    if (t->nmany < t->capmany)
        return 0;
    uint32_t cap = t->capmany ? t->capmany * 2 : 2;
    if (cap <= t->capmany)
        return -1;
    watch **d = realloc(t->many, cap * sizeof *d);
    if (!d)
        return -1;
    t->many = d;
    t->capmany = cap;
    return 0;
}

/* Enter w, of a many-tube client, into its tube's list and (when the tube
 * offers a job) its client's heap; room for both was reserved. */
static void
many_link(watch *w)
{
    tube *t = w->tube;
    w->mpos = t->nmany;
    t->many[t->nmany++] = w;
    w->hpos = WATCH_NO_POS;
    tops_update(w, tube_offer(t));
}

static void
many_unlink(watch *w)
{
    tube *t = w->tube;
    if (w->hpos != WATCH_NO_POS)
        tops_remove(w->client, w->hpos);
    t->many[w->mpos] = t->many[--t->nmany];
    t->many[w->mpos]->mpos = w->mpos;
    if (t->nmany == 0) {
        free(t->many);
        t->many = NULL;
        t->capmany = 0;
    }
}

/* Switch c to a heap of its tubes, or back to scanning, when its number of
 * watched tubes calls for it. A switch costs O(W) with W near the threshold,
 * and half the threshold's watches or ignores lie between two switches.
 * Waiting does not depend on the mode. Running out of
 * memory leaves c scanning, which is slower but gives the same answers; it
 * tries again on its next watch, ignore or reserve. */
static void
client_retype(client *c)
{
    if (!c->many && c->nwatch > QUEUE_MANY_TUBES) {
        if (tops_reserve(c, c->nwatch) < 0)
            return;
        for (size_t i = 0; i < c->nwatch; i++)
            if (many_reserve(c->watches[i]->tube) < 0)
                return;
        c->many = 1;
        c->ntops = 0;
        for (size_t i = 0; i < c->nwatch; i++)
            many_link(c->watches[i]);
    } else if (c->many && c->nwatch <= QUEUE_MANY_TUBES / 2) {
        for (size_t i = 0; i < c->nwatch; i++)
            many_unlink(c->watches[i]);
        free(c->tops);
        c->tops = NULL;
        c->ntops = c->captops = 0;
        c->many = 0;
    }
}

int
queue_init(queue *q)
{
    memset(q, 0, sizeof *q);
    q->next_id = 1;
    heap_init(&q->delays, job_heap_deadline_less, job_heap_settpos);
    heap_init(&q->ttrs, job_heap_deadline_less, job_heap_settpos);
    heap_init(&q->wakeups, wake_less, client_setpos);
    heap_init(&q->paused, paused_less, tube_setppos);
    q->default_tube = tube_find_or_make(&q->tubes, "default", 7);
    if (!q->default_tube)
        return -1;
    tube_ref(q->default_tube);          /* "default" always exists */
    return 0;
}

void
queue_free(queue *q)
{
    /* Jobs are reachable through the table; free them bucket by bucket. */
    for (size_t i = 0; i < q->jobs.nbuckets; i++) {
        job *j = q->jobs.buckets[i];
        while (j) {
            job *next = j->hnext;
            free(j);
            j = next;
        }
    }
    job_table_free(&q->jobs);
    tube_registry_free(&q->tubes);
    heap_free(&q->delays);
    heap_free(&q->ttrs);
    heap_free(&q->wakeups);
    heap_free(&q->paused);
}

/* ---- waiting clients ---- */

static int64_t
soonest_deadline(const client *c)
{
    const job *j = heap_top(&c->reserved);
    return j ? j->deadline : INT64_MAX;
}

static int
deadline_soon(const client *c, int64_t now)
{
    int64_t d = soonest_deadline(c);
    return d != INT64_MAX && now >= d - SAFETY_MARGIN_NS;
}

static void
start_waiting(queue *q, client *c, int64_t until)
{
    c->waiting = 1;
    c->wait_until = until;
    for (size_t i = 0; i < c->nwatch; i++) {
        watch *w = c->watches[i];
        tube *t = w->tube;
        w->wnext = NULL;
        w->wprev = t->wait_tail;
        if (t->wait_tail)
            t->wait_tail->wnext = w;
        else
            t->wait_head = w;
        t->wait_tail = w;
        t->waiting_ct++;
    }
    q->st.waiting++;
    int64_t soon = soonest_deadline(c);
    if (soon != INT64_MAX)
        soon -= SAFETY_MARGIN_NS;
    c->wake_at = until < soon ? until : soon;
    c->wpos = SIZE_MAX;
    if (c->wake_at != INT64_MAX && heap_insert(&q->wakeups, c) < 0)
        c->wake_at = INT64_MAX;         /* no memory: wait without a timer */
}

static void
unlink_watch(watch *w)
{
    tube *t = w->tube;
    if (!w->wprev && t->wait_head != w)
        return;
    if (w->wprev)
        w->wprev->wnext = w->wnext;
    else
        t->wait_head = w->wnext;
    if (w->wnext)
        w->wnext->wprev = w->wprev;
    else
        t->wait_tail = w->wprev;
    w->wprev = w->wnext = NULL;
    t->waiting_ct--;
}

static void
stop_waiting(queue *q, client *c)
{
    if (!c->waiting)
        return;
    for (size_t i = 0; i < c->nwatch; i++)
        unlink_watch(c->watches[i]);
    if (c->wpos != SIZE_MAX)
        heap_remove(&q->wakeups, c->wpos);
    c->wpos = SIZE_MAX;
    c->waiting = 0;
    q->st.waiting--;
}

/* ---- job state transitions ----
 * Each job is in exactly one place: a tube's ready heap, a tube's delay heap
 * (and the queue's delays heap), a client's reserved heap (and the queue's
 * ttrs heap), or a tube's buried list. detach() takes it out of its place;
 * the to_*() functions put it into a new one. */

static void
detach(queue *q, job *j)
{
    tube *t = j->tube;
    switch (j->state) {
    case JOB_READY: {
        int was_top = j->pos == 0;
        heap_remove(&t->ready, j->pos);
        if (was_top)
            tube_changed(t);
        q->st.ready--;
        if (j->pri < URGENT_THRESHOLD) {
            q->st.urgent--;
            t->urgent_ct--;
        }
        break;
    }
    case JOB_DELAYED:
        heap_remove(&t->delay, j->pos);
        heap_remove(&q->delays, j->tpos);
        q->st.delayed--;
        break;
    case JOB_RESERVED:
        heap_remove(&j->reserver->reserved, j->pos);
        heap_remove(&q->ttrs, j->tpos);
        j->reserver = NULL;
        q->st.reserved--;
        t->reserved_ct--;
        break;
    case JOB_BURIED:
        tube_buried_remove(t, j);
        q->st.buried--;
        break;
    }
    j->state = 0;
}

static void
to_buried(queue *q, job *j)
{
    j->state = JOB_BURIED;
    tube_buried_append(j->tube, j);
    q->st.buried++;
}

static void dispatch(queue *q, tube *t, int64_t now);

/* Returns Q_OK, or Q_BURIED when the heap could not grow. */
static int
to_ready(queue *q, job *j, int64_t now)
{
    tube *t = j->tube;
    if (heap_insert(&t->ready, j) < 0) {
        to_buried(q, j);
        return Q_BURIED;
    }
    j->state = JOB_READY;
    q->st.ready++;
    if (j->pri < URGENT_THRESHOLD) {
        q->st.urgent++;
        t->urgent_ct++;
    }
    if (j->pos == 0)
        tube_changed(t);
    dispatch(q, t, now);
    return Q_OK;
}

static int
to_delayed(queue *q, job *j, int64_t delay, int64_t now)
{
    j->deadline = now + delay;
    if (heap_insert(&j->tube->delay, j) < 0) {
        to_buried(q, j);
        return Q_BURIED;
    }
    if (heap_insert(&q->delays, j) < 0) {
        heap_remove(&j->tube->delay, j->pos);
        to_buried(q, j);
        return Q_BURIED;
    }
    j->state = JOB_DELAYED;
    q->st.delayed++;
    return Q_OK;
}

static int
to_reserved(queue *q, client *c, job *j, int64_t now)
{
    j->deadline = now + (int64_t)j->ttr_s * NS_PER_SEC;
    if (heap_insert(&c->reserved, j) < 0)
        return -1;
    if (heap_insert(&q->ttrs, j) < 0) {
        heap_remove(&c->reserved, j->pos);
        return -1;
    }
    j->state = JOB_RESERVED;
    j->reserver = c;
    j->reserves++;
    q->st.reserved++;
    j->tube->reserved_ct++;
    return 0;
}

/* Hand ready jobs of t to the clients waiting on it, oldest waiter first.
 * A running tube never holds ready jobs and waiters at once, so the job
 * handed out is the best any of those waiters could get. */
static void
dispatch(queue *q, tube *t, int64_t now)
{
    while (!t->pause && t->ready.len && t->wait_head) {
        client *c = t->wait_head->client;
        job *j = heap_top(&t->ready);
        detach(q, j);
        stop_waiting(q, c);
        if (to_reserved(q, c, j, now) < 0) {
            to_buried(q, j);
            q->on_wake(q->wake_ctx, c, NULL, WAKE_TIMED_OUT);
            continue;
        }
        q->on_wake(q->wake_ctx, c, j, WAKE_RESERVED);
    }
}

/* Journal j as it will be once it enters state (deadline for a delay): the
 * store sees the final state before the job is linked, because linking it
 * may hand it straight to a waiting client. */
static int
journal(queue *q, job *j, int state, int64_t deadline)
{
    if (!q->store)
        return 0;
    j->state = state;
    j->deadline = deadline;
    int r = q->store->update(q->store_ctx, j);
    j->state = 0;
    return r;
}

/* ---- clients ---- */

static int
watch_add(client *c, tube *t)
{
    if (c->many && (tops_reserve(c, c->nwatch + 1) < 0 || many_reserve(t) < 0))
        return -1;
    if (c->nwatch == c->capwatch) {
        size_t cap = c->capwatch ? c->capwatch * 2 : 4;
        watch **w = realloc(c->watches, cap * sizeof *w);
        if (!w)
            return -1;
        c->watches = w;
        c->capwatch = cap;
    }
    watch *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->tube = t;
    w->client = c;
    w->hpos = WATCH_NO_POS;
    c->watches[c->nwatch++] = w;
    if (c->many)
        many_link(w);
    tube_ref(t);
    t->watching_ct++;
    return 0;
}

static void
watch_remove(queue *q, client *c, size_t i)
{
    watch *w = c->watches[i];
    tube *t = w->tube;
    unlink_watch(w);
    if (c->many)
        many_unlink(w);
    c->watches[i] = c->watches[--c->nwatch];
    free(w);
    t->watching_ct--;
    tube_unref(q, t);
}

int
client_init(queue *q, client *c, void *owner)
{
    memset(c, 0, sizeof *c);
    c->owner = owner;
    c->wpos = SIZE_MAX;
    heap_init(&c->reserved, job_heap_deadline_less, job_heap_setpos);
    if (watch_add(c, q->default_tube) < 0) {
        free(c->watches);
        return -1;
    }
    c->use = q->default_tube;
    tube_ref(c->use);
    c->use->using_ct++;
    return 0;
}

void
client_mark_producer(queue *q, client *c)
{
    if (!c->producer) {
        c->producer = 1;
        q->st.producers++;
    }
}

static void
mark_worker(queue *q, client *c)
{
    if (!c->worker) {
        c->worker = 1;
        q->st.workers++;
    }
}

void
client_release(queue *q, client *c, int64_t now)
{
    stop_waiting(q, c);
    while (c->reserved.len) {
        job *j = heap_top(&c->reserved);
        detach(q, j);
        to_ready(q, j, now);
    }
    heap_free(&c->reserved);
    while (c->nwatch)
        watch_remove(q, c, c->nwatch - 1);
    free(c->watches);
    c->watches = NULL;
    free(c->tops);
    c->tops = NULL;
    c->ntops = c->captops = 0;
    c->many = 0;
    c->use->using_ct--;
    tube_unref(q, c->use);
    c->use = NULL;
    if (c->producer)
        q->st.producers--;
    if (c->worker)
        q->st.workers--;
}

/* ---- commands ---- */

static job *
new_job(queue *q, tube *t, uint32_t pri, int64_t delay, int64_t ttr, uint32_t size, int64_t now)
{
    size_t extra = q->store ? 0 : (size_t)size + 2;
    job *j = malloc(sizeof *j + extra);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->id = q->next_id;
    j->pri = pri;
    j->delay_s = (uint32_t)(delay / NS_PER_SEC);
    j->ttr_s = ttr < NS_PER_SEC ? 1 : (uint32_t)(ttr / NS_PER_SEC);
    j->body_size = size;
    j->created_at = now;
    j->tube = t;
    j->has_body = !q->store;
    if (job_table_add(&q->jobs, j) < 0) {
        free(j);
        return NULL;
    }
    q->next_id++;
    tube_ref(t);
    return j;
}

static void
destroy_job(queue *q, job *j)
{
    tube *t = j->tube;
    job_table_remove(&q->jobs, j);
    free(j);
    tube_unref(q, t);
}

int
queue_put(queue *q, client *c, uint32_t pri, int64_t delay, int64_t ttr,
          const char *body, uint32_t size, int64_t now, uint64_t *id)
{
    tube *t = c->use;
    if (q->store && q->store->room && !q->store->room(q->store_ctx, size))
        return Q_NO_MEMORY;
    job *j = new_job(q, t, pri, delay, ttr, size, now);
    if (!j)
        return Q_NO_MEMORY;
    if (j->has_body)
        memcpy(j->body, body, (size_t)size + 2);
    /* The store records the state the job is about to enter. */
    j->state = delay > 0 ? JOB_DELAYED : JOB_READY;
    j->deadline = delay > 0 ? now + delay : 0;
    if (q->store && q->store->put(q->store_ctx, j, body) < 0) {
        destroy_job(q, j);
        return Q_NO_MEMORY;
    }
    j->state = 0;
    q->st.total_jobs++;
    t->total_jobs++;
    *id = j->id;
    if (delay > 0)
        return to_delayed(q, j, delay, now);
    return to_ready(q, j, now);
}

/* The job with the lowest (priority, id) among the watched running tubes. */
job *
queue_best_ready_scan(const client *c)
{
    job *best = NULL;
    for (size_t i = 0; i < c->nwatch; i++) {
        job *j = tube_offer(c->watches[i]->tube);
        if (j && (!best || job_pri_less(j, best)))
            best = j;
    }
    return best;
}

job *
queue_best_ready(const client *c)
{
    if (c->many)
        return c->ntops ? c->tops[0].top : NULL;
    return queue_best_ready_scan(c);
}

int
queue_check_client(const client *c)
{
    if (!c->many)
        return c->tops || c->ntops || c->captops ? 1 : 0;
    if (c->captops < c->nwatch || c->ntops > c->nwatch)
        return 2;
    uint32_t offering = 0;
    for (size_t i = 0; i < c->nwatch; i++) {
        const watch *w = c->watches[i];
        const tube *t = w->tube;
        if (w->client != c || w->mpos >= t->nmany || t->many[w->mpos] != w)
            return 3;
        job *top = tube_offer(t);
        if (!top) {
            if (w->hpos != WATCH_NO_POS)
                return 4;
            continue;
        }
        offering++;
        if (w->hpos >= c->ntops || c->tops[w->hpos].w != w || c->tops[w->hpos].top != top)
            return 5;
    }
    if (offering != c->ntops)
        return 6;
    for (uint32_t i = 1; i < c->ntops; i++)
        if (slot_less(&c->tops[i], &c->tops[(i - 1) / 2]))
            return 7;
    return 0;
}

int
queue_reserve(queue *q, client *c, int64_t timeout, int64_t now, job **out)
{
    mark_worker(q, c);
    client_retype(c);
    job *j = queue_best_ready(c);
    if (!j) {
        if (deadline_soon(c, now))
            return Q_DEADLINE_SOON;
        if (timeout == 0)
            return Q_TIMED_OUT;
        start_waiting(q, c, timeout < 0 ? INT64_MAX : now + timeout);
        return Q_WAITING;
    }
    detach(q, j);
    if (to_reserved(q, c, j, now) < 0) {
        to_ready(q, j, now);
        return Q_NO_MEMORY;
    }
    *out = j;
    return Q_OK;
}

int
queue_reserve_job(queue *q, client *c, uint64_t id, int64_t now, job **out)
{
    job *j = queue_find(q, id);
    if (!j || j->state == JOB_RESERVED)
        return Q_NOT_FOUND;
    mark_worker(q, c);
    int old = j->state;
    int64_t old_deadline = j->deadline;     /* to_reserved() overwrites it */
    detach(q, j);
    if (to_reserved(q, c, j, now) < 0) {
        if (old == JOB_DELAYED)
            to_delayed(q, j, old_deadline - now, now);
        else if (old == JOB_BURIED)
            to_buried(q, j);
        else
            to_ready(q, j, now);
        return Q_NO_MEMORY;
    }
    *out = j;
    return Q_OK;
}

static job *
reserved_by(const queue *q, const client *c, uint64_t id)
{
    job *j = queue_find(q, id);
    return j && j->state == JOB_RESERVED && j->reserver == c ? j : NULL;
}

int
queue_delete(queue *q, client *c, uint64_t id)
{
    job *j = queue_find(q, id);
    if (!j || (j->state == JOB_RESERVED && j->reserver != c))
        return Q_NOT_FOUND;
    int r = q->store ? q->store->remove(q->store_ctx, j) : 0;
    detach(q, j);
    j->tube->deletes++;
    destroy_job(q, j);
    return r < 0 ? Q_INTERNAL : Q_OK;
}

int
queue_release(queue *q, client *c, uint64_t id, uint32_t pri, int64_t delay, int64_t now)
{
    job *j = reserved_by(q, c, id);
    if (!j)
        return Q_NOT_FOUND;
    detach(q, j);
    j->pri = pri;
    j->delay_s = (uint32_t)(delay / NS_PER_SEC);
    j->releases++;
    int w = journal(q, j, delay > 0 ? JOB_DELAYED : JOB_READY, now + delay);
    int r = delay > 0 ? to_delayed(q, j, delay, now) : to_ready(q, j, now);
    return w < 0 ? Q_INTERNAL : r;
}

int
queue_bury(queue *q, client *c, uint64_t id, uint32_t pri)
{
    job *j = reserved_by(q, c, id);
    if (!j)
        return Q_NOT_FOUND;
    detach(q, j);
    j->pri = pri;
    j->buries++;
    int w = journal(q, j, JOB_BURIED, 0);
    to_buried(q, j);
    return w < 0 ? Q_INTERNAL : Q_OK;
}

int
queue_touch(queue *q, client *c, uint64_t id, int64_t now)
{
    job *j = reserved_by(q, c, id);
    if (!j)
        return Q_NOT_FOUND;
    j->deadline = now + (int64_t)j->ttr_s * NS_PER_SEC;
    heap_fix(&c->reserved, j->pos);
    heap_fix(&q->ttrs, j->tpos);
    return Q_OK;
}

static int
kick(queue *q, job *j, int64_t now)
{
    detach(q, j);
    j->kicks++;
    int w = journal(q, j, JOB_READY, 0);
    int r = to_ready(q, j, now);
    return w < 0 ? Q_INTERNAL : r;
}

unsigned
queue_kick(queue *q, tube *t, unsigned n, int64_t now)
{
    unsigned i = 0;
    if (t->buried_head) {
        /* Kicked jobs go to ready, never back to buried, unless memory ran
         * out; stop then rather than loop on the same job. */
        for (; i < n && t->buried_head; i++)
            if (kick(q, t->buried_head, now) == Q_BURIED)
                break;
    } else {
        for (; i < n && t->delay.len; i++)
            if (kick(q, heap_top(&t->delay), now) == Q_BURIED)
                break;
    }
    return i;
}

int
queue_kick_job(queue *q, uint64_t id, int64_t now)
{
    job *j = queue_find(q, id);
    if (!j || (j->state != JOB_BURIED && j->state != JOB_DELAYED))
        return Q_NOT_FOUND;
    int r = kick(q, j, now);
    return r == Q_BURIED ? Q_NOT_FOUND : r;
}

int
queue_use(queue *q, client *c, const char *name, size_t len)
{
    tube *t = tube_find_or_make(&q->tubes, name, len);
    if (!t)
        return Q_NO_MEMORY;
    tube_ref(t);
    t->using_ct++;
    c->use->using_ct--;
    tube_unref(q, c->use);
    c->use = t;
    return Q_OK;
}

/* The index of t in c's watch list, or -1. The tube comes from the
 * registry's hash, so this compares pointers, not names. */
static ptrdiff_t
find_watch(const client *c, const tube *t)
{
    for (size_t i = 0; i < c->nwatch; i++)
        if (c->watches[i]->tube == t)
            return (ptrdiff_t)i;
    return -1;
}

/* Whether c watches t: through t's list of many-tube watchers when that is
 * the shorter walk. */
static int
watches(const client *c, const tube *t)
{
    if (c->many && t->nmany < c->nwatch) {
        for (uint32_t i = 0; i < t->nmany; i++)
            if (t->many[i]->client == c)
                return 1;
        return 0;
    }
    return find_watch(c, t) >= 0;
}

int
queue_watch(queue *q, client *c, const char *name, size_t len, size_t *count)
{
    tube *t = tube_find_or_make(&q->tubes, name, len);
    if (!t)
        return Q_NO_MEMORY;
    if (!watches(c, t)) {
        if (watch_add(c, t) < 0) {
            if (t->refs == 0)
                tube_destroy(&q->tubes, t);
            return Q_NO_MEMORY;
        }
        client_retype(c);
    }
    *count = c->nwatch;
    return Q_OK;
}

int
queue_ignore(queue *q, client *c, const char *name, size_t len, size_t *count)
{
    tube *t = tube_find(&q->tubes, name, len);
    ptrdiff_t i = t ? find_watch(c, t) : -1;
    if (i >= 0) {
        if (c->nwatch < 2)
            return Q_NOT_IGNORED;
        watch_remove(q, c, (size_t)i);
        client_retype(c);
    }
    *count = c->nwatch;
    return Q_OK;
}

int
queue_pause(queue *q, const char *name, size_t len, int64_t delay, int64_t now)
{
    tube *t = tube_find(&q->tubes, name, len);
    if (!t)
        return Q_NOT_FOUND;
    /* A pause is always positive, so waiters are woken when it ends. */
    if (delay <= 0)
        delay = 1;
    int was_paused = t->pause != 0;
    t->pause = delay;
    t->unpause_at = now + delay;
    t->pause_ct++;
    if (was_paused) {
        heap_fix(&q->paused, t->ppos);
    } else if (heap_insert(&q->paused, t) < 0) {
        t->pause = 0;
        return Q_NO_MEMORY;
    } else {
        tube_changed(t);
    }
    if (q->store && q->store->pause && q->store->pause(q->store_ctx, t) < 0)
        return Q_INTERNAL;
    return Q_OK;
}

void
queue_cancel_wait(queue *q, client *c)
{
    stop_waiting(q, c);
}

/* ---- timers ---- */

void
queue_tick(queue *q, int64_t now)
{
    job *j;
    tube *t;
    client *c;

    /* Same order as beanstalkd: delays, then pauses, then the clients'
     * timeouts, then TTRs, so a waiting client's DEADLINE_SOON comes before
     * its job times out. */
    while ((j = heap_top(&q->delays)) && j->deadline <= now) {
        detach(q, j);
        to_ready(q, j, now);
    }
    while ((t = heap_top(&q->paused)) && t->unpause_at <= now) {
        heap_remove(&q->paused, t->ppos);
        t->pause = 0;
        tube_changed(t);
        dispatch(q, t, now);
    }
    while ((c = heap_top(&q->wakeups)) && c->wake_at <= now) {
        enum wake_reason why = deadline_soon(c, now) ? WAKE_DEADLINE_SOON : WAKE_TIMED_OUT;
        stop_waiting(q, c);
        q->on_wake(q->wake_ctx, c, NULL, why);
    }
    while ((j = heap_top(&q->ttrs)) && j->deadline <= now) {
        detach(q, j);
        j->timeouts++;
        q->st.timeouts++;
        to_ready(q, j, now);
    }
}

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t
queue_next_deadline(const queue *q)
{
    int64_t t = INT64_MAX;
    const job *j;
    const tube *p;
    const client *c;
    if ((j = heap_top(&q->delays)))
        t = min64(t, j->deadline);
    if ((j = heap_top(&q->ttrs)))
        t = min64(t, j->deadline);
    if ((p = heap_top(&q->paused)))
        t = min64(t, p->unpause_at);
    if ((c = heap_top(&q->wakeups)))
        t = min64(t, c->wake_at);
    return t;
}

const char *
queue_body(const queue *q, const job *j)
{
    if (j->has_body)
        return j->body;
    return q->store ? q->store->body(q->store_ctx, j) : NULL;
}

int
queue_restore(queue *q, job *j, const char *tube_name, size_t len, int64_t now)
{
    tube *t = tube_find_or_make(&q->tubes, tube_name, len);
    if (!t || job_table_add(&q->jobs, j) < 0)
        return -1;
    j->tube = t;
    tube_ref(t);
    if (j->id >= q->next_id)
        q->next_id = j->id + 1;
    int state = j->state;
    j->state = 0;
    if (state == JOB_BURIED)
        to_buried(q, j);
    else if (state == JOB_DELAYED && j->deadline > now)
        to_delayed(q, j, j->deadline - now, now);
    else
        to_ready(q, j, now);
    return 0;
}

void
queue_restore_pause(queue *q, const char *name, size_t len, int64_t pause, int64_t until)
{
    tube *t = tube_find(&q->tubes, name, len);
    if (!t || t->pause)
        return;
    t->pause = pause > 0 ? pause : 1;
    t->unpause_at = until;
    if (heap_insert(&q->paused, t) < 0)
        t->pause = 0;
    else
        tube_changed(t);
}
