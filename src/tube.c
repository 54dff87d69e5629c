#include "tube.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char name_chars[256] = {
#define OK(c) [c] = 1
    OK('-'), OK('+'), OK('/'), OK(';'), OK('.'), OK('$'), OK('_'), OK('('), OK(')'),
#undef OK
};

static int
name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || name_chars[c];
}

int
tube_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TUBE_NAME_MAX || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)name[i]))
            return 0;
    return 1;
}

static uint64_t
hash_name(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;      /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

tube *
tube_find(const tube_registry *r, const char *name, size_t len)
{
    if (!r->nbuckets)
        return NULL;
    tube *t = r->buckets[hash_name(name, len) & (r->nbuckets - 1)];
    while (t && !(t->name_len == len && memcmp(t->name, name, len) == 0))
        t = t->hnext;
    return t;
}

static int
rehash(tube_registry *r, size_t n)
{
    tube **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < r->len; i++) {
        tube *t = r->list[i];
        size_t s = hash_name(t->name, t->name_len) & (n - 1);
        t->hnext = b[s];
        b[s] = t;
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
    return 0;
}

tube *
tube_find_or_make(tube_registry *r, const char *name, size_t len)
{
    tube *t = tube_find(r, name, len);
    if (t)
        return t;
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        tube **l = realloc(r->list, cap * sizeof *l);
        if (!l)
            return NULL;
        r->list = l;
        r->cap = cap;
    }
    if (r->len >= r->nbuckets && rehash(r, r->nbuckets ? r->nbuckets * 2 : 64) < 0)
        return NULL;
    t = calloc(1, sizeof *t + len + 1);
    if (!t)
        return NULL;
    memcpy(t->name, name, len);
    t->name_len = len;
    heap_init(&t->ready, job_heap_pri_less, job_heap_setpos);
    heap_init(&t->delay, job_heap_deadline_less, job_heap_setpos);
    t->index = r->len;
    r->list[r->len++] = t;
    size_t s = hash_name(name, len) & (r->nbuckets - 1);
    t->hnext = r->buckets[s];
    r->buckets[s] = t;
    return t;
}

void
tube_destroy(tube_registry *r, tube *t)
{
    tube **p = &r->buckets[hash_name(t->name, t->name_len) & (r->nbuckets - 1)];
    while (*p != t)
        p = &(*p)->hnext;
    *p = t->hnext;
    r->list[t->index] = r->list[--r->len];
    r->list[t->index]->index = t->index;
    heap_free(&t->ready);
    heap_free(&t->delay);
    free(t->many);
    free(t);
}

void
tube_registry_free(tube_registry *r)
{
    while (r->len)
        tube_destroy(r, r->list[r->len - 1]);
    free(r->list);
    free(r->buckets);
    memset(r, 0, sizeof *r);
}

void
tube_buried_append(tube *t, job *j)
{
    j->next = NULL;
    j->prev = t->buried_tail;
    if (t->buried_tail)
        t->buried_tail->next = j;
    else
        t->buried_head = j;
    t->buried_tail = j;
    t->buried_ct++;
}

void
tube_buried_remove(tube *t, job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        t->buried_head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        t->buried_tail = j->prev;
    j->prev = j->next = NULL;
    t->buried_ct--;
}
