#include "job.h"

#include <stdlib.h>

const char *
job_state_name(const job *j)
{
    switch (j->state) {
    case JOB_READY: return "ready";
    case JOB_RESERVED: return "reserved";
    case JOB_BURIED: return "buried";
    case JOB_DELAYED: return "delayed";
    }
    return "invalid";
}

int job_heap_pri_less(const void *a, const void *b) { return job_pri_less(a, b); }
int job_heap_deadline_less(const void *a, const void *b) { return job_deadline_less(a, b); }
void job_heap_setpos(void *x, size_t pos) { ((job *)x)->pos = (uint32_t)pos; }
void job_heap_settpos(void *x, size_t pos) { ((job *)x)->tpos = (uint32_t)pos; }

static size_t
slot(size_t nbuckets, uint64_t id)
{
    /* Ids are sequential, so the low bits alone spread them evenly. */
    return (size_t)id & (nbuckets - 1);
}

static int
grow(job_table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 1024;
    job **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < t->nbuckets; i++) {
        job *j = t->buckets[i];
        while (j) {
            job *next = j->hnext;
            size_t s = slot(n, j->id);
            j->hnext = b[s];
            b[s] = j;
            j = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return 0;
}

void
job_table_free(job_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

int
job_table_add(job_table *t, job *j)
{
    if (t->count >= t->nbuckets && grow(t) < 0 && t->nbuckets == 0)
        return -1;
    size_t s = slot(t->nbuckets, j->id);
    j->hnext = t->buckets[s];
    t->buckets[s] = j;
    t->count++;
    return 0;
}

job *
job_table_find(const job_table *t, uint64_t id)
{
    if (!t->nbuckets)
        return NULL;
    job *j = t->buckets[slot(t->nbuckets, id)];
    while (j && j->id != id)
        j = j->hnext;
    return j;
}

void
job_table_remove(job_table *t, job *j)
{
    job **p = &t->buckets[slot(t->nbuckets, j->id)];
    while (*p && *p != j)
        p = &(*p)->hnext;
    if (*p) {
        *p = j->hnext;
        t->count--;
    }
}
